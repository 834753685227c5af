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
    /// <summary>Log index of the first record: its payload's own (UnisonDB LogRecord lsn or raft
    /// index) when the payloads decode, else the header's FirstLogIndex.</summary>
    public required long FirstLogIndex { get; init; }
    /// <summary>Valid records found (sealed: the header's count, checked against a scan).</summary>
    public required long EntryCount { get; init; }
    private readonly long? _lastLogIndex;
    private readonly bool _lastSet;
    /// <summary>Log index of the last valid record (the payload's own when decoded, else
    /// FirstLogIndex + EntryCount - 1), or null when the segment has none.</summary>
    public long? LastLogIndex
    {
        get => _lastSet ? _lastLogIndex : EntryCount > 0 ? FirstLogIndex + EntryCount - 1 : null;
        init
        {
            _lastLogIndex = value;
            _lastSet = true;
        }
    }
    /// <summary>The first record's own time (UnisonDB HLC, Unix ms; raft: the wrapped record's HLC
    /// or the append time); null when the payloads carry none.</summary>
    public DateTimeOffset? FirstRecordTime { get; init; }
    /// <summary>The last valid record's own time; null when the payloads carry none.</summary>
    public DateTimeOffset? LastRecordTime { get; init; }
    /// <summary>Byte offset of the last valid record (its CRC field); null when there is none.</summary>
    public long? LastRecordOffset { get; init; }
    /// <summary>walfs format version from the header: 1 (no footer, optional .seg.idx sidecar) or 2 (footer).</summary>
    public int Version { get; init; }
    /// <summary>The header CRC's polynomial: Castagnoli (CRC-32C) or Ieee (walfs before May 2025).</summary>
    public WalCrcKind? HeaderCrc { get; init; }
    /// <summary>UnisonDB's mode marker in the header: "standalone", "raft", or null when unset.</summary>
    public string? Mode { get; init; }
    /// <summary>How record payloads were read: LogRecord, Raft, or Opaque (not decoded).</summary>
    public WalPayloadFormat PayloadFormat { get; init; }
    /// <summary>Log indexes UnisonDB skipped inside this segment (a failed append consumes one): warnings, not gaps.</summary>
    public IReadOnlyList<WalLogIndexGap> LogIndexGaps { get; init; } = [];
    /// <summary>The v1 sparse-index sidecar's file name when one is present (checked for a sealed segment).</summary>
    public string? Sidecar { get; init; }
    /// <summary>Things worth knowing that are not faults (an IEEE header CRC, truncation leftovers).</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];
    /// <summary>The segment's file name ("000000043.seg" or "000000043.wal").</summary>
    public string FileName => System.IO.Path.GetFileName(Path);
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

/// <summary>A log index UnisonDB consumed without writing a record (a failed append), seen inside
/// one segment: the record at <see cref="Offset"/> has <see cref="Next"/>, the one before it <see cref="After"/>.</summary>
public sealed record WalLogIndexGap(long SegmentId, long Offset, long After, long Next)
{
    public string Describe() =>
        $"Log index discontinuity in segment {SegmentId} at offset {Offset}: log index {Next} follows {After}; {WalDirectory.FormatRange(After + 1, Next - 1)} never written (UnisonDB consumes a log index when an append fails). No record is missing.";
}

/// <summary>A directory of segments, with continuity checked (ids and log indexes).</summary>
public sealed record WalDirectoryReport(
    string WalDirectory,
    IReadOnlyList<WalSegmentInfo> Segments,
    IReadOnlyList<long> MissingSegmentIds,
    IReadOnlyList<string> ContinuityErrors)
{
    public bool HasGap => MissingSegmentIds.Count > 0 || ContinuityErrors.Count > 0;
    /// <summary>The folder's segment naming: ".seg" (UnisonDB), ".wal" (the seed's), or null when it holds none.</summary>
    public string? Naming { get; init; }
    /// <summary>Files in the folder that are neither segments nor their <c>.seg.idx</c> sidecars.</summary>
    public IReadOnlyList<string> OtherFiles { get; init; } = [];
    /// <summary>Log-index discontinuities UnisonDB produces on a failed append (not gaps), with the exact indexes.</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];
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
    /// <summary>Ship only sealed segments (the seed's behaviour): no partial of the active segment.</summary>
    public bool SealedOnly { get; init; }
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
    /// <summary>A partial: the valid prefix of the active segment (not sealed), superseded by a
    /// later partial or by the sealed segment.</summary>
    public bool Partial { get; init; }
    /// <summary>A partial's observation time: every record it holds was in the live WAL by then.</summary>
    public DateTimeOffset? ObservedAt { get; init; }
    /// <summary>Records the shipped file holds (a partial: its valid prefix).</summary>
    public long? EntryCount { get; init; }
    /// <summary>Log index of the last record shipped in this file.</summary>
    public long? LastLogIndex { get; init; }
    /// <summary>The last record's own time (UnisonDB HLC), when the payloads carry one.</summary>
    public DateTimeOffset? LastRecordTime { get; init; }
}

/// <summary>What one ship did. <see cref="BackupDir"/> is the local destination folder (null when
/// shipping to a repository).</summary>
public sealed record WalShipResult(string Namespace, string? BackupDir, IReadOnlyList<ShippedSegment> Backups)
{
    public string? Repository { get; init; }
}
