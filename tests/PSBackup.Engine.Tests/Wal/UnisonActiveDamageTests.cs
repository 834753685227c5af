using System.Buffers.Binary;
using PSBackup.Engine.Events;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Tests.Support;
using PSBackup.Engine.Wal;

namespace PSBackup.Engine.Tests.Wal;

/// <summary>Damage in the active segment of a real UnisonDB WAL (v1-small's segment 6: 27 records,
/// 979..1005, written by walfs, whose header counts every complete record) is corruption, named
/// with segment, offset and reason, never a silently skipped segment or a "torn tail" that drops
/// the valid records after it; a real torn tail (an unfinished last append) still ships its prefix.</summary>
public sealed class UnisonActiveDamageTests : IDisposable
{
    private readonly TestDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private string Active => _dir.Combine("users", "wal", "000000006.seg");

    private List<UnisonOracle.RecordLine> ActiveRecords()
    {
        UnisonOracle.CopyFixture("v1-small", _dir.Path);
        UnisonOracle.ReplayResult all = UnisonOracle.Replay(_dir.Combine("users", "wal"), 1 << 20, verbose: true);
        Assert.True(all.ExitCode == 0, all.ToString());
        var records = all.Records.Where(r => r.SegmentId == 6).ToList();
        Assert.Equal(27, records.Count);
        return records;
    }

    private void Flip(long offset)
    {
        using var f = new FileStream(Active, FileMode.Open, FileAccess.ReadWrite);
        f.Position = offset;
        int b = f.ReadByte();
        f.Position = offset;
        f.WriteByte((byte)(b ^ 0x01));
    }

    private Task<WalShipResult> ShipLocal() =>
        WalOperations.ShipAsync(new InvokeWalShipOptions(_dir.Path, "users", "archive"), OperationContext.Default);

    private string Archive(string name) => _dir.Combine("backups", "users", "archive", name);

    private async Task<IReadOnlyList<HealthAlert>> Health() =>
        await BackupHealth.GetAlertsAsync(new BackupHealthOptions { DataDir = _dir.Path, Namespace = ["users"] }, OperationContext.Default);

    [Fact]
    public async Task A_damaged_header_is_WalSegmentCorrupt_after_the_sealed_segments_ship_and_health_is_critical()
    {
        ActiveRecords();
        Flip(10); // inside CreatedAt: the header CRC no longer matches
        WalSegmentInfo info = WalSegmentReader.Inspect(Active, "users");
        Assert.False(info.Valid);

        IntegrityException local = await Assert.ThrowsAsync<IntegrityException>(ShipLocal);
        Assert.Equal("WalSegmentCorrupt", local.ErrorId);
        Assert.Contains("active segment 6", local.Message, StringComparison.Ordinal);
        Assert.Contains("offset 56", local.Message, StringComparison.Ordinal);
        Assert.Contains("Header CRC mismatch", local.Message, StringComparison.Ordinal);
        Assert.All(Enumerable.Range(1, 5), id => Assert.True(File.Exists(Archive($"00000000{id}.seg"))));
        Assert.Empty(Directory.GetFiles(_dir.Combine("backups", "users", "archive"), "000000006*"));

        var repo = new RepositoryTarget { Location = _dir.Combine("repo") };
        await RepositoryOperations.InitializeAsync(new InitializeRepositoryOptions(repo) { Unencrypted = true }, OperationContext.Default);
        IntegrityException remote = await Assert.ThrowsAsync<IntegrityException>(() =>
            WalOperations.ShipAsync(new InvokeWalShipOptions(_dir.Path, "users", null) { Repository = repo }, OperationContext.Default));
        Assert.Equal("WalSegmentCorrupt", remote.ErrorId);

        IReadOnlyList<HealthAlert> alerts = await Health();
        HealthAlert alert = Assert.Single(alerts, a => a.Code == "WalSegmentCorrupt");
        Assert.Equal(HealthSeverity.Critical, alert.Severity);
        Assert.Contains("offset 56", alert.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_flipped_byte_mid_way_is_corruption_the_header_proves_not_a_torn_tail()
    {
        List<UnisonOracle.RecordLine> records = ActiveRecords();
        UnisonOracle.RecordLine damaged = records[9]; // LSN 988 of 979..1005
        Flip(damaged.Offset + 8 + damaged.Length / 2);

        WalSegmentInfo info = WalSegmentReader.Inspect(Active, "users");
        Assert.False(info.Valid);
        Assert.False(info.TornTail);
        Assert.Equal(damaged.Offset, info.ErrorOffset);
        Assert.Contains("counts 27 records and only 9 valid records precede", info.Error, StringComparison.Ordinal);

        IntegrityException e = await Assert.ThrowsAsync<IntegrityException>(ShipLocal);
        Assert.Equal("WalSegmentCorrupt", e.ErrorId);
        Assert.Contains($"damaged at offset {damaged.Offset}", e.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(_dir.Combine("backups", "users", "archive"), "000000006*"));
        Assert.Contains(await Health(), a => a.Code == "WalSegmentCorrupt" && a.Severity == HealthSeverity.Critical);
    }

    [Fact]
    public void With_a_stale_header_a_valid_record_after_the_damaged_one_still_proves_damage()
    {
        List<UnisonOracle.RecordLine> records = ActiveRecords();
        // A header last written after record 10 (a crash before the header caught up): it counts
        // 10 records and ends at the 11th. Then record 15 is damaged; record 16 is intact.
        byte[] header = new byte[64];
        using (var f = new FileStream(Active, FileMode.Open, FileAccess.ReadWrite))
        {
            f.ReadExactly(header);
            BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(24), (uint)records[10].Offset);
            BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(32), 10);
            BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(56), Crc32C.Compute(header.AsSpan(0, 56)));
            f.Position = 0;
            f.Write(header);
        }
        Assert.True(WalSegmentReader.Inspect(Active, "users").Valid); // a lagging header alone is fine
        Flip(records[14].Offset + 8 + records[14].Length / 2);

        WalSegmentInfo info = WalSegmentReader.Inspect(Active, "users");
        Assert.False(info.Valid);
        Assert.False(info.TornTail);
        Assert.Contains($"a valid record follows it at offset {records[15].Offset}", info.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_real_torn_tail_after_the_last_counted_record_still_ships_the_prefix()
    {
        List<UnisonOracle.RecordLine> records = ActiveRecords();
        // An append cut short after the 27 records the header counts: its frame header and part of
        // its data, no trailer.
        long end = records[^1].Offset + 8 + records[^1].Length + 8;
        end = (end + 7) & ~7L;
        using (var f = new FileStream(Active, FileMode.Open, FileAccess.ReadWrite))
        {
            byte[] torn = new byte[8 + 300];
            BinaryPrimitives.WriteUInt32LittleEndian(torn, 0xA5A5A5A5);
            BinaryPrimitives.WriteUInt32LittleEndian(torn.AsSpan(4), 1000);
            torn.AsSpan(8).Fill(0x5A);
            f.Position = end;
            f.Write(torn);
        }
        WalSegmentInfo info = WalSegmentReader.Inspect(Active, "users");
        Assert.True(info.Valid, info.Error);
        Assert.True(info.TornTail);
        Assert.Equal((27L, 1005L), (info.EntryCount, info.LastLogIndex));

        WalShipResult shipped = await ShipLocal();
        ShippedSegment partial = Assert.Single(shipped.Backups, b => b.Partial);
        Assert.Equal(1005, partial.LastLogIndex);
        Assert.DoesNotContain(await Health(), a => a.Code == "WalSegmentCorrupt");
    }
}
