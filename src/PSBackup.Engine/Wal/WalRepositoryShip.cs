using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using PSBackup.Engine.Repository;

namespace PSBackup.Engine.Wal;

/// <summary>A WAL gap as recorded in a repository (<c>events/&lt;ns&gt;/&lt;time&gt;-&lt;random&gt;.json</c>),
/// so health checks see gaps that shipping refused even when nobody read the error.</summary>
public sealed record WalGapEvent
{
    public int FormatVersion { get; init; } = 1;
    public string Kind { get; init; } = "wal-gap";
    public required string Namespace { get; init; }
    public required IReadOnlyList<long> MissingSegmentIds { get; init; }
    public required DateTimeOffset DetectedAt { get; init; }
    public required string Host { get; init; }
    public required string Message { get; init; }
}

/// <summary>Invoke-WalShip -Repository: incremental, with no state file. The refs
/// <c>wal/&lt;ns&gt;/&lt;segmentId:D9&gt;</c> say what is archived; every sealed segment not archived yet is
/// verified (parsed, hashed), uploaded in parallel (one backup and one manifest per segment),
/// checked against the hash taken before the upload, and committed with its ref.</summary>
internal static partial class WalRepositoryShip
{
    /// <summary>Segments uploaded at once. Each backup writer already compresses on every core and
    /// holds up to three ~16 MiB packs (being filled, queued, being put), so more segments at once
    /// add memory, not speed: two keep both the serial chunking stage and the upload busy.</summary>
    internal const int Parallelism = 2;

    private const string Activity = "Ship WAL segments";

    public static string RefPrefix(string ns) => $"wal/{ns}/";

    public static string RefName(string ns, long segmentId) => $"wal/{ns}/{segmentId.ToString("D9", CultureInfo.InvariantCulture)}";

    /// <summary>Generation 0 is <c>wal/&lt;ns&gt;/&lt;id:D9&gt;</c>; a raft-mode rewrite of the same id
    /// (log truncation) is archived beside it as <c>wal/&lt;ns&gt;/&lt;id:D9&gt;_g&lt;n&gt;</c>.</summary>
    public static string RefName(string ns, long segmentId, int generation) =>
        generation == 0 ? RefName(ns, segmentId) : $"{RefName(ns, segmentId)}{GenerationMarker}{generation.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>Between the segment id and the generation in a ref. A ref name is a key prefix
    /// (<c>refs/&lt;name&gt;/&lt;manifest&gt;</c>), so what follows the id must sort after '/': then
    /// byte order ("000000012/…" before "000000012_g2/…") and the order of a store that lists by
    /// walking folders (s3rver: folder "000000012" before "000000012_g2") agree. The first
    /// releases wrote ".g" ('.' sorts before '/'), which such a store lists out of byte order and
    /// the S3 backend rightly refuses; those names are still read (<see cref="LegacyGenerationMarker"/>).</summary>
    public const string GenerationMarker = "_g";

    /// <summary>The generation marker of refs written before <see cref="GenerationMarker"/>: read, never written.</summary>
    public const string LegacyGenerationMarker = ".g";

    /// <summary>Parses the part of a WAL ref after <c>wal/&lt;ns&gt;/</c>: "000000012", "000000012_g2"
    /// or the older "000000012.g2". Anything else (partials, other kinds a later shipper adds) is
    /// not a whole segment: false.</summary>
    public static bool TryParseRef(string rest, out long segmentId, out int generation)
    {
        segmentId = 0;
        generation = 0;
        if (rest.Length < 9 || !rest[..9].All(char.IsAsciiDigit))
        {
            return false;
        }
        if (rest.Length > 9)
        {
            bool marked = rest.AsSpan(9).StartsWith(GenerationMarker, StringComparison.Ordinal)
                || rest.AsSpan(9).StartsWith(LegacyGenerationMarker, StringComparison.Ordinal);
            if (rest.Length < 12 || !marked || !rest[11..].All(char.IsAsciiDigit) || rest[11] == '0' ||
                !int.TryParse(rest.AsSpan(11), NumberStyles.None, CultureInfo.InvariantCulture, out generation))
            {
                return false;
            }
        }
        segmentId = long.Parse(rest.AsSpan(0, 9), NumberStyles.None, CultureInfo.InvariantCulture);
        return true;
    }

