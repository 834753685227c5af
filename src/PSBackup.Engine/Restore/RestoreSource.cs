namespace PSBackup.Engine.Restore;

/// <summary>A store snapshot a restore can start from, as its source lists it.</summary>
public sealed record RestorableSnapshot
{
    /// <summary>The source's name for it: for a local backup root the snapshot's path relative to
    /// <c>&lt;dataDir&gt;/backups/&lt;ns&gt;</c> ('/'-separated), the <c>-Path</c> it was created with.</summary>
    public required string Id { get; init; }
    /// <summary>When the snapshot began (its WAL position was read then).</summary>
    public required DateTimeOffset CreatedAt { get; init; }
    /// <summary>When the snapshot's copy was complete: everything it contains was written before
    /// this instant. Point-in-time restore to T only starts from a snapshot completed at or
    /// before T. Null when the source cannot tell; such a snapshot never serves a time target.</summary>
    public DateTimeOffset? CompletedAt { get; init; }
    /// <summary>The WAL position recorded with the snapshot.</summary>
    public required WalPosition Wal { get; init; }
    /// <summary>The store engine (<see cref="Snapshots.StoreEngines"/>); null means files of <c>db/</c>.</summary>
    public string? Store { get; init; }
    /// <summary>The files of <c>db/</c> the snapshot holds (path relative to <c>db/</c>, size, SHA-256).</summary>
    public required IReadOnlyList<ManifestFile> Files { get; init; }
    /// <summary>Where it lives, for messages (a local path or a repository id).</summary>
    public required string Location { get; init; }

    public long Bytes => Files.Sum(f => f.Size);

    /// <summary>What Format-List shows for a nested snapshot (a plan's): its id, when it completed and
    /// the WAL position it covers, not the record's member dump.</summary>
    public override string ToString() => EmptyStore ? Id :
        $"{Id} ({(CompletedAt ?? CreatedAt).UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture)}, {Wal}, {Sizes.Format(Bytes)})";

    /// <summary>Not a stored snapshot: the empty store a UnisonDB namespace starts from when it has
    /// no <c>unison.db</c> (the engine creates one and replays its WAL from 0:0). The planner uses
    /// it when the source holds no snapshot but the archived WAL begins at the WAL's first segment;
    /// a restore from it lays out only <c>wal/</c>. Never read from a manifest.</summary>
    public bool EmptyStore { get; init; }

    /// <summary>The id an empty-store base shows in plans and messages.</summary>
    public const string EmptyStoreId = "(empty store)";
}

