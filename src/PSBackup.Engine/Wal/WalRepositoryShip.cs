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
internal static class WalRepositoryShip
{
    /// <summary>Segments uploaded at once. Each backup writer already compresses on every core and
    /// holds up to three ~16 MiB packs (being filled, queued, being put), so more segments at once
    /// add memory, not speed: two keep both the serial chunking stage and the upload busy.</summary>
    internal const int Parallelism = 2;

    private const string Activity = "Ship WAL segments";

    public static string RefPrefix(string ns) => $"wal/{ns}/";

    public static string RefName(string ns, long segmentId) => $"wal/{ns}/{segmentId.ToString("D9", CultureInfo.InvariantCulture)}";

    public static async Task<WalShipResult> RunAsync(InvokeWalShipOptions options, string ns, string walDir, RepositoryTarget target, OperationContext context)
    {
        CancellationToken ct = context.CancellationToken;
        await using OpenRepository open = await RepositoryConnector.OpenForWriteAsync(target, RepositoryLockMode.Shared, "Invoke-WalShip", context).ConfigureAwait(false);
        Repository.Repository repo = open.Repository;

        // 1. What the repository holds: segment id -> manifest ids (partials and foreign names ignored).
        var archived = new SortedDictionary<long, List<string>>();
        string prefix = RefPrefix(ns);
        foreach (RepositoryRef r in await repo.ListRefsAsync(prefix, ct).ConfigureAwait(false))
        {
            string rest = r.Name[prefix.Length..];
            if (rest.Length == 9 && rest.All(char.IsAsciiDigit) && long.TryParse(rest, NumberStyles.None, CultureInfo.InvariantCulture, out long id))
            {
                if (!archived.TryGetValue(id, out List<string>? ids))
                {
                    archived[id] = ids = new List<string>();
                }
                ids.Add(r.ManifestId);
            }
        }

        // 2. What the WAL holds: sealed, valid, contiguous segments after AfterSegmentId.
        List<WalSegmentInfo> selected;
        try
        {
            // Archived segments are proven by their SHA-256 below, so only their headers are read here.
            var known = archived.Keys.ToHashSet();
            selected = await Task.Run(() => WalOperations.Select(walDir, ns, options.AfterSegmentId, ct, known), ct).ConfigureAwait(false);
        }
        catch (WalGapException gap)
        {
            throw await RecordGapAsync(open, ns, gap, context).ConfigureAwait(false);
        }

        // 3. Hash each one; an archived one must be the same bytes (AlreadyPresent), never different.
        var digests = new ConcurrentDictionary<long, ContentDigest>();
        await Parallel.ForEachAsync(selected, new ParallelOptions { MaxDegreeOfParallelism = Parallelism, CancellationToken = ct }, async (s, c) =>
        {
            digests[s.SegmentId] = await FileCopy.HashAsync(s.Path, c).ConfigureAwait(false);
        }).ConfigureAwait(false);
        var results = new List<ShippedSegment>(selected.Count);
        var toShip = new List<WalSegmentInfo>();
        foreach (WalSegmentInfo s in selected)
        {
            ContentDigest local = digests[s.SegmentId];
            if (!archived.TryGetValue(s.SegmentId, out List<string>? ids))
            {
                toShip.Add(s);
                continue;
            }
            foreach (string id in ids)
            {
                RepositoryManifest m = await repo.ReadManifestAsync(id, ct).ConfigureAwait(false);
                RepositoryFile? f = m.Files.Count == 1 ? m.Files[0] : null;
                if (m.Kind != BackupKind.WalSegment || f is null || f.Sha256 != local.Sha256 || f.Size != local.Bytes)
                {
                    throw new ConflictException("WalSegmentConflict",
                        $"Segment {s.SegmentId} of namespace '{ns}' is already archived in {repo.Location} (backup {id}) with different content (SHA-256 {f?.Sha256 ?? "?"}, {f?.Size ?? 0} bytes) than the local segment (SHA-256 {local.Sha256}, {local.Bytes} bytes). PSBackup never overwrites an archived segment; nothing was shipped. Investigate which copy is right before shipping again.",
                        RefName(ns, s.SegmentId));
                }
            }
            results.Add(new ShippedSegment(ns, s.SegmentId, RefName(ns, s.SegmentId), local.Bytes, local.Sha256, AlreadyPresent: true)
            {
                Repository = target.Location,
                BackupId = ids[0],
            });
        }

        // 4. No hole between what is archived and what is shipped now, in ids or log indexes.
        if (toShip.Count > 0)
        {
            await CheckContinuityAsync(open, ns, archived, toShip, context).ConfigureAwait(false);
        }

        // 5. Ask once per segment, then upload in parallel; each commit is independent, so an
        // interrupted run leaves whole segments archived and the next run ships the rest.
        var accepted = toShip.Where(s => context.ShouldProcess($"{repo.Location} ({RefName(ns, s.SegmentId)})", $"Ship WAL segment {s.SegmentId}")).ToList();
        int done = 0;
        var shipped = new ConcurrentBag<ShippedSegment>();
        await Parallel.ForEachAsync(accepted, new ParallelOptions { MaxDegreeOfParallelism = Parallelism, CancellationToken = ct }, async (s, c) =>
        {
            ContentDigest expected = digests[s.SegmentId];
            string refName = RefName(ns, s.SegmentId);
            await using BackupWriter writer = repo.BeginBackup(new BackupInfo
            {
                Kind = BackupKind.WalSegment,
                Namespace = ns,
                CreatedAt = context.UtcNow,
                Segment = new RepositorySegment
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
                },
            }, context.Clock);
            RepositoryFile f = await writer.AddFileFromPathAsync("wal/" + s.FileName, s.Path, ChunkingProfile.Default, c).ConfigureAwait(false);
            if (f.Sha256 != expected.Sha256 || f.Size != expected.Bytes)
            {
                throw new IntegrityException("WalShipVerifyFailed",
                    $"Segment {s.SegmentId} of namespace '{ns}' read as SHA-256 {f.Sha256} ({f.Size} bytes) while uploading, not {expected.Sha256} ({expected.Bytes} bytes) as verified before. A sealed segment must not change; nothing of it was committed. Check the disk and the database, then ship again.",
                    s.Path);
            }
            BackupCommitResult commit = await writer.CommitAsync(refName, c).ConfigureAwait(false);
            shipped.Add(new ShippedSegment(ns, s.SegmentId, refName, f.Size, f.Sha256, AlreadyPresent: false)
            {
                Repository = target.Location,
                BackupId = commit.ManifestId,
                StoredBytes = commit.StoredBytes,
            });
            context.Report(Activity, $"Shipped segment {s.SegmentId}", Interlocked.Increment(ref done), accepted.Count, refName);
        }).ConfigureAwait(false);
        results.AddRange(shipped);
        results.Sort((a, b) => a.SegmentId.CompareTo(b.SegmentId));
        return new WalShipResult(ns, null, results) { Repository = target.Location };
    }

    /// <summary>The segments about to be shipped must continue what the repository holds: from the
    /// newest archived segment below the first of them, every id up to the last is either archived
    /// or shipped now, and the log index runs on from that archived segment's last record.</summary>
    private static async Task CheckContinuityAsync(OpenRepository open, string ns, SortedDictionary<long, List<string>> archived,
        List<WalSegmentInfo> toShip, OperationContext context)
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
        if (archived.TryGetValue(last + 1, out List<string>? next))
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
            byte[] bytes = JsonSerializer.SerializeToUtf8Bytes(e, RepositoryJson.Indented);
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
