using System.Diagnostics;
using System.Globalization;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Restore;
using PSBackup.Engine.Snapshots;
using PSBackup.Engine.Tests.Support;

namespace PSBackup.Engine.Tests.Snapshots;

/// <summary>Snapshots of real UnisonDB stores (the shared fixtures and pairs written by the oracle's
/// <c>store-gen</c>), judged by UnisonDB's own code: <c>store-info</c> reads the restored store and
/// <c>store-recover</c> runs the engine's start-up recovery over it and the WAL.</summary>
public sealed class UnisonStoreSnapshotTests : IDisposable
{
    private const long FixtureSegmentSize = 262144;
    private const string FixtureStartHash = "cc0223e5d261bc7258d66ba39331b66f7f46695c3901d8870995a3f75cd953c8";
    private const string FixtureRecoveredHash = "48836988e999a97ba5d7e946531a75f520bfdcbf6f009e661cdae0d2012f4266";
    private readonly TestDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static OperationContext Context() => OperationContext.Default;

    [Theory]
    [InlineData("v1-store-bolt", StoreEngines.Bolt)]
    [InlineData("v1-store-lmdb", StoreEngines.Lmdb)]
    public async Task A_fixture_store_snapshot_records_its_checkpoint_and_restores_to_what_UnisonDB_recovers(string fixture, string engine)
    {
        string data = UnisonOracle.CopyFixture(fixture, _dir.Combine("data"));
        StoreSnapshotResult result = (await SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(data, "users", "snapshots/users.db"), Context()))!;

        Assert.Equal(engine, result.Store);
        StoreCheckpoint cp = Assert.IsType<StoreCheckpoint>(result.Checkpoint);
        Assert.Equal((420L, 2L, 222128L), (cp.RecordsProcessed, cp.SegmentId, cp.Offset));
        Assert.Equal(420, cp.LogIndex);
        Assert.Equal(1767226019000, cp.Hlc);
        Assert.Equal(420, result.WalPosition.AppliedLogIndex);
        BackupManifest manifest = ManifestIO.Read(result.ManifestPath!);
        Assert.Equal(engine, manifest.Store);
        Assert.Equal(engine == StoreEngines.Bolt ? "unison.db" : "data.mdb", Assert.Single(manifest.Files).Path);

        // The snapshot file itself is a store UnisonDB's driver opens, as of the checkpoint.
        if (engine == StoreEngines.Bolt)
        {
            Assert.Equal(FixtureStartHash, UnisonOracle.StoreInfoOf(result.Path).ContentSha256);
        }

        // Restore into a fresh data dir: the store in the engine's shape, never a lock.mdb.
        string target = _dir.Combine("restored");
        StoreSnapshotRestoreResult restored = (await RestoreOperations.RestoreSnapshotAsync(new RestoreStoreSnapshotOptions(data, "users") { TargetDataDir = target }, Context()))!;
        string store = Path.Combine(target, "users", "unison.db");
        Assert.Equal(store, restored.RestoredPath);
        if (engine == StoreEngines.Bolt)
        {
            Assert.True(File.Exists(store));
        }
        else
        {
            Assert.Equal("data.mdb", Path.GetFileName(Assert.Single(Directory.GetFiles(store))));
        }
        UnisonOracle.StoreInfo info = UnisonOracle.StoreInfoOf(store);
        Assert.True(info.ExitCode == 0, info.ToString());
        Assert.Equal((FixtureStartHash, 369, 420UL), (info.ContentSha256, info.NamespaceKeys, info.RecordProcessed));

