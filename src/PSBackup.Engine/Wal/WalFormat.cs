using System.Buffers.Binary;
using System.Globalization;

namespace PSBackup.Engine.Wal;

/// <summary>Constants and names of the walfs v2 segment format (SPEC appendix A).</summary>
public static class WalFormat
{
    public const long DefaultSegmentSize = 16L << 20;

    /// <summary>Segments hold u32 offsets in their footer index, so 4 GiB is the largest size.</summary>
    public const long MaxSegmentSize = 4L << 30;

    public const int HeaderSize = 64;
    public const uint Magic = 0x5557414C; // "UWAL"
    public const uint Version = 2;
    public const uint FlagSealed = 2;
    public const uint FlagActive = 8;

    /// <summary>[u32 crc][u32 length] before each record's data.</summary>
    public const int RecordHeaderSize = 8;
    public const int TrailerSize = 8;
    public const int Alignment = 8;

    /// <summary>The trailer bytes DE AD BE EF FE ED FA CE read as a little-endian u64.</summary>
    public const ulong TrailerWord = 0xCEFAEDFEEFBEADDE;

    public const int FooterHeadSize = 32;
    public const int FooterEntrySize = 8;
    public const uint FooterMagic = 0x464C4157; // "WALF"
    /// <summary>Where a record length would be: larger than any segment, so a record scan stops.</summary>
    public const uint FooterLengthSentinel = 0xFFFFFFFF;
    public const ushort FooterVersion = 1;

    /// <summary>The footer's sparse index holds one entry per this many bytes of records.</summary>
    public const int SparseInterval = 64 << 10;

    /// <summary>"%09d.wal".</summary>
    public static string SegmentFileName(long segmentId)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(segmentId);
        return segmentId.ToString("D9", CultureInfo.InvariantCulture) + ".wal";
    }

    /// <summary>Parses "000000043.wal" to 43; false for anything else.</summary>
    public static bool TryParseSegmentFileName(string fileName, out long segmentId)
    {
        segmentId = 0;
        if (fileName is null || fileName.Length != 13 || !fileName.EndsWith(".wal", StringComparison.Ordinal))
        {
            return false;
        }
        for (int i = 0; i < 9; i++)
        {
            if (fileName[i] is < '0' or > '9')
            {
                return false;
            }
        }
        segmentId = long.Parse(fileName.AsSpan(0, 9), NumberStyles.None, CultureInfo.InvariantCulture);
        return true;
    }

    /// <summary>The next multiple of 8 at or above <paramref name="n"/>.</summary>
    public static long AlignUp(long n) => (n + Alignment - 1) & ~(long)(Alignment - 1);

    /// <summary>Bytes a record with <paramref name="dataLength"/> bytes of data occupies, padding included.</summary>
    public static long RecordSize(long dataLength) => AlignUp(RecordHeaderSize + dataLength + TrailerSize);

    /// <summary>The largest footer any record sequence in a segment of this size can need.</summary>
    public static long MaxFooterSize(long fileSize) =>
        FooterHeadSize + FooterEntrySize * ((fileSize - HeaderSize) / SparseInterval + 1);

    /// <summary>The offset every record must end at or before, so the footer always fits.</summary>
    public static long RecordLimit(long fileSize) => fileSize - MaxFooterSize(fileSize);

    /// <summary>The CRC stored in a record: CRC-32C over the 4 length bytes followed by the data.</summary>
    public static uint RecordCrc(ReadOnlySpan<byte> data)
    {
        Span<byte> len = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(len, (uint)data.Length);
        return Crc32C.Finish(Crc32C.Update(Crc32C.Update(Crc32C.InitialState, len), data));
    }

    internal static long ToUnixNanoseconds(DateTimeOffset time) =>
        (time.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100;

    /// <summary>A header timestamp; out-of-range values are clamped so corrupt bytes never throw.</summary>
    internal static DateTimeOffset FromUnixNanoseconds(long nanoseconds)
    {
        long ticks = nanoseconds / 100;
        long min = DateTimeOffset.MinValue.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks;
        long max = DateTimeOffset.MaxValue.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks;
        return DateTimeOffset.UnixEpoch.AddTicks(Math.Clamp(ticks, min, max));
    }
}

/// <summary>The 64-byte segment header, decoded.</summary>
internal readonly record struct WalHeader(
    uint Magic,
    uint Version,
    long CreatedAtNs,
    long LastModifiedAtNs,
    long WriteOffset,
    long EntryCount,
    uint Flags,
    long FirstLogIndex,
    uint CustomMarker,
    uint Crc)
{
    public bool IsSealed => (Flags & WalFormat.FlagSealed) != 0;

    public static WalHeader Decode(ReadOnlySpan<byte> b) => new(
        BinaryPrimitives.ReadUInt32LittleEndian(b),
        BinaryPrimitives.ReadUInt32LittleEndian(b[4..]),
        BinaryPrimitives.ReadInt64LittleEndian(b[8..]),
        BinaryPrimitives.ReadInt64LittleEndian(b[16..]),
        BinaryPrimitives.ReadInt64LittleEndian(b[24..]),
        BinaryPrimitives.ReadInt64LittleEndian(b[32..]),
        BinaryPrimitives.ReadUInt32LittleEndian(b[40..]),
        BinaryPrimitives.ReadInt64LittleEndian(b[44..]),
        BinaryPrimitives.ReadUInt32LittleEndian(b[52..]),
        BinaryPrimitives.ReadUInt32LittleEndian(b[56..]));

    /// <summary>Writes all 64 bytes with a freshly computed CRC (the stored <see cref="Crc"/> is ignored).</summary>
    public void Encode(Span<byte> b)
    {
        b[..WalFormat.HeaderSize].Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(b, Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(b[4..], Version);
        BinaryPrimitives.WriteInt64LittleEndian(b[8..], CreatedAtNs);
        BinaryPrimitives.WriteInt64LittleEndian(b[16..], LastModifiedAtNs);
        BinaryPrimitives.WriteInt64LittleEndian(b[24..], WriteOffset);
        BinaryPrimitives.WriteInt64LittleEndian(b[32..], EntryCount);
        BinaryPrimitives.WriteUInt32LittleEndian(b[40..], Flags);
        BinaryPrimitives.WriteInt64LittleEndian(b[44..], FirstLogIndex);
        BinaryPrimitives.WriteUInt32LittleEndian(b[52..], CustomMarker);
        BinaryPrimitives.WriteUInt32LittleEndian(b[56..], Crc32C.Compute(b[..56]));
    }
}
