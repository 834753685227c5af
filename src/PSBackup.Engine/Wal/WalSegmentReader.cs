using System.Buffers;
using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;

namespace PSBackup.Engine.Wal;

/// <summary>One record of a segment's valid prefix: its log index (the payload's own when the
/// segment's payloads decode, else the header's first index + ordinal), byte offset, time (the
/// payload's HLC or raft append time; null for opaque payloads) and data.</summary>
public sealed record WalRecord(long LogIndex, long Offset, byte[] Data)
{
    public DateTimeOffset? Time { get; init; }
}

/// <summary>Reads and validates walfs segments, version 1 and 2.</summary>
public static class WalSegmentReader
{
    private const int WindowSize = 256 << 10;

    /// <summary>Validates a segment fully. Corruption is reported in the result (Valid=false,
    /// Error, ErrorOffset), never thrown; a missing file is a NotFoundException.</summary>
    public static WalSegmentInfo Inspect(string path, string @namespace)
    {
        long segmentId = WalFormat.TryParseSegmentFileName(Path.GetFileName(path), out long id) ? id : -1;
        return Inspect(path, @namespace, segmentId);
    }

    /// <summary>As <see cref="Inspect(string, string)"/>, for a file whose name is not its segment
    /// name (a temp copy being verified).</summary>
    public static WalSegmentInfo Inspect(string path, string @namespace, long segmentId) => Inspect(path, @namespace, segmentId, headerOnly: false);

    /// <summary>How <see cref="WalSegmentInfo.Error"/> begins when the file could not be read at all
    /// (permissions, not a regular file): that says nothing about its bytes, so it is not "corrupt".</summary>
    internal const string UnreadablePrefix = "The segment could not be read: ";

    /// <summary>With <paramref name="headerOnly"/>, only the header is read and checked (magic,
    /// version, CRC, flags); the record count and valid end are the header's. For a segment whose
    /// bytes the caller proves identical to a copy validated earlier (WAL ship compares an archived
    /// segment's SHA-256), so it is not parsed record by record again. A v1 sidecar
    /// (<c>{path}.idx</c>) is checked when it exists and the whole segment is read.</summary>
    internal static WalSegmentInfo Inspect(string path, string @namespace, long segmentId, bool headerOnly)
    {
        string full = Path.GetFullPath(path);
        SegmentAnalysis a;
        long length;
        try
        {
            using SafeFileHandle handle = OpenHandle(full);
            length = RandomAccess.GetLength(handle);
            string sidecar = full + WalFormat.SidecarSuffix;
            a = Analyze(handle, length, headerOnly, headerOnly || !File.Exists(sidecar) ? null : sidecar);
        }
        catch (Exception ex) when ((ex is IOException or UnauthorizedAccessException && ex is not FileNotFoundException and not DirectoryNotFoundException)
            || ex is InvalidInputException { ErrorId: "NotARegularFile" })
        {
            return new WalSegmentInfo
            {
                Namespace = @namespace,
                SegmentId = segmentId,
                Path = full,
                Sealed = false,
                CreatedAt = DateTimeOffset.UnixEpoch,
                FirstLogIndex = 0,
                EntryCount = 0,
                Bytes = 0,
                ValidBytes = 0,
                Valid = false,
                Error = UnreadablePrefix + ex.Message,
                ErrorOffset = 0,
            };
        }
        return ToInfo(a, full, @namespace, segmentId, length);
    }

    private static WalSegmentInfo ToInfo(SegmentAnalysis a, string full, string @namespace, long segmentId, long length)
    {
        WalHeader h = a.Header;
        bool decoded = a.Payload != WalPayloadFormat.Opaque && a.Count > 0;
        long first = decoded ? a.FirstIndex : a.HeaderReadable ? h.FirstLogIndex : 0;
        return new WalSegmentInfo
        {
            Namespace = @namespace,
            SegmentId = segmentId,
            Path = full,
            Sealed = a.HeaderReadable && h.IsSealed,
            CreatedAt = a.HeaderReadable ? WalFormat.FromUnixNanoseconds(h.CreatedAtNs) : DateTimeOffset.UnixEpoch,
            LastModifiedAt = a.HeaderReadable && h.LastModifiedAtNs != 0 ? WalFormat.FromUnixNanoseconds(h.LastModifiedAtNs) : null,
            FirstLogIndex = first,
            LastLogIndex = decoded ? a.LastIndex : a.Count > 0 ? first + a.Count - 1 : null,
            EntryCount = a.Count,
            Bytes = length,
            ValidBytes = a.ValidEnd,
            Valid = a.Error is null || a.TornTail,
            Error = a.Error,
            ErrorOffset = a.ErrorOffset,
            TornTail = a.TornTail,
            Version = a.HeaderReadable ? (int)h.Version : 0,
            HeaderCrc = a.Crc,
            Mode = !a.HeaderReadable ? null : h.CustomMarker switch
            {
                WalFormat.MarkerStandalone => "standalone",
                WalFormat.MarkerRaft => "raft",
                0 => null,
                uint other => $"marker {other}",
            },
            PayloadFormat = a.Payload,
            FirstRecordTime = decoded ? a.FirstTime : null,
            LastRecordTime = decoded ? a.LastTime : null,
            LastRecordOffset = a.Count > 0 ? a.LastOffset : null,
            LogIndexGaps = a.Gaps is null ? [] : a.Gaps.Select(g => g with { SegmentId = segmentId }).ToList(),
            Sidecar = a.SidecarPath is null ? null : Path.GetFileName(a.SidecarPath),
            Warnings = a.Warnings is null ? [] : a.Warnings,
        };
    }

    /// <summary>The records of the segment's valid prefix, in order. A header that cannot be
    /// trusted (no first log index to number the records by) is an IntegrityException.</summary>
    public static IEnumerable<WalRecord> ReadRecords(string path)
    {
        string full = Path.GetFullPath(path);
        SafeFileHandle handle = OpenHandle(full);
        WalPayloadFormat format;
        try
        {
            SegmentAnalysis a = Analyze(handle, RandomAccess.GetLength(handle), headerOnly: false, sidecarPath: null);
            format = a.Payload;
        }
        catch
        {
            handle.Dispose();
            throw;
        }
        return ReadRecords(full, handle, format);
    }

