using PSBackup.Engine.Restore;
using PSBackup.Engine.Tests.Support;
using PSBackup.Engine.Wal;
using PSBackup.Example;

namespace PSBackup.Engine.Tests.Restore;

public sealed class StoreSnapshotRestoreTests(PitrScenario scenario) : IClassFixture<PitrScenario>
{
    private const string Ns = PitrScenario.Ns;

    [Fact]
    public async Task RestoresTheNewestOrANamedSnapshotIntoDb()
    {
        string into = scenario.NewTarget("snap-newest");
        StoreSnapshotRestoreResult? newest = await RestoreOperations.RestoreSnapshotAsync(
            new RestoreStoreSnapshotOptions(scenario.DataDir, Ns) { TargetDataDir = into }, OperationContext.Default);
        Assert.NotNull(newest);
        Assert.Equal("snapshots/s650.sqlite", newest.Snapshot);
        Assert.Null(newest.ReplacedPath);
        scenario.AssertStateAt(scenario.Snapshots[2].Applied, ExampleStore.ReadState(Path.Combine(into, Ns, "db", "store.sqlite")));

        string named = scenario.NewTarget("snap-named");
        StoreSnapshotRestoreResult? first = await RestoreOperations.RestoreSnapshotAsync(
            new RestoreStoreSnapshotOptions(scenario.DataDir, Ns) { TargetDataDir = named, Snapshot = "snapshots/s170.sqlite" }, OperationContext.Default);
        Assert.Equal(scenario.Snapshots[0].Applied, first!.WalPosition.AppliedLogIndex);
        scenario.AssertStateAt(scenario.Snapshots[0].Applied, ExampleStore.ReadState(Path.Combine(named, Ns, "db", "store.sqlite")));
    }

    [Fact]
    public async Task NonEmptyDbNeedsForceAndTheReplacedOneIsKept()
    {
        string into = scenario.NewTarget("snap-occupied");
        string db = Path.Combine(into, Ns, "db");
        Directory.CreateDirectory(db);
        File.WriteAllText(Path.Combine(db, "store.sqlite"), "live");
        File.WriteAllText(Path.Combine(into, Ns, "keep.txt"), "not touched");
        var before = TreeState.Capture(scenario.Root);
        var options = new RestoreStoreSnapshotOptions(scenario.DataDir, Ns) { TargetDataDir = into };

        var refused = await Assert.ThrowsAsync<ConflictException>(() => RestoreOperations.RestoreSnapshotAsync(options, OperationContext.Default));
        Assert.Equal("RestoreTargetNotEmpty", refused.ErrorId);
        Assert.Contains("-Force", refused.Message, StringComparison.Ordinal);
        before.AssertUnchanged(scenario.Root);

        var asked = new List<string>();
        StoreSnapshotRestoreResult? result = await RestoreOperations.RestoreSnapshotAsync(options with { Force = true },
            new OperationContext { ShouldProcess = (t, _) => { asked.Add(t); return true; } });
        Assert.Equal([db], asked);
        Assert.Equal("live", File.ReadAllText(Path.Combine(result!.ReplacedPath!, "store.sqlite")));
        Assert.StartsWith(Path.Combine(into, Ns, "db.replaced-"), result.ReplacedPath, StringComparison.Ordinal);
        Assert.Equal("not touched", File.ReadAllText(Path.Combine(into, Ns, "keep.txt")));
        scenario.AssertStateAt(scenario.Snapshots[2].Applied, ExampleStore.ReadState(Path.Combine(db, "store.sqlite")));
    }

    [Fact]
    public async Task ADamagedSnapshotIsRefusedBeforeAnythingIsWritten()
    {
        string dataDir = scenario.NewTarget("snap-damaged-source");
        PointInTimeReplayTests.CopyTree(scenario.DataDir, dataDir);
        string snapshot = Path.Combine(dataDir, "backups", Ns, "snapshots", "s650.sqlite");
        byte[] bytes = File.ReadAllBytes(snapshot);
        bytes[^100] ^= 1;
        File.WriteAllBytes(snapshot, bytes);
        string into = scenario.NewTarget("snap-damaged-into");
        var before = TreeState.Capture(scenario.Root);
        bool asked = false;

        var error = await Assert.ThrowsAsync<IntegrityException>(() => RestoreOperations.RestoreSnapshotAsync(
            new RestoreStoreSnapshotOptions(dataDir, Ns) { TargetDataDir = into }, new OperationContext { ShouldProcess = (_, _) => asked = true }));
        Assert.Equal("BackupFileCorrupt", error.ErrorId);
        Assert.Contains("snapshots/s650.sqlite", error.Message, StringComparison.Ordinal);
        Assert.False(asked);
        before.AssertUnchanged(scenario.Root);
    }

