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
internal sealed class RepositoryChecker(Repository repo, PackPrehash? prehash)
{
    private readonly List<CheckIssue> _errors = new();
    private readonly List<CheckIssue> _warnings = new();

    private readonly Dictionary<string, string> _damaged = new(StringComparer.Ordinal);

    private void Error(CheckIssue i) { lock (_errors) { _errors.Add(i); } }

    private void Damaged(string packId, string why) { lock (_damaged) { _damaged.TryAdd(packId, why); } }

    private async Task<DamagedPackMarker?> ReadMarkerAsync(string key, CancellationToken ct)
    {
        try
        {
            byte[] bytes = await Repository.GetBytesAsync(repo.Backend, key, ct, 64 * 1024).ConfigureAwait(false);
            return RepositoryJson.Deserialize<DamagedPackMarker>(bytes);
        }
        catch (Exception e) when (e is JsonException or StorageNotFoundException or RepositoryIntegrityException)
        {
            return null;
        }
    }

    private static string MarkerReason(DamagedPackMarker? m) =>
        m is null ? "no reason recorded" : $"{SafePath.Printable(m.Reason ?? "")}, {m.DetectedAt:u} on {SafePath.Printable(m.Host ?? "")}";

    /// <summary>What is wrong with <paramref name="name"/> naming <paramref name="m"/>, or null when it fits.</summary>
    internal static string? RefProblem(string name, RepositoryManifest m)
    {
        string[] parts = name.Split('/');
        string kind = BackupKinds.ToName(m.Kind);
        switch (parts[0])
        {
            case "wal" when parts.Length == 3:
                // The segment id is the name's first 9 digits: NNNNNNNNN, NNNNNNNNN_g<n> (a raft
                // generation; formerly .g<n>) and NNNNNNNNN_partial-<observed> (a partial) all name segment N.
                string id = parts[2].Length >= 9 ? parts[2][..9] : parts[2];
                if (m.Kind != BackupKind.WalSegment) { return $"that is a {kind} backup, not a WAL segment"; }
                if (m.Namespace != parts[1]) { return $"that segment belongs to namespace '{m.Namespace}'"; }
                if (m.Segment is null || m.Segment.SegmentId.ToString("D9", System.Globalization.CultureInfo.InvariantCulture) != id)
                {
                    return $"that backup holds segment {m.Segment?.SegmentId.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "(none)"}";
                }
                return null;
            case "object" when parts.Length == 4:
                if (m.Kind != BackupKind.Object) { return $"that is a {kind} backup, not an object backup"; }
                if (m.Dir != parts[1] || m.Object != parts[2]) { return $"that is a backup of '{m.Dir}/{m.Object}'"; }
                return null;
            case "snapshot" when parts.Length == 3:
                if (m.Kind != BackupKind.StoreSnapshot) { return $"that is a {kind} backup, not a store snapshot"; }
                if (m.Namespace != parts[1]) { return $"that snapshot belongs to namespace '{m.Namespace}'"; }
                return null;
            default:
                return null;
        }
    }

    /// <summary>Per namespace, the sealed segments the refs <c>wal/&lt;ns&gt;/&lt;id&gt;</c> name (what
    /// point-in-time recovery sees) must have consecutive ids and log indexes: a hole is a WalGap,
    /// which a restore across it would fail on.</summary>
    private void CheckWalContinuity(IReadOnlyList<RepositoryRef> refs, Dictionary<string, RepositoryManifest> facts)
    {
        var segments = new Dictionary<string, SortedDictionary<long, RepositorySegment>>(StringComparer.Ordinal);
        foreach (RepositoryRef r in refs)
        {
            string[] parts = r.Name.Split('/');
            if (parts.Length != 3 || parts[0] != "wal" || parts[2].Length != 9 || !facts.TryGetValue(r.ManifestId, out RepositoryManifest? m)
                || RefProblem(r.Name, m) is not null || m.Segment is not { Sealed: true } seg)
            {
                continue;
            }
            if (!segments.TryGetValue(parts[1], out SortedDictionary<long, RepositorySegment>? ids))
            {
                segments[parts[1]] = ids = new SortedDictionary<long, RepositorySegment>();
            }
            ids.TryAdd(seg.SegmentId, seg);
        }
        foreach ((string ns, SortedDictionary<long, RepositorySegment> ids) in segments.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            RepositorySegment? prev = null;
            foreach (RepositorySegment seg in ids.Values)
            {
                if (prev is not null && seg.SegmentId != prev.SegmentId + 1)
                {
                    long from = prev.SegmentId + 1, to = seg.SegmentId - 1;
                    Error(new CheckIssue("WalGap",
                        $"The WAL archive of namespace '{ns}' has no segment{(from == to ? $" {from}" : $"s {from}..{to}")} between {prev.SegmentId} and {seg.SegmentId}: point-in-time recovery across the hole fails. Ship the missing segments if a WAL still has them, else take a new snapshot.",
                        RepositoryLayout.RefsPrefix + WalRefPrefix(ns)));
                }
                else if (prev is not null && !(prev.FirstLogIndex == 0 && prev.EntryCount == 0) && !(seg.FirstLogIndex == 0 && seg.EntryCount == 0)
                    && seg.FirstLogIndex != prev.FirstLogIndex + prev.EntryCount)
                {
                    Error(new CheckIssue("WalGap",
                        $"The WAL archive of namespace '{ns}': segment {seg.SegmentId} starts at log index {seg.FirstLogIndex}, but segment {prev.SegmentId} ends at {prev.FirstLogIndex + prev.EntryCount - 1}. Point-in-time recovery across them fails.",
                        RepositoryLayout.RefsPrefix + WalRefPrefix(ns)));
                }
                prev = seg;
            }
        }
    }

