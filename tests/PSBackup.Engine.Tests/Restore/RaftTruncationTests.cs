using System.Buffers.Binary;
using System.Security.Cryptography;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Restore;
using PSBackup.Engine.Tests.Storage;
using PSBackup.Engine.Tests.Support;
using PSBackup.Engine.Wal;

namespace PSBackup.Engine.Tests.Restore;

/// <summary>UnisonDB in raft mode truncates its log: walfs <c>TruncateTo</c> unseals a sealed
/// segment, cuts its records, zeroes 1 KiB after the new end and deletes the later segments
/// (<c>pkg/walfs/segment.go:1338-1412</c>, <c>walog.go</c> Truncate); new entries then rewrite the
/// same id. Shipping archives the rewrite as a new generation instead of refusing it forever, and
/// a restore takes the generation that was live at the target. Run on a folder repository and on
/// the real S3 server (s3rver lists keys by walking folders, so generation refs must sort the same
/// both ways).</summary>
public abstract class RaftTruncationTests : IDisposable
{
    private const long Size = 64 << 10;
    private static readonly DateTimeOffset T0 = new(2026, 2, 1, 0, 0, 0, TimeSpan.Zero);
    protected TestDirectory Dir { get; } = new();
    protected string Data => Dir.Combine("data");
    private string Wal => Path.Combine(Data, "users", "wal");

    /// <summary>A location for a new repository (not initialised yet).</summary>
    protected abstract Task<RepositoryTarget> NewRepositoryAsync();