    private static IEnumerable<WalRecord> ReadRecords(string path, SafeFileHandle handle, WalPayloadFormat format)
    {
        using (handle)
        {
            long length = RandomAccess.GetLength(handle);
            using var window = new FileWindow(handle, length, WindowSize);
            (WalHeader header, string? error, long errorOffset, WalCrcKind crcKind) = ReadHeader(window);
            if (error is not null)
            {
                throw new IntegrityException("WalSegmentCorrupt", $"Segment '{path}': {error} (offset {errorOffset}).", path);
            }
            long limit = length;
            string limitName = "the end of the file";
            if (header.IsSealed && header.WriteOffset >= WalFormat.HeaderSize && header.WriteOffset <= length)
            {
                limit = header.WriteOffset;
                limitName = "the header's write offset";
            }
            long offset = WalFormat.HeaderSize;
            long ordinal = 0;
            while (offset < limit)
            {
                RecordCheck check = CheckRecord(window, offset, limit, limitName, crcKind);
                if (check.Status != RecordStatus.Valid)
                {
                    yield break;
                }
                byte[] data = new byte[check.Length];
                if (!window.TryCopy(offset + WalFormat.RecordHeaderSize, data))
                {
                    yield break;
                }
                long logIndex = header.FirstLogIndex + ordinal;
                DateTimeOffset? time = null;
                if (format != WalPayloadFormat.Opaque && WalPayload.TryDecode(data, data.Length, format, out WalPayloadFacts facts, out _))
                {
                    logIndex = facts.LogIndex;
                    time = facts.Time;
                }
                yield return new WalRecord(logIndex, offset, data) { Time = time };
                ordinal++;
                offset = check.Next;
            }
        }
    }

    internal static SafeFileHandle OpenHandle(string path)
    {
        try
        {
            return SpecialFiles.OpenRegularHandle(path, FileOptions.SequentialScan);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new NotFoundException("WalSegmentNotFound", $"The WAL segment '{path}' does not exist. Check the path, or list the segments with Get-WalSegment.", path);
        }
    }

    internal sealed class SegmentAnalysis
    {
        public WalHeader Header;
        /// <summary>At least 64 bytes were there to decode (the values may still be corrupt).</summary>
        public bool HeaderReadable;
        public WalCrcKind? Crc;
        public long Count;
        public long ValidEnd = WalFormat.HeaderSize;
        public long LastOffset;
        public string? Error;
        public long? ErrorOffset;
        public bool TornTail;
        public string? SidecarPath;
        public List<string>? Warnings;
        /// <summary>Framing only (length, trailer): no CRC, padding, zero-fill or footer checks.</summary>
        public bool Light;
        /// <summary>Stop at the record starting at this offset (checked in full) and describe it.</summary>
        public long? StopAt;
        public (long LogIndex, DateTimeOffset? Time, int Length, long Next, long Ordinal)? StopRecord;
        /// <summary>A record spans <see cref="StopAt"/>: it is not a record start.</summary>
        public bool StopPassed;

        // Payload facts, while every record decodes in one format.
        public WalPayloadFormat Payload = WalPayloadFormat.Opaque;
        private bool _payloadFailed;
        public long FirstIndex, LastIndex;
        public DateTimeOffset? FirstTime, LastTime;
        public List<WalLogIndexGap>? Gaps;
        public long SegmentId = -1;

        /// <summary>Record (offset, data length) pairs, kept only while a sidecar is to be checked.</summary>
        public List<(long Offset, int Length)>? Records;

        public void Fail(string error, long offset)
        {
            Error ??= error;
            ErrorOffset ??= offset;
        }

        public void Warn(string warning) => (Warnings ??= []).Add(warning);

        /// <summary>Adds a valid record's payload facts. The first record picks the format (by the
        /// header's mode marker); one record that does not decode, a log index that does not rise,
        /// or a first index other than the header's makes the whole segment opaque.</summary>
        /// <summary>Records observed so far.</summary>
        public long Observed;

        public void Observe(long offset, int length, ReadOnlySpan<byte> prefix, Func<int, byte[]?> readMore)
        {
            LastOffset = offset;
            Records?.Add((offset, length));
            long ordinal = Observed++;
            if (_payloadFailed)
            {
                return;
            }
            WalPayloadFacts facts = default;
            bool ok = false;
            if (ordinal == 0)
            {
                foreach (WalPayloadFormat f in Header.CustomMarker switch
                {
                    WalFormat.MarkerRaft => new[] { WalPayloadFormat.Raft },
                    WalFormat.MarkerStandalone => new[] { WalPayloadFormat.LogRecord },
                    _ => new[] { WalPayloadFormat.LogRecord, WalPayloadFormat.Raft },
                })
                {
                    if (Decode(f, length, prefix, readMore, out facts))
                    {
                        Payload = f;
                        ok = Header.FirstLogIndex == 0 || facts.LogIndex == Header.FirstLogIndex;
                        break;
                    }
                }
                if (ok)
                {
                    FirstIndex = facts.LogIndex;
                    FirstTime = facts.Time;
                }
            }
            else
            {
                ok = Decode(Payload, length, prefix, readMore, out facts) && facts.LogIndex > LastIndex;
                if (ok && facts.LogIndex != LastIndex + 1)
                {
                    (Gaps ??= []).Add(new WalLogIndexGap(SegmentId, offset, LastIndex, facts.LogIndex));
                }
            }
            if (!ok)
            {
                _payloadFailed = true;
                Payload = WalPayloadFormat.Opaque;
                Gaps = null;
                return;
            }
            LastIndex = facts.LogIndex;
            LastTime = facts.Time;
        }

        private static bool Decode(WalPayloadFormat format, int length, ReadOnlySpan<byte> prefix, Func<int, byte[]?> readMore, out WalPayloadFacts facts)
        {
            if (WalPayload.TryDecode(prefix, length, format, out facts, out int more))
            {
                return true;
            }
            if (more > prefix.Length && readMore(Math.Min(more, length)) is { } bigger)
            {
                return WalPayload.TryDecode(bigger, length, format, out facts, out _);
            }
            return false;
        }
    }

