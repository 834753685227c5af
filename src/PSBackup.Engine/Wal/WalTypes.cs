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

public sealed record InvokeWalShipOptions(string DataDir, string Namespace, string? BackupDir)
{
    /// <summary>Only sealed segments with a greater id are shipped; 0 ships all.</summary>
    public long AfterSegmentId { get; init; }
    /// <summary>Ship to this repository (then <see cref="BackupDir"/> is not used): every sealed
    /// segment it does not hold yet, no state file.</summary>
    public Repository.RepositoryTarget? Repository { get; init; }
    /// <summary>UnisonDB's HTTP API: the server copies its sealed segments (<c>POST /wal/backup</c>)
    /// and PSBackup verifies and archives them.</summary>
    public Uri? Endpoint { get; init; }
    /// <summary>How long to wait for the endpoint; null means 30 minutes.</summary>
    public TimeSpan? EndpointTimeout { get; init; }
}

/// <summary>One shipped segment; the seed's response item <c>{segmentId, path}</c> plus size and
/// hash. In a repository, <see cref="Path"/> is the ref <c>wal/&lt;ns&gt;/&lt;segmentId:D9&gt;</c>.</summary>
public sealed record ShippedSegment(string Namespace, long SegmentId, string Path, long Bytes, string Sha256, bool AlreadyPresent)
{
    /// <summary>The repository shipped to; null when shipped to a local folder.</summary>
    public string? Repository { get; init; }
    /// <summary>The segment's manifest id in the repository; null when shipped to a local folder.</summary>
    public string? BackupId { get; init; }
    /// <summary>Bytes this segment added to the repository (null when already present or local).</summary>
    public long? StoredBytes { get; init; }
}

/// <summary>What one ship did. <see cref="BackupDir"/> is the local destination folder (null when
/// shipping to a repository).</summary>
public sealed record WalShipResult(string Namespace, string? BackupDir, IReadOnlyList<ShippedSegment> Backups)
{
    public string? Repository { get; init; }
}