    [Fact]
    public async Task WhatIfUnknownSnapshotAndCancellationWriteNothing()
    {
        string into = scenario.NewTarget("snap-whatif");
        var before = TreeState.Capture(scenario.Root);
        Assert.Null(await RestoreOperations.RestoreSnapshotAsync(
            new RestoreStoreSnapshotOptions(scenario.DataDir, Ns) { TargetDataDir = into }, new OperationContext { ShouldProcess = (_, _) => false }));

        var missing = await Assert.ThrowsAsync<NotFoundException>(() => RestoreOperations.RestoreSnapshotAsync(
            new RestoreStoreSnapshotOptions(scenario.DataDir, Ns) { TargetDataDir = into, Snapshot = "snapshots/nope.sqlite" }, OperationContext.Default));
        Assert.Contains("snapshots/s170.sqlite", missing.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<InvalidInputException>(() => RestoreOperations.RestoreSnapshotAsync(
            new RestoreStoreSnapshotOptions(scenario.DataDir, Ns) { TargetDataDir = into, Snapshot = "../users/x" }, OperationContext.Default));
        before.AssertUnchanged(scenario.Root);

        using var cts = new CancellationTokenSource();
        var context = new OperationContext
        {
            CancellationToken = cts.Token,
            ShouldProcess = (_, _) => { cts.Cancel(); return true; }, // cancelled once writing begins
        };
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => RestoreOperations.RestoreSnapshotAsync(
            new RestoreStoreSnapshotOptions(scenario.DataDir, Ns) { TargetDataDir = into }, context));
        Assert.False(Directory.Exists(Path.Combine(into, Ns, "db")));
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(into, Ns)));
    }

    [Fact]
    public async Task LocalSourceListsSnapshotsAndSegmentsFromEveryFolder()
    {
        LocalRestoreSource source = LocalRestoreSource.Open(scenario.DataDir, Ns);
        IReadOnlyList<RestorableSnapshot> snapshots = await source.ListSnapshotsAsync(CancellationToken.None);
        Assert.Equal(["snapshots/s170.sqlite", "snapshots/s420.sqlite", "snapshots/s650.sqlite"], snapshots.Select(s => s.Id).Order(StringComparer.Ordinal));
        IReadOnlyList<ArchivedSegment> segments = await source.ListSegmentsAsync(CancellationToken.None);
        Assert.Equal(scenario.Archived.Select(s => s.SegmentId), segments.Select(s => s.SegmentId));
        Assert.All(segments.Zip(scenario.Archived), p =>
        {
            Assert.Equal(p.Second.FirstLogIndex, p.First.FirstLogIndex);
            Assert.Equal(p.Second.EntryCount, p.First.EntryCount);
            Assert.Equal(p.Second.LastModifiedAt, p.First.SealedAt);
        });
        Assert.Empty(source.Ignored);
        Assert.Throws<InvalidInputException>(() => LocalRestoreSource.Open(scenario.DataDir, "../users"));
        Assert.Throws<NotFoundException>(() => LocalRestoreSource.Open(scenario.DataDir, "nobody"));
    }
}

public sealed class WalCutterTests
{
    [Fact]
    public void CutWritesAValidActiveSegmentWithExactlyTheRecordsUpToTheTarget()
    {
        using var dir = new TestDirectory();
        var payloads = Enumerable.Range(0, 60).Select(i => Enumerable.Repeat((byte)i, i * 13 % 500).ToArray()).ToList();
        string source = dir.Combine("000000007.wal");
        using (WalSegmentWriter writer = WalSegmentWriter.Create(source, 1001, new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero), 64 << 10))
        {
            foreach (byte[] p in payloads)
            {
                writer.Append(p);
            }
            writer.Seal(new DateTimeOffset(2026, 1, 1, 1, 0, 0, TimeSpan.Zero));
        }

        foreach (long target in new long[] { 1001, 1030, 1059, 1060 })
        {
            string cut = dir.Combine($"cut-{target}", "000000007.wal");
            Directory.CreateDirectory(Path.GetDirectoryName(cut)!);
            WalSegmentInfo info = WalCutter.Cut(source, cut, target, "ns", 7);
            WalSegmentInfo check = WalSegmentReader.Inspect(cut, "ns");
            Assert.True(check.Valid);
            Assert.False(check.Sealed);
            Assert.False(check.TornTail);
            Assert.Equal(1001, check.FirstLogIndex);
            Assert.Equal(target - 1000, check.EntryCount);
            Assert.Equal(new FileInfo(source).Length, check.Bytes);
            Assert.Equal(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero), check.CreatedAt);
            Assert.Equal(info.EntryCount, check.EntryCount);
            List<WalRecord> records = WalSegmentReader.ReadRecords(cut).ToList();
            Assert.Equal(Enumerable.Range(1001, (int)(target - 1000)).Select(i => (long)i), records.Select(r => r.LogIndex));
            Assert.All(records, r => Assert.Equal(payloads[(int)(r.LogIndex - 1001)], r.Data));
        }

        string outside = dir.Combine("outside.wal");
        Assert.Throws<InvalidInputException>(() => WalCutter.Cut(source, outside, 1061, "ns", 7));
        Assert.Throws<InvalidInputException>(() => WalCutter.Cut(source, outside, 1000, "ns", 7));
        Assert.False(File.Exists(outside));
    }
}