    /// <summary>A segment's facts from its header and a walk over its record frames (lengths and
    /// trailers, each payload's first bytes), without CRCs: what a listing needs (first and last
    /// log index and time) for a fraction of a full validation's reads. Never throws for damage;
    /// <see cref="WalSegmentInfo.Valid"/> then reflects only what the walk saw.</summary>
    internal static WalSegmentInfo Summarize(string path, string @namespace, long segmentId)
    {
        string full = Path.GetFullPath(path);
        using SafeFileHandle handle = OpenHandle(full);
        long length = RandomAccess.GetLength(handle);
        SegmentAnalysis a = Analyze(handle, length, headerOnly: false, sidecarPath: null, light: true);
        return ToInfo(a, full, @namespace, segmentId, length);
    }

    internal static SegmentAnalysis Analyze(SafeFileHandle handle, long length, bool headerOnly = false, string? sidecarPath = null, bool light = false, long? stopAt = null)
    {
        var a = new SegmentAnalysis { Light = light, StopAt = stopAt };
        using var window = new FileWindow(handle, length, headerOnly ? WalFormat.HeaderSize : light ? 64 << 10 : WindowSize);
        if (length < WalFormat.HeaderSize)
        {
            a.ValidEnd = 0;
            a.Fail($"The file is {length} bytes, shorter than the {WalFormat.HeaderSize}-byte segment header: it is truncated", length);
            return a;
        }
        (a.Header, string? headerError, long headerErrorOffset, WalCrcKind crc) = ReadHeader(window);
        a.HeaderReadable = true;
        if (headerError is not null)
        {
            a.Fail(headerError, headerErrorOffset);
            return a;
        }
        a.Crc = crc;
        if (crc == WalCrcKind.Ieee)
        {
            a.Warn("The header CRC uses the IEEE polynomial: written by walfs before May 2025 (later segments use CRC-32C).");
        }
        if (headerOnly)
        {
            a.Count = a.Header.IsSealed ? a.Header.EntryCount : 0;
            a.ValidEnd = a.Header.IsSealed ? a.Header.WriteOffset : WalFormat.HeaderSize;
            a.FirstIndex = a.Header.FirstLogIndex;
            return a;
        }
        if (a.Header.IsSealed && sidecarPath is not null)
        {
            a.SidecarPath = sidecarPath;
            a.Records = [];
        }
        if (a.Header.IsSealed)
        {
            AnalyzeSealed(handle, window, length, a, crc);
            if (a.Error is null && sidecarPath is not null)
            {
                CheckSidecar(sidecarPath, a);
            }
        }
        else
        {
            AnalyzeActive(window, length, a, crc);
            if (sidecarPath is not null && File.Exists(sidecarPath))
            {
                a.SidecarPath = sidecarPath;
                a.Warn($"'{Path.GetFileName(sidecarPath)}' beside an active segment is not checked: walfs rewrites it when the segment is sealed (or truncated in raft mode).");
            }
        }
        return a;
    }

    private static (WalHeader Header, string? Error, long Offset, WalCrcKind Crc) ReadHeader(FileWindow window)
    {
        if (!window.TryGet(0, WalFormat.HeaderSize, out ReadOnlySpan<byte> bytes))
        {
            return (default, $"The file is {window.Length} bytes, shorter than the {WalFormat.HeaderSize}-byte segment header: it is truncated", window.Length, default);
        }
        WalHeader h = WalHeader.Decode(bytes);
        WalCrcKind? crc = WalHeader.CheckCrc(bytes, h.Crc);
        if (h.Magic != WalFormat.Magic)
        {
            return (h, $"Bad magic 0x{h.Magic:X8} at offset 0 (expected 0x{WalFormat.Magic:X8} \"UWAL\"): not a walfs segment", 0, default);
        }
        if (crc is null)
        {
            uint c = Crc32C.Compute(bytes[..56]);
            return (h, $"Header CRC mismatch at offset 56 (stored 0x{h.Crc:X8}, computed CRC-32C 0x{c:X8}, IEEE 0x{Crc32Ieee.Compute(bytes[..56]):X8}): the header is damaged", 56, default);
        }
        if (h.Version is not (WalFormat.Version1 or WalFormat.Version2))
        {
            return (h, $"Unsupported segment version {h.Version} at offset 4 (walfs writes 1 or 2)", 4, default);
        }
        const uint known = WalFormat.FlagActive | WalFormat.FlagSealed;
        if ((h.Flags & ~known) != 0 || (h.Flags != WalFormat.FlagActive && h.Flags != WalFormat.FlagSealed))
        {
            return (h, $"Invalid header flags 0x{h.Flags:X8} at offset 40 (expected Active=0x8 or Sealed=0x2)", 40, default);
        }
        if (h.EntryCount < 0 || h.FirstLogIndex < 0)
        {
            return (h, $"Invalid header: EntryCount {h.EntryCount} (offset 32) or FirstLogIndex {h.FirstLogIndex} (offset 44) is negative", h.EntryCount < 0 ? 32 : 44, default);
        }
        return (h, null, 0, crc.Value);
    }

    /// <summary>Reads a record's payload facts from the window (the prefix is usually already in it).</summary>
    private static void Observe(FileWindow window, SegmentAnalysis a, long offset, int length)
    {
        int take = Math.Min(length, WalPayload.PrefixSize);
        Span<byte> prefix = stackalloc byte[WalPayload.PrefixSize];
        prefix = prefix[..take];
        if (!window.TryCopy(offset + WalFormat.RecordHeaderSize, prefix))
        {
            prefix = default;
        }
        a.Observe(offset, length, prefix, more =>
        {
            byte[] buffer = new byte[more];
            return window.TryCopy(offset + WalFormat.RecordHeaderSize, buffer) ? buffer : null;
        });
    }

    /// <summary>For <see cref="SegmentAnalysis.StopAt"/>: true when the walk is to end at
    /// <paramref name="offset"/> (the wanted record, checked in full and described, or passed).</summary>
    private static bool AtStop(FileWindow window, SegmentAnalysis a, long offset, long limit, string limitName, WalCrcKind crc)
    {
        if (a.StopAt is not long stop || offset < stop)
        {
            return false;
        }
        if (offset > stop)
        {
            a.StopPassed = true;
            return true;
        }
        RecordCheck check = CheckRecord(window, offset, limit, limitName, crc);
        if (check.Status != RecordStatus.Valid)
        {
            a.Fail($"The record at offset {offset} is invalid: {check.Reason ?? "there is no record there (zero fill)"}", offset);
            return true;
        }
        long ordinal = a.Observed;
        Observe(window, a, offset, check.Length);
        a.Count = a.Observed;
        bool decoded = a.Payload != WalPayloadFormat.Opaque;
        a.StopRecord = (decoded ? a.LastIndex : a.Header.FirstLogIndex + ordinal, decoded ? a.LastTime : null, check.Length, check.Next, ordinal);
        return true;
    }

