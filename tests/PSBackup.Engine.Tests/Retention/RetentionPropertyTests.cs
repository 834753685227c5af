using FsCheck;
using FsCheck.Fluent;
using PSBackup.Engine.Restore;
using PSBackup.Engine.Retention;

namespace PSBackup.Engine.Tests.Retention;

/// <summary>FsCheck properties over random histories (snapshots at random times with WAL
/// positions, contiguous WAL segments) and random policies.</summary>
public sealed class RetentionPropertyTests
{
    private static readonly DateTimeOffset T0 = new(2024, 12, 28, 0, 0, 0, TimeSpan.Zero);

    internal sealed record History(List<RestorableSnapshot> Snapshots, List<ArchivedSegment> Segments, RetentionPolicy Policy, int Seed)
    {
        public override string ToString() =>
            $"seed {Seed}: {Snapshots.Count} snapshots [{string.Join(", ", Snapshots.Select(s => $"{s.Id}@{s.CreatedAt:yyyy-MM-ddTHH:mm}/{s.Wal.AppliedLogIndex}"))}], "
            + $"{Segments.Count} segments, policy {Policy}";
    }

    /// <summary>A history from one seed: 1..40 snapshots minutes to weeks apart, applied indexes
    /// non-decreasing with time, 1..30 segments of 1..50 records covering the whole log.</summary>
    internal static History Build(int seed)
    {
        var rng = new Random(seed);
        int segmentCount = rng.Next(1, 31);
        var segments = new List<ArchivedSegment>();
        long first = 1;
        for (int id = 1; id <= segmentCount; id++)
        {
            long count = rng.Next(1, 51);
            segments.Add(new ArchivedSegment
            {
                SegmentId = id, Sealed = true, FirstLogIndex = first, EntryCount = count,
                CreatedAt = T0.AddHours(id), SealedAt = T0.AddHours(id + 1), Bytes = count * 100, Location = $"{id:D9}.wal",
            });
            first += count;
        }
        long lastIndex = first - 1;
        int snapshotCount = rng.Next(1, 41);
        var applied = Enumerable.Range(0, snapshotCount).Select(_ => (long)rng.Next(0, (int)lastIndex + 1)).Order().ToList();
        // Gaps between snapshots: minutes, hours, days or weeks, so every bucket rule matters.
        DateTimeOffset t = T0;
        var snapshots = new List<RestorableSnapshot>();
        for (int i = 0; i < snapshotCount; i++)
        {
            t += rng.Next(4) switch
            {
                0 => TimeSpan.FromMinutes(rng.Next(1, 60)),
                1 => TimeSpan.FromHours(rng.Next(1, 30)),
                2 => TimeSpan.FromDays(rng.Next(1, 10)),
                _ => TimeSpan.FromDays(rng.Next(7, 120)),
            };
            snapshots.Add(new RestorableSnapshot
            {
                Id = $"s{i:D2}", CreatedAt = t, CompletedAt = t.AddSeconds(30), Wal = new WalPosition([], null, applied[i]),
                Files = [new ManifestFile("store.sqlite", 10, new string('0', 64))], Location = $"s{i:D2}",
            });
        }
        int? Count() => rng.Next(3) == 0 ? null : rng.Next(0, 6);
        RetentionPolicy policy;
        do
        {
            policy = new RetentionPolicy
            {
                KeepLast = Count(), KeepHourly = Count(), KeepDaily = Count(), KeepWeekly = Count(), KeepMonthly = Count(), KeepYearly = Count(),
                KeepWithin = rng.Next(3) == 0 ? TimeSpan.FromHours(rng.Next(1, 24 * 60)) : null,
            };
        }
        while (policy.IsEmpty);
        return new History(snapshots, segments, policy, seed);
    }

    private static Arbitrary<History> Histories() => Gen.Choose(0, int.MaxValue - 1).Select(Build).ToArbitrary();

    private static readonly Config Config = Config.QuickThrowOnFailure.WithMaxTest(300);

