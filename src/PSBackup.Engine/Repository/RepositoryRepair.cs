using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using PSBackup.Engine.Events;
using PSBackup.Engine.Storage;

namespace PSBackup.Engine.Repository;

/// <summary>What Repair-BackupRepository repairs, and from where.</summary>
public sealed record RepairBackupRepositoryOptions(RepositoryTarget Repository)
{
    /// <summary>Folders or files that still hold the original data (a live object, a namespace's
    /// <c>wal/</c>, a store file): every chunk the repository lacks is cut from them again (both
    /// chunking profiles) and stored. Only regular files are read.</summary>
    public IReadOnlyList<string>? SourcePath { get; init; }

    /// <summary>Verify every pack, not only those known to be damaged (what Test-BackupRepository
    /// -ReadData reads), so damage nobody has seen yet is repaired too.</summary>
    public bool ReadData { get; init; }

    /// <summary>Temp files of interrupted writes older than this are removed (a running write's are younger).</summary>
    public TimeSpan TempFileGracePeriod { get; init; } = TimeSpan.FromHours(1);
}

/// <summary>A backup file that is still not restorable after a repair.</summary>
public sealed record UnrepairedFile(string BackupId, string? Namespace, string? Dir, string? Object, string File, string Message);

/// <summary>What Repair-BackupRepository found and did (or, under -WhatIf, would do: <see cref="Applied"/> false).</summary>
public sealed record RepairResult
{
    public required string Repository { get; init; }
    /// <summary>False under -WhatIf (or when declined): the counts say what would be done.</summary>
    public required bool Applied { get; init; }
    /// <summary>Packs whose bytes were read and verified.</summary>
    public required int PacksVerified { get; init; }
    /// <summary>Packs found damaged (their intact chunks are salvaged, then the pack is removed).</summary>
    public required IReadOnlyList<string> DamagedPacks { get; init; }
    /// <summary>Packs an index named that do not exist (their entries are dropped).</summary>
    public required IReadOnlyList<string> MissingPacks { get; init; }
    /// <summary>Packs no index named, indexed again from their trailers.</summary>
    public required int PacksReindexed { get; init; }
    /// <summary>Intact chunks of damaged packs stored again.</summary>
    public required long ChunksSalvaged { get; init; }
    /// <summary>Chunks cut from -SourcePath that the repository lacked, stored again.</summary>
    public required long ChunksRestored { get; init; }
    public required long StoredBytes { get; init; }
    public required int IndexObjectsWritten { get; init; }
    public required int IndexObjectsRemoved { get; init; }
    public required int PacksRemoved { get; init; }
    /// <summary>Refs that pointed at no backup, or at a backup their name does not fit.</summary>
    public required int RefsRemoved { get; init; }
    /// <summary>Refs written for backups that had none.</summary>
    public required int RefsWritten { get; init; }
    public required int TempFilesRemoved { get; init; }
    /// <summary>Backup files still not restorable (give -SourcePath while the data exists, or take new backups).</summary>
    public required IReadOnlyList<UnrepairedFile> Unrepaired { get; init; }
    /// <summary>Manifests that cannot be read (Remove-ExpiredBackup removes them).</summary>
    public required IReadOnlyList<string> DamagedManifests { get; init; }
    public bool Repaired => Unrepaired.Count == 0 && DamagedManifests.Count == 0;
    /// <summary>Seconds the operation took (a number: ConvertTo-Json writes it as one).</summary>
    public required double Duration { get; init; }
}

/// <summary>Repair-BackupRepository (restic's <c>repair index</c> + <c>repair packs</c> + dangling refs):
/// under an exclusive lock, it verifies the packs known damaged (all with -ReadData), stores the intact
/// chunks of damaged packs again, cuts what is still missing from -SourcePath, rebuilds the index from
/// the packs that are sound (their index entries, or their trailers for packs no index names), then
/// removes the damaged packs, the old index objects, dangling and misfit refs and stale temp files,
/// and writes refs for backups that lost theirs. Order: new data, new index, then removals, so an
/// interrupted repair leaves a repository at least as restorable as before.</summary>
public static class RepositoryRepair
{
    private const string Activity = "Repair-BackupRepository";

