using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text.Json;
using PSBackup.Engine.Storage;

namespace PSBackup.Engine.Repository;

/// <summary>One finding of a check: a stable code, a message naming the problem and fix, and the
/// object, backup and file it concerns where known.</summary>
public sealed record CheckIssue(string Code, string Message, string? ObjectKey = null, string? ManifestId = null, string? Path = null);

/// <summary>The result of <see cref="Repository.CheckAsync"/>. <see cref="Ok"/> when there are no errors;
/// warnings (unreferenced packs: garbage an interrupted backup left) do not fail a check.</summary>
public sealed record RepositoryCheckReport(
    string Location,
    bool ReadData,
    IReadOnlyList<CheckIssue> Errors,
    IReadOnlyList<CheckIssue> Warnings,
    int Packs,
    int Indexes,
    int Manifests,
    int Refs,
    long Chunks,
    long StoredBytes,
    long BytesRead)
{
    public bool Ok => Errors.Count == 0;
}

/// <summary>Structure check (config, keys, indexes against the pack listing, manifests against the
/// index, refs against manifests) and, with read-data, every indexed pack downloaded and every
/// frame and chunk verified. Damage is mapped back to the backups and files it affects.</summary>
internal sealed class RepositoryChecker(Repository repo)
{
    private readonly List<CheckIssue> _errors = new();
    private readonly List<CheckIssue> _warnings = new();

    private void Error(CheckIssue i) { lock (_errors) { _errors.Add(i); } }

