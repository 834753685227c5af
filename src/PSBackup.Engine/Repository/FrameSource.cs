using System.Buffers;
using System.Security.Cryptography;
using PSBackup.Engine.Storage;

namespace PSBackup.Engine.Repository;

/// <summary>What both readers of a manifest's files share (<see cref="ManifestReader"/> streams
/// files in order, <see cref="ParallelRestore"/> writes many at once): finding a chunk's copy,
/// reading stored bytes, checking a frame's SHA-256 before it is decoded, taking a pack that failed
/// out of use, finding other copies of a failed frame's chunks, and errors that name the backup,
/// the file and the pack.</summary>
internal sealed class FrameSource(Repository repo, RepositoryManifest manifest)
{
    public Repository Repository => repo;

    /// <summary>A usable copy of the chunk first; else the first copy at all (its pack may be marked
    /// damaged while this frame is sound; a failed read then tries the others). ChunkMissing when
    /// no index names it.</summary>
    public RepositoryIndex.ChunkLocation Locate(ChunkId id, RepositoryFile file)
    {
        if (!repo.Index.TryGet(id, out RepositoryIndex.ChunkLocation loc) && repo.Index.Locations(id) is [var first, ..])
        {
            loc = first;
        }
        if (loc.Frame is null)
        {
            string damaged = repo.DamagedIndexes.Count > 0 ? $" Damaged index objects: {string.Join(", ", repo.DamagedIndexes)}." : "";
            throw new RepositoryIntegrityException("ChunkMissing",
                $"Backup {manifest.Id}, file '{file.Path}': chunk {id} is not in the repository index.{damaged} Run Test-BackupRepository for details.",
                RepositoryLayout.ManifestKey(manifest.Id), manifest.Id, file.Path);
        }
        return loc;
    }

    /// <summary>Reads <paramref name="into"/>'s length of bytes of a pack at <paramref name="offset"/>.
    /// A pack that is missing or too short is the returned failure (evidence about the pack); storage
    /// that does not answer throws StorageReadFailed (evidence of nothing).</summary>
    public async Task<RepositoryIntegrityException?> ReadAsync(RepositoryIndex.PackInfo pack, long offset, Memory<byte> into, string path, CancellationToken ct)
    {
        try
        {
            await repo.ReadRangeAsync(pack.Key, offset, into, ct).ConfigureAwait(false);
            return null;
        }
        catch (StorageNotFoundException e)
        {
            return Bad("PackMissing", $"pack {pack.Key} is missing", pack, path, e);
        }
        catch (EndOfStreamException e)
        {
            return Bad("PackTruncated", $"pack {pack.Key} is shorter than its index says", pack, path, e);
        }
        catch (StorageIOException e) when (!e.IsTransient)
        {
            return Bad("PackTruncated", $"pack {pack.Key} could not be read at {offset}+{into.Length} ({e.Message})", pack, path, e);
        }
        catch (IOException e) when (e is not FileNotFoundException)
        {
            // The storage failed to answer (after the retries): not evidence about the pack's bytes.
            throw new OperationFailedException("StorageReadFailed",
                $"Backup {manifest.Id}, file '{path}': pack {pack.Key} could not be read from {repo.Location} ({e.Message}). The storage did not answer; nothing is known to be damaged. Check the connection or the disk, then try again.",
                pack.Key, e);
        }
    }

    /// <summary>Checks a frame's stored bytes against the index SHA-256, then decodes them (AES-GCM
    /// authenticates them too when encrypted) into <paramref name="plain"/>; the failure, or null.
    /// An encrypted frame is decrypted in place: <paramref name="stored"/> is the caller's and is
    /// not read again (a restore worker's read buffer; a second buffer of the frame's size for each
    /// of them was 2 MiB a worker).</summary>
    public RepositoryIntegrityException? Decode(Span<byte> stored, RepositoryIndex.FrameInfo fr, Span<byte> plain, string path)
    {
        Span<byte> h = stackalloc byte[32];
        SHA256.HashData(stored, h);
        if (!h.SequenceEqual(fr.Sha256))
        {
            return Bad("FrameCorrupt", $"the frame at offset {fr.Offset} of pack {fr.Pack.Key} fails its SHA-256", fr.Pack, path);
        }
        int n;
        try
        {
            n = repo.Codec.DecodeInPlace(stored, plain[..fr.PlainLength]);
        }
        catch (InvalidDataException e)
        {
            return Bad("FrameCorrupt", $"the frame at offset {fr.Offset} of pack {fr.Pack.Key} does not decode ({e.Message})", fr.Pack, path, e);
        }
        return n == fr.PlainLength ? null
            : Bad("FrameCorrupt", $"the frame at offset {fr.Offset} of pack {fr.Pack.Key} decodes to {n} bytes, not {fr.PlainLength}", fr.Pack, path);
    }

