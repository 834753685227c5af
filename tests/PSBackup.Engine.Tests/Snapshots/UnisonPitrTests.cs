using System.Globalization;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Restore;
using PSBackup.Engine.Snapshots;
using PSBackup.Engine.Tests.Support;
using PSBackup.Engine.Wal;

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
        await WalOperations.ShipAsync(new InvokeWalShipOptions(data, "users", null) { Repository = location }, Context());

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

    // store-gen -records 900 -seed 41 -seg-size 262144 lays out segment 1 = LSN 1..256, 2 = 257..506,
    // 3 = 507..720 (sealed) and the active 4 = 721..900; the two snapshots' checkpoints are LSN 200
    // (in segment 1) and 500 (in segment 2). store-gen writes the same records for the same seed
    // whatever the checkpoint, so both stores belong to one WAL.
    private const int TwoRecords = 900, Older = 200, Newer = 500, TwoSeed = 41;

    [Theory]
    [InlineData("BOLT", 200, "older")]  // the older checkpoint itself: nothing to replay
    [InlineData("LMDB", 230, "older")]  // inside the older checkpoint's segment
    [InlineData("BOLT", 480, "older")]  // before the newer checkpoint: the older snapshot, across a seam
    [InlineData("LMDB", 505, "newer")]  // inside the newer checkpoint's segment
    [InlineData("BOLT", 506, "newer")]  // the end of a sealed segment
    [InlineData("LMDB", 720, "newer")]  // the last sealed record
    [InlineData("BOLT", 900, "newer")]  // the very end: the active segment's last record
    public async Task Two_snapshots_of_a_local_root_a_log_index_target_restores_from_the_right_one_and_UnisonDB_recovers_exactly(string engine, int target, string from)
    {
        string data = await TwoSnapshotsLocal(engine);
        string restored = _dir.Combine("restored");
        PointInTimeRestoreResult r = await RestoreOperations.RestorePointInTimeAsync(
            new RestorePointInTimeOptions(data, "users") { TargetLogIndex = target, TargetDataDir = restored }, Context());
        Assert.Equal($"snapshots/{from}.db", r.Snapshot);
        Assert.Equal(target, r.LastLogIndex);
        Assert.False(r.TargetPastArchive);
        int checkpoint = from == "older" ? Older : Newer;
        Assert.Equal(checkpoint, r.Plan.Checkpoint!.LogIndex);
        AssertRecovers(restored, engine, from: checkpoint + 1, target, Expected(engine, TwoRecords, target, TwoSeed, 40));
    }

    [Theory]
    [InlineData("LMDB", 230, 0, "older")]
    [InlineData("BOLT", 499, 999, "older")] // one ms before the newer checkpoint record's own time
    [InlineData("LMDB", 500, 0, "newer")]   // exactly the newer checkpoint record's time
    [InlineData("BOLT", 650, 400, "newer")]
    [InlineData("LMDB", 900, 3_600_000, "newer")] // an hour after the last record: the very end
    public async Task Two_snapshots_of_a_local_root_a_time_target_restores_every_record_written_by_then(string engine, int lastRecord, int extraMs, string from)
    {
        string data = await TwoSnapshotsLocal(engine);
        DateTimeOffset at = DateTimeOffset.FromUnixTimeMilliseconds(HlcStart + (lastRecord - 1) * 1000L + extraMs);
        string restored = _dir.Combine("restored");
        PointInTimeRestoreResult r = await RestoreOperations.RestorePointInTimeAsync(
            new RestorePointInTimeOptions(data, "users") { TargetTime = at, TargetDataDir = restored }, Context());
        Assert.Equal($"snapshots/{from}.db", r.Snapshot);
        Assert.Equal(lastRecord, r.LastLogIndex);
        int checkpoint = from == "older" ? Older : Newer;
        AssertRecovers(restored, engine, from: checkpoint + 1, lastRecord, Expected(engine, TwoRecords, lastRecord, TwoSeed, 40));
    }

    [Theory]
    [InlineData("BOLT")]
    [InlineData("LMDB")]
    public async Task A_target_before_every_snapshots_checkpoint_is_refused_naming_the_oldest_and_nothing_is_written(string engine)
    {
        string data = await TwoSnapshotsLocal(engine);
        string restored = _dir.Combine("restored");
        TargetBeforeFirstSnapshotException byIndex = await Assert.ThrowsAsync<TargetBeforeFirstSnapshotException>(() => RestoreOperations.RestorePointInTimeAsync(
            new RestorePointInTimeOptions(data, "users") { TargetLogIndex = Older - 1, TargetDataDir = restored }, Context()));
        Assert.Contains("snapshots/older.db", byIndex.Message, StringComparison.Ordinal);
        Assert.Contains($"at or after {Older}", byIndex.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(restored));

        // Half a second after record 199 was written, record 200 (the older checkpoint) was not yet.
        DateTimeOffset at = DateTimeOffset.FromUnixTimeMilliseconds(HlcStart + (Older - 2) * 1000L + 500);
        await Assert.ThrowsAsync<TargetBeforeFirstSnapshotException>(() => RestoreOperations.RestorePointInTimeAsync(
            new RestorePointInTimeOptions(data, "users") { TargetTime = at, TargetDataDir = restored }, Context()));
        Assert.False(Directory.Exists(restored));
    }

    [Theory]
    [InlineData("BOLT", 230, "older")]
    [InlineData("LMDB", 480, "older")]
    [InlineData("BOLT", 505, "newer")]
    [InlineData("LMDB", 720, "newer")]  // the end of the last sealed segment
    [InlineData("BOLT", 900, "newer")]  // the very end: the last record of the active segment's partial
    public async Task Two_snapshots_in_a_repository_by_log_index_and_by_time_restore_what_UnisonDB_recovers_exactly(string engine, int target, string from)
    {
        (string data, RepositoryTarget repo, Dictionary<string, string> ids) = await TwoSnapshotsRepository(engine);
        int checkpoint = from == "older" ? Older : Newer;
        string expected = Expected(engine, TwoRecords, target, TwoSeed, 40);

        string byIndex = _dir.Combine("by-index");
        PointInTimeRestoreResult r = await RestoreOperations.RestorePointInTimeAsync(
            new RestorePointInTimeOptions(data, "users") { TargetLogIndex = target, TargetDataDir = byIndex, Repository = repo }, Context());
        Assert.Equal(ids[from], r.Snapshot);
        Assert.Equal(target, r.LastLogIndex);
        AssertRecovers(byIndex, engine, from: checkpoint + 1, target, expected);

        string byTime = _dir.Combine("by-time");
        PointInTimeRestoreResult t = await RestoreOperations.RestorePointInTimeAsync(
            new RestorePointInTimeOptions(data, "users") { TargetTime = DateTimeOffset.FromUnixTimeMilliseconds(HlcStart + (target - 1) * 1000L + 999), TargetDataDir = byTime, Repository = repo }, Context());
        Assert.Equal(ids[from], t.Snapshot);
        Assert.Equal(target, t.LastLogIndex);
        AssertRecovers(byTime, engine, from: checkpoint + 1, target, expected);
    }

    [Fact]
    public async Task A_repository_target_past_the_archive_restores_its_last_record_and_says_so()
    {
        (string data, RepositoryTarget repo, _) = await TwoSnapshotsRepository("LMDB");
        string restored = _dir.Combine("restored");
        PointInTimeRestoreResult r = await RestoreOperations.RestorePointInTimeAsync(
            new RestorePointInTimeOptions(data, "users") { TargetLogIndex = 950, TargetDataDir = restored, Repository = repo }, Context());
        Assert.True(r.TargetPastArchive);
        Assert.Equal(TwoRecords, r.LastLogIndex);
        Assert.Contains(r.Plan.Notes, n => n.Contains($"past the last archived record ({TwoRecords})", StringComparison.Ordinal));
        AssertRecovers(restored, "LMDB", from: Newer + 1, TwoRecords, Expected("LMDB", TwoRecords, TwoRecords, TwoSeed, 40));

        await Assert.ThrowsAsync<TargetBeforeFirstSnapshotException>(() => RestoreOperations.RestorePointInTimeAsync(
            new RestorePointInTimeOptions(data, "users") { TargetLogIndex = 150, TargetDataDir = _dir.Combine("never"), Repository = repo }, Context()));
        Assert.False(Directory.Exists(_dir.Combine("never")));
    }

    [Theory]
    [InlineData("BOLT", false)]
    [InlineData("LMDB", true)]
    public async Task Test_Restore_drills_a_repository_with_UnisonDBs_recovery_and_the_users_validation(string engine, bool byTime)
    {
        (_, RepositoryTarget repo, Dictionary<string, string> ids) = await TwoSnapshotsRepository(engine);
        string oracle = Path.Combine(UnisonOracle.BinDir, UnisonOracle.V1);
        string scratch = _dir.Combine("scratch");
        Directory.CreateDirectory(scratch);
        string? validated = null;
        var options = new TestRestoreOptions("users")
        {
            Repository = repo,
            TargetLogIndex = byTime ? null : 480,
            TargetTime = byTime ? DateTimeOffset.FromUnixTimeMilliseconds(HlcStart + 479 * 1000L + 1) : null,
            UnisonOracle = oracle,
            ExpectedContentHash = Expected(engine, TwoRecords, 480, TwoSeed, 40),
            ScratchPath = scratch,
            Validation = (nsDir, _) =>
            {
                // The user's check sees the restored namespace as UnisonDB lays it out.
                validated = nsDir;
                Assert.True(engine == "BOLT" ? File.Exists(Path.Combine(nsDir, "unison.db")) : File.Exists(Path.Combine(nsDir, "unison.db", "data.mdb")));
                Assert.NotEmpty(Directory.GetFiles(Path.Combine(nsDir, "wal"), "*.seg"));
                return Task.CompletedTask;
            },
        };
        RestoreDrillResult drill = (await RestoreDrill.RunAsync(options, Context()))!;
        Assert.True(drill.Passed, string.Join("\n", drill.Errors));
        Assert.Equal(ids["older"], drill.Snapshot);
        Assert.Equal(480, drill.LastLogIndex);
        Assert.Equal(480, drill.UnisonRecovery!.Checkpoint!.LogIndex);
        Assert.Equal(480 - Older, drill.UnisonRecovery.RecordsRecovered);
        Assert.Equal(options.ExpectedContentHash, drill.UnisonRecovery.ContentSha256);
        Assert.True(drill.ValidationPassed);
        Assert.NotNull(validated);
        Assert.Empty(Directory.EnumerateFileSystemEntries(scratch));

        // The content of another target is refused by UnisonDB's recovery (Integrity), and the
        // validation is not run on a copy already proven wrong.
        validated = null;
        RestoreDrillResult wrong = (await RestoreDrill.RunAsync(options with { ExpectedContentHash = Expected(engine, TwoRecords, 481, TwoSeed, 40) }, Context()))!;
        Assert.False(wrong.Passed);
        Assert.Equal(ErrorKind.Integrity, wrong.FailureKind);
        Assert.Contains(wrong.Errors, e => e.Contains("content hash", StringComparison.Ordinal));
        Assert.Null(validated);

        // UnisonDB's recovery passes but the user's check does not: the drill fails on it.
        RestoreDrillResult failing = (await RestoreDrill.RunAsync(options with { Validation = (_, _) => throw new InvalidOperationException("row count 0") }, Context()))!;
        Assert.False(failing.Passed);
        Assert.False(failing.ValidationPassed);
        Assert.Contains(failing.Errors, e => e.Contains("row count 0", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_CLI_snapshots_ships_restores_and_drills_a_UnisonDB_namespace_through_a_repository()
    {
        string data = _dir.Combine("data");
        StoreGen(data, "LMDB", TwoRecords, Newer, TwoSeed, 40);
        string repo = _dir.Combine("repo");
        Assert.Equal(0, (await Cli("repo", "init", "--repository", repo, "--unencrypted")).Code);
        (int code, string stdout, string stderr) = await Cli("snapshot", "create", "--data-dir", data, "--namespace", "users", "--repository", repo, "--json");
        Assert.True(code == 0, stderr);
        Assert.Contains("\"logIndex\": 500", stdout, StringComparison.Ordinal);
        (code, _, stderr) = await Cli("wal", "ship", "--data-dir", data, "--namespace", "users", "--repository", repo);
        Assert.True(code == 0, stderr);

        string restored = _dir.Combine("restored");
        (code, _, stderr) = await Cli("pitr", "--repository", repo, "--namespace", "users", "--target-log-index", "640", "--target-data-dir", restored);
        Assert.True(code == 0, stderr);
        AssertRecovers(restored, "LMDB", from: Newer + 1, 640, Expected("LMDB", TwoRecords, 640, TwoSeed, 40));

        string oracle = Path.Combine(UnisonOracle.BinDir, UnisonOracle.V1);
        (code, stdout, stderr) = await Cli("test-restore", "--repository", repo, "--namespace", "users", "--target-log-index", "700",
            "--unison-oracle", oracle, "--expected-content-hash", Expected("LMDB", TwoRecords, 700, TwoSeed, 40), "--json");
        Assert.True(code == 0, stderr + stdout);
        Assert.Contains("\"passed\": true", stdout, StringComparison.Ordinal);
        (code, _, stderr) = await Cli("test-restore", "--repository", repo, "--namespace", "users", "--target-log-index", "700",
            "--unison-oracle", oracle, "--expected-content-hash", Expected("LMDB", TwoRecords, 699, TwoSeed, 40));
        Assert.Equal(4, code);
        Assert.Contains("content hash", stderr, StringComparison.Ordinal);
    }

    private static async Task<(int Code, string Stdout, string Stderr)> Cli(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        int code = await TestCli.RunAsync(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    /// <summary>A data dir whose store is at checkpoint <see cref="Newer"/>, with two snapshots in
    /// its local backup root (checkpoints <see cref="Older"/> and <see cref="Newer"/>) and the WAL
    /// shipped by Invoke-WalShip (sealed segments and the active one's partial).</summary>
    private async Task<string> TwoSnapshotsLocal(string engine)
    {
        string data = await TwoStores(engine, snapshot: (d, name) => SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(d, "users", $"snapshots/{name}.db"), Context()));
        WalShipResult shipped = await WalOperations.ShipAsync(new InvokeWalShipOptions(data, "users", "wal"), Context());
        AssertShippedToTheEnd(shipped);
        return data;
    }

    /// <summary>The same two snapshots and the shipped WAL (LSN 1..900) in a repository; ids by name.</summary>
    private async Task<(string Data, RepositoryTarget Repo, Dictionary<string, string> Ids)> TwoSnapshotsRepository(string engine)
    {
        var repo = new RepositoryTarget { Location = _dir.Combine("repo") };
        await RepositoryOperations.InitializeAsync(new InitializeRepositoryOptions(repo) { Unencrypted = true }, Context());
        var ids = new Dictionary<string, string>();
        string data = await TwoStores(engine, snapshot: async (d, name) =>
        {
            StoreSnapshotResult? s = await SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(d, "users", null) { Repository = repo }, Context());
            ids[name] = s!.BackupId!;
            return s;
        });
        WalShipResult shipped = await WalOperations.ShipAsync(new InvokeWalShipOptions(data, "users", null) { Repository = repo }, Context());
        AssertShippedToTheEnd(shipped);
        return (data, repo, ids);
    }

    /// <summary>Sealed segments 1..3 and the active 4's valid prefix as a partial: the archive reaches LSN 900.</summary>
    private static void AssertShippedToTheEnd(WalShipResult shipped)
    {
        Assert.Equal([1L, 2, 3, 4], shipped.Backups.Select(b => b.SegmentId).ToArray());
        Assert.Equal([false, false, false, true], shipped.Backups.Select(b => b.Partial).ToArray());
        Assert.Equal((long?)TwoRecords, shipped.Backups[^1].LastLogIndex);
    }

    private async Task<string> TwoStores(string engine, Func<string, string, Task<StoreSnapshotResult?>> snapshot)
    {
        string data = _dir.Combine("data");
        StoreGen(data, engine, TwoRecords, Older, TwoSeed, 40);
        StoreSnapshotResult older = (await snapshot(data, "older"))!;
        Assert.Equal(Older, older.Checkpoint!.LogIndex);

        // The store moves on to checkpoint 500 over the same WAL (store-gen writes the same records).
        string later = _dir.Combine("later");
        StoreGen(later, engine, TwoRecords, Newer, TwoSeed, 40);
        string store = Path.Combine(data, "users", "unison.db");
        if (engine == "BOLT")
        {
            File.Copy(Path.Combine(later, "users", "unison.db"), store, overwrite: true);
        }
        else
        {
            Directory.Delete(store, recursive: true);
            Directory.CreateDirectory(store);
            File.Copy(Path.Combine(later, "users", "unison.db", "data.mdb"), Path.Combine(store, "data.mdb"));
        }
        StoreSnapshotResult newer = (await snapshot(data, "newer"))!;
        Assert.Equal(Newer, newer.Checkpoint!.LogIndex);
        return data;
    }

    /// <summary>Copies the namespace's WAL (every segment, sealed or not) into its local backup root.</summary>
    [Theory]
    [InlineData("BOLT", 900, 333, 41)]
    [InlineData("LMDB", 900, 700, 42)]
    public async Task Restore_StoreSnapshot_into_a_fresh_target_lays_out_the_WAL_at_its_checkpoint_and_UnisonDB_starts_from_it(string engine, int records, int checkpoint, int seed)
    {
        string data = _dir.Combine("data");
        StoreGen(data, engine, records, checkpoint, seed, 40);
        var location = new RepositoryTarget { Location = _dir.Combine("repo") };
        await RepositoryOperations.InitializeAsync(new InitializeRepositoryOptions(location) { Unencrypted = true }, Context());
        await SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(data, "users", null) { Repository = location }, Context());

        // Without the WAL archived the store alone cannot start: restored as asked, with a warning that says so.
        StoreSnapshotRestoreResult alone = (await RestoreOperations.RestoreSnapshotAsync(
            new RestoreStoreSnapshotOptions(data, "users") { TargetDataDir = _dir.Combine("alone"), Repository = location }, Context()))!;
        Assert.Null(alone.WalPath);
        Assert.Contains("cannot start from this store alone", alone.Warning, StringComparison.Ordinal);
        Assert.Contains("Restore-PointInTime", alone.Warning, StringComparison.Ordinal);
        Assert.False(Path.Exists(_dir.Combine("alone", "users", "wal")));

        await WalOperations.ShipAsync(new InvokeWalShipOptions(data, "users", null) { Repository = location }, Context());
        foreach ((string name, RestoreStoreSnapshotOptions options) in new[]
        {
            ("from-repo", new RestoreStoreSnapshotOptions(data, "users") { TargetDataDir = _dir.Combine("from-repo"), Repository = location }),
        })
        {
            StoreSnapshotRestoreResult r = (await RestoreOperations.RestoreSnapshotAsync(options, Context()))!;
            string nsDir = Path.Combine(_dir.Combine(name), "users");
            Assert.Equal(Path.Combine(nsDir, "wal"), r.WalPath);
            Assert.True(r.WalSegments >= 1);
            Assert.Null(r.Warning);
            UnisonOracle.StoreInfo before = UnisonOracle.StoreInfoOf(Path.Combine(nsDir, "unison.db"));
            // UnisonDB's start-up recovery reads the checkpoint record and finds nothing after it:
            // the store is the snapshot's, exactly records 1..checkpoint.
            AssertRecovers(_dir.Combine(name), engine, from: checkpoint + 1, target: checkpoint, Expected(engine, records, checkpoint, seed, 40));
            UnisonOracle.StoreInfo after = UnisonOracle.StoreInfoOf(Path.Combine(nsDir, "unison.db"));
            Assert.Equal((before.CheckpointSegment, before.CheckpointOffset), (after.CheckpointSegment, after.CheckpointOffset));
            // The database can keep writing after the restored checkpoint.
            UnisonOracle.OracleRun append = UnisonOracle.Run(UnisonOracle.V1, "append", "-dir", Path.Combine(nsDir, "wal"), "-seg-size", SegmentSize.ToString(CultureInfo.InvariantCulture), "-lsn", (checkpoint + 1).ToString(CultureInfo.InvariantCulture));
            Assert.True(append.ExitCode == 0, append.ToString());
        }
    }

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
        string dir = _dir.Combine($"expected-{target.ToString(CultureInfo.InvariantCulture)}-{Guid.NewGuid():N}");
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