    public async Task<RepositoryCheckReport> RunAsync(bool readData, IProgress<OperationProgress>? progress, CancellationToken ct)
    {
        IStorageBackend b = repo.Backend;
        // Config and keys.
        try
        {
            byte[] cfg = await Repository.GetBytesAsync(b, RepositoryLayout.ConfigKey, ct).ConfigureAwait(false);
            Repository.ParseConfig(cfg, b.Location);
            if (Hex.Encode(SHA256.HashData(cfg)) != repo.ConfigSha256)
            {
                Error(new CheckIssue("ConfigChanged", "The config changed since the repository was opened.", RepositoryLayout.ConfigKey));
            }
        }
        catch (Exception e) when (e is PSBackupException or StorageNotFoundException)
        {
            Error(new CheckIssue("ConfigInvalid", e.Message, RepositoryLayout.ConfigKey));
        }
        foreach (var (key, obj, problem) in await Repository.ReadKeysAsync(b, ct).ConfigureAwait(false))
        {
            if (obj is null)
            {
                Error(new CheckIssue("KeyCorrupt", $"The key object {key} is damaged: {problem}. Restore it from a copy of the repository.", key));
            }
            else if (obj.ConfigSha256 != repo.ConfigSha256)
            {
                _warnings.Add(new CheckIssue("KeyStale", $"The key object {key} belongs to another config (left by an interrupted init); it is never used.", key));
            }
        }

        // Packs present.
        var packSizes = new Dictionary<string, long>(StringComparer.Ordinal);
        long storedBytes = 0;
        await foreach (StoredObject o in b.ListAsync(RepositoryLayout.PacksPrefix, ct).ConfigureAwait(false))
        {
            storedBytes += o.Size;
            string name = o.Key[RepositoryLayout.PacksPrefix.Length..];
            int slash = name.IndexOf('/');
            string id = slash == 2 ? name[3..] : "";
            if (!Hex.IsSha256Hex(id) || name[..2] != id[..2])
            {
                _warnings.Add(new CheckIssue("StrayObject", $"'{o.Key}' is not a pack name; it is ignored.", o.Key));
                continue;
            }
            packSizes[id] = o.Size;
        }

        // Indexes.
        var index = new RepositoryIndex();
        var indexedPacks = new Dictionary<string, IndexPack>(StringComparer.Ordinal);
        var damagedIndexes = new List<string>();
        int indexCount = 0;
        await foreach (StoredObject o in b.ListAsync(RepositoryLayout.IndexPrefix, ct).ConfigureAwait(false))
        {
            indexCount++;
            storedBytes += o.Size;
            if (!Hex.IsSha256Hex(o.Key[RepositoryLayout.IndexPrefix.Length..]))
            {
                _warnings.Add(new CheckIssue("StrayObject", $"'{o.Key}' is not an index name; it is ignored.", o.Key));
                continue;
            }
            IndexObject idx;
            try
            {
                idx = await repo.ReadIndexObjectAsync(o.Key, ct).ConfigureAwait(false);
            }
            catch (RepositoryIntegrityException e)
            {
                damagedIndexes.Add(o.Key);
                Error(new CheckIssue("IndexCorrupt", e.Message + " Backups using its chunks are listed below; re-running those backups re-indexes the data.", o.Key));
                continue;
            }
            foreach (IndexPack p in idx.Packs)
            {
                indexedPacks.TryAdd(p.Id, p);
                index.Add(p);
                if (!packSizes.TryGetValue(p.Id, out long size))
                {
                    Error(new CheckIssue("PackMissing", $"Pack {p.Id} is listed in {o.Key} but does not exist.", RepositoryLayout.PackKey(p.Id)));
                }
                else if (size != p.Size)
                {
                    Error(new CheckIssue("PackSizeMismatch", $"Pack {p.Id} has {size} bytes; {o.Key} says {p.Size}.", RepositoryLayout.PackKey(p.Id)));
                }
            }
        }
        foreach (string id in packSizes.Keys.Where(id => !indexedPacks.ContainsKey(id)))
        {
            _warnings.Add(new CheckIssue("PackUnreferenced", $"Pack {id} is in no index (left by an interrupted backup); it is unused garbage that prune removes.", RepositoryLayout.PackKey(id)));
        }

        // Manifests.
        var manifestIds = new List<string>();
        await foreach (StoredObject o in b.ListAsync(RepositoryLayout.SnapshotsPrefix, ct).ConfigureAwait(false))
        {
            storedBytes += o.Size;
            manifestIds.Add(o.Key[RepositoryLayout.SnapshotsPrefix.Length..]);
        }
        var goodManifests = new HashSet<string>(StringComparer.Ordinal);
        var usedPacks = new HashSet<string>(StringComparer.Ordinal);
        foreach (string id in manifestIds)
        {
            ct.ThrowIfCancellationRequested();
            RepositoryManifest m;
            try
            {
                if (!Hex.IsSha256Hex(id))
                {
                    throw new RepositoryIntegrityException("ManifestInvalid", $"'{RepositoryLayout.ManifestKey(id)}' is not a manifest name.", RepositoryLayout.ManifestKey(id), id);
                }
                m = await repo.ReadManifestAsync(id, ct).ConfigureAwait(false);
            }
            catch (RepositoryIntegrityException e)
            {
                Error(new CheckIssue(e.ErrorId, e.Message, e.ObjectKey, id, e.Path));
                continue;
            }
            goodManifests.Add(id);
            foreach (RepositoryFile f in m.Files)
            {
                long sum = 0;
                bool missing = false;
                foreach (ChunkId c in f.Chunks)
                {
                    if (index.TryGet(c, out RepositoryIndex.ChunkLocation loc))
                    {
                        sum += loc.Length;
                        usedPacks.Add(loc.Frame.Pack.Id);
                    }
                    else if (!missing)
                    {
                        missing = true;
                        string why = damagedIndexes.Count > 0 ? $" (damaged index objects: {string.Join(", ", damagedIndexes)})" : "";
                        Error(new CheckIssue("ChunkMissing", $"Backup {id}, file '{f.Path}': chunk {c} is in no readable index{why}. This file cannot be restored.", RepositoryLayout.ManifestKey(id), id, f.Path));
                    }
                }
                if (!missing && sum != f.Size)
                {
                    Error(new CheckIssue("FileSizeMismatch", $"Backup {id}, file '{f.Path}': its chunks add up to {sum} bytes, the manifest says {f.Size}.", RepositoryLayout.ManifestKey(id), id, f.Path));
                }
            }
        }
        foreach (string id in indexedPacks.Keys.Where(id => !usedPacks.Contains(id) && packSizes.ContainsKey(id)))
        {
            _warnings.Add(new CheckIssue("PackUnused", $"Pack {id} is indexed but no backup uses it (an interrupted backup or a removed one); prune reclaims it.", RepositoryLayout.PackKey(id)));
        }

        // Refs.
        int refCount = 0;
        foreach (RepositoryRef r in await repo.ListRefsAsync("", ct).ConfigureAwait(false))
        {
            refCount++;
            if (!manifestIds.Contains(r.ManifestId))
            {
                Error(new CheckIssue("RefDangling", $"Ref '{r.Name}' points at backup {r.ManifestId}, which does not exist.", RepositoryLayout.RefKey(r.Name, r.ManifestId), r.ManifestId));
            }
        }

        // Read data.
        long bytesRead = 0;
        if (readData)
        {
            var badChunks = new Dictionary<ChunkId, string>();
            var ordered = indexedPacks.Values.Where(p => packSizes.ContainsKey(p.Id)).OrderBy(p => p.Id, StringComparer.Ordinal).ToList();
            int done = 0;
            await Parallel.ForEachAsync(ordered, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, Environment.ProcessorCount), CancellationToken = ct }, async (p, c) =>
            {
                long n = await VerifyPackAsync(p, badChunks, c).ConfigureAwait(false);
                Interlocked.Add(ref bytesRead, n);
                int d = Interlocked.Increment(ref done);
                progress?.Report(new OperationProgress("Check repository", $"Read {d} of {ordered.Count} packs", d, ordered.Count, p.Id));
            }).ConfigureAwait(false);
            if (badChunks.Count > 0)
            {
                await ReportAffectedAsync(badChunks, goodManifests, ct).ConfigureAwait(false);
            }
        }

        return new RepositoryCheckReport(b.Location, readData, _errors.ToList(), _warnings.ToList(), packSizes.Count, indexCount, manifestIds.Count, refCount,
            index.ChunkCount, storedBytes, bytesRead);
    }

    /// <summary>Streams a pack front to back: its SHA-256 against its id, every frame (decode,
    /// every chunk id) as it passes, then the trailer against the index. One stored frame and its
    /// plaintext are held at a time, so memory does not grow with the pack size. A frame's own
    /// SHA-256 is computed only where something failed: the pack hash covers every stored byte and
    /// the chunk ids every plaintext byte, so on a sound pack it would prove nothing more. When the
    /// pack hash fails, the pack is streamed again and every frame hash checked, so damage that
    /// still decodes to the right chunks (which a restore refuses) is named too.</summary>
    private async Task<long> VerifyPackAsync(IndexPack p, Dictionary<ChunkId, string> badChunks, CancellationToken ct)
    {
        string key = RepositoryLayout.PackKey(p.Id);
        void BadChunks(IEnumerable<ChunkEntry> chunks, string why)
        {
            lock (badChunks)
            {
                foreach (ChunkEntry c in chunks)
                {
                    badChunks.TryAdd(c.Id, why);
                }
            }
        }
        PackRead? read = await StreamPackAsync(p, (stored, f) => VerifyFrame(stored.AsSpan(0, f.Length), f, p, BadChunks), BadChunks, ct).ConfigureAwait(false);
        if (read is null)
        {
            return 0;
        }
        if (!read.HashMatches)
        {
            Error(new CheckIssue("PackCorrupt", $"Pack {p.Id} fails its SHA-256 (its bytes changed after it was written).", key));
            await StreamPackAsync(p, (stored, f) =>
            {
                if (!FrameHashMatches(stored.AsSpan(0, f.Length), f))
                {
                    BadChunks(f.Chunks, FrameHashFailure(f, p));
                }
            }, (_, _) => { }, ct).ConfigureAwait(false);
        }
        string? trailerProblem = CheckTrailer(read.Rest, p);
        if (trailerProblem is not null)
        {
            Error(new CheckIssue("PackTrailerInvalid", $"Pack {p.Id}: {trailerProblem}.", key));
        }
        return read.Bytes;
    }

    /// <summary>What streaming a pack found: bytes read, whether they hash to the pack id, and the
    /// bytes after the last frame (the trailer, in a pack that matches its index).</summary>
    private sealed record PackRead(long Bytes, bool HashMatches, byte[] Rest);

    /// <summary>Reads a pack once, hashing every byte, and hands each indexed frame's stored bytes
    /// (in a pooled buffer, valid during the call) to <paramref name="frame"/>. Null when the pack is missing.</summary>
    private async Task<PackRead?> StreamPackAsync(IndexPack p, Action<byte[], FrameEntry> frame, Action<IEnumerable<ChunkEntry>, string> badChunks, CancellationToken ct)
    {
        Stream stream;
        try
        {
            stream = await repo.Backend.GetAsync(RepositoryLayout.PackKey(p.Id), ct).ConfigureAwait(false);
        }
        catch (StorageNotFoundException)
        {
            return null;
        }
        using var packHash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long position = 0;
        // Reads count bytes into buffer (fewer only where the pack ends) and hashes them.
        async Task<bool> ReadAsync(byte[] buffer, int count)
        {
            int n = await stream.ReadAtLeastAsync(buffer.AsMemory(0, count), count, throwOnEndOfStream: false, ct).ConfigureAwait(false);
            packHash.AppendData(buffer, 0, n);
            position += n;
            return n == count;
        }
        using var rest = new MemoryStream();
        await using (stream.ConfigureAwait(false))
        {
            foreach (FrameEntry f in p.Frames.OrderBy(f => f.Offset))
            {
                long gap = f.Offset - position;
                if (gap < 0 || f.Length < 0 || f.Offset + f.Length > p.Size)
                {
                    badChunks(f.Chunks, $"the frame at offset {f.Offset} of pack {p.Id} overlaps another frame or lies outside the pack");
                    continue;
                }
                byte[] stored = ArrayPool<byte>.Shared.Rent((int)Math.Max(1, Math.Max(f.Length, gap)));
                try
                {
                    if (!await ReadAsync(stored, (int)gap).ConfigureAwait(false) || !await ReadAsync(stored, f.Length).ConfigureAwait(false))
                    {
                        badChunks(f.Chunks, $"pack {p.Id} is too short for the frame at {f.Offset}");
                        continue;
                    }
                    frame(stored, f);
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(stored);
                }
            }
            await stream.CopyToAsync(rest, ct).ConfigureAwait(false);
        }
        packHash.AppendData(rest.GetBuffer(), 0, (int)rest.Length);
        position += rest.Length;
        return new PackRead(position, Hex.Encode(packHash.GetHashAndReset()) == p.Id, rest.ToArray());
    }

    private static bool FrameHashMatches(ReadOnlySpan<byte> stored, FrameEntry f) => Hex.Encode(SHA256.HashData(stored)) == f.Sha256;

    private static string FrameHashFailure(FrameEntry f, IndexPack p) => $"the frame at offset {f.Offset} of pack {p.Id} fails its SHA-256";

    /// <summary>Checks one stored frame: that it decodes to its plain length and every chunk id. On
    /// any failure its SHA-256 decides the message (changed bytes, or bytes that never were right).</summary>
    private void VerifyFrame(ReadOnlySpan<byte> stored, FrameEntry f, IndexPack p, Action<IEnumerable<ChunkEntry>, string> badChunks)
    {
        BlobCodec codec = repo.Codec;
        byte[] plain = ArrayPool<byte>.Shared.Rent(Math.Max(1, f.PlainLength));
        byte[] scratch = ArrayPool<byte>.Shared.Rent(f.Length);
        try
        {
            string? frameProblem = null;
            List<ChunkEntry>? wrongIds = null;
            try
            {
                int n = codec.Decode(stored, plain.AsSpan(0, f.PlainLength), scratch);
                if (n != f.PlainLength)
                {
                    frameProblem = $"the frame at offset {f.Offset} of pack {p.Id} has the wrong length";
                }
            }
            catch (InvalidDataException e)
            {
                frameProblem = $"the frame at offset {f.Offset} of pack {p.Id} does not decode ({e.Message})";
            }
            if (frameProblem is null)
            {
                foreach (ChunkEntry c in f.Chunks)
                {
                    if (codec.ComputeId(plain.AsSpan(c.Offset, c.Length)) != c.Id)
                    {
                        (wrongIds ??= new()).Add(c);
                    }
                }
                if (wrongIds is null)
                {
                    return;
                }
            }
            if (!FrameHashMatches(stored, f))
            {
                badChunks(f.Chunks, FrameHashFailure(f, p));
            }
            else if (frameProblem is not null)
            {
                badChunks(f.Chunks, frameProblem);
            }
            else
            {
                foreach (ChunkEntry c in wrongIds!)
                {
                    badChunks([c], $"chunk {c.Id} in pack {p.Id} does not match its id");
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(plain);
            ArrayPool<byte>.Shared.Return(scratch);
        }
    }

    private string? CheckTrailer(ReadOnlySpan<byte> data, IndexPack p)
    {
        int n = data.Length;
        if (n < 20 || !data[(n - 8)..].SequenceEqual(RepositoryLayout.PackMagic))
        {
            return "it does not end with the pack magic";
        }
        int tlen = (int)BinaryPrimitives.ReadUInt32LittleEndian(data[(n - 12)..]);
        int start = n - 12 - tlen;
        if (tlen <= 0 || start - 8 < 0 || BinaryPrimitives.ReadUInt32LittleEndian(data[(start - 8)..]) != RepositoryLayout.TrailerSkippableMagic
            || BinaryPrimitives.ReadUInt32LittleEndian(data[(start - 4)..]) != (uint)(tlen + 12))
        {
            return "its trailer frame header is damaged";
        }
        try
        {
            PackTrailer? t = JsonSerializer.Deserialize<PackTrailer>(repo.Codec.DecodeBlob(data.Slice(start, tlen)), RepositoryJson.Options);
            if (t?.Frames is null || t.Frames.Count != p.Frames.Count || t.Frames.Zip(p.Frames).Any(x => x.First.Offset != x.Second.Offset || x.First.Sha256 != x.Second.Sha256))
            {
                return "its trailer does not match the index";
            }
        }
        catch (Exception e) when (e is JsonException or InvalidDataException)
        {
            return $"its trailer does not decode ({e.Message})";
        }
        return null;
    }

    /// <summary>Names every backup and file that uses a damaged chunk.</summary>
    private async Task ReportAffectedAsync(Dictionary<ChunkId, string> bad, HashSet<string> manifests, CancellationToken ct)
    {
        var reported = new HashSet<ChunkId>();
        foreach (string id in manifests.Order(StringComparer.Ordinal))
        {
            RepositoryManifest m = await repo.ReadManifestAsync(id, ct).ConfigureAwait(false);
            foreach (RepositoryFile f in m.Files)
            {
                foreach (ChunkId c in f.Chunks)
                {
                    if (bad.TryGetValue(c, out string? why))
                    {
                        reported.Add(c);
                        Error(new CheckIssue("DataCorrupt", $"Backup {id}, file '{f.Path}': {why}. This file cannot be restored from this repository.", null, id, f.Path));
                        break;
                    }
                }
            }
        }
        foreach (var (c, why) in bad.Where(kv => !reported.Contains(kv.Key)))
        {
            Error(new CheckIssue("DataCorrupt", $"{why} (no backup uses chunk {c}).", null));
        }
    }
}
