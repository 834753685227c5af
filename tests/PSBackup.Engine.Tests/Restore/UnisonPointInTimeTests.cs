using System.Security.Cryptography;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Restore;
using PSBackup.Engine.Tests.Support;
using PSBackup.Engine.Wal;

namespace PSBackup.Engine.Tests.Restore;

/// <summary>Point-in-time restores of real UnisonDB WALs, each judged by UnisonDB's own reader: the
/// oracle's <c>replay -from &lt;checkpoint&gt;</c> on the restored <c>wal/</c> must replay exactly
/// the expected log-index range, by log index and by record time (HLC), cutting inside segments.</summary>
public sealed class UnisonPointInTimeTests : IDisposable
{
    private const long StoreSegmentSize = 262144;
    /// <summary>The store fixtures' HLC of LSN n (shared/unisondb/README.md: -hlc-start/-hlc-step).</summary>
    private static DateTimeOffset Hlc(long lsn) => DateTimeOffset.FromUnixTimeMilliseconds(1767225600000 + (lsn - 1) * 1000);

    private readonly TestDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>The v1 store fixture as a live data dir, its WAL archived in the local backup root
    /// (sealed 1..2 by Invoke-WalShip, the active 3 as an unsealed copy) and a snapshot whose
    /// position is the store's checkpoint 2:222128 (LSN 420), as the store adapter records it.</summary>
    private async Task<string> StoreScenario(string fixture = "v1-store-bolt", bool archiveActive = true)
    {
        string data = _dir.Combine("data");
        UnisonOracle.CopyFixture(fixture, data);
        string wal = Path.Combine(data, "users", "wal");
        await WalOperations.ShipAsync(new InvokeWalShipOptions(data, "users", "wal"), OperationContext.Default);
        if (archiveActive)
        {
            Directory.CreateDirectory(Path.Combine(data, "backups", "users", "partial"));
            File.Copy(Path.Combine(wal, "000000003.seg"), Path.Combine(data, "backups", "users", "partial", "000000003.seg"));
        }
        UnisonOracle.StoreInfo info = UnisonOracle.StoreInfoOf(Path.Combine(data, "users", "unison.db"));
        WalRecordAt checkpoint = WalRecordLocator.ReadRecordAt(wal, info.CheckpointSegment, info.CheckpointOffset);
        await WriteSnapshot(data, "snapshots/s420", Hlc(420).AddMilliseconds(1),
            new WalPosition([1, 2, 3], 600, checkpoint.LogIndex)
            {
                Checkpoint = new PSBackup.Engine.Snapshots.StoreCheckpoint((long)info.RecordProcessed, checkpoint.SegmentId, checkpoint.Offset, 0, 0) { LogIndex = checkpoint.LogIndex },
            });
        return data;
    }

    /// <summary>A snapshot in the local backup root as a store adapter writes it: one file and a
    /// manifest with its WAL position.</summary>
    private static async Task WriteSnapshot(string data, string path, DateTimeOffset completed, WalPosition position)
    {
        string file = Path.Combine(data, "backups", "users", path);
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        byte[] content = "store"u8.ToArray();
        await File.WriteAllBytesAsync(file, content);
        await ManifestIO.WriteAsync(file + ".manifest.json", new BackupManifest
        {
            Kind = "snapshot",
            CreatedAt = completed.AddMilliseconds(-1),
            CompletedAt = completed,
            Source = "test",
            Wal = position,
            Files = [new ManifestFile("unison.db", content.Length, Convert.ToHexStringLower(SHA256.HashData(content)))],
        }, CancellationToken.None);
    }

    private Task<PointInTimeRestoreResult> Restore(string data, long? index = null, DateTimeOffset? time = null, RepositoryTarget? repo = null) =>
        RestoreOperations.RestorePointInTimeAsync(new RestorePointInTimeOptions(data, "users")
        {
            TargetLogIndex = index,
            TargetTime = time,
            TargetDataDir = _dir.Combine("restored-" + Guid.NewGuid().ToString("N")[..6]),
            Repository = repo,
        }, OperationContext.Default);

    private static UnisonOracle.ReplayResult ReplayRestored(PointInTimeRestoreResult r, long segmentSize, string from, bool v2 = false)
    {
        UnisonOracle.ReplayResult replay = UnisonOracle.Replay(Path.Combine(r.RestoredPath, "wal"), segmentSize, from: from, v2: v2);
        Assert.True(replay.ExitCode == 0, replay.ToString());
        return replay;
    }

