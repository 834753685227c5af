using PSBackup.Engine.Wal;

namespace PSBackup.Engine.Restore;

/// <summary>Cuts a segment after an exact record (<c>-TargetLogIndex</c>, or the last record at or
/// before <c>-TargetTime</c>): the records up to it are written back as a valid, unsealed walfs
/// segment of the source's version, with the same first log index, creation time, mode marker,
/// size and record offsets: the form the database opens as its active segment and scans on start.</summary>
public static class WalCutter
{
    /// <summary>Writes <paramref name="destinationPath"/> (must not exist) holding the records of
    /// <paramref name="sourcePath"/> from its first through the one whose log index is
    /// <paramref name="lastLogIndex"/> (the payload's own when UnisonDB wrote it), then validates
    /// it. On failure nothing is left at the destination.</summary>
    public static WalSegmentInfo Cut(string sourcePath, string destinationPath, long lastLogIndex, string @namespace, long segmentId)
    {
        WalSegmentInfo source = WalSegmentReader.Inspect(sourcePath, @namespace, segmentId);
        if (!source.Valid)
        {
            throw new IntegrityException("WalSegmentCorrupt",
                $"Segment {segmentId} ('{sourcePath}') cannot be cut: {source.Error} (offset {source.ErrorOffset}).", sourcePath);
        }
        if (source.EntryCount == 0 || lastLogIndex < source.FirstLogIndex || lastLogIndex > source.LastLogIndex)
        {
            throw new InvalidInputException("CutOutsideSegment",
                $"Segment {segmentId} holds log indexes {source.FirstLogIndex}..{source.LastLogIndex}; it cannot be cut after {lastLogIndex}.",
                sourcePath);
        }
        int version = source.Version is 1 or 2 ? source.Version : 2;
        uint marker = source.Mode switch { "standalone" => WalFormat.MarkerStandalone, "raft" => WalFormat.MarkerRaft, _ => 0 };
        // The records keep their offsets, so the source's size fits them (v2: when its whole valid
        // prefix fits before the footer reserve, always for a segment the database preallocated).
        bool fits = source.Bytes >= WalSegmentWriter.MinimumFileSize && source.Bytes <= WalFormat.MaxSegmentSize &&
            (version == 1 || WalFormat.RecordLimit(source.Bytes) >= source.ValidBytes);
        long size = fits ? source.Bytes : Math.Max(WalFormat.DefaultSegmentSize, source.ValidBytes * 2);

        bool created = false;
        try
        {
            long written = 0;
            long lastWritten = -1;
            using (WalSegmentWriter writer = WalSegmentWriter.Create(destinationPath, source.FirstLogIndex, source.CreatedAt, size, version, marker))
            {
                created = true;
                foreach (WalRecord record in WalSegmentReader.ReadRecords(sourcePath))
                {
                    if (record.LogIndex > lastLogIndex)
                    {
                        break;
                    }
                    writer.Append(record.Data, record.LogIndex);
                    written++;
                    lastWritten = record.LogIndex;
                }
                writer.Sync();
            }
            // UnisonDB may have consumed the target index (a failed append): the cut then ends at
            // the last record before it, which is every record at or before the target.
            if (lastWritten < 0 || (lastWritten != lastLogIndex && source.PayloadFormat == WalPayloadFormat.Opaque))
            {
                throw new IntegrityException("WalSegmentCorrupt",
                    $"Segment {segmentId} ('{sourcePath}') has no record with log index {lastLogIndex} (the last one at or before it is {lastWritten}); it changed while it was cut.", sourcePath);
            }
            WalSegmentInfo cut = WalSegmentReader.Inspect(destinationPath, @namespace, segmentId);
            if (!cut.Valid || cut.Sealed || cut.TornTail || cut.FirstLogIndex != source.FirstLogIndex || cut.EntryCount != written || cut.LastLogIndex != lastWritten)
            {
                throw new IntegrityException("WalCutVerifyFailed",
                    $"The cut of segment {segmentId} after log index {lastLogIndex} does not read back as an active segment of {written} records from {source.FirstLogIndex} ({cut.Error ?? $"{cut.EntryCount} records, sealed={cut.Sealed}"}). Check the disk, then run again.",
                    destinationPath);
            }
            return cut;
        }
        catch
        {
            if (created)
            {
                Durable.TryDelete(destinationPath);
            }
            throw;
        }
    }

    /// <summary>Creates an empty active segment <paramref name="path"/> of the given version, size
    /// and mode marker: what walfs creates when it rotates. A restored WAL that ends on a sealed
    /// segment needs one after it, since walfs refuses to write into a sealed newest segment.</summary>
    public static WalSegmentInfo CreateEmptyActive(string path, int version, long size, uint customMarker, DateTimeOffset createdAt, string @namespace, long segmentId)
    {
        using (WalSegmentWriter writer = WalSegmentWriter.Create(path, 0, createdAt, size, version is 1 or 2 ? version : 2, customMarker))
        {
            writer.Sync();
        }
        return WalSegmentReader.Inspect(path, @namespace, segmentId);
    }
}
