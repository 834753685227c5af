using System.Globalization;
using PSBackup.Engine.Restore;

namespace PSBackup.Engine.Retention;

/// <summary>Which backups to keep, with restic's <c>forget</c> semantics: each bucket rule keeps the
/// newest backup of each of the N most recent buckets (UTC hour, day, ISO week, month, year) that
/// hold a backup; keep-last keeps the N newest; keep-within keeps every backup within the duration
/// of the newest backup's time (not of now). A backup kept by any rule is kept.</summary>
public sealed record RetentionPolicy
{
    public int? KeepLast { get; init; }
    public int? KeepHourly { get; init; }
    public int? KeepDaily { get; init; }
    public int? KeepWeekly { get; init; }
    public int? KeepMonthly { get; init; }
    public int? KeepYearly { get; init; }
    public TimeSpan? KeepWithin { get; init; }

    /// <summary>No rule keeps anything: every count absent or 0 and no keep-within (restic refuses
    /// such a policy too).</summary>
    public bool IsEmpty => Counts().All(c => c.Value is null or 0) && (KeepWithin is null || KeepWithin == TimeSpan.Zero);

    /// <summary>Refuses a policy with no rule (it would delete everything) and negative values.</summary>
    public void Validate()
    {
        if (IsEmpty)
        {
            throw new InvalidInputException("NoRetentionRule",
                "Give at least one retention rule (-KeepLast, -KeepHourly, -KeepDaily, -KeepWeekly, -KeepMonthly, -KeepYearly or -KeepWithin); without one every backup would be removed, so nothing was removed.");
        }
        foreach ((string name, int? value) in Counts())
        {
            if (value is < 0)
            {
                throw new InvalidInputException("InvalidRetentionCount",
                    $"-{name} {value.Value.ToString(CultureInfo.InvariantCulture)} is negative; give a count of 0 or more. Nothing was removed.", value.Value.ToString(CultureInfo.InvariantCulture));
            }
        }
        if (KeepWithin is { } w && w < TimeSpan.Zero)
        {
            throw new InvalidInputException("InvalidDuration",
                $"-KeepWithin {w} is negative; give a duration such as 14d or 24h. Nothing was removed.", w.ToString());
        }
    }

    internal IEnumerable<(string Name, int? Value)> Counts() =>
    [
        ("KeepLast", KeepLast), ("KeepHourly", KeepHourly), ("KeepDaily", KeepDaily),
        ("KeepWeekly", KeepWeekly), ("KeepMonthly", KeepMonthly), ("KeepYearly", KeepYearly),
    ];
}

/// <summary>One candidate for a retention decision: an id and the time it is bucketed by.</summary>
public sealed record RetentionCandidate(string Id, DateTimeOffset Time);