    /// <summary>An active segment is scanned until the first record that is not valid: zero fill
    /// is its clean end, anything else is a torn tail (not an error for an active segment).</summary>
    private static void AnalyzeActive(FileWindow window, long length, SegmentAnalysis a, WalCrcKind crc)
    {
        long offset = WalFormat.HeaderSize;
        while (true)
        {
            if (AtStop(window, a, offset, length, "the end of the file", crc))
            {
                a.ValidEnd = offset;
                return;
            }
            RecordCheck check = CheckRecord(window, offset, length, "the end of the file", crc, a.Light);
            if (check.Status == RecordStatus.Valid)
            {
                Observe(window, a, offset, check.Length);
                a.Count++;
                offset = check.Next;
                continue;
            }
            if (check.Status is RecordStatus.ZeroHeader or RecordStatus.NoRoom)
            {
                long nonZero = a.Light ? -1 : window.FindNonZero(offset, length);
                if (nonZero >= 0)
                {
                    if (a.Header.CustomMarker == WalFormat.MarkerRaft)
                    {
                        // walfs TruncateTo (raft log truncation) zeroes only 1 KiB after the new end.
                        a.Warn($"Bytes after the last record (first non-zero at offset {nonZero}) are left over from a raft log truncation; ignored.");
                    }
                    else
                    {
                        a.TornTail = true;
                        a.Fail($"Torn tail: the record at offset {offset} is incomplete (zero record header, but non-zero bytes at offset {nonZero})", offset);
                    }
                }
            }
            else
            {
                a.TornTail = true;
                a.Fail($"Torn tail: the record at offset {offset} is invalid: {check.Reason}", offset);
            }
            break;
        }
        a.ValidEnd = offset;
        if (!a.Light)
        {
            ProveTornTail(window, length, a, crc, offset);
        }
    }

    /// <summary>Where an active segment's scan stopped, a torn tail (the last append, unfinished)
    /// must look like one: walfs copies a record into the mapping before it rewrites the header's
    /// WriteOffset (low 32 bits), EntryCount and CRC (<c>pkg/walfs/segment.go:781-804</c> Write,
    /// <c>:928-936</c> WriteBatch), so a CRC-valid header never counts a record that is not
    /// complete, and the writer starts a record only after the previous one is whole, so nothing
    /// valid follows an unfinished one. A header that counts more records, or a write offset past
    /// the stop, or a valid record right after the invalid one, proves the stop is damage in the
    /// middle of the segment: it is reported as corruption (the records after it would otherwise
    /// be dropped silently), never as a torn tail.</summary>
    private static void ProveTornTail(FileWindow window, long length, SegmentAnalysis a, WalCrcKind crc, long offset)
    {
        WalHeader h = a.Header;
        string? proof = null;
        if (h.EntryCount > a.Count)
        {
            proof = $"the header (CRC valid) counts {h.EntryCount} records and only {a.Count} valid records precede offset {offset}";
        }
        else if ((uint)h.WriteOffset > (ulong)offset && offset < uint.MaxValue)
        {
            proof = $"the header (CRC valid) puts the end of the records at offset {(uint)h.WriteOffset}, past offset {offset} where the valid records stop";
        }
        else if (a.TornTail && h.CustomMarker != WalFormat.MarkerRaft && window.TryGet(offset, WalFormat.RecordHeaderSize, out ReadOnlySpan<byte> header))
        {
            // The damaged record's length field, if intact, names where the next record starts.
            long next = offset + WalFormat.RecordSize(BinaryPrimitives.ReadUInt32LittleEndian(header[4..]));
            if (next < length && CheckRecord(window, next, length, "the end of the file", crc).Status == RecordStatus.Valid)
            {
                proof = $"a valid record follows it at offset {next}";
            }
        }
        if (proof is null)
        {
            return;
        }
        string what = a.Error is { } e && e.StartsWith("Torn tail: ", StringComparison.Ordinal) ? e["Torn tail: ".Length..] : $"the records end at offset {offset}";
        a.TornTail = false;
        a.Error = null;
        a.ErrorOffset = null;
        a.Fail($"Damaged record in the middle of the active segment: {what}; yet {proof}. A torn tail (an unfinished append) is the last thing written: the header never counts it and nothing valid follows it. The records after offset {offset} are unreadable to the database too", offset);
    }