    /// <summary>The header of one WAL segment's backup, the same for a sealed segment and a partial:
    /// the segment's facts as its header and records give them. <paramref name="complete"/> adds what
    /// only the caller knows (a generation and when it became live; a partial's observation time
    /// and live file size).</summary>
    internal static BackupInfo SegmentBackupInfo(string ns, WalSegmentInfo s, DateTimeOffset createdAt, Func<RepositorySegment, RepositorySegment> complete) => new()
    {
        Kind = BackupKind.WalSegment,
        Namespace = ns,
        CreatedAt = createdAt,
        Segment = complete(new RepositorySegment
        {
            SegmentId = s.SegmentId,
            FirstLogIndex = s.FirstLogIndex,
            EntryCount = s.EntryCount,
            Sealed = s.Sealed,
            CreatedAt = s.CreatedAt,
            LastModifiedAt = s.LastModifiedAt,
            LastLogIndex = s.LastLogIndex,
            FirstRecordTime = s.FirstRecordTime,
            LastRecordTime = s.LastRecordTime,
            PayloadFormat = s.PayloadFormat.ToString(),
            Version = s.Version,
            LogIndexGaps = s.PayloadFormat == WalPayloadFormat.Opaque ? null : s.LogIndexGaps,
        }),
    };

    /// <summary>One ship. With <paramref name="session"/> (the continuous shipper), the repository
    /// stays open between passes and only this pass's lock is taken and released here.</summary>
    public static async Task<WalShipResult> RunAsync(InvokeWalShipOptions options, string ns, string walDir, RepositoryTarget target, OperationContext context,
        WalPassClock? clock = null, WalRepositorySession? session = null)
    {
        OpenRepository open;
        RepositoryLock? held = null;
        // A one-off ship hashes the sealed segments from the start, on another core, while the
        // repository opens (a CLI call's PBKDF2 alone is ~0.1 s); the continuous shipper's
        // repository is open already, and each pass hashes beside its validation.
        await using EarlyHashes? early = session is null ? new EarlyHashes(walDir, ns, options.AfterSegmentId, context.CancellationToken) : null;
        if (session is null)
        {
            open = await RepositoryConnector.OpenForWriteAsync(target, RepositoryLockMode.Shared, "Invoke-WalShip", context, clock).ConfigureAwait(false);
        }
        else
        {
            (open, held) = await session.BeginAsync(context, clock).ConfigureAwait(false);
        }
        try
        {
            WalShipResult result = await RunAsync(options, ns, walDir, target, open, context, clock, session, early).ConfigureAwait(false);
            session?.EndPass();
            return result;
        }
        finally
        {
            if (held is not null)
            {
                await held.DisposeAsync().ConfigureAwait(false);
            }
            if (session is null)
            {
                await open.DisposeAsync().ConfigureAwait(false);
            }
            clock?.Lap(WalPassPhase.Release);
        }
    }

    /// <summary>The refs under <paramref name="prefix"/>: from the session's listing when there is one.</summary>
    internal static async Task<IReadOnlyList<RepositoryRef>> ListRefsAsync(Repository.Repository repo, WalRepositorySession? session, string prefix, DateTimeOffset now, CancellationToken ct) =>
        session is null
            ? await repo.ListRefsAsync(prefix, ct).ConfigureAwait(false)
            : await session.ListRefsAsync(repo, prefix, now, ct).ConfigureAwait(false);

