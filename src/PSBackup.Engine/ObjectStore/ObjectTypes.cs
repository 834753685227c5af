namespace PSBackup.Engine.ObjectStore;

/// <summary>Whether a copy equals its source at one instant (ConvertTo-Json writes the name).</summary>
[Newtonsoft.Json.JsonConverter(typeof(Newtonsoft.Json.Converters.StringEnumConverter))]
public enum BackupConsistency
{
    /// <summary>No file changed while it was copied: each copied file equals its source at one instant.</summary>
    Stable,
    /// <summary>Some files changed during the copy (listed); "recent, not fenced" in the seed's words.</summary>
    Recent,
}

public sealed record NewObjectBackupOptions(string DbRoot, string Dir, string Object)
{
    /// <summary>Run before the copy to pause writers (a fenced copy); Resume runs after, always.</summary>
    public Func<CancellationToken, Task>? Quiesce { get; init; }
    public Func<CancellationToken, Task>? Resume { get; init; }
    /// <summary>Store the backup in this repository instead of a sibling folder.</summary>
    public Repository.RepositoryTarget? Repository { get; init; }
    /// <summary>A local backup's history folder (<see cref="ObjectHistory"/>); null: <c>PSBACKUP_HISTORY_PATH</c>, else none.</summary>
    public string? HistoryPath { get; init; }
    /// <summary>How recent a file's times may be and still prove it unchanged without a re-read
    /// (tests shorten it; see <see cref="FileStamp.RacyWindow"/>).</summary>
    internal TimeSpan RacyWindow { get; init; } = FileStamp.RacyWindow;
    /// <summary>How recent a file's times may be and still prove it unchanged when its dirty pages
    /// were written back just before the read (tests shorten it; see <see cref="FileStamp.ClockWindow"/>).</summary>
    internal TimeSpan ClockWindow { get; init; } = FileStamp.ClockWindow;
    /// <summary>Writes a file's dirty pages back (<see cref="Writeback.Flush"/>); tests turn it off
    /// to show what the flush proves.</summary>
    internal Func<string, bool> Flush { get; init; } = Writeback.Flush;
    /// <summary>Where file stamps come from (<see cref="FileStamp.Read"/>; tests substitute what
    /// NTFS reports while a writer holds a file open).</summary>
    internal Func<string, FileStamp?> Stamps { get; init; } = FileStamp.Read;
    /// <summary>Repository backups: read every file, even those the parent backup proves unchanged.</summary>
    public bool Force { get; init; }
    /// <summary>An open, locked <see cref="Repository"/> shared by the backups of one wildcard run
    /// (<see cref="ObjectOperations.BackupEachAsync"/>); null: the backup opens its own.</summary>
    internal Repository.OpenRepository? Session { get; init; }

    /// <summary>Tests: runs after the parent backup was read ahead (without the lock) and before
    /// the repository is opened and locked, e.g. a prune that removes that parent.</summary>
    internal Func<CancellationToken, Task>? BeforeOpen { get; init; }
}

