using System.Globalization;
using PSBackup.Engine.Restore;

namespace PSBackup.Engine.Retention;

/// <summary>Decides, from listings alone, what of a namespace (or an object's backups) retention
/// keeps. Pure: no I/O.</summary>
public static class RetentionPlanner
{
    /// <summary>Snapshots by the policy (bucketed by their start time) plus the newest snapshot;
    /// WAL segments by the chain rule of <see cref="WalRetention.CanRemove"/>.</summary>
    public static NamespaceRetentionPlan PlanNamespace(IReadOnlyList<RestorableSnapshot> snapshots, IReadOnlyList<ArchivedSegment> segments, RetentionPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(snapshots);
        ArgumentNullException.ThrowIfNull(segments);
        ArgumentNullException.ThrowIfNull(policy);
        IReadOnlyList<Decided<RestorableSnapshot>> decidedSnapshots = Decide(snapshots, s => s.Id, s => s.CreatedAt, policy);
        var kept = decidedSnapshots.Where(d => d.Keep).Select(d => d.Item).ToList();
        var starts = kept.Select(s => (Snapshot: s, Start: WalRetention.StartLogIndex(s, segments))).ToList();
        long? oldestStart = starts.Count == 0 || starts.Any(s => s.Start is null) ? null : starts.Min(s => s.Start!.Value);
        var decidedSegments = new List<Decided<ArchivedSegment>>();
        var sealedIds = segments.Where(s => s.Sealed).Select(s => s.SegmentId).ToHashSet();
        foreach (ArchivedSegment seg in segments.OrderBy(s => s.SegmentId).ThenBy(s => s.EntryCount))
        {
            if (!seg.Sealed && sealedIds.Contains(seg.SegmentId))
            {
                // A partial whose sealed segment is archived: the sealed copy holds every record it holds.
                decidedSegments.Add(new(seg, false, [$"a partial superseded by the archived sealed segment {seg.SegmentId.ToString("D9", CultureInfo.InvariantCulture)}"]));
            }
            else if (kept.Count == 0)
            {
                decidedSegments.Add(new(seg, true, ["no snapshot to replay it from: WAL is kept until one exists"]));
            }
            else if (oldestStart is null)
            {
                decidedSegments.Add(new(seg, true, ["a retained snapshot records no WAL start point: every segment is kept"]));
            }
            else if (WalRetention.CanRemove(seg, kept, segments))
            {
                decidedSegments.Add(new(seg, false, [$"ends before log index {oldestStart.Value.ToString(CultureInfo.InvariantCulture)}, where replay from the oldest retained snapshot starts"]));
            }
            else
            {
                // The retained snapshot whose PITR window the segment serves: the newest one
                // starting at or before the segment's last record.
                var owner = starts.Where(s => s.Start <= seg.LastLogIndex).OrderByDescending(s => s.Start).ThenByDescending(s => s.Snapshot.CreatedAt).FirstOrDefault();
                string who = owner.Snapshot is null ? starts.OrderBy(s => s.Start).First().Snapshot.Id : owner.Snapshot.Id;
                decidedSegments.Add(new(seg, true, [$"needed for point-in-time restore from snapshot {who}"]));
            }
        }
        return new NamespaceRetentionPlan(decidedSnapshots, decidedSegments);
    }

    /// <summary>The policy over <paramref name="items"/>, plus the newest one always kept.</summary>
    public static IReadOnlyList<Decided<T>> Decide<T>(IReadOnlyList<T> items, Func<T, string> id, Func<T, DateTimeOffset> time, RetentionPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(items);
        var candidates = items.Select(i => new RetentionCandidate(id(i), time(i))).ToList();
        IReadOnlyDictionary<string, IReadOnlyList<string>> reasons = RetentionEvaluator.Evaluate(candidates, policy);
        string? newest = candidates.OrderByDescending(c => c.Time).ThenBy(c => c.Id, StringComparer.Ordinal).FirstOrDefault()?.Id;
        return items
            .OrderByDescending(time).ThenBy(id, StringComparer.Ordinal)
            .Select(i =>
            {
                string key = id(i);
                var why = reasons.TryGetValue(key, out IReadOnlyList<string>? r) ? r.ToList() : [];
                if (key == newest && why.Count == 0)
                {
                    why.Add("newest (never removed)");
                }
                return why.Count > 0 ? new Decided<T>(i, true, why) : new Decided<T>(i, false, ["no rule keeps it"]);
            })
            .ToList();
    }
}
