using PSBackup.Engine.Repository;
using PSBackup.Engine.Restore;

namespace PSBackup.Engine.Retention;

/// <summary>What a retention item is: the backup kinds of <see cref="BackupKind"/> under the same
/// names and values (Object, StoreSnapshot, WalSegment), so one vocabulary filters Get-Backup's
/// records and these items alike, plus what only retention removes. ConvertTo-Json writes the name;
/// the command line's spelling (store-snapshot) and the earlier names (Snapshot, ObjectBackup)
/// convert to it (<c>Where-Object Kind -eq store-snapshot</c>).</summary>
[Newtonsoft.Json.JsonConverter(typeof(Newtonsoft.Json.Converters.StringEnumConverter))]
[System.ComponentModel.TypeConverter(typeof(RetentionItemKindConverter))]
public enum RetentionItemKind
{
    /// <summary>An object backup.</summary>
    Object = BackupKind.Object,
    /// <summary>A store snapshot.</summary>
    StoreSnapshot = BackupKind.StoreSnapshot,
    /// <summary>A shipped WAL segment (or a partial).</summary>
    WalSegment = BackupKind.WalSegment,
    /// <summary>A pack no backup references any more.</summary>
    Pack,
    /// <summary>A manifest that fails its hash or does not decode or validate: not a backup any more.</summary>
    DamagedBackup,
    /// <summary>A temp file an interrupted write left in the repository folder.</summary>
    TempFile,
}

/// <summary>Either spelling of a <see cref="RetentionItemKind"/>, and the names before issue 14.</summary>
public sealed class RetentionItemKindConverter()
    : SpelledEnumConverter(typeof(RetentionItemKind), new Dictionary<string, object>
    {
        ["Snapshot"] = RetentionItemKind.StoreSnapshot,
        ["ObjectBackup"] = RetentionItemKind.Object,
        ["object-backup"] = RetentionItemKind.Object,
        ["damaged"] = RetentionItemKind.DamagedBackup,
        ["temp"] = RetentionItemKind.TempFile,
    });

/// <summary>Keep or remove (ConvertTo-Json writes the name).</summary>
[Newtonsoft.Json.JsonConverter(typeof(Newtonsoft.Json.Converters.StringEnumConverter))]
public enum RetentionDecision
{
    Keep,
    Remove,
}

/// <summary>Remove-ExpiredBackup: one source (a repository, a namespace's local backup root, or a
/// tenant dir's local object backups) and a policy applied per namespace / per dir+object.</summary>
public sealed record RemoveExpiredBackupOptions
{
    public RepositoryTarget? Repository { get; init; }
    public string? DataDir { get; init; }
    public string? DbRoot { get; init; }
    /// <summary>Required with <see cref="DataDir"/>; with a repository, limits pruning to one namespace.</summary>
    public string? Namespace { get; init; }
    /// <summary>Required with <see cref="DbRoot"/>; with a repository, limits object backups to one dir.</summary>
    public string? Dir { get; init; }
    public string? Object { get; init; }
    public required RetentionPolicy Policy { get; init; }
    /// <summary>Repository only: unreferenced packs younger than this are never removed (a
    /// concurrent backup may have written them and not yet committed its manifest).</summary>
    public TimeSpan PackGracePeriod { get; init; } = TimeSpan.FromHours(1);
}

/// <summary>One backup, WAL segment or pack and what retention decided about it (restic's
/// <c>forget</c> output: kept and removed, with the rules that kept each).</summary>
public sealed record RetentionItem
{
    public required RetentionItemKind Kind { get; init; }
    public required RetentionDecision Decision { get; init; }
    /// <summary>True once it is gone; false for kept items and for removals ShouldProcess declined (-WhatIf).</summary>
    public required bool Removed { get; init; }
    /// <summary>Snapshot path / backup id / segment id / pack id.</summary>
    public required string Id { get; init; }
    public string? Repository { get; init; }
    public string? BackupId { get; init; }
    public string? Namespace { get; init; }
    public string? Dir { get; init; }
    public string? Object { get; init; }
    public long? SegmentId { get; init; }
    public DateTimeOffset? Time { get; init; }
    public required long Bytes { get; init; }
    /// <summary>Why: the rules that kept it ("daily", "within 14d", "newest", "needed for PITR by ...")
    /// or why it goes.</summary>
    public required IReadOnlyList<string> Reasons { get; init; }
    public string Reason => string.Join(", ", Reasons);
    /// <summary>Local path (local roots) or storage key (packs).</summary>
    public string? Path { get; init; }
}

/// <summary>A decision about one item of a pure plan.</summary>
public sealed record Decided<T>(T Item, bool Keep, IReadOnlyList<string> Reasons);

/// <summary>What retention decides for one namespace: its snapshots and archived segments.</summary>
public sealed record NamespaceRetentionPlan(
    IReadOnlyList<Decided<RestorableSnapshot>> Snapshots,
    IReadOnlyList<Decided<ArchivedSegment>> Segments)
{
    public IReadOnlyList<RestorableSnapshot> KeptSnapshots => Snapshots.Where(d => d.Keep).Select(d => d.Item).ToList();
    public IReadOnlyList<ArchivedSegment> KeptSegments => Segments.Where(d => d.Keep).Select(d => d.Item).ToList();
}
