using System.Runtime.ExceptionServices;

namespace PSBackup.Engine.Storage;

/// <summary>What the object-store backends (S3, Azure Blob) share when they read a caller's
/// source for an upload: part-sized reads, and a rewindable window that reports the caller's own
/// read failure instead of the SDK's wrapper of it.</summary>
internal static class UploadSource
{
    /// <summary>Reads until <paramref name="buffer"/> holds <paramref name="count"/> bytes or the source ends; returns how many it holds.</summary>
    internal static async Task<int> FillAsync(Stream source, byte[] buffer, int count, CancellationToken ct)
    {
        int filled = 0;
        while (filled < count)
        {
            int n = await source.ReadAsync(buffer.AsMemory(filled, count - filled), ct).ConfigureAwait(false);
            if (n == 0)
            {
                break;
            }
            filled += n;
        }
        return filled;
    }

    /// <summary>A seekable, read-only window [start, start+length) of the caller's stream that
    /// remembers the first failure of the caller's stream, so it is reported as such.</summary>
    internal sealed class View(Stream inner, long start, long length) : Stream
    {
        private long _position;

        public ExceptionDispatchInfo? Fault { get; private set; }

        public override bool CanRead => true;
        public override bool CanSeek => true;
        public override bool CanWrite => false;
        public override long Length => length;

        public override long Position
        {
            get => _position;
            set => Seek(value, SeekOrigin.Begin);
        }

        public override long Seek(long offset, SeekOrigin origin)
        {
            long target = origin switch
            {
                SeekOrigin.Begin => offset,
                SeekOrigin.Current => _position + offset,
                _ => length + offset,
            };
            ArgumentOutOfRangeException.ThrowIfNegative(target, nameof(offset));
            _position = target;
            return target;
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            int want = (int)Math.Clamp(length - _position, 0, buffer.Length);
            if (want == 0)
            {
                return 0;
            }
            try
            {
                inner.Position = start + _position;
                int n = inner.Read(buffer[..want]);
                _position += n;
                return n;
            }
            catch (Exception e)
            {
                Fault ??= ExceptionDispatchInfo.Capture(e);
                throw;
            }
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            int want = (int)Math.Clamp(length - _position, 0, buffer.Length);
            if (want == 0)
            {
                return 0;
            }
            try
            {
                inner.Position = start + _position;
                int n = await inner.ReadAsync(buffer[..want], cancellationToken).ConfigureAwait(false);
                _position += n;
                return n;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                Fault ??= ExceptionDispatchInfo.Capture(e);
                throw;
            }
        }

        public override void Flush()
        {
        }

        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
