using System.Text.Json;
using System.Text.Json.Serialization;

namespace PSBackup.Engine.Repository;

/// <summary>What a backup in the repository holds. One name each in PowerShell (Object,
/// StoreSnapshot, WalSegment); the manifest's and the command line's names (object,
/// store-snapshot, wal-segment) convert to it too (<see cref="BackupKindTypeConverter"/>: -Kind
/// store-snapshot binds and <c>Where-Object Kind -eq 'store-snapshot'</c> matches), and
/// ConvertTo-Json writes the name, not a number.</summary>
[JsonConverter(typeof(BackupKindJsonConverter))]
[Newtonsoft.Json.JsonConverter(typeof(Newtonsoft.Json.Converters.StringEnumConverter))]
[System.ComponentModel.TypeConverter(typeof(BackupKindTypeConverter))]
public enum BackupKind
{
    /// <summary>"object": one object of the object store.</summary>
    Object,
    /// <summary>"store-snapshot": a B-tree store snapshot of a namespace.</summary>
    StoreSnapshot,
    /// <summary>"wal-segment": one WAL segment (or a partial prefix of one).</summary>
    WalSegment,
}

/// <summary>Text to <see cref="BackupKind"/> for PowerShell's conversions (parameter binding, -eq):
/// either spelling, any case.</summary>
public sealed class BackupKindTypeConverter : System.ComponentModel.EnumConverter
{
    public BackupKindTypeConverter()
        : base(typeof(BackupKind))
    {
    }

    public override object? ConvertFrom(System.ComponentModel.ITypeDescriptorContext? context, System.Globalization.CultureInfo? culture, object value) =>
        value is string s ? BackupKinds.Parse(s.Trim()) : base.ConvertFrom(context, culture, value);
}

internal sealed class BackupKindJsonConverter : JsonConverter<BackupKind>
{
    public static string ToName(BackupKind k) => k switch
    {
        BackupKind.Object => "object",
        BackupKind.StoreSnapshot => "store-snapshot",
        BackupKind.WalSegment => "wal-segment",
        _ => throw new ArgumentOutOfRangeException(nameof(k)),
    };

    public override BackupKind Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        reader.GetString() switch
        {
            "object" => BackupKind.Object,
            "store-snapshot" => BackupKind.StoreSnapshot,
            "wal-segment" => BackupKind.WalSegment,
            var s => throw new JsonException($"Unknown backup kind '{s}'."),
        };

    public override void Write(Utf8JsonWriter writer, BackupKind value, JsonSerializerOptions options) =>
        writer.WriteStringValue(ToName(value));
}

/// <summary>A WAL segment's facts, recorded in a wal-segment manifest.</summary>
public sealed record RepositorySegment
{
    public required long SegmentId { get; init; }
    public required long FirstLogIndex { get; init; }
    public required long EntryCount { get; init; }
    public required bool Sealed { get; init; }
    public DateTimeOffset? CreatedAt { get; init; }
    public DateTimeOffset? LastModifiedAt { get; init; }
    /// <summary>For a partial (prefix of the active segment): when the shipper observed it.</summary>
    public DateTimeOffset? ObservedAt { get; init; }
    /// <summary>The last record's log index when the payloads carry their own (may differ from
    /// FirstLogIndex + EntryCount - 1 where UnisonDB skipped an index); null in older manifests.</summary>
    public long? LastLogIndex { get; init; }
    /// <summary>The first and last record's own time (UnisonDB HLC); null for opaque payloads.</summary>
    public DateTimeOffset? FirstRecordTime { get; init; }
    public DateTimeOffset? LastRecordTime { get; init; }
    /// <summary>"LogRecord", "Raft" or "Opaque" (null in older manifests: opaque).</summary>
    public string? PayloadFormat { get; init; }
    /// <summary>walfs version (1 or 2); null in older manifests.</summary>
    public int? Version { get; init; }
    /// <summary>Raft log truncation rewrote this sealed segment id: the generation (1, 2, …; null = 0).</summary>
    public int? Generation { get; init; }
    /// <summary>For a generation ≥ 1: when it became the live history (its first record written after
    /// the previous generation's last). Point-in-time restore before it uses the older generation.</summary>
    public DateTimeOffset? LiveFrom { get; init; }
    /// <summary>For a partial: the size of the live segment file it is the valid prefix of (walfs
    /// preallocates segments); a restore lays the segment out at this size. Null for a sealed segment,
    /// whose stored file is the whole segment.</summary>
    public long? SegmentSize { get; init; }
    /// <summary>Log indexes UnisonDB consumed without writing a record inside this segment (a failed
    /// append), exactly; null in older manifests (then only their number is known: LastLogIndex -
    /// FirstLogIndex + 1 - EntryCount).</summary>
    public IReadOnlyList<Wal.WalLogIndexGap>? LogIndexGaps { get; init; }
}