    private static string WalRefPrefix(string ns) => $"wal/{ns}/";

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
            if (RepositoryLayout.PackIdOf(o.Key) is not { } id)
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
                    Damaged(p.Id, $"pack {p.Id} has {size} bytes, its index says {p.Size}");
                }
            }
        }
        // Temp files of interrupted puts: garbage, reclaimed by prune and repair.
        await foreach (StoredObject left in StorageLeftovers.List(b, ct).ConfigureAwait(false))
        {
            _warnings.Add(new CheckIssue("TempFileLeftover",
                $"'{left.Key}' ({left.Size} bytes) is a temp file an interrupted write left; Remove-ExpiredBackup and Repair-BackupRepository remove it once it is older than the grace period.", left.Key));
        }

        // Lock objects that are no lock (garbage, a FIFO or device planted under a lock's name):
        // every lock check ignores them; prune and repair remove them.
        foreach (string key in await RepositoryLock.ListUnreadableAsync(b, TimeProvider.System, ct).ConfigureAwait(false))
        {
            _warnings.Add(new CheckIssue("LockUnreadable",
                $"'{key}' is not a lock document (damaged, empty, or not a regular file); lock checks ignore it, and Remove-ExpiredBackup and Repair-BackupRepository remove it.", key));
        }

        // Packs found damaged earlier (by a check with read-data, a restore, a backup under -Force).
        await foreach (StoredObject o in b.ListAsync(RepositoryLayout.DamagedPrefix, ct).ConfigureAwait(false))
        {
            string id = o.Key[RepositoryLayout.DamagedPrefix.Length..];
            if (indexedPacks.ContainsKey(id) && packSizes.ContainsKey(id))
            {
                Error(new CheckIssue("PackDamaged",
                    $"Pack {id} was found damaged ({MarkerReason(await ReadMarkerAsync(o.Key, ct).ConfigureAwait(false))}). New backups store its chunks again; run Repair-BackupRepository to salvage what is intact and remove it.",
                    RepositoryLayout.PackKey(id)));
            }
            else
            {
                _warnings.Add(new CheckIssue("DamagedMarkerStale", $"'{o.Key}' marks a pack that is not indexed or no longer exists; Repair-BackupRepository removes the marker.", o.Key));
            }
        }
        foreach (string id in packSizes.Keys.Where(id => !indexedPacks.ContainsKey(id)))
        {
            _warnings.Add(new CheckIssue("PackUnreferenced", $"Pack {id} is in no index (left by an interrupted backup); it is unused garbage that prune removes.", RepositoryLayout.PackKey(id)));
        }

        // Read data, on every core, while the manifests, refs and WAL continuity are checked below
        // on this thread: that part reads and parses every manifest (0.2-0.7 s for a few backups of
        // 5,000 files) and left the pack workers' cores idle when it ran first.
        var badChunks = new Dictionary<ChunkId, string>();
        var manifestIds = new List<string>();
        var goodManifests = new HashSet<string>(StringComparer.Ordinal);
        int refCount = 0;
        using var readCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        Task<long> reading = readData ? ReadPacksAsync(indexedPacks, packSizes, badChunks, progress, readCts.Token) : Task.FromResult(0L);
        try
        {
            await CheckManifestsAsync().ConfigureAwait(false);
        }
        catch
        {
            await readCts.CancelAsync().ConfigureAwait(false);
            await reading.ContinueWith(_ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default).ConfigureAwait(false);
            throw;
        }
        long bytesRead = await reading.ConfigureAwait(false);
        if (badChunks.Count > 0)
        {
            await ReportAffectedAsync(badChunks, goodManifests, ct).ConfigureAwait(false);
        }

        async Task CheckManifestsAsync()
        {
            // Manifests.
            await foreach (StoredObject o in b.ListAsync(RepositoryLayout.SnapshotsPrefix, ct).ConfigureAwait(false))
            {
                storedBytes += o.Size;
                manifestIds.Add(o.Key[RepositoryLayout.SnapshotsPrefix.Length..]);
            }
            var facts = new Dictionary<string, RepositoryManifest>(StringComparer.Ordinal);
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
                facts[id] = m with { Files = [] };
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

            // Refs: each must point at an existing manifest of what its name says (restores find backups
            // by ref), and the WAL segments PITR sees through them must be contiguous.
            var manifestSet = manifestIds.ToHashSet(StringComparer.Ordinal);
            IReadOnlyList<RepositoryRef> refs = await repo.ListRefsAsync("", ct).ConfigureAwait(false);
            foreach (RepositoryRef r in refs)
            {
                refCount++;
                if (!manifestSet.Contains(r.ManifestId))
                {
                    Error(new CheckIssue("RefDangling", $"Ref '{r.Name}' points at backup {r.ManifestId}, which does not exist. Repair-BackupRepository removes it.", RepositoryLayout.RefKey(r.Name, r.ManifestId), r.ManifestId));
                }
                else if (facts.TryGetValue(r.ManifestId, out RepositoryManifest? m) && RefProblem(r.Name, m) is { } problem)
                {
                    Error(new CheckIssue("RefMismatch", $"Ref '{r.Name}' points at backup {r.ManifestId}, but {problem}. A restore by that name would restore the wrong backup; remove the ref (it was altered or written by a faulty tool).",
                        RepositoryLayout.RefKey(r.Name, r.ManifestId), r.ManifestId));
                }
            }
            var named = refs.Select(r => r.ManifestId).ToHashSet(StringComparer.Ordinal);
            // Object backups are found by id as well; snapshots and WAL segments only by their refs.
            foreach ((string id, RepositoryManifest m) in facts.Where(kv => !named.Contains(kv.Key) && kv.Value.Kind != BackupKind.Object).OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                var issue = new CheckIssue("RefMissing",
                    $"Backup {id} ({BackupKinds.ToName(m.Kind)} of '{m.Namespace ?? $"{m.Dir}/{m.Object}"}') has no ref, so restores that look backups up by name do not see it{(m.Kind == BackupKind.Object ? "" : " (point-in-time recovery skips it)")}. Repair-BackupRepository writes its ref again.",
                    RepositoryLayout.ManifestKey(id), id);
                // A warning: the backup itself is whole and restorable by id. A hole it leaves in the WAL
                // that point-in-time recovery sees is the WalGap error below.
                _warnings.Add(issue);
            }
            CheckWalContinuity(refs, facts);
        }
        // What was found damaged is recorded, so the next backup stores those chunks again instead of
        // deduplicating against them, and readers try other copies first (best effort: a read-only
        // credential still gets the report).
        foreach ((string id, string why) in _damaged.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            await repo.MarkDamagedAsync(id, why, ct, bestEffort: true).ConfigureAwait(false);
        }

        return new RepositoryCheckReport(b.Location, readData, _errors.ToList(), _warnings.ToList(), packSizes.Count, indexCount, manifestIds.Count, refCount,
            index.ChunkCount, storedBytes, bytesRead);
    }

    /// <summary>Reads and verifies every indexed pack that exists, one per core, largest first
    /// (longest-processing-time order: the workers then finish together instead of one reading
    /// the last 16 MiB pack alone). Returns the bytes read.</summary>
    private async Task<long> ReadPacksAsync(Dictionary<string, IndexPack> indexedPacks, Dictionary<string, long> packSizes,
        Dictionary<ChunkId, string> badChunks, IProgress<OperationProgress>? progress, CancellationToken ct)
    {
        // From here the workers hash what the prehash has not (it would compete for the same cores).
        prehash?.Stop();
        long bytesRead = 0;
        var ordered = indexedPacks.Values.Where(p => packSizes.ContainsKey(p.Id))
            .OrderByDescending(p => packSizes[p.Id]).ThenBy(p => p.Id, StringComparer.Ordinal).ToList();
        int done = 0;
        await Parallel.ForEachAsync(ordered, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, Environment.ProcessorCount), CancellationToken = ct }, async (p, c) =>
        {
            long n = await VerifyPackAsync(p, badChunks, c).ConfigureAwait(false);
            Interlocked.Add(ref bytesRead, n);
            int d = Interlocked.Increment(ref done);
            progress?.Report(new OperationProgress("Check repository", $"Read {d} of {ordered.Count} packs", d, ordered.Count, p.Id));
        }).ConfigureAwait(false);
        return bytesRead;
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
            Damaged(p.Id, why);
            lock (badChunks)
            {
                foreach (ChunkEntry c in chunks)
                {
                    badChunks.TryAdd(c.Id, why);
                }
            }
        }
        ContentDigest? hashed = prehash is not null && prehash.TryGet(p.Id, out ContentDigest d) ? d : null;
        PackRead? read = await StreamPackAsync(p, (stored, f) => VerifyFrame(stored.AsSpan(0, f.Length), f, p, BadChunks), BadChunks, ct, hashed).ConfigureAwait(false);
        if (read is null)
        {
            return 0;
        }
        if (!read.HashMatches)
        {
            Error(new CheckIssue("PackCorrupt", $"Pack {p.Id} fails its SHA-256 (its bytes changed after it was written).", key));
            Damaged(p.Id, $"pack {p.Id} fails its SHA-256");
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
    /// (in a pooled buffer, valid during the call) to <paramref name="frame"/>. Null when the pack is missing.
    /// <paramref name="hashed"/>: the pack's size and SHA-256 taken earlier in this check
    /// (<see cref="PackPrehash"/>); its bytes are then not hashed again, and a pack whose length now
    /// differs from what was hashed fails its hash.</summary>
    private async Task<PackRead?> StreamPackAsync(IndexPack p, Action<byte[], FrameEntry> frame, Action<IEnumerable<ChunkEntry>, string> badChunks, CancellationToken ct,
        ContentDigest? hashed = null)
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
        catch (StorageIOException e) when (!e.IsTransient)
        {
            // Not readable as an object at all (e.g. not a regular file): damaged, like a missing pack.
            Error(new CheckIssue("PackUnreadable", $"Pack {p.Id} cannot be read: {e.Message}", RepositoryLayout.PackKey(p.Id)));
            Damaged(p.Id, $"pack {p.Id} cannot be read ({e.Message})");
            return null;
        }
        using var packHash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long position = 0;
        // Reads count bytes into buffer (fewer only where the pack ends) and hashes them.
        async Task<bool> ReadAsync(byte[] buffer, int count)
        {
            int n = await stream.ReadAtLeastAsync(buffer.AsMemory(0, count), count, throwOnEndOfStream: false, ct).ConfigureAwait(false);
            if (hashed is null)
            {
                packHash.AppendData(buffer, 0, n);
            }
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
                byte[] stored = BlockPool.Shared.Rent((int)Math.Max(1, Math.Max(f.Length, gap)));
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
                    BlockPool.Shared.Return(stored);
                }
            }
            await stream.CopyToAsync(rest, ct).ConfigureAwait(false);
        }
        packHash.AppendData(rest.GetBuffer(), 0, (int)rest.Length);
        position += rest.Length;
        bool matches = hashed is { } h ? h.Sha256 == p.Id && h.Bytes == position : Hex.Encode(packHash.GetHashAndReset()) == p.Id;
        return new PackRead(position, matches, rest.ToArray());
    }

    private static bool FrameHashMatches(ReadOnlySpan<byte> stored, FrameEntry f) => Hex.Encode(SHA256.HashData(stored)) == f.Sha256;

    private static string FrameHashFailure(FrameEntry f, IndexPack p) => $"the frame at offset {f.Offset} of pack {p.Id} fails its SHA-256";

    /// <summary>Checks one stored frame: that it decodes to its plain length and every chunk id. On
    /// any failure its SHA-256 decides the message (changed bytes, or bytes that never were right).</summary>
    private void VerifyFrame(ReadOnlySpan<byte> stored, FrameEntry f, IndexPack p, Action<IEnumerable<ChunkEntry>, string> badChunks)
    {
        BlobCodec codec = repo.Codec;
        byte[] plain = BlockPool.Shared.Rent(Math.Max(1, f.PlainLength));
        byte[]? scratch = codec.Encrypted ? BlockPool.Shared.Rent(f.Length) : null;
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
            BlockPool.Shared.Return(plain);
            if (scratch is not null)
            {
                BlockPool.Shared.Return(scratch);
            }
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
            PackTrailer? t = RepositoryJson.Deserialize<PackTrailer>(repo.Codec.DecodeBlob(data.Slice(start, tlen), BlobKind.PackTrailer));
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