public sealed record ObjectBackupResult
{
    public required string DbRoot { get; init; }
    public required string Dir { get; init; }
    public required string Object { get; init; }
    /// <summary>The sibling folder name, <c>&lt;obj&gt;.backup-yyyyMMddTHHmmss</c> (in a repository:
    /// the same name, also the last part of its ref <c>object/&lt;dir&gt;/&lt;obj&gt;/&lt;ts&gt;</c>).</summary>
    public required string BackupName { get; init; }
    /// <summary>The local backup folder; null when stored in a repository.</summary>
    public string? BackupPath { get; init; }
    /// <summary>The local manifest file; null when stored in a repository.</summary>
    public string? ManifestPath { get; init; }
    /// <summary>Temp siblings of this object that an interrupted (killed) earlier backup or restore
    /// left, over an hour old: Clear-StaleArtifact removes them. Reported, never deleted here (a
    /// running backup's own temp is younger).</summary>
    public IReadOnlyList<string> StaleTemps { get; init; } = [];
    /// <summary>The repository the backup was stored in; null for a local backup.</summary>
    public string? Repository { get; init; }
    /// <summary>The backup's manifest id in the repository; null for a local backup.</summary>
    public string? BackupId { get; init; }
    /// <summary>Bytes this backup added to the repository (new chunks compressed, index,
    /// manifest); null for a local backup.</summary>
    public long? StoredBytes { get; init; }
    /// <summary>Repository backups: the parent backup (this host's latest of the object) whose
    /// unchanged files were reused unread; null when there was none or with -Force.</summary>
    public string? ParentId { get; init; }
    /// <summary>Files read from the source (all of them for a local backup).</summary>
    public int FilesRead { get; init; }
    /// <summary>Files whose content was taken without reading them: from the parent backup, because
    /// their stamp (size, times, inode) had not changed, or from another name of the same inode
    /// read earlier in this run (a hard link).</summary>
    public int FilesReused { get; init; }
    public required int FileCount { get; init; }
    public required long Bytes { get; init; }
    public required BackupConsistency Consistency { get; init; }
    public required IReadOnlyList<string> ChangedFiles { get; init; }
    public required bool Fenced { get; init; }
    /// <summary>When the backup began (its manifest's createdAt, the time in its name).</summary>
    public required DateTimeOffset StartedAt { get; init; }
    /// <summary>When the backup was complete: the completedAt its manifest records.</summary>
    public required DateTimeOffset CompletedAt { get; init; }
    /// <summary>The instant the backup stands for, the same as Get-Backup's Time for it
    /// (<see cref="CompletedAt"/>), so <c>Get-Backup -After $b.Time</c> includes it.</summary>
    public DateTimeOffset Time => CompletedAt;
    /// <summary>Seconds the operation took (a number: ConvertTo-Json writes it as one).</summary>
    public required double Duration { get; init; }
}

/// <param name="From">A local backup: its folder name, timestamp or 'latest'. With
/// <see cref="Repository"/> it may only repeat the name of the backup <see cref="BackupId"/> names.</param>
public sealed record RestoreObjectBackupOptions(string DbRoot, string Dir, string Object, string? From)
{
    /// <summary>Restore from this repository instead of a sibling folder.</summary>
    public Repository.RepositoryTarget? Repository { get; init; }
    /// <summary>Repository: the backup's manifest id (default: the newest backup of the object).
    /// Local: the backup folder name, as Get-Backup reports it (the same as <see cref="From"/>).</summary>
    public string? BackupId { get; init; }

    /// <summary>Replace a live object that is not empty (it is kept aside, never deleted).</summary>
    public bool Force { get; init; }
    /// <summary>The history folder (<see cref="ObjectHistory"/>); null: <c>PSBACKUP_HISTORY_PATH</c>, else none.</summary>
    public string? HistoryPath { get; init; }
}

public sealed record ObjectRestoreResult
{
    public required string DbRoot { get; init; }
    public required string Dir { get; init; }
    public required string Object { get; init; }
    public required string BackupName { get; init; }
    /// <summary>The repository restored from; null for a local backup.</summary>
    public string? Repository { get; init; }
    /// <summary>The backup's manifest id in the repository; null for a local backup.</summary>
    public string? BackupId { get; init; }
    public required string RestoredPath { get; init; }
    /// <summary>Where the replaced live object was moved; null when there was none.</summary>
    public string? ReplacedPath { get; init; }
    public required int FileCount { get; init; }
    public required long Bytes { get; init; }
}

public sealed record ClearStaleArtifactOptions(string Root);

/// <summary>A stale <c>.new</c>/<c>.old</c>/<c>.tmp</c> artifact found by the sweep.</summary>
public sealed record StaleArtifact(string Path, bool IsDirectory, long Bytes, bool Removed)
{
    /// <summary>Why removal failed; null when removed or when ShouldProcess declined.</summary>
    public string? Error { get; init; }
}
