using System.Numerics;

namespace PSBackup.Engine.Repository;

/// <summary>The write path's large blocks (a file's read block, a frame, a frame's stored bytes),
/// rented and returned across threads: one process-wide free list per power-of-two size, a few
/// blocks each. <see cref="System.Buffers.ArrayPool{T}.Shared"/> keeps a returned block in the
/// returning thread's own slot first, and the pipeline rents on one thread and returns on another,
/// so blocks sat in the slots of threads that would not rent them again while new ones were made:
/// late in a backup of a tree of many small files the heap held 15 blocks of 1-4 MiB, against 8
/// from this pool (docs/design.md, "Many small files"). Shared by every writer of the process (a
/// WAL ship runs one per segment; a pool per writer made each of them allocate its blocks anew).</summary>
internal sealed class BlockPool(int maxFree)
{
    /// <summary>The process's pool: a few free blocks per size for each core.</summary>
    public static readonly BlockPool Shared = new(Math.Max(4, 2 * Environment.ProcessorCount + 2));

    private const int MinShift = 16; // 64 KiB
    private const int MaxShift = 24; // 16 MiB
    private readonly Stack<byte[]>[] _free = Enumerable.Range(0, MaxShift - MinShift + 1).Select(_ => new Stack<byte[]>()).ToArray();

    /// <summary>A block of at least <paramref name="length"/> bytes (not cleared).</summary>
    public byte[] Rent(int length)
    {
        int shift = Math.Max(MinShift, length <= 1 ? 0 : 32 - BitOperations.LeadingZeroCount((uint)(length - 1)));
        if (shift > MaxShift)
        {
            return GC.AllocateUninitializedArray<byte>(length);
        }
        Stack<byte[]> free = _free[shift - MinShift];
        lock (free)
        {
            if (free.TryPop(out byte[]? block))
            {
                return block;
            }
        }
        return GC.AllocateUninitializedArray<byte>(1 << shift);
    }

    /// <summary>Gives a block from <see cref="Rent"/> back; kept for reuse while its size has room.</summary>
    public void Return(byte[] block)
    {
        if (!BitOperations.IsPow2(block.Length) || block.Length < 1 << MinShift || block.Length > 1 << MaxShift)
        {
            return;
        }
        Stack<byte[]> free = _free[BitOperations.Log2((uint)block.Length) - MinShift];
        lock (free)
        {
            if (free.Count < maxFree)
            {
                free.Push(block);
            }
        }
    }
}