/// <summary>The header of a backup: what it is and where it came from. Everything but the file list.</summary>
public sealed record BackupInfo
{
    public required BackupKind Kind { get; init; }
    public string? Namespace { get; init; }
    public string? Dir { get; init; }
    public string? Object { get; init; }
    public string Host { get; init; } = Environment.MachineName;
    /// <summary>When the backup began (the writer stamps now when left default).</summary>
    public DateTimeOffset CreatedAt { get; init; }
    /// <summary>Object backups: "Stable" or "Recent".</summary>
    public string? Consistency { get; init; }
    public IReadOnlyList<string>? ChangedFiles { get; init; }
    /// <summary>Store snapshots: the WAL position the snapshot covers.</summary>
    public WalPosition? Wal { get; init; }
    /// <summary>Store snapshots: the store engine ("bolt", "lmdb", "db"; null means "db").</summary>
    public string? Store { get; init; }
    /// <summary>WAL segment backups: the segment.</summary>
    public RepositorySegment? Segment { get; init; }
    /// <summary>Free-form source metadata (strings only).</summary>
    public IReadOnlyDictionary<string, string>? Properties { get; init; }
    /// <summary>Object backups: the backed-up folder itself (its path is "").</summary>
    public RepositoryDirectory? Root { get; init; }
    /// <summary>Object backups: every folder below the root, empty ones included.</summary>
    public IReadOnlyList<RepositoryDirectory>? Directories { get; init; }
}

/// <summary>A folder of a backup (format version 2): its relative path and what restores give it
/// back: permission bits, owner and group (Unix), last-write time in nanoseconds since 1970 (UTC).
/// Null fields were not known (another platform) and are left as the restore makes them.</summary>
public sealed record RepositoryDirectory(string Path)
{
    public int? Mode { get; init; }
    public long? Uid { get; init; }
    public long? Gid { get; init; }
    public long? ModifiedNs { get; init; }

    public static RepositoryDirectory From(string path, FileMetadata m) => new(path) { Mode = m.Mode, Uid = m.Uid, Gid = m.Gid, ModifiedNs = m.ModifiedNs };

    [JsonIgnore]
    public FileMetadata Metadata => new(Mode, Uid, Gid, ModifiedNs);
}

/// <summary>One file of a backup: path (relative, '/'-separated), size, SHA-256 of the plaintext
/// and the ordered chunk ids whose concatenation is the file.</summary>
[JsonConverter(typeof(RepositoryFileJsonConverter))]
public sealed record RepositoryFile(string Path, long Size, string Sha256, IReadOnlyList<ChunkId> Chunks)
{
    // Held compactly, since a backup, restore or check holds one of these for every file (62,105 on
    // a /usr/share tree): the SHA-256 as its 32 bytes when it is in the form every valid manifest
    // gives it (64 lowercase hex digits), and as the text given otherwise, for validation to refuse
    // (as a string it was 154 bytes a file); the stamp and the metadata in plain fields with one
    // byte saying which are present, where a stamp object and four nullable fields were: an entry
    // with its stamp went from 200 to 144 bytes (dotnet-dump), ~3.5 MB on that tree.
    private readonly Sha _sha = Sha.Of(Sha256);
    private readonly long _stampModifiedNs, _stampChangedNs;
    private readonly ulong _stampDevice, _stampInode;
    private readonly long _uid, _gid, _modifiedNs;
    private readonly int _mode;
    private readonly Has _has;

    [Flags]
    private enum Has : byte { Stamp = 1, Mode = 2, Uid = 4, Gid = 8, ModifiedNs = 16 }

