using PSBackup.Engine.Restore;

namespace PSBackup.Engine.Tests.Restore;

/// <summary>The planner alone, on hand-made listings.</summary>
public sealed class PointInTimePlannerTests
{
    private static readonly DateTimeOffset T0 = new(2026, 5, 1, 12, 0, 0, TimeSpan.Zero);

    /// <summary>Segments 1..n of 100 records each; segment k created at T0+k h, sealed at T0+k h+50 min
    /// (the last one unsealed when <paramref name="lastOpen"/>).</summary>
    private static List<ArchivedSegment> Segments(int n, bool lastOpen = false) =>
        Enumerable.Range(1, n).Select(k => Segment(k, 1 + (k - 1) * 100L, 100, !(lastOpen && k == n))).ToList();

    private static ArchivedSegment Segment(long id, long first, long count, bool @sealed, DateTimeOffset? observed = null) => new()
    {
        SegmentId = id,
        Sealed = @sealed,
        FirstLogIndex = first,
        EntryCount = count,
        CreatedAt = T0.AddHours(id),
        SealedAt = @sealed ? T0.AddHours(id).AddMinutes(50) : null,
        ObservedAt = observed,
        Bytes = 16 << 10,
        Location = $"wal/{id:D9}.wal",
    };

    private static RestorableSnapshot Snapshot(string id, long? applied, DateTimeOffset completed, params long[] segmentIds) => new()
    {
        Id = id,
        CreatedAt = completed.AddMinutes(-1),
        CompletedAt = completed,
        Wal = new WalPosition(segmentIds, null, applied),
        Files = [new ManifestFile("store.sqlite", 10, new string('0', 64))],
        Location = id,
    };

    [Fact]
    public void LogIndexTargetStartsAtTheSegmentHoldingAppliedPlusOneAndCutsTheBoundary()
    {
        var snapshots = new[] { Snapshot("a", 150, T0.AddHours(2).AddMinutes(10), 1, 2), Snapshot("b", 320, T0.AddHours(4), 1, 2, 3, 4) };
        PointInTimePlan plan = PointInTimePlanner.Plan("ns", RestoreTarget.AtLogIndex(310), snapshots, Segments(6));
        Assert.Equal("a", plan.Snapshot.Id); // b already holds 320 > 310
        Assert.Equal(151, plan.StartLogIndex);
        Assert.Equal([2L, 3, 4], plan.Segments.Select(s => s.SegmentId));
        Assert.Equal([false, false, true], plan.Segments.Select(s => s.Cut));
        Assert.Equal(310, plan.Segments[^1].LastLogIndex);
        Assert.Equal(310, plan.LastLogIndex);
        Assert.False(plan.TargetPastArchive);
    }

    [Fact]
    public void TimeTargetCountsSegmentsSealedByThenAndNothingOfTheOpenOne()
    {
        var snapshots = new[] { Snapshot("a", 40, T0.AddHours(1).AddMinutes(20), 1) };
        // T between segment 3's seal (3h50) and segment 4's seal (4h50).
        PointInTimePlan plan = PointInTimePlanner.Plan("ns", RestoreTarget.AtTime(T0.AddHours(4).AddMinutes(10)), snapshots, Segments(6));
        Assert.Equal(300, plan.LastLogIndex);
        Assert.Equal([1L, 2, 3], plan.Segments.Select(s => s.SegmentId));
        Assert.All(plan.Segments, s => Assert.False(s.Cut));
        Assert.Contains(plan.Notes, n => n.Contains("segment 4 was sealed at", StringComparison.Ordinal));

        // Exactly at a seal instant the segment counts whole.
        PointInTimePlan atSeal = PointInTimePlanner.Plan("ns", RestoreTarget.AtTime(T0.AddHours(4).AddMinutes(50)), snapshots, Segments(6));
        Assert.Equal(400, atSeal.LastLogIndex);
    }