    public void Dispose()
    {
        Dir.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>A raft log entry as UnisonDB's BinaryCodecV1 encodes it (pkg/raftwalfs/codec.go):
    /// term | index | type 0 (command) | appendedAt ns | uvarint len | data | uvarint 0.</summary>
    private static byte[] Entry(long term, long index, DateTimeOffset appendedAt)
    {
        byte[] data = new byte[200];
        new Random((int)(index * 31 + term)).NextBytes(data);
        byte[] e = new byte[25 + 2 + data.Length + 1];
        BinaryPrimitives.WriteInt64LittleEndian(e, term);
        BinaryPrimitives.WriteInt64LittleEndian(e.AsSpan(8), index);
        e[16] = 0;
        BinaryPrimitives.WriteInt64LittleEndian(e.AsSpan(17), (appendedAt - DateTimeOffset.UnixEpoch).Ticks * 100);
        e[25] = (byte)(data.Length & 0x7F | 0x80);
        e[26] = (byte)(data.Length >> 7);
        data.CopyTo(e, 27);
        e[^1] = 0;
        return e;
    }

    protected static DateTimeOffset At(double seconds) => T0.AddSeconds(seconds);

    private string SegPath(long id) => Path.Combine(Wal, WalFormat.SegmentFileName(id, WalFormat.SegExtension));

    private void WriteSegment(long id, long firstIndex, long count, long term, double firstSecond, bool seal)
    {
        using WalSegmentWriter w = WalSegmentWriter.Create(SegPath(id), firstIndex, At(firstSecond), Size, 1, WalFormat.MarkerRaft);
        for (long i = 0; i < count; i++)
        {
            w.Append(Entry(term, firstIndex + i, At(firstSecond + i)), firstIndex + i);
        }
        if (seal)
        {
            w.Seal(At(firstSecond + count));
        }
        else
        {
            w.Sync();
        }
    }

    /// <summary>What walfs TruncateTo does to a segment (then WALog.Truncate deletes the later ones).</summary>
    private void TruncateTo(long id, long keepThroughIndex)
    {
        string path = SegPath(id);
        List<WalRecord> records = WalSegmentReader.ReadRecords(path).ToList();
        int keep = records.FindIndex(r => r.LogIndex == keepThroughIndex) + 1;
        long end = records[keep - 1].Offset + WalFormat.RecordSize(records[keep - 1].Data.Length);
        using (var f = new FileStream(path, FileMode.Open, FileAccess.ReadWrite))
        {
            byte[] header = new byte[64];
            f.ReadExactly(header);
            BinaryPrimitives.WriteUInt64LittleEndian(header.AsSpan(24), (ulong)end);
            BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(32), keep);
            BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(16), (At(199) - DateTimeOffset.UnixEpoch).Ticks * 100);
            BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(40), WalFormat.FlagActive);
            BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(56), Crc32C.Compute(header.AsSpan(0, 56)));
            f.Position = 0;
            f.Write(header);
            f.Position = end;
            f.Write(new byte[1024]); // zeroAheadFrom: only 1 KiB; older records stay beyond it
        }
        File.Delete(path + ".idx");
        foreach (string later in Directory.GetFiles(Wal, "*.seg").Where(p => WalFormat.TryParseSegmentFileName(Path.GetFileName(p), out long other) && other > id))
        {
            File.Delete(later);
            File.Delete(later + ".idx");
        }
    }

    /// <summary>walfs Write then SealSegment on the truncated segment: records at WriteOffset.</summary>
    private void AppendAndSeal(long id, long firstIndex, long count, long term, double firstSecond)
    {
        string path = SegPath(id);
        using var f = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        byte[] header = new byte[64];
        f.ReadExactly(header);
        long offset = (long)BinaryPrimitives.ReadUInt64LittleEndian(header.AsSpan(24));
        long entries = BinaryPrimitives.ReadInt64LittleEndian(header.AsSpan(32));
        for (long i = 0; i < count; i++)
        {
            byte[] data = Entry(term, firstIndex + i, At(firstSecond + i));
            byte[] record = new byte[WalFormat.RecordSize(data.Length)];
            BinaryPrimitives.WriteUInt32LittleEndian(record.AsSpan(4), (uint)data.Length);
            data.CopyTo(record, 8);
            BinaryPrimitives.WriteUInt32LittleEndian(record, WalFormat.RecordCrc(data));
            BinaryPrimitives.WriteUInt64LittleEndian(record.AsSpan(8 + data.Length), WalFormat.TrailerWord);
            f.Position = offset;
            f.Write(record);
            offset += record.Length;
            entries++;
        }
        BinaryPrimitives.WriteUInt64LittleEndian(header.AsSpan(24), (ulong)offset);
        BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(32), entries);
        BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(16), (At(firstSecond + count) - DateTimeOffset.UnixEpoch).Ticks * 100);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(40), WalFormat.FlagSealed);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(56), Crc32C.Compute(header.AsSpan(0, 56)));
        f.Position = 0;
        f.Write(header);
    }

    protected async Task<RepositoryTarget> Scenario()
    {
        // Term 1: segments 1 (1..50) and 2 (51..100) sealed, 3 (101..120) active; entry n at T0 + n s.
        Directory.CreateDirectory(Wal);
        WriteSegment(1, 1, 50, 1, 1, seal: true);
        WriteSegment(2, 51, 50, 1, 51, seal: true);
        WriteSegment(3, 101, 20, 1, 101, seal: false);
        RepositoryTarget repo = await NewRepositoryAsync();
        await RepositoryOperations.InitializeAsync(new InitializeRepositoryOptions(repo) { Unencrypted = true }, OperationContext.Default);
        await Ship(repo);
        byte[] before = File.ReadAllBytes(SegPath(2));

        // A new leader (term 2) at T0 + 200 s: the log is truncated to 80 and entries 81..95 rewrite
        // segment 2, which seals again; segment 3 is recreated with 96..100.
        TruncateTo(2, 80);
        AppendAndSeal(2, 81, 15, 2, 201);
        WriteSegment(3, 96, 5, 2, 216, seal: false);
        Assert.NotEqual(before, File.ReadAllBytes(SegPath(2)));
        await WriteSnapshot(repo);
        return repo;
    }

    protected async Task<(WalShipResult Repo, WalShipResult Local)> Ship(RepositoryTarget repo) =>
        (await WalOperations.ShipAsync(new InvokeWalShipOptions(Data, "users", null) { Repository = repo, SealedOnly = true }, OperationContext.Default),
         await WalOperations.ShipAsync(new InvokeWalShipOptions(Data, "users", "wal") { SealedOnly = true }, OperationContext.Default));

    private async Task WriteSnapshot(RepositoryTarget repo)
    {
        await using (OpenRepository open = await RepositoryConnector.OpenForWriteAsync(repo, RepositoryLockMode.Shared, "test", OperationContext.Default))
        {
            await using BackupWriter writer = open.Repository.BeginBackup(new BackupInfo
            {
                Kind = BackupKind.StoreSnapshot,
                Namespace = "users",
                CreatedAt = T0,
                Wal = new WalPosition([1], 0, 0),
            }, new ManualClock(T0));
            await using (var content = new MemoryStream([1]))
            {
                await writer.AddFileAsync("db/unison.db", content, ChunkingProfile.Default, CancellationToken.None);
            }
            await writer.CommitAsync("snapshot/users/20260201T000000Z", CancellationToken.None);
        }
        string file = Path.Combine(Data, "backups", "users", "snapshots", "empty");
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        await File.WriteAllBytesAsync(file, [1]);
        await ManifestIO.WriteAsync(file + ".manifest.json", new BackupManifest
        {
            Kind = "snapshot",
            CreatedAt = T0,
            CompletedAt = T0,
            Source = "test",
            Wal = new WalPosition([1], 0, 0),
            Files = [new ManifestFile("unison.db", 1, Convert.ToHexStringLower(SHA256.HashData([1])))],
        }, CancellationToken.None);
    }

    protected async Task<List<WalRecord>> RestoredRecords(DateTimeOffset? time, long? index, RepositoryTarget? repo)
    {
        PointInTimeRestoreResult r = await RestoreOperations.RestorePointInTimeAsync(new RestorePointInTimeOptions(Data, "users")
        {
            TargetTime = time,
            TargetLogIndex = index,
            TargetDataDir = Dir.Combine("restored-" + Guid.NewGuid().ToString("N")[..6]),
            Repository = repo,
        }, OperationContext.Default);
        WalDirectoryReport report = WalDirectory.Scan(Path.Combine(r.RestoredPath, "wal"), "users");
        Assert.False(report.HasGap, string.Join(" ", report.ContinuityErrors));
        return report.Segments.SelectMany(s => WalSegmentReader.ReadRecords(s.Path)).ToList();
    }

    protected static long TermOf(WalRecord r) => BinaryPrimitives.ReadInt64LittleEndian(r.Data);

    [Fact]
    public async Task A_rewritten_segment_is_archived_as_a_new_generation_and_shipping_goes_on()
    {
        RepositoryTarget repo = await Scenario();
        WalSegmentInfo rewritten = WalSegmentReader.Inspect(SegPath(2), "users");
        Assert.True(rewritten.Valid, rewritten.Error);
        Assert.Equal(("raft", WalPayloadFormat.Raft, 95L), (rewritten.Mode, rewritten.PayloadFormat, rewritten.LastLogIndex));
        Assert.Contains(rewritten.Warnings, w => w.Contains("raft log truncation", StringComparison.Ordinal)); // stale bytes past the 1 KiB

        (WalShipResult toRepo, WalShipResult local) = await Ship(repo);
        ShippedSegment g1 = toRepo.Backups.Single(b => b.SegmentId == 2);
        Assert.False(g1.AlreadyPresent);
        Assert.Equal("wal/users/000000002_g1", g1.Path);
        Assert.True(toRepo.Backups.Single(b => b.SegmentId == 1).AlreadyPresent);
        Assert.Equal("000000002.seg.g1", Path.GetFileName(local.Backups.Single(b => b.SegmentId == 2).Path));
        Assert.True(File.Exists(Path.Combine(Data, "backups", "users", "wal", "000000002.seg"))); // the older generation stays

        (WalShipResult again, WalShipResult againLocal) = await Ship(repo);
        Assert.All(again.Backups, b => Assert.True(b.AlreadyPresent));
        Assert.All(againLocal.Backups, b => Assert.True(b.AlreadyPresent));

        // Listing and checking the repository read both generations of segment 2 by their refs.
        IReadOnlyList<BackupRecord> segments = await BackupCatalog.ListAsync(new GetBackupOptions { Repository = repo, Namespace = "users", Kind = BackupKind.WalSegment }, OperationContext.Default);
        Assert.Equal(2, segments.Count(b => b.SegmentId == 2));
        RepositoryCheckResult check = await RepositoryCheckOperation.CheckAsync(new TestBackupRepositoryOptions(repo), OperationContext.Default);
        Assert.True(check.Passed, string.Join("; ", check.Errors.Select(i => i.Message)));
    }

    [Fact]
    public async Task An_active_segment_whose_id_was_archived_sealed_before_the_truncation_is_never_skipped_silently()
    {
        // Term 1: 1 (1..50), 2 (51..100) and 3 (101..150) sealed and archived; 4 (151..160) active.
        Directory.CreateDirectory(Wal);
        WriteSegment(1, 1, 50, 1, 1, seal: true);
        WriteSegment(2, 51, 50, 1, 51, seal: true);
        WriteSegment(3, 101, 50, 1, 101, seal: true);
        WriteSegment(4, 151, 10, 1, 151, seal: false);
        RepositoryTarget repo = await NewRepositoryAsync();
        await RepositoryOperations.InitializeAsync(new InitializeRepositoryOptions(repo) { Unencrypted = true }, OperationContext.Default);
        await Ship(repo);

        // Term 2 truncates to 80 (3 and 4 deleted), rewrites 2 (81..95, sealed) and creates 3 again, active (96..100).
        TruncateTo(2, 80);
        AppendAndSeal(2, 81, 15, 2, 201);
        WriteSegment(3, 96, 5, 2, 216, seal: false);

        ConflictException toRepo = await Assert.ThrowsAsync<ConflictException>(() =>
            WalOperations.ShipAsync(new InvokeWalShipOptions(Data, "users", null) { Repository = repo }, OperationContext.Default));
        Assert.Equal("WalActiveRewritten", toRepo.ErrorId);
        Assert.Contains("log indexes 96..100", toRepo.Message, StringComparison.Ordinal);
        Assert.Contains("log indexes 101..150", toRepo.Message, StringComparison.Ordinal);
        ConflictException local = await Assert.ThrowsAsync<ConflictException>(() =>
            WalOperations.ShipAsync(new InvokeWalShipOptions(Data, "users", "wal"), OperationContext.Default));
        Assert.Equal("WalActiveRewritten", local.ErrorId);
        // The rewritten sealed segment 2 was shipped before the active one was refused.
        Assert.True(File.Exists(Path.Combine(Data, "backups", "users", "wal", "000000002.seg.g1")));

        // Sealed again, segment 3 ships as generation 1 and the newest history restores to 100.
        File.Delete(SegPath(3));
        WriteSegment(3, 96, 5, 2, 216, seal: true);
        (WalShipResult shipped, WalShipResult shippedLocal) = await Ship(repo);
        Assert.Equal("wal/users/000000003_g1", shipped.Backups.Single(b => b.SegmentId == 3).Path);
        Assert.Equal("000000003.seg.g1", Path.GetFileName(shippedLocal.Backups.Single(b => b.SegmentId == 3).Path));
        await WriteSnapshot(repo);
        List<WalRecord> newest = await RestoredRecords(null, 100, repo);
        Assert.Equal(100L, newest[^1].LogIndex);
        Assert.Equal(2L, TermOf(newest[^1]));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_restore_takes_the_generation_that_was_live_at_the_target(bool fromRepository)
    {
        RepositoryTarget repo = await Scenario();
        await Ship(repo);
        RepositoryTarget? source = fromRepository ? repo : null;

        // Before the truncation (T0 + 150 s) the log held term-1 entries 1..100 (81..100 later truncated).
        List<WalRecord> before = await RestoredRecords(At(150), null, source);
        Assert.Equal(Enumerable.Range(1, 100).Select(i => (long)i), before.Select(r => r.LogIndex));
        Assert.All(before, r => Assert.Equal(1, TermOf(r)));

        // After it (T0 + 205 s): 1..80 of term 1, then the new leader's 81..85.
        List<WalRecord> after = await RestoredRecords(At(205), null, source);
        Assert.Equal(Enumerable.Range(1, 85).Select(i => (long)i), after.Select(r => r.LogIndex));
        Assert.All(after, r => Assert.Equal(r.LogIndex <= 80 ? 1 : 2, TermOf(r)));

        // By log index: the current history.
        List<WalRecord> byIndex = await RestoredRecords(null, 90, source);
        Assert.Equal(90, byIndex[^1].LogIndex);
        Assert.Equal(2, TermOf(byIndex[^1]));
    }
}

