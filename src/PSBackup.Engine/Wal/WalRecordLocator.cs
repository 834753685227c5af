using Microsoft.Win32.SafeHandles;

namespace PSBackup.Engine.Wal;

/// <summary>The record at a WAL position (UnisonDB's <c>RecordPosition{SegmentID, Offset}</c>, the
/// form its store checkpoint takes): what it says about itself.</summary>
public sealed record WalRecordAt
{
    public required long SegmentId { get; init; }
    /// <summary>Offset of the record's CRC field in its segment.</summary>
    public required long Offset { get; init; }
    /// <summary>The record's log index: the payload's own (LogRecord lsn, raft index), else the
    /// segment header's first index + the record's ordinal.</summary>
    public required long LogIndex { get; init; }
    /// <summary>The record's own time (HLC, Unix ms); null for payloads without one.</summary>
    public DateTimeOffset? Time { get; init; }
    /// <summary>Data bytes of the record.</summary>
    public required int Length { get; init; }
    /// <summary>Where the next record would start (8-byte aligned).</summary>
    public required long NextOffset { get; init; }
    /// <summary>Ordinal of the record in its segment (0 = first).</summary>
    public required long Ordinal { get; init; }
    public required WalPayloadFormat PayloadFormat { get; init; }
    /// <summary>The segment file read.</summary>
    public required string SegmentPath { get; init; }
    /// <summary>The record is the last one of a sealed segment.</summary>
    public required bool LastInSealedSegment { get; init; }
}

/// <summary>Reads the record at a (segment id, offset) position, in a WAL folder or in one segment
/// file (a live WAL, a restored one, or an archived copy).</summary>
public static class WalRecordLocator
{
    /// <summary>The record at <paramref name="offset"/> of segment <paramref name="segmentId"/> in
    /// <paramref name="walDirectory"/> (named <c>%09d.seg</c> or <c>%09d.wal</c>).</summary>
    public static WalRecordAt ReadRecordAt(string walDirectory, long segmentId, long offset)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(segmentId);
        WalDirectoryListing listing = WalDirectory.List(walDirectory);
        string? path = listing.Segments.Where(s => s.Id == segmentId).Select(s => s.Path).FirstOrDefault();
        if (path is null)
        {
            throw new NotFoundException("WalSegmentNotFound",
                $"Segment {segmentId} is not in '{listing.WalDirectory}' (looked for {WalFormat.SegmentFileName(segmentId, WalFormat.SegExtension)} and {WalFormat.SegmentFileName(segmentId, WalFormat.WalExtension)}); the WAL position {segmentId}:{offset} cannot be read. Restore or recover that segment.",
                Path.Combine(listing.WalDirectory, WalFormat.SegmentFileName(segmentId, listing.Extension ?? WalFormat.SegExtension)));
        }
        return ReadRecordAtPath(path, segmentId, offset);
    }

    /// <summary>The record at <paramref name="offset"/> of the segment file <paramref name="segmentPath"/>.
    /// The offset must be a record boundary (found by walking the record frames from the first
    /// record) and the record must be whole (CRC, trailer); else a typed error naming why.</summary>
    public static WalRecordAt ReadRecordAtPath(string segmentPath, long segmentId, long offset)
    {
        string full = Path.GetFullPath(segmentPath);
        if (offset < WalFormat.HeaderSize || offset % WalFormat.Alignment != 0)
        {
            throw new InvalidInputException("InvalidWalPosition",
                $"WAL position {segmentId}:{offset} is not a record start: records begin at offset {WalFormat.HeaderSize} or later, at multiples of {WalFormat.Alignment}.",
                $"{segmentId}:{offset}");
        }
        using SafeFileHandle handle = WalSegmentReader.OpenHandle(full);
        long length = RandomAccess.GetLength(handle);
        // One pass: frames are walked (lengths, trailers) and payloads sampled up to the wanted
        // record, whose CRC is checked in full.
        WalSegmentReader.SegmentAnalysis a = WalSegmentReader.Analyze(handle, length, headerOnly: false, sidecarPath: null, light: true, stopAt: offset);
        if (!a.HeaderReadable || (a.Error is not null && !a.TornTail && a.StopRecord is null))
        {
            throw new IntegrityException("WalSegmentCorrupt", $"Segment {segmentId} ('{full}') cannot be read at {segmentId}:{offset}: {a.Error} (offset {a.ErrorOffset}).", full);
        }
        if (a.StopRecord is not { } found)
        {
            throw new NotFoundException("WalRecordNotFound",
                a.StopPassed
                    ? $"WAL position {segmentId}:{offset} is not a record start in '{full}': a record spans it. The position does not belong to this segment's records (a different WAL, or the segment was rewritten)."
                    : $"Segment {segmentId} ('{full}') holds no record at offset {offset}: its records end at offset {a.ValidEnd}. The position is past this copy's last record.",
                $"{segmentId}:{offset}");
        }
        return new WalRecordAt
        {
            SegmentId = segmentId,
            Offset = offset,
            LogIndex = found.LogIndex,
            Time = found.Time,
            Length = found.Length,
            NextOffset = found.Next,
            Ordinal = found.Ordinal,
            PayloadFormat = a.Payload,
            SegmentPath = full,
            LastInSealedSegment = a.Header.IsSealed && found.Next >= a.Header.WriteOffset,
        };
    }
}