        // With the WAL beside it, UnisonDB's start-up recovery replays 421..600 from the checkpoint.
        CopyWal(fixture, Path.Combine(target, "users", "wal"));
        UnisonOracle.OracleRun recover = UnisonOracle.StoreRecover(target, "users", StoreEngines.UnisonName(engine)!, FixtureSegmentSize);
        Assert.True(recover.ExitCode == 0, recover.ToString());
        Assert.Contains("recovered 180 records (LSN 421..600)", recover.Stdout, StringComparison.Ordinal);
        UnisonOracle.StoreInfo after = UnisonOracle.StoreInfoOf(store);
        Assert.Equal((FixtureRecoveredHash, 525), (after.ContentSha256, after.NamespaceKeys));
    }

    [Theory]
    [InlineData("gone")]     // the checkpoint's segment was cleaned up after the store applied it
    [InlineData("rewritten")] // a segment 2 whose records do not start at the checkpoint's offset
    public async Task A_checkpoint_the_WAL_cannot_place_leaves_the_log_index_unknown_and_the_snapshot_valid(string how)
    {
        string data = UnisonOracle.CopyFixture("v1-store-lmdb", _dir.Combine("data"));
        string segment2 = Path.Combine(data, "users", "wal", "000000002.seg");
        if (how == "gone")
        {
            File.Delete(segment2);
        }
        else
        {
            // Segment 1 under segment 2's name: a real segment, but 2:222128 is inside one of its records.
            File.Copy(Path.Combine(data, "users", "wal", "000000001.seg"), segment2, overwrite: true);
        }
        StoreSnapshotResult result = (await SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(data, "users", "snapshots/users.db"), Context()))!;
        StoreCheckpoint cp = Assert.IsType<StoreCheckpoint>(result.Checkpoint);
        Assert.Equal((420L, 2L, 222128L), (cp.RecordsProcessed, cp.SegmentId, cp.Offset));
        Assert.Null(cp.LogIndex);
        Assert.Null(cp.Hlc);
        Assert.Null(result.WalPosition.AppliedLogIndex);
    }

    [Fact]
    public async Task A_unison_db_that_is_a_symbolic_link_is_refused()
    {
        string data = UnisonOracle.CopyFixture("v1-store-bolt", _dir.Combine("data"));
        string store = Path.Combine(data, "users", "unison.db");
        string elsewhere = _dir.Combine("elsewhere.db");
        File.Move(store, elsewhere);
        File.CreateSymbolicLink(store, elsewhere);
        InvalidInputException e = await Assert.ThrowsAsync<InvalidInputException>(() =>
            SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(data, "users", "snapshots/users.db"), Context()));
        Assert.Equal("SymbolicLink", e.ErrorId);
        Assert.False(File.Exists(Path.Combine(data, "backups", "users", "snapshots", "users.db")));
    }

    [Fact]
    public async Task A_bbolt_store_held_by_a_running_writer_is_refused_and_nothing_is_written()
    {
        string data = UnisonOracle.CopyFixture("v1-store-bolt", _dir.Combine("data"));
        string file = Path.Combine(data, "users", "unison.db");
        // flock(1) takes the same exclusive flock(2) lock a bbolt writer holds (bolt_unix.go), on a
        // descriptor the shell then hands to sleep: one process holds the lock until it is killed.
        using Process holder = Process.Start(new ProcessStartInfo("bash", ["-c", "exec 9<\"$0\"; flock -x 9; exec sleep 120", file]) { UseShellExecute = false })!;
        try
        {
            WaitUntilLocked(file);
            string backups = Path.Combine(data, "backups");
            ConflictException e = await Assert.ThrowsAsync<ConflictException>(() =>
                SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(data, "users", "snapshots/held.db"), Context()));
            Assert.Equal("StoreInUse", e.ErrorId);
            Assert.Contains("-Endpoint", e.Message, StringComparison.Ordinal);
            Assert.False(Directory.Exists(backups) && Directory.EnumerateFileSystemEntries(backups, "*", SearchOption.AllDirectories).Any(e => File.Exists(e) && !e.Contains(Path.DirectorySeparatorChar + "events" + Path.DirectorySeparatorChar, StringComparison.Ordinal)),
                "a file other than the history event was written under backups/");
        }
        finally
        {
            holder.Kill(entireProcessTree: true);
            holder.WaitForExit();
            WaitUntilLocked(file, locked: false);
        }
        // Once the writer is gone the same call works.
        StoreSnapshotResult ok = (await SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(data, "users", "snapshots/free.db"), Context()))!;
        Assert.Equal(420, ok.WalPosition.AppliedLogIndex);
    }

    [Fact]
    public void A_torn_or_damaged_bbolt_file_is_refused()
    {
        string source = Path.Combine(UnisonOracle.FixturesDir, "v1-store-bolt", "users", "unison.db");
        byte[] good = File.ReadAllBytes(source);
        using (BoltFile bolt = BoltFile.Open(source))
        {
            IReadOnlyDictionary<string, long> keys = bolt.Verify();
            Assert.Equal(369, keys["users"]);
            Assert.Equal(2, keys[UnisonStore.MetadataBucket]);
        }

        // Cut short: the meta page names pages the file does not have.
        string cut = _dir.Combine("cut.db");
        File.WriteAllBytes(cut, good[..(good.Length / 2)]);
        Assert.Equal("StoreTorn", Assert.Throws<IntegrityException>(() => BoltFile.Open(cut).Verify()).ErrorId);

        // Both meta pages damaged.
        string metas = _dir.Combine("metas.db");
        byte[] bad = (byte[])good.Clone();
        bad[16 + 40] ^= 0xFF;
        bad[4096 + 16 + 40] ^= 0xFF;
        File.WriteAllBytes(metas, bad);
        Assert.Equal("StoreTorn", Assert.Throws<IntegrityException>(() => BoltFile.Open(metas)).ErrorId);

        // A tree page overwritten by another page's bytes (a write during the copy).
        string mixed = _dir.Combine("mixed.db");
        bad = (byte[])good.Clone();
        using (BoltFile bolt = BoltFile.Open(source))
        {
            long root = bolt.Meta.RootPage;
            Array.Copy(good, 2 * 4096, bad, root * 4096, 4096);
        }
        File.WriteAllBytes(mixed, bad);
        Assert.Equal("StoreTorn", Assert.Throws<IntegrityException>(() =>
        {
            using BoltFile b = BoltFile.Open(mixed);
            b.Verify();
        }).ErrorId);
    }

    [Fact]
    public async Task A_live_LMDB_store_is_copied_consistently_while_another_process_writes_to_it()
    {
        string data = _dir.Combine("data");
        StoreGen(data, "LMDB", records: 600, checkpoint: 333, seed: 21);
        string env = Path.Combine(data, "users", "unison.db");
        string input = _dir.Combine("load.txt");
        using (var w = new StreamWriter(input))
        {
            for (int i = 0; i < 40000; i++)
            {
                w.Write("zz-live-");
                w.WriteLine(i.ToString("D8", CultureInfo.InvariantCulture));
                w.WriteLine(new string((char)('a' + (i % 26)), 200 + (i % 300)));
            }
        }
        int before = UnisonOracle.StoreInfoOf(env).NamespaceKeys;
        // mdb_load (Debian lmdb-utils, LMDB 0.9) writes into the namespace's database of the live
        // environment, committing as it goes, while snapshots are taken.
        using Process writer = Process.Start(new ProcessStartInfo("mdb_load", ["-T", "-s", "users", "-f", input, env]) { UseShellExecute = false, RedirectStandardError = true })!;
        var counts = new List<int>();
        try
        {
            for (int i = 0; i < 6 && (i < 2 || !writer.HasExited); i++)
            {
                StoreSnapshotResult r = (await SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(data, "users", $"live/{i}.mdb"), Context()))!;
                Assert.Equal(333, r.WalPosition.AppliedLogIndex);
                string check = _dir.Combine("check", i.ToString(CultureInfo.InvariantCulture), "unison.db");
                Directory.CreateDirectory(check);
                File.Copy(r.Path, Path.Combine(check, "data.mdb"));
                UnisonOracle.StoreInfo info = UnisonOracle.StoreInfoOf(check);
                Assert.True(info.ExitCode == 0, info.ToString());
                Assert.Equal(333UL, info.RecordProcessed);
                Assert.InRange(info.NamespaceKeys, before, before + 40000);
                counts.Add(info.NamespaceKeys);
            }
        }
        finally
        {
            if (!writer.HasExited)
            {
                writer.WaitForExit(60_000);
            }
        }
        Assert.True(writer.ExitCode == 0, writer.StandardError.ReadToEnd());
        Assert.True(counts.Count >= 2);
    }

    [Theory]
    [InlineData("BOLT", 700, 137, 5)]
    [InlineData("LMDB", 500, 420, 8)]
    [InlineData("LMDB", 300, 0, 13)]
    public async Task Generated_pairs_restore_and_recover_to_the_content_of_applying_every_record(string engine, int records, int checkpoint, int seed)
    {
        string data = _dir.Combine("data");
        StoreGen(data, engine, records, checkpoint, seed);
        string repo = _dir.Combine("repo");
        await RepositoryOperations.InitializeAsync(new InitializeRepositoryOptions(new RepositoryTarget { Location = repo }) { Unencrypted = true }, Context());
        StoreSnapshotResult snap = (await SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(data, "users", null) { Repository = new RepositoryTarget { Location = repo } }, Context()))!;
        Assert.Equal(checkpoint == 0 ? 0 : checkpoint, snap.WalPosition.AppliedLogIndex);
        Assert.Equal(checkpoint == 0, snap.Checkpoint is null);
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(data, "backups", "users")));

        string target = _dir.Combine("restored");
        await RestoreOperations.RestoreSnapshotAsync(new RestoreStoreSnapshotOptions(data, "users") { TargetDataDir = target, Repository = new RepositoryTarget { Location = repo } }, Context());
        CopyDirectory(Path.Combine(data, "users", "wal"), Path.Combine(target, "users", "wal"));
        UnisonOracle.OracleRun recover = UnisonOracle.StoreRecover(target, "users", engine, 524288);
        Assert.True(recover.ExitCode == 0, recover.ToString());

        string expected = _dir.Combine("expected");
        StoreGen(expected, engine, records, records, seed);
        UnisonOracle.StoreInfo want = UnisonOracle.StoreInfoOf(Path.Combine(expected, "users", "unison.db"));
        UnisonOracle.StoreInfo got = UnisonOracle.StoreInfoOf(Path.Combine(target, "users", "unison.db"));
        Assert.Equal((want.ContentSha256, want.NamespaceKeys), (got.ContentSha256, got.NamespaceKeys));
    }

    [Fact]
    public async Task A_bbolt_snapshot_through_the_endpoint_is_verified_recorded_and_restorable()
    {
        string data = UnisonOracle.CopyFixture("v1-store-bolt", _dir.Combine("data"));
        await using var server = new UnisonTestServer(data, "users");
        StoreSnapshotResult r = (await SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(data, "users", "daily/users.db") { Endpoint = server.Endpoint }, Context()))!;
        Assert.Equal(Path.Combine(data, "backups", "users", "daily", "users.db"), r.Path);
        Assert.Equal(StoreEngines.Bolt, r.Store);
        Assert.Equal(420, r.WalPosition.AppliedLogIndex);
        Assert.Contains(server.Requests, q => q.StartsWith("POST /api/v1/users/btree/backup {\"path\":\"daily/users.db\"}", StringComparison.Ordinal));
        Assert.Equal(StoreEngines.Bolt, ManifestIO.Read(r.ManifestPath!).Store);

        // Into a repository: the server's file is stored and removed.
        string repo = _dir.Combine("repo");
        await RepositoryOperations.InitializeAsync(new InitializeRepositoryOptions(new RepositoryTarget { Location = repo }) { Unencrypted = true }, Context());
        StoreSnapshotResult stored = (await SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(data, "users", null) { Endpoint = server.Endpoint, Repository = new RepositoryTarget { Location = repo } }, Context()))!;
        Assert.NotNull(stored.BackupId);
        Assert.Equal(["daily", "events"], Directory.GetFileSystemEntries(Path.Combine(data, "backups", "users")).Select(p => Path.GetFileName(p)!).Order(StringComparer.Ordinal).ToArray());
        string target = _dir.Combine("restored");
        await RestoreOperations.RestoreSnapshotAsync(new RestoreStoreSnapshotOptions(data, "users") { TargetDataDir = target, Repository = new RepositoryTarget { Location = repo } }, Context());
        Assert.Equal(FixtureStartHash, UnisonOracle.StoreInfoOf(Path.Combine(target, "users", "unison.db")).ContentSha256);
    }

    [Theory]
    [InlineData(UnisonTestServer.Faults.ServerError, "EndpointFailed")]
    [InlineData(UnisonTestServer.Faults.MalformedJson, "EndpointBadReply")]
    [InlineData(UnisonTestServer.Faults.Hang, "EndpointTimeout")]
    [InlineData(UnisonTestServer.Faults.WrongBytes, "EndpointOutputTorn")]
    public async Task Endpoint_faults_are_clear_errors_and_leave_no_snapshot(UnisonTestServer.Faults fault, string errorId)
    {
        string data = UnisonOracle.CopyFixture("v1-store-bolt", _dir.Combine("data"));
        await using var server = new UnisonTestServer(data, "users") { Fault = fault };
        PSBackupException e = await Assert.ThrowsAnyAsync<PSBackupException>(() => SnapshotOperations.CreateAsync(
            new NewStoreSnapshotOptions(data, "users", "s/users.db") { Endpoint = server.Endpoint, EndpointTimeout = TimeSpan.FromSeconds(2) }, Context()));
        Assert.Equal(errorId, e.ErrorId);
        SnapshotTestSupport.AssertNothingLeft(Path.Combine(data, "backups", "users", "s", "users.db"));
    }

    [Fact]
    public async Task Endpoint_refusals_unknown_namespaces_and_dead_servers_are_clear_errors()
    {
        string data = UnisonOracle.CopyFixture("v1-store-bolt", _dir.Combine("data"));
        Directory.CreateDirectory(Path.Combine(data, "other"));
        await using var server = new UnisonTestServer(data, "users");
        PSBackupException notFound = await Assert.ThrowsAnyAsync<PSBackupException>(() => SnapshotOperations.CreateAsync(
            new NewStoreSnapshotOptions(data, "other", "s.db") { Endpoint = server.Endpoint }, Context()));
        Assert.Equal(("EndpointNamespaceNotFound", ErrorKind.NotFound), (notFound.ErrorId, notFound.Kind));

        // Our own path rules refuse '..' before the server is asked.
        await Assert.ThrowsAsync<InvalidInputException>(() => SnapshotOperations.CreateAsync(
            new NewStoreSnapshotOptions(data, "users", "../escape.db") { Endpoint = server.Endpoint }, Context()));
        Assert.DoesNotContain(server.Requests, q => q.Contains("escape", StringComparison.Ordinal));

        var free = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        free.Start();
        int port = ((System.Net.IPEndPoint)free.LocalEndpoint).Port;
        free.Stop();
        PSBackupException refused = await Assert.ThrowsAnyAsync<PSBackupException>(() => SnapshotOperations.CreateAsync(
            new NewStoreSnapshotOptions(data, "users", "s.db") { Endpoint = new Uri($"http://127.0.0.1:{port}/") }, Context()));
        Assert.Equal("EndpointUnreachable", refused.ErrorId);
        Assert.Contains("connection refused", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Wal_ship_through_the_endpoint_treats_404_as_nothing_new()
    {
        string data = UnisonOracle.CopyFixture("v1-store-bolt", _dir.Combine("data"));
        await using var server = new UnisonTestServer(data, "users");
        PSBackup.Engine.Wal.WalShipResult none = await PSBackup.Engine.Wal.WalOperations.ShipAsync(new PSBackup.Engine.Wal.InvokeWalShipOptions(data, "users", "wal/archive") { Endpoint = server.Endpoint, AfterSegmentId = 2 }, Context());
        Assert.Empty(none.Backups);
        // The server copies into a staging folder of the backup root; only verified segments reach wal/archive.
        Assert.Contains(server.Requests, q => q.Contains("\"afterSegmentId\":2", StringComparison.Ordinal) && q.Contains("\"backupDir\":\"endpoint-ship-", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Store_discovery_names_what_it_found()
    {
        string data = _dir.Combine("data");
        Directory.CreateDirectory(Path.Combine(data, "users", "unison.db"));
        File.WriteAllText(Path.Combine(data, "users", "unison.db", "notes.txt"), "x");
        InvalidInputException e = await Assert.ThrowsAsync<InvalidInputException>(() => SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(data, "users", "s.db"), Context()));
        Assert.Equal("UnknownStore", e.ErrorId);
        Assert.Contains("notes.txt", e.Message, StringComparison.Ordinal);

        // A data.mdb that is not LMDB is named as such (not "holds no data.mdb (found: data.mdb)").
        File.WriteAllText(Path.Combine(data, "users", "unison.db", "data.mdb"), "SQLite format 3\0 not LMDB at all, padded past 32 bytes");
        e = await Assert.ThrowsAsync<InvalidInputException>(() => SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(data, "users", "s.db"), Context()));
        Assert.Equal("UnknownStore", e.ErrorId);
        Assert.Contains("data.mdb' of namespace 'users' is not an LMDB data file", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("holds no LMDB", e.Message, StringComparison.Ordinal);

        Directory.Delete(Path.Combine(data, "users", "unison.db"), true);
        File.WriteAllText(Path.Combine(data, "users", "unison.db"), "SQLite format 3\0 not a bolt file");
        e = await Assert.ThrowsAsync<InvalidInputException>(() => SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(data, "users", "s.db"), Context()));
        Assert.Contains("not a bbolt database", e.Message, StringComparison.Ordinal);

        File.Delete(Path.Combine(data, "users", "unison.db"));
        Directory.CreateDirectory(Path.Combine(data, "users", "wal"));
        NotFoundException missing = await Assert.ThrowsAsync<NotFoundException>(() => SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(data, "users", "s.db"), Context()));
        Assert.Equal("StoreNotFound", missing.ErrorId);
        Assert.Contains("wal", missing.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnisonDBs_recovery_proves_a_restored_namespace_or_names_what_is_wrong()
    {
        string data = UnisonOracle.CopyFixture("v1-store-lmdb", _dir.Combine("data"));
        await SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(data, "users", "s/users.mdb"), Context());
        string target = _dir.Combine("restored");
        await RestoreOperations.RestoreSnapshotAsync(new RestoreStoreSnapshotOptions(data, "users") { TargetDataDir = target }, Context());
        CopyWal("v1-store-lmdb", Path.Combine(target, "users", "wal"));
        string oracle = Path.Combine(UnisonOracle.BinDir, UnisonOracle.V1);
        string nsDir = Path.Combine(target, "users");

        (List<string> errors, UnisonRecovery? recovery) = await UnisonRecoveryCheck.RunAsync(oracle, nsDir, "users", StoreEngines.Lmdb, 600, FixtureRecoveredHash, _dir.Combine("w1"), CancellationToken.None);
        Assert.Empty(errors);
        Assert.Equal((180L, 600L, 525, FixtureRecoveredHash), (recovery!.RecordsRecovered, recovery.Checkpoint!.LogIndex!.Value, recovery.Keys, recovery.ContentSha256));
        // The restored copy itself is untouched: recovery ran on a copy.
        Assert.Equal(420UL, UnisonOracle.StoreInfoOf(Path.Combine(nsDir, "unison.db")).RecordProcessed);

        // A plan that promised another end, or another expected content, fails with the reason.
        (errors, _) = await UnisonRecoveryCheck.RunAsync(oracle, nsDir, "users", StoreEngines.Lmdb, 599, null, _dir.Combine("w2"), CancellationToken.None);
        Assert.Contains(errors, e => e.Contains("ends at log index 600", StringComparison.Ordinal));
        (errors, _) = await UnisonRecoveryCheck.RunAsync(oracle, nsDir, "users", StoreEngines.Lmdb, 600, FixtureStartHash, _dir.Combine("w3"), CancellationToken.None);
        Assert.Contains(errors, e => e.Contains("not the expected " + FixtureStartHash, StringComparison.Ordinal));

        // Without the checkpoint's segment UnisonDB cannot start: the check says so.
        File.Delete(Path.Combine(nsDir, "wal", "000000002.seg"));
        (errors, _) = await UnisonRecoveryCheck.RunAsync(oracle, nsDir, "users", StoreEngines.Lmdb, 600, null, _dir.Combine("w4"), CancellationToken.None);
        Assert.NotEmpty(errors);
    }

    private static void StoreGen(string data, string engine, int records, int checkpoint, int seed)
    {
        UnisonOracle.OracleRun run = UnisonOracle.Run(UnisonOracle.V1, "store-gen", "-data", data, "-ns", "users", "-engine", engine,
            "-seg-size", "524288", "-records", records.ToString(CultureInfo.InvariantCulture), "-checkpoint-lsn", checkpoint.ToString(CultureInfo.InvariantCulture),
            "-flush-every", "50", "-seed", seed.ToString(CultureInfo.InvariantCulture), "-hlc-start", "1767225600000", "-hlc-step", "1000");
        Assert.True(run.ExitCode == 0, run.ToString());
    }

    private static void CopyWal(string fixture, string destination) =>
        CopyDirectory(Path.Combine(UnisonOracle.FixturesDir, fixture, "users", "wal"), destination);

    private static void CopyDirectory(string source, string destination)
    {
        Directory.CreateDirectory(destination);
        foreach (string f in Directory.GetFiles(source))
        {
            File.Copy(f, Path.Combine(destination, Path.GetFileName(f)));
        }
    }

    /// <summary>Polls with flock(1) itself (not the code under test) until the file's lock is
    /// held (or, with <paramref name="locked"/> false, free).</summary>
    private static void WaitUntilLocked(string file, bool locked = true)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(30))
        {
            using Process probe = Process.Start(new ProcessStartInfo("flock", ["-n", "-s", file, "true"]) { UseShellExecute = false })!;
            probe.WaitForExit();
            if ((probe.ExitCode != 0) == locked)
            {
                return;
            }
            Thread.Sleep(50);
        }
        throw new TimeoutException(locked ? "flock never took the lock." : "the lock was never released.");
    }
}
