using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.InteropServices;

namespace PSBackup.Engine.Repository.Compression;

/// <summary>The one small compression interface the repository uses. Output is always one
/// standard zstd frame (RFC 8878) with the content size in its header, so <c>zstd -d</c> reads it.</summary>
public interface IBlockCompressor
{
    /// <summary>Which implementation this is, e.g. <c>libzstd 1.5.4</c> or <c>ZstdSharp 0.8.8 (managed)</c>.</summary>
    string Name { get; }

    /// <summary>The largest frame <see cref="Compress"/> can produce for <paramref name="sourceLength"/> bytes.</summary>
    int MaxCompressedLength(int sourceLength);

    /// <summary>Compresses <paramref name="source"/> into one frame; returns the frame length.</summary>
    int Compress(ReadOnlySpan<byte> source, Span<byte> destination, int level);

    /// <summary>Decompresses one whole frame into <paramref name="destination"/>; returns the
    /// plaintext length. Malformed input is an <see cref="InvalidDataException"/>.</summary>
    int Decompress(ReadOnlySpan<byte> frame, Span<byte> destination);
}

/// <summary>The fast path: a thin binding over the system libzstd (libzstd.so.1 on Linux, libzstd.1.dylib on
/// macOS, libzstd.dll on Windows, or a copy under runtimes/&lt;rid&gt;/native beside the engine).
/// The library is loaded with <see cref="NativeLibrary"/> and called through function pointers,
/// so no assembly-wide DllImport resolver is claimed. Contexts are pooled, one per concurrent caller.</summary>
public sealed unsafe class ZstdCompressor : IBlockCompressor
{
    private static readonly Lazy<ZstdCompressor> Shared = new(() => new ZstdCompressor(LoadLibrary()));

    /// <summary>The process-wide instance; throws <see cref="OperationFailedException"/> (ZstdMissing)
    /// naming the fix when libzstd cannot be loaded.</summary>
    public static ZstdCompressor Instance => Shared.Value;

    private readonly delegate* unmanaged<nuint, nuint> _compressBound;
    private readonly delegate* unmanaged<nuint, uint> _isError;
    private readonly delegate* unmanaged<nuint, byte*> _getErrorName;
    private readonly delegate* unmanaged<nint> _createCCtx;
    private readonly delegate* unmanaged<nint, nuint> _freeCCtx;
    private readonly delegate* unmanaged<nint> _createDCtx;
    private readonly delegate* unmanaged<nint, nuint> _freeDCtx;
    private readonly delegate* unmanaged<nint, byte*, nuint, byte*, nuint, int, nuint> _compressCCtx;
    private readonly delegate* unmanaged<nint, byte*, nuint, byte*, nuint, nuint> _decompressDCtx;
    private readonly delegate* unmanaged<uint> _versionNumber;
    private readonly delegate* unmanaged<nint, ZstdOutBuffer*, ZstdInBuffer*, int, nuint> _compressStream2;
    private readonly delegate* unmanaged<nint, int, int, nuint> _setParameter;
    private readonly delegate* unmanaged<nint, ulong, nuint> _setPledgedSrcSize;
    private readonly delegate* unmanaged<nint, ZstdOutBuffer*, ZstdInBuffer*, nuint> _decompressStream;
    private readonly bool _streams;

    private static void* Optional(nint lib, string name) => NativeLibrary.TryGetExport(lib, name, out nint f) ? (void*)f : null;
    private readonly ConcurrentBag<nint> _cctx = new();
    private readonly ConcurrentBag<nint> _dctx = new();