    private static async Task<WalShipResult> RunAsync(InvokeWalShipOptions options, string ns, string walDir, RepositoryTarget target, OpenRepository open, OperationContext context,
        WalPassClock? clock, WalRepositorySession? session, EarlyHashes? early)
    {
        CancellationToken ct = context.CancellationToken;
        Repository.Repository repo = open.Repository;

        // 1. What the repository holds: segment id -> manifest ids, newest generation first
        // (partials and foreign names ignored).
        var archived = new SortedDictionary<long, List<string>>();
        var generationOf = new Dictionary<string, int>(StringComparer.Ordinal);
        string prefix = RefPrefix(ns);
        var partialIds = new HashSet<long>();
        foreach (RepositoryRef r in await ListRefsAsync(repo, session, prefix, context.UtcNow, ct).ConfigureAwait(false))
        {
            if (WalPartialShip.TryParseRef(r.Name[prefix.Length..], out long partialId, out _))
            {
                partialIds.Add(partialId);
            }
            else if (TryParseRef(r.Name[prefix.Length..], out long id, out int generation))
            {
                if (!archived.TryGetValue(id, out List<string>? ids))
                {
                    archived[id] = ids = new List<string>();
                }
                ids.Add(r.ManifestId);
                generationOf[r.ManifestId] = Math.Max(generation, generationOf.GetValueOrDefault(r.ManifestId));
            }
        }
        foreach (List<string> ids in archived.Values)
        {
            ids.Sort((a, b) => generationOf[b].CompareTo(generationOf[a]));
        }
        clock?.Lap(WalPassPhase.Refs);

        // A script may pass the id of a partial as AfterSegmentId (the last id it saw shipped):
        // its sealed segment is shipped anyway (WalPartialShip.AfterUnsealedPartials).
        long after = options.AfterSegmentId;
        foreach (long p in partialIds.Where(p => p <= options.AfterSegmentId && !archived.ContainsKey(p)))
        {
            after = Math.Min(after, p - 1);
        }

        // 2. What the WAL holds: sealed, valid, contiguous segments after AfterSegmentId. Each
        // one's SHA-256 (3., what an archived copy is compared with and the upload must equal) is
        // taken while the records are validated, on the other core, for every segment whose header
        // says sealed: the two passes are CPU-bound (CRC-32C per record, SHA-256), and one after
        // the other they were a third of shipping one 16 MiB segment.
        List<WalSegmentInfo> selected;
        EarlyHashes hashes;
        var known = archived.Keys.ToHashSet();
        early?.Archived(known);
        await using (EarlyHashes? own = early is null ? new EarlyHashes(walDir, ns, after, ct, known) : null)
        {
            hashes = early ?? own!;
            try
            {
                // Archived segments are proven below (by their recorded identity or their SHA-256),
                // so only their headers are read here.
                selected = await Task.Run(() => WalOperations.Select(walDir, ns, after, ct, known), ct).ConfigureAwait(false);
            }
            catch (WalGapException gap)
            {
                throw await RecordGapAsync(open, ns, gap, context).ConfigureAwait(false);
            }
            await hashes.Completion.ConfigureAwait(false);
        }
        ConcurrentDictionary<long, ContentDigest> digests = hashes.Digests;

        // 3. Each one's SHA-256; an archived one must be the same bytes (AlreadyPresent), never
        // different. An archived segment whose size, last-write time and header are those its
        // manifest recorded takes the recorded SHA-256 (RecordedDigest) and is not read; the rest
        // not hashed above (a header sealed since, or an archived one that changed) are hashed now.
        // A WAL keeps its sealed segments, so these are read at once: one manifest each (a small
        // read and decrypt), ~0.13 ms apiece, which one after the other cost a ship over 600 kept
        // segments ~80 ms.
        var manifestsOf = new ConcurrentDictionary<long, List<(string Id, RepositoryManifest M)>>();
        await Parallel.ForEachAsync(selected.Where(s => archived.ContainsKey(s.SegmentId)),
            new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = ct }, async (s, c) =>
        {
            List<string> ids = archived[s.SegmentId];
            var readable = new List<(string Id, RepositoryManifest M)>(ids.Count);
            foreach (string id in ids)
            {
                try
                {
                    readable.Add((id, await repo.ReadManifestAsync(id, c).ConfigureAwait(false)));
                }
                catch (RepositoryIntegrityException e) when (e.ErrorId != "ManifestTooNew")
                {
                    // a damaged manifest: this copy cannot be restored
                }
            }
            manifestsOf[s.SegmentId] = readable;
            if (!digests.ContainsKey(s.SegmentId) && RecordedDigest(s, readable) is { } recorded)
            {
                digests[s.SegmentId] = recorded;
            }
        }).ConfigureAwait(false);
        await Parallel.ForEachAsync(selected.Where(s => !digests.ContainsKey(s.SegmentId)),
            new ParallelOptions { MaxDegreeOfParallelism = Parallelism, CancellationToken = ct }, async (s, c) =>
        {
            digests[s.SegmentId] = await FileCopy.HashAsync(s.Path, c).ConfigureAwait(false);
        }).ConfigureAwait(false);
        var results = new List<ShippedSegment>(selected.Count);
        var toShip = new List<WalSegmentInfo>();
        var newGenerations = new Dictionary<long, (int Generation, DateTimeOffset? LiveFrom)>();
        var again = new Dictionary<long, (int Generation, DateTimeOffset? LiveFrom)>(); // stored again: archived copy damaged
        foreach (WalSegmentInfo s in selected)
        {
            ContentDigest local = digests[s.SegmentId];
            if (!archived.TryGetValue(s.SegmentId, out List<string>? ids))
            {
                toShip.Add(s);
                continue;
            }
            // The same bytes under any generation: already archived — if that copy is still
            // restorable (every chunk in a pack that exists and is not marked damaged, the cheap check
            // done when the repository was opened); when no copy is, and the WAL still has the
            // segment, it is stored again (a second manifest and ref of the same name and bytes, which
            // readers count once). Different bytes: a conflict, unless UnisonDB in raft mode rewrote
            // the sealed segment (log truncation), which is archived as the next generation; the
            // older ones stay for PITR before the rewrite. Damaged manifests are skipped.
            string? same = null;
            (string Id, RepositoryManifest M)? sameDamaged = null;
            RepositoryManifest? newest = null;
            foreach ((string id, RepositoryManifest m) in manifestsOf[s.SegmentId])
            {
                newest ??= m;
                RepositoryFile? f = m.Files.Count == 1 ? m.Files[0] : null;
                if (m.Kind == BackupKind.WalSegment && f is not null && f.Sha256 == local.Sha256 && f.Size == local.Bytes)
                {
                    if (repo.RestoreProblem(m) is null)
                    {
                        same = id;
                        break;
                    }
                    sameDamaged ??= (id, m);
                }
            }
            if (same is null && (sameDamaged is not null || newest is null))
            {
                // Every archived copy of these bytes is damaged (or every manifest is): store again.
                again[s.SegmentId] = sameDamaged is { } d ? (generationOf[d.Id], d.M.Segment?.LiveFrom) : (generationOf[ids[0]], null);
                toShip.Add(s);
                continue;
            }
            if (same is not null)
            {
                int g = generationOf[same];
                results.Add(new ShippedSegment(ns, s.SegmentId, RefName(ns, s.SegmentId, g), local.Bytes, local.Sha256, AlreadyPresent: true)
                {
                    Repository = target.Location,
                    BackupId = same,
                    EntryCount = s.EntryCount,
                    LastLogIndex = s.LastLogIndex,
                    LastRecordTime = s.LastRecordTime,
                });
                continue;
            }
            RepositoryFile? archivedFile = newest is { Files.Count: 1 } ? newest.Files[0] : null;
            if (s.Mode != "raft")
            {
                throw new ConflictException("WalSegmentConflict",
                    $"Segment {s.SegmentId} of namespace '{ns}' is already archived in {repo.Location} (backup {ids[0]}) with different content (SHA-256 {archivedFile?.Sha256 ?? "?"}, {archivedFile?.Size ?? 0} bytes) than the local segment (SHA-256 {local.Sha256}, {local.Bytes} bytes). PSBackup never overwrites an archived segment; nothing was shipped. Only UnisonDB in raft mode rewrites a sealed segment (log truncation), and this one is not a raft segment: investigate which copy is right before shipping again.",
                    RefName(ns, s.SegmentId));
            }
            // Rewritten by raft log truncation: validate the new bytes in full (only the header
            // was read, on the assumption they were archived already).
            WalSegmentInfo full = WalSegmentReader.Inspect(s.Path, ns, s.SegmentId);
            if (!full.Valid || !full.Sealed)
            {
                throw new IntegrityException("WalSegmentCorrupt",
                    $"Segment {s.SegmentId} ({s.Path}) was rewritten (raft log truncation) and {(full.Valid ? "is not sealed" : $"failed validation at offset {full.ErrorOffset}: {full.Error}")}. Nothing was shipped; a corrupt segment is never archived.",
                    s.Path);
            }
            int next = generationOf[ids[0]] + 1;
            newGenerations[s.SegmentId] = (next, LiveFrom(full, newest?.Segment?.LastRecordTime));
            toShip.Add(full);
        }
        toShip.Sort((a, b) => a.SegmentId.CompareTo(b.SegmentId));

