using PSBackup.Engine.Restore;
using PSBackup.Engine.Tests.Support;
using PSBackup.Engine.Wal;
using PSBackup.Example;

namespace PSBackup.Engine.Tests.Restore;

/// <summary>The acceptance test: restores to many targets, replays them with the example
/// database's own start-up replay, and compares every row with what the writer had at that target.</summary>
public sealed class PointInTimeReplayTests(PitrScenario scenario) : IClassFixture<PitrScenario>
{
    private const string Ns = PitrScenario.Ns;

    [Fact]
    public void ScenarioSpansEnoughSegmentsAndSnapshots()
    {
        Assert.True(scenario.Archived.Count >= 5, $"{scenario.Archived.Count} archived segments");
        Assert.True(scenario.Snapshots.Count >= 2);
        Assert.True(scenario.LastLogIndex > scenario.LastArchivedLogIndex, "the active segment holds unshipped records");
        // Shipped into two folders of the backup root.
        Assert.True(Directory.EnumerateFiles(Path.Combine(scenario.BackupRoot, "wal", "2026-03-01")).Any());
        Assert.True(Directory.EnumerateFiles(Path.Combine(scenario.BackupRoot, "wal", "later")).Any());
    }

    [Fact]
    public async Task RandomTargetsReplayToExactlyTheWritersState()
    {
        var random = new Random(20260301);
        long firstApplied = scenario.Snapshots[0].Applied;
        DateTimeOffset firstCompleted = scenario.Snapshots[0].CompletedAt;
        DateTimeOffset lastSeal = scenario.Archived[^1].LastModifiedAt!.Value;
        var targets = new List<RestoreTarget>();
        for (int i = 0; i < 14; i++)
        {
            targets.Add(i % 2 == 0
                ? RestoreTarget.AtLogIndex(random.NextInt64(firstApplied, scenario.LastArchivedLogIndex + 1))
                : RestoreTarget.AtTime(firstCompleted + TimeSpan.FromMilliseconds(random.NextInt64(0, (long)(lastSeal - firstCompleted).TotalMilliseconds))));
        }
        // Edges: a snapshot's own applied index (no replay), a segment's first and last record,
        // the instant a segment was sealed (it counts whole), and a millisecond before.
        WalSegmentInfo middle = scenario.Archived[scenario.Archived.Count / 2];
        targets.Add(RestoreTarget.AtLogIndex(scenario.Snapshots[1].Applied));
        targets.Add(RestoreTarget.AtLogIndex(middle.FirstLogIndex));
        targets.Add(RestoreTarget.AtLogIndex(middle.LastLogIndex!.Value));
        targets.Add(RestoreTarget.AtTime(middle.LastModifiedAt!.Value));
        targets.Add(RestoreTarget.AtTime(middle.LastModifiedAt!.Value.AddMilliseconds(-1)));

        var snapshotsUsed = new HashSet<string>();
        int cuts = 0, timeTargetsBetweenSeals = 0;
        for (int i = 0; i < targets.Count; i++)
        {
            RestoreTarget target = targets[i];
            string into = scenario.NewTarget($"random-{i:00}");
            var options = new RestorePointInTimeOptions(scenario.DataDir, Ns)
            {
                TargetTime = target.Time,
                TargetLogIndex = target.LogIndex,
                TargetDataDir = into,
            };
            PointInTimeRestoreResult result = await RestoreOperations.RestorePointInTimeAsync(options, OperationContext.Default);
            Assert.True(result.Restored);
            PointInTimePlan plan = result.Plan;
            Assert.False(plan.TargetPastArchive, $"target {target}");

            long expectedIndex = target.LogIndex ?? scenario.ExpectedIndexAt(target.Time!.Value);
            Assert.Equal(expectedIndex, plan.LastLogIndex);
            if (target.Time is { } t)
            {
                // Never a record that might be later than T.
                Assert.True(scenario.RecordTimes[(int)plan.LastLogIndex] <= t, $"record {plan.LastLogIndex} is later than {target}");
            }
            Assert.True(plan.Snapshot.Wal.AppliedLogIndex <= plan.LastLogIndex);

            // wal/ holds exactly the planned segments; only the boundary one may be cut (unsealed).
            string walDir = Path.Combine(into, Ns, "wal");
            WalDirectoryReport laidOut = WalDirectory.Scan(walDir, Ns);
            Assert.False(laidOut.HasGap, string.Join("; ", laidOut.ContinuityErrors));
            Assert.Equal(plan.Segments.Select(s => s.SegmentId), laidOut.Segments.Select(s => s.SegmentId));
            if (laidOut.Segments.Count > 0)
            {
                Assert.Equal(plan.LastLogIndex, laidOut.Segments[^1].LastLogIndex);
                Assert.True(laidOut.Segments.SkipLast(1).All(s => s.Sealed));
            }
            Assert.DoesNotContain(Directory.EnumerateFileSystemEntries(into), e => e.EndsWith(".tmp", StringComparison.Ordinal));

            ExampleState state = PitrScenario.ReplayAndRead(into);
            scenario.AssertStateAt(plan.LastLogIndex, state);
            snapshotsUsed.Add(plan.Snapshot.Id);
            cuts += plan.Segments.Count(s => s.Cut);
            if (target.Time is { } at && scenario.RecordTimes[(int)plan.LastLogIndex + 1] <= at)
            {
                timeTargetsBetweenSeals++; // later records existed at T but were not yet provably durable
            }
        }
        // The draw exercised what it should: several snapshots, cut boundaries, time targets inside a segment.
        Assert.True(snapshotsUsed.Count >= 2, string.Join(", ", snapshotsUsed));
        Assert.True(cuts >= 3, $"{cuts} cut segments");
        Assert.True(timeTargetsBetweenSeals >= 3, $"{timeTargetsBetweenSeals} time targets inside a segment");
    }

