using PSBackup.Engine.Repository;
using PSBackup.Engine.Restore;
using PSBackup.Engine.Tests.Support;
using PSBackup.Engine.Wal;

namespace PSBackup.Engine.Tests.Restore;

/// <summary>The replay proof once more, reading snapshots and WAL from a repository (shipped there
/// with the repository operations) through <see cref="RepositoryRestoreSource"/>.</summary>
public sealed class RepositoryRestoreTests(RepositoryPitrScenario scenario) : IClassFixture<RepositoryPitrScenario>
{
    private const string Ns = PitrScenario.Ns;

    private Task<RepositoryRestoreSource> OpenAsync() => RepositoryRestoreSource.OpenAsync(scenario.Repository!, Ns, CancellationToken.None);

    [Fact]
    public async Task ListsTheRepositorySnapshotsAndSegmentsWithTheirFacts()
    {
        using RepositoryRestoreSource source = await OpenAsync();
        IReadOnlyList<RestorableSnapshot> snapshots = await source.ListSnapshotsAsync(CancellationToken.None);
        Assert.Equal(scenario.RepositorySnapshots.Select(s => s.BackupId), snapshots.Select(s => s.Id));
        Assert.Equal(scenario.RepositorySnapshots.Select(s => (long?)s.Applied), snapshots.Select(s => s.Wal.AppliedLogIndex));
        Assert.Equal(scenario.RepositorySnapshots.Select(s => (DateTimeOffset?)s.CompletedAt), snapshots.Select(s => s.CompletedAt));
        Assert.All(snapshots, s => Assert.All(s.Files, f => Assert.False(f.Path.StartsWith("db/", StringComparison.Ordinal))));

        IReadOnlyList<ArchivedSegment> segments = await source.ListSegmentsAsync(CancellationToken.None);
        Assert.Equal(scenario.Archived.Select(s => s.SegmentId), segments.Select(s => s.SegmentId));
        foreach ((WalSegmentInfo local, ArchivedSegment stored) in scenario.Archived.Zip(segments))
        {
            Assert.True(stored.Sealed);
            Assert.Equal(local.FirstLogIndex, stored.FirstLogIndex);
            Assert.Equal(local.EntryCount, stored.EntryCount);
            Assert.Equal(local.LastModifiedAt, stored.SealedAt);
            Assert.Equal(local.CreatedAt, stored.CreatedAt);
            Assert.Matches("^[0-9a-f]{64}$", stored.Sha256);
        }
        Assert.Empty(source.Ignored);
    }

    [Fact]
    public async Task RandomTargetsFromTheRepositoryReplayToExactlyTheWritersState()
    {
        var random = new Random(20261121);
        long firstApplied = scenario.RepositorySnapshots[0].Applied;
        DateTimeOffset firstCompleted = scenario.RepositorySnapshots[0].CompletedAt;
        DateTimeOffset lastSeal = scenario.Archived[^1].LastModifiedAt!.Value;
        var targets = new List<RestoreTarget>();
        for (int i = 0; i < 6; i++)
        {
            targets.Add(i % 2 == 0
                ? RestoreTarget.AtLogIndex(random.NextInt64(firstApplied, scenario.LastArchivedLogIndex + 1))
                : RestoreTarget.AtTime(firstCompleted + TimeSpan.FromMilliseconds(random.NextInt64(0, (long)(lastSeal - firstCompleted).TotalMilliseconds))));
        }
        targets.Add(RestoreTarget.AtLogIndex(scenario.LastLogIndex + 50)); // past the last shipped record

        using RepositoryRestoreSource source = await OpenAsync();
        for (int i = 0; i < targets.Count; i++)
        {
            RestoreTarget target = targets[i];
            string into = scenario.NewTarget($"repo-random-{i:00}");
            var options = new RestorePointInTimeOptions(scenario.DataDir, Ns) { TargetTime = target.Time, TargetLogIndex = target.LogIndex, TargetDataDir = into };
            PointInTimeRestoreResult result = await RestoreOperations.RestorePointInTimeAsync(options, source, OperationContext.Default);
            Assert.True(result.Restored);
            long expected = target.LogIndex is long li ? Math.Min(li, scenario.LastArchivedLogIndex) : scenario.ExpectedIndexAt(target.Time!.Value);
            Assert.Equal(expected, result.LastLogIndex);
            Assert.Equal(target.LogIndex > scenario.LastLogIndex, result.TargetPastArchive);
            Assert.Contains(scenario.RepositorySnapshots, s => s.BackupId == result.Plan.Snapshot.Id);

            // The same plan as from the local backup root: same records, same segments.
            PointInTimePlan local = await RestoreOperations.PlanPointInTimeAsync(options, OperationContext.Default);
            Assert.Equal(local.LastLogIndex, result.Plan.LastLogIndex);
            Assert.Equal(local.Segments.Select(s => (s.SegmentId, s.LastLogIndex)), result.Plan.Segments.Select(s => (s.SegmentId, s.LastLogIndex)));

            scenario.AssertStateAt(result.LastLogIndex, PitrScenario.ReplayAndRead(into));
        }
    }

