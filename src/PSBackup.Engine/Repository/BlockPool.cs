using System.Numerics;

namespace PSBackup.Engine.Repository;

/// <summary>The write path's and the check's large blocks (a file's read block, a frame, a frame's
/// stored bytes), rented and returned across threads: one process-wide free list per power-of-two
/// size. <see cref="System.Buffers.ArrayPool{T}.Shared"/> keeps a returned block in the returning
/// thread's own slot first, and these are rented on one thread and returned on another, so blocks
/// sat in the slots of threads that would not rent them again while new ones were made: late in a
/// backup of a tree of many small files the heap held 15 blocks of 1-4 MiB, against 8 from this
/// pool (docs/design.md, Performance, "Many small files"). Shared by every writer of the process: a
/// WAL ship runs one per segment, and a pool per writer made each of them allocate its blocks anew.
/// <para>What it keeps is bounded (a few blocks per size, and <see cref="Shared"/> 64 MiB in all),
/// and all of it is let go once no block was rented for <see cref="IdleTrim"/>: a PowerShell
/// session or an Automation job does not carry a backup's blocks after it.</para></summary>
internal sealed class BlockPool
{
    /// <summary>The process's pool: free blocks of each size for one per core and two more, at most
    /// 64 MiB. (Two per core and two more, with the writer's queues a core deep, held blocks a
    /// backup did not need again: a 5 % incremental of 61,538 small files, which holds its parent's
    /// entries besides, peaked at 127-139 MiB, and 120-127 with this and queues one deep, the
    /// library tree's full backup, restore and check at the same time and CPU.)</summary>
    public static readonly BlockPool Shared = new(Math.Max(4, Environment.ProcessorCount + 2), 64L << 20, trimWhenIdle: true);

    /// <summary>How long the shared pool keeps blocks nobody rents.</summary>
    internal static readonly TimeSpan IdleTrim = TimeSpan.FromSeconds(10);

    private const int MinShift = 16; // 64 KiB
    private const int MaxShift = 24; // 16 MiB
    private readonly int _maxFree;
    private readonly long _maxBytes;
    private readonly Stack<byte[]>[] _free = Enumerable.Range(0, MaxShift - MinShift + 1).Select(_ => new Stack<byte[]>()).ToArray();
    private readonly object _lock = new();
    private readonly Timer? _trim;
    private long _freeBytes;
    private long _lastRent;
    private bool _trimArmed;

    internal BlockPool(int maxFreePerSize, long maxFreeBytes, bool trimWhenIdle = false)
    {
        _maxFree = maxFreePerSize;
        _maxBytes = maxFreeBytes;
        if (trimWhenIdle)
        {
            _trim = new Timer(_ => TrimIfIdle(), null, Timeout.Infinite, Timeout.Infinite);
        }
    }

    /// <summary>A block of at least <paramref name="length"/> bytes (not cleared).</summary>
    public byte[] Rent(int length)
    {
        int shift = Math.Max(MinShift, length <= 1 ? 0 : 32 - BitOperations.LeadingZeroCount((uint)(length - 1)));
        if (shift > MaxShift)
        {
            return GC.AllocateUninitializedArray<byte>(length);
        }
        lock (_lock)
        {
            _lastRent = Environment.TickCount64;
            if (_free[shift - MinShift].TryPop(out byte[]? block))
            {
                _freeBytes -= block.Length;
                return block;
            }
        }
        return GC.AllocateUninitializedArray<byte>(1 << shift);
    }

    /// <summary>Gives a block from <see cref="Rent"/> back; kept for reuse while there is room.</summary>
    public void Return(byte[] block)
    {
        if (!BitOperations.IsPow2(block.Length) || block.Length < 1 << MinShift || block.Length > 1 << MaxShift)
        {
            return;
        }
        lock (_lock)
        {
            Stack<byte[]> free = _free[BitOperations.Log2((uint)block.Length) - MinShift];
            if (free.Count >= _maxFree || _freeBytes + block.Length > _maxBytes)
            {
                return;
            }
            free.Push(block);
            _freeBytes += block.Length;
            if (_trim is not null && !_trimArmed)
            {
                _trimArmed = true;
                _trim.Change(IdleTrim, IdleTrim);
            }
        }
    }

    /// <summary>Lets every kept block go.</summary>
    public void Trim()
    {
        lock (_lock)
        {
            foreach (Stack<byte[]> free in _free)
            {
                free.Clear();
            }
            _freeBytes = 0;
        }
    }

    private void TrimIfIdle()
    {
        lock (_lock)
        {
            if (Environment.TickCount64 - _lastRent < (long)IdleTrim.TotalMilliseconds)
            {
                return;
            }
            Trim();
            _trimArmed = false;
            _trim!.Change(Timeout.Infinite, Timeout.Infinite);
        }
    }
}
