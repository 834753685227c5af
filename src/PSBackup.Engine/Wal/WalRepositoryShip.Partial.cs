using PSBackup.Engine.Repository;

namespace PSBackup.Engine.Wal;

internal static partial class WalRepositoryShip
{
    /// <summary>Ships the active segment's valid prefix as a partial (see <see cref="WalPartialShip"/>)
    /// when it continues the archive: the segment before it is archived (or shipped by this run),
    /// or nothing below it is, and its first log index follows that segment's last. A hole is a
    /// WAL gap, recorded like the sealed segments' gaps. Null when there is no active segment with
    /// records, its sealed copy is archived already, or ShouldProcess declined.</summary>
    private static async Task<ShippedSegment?> ShipPartialAsync(OpenRepository open, string ns, string walDir, long afterSegmentId,
        SortedDictionary<long, List<string>> archived, IReadOnlyList<WalSegmentInfo> shippedNow, OperationContext context, WalPassClock? clock, WalRepositorySession? session)
    {
        CancellationToken ct = context.CancellationToken;
        Repository.Repository repo = open.Repository;
        if (WalPartialShip.FindActive(walDir, ns, afterSegmentId, context) is not { } active)
        {
            return null;
        }
        clock?.Lap(WalPassPhase.Scan);
        WalSegmentInfo s = active.Info;
        long id = s.SegmentId;
        if (archived.TryGetValue(id, out List<string>? sealedCopies))
        {
            if (s.Mode == "raft" && s.EntryCount > 0)
            {
                // Newest generation first (RunAsync sorts them): the history the active one must continue.
                RepositoryManifest held = session is null ? await repo.ReadManifestAsync(sealedCopies[0], ct).ConfigureAwait(false)
                    : await session.ReadManifestAsync(repo, sealedCopies[0], ct).ConfigureAwait(false);
                if (held.Segment is { } a)
                {
                    WalPartialShip.RequireNotRewritten(s, a.FirstLogIndex, a.FirstRecordTime, a.LastLogIndex ?? a.FirstLogIndex + a.EntryCount - 1, a.LastRecordTime, $"{repo.Location} (backup {sealedCopies[0]})");
                }
            }
            return null;
        }
        long? below = archived.Keys.Where(k => k < id).Concat(shippedNow.Select(x => x.SegmentId).Where(k => k < id)).Select(k => (long?)k).Max();
        if (below is long b && b < id - 1)
        {
            var missing = new List<long>();
            for (long m = b + 1; m < id; m++)
            {
                missing.Add(m);
            }
            // The database rotated while this run shipped: the segments between were still active
            // when the sealed ones were selected, and are on disk now. The next run ships them and
            // then this partial; nothing is missing.
            var onDisk = WalDirectory.List(walDir).Segments.Select(x => x.Id).ToHashSet();
            if (missing.All(onDisk.Contains))
            {
                return null;
            }
            throw await RecordGapAsync(open, ns, new WalGapException(
                $"WAL gap for namespace '{ns}': segment{(missing.Count == 1 ? "" : "s")} {string.Join(", ", missing)} {(missing.Count == 1 ? "is" : "are")} neither archived in {repo.Location} nor shippable, so the active segment {id} cannot continue the archive (the repository holds segments up to {b}). Nothing of segment {id} was shipped. Recover the missing segments, or ship them from wherever they still exist, then ship again.",
                RefPrefix(ns), missing), context).ConfigureAwait(false);
        }
        if (below is long prev && s.EntryCount > 0)
        {
            (long First, long Last, WalPayloadFormat Format)? before = null;
            if (shippedNow.FirstOrDefault(x => x.SegmentId == prev) is { } local)
            {
                before = (local.FirstLogIndex, local.LastLogIndex ?? local.FirstLogIndex - 1, local.PayloadFormat);
            }
            else if (archived.TryGetValue(prev, out List<string>? ids))
            {
                RepositoryManifest m = session is null ? await repo.ReadManifestAsync(ids[0], ct).ConfigureAwait(false)
                    : await session.ReadManifestAsync(repo, ids[0], ct).ConfigureAwait(false);
                if (m.Segment is { } a && !(a.FirstLogIndex == 0 && a.EntryCount == 0))
                {
                    WalPayloadFormat format = a.PayloadFormat is null ? s.PayloadFormat
                        : Enum.TryParse(a.PayloadFormat, out WalPayloadFormat f) ? f : WalPayloadFormat.Opaque;
                    before = (a.FirstLogIndex, a.LastLogIndex ?? a.FirstLogIndex + a.EntryCount - 1, format);
                }
            }
            if (before is { } h && h.First > 0 && s.PayloadFormat == WalPayloadFormat.Opaque && s.FirstLogIndex == 0)
            {
                // walfs writes a record, then the header that names the segment's first log index
                // (a v1 header holds 0 until then, pkg/walfs/segment.go:798); read between the two,
                // a new segment's records cannot be placed yet, and opaque payloads carry no index
                // of their own. That is no gap: the next pass, after the header write, ships them.
                return null;
            }
            if (before is { } p && !(p.First == 0 && p.Last < p.First))
            {
                string? seam = WalDirectory.DescribeSeam(prev, p.First, p.Last, p.Format, id, s.FirstLogIndex, s.PayloadFormat, out bool skipped);
                if (seam is not null && !skipped)
                {
                    throw await RecordGapAsync(open, ns, new WalGapException(
                        $"WAL gap for namespace '{ns}': {seam} The active segment {id} was not shipped.", RefPrefix(ns), []), context).ConfigureAwait(false);
                }
            }
        }
        RepositoryManifest? previous = await NewestPartialAsync(repo, session, ns, id, context.UtcNow, ct).ConfigureAwait(false);
        clock?.Lap(WalPassPhase.Refs);
        return await WalPartialShip.ShipToRepositoryAsync(repo, repo.Location, ns, active, previous, context, clock, session).ConfigureAwait(false);
    }

    /// <summary>The manifest of the newest partial of segment <paramref name="id"/> (by observation
    /// time), or null; damaged manifests are passed over.</summary>
    private static async Task<RepositoryManifest?> NewestPartialAsync(Repository.Repository repo, WalRepositorySession? session, string ns, long id, DateTimeOffset now, CancellationToken ct)
    {
        if (session?.NewestPartial(id) is { } committed)
        {
            return committed; // this follower committed it: no listing, no read
        }
        string prefix = RefPrefix(ns);
        var partials = new List<(DateTimeOffset Observed, string ManifestId)>();
        foreach (RepositoryRef r in await ListRefsAsync(repo, session, RefName(ns, id) + WalPartialShip.RefMarker, now, ct).ConfigureAwait(false))
        {
            if (WalPartialShip.TryParseRef(r.Name[prefix.Length..], out long segmentId, out DateTimeOffset observed) && segmentId == id)
            {
                partials.Add((observed, r.ManifestId));
            }
        }
        foreach ((DateTimeOffset _, string manifestId) in partials.OrderByDescending(p => p.Observed))
        {
            try
            {
                RepositoryManifest m = await repo.ReadManifestAsync(manifestId, ct).ConfigureAwait(false);
                if (m.Kind == BackupKind.WalSegment && m.Segment is { Sealed: false } seg && seg.SegmentId == id && m.Files.Count == 1)
                {
                    return m;
                }
            }
            catch (Exception e) when (e is RepositoryIntegrityException or NotFoundException)
            {
                // a damaged partial, or one a concurrent ship just forgot: the next older one, or none
            }
        }
        return null;
    }
}
