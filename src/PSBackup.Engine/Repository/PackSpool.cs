using System.Security.Cryptography;
using PSBackup.Engine.Storage;

namespace PSBackup.Engine.Repository;

/// <summary>One pack being assembled on disk, not in memory. A pack is named by the SHA-256 of its
/// bytes, known only once its last frame and trailer are written, and an object store has no
/// rename, so the bytes must wait somewhere until then; holding them in memory cost ~18 MiB per
/// pack, two per writer (docs/design.md, Performance, "Write path: packs streamed to disk").
/// Frames are appended as they arrive and hashed on the way; then <see cref="CommitAsync"/> stores
/// the pack under its id:
/// <list type="bullet">
/// <item>a repository folder (<see cref="LocalBackend"/>): the spool is a temp-named file in the
/// repository's <c>packs/</c> folder, committed by fsync and rename, as any put (no second copy of
/// the bytes; a killed run leaves a leftover temp file that prune and repair reclaim);</item>
/// <item>any other backend: an unnamed temp file of this process (unlinked at once on Unix, delete
/// on close on Windows, so nothing is left if the process dies), uploaded with a normal put, as
/// restic spools its packs (internal/repository/packer_manager.go).</item>
/// </list></summary>
internal sealed class PackSpool : IDisposable
{
    private readonly IStorageBackend _backend;
    private readonly LocalBackend? _local;
    private readonly FileStream _file;
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private bool _done;

    private PackSpool(IStorageBackend backend, LocalBackend? local, FileStream file)
    {
        _backend = backend;
        _local = local;
        _file = file;
    }

    /// <summary>Bytes appended so far: the offset of the next frame.</summary>
    public long Length { get; private set; }

    public static PackSpool Create(IStorageBackend backend)
    {
        ArgumentNullException.ThrowIfNull(backend);
        if (backend is LocalBackend local)
        {
            return new PackSpool(backend, local, local.CreateStaging(RepositoryLayout.PacksPrefix.TrimEnd('/')));
        }
        string path = Path.Combine(Path.GetTempPath(), $"psbackup-pack-{Guid.NewGuid():N}.tmp");
        FileStreamOptions options = PrivateFiles.CreateNew(bufferSize: 0, options: OperatingSystem.IsWindows() ? FileOptions.DeleteOnClose : FileOptions.None);
        options.Access = FileAccess.ReadWrite;
        var file = new FileStream(path, options);
        if (!OperatingSystem.IsWindows())
        {
            try
            {
                File.Delete(path); // the open handle keeps the bytes; a killed process leaves nothing
            }
            catch
            {
                file.Dispose();
                throw;
            }
        }
        return new PackSpool(backend, null, file);
    }

    /// <summary>Appends <paramref name="bytes"/> (one write, no buffering) and hashes them.</summary>
    public void Append(ReadOnlySpan<byte> bytes)
    {
        _file.Write(bytes);
        if (_local is not null && Writeback.Available)
        {
            // Linux: the kernel starts writing the bytes just appended back to the disk, so the
            // fsync at commit waits for the last frames only: measured on a 10 MiB pack of one WAL
            // segment, that fsync went from ~8 ms to under 2 ms. Durability is unchanged (the fsync
            // still decides it); a full backup's time did not move. Elsewhere, or where the kernel
            // has no such call, nothing is started and the fsync writes it all.
            Writeback.StartRange(_file.SafeFileHandle, Length, bytes.Length);
        }
        _hash.AppendData(bytes);
        Length += bytes.Length;
    }

    /// <summary>The pack id: the SHA-256 of every byte appended.</summary>
    public string FinishId() => Hex.Encode(_hash.GetHashAndReset());

    /// <summary>Stores the pack under <paramref name="key"/>: durable when this returns.</summary>
    public async Task CommitAsync(string key, CancellationToken ct)
    {
        ObjectDisposedException.ThrowIf(_done, this);
        if (_local is not null)
        {
            _done = true;
            _local.CommitStaged(_file, key);
            return;
        }
        _file.Position = 0;
        await _backend.PutAsync(key, _file, Length, ct).ConfigureAwait(false);
    }

    /// <summary>Closes the spool; a local one not committed is deleted.</summary>
    public void Dispose()
    {
        _hash.Dispose();
        if (_done)
        {
            return;
        }
        _done = true;
        string name = _file.Name;
        _file.Dispose();
        if (_local is not null)
        {
            Durable.TryDelete(name);
        }
    }
}
