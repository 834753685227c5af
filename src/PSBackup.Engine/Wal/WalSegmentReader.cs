namespace PSBackup.Engine.Wal;

/// <summary>One record of a segment's valid prefix.</summary>
public sealed record WalRecord(long LogIndex, long Offset, byte[] Data);

/// <summary>Reads and validates walfs v2 segments.</summary>
public static class WalSegmentReader
{
    /// <summary>Validates a segment fully. Corruption is reported in the result (Valid=false,
    /// Error, ErrorOffset), never thrown; a missing file is a NotFoundException.</summary>
    public static WalSegmentInfo Inspect(string path, string @namespace) => throw new NotImplementedException();

    /// <summary>The records of the segment's valid prefix, in order.</summary>
    public static IEnumerable<WalRecord> ReadRecords(string path) => throw new NotImplementedException();
}

/// <summary>Scans a WAL directory and checks id and log-index continuity.</summary>
public static class WalDirectory
{
    public static WalDirectoryReport Scan(string walDirectory, string @namespace) => throw new NotImplementedException();
}