    [Theory]
    [InlineData(500L)] // inside active segment 3: segment 2 whole, 3 cut
    [InlineData(430L)] // inside segment 2, after the checkpoint record
    [InlineData(600L)] // the last archived record
    public async Task By_log_index_UnisonDB_replays_exactly_the_records_after_the_checkpoint_up_to_the_target(long target)
    {
        string data = await StoreScenario();
        PointInTimeRestoreResult r = await Restore(data, index: target);
        Assert.Equal(target, r.LastLogIndex);
        Assert.Equal((2L, 222128L), (r.Plan.Checkpoint!.SegmentId, r.Plan.Checkpoint.Offset));
        Assert.Equal(2, r.Plan.Segments[0].SegmentId); // the checkpoint's segment, though 1 is archived too

        string[] expectedFiles = target <= 439 ? ["000000002.seg"] : ["000000002.seg", "000000003.seg"];
        Assert.Equal(expectedFiles, Directory.GetFiles(Path.Combine(r.RestoredPath, "wal")).Select(f => Path.GetFileName(f)!).Order().ToArray());
        UnisonOracle.ReplayResult replay = ReplayRestored(r, StoreSegmentSize, "2:222128");
        Assert.Equal((target - 420, 421UL, (ulong)target), (replay.Count, replay.FirstLsn, replay.LastLsn));
        Assert.Equal((ulong)Hlc(target).ToUnixTimeMilliseconds(), replay.LastHlc);
        Assert.Empty(replay.Discontinuities);
        // Original ids, names and offsets: a whole segment is the source's bytes; a cut one keeps
        // the source's record bytes at the same offsets up to the target.
        byte[] original = File.ReadAllBytes(Path.Combine(data, "users", "wal", "000000002.seg"));
        byte[] restored = File.ReadAllBytes(Path.Combine(r.RestoredPath, "wal", "000000002.seg"));
        if (target > 439)
        {
            Assert.Equal(original, restored);
        }
        else
        {
            WalRecordAt last = WalRecordLocator.ReadRecordAt(Path.Combine(data, "users", "wal"), 2, replay.LastOffset);
            Assert.Equal(target, last.LogIndex);
            Assert.Equal(original.AsSpan(64, (int)last.NextOffset - 64).ToArray(), restored.AsSpan(64, (int)last.NextOffset - 64).ToArray());
        }
    }

    [Theory]
    [InlineData(550L, 0)]    // exactly a record's HLC
    [InlineData(550L, 999)]  // between two records: the earlier one
    [InlineData(425L, 1)]
    public async Task By_time_every_record_whose_own_HLC_is_at_or_before_the_target_is_restored_and_no_later_one(long lastLsn, int extraMs)
    {
        string data = await StoreScenario();
        DateTimeOffset t = Hlc(lastLsn).AddMilliseconds(extraMs);
        PointInTimeRestoreResult r = await Restore(data, time: t);
        Assert.Equal(lastLsn, r.LastLogIndex);
        Assert.Equal(Hlc(lastLsn), r.Plan.LastRecordTime);
        Assert.Contains(r.Plan.Notes, n => n.Contains($"log index {lastLsn + 1}", StringComparison.Ordinal) && n.Contains("after the target", StringComparison.Ordinal));

        UnisonOracle.ReplayResult replay = ReplayRestored(r, StoreSegmentSize, "2:222128");
        Assert.Equal((lastLsn - 420, 421UL, (ulong)lastLsn), (replay.Count, replay.FirstLsn, replay.LastLsn));
        Assert.Equal((ulong)Hlc(lastLsn).ToUnixTimeMilliseconds(), replay.LastHlc);
    }

    [Fact]
    public async Task A_target_at_a_sealed_segments_end_gets_an_empty_active_segment_UnisonDB_can_write_into()
    {
        string data = await StoreScenario();
        PointInTimeRestoreResult r = await Restore(data, index: 439); // segment 2 holds 245..439
        Assert.Equal(3, r.Plan.EmptyActiveSegmentId);
        string wal = Path.Combine(r.RestoredPath, "wal");
        Assert.Equal(["000000002.seg", "000000003.seg"], Directory.GetFiles(wal).Select(f => Path.GetFileName(f)!).Order().ToArray());

        UnisonOracle.ReplayResult replay = ReplayRestored(r, StoreSegmentSize, "2:222128");
        Assert.Equal((19L, 421UL, 439UL), (replay.Count, replay.FirstLsn, replay.LastLsn));
        Assert.Equal([(2u, true), (3u, false)], replay.Segments.Select(s => (s.Id, s.Sealed)));

        // UnisonDB keeps writing after the restore: the next record lands in the empty segment.
        UnisonOracle.OracleRun append = UnisonOracle.Run(UnisonOracle.V1, "append", "-dir", wal, "-seg-size", StoreSegmentSize.ToString(), "-lsn", "440");
        Assert.True(append.ExitCode == 0, append.ToString());
        Assert.Contains("SegmentID=3", append.Stdout);
        UnisonOracle.ReplayResult after = ReplayRestored(r, StoreSegmentSize, "2:222128");
        Assert.Equal((20L, 440UL), (after.Count, after.LastLsn));
    }