    /// <summary>One frame read and decoded into a rented buffer (the caller returns it); its
    /// failure thrown.</summary>
    public async Task<byte[]> FetchFrameAsync(RepositoryIndex.FrameInfo fr, string path, CancellationToken ct)
    {
        byte[] stored = ArrayPool<byte>.Shared.Rent(Math.Max(fr.Length, 1));
        byte[]? plain = ArrayPool<byte>.Shared.Rent(Math.Max(fr.PlainLength, 1));
        try
        {
            RepositoryIntegrityException? failure = await ReadAsync(fr.Pack, fr.Offset, stored.AsMemory(0, fr.Length), path, ct).ConfigureAwait(false)
                ?? Decode(stored.AsSpan(0, fr.Length), fr, plain, path);
            if (failure is not null)
            {
                throw failure;
            }
            byte[] result = plain;
            plain = null;
            return result;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(stored);
            if (plain is not null)
            {
                ArrayPool<byte>.Shared.Return(plain);
            }
        }
    }

    /// <summary>Takes a pack that failed out of use: missing in this process, or marked damaged (in
    /// memory at once, <c>damaged/&lt;id&gt;</c> best effort) so later reads and writers avoid it.</summary>
    public async Task NoteFailureAsync(RepositoryIndex.PackInfo pack, RepositoryIntegrityException failure, CancellationToken ct)
    {
        if (failure.ErrorId == "PackMissing")
        {
            pack.State = PackState.Missing;
            pack.Problem = $"pack {pack.Id} is missing";
        }
        else
        {
            await repo.MarkDamagedAsync(pack.Id, failure.Message, ct, bestEffort: true).ConfigureAwait(false);
        }
    }

    /// <summary>For each chunk of a frame that failed in <paramref name="failedPack"/>, a sound copy
    /// elsewhere (a later backup stored it again, or repair salvaged it): the decoded frame holding
    /// it and its offset there, in the order given. Frames decoded on the way are kept in
    /// <paramref name="decoded"/> (the caller returns them to the pool). Null when some chunk has no
    /// sound copy.</summary>
    public async Task<List<(byte[] Plain, int Offset)>?> OtherCopiesAsync(RepositoryIndex.PackInfo failedPack, IEnumerable<(ChunkId Id, int Length, string Path)> chunks,
        Dictionary<RepositoryIndex.FrameInfo, byte[]> decoded, CancellationToken ct)
    {
        var found = new List<(byte[], int)>();
        foreach ((ChunkId id, int length, string path) in chunks)
        {
            bool ok = false;
            foreach (RepositoryIndex.ChunkLocation loc in repo.Index.Locations(id))
            {
                if (ReferenceEquals(loc.Frame.Pack, failedPack) || loc.Length != length)
                {
                    continue;
                }
                if (!decoded.TryGetValue(loc.Frame, out byte[]? plain))
                {
                    try
                    {
                        plain = await FetchFrameAsync(loc.Frame, path, ct).ConfigureAwait(false);
                    }
                    catch (RepositoryIntegrityException other)
                    {
                        await NoteFailureAsync(loc.Frame.Pack, other, ct).ConfigureAwait(false);
                        continue;
                    }
                    decoded[loc.Frame] = plain;
                }
                found.Add((plain, loc.Offset));
                ok = true;
                break;
            }
            if (!ok)
            {
                return null;
            }
        }
        return found;
    }

    private RepositoryIntegrityException Bad(string id, string what, RepositoryIndex.PackInfo pack, string path, Exception? inner = null) =>
        new(id, $"Backup {manifest.Id}, file '{path}': {what}. The data cannot be restored from this repository; restore this file from another copy.",
            pack.Key, manifest.Id, path, inner);
}
