using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;

namespace PSBackup.Engine.Wal;

/// <summary>One record of a segment's valid prefix.</summary>
public sealed record WalRecord(long LogIndex, long Offset, byte[] Data);

/// <summary>Reads and validates walfs v2 segments.</summary>
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

    /// <summary>With <paramref name="headerOnly"/>, only the header is read and checked (magic,
    /// version, CRC, flags); the record count and valid end are the header's. For a segment whose
    /// bytes the caller proves identical to a copy validated earlier (WAL ship compares an archived
    /// segment's SHA-256), so it is not parsed record by record again.</summary>
    internal static WalSegmentInfo Inspect(string path, string @namespace, long segmentId, bool headerOnly)
    {
        string full = Path.GetFullPath(path);
        SegmentAnalysis a;
        long length;
        try
        {
            using SafeFileHandle handle = OpenHandle(full);
            length = RandomAccess.GetLength(handle);
            a = Analyze(handle, length, headerOnly);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException && ex is not FileNotFoundException and not DirectoryNotFoundException)
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
                Error = $"The segment could not be read: {ex.Message}",
                ErrorOffset = 0,
            };
        }

        WalHeader h = a.Header;
        return new WalSegmentInfo
        {
            Namespace = @namespace,
            SegmentId = segmentId,
            Path = full,
            Sealed = a.HeaderReadable && h.IsSealed,
            CreatedAt = a.HeaderReadable ? WalFormat.FromUnixNanoseconds(h.CreatedAtNs) : DateTimeOffset.UnixEpoch,
            LastModifiedAt = a.HeaderReadable && h.LastModifiedAtNs != 0 ? WalFormat.FromUnixNanoseconds(h.LastModifiedAtNs) : null,
            FirstLogIndex = a.HeaderReadable ? h.FirstLogIndex : 0,
            EntryCount = a.Count,
            Bytes = length,
            ValidBytes = a.ValidEnd,
            Valid = a.Error is null || a.TornTail,
            Error = a.Error,
            ErrorOffset = a.ErrorOffset,
            TornTail = a.TornTail,
        };
    }

    /// <summary>The records of the segment's valid prefix, in order. A header that cannot be
    /// trusted (no first log index to number the records by) is an IntegrityException.</summary>
    public static IEnumerable<WalRecord> ReadRecords(string path)
    {
        string full = Path.GetFullPath(path);
        SafeFileHandle handle = OpenHandle(full);
        return ReadRecords(full, handle);
    }

    private static IEnumerable<WalRecord> ReadRecords(string path, SafeFileHandle handle)
    {
        using (handle)
        {
            long length = RandomAccess.GetLength(handle);
            using var window = new FileWindow(handle, length, WindowSize);
            (WalHeader header, string? error, long errorOffset) = ReadHeader(window);
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
                RecordCheck check = CheckRecord(window, offset, limit, limitName);
                if (check.Status != RecordStatus.Valid)
                {
                    yield break;
                }
                byte[] data = new byte[check.Length];
                if (!window.TryCopy(offset + WalFormat.RecordHeaderSize, data))
                {
                    yield break;
                }
                yield return new WalRecord(header.FirstLogIndex + ordinal, offset, data);
                ordinal++;
                offset = check.Next;
            }
        }
    }

    private static SafeFileHandle OpenHandle(string path)
    {
        try
        {
            return File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, FileOptions.SequentialScan);
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
        public long Count;
        public long ValidEnd = WalFormat.HeaderSize;
        public string? Error;
        public long? ErrorOffset;
        public bool TornTail;

        public void Fail(string error, long offset)
        {
            Error ??= error;
            ErrorOffset ??= offset;
        }
    }

    internal static SegmentAnalysis Analyze(SafeFileHandle handle, long length, bool headerOnly = false)
    {
        var a = new SegmentAnalysis();
        using var window = new FileWindow(handle, length, headerOnly ? WalFormat.HeaderSize : WindowSize);
        if (length < WalFormat.HeaderSize)
        {
            a.ValidEnd = 0;
            a.Fail($"The file is {length} bytes, shorter than the {WalFormat.HeaderSize}-byte segment header: it is truncated", length);
            return a;
        }
        (a.Header, string? headerError, long headerErrorOffset) = ReadHeader(window);
        a.HeaderReadable = true;
        if (headerError is not null)
        {
            a.Fail(headerError, headerErrorOffset);
            return a;
        }
        if (headerOnly)
        {
            a.Count = a.Header.IsSealed ? a.Header.EntryCount : 0;
            a.ValidEnd = a.Header.IsSealed ? a.Header.WriteOffset : WalFormat.HeaderSize;
        }
        else if (a.Header.IsSealed)
        {
            AnalyzeSealed(handle, window, length, a);
        }
        else
        {
            AnalyzeActive(window, length, a);
        }
        return a;
    }

    private static (WalHeader Header, string? Error, long Offset) ReadHeader(FileWindow window)
    {
        if (!window.TryGet(0, WalFormat.HeaderSize, out ReadOnlySpan<byte> bytes))
        {
            return (default, $"The file is {window.Length} bytes, shorter than the {WalFormat.HeaderSize}-byte segment header: it is truncated", window.Length);
        }
        WalHeader h = WalHeader.Decode(bytes);
        uint crc = Crc32C.Compute(bytes[..56]);
        if (h.Magic != WalFormat.Magic)
        {
            return (h, $"Bad magic 0x{h.Magic:X8} at offset 0 (expected 0x{WalFormat.Magic:X8} \"UWAL\"): not a walfs segment", 0);
        }
        if (h.Version != WalFormat.Version)
        {
            return (h, $"Unsupported segment version {h.Version} at offset 4 (expected {WalFormat.Version})", 4);
        }
        if (h.Crc != crc)
        {
            return (h, $"Header CRC mismatch at offset 56 (stored 0x{h.Crc:X8}, computed 0x{crc:X8}): the header is damaged", 56);
        }
        const uint known = WalFormat.FlagActive | WalFormat.FlagSealed;
        if ((h.Flags & ~known) != 0 || (h.Flags != WalFormat.FlagActive && h.Flags != WalFormat.FlagSealed))
        {
            return (h, $"Invalid header flags 0x{h.Flags:X8} at offset 40 (expected Active=0x8 or Sealed=0x2)", 40);
        }
        return (h, null, 0);
    }

    /// <summary>An active segment is scanned until the first record that is not valid: zero fill
    /// is its clean end, anything else is a torn tail (not an error for an active segment).</summary>
    private static void AnalyzeActive(FileWindow window, long length, SegmentAnalysis a)
    {
        long offset = WalFormat.HeaderSize;
        while (true)
        {
            RecordCheck check = CheckRecord(window, offset, length, "the end of the file");
            if (check.Status == RecordStatus.Valid)
            {
                a.Count++;
                offset = check.Next;
                continue;
            }
            if (check.Status is RecordStatus.ZeroHeader or RecordStatus.NoRoom)
            {
                long nonZero = window.FindNonZero(offset, length);
                if (nonZero >= 0)
                {
                    a.TornTail = true;
                    a.Fail($"Torn tail: the record at offset {offset} is incomplete (zero record header, but non-zero bytes at offset {nonZero})", offset);
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
    }

    private static void AnalyzeSealed(SafeFileHandle handle, FileWindow window, long length, SegmentAnalysis a)
    {
        WalHeader h = a.Header;
        long wo = h.WriteOffset;
        long scanLimit = length;
        string limitName = "the end of the file";
        bool writeOffsetUsable = false;
        long entryCount = 0; // footer index entries, once the footer checked out
        bool footerOk = false;

        if (wo < WalFormat.HeaderSize || wo % WalFormat.Alignment != 0 || wo > WalFormat.MaxSegmentSize)
        {
            a.Fail($"Invalid write offset {wo} in the header at offset 24 (records end at an 8-byte aligned offset of at least {WalFormat.HeaderSize})", 24);
        }
        else if (wo + WalFormat.FooterHeadSize > length)
        {
            scanLimit = Math.Min(wo, length);
            a.Fail($"The file ends at offset {length}, before the end of the footer head at {wo + WalFormat.FooterHeadSize}: the sealed segment is truncated", length);
        }
        else
        {
            writeOffsetUsable = true;
            scanLimit = wo;
            limitName = "the header's write offset";
            (footerOk, entryCount) = CheckFooter(window, length, h, a);
        }

        // Records: every one valid, ending exactly at the write offset, the footer index pointing at them.
        using var entries = new FileWindow(handle, length, 4096);
        long nextEntry = 0;
        long entryOrdinal = -1, entryOffset = -1;
        void LoadEntry()
        {
            entryOrdinal = -1;
            if (footerOk && nextEntry < entryCount &&
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
            RecordCheck check = CheckRecord(window, offset, scanLimit, limitName);
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

        if (footerOk && recordsOk)
        {
            if (ordinal != h.EntryCount)
            {
                a.Fail($"The header's EntryCount (offset 32) is {h.EntryCount} but the records up to the write offset {wo} number {ordinal}", 32);
            }
            else if (nextEntry != entryCount)
            {
                long at = wo + WalFormat.FooterHeadSize + nextEntry * WalFormat.FooterEntrySize;
                a.Fail($"Footer index entry {nextEntry} at offset {at} points past the last record", at);
            }
        }
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
        if (version != WalFormat.FooterVersion)
        {
            a.Fail($"Unsupported footer version {version} at offset {wo + 24} (expected {WalFormat.FooterVersion})", wo + 24);
            return (false, 0);
        }
        if (h.EntryCount < 0 || count != (ulong)h.EntryCount)
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

    /// <summary>Validates the record at <paramref name="offset"/>: its length bounded by
    /// <paramref name="limit"/> before anything is read, its trailer, its CRC and its padding.</summary>
    internal static RecordCheck CheckRecord(FileWindow window, long offset, long limit, string limitName)
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
        // header points into the window, which the trailer read above may have refilled.
        Span<byte> lengthBytes = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(lengthBytes, length);
        uint state = Crc32C.Update(Crc32C.InitialState, lengthBytes);
        if (!window.TryUpdateCrc(offset + WalFormat.RecordHeaderSize, length, ref state))
        {
            return new RecordCheck(RecordStatus.Invalid, 0, offset, "its data could not be read");
        }
        uint computed = Crc32C.Finish(state);
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
}

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
        List<(long Id, string Path)> ids = ListSegmentFiles(dir);
        var segments = new List<WalSegmentInfo>(ids.Count);
        foreach ((long id, string path) in ids)
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
            inspected?.Invoke(segments.Count, ids.Count, info);
        }
        var (missing, errors) = CheckContinuity(segments);
        return new WalDirectoryReport(dir, segments, missing, errors);
    }

    /// <summary>The files named like segments (^\d{9}\.wal$), sorted by id; nothing is read.</summary>
    public static List<(long Id, string Path)> ListSegmentFiles(string walDirectory)
    {
        string dir = Path.GetFullPath(walDirectory);
        if (!Directory.Exists(dir))
        {
            throw new NotFoundException("WalDirectoryNotFound", $"The WAL directory '{dir}' does not exist. Check the data directory and namespace.", dir);
        }
        var ids = new List<(long Id, string Path)>();
        foreach (string file in Directory.EnumerateFiles(dir))
        {
            if (WalFormat.TryParseSegmentFileName(Path.GetFileName(file), out long id))
            {
                ids.Add((id, file));
            }
        }
        ids.Sort((x, y) => x.Id.CompareTo(y.Id));
        return ids;
    }

    /// <summary>Missing ids between the lowest and highest present, and every other continuity
    /// fault: a log-index discontinuity between neighbours, an unsealed segment that is not the
    /// newest, a segment that failed validation. <paramref name="segments"/> is sorted by id.</summary>
    internal static (IReadOnlyList<long> Missing, IReadOnlyList<string> Errors) CheckContinuity(IReadOnlyList<WalSegmentInfo> segments)
    {
        var missing = new List<long>();
        var errors = new List<string>();
        for (int i = 0; i < segments.Count; i++)
        {
            WalSegmentInfo s = segments[i];
            bool newest = i == segments.Count - 1;
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
            long expected = p.FirstLogIndex + p.EntryCount;
            if (s.FirstLogIndex != expected)
            {
                errors.Add(s.FirstLogIndex > expected
                    ? $"Log index gap between segments {p.SegmentId} and {s.SegmentId}: segment {s.SegmentId} starts at log index {s.FirstLogIndex}, expected {expected} (segment {p.SegmentId} holds {p.FirstLogIndex}..{expected - 1}); log indexes {expected}..{s.FirstLogIndex - 1} are missing."
                    : $"Log index overlap between segments {p.SegmentId} and {s.SegmentId}: segment {s.SegmentId} starts at log index {s.FirstLogIndex}, expected {expected} (segment {p.SegmentId} holds {p.FirstLogIndex}..{expected - 1}).");
            }
        }
        return (missing, errors);
    }

    private static bool IsUnassigned(WalSegmentInfo s) => s.EntryCount == 0 && s.FirstLogIndex == 0;

    private static string FormatIds(long from, long to) =>
        from == to ? $"id {from} is" : to - from < 20 ? $"ids {string.Join(", ", Enumerable.Range(0, (int)(to - from + 1)).Select(k => from + k))} are" : $"ids {from}..{to} are";
}
