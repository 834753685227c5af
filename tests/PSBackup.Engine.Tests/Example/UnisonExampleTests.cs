using System.Globalization;
using PSBackup.Engine.Restore;
using PSBackup.Engine.Snapshots;
using PSBackup.Engine.Tests.Support;
using PSBackup.Engine.Wal;
using PSBackup.Example;

namespace PSBackup.Engine.Tests.Example;

/// <summary>The example in UnisonDB's layout and, from the same seed, in the SQLite adapter's
/// layout (the same records: the two share the generator's random stream).</summary>
public sealed class GeneratedUnisonExample : IDisposable
{
    public const int Seed = 4321;
    private readonly TestDirectory _dir = new();

    public GeneratedUnisonExample()
    {
        Unison = ExampleGenerator.Generate(_dir.Combine("unison"), Seed);
        Sqlite = ExampleGenerator.Generate(_dir.Combine("sqlite"), Seed, ExampleStoreKind.Sqlite);
    }

    public ExampleGenerationResult Unison { get; }
    public ExampleGenerationResult Sqlite { get; }

    public string Scratch(string name) => _dir.Combine("scratch", name + "-" + Guid.NewGuid().ToString("N")[..6]);

    public void Dispose() => _dir.Dispose();
}

/// <summary>The example database laid out exactly as UnisonDB lays out a data directory, judged by
/// UnisonDB's own code (the oracle): its walfs reader replays the WAL with the right LSNs and HLCs,
/// its LMDB driver reads the store's checkpoint and engine mode, and its start-up recovery brings
/// the store to the same content as replaying every record into an empty store.</summary>
public sealed class UnisonExampleTests(GeneratedUnisonExample example) : IClassFixture<GeneratedUnisonExample>
{
    private const long SegmentSize = UnisonExampleWriter.DefaultSegmentSize;

    [Fact]
    public void The_data_directory_has_UnisonDBs_layout()
    {
        Assert.Equal(ExampleStoreKind.Unison, example.Unison.Store);
        foreach (ExampleNamespaceSummary ns in example.Unison.Namespaces)
        {
            Assert.Equal(Path.Combine(example.Unison.UnisonDataDir, ns.Namespace), ns.Path);
            Assert.True(File.Exists(Path.Combine(ns.Path, "pid.lock")));
            Assert.Equal(0, new FileInfo(Path.Combine(ns.Path, "pid.lock")).Length);
            Assert.True(File.Exists(Path.Combine(ns.Path, "unison.db", "data.mdb")));
            Assert.False(Directory.Exists(Path.Combine(ns.Path, "db")));
            Assert.True(Directory.Exists(Path.Combine(example.Unison.UnisonDataDir, "backups", ns.Namespace)));
            string[] names = Directory.GetFiles(Path.Combine(ns.Path, "wal")).Select(f => Path.GetFileName(f)!).Order(StringComparer.Ordinal).ToArray();
            var expected = new List<string>();
            for (long id = 1; id <= ns.ActiveSegmentId; id++)
            {
                expected.Add($"{id:D9}.seg");
                if (id < ns.ActiveSegmentId)
                {
                    expected.Add($"{id:D9}.seg.idx"); // walfs v1 writes the index sidecar of a sealed segment
                }
            }
            Assert.Equal(expected.Order(StringComparer.Ordinal), names);
            Assert.Equal(ns.ActiveSegmentId - 1, ns.SealedSegments);
            Assert.True(ns.SealedSegments >= 4, $"{ns.Namespace}: {ns.SealedSegments} sealed segments");
            Assert.True(ns.AppliedLogIndex < ns.LastLogIndex, "the store must lag the WAL so recovery matters");
            Assert.Equal(StoreEngines.Lmdb, UnisonStore.Discover(ns.Path, ns.Namespace).Engine);
        }
    }

    [Fact]
    public void UnisonDBs_reader_replays_the_WAL_with_every_records_LSN_and_its_time_as_HLC()
    {
        foreach (ExampleNamespaceSummary ns in example.Unison.Namespaces)
        {
            string wal = CopyOf(Path.Combine(ns.Path, "wal"), "wal-" + ns.Namespace);
            UnisonOracle.ReplayResult replay = UnisonOracle.Replay(wal, SegmentSize, verbose: true);
            Assert.True(replay.ExitCode == 0, replay.ToString());
            Assert.Empty(replay.Discontinuities);
            Assert.Equal(ns.LastLogIndex, replay.Count);
            Assert.Equal((1UL, (ulong)ns.LastLogIndex), (replay.FirstLsn, replay.LastLsn));
            Assert.Equal(ns.ActiveSegmentId, replay.Segments.Count);
            Assert.All(replay.Segments.SkipLast(1), s => Assert.Equal((2, true), (s.Flags, s.Sealed)));
            Assert.Equal((8, false), (replay.Segments[^1].Flags, replay.Segments[^1].Sealed));

            // The same seed in the SQLite layout carries the records in the example's own format:
            // record n's time there is UnisonDB's HLC of LSN n here.
            long[] times = WalDirectory.Scan(Path.Combine(example.Sqlite.UnisonDataDir, ns.Namespace, "wal"), ns.Namespace).Segments
                .SelectMany(s => WalSegmentReader.ReadRecords(s.Path)).Select(r => ExampleRecord.Decode(r.Data).TimestampUnixMs).ToArray();
            Assert.Equal(times.Length, replay.Records.Count);
            for (int i = 0; i < times.Length; i++)
            {
                Assert.Equal(((ulong)(i + 1), (ulong)times[i]), (replay.Records[i].Lsn, replay.Records[i].Hlc));
            }
        }
    }

