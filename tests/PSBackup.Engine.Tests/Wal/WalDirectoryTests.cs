using PSBackup.Engine.Tests.Support;
using PSBackup.Engine.Wal;
using static PSBackup.Engine.Tests.Wal.WalTestData;

namespace PSBackup.Engine.Tests.Wal;

public sealed class WalDirectoryTests : IDisposable
{
    private readonly TestDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private string Segment(long id, long firstLogIndex, int records, bool seal) =>
        WriteSegment(_dir.Combine(WalFormat.SegmentFileName(id)), firstLogIndex, Payloads(records, (int)id), seal);

    [Fact]
    public void ContinuousDirectoryHasNoGapAndIgnoresOtherFiles()
    {
        Segment(1, 1, 5, true);
        Segment(2, 6, 3, true);
        Segment(3, 9, 2, false);
        File.WriteAllText(_dir.Combine("notes.txt"), "x");
        File.WriteAllText(_dir.Combine("000000004.wal.tmp"), "x");
        File.WriteAllText(_dir.Combine("4.wal"), "x");
        Directory.CreateDirectory(_dir.Combine("000000009.wal"));

        WalDirectoryReport report = WalDirectory.Scan(_dir.Path, "ns");
        Assert.Equal([1L, 2L, 3L], report.Segments.Select(s => s.SegmentId));
        Assert.All(report.Segments, s => Assert.Equal("ns", s.Namespace));
        Assert.Empty(report.MissingSegmentIds);
        Assert.Empty(report.ContinuityErrors);
        Assert.False(report.HasGap);
    }

    [Fact]
    public void MissingIdsAreListed()
    {
        Segment(4, 1, 2, true);
        Segment(5, 3, 2, true);
        Segment(8, 5, 2, false);

        WalDirectoryReport report = WalDirectory.Scan(_dir.Path, "ns");
        Assert.Equal([6L, 7L], report.MissingSegmentIds);
        Assert.True(report.HasGap);
        string error = Assert.Single(report.ContinuityErrors);
        Assert.Contains("5", error);
        Assert.Contains("8", error);
        Assert.Contains("6, 7", error);
    }

    [Fact]
    public void LogIndexDiscontinuityNamesSegmentsAndIndexes()
    {
        Segment(1, 10, 5, true);  // 10..14
        Segment(2, 17, 3, true);  // expected 15
        Segment(3, 20, 1, false);

        WalDirectoryReport report = WalDirectory.Scan(_dir.Path, "ns");
        Assert.Empty(report.MissingSegmentIds);
        string error = Assert.Single(report.ContinuityErrors);
        Assert.Contains("segments 1 and 2", error);
        Assert.Contains("17", error);
        Assert.Contains("expected 15", error);
        Assert.True(report.HasGap);
    }

    [Fact]
    public void UnsealedSegmentThatIsNotTheNewest()
    {
        Segment(1, 1, 2, true);
        Segment(2, 3, 2, false);
        Segment(3, 5, 2, false);

        WalDirectoryReport report = WalDirectory.Scan(_dir.Path, "ns");
        string error = Assert.Single(report.ContinuityErrors);
        Assert.Contains("Segment 2", error);
        Assert.Contains("not sealed", error);
        Assert.Contains("newest is 3", error);
    }

    [Fact]
    public void CorruptSealedSegmentIsAContinuityError()
    {
        Segment(1, 1, 4, true);
        string two = Segment(2, 5, 4, true);
        Segment(3, 9, 1, false);
        FlipBit(two, 64 + 9);

        WalDirectoryReport report = WalDirectory.Scan(_dir.Path, "ns");
        Assert.False(report.Segments[1].Valid);
        string error = Assert.Single(report.ContinuityErrors);
        Assert.Contains("Segment 2", error);
        Assert.Contains("corrupt", error);
        Assert.Contains("offset 64", error);
    }

    [Fact]
    public void EmptyNewestSegmentWithoutAFirstLogIndexIsNotAGap()
    {
        // walfs stamps FirstLogIndex at the first write; a fresh active segment holds 0.
        Segment(1, 1, 3, true);
        Segment(2, 0, 0, false);
        Assert.Empty(WalDirectory.Scan(_dir.Path, "ns").ContinuityErrors);
    }

    [Fact]
    public void MissingDirectoryIsNotFound()
    {
        Assert.Throws<NotFoundException>(() => WalDirectory.Scan(_dir.Combine("nope"), "ns"));
    }
}