    [Fact]
    public async Task Without_the_empty_segment_UnisonDB_could_not_write_after_a_sealed_end()
    {
        // The reason for the empty segment, shown with UnisonDB's own code: a WAL whose newest
        // segment is sealed refuses the next append.
        string data = await StoreScenario();
        PointInTimeRestoreResult r = await Restore(data, index: 439);
        string wal = Path.Combine(r.RestoredPath, "wal");
        File.Delete(Path.Combine(wal, "000000003.seg"));
        UnisonOracle.OracleRun append = UnisonOracle.Run(UnisonOracle.V1, "append", "-dir", wal, "-seg-size", StoreSegmentSize.ToString(), "-lsn", "440");
        Assert.Equal(6, append.ExitCode);
    }

    [Fact]
    public async Task A_restore_that_needs_no_replay_keeps_the_checkpoint_record_UnisonDB_starts_from()
    {
        string data = await StoreScenario(archiveActive: false);
        PointInTimeRestoreResult r = await Restore(data, index: 420);
        Assert.Equal(420, r.LastLogIndex);
        UnisonOracle.ReplayResult replay = ReplayRestored(r, StoreSegmentSize, "2:222128");
        Assert.Equal(0, replay.Count);
        Assert.Equal(420, WalRecordLocator.ReadRecordAt(Path.Combine(r.RestoredPath, "wal"), 2, 222128).LogIndex);
    }

    [Fact]
    public async Task From_a_repository_by_time_with_the_segment_holding_the_target_cut_the_same_way()
    {
        string data = await StoreScenario(archiveActive: false);
        var repo = new RepositoryTarget { Location = _dir.Combine("repo") };
        await RepositoryOperations.InitializeAsync(new InitializeRepositoryOptions(repo) { Unencrypted = true }, OperationContext.Default);
        await WalOperations.ShipAsync(new InvokeWalShipOptions(data, "users", null) { Repository = repo }, OperationContext.Default);
        await SnapshotToRepository(data, repo);

        PointInTimeRestoreResult r = await Restore(data, time: Hlc(433).AddMilliseconds(400), repo: repo);
        Assert.Equal(433, r.LastLogIndex);
        UnisonOracle.ReplayResult replay = ReplayRestored(r, StoreSegmentSize, "2:222128");
        Assert.Equal((13L, 421UL, 433UL), (replay.Count, replay.FirstLsn, replay.LastLsn));
    }

    /// <summary>A snapshot in the repository as the store adapter will write one: a db file and the
    /// checkpoint position.</summary>
    private static async Task SnapshotToRepository(string data, RepositoryTarget repo)
    {
        await using OpenRepository open = await RepositoryConnector.OpenForWriteAsync(repo, RepositoryLockMode.Shared, "test", OperationContext.Default);
        await using BackupWriter writer = open.Repository.BeginBackup(new BackupInfo
        {
            Kind = BackupKind.StoreSnapshot,
            Namespace = "users",
            CreatedAt = Hlc(420),
            Wal = new WalPosition([1, 2, 3], 600, 420) { Checkpoint = new PSBackup.Engine.Snapshots.StoreCheckpoint(420, 2, 222128, 0, 0) { LogIndex = 420 } },
        }, new ManualClock(Hlc(420).AddMilliseconds(1)));
        await using (var content = new MemoryStream("store"u8.ToArray()))
        {
            await writer.AddFileAsync("db/unison.db", content, ChunkingProfile.Default, CancellationToken.None);
        }
        await writer.CommitAsync($"snapshot/users/{Hlc(420).UtcDateTime:yyyyMMdd'T'HHmmss}Z", CancellationToken.None);
    }

