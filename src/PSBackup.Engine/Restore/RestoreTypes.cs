namespace PSBackup.Engine.Restore;

/// <summary>Restore-StoreSnapshot: a snapshot of <c>&lt;DataDir&gt;/backups/&lt;Namespace&gt;</c> into
/// <c>&lt;TargetDataDir&gt;/&lt;Namespace&gt;/db</c>.</summary>
public sealed record RestoreStoreSnapshotOptions(string DataDir, string Namespace)
{
    /// <summary>The snapshot's path relative to the backup root (its New-StoreSnapshot -Path);
    /// null restores the newest complete snapshot.</summary>
    public string? Snapshot { get; init; }
    /// <summary>The data directory to restore into; null means <see cref="DataDir"/> itself.</summary>
    public string? TargetDataDir { get; init; }
    /// <summary>Replace a non-empty <c>db/</c>; the replaced one is kept aside, never deleted.</summary>
    public bool Force { get; init; }
    /// <summary>Read the snapshot from this repository instead of <c>&lt;DataDir&gt;/backups/&lt;Namespace&gt;</c>;
    /// <see cref="Snapshot"/> is then a backup id (null: the newest snapshot of the namespace).</summary>
    public Repository.RepositoryTarget? Repository { get; init; }
}

public sealed record StoreSnapshotRestoreResult
{
    public required string Namespace { get; init; }
    /// <summary>The repository restored from; null for a local backup root.</summary>
    public string? Repository { get; init; }
    /// <summary>The snapshot's backup id in <see cref="Repository"/>; null for a local backup root.</summary>
    public string? BackupId { get; init; }
    /// <summary>The snapshot's id (path relative to the backup root, or the backup id in a repository).</summary>
    public required string Snapshot { get; init; }
    public required string SnapshotPath { get; init; }
    /// <summary>The restored store: <c>&lt;target&gt;/&lt;ns&gt;/unison.db</c> (UnisonDB) or <c>/db</c>.</summary>
    public required string RestoredPath { get; init; }
    /// <summary>Where the replaced <c>db/</c> was kept (<c>db.replaced-&lt;ts&gt;</c>); null when there was none.</summary>
    public string? ReplacedPath { get; init; }
    public required int FileCount { get; init; }
    public required long Bytes { get; init; }
    public required WalPosition WalPosition { get; init; }
    /// <summary>UnisonDB into a target without <c>wal/</c>: the <c>wal/</c> laid out from the archive
    /// (the checkpoint's segment, cut after the checkpoint record); null when none was needed.</summary>
    public string? WalPath { get; init; }
    /// <summary>Segments laid out in <see cref="WalPath"/> (an added empty active segment counts).</summary>
    public int WalSegments { get; init; }
    /// <summary>Why the restored store cannot start as it stands (a UnisonDB store in a target
    /// without wal/ whose checkpoint segment is not archived); null when it can.</summary>
    public string? Warning { get; init; }
    /// <summary>Seconds the operation took (a number: ConvertTo-Json writes it as one).</summary>
    public required double Duration { get; init; }
}

/// <summary>Restore-PointInTime over the backups of <c>&lt;DataDir&gt;/backups/&lt;Namespace&gt;</c>,
/// laid out as <c>&lt;TargetDataDir&gt;/&lt;Namespace&gt;/{db,wal}</c>. Exactly one target.</summary>
public sealed record RestorePointInTimeOptions(string DataDir, string Namespace)
{
    public DateTimeOffset? TargetTime { get; init; }
    public long? TargetLogIndex { get; init; }
    /// <summary>The data directory to lay the namespace out in; null means <see cref="DataDir"/> itself.</summary>
    public string? TargetDataDir { get; init; }
    /// <summary>Replace a non-empty namespace folder; the replaced one is kept aside as
    /// <c>&lt;ns&gt;.replaced-&lt;ts&gt;</c>, never deleted.</summary>
    public bool Force { get; init; }
    /// <summary>Files fetched and verified at once.</summary>
    public int MaxParallelism { get; init; } = 4;
    /// <summary>Read snapshots and WAL from this repository instead of <c>&lt;DataDir&gt;/backups/&lt;Namespace&gt;</c>.</summary>
    public Repository.RepositoryTarget? Repository { get; init; }
}

public sealed record PointInTimeRestoreResult
{
    public required string Namespace { get; init; }
    /// <summary>The repository restored from; null for a local backup root.</summary>
    public string? Repository { get; init; }
    public required PointInTimePlan Plan { get; init; }
    /// <summary>The snapshot the restore starts from (its path, or backup id in a repository).</summary>
    public string Snapshot => Plan.Snapshot.Id;
    /// <summary>False when ShouldProcess declined (-WhatIf): the plan only, nothing written.</summary>
    public required bool Restored { get; init; }
    /// <summary>The namespace folder laid out (or that would be).</summary>
    public required string RestoredPath { get; init; }
    public string? ReplacedPath { get; init; }
    /// <summary>The last record the namespace holds once the database replays its WAL.</summary>
    public long LastLogIndex => Plan.LastLogIndex;
    public bool TargetPastArchive => Plan.TargetPastArchive;
    public required long Bytes { get; init; }
    /// <summary>Seconds the operation took (a number: ConvertTo-Json writes it as one).</summary>
    public required double Duration { get; init; }
}