/// <summary>restic's <c>forget</c> policy evaluation: pure, no I/O.</summary>
public static class RetentionEvaluator
{
    /// <summary>For each kept candidate, the rules that kept it ("last", "hourly", "daily",
    /// "weekly", "monthly", "yearly", "within 14.00:00:00"); candidates not in the result go.</summary>
    public static IReadOnlyDictionary<string, IReadOnlyList<string>> Evaluate(IReadOnlyList<RetentionCandidate> candidates, RetentionPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(candidates);
        ArgumentNullException.ThrowIfNull(policy);
        policy.Validate();
        // Newest first (restic sorts by time descending); ties by id for a stable answer.
        var sorted = candidates.OrderByDescending(c => c.Time).ThenBy(c => c.Id, StringComparer.Ordinal).ToList();
        var reasons = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        void Keep(RetentionCandidate c, string why)
        {
            if (!reasons.TryGetValue(c.Id, out List<string>? l))
            {
                reasons[c.Id] = l = [];
            }
            l.Add(why);
        }
        var rules = new (string Name, int? Count, Func<DateTime, long> Bucket)[]
        {
            ("last", policy.KeepLast, null!),
            ("hourly", policy.KeepHourly, t => t.Year * 1_000_000L + t.Month * 10_000 + t.Day * 100 + t.Hour),
            ("daily", policy.KeepDaily, t => t.Year * 10_000L + t.Month * 100 + t.Day),
            ("weekly", policy.KeepWeekly, t => ISOWeek.GetYear(t) * 100L + ISOWeek.GetWeekOfYear(t)),
            ("monthly", policy.KeepMonthly, t => t.Year * 100L + t.Month),
            ("yearly", policy.KeepYearly, t => t.Year),
        };
        foreach ((string name, int? count, Func<DateTime, long> bucket) in rules)
        {
            if (count is not int left || left <= 0)
            {
                continue;
            }
            long? last = null;
            for (int i = 0; i < sorted.Count && left > 0; i++)
            {
                // keep-last: every backup is its own bucket.
                long b = bucket is null ? i : bucket(sorted[i].Time.UtcDateTime);
                if (last != b)
                {
                    Keep(sorted[i], name);
                    last = b;
                    left--;
                }
            }
            // restic 0.17: a bucket rule with buckets to spare also keeps the oldest backup, so a
            // young history is not thinned below what the rule promises.
            if (bucket is not null && left > 0 && sorted.Count > 0)
            {
                RetentionCandidate oldest = sorted[^1];
                if (!(reasons.TryGetValue(oldest.Id, out List<string>? l) && l.Contains(name)))
                {
                    Keep(oldest, "oldest " + name);
                }
            }
        }
        if (policy.KeepWithin is TimeSpan within && sorted.Count > 0)
        {
            DateTimeOffset from = sorted[0].Time - within;
            string label = "within " + Durations.Format(within);
            foreach (RetentionCandidate c in sorted.Where(c => c.Time > from || c.Time == sorted[0].Time))
            {
                Keep(c, label);
            }
        }
        return reasons.ToDictionary(p => p.Key, p => (IReadOnlyList<string>)p.Value, StringComparer.Ordinal);
    }
}

/// <summary>Which archived WAL segments the retained snapshots still need.</summary>
public static class WalRetention
{
    /// <summary>The first log index replay from <paramref name="snapshot"/> needs: applied + 1, or
    /// without an applied index the first record of the oldest segment it saw (null: unknown,
    /// keep every segment).</summary>
    public static long? StartLogIndex(RestorableSnapshot snapshot, IReadOnlyList<ArchivedSegment> segments)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        ArgumentNullException.ThrowIfNull(segments);
        if (snapshot.Wal.Checkpoint?.LogIndex is long checkpoint)
        {
            // UnisonDB's recovery reads the checkpoint record itself before skipping it, so its
            // segment is needed even when the next record opens the following one.
            return checkpoint;
        }
        if (snapshot.Wal.AppliedLogIndex is long a)
        {
            return a + 1;
        }
        if (snapshot.Wal.SegmentIds.Count > 0)
        {
            long oldest = snapshot.Wal.SegmentIds.Min();
            ArchivedSegment? s = segments.Where(x => x.SegmentId == oldest).MinBy(x => x.FirstLogIndex);
            return s?.FirstLogIndex;
        }
        return null;
    }

    /// <summary>True when <paramref name="segment"/> may go: every record in it precedes the start
    /// point of every retained snapshot. Each retained snapshot's PITR window runs from its start
    /// point to the next retained snapshot's (the newest one's to the end of the archive), so the
    /// union of the windows is [oldest start, end] and every segment reaching into it stays.
    /// With no retained snapshot nothing may go.</summary>
    public static bool CanRemove(ArchivedSegment segment, IReadOnlyList<RestorableSnapshot> retained, IReadOnlyList<ArchivedSegment> segments)
    {
        ArgumentNullException.ThrowIfNull(segment);
        ArgumentNullException.ThrowIfNull(retained);
        if (retained.Count == 0)
        {
            return false;
        }
        long? min = null;
        foreach (RestorableSnapshot s in retained)
        {
            long? start = StartLogIndex(s, segments);
            if (start is null)
            {
                return false;
            }
            min = min is null ? start : Math.Min(min.Value, start.Value);
        }
        // The segment holding the start record itself stays (LastLogIndex >= start); a segment
        // ending exactly before it is no longer needed.
        return segment.LastLogIndex < min!.Value;
    }
}