    [Theory]
    [InlineData("v1-small", false)]
    [InlineData("v2-small", true)]
    public async Task A_fixture_WAL_replayed_from_its_start_by_index_and_by_time(string fixture, bool v2)
    {
        string data = _dir.Combine("data");
        UnisonOracle.CopyFixture(fixture, data);
        string wal = Path.Combine(data, "users", "wal");
        await WalOperations.ShipAsync(new InvokeWalShipOptions(data, "users", "wal"), OperationContext.Default);
        // A snapshot of an empty store taken before the first record: replay starts at the WAL's start.
        WalSegmentInfo first = WalSegmentReader.Inspect(Path.Combine(wal, "000000001.seg"), "users");
        await WriteSnapshot(data, "snapshots/empty", first.FirstRecordTime!.Value.AddMilliseconds(-1), new WalPosition([1], 0, 0));

        PointInTimeRestoreResult byIndex = await Restore(data, index: 700); // inside sealed segment 4 (576..801)
        UnisonOracle.ReplayResult replay = ReplayRestored(byIndex, 1 << 20, "0:0", v2);
        Assert.Equal((700L, 1UL, 700UL), (replay.Count, replay.FirstLsn, replay.LastLsn));
        Assert.Equal(4u, replay.Segments[^1].Id);
        Assert.False(replay.Segments[^1].Sealed);
        Assert.All(Directory.GetFiles(Path.Combine(byIndex.RestoredPath, "wal"), "*.seg"), f => Assert.Equal(v2 ? 2u : 1u, BitConverter.ToUInt32(File.ReadAllBytes(f), 4)));

        // By time: the oracle's own per-record listing names the record whose HLC is the target.
        UnisonOracle.ReplayResult all = UnisonOracle.Replay(wal, 1 << 20, v2: v2, verbose: true);
        UnisonOracle.RecordLine pick = all.Records.First(r => r.Lsn == 650);
        long lastAtOrBefore = (long)all.Records.TakeWhile(r => r.Hlc <= pick.Hlc).Last().Lsn;
        PointInTimeRestoreResult byTime = await Restore(data, time: DateTimeOffset.FromUnixTimeMilliseconds((long)pick.Hlc));
        Assert.Equal(lastAtOrBefore, byTime.LastLogIndex);
        UnisonOracle.ReplayResult timed = ReplayRestored(byTime, 1 << 20, "0:0", v2);
        Assert.Equal((lastAtOrBefore, (ulong)lastAtOrBefore), (timed.Count, timed.LastLsn));
        Assert.Equal(pick.Hlc, timed.LastHlc);

        // Ending at a sealed segment's end (5 holds 802..978): an empty active segment 6 follows,
        // and this walfs line appends into it.
        PointInTimeRestoreResult atEnd = await Restore(data, index: 978);
        Assert.Equal(6, atEnd.Plan.EmptyActiveSegmentId);
        UnisonOracle.ReplayResult ended = ReplayRestored(atEnd, 1 << 20, "0:0", v2);
        Assert.Equal((978L, 978UL), (ended.Count, ended.LastLsn));
        Assert.Equal((6u, false, 0L), (ended.Segments[^1].Id, ended.Segments[^1].Sealed, ended.Segments[^1].EntryCount));
        UnisonOracle.OracleRun append = UnisonOracle.Run(v2 ? UnisonOracle.V2 : UnisonOracle.V1, "append", "-dir", Path.Combine(atEnd.RestoredPath, "wal"), "-seg-size", (1 << 20).ToString(), "-lsn", "979");
        Assert.True(append.ExitCode == 0, append.ToString());
    }

    [Fact]
    public async Task A_consumed_log_index_is_a_note_not_a_gap_and_the_restore_replays_across_it()
    {
        string data = _dir.Combine("data");
        string wal = Path.Combine(data, "users", "wal");
        Directory.CreateDirectory(wal);
        UnisonOracle.OracleRun gen = UnisonOracle.Run(UnisonOracle.V1, "gen", "-dir", wal, "-seg-size", "262144", "-records", "120", "-sessions", "1", "-fail-at", "60", "-seed", "5");
        Assert.True(gen.ExitCode == 0, gen.ToString());
        await WalOperations.ShipAsync(new InvokeWalShipOptions(data, "users", "wal"), OperationContext.Default);
        Directory.CreateDirectory(Path.Combine(data, "backups", "users", "partial"));
        string active = Directory.GetFiles(wal, "*.seg").Order().Last();
        File.Copy(active, Path.Combine(data, "backups", "users", "partial", Path.GetFileName(active)));
        WalSegmentInfo first = WalSegmentReader.Inspect(Path.Combine(wal, "000000001.seg"), "users");
        await WriteSnapshot(data, "snapshots/empty", first.FirstRecordTime!.Value.AddMilliseconds(-1), new WalPosition([1], 0, 0));

        PointInTimeRestoreResult r = await Restore(data, index: 110);
        UnisonOracle.ReplayResult replay = ReplayRestored(r, 262144, "0:0");
        Assert.Equal((109L, 1UL, 110UL), (replay.Count, replay.FirstLsn, replay.LastLsn)); // 61 was never written
        Assert.Single(replay.Discontinuities);

        PointInTimeRestoreResult at = await Restore(data, index: 61); // the consumed index itself
        UnisonOracle.ReplayResult upTo = ReplayRestored(at, 262144, "0:0");
        Assert.Equal((60L, 60UL), (upTo.Count, upTo.LastLsn));
    }
}