    /// <summary>The SHA-256: its bytes when <see cref="Given"/> is null, else what was given (a
    /// string, or <see cref="Absent"/> for a null one: an object no string equals).</summary>
    private readonly record struct Sha(ChunkId Bytes, object? Given)
    {
        private static readonly object Absent = new();

        public static Sha Of(string? text) => Hex.IsSha256Hex(text) ? new(ChunkId.Parse(text!), null) : new(default, text ?? Absent);

        public bool Held => Given is null;

        public string? Text => Given as string;
    }

    /// <summary>SHA-256 of the file's plaintext: 64 lowercase hex digits (in a valid manifest).</summary>
    public string Sha256
    {
        get => _sha.Held ? _sha.Bytes.ToString() : _sha.Text!;
        init => _sha = Sha.Of(value);
    }

    /// <summary>The SHA-256's 32 bytes, when <see cref="Sha256"/> is 64 lowercase hex digits.</summary>
    internal bool TryGetSha256(out ChunkId sha)
    {
        sha = _sha.Bytes;
        return _sha.Held;
    }

    /// <summary>True when the file's SHA-256 is <paramref name="digest"/> (32 bytes).</summary>
    internal bool Sha256Is(ReadOnlySpan<byte> digest) => _sha.Held && _sha.Bytes == new ChunkId(digest);

    /// <summary>An entry whose SHA-256 is given as its bytes (a manifest being read; a file just stored).</summary>
    internal static RepositoryFile FromDigest(string path, long size, ChunkId sha, IReadOnlyList<ChunkId> chunks) =>
        new(path, size, null!, chunks) { Digest = sha };

    /// <summary>Sets the SHA-256 from its bytes (<see cref="FromDigest"/>, the manifest reader).</summary>
    internal ChunkId Digest
    {
        init => _sha = new(value, null);
    }

    /// <summary>Object backups: the source file's settled stamp when this content was proven to
    /// be the file; the next backup of the object reuses the chunk list without reading the file
    /// when its stamp is still this one. Null when not proven so (then it is read again).</summary>
    public RepositoryFileStamp? Stamp
    {
        get => HasStamp ? new(_stampModifiedNs, _stampChangedNs, _stampDevice, _stampInode) : null;
        init
        {
            (_stampModifiedNs, _stampChangedNs, _stampDevice, _stampInode) = value is { } s ? (s.ModifiedNs, s.ChangedNs, s.Device, s.Inode) : default;
            _has = value is null ? _has & ~Has.Stamp : _has | Has.Stamp;
        }
    }

    /// <summary>True when a stamp is recorded (without making the <see cref="Stamp"/> object).</summary>
    internal bool HasStamp => (_has & Has.Stamp) != 0;

    /// <summary>True when the recorded stamp is <paramref name="s"/>'s (see <see cref="RepositoryFileStamp.From"/>).</summary>
    internal bool StampIs(FileStamp s) => StampIs(s.ModifiedNs, s.ChangedNs, s.Device, s.Inode);

    /// <summary>True when the recorded stamp equals <paramref name="s"/> (both none, or the same values).</summary>
    internal bool StampIs(RepositoryFileStamp? s) => s is null ? !HasStamp : StampIs(s.ModifiedNs, s.ChangedNs, s.Device, s.Inode);

    private bool StampIs(long modifiedNs, long changedNs, ulong device, ulong inode) =>
        HasStamp && _stampModifiedNs == modifiedNs && _stampChangedNs == changedNs && _stampDevice == device && _stampInode == inode;

    /// <summary>Format version 2: permission bits (setuid/setgid/sticky included), owner, group and
    /// last-write time (ns since 1970 UTC) of the source file, restored with it. Null: not recorded.</summary>
    public int? Mode
    {
        get => Get(_mode, Has.Mode);
        init => _has = Set(value, ref _mode, Has.Mode);
    }

    public long? Uid
    {
        get => Get(_uid, Has.Uid);
        init => _has = Set(value, ref _uid, Has.Uid);
    }

    public long? Gid
    {
        get => Get(_gid, Has.Gid);
        init => _has = Set(value, ref _gid, Has.Gid);
    }

    public long? ModifiedNs
    {
        get => Get(_modifiedNs, Has.ModifiedNs);
        init => _has = Set(value, ref _modifiedNs, Has.ModifiedNs);
    }