    public static Task<RepairResult> RepairAsync(RepairBackupRepositoryOptions options, OperationContext context) =>
        OperationRecorder.RunAsync(new OperationScope { Operation = Activity, Category = "repair", Target = options?.Repository?.Location, History = false },
            context, c => RepairCoreAsync(options!, c), r => new OperationOutcome(r.StoredBytes, r.Repaired || !r.Applied, r.Repaired ? null : "RepairIncomplete",
                r.Repaired ? null : $"{r.Unrepaired.Count} file(s) and {r.DamagedManifests.Count} manifest(s) are still not restorable"));

    private sealed class PackPlan(string id, long size)
    {
        public string Id { get; } = id;
        public long Size { get; } = size;
        public IReadOnlyList<FrameEntry>? Frames { get; set; }
        public bool Indexed { get; set; }
        public bool Marked { get; set; }
        public bool Damaged { get; set; }
        public bool Verified { get; set; }
    }

    private static async Task<RepairResult> RepairCoreAsync(RepairBackupRepositoryOptions options, OperationContext context)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(context);
        CancellationToken ct = context.CancellationToken;
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        RepositoryTarget target = options.Repository ?? throw new InvalidInputException("InvalidRepository", "No repository was given. Give a folder path or s3://bucket/prefix.");
        var sources = new List<string>();
        foreach (string p in options.SourcePath ?? [])
        {
            if (string.IsNullOrWhiteSpace(p))
            {
                throw new InvalidInputException("InvalidPath", "A -SourcePath is empty. Give folders or files that hold the original data.", p);
            }
            string full = Path.GetFullPath(p);
            if (!Directory.Exists(full) && !File.Exists(full))
            {
                throw new NotFoundException("SourceNotFound", $"The source '{full}' does not exist. Give folders or files that still hold the original data.", full);
            }
            sources.Add(full);
        }
        if (options.TempFileGracePeriod < TimeSpan.Zero)
        {
            throw new InvalidInputException("InvalidDuration", "The temp file grace period must not be negative.");
        }

        // Exclusive: no backup deduplicates against a pack this repair is about to remove.
        await using OpenRepository open = await RepositoryConnector.OpenForWriteAsync(target, RepositoryLockMode.Exclusive, Activity, context).ConfigureAwait(false);
        Repository repo = open.Repository;
        IStorageBackend b = repo.Backend;
        if (open.Lock is not null)
        {
            await RepositoryLock.RemoveStaleAsync(b, context.Clock, ct).ConfigureAwait(false);
        }

        // 1. What is there: packs, index entries, damage markers.
        context.Report(Activity, "Listing packs and index objects", 0, 0);
        var packs = new Dictionary<string, PackPlan>(StringComparer.Ordinal);
        await foreach (StoredObject o in b.ListAsync(RepositoryLayout.PacksPrefix, ct).ConfigureAwait(false))
        {
            if (RepositoryLayout.PackIdOf(o.Key) is { } id)
            {
                packs[id] = new PackPlan(id, o.Size);
            }
        }
        var oldIndexKeys = new List<string>();
        var missing = new SortedSet<string>(StringComparer.Ordinal);
        var chunkLengths = new Dictionary<ChunkId, int>();
        await foreach (StoredObject o in b.ListAsync(RepositoryLayout.IndexPrefix, ct).ConfigureAwait(false))
        {
            oldIndexKeys.Add(o.Key);
            IndexObject idx;
            try
            {
                idx = await repo.ReadIndexObjectAsync(o.Key, ct).ConfigureAwait(false);
            }
            catch (RepositoryIntegrityException)
            {
                continue; // replaced by what the packs' trailers say
            }
            foreach (IndexPack p in idx.Packs)
            {
                foreach (ChunkEntry c in p.Frames.SelectMany(f => f.Chunks))
                {
                    chunkLengths.TryAdd(c.Id, c.Length); // of lost packs too: where a source must be cut
                }
                if (!packs.TryGetValue(p.Id, out PackPlan? plan))
                {
                    missing.Add(p.Id);
                }
                else if (plan.Frames is null)
                {
                    plan.Indexed = true;
                    if (plan.Size == p.Size)
                    {
                        plan.Frames = p.Frames;
                    }
                    else
                    {
                        plan.Damaged = true; // its size changed: the trailer and the frames decide what is left
                    }
                }
            }
        }
        var markers = new List<string>();
        await foreach (StoredObject o in b.ListAsync(RepositoryLayout.DamagedPrefix, ct).ConfigureAwait(false))
        {
            markers.Add(o.Key);
            if (packs.TryGetValue(o.Key[RepositoryLayout.DamagedPrefix.Length..], out PackPlan? plan))
            {
                plan.Marked = true;
            }
        }

