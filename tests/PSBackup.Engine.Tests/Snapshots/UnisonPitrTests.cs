using System.Globalization;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Restore;
using PSBackup.Engine.Snapshots;
using PSBackup.Engine.Tests.Support;

namespace PSBackup.Engine.Tests.Snapshots;

/// <summary>Point-in-time restores of real UnisonDB namespaces, judged by UnisonDB's own recovery:
/// snapshot the store (its checkpoint recorded), archive the WAL, restore to a log index or a time,
/// run <c>store-recover</c> on the result, and compare the content with a store that applied exactly
/// records 1..target (<c>store-gen -checkpoint-lsn target</c> on the same seed).</summary>
public sealed class UnisonPitrTests : IDisposable
{
    private const long SegmentSize = 262144;
    private const long HlcStart = 1767225600000;
    private readonly TestDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static OperationContext Context() => OperationContext.Default;

    [Theory]
    [InlineData("BOLT", 420)]   // the snapshot itself: the checkpoint record is the last one laid out
    [InlineData("BOLT", 421)]
    [InlineData("LMDB", 439)]   // the last record of segment 2
    [InlineData("LMDB", 440)]   // the first record of segment 3
    [InlineData("BOLT", 555)]
    [InlineData("LMDB", 600)]   // the end of the WAL
    public async Task The_shared_fixtures_restore_to_a_log_index_that_UnisonDB_recovers_exactly(string engine, int target)
    {
        string fixture = engine == "BOLT" ? "v1-store-bolt" : "v1-store-lmdb";
        string data = UnisonOracle.CopyFixture(fixture, _dir.Combine("data"));
        await SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(data, "users", "snapshots/users.db"), Context());
        ArchiveWal(data);