    private static void AnalyzeSealed(SafeFileHandle handle, FileWindow window, long length, SegmentAnalysis a, WalCrcKind crc)
    {
        WalHeader h = a.Header;
        bool v2 = h.Version == WalFormat.Version2;
        long wo = h.WriteOffset;
        long scanLimit = length;
        string limitName = "the end of the file";
        bool writeOffsetUsable = false;
        long entryCount = 0; // footer index entries, once the footer checked out
        bool footerOk = false;
        long footerEnd = wo;

        if (wo < WalFormat.HeaderSize || wo % WalFormat.Alignment != 0 || wo > WalFormat.MaxSegmentSize)
        {
            a.Fail($"Invalid write offset {wo} in the header at offset 24 (records end at an 8-byte aligned offset of at least {WalFormat.HeaderSize})", 24);
        }
        else if (v2 && wo + WalFormat.FooterHeadSize > length)
        {
            scanLimit = Math.Min(wo, length);
            a.Fail($"The file ends at offset {length}, before the end of the footer head at {wo + WalFormat.FooterHeadSize}: the sealed segment is truncated", length);
        }
        else if (!v2 && wo > length)
        {
            scanLimit = length;
            a.Fail($"The file ends at offset {length}, before the header's write offset {wo} (offset 24): the sealed segment is truncated", length);
        }
        else
        {
            writeOffsetUsable = true;
            scanLimit = wo;
            limitName = "the header's write offset";
            if (v2)
            {
                (footerOk, entryCount) = a.Light ? (true, 0) : CheckFooter(window, length, h, a);
                footerEnd = wo + WalFormat.FooterHeadSize + entryCount * WalFormat.FooterEntrySize;
            }
        }

        // Records: every one valid, ending exactly at the write offset, the footer index pointing at them.
        using var entries = new FileWindow(handle, length, 4096);
        long nextEntry = 0;
        long entryOrdinal = -1, entryOffset = -1;
        void LoadEntry()
        {
            entryOrdinal = -1;
            if (footerOk && !a.Light && nextEntry < entryCount &&
                entries.TryGet(wo + WalFormat.FooterHeadSize + nextEntry * WalFormat.FooterEntrySize, WalFormat.FooterEntrySize, out ReadOnlySpan<byte> e))
            {
                entryOrdinal = BinaryPrimitives.ReadUInt32LittleEndian(e);
                entryOffset = BinaryPrimitives.ReadUInt32LittleEndian(e[4..]);
            }
        }
        LoadEntry();

        long offset = WalFormat.HeaderSize;
        long ordinal = 0;
        bool recordsOk = true;
        while (offset < scanLimit)
        {
            if (AtStop(window, a, offset, scanLimit, limitName, crc))
            {
                a.ValidEnd = offset;
                return;
            }
            RecordCheck check = CheckRecord(window, offset, scanLimit, limitName, crc, a.Light);
            if (check.Status != RecordStatus.Valid)
            {
                if (writeOffsetUsable)
                {
                    recordsOk = false;
                    string why = check.Status switch
                    {
                        RecordStatus.ZeroHeader => "it is zeros where the header's write offset says records continue",
                        RecordStatus.NoRoom => $"a record header does not fit before {limitName} {scanLimit}",
                        _ => check.Reason!,
                    };
                    a.Fail($"Record {ordinal} at offset {offset} is invalid: {why}", offset);
                }
                break;
            }
            Observe(window, a, offset, check.Length);
            if (ordinal == entryOrdinal)
            {
                if (entryOffset != offset)
                {
                    recordsOk = false;
                    long at = wo + WalFormat.FooterHeadSize + nextEntry * WalFormat.FooterEntrySize;
                    a.Fail($"Footer index entry {nextEntry} at offset {at} says record {entryOrdinal} starts at offset {entryOffset}, but it starts at offset {offset}", at);
                    entryOrdinal = -1;
                }
                else
                {
                    nextEntry++;
                    LoadEntry();
                }
            }
            ordinal++;
            offset = check.Next;
        }
        a.Count = ordinal;
        a.ValidEnd = offset;

        if ((footerOk || !v2) && recordsOk && writeOffsetUsable)
        {
            if (ordinal != h.EntryCount)
            {
                a.Fail($"The header's EntryCount (offset 32) is {h.EntryCount} but the records up to the write offset {wo} number {ordinal}", 32);
            }
            else if (a.Light)
            {
            }
            else if (v2 && nextEntry != entryCount)
            {
                long at = wo + WalFormat.FooterHeadSize + nextEntry * WalFormat.FooterEntrySize;
                a.Fail($"Footer index entry {nextEntry} at offset {at} points past the last record", at);
            }
            else
            {
                // Nothing follows the records (v1) or the footer (v2) but zero fill; in raft mode a
                // truncated-then-resealed segment may keep stale bytes there, which nothing reads.
                long nonZero = window.FindNonZero(footerEnd, length);
                if (nonZero >= 0)
                {
                    if (h.CustomMarker == WalFormat.MarkerRaft)
                    {
                        a.Warn($"Bytes after the {(v2 ? "footer" : "write offset")} (first non-zero at offset {nonZero}) are left over from a raft log truncation; ignored.");
                    }
                    else
                    {
                        a.Fail($"Non-zero byte at offset {nonZero} after the {(v2 ? $"footer (which ends at {footerEnd})" : $"header's write offset {wo}")}: a sealed segment holds only zero fill there", nonZero);
                    }
                }
            }
        }
    }

    /// <summary>Checks a v1 sparse-index sidecar: exactly one 16-byte entry <c>{u64 offset, u32
    /// length, u32 0}</c> per record, each naming that record's offset and data length.</summary>
    private static void CheckSidecar(string sidecarPath, SegmentAnalysis a)
    {
        string name = Path.GetFileName(sidecarPath);
        const string Fix = "Delete it: UnisonDB rebuilds a missing sidecar from the segment when it opens it";
        List<(long Offset, int Length)> records = a.Records!;
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(sidecarPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            a.Fail($"The sidecar '{name}' could not be read: {e.Message}", 0);
            return;
        }
        if (bytes.Length != (long)records.Count * WalFormat.SidecarEntrySize)
        {
            long at = Math.Min(bytes.Length, (long)records.Count * WalFormat.SidecarEntrySize);
            a.Fail($"Sidecar '{name}' is {bytes.Length} bytes but the segment has {records.Count} records ({records.Count * WalFormat.SidecarEntrySize} bytes of 16-byte entries expected); it is damaged at sidecar offset {at}. {Fix}", at);
            return;
        }
        for (int i = 0; i < records.Count; i++)
        {
            ReadOnlySpan<byte> e = bytes.AsSpan(i * WalFormat.SidecarEntrySize, WalFormat.SidecarEntrySize);
            ulong offset = BinaryPrimitives.ReadUInt64LittleEndian(e);
            uint length = BinaryPrimitives.ReadUInt32LittleEndian(e[8..]);
            uint reserved = BinaryPrimitives.ReadUInt32LittleEndian(e[12..]);
            if (offset != (ulong)records[i].Offset || length != (uint)records[i].Length || reserved != 0)
            {
                long at = (long)i * WalFormat.SidecarEntrySize;
                a.Fail($"Sidecar '{name}' entry {i} at sidecar offset {at} says {{offset {offset}, length {length}, {reserved}}}, but record {i} is at segment offset {records[i].Offset} with {records[i].Length} data bytes; the sidecar is damaged. {Fix}", at);
                return;
            }
        }
        a.Records = null;
    }

    /// <summary>Checks the footer head and index entries (CRCs, markers, counts, ordering). Entries
    /// are streamed, never loaded: their count is bounded by the file size before any is read.</summary>
    private static (bool Ok, long EntryCount) CheckFooter(FileWindow window, long length, WalHeader h, SegmentAnalysis a)
    {
        long wo = h.WriteOffset;
        if (!window.TryGet(wo, WalFormat.FooterHeadSize, out ReadOnlySpan<byte> head))
        {
            a.Fail($"The file ends at offset {length}, before the end of the footer head at {wo + WalFormat.FooterHeadSize}: the sealed segment is truncated", length);
            return (false, 0);
        }
        uint storedHeadCrc = BinaryPrimitives.ReadUInt32LittleEndian(head[28..]);
        uint headCrc = Crc32C.Compute(head[..28]);
        uint magic = BinaryPrimitives.ReadUInt32LittleEndian(head);
        uint sentinel = BinaryPrimitives.ReadUInt32LittleEndian(head[4..]);
        ulong count = BinaryPrimitives.ReadUInt64LittleEndian(head[8..]);
        uint n = BinaryPrimitives.ReadUInt32LittleEndian(head[16..]);
        uint storedEntriesCrc = BinaryPrimitives.ReadUInt32LittleEndian(head[20..]);
        ushort version = BinaryPrimitives.ReadUInt16LittleEndian(head[24..]);
        ushort reserved = BinaryPrimitives.ReadUInt16LittleEndian(head[26..]);
        if (magic != WalFormat.FooterMagic)
        {
            a.Fail($"Footer magic 0x{magic:X8} at offset {wo} is not \"WALF\" (0x{WalFormat.FooterMagic:X8}): the footer is missing or damaged", wo);
            return (false, 0);
        }
        if (storedHeadCrc != headCrc)
        {
            a.Fail($"Footer head CRC mismatch at offset {wo + 28} (stored 0x{storedHeadCrc:X8}, computed 0x{headCrc:X8})", wo + 28);
            return (false, 0);
        }
        if (sentinel != WalFormat.FooterLengthSentinel)
        {
            a.Fail($"Footer marker 0x{sentinel:X8} at offset {wo + 4} is not 0xFFFFFFFF", wo + 4);
            return (false, 0);
        }
        if (version != WalFormat.FooterVersion || reserved != 0)
        {
            a.Fail(version != WalFormat.FooterVersion
                ? $"Unsupported footer version {version} at offset {wo + 24} (expected {WalFormat.FooterVersion})"
                : $"Footer reserved field at offset {wo + 26} is {reserved}, not 0", version != WalFormat.FooterVersion ? wo + 24 : wo + 26);
            return (false, 0);
        }
        if (count != (ulong)h.EntryCount)
        {
            a.Fail($"Footer record count {count} at offset {wo + 8} does not match the header's EntryCount {h.EntryCount}", wo + 8);
            return (false, 0);
        }
        long entriesStart = wo + WalFormat.FooterHeadSize;
        long entriesEnd = entriesStart + (long)n * WalFormat.FooterEntrySize;
        if (entriesEnd > length)
        {
            a.Fail($"The file ends at offset {length}, before the end of the footer index at {entriesEnd} ({n} entries): the sealed segment is truncated", length);
            return (false, 0);
        }
        if ((count == 0) != (n == 0) || n > count)
        {
            a.Fail($"Footer index entry count {n} at offset {wo + 16} is impossible for {count} records", wo + 16);
            return (false, 0);
        }
        uint state = Crc32C.InitialState;
        if (!window.TryUpdateCrc(entriesStart, entriesEnd - entriesStart, ref state))
        {
            a.Fail($"The footer index at offset {entriesStart} could not be read to its end at {entriesEnd}: the sealed segment is truncated", length);
            return (false, 0);
        }
        uint entriesCrc = Crc32C.Finish(state);
        if (entriesCrc != storedEntriesCrc)
        {
            a.Fail($"Footer index CRC mismatch at offset {wo + 20} (stored 0x{storedEntriesCrc:X8}, computed 0x{entriesCrc:X8} over the {n} entries at {entriesStart})", wo + 20);
            return (false, 0);
        }
        long previousOrdinal = -1, previousOffset = -1;
        for (long i = 0; i < n; i++)
        {
            long at = entriesStart + i * WalFormat.FooterEntrySize;
            if (!window.TryGet(at, WalFormat.FooterEntrySize, out ReadOnlySpan<byte> e))
            {
                a.Fail($"The footer index entry at offset {at} could not be read: the sealed segment is truncated", length);
                return (false, 0);
            }
            long ordinal = BinaryPrimitives.ReadUInt32LittleEndian(e);
            long offset = BinaryPrimitives.ReadUInt32LittleEndian(e[4..]);
            string? why =
                i == 0 && (ordinal != 0 || offset != WalFormat.HeaderSize) ? $"the first entry must be {{0, {WalFormat.HeaderSize}}}" :
                i > 0 && (ordinal <= previousOrdinal || offset <= previousOffset) ? "entries must increase in ordinal and offset" :
                (ulong)ordinal >= count ? $"ordinal is not below the record count {count}" :
                offset % WalFormat.Alignment != 0 || offset + WalFormat.RecordHeaderSize > wo ? $"offset is not an aligned record start before the write offset {wo}" :
                null;
            if (why is not null)
            {
                a.Fail($"Footer index entry {i} {{{ordinal}, {offset}}} at offset {at} is invalid: {why}", at);
                return (false, 0);
            }
            previousOrdinal = ordinal;
            previousOffset = offset;
        }
        return (true, n);
    }

    internal enum RecordStatus
    {
        Valid,
        /// <summary>crc and length both zero: zero fill, never a record.</summary>
        ZeroHeader,
        /// <summary>Not even a record header fits before the limit.</summary>
        NoRoom,
        Invalid,
    }

    internal readonly record struct RecordCheck(RecordStatus Status, int Length, long Next, string? Reason);

    internal static RecordCheck CheckRecord(FileWindow window, long offset, long limit, string limitName) =>
        CheckRecord(window, offset, limit, limitName, WalCrcKind.Castagnoli);

    /// <summary>Validates the record at <paramref name="offset"/>: its length bounded by
    /// <paramref name="limit"/> before anything is read, its trailer, its CRC and its padding.
    /// Segments whose header uses the IEEE polynomial (walfs before May 2025) may have records
    /// under either polynomial.</summary>
    internal static RecordCheck CheckRecord(FileWindow window, long offset, long limit, string limitName, WalCrcKind crcKind, bool light = false)
    {
        if (offset + WalFormat.RecordHeaderSize > limit || !window.TryGet(offset, WalFormat.RecordHeaderSize, out ReadOnlySpan<byte> header))
        {
            return new RecordCheck(RecordStatus.NoRoom, 0, offset, null);
        }
        uint stored = BinaryPrimitives.ReadUInt32LittleEndian(header);
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(header[4..]);
        if (stored == 0 && length == 0)
        {
            return new RecordCheck(RecordStatus.ZeroHeader, 0, offset, null);
        }
        long size = WalFormat.RecordSize(length);
        if (offset + size > limit)
        {
            return new RecordCheck(RecordStatus.Invalid, 0, offset,
                $"its length field {length} (at offset {offset + 4}) runs past {limitName} {limit}");
        }
        long trailerAt = offset + WalFormat.RecordHeaderSize + length;
        if (!window.TryGet(trailerAt, WalFormat.TrailerSize, out ReadOnlySpan<byte> trailer) ||
            BinaryPrimitives.ReadUInt64LittleEndian(trailer) != WalFormat.TrailerWord)
        {
            return new RecordCheck(RecordStatus.Invalid, 0, offset,
                $"the trailer at offset {trailerAt} is not DE AD BE EF FE ED FA CE (torn write or wrong length field {length})");
        }
        if (light)
        {
            return new RecordCheck(RecordStatus.Valid, (int)length, offset + size, null);
        }
        // header points into the window, which the trailer read above may have refilled.
        Span<byte> lengthBytes = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(lengthBytes, length);
        uint state = Crc32C.Update(Crc32C.InitialState, lengthBytes);
        if (!window.TryUpdateCrc(offset + WalFormat.RecordHeaderSize, length, ref state))
        {
            return new RecordCheck(RecordStatus.Invalid, 0, offset, "its data could not be read");
        }
        uint computed = Crc32C.Finish(state);
        if (computed != stored && crcKind == WalCrcKind.Ieee && IeeeRecordCrc(window, offset, length) == stored)
        {
            computed = stored;
        }
        if (computed != stored)
        {
            return new RecordCheck(RecordStatus.Invalid, 0, offset,
                $"CRC mismatch (stored 0x{stored:X8}, computed 0x{computed:X8} over the length and {length} data bytes)");
        }
        long padding = window.FindNonZero(trailerAt + WalFormat.TrailerSize, offset + size);
        if (padding >= 0)
        {
            return new RecordCheck(RecordStatus.Invalid, 0, offset, $"non-zero padding byte at offset {padding}");
        }
        return new RecordCheck(RecordStatus.Valid, (int)length, offset + size, null);
    }

    private static uint IeeeRecordCrc(FileWindow window, long offset, uint length)
    {
        Span<byte> lengthBytes = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(lengthBytes, length);
        uint state = Crc32Ieee.Update(Crc32C.InitialState, lengthBytes);
        long at = offset + WalFormat.RecordHeaderSize;
        long left = length;
        while (left > 0)
        {
            int piece = (int)Math.Min(left, window.Capacity);
            if (!window.TryGet(at, piece, out ReadOnlySpan<byte> span))
            {
                return 0;
            }
            state = Crc32Ieee.Update(state, span);
            at += piece;
            left -= piece;
        }
        return Crc32Ieee.Finish(state);
    }
}

/// <summary>What a WAL folder holds, by name alone: its segments (one naming, <c>%09d.seg</c> or
/// <c>%09d.wal</c>), their v1 sidecars, and anything else.</summary>
public sealed record WalDirectoryListing(string WalDirectory, string? Extension, IReadOnlyList<(long Id, string Path)> Segments,
    IReadOnlyList<string> Sidecars, IReadOnlyList<string> OtherFiles);

/// <summary>Scans a WAL directory and checks id and log-index continuity.</summary>
public static class WalDirectory
{
    public static WalDirectoryReport Scan(string walDirectory, string @namespace) =>
        Scan(walDirectory, @namespace, CancellationToken.None);