    private ZstdCompressor(nint lib)
    {
        _compressBound = (delegate* unmanaged<nuint, nuint>)NativeLibrary.GetExport(lib, "ZSTD_compressBound");
        _isError = (delegate* unmanaged<nuint, uint>)NativeLibrary.GetExport(lib, "ZSTD_isError");
        _getErrorName = (delegate* unmanaged<nuint, byte*>)NativeLibrary.GetExport(lib, "ZSTD_getErrorName");
        _createCCtx = (delegate* unmanaged<nint>)NativeLibrary.GetExport(lib, "ZSTD_createCCtx");
        _freeCCtx = (delegate* unmanaged<nint, nuint>)NativeLibrary.GetExport(lib, "ZSTD_freeCCtx");
        _createDCtx = (delegate* unmanaged<nint>)NativeLibrary.GetExport(lib, "ZSTD_createDCtx");
        _freeDCtx = (delegate* unmanaged<nint, nuint>)NativeLibrary.GetExport(lib, "ZSTD_freeDCtx");
        _compressCCtx = (delegate* unmanaged<nint, byte*, nuint, byte*, nuint, int, nuint>)NativeLibrary.GetExport(lib, "ZSTD_compressCCtx");
        _decompressDCtx = (delegate* unmanaged<nint, byte*, nuint, byte*, nuint, nuint>)NativeLibrary.GetExport(lib, "ZSTD_decompressDCtx");
        _versionNumber = (delegate* unmanaged<uint>)NativeLibrary.GetExport(lib, "ZSTD_versionNumber");
        // Streaming (libzstd 1.3.8 and later; stable since 1.4.0): only large JSON blobs use it, so an
        // older library still serves every chunk, and those blobs are compressed in one call.
        _compressStream2 = (delegate* unmanaged<nint, ZstdOutBuffer*, ZstdInBuffer*, int, nuint>)Optional(lib, "ZSTD_compressStream2");
        _setParameter = (delegate* unmanaged<nint, int, int, nuint>)Optional(lib, "ZSTD_CCtx_setParameter");
        _setPledgedSrcSize = (delegate* unmanaged<nint, ulong, nuint>)Optional(lib, "ZSTD_CCtx_setPledgedSrcSize");
        _decompressStream = (delegate* unmanaged<nint, ZstdOutBuffer*, ZstdInBuffer*, nuint>)Optional(lib, "ZSTD_decompressStream");
        _streams = _compressStream2 != null && _setParameter != null && _setPledgedSrcSize != null && _decompressStream != null;
    }

    /// <summary>The loaded library's version, e.g. 10504 for 1.5.4.</summary>
    public uint Version => _versionNumber();

    public string Name => $"libzstd {Version / 10000}.{Version / 100 % 100}.{Version % 100}";

    /// <summary>The native library when it loads and has every function used; null otherwise
    /// (then <see cref="ZstdCodecs"/> falls back to the managed port).</summary>
    internal static ZstdCompressor? TryLoad()
    {
        try
        {
            return Shared.Value;
        }
        catch (Exception e) when (e is OperationFailedException or EntryPointNotFoundException or DllNotFoundException or BadImageFormatException)
        {
            return null;
        }
    }

    public int MaxCompressedLength(int sourceLength) => checked((int)_compressBound((nuint)sourceLength));

    public int Compress(ReadOnlySpan<byte> source, Span<byte> destination, int level)
    {
        nint ctx = RentC();
        try
        {
            nuint r;
            fixed (byte* s = source)
            fixed (byte* d = destination)
            {
                r = _compressCCtx(ctx, d, (nuint)destination.Length, s, (nuint)source.Length, level);
            }
            if (_isError(r) != 0)
            {
                throw new InvalidOperationException("zstd compression failed: " + ErrorName(r));
            }
            return (int)r;
        }
        finally
        {
            _cctx.Add(ctx);
        }
    }

    public int Decompress(ReadOnlySpan<byte> frame, Span<byte> destination)
    {
        nint ctx = RentD();
        try
        {
            nuint r;
            fixed (byte* s = frame)
            fixed (byte* d = destination)
            {
                r = _decompressDCtx(ctx, d, (nuint)destination.Length, s, (nuint)frame.Length);
            }
            if (_isError(r) != 0)
            {
                throw new InvalidDataException("zstd decompression failed: " + ErrorName(r));
            }
            return (int)r;
        }
        finally
        {
            _dctx.Add(ctx);
        }
    }

