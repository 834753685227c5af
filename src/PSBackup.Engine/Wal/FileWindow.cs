using System.Buffers;
using Microsoft.Win32.SafeHandles;

namespace PSBackup.Engine.Wal;

/// <summary>A forward-moving window over a file with a pooled buffer: asks for small ranges,
/// reads ahead, never allocates per record and never more than its buffer.</summary>
internal sealed class FileWindow : IDisposable
{
    private readonly SafeFileHandle _handle;
    private byte[]? _buffer;
    private long _start;
    private int _count;

    public FileWindow(SafeFileHandle handle, long length, int bufferSize)
    {
        _handle = handle;
        Length = length;
        _buffer = ArrayPool<byte>.Shared.Rent(bufferSize);
    }

    public long Length { get; }

    /// <summary>The largest range <see cref="TryGet"/> can return at once.</summary>
    public int Capacity => Buffer.Length;

    private byte[] Buffer => _buffer ?? throw new ObjectDisposedException(nameof(FileWindow));

    /// <summary>The <paramref name="length"/> bytes at <paramref name="offset"/> (at most
    /// <see cref="Capacity"/>), or false when the file ends before them.</summary>
    public bool TryGet(long offset, int length, out ReadOnlySpan<byte> bytes)
    {
        bytes = default;
        if (offset < 0 || length < 0 || length > Capacity || offset + length > Length)
        {
            return false;
        }
        if (offset < _start || offset + length > _start + _count)
        {
            Fill(offset);
            if (offset + length > _start + _count)
            {
                return false; // the file shrank under us
            }
        }
        bytes = Buffer.AsSpan((int)(offset - _start), length);
        return true;
    }

    /// <summary>Feeds <paramref name="length"/> bytes at <paramref name="offset"/> to a running
    /// CRC-32C state in window-sized pieces; false when the file ends first.</summary>
    public bool TryUpdateCrc(long offset, long length, ref uint state)
    {
        while (length > 0)
        {
            int piece = (int)Math.Min(length, Capacity);
            if (!TryGet(offset, piece, out ReadOnlySpan<byte> span))
            {
                return false;
            }
            state = Crc32C.Update(state, span);
            offset += piece;
            length -= piece;
        }
        return true;
    }

    /// <summary>Copies <paramref name="destination"/>.Length bytes at <paramref name="offset"/>.</summary>
    public bool TryCopy(long offset, Span<byte> destination)
    {
        while (destination.Length > 0)
        {
            int piece = Math.Min(destination.Length, Capacity);
            if (!TryGet(offset, piece, out ReadOnlySpan<byte> span))
            {
                return false;
            }
            span.CopyTo(destination);
            destination = destination[piece..];
            offset += piece;
        }
        return true;
    }

    /// <summary>The offset of the first non-zero byte in [offset, end), or -1 when all are zero.</summary>
    public long FindNonZero(long offset, long end)
    {
        end = Math.Min(end, Length);
        while (offset < end)
        {
            int piece = (int)Math.Min(end - offset, Capacity);
            if (!TryGet(offset, piece, out ReadOnlySpan<byte> span))
            {
                return offset;
            }
            int at = span.IndexOfAnyExcept((byte)0);
            if (at >= 0)
            {
                return offset + at;
            }
            offset += piece;
        }
        return -1;
    }

    private void Fill(long offset)
    {
        byte[] buffer = Buffer;
        int want = (int)Math.Min(buffer.Length, Length - offset);
        int total = 0;
        while (total < want)
        {
            int read = RandomAccess.Read(_handle, buffer.AsSpan(total, want - total), offset + total);
            if (read == 0)
            {
                break;
            }
            total += read;
        }
        _start = offset;
        _count = total;
    }

    public void Dispose()
    {
        if (_buffer is not null)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = null;
        }
    }
}
