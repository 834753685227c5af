using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Runtime.ExceptionServices;

namespace PSBackup.Engine.Storage;

/// <summary>What the object-store backends (S3, Azure Blob) share around an upload: part-sized
/// reads of the caller's source and the two-buffer part pump, the length check, the network-fault
/// test, and a rewindable window that reports the caller's own read failure instead of the SDK's
/// wrapper of it.</summary>
internal static class UploadSource
{
    /// <summary>The shape of every object-store put: a seekable source up to
    /// <paramref name="singleThreshold"/> goes up in one request straight from the source (through
    /// a <see cref="View"/>); otherwise one part is read into a pooled buffer, and a source that
    /// ends within it goes up in one request from that buffer, a longer one through
    /// <paramref name="putParts"/>, which then owns the buffer (see <see cref="PumpPartsAsync"/>).</summary>
    internal static async Task PutAsync(string location, string key, Stream content, long length, long singleThreshold, int partSize,
        Func<Stream, long, Task> putSingle, Func<byte[], Task> putParts, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(content);
        ct.ThrowIfCancellationRequested();
        if (content.CanSeek)
        {
            long available = content.Length - content.Position;
            if (length >= 0 && length != available)
            {
                throw new ArgumentException($"The content for '{key}' has {available} bytes left, not the {length} announced.", nameof(length));
            }
            if (available <= singleThreshold)
            {
                await putSingle(new View(content, content.Position, available), available).ConfigureAwait(false);
                return;
            }
        }
        byte[] first = ArrayPool<byte>.Shared.Rent(partSize);
        bool handedOver = false;
        try
        {
            int n = await FillAsync(content, first, partSize, ct).ConfigureAwait(false);
            if (n < partSize)
            {
                CheckLength(location, key, n, length);
                using var buffered = new MemoryStream(first, 0, n, writable: false);
                await putSingle(buffered, n).ConfigureAwait(false);
                return;
            }
            handedOver = true;
            await putParts(first).ConfigureAwait(false);
        }
        finally
        {
            if (!handedOver)
            {
                ArrayPool<byte>.Shared.Return(first);
            }
        }
    }

    /// <summary>A put whose source held another length than announced stores nothing.</summary>
    internal static void CheckLength(string location, string key, long actual, long announced)
    {
        if (announced >= 0 && actual != announced)
        {
            throw new StorageIOException($"The content for '{key}' was {actual} bytes, not the {announced} announced; nothing was stored.", key, location, isTransient: false);
        }
    }

    /// <summary>A failure of the network under an SDK (connection refused or reset, DNS, a timeout), at any depth.</summary>
    internal static bool IsNetworkFault(Exception e)
    {
        for (Exception? x = e; x is not null; x = x.InnerException)
        {
            if (x is HttpRequestException or IOException or SocketException or TimeoutException or WebException)
            {
                return true;
            }
        }
        return false;
    }

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

    /// <summary>Uploads <paramref name="first"/> (a full part) and the rest of
    /// <paramref name="content"/> as parts of <paramref name="partSize"/> through
    /// <paramref name="upload"/> (part number from 1, buffer, length), reading the next part while
    /// the previous one uploads: at most two part buffers, both owned (returned to the pool) here.
    /// More than <paramref name="maxParts"/> parts throws what <paramref name="tooMany"/> makes.
    /// Returns the bytes uploaded; a failure waits for the part in flight before it propagates.</summary>
    internal static async Task<long> PumpPartsAsync(Stream content, byte[] first, int partSize, int maxParts,
        Func<int, byte[], int, Task> upload, Func<Exception> tooMany, CancellationToken ct)
    {
        byte[] current = first;
        byte[]? spare = null;
        Task? inflight = null;
        try
        {
            spare = ArrayPool<byte>.Shared.Rent(partSize);
            int currentLength = partSize;
            long total = 0;
            for (int number = 1; ; number++)
            {
                if (number > maxParts)
                {
                    throw tooMany();
                }
                inflight = upload(number, current, currentLength);
                total += currentLength;
                int next = currentLength == partSize ? await FillAsync(content, spare, partSize, ct).ConfigureAwait(false) : 0;
                await inflight.ConfigureAwait(false);
                inflight = null;
                if (next == 0)
                {
                    return total;
                }
                (current, spare) = (spare, current);
                currentLength = next;
            }
        }
        catch
        {
            if (inflight is not null)
            {
                // The part's buffer goes back to the pool below: the upload must be over first.
                try
                {
                    await inflight.ConfigureAwait(false);
                }
                catch
                {
                    // already failing
                }
            }
            throw;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(current);
            if (spare is not null)
            {
                ArrayPool<byte>.Shared.Return(spare);
            }
        }
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
