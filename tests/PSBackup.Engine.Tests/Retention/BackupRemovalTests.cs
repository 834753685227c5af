using PSBackup.Engine.Restore;
using PSBackup.Engine.Retention;

namespace PSBackup.Engine.Tests.Retention;

/// <summary>Remove-Backup's chain rule: a removal may not make any log index unrestorable that was
/// restorable before (the snapshot itself through the WAL archived contiguously after it).</summary>
public sealed class BackupRemovalTests
{
    private static readonly DateTimeOffset T0 = new(2026, 3, 1, 0, 0, 0, TimeSpan.Zero);

    private static RestorableSnapshot Snap(string id, long applied) => new()
    {
        Id = id, CreatedAt = T0, CompletedAt = T0, Wal = new WalPosition([], null, applied), Files = [], Location = id,
    };

    /// <summary>Segment id n holds log indexes [100(n-1)+1, 100n].</summary>
    private static ArchivedSegment Seg(long id) => new()
    {
        SegmentId = id, Sealed = true, FirstLogIndex = (100 * (id - 1)) + 1, EntryCount = 100, CreatedAt = T0, SealedAt = T0, Bytes = 1, Location = $"seg{id}",
    };

    private static string? Break(RestorableSnapshot[] snaps, ArchivedSegment[] segs, RestorableSnapshot[] snapsGoing, ArchivedSegment[] segsGoing) =>
        BackupRemoval.ChainBreak("ns", snaps, segs, snapsGoing.ToHashSet(), segsGoing.ToHashSet());

    [Fact]
    public void Restorable_runs_from_each_snapshot_through_the_contiguous_WAL_after_it()
    {
        ArchivedSegment[] segs = [Seg(1), Seg(2), Seg(3), Seg(5)];
        Assert.Equal([(150L, 300L)], BackupRemoval.Restorable([Snap("a", 150)], segs));
        Assert.Equal([(150L, 300L), (420L, 500L)], BackupRemoval.Restorable([Snap("a", 150), Snap("b", 420)], segs));
        Assert.Equal([(600L, 600L)], BackupRemoval.Restorable([Snap("c", 600)], segs)); // past the archive: the snapshot alone
    }

    [Fact]
    public void Segments_before_every_snapshot_start_go_freely_a_needed_one_does_not()
    {
        RestorableSnapshot a = Snap("a", 150);
        ArchivedSegment[] segs = [Seg(1), Seg(2), Seg(3)];
        Assert.Null(Break([a], segs, [], [segs[0]]));                       // 1..100 precede applied 150
        Assert.Contains("201..300", Break([a], segs, [], [segs[2]]));        // the end of the chain
        Assert.Contains("151..300", Break([a], segs, [], [segs[1]]));        // the segment holding 151
    }

    [Fact]
    public void A_snapshot_goes_when_an_older_one_still_reaches_everything_it_did()
    {
        RestorableSnapshot old = Snap("old", 50), mid = Snap("mid", 150);
        ArchivedSegment[] segs = [Seg(1), Seg(2), Seg(3)];
        Assert.Null(Break([old, mid], segs, [mid], []));                     // old + WAL reach 150..300 too
        Assert.Contains("50..149", Break([old, mid], segs, [old], []));      // the oldest window goes
        Assert.Contains("last snapshot", Break([old], segs, [old], []));
        // With a hole between them the newer one is the only way past the hole.
        ArchivedSegment[] holey = [Seg(1), Seg(3)];
        Assert.Contains("200..300", Break([Snap("x", 50), Snap("y", 200)], holey, [Snap("y", 200)], []));
    }

    [Fact]
    public void A_partial_covered_by_its_sealed_copy_goes_freely()
    {
        RestorableSnapshot a = Snap("a", 150);
        ArchivedSegment partial = Seg(2) with { Sealed = false, EntryCount = 40, SealedAt = null, Location = "p2" };
        ArchivedSegment[] segs = [Seg(1), partial, Seg(2)];
        Assert.Null(Break([a], segs, [], [partial]));
    }
}