    /// <summary>Starts one frame of exactly <paramref name="contentSize"/> bytes, written in steps
    /// (ZSTD_compressStream2); the size is declared in the frame header as <see cref="Compress"/> does.
    /// A context of its own, freed with it: a streaming context keeps its window and buffers (~4 MiB
    /// at level 3), which the pool of one-call contexts would hold for the rest of the process.
    /// Null where the library has no streaming functions.</summary>
    internal ZstdFrameWriter? BeginFrame(int level, long contentSize)
    {
        if (!_streams)
        {
            return null;
        }
        nint ctx = _createCCtx();
        if (ctx == 0)
        {
            throw new OutOfMemoryException("ZSTD_createCCtx failed.");
        }
        try
        {
            Check(_setParameter(ctx, ZstdFrameWriter.CompressionLevelParameter, level));
            Check(_setPledgedSrcSize(ctx, checked((ulong)contentSize)));
            return new NativeFrame(this, ctx);
        }
        catch
        {
            _freeCCtx(ctx);
            throw;
        }
    }

    private void Check(nuint r)
    {
        if (_isError(r) != 0)
        {
            throw new InvalidOperationException("zstd compression failed: " + ErrorName(r));
        }
    }

    private sealed class NativeFrame(ZstdCompressor zstd, nint ctx) : ZstdFrameWriter
    {
        private nint _ctx = ctx;

        public override nuint Step(ReadOnlySpan<byte> input, Span<byte> output, bool end, out int consumed, out int written)
        {
            ObjectDisposedException.ThrowIf(_ctx == 0, this);
            fixed (byte* i = input)
            fixed (byte* o = output)
            {
                var inb = new ZstdInBuffer { Src = i, Size = (nuint)input.Length };
                var outb = new ZstdOutBuffer { Dst = o, Size = (nuint)output.Length };
                nuint r = zstd._compressStream2(_ctx, &outb, &inb, end ? EndFrame : ContinueFrame);
                zstd.Check(r);
                consumed = (int)inb.Pos;
                written = (int)outb.Pos;
                return r;
            }
        }

        public override void Dispose()
        {
            nint c = _ctx;
            _ctx = 0;
            if (c != 0)
            {
                zstd._freeCCtx(c);
            }
        }
    }

    /// <summary>Reads one frame in steps (ZSTD_decompressStream), for a caller that consumes the
    /// plaintext as it comes instead of holding all of it (<see cref="ZstdFrameReader"/>). A context
    /// of its own, freed with it (a streaming context keeps a window-sized buffer); null where the
    /// library has no streaming functions.</summary>
    internal ZstdFrameReader? BeginRead()
    {
        if (!_streams)
        {
            return null;
        }
        nint ctx = _createDCtx();
        return ctx != 0 ? new NativeReader(this, ctx) : throw new OutOfMemoryException("ZSTD_createDCtx failed.");
    }

    private sealed class NativeReader(ZstdCompressor zstd, nint ctx) : ZstdFrameReader
    {
        private nint _ctx = ctx;

        public override nuint Step(ReadOnlySpan<byte> input, Span<byte> output, out int consumed, out int written)
        {
            ObjectDisposedException.ThrowIf(_ctx == 0, this);
            fixed (byte* i = input)
            fixed (byte* o = output)
            {
                var inb = new ZstdInBuffer { Src = i, Size = (nuint)input.Length };
                var outb = new ZstdOutBuffer { Dst = o, Size = (nuint)output.Length };
                nuint r = zstd._decompressStream(_ctx, &outb, &inb);
                if (zstd._isError(r) != 0)
                {
                    throw new InvalidDataException("zstd decompression failed: " + zstd.ErrorName(r));
                }
                consumed = (int)inb.Pos;
                written = (int)outb.Pos;
                return r;
            }
        }

