using PSBackup.Engine.Tests.Support;
using PSBackup.Engine.Wal;
using static PSBackup.Engine.Tests.Wal.WalTestData;

namespace PSBackup.Engine.Tests.Wal;

/// <summary>Every kind of damage is reported with a reason and the byte offset, never thrown.</summary>
public sealed class WalCorruptionTests : IDisposable
{
    private readonly TestDirectory _dir = new();
    private readonly List<byte[]> _payloads = Payloads(10, 5);
    private readonly List<long> _offsets;
    private readonly long _end;

    public WalCorruptionTests()
    {
        _payloads[4] = [9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9]; // record 4 has data and padding
        _offsets = RecordOffsets(_payloads);
        _end = _offsets[^1];
    }

    public void Dispose() => _dir.Dispose();

    private string Sealed() => WriteSegment(_dir.Combine("000000003.wal"), 100, _payloads, seal: true);
    private string Active() => WriteSegment(_dir.Combine("000000003.wal"), 100, _payloads, seal: false);

    private static WalSegmentInfo AssertInvalid(string path, string reason, long offset)
    {
        WalSegmentInfo info = WalSegmentReader.Inspect(path, "ns");
        Assert.False(info.Valid);
        Assert.False(info.TornTail);
        Assert.NotNull(info.Error);
        Assert.Contains(reason, info.Error, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(offset, info.ErrorOffset);
        Assert.Contains(offset.ToString(), info.Error);
        return info;
    }

    [Fact]
    public void IntactSealedSegmentIsValid()
    {
        WalSegmentInfo info = WalSegmentReader.Inspect(Sealed(), "ns");
        Assert.True(info.Valid, info.Error);
        Assert.True(info.Sealed);
    }

    [Fact]
    public void HeaderCrcMismatch()
    {
        string path = Sealed();
        FlipBit(path, 9); // CreatedAt
        AssertInvalid(path, "header CRC", 56);
    }

    [Fact]
    public void HeaderCrcMismatchInAnActiveSegmentIsAlsoInvalid()
    {
        string path = Active();
        FlipBit(path, 45); // FirstLogIndex
        WalSegmentInfo info = AssertInvalid(path, "header CRC", 56);
        Assert.False(info.Sealed);
        Assert.Throws<IntegrityException>(() => WalSegmentReader.ReadRecords(path).ToList());
    }

    [Fact]
    public void BadMagic()
    {
        string path = Sealed();
        WriteUInt32(path, 0, 0x12345678);
        FixHeaderCrc(path);
        AssertInvalid(path, "magic", 0);
    }

    [Fact]
    public void UnsupportedVersion()
    {
        string path = Sealed();
        WriteUInt32(path, 4, 3);
        FixHeaderCrc(path);
        AssertInvalid(path, "version", 4);
    }

    [Theory]
    [InlineData(10u)] // Active | Sealed
    [InlineData(0u)]
    [InlineData(0x12u)]
    public void InvalidFlags(uint flags)
    {
        string path = Sealed();
        WriteUInt32(path, 40, flags);
        FixHeaderCrc(path);
        AssertInvalid(path, "flags", 40);
    }

    [Fact]
    public void RecordCrcMismatch()
    {
        string path = Sealed();
        FlipBit(path, _offsets[4] + 8 + 3, 5); // a data byte of record 4
        WalSegmentInfo info = AssertInvalid(path, "CRC mismatch", _offsets[4]);
        Assert.Contains("Record 4", info.Error);
        Assert.Equal(4, info.EntryCount);
        Assert.Equal(_offsets[4], info.ValidBytes);
        // The valid prefix is still readable.
        Assert.Equal(4, WalSegmentReader.ReadRecords(path).Count());
    }

    [Fact]
    public void RecordTrailerDamaged()
    {
        string path = Sealed();
        FlipBit(path, _offsets[4] + 8 + 11 + 2); // inside the trailer of record 4
        AssertInvalid(path, "trailer", _offsets[4]);
    }

    [Fact]
    public void NonZeroPadding()
    {
        string path = Sealed();
        FlipBit(path, _offsets[4] + 8 + 11 + 8); // 27 bytes, padded to 32
        AssertInvalid(path, "padding", _offsets[4]);
    }

    [Fact]
    public void LengthFieldPastTheWriteOffset()
    {
        string path = Sealed();
        WriteUInt32(path, _offsets[4] + 4, 0xFFFFFFF0); // never allocated: bounded by the write offset first
        AssertInvalid(path, "length", _offsets[4]);
    }

    [Fact]
    public void LengthFieldShiftedWithinTheSegment()
    {
        string path = Sealed();
        WriteUInt32(path, _offsets[4] + 4, 19);
        WalSegmentInfo info = WalSegmentReader.Inspect(path, "ns");
        Assert.False(info.Valid);
        Assert.Equal(_offsets[4], info.ErrorOffset);
    }

    [Fact]
    public void FileShorterThanTheHeader()
    {
        string path = Sealed();
        using (var fs = new FileStream(path, FileMode.Open)) { fs.SetLength(40); }
        WalSegmentInfo info = AssertInvalid(path, "truncated", 40);
        Assert.Equal(40, info.Bytes);
        Assert.Throws<IntegrityException>(() => WalSegmentReader.ReadRecords(path).ToList());
    }

    [Theory]
    [InlineData(-20)] // inside the records
    [InlineData(10)]  // inside the footer head
    [InlineData(36)]  // inside the footer index
    public void SealedFileCutBeforeItsFooterEnd(int cut)
    {
        string path = Sealed();
        long length = _end + cut;
        using (var fs = new FileStream(path, FileMode.Open)) { fs.SetLength(length); }
        AssertInvalid(path, "truncated", length);
    }

    [Fact]
    public void FooterMagicMissing()
    {
        string path = Sealed();
        WriteUInt32(path, _end, 0);
        AssertInvalid(path, "footer magic", _end);
    }

    [Fact]
    public void FooterHeadCrcMismatch()
    {
        string path = Sealed();
        FlipBit(path, _end + 26); // reserved bytes, covered only by the head CRC
        AssertInvalid(path, "footer head CRC", _end + 28);
    }

    [Fact]
    public void FooterCountDiffersFromHeader()
    {
        string path = Sealed();
        WriteUInt64(path, _end + 8, 11);
        WriteUInt32(path, _end + 28, Crc32C.Compute(Read(path, _end, 28)));
        AssertInvalid(path, "record count 11", _end + 8);
    }

    [Fact]
    public void HeaderAndFooterAgreeButTheRecordsDoNot()
    {
        string path = Sealed();
        WriteUInt64(path, 32, 9);
        FixHeaderCrc(path);
        WriteUInt64(path, _end + 8, 9);
        WriteUInt32(path, _end + 28, Crc32C.Compute(Read(path, _end, 28)));
        WalSegmentInfo info = AssertInvalid(path, "EntryCount (offset 32) is 9", 32);
        Assert.Contains("10", info.Error);
    }

    [Fact]
    public void FooterEntriesCrcMismatch()
    {
        string path = Sealed();
        FlipBit(path, _end + 32 + 5); // the first entry's offset
        AssertInvalid(path, "footer index CRC", _end + 20);
    }

    [Fact]
    public void FooterIndexEntryPointingAtTheWrongRecord()
    {
        List<byte[]> payloads = Payloads(140, 9, maxSize: 6000);
        string path = WriteSegment(_dir.Combine("000000001.wal"), 1, payloads, seal: true, size: 512 << 10);
        List<long> offsets = RecordOffsets(payloads);
        long end = offsets[^1];
        uint n = ReadUInt32(path, end + 16);
        Assert.True(n >= 2);
        uint ordinal = ReadUInt32(path, end + 32 + 8);
        // Entry 1 keeps its ordinal but points at the next record: a real record, the wrong one.
        WriteUInt32(path, end + 32 + 12, (uint)offsets[(int)ordinal + 1]);
        WriteUInt32(path, end + 20, Crc32C.Compute(Read(path, end + 32, (int)n * 8)));
        WriteUInt32(path, end + 28, Crc32C.Compute(Read(path, end, 28)));
        AssertInvalid(path, "footer index entry 1", end + 32 + 8);
    }

    [Fact]
    public void FooterFirstEntryMustBeTheFirstRecord()
    {
        string path = Sealed();
        WriteUInt32(path, _end + 32 + 4, 72);
        WriteUInt32(path, _end + 20, Crc32C.Compute(Read(path, _end + 32, 8)));
        WriteUInt32(path, _end + 28, Crc32C.Compute(Read(path, _end, 28)));
        AssertInvalid(path, "first entry", _end + 32);
    }

    [Fact]
    public void FooterEntryCountBeyondTheFileIsTruncationNotAnAllocation()
    {
        string path = Sealed();
        WriteUInt32(path, _end + 16, 0x7FFFFFFF);
        WriteUInt32(path, _end + 28, Crc32C.Compute(Read(path, _end, 28)));
        AssertInvalid(path, "truncated", SmallSegment);
    }

    [Fact]
    public void ActiveSegmentEndsCleanlyAtZeroFill()
    {
        WalSegmentInfo info = WalSegmentReader.Inspect(Active(), "ns");
        Assert.True(info.Valid);
        Assert.False(info.TornTail);
        Assert.Null(info.Error);
        Assert.Null(info.ErrorOffset);
        Assert.Equal(10, info.EntryCount);
        Assert.Equal(_end, info.ValidBytes);
    }

    [Fact]
    public void ActiveSegmentWithStaleHeaderIsScanned()
    {
        string path = WriteSegment(_dir.Combine("000000003.wal"), 100, _payloads, seal: false, sync: false);
        Assert.Equal(0UL, ReadUInt64(path, 32));
        WalSegmentInfo info = WalSegmentReader.Inspect(path, "ns");
        Assert.True(info.Valid);
        Assert.Equal(10, info.EntryCount);
        Assert.Equal(10, WalSegmentReader.ReadRecords(path).Count());
    }

    [Fact]
    public void ActiveSegmentWithATornLastRecord()
    {
        // The header was last written before the last append (walfs rewrites it after each record
        // is complete), so it does not count the torn record.
        string path = WriteSegment(_dir.Combine("000000003.wal"), 100, _payloads, seal: false, sync: false);
        FlipBit(path, _offsets[9] + 8 + _payloads[9].Length + 1); // last record's trailer
        WalSegmentInfo info = WalSegmentReader.Inspect(path, "ns");
        Assert.True(info.Valid);
        Assert.True(info.TornTail);
        Assert.Equal(_offsets[9], info.ErrorOffset);
        Assert.Contains(_offsets[9].ToString(), info.Error);
        Assert.Equal(9, info.EntryCount);
        Assert.Equal(_offsets[9], info.ValidBytes);
        Assert.Equal(9, WalSegmentReader.ReadRecords(path).Count());
    }

    [Fact]
    public void ActiveSegmentWhoseHeaderCountsTheDamagedLastRecordIsCorrupt()
    {
        // walfs counts a record in the header only once it is complete: a counted record that no
        // longer checks out was damaged after it was written, not torn while being written.
        string path = Active();
        FlipBit(path, _offsets[9] + 8 + _payloads[9].Length + 1);
        WalSegmentInfo info = AssertInvalid(path, "counts 10 records and only 9 valid records", _offsets[9]);
        Assert.Contains("trailer", info.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void ActiveSegmentWithBytesAfterAZeroHeaderIsTorn()
    {
        string path = Active();
        WriteBytes(path, _end + 40, [1, 2, 3]); // data landed, record header did not
        WalSegmentInfo info = WalSegmentReader.Inspect(path, "ns");
        Assert.True(info.Valid);
        Assert.True(info.TornTail);
        Assert.Equal(_end, info.ErrorOffset);
        Assert.Equal(10, info.EntryCount);
    }

    [Fact]
    public void ActiveSegmentWithAHugeLengthFieldIsTornNotAnAllocation()
    {
        string path = Active();
        WriteUInt32(path, _end, 0xABCDEF01);
        WriteUInt32(path, _end + 4, 0xFFFFFFFF);
        WalSegmentInfo info = WalSegmentReader.Inspect(path, "ns");
        Assert.True(info.TornTail);
        Assert.Contains("length", info.Error);
        Assert.Equal(_end, info.ErrorOffset);
        Assert.Equal(10, WalSegmentReader.ReadRecords(path).Count());
    }
}