    [Fact]
    public void TimeTargetUsesAPartialObservedByThenButNotOneObservedLater()
    {
        var snapshots = new[] { Snapshot("a", 40, T0.AddHours(1).AddMinutes(20), 1) };
        var segments = Segments(5);
        segments.Add(Segment(4, 301, 37, @sealed: false, observed: T0.AddHours(4).AddMinutes(5)));
        segments.Add(Segment(4, 301, 80, @sealed: false, observed: T0.AddHours(4).AddMinutes(30)));
        PointInTimePlan plan = PointInTimePlanner.Plan("ns", RestoreTarget.AtTime(T0.AddHours(4).AddMinutes(10)), snapshots, segments);
        Assert.Equal(337, plan.LastLogIndex);
        // The sealed copy is laid out, cut after the observed prefix.
        PlannedSegment boundary = plan.Segments[^1];
        Assert.Equal(4, boundary.SegmentId);
        Assert.True(boundary.Source.Sealed);
        Assert.True(boundary.Cut);
        Assert.Equal(337, boundary.LastLogIndex);
    }

    [Fact]
    public void SnapshotCompletedAfterTheTargetIsNeverUsed()
    {
        var snapshots = new[] { Snapshot("a", 40, T0.AddHours(1).AddMinutes(20), 1), Snapshot("b", 290, T0.AddHours(3).AddMinutes(45), 1, 2, 3) };
        PointInTimePlan plan = PointInTimePlanner.Plan("ns", RestoreTarget.AtTime(T0.AddHours(3).AddMinutes(44)), snapshots, Segments(6));
        Assert.Equal("a", plan.Snapshot.Id);
        Assert.Equal(200, plan.LastLogIndex);

        // Once it completed, its applied index counts even where the WAL proves less (segment 3
        // seals only at 3h50): the segment holding it is laid out cut there, so the log resumes after it.
        PointInTimePlan later = PointInTimePlanner.Plan("ns", RestoreTarget.AtTime(T0.AddHours(3).AddMinutes(46)), snapshots, Segments(6));
        Assert.Equal("b", later.Snapshot.Id);
        Assert.Equal(290, later.LastLogIndex);
        PlannedSegment only = Assert.Single(later.Segments);
        Assert.Equal(3, only.SegmentId);
        Assert.True(only.Cut);
        Assert.Equal(290, only.LastLogIndex);
    }