        public override void Dispose()
        {
            nint c = _ctx;
            _ctx = 0;
            if (c != 0)
            {
                zstd._freeDCtx(c);
            }
        }
    }

    private nint RentC()
    {
        if (_cctx.TryTake(out nint c))
        {
            return c;
        }
        nint n = _createCCtx();
        return n != 0 ? n : throw new OutOfMemoryException("ZSTD_createCCtx failed.");
    }

    private nint RentD()
    {
        if (_dctx.TryTake(out nint c))
        {
            return c;
        }
        nint n = _createDCtx();
        return n != 0 ? n : throw new OutOfMemoryException("ZSTD_createDCtx failed.");
    }

    private string ErrorName(nuint code) => Marshal.PtrToStringUTF8((nint)_getErrorName(code)) ?? "unknown error";

    /// <summary>The file names tried, in order, for this platform.</summary>
    internal static IReadOnlyList<string> CandidateNames()
    {
        if (OperatingSystem.IsWindows())
        {
            return ["libzstd.dll", "zstd.dll"];
        }
        if (OperatingSystem.IsMacOS())
        {
            return ["libzstd.1.dylib", "libzstd.dylib", "/opt/homebrew/lib/libzstd.1.dylib", "/usr/local/lib/libzstd.1.dylib"];
        }
        return ["libzstd.so.1", "libzstd.so"];
    }

    [System.Diagnostics.CodeAnalysis.UnconditionalSuppressMessage("SingleFile", "IL3000",
        Justification = "Location is empty in a single-file or Native AOT app; the app's folder (AppContext.BaseDirectory) is used then.")]
    private static nint LoadLibrary()
    {
        Assembly asm = typeof(ZstdCompressor).Assembly;
        string baseDir = Path.GetDirectoryName(asm.Location) is { Length: > 0 } d ? d : AppContext.BaseDirectory;
        string rid = RuntimeInformation.RuntimeIdentifier;
        string arch = RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant();
        string os = OperatingSystem.IsWindows() ? "win" : OperatingSystem.IsMacOS() ? "osx" : "linux";
        foreach (string name in CandidateNames())
        {
            foreach (string dir in new[] { Path.Combine(baseDir, "runtimes", $"{os}-{arch}", "native"), Path.Combine(baseDir, "runtimes", rid, "native"), baseDir })
            {
                string local = Path.Combine(dir, name);
                if (File.Exists(local) && NativeLibrary.TryLoad(local, out nint h1))
                {
                    return h1;
                }
            }
            if (NativeLibrary.TryLoad(name, asm, DllImportSearchPath.SafeDirectories | DllImportSearchPath.AssemblyDirectory, out nint h2))
            {
                return h2;
            }
        }
        throw MissingError();
    }

    /// <summary>ZstdMissing: only raised when <c>PSBACKUP_ZSTD=native</c> demands the library.</summary>
    internal static OperationFailedException MissingError() => new("ZstdMissing",
        $"The zstd library could not be loaded (tried {string.Join(", ", CandidateNames())}). {ZstdCodecs.Variable}=native requires it: install zstd (Debian/Ubuntu: 'apt-get install libzstd1'; macOS: 'brew install zstd'; Windows: place libzstd.dll beside PSBackup.Engine.dll), or unset {ZstdCodecs.Variable} to use the managed codec.");
}

/// <summary>ZSTD_inBuffer (zstd.h).</summary>
internal unsafe struct ZstdInBuffer
{
    public byte* Src;
    public nuint Size;
    public nuint Pos;
}

/// <summary>ZSTD_outBuffer (zstd.h).</summary>
internal unsafe struct ZstdOutBuffer
{
    public byte* Dst;
    public nuint Size;
    public nuint Pos;
}
