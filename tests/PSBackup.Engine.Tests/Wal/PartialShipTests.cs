using System.Buffers.Binary;
using System.Security.Cryptography;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Restore;
using PSBackup.Engine.Retention;
using PSBackup.Engine.Storage;
using PSBackup.Engine.Tests.Support;
using PSBackup.Engine.Wal;

namespace PSBackup.Engine.Tests.Wal;

/// <summary>Partials (issue 16): the valid prefix of the active segment is archived, later ships
/// store only what is new, the sealed segment supersedes its partials, and a restore through a
/// partial is judged by UnisonDB's own reader (the oracle's replay). Real WALs: the v1/v2 fixtures
/// (sealed 1..5, active 6 holding log indexes 979..1005, 1 MiB segments) grown with the oracle's
/// <c>gen</c>.</summary>
public sealed class PartialShipTests : IDisposable
{
    private const long SegmentSize = 1 << 20;
    private readonly TestDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private string Fixture(bool v2)
    {
        string data = _dir.Combine("data");
        UnisonOracle.CopyFixture(v2 ? "v2-small" : "v1-small", data);
        return data;
    }

    private static string Wal(string data) => Path.Combine(data, "users", "wal");

    /// <summary>Appends <paramref name="records"/> records after <paramref name="lastLsn"/> the way
    /// UnisonDB writes them (the oracle's gen: opens the WAL, appends, closes).</summary>
    private static void Grow(string data, bool v2, long lastLsn, int records, int seed)
    {
        UnisonOracle.OracleRun gen = UnisonOracle.Run(v2 ? UnisonOracle.V2 : UnisonOracle.V1, "gen", "-dir", Wal(data), "-seg-size", SegmentSize.ToString(),
            "-records", records.ToString(), "-sessions", "1", "-start-lsn", (lastLsn + 1).ToString(), "-seed", seed.ToString());
        Assert.True(gen.ExitCode == 0, gen.ToString());
    }

    private static WalSegmentInfo Active(string data) =>
        WalDirectory.List(Wal(data)).Segments.Select(s => WalSegmentReader.Inspect(s.Path, "users", s.Id)).Last();

    /// <summary>A snapshot of the empty store taken before the first record: replay starts at 1.</summary>
    private static async Task EmptySnapshot(string data)
    {
        WalSegmentInfo first = WalSegmentReader.Inspect(Path.Combine(Wal(data), "000000001.seg"), "users");
        string file = Path.Combine(data, "backups", "users", "snapshots", "empty");
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        byte[] content = "store"u8.ToArray();
        await File.WriteAllBytesAsync(file, content);
        DateTimeOffset completed = first.FirstRecordTime!.Value.AddMilliseconds(-1);
        await ManifestIO.WriteAsync(file + ".manifest.json", new BackupManifest
        {
            Kind = "snapshot",
            CreatedAt = completed.AddMilliseconds(-1),
            CompletedAt = completed,
            Source = "test",
            Wal = new WalPosition([1], 0, 0),
            Files = [new ManifestFile("unison.db", content.Length, Convert.ToHexStringLower(SHA256.HashData(content)))],
        }, CancellationToken.None);
    }

    private static async Task EmptySnapshotToRepository(string data, RepositoryTarget repo)
    {
        WalSegmentInfo first = WalSegmentReader.Inspect(Path.Combine(Wal(data), "000000001.seg"), "users");
        DateTimeOffset at = first.FirstRecordTime!.Value.AddMilliseconds(-2);
        await using OpenRepository open = await RepositoryConnector.OpenForWriteAsync(repo, RepositoryLockMode.Shared, "test", OperationContext.Default);
        await using BackupWriter writer = open.Repository.BeginBackup(new BackupInfo
        {
            Kind = BackupKind.StoreSnapshot,
            Namespace = "users",
            CreatedAt = at,
            Wal = new WalPosition([1], 0, 0),
        }, new PSBackup.Engine.Tests.Restore.ManualClock(at.AddMilliseconds(1)));
        await using (var content = new MemoryStream("store"u8.ToArray()))
        {
            await writer.AddFileAsync("db/unison.db", content, ChunkingProfile.Default, CancellationToken.None);
        }
        await writer.CommitAsync("snapshot/users/empty", CancellationToken.None);
    }

