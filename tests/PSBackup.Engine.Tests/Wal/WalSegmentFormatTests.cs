using System.Buffers.Binary;
using PSBackup.Engine.Tests.Support;
using PSBackup.Engine.Wal;
using static PSBackup.Engine.Tests.Wal.WalTestData;

namespace PSBackup.Engine.Tests.Wal;

public sealed class WalSegmentFormatTests : IDisposable
{
    private readonly TestDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData(0, "000000000.wal")]
    [InlineData(43, "000000043.wal")]
    [InlineData(999999999, "999999999.wal")]
    public void SegmentFileNameIsNineDigits(long id, string name)
    {
        Assert.Equal(name, WalFormat.SegmentFileName(id));
        Assert.True(WalFormat.TryParseSegmentFileName(name, out long parsed));
        Assert.Equal(id, parsed);
    }

    [Theory]
    [InlineData("43.wal")]
    [InlineData("0000000043.wal")]
    [InlineData("000000043.wal.tmp")]
    [InlineData("000000043.WAL")]
    [InlineData("00000004a.wal")]
    [InlineData("-00000043.wal")]
    [InlineData("")]
    public void OtherNamesAreNotSegments(string name)
    {
        Assert.False(WalFormat.TryParseSegmentFileName(name, out _));
    }

    [Theory]
    [InlineData(true, 1)]
    [InlineData(false, 2)]
    [InlineData(true, 3)]
    [InlineData(false, 4)]
    public void RoundTripReturnsEveryPayloadWithItsLogIndex(bool seal, int seed)
    {
        List<byte[]> payloads = Payloads(60, seed);
        payloads[0] = [];
        string path = WriteSegment(_dir.Combine(WalFormat.SegmentFileName(7)), 1000, payloads, seal);

        List<WalRecord> records = WalSegmentReader.ReadRecords(path).ToList();
        Assert.Equal(payloads.Count, records.Count);
        List<long> offsets = RecordOffsets(payloads);
        for (int i = 0; i < payloads.Count; i++)
        {
            Assert.Equal(1000 + i, records[i].LogIndex);
            Assert.Equal(offsets[i], records[i].Offset);
            Assert.Equal(payloads[i], records[i].Data);
        }

        WalSegmentInfo info = WalSegmentReader.Inspect(path, "ns");
        Assert.True(info.Valid, info.Error);
        Assert.Null(info.Error);
        Assert.False(info.TornTail);
        Assert.Equal(seal, info.Sealed);
        Assert.Equal(7, info.SegmentId);
        Assert.Equal(1000, info.FirstLogIndex);
        Assert.Equal(60, info.EntryCount);
        Assert.Equal(1059, info.LastLogIndex);
        Assert.Equal(SmallSegment, info.Bytes);
        Assert.Equal(offsets[^1], info.ValidBytes);
        Assert.Equal(Created, info.CreatedAt);
        Assert.Equal(seal ? SealedAt : null, info.LastModifiedAt);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void FullSegmentWithRecordsAcrossReadBufferBoundaries(bool seal)
    {
        // 1 MiB of ~1000-byte records: many records straddle the reader's 256 KiB window.
        string path = _dir.Combine("000000001.wal");
        var payloads = new List<byte[]>();
        var random = new Random(11);
        using (WalSegmentWriter writer = WalSegmentWriter.Create(path, 1, Created, 1 << 20))
        {
            while (true)
            {
                byte[] p = new byte[random.Next(900, 1100)];
                random.NextBytes(p);
                if (!writer.HasRoomFor(p.Length))
                {
                    break;
                }
                writer.Append(p);
                payloads.Add(p);
            }
            if (seal)
            {
                writer.Seal(SealedAt);
            }
        }
        WalSegmentInfo info = WalSegmentReader.Inspect(path, "ns");
        Assert.True(info.Valid, info.Error);
        Assert.False(info.TornTail);
        Assert.Equal(payloads.Count, info.EntryCount);
        List<WalRecord> records = WalSegmentReader.ReadRecords(path).ToList();
        Assert.Equal(payloads.Count, records.Count);
        Assert.True(payloads.Zip(records).All(x => x.First.AsSpan().SequenceEqual(x.Second.Data)));
    }

    [Fact]
    public void EmptySegmentsAreValidSealedOrNot()
    {
        string active = WriteSegment(_dir.Combine("000000001.wal"), 5, [], seal: false);
        string sealedPath = WriteSegment(_dir.Combine("000000002.wal"), 5, [], seal: true);
        foreach (string p in new[] { active, sealedPath })
        {
            WalSegmentInfo info = WalSegmentReader.Inspect(p, "ns");
            Assert.True(info.Valid, info.Error);
            Assert.Equal(0, info.EntryCount);
            Assert.Null(info.LastLogIndex);
            Assert.Equal(64, info.ValidBytes);
            Assert.Empty(WalSegmentReader.ReadRecords(p));
        }
        // An empty sealed segment's footer: count 0, no index entries.
        Assert.Equal(0UL, ReadUInt64(sealedPath, 64 + 8));
        Assert.Equal(0u, ReadUInt32(sealedPath, 64 + 16));
    }

    [Fact]
    public void RecordAndHeaderBytesAreExactlyAppendixA()
    {
        byte[] payload = [1, 2, 3, 4, 5];
        string path = WriteSegment(_dir.Combine("000000001.wal"), 42, [payload], seal: false);
        byte[] file = File.ReadAllBytes(path);
        Assert.Equal(SmallSegment, file.Length);

        // Header.
        Assert.Equal(0x5557414Cu, BinaryPrimitives.ReadUInt32LittleEndian(file));
        Assert.Equal(2u, BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(4)));
        Assert.Equal((Created - DateTimeOffset.UnixEpoch).Ticks * 100, BinaryPrimitives.ReadInt64LittleEndian(file.AsSpan(8)));
        Assert.Equal(0L, BinaryPrimitives.ReadInt64LittleEndian(file.AsSpan(16)));
        Assert.Equal(64L + 24, BinaryPrimitives.ReadInt64LittleEndian(file.AsSpan(24))); // 8 + 5 + 8 = 21 -> 24
        Assert.Equal(1L, BinaryPrimitives.ReadInt64LittleEndian(file.AsSpan(32)));
        Assert.Equal(8u, BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(40))); // Active
        Assert.Equal(42L, BinaryPrimitives.ReadInt64LittleEndian(file.AsSpan(44)));
        Assert.Equal(Crc32C.Compute(file.AsSpan(0, 56)), BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(56)));

        // Record at 64: [crc][len][data][trailer][pad to 8].
        byte[] expected =
        [
            0, 0, 0, 0, 5, 0, 0, 0, 1, 2, 3, 4, 5, 0xDE, 0xAD, 0xBE, 0xEF, 0xFE, 0xED, 0xFA, 0xCE, 0, 0, 0,
        ];
        BinaryPrimitives.WriteUInt32LittleEndian(expected, Crc32C.Compute(expected.AsSpan(4, 4 + 5)));
        Assert.Equal(expected, file.AsSpan(64, 24).ToArray());
        Assert.Equal(-1, file.AsSpan(88).IndexOfAnyExcept((byte)0)); // zero fill after
    }

    [Fact]
    public void SealWritesFooterAtWriteOffsetThenFlipsFlags()
    {
        List<byte[]> payloads = Payloads(10, 5);
        string path = WriteSegment(_dir.Combine("000000001.wal"), 1, payloads, seal: true);
        long end = RecordOffsets(payloads)[^1];
        byte[] file = File.ReadAllBytes(path);

        Assert.Equal(end, BinaryPrimitives.ReadInt64LittleEndian(file.AsSpan(24))); // WriteOffset = end of records
        Assert.Equal(10L, BinaryPrimitives.ReadInt64LittleEndian(file.AsSpan(32)));
        Assert.Equal(2u, BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(40))); // Sealed, Active cleared
        Assert.Equal((SealedAt - DateTimeOffset.UnixEpoch).Ticks * 100, BinaryPrimitives.ReadInt64LittleEndian(file.AsSpan(16)));
        Assert.Equal(Crc32C.Compute(file.AsSpan(0, 56)), BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(56)));

        Span<byte> head = file.AsSpan((int)end, 32);
        Assert.Equal(0x464C4157u, BinaryPrimitives.ReadUInt32LittleEndian(head));
        Assert.Equal(0xFFFFFFFFu, BinaryPrimitives.ReadUInt32LittleEndian(head[4..]));
        Assert.Equal(10UL, BinaryPrimitives.ReadUInt64LittleEndian(head[8..]));
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(head[16..]));
        Span<byte> entries = file.AsSpan((int)end + 32, 8);
        Assert.Equal(Crc32C.Compute(entries), BinaryPrimitives.ReadUInt32LittleEndian(head[20..]));
        Assert.Equal((ushort)1, BinaryPrimitives.ReadUInt16LittleEndian(head[24..]));
        Assert.Equal((ushort)0, BinaryPrimitives.ReadUInt16LittleEndian(head[26..]));
        Assert.Equal(Crc32C.Compute(head[..28]), BinaryPrimitives.ReadUInt32LittleEndian(head[28..]));
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(entries)); // {0, 64}
        Assert.Equal(64u, BinaryPrimitives.ReadUInt32LittleEndian(entries[4..]));
        Assert.Equal(-1, file.AsSpan((int)end + 40).IndexOfAnyExcept((byte)0));
    }

    [Fact]
    public void SparseIndexSamplesOneRecordPer4KiB()
    {
        // 512 KiB segment, ~3 KiB records: several index entries.
        List<byte[]> payloads = Payloads(140, 9, maxSize: 6000);
        string path = WriteSegment(_dir.Combine("000000001.wal"), 1, payloads, seal: true, size: 512 << 10);
        List<long> offsets = RecordOffsets(payloads);

        // Independent model (the walfs v2 line, README "one per >= 4096 bytes of records"):
        // sample a record when it starts >= 4 KiB past the last sample.
        var expected = new List<(uint, uint)>();
        long last = -(4 << 10);
        for (int i = 0; i < payloads.Count; i++)
        {
            if (offsets[i] - last >= 4 << 10)
            {
                expected.Add(((uint)i, (uint)offsets[i]));
                last = offsets[i];
            }
        }
        Assert.True(expected.Count >= 4);

        long end = offsets[^1];
        Assert.Equal((uint)expected.Count, ReadUInt32(path, end + 16));
        byte[] entries = Read(path, end + 32, expected.Count * 8);
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i].Item1, BinaryPrimitives.ReadUInt32LittleEndian(entries.AsSpan(i * 8)));
            Assert.Equal(expected[i].Item2, BinaryPrimitives.ReadUInt32LittleEndian(entries.AsSpan(i * 8 + 4)));
        }
        WalSegmentInfo info = WalSegmentReader.Inspect(path, "ns");
        Assert.True(info.Valid, info.Error);
        Assert.Equal(140, info.EntryCount);
    }

    [Fact]
    public void WriterKeepsRoomForTheFooterAndRefusesWhatDoesNotFit()
    {
        using WalSegmentWriter writer = WalSegmentWriter.Create(_dir.Combine("000000001.wal"), 1, Created, SmallSegment);
        long limit = SmallSegment - (32 + 8 * ((SmallSegment - 64) / 4096 + 1)); // shared/unisondb/README.md v2 footer
        Assert.True(writer.HasRoomFor((int)(limit - 64 - 16)));
        Assert.False(writer.HasRoomFor((int)(limit - 64 - 16) + 1));
        Assert.Throws<InvalidOperationException>(() => writer.Append(new byte[limit - 64 - 16 + 1]));

        Assert.Equal(1, writer.Append(new byte[limit - 64 - 16]));
        Assert.Equal(limit, writer.WriteOffset);
        Assert.False(writer.HasRoomFor(0));
        writer.Seal(SealedAt);
        Assert.Throws<InvalidOperationException>(() => writer.Append([]));
        Assert.True(WalSegmentReader.Inspect(_dir.Combine("000000001.wal"), "ns").Valid);
    }

    [Fact]
    public void AppendReturnsConsecutiveLogIndexesAndSyncPublishesTheHeader()
    {
        string path = _dir.Combine("000000001.wal");
        using WalSegmentWriter writer = WalSegmentWriter.Create(path, 500, Created, SmallSegment);
        Assert.Equal(500, writer.Append([1]));
        Assert.Equal(501, writer.Append([]));
        Assert.Equal(502, writer.NextLogIndex);
        Assert.Equal(0L, (long)ReadUInt64(path, 32)); // not yet synced
        writer.Sync();
        Assert.Equal(2L, (long)ReadUInt64(path, 32));
        Assert.Equal((ulong)writer.WriteOffset, ReadUInt64(path, 24));
    }

    [Fact]
    public void CreateRefusesAnExistingFile()
    {
        string path = _dir.Combine("000000001.wal");
        File.WriteAllText(path, "keep");
        Assert.Throws<IOException>(() => WalSegmentWriter.Create(path, 1, Created, SmallSegment));
        Assert.Equal("keep", File.ReadAllText(path));
    }

    [Fact]
    public void InspectOfAMissingFileIsNotFound()
    {
        Assert.Throws<NotFoundException>(() => WalSegmentReader.Inspect(_dir.Combine("000000009.wal"), "ns"));
        Assert.Throws<NotFoundException>(() => WalSegmentReader.ReadRecords(_dir.Combine("000000009.wal")).ToList());
    }
}
