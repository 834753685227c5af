using System.Globalization;
using PSBackup.Engine.Events;
using PSBackup.Engine.ObjectStore;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Restore;

namespace PSBackup.Engine.Retention;

/// <summary>Remove-Backup: named backups of one source. Exactly one of <see cref="Repository"/>,
/// <see cref="DataDir"/> (with <see cref="Namespace"/>: that namespace's local snapshots and shipped
/// segments) and <see cref="DbRoot"/> (with <see cref="Dir"/>: that tenant dir's local object backups).</summary>
public sealed record RemoveBackupOptions
{
    public RepositoryTarget? Repository { get; init; }
    public string? DataDir { get; init; }
    public string? Namespace { get; init; }
    public string? DbRoot { get; init; }
    public string? Dir { get; init; }
    /// <summary>The backups as Get-Backup names them: manifest ids in a repository; a snapshot's or
    /// segment's path under the namespace's backup root; an object backup's folder name.</summary>
    public required IReadOnlyList<string> BackupIds { get; init; }
    /// <summary>Remove even when a point-in-time chain breaks (records restorable before would not be).</summary>
    public bool Force { get; init; }
    /// <summary>Repository: unreferenced packs younger than this stay (a running backup may still commit them).</summary>
    public TimeSpan PackGracePeriod { get; init; } = TimeSpan.FromHours(1);
}

/// <summary>Removes named backups (restic's <c>forget</c> of given ids, with the prune of the packs
/// only they used). Chain-aware: a removal that makes any log index of a namespace unrestorable
/// that was restorable before — a WAL segment a snapshot's replay needs, the snapshot a span of
/// WAL starts from, a namespace's last snapshot — is refused (PitrChainBreak) unless -Force.</summary>
public static class BackupRemoval
{
    private const string Action = "Remove backup";

    public static Task<IReadOnlyList<RetentionItem>> RemoveAsync(RemoveBackupOptions options, OperationContext context) =>
        OperationRecorder.RunAsync(new OperationScope
            {
                Operation = "Remove-Backup", Category = "retention", Namespace = options?.Namespace ?? options?.Dir,
                Target = options?.Repository?.Location ?? options?.DataDir ?? options?.DbRoot, History = false,
            },
            context, c => RemoveCoreAsync(options!, c),
            r => new OperationOutcome(r.Where(i => i.Removed).Sum(i => i.Bytes), true, null, null));