public sealed class FolderRaftTruncationTests : RaftTruncationTests
{
    protected override Task<RepositoryTarget> NewRepositoryAsync() => Task.FromResult(new RepositoryTarget { Location = Dir.Combine("repo") });

    /// <summary>Repositories written before generation refs were named <c>_g&lt;n&gt;</c> hold
    /// <c>.g&lt;n&gt;</c>: still read as that generation (shipping finds it present, the next
    /// generation is numbered after it, a restore takes it).</summary>
    [Fact]
    public async Task A_generation_ref_with_the_old_name_is_still_read()
    {
        RepositoryTarget repo = await Scenario();
        (WalShipResult shipped, _) = await Ship(repo);
        Assert.Equal("wal/users/000000002_g1", shipped.Backups.Single(b => b.SegmentId == 2).Path);
        string refs = Path.Combine(repo.Location, "refs", "wal", "users");
        Directory.Move(Path.Combine(refs, "000000002_g1"), Path.Combine(refs, "000000002.g1"));

        (WalShipResult again, _) = await Ship(repo);
        Assert.All(again.Backups, b => Assert.True(b.AlreadyPresent));
        Assert.False(Directory.Exists(Path.Combine(refs, "000000002_g1")), "the old-named generation was shipped again");
        IReadOnlyList<BackupRecord> segments = await BackupCatalog.ListAsync(new GetBackupOptions { Repository = repo, Namespace = "users", Kind = BackupKind.WalSegment }, OperationContext.Default);
        Assert.Equal(2, segments.Count(b => b.SegmentId == 2));

        List<WalRecord> after = await RestoredRecords(At(205), null, repo);
        Assert.Equal(Enumerable.Range(1, 85).Select(i => (long)i), after.Select(r => r.LogIndex));
        Assert.All(after, r => Assert.Equal(r.LogIndex <= 80 ? 1 : 2, TermOf(r)));
    }
}

[Collection(S3ServerCollection.Name)]
public sealed class S3RaftTruncationTests(S3ServerFixture s3) : RaftTruncationTests
{
    protected override async Task<RepositoryTarget> NewRepositoryAsync() => new()
    {
        Location = $"s3://{await s3.CreateBucketAsync("raft")}/repo",
        Endpoint = s3.Endpoint,
        AccessKey = S3ServerFixture.AccessKey,
        SecretKey = S3ServerFixture.SecretKey,
    };
}