    [Fact]
    public void EveryRetainedSnapshotStillPlansToEveryLogIndexInItsWindow()
    {
        Prop.ForAll(Histories(), h =>
        {
            NamespaceRetentionPlan plan = RetentionPlanner.PlanNamespace(h.Snapshots, h.Segments, h.Policy);
            var kept = plan.KeptSnapshots.OrderBy(s => s.Wal.AppliedLogIndex).ThenBy(s => s.CompletedAt).ToList();
            var segments = plan.KeptSegments;
            long end = h.Segments.Max(s => s.LastLogIndex);
            for (int i = 0; i < kept.Count; i++)
            {
                long a = kept[i].Wal.AppliedLogIndex!.Value;
                long windowEnd = i + 1 < kept.Count ? kept[i + 1].Wal.AppliedLogIndex!.Value : end;
                for (long x = Math.Max(a, 1); x <= windowEnd; x++)
                {
                    PointInTimePlan p = PointInTimePlanner.Plan("ns", RestoreTarget.AtLogIndex(x), kept, segments);
                    if (p.LastLogIndex != x || p.Snapshot.Wal.AppliedLogIndex > x)
                    {
                        return false;
                    }
                }
            }
            // And every time in the archive's span after the oldest retained snapshot completed.
            foreach (RestorableSnapshot s in kept)
            {
                PointInTimePlanner.Plan("ns", RestoreTarget.AtTime(s.CompletedAt!.Value), kept, segments);
            }
            return true;
        }).Check(Config);
    }

    [Fact]
    public void TheNewestSnapshotAndEverythingThePolicySelectsAreRetainedAndNothingElse()
    {
        Prop.ForAll(Histories(), h =>
        {
            NamespaceRetentionPlan plan = RetentionPlanner.PlanNamespace(h.Snapshots, h.Segments, h.Policy);
            var selected = ReferencePolicy(h.Snapshots, h.Policy);
            RestorableSnapshot newest = h.Snapshots.MaxBy(s => s.CreatedAt)!;
            selected.Add(newest.Id);
            var kept = plan.KeptSnapshots.Select(s => s.Id).ToHashSet();
            return kept.SetEquals(selected) && kept.Contains(newest.Id) && plan.Snapshots.Count == h.Snapshots.Count;
        }).Check(Config);
    }

    [Fact]
    public void OnlySegmentsBeforeTheOldestRetainedStartGoAndTheyAllGo()
    {
        Prop.ForAll(Histories(), h =>
        {
            NamespaceRetentionPlan plan = RetentionPlanner.PlanNamespace(h.Snapshots, h.Segments, h.Policy);
            long start = plan.KeptSnapshots.Min(s => s.Wal.AppliedLogIndex!.Value) + 1;
            return plan.Segments.All(d => d.Keep == (d.Item.LastLogIndex >= start));
        }).Check(Config);
    }

    /// <summary>An independent statement of restic's rules: for each rule, walk newest first and
    /// keep a backup when its bucket differs from the previous backup's; plus the oldest backup for
    /// a bucket rule with buckets to spare; keep-within from the newest backup's time.</summary>
    private static HashSet<string> ReferencePolicy(IReadOnlyList<RestorableSnapshot> snapshots, RetentionPolicy p)
    {
        var sorted = snapshots.OrderByDescending(s => s.CreatedAt).ThenBy(s => s.Id, StringComparer.Ordinal).ToList();
        var keep = new HashSet<string>();
        if (p.KeepLast is int n) { keep.UnionWith(sorted.Take(n).Select(s => s.Id)); }
        void Buckets(int? count, Func<DateTime, string> key)
        {
            if (count is not int c || c == 0) { return; }
            var distinct = sorted.GroupBy(s => key(s.CreatedAt.UtcDateTime)).Select(g => g.First()).ToList();
            keep.UnionWith(distinct.Take(c).Select(s => s.Id));
            if (distinct.Count < c) { keep.Add(sorted[^1].Id); }
        }
        Buckets(p.KeepHourly, t => t.ToString("yyyyMMddHH", System.Globalization.CultureInfo.InvariantCulture));
        Buckets(p.KeepDaily, t => t.ToString("yyyyMMdd", System.Globalization.CultureInfo.InvariantCulture));
        Buckets(p.KeepWeekly, t => $"{System.Globalization.ISOWeek.GetYear(t)}-{System.Globalization.ISOWeek.GetWeekOfYear(t)}");
        Buckets(p.KeepMonthly, t => t.ToString("yyyyMM", System.Globalization.CultureInfo.InvariantCulture));
        Buckets(p.KeepYearly, t => t.Year.ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (p.KeepWithin is TimeSpan w)
        {
            keep.UnionWith(sorted.Where(s => s.CreatedAt > sorted[0].CreatedAt - w || s.CreatedAt == sorted[0].CreatedAt).Select(s => s.Id));
        }
        return keep;
    }
}