        string restored = _dir.Combine("restored");
        PointInTimeRestoreResult r = await RestoreOperations.RestorePointInTimeAsync(
            new RestorePointInTimeOptions(data, "users") { TargetLogIndex = target, TargetDataDir = restored }, Context());
        Assert.Equal(target, r.LastLogIndex);
        Assert.Equal(420, r.Plan.Checkpoint!.LogIndex);
        AssertRecovers(restored, engine, from: 421, target, Expected(engine, 600, target, 7, 100));
    }

    [Theory]
    [InlineData("LMDB", 421)]
    [InlineData("BOLT", 500)]
    public async Task A_time_target_restores_exactly_the_records_written_by_then(string engine, int target)
    {
        string fixture = engine == "BOLT" ? "v1-store-bolt" : "v1-store-lmdb";
        string data = UnisonOracle.CopyFixture(fixture, _dir.Combine("data"));
        await SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(data, "users", "snapshots/users.db"), Context());
        ArchiveWal(data);

        // HLC of record n is HlcStart + (n-1) s; half a second later the next record is not yet written.
        DateTimeOffset at = DateTimeOffset.FromUnixTimeMilliseconds(HlcStart + (target - 1) * 1000L + 500);
        string restored = _dir.Combine("restored");
        PointInTimeRestoreResult r = await RestoreOperations.RestorePointInTimeAsync(
            new RestorePointInTimeOptions(data, "users") { TargetTime = at, TargetDataDir = restored }, Context());
        Assert.Equal(target, r.LastLogIndex);
        AssertRecovers(restored, engine, from: 421, target, Expected(engine, 600, target, 7, 100));
    }

    [Theory]
    [InlineData("BOLT", 900, 260, 333, 31)]
    [InlineData("LMDB", 900, 500, 700, 32)]
    [InlineData("LMDB", 700, 0, 140, 33)]
    public async Task Generated_pairs_restore_through_a_repository_to_a_log_index_and_UnisonDB_recovers_exactly(string engine, int records, int checkpoint, int target, int seed)
    {
        string data = _dir.Combine("data");
        StoreGen(data, engine, records, checkpoint, seed, 40);
        string repo = _dir.Combine("repo");
        var location = new RepositoryTarget { Location = repo };
        await RepositoryOperations.InitializeAsync(new InitializeRepositoryOptions(location) { Unencrypted = true }, Context());
        await SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(data, "users", null) { Repository = location }, Context());
        await PSBackup.Engine.Wal.WalOperations.ShipAsync(new PSBackup.Engine.Wal.InvokeWalShipOptions(data, "users", null) { Repository = location }, Context());

        string restored = _dir.Combine("restored");
        PointInTimeRestoreResult r = await RestoreOperations.RestorePointInTimeAsync(
            new RestorePointInTimeOptions(data, "users") { TargetLogIndex = target, TargetDataDir = restored, Repository = location }, Context());
        Assert.Equal(target, r.LastLogIndex);
        AssertRecovers(restored, engine, from: checkpoint + 1, target, Expected(engine, records, target, seed, 40));
    }

    [Fact]
    public async Task Test_Restore_proves_a_UnisonDB_namespace_with_UnisonDBs_recovery()
    {
        string data = UnisonOracle.CopyFixture("v1-store-lmdb", _dir.Combine("data"));
        await SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(data, "users", "snapshots/users.db"), Context());
        ArchiveWal(data);
        string oracle = Path.Combine(UnisonOracle.BinDir, UnisonOracle.V1);
        string expected = Expected("LMDB", 600, 512, 7, 100);
        RestoreDrillResult drill = (await RestoreDrill.RunAsync(new TestRestoreOptions("users")
        {
            DataDir = data,
            TargetLogIndex = 512,
            UnisonOracle = oracle,
            ExpectedContentHash = expected,
        }, Context()))!;
        Assert.True(drill.Passed, string.Join("\n", drill.Errors));
        Assert.Equal(512, drill.UnisonRecovery!.Checkpoint!.LogIndex);
        Assert.Equal(expected, drill.UnisonRecovery.ContentSha256);

        RestoreDrillResult wrong = (await RestoreDrill.RunAsync(new TestRestoreOptions("users")
        {
            DataDir = data,
            TargetLogIndex = 511,
            UnisonOracle = oracle,
            ExpectedContentHash = expected,
        }, Context()))!;
        Assert.False(wrong.Passed);
        Assert.Equal(ErrorKind.Integrity, wrong.FailureKind);
    }

    /// <summary>Copies the namespace's WAL (every segment, sealed or not) into its local backup root.</summary>
    private static void ArchiveWal(string data)
    {
        string archive = Path.Combine(data, "backups", "users", "wal", "archive");
        Directory.CreateDirectory(archive);
        foreach (string f in Directory.GetFiles(Path.Combine(data, "users", "wal"), "*.seg"))
        {
            File.Copy(f, Path.Combine(archive, Path.GetFileName(f)), overwrite: true);
        }
    }

    private void AssertRecovers(string restored, string engine, long from, long target, string expectedHash)
    {
        UnisonOracle.OracleRun recover = UnisonOracle.StoreRecover(restored, "users", engine, SegmentSize);
        Assert.True(recover.ExitCode == 0, recover.ToString());
        if (target >= from)
        {
            Assert.Contains($"(LSN {from}..{target})", recover.Stdout, StringComparison.Ordinal);
        }
        UnisonOracle.StoreInfo got = UnisonOracle.StoreInfoOf(Path.Combine(restored, "users", "unison.db"));
        Assert.True(got.ExitCode == 0, got.ToString());
        Assert.Equal(expectedHash, got.ContentSha256);
    }

    private string Expected(string engine, int records, int target, int seed, int flushEvery)
    {
        string dir = _dir.Combine("expected-" + target.ToString(CultureInfo.InvariantCulture));
        StoreGen(dir, engine, records, target, seed, flushEvery);
        return UnisonOracle.StoreInfoOf(Path.Combine(dir, "users", "unison.db")).ContentSha256!;
    }

    private static void StoreGen(string data, string engine, int records, int checkpoint, int seed, int flushEvery)
    {
        UnisonOracle.OracleRun run = UnisonOracle.Run(UnisonOracle.V1, "store-gen", "-data", data, "-ns", "users", "-engine", engine,
            "-seg-size", SegmentSize.ToString(CultureInfo.InvariantCulture), "-records", records.ToString(CultureInfo.InvariantCulture),
            "-checkpoint-lsn", checkpoint.ToString(CultureInfo.InvariantCulture), "-flush-every", flushEvery.ToString(CultureInfo.InvariantCulture),
            "-seed", seed.ToString(CultureInfo.InvariantCulture), "-hlc-start", HlcStart.ToString(CultureInfo.InvariantCulture), "-hlc-step", "1000");
        Assert.True(run.ExitCode == 0, run.ToString());
    }
}
