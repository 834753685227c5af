using System.Buffers;
using System.Security.Cryptography;

namespace PSBackup.Engine;

/// <summary>Bytes and SHA-256 of a stream of file content.</summary>
public readonly record struct ContentDigest(long Bytes, string Sha256);

/// <summary>Streaming copy and hash with pooled buffers: never a whole file in memory.</summary>
public static class FileCopy
{
    public const int BufferSize = 1 << 20;

    /// <summary>Copies <paramref name="source"/> to a new file <paramref name="destination"/>
    /// (which must not exist), hashing what was written, and fsyncs it. <paramref name="createMode"/>:
    /// the new file's mode on Unix (e.g. 0600 until the source's own mode is given to it). Each
    /// block's writeback is started as it is written (<see cref="Writeback.StartRange"/>), so the
    /// fsync waits for the last blocks only, not the whole file.</summary>
    public static async Task<ContentDigest> CopyAsync(string source, string destination, CancellationToken ct, UnixFileMode? createMode = null, Action<long>? onBytes = null)
    {
        await using var input = OpenRead(source);
        await using var output = createMode is { } mode
            ? new FileStream(destination, PrivateFiles.CreateNew(bufferSize: 1, mode: mode))
            : new FileStream(destination, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.Asynchronous);
        // Only where writeback can be started (Linux): elsewhere the stream's handle is left as it was.
        Microsoft.Win32.SafeHandles.SafeFileHandle? handle = Writeback.Available ? output.SafeFileHandle : null;
        long started = 0;
        ContentDigest digest = await CopyAsync(input, output, ct, total =>
        {
            if (handle is not null)
            {
                Writeback.StartRange(handle, started, total - started);
                started = total;
            }
            onBytes?.Invoke(total);
        }).ConfigureAwait(false);
        output.Flush(flushToDisk: true);
        return digest;
    }

    /// <summary>Copies a stream to another, hashing as it goes; <paramref name="onBytes"/> gets the
    /// bytes copied so far after each block (progress within a large file).</summary>
    public static async Task<ContentDigest> CopyAsync(Stream input, Stream output, CancellationToken ct, Action<long>? onBytes = null)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        long total = 0;
        try
        {
            int read;
            while ((read = await input.ReadAsync(buffer.AsMemory(0, BufferSize), ct).ConfigureAwait(false)) > 0)
            {
                hash.AppendData(buffer, 0, read);
                await output.WriteAsync(buffer.AsMemory(0, read), ct).ConfigureAwait(false);
                total += read;
                onBytes?.Invoke(total);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        return new ContentDigest(total, Convert.ToHexString(hash.GetHashAndReset()).ToLowerInvariant());
    }

    /// <summary>Hashes a file's current content.</summary>
    public static async Task<ContentDigest> HashAsync(string path, CancellationToken ct)
    {
        await using var input = OpenRead(path);
        return await HashAsync(input, ct).ConfigureAwait(false);
    }

    /// <summary>Hashes a stream to its end.</summary>
    public static Task<ContentDigest> HashAsync(Stream input, CancellationToken ct) => CopyAsync(input, Stream.Null, ct);

    /// <summary>Opens a regular file for a sequential read that tolerates concurrent writers and
    /// renames; a FIFO, device or socket is refused (<see cref="SpecialFiles"/>), never waited on.</summary>
    public static FileStream OpenRead(string path) => SpecialFiles.OpenRegular(path);
}