/// <summary>One archived WAL segment (or a partial prefix of the then-active segment), described
/// from its header and, for partials, from when the shipper observed it.</summary>
public sealed record ArchivedSegment
{
    public required long SegmentId { get; init; }
    /// <summary>The live segment's mode and owner (and time, when sealed) as the ship recorded them;
    /// the restore gives them back. Null when not recorded (older manifests, local archives).</summary>
    public FileMetadata? Metadata { get; init; }
    /// <summary>The header's sealed flag. A sealed segment is complete.</summary>
    public required bool Sealed { get; init; }
    public required long FirstLogIndex { get; init; }
    /// <summary>Records held (sealed: the header's count; unsealed: the valid prefix).</summary>
    public required long EntryCount { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    /// <summary>The header's LastModifiedAt, stamped when the segment was sealed; null if unsealed.</summary>
    public DateTimeOffset? SealedAt { get; init; }
    /// <summary>For an unsealed prefix: when the shipper saw these <see cref="EntryCount"/> records
    /// durable in the live WAL. Every one of them was written at or before this instant. Null
    /// when nobody recorded it (a local copy of an active segment): then the prefix proves nothing
    /// about time.</summary>
    public DateTimeOffset? ObservedAt { get; init; }
    /// <summary>File size in bytes.</summary>
    public required long Bytes { get; init; }
    /// <summary>The size to lay the segment out at when it is larger than the stored bytes: a
    /// repository partial stores only the valid prefix of a preallocated segment, and the restore
    /// zero-fills it back to the live segment's size, as walfs left it. Null: <see cref="Bytes"/>.</summary>
    public long? LayoutBytes { get; init; }
    /// <summary>SHA-256 of the stored bytes when the source records one (a repository does); the
    /// copy is checked against it. Null for a local archive, which is checked by structure.</summary>
    public string? Sha256 { get; init; }
    /// <summary>Where it lives, for messages and for the source to open it again.</summary>
    public required string Location { get; init; }

    private readonly long? _lastLogIndex;
    /// <summary>Log index of the last record, or FirstLogIndex - 1 when empty. The payload's own
    /// when the segment's payloads carry one (UnisonDB may skip an index inside a segment), else
    /// FirstLogIndex + EntryCount - 1.</summary>
    public long LastLogIndex
    {
        get => _lastLogIndex ?? FirstLogIndex + EntryCount - 1;
        init => _lastLogIndex = value;
    }
    /// <summary>The segment's file name as its source named it ("000000043.seg" or ".wal"); a
    /// restore lays it out under this name.</summary>
    public string? FileName { get; init; }
    /// <summary>walfs version (1 or 2; 0 when unknown).</summary>
    public int Version { get; init; }
    /// <summary>How the payloads read: with LogRecord or Raft, log indexes and times are the records' own.</summary>
    public Wal.WalPayloadFormat PayloadFormat { get; init; }
    /// <summary>The first and last record's own time (UnisonDB HLC); null for opaque payloads.</summary>
    public DateTimeOffset? FirstRecordTime { get; init; }
    public DateTimeOffset? LastRecordTime { get; init; }
    /// <summary>Records carry their own log index and time (UnisonDB payloads).</summary>
    public bool HasRecordTimes => PayloadFormat != Wal.WalPayloadFormat.Opaque && FirstRecordTime is not null && LastRecordTime is not null;

    /// <summary>0, or which rewrite of this sealed id by raft log truncation this copy is.</summary>
    public int Generation { get; init; }
    /// <summary>For a generation ≥ 1: when it became the live history (its first record written
    /// after the older generation's last); before it, the older generation was live.</summary>
    public DateTimeOffset? LiveFrom { get; init; }

    /// <summary>Log indexes UnisonDB consumed inside this segment without writing a record (failed
    /// appends), exactly; null when the source does not know them (opaque payloads, or a
    /// repository manifest from before they were recorded).</summary>
    public IReadOnlyList<Wal.WalLogIndexGap>? LogIndexGaps { get; init; }

    /// <summary>The name to lay the segment out under: its own, else "%09d.seg".</summary>
    public string LayoutFileName => FileName ?? Wal.WalFormat.SegmentFileName(SegmentId, Wal.WalFormat.SegExtension);
}

/// <summary>Where restores read from: the snapshots and archived WAL segments of one namespace.
/// The local backup root is one implementation (<see cref="LocalRestoreSource"/>); an off-host
/// repository is another, behind the same four calls. Implementations validate what they return
/// (names, manifests) as hostile input; the restore verifies every byte it copies.</summary>
public interface IRestoreSource
{
    /// <summary>The namespace this source holds backups of.</summary>
    string Namespace { get; }

    /// <summary>For messages: "backup root '/data/backups/users'".</summary>
    string Description { get; }

    /// <summary>Complete snapshots (those with a manifest) of the namespace, any order.</summary>
    Task<IReadOnlyList<RestorableSnapshot>> ListSnapshotsAsync(CancellationToken ct);

    /// <summary>Archived segments, any order; may hold several entries for one id (a sealed
    /// segment and partial prefixes of it).</summary>
    Task<IReadOnlyList<ArchivedSegment>> ListSegmentsAsync(CancellationToken ct);

    /// <summary>Opens one file of a snapshot (an entry of <see cref="RestorableSnapshot.Files"/>) for reading.</summary>
    Task<Stream> OpenSnapshotFileAsync(RestorableSnapshot snapshot, ManifestFile file, CancellationToken ct);

    /// <summary>Opens an archived segment for reading, as listed.</summary>
    Task<Stream> OpenSegmentAsync(ArchivedSegment segment, CancellationToken ct);

    /// <summary>True when every stream this source opens ends only after its bytes were checked
    /// against the listed size and SHA-256 (a failed check is the read's exception), so a copy
    /// need not hash them again.</summary>
    bool VerifiesContent => false;
}
