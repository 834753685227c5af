using PSBackup.Engine.Restore;
using PSBackup.Engine.Snapshots;

namespace PSBackup.Engine.Tests.Restore;

/// <summary>The planner with stores that keep a WAL checkpoint (UnisonDB) or only a WAL high-water
/// mark: where the laid-out WAL starts and which snapshots serve which targets.</summary>
public sealed class CheckpointPlannerTests
{
    private static readonly DateTimeOffset T0 = new(2026, 5, 1, 12, 0, 0, TimeSpan.Zero);

    private static List<ArchivedSegment> Segments(int n) =>
        Enumerable.Range(1, n).Select(k => new ArchivedSegment
        {
            SegmentId = k,
            Sealed = true,
            FirstLogIndex = 1 + (k - 1) * 100L,
            EntryCount = 100,
            CreatedAt = T0.AddHours(k),
            SealedAt = T0.AddHours(k).AddMinutes(50),
            Bytes = 16 << 10,
            Location = $"wal/{k:D9}.seg",
        }).ToList();

    private static RestorableSnapshot Unison(string id, long applied, long segment, DateTimeOffset completed, long? hlcMs = null) => new()
    {
        Id = id,
        CreatedAt = completed.AddMinutes(-1),
        CompletedAt = completed,
        Wal = new WalPosition([1, 2, 3, 4], null, applied) { Checkpoint = new StoreCheckpoint(applied, segment, 4096, 0, 0) { LogIndex = applied, Hlc = hlcMs } },
        Store = StoreEngines.Lmdb,
        Files = [new ManifestFile("data.mdb", 10, new string('0', 64))],
        Location = id,
    };

    [Fact]
    public void The_checkpoint_records_segment_is_laid_out_even_when_replay_starts_in_the_next_one()
    {
        // The checkpoint is the last record of segment 2 (log index 200): UnisonDB reads it at
        // 2:<offset> and skips it, so segment 2 must be there although replay applies 201 on.
        PointInTimePlan plan = PointInTimePlanner.Plan("ns", RestoreTarget.AtLogIndex(250), [Unison("s", 200, 2, T0.AddDays(1))], Segments(4));
        Assert.Equal(201, plan.StartLogIndex);
        Assert.Equal([2L, 3], plan.Segments.Select(s => s.SegmentId));
        Assert.Equal(200, plan.Segments[0].FirstLogIndex + plan.Segments[0].RecordCount - 1);
        Assert.Equal(250, plan.Segments[^1].LastLogIndex);
        Assert.Equal(200, plan.Checkpoint!.LogIndex);
    }

    [Fact]
    public void A_target_at_the_checkpoint_itself_lays_out_its_segment_cut_there()
    {
        PointInTimePlan plan = PointInTimePlanner.Plan("ns", RestoreTarget.AtLogIndex(150), [Unison("s", 150, 2, T0.AddDays(1))], Segments(4));
        PlannedSegment only = Assert.Single(plan.Segments);
        Assert.Equal((2L, 150L, true), (only.SegmentId, only.LastLogIndex, only.Cut));
    }

    [Fact]
    public void A_missing_checkpoint_segment_is_a_gap_not_a_silent_start_elsewhere()
    {
        List<ArchivedSegment> segments = Segments(4).Where(s => s.SegmentId != 2).ToList();
        WalGapException e = Assert.Throws<WalGapException>(() => PointInTimePlanner.Plan("ns", RestoreTarget.AtLogIndex(350), [Unison("s", 200, 2, T0.AddDays(1))], segments));
        Assert.Contains(2L, e.MissingSegmentIds);
    }

    [Fact]
    public void A_checkpointed_snapshot_serves_time_targets_from_its_checkpoint_records_time()
    {
        // The copy completed a day later, but it holds exactly the records up to the checkpoint,
        // written by 2h30 (HLC): a target of 3h55 starts from it.
        long hlc = T0.AddHours(2).AddMinutes(30).ToUnixTimeMilliseconds();
        PointInTimePlan plan = PointInTimePlanner.Plan("ns", RestoreTarget.AtTime(T0.AddHours(3).AddMinutes(55)), [Unison("s", 200, 2, T0.AddDays(1), hlc)], Segments(4));
        Assert.Equal("s", plan.Snapshot.Id);
        Assert.Equal(300, plan.LastLogIndex);

        // Without the record time the completion time still rules.
        Assert.Throws<TargetBeforeFirstSnapshotException>(() =>
            PointInTimePlanner.Plan("ns", RestoreTarget.AtTime(T0.AddHours(3).AddMinutes(55)), [Unison("s", 200, 2, T0.AddDays(1))], Segments(4)));
    }

    [Fact]
    public void A_snapshot_without_an_applied_index_serves_log_index_targets_above_its_high_water_mark()
    {
        var snapshot = new RestorableSnapshot
        {
            Id = "sqlite",
            CreatedAt = T0.AddHours(2),
            CompletedAt = T0.AddHours(2).AddMinutes(1),
            Wal = new WalPosition([1, 2, 3], 280, null) { CompletedLogIndex = 285 },
            Files = [new ManifestFile("store.sqlite", 10, new string('0', 64))],
            Location = "sqlite",
        };
        PointInTimePlan plan = PointInTimePlanner.Plan("ns", RestoreTarget.AtLogIndex(350), [snapshot], Segments(4));
        Assert.Null(plan.StartLogIndex);
        Assert.Equal([1L, 2, 3, 4], plan.Segments.Select(s => s.SegmentId));
        Assert.Equal(350, plan.LastLogIndex);
        // Below the mark the snapshot may already hold later records: refused.
        Assert.Throws<TargetBeforeFirstSnapshotException>(() => PointInTimePlanner.Plan("ns", RestoreTarget.AtLogIndex(284), [snapshot], Segments(4)));
    }
}