        // 2. Frames of packs no index names (or whose index entry no longer fits) from their trailers.
        int reindexed = 0;
        foreach (PackPlan plan in packs.Values.Where(p => p.Frames is null).OrderBy(p => p.Id, StringComparer.Ordinal))
        {
            ct.ThrowIfCancellationRequested();
            plan.Frames = await ReadTrailerAsync(repo, plan, ct).ConfigureAwait(false);
            if (plan.Frames is not null && !plan.Indexed)
            {
                reindexed++;
            }
        }

        // 3. Verify: damaged-looking packs always, every pack with -ReadData. A pack whose bytes hash
        // to its id is whole; otherwise every frame is read and every chunk id recomputed.
        // Intact chunks of damaged packs: where they are (re-read when stored, so damaged packs are
        // never held in memory); chunks damaged in some frame.
        var salvage = new Dictionary<ChunkId, (PackPlan Pack, FrameEntry Frame)>();
        var lost = new HashSet<ChunkId>();
        var toVerify = packs.Values.Where(p => options.ReadData || p.Marked || p.Damaged || p.Frames is null).OrderBy(p => p.Id, StringComparer.Ordinal).ToList();
        int verified = 0;
        foreach (PackPlan plan in toVerify)
        {
            ct.ThrowIfCancellationRequested();
            context.Report(Activity, $"Verifying pack {plan.Id}", verified, toVerify.Count, plan.Id);
            verified++;
            plan.Verified = true;
            if (await PackHashMatchesAsync(b, plan, ct).ConfigureAwait(false))
            {
                if (plan.Frames is null)
                {
                    plan.Damaged = true; // whole, but without a readable trailer: nothing can index it
                }
                else
                {
                    plan.Damaged = false;
                    plan.Marked = false;
                }
                continue;
            }
            plan.Damaged = true;
            foreach (FrameEntry f in plan.Frames ?? [])
            {
                foreach (ChunkId id in await IntactChunksAsync(repo, plan, f, null, ct).ConfigureAwait(false) is { } good ? good : [])
                {
                    salvage.TryAdd(id, (plan, f));
                }
                lost.UnionWith(f.Chunks.Select(c => c.Id).Where(c => !salvage.ContainsKey(c)));
            }
        }
        var damagedPacks = packs.Values.Where(p => p.Damaged || p.Marked).Select(p => p.Id).Order(StringComparer.Ordinal).ToList();
        var kept = packs.Values.Where(p => !p.Damaged && !p.Marked && p.Frames is not null).OrderBy(p => p.Id, StringComparer.Ordinal).ToList();

