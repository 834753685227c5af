namespace PSBackup.Engine.Repository.Compression;

/// <summary>One zstd frame written in steps, its content size declared in the header up front (a
/// reader checks it before allocating: <see cref="BlobLimits"/>), so a large JSON blob is compressed
/// as it is serialized instead of from one array of all of it. The frame is a standard one, read
/// like any other.</summary>
internal abstract class ZstdFrameWriter : IDisposable
{
    /// <summary>ZSTD_c_compressionLevel, ZSTD_e_continue, ZSTD_e_end (zstd.h).</summary>
    internal const int CompressionLevelParameter = 100, ContinueFrame = 0, EndFrame = 2;

    /// <summary>Compresses what it can of <paramref name="input"/> into <paramref name="output"/>;
    /// <paramref name="end"/> says no input follows. Returns what zstd still has to flush: 0 once
    /// <paramref name="end"/> has written the whole frame. Feeding more or fewer bytes than declared
    /// fails.</summary>
    public abstract nuint Step(ReadOnlySpan<byte> input, Span<byte> output, bool end, out int consumed, out int written);

    public abstract void Dispose();

    /// <summary>A frame writer of <paramref name="codec"/>, or null for a codec that has none
    /// (the caller then compresses in one call).</summary>
    public static ZstdFrameWriter? Begin(IBlockCompressor codec, int level, long contentSize) => codec switch
    {
        ZstdCompressor native => native.BeginFrame(level, contentSize),
        ManagedZstdCompressor managed => managed.BeginFrame(level, contentSize),
        _ => null,
    };
}

/// <summary>One zstd frame read in steps, so a large JSON blob is parsed as it is decompressed
/// instead of from one array of all of it.</summary>
internal abstract class ZstdFrameReader : IDisposable
{
    /// <summary>Decompresses what it can of <paramref name="input"/> into <paramref name="output"/>.
    /// Returns 0 once the frame is complete and all of it written out (zstd's own answer).
    /// A malformed frame is an <see cref="InvalidDataException"/>.</summary>
    public abstract nuint Step(ReadOnlySpan<byte> input, Span<byte> output, out int consumed, out int written);

    public abstract void Dispose();

    /// <summary>A frame reader of <paramref name="codec"/>, or null for a codec that has none.</summary>
    public static ZstdFrameReader? Begin(IBlockCompressor codec) => codec switch
    {
        ZstdCompressor native => native.BeginRead(),
        ManagedZstdCompressor managed => managed.BeginRead(),
        _ => null,
    };
}

/// <summary>The plaintext of one whole frame (<paramref name="frame"/>) as a read-only stream: ends
/// exactly where the frame does. Bytes after the frame, a frame cut short or a plaintext of another
/// length than <paramref name="contentSize"/> are an <see cref="InvalidDataException"/>.</summary>
internal sealed class ZstdFrameStream(ZstdFrameReader reader, ReadOnlyMemory<byte> frame, long contentSize) : Stream
{
    private ReadOnlyMemory<byte> _left = frame;
    private long _produced;
    private bool _done;

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => _produced; set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (buffer.IsEmpty || _done)
        {
            return 0;
        }
        while (true)
        {
            nuint left = reader.Step(_left.Span, buffer, out int consumed, out int written);
            _left = _left[consumed..];
            _produced += written;
            if (_produced > contentSize)
            {
                throw new InvalidDataException($"The zstd frame holds more than the {contentSize} bytes its header declares.");
            }
            if (left == 0)
            {
                _done = true;
                if (!_left.IsEmpty || _produced != contentSize)
                {
                    throw new InvalidDataException(_left.IsEmpty
                        ? $"The zstd frame's content ({_produced} bytes) does not match its header ({contentSize} bytes)."
                        : "Bytes follow the zstd frame.");
                }
                return written;
            }
            if (written > 0)
            {
                return written;
            }
            if (consumed == 0)
            {
                // zstd makes progress whenever it can: none means the input ran out mid-frame.
                throw new InvalidDataException(_left.IsEmpty ? "The zstd frame is cut short." : "The zstd frame does not decode.");
            }
        }
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            reader.Dispose();
        }
        base.Dispose(disposing);
    }
}