    /// <summary>As <see cref="Scan(string, string)"/>, cancellable between segments; <paramref name="inspected"/>
    /// is called after each segment with (done, total, segment).</summary>
    public static WalDirectoryReport Scan(string walDirectory, string @namespace, CancellationToken ct, Action<int, int, WalSegmentInfo>? inspected = null)
    {
        string dir = Path.GetFullPath(walDirectory);
        WalDirectoryListing listing = List(dir);
        var segments = new List<WalSegmentInfo>(listing.Segments.Count);
        foreach ((long id, string path) in listing.Segments)
        {
            ct.ThrowIfCancellationRequested();
            WalSegmentInfo info;
            try
            {
                info = WalSegmentReader.Inspect(path, @namespace, id);
            }
            catch (NotFoundException)
            {
                continue; // removed (retention) between listing and reading
            }
            segments.Add(info);
            inspected?.Invoke(segments.Count, listing.Segments.Count, info);
        }
        var (missing, errors, warnings) = CheckContinuityWithWarnings(segments);
        return new WalDirectoryReport(dir, segments, missing, errors)
        {
            Naming = listing.Extension,
            OtherFiles = listing.OtherFiles,
            Warnings = warnings,
        };
    }

    /// <summary>The files named like segments (<c>%09d.seg</c> or <c>%09d.wal</c>), sorted by id; nothing is read.</summary>
    public static List<(long Id, string Path)> ListSegmentFiles(string walDirectory) => [.. List(walDirectory).Segments];