        // 4. What the backups need that no kept pack holds.
        context.Report(Activity, "Reading manifests", 0, 0);
        var available = new HashSet<ChunkId>();
        foreach (PackPlan p in kept)
        {
            foreach (FrameEntry f in p.Frames!)
            {
                foreach (ChunkEntry c in f.Chunks)
                {
                    available.Add(c.Id);
                }
            }
        }
        var manifests = new Dictionary<string, RepositoryManifest>(StringComparer.Ordinal);
        var damagedManifests = new List<string>();
        await foreach (StoredObject o in b.ListAsync(RepositoryLayout.SnapshotsPrefix, ct).ConfigureAwait(false))
        {
            string id = o.Key[RepositoryLayout.SnapshotsPrefix.Length..];
            try
            {
                manifests[id] = await repo.ReadManifestAsync(id, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is RepositoryIntegrityException or InvalidInputException)
            {
                damagedManifests.Add($"{o.Key}: {e.Message}");
            }
        }
        var needed = new HashSet<ChunkId>(manifests.Values.SelectMany(m => m.Files).SelectMany(f => f.Chunks));
        var lacking = new HashSet<ChunkId>(needed.Where(c => !available.Contains(c)));
        int salvageable = salvage.Keys.Count(lacking.Contains);

        // 5. Ask once, then write: new data first.
        string summary = $"verify {verified} pack(s); store {salvageable} salvaged chunk(s){(sources.Count > 0 ? $" and the lacking ones found in {sources.Count} source(s)" : "")}; rebuild the index over {kept.Count} pack(s); remove {damagedPacks.Count} damaged pack(s)";
        bool apply = context.ShouldProcess(repo.Location, $"Repair repository ({summary})");
        long salvaged = 0, restored = 0, stored = 0;
        int indexWritten = 0, indexRemoved = 0, packsRemoved = 0, refsRemoved = 0, refsWritten = 0, tempsRemoved = 0;
        var newIndexKeys = new HashSet<string>(StringComparer.Ordinal);
        if (apply)
        {
            // The damaged packs are out of use from here on: the writer stores their chunks anew.
            foreach (string id in damagedPacks)
            {
                if (repo.Index.Pack(id) is { } p)
                {
                    p.State = PackState.Damaged;
                }
            }
            var storeFromSource = new HashSet<ChunkId>(lacking);
            await using (BackupWriter writer = new(repo, new BackupInfo { Kind = BackupKind.Object, Dir = "repair", Object = "repair" }, context.Clock)
            {
                StoreOnly = id =>
                {
                    lock (storeFromSource)
                    {
                        return storeFromSource.Remove(id);
                    }
                },
            })
            {
                // Frame by frame, so one decoded frame is held at a time.
                foreach (var frame in salvage.Where(kv => lacking.Contains(kv.Key)).GroupBy(kv => kv.Value.Frame).OrderBy(g => g.First().Value.Pack.Id, StringComparer.Ordinal))
                {
                    var want = frame.Select(kv => kv.Key).ToHashSet();
                    (PackPlan pack, FrameEntry f) = frame.First().Value;
                    await IntactChunksAsync(repo, pack, f, async (id, plain, offset, length) =>
                    {
                        if (want.Contains(id) && lacking.Remove(id))
                        {
                            await writer.AddChunkAsync(id, plain, offset, length, ct).ConfigureAwait(false);
                            salvaged++;
                        }
                    }, ct).ConfigureAwait(false);
                }
                if (lacking.Count > 0 && sources.Count > 0)
                {
                    int n = 0;
                    foreach (PackPlan p in packs.Values)
                    {
                        foreach (ChunkEntry c in (p.Frames ?? []).SelectMany(f => f.Chunks))
                        {
                            chunkLengths.TryAdd(c.Id, c.Length);
                        }
                    }
                    ILookup<string, IReadOnlyList<long>> cutsByName = CutsOfLackingFiles(manifests.Values, lacking, chunkLengths);
                    foreach (string file in SourceFiles(sources, ct))
                    {
                        if (lacking.Count == 0)
                        {
                            break;
                        }
                        context.Report(Activity, $"Reading {file}", 0, 0, file);
                        // Where the backups cut a file of this name (known from the index even when its
                        // pack is lost), then by content with each profile, then as a WAL segment
                        // (header chunk, content from offset 64) when the index is lost too.
                        var ways = new List<(IReadOnlyList<long>? Cuts, ChunkingProfile Profile, bool Wal)>();
                        ways.AddRange(cutsByName[Path.GetFileName(file)].Select(c => ((IReadOnlyList<long>?)c, ChunkingProfile.Default, false)));
                        ways.Add((null, ChunkingProfile.Default, false));
                        ways.Add((null, ChunkingProfile.Store, false));
                        if (Wal.WalFormat.TryParseSegmentFileName(Path.GetFileName(file), out _))
                        {
                            ways.Add((null, ChunkingProfile.Default, true));
                        }
                        foreach ((IReadOnlyList<long>? cuts, ChunkingProfile profile, bool wal) in ways)
                        {
                            if (lacking.Count == 0)
                            {
                                break;
                            }
                            int before;
                            lock (storeFromSource)
                            {
                                before = storeFromSource.Count;
                            }
                            try
                            {
                                await AddSourceAsync(writer, $"source/{n++}", file, cuts, profile, wal, ct).ConfigureAwait(false);
                            }
                            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                            {
                                break; // unreadable now: the other sources may still have the data
                            }
                            lock (storeFromSource)
                            {
                                restored += before - storeFromSource.Count;
                                lacking.IntersectWith(storeFromSource);
                            }
                        }
                    }
                }
                (_, stored, _) = await writer.CommitChunksAsync(ct).ConfigureAwait(false);
            }
            // The writer indexed its new packs; the kept packs get new index objects, 64 packs each.
            await foreach (StoredObject o in b.ListAsync(RepositoryLayout.IndexPrefix, ct).ConfigureAwait(false))
            {
                if (!oldIndexKeys.Contains(o.Key))
                {
                    newIndexKeys.Add(o.Key);
                }
            }
            foreach (PackPlan[] batch in kept.Chunk(BackupWriter.IndexFlushPacks))
            {
                byte[] blob = repo.Codec.EncodeJson(new IndexObject(1, batch.Select(p => new IndexPack(p.Id, p.Size, p.Frames!)).ToList()));
                string key = RepositoryLayout.IndexKey(Hex.Encode(SHA256.HashData(blob)));
                if (!newIndexKeys.Contains(key))
                {
                    await Repository.PutBytesAsync(b, key, blob, ct).ConfigureAwait(false);
                    stored += blob.Length;
                    indexWritten++;
                }
                newIndexKeys.Add(key);
            }
            indexWritten = newIndexKeys.Count;

            // 6. Removals, once the new index covers everything kept.
            foreach (string key in oldIndexKeys.Where(k => !newIndexKeys.Contains(k)))
            {
                await b.DeleteAsync(key, ct).ConfigureAwait(false);
                indexRemoved++;
            }
            foreach (string id in damagedPacks)
            {
                await b.DeleteAsync(RepositoryLayout.PackKey(id), ct).ConfigureAwait(false);
                packsRemoved++;
            }
            foreach (string key in markers)
            {
                await b.DeleteAsync(key, ct).ConfigureAwait(false);
            }
            (refsRemoved, refsWritten) = await FixRefsAsync(repo, manifests, ct).ConfigureAwait(false);
            DateTimeOffset cutoff = context.UtcNow - options.TempFileGracePeriod;
            await foreach (StoredObject left in StorageLeftovers.List(b, ct).ConfigureAwait(false))
            {
                if (left.LastModified is { } t && t <= cutoff)
                {
                    await StorageLeftovers.Delete(b, left.Key, ct).ConfigureAwait(false);
                    tempsRemoved++;
                }
            }
            await repo.ReloadIndexAsync(ct).ConfigureAwait(false);
        }
        else
        {
            salvaged = salvageable;
            lacking.ExceptWith(salvage.Keys);
        }

        // 7. What is still not restorable.
        var unrepaired = new List<UnrepairedFile>();
        foreach ((string id, RepositoryManifest m) in manifests.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            foreach (RepositoryFile f in m.Files)
            {
                ChunkId? gone = apply ? f.Chunks.Cast<ChunkId?>().FirstOrDefault(c => !repo.Index.Contains(c!.Value))
                    : f.Chunks.Cast<ChunkId?>().FirstOrDefault(c => lacking.Contains(c!.Value));
                if (gone is { } c)
                {
                    unrepaired.Add(new UnrepairedFile(id, m.Namespace, m.Dir, m.Object, f.Path,
                        $"Backup {id}, file '{f.Path}': chunk {c} is {(lost.Contains(c) ? "damaged in every copy" : "in no pack")}. Give -SourcePath with the original data while it still exists, or take a new backup."));
                }
            }
        }
        context.Report(Activity, "Repair finished", 1, 1);
        return new RepairResult
        {
            Repository = target.Location,
            Applied = apply,
            PacksVerified = verified,
            DamagedPacks = damagedPacks,
            MissingPacks = missing.ToList(),
            PacksReindexed = reindexed,
            ChunksSalvaged = salvaged,
            ChunksRestored = restored,
            StoredBytes = stored,
            IndexObjectsWritten = indexWritten,
            IndexObjectsRemoved = indexRemoved,
            PacksRemoved = packsRemoved,
            RefsRemoved = refsRemoved,
            RefsWritten = refsWritten,
            TempFilesRemoved = tempsRemoved,
            Unrepaired = unrepaired,
            DamagedManifests = damagedManifests,
            Duration = Durations.Seconds(System.Diagnostics.Stopwatch.GetElapsedTime(start)),
        };
    }