    [Fact]
    public async Task TimeTargetInsideASealedSegmentStopsAtThePreviousSealAndSaysWhy()
    {
        WalSegmentInfo segment = scenario.Archived.First(s => s.CreatedAt > scenario.Snapshots[^1].CompletedAt);
        // A record time inside the segment: it was written, but only the seal proves durability.
        DateTimeOffset t = scenario.RecordTimes[(int)segment.FirstLogIndex + 1];
        PointInTimePlan plan = await RestoreOperations.PlanPointInTimeAsync(
            new RestorePointInTimeOptions(scenario.DataDir, Ns) { TargetTime = t }, OperationContext.Default);
        Assert.Equal(segment.FirstLogIndex - 1, plan.LastLogIndex);
        Assert.Contains(plan.Notes, n => n.Contains($"segment {segment.SegmentId} was sealed at", StringComparison.Ordinal));
    }

    [Fact]
    public async Task WhatIfReturnsThePlanAndWritesNothing()
    {
        string into = scenario.NewTarget("whatif");
        var before = TreeState.Capture(scenario.Root);
        var asked = new List<(string Target, string Action)>();
        var context = new OperationContext { ShouldProcess = (target, action) => { asked.Add((target, action)); return false; } };
        PointInTimeRestoreResult result = await RestoreOperations.RestorePointInTimeAsync(
            new RestorePointInTimeOptions(scenario.DataDir, Ns) { TargetLogIndex = scenario.Snapshots[1].Applied + 40, TargetDataDir = into }, context);
        Assert.False(result.Restored);
        Assert.Equal(scenario.Snapshots[1].Applied + 40, result.Plan.LastLogIndex);
        Assert.NotEmpty(result.Plan.Segments);
        var only = Assert.Single(asked);
        Assert.Equal(Path.Combine(into, Ns), only.Target);
        Assert.Contains("up to log index", only.Action, StringComparison.Ordinal);
        before.AssertUnchanged(scenario.Root);
    }

    [Fact]
    public async Task TargetPastTheLastShippedRecordRestoresTheLatestAndSaysSo()
    {
        foreach ((string name, RestorePointInTimeOptions options) in new[]
        {
            ("past-index", new RestorePointInTimeOptions(scenario.DataDir, Ns) { TargetLogIndex = scenario.LastLogIndex + 1000 }),
            ("past-time", new RestorePointInTimeOptions(scenario.DataDir, Ns) { TargetTime = scenario.RecordTimes[^1].AddDays(3) }),
        })
        {
            string into = scenario.NewTarget(name);
            PointInTimeRestoreResult result = await RestoreOperations.RestorePointInTimeAsync(options with { TargetDataDir = into }, OperationContext.Default);
            Assert.True(result.TargetPastArchive, name);
            Assert.Equal(scenario.LastArchivedLogIndex, result.LastLogIndex);
            Assert.Contains(result.Plan.Notes, n => n.Contains("past the last archived record", StringComparison.Ordinal));
            scenario.AssertStateAt(scenario.LastArchivedLogIndex, PitrScenario.ReplayAndRead(into));
        }
    }

