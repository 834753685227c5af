using PSBackup.Engine.Tests.Support;
using PSBackup.Engine.Wal;
using static PSBackup.Engine.Tests.Wal.WalTestData;

namespace PSBackup.Engine.Tests.Wal;

public sealed class WalGetSegmentsTests : IDisposable
{
    private readonly TestDirectory _dir = new();
    private readonly string _data;

    public WalGetSegmentsTests()
    {
        _data = _dir.Combine("data");
        CreateNamespace(_data, "users", (4, true), (3, true), (2, false));
    }

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task ListsEverySegmentInIdOrder()
    {
        WalDirectoryReport report = await WalOperations.GetSegmentsAsync(new GetWalSegmentOptions(_data, "users"), OperationContext.Default);
        Assert.Equal([1L, 2L, 3L], report.Segments.Select(s => s.SegmentId));
        Assert.Equal([true, true, false], report.Segments.Select(s => s.Sealed));
        Assert.Equal([1L, 5L, 8L], report.Segments.Select(s => s.FirstLogIndex));
        Assert.Equal([4L, 3L, 2L], report.Segments.Select(s => s.EntryCount));
        Assert.All(report.Segments, s => Assert.True(s.Valid));
        Assert.False(report.HasGap);
        Assert.Equal(Path.Combine(_data, "users", "wal"), report.WalDirectory);
    }

    [Fact]
    public async Task SegmentIdFilter()
    {
        WalDirectoryReport report = await WalOperations.GetSegmentsAsync(new GetWalSegmentOptions(_data, "users") { SegmentId = 2 }, OperationContext.Default);
        Assert.Equal(2, Assert.Single(report.Segments).SegmentId);

        var ex = await Assert.ThrowsAsync<NotFoundException>(() =>
            WalOperations.GetSegmentsAsync(new GetWalSegmentOptions(_data, "users") { SegmentId = 9 }, OperationContext.Default));
        Assert.Contains("000000009.wal", ex.Message);
    }

    [Theory]
    [InlineData("..")]
    [InlineData("a/b")]
    [InlineData("")]
    [InlineData("/abs")]
    [InlineData(".")]
    [InlineData("a\\b")]
    public async Task BadNamespaceNamesAreRejected(string ns)
    {
        await Assert.ThrowsAsync<InvalidInputException>(() =>
            WalOperations.GetSegmentsAsync(new GetWalSegmentOptions(_data, ns), OperationContext.Default));
    }

    [Fact]
    public async Task MissingDataDirIsNotFound()
    {
        await Assert.ThrowsAsync<NotFoundException>(() =>
            WalOperations.GetSegmentsAsync(new GetWalSegmentOptions(_dir.Combine("nope"), "users"), OperationContext.Default));
    }

    [Fact]
    public async Task MissingWalDirIsNotFoundWithAHint()
    {
        Directory.CreateDirectory(Path.Combine(_data, "orders"));
        var ex = await Assert.ThrowsAsync<NotFoundException>(() =>
            WalOperations.GetSegmentsAsync(new GetWalSegmentOptions(_data, "orders"), OperationContext.Default));
        Assert.Contains(Path.Combine("orders", "wal"), ex.Message);
        Assert.Contains("-Namespace", ex.Message);
    }

    [Fact]
    public async Task ReportsACorruptSegmentWithoutThrowing()
    {
        FlipBit(Path.Combine(_data, "users", "wal", "000000001.wal"), 70);
        WalDirectoryReport report = await WalOperations.GetSegmentsAsync(new GetWalSegmentOptions(_data, "users"), OperationContext.Default);
        Assert.False(report.Segments[0].Valid);
        Assert.Equal(64, report.Segments[0].ErrorOffset);
        Assert.True(report.HasGap);
    }
}