    /// <summary>The error both front ends report when backups are still not restorable after a repair.</summary>
    public static IntegrityException IncompleteError(RepairResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        string first = result.Unrepaired.Count > 0 ? result.Unrepaired[0].Message : result.DamagedManifests.Count > 0 ? result.DamagedManifests[0] : "";
        return new IntegrityException("RepairIncomplete",
            $"The repository at {result.Repository} was repaired as far as its packs allow, but {result.Unrepaired.Count} backup file(s) and {result.DamagedManifests.Count} manifest(s) are still not restorable (first: {first}). Run it again with -SourcePath while the original data exists, take new backups, and remove damaged manifests with Remove-ExpiredBackup.",
            result.Repository);
    }

    /// <summary>The pack's frames from its trailer, or null when the trailer is unreadable or does not fit the pack.</summary>
    private static async Task<IReadOnlyList<FrameEntry>?> ReadTrailerAsync(Repository repo, PackPlan plan, CancellationToken ct)
    {
        if (plan.Size < 20)
        {
            return null;
        }
        try
        {
            int tail = (int)Math.Min(plan.Size, 256 * 1024);
            byte[] end = await ReadRangeAsync(repo.Backend, plan.Id, plan.Size - tail, tail, ct).ConfigureAwait(false);
            int n = end.Length;
            if (!end.AsSpan(n - 8).SequenceEqual(RepositoryLayout.PackMagic))
            {
                return null;
            }
            long tlen = BinaryPrimitives.ReadUInt32LittleEndian(end.AsSpan(n - 12));
            if (tlen <= 0 || tlen + 20 > plan.Size || tlen > BlobLimits.MaxIndex)
            {
                return null;
            }
            byte[] trailer = tlen + 20 <= n ? end : await ReadRangeAsync(repo.Backend, plan.Id, plan.Size - tlen - 20, tlen + 20, ct).ConfigureAwait(false);
            int m = trailer.Length;
            int startAt = m - 12 - (int)tlen;
            if (BinaryPrimitives.ReadUInt32LittleEndian(trailer.AsSpan(startAt - 8)) != RepositoryLayout.TrailerSkippableMagic
                || BinaryPrimitives.ReadUInt32LittleEndian(trailer.AsSpan(startAt - 4)) != (uint)(tlen + 12))
            {
                return null;
            }
            PackTrailer? t = RepositoryJson.Deserialize<PackTrailer>(repo.Codec.DecodeBlob(trailer.AsSpan(startAt, (int)tlen), BlobKind.PackTrailer));
            long dataEnd = plan.Size - tlen - 20;
            if (t?.Frames is null || RepositoryIndex.ValidateFrames(t.Frames, dataEnd) is not null)
            {
                return null;
            }
            return t.Frames;
        }
        catch (Exception e) when (e is JsonException or InvalidDataException or EndOfStreamException or StorageNotFoundException or StorageIOException { IsTransient: false })
        {
            return null;
        }
    }