    [Fact]
    public void UnisonDBs_driver_reads_the_checkpoint_and_recovery_reaches_the_state_of_every_record()
    {
        foreach (ExampleNamespaceSummary ns in example.Unison.Namespaces)
        {
            string data = example.Scratch("recover-" + ns.Namespace);
            CopyTree(ns.Path, Path.Combine(data, ns.Namespace));
            UnisonOracle.StoreInfo before = UnisonOracle.StoreInfoOf(Path.Combine(data, ns.Namespace, "unison.db"));
            Assert.True(before.ExitCode == 0, before.ToString());
            Assert.Equal("LMDB", before.Engine);
            Assert.Contains("engine mode: 1 ", before.Run.Stdout, StringComparison.Ordinal);
            Assert.Equal((ulong)ns.AppliedLogIndex, before.RecordProcessed);

            // The checkpoint is the position of the last applied record, as UnisonDB's reader sees it.
            UnisonOracle.ReplayResult records = UnisonOracle.Replay(CopyOf(Path.Combine(ns.Path, "wal"), "positions-" + ns.Namespace), SegmentSize, verbose: true);
            UnisonOracle.RecordLine applied = records.Records.Single(r => r.Lsn == (ulong)ns.AppliedLogIndex);
            Assert.Equal((applied.SegmentId, applied.Offset), (before.CheckpointSegment, before.CheckpointOffset));

            UnisonOracle.OracleRun recover = UnisonOracle.StoreRecover(data, ns.Namespace, "LMDB", SegmentSize);
            Assert.True(recover.ExitCode == 0, recover.ToString());
            Assert.Contains($"recovered {ns.LastLogIndex - ns.AppliedLogIndex} records (LSN {ns.AppliedLogIndex + 1}..{ns.LastLogIndex})", recover.Stdout, StringComparison.Ordinal);
            UnisonOracle.StoreInfo after = UnisonOracle.StoreInfoOf(Path.Combine(data, ns.Namespace, "unison.db"));
            Assert.Equal((ulong)ns.LastLogIndex, after.RecordProcessed);
            Assert.Equal(FullReplayHash(ns), after.ContentSha256);
        }
    }

    [Fact]
    public async Task A_snapshot_and_the_shipped_WAL_restore_to_a_log_index_and_to_the_end_as_UnisonDB_recovers_them()
    {
        ExampleNamespaceSummary ns = example.Unison.Namespaces[0];
        string data = example.Scratch("pitr");
        CopyTree(ns.Path, Path.Combine(data, ns.Namespace));
        StoreSnapshotResult snap = (await SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(data, ns.Namespace, "snapshots/example.db"), OperationContext.Default))!;
        Assert.Equal(StoreEngines.Lmdb, snap.Store);
        Assert.Equal(ns.AppliedLogIndex, snap.Checkpoint!.LogIndex);
        // Every sealed segment and the active one's valid prefix (a partial): the archive reaches the last record.
        WalShipResult shipped = await WalOperations.ShipAsync(new InvokeWalShipOptions(data, ns.Namespace, "wal"), OperationContext.Default);
        Assert.Equal(ns.ActiveSegmentId, shipped.Backups.Count);
        Assert.True(shipped.Backups[^1].Partial);

        // To the end: UnisonDB's recovery of the restored namespace reaches the state of every record.
        string end = example.Scratch("pitr-end");
        PointInTimeRestoreResult r = await RestoreOperations.RestorePointInTimeAsync(
            new RestorePointInTimeOptions(data, ns.Namespace) { TargetLogIndex = ns.LastLogIndex, TargetDataDir = end }, OperationContext.Default);
        Assert.Equal(ns.LastLogIndex, r.LastLogIndex);
        Assert.False(File.Exists(Path.Combine(end, ns.Namespace, "unison.db", "lock.mdb")));
        UnisonOracle.OracleRun recover = UnisonOracle.StoreRecover(end, ns.Namespace, "LMDB", SegmentSize);
        Assert.True(recover.ExitCode == 0, recover.ToString());
        Assert.Equal(FullReplayHash(ns), UnisonOracle.StoreInfoOf(Path.Combine(end, ns.Namespace, "unison.db")).ContentSha256);

