using System.Collections.Concurrent;
using System.Reflection;
using ZstdSharp;

namespace PSBackup.Engine.Repository.Compression;

/// <summary>zstd in managed code (ZstdSharp.Port, a line-by-line port of the reference
/// implementation): the codec wherever no libzstd loads (Windows, Azure Automation sandboxes).
/// It writes and reads the same standard frames as libzstd, content size in the header, so a
/// repository never records which codec wrote a frame. Contexts are pooled, one per concurrent caller.</summary>
public sealed class ManagedZstdCompressor : IBlockCompressor
{
    /// <summary>The process-wide instance.</summary>
    public static ManagedZstdCompressor Instance { get; } = new();

    private readonly ConcurrentBag<Compressor> _compressors = new();
    private readonly ConcurrentBag<Decompressor> _decompressors = new();

    private ManagedZstdCompressor()
    {
        Version? v = typeof(Compressor).Assembly.GetName().Version;
        string informational = typeof(Compressor).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion is { } i
            ? i.Split('+')[0]
            : v?.ToString(3) ?? "?";
        Name = $"ZstdSharp {informational} (managed)";
    }

    public string Name { get; }

    public int MaxCompressedLength(int sourceLength) => Compressor.GetCompressBound(sourceLength);

    public int Compress(ReadOnlySpan<byte> source, Span<byte> destination, int level)
    {
        if (!_compressors.TryTake(out Compressor? c))
        {
            c = new Compressor(level);
        }
        try
        {
            if (c.Level != level)
            {
                c.Level = level;
            }
            return c.Wrap(source, destination);
        }
        catch (ZstdException e)
        {
            c.Dispose();
            c = null;
            throw new InvalidOperationException("zstd compression failed: " + e.Message, e);
        }
        finally
        {
            if (c is not null)
            {
                _compressors.Add(c);
            }
        }
    }

    /// <summary>Starts one frame of exactly <paramref name="contentSize"/> bytes, written in steps
    /// (ZSTD_compressStream2 of the port), as <see cref="ZstdCompressor.BeginFrame"/>.</summary>
    internal ZstdFrameWriter BeginFrame(int level, long contentSize) => new ManagedFrame(level, contentSize);

    private sealed unsafe class ManagedFrame : ZstdFrameWriter
    {
        private ZstdSharp.Unsafe.ZSTD_CCtx_s* _ctx;

        public ManagedFrame(int level, long contentSize)
        {
            _ctx = ZstdSharp.Unsafe.Methods.ZSTD_createCCtx();
            if (_ctx == null)
            {
                throw new OutOfMemoryException("ZSTD_createCCtx failed.");
            }
            try
            {
                Check(ZstdSharp.Unsafe.Methods.ZSTD_CCtx_setParameter(_ctx, ZstdSharp.Unsafe.ZSTD_cParameter.ZSTD_c_compressionLevel, level));
                Check(ZstdSharp.Unsafe.Methods.ZSTD_CCtx_setPledgedSrcSize(_ctx, checked((ulong)contentSize)));
            }
            catch
            {
                Dispose();
                throw;
            }
        }

        private static void Check(nuint r)
        {
            if (ZstdSharp.Unsafe.Methods.ZSTD_isError(r))
            {
                throw new InvalidOperationException("zstd compression failed: " + ZstdSharp.Unsafe.Methods.ZSTD_getErrorName(r));
            }
        }

        public override nuint Step(ReadOnlySpan<byte> input, Span<byte> output, bool end, out int consumed, out int written)
        {
            ObjectDisposedException.ThrowIf(_ctx == null, this);
            fixed (byte* i = input)
            fixed (byte* o = output)
            {
                var inb = new ZstdSharp.Unsafe.ZSTD_inBuffer_s { src = i, size = (nuint)input.Length };
                var outb = new ZstdSharp.Unsafe.ZSTD_outBuffer_s { dst = o, size = (nuint)output.Length };
                nuint r = ZstdSharp.Unsafe.Methods.ZSTD_compressStream2(_ctx, &outb, &inb,
                    end ? ZstdSharp.Unsafe.ZSTD_EndDirective.ZSTD_e_end : ZstdSharp.Unsafe.ZSTD_EndDirective.ZSTD_e_continue);
                Check(r);
                consumed = (int)inb.pos;
                written = (int)outb.pos;
                return r;
            }
        }