    [Fact]
    public void WithoutAnAppliedIndexTheWalStartsAtTheOldestSegmentTheSnapshotSaw()
    {
        var snapshots = new[] { Snapshot("a", null, T0.AddHours(3).AddMinutes(55), 2, 3, 4) };
        PointInTimePlan plan = PointInTimePlanner.Plan("ns", RestoreTarget.AtTime(T0.AddHours(5).AddMinutes(51)), snapshots, Segments(6));
        Assert.Null(plan.StartLogIndex);
        Assert.Equal([2L, 3, 4, 5], plan.Segments.Select(s => s.SegmentId));
        Assert.Equal(500, plan.LastLogIndex);

        // Such a snapshot never serves an exact log index: it may hold anything.
        var error = Assert.Throws<TargetBeforeFirstSnapshotException>(() => PointInTimePlanner.Plan("ns", RestoreTarget.AtLogIndex(450), snapshots, Segments(6)));
        Assert.Contains("applied log index", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MissingIdsAndLogIndexHolesAreGapsNamingWhatIsMissing()
    {
        var snapshots = new[] { Snapshot("a", 50, T0.AddHours(1).AddMinutes(55), 1) };
        var missing = Segments(7).Where(s => s.SegmentId is not (3 or 4)).ToList();
        var gap = Assert.Throws<WalGapException>(() => PointInTimePlanner.Plan("ns", RestoreTarget.AtLogIndex(550), snapshots, missing));
        Assert.Equal([3L, 4], gap.MissingSegmentIds);
        Assert.Contains("segments 3, 4 are not archived (log indexes 201..400)", gap.Message, StringComparison.Ordinal);
        // Before the gap is fine.
        Assert.Equal(200, PointInTimePlanner.Plan("ns", RestoreTarget.AtLogIndex(200), snapshots, missing).LastLogIndex);
        // A time target across it is a gap too.
        Assert.Throws<WalGapException>(() => PointInTimePlanner.Plan("ns", RestoreTarget.AtTime(T0.AddHours(6)), snapshots, missing));

        // Segment 3 missing: at 3h10 nothing proves it was sealed (restore to 200); at 4h10 segment 4
        // exists, created at 4h, so 3 was sealed by then and its records are lost: a gap.
        var noThree = Segments(6).Where(s => s.SegmentId != 3).ToList();
        Assert.Equal(200, PointInTimePlanner.Plan("ns", RestoreTarget.AtTime(T0.AddHours(3).AddMinutes(10)), snapshots, noThree).LastLogIndex);
        Assert.Equal([3L], Assert.Throws<WalGapException>(() => PointInTimePlanner.Plan("ns", RestoreTarget.AtTime(T0.AddHours(4).AddMinutes(10)), snapshots, noThree)).MissingSegmentIds);

        var shifted = Segments(5);
        shifted[3] = Segment(4, 310, 90, @sealed: true);
        var hole = Assert.Throws<WalGapException>(() => PointInTimePlanner.Plan("ns", RestoreTarget.AtLogIndex(350), snapshots, shifted));
        Assert.Contains("log indexes 301..309 are missing", hole.Message, StringComparison.Ordinal);

        // The first record after the snapshot is in no archived segment.
        var early = Assert.Throws<WalGapException>(() => PointInTimePlanner.Plan("ns", RestoreTarget.AtLogIndex(250), snapshots, Segments(5).Skip(1).ToList()));
        Assert.Equal([1L], early.MissingSegmentIds);
    }

    [Fact]
    public void PastTheEndRestoresTheLatestWithAFlag()
    {
        var snapshots = new[] { Snapshot("a", 50, T0.AddHours(1).AddMinutes(55), 1) };
        PointInTimePlan byIndex = PointInTimePlanner.Plan("ns", RestoreTarget.AtLogIndex(10_000), snapshots, Segments(4));
        Assert.True(byIndex.TargetPastArchive);
        Assert.Equal(400, byIndex.LastLogIndex);
        PointInTimePlan byTime = PointInTimePlanner.Plan("ns", RestoreTarget.AtTime(T0.AddDays(2)), snapshots, Segments(4));
        Assert.True(byTime.TargetPastArchive);
        Assert.Equal(400, byTime.LastLogIndex);
        // An open last segment without an observation: the latest provable is the last sealed one.
        PointInTimePlan open = PointInTimePlanner.Plan("ns", RestoreTarget.AtTime(T0.AddDays(2)), snapshots, Segments(4, lastOpen: true));
        Assert.Equal(300, open.LastLogIndex);
        Assert.False(open.TargetPastArchive);
    }

    [Fact]
    public void NoSnapshotOrNoTargetAreClearErrors()
    {
        Assert.Equal("NoSnapshot", Assert.Throws<NotFoundException>(() => PointInTimePlanner.Plan("ns", RestoreTarget.AtLogIndex(5), [], Segments(2))).ErrorId);
        Assert.Equal("InvalidRestoreTarget", Assert.Throws<InvalidInputException>(() => RestoreTarget.From(null, null)).ErrorId);
        Assert.Equal("InvalidRestoreTarget", Assert.Throws<InvalidInputException>(() => RestoreTarget.From(T0, 5)).ErrorId);
        Assert.Equal("InvalidTargetLogIndex", Assert.Throws<InvalidInputException>(() => RestoreTarget.AtLogIndex(0)).ErrorId);
    }
}