    [Fact]
    public async Task TargetBeforeTheFirstSnapshotIsATypedErrorAndWritesNothing()
    {
        string into = scenario.NewTarget("too-early");
        var before = TreeState.Capture(scenario.Root);
        var byIndex = await Assert.ThrowsAsync<TargetBeforeFirstSnapshotException>(() => RestoreOperations.RestorePointInTimeAsync(
            new RestorePointInTimeOptions(scenario.DataDir, Ns) { TargetLogIndex = scenario.Snapshots[0].Applied - 1, TargetDataDir = into }, OperationContext.Default));
        Assert.Equal(ErrorKind.NotFound, byIndex.Kind);
        Assert.Equal("TargetBeforeFirstSnapshot", byIndex.ErrorId);
        Assert.Contains($"up to log index {scenario.Snapshots[0].Applied}", byIndex.Message, StringComparison.Ordinal);

        var byTime = await Assert.ThrowsAsync<TargetBeforeFirstSnapshotException>(() => RestoreOperations.RestorePointInTimeAsync(
            new RestorePointInTimeOptions(scenario.DataDir, Ns) { TargetTime = scenario.Snapshots[0].CompletedAt.AddMilliseconds(-1), TargetDataDir = into }, OperationContext.Default));
        Assert.Contains("before the first snapshot", byTime.Message, StringComparison.Ordinal);
        before.AssertUnchanged(scenario.Root);
    }

    [Fact]
    public async Task TargetAcrossAMissingSegmentIsAWalGapNamingTheIds()
    {
        // A copy of the data dir whose archive lost a segment after the second snapshot.
        string dataDir = scenario.NewTarget("gap-source");
        CopyTree(scenario.DataDir, dataDir);
        // Between the second and third snapshot, so only the second can serve targets past it.
        WalSegmentInfo lost = scenario.Archived.First(s => s.FirstLogIndex > scenario.Snapshots[1].Applied + 1);
        Assert.True(lost.LastLogIndex + 3 < scenario.Snapshots[2].Applied,
            $"segment {lost.SegmentId} ({lost.FirstLogIndex}..{lost.LastLogIndex}) is not before the third snapshot ({scenario.Snapshots[2].Applied})");
        string lostPath = Directory.EnumerateFiles(Path.Combine(dataDir, "backups", Ns), WalFormat.SegmentFileName(lost.SegmentId), SearchOption.AllDirectories).Single();
        File.Delete(lostPath);
        string into = scenario.NewTarget("gap-into");
        var before = TreeState.Capture(scenario.Root);

        var byIndex = await Assert.ThrowsAsync<WalGapException>(() => RestoreOperations.RestorePointInTimeAsync(
            new RestorePointInTimeOptions(dataDir, Ns) { TargetLogIndex = lost.LastLogIndex!.Value + 3, TargetDataDir = into }, OperationContext.Default));
        Assert.Equal([lost.SegmentId], byIndex.MissingSegmentIds);
        Assert.Contains($"segment {lost.SegmentId} is not archived", byIndex.Message, StringComparison.Ordinal);

        var byTime = await Assert.ThrowsAsync<WalGapException>(() => RestoreOperations.RestorePointInTimeAsync(
            new RestorePointInTimeOptions(dataDir, Ns) { TargetTime = scenario.Archived.First(s => s.SegmentId == lost.SegmentId + 1).CreatedAt, TargetDataDir = into }, OperationContext.Default));
        Assert.Equal([lost.SegmentId], byTime.MissingSegmentIds);
        before.AssertUnchanged(scenario.Root);

        // Before the gap still restores, exactly.
        PointInTimeRestoreResult ok = await RestoreOperations.RestorePointInTimeAsync(
            new RestorePointInTimeOptions(dataDir, Ns) { TargetLogIndex = lost.FirstLogIndex - 1, TargetDataDir = into }, OperationContext.Default);
        scenario.AssertStateAt(lost.FirstLogIndex - 1, PitrScenario.ReplayAndRead(into));
        Assert.True(ok.Restored);
    }

