using PSBackup.Engine.Wal;

namespace PSBackup.Engine.Restore;

/// <summary>Cuts a segment after an exact record (<c>-TargetLogIndex</c>): the records up to it are
/// written back as a valid, unsealed walfs segment with the same first log index and creation
/// time, the form the database opens as its active segment and scans on start.</summary>
public static class WalCutter
{
    /// <summary>Writes <paramref name="destinationPath"/> (must not exist) holding the records of
    /// <paramref name="sourcePath"/> from its first through <paramref name="lastLogIndex"/>, then
    /// validates it. The file keeps the source's size when the records fit (preallocated, as the
    /// database writes them), else the default 16 MiB. On failure nothing is left at the destination.</summary>
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
                $"Segment {segmentId} holds log indexes {source.FirstLogIndex}..{source.FirstLogIndex + source.EntryCount - 1}; it cannot be cut after {lastLogIndex}.",
                sourcePath);
        }
        long keep = lastLogIndex - source.FirstLogIndex + 1;
        // The records keep their offsets, so the source's size fits them whenever its whole valid
        // prefix fits before the footer reserve (always, for a segment the database preallocated).
        long size = source.Bytes >= WalSegmentWriter.MinimumFileSize && source.Bytes <= WalFormat.MaxSegmentSize && WalFormat.RecordLimit(source.Bytes) >= source.ValidBytes
            ? source.Bytes
            : Math.Max(WalFormat.DefaultSegmentSize, source.ValidBytes * 2);

        bool created = false;
        try
        {
            long written = 0;
            using (WalSegmentWriter writer = WalSegmentWriter.Create(destinationPath, source.FirstLogIndex, source.CreatedAt, size))
            {
                created = true;
                foreach (WalRecord record in WalSegmentReader.ReadRecords(sourcePath))
                {
                    if (record.LogIndex > lastLogIndex)
                    {
                        break;
                    }
                    writer.Append(record.Data);
                    written++;
                }
                writer.Sync();
            }
            if (written != keep)
            {
                throw new IntegrityException("WalSegmentCorrupt",
                    $"Segment {segmentId} ('{sourcePath}') yielded {written} records up to log index {lastLogIndex}, expected {keep}; it changed while it was cut.", sourcePath);
            }
            WalSegmentInfo cut = WalSegmentReader.Inspect(destinationPath, @namespace, segmentId);
            if (!cut.Valid || cut.Sealed || cut.TornTail || cut.FirstLogIndex != source.FirstLogIndex || cut.EntryCount != keep)
            {
                throw new IntegrityException("WalCutVerifyFailed",
                    $"The cut of segment {segmentId} after log index {lastLogIndex} does not read back as an active segment of {keep} records from {source.FirstLogIndex} ({cut.Error ?? $"{cut.EntryCount} records, sealed={cut.Sealed}"}). Check the disk, then run again.",
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
}