    [Fact]
    public async Task SnapshotRestoreFromTheRepositoryByBackupIdAndNewest()
    {
        using RepositoryRestoreSource source = await OpenAsync();
        (string id, long applied, _) = scenario.RepositorySnapshots[1];
        string into = scenario.NewTarget("repo-snapshot");
        StoreSnapshotRestoreResult? result = await RestoreOperations.RestoreSnapshotAsync(
            new RestoreStoreSnapshotOptions(scenario.DataDir, Ns) { Snapshot = id, TargetDataDir = into }, source, OperationContext.Default);
        Assert.NotNull(result);
        Assert.Equal(id, result.Snapshot);
        Assert.Equal(applied, result.WalPosition.AppliedLogIndex);
        Assert.Equal(applied, PSBackup.Example.ExampleStore.ReadState(PSBackup.Example.ExampleStore.DbPath(Path.Combine(into, Ns))).AppliedLogIndex);

        string newest = scenario.NewTarget("repo-snapshot-newest");
        StoreSnapshotRestoreResult? latest = await RestoreOperations.RestoreSnapshotAsync(
            new RestoreStoreSnapshotOptions(scenario.DataDir, Ns) { TargetDataDir = newest }, source, OperationContext.Default);
        Assert.Equal(scenario.RepositorySnapshots[^1].BackupId, latest!.Snapshot);
    }

    [Fact]
    public async Task ADamagedPackFailsTheRestoreWithNothingWritten()
    {
        string copy = scenario.NewTarget("repo-damaged");
        PointInTimeReplayTests.CopyTree(scenario.Repository!.Location, copy);
        foreach (string pack in Directory.EnumerateFiles(Path.Combine(copy, "packs"), "*", SearchOption.AllDirectories))
        {
            byte[] bytes = File.ReadAllBytes(pack);
            bytes[bytes.Length / 2] ^= 0x5a;
            File.WriteAllBytes(pack, bytes);
        }
        string into = scenario.NewTarget("repo-damaged-into");
        using RepositoryRestoreSource source = await RepositoryRestoreSource.OpenAsync(new RepositoryTarget { Location = copy }, Ns, CancellationToken.None);
        await Assert.ThrowsAnyAsync<PSBackupException>(() => RestoreOperations.RestorePointInTimeAsync(
            new RestorePointInTimeOptions(scenario.DataDir, Ns) { TargetLogIndex = scenario.LastArchivedLogIndex - 2, TargetDataDir = into }, source, OperationContext.Default));
        Assert.Empty(Directory.Exists(into) ? Directory.EnumerateFileSystemEntries(into) : []);
    }

    [Fact]
    public async Task AnotherNamespaceIsRefused()
    {
        using RepositoryRestoreSource source = await OpenAsync();
        await Assert.ThrowsAsync<InvalidInputException>(() => RestoreOperations.PlanPointInTimeAsync(
            new RestorePointInTimeOptions(scenario.DataDir, "orders") { TargetLogIndex = 5 }, source, OperationContext.Default));
        await Assert.ThrowsAsync<InvalidInputException>(() => RepositoryRestoreSource.OpenAsync(scenario.Repository!, "../users", CancellationToken.None));
    }
}
