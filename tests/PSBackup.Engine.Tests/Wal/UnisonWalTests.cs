using System.Buffers.Binary;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Tests.Support;
using PSBackup.Engine.Wal;

namespace PSBackup.Engine.Tests.Wal;

/// <summary>Real UnisonDB WALs (the shared fixtures and WALs the oracle's <c>gen</c> writes): found,
/// read record-exactly (log index and HLC per record, judged against the oracle's own replay),
/// validated byte by byte, shipped under their own names.</summary>
public sealed class UnisonWalTests : IDisposable
{
    private const long FixtureSegmentSize = 1 << 20;
    private readonly TestDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private string Fixture(string name)
    {
        UnisonOracle.CopyFixture(name, _dir.Path);
        return _dir.Combine("users", "wal");
    }

    private Task<WalDirectoryReport> List() =>
        WalOperations.GetSegmentsAsync(new GetWalSegmentOptions(_dir.Path, "users"), OperationContext.Default);

    private static string Seg(string wal, long id) => Path.Combine(wal, WalFormat.SegmentFileName(id, WalFormat.SegExtension));

    [Theory]
    [InlineData("v1-small", 1, false)]
    [InlineData("v2-small", 2, true)]
    public async Task Every_segments_log_indexes_and_record_times_are_the_ones_UnisonDBs_reader_sees(string fixture, int version, bool v2)
    {
        string wal = Fixture(fixture);
        // The oracle's replay -v prints every record with its position, lsn and hlc, as UnisonDB decodes it.
        UnisonOracle.ReplayResult oracle = UnisonOracle.Replay(wal, FixtureSegmentSize, v2: v2, raw: false, verbose: true);
        Assert.True(oracle.ExitCode == 0, oracle.ToString());

        WalDirectoryReport report = await List();
        Assert.Equal(".seg", report.Naming);
        Assert.False(report.HasGap, string.Join(" ", report.ContinuityErrors));
        Assert.Empty(report.OtherFiles); // the .seg.idx sidecars are recognised, not "other"
        Assert.Equal(6, report.Segments.Count);
        foreach (WalSegmentInfo s in report.Segments)
        {
            var records = oracle.Records.Where(r => r.SegmentId == s.SegmentId).ToList();
            Assert.True(s.Valid, s.Error);
            Assert.Equal(version, s.Version);
            Assert.Equal(WalPayloadFormat.LogRecord, s.PayloadFormat);
            Assert.Equal("standalone", s.Mode);
            Assert.Equal(WalCrcKind.Castagnoli, s.HeaderCrc);
            Assert.Equal(records.Count, s.EntryCount);
            Assert.Equal((long)records[0].Lsn, s.FirstLogIndex);
            Assert.Equal((long)records[^1].Lsn, s.LastLogIndex);
            Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds((long)records[0].Hlc), s.FirstRecordTime);
            Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds((long)records[^1].Hlc), s.LastRecordTime);
            Assert.Equal(records[^1].Offset, s.LastRecordOffset);
            Assert.Equal(s.SegmentId < 6, s.Sealed);
            Assert.Equal(version == 1 && s.Sealed ? s.FileName + ".idx" : null, s.Sidecar);
        }

        // Record by record, with offsets, as the oracle reads them.
        var ours = report.Segments.SelectMany(s => WalSegmentReader.ReadRecords(s.Path).Select(r => (Seg: (uint)s.SegmentId, r.Offset, Lsn: (ulong)r.LogIndex, Hlc: (ulong)r.Time!.Value.ToUnixTimeMilliseconds(), r.Data.Length))).ToList();
        Assert.Equal(oracle.Records.Select(r => (r.SegmentId, r.Offset, r.Lsn, r.Hlc, r.Length)), ours);
    }

    [Fact]
    public async Task A_failed_append_that_consumed_a_log_index_is_a_warning_with_the_exact_index_not_a_gap()
    {
        string wal = _dir.Combine("users", "wal");
        Directory.CreateDirectory(wal);
        UnisonOracle.OracleRun gen = UnisonOracle.Run(UnisonOracle.V1, "gen", "-dir", wal, "-seg-size", "262144", "-records", "120", "-sessions", "1", "-fail-at", "40", "-seed", "5");
        Assert.True(gen.ExitCode == 0, gen.ToString());
        UnisonOracle.ReplayResult oracle = UnisonOracle.Replay(wal, 262144, verbose: true);
        string discontinuity = Assert.Single(oracle.Discontinuities); // "LSN discontinuity at SegmentID=s, Offset=o: 42 after 40"
        UnisonOracle.RecordLine after = oracle.Records.Single(r => r.Lsn == 42);

        WalDirectoryReport report = await List();
        Assert.False(report.HasGap, string.Join(" ", report.ContinuityErrors));
        string warning = Assert.Single(report.Warnings);
        Assert.Contains("log index 41 was never written", warning);
        Assert.Contains($"segment {after.SegmentId} at offset {after.Offset}", warning);
        Assert.Contains($"SegmentID={after.SegmentId}, Offset={after.Offset}", discontinuity);
        WalLogIndexGap gap = Assert.Single(report.Segments.SelectMany(s => s.LogIndexGaps));
        Assert.Equal((after.SegmentId, after.Offset, 40L, 42L), ((uint)gap.SegmentId, gap.Offset, gap.After, gap.Next));
        Assert.Equal(121, report.Segments.Sum(s => s.EntryCount) + 1);

        // Shipping treats it as the warning it is: everything sealed is archived.
        WalShipResult shipped = await WalOperations.ShipAsync(new InvokeWalShipOptions(_dir.Path, "users", "archive") { SealedOnly = true }, OperationContext.Default);
        Assert.Equal(report.Segments.Count(s => s.Sealed), shipped.Backups.Count);
    }

    [Fact]
    public async Task Segments_are_shipped_locally_and_to_a_repository_under_their_own_names_and_a_second_ship_adds_nothing()
    {
        string wal = Fixture("v1-small");
        WalShipResult local = await WalOperations.ShipAsync(new InvokeWalShipOptions(_dir.Path, "users", "archive") { SealedOnly = true }, OperationContext.Default);
        Assert.Equal([1L, 2, 3, 4, 5], local.Backups.Select(b => b.SegmentId));
        Assert.All(local.Backups, b => Assert.Equal(WalFormat.SegmentFileName(b.SegmentId, ".seg"), Path.GetFileName(b.Path)));
        Assert.All(local.Backups, b => Assert.Equal(File.ReadAllBytes(Seg(wal, b.SegmentId)), File.ReadAllBytes(b.Path)));
        Assert.False(File.Exists(Path.Combine(_dir.Path, "backups", "users", "archive", "000000001.seg.idx"))); // derived: UnisonDB rebuilds it
        WalShipResult again = await WalOperations.ShipAsync(new InvokeWalShipOptions(_dir.Path, "users", "archive") { SealedOnly = true }, OperationContext.Default);
        Assert.All(again.Backups, b => Assert.True(b.AlreadyPresent));

        var repo = new RepositoryTarget { Location = _dir.Combine("repo") };
        await RepositoryOperations.InitializeAsync(new InitializeRepositoryOptions(repo) { Unencrypted = true }, OperationContext.Default);
        WalShipResult first = await WalOperations.ShipAsync(new InvokeWalShipOptions(_dir.Path, "users", null) { Repository = repo, SealedOnly = true }, OperationContext.Default);
        Assert.Equal([1L, 2, 3, 4, 5], first.Backups.Where(b => !b.AlreadyPresent).Select(b => b.SegmentId));
        WalShipResult second = await WalOperations.ShipAsync(new InvokeWalShipOptions(_dir.Path, "users", null) { Repository = repo, SealedOnly = true }, OperationContext.Default);
        Assert.All(second.Backups, b => Assert.True(b.AlreadyPresent));
        Assert.Equal(5, second.Backups.Count);

        await using OpenRepository open = await RepositoryConnector.OpenAsync(repo, CancellationToken.None);
        RepositoryManifest m = await open.Repository.ReadManifestAsync(first.Backups[1].BackupId!, CancellationToken.None);
        Assert.Equal("wal/000000002.seg", Assert.Single(m.Files).Path);
        Assert.Equal((108L, 325L, "LogRecord", 1), (m.Segment!.FirstLogIndex, m.Segment.LastLogIndex, m.Segment.PayloadFormat, m.Segment.Version));
    }

    [Fact]
    public async Task The_seed_naming_still_works_and_one_folder_never_mixes_two_namings()
    {
        string wal = WalTestData.CreateNamespace(_dir.Path, "users", (5, true), (3, false));
        WalDirectoryReport report = await List();
        Assert.Equal(".wal", report.Naming);
        Assert.Equal(WalPayloadFormat.Opaque, report.Segments[0].PayloadFormat);
        Assert.Null(report.Segments[0].FirstRecordTime);
        WalShipResult shipped = await WalOperations.ShipAsync(new InvokeWalShipOptions(_dir.Path, "users", "archive") { SealedOnly = true }, OperationContext.Default);
        Assert.Equal("000000001.wal", Path.GetFileName(Assert.Single(shipped.Backups).Path));

        File.Copy(Path.Combine(wal, "000000001.wal"), Path.Combine(wal, "000000003.seg"));
        var mixed = await Assert.ThrowsAsync<IntegrityException>(List);
        Assert.Equal("WalMixedNaming", mixed.ErrorId);
        Assert.Contains("000000003.seg", mixed.Message);
        var ship = await Assert.ThrowsAsync<IntegrityException>(() => WalOperations.ShipAsync(new InvokeWalShipOptions(_dir.Path, "users", "archive2") { SealedOnly = true }, OperationContext.Default));
        Assert.Equal("WalMixedNaming", ship.ErrorId);
        Assert.False(Directory.Exists(Path.Combine(_dir.Path, "backups", "users", "archive2")));
    }

    [Fact]
    public async Task A_WAL_folder_without_segments_or_a_namespace_without_one_is_an_error_and_other_files_are_reported()
    {
        string wal = Fixture("v1-small");
        File.WriteAllText(Path.Combine(wal, "notes.txt"), "x");
        File.WriteAllText(Path.Combine(wal, "1.seg"), "x");
        WalDirectoryReport report = await List();
        Assert.Equal(["1.seg", "notes.txt"], report.OtherFiles);
        Assert.Equal(6, report.Segments.Count);

        foreach (string f in Directory.GetFiles(wal, "0*"))
        {
            File.Move(f, f.Replace("000000", "seg-", StringComparison.Ordinal));
        }
        var none = await Assert.ThrowsAsync<IntegrityException>(List);
        Assert.Equal("WalNoSegments", none.ErrorId);
        Assert.Contains("%09d.seg", none.Message);
        var ship = await Assert.ThrowsAsync<IntegrityException>(() => WalOperations.ShipAsync(new InvokeWalShipOptions(_dir.Path, "users", "archive") { SealedOnly = true }, OperationContext.Default));
        Assert.Equal("WalNoSegments", ship.ErrorId);

        Directory.Delete(wal, recursive: true);
        var missing = await Assert.ThrowsAsync<NotFoundException>(List);
        Assert.Equal("WalDirectoryNotFound", missing.ErrorId);
        Assert.Contains(wal, missing.Message);
    }

    public static TheoryData<string, string, string> Damage => new()
    {
        // fixture, where, expected reason (the offset is checked separately)
        { "v1-small", "record-data", "CRC mismatch" },
        { "v1-small", "record-length", "Record" },
        { "v1-small", "header", "Header CRC" },
        { "v1-small", "sidecar", "Sidecar '000000002.seg.idx' entry" },
        { "v1-small", "zero-fill", "after the header's write offset" },
        { "v2-small", "record-data", "CRC mismatch" },
        { "v2-small", "header", "Header CRC" },
        { "v2-small", "footer-entry", "Footer index CRC mismatch" },
        { "v2-small", "footer-head", "Footer" },
    };

    [Theory]
    [MemberData(nameof(Damage))]
    public async Task A_flipped_byte_is_reported_with_segment_offset_and_reason_and_never_shipped(string fixture, string where, string reason)
    {
        string wal = Fixture(fixture);
        string seg = Seg(wal, 2);
        WalSegmentInfo intact = WalSegmentReader.Inspect(seg, "users");
        long recordAt = 5640; // the 2nd record of segment 2 (the shared README's replay -v example)
        (string file, long offset) = where switch
        {
            "record-data" => (seg, recordAt + 8 + 20),
            "record-length" => (seg, recordAt + 4),
            "header" => (seg, 33),
            "sidecar" => (seg + ".idx", 16 * 7 + 3),
            "zero-fill" => (seg, intact.ValidBytes + 5000),
            "footer-entry" => (seg, intact.ValidBytes + 32 + 8 * 3 + 1),
            "footer-head" => (seg, intact.ValidBytes + 9),
            _ => throw new ArgumentOutOfRangeException(nameof(where)),
        };
        WalTestData.FlipBit(file, offset, 3);

        WalDirectoryReport report = await List();
        WalSegmentInfo s = report.Segments.Single(x => x.SegmentId == 2);
        Assert.False(s.Valid);
        Assert.Contains(reason, s.Error);
        Assert.NotNull(s.ErrorOffset);
        Assert.Contains(s.ErrorOffset!.Value.ToString(System.Globalization.CultureInfo.InvariantCulture), s.Error);
        Assert.Contains(report.ContinuityErrors, e => e.Contains("Segment 2 (000000002.seg)", StringComparison.Ordinal));
        Assert.All(report.Segments.Where(x => x.SegmentId != 2), x => Assert.True(x.Valid, x.Error));

        var e = await Assert.ThrowsAsync<IntegrityException>(() => WalOperations.ShipAsync(new InvokeWalShipOptions(_dir.Path, "users", "archive") { SealedOnly = true }, OperationContext.Default));
        Assert.Equal("WalSegmentCorrupt", e.ErrorId);
        Assert.Contains("Segment 2", e.Message);
        Assert.False(Directory.Exists(Path.Combine(_dir.Path, "backups", "users", "archive")));
    }

    [Fact]
    public async Task A_header_written_with_the_IEEE_polynomial_before_May_2025_is_accepted_and_named()
    {
        string wal = Fixture("v1-small");
        string seg = Seg(wal, 3);
        byte[] header = WalTestData.Read(seg, 0, 56);
        WalTestData.WriteUInt32(seg, 56, Ieee(header));
        WalDirectoryReport report = await List();
        WalSegmentInfo s = report.Segments.Single(x => x.SegmentId == 3);
        Assert.True(s.Valid, s.Error);
        Assert.Equal(WalCrcKind.Ieee, s.HeaderCrc);
        Assert.Contains(s.Warnings, w => w.Contains("IEEE", StringComparison.Ordinal));
        Assert.Equal(WalCrcKind.Castagnoli, report.Segments.Single(x => x.SegmentId == 2).HeaderCrc);
    }

    [Fact]
    public void The_record_at_a_store_checkpoint_position_gives_its_log_index_and_HLC()
    {
        UnisonOracle.CopyFixture("v1-store-bolt", _dir.Path);
        string wal = _dir.Combine("users", "wal");
        // store-info's checkpoint of the fixture: RecordProcessed=420 Pos=2:222128 (LSN 420, HLC 1767226019000).
        UnisonOracle.StoreInfo info = UnisonOracle.StoreInfoOf(_dir.Combine("users", "unison.db"));
        WalRecordAt at = WalRecordLocator.ReadRecordAt(wal, info.CheckpointSegment, info.CheckpointOffset);
        UnisonOracle.ReplayResult oracle = UnisonOracle.Replay(wal, 262144, from: "2:64", verbose: true);
        UnisonOracle.RecordLine expected = oracle.Records.Single(r => r.SegmentId == info.CheckpointSegment && r.Offset == info.CheckpointOffset);
        Assert.Equal((long)expected.Lsn, at.LogIndex);
        Assert.Equal((long)info.RecordProcessed, at.LogIndex);
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds((long)expected.Hlc), at.Time);
        Assert.Equal(expected.Length, at.Length);
        Assert.Equal(oracle.Records.SkipWhile(r => r.Offset != info.CheckpointOffset).Skip(1).First().Offset, at.NextOffset);
        Assert.Equal(WalPayloadFormat.LogRecord, at.PayloadFormat);

        Assert.Equal("WalRecordNotFound", Assert.Throws<NotFoundException>(() => WalRecordLocator.ReadRecordAt(wal, 2, info.CheckpointOffset + 8)).ErrorId);
        Assert.Equal("WalRecordNotFound", Assert.Throws<NotFoundException>(() => WalRecordLocator.ReadRecordAt(wal, 3, 260000)).ErrorId);
        Assert.Equal("WalSegmentNotFound", Assert.Throws<NotFoundException>(() => WalRecordLocator.ReadRecordAt(wal, 9, 64)).ErrorId);
        Assert.Equal("InvalidWalPosition", Assert.Throws<InvalidInputException>(() => WalRecordLocator.ReadRecordAt(wal, 2, 13)).ErrorId);
        // An archived copy answers the same.
        Assert.Equal(420, WalRecordLocator.ReadRecordAtPath(Seg(wal, 2), 2, 222128).LogIndex);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void Segments_PSBackup_writes_are_replayed_by_UnisonDBs_own_reader(int version)
    {
        // Real LogRecord payloads (from the fixture), rewritten by our writer into new segments.
        string source = Fixture("v1-small");
        var records = Directory.GetFiles(source, "*.seg").Order().SelectMany(p => WalSegmentReader.ReadRecords(p)).Take(300).ToList();
        string wal = _dir.Combine("written", "wal");
        Directory.CreateDirectory(wal);
        long size = 512 << 10;
        int id = 1;
        WalSegmentWriter w = WalSegmentWriter.Create(Seg(wal, id), records[0].LogIndex, WalTestData.Created, size, version, WalFormat.MarkerStandalone);
        foreach (WalRecord r in records)
        {
            if (!w.HasRoomFor(r.Data.Length))
            {
                w.Seal(WalTestData.SealedAt);
                w.Dispose();
                w = WalSegmentWriter.Create(Seg(wal, ++id), r.LogIndex, WalTestData.Created, size, version, WalFormat.MarkerStandalone);
            }
            w.Append(r.Data, r.LogIndex);
        }
        w.Sync();
        w.Dispose();
        Assert.True(id >= 3);
        if (version == 1)
        {
            Assert.True(File.Exists(Seg(wal, 1) + ".idx"));
        }

        UnisonOracle.ReplayResult oracle = UnisonOracle.Replay(wal, size, v2: version == 2);
        Assert.True(oracle.ExitCode == 0, oracle.ToString());
        Assert.Equal((300L, (ulong)records[0].LogIndex, (ulong)records[^1].LogIndex), (oracle.Count, oracle.FirstLsn, oracle.LastLsn));
        Assert.Empty(oracle.Discontinuities);
        Assert.All(oracle.Segments, s => Assert.Equal(s.Id < id, s.Sealed));
        var check = WalDirectory.Scan(wal, "users");
        Assert.False(check.HasGap, string.Join(" ", check.ContinuityErrors));
        Assert.All(check.Segments, s => Assert.Equal(version, s.Version));
    }

    /// <summary>CRC-32/IEEE bit by bit (Go's crc32.ChecksumIEEE), independent of the engine's table.</summary>
    private static uint Ieee(byte[] data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++)
            {
                crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320 : crc >> 1;
            }
        }
        return ~crc;
    }
}
