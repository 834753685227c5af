using System.Buffers.Binary;
using System.Globalization;

namespace PSBackup.Engine.Wal;

/// <summary>Constants and names of the walfs segment formats, version 1 (UnisonDB's released
/// walfs: no footer, optional <c>.seg.idx</c> sidecar) and version 2 (the newer line's <c>WALF</c>
/// footer), SPEC appendix A and <c>shared/unisondb/README.md</c>.</summary>
public static class WalFormat
{
    public const long DefaultSegmentSize = 16L << 20;

    /// <summary>Segments hold u32 offsets in their footer index, so 4 GiB is the largest size.</summary>
    public const long MaxSegmentSize = 4L << 30;

    public const int HeaderSize = 64;
    public const uint Magic = 0x5557414C; // "UWAL"
    /// <summary>UnisonDB's released walfs (pkg/walfs/segment.go segmentHeaderVersion = 1).</summary>
    public const uint Version1 = 1;
    /// <summary>The newer walfs line with the footer.</summary>
    public const uint Version2 = 2;
    public const uint FlagSealed = 2;
    public const uint FlagActive = 8;

    /// <summary>Header custom marker UnisonDB writes (dbkernel/internal/wal/wal.go): standalone mode.</summary>
    public const uint MarkerStandalone = 1;
    /// <summary>Header custom marker UnisonDB writes in raft mode.</summary>
    public const uint MarkerRaft = 2;

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

    /// <summary>The v2 footer's sparse index holds one entry per this many bytes of records (the
    /// walfs v2 line samples every 4 KiB; readers accept any spacing).</summary>
    public const int SparseInterval = 4 << 10;

    /// <summary>One v1 sidecar entry: <c>{u64 offset, u32 length, u32 0}</c>.</summary>
    public const int SidecarEntrySize = 16;

    /// <summary>UnisonDB's segment extension (<c>%09d.seg</c>).</summary>
    public const string SegExtension = ".seg";
    /// <summary>The seed runbooks' archive naming (<c>%09d.wal</c>).</summary>
    public const string WalExtension = ".wal";
    /// <summary>Appended to a segment's name for its v1 sparse-index sidecar (<c>%09d.seg.idx</c>).</summary>
    public const string SidecarSuffix = ".idx";

    /// <summary>"%09d.wal" (the seed's naming; see <see cref="SegmentFileName(long, string)"/>).</summary>
    public static string SegmentFileName(long segmentId) => SegmentFileName(segmentId, WalExtension);