        // A drill to a record inside the WAL: UnisonDB's recovery ends exactly there.
        long target = ns.AppliedLogIndex + (ns.LastLogIndex - ns.AppliedLogIndex) / 2;
        string scratch = example.Scratch("drill");
        Directory.CreateDirectory(scratch);
        RestoreDrillResult drill = (await RestoreDrill.RunAsync(new TestRestoreOptions(ns.Namespace)
        {
            DataDir = data,
            TargetLogIndex = target,
            UnisonOracle = Path.Combine(UnisonOracle.BinDir, UnisonOracle.V1),
            ScratchPath = scratch,
        }, OperationContext.Default))!;
        Assert.True(drill.Passed, string.Join("\n", drill.Errors));
        Assert.Equal(target, drill.UnisonRecovery!.Checkpoint!.LogIndex);
        Assert.Equal(target - ns.AppliedLogIndex, drill.UnisonRecovery.RecordsRecovered);
    }

    [Fact]
    public void The_same_seed_gives_the_same_WAL_and_store_content()
    {
        string again = example.Scratch("again");
        ExampleGenerationResult second = ExampleGenerator.Generate(again, GeneratedUnisonExample.Seed);
        foreach (ExampleNamespaceSummary ns in example.Unison.Namespaces)
        {
            string otherNs = Path.Combine(second.UnisonDataDir, ns.Namespace);
            foreach (string seg in Directory.GetFiles(Path.Combine(ns.Path, "wal")))
            {
                Assert.Equal(File.ReadAllBytes(seg), File.ReadAllBytes(Path.Combine(otherNs, "wal", Path.GetFileName(seg))));
            }
            Assert.Equal(UnisonOracle.StoreInfoOf(Path.Combine(ns.Path, "unison.db")).ContentSha256, UnisonOracle.StoreInfoOf(Path.Combine(otherNs, "unison.db")).ContentSha256);
        }
    }

    [Fact]
    public void LogRecords_decode_as_UnisonDB_records_by_the_engines_reader()
    {
        byte[] key = UnisonLogRecord.KeyKV("user:1"u8);
        Assert.Equal(0xFE, key[0]);
        Assert.Equal(key, UnisonLogRecord.KeyKV(key));
        byte[] put = UnisonLogRecord.Encode(7, 1767225600123, UnisonLogRecord.OperationInsert, [(key, "v"u8.ToArray())]);
        Assert.True(WalPayload.TryDecodeLogRecord(put, put.Length, out WalPayloadFacts facts, out _));
        Assert.Equal(7, facts.LogIndex);
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(1767225600123), facts.Time);
    }

    /// <summary>The content hash UnisonDB's recovery gives when it replays every record of the
    /// namespace's WAL into an empty store of its own (store-gen with no records applied).</summary>
    private string FullReplayHash(ExampleNamespaceSummary ns)
    {
        string data = example.Scratch("empty-" + ns.Namespace);
        UnisonOracle.OracleRun gen = UnisonOracle.Run(UnisonOracle.V1, "store-gen", "-data", data, "-ns", ns.Namespace, "-engine", "LMDB",
            "-seg-size", SegmentSize.ToString(CultureInfo.InvariantCulture), "-records", "1", "-checkpoint-lsn", "0");
        Assert.True(gen.ExitCode == 0, gen.ToString());
        string wal = Path.Combine(data, ns.Namespace, "wal");
        Directory.Delete(wal, recursive: true);
        CopyTree(Path.Combine(ns.Path, "wal"), wal);
        UnisonOracle.OracleRun recover = UnisonOracle.StoreRecover(data, ns.Namespace, "LMDB", SegmentSize);
        Assert.True(recover.ExitCode == 0, recover.ToString());
        Assert.Contains($"recovered {ns.LastLogIndex} records (LSN 1..{ns.LastLogIndex})", recover.Stdout, StringComparison.Ordinal);
        return UnisonOracle.StoreInfoOf(Path.Combine(data, ns.Namespace, "unison.db")).ContentSha256!;
    }

    private string CopyOf(string source, string name)
    {
        string copy = example.Scratch(name);
        CopyTree(source, copy);
        return copy;
    }

    private static void CopyTree(string source, string destination)
    {
        foreach (string file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            string to = Path.Combine(destination, Path.GetRelativePath(source, file));
            Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            File.Copy(file, to);
        }
    }
}