    private static async Task<IReadOnlyList<RetentionItem>> RemoveCoreAsync(RemoveBackupOptions options, OperationContext context)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(context);
        int sources = (options.Repository is not null ? 1 : 0) + (options.DataDir is not null ? 1 : 0) + (options.DbRoot is not null ? 1 : 0);
        if (sources != 1)
        {
            throw new InvalidInputException("AmbiguousBackupSource",
                "Say where the backups are: -Repository (a repository), -DataDir with -Namespace (a namespace's local snapshots and WAL), or -DbRoot with -Dir (local object backups); exactly one of them. Nothing was removed.");
        }
        if (options.BackupIds is null || options.BackupIds.Count == 0 || options.BackupIds.Any(string.IsNullOrWhiteSpace))
        {
            throw new InvalidInputException("BackupIdRequired", "Give -BackupId: the backups to remove, as Get-Backup names them (or pipe its records). Nothing was removed.");
        }
        if (options.PackGracePeriod < TimeSpan.Zero)
        {
            throw new InvalidInputException("InvalidPackGracePeriod", $"-PackGracePeriod {options.PackGracePeriod} is negative; give a duration such as 1h. Nothing was removed.");
        }
        var ids = options.BackupIds.Distinct(StringComparer.Ordinal).ToList();
        if (options.Repository is not null)
        {
            return await RemoveFromRepositoryAsync(options, ids, context).ConfigureAwait(false);
        }
        return options.DataDir is not null
            ? await RemoveLocalNamespaceAsync(options, ids, context).ConfigureAwait(false)
            : await RemoveLocalObjectsAsync(options, ids, context).ConfigureAwait(false);
    }

    // ---------------------------------------------------------------- the chain rule

    /// <summary>The log indexes a namespace can be restored to: for each snapshot with a known start
    /// point, from its applied index (the snapshot itself) through every record the archived WAL
    /// holds contiguously after it. Intervals, merged.</summary>
    internal static List<(long From, long To)> Restorable(IReadOnlyList<RestorableSnapshot> snapshots, IReadOnlyList<ArchivedSegment> segments)
    {
        // Per segment id the longest copy (a sealed one, or the longest partial).
        var ranges = segments.Where(s => s.EntryCount > 0)
            .GroupBy(s => s.SegmentId).Select(g => g.MaxBy(s => s.LastLogIndex)!)
            .Select(s => (s.FirstLogIndex, s.LastLogIndex)).OrderBy(r => r.FirstLogIndex).ToList();
        var intervals = new List<(long From, long To)>();
        foreach (RestorableSnapshot snapshot in snapshots)
        {
            if (WalRetention.StartLogIndex(snapshot, segments) is not long start)
            {
                continue;
            }
            long reach = start - 1;
            foreach ((long first, long last) in ranges)
            {
                if (first <= reach + 1 && last > reach)
                {
                    reach = last;
                }
            }
            intervals.Add((start - 1, reach));
        }
        var merged = new List<(long From, long To)>();
        foreach ((long from, long to) in intervals.OrderBy(i => i.From))
        {
            if (merged.Count > 0 && from <= merged[^1].To + 1)
            {
                merged[^1] = (merged[^1].From, Math.Max(merged[^1].To, to));
            }
            else
            {
                merged.Add((from, to));
            }
        }
        return merged;
    }

    /// <summary>Why removing <paramref name="snapshotsGoing"/> and <paramref name="segmentsGoing"/>
    /// breaks the namespace's point-in-time chain, or null when everything restorable before stays
    /// restorable.</summary>
    internal static string? ChainBreak(string ns, IReadOnlyList<RestorableSnapshot> snapshots, IReadOnlyList<ArchivedSegment> segments,
        ISet<RestorableSnapshot> snapshotsGoing, ISet<ArchivedSegment> segmentsGoing)
    {
        if (snapshotsGoing.Count == 0 && segmentsGoing.Count == 0)
        {
            return null;
        }
        var snapsAfter = snapshots.Where(s => !snapshotsGoing.Contains(s)).ToList();
        var segsAfter = segments.Where(s => !segmentsGoing.Contains(s)).ToList();
        if (snapshots.Count > 0 && snapsAfter.Count == 0)
        {
            return $"it removes the last snapshot of namespace '{ns}': nothing of it could be restored any more";
        }
        List<(long From, long To)> before = Restorable(snapshots, segments);
        List<(long From, long To)> after = Restorable(snapsAfter, segsAfter);
        var lost = new List<string>();
        foreach ((long from, long to) in before)
        {
            long p = from;
            foreach ((long f, long t) in after.Where(a => a.To >= from && a.From <= to).OrderBy(a => a.From))
            {
                if (f > p)
                {
                    lost.Add(Span(p, Math.Min(f - 1, to)));
                }
                p = Math.Max(p, t + 1);
            }
            if (p <= to)
            {
                lost.Add(Span(p, to));
            }
        }
        return lost.Count == 0 ? null
            : $"namespace '{ns}' could no longer be restored to log index {string.Join(", ", lost)} (restorable now)";

        static string Span(long a, long b) => a == b ? a.ToString(CultureInfo.InvariantCulture) : $"{a.ToString(CultureInfo.InvariantCulture)}..{b.ToString(CultureInfo.InvariantCulture)}";
    }

    private static ConflictException Refused(string why) => new("PitrChainBreak",
        $"Removing these backups would break a point-in-time chain: {why}. Nothing was removed. Remove fewer (Remove-ExpiredBackup keeps every chain it needs), or give -Force to remove them anyway.");

    // ---------------------------------------------------------------- repository

    private static async Task<IReadOnlyList<RetentionItem>> RemoveFromRepositoryAsync(RemoveBackupOptions o, List<string> ids, OperationContext ctx)
    {
        CancellationToken ct = ctx.CancellationToken;
        foreach (string id in ids.Where(i => !Hex.IsSha256Hex(i)))
        {
            throw new InvalidInputException("InvalidBackupId", $"'{SafePath.Printable(id)}' is not a backup id of a repository (64 hex digits, as Get-Backup shows in BackupId). Nothing was removed.", id);
        }
        // Exclusive, like prune: no backup may reuse a pack this removal is about to delete (-WhatIf takes none).
        await using OpenRepository open = await RepositoryConnector.OpenForWriteAsync(o.Repository!, RepositoryLockMode.Exclusive, "Remove-Backup", ctx).ConfigureAwait(false);
        Repository.Repository repo = open.Repository;
        string location = repo.Location;
        Dictionary<string, RepositoryManifest> manifests = await RetentionOperations.ReadAllManifestsAsync(repo, ct).ConfigureAwait(false);
        string[] missing = ids.Where(i => !manifests.ContainsKey(i)).ToArray();
        if (missing.Length > 0)
        {
            throw new NotFoundException("BackupNotFound",
                $"{location} holds no backup {string.Join(", ", missing)}. List what it holds with Get-Backup -Repository. Nothing was removed.", missing[0]);
        }
        var going = ids.Select(i => manifests[i]).ToList();

        // The chain rule, per namespace touched.
        var breaks = new List<string>();
        foreach (string ns in going.Where(m => m.Kind != BackupKind.Object && m.Namespace is not null).Select(m => m.Namespace!).Distinct(StringComparer.Ordinal))
        {
            var snaps = manifests.Values.Where(m => m.Kind == BackupKind.StoreSnapshot && m.Namespace == ns && m.Wal is not null)
                .ToDictionary(m => m.Id, m => new RestorableSnapshot
                {
                    Id = m.Id, CreatedAt = m.CreatedAt, CompletedAt = m.CompletedAt, Wal = m.Wal!,
                    Files = m.Files.Select(f => new ManifestFile(f.Path, f.Size, f.Sha256)).ToList(), Location = m.Id,
                });
            var segs = manifests.Values.Where(m => m.Kind == BackupKind.WalSegment && m.Namespace == ns && m.Segment is not null)
                .ToDictionary(m => m.Id, m => new ArchivedSegment
                {
                    SegmentId = m.Segment!.SegmentId, Sealed = m.Segment.Sealed, FirstLogIndex = m.Segment.FirstLogIndex, EntryCount = m.Segment.EntryCount,
                    CreatedAt = m.Segment.CreatedAt ?? m.CreatedAt, SealedAt = m.Segment.Sealed ? m.Segment.LastModifiedAt : null,
                    ObservedAt = m.Segment.Sealed ? null : m.Segment.ObservedAt, Bytes = m.TotalBytes, Location = m.Id,
                });
            string? why = ChainBreak(ns, snaps.Values.ToList(), segs.Values.ToList(),
                going.Where(m => snaps.ContainsKey(m.Id)).Select(m => snaps[m.Id]).ToHashSet(),
                going.Where(m => segs.ContainsKey(m.Id)).Select(m => segs[m.Id]).ToHashSet());
            if (why is not null)
            {
                breaks.Add(why);
            }
        }
        string? chainNote = breaks.Count == 0 ? null : string.Join("; ", breaks);
        if (chainNote is not null && !o.Force && !ctx.WhatIf)
        {
            throw Refused(chainNote);
        }

        IReadOnlyList<RepositoryRef> refs = await repo.ListRefsAsync("", ct).ConfigureAwait(false);
        var items = new List<RetentionItem>();
        var removed = new HashSet<string>(StringComparer.Ordinal);
        int done = 0;
        foreach (RepositoryManifest m in going.OrderBy(m => m.CreatedAt))
        {
            ct.ThrowIfCancellationRequested();
            BackupRecord r = BackupCatalog.RecordOf(m, location);
            string what = m.Kind switch
            {
                BackupKind.Object => $"object backup {m.Id} of '{m.Dir}/{m.Object}'",
                BackupKind.StoreSnapshot => $"snapshot {m.Id} of namespace '{m.Namespace}'",
                _ => $"WAL segment {m.Segment?.SegmentId.ToString("D9", CultureInfo.InvariantCulture)}{(m.Segment?.Sealed == false ? " (partial)" : "")} of namespace '{m.Namespace}' (backup {m.Id})",
            };
            bool go = ctx.ShouldProcess($"{what} ({r.Time.UtcDateTime:yyyy-MM-ddTHH:mm:ssZ}) in {location}", Action);
            if (go)
            {
                foreach (RepositoryRef rf in refs.Where(x => x.ManifestId == m.Id))
                {
                    await repo.Backend.DeleteAsync(RepositoryLayout.RefKey(rf.Name, rf.ManifestId), ct).ConfigureAwait(false);
                }
                await repo.Backend.DeleteAsync(RepositoryLayout.ManifestKey(m.Id), ct).ConfigureAwait(false);
                removed.Add(m.Id);
                OperationLog.Verbose($"Removed {what} from {location}.");
            }
            items.Add(new RetentionItem
            {
                Kind = m.Kind switch { BackupKind.Object => RetentionItemKind.Object, BackupKind.StoreSnapshot => RetentionItemKind.StoreSnapshot, _ => RetentionItemKind.WalSegment },
                Decision = RetentionDecision.Remove, Removed = go, Id = m.Id, Repository = location, BackupId = m.Id,
                Namespace = m.Namespace, Dir = m.Dir, Object = m.Object, SegmentId = m.Segment?.SegmentId, Time = r.Time, Bytes = m.TotalBytes,
                Reasons = chainNote is null ? ["named by Remove-Backup"] : [$"named by Remove-Backup; breaks the point-in-time chain ({chainNote}){(o.Force ? ", -Force" : ": needs -Force")}"],
            });
            ctx.Report("Remove-Backup", "Removing backups", ++done, going.Count, m.Id);
        }
        if (removed.Count == 0)
        {
            return items;
        }
        // Only the packs that held chunks of what went, and that no remaining backup uses.
        var chunks = going.Where(m => removed.Contains(m.Id)).SelectMany(m => m.Files.SelectMany(f => f.Chunks)).ToHashSet();
        items.AddRange(await RetentionOperations.ReclaimPacksAsync(repo, removed, removed, o.PackGracePeriod, ctx, chunks, "Remove-Backup").ConfigureAwait(false));
        return items;
    }

    // ---------------------------------------------------------------- local

    private static async Task<IReadOnlyList<RetentionItem>> RemoveLocalNamespaceAsync(RemoveBackupOptions o, List<string> ids, OperationContext ctx)
    {
        LocalRestoreSource source = LocalRestoreSource.Open(o.DataDir, o.Namespace);
        string ns = source.Namespace;
        IReadOnlyList<RestorableSnapshot> snapshots = await source.ListSnapshotsAsync(ctx.CancellationToken).ConfigureAwait(false);
        IReadOnlyList<ArchivedSegment> segments = await source.ListSegmentsAsync(ctx.CancellationToken).ConfigureAwait(false);
        string Rel(string path) => ObjectLayout.Relative(source.BackupRoot, path);
        var snapshotsGoing = new HashSet<RestorableSnapshot>();
        var segmentsGoing = new HashSet<ArchivedSegment>();
        var missing = new List<string>();
        foreach (string id in ids)
        {
            string wanted = id.Replace('\\', '/');
            RestorableSnapshot? s = snapshots.FirstOrDefault(x => x.Id == wanted);
            ArchivedSegment? g = segments.FirstOrDefault(x => Rel(x.Location) == wanted);
            if (s is not null)
            {
                snapshotsGoing.Add(s);
            }
            else if (g is not null)
            {
                segmentsGoing.Add(g);
            }
            else
            {
                missing.Add(id);
            }
        }
        if (missing.Count > 0)
        {
            throw new NotFoundException("BackupNotFound",
                $"The backup root '{source.BackupRoot}' holds no snapshot or segment {string.Join(", ", missing.Select(SafePath.Printable))}. List it with Get-Backup -DataDir -Namespace. Nothing was removed.", missing[0]);
        }
        string? chainNote = ChainBreak(ns, snapshots, segments, snapshotsGoing, segmentsGoing);
        if (chainNote is not null && !o.Force && !ctx.WhatIf)
        {
            throw Refused(chainNote);
        }
        var reasons = chainNote is null ? new[] { "named by Remove-Backup" } : [$"named by Remove-Backup; breaks the point-in-time chain ({chainNote}){(o.Force ? ", -Force" : ": needs -Force")}"];
        var items = new List<RetentionItem>();
        foreach (RestorableSnapshot s in snapshotsGoing.OrderBy(x => x.CreatedAt))
        {
            ctx.CancellationToken.ThrowIfCancellationRequested();
            bool go = ctx.ShouldProcess($"snapshot '{s.Id}' of namespace '{ns}' ({s.Location})", Action);
            if (go)
            {
                // Manifest first: a half-removed snapshot reads as incomplete, never as a good one.
                RetentionOperations.DeleteFile(s.Location + ObjectLayout.ManifestSuffix);
                RetentionOperations.DeleteData(s.Location);
            }
            items.Add(new RetentionItem
            {
                Kind = RetentionItemKind.StoreSnapshot, Decision = RetentionDecision.Remove, Removed = go, Id = s.Id, Namespace = ns,
                Time = s.CompletedAt ?? s.CreatedAt, Bytes = s.Bytes, Reasons = reasons, Path = s.Location,
            });
        }
        foreach (ArchivedSegment g in segmentsGoing.OrderBy(x => x.SegmentId))
        {
            ctx.CancellationToken.ThrowIfCancellationRequested();
            bool go = ctx.ShouldProcess($"WAL segment {g.SegmentId.ToString("D9", CultureInfo.InvariantCulture)} of namespace '{ns}' ({g.Location})", Action);
            if (go)
            {
                RetentionOperations.DeleteFile(g.Location);
            }
            items.Add(new RetentionItem
            {
                Kind = RetentionItemKind.WalSegment, Decision = RetentionDecision.Remove, Removed = go, Id = Rel(g.Location), Namespace = ns,
                SegmentId = g.SegmentId, Time = g.SealedAt ?? g.ObservedAt ?? g.CreatedAt, Bytes = g.Bytes, Reasons = reasons, Path = g.Location,
            });
        }
        return items;
    }

    private static async Task<IReadOnlyList<RetentionItem>> RemoveLocalObjectsAsync(RemoveBackupOptions o, List<string> ids, OperationContext ctx)
    {
        if (o.Dir is null)
        {
            throw new InvalidInputException("DirRequired", "-DbRoot removes object backups of one tenant directory: give -Dir too. Nothing was removed.");
        }
        IReadOnlyList<BackupRecord> records = await BackupCatalog.ListAsync(new GetBackupOptions { DbRoot = o.DbRoot, Dir = o.Dir }, ctx).ConfigureAwait(false);
        string[] missing = ids.Where(i => records.All(r => r.BackupId != i)).ToArray();
        if (missing.Length > 0)
        {
            throw new NotFoundException("BackupNotFound",
                $"The tenant dir '{o.Dir}' under '{o.DbRoot}' holds no object backup {string.Join(", ", missing.Select(SafePath.Printable))}. List them with Get-Backup -DbRoot -Dir. Nothing was removed.", missing[0]);
        }
        var items = new List<RetentionItem>();
        foreach (BackupRecord r in records.Where(r => ids.Contains(r.BackupId)).OrderBy(r => r.Time))
        {
            ctx.CancellationToken.ThrowIfCancellationRequested();
            bool go = ctx.ShouldProcess($"object backup '{r.BackupId}' of '{r.Dir}/{r.Object}' ({r.Path})", Action);
            if (go)
            {
                RetentionOperations.DeleteFile(Path.Combine(Path.GetDirectoryName(r.Path!)!, ObjectLayout.ManifestName(r.BackupId)));
                RetentionOperations.DeleteData(r.Path!);
            }
            items.Add(new RetentionItem
            {
                Kind = RetentionItemKind.Object, Decision = RetentionDecision.Remove, Removed = go, Id = r.BackupId, Dir = r.Dir, Object = r.Object,
                Time = r.Time, Bytes = r.Bytes, Reasons = ["named by Remove-Backup"], Path = r.Path,
            });
        }
        return items;
    }
}