    private static async Task<byte[]> ReadRangeAsync(IStorageBackend b, string packId, long offset, long length, CancellationToken ct)
    {
        byte[] buffer = new byte[length];
        await using Stream s = await b.GetRangeAsync(RepositoryLayout.PackKey(packId), offset, length, ct).ConfigureAwait(false);
        await s.ReadExactlyAsync(buffer, ct).ConfigureAwait(false);
        return buffer;
    }

    private static async Task<bool> PackHashMatchesAsync(IStorageBackend b, PackPlan plan, CancellationToken ct)
    {
        try
        {
            await using Stream s = await b.GetAsync(RepositoryLayout.PackKey(plan.Id), ct).ConfigureAwait(false);
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            byte[] buffer = ArrayPool<byte>.Shared.Rent(1 << 20);
            try
            {
                int n;
                while ((n = await s.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
                {
                    sha.AppendData(buffer, 0, n);
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
            return Hex.Encode(sha.GetHashAndReset()) == plan.Id;
        }
        catch (Exception e) when (e is EndOfStreamException or StorageNotFoundException or StorageIOException { IsTransient: false })
        {
            return false;
        }
    }

    /// <summary>Reads one frame of a damaged pack and returns the chunks whose recomputed id matches (a
    /// frame may fail its hash and still hold intact chunks when unencrypted), handing each to
    /// <paramref name="onIntact"/> with the decoded frame. Null when the frame cannot be read or decoded.</summary>
    private static async Task<List<ChunkId>?> IntactChunksAsync(Repository repo, PackPlan plan, FrameEntry f,
        Func<ChunkId, byte[], int, int, Task>? onIntact, CancellationToken ct)
    {
        byte[] stored;
        try
        {
            stored = await ReadRangeAsync(repo.Backend, plan.Id, f.Offset, f.Length, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is EndOfStreamException or StorageNotFoundException or StorageIOException { IsTransient: false })
        {
            return null;
        }
        byte[] plain = new byte[Math.Max(1, f.PlainLength)];
        try
        {
            if (repo.Codec.DecodeInPlace(stored, plain.AsSpan(0, f.PlainLength)) != f.PlainLength)
            {
                return null;
            }
        }
        catch (InvalidDataException)
        {
            return null;
        }
        var intact = new List<ChunkId>();
        foreach (ChunkEntry c in f.Chunks)
        {
            if (repo.Codec.ComputeId(plain.AsSpan(c.Offset, c.Length)) == c.Id)
            {
                intact.Add(c.Id);
                if (onIntact is not null)
                {
                    await onIntact(c.Id, plain, c.Offset, c.Length).ConfigureAwait(false);
                }
            }
        }
        return intact;
    }

    /// <summary>Removes refs naming no manifest or a manifest their name does not fit, and writes the
    /// ref a manifest of each kind gets at commit when none names it.</summary>
    private static async Task<(int Removed, int Written)> FixRefsAsync(Repository repo, Dictionary<string, RepositoryManifest> manifests, CancellationToken ct)
    {
        var present = new HashSet<string>(StringComparer.Ordinal);
        await foreach (StoredObject o in repo.Backend.ListAsync(RepositoryLayout.SnapshotsPrefix, ct).ConfigureAwait(false))
        {
            present.Add(o.Key[RepositoryLayout.SnapshotsPrefix.Length..]);
        }
        int removed = 0, written = 0;
        var named = new HashSet<string>(StringComparer.Ordinal);
        foreach (RepositoryRef r in await repo.ListRefsAsync("", ct).ConfigureAwait(false))
        {
            bool dangling = !present.Contains(r.ManifestId);
            bool misfit = manifests.TryGetValue(r.ManifestId, out RepositoryManifest? m) && RepositoryChecker.RefProblem(r.Name, m) is not null;
            if (dangling || misfit)
            {
                await repo.Backend.DeleteAsync(RepositoryLayout.RefKey(r.Name, r.ManifestId), ct).ConfigureAwait(false);
                removed++;
            }
            else
            {
                named.Add(r.ManifestId);
            }
        }
        foreach ((string id, RepositoryManifest m) in manifests.Where(kv => !named.Contains(kv.Key)).OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            string? name = DefaultRefName(m);
            if (name is not null)
            {
                await Repository.PutBytesAsync(repo.Backend, RepositoryLayout.RefKey(name, id), [], ct).ConfigureAwait(false);
                written++;
            }
        }
        return (removed, written);
    }

    /// <summary>The ref the writers give a backup of this kind (null where there is no such rule).</summary>
    internal static string? DefaultRefName(RepositoryManifest m) => m.Kind switch
    {
        BackupKind.WalSegment when m.Namespace is not null && m.Segment is { Sealed: true } s =>
            $"wal/{m.Namespace}/{s.SegmentId.ToString("D9", CultureInfo.InvariantCulture)}",
        BackupKind.StoreSnapshot when m.Namespace is not null =>
            $"snapshot/{m.Namespace}/{m.CreatedAt.UtcDateTime.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture)}",
        BackupKind.Object when m.Dir is not null && m.Object is not null =>
            $"object/{m.Dir}/{m.Object}/{m.CreatedAt.UtcDateTime.ToString("yyyyMMdd'T'HHmmss", CultureInfo.InvariantCulture)}",
        _ => null,
    };

    /// <summary>Regular files under the sources (links and special files are never read).</summary>
    /// <summary>For each file name, where the backups cut their files of that name that need a lacking
    /// chunk: the chunk boundaries, from the chunk lengths the index (or a pack trailer) gives. Files
    /// with a chunk of unknown length are left out (a content cut is tried for them).</summary>
    private static ILookup<string, IReadOnlyList<long>> CutsOfLackingFiles(IEnumerable<RepositoryManifest> manifests, HashSet<ChunkId> lacking, Dictionary<ChunkId, int> lengths)
    {
        var result = new List<(string Name, IReadOnlyList<long> Cuts)>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (RepositoryFile f in manifests.SelectMany(m => m.Files))
        {
            if (f.Chunks.Count < 2 || !f.Chunks.Any(lacking.Contains) || !f.Chunks.All(lengths.ContainsKey))
            {
                continue;
            }
            var cuts = new List<long>(f.Chunks.Count - 1);
            long at = 0;
            foreach (ChunkId c in f.Chunks.Take(f.Chunks.Count - 1))
            {
                at += lengths[c];
                cuts.Add(at);
            }
            string name = Path.GetFileName(f.Path);
            if (seen.Add(name + "|" + string.Join(',', cuts)))
            {
                result.Add((name, cuts));
            }
        }
        return result.ToLookup(r => r.Name, r => r.Cuts, StringComparer.Ordinal);
    }

    /// <summary>Reads one source file into the repair's writer: cut at <paramref name="cuts"/>, as a
    /// WAL segment, or by content with <paramref name="profile"/>.</summary>
    private static async Task AddSourceAsync(BackupWriter writer, string path, string file, IReadOnlyList<long>? cuts, ChunkingProfile profile, bool wal, CancellationToken ct)
    {
        if (cuts is null && !wal)
        {
            await writer.AddFileFromPathAsync(path, file, profile, ct).ConfigureAwait(false);
            return;
        }
        await using FileStream fs = SpecialFiles.OpenRegular(file);
        await (cuts is not null ? writer.AddFileCutAtAsync(path, fs, cuts, ct) : writer.AddWalSegmentAsync(path, fs, null, ct)).ConfigureAwait(false);
    }

    private static IEnumerable<string> SourceFiles(List<string> sources, CancellationToken ct)
    {
        foreach (string source in sources)
        {
            if (File.Exists(source))
            {
                if (SpecialFiles.IsRegularFile(source))
                {
                    yield return source;
                }
                continue;
            }
            var pending = new Stack<string>();
            pending.Push(source);
            while (pending.Count > 0)
            {
                ct.ThrowIfCancellationRequested();
                string dir = pending.Pop();
                IEnumerable<FileSystemInfo> entries;
                try
                {
                    entries = new DirectoryInfo(dir).EnumerateFileSystemInfos().OrderBy(e => e.Name, StringComparer.Ordinal).ToList();
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    continue;
                }
                foreach (FileSystemInfo e in entries)
                {
                    if (SafePath.IsLink(e))
                    {
                        continue;
                    }
                    if (e is DirectoryInfo)
                    {
                        pending.Push(e.FullName);
                    }
                    else if (SpecialFiles.IsRegularFile(e.FullName))
                    {
                        yield return e.FullName;
                    }
                }
            }
        }
    }
}