        public override void Dispose()
        {
            if (_ctx != null)
            {
                ZstdSharp.Unsafe.Methods.ZSTD_freeCCtx(_ctx);
                _ctx = null;
            }
        }
    }

    /// <summary>Reads one frame in steps, as <see cref="ZstdCompressor.BeginRead"/>.</summary>
    internal ZstdFrameReader BeginRead() => new ManagedReader();

    private sealed unsafe class ManagedReader : ZstdFrameReader
    {
        private ZstdSharp.Unsafe.ZSTD_DCtx_s* _ctx = ZstdSharp.Unsafe.Methods.ZSTD_createDCtx();

        public override nuint Step(ReadOnlySpan<byte> input, Span<byte> output, out int consumed, out int written)
        {
            ObjectDisposedException.ThrowIf(_ctx == null, this);
            fixed (byte* i = input)
            fixed (byte* o = output)
            {
                var inb = new ZstdSharp.Unsafe.ZSTD_inBuffer_s { src = i, size = (nuint)input.Length };
                var outb = new ZstdSharp.Unsafe.ZSTD_outBuffer_s { dst = o, size = (nuint)output.Length };
                nuint r = ZstdSharp.Unsafe.Methods.ZSTD_decompressStream(_ctx, &outb, &inb);
                if (ZstdSharp.Unsafe.Methods.ZSTD_isError(r))
                {
                    throw new InvalidDataException("zstd decompression failed: " + ZstdSharp.Unsafe.Methods.ZSTD_getErrorName(r));
                }
                consumed = (int)inb.pos;
                written = (int)outb.pos;
                return r;
            }
        }

        public override void Dispose()
        {
            if (_ctx != null)
            {
                ZstdSharp.Unsafe.Methods.ZSTD_freeDCtx(_ctx);
                _ctx = null;
            }
        }
    }

    public int Decompress(ReadOnlySpan<byte> frame, Span<byte> destination)
    {
        if (!_decompressors.TryTake(out Decompressor? d))
        {
            d = new Decompressor();
        }
        try
        {
            return d.Unwrap(frame, destination);
        }
        catch (ZstdException e)
        {
            // A failed frame can leave the context mid-stream: drop it rather than reuse it.
            d.Dispose();
            d = null;
            throw new InvalidDataException("zstd decompression failed: " + e.Message, e);
        }
        finally
        {
            if (d is not null)
            {
                _decompressors.Add(d);
            }
        }
    }
}

/// <summary>Picks the zstd codec for the process: the system libzstd when it loads (the fast
/// path), else the managed port. <c>PSBACKUP_ZSTD</c> overrides the choice: <c>managed</c> forces
/// the port (CI runs the repository suite a second time with it), <c>native</c> requires libzstd
/// (ZstdMissing when absent), <c>auto</c> or unset is the default.</summary>
public static class ZstdCodecs
{
    /// <summary>The environment variable that picks the codec.</summary>
    public const string Variable = "PSBACKUP_ZSTD";

    private static readonly Lazy<IBlockCompressor> Selected = new(() => Select(Environment.GetEnvironmentVariable(Variable), ZstdCompressor.TryLoad));

    /// <summary>The codec every repository of this process uses.</summary>
    public static IBlockCompressor Default => Selected.Value;

    /// <summary>The choice for a <c>PSBACKUP_ZSTD</c> value; <paramref name="native"/> loads
    /// libzstd or returns null. Unknown values are refused so a typo never silently picks a codec.</summary>
    internal static IBlockCompressor Select(string? setting, Func<IBlockCompressor?> native)
    {
        switch (setting?.Trim().ToLowerInvariant())
        {
            case null or "" or "auto":
                return native() ?? ManagedZstdCompressor.Instance;
            case "managed":
                return ManagedZstdCompressor.Instance;
            case "native":
                return native() ?? throw ZstdCompressor.MissingError();
            default:
                throw new InvalidInputException("InvalidZstdSetting",
                    $"{Variable}='{SafePath.Printable(setting)}' is not a zstd codec choice. Set it to 'auto' (libzstd when it loads, else the managed codec), 'native' or 'managed', or remove it.",
                    setting);
        }
    }
}