        // 4. No hole between what is archived and what is shipped now, in ids or log indexes.
        if (toShip.Count > 0)
        {
            await CheckContinuityAsync(open, ns, archived, toShip, newGenerations.Keys.ToHashSet(), context).ConfigureAwait(false);
        }

        clock?.Lap(WalPassPhase.Select);

        // 5. Ask once per segment, then upload in parallel; each commit is independent, so an
        // interrupted run leaves whole segments archived and the next run ships the rest.
        (int Generation, DateTimeOffset? LiveFrom) GenerationOf(long id) =>
            newGenerations.TryGetValue(id, out var g) ? g : again.GetValueOrDefault(id);
        string RefOf(long id) => RefName(ns, id, GenerationOf(id).Generation);
        var accepted = toShip.Where(s => context.ShouldProcess($"{repo.Location} ({RefOf(s.SegmentId)})",
            newGenerations.TryGetValue(s.SegmentId, out var g) ? $"Ship WAL segment {s.SegmentId} (rewritten by raft log truncation) as generation {g.Generation}"
            : again.ContainsKey(s.SegmentId) ? $"Ship WAL segment {s.SegmentId} again (its archived copy is damaged)"
            : $"Ship WAL segment {s.SegmentId}")).ToList();
        int done = 0;
        var shipped = new ConcurrentBag<ShippedSegment>();
        await Parallel.ForEachAsync(accepted, new ParallelOptions { MaxDegreeOfParallelism = Parallelism, CancellationToken = ct }, async (s, c) =>
        {
            ContentDigest expected = digests[s.SegmentId];
            string refName = RefOf(s.SegmentId);
            (int generation, DateTimeOffset? liveFrom) = GenerationOf(s.SegmentId);
            await using BackupWriter writer = repo.BeginBackup(SegmentBackupInfo(ns, s, context.UtcNow,
                segment => segment with { Generation = generation == 0 ? null : generation, LiveFrom = liveFrom }), context.Clock);
            RepositoryFile f;
            // Chunked like its newest partial (header apart, cut at that partial's chunk
            // boundaries), so the records the partials stored are not stored again.
            IReadOnlyList<long>? splits = null;
            if (partialIds.Contains(s.SegmentId) && await NewestPartialAsync(repo, session, ns, s.SegmentId, context.UtcNow, c).ConfigureAwait(false) is { } newest)
            {
                splits = WalPartialShip.Splits(repo, newest.Files[0]);
            }
            await using (FileStream source = FileCopy.OpenRead(s.Path))
            {
                f = await writer.AddWalSegmentAsync("wal/" + s.FileName, source, splits, c).ConfigureAwait(false);
            }
            if (FileMetadata.TryRead(s.Path) is { } metadata)
            {
                writer.SetMetadata("wal/" + s.FileName, metadata); // a restore gives the segment its mode and owner back
            }
            if (f.Sha256 != expected.Sha256 || f.Size != expected.Bytes)
            {
                throw new IntegrityException("WalShipVerifyFailed",
                    $"Segment {s.SegmentId} of namespace '{ns}' read as SHA-256 {f.Sha256} ({f.Size} bytes) while uploading, not {expected.Sha256} ({expected.Bytes} bytes) as verified before. A sealed segment must not change; nothing of it was committed. Check the disk and the database, then ship again.",
                    s.Path);
            }
            BackupCommitResult commit = await writer.CommitAsync(refName, c).ConfigureAwait(false);
            session?.Added(refName, commit.ManifestId);
            session?.SealedCommitted(s.SegmentId);
            shipped.Add(new ShippedSegment(ns, s.SegmentId, refName, f.Size, f.Sha256, AlreadyPresent: false)
            {
                Repository = target.Location,
                BackupId = commit.ManifestId,
                StoredBytes = commit.StoredBytes,
                EntryCount = s.EntryCount,
                LastLogIndex = s.LastLogIndex,
                LastRecordTime = s.LastRecordTime,
            });
            context.Report(Activity, $"Shipped segment {s.SegmentId}", Interlocked.Increment(ref done), accepted.Count, refName);
        }).ConfigureAwait(false);
        results.AddRange(shipped);
        results.Sort((a, b) => a.SegmentId.CompareTo(b.SegmentId));
        clock?.Lap(WalPassPhase.Sealed);

