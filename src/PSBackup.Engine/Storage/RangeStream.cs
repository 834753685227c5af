namespace PSBackup.Engine.Storage;

/// <summary>A read-only, forward-only view of at most <c>length</c> bytes of an inner stream
/// (positioned by the caller), disposing the inner stream and an optional owner with it. Used
/// to hand out ranges without buffering them and to keep an HTTP response alive while its body
/// is read.</summary>
internal sealed class RangeStream(Stream inner, long length, IDisposable? owner = null, bool strict = false, string? what = null) : Stream
{
    private readonly long _length = length;
    private long _remaining = length;
    private long _position;
    private bool _disposed;

    public override bool CanRead => !_disposed;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => _length;

    public override long Position
    {
        get => _position;
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_remaining <= 0 || buffer.Length == 0)
        {
            return 0;
        }
        int n = inner.Read(buffer[..(int)Math.Min(buffer.Length, _remaining)]);
        return Advance(n);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_remaining <= 0 || buffer.Length == 0)
        {
            return 0;
        }
        int n = await inner.ReadAsync(buffer[..(int)Math.Min(buffer.Length, _remaining)], cancellationToken).ConfigureAwait(false);
        return Advance(n);
    }

    private int Advance(int n)
    {
        if (n == 0 && strict)
        {
            // The source ended before the promised length: a truncated response, never a short
            // read the caller could mistake for the whole object.
            throw new EndOfStreamException($"{what ?? "The stream"} ended after {_position} of {_length} bytes.");
        }
        _remaining -= n;
        _position += n;
        return n;
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing && !_disposed)
        {
            _disposed = true;
            inner.Dispose();
            owner?.Dispose();
        }
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        if (!_disposed)
        {
            _disposed = true;
            await inner.DisposeAsync().ConfigureAwait(false);
            owner?.Dispose();
        }
        await base.DisposeAsync().ConfigureAwait(false);
    }
}
