namespace PSBackup.Engine.Wal;

/// <summary>What Get-WalSegment reports for one segment file (SPEC §2, appendix A).</summary>
public sealed record WalSegmentInfo
{
    public required string Namespace { get; init; }
    public required long SegmentId { get; init; }
    public required string Path { get; init; }
    public required bool Sealed { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    /// <summary>Header LastModifiedAt (stamped at seal); null when zero.</summary>
    public DateTimeOffset? LastModifiedAt { get; init; }
    public required long FirstLogIndex { get; init; }
    /// <summary>Valid records found (sealed: the footer's count, checked against a scan).</summary>
    public required long EntryCount { get; init; }
    /// <summary>Log index of the last valid record, or null when the segment has none.</summary>
    public long? LastLogIndex => EntryCount > 0 ? FirstLogIndex + EntryCount - 1 : null;
    /// <summary>File size on disk.</summary>
    public required long Bytes { get; init; }
    /// <summary>End offset of the last valid record (the valid prefix).</summary>
    public required long ValidBytes { get; init; }
    public required bool Valid { get; init; }
    /// <summary>Why the segment is not valid, with the byte offset; null when valid.</summary>
    public string? Error { get; init; }
    public long? ErrorOffset { get; init; }
    /// <summary>An active segment whose scan stopped at a torn (partly written) record rather
    /// than at zero fill. Not an error for an active segment.</summary>
    public bool TornTail { get; init; }
}

/// <summary>A directory of segments, with continuity checked (ids and log indexes).</summary>
public sealed record WalDirectoryReport(
    string WalDirectory,
    IReadOnlyList<WalSegmentInfo> Segments,
    IReadOnlyList<long> MissingSegmentIds,
    IReadOnlyList<string> ContinuityErrors)
{
    public bool HasGap => MissingSegmentIds.Count > 0 || ContinuityErrors.Count > 0;
}

public sealed record GetWalSegmentOptions(string DataDir, string Namespace)
{
    /// <summary>Only this segment, when set.</summary>
    public long? SegmentId { get; init; }
}

public sealed record InvokeWalShipOptions(string DataDir, string Namespace, string BackupDir)
{
    /// <summary>Only sealed segments with a greater id are shipped; 0 ships all.</summary>
    public long AfterSegmentId { get; init; }
}

/// <summary>One shipped segment; the seed's response item <c>{segmentId, path}</c> plus size and hash.</summary>
public sealed record ShippedSegment(string Namespace, long SegmentId, string Path, long Bytes, string Sha256, bool AlreadyPresent);

public sealed record WalShipResult(string Namespace, string BackupDir, IReadOnlyList<ShippedSegment> Backups);