        // 6. The active segment's valid prefix, once everything before it is archived.
        if (!options.SealedOnly && await ShipPartialAsync(open, ns, walDir, after, archived, selected, context, clock, session).ConfigureAwait(false) is { } partial)
        {
            results.Add(partial with { Repository = target.Location });
        }
        return new WalShipResult(ns, null, results) { Repository = target.Location };
    }

    /// <summary>The content an archived copy recorded, when the local segment is provably that file
    /// still: the same size and last-write time (to the nanosecond where the platform keeps them)
    /// as the manifest recorded after its upload, and the same walfs header (version, created and
    /// last-modified stamps, record count, sealed). walfs never writes a sealed segment again but
    /// for raft log truncation, which rewrites the header; any write through the file system moves
    /// the last-write time. Null otherwise (older manifests record no time or version): then the
    /// segment is hashed and compared byte for byte. A copy damaged on disk without a write keeps
    /// its time and is not caught here, as no archiver re-reads what it archived on each push
    /// (pgBackRest, Litestream); <c>check</c> and a restore prove the archived copy.</summary>
    private static ContentDigest? RecordedDigest(WalSegmentInfo s, List<(string Id, RepositoryManifest M)> manifests)
    {
        if (!s.Valid || !s.Sealed || s.LastModifiedAt is null || FileMetadata.TryRead(s.Path)?.ModifiedNs is not { } modifiedNs)
        {
            return null;
        }
        foreach ((_, RepositoryManifest m) in manifests)
        {
            if (m is { Kind: BackupKind.WalSegment, Files.Count: 1, Segment: { Sealed: true } seg }
                && m.Files[0] is { ModifiedNs: { } recordedNs } f
                && recordedNs == modifiedNs && f.Size == s.Bytes
                && seg.SegmentId == s.SegmentId && seg.EntryCount == s.EntryCount && seg.Version == s.Version
                && seg.CreatedAt == s.CreatedAt && seg.LastModifiedAt == s.LastModifiedAt)
            {
                return new ContentDigest(f.Size, f.Sha256);
            }
        }
        return null;
    }

    /// <summary>The SHA-256s of the sealed segments after an id that the repository does not hold
    /// yet, taken on another core while the ship does other work (<see cref="HashSealedAsync"/>).
    /// Disposing cancels what is left and waits for it, so nothing runs on after the ship.</summary>
    private sealed class EarlyHashes : IAsyncDisposable
    {
        private readonly CancellationTokenSource _cts;
        private readonly TaskCompletionSource<IReadOnlySet<long>> _archived = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <param name="archived">The archived segment ids when already known (the continuous
        /// shipper's pass); otherwise <see cref="Archived"/> tells them once the refs are read.</param>
        public EarlyHashes(string walDir, string ns, long after, CancellationToken ct, IReadOnlySet<long>? archived = null)
        {
            if (archived is not null)
            {
                _archived.SetResult(archived);
            }
            _cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
            CancellationToken token = _cts.Token;
            Completion = Task.Run(() => HashSealedAsync(walDir, ns, after, Digests, _archived.Task, token), CancellationToken.None);
        }

        /// <summary>By segment id; a segment missing here is hashed afterwards when it is needed.</summary>
        public ConcurrentDictionary<long, ContentDigest> Digests { get; } = new();

        /// <summary>Done hashing; never faults.</summary>
        public Task Completion { get; }

        /// <summary>The segment ids the repository holds: those are not hashed here (step 3 proves
        /// them by their recorded identity, or hashes them when it cannot).</summary>
        public void Archived(IReadOnlySet<long> ids) => _archived.TrySetResult(ids);

        public async ValueTask DisposeAsync()
        {
            _cts.Cancel();
            await Completion.ConfigureAwait(false);
            _cts.Dispose();
        }
    }

    /// <summary>The SHA-256 of every segment after <paramref name="after"/> whose header says sealed
    /// and that is not archived, into <paramref name="digests"/> by id. The newest is hashed at once
    /// (in the steady state it is the one new segment), the others once the archived ids are known,
    /// <see cref="Parallelism"/> at a time: a WAL keeps its sealed segments (UnisonDB standalone
    /// never removes them), and hashing every one of them on every ship made a ship cost the size of
    /// the whole WAL. A segment that cannot be read here is left out (step 3 hashes it again and
    /// reports what is wrong); cancellation ends it quietly. Never throws.</summary>
    private static async Task HashSealedAsync(string walDir, string ns, long after, ConcurrentDictionary<long, ContentDigest> digests,
        Task<IReadOnlySet<long>> archivedIds, CancellationToken ct)
    {
        async ValueTask Hash((long Id, string Path) x, CancellationToken c)
        {
            try
            {
                digests[x.Id] = await FileCopy.HashAsync(x.Path, c).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // hashed again in step 3, which reports it
            }
        }
        try
        {
            List<(long Id, string Path)> sealedFiles = WalDirectory.List(walDir).Segments
                .Where(x => x.Id > after && WalPartialShip.HeaderSealed(x.Path, ns, x.Id)).OrderByDescending(x => x.Id).ToList();
            if (sealedFiles.Count == 0)
            {
                return;
            }
            Task newest = archivedIds.IsCompletedSuccessfully && archivedIds.Result.Contains(sealedFiles[0].Id)
                ? Task.CompletedTask
                : Hash(sealedFiles[0], ct).AsTask();
            try
            {
                IReadOnlySet<long> archived = await archivedIds.WaitAsync(ct).ConfigureAwait(false);
                await Parallel.ForEachAsync(sealedFiles.Skip(1).Where(x => !archived.Contains(x.Id)),
                    new ParallelOptions { MaxDegreeOfParallelism = Parallelism, CancellationToken = ct }, Hash).ConfigureAwait(false);
            }
            finally
            {
                await newest.ContinueWith(_ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default).ConfigureAwait(false);
            }
        }
        catch (Exception)
        {
            // Cancelled (the ship failed, or the caller cancelled: the ship reports that) or the
            // folder could not be listed (Select reports it): step 3 hashes what is missing.
        }
    }

    /// <summary>The segments about to be shipped must continue what the repository holds: from the
    /// newest archived segment below the first of them, every id up to the last is either archived
    /// or shipped now, and the log index runs on from that archived segment's last record.</summary>
    private static async Task CheckContinuityAsync(OpenRepository open, string ns, SortedDictionary<long, List<string>> archived,
        List<WalSegmentInfo> toShip, IReadOnlySet<long> rewritten, OperationContext context)
    {
        CancellationToken ct = context.CancellationToken;
        long first = toShip[0].SegmentId, last = toShip[^1].SegmentId;
        long? below = archived.Keys.Where(k => k < first).Select(k => (long?)k).LastOrDefault();
        var shipping = toShip.Select(s => s.SegmentId).ToHashSet();
        var missing = new List<long>();
        for (long id = (below ?? first) + 1; id < last; id++)
        {
            if (!shipping.Contains(id) && !archived.ContainsKey(id))
            {
                missing.Add(id);
            }
        }
        if (missing.Count > 0)
        {
            string what = below is long b
                ? $"the repository holds segments up to {b} and this run would ship {string.Join(", ", toShip.Select(s => s.SegmentId))}"
                : $"this run would ship {string.Join(", ", toShip.Select(s => s.SegmentId))}";
            throw await RecordGapAsync(open, ns, new WalGapException(
                $"WAL gap for namespace '{ns}': segment{(missing.Count == 1 ? "" : "s")} {string.Join(", ", missing)} {(missing.Count == 1 ? "is" : "are")} neither archived in {open.Repository.Location} nor shippable ({what}). Nothing was shipped: an archive with a hole cannot restore past it. Recover the missing segments, or ship them from wherever they still exist, then ship again.",
                RefPrefix(ns), missing), context).ConfigureAwait(false);
        }

        // Log indexes across the seams with archived neighbours (the local chain was checked by Select).
        if (below is long prev && prev == first - 1)
        {
            await CheckSeamAsync(open, ns, archived[prev][0], toShip[0], after: true, context).ConfigureAwait(false);
        }
        // A rewritten segment (raft truncation) ends a different history than the archived ids
        // after it, which the truncation deleted; they are older generations, not neighbours.
        if (!rewritten.Contains(last) && archived.TryGetValue(last + 1, out List<string>? next))
        {
            await CheckSeamAsync(open, ns, next[0], toShip[^1], after: false, context).ConfigureAwait(false);
        }
    }

    /// <summary><paramref name="after"/>: <paramref name="local"/> follows the archived segment; else it precedes it.</summary>
    private static async Task CheckSeamAsync(OpenRepository open, string ns, string manifestId, WalSegmentInfo local, bool after, OperationContext context)
    {
        RepositoryManifest m = await open.Repository.ReadManifestAsync(manifestId, context.CancellationToken).ConfigureAwait(false);
        if (m.Segment is not { } a)
        {
            return;
        }
        static bool Unassigned(long first, long count) => first == 0 && count == 0;
        if (Unassigned(a.FirstLogIndex, a.EntryCount) || Unassigned(local.FirstLogIndex, local.EntryCount))
        {
            return;
        }
        // A manifest from before payload decoding records no format: judge it like its local neighbour.
        WalPayloadFormat archivedFormat = a.PayloadFormat is null ? local.PayloadFormat
            : Enum.TryParse(a.PayloadFormat, out WalPayloadFormat f) ? f : WalPayloadFormat.Opaque;
        long archivedLast = a.LastLogIndex ?? a.FirstLogIndex + a.EntryCount - 1;
        (long prevId, long prevFirst, long prevLast, WalPayloadFormat prevFormat, long nextId, long nextFirst, WalPayloadFormat nextFormat) = after
            ? (a.SegmentId, a.FirstLogIndex, archivedLast, archivedFormat, local.SegmentId, local.FirstLogIndex, local.PayloadFormat)
            : (local.SegmentId, local.FirstLogIndex, local.LastLogIndex ?? local.FirstLogIndex - 1, local.PayloadFormat, a.SegmentId, a.FirstLogIndex, archivedFormat);
        string? seam = WalDirectory.DescribeSeam(prevId, prevFirst, prevLast, prevFormat, nextId, nextFirst, nextFormat, out bool skipped);
        if (seam is not null && !skipped)
        {
            throw await RecordGapAsync(open, ns, new WalGapException(
                $"WAL gap for namespace '{ns}': {seam} One of them is {(after ? "archived" : "local")} in {open.Repository.Location}. Nothing was shipped.",
                RefPrefix(ns), []), context).ConfigureAwait(false);
        }
    }

    /// <summary>When a rewritten generation became the live history: its first record written after
    /// every record of the generation before it (raft appends after truncating), else its seal.</summary>
    internal static DateTimeOffset? LiveFrom(WalSegmentInfo rewritten, DateTimeOffset? previousLastRecordTime)
    {
        if (previousLastRecordTime is { } before && rewritten.PayloadFormat != WalPayloadFormat.Opaque)
        {
            foreach (WalRecord r in WalSegmentReader.ReadRecords(rewritten.Path))
            {
                if (r.Time is { } t && t > before)
                {
                    return t;
                }
            }
        }
        return rewritten.LastModifiedAt;
    }

    /// <summary>Writes a <see cref="WalGapEvent"/> (when ShouldProcess agrees) and returns the gap to
    /// throw. A failure to record is added to the message; the gap is what the caller must see.</summary>
    private static async Task<WalGapException> RecordGapAsync(OpenRepository open, string ns, WalGapException gap, OperationContext context)
    {
        DateTimeOffset now = context.UtcNow;
        string key = $"events/{ns}/{now.UtcDateTime.ToString("yyyyMMdd'T'HHmmssfff'Z'", CultureInfo.InvariantCulture)}-{Convert.ToHexString(RandomNumberGenerator.GetBytes(4)).ToLowerInvariant()}.json";
        if (!context.ShouldProcess($"{open.Repository.Location} ({key})", "Record WAL gap event"))
        {
            return gap;
        }
        var e = new WalGapEvent
        {
            Namespace = ns,
            MissingSegmentIds = gap.MissingSegmentIds,
            DetectedAt = now,
            Host = Environment.MachineName,
            Message = gap.Message,
        };
        try
        {
            byte[] bytes = RepositoryJson.Serialize(e, indented: true);
            using var ms = new MemoryStream(bytes, writable: false);
            await open.Backend.PutAsync(key, ms, bytes.Length, CancellationToken.None).ConfigureAwait(false);
            return gap;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return new WalGapException($"{gap.Message} (Recording the gap in the repository failed too: {ex.Message})", gap.Target ?? RefPrefix(ns), gap.MissingSegmentIds);
        }
    }
}