    /// <summary>"%09d" + <paramref name="extension"/> (".seg" or ".wal").</summary>
    public static string SegmentFileName(long segmentId, string extension)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(segmentId);
        if (extension is not (SegExtension or WalExtension))
        {
            throw new ArgumentException($"A segment extension is {SegExtension} or {WalExtension}, not '{extension}'.", nameof(extension));
        }
        return segmentId.ToString("D9", CultureInfo.InvariantCulture) + extension;
    }

    /// <summary>Parses "000000043.seg" or "000000043.wal" to 43; false for anything else.</summary>
    public static bool TryParseSegmentFileName(string fileName, out long segmentId) =>
        TryParseSegmentFileName(fileName, out segmentId, out _);

    /// <summary>As <see cref="TryParseSegmentFileName(string, out long)"/>, also giving the extension.</summary>
    public static bool TryParseSegmentFileName(string fileName, out long segmentId, out string extension)
    {
        segmentId = 0;
        extension = "";
        if (fileName is null || fileName.Length != 13)
        {
            return false;
        }
        string ext = fileName.EndsWith(SegExtension, StringComparison.Ordinal) ? SegExtension
            : fileName.EndsWith(WalExtension, StringComparison.Ordinal) ? WalExtension : "";
        if (ext.Length == 0)
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
        extension = ext;
        return true;
    }

    /// <summary>A local archive's name for generation <paramref name="generation"/> ≥ 1 of a segment
    /// that raft log truncation rewrote: "000000043.seg.g2".</summary>
    public static string GenerationFileName(string segmentFileName, int generation) =>
        generation == 0 ? segmentFileName : $"{segmentFileName}.g{generation.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>Parses "000000043.seg" (generation 0) or "000000043.seg.g2" (generation 2).</summary>
    public static bool TryParseArchivedFileName(string fileName, out long segmentId, out string segmentFileName, out int generation)
    {
        generation = 0;
        segmentFileName = fileName;
        if (TryParseSegmentFileName(fileName, out segmentId))
        {
            return true;
        }
        if (fileName is null || fileName.Length < 16 || fileName[13] != '.' || fileName[14] != 'g' || fileName[15] == '0' ||
            !int.TryParse(fileName.AsSpan(15), NumberStyles.None, CultureInfo.InvariantCulture, out generation) ||
            !TryParseSegmentFileName(fileName[..13], out segmentId))
        {
            generation = 0;
            return false;
        }
        segmentFileName = fileName[..13];
        return true;
    }

    /// <summary>Between a segment's name and the observation time in a local partial's name.</summary>
    public const string PartialMarker = ".partial-";

    /// <summary>The observation time in partial names: UTC, milliseconds, no characters Windows refuses.</summary>
    public const string PartialTimeFormat = "yyyyMMdd'T'HHmmssfff'Z'";

    /// <summary>A local archive's name for a partial (the valid prefix of the then-active segment
    /// <paramref name="segmentFileName"/>, observed at <paramref name="observedAt"/>):
    /// "000000043.seg.partial-20260102T030405123Z". It never parses as a segment name, so nothing
    /// that reads a folder of archived segments mistakes it for a sealed one.</summary>
    public static string PartialFileName(string segmentFileName, DateTimeOffset observedAt) =>
        segmentFileName + PartialMarker + FormatPartialTime(observedAt);

    /// <summary>The observation time as partial names carry it (UTC, millisecond precision).</summary>
    public static string FormatPartialTime(DateTimeOffset observedAt) =>
        observedAt.UtcDateTime.ToString(PartialTimeFormat, CultureInfo.InvariantCulture);

    /// <summary>Parses "000000043.seg.partial-20260102T030405123Z" to the segment's id, its name and
    /// the observation time; false for anything else.</summary>
    public static bool TryParsePartialFileName(string fileName, out long segmentId, out string segmentFileName, out DateTimeOffset observedAt)
    {
        segmentId = 0;
        segmentFileName = "";
        observedAt = default;
        if (fileName is null || fileName.Length != 13 + PartialMarker.Length + 19 ||
            !fileName.AsSpan(13).StartsWith(PartialMarker, StringComparison.Ordinal) ||
            !TryParseSegmentFileName(fileName[..13], out segmentId) ||
            !TryParsePartialTime(fileName[(13 + PartialMarker.Length)..], out observedAt))
        {
            segmentId = 0;
            return false;
        }
        segmentFileName = fileName[..13];
        return true;
    }

    /// <summary>Parses the "20260102T030405123Z" of a partial's name.</summary>
    public static bool TryParsePartialTime(string text, out DateTimeOffset observedAt)
    {
        observedAt = default;
        if (text is null || text.Length != 19 ||
            !DateTime.TryParseExact(text, PartialTimeFormat, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out DateTime t))
        {
            return false;
        }
        observedAt = new DateTimeOffset(DateTime.SpecifyKind(t, DateTimeKind.Utc));
        return true;
    }

    /// <summary>Parses a sidecar name ("000000043.seg.idx") to its segment's id and name.</summary>
    public static bool TryParseSidecarFileName(string fileName, out long segmentId, out string segmentFileName)
    {
        segmentFileName = "";
        segmentId = 0;
        if (fileName is null || !fileName.EndsWith(SidecarSuffix, StringComparison.Ordinal))
        {
            return false;
        }
        string segment = fileName[..^SidecarSuffix.Length];
        if (!TryParseSegmentFileName(segment, out segmentId))
        {
            return false;
        }
        segmentFileName = segment;
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

    /// <summary>The CRC stored at offset 56 matches bytes 0..55 under CRC-32C (current walfs) or,
    /// for segments written before 2025-05, under the IEEE polynomial; null when neither.</summary>
    public static WalCrcKind? CheckCrc(ReadOnlySpan<byte> b, uint stored) =>
        stored == Crc32C.Compute(b[..56]) ? WalCrcKind.Castagnoli
        : stored == Crc32Ieee.Compute(b[..56]) ? WalCrcKind.Ieee
        : null;

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
    public void Encode(Span<byte> b) => Encode(b, (ulong)WriteOffset, WalCrcKind.Castagnoli);

    /// <summary>Writes all 64 bytes with <paramref name="writeOffsetField"/> as the stored write
    /// offset (walfs v1 stores only its low 32 bits while a segment is active).</summary>
    public void Encode(Span<byte> b, ulong writeOffsetField, WalCrcKind crc)
    {
        b[..WalFormat.HeaderSize].Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(b, Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(b[4..], Version);
        BinaryPrimitives.WriteInt64LittleEndian(b[8..], CreatedAtNs);
        BinaryPrimitives.WriteInt64LittleEndian(b[16..], LastModifiedAtNs);
        BinaryPrimitives.WriteUInt64LittleEndian(b[24..], writeOffsetField);
        BinaryPrimitives.WriteInt64LittleEndian(b[32..], EntryCount);
        BinaryPrimitives.WriteUInt32LittleEndian(b[40..], Flags);
        BinaryPrimitives.WriteInt64LittleEndian(b[44..], FirstLogIndex);
        BinaryPrimitives.WriteUInt32LittleEndian(b[52..], CustomMarker);
        BinaryPrimitives.WriteUInt32LittleEndian(b[56..], crc == WalCrcKind.Ieee ? Crc32Ieee.Compute(b[..56]) : Crc32C.Compute(b[..56]));
    }
}

/// <summary>Which CRC-32 polynomial a segment's header (and records) use: walfs switched from
/// IEEE to Castagnoli in May 2025 (records in 489329f, headers in 8d913ba).</summary>
public enum WalCrcKind
{
    Castagnoli,
    Ieee,
}