    private Task<PointInTimeRestoreResult> Restore(string data, long? index = null, DateTimeOffset? time = null, RepositoryTarget? repo = null) =>
        RestoreOperations.RestorePointInTimeAsync(new RestorePointInTimeOptions(data, "users")
        {
            TargetLogIndex = index,
            TargetTime = time,
            TargetDataDir = _dir.Combine("restored-" + Guid.NewGuid().ToString("N")[..6]),
            Repository = repo,
        }, OperationContext.Default);

    private static UnisonOracle.ReplayResult Replay(PointInTimeRestoreResult r, bool v2)
    {
        UnisonOracle.ReplayResult replay = UnisonOracle.Replay(Path.Combine(r.RestoredPath, "wal"), SegmentSize, from: "0:0", v2: v2);
        Assert.True(replay.ExitCode == 0, replay.ToString());
        Assert.Empty(replay.Discontinuities);
        return replay;
    }

    private static async Task<RepositoryTarget> NewRepository(string path)
    {
        var repo = new RepositoryTarget { Location = path };
        await RepositoryOperations.InitializeAsync(new InitializeRepositoryOptions(repo) { Unencrypted = true }, OperationContext.Default);
        return repo;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_local_ship_archives_the_active_prefix_under_its_own_name_and_a_restore_inside_it_replays_in_UnisonDB(bool v2)
    {
        string data = Fixture(v2);
        WalShipResult first = await WalOperations.ShipAsync(new InvokeWalShipOptions(data, "users", "wal"), OperationContext.Default);
        Assert.Equal([1L, 2, 3, 4, 5, 6], first.Backups.Select(b => b.SegmentId));
        ShippedSegment partial = first.Backups[^1];
        Assert.True(partial.Partial);
        Assert.Equal((27L, 1005L), (partial.EntryCount, partial.LastLogIndex));
        Assert.NotNull(partial.ObservedAt);
        Assert.NotNull(partial.LastRecordTime);
        Assert.All(first.Backups.SkipLast(1), b => Assert.False(b.Partial));
        string name = Path.GetFileName(partial.Path);
        Assert.Matches(@"^000000006\.seg\.partial-\d{8}T\d{9}Z$", name);
        Assert.False(WalFormat.TryParseArchivedFileName(name, out _, out _, out _)); // never a sealed segment's name
        string archive = Path.Combine(data, "backups", "users", "wal");
        // The archive folder still lists as a WAL of sealed segments 1..5; the partial is not one of them.
        Assert.Equal([1L, 2, 3, 4, 5], WalDirectory.List(archive).Segments.Select(s => s.Id));

        // The same prefix again: already archived, nothing new.
        WalShipResult again = await WalOperations.ShipAsync(new InvokeWalShipOptions(data, "users", "wal"), OperationContext.Default);
        Assert.True(Assert.Single(again.Backups, b => b.Partial).AlreadyPresent);

        // More records: a newer partial replaces the older one.
        Grow(data, v2, 1005, 6, seed: 11);
        WalSegmentInfo live = Active(data);
        Assert.Equal(6, live.SegmentId); // still the active segment
        WalShipResult second = await WalOperations.ShipAsync(new InvokeWalShipOptions(data, "users", "wal"), OperationContext.Default);
        ShippedSegment newer = Assert.Single(second.Backups, b => !b.AlreadyPresent);
        Assert.Equal((true, 33L, 1011L), (newer.Partial, newer.EntryCount, newer.LastLogIndex));
        Assert.Equal([Path.GetFileName(newer.Path)], Directory.GetFiles(archive, "*.partial-*").Select(Path.GetFileName));

        await EmptySnapshot(data);
        PointInTimeRestoreResult inside = await Restore(data, index: 1008);
        Assert.Equal((1008L, 1UL, 1008UL), (Replay(inside, v2).Count, Replay(inside, v2).FirstLsn, Replay(inside, v2).LastLsn));
        PointInTimeRestoreResult latest = await Restore(data, index: 1011);
        UnisonOracle.ReplayResult all = Replay(latest, v2);
        Assert.Equal((1011L, 1011UL), (all.Count, all.LastLsn));
        Assert.False(all.Segments[^1].Sealed);
        // UnisonDB can go on writing into the restored active segment.
        UnisonOracle.OracleRun append = UnisonOracle.Run(v2 ? UnisonOracle.V2 : UnisonOracle.V1, "append", "-dir", Path.Combine(latest.RestoredPath, "wal"), "-seg-size", SegmentSize.ToString(), "-lsn", "1012");
        Assert.True(append.ExitCode == 0, append.ToString());

        // By time: the record times of the partial's payloads (HLC) decide.
        UnisonOracle.ReplayResult listing = UnisonOracle.Replay(Wal(data), SegmentSize, v2: v2, verbose: true);
        UnisonOracle.RecordLine pick = listing.Records.First(r => r.Lsn == 1009);
        long expected = (long)listing.Records.TakeWhile(r => r.Hlc <= pick.Hlc).Last().Lsn;
        PointInTimeRestoreResult byTime = await Restore(data, time: DateTimeOffset.FromUnixTimeMilliseconds((long)pick.Hlc));
        Assert.Equal(expected, byTime.LastLogIndex);
        Assert.Equal((ulong)expected, Replay(byTime, v2).LastLsn);
    }

    [Fact]
    public async Task A_torn_tail_in_the_active_segment_is_never_archived_as_a_record()
    {
        string data = Fixture(v2: false);
        WalSegmentInfo live = Active(data);
        // A torn append: a record header promising 5000 bytes, a CRC, and only part of the data.
        using (var f = new FileStream(live.Path, FileMode.Open, FileAccess.Write))
        {
            f.Position = live.ValidBytes;
            byte[] torn = new byte[8 + 1200];
            BinaryPrimitives.WriteUInt32LittleEndian(torn, 0xDEADBEEF);
            BinaryPrimitives.WriteUInt32LittleEndian(torn.AsSpan(4), 5000);
            new Random(3).NextBytes(torn.AsSpan(8));
            f.Write(torn);
        }
        var repo = await NewRepository(_dir.Combine("repo"));
        WalShipResult local = await WalOperations.ShipAsync(new InvokeWalShipOptions(data, "users", "wal"), OperationContext.Default);
        WalShipResult remote = await WalOperations.ShipAsync(new InvokeWalShipOptions(data, "users", null) { Repository = repo }, OperationContext.Default);
        foreach (ShippedSegment p in new[] { local.Backups[^1], remote.Backups[^1] })
        {
            Assert.Equal((true, 27L, 1005L), (p.Partial, p.EntryCount, p.LastLogIndex));
        }
        Assert.Equal(live.ValidBytes, remote.Backups[^1].Bytes); // the repository stores the prefix only
        byte[] archived = File.ReadAllBytes(local.Backups[^1].Path);
        Assert.All(archived.AsSpan((int)live.ValidBytes).ToArray(), b => Assert.Equal(0, b)); // zeros after the prefix, no torn bytes

        await EmptySnapshot(data);
        await EmptySnapshotToRepository(data, repo);
        foreach (RepositoryTarget? source in new[] { null, repo })
        {
            PointInTimeRestoreResult r = await Restore(data, index: 2000, repo: source);
            Assert.Equal(1005, r.LastLogIndex);
            Assert.True(r.Plan.TargetPastArchive);
            UnisonOracle.ReplayResult replay = Replay(r, v2: false);
            Assert.Equal((1005L, 1005UL), (replay.Count, replay.LastLsn));
            Assert.Equal(SegmentSize, new FileInfo(Path.Combine(r.RestoredPath, "wal", "000000006.seg")).Length);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Repository_partials_store_only_new_records_the_sealed_segment_supersedes_them_and_retention_removes_them(bool v2)
    {
        string data = Fixture(v2);
        var repo = await NewRepository(_dir.Combine("repo"));
        var ship = new InvokeWalShipOptions(data, "users", null) { Repository = repo };
        WalShipResult first = await WalOperations.ShipAsync(ship, OperationContext.Default);
        ShippedSegment p1 = first.Backups[^1];
        Assert.Equal((true, 6L, 1005L), (p1.Partial, p1.SegmentId, p1.LastLogIndex));
        Assert.StartsWith("wal/users/000000006_partial-", p1.Path);

        long before = Active(data).ValidBytes;
        Grow(data, v2, 1005, 6, seed: 11);
        WalSegmentInfo grown = Active(data);
        Assert.Equal(6, grown.SegmentId);
        long added = grown.ValidBytes - before;
        ShippedSegment p2 = (await WalOperations.ShipAsync(ship, OperationContext.Default)).Backups.Single(b => !b.AlreadyPresent);
        Assert.Equal((true, 1011L), (p2.Partial, p2.LastLogIndex));
        // Only the new records (plus a header chunk and at most one re-cut chunk's worth of
        // boundary) are stored: nowhere near the 1 MiB segment, nor the whole prefix again.
        Assert.True(p2.StoredBytes <= added + 80 * 1024, $"stored {p2.StoredBytes} for {added} new bytes");

        await EmptySnapshotToRepository(data, repo);
        PointInTimeRestoreResult inside = await Restore(data, index: 1009, repo: repo);
        UnisonOracle.ReplayResult replay = Replay(inside, v2);
        Assert.Equal((1009L, 1009UL), (replay.Count, replay.LastLsn));

        // Fill segment 6 until walfs rotates: the sealed segment ships and shares the partials' chunks.
        long last = 1011;
        for (int round = 0; Active(data).SegmentId == 6; round++)
        {
            Grow(data, v2, last, 40, seed: 100 + round);
            last += 40;
        }
        WalShipResult sealedShip = await WalOperations.ShipAsync(ship, OperationContext.Default);
        ShippedSegment sealed6 = sealedShip.Backups.Single(b => b.SegmentId == 6);
        Assert.False(sealed6.Partial);
        WalSegmentInfo sealedInfo = WalSegmentReader.Inspect(Path.Combine(Wal(data), "000000006.seg"), "users");
        Assert.True(sealed6.StoredBytes <= sealedInfo.ValidBytes - grown.ValidBytes + 80 * 1024,
            $"stored {sealed6.StoredBytes} for {sealedInfo.ValidBytes - grown.ValidBytes} bytes past the last partial");

        // Each ship forgot the partial before it (UnisonDB payloads carry their own times): one is left.
        await using (OpenRepository open = await RepositoryConnector.OpenForWriteAsync(repo, RepositoryLockMode.Shared, "test", OperationContext.Default))
        {
            Assert.Single(await open.Repository.ListRefsAsync("wal/users/000000006_partial-"));
        }
        // Retention: the partial of 6 is superseded and removed; the sealed 6 stays.
        IReadOnlyList<RetentionItem> pruned = await RetentionOperations.RemoveExpiredAsync(new RemoveExpiredBackupOptions
        {
            Repository = repo,
            Namespace = "users",
            Policy = new RetentionPolicy { KeepLast = 10 },
        }, OperationContext.Default);
        var six = pruned.Where(i => i.Kind == RetentionItemKind.WalSegment && i.SegmentId == 6).ToList();
        Assert.Equal(1, six.Count(i => i.Removed && i.Id.EndsWith("(partial)", StringComparison.Ordinal)));
        Assert.Single(six, i => i.Decision == RetentionDecision.Keep && !i.Id.EndsWith("(partial)", StringComparison.Ordinal));
        RepositoryCheckReport check = await (await PSBackup.Engine.Repository.Repository.OpenAsync(new LocalBackend(repo.Location), RepositoryCredentials.None)).CheckAsync(readData: true);
        Assert.True(check.Ok, string.Join("; ", check.Errors));
        PointInTimeRestoreResult after = await Restore(data, index: 1011, repo: repo);
        Assert.Equal(1011UL, Replay(after, v2).LastLsn);
    }

    [Fact]
    public async Task After_segment_id_naming_a_partial_still_ships_its_sealed_segment()
    {
        string data = Fixture(v2: false);
        WalShipResult day1 = await WalOperations.ShipAsync(new InvokeWalShipOptions(data, "users", "wal/day1"), OperationContext.Default);
        long lastSeen = day1.Backups.Max(b => b.SegmentId); // the seed's ".backups[-1].segmentId": the partial's 6
        Assert.Equal(6, lastSeen);
        long last = 1005;
        for (int round = 0; Active(data).SegmentId == 6; round++)
        {
            Grow(data, v2: false, last, 40, seed: 200 + round);
            last += 40;
        }
        WalShipResult day2 = await WalOperations.ShipAsync(new InvokeWalShipOptions(data, "users", "wal/day2") { AfterSegmentId = lastSeen }, OperationContext.Default);
        ShippedSegment six = Assert.Single(day2.Backups, b => b.SegmentId == 6);
        Assert.False(six.Partial);
        Assert.True(File.Exists(Path.Combine(data, "backups", "users", "wal", "day2", "000000006.seg")));
    }

    [Fact]
    public async Task Sealed_only_ships_no_partial()
    {
        string data = Fixture(v2: false);
        WalShipResult r = await WalOperations.ShipAsync(new InvokeWalShipOptions(data, "users", "wal") { SealedOnly = true }, OperationContext.Default);
        Assert.Equal([1L, 2, 3, 4, 5], r.Backups.Select(b => b.SegmentId));
        Assert.Empty(Directory.GetFiles(Path.Combine(data, "backups", "users", "wal"), "*.partial-*"));
    }
}