    private T? Get<T>(T field, Has bit) where T : struct => (_has & bit) != 0 ? field : null;

    private Has Set<T>(T? value, ref T field, Has bit) where T : struct
    {
        field = value.GetValueOrDefault();
        return value.HasValue ? _has | bit : _has & ~bit;
    }

    /// <summary>The recorded metadata, or null when none was.</summary>
    [JsonIgnore]
    public FileMetadata? Metadata => Mode is null && Uid is null && Gid is null && ModifiedNs is null ? null : new(Mode, Uid, Gid, ModifiedNs);

    /// <summary>This entry with <paramref name="m"/> recorded.</summary>
    public RepositoryFile WithMetadata(FileMetadata m) => this with { Mode = m.Mode, Uid = m.Uid, Gid = m.Gid, ModifiedNs = m.ModifiedNs };
}

/// <summary>What the file system said about a source file (see <see cref="FileStamp"/>):
/// last-write and change time in nanoseconds since 1970 (UTC), device and inode (0 where the
/// platform does not tell).</summary>
public sealed record RepositoryFileStamp(long ModifiedNs, long ChangedNs, ulong Device, ulong Inode)
{
    public static RepositoryFileStamp From(FileStamp s) => new(s.ModifiedNs, s.ChangedNs, s.Device, s.Inode);
}

/// <summary>A backup manifest (<c>snapshots/&lt;id&gt;</c>): JSON, versioned, validated as hostile input on read.</summary>
public sealed record RepositoryManifest
{
    /// <summary>2: files carry mode, owner and last-write time, and object backups list their folders
    /// (<see cref="Root"/>, <see cref="Directories"/>). Version 1 manifests are read as before.</summary>
    public const int CurrentFormatVersion = 2;

    /// <summary>The manifest id: SHA-256 of the stored object (not part of the JSON).</summary>
    [JsonIgnore]
    public string Id { get; internal set; } = "";

    public int FormatVersion { get; init; } = CurrentFormatVersion;
    public required BackupKind Kind { get; init; }
    public string? Namespace { get; init; }
    public string? Dir { get; init; }
    public string? Object { get; init; }
    public required string Host { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset? CompletedAt { get; init; }
    public string? Tool { get; init; }
    public string? Consistency { get; init; }
    public IReadOnlyList<string>? ChangedFiles { get; init; }
    public WalPosition? Wal { get; init; }
    public string? Store { get; init; }
    public RepositorySegment? Segment { get; init; }
    public IReadOnlyDictionary<string, string>? Properties { get; init; }
    /// <summary>Object backups (version 2): the backed-up folder itself.</summary>
    public RepositoryDirectory? Root { get; init; }
    /// <summary>Object backups (version 2): every folder below the root, empty ones included, parents first.</summary>
    public IReadOnlyList<RepositoryDirectory>? Directories { get; init; }
    public required IReadOnlyList<RepositoryFile> Files { get; init; }

    /// <summary>Sum of the file sizes.</summary>
    [JsonIgnore]
    public long TotalBytes => Files.Sum(f => f.Size);
}

/// <summary>One line of <see cref="Repository.ListBackupsAsync"/>.</summary>
public sealed record BackupSummary(
    string Id,
    BackupKind Kind,
    string? Namespace,
    string? Dir,
    string? Object,
    string Host,
    DateTimeOffset CreatedAt,
    long Bytes,
    int FileCount,
    long? SegmentId);

/// <summary>A named pointer to a backup (<c>refs/&lt;name&gt;/&lt;manifestId&gt;</c>). Names are
/// relative paths such as <c>wal/ns1/000000043</c>; several manifests may carry one name.</summary>
public sealed record RepositoryRef(string Name, string ManifestId);

/// <summary>What a committed backup did. <paramref name="StoredBytes"/> counts every byte this
/// backup stored: packs, index objects, manifest and ref.</summary>
public sealed record BackupCommitResult(
    string ManifestId,
    int FileCount,
    long Bytes,
    long NewChunks,
    long NewChunkBytes,
    long PacksWritten,
    long StoredBytes);

/// <summary>What a restore did.</summary>
public sealed record RestoreResult(string ManifestId, string Target, int FileCount, long Bytes);