    /// <summary>Sorts a WAL folder's files by name: segments (one naming per folder, else an
    /// IntegrityException <c>WalMixedNaming</c>), <c>.seg.idx</c> sidecars, and other files.</summary>
    public static WalDirectoryListing List(string walDirectory)
    {
        string dir = Path.GetFullPath(walDirectory);
        if (!Directory.Exists(dir))
        {
            throw new NotFoundException("WalDirectoryNotFound", $"The WAL directory '{dir}' does not exist. Check the data directory and namespace: segments are expected in <dataDir>/<namespace>/wal.", dir);
        }
        var seg = new List<(long Id, string Path)>();
        var wal = new List<(long Id, string Path)>();
        var sidecars = new List<string>();
        var others = new List<string>();
        foreach (string entry in Directory.EnumerateFileSystemEntries(dir))
        {
            string name = Path.GetFileName(entry);
            if (Directory.Exists(entry))
            {
                others.Add(name + Path.DirectorySeparatorChar);
            }
            else if (WalFormat.TryParseSegmentFileName(name, out long id, out string ext))
            {
                (ext == WalFormat.SegExtension ? seg : wal).Add((id, entry));
            }
            else if (WalFormat.TryParseSidecarFileName(name, out _, out _))
            {
                sidecars.Add(name);
            }
            else
            {
                others.Add(name);
            }
        }
        if (seg.Count > 0 && wal.Count > 0)
        {
            throw new IntegrityException("WalMixedNaming",
                $"The WAL directory '{dir}' holds both '%09d.seg' segments ({seg.Count}, e.g. {Path.GetFileName(seg[0].Path)}) and '%09d.wal' segments ({wal.Count}, e.g. {Path.GetFileName(wal[0].Path)}). One folder uses one naming: UnisonDB writes .seg, the seed's archives .wal. Move the files of the other naming out of the folder, then run again.",
                dir);
        }
        List<(long Id, string Path)> segments = seg.Count > 0 ? seg : wal;
        segments.Sort((x, y) => x.Id.CompareTo(y.Id));
        sidecars.Sort(StringComparer.Ordinal);
        others.Sort(StringComparer.Ordinal);
        string? extension = seg.Count > 0 ? WalFormat.SegExtension : wal.Count > 0 ? WalFormat.WalExtension : null;
        return new WalDirectoryListing(dir, extension, segments, sidecars, others);
    }