    [Fact]
    public async Task NonEmptyTargetNeedsForceAndIsKeptAsideWithIt()
    {
        string into = scenario.NewTarget("occupied");
        string live = Path.Combine(into, Ns);
        Directory.CreateDirectory(Path.Combine(live, "db"));
        File.WriteAllText(Path.Combine(live, "db", "store.sqlite"), "the live store");
        var before = TreeState.Capture(scenario.Root);
        var options = new RestorePointInTimeOptions(scenario.DataDir, Ns) { TargetLogIndex = scenario.Snapshots[2].Applied + 5, TargetDataDir = into };

        var refused = await Assert.ThrowsAsync<ConflictException>(() => RestoreOperations.RestorePointInTimeAsync(options, OperationContext.Default));
        Assert.Contains("-Force", refused.Message, StringComparison.Ordinal);
        before.AssertUnchanged(scenario.Root);

        PointInTimeRestoreResult result = await RestoreOperations.RestorePointInTimeAsync(options with { Force = true }, OperationContext.Default);
        Assert.NotNull(result.ReplacedPath);
        Assert.Equal("the live store", File.ReadAllText(Path.Combine(result.ReplacedPath!, "db", "store.sqlite")));
        scenario.AssertStateAt(scenario.Snapshots[2].Applied + 5, PitrScenario.ReplayAndRead(into));
    }

    [Fact]
    public async Task CancellationMidFetchLeavesNothingUnderTheFinalName()
    {
        string into = scenario.NewTarget("cancelled");
        using var cts = new CancellationTokenSource();
        var context = new OperationContext
        {
            CancellationToken = cts.Token,
            Progress = new SyncProgress(p =>
            {
                if (p.Status.StartsWith("Fetched segment", StringComparison.Ordinal))
                {
                    cts.Cancel();
                }
            }),
        };
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => RestoreOperations.RestorePointInTimeAsync(
            new RestorePointInTimeOptions(scenario.DataDir, Ns) { TargetLogIndex = scenario.LastArchivedLogIndex - 3, TargetDataDir = into, MaxParallelism = 1 }, context));
        Assert.False(Directory.Exists(Path.Combine(into, Ns)));
        Assert.Empty(Directory.Exists(into) ? Directory.EnumerateFileSystemEntries(into) : []);
    }

    [Fact]
    public async Task ACorruptArchivedSegmentFailsTheRestoreWithNothingWritten()
    {
        string dataDir = scenario.NewTarget("corrupt-source");
        CopyTree(scenario.DataDir, dataDir);
        WalSegmentInfo victim = scenario.Archived.First(s => s.FirstLogIndex > scenario.Snapshots[2].Applied);
        string path = Directory.EnumerateFiles(Path.Combine(dataDir, "backups", Ns), WalFormat.SegmentFileName(victim.SegmentId), SearchOption.AllDirectories).Single();
        byte[] bytes = File.ReadAllBytes(path);
        bytes[WalFormat.HeaderSize + 20] ^= 0x40; // inside the first record's data
        File.WriteAllBytes(path, bytes);
        string into = scenario.NewTarget("corrupt-into");

        var error = await Assert.ThrowsAsync<IntegrityException>(() => RestoreOperations.RestorePointInTimeAsync(
            new RestorePointInTimeOptions(dataDir, Ns) { TargetLogIndex = victim.LastLogIndex!.Value, TargetDataDir = into }, OperationContext.Default));
        Assert.Equal("WalSegmentCorrupt", error.ErrorId);
        Assert.Contains($"segment {victim.SegmentId}", error.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.Exists(into) ? Directory.EnumerateFileSystemEntries(into) : []);
    }

    internal static void CopyTree(string from, string to)
    {
        foreach (string dir in Directory.EnumerateDirectories(from, "*", SearchOption.AllDirectories))
        {
            Directory.CreateDirectory(Path.Combine(to, Path.GetRelativePath(from, dir)));
        }
        Directory.CreateDirectory(to);
        foreach (string file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            File.Copy(file, Path.Combine(to, Path.GetRelativePath(from, file)));
        }
    }
}

/// <summary>Progress delivered synchronously on the reporting thread.</summary>
internal sealed class SyncProgress(Action<OperationProgress> callback) : IProgress<OperationProgress>
{
    public void Report(OperationProgress value) => callback(value);
}
