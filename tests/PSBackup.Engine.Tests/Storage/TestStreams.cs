using System.Security.Cryptography;

namespace PSBackup.Engine.Tests.Storage;

/// <summary>Sources for puts: deterministic bytes, a non-seekable view, and sources that fail or
/// cancel part-way, so tests can prove what a failed put leaves behind.</summary>
internal static class TestData
{
    public static byte[] Bytes(int size, int seed = 1)
    {
        var data = new byte[size];
        new Random(seed).NextBytes(data);
        return data;
    }

    public static string Sha256(byte[] data) => Convert.ToHexString(SHA256.HashData(data));

    public static async Task<byte[]> ReadAllAsync(Stream stream)
    {
        await using (stream)
        {
            var buffer = new MemoryStream();
            await stream.CopyToAsync(buffer);
            return buffer.ToArray();
        }
    }
}

/// <summary>Reads through to an inner stream without seeking; optionally runs an action (throw,
/// cancel) once <c>triggerAt</c> bytes have been delivered.</summary>
internal sealed class ScriptedStream(Stream inner, bool seekable, long triggerAt = -1, Action? trigger = null) : Stream
{
    private bool _fired;

    public static ScriptedStream Over(byte[] data, bool seekable, long triggerAt = -1, Action? trigger = null) =>
        new(new MemoryStream(data, writable: false), seekable, triggerAt, trigger);

    public override bool CanRead => true;
    public override bool CanSeek => seekable;
    public override bool CanWrite => false;
    public override long Length => seekable ? inner.Length : throw new NotSupportedException();

    public override long Position
    {
        get => seekable ? inner.Position : throw new NotSupportedException();
        set
        {
            if (!seekable)
            {
                throw new NotSupportedException();
            }
            inner.Position = value;
        }
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        int allowed = Allowed(buffer.Length);
        return inner.Read(buffer[..allowed]);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        int allowed = Allowed(buffer.Length);
        await Task.Yield();
        cancellationToken.ThrowIfCancellationRequested();
        return await inner.ReadAsync(buffer[..allowed], cancellationToken);
    }

    /// <summary>Delivers bytes up to the trigger point, then fires the trigger on every read
    /// from there (only the first when <see cref="Once"/>).</summary>
    private int Allowed(int want)
    {
        if (trigger is null || triggerAt < 0)
        {
            return want;
        }
        long position = inner.Position;
        if (position >= triggerAt)
        {
            if (!(Once && _fired))
            {
                _fired = true;
                trigger();
            }
            return want;
        }
        return (int)Math.Min(want, triggerAt - position);
    }

    public bool Once { get; init; }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => seekable ? inner.Seek(offset, origin) : throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