    /// <summary>Missing ids between the lowest and highest present, and every other continuity
    /// fault: a log-index discontinuity between neighbours, an unsealed segment that is not the
    /// newest, a segment that failed validation. <paramref name="segments"/> is sorted by id.</summary>
    internal static (IReadOnlyList<long> Missing, IReadOnlyList<string> Errors) CheckContinuity(IReadOnlyList<WalSegmentInfo> segments)
    {
        var (missing, errors, _) = CheckContinuityWithWarnings(segments);
        return (missing, errors);
    }

    /// <summary>As <see cref="CheckContinuity"/>, plus warnings: log indexes that UnisonDB skipped
    /// (a failed append consumes one) inside a segment or between two whose payloads carry their
    /// own log index. Those are not gaps: no record is missing, the index was never written.</summary>
    internal static (IReadOnlyList<long> Missing, IReadOnlyList<string> Errors, IReadOnlyList<string> Warnings) CheckContinuityWithWarnings(IReadOnlyList<WalSegmentInfo> segments)
    {
        var missing = new List<long>();
        var errors = new List<string>();
        var warnings = new List<string>();
        for (int i = 0; i < segments.Count; i++)
        {
            WalSegmentInfo s = segments[i];
            bool newest = i == segments.Count - 1;
            foreach (WalLogIndexGap g in s.LogIndexGaps)
            {
                warnings.Add(g.Describe());
            }
            if (!s.Valid)
            {
                errors.Add($"Segment {s.SegmentId} ({Path.GetFileName(s.Path)}) is {(s.Sealed ? "sealed but corrupt" : "unreadable")}: {s.Error}.");
            }
            else if (!s.Sealed && !newest)
            {
                errors.Add($"Segment {s.SegmentId} ({Path.GetFileName(s.Path)}) is not sealed but is not the newest segment (newest is {segments[^1].SegmentId}); only the newest may be active.");
            }
            if (i == 0)
            {
                continue;
            }
            WalSegmentInfo p = segments[i - 1];
            for (long id = p.SegmentId + 1; id < s.SegmentId; id++)
            {
                missing.Add(id);
            }
            if (s.SegmentId != p.SegmentId + 1)
            {
                errors.Add($"Segment ids jump from {p.SegmentId} to {s.SegmentId}: {FormatIds(p.SegmentId + 1, s.SegmentId - 1)} missing.");
                continue;
            }
            // Neighbours: log indexes must continue. An empty segment with FirstLogIndex 0 has not
            // been assigned one yet (walfs stamps it at the first write) and is skipped.
            if (!p.Valid || !s.Valid || IsUnassigned(p) || IsUnassigned(s))
            {
                continue;
            }
            string? seam = DescribeSeam(p.SegmentId, p.FirstLogIndex, p.LastLogIndex ?? p.FirstLogIndex - 1, p.PayloadFormat, s.SegmentId, s.FirstLogIndex, s.PayloadFormat, out bool skipped);
            if (seam is not null)
            {
                (skipped ? warnings : errors).Add(seam);
            }
        }
        return (missing, errors, warnings);
    }

    /// <summary>Null when segment <paramref name="nextId"/> continues <paramref name="prevId"/>; else
    /// what is wrong. <paramref name="skipped"/>: a forward jump between two segments whose
    /// payloads carry their own log indexes, which UnisonDB produces when an append fails (it
    /// consumes the index) and which loses no record: a warning, not a gap.</summary>
    internal static string? DescribeSeam(long prevId, long prevFirst, long prevLast, WalPayloadFormat prevFormat, long nextId, long nextFirst, WalPayloadFormat nextFormat, out bool skipped)
    {
        skipped = false;
        long expected = prevLast + 1;
        if (nextFirst == expected)
        {
            return null;
        }
        if (nextFirst < expected)
        {
            return $"Log index overlap between segments {prevId} and {nextId}: segment {nextId} starts at log index {nextFirst}, expected {expected} (segment {prevId} holds {prevFirst}..{prevLast}).";
        }
        if (prevFormat != WalPayloadFormat.Opaque && nextFormat != WalPayloadFormat.Opaque)
        {
            skipped = true;
            return $"Log index discontinuity between segments {prevId} and {nextId}: segment {prevId} ends at log index {prevLast}, segment {nextId} starts at {nextFirst}; {FormatRange(expected, nextFirst - 1)} never written (UnisonDB consumes a log index when an append fails). No record is missing.";
        }
        return $"Log index gap between segments {prevId} and {nextId}: segment {nextId} starts at log index {nextFirst}, expected {expected} (segment {prevId} holds {prevFirst}..{prevLast}, so it should start at {expected}); log indexes {expected}..{nextFirst - 1} are missing.";
    }

    internal static string FormatRange(long from, long to) => from == to ? $"log index {from} was" : $"log indexes {from}..{to} were";

    private static bool IsUnassigned(WalSegmentInfo s) => s.EntryCount == 0 && s.FirstLogIndex == 0;

    private static string FormatIds(long from, long to) =>
        from == to ? $"id {from} is" : to - from < 20 ? $"ids {string.Join(", ", Enumerable.Range(0, (int)(to - from + 1)).Select(k => from + k))} are" : $"ids {from}..{to} are";
}
