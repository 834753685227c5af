using System.Management.Automation;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Restore;

namespace PSBackup.Commands;

/// <summary>Restores a store snapshot into <c>&lt;TargetDataDir&gt;/&lt;ns&gt;</c> in its engine's own
/// shape (UnisonDB BOLT: the file <c>unison.db</c>; LMDB: <c>unison.db/data.mdb</c>, never a lock.mdb;
/// other engines: <c>db/</c>), from the local backup
/// root <c>&lt;DataDir&gt;/backups/&lt;ns&gt;</c> (-Snapshot, its relative path; the newest when left out)
/// or from a repository (-Repository, -BackupId; the newest when left out); Get-Backup's
/// store-snapshot records, local or repository, bind by property name. Every byte is verified before
/// anything is touched; an existing store needs -Force and is kept aside, never deleted. A UnisonDB
/// store starts its replay at its checkpoint, so into a target without <c>wal/</c> the archived WAL
/// from the checkpoint's segment up to what the snapshot holds is laid out too (when that WAL is not
/// archived, a warning says the store cannot start alone and points to Restore-PointInTime).</summary>
/// <cli>snapshot restore</cli>
/// <example>
/// <summary>Restore the newest local snapshot</summary>
/// <code>Restore-StoreSnapshot -DataDir ./unison -Namespace users -TargetDataDir ./restored</code>
/// Every byte is verified before anything is written; the store lands in ./restored/users. Restoring
/// into the live data directory needs -Force and keeps the replaced store aside.
/// </example>
/// <example>
/// <summary>Restore a snapshot listed by Get-Backup</summary>
/// <code>Get-Backup -Repository ./repo -Namespace users -Kind StoreSnapshot | Select-Object -First 1 | Restore-StoreSnapshot -TargetDataDir ./restored</code>
/// The record binds -Repository, -Namespace and -BackupId by property name.
/// </example>
[Cmdlet(VerbsData.Restore, "StoreSnapshot", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, DefaultParameterSetName = DefaultSet)]
[OutputType(typeof(StoreSnapshotRestoreResult))]
public sealed class RestoreStoreSnapshotCommand : PSBackupRepositoryCmdlet
{
    private const string DefaultSet = "Default";
    private string? _dataDir;
    private string? _targetDataDir;
    private RepositoryTarget? _repository;

    /// <summary>The database's data directory (one folder per namespace). With -Repository it is
    /// only where to restore when -TargetDataDir is not given.</summary>
    /// <remarks>-DataDir and -Repository are in every parameter set, optional and without null
    /// validation, because Get-Backup's records carry both and one of them is always null (a
    /// repository record has no DataDir, a local one no Repository): PowerShell binds a null
    /// property by name and would fail a [ValidateNotNullOrEmpty] parameter, or latch on to the
    /// wrong set. Which one is given is checked per record in <see cref="PrepareRecord"/>.</remarks>
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    public string? DataDir { get; set; }

    /// <summary>The namespace whose snapshot is restored.</summary>
    [Parameter(Mandatory = true, Position = 1, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(NamespaceCompleter))]
    public string Namespace { get; set; } = "";

    /// <summary>Local: the snapshot's path relative to <c>&lt;DataDir&gt;/backups/&lt;ns&gt;</c> (its New-StoreSnapshot -Path).</summary>
    [Parameter(ParameterSetName = DefaultSet)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(StoreSnapshotIdCompleter))]
    public string? Snapshot { get; set; }

    /// <summary>The repository to read from (a folder or s3://bucket/prefix).</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? Repository { get; set; }

    /// <summary>The snapshot as Get-Backup reports it: its backup id in a repository, its path
    /// under the backup root locally (the same as -Snapshot). Default: the newest.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(StoreSnapshotIdCompleter))]
    public string? BackupId { get; set; }

    /// <summary>The data directory to restore into; default: -DataDir.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? TargetDataDir { get; set; }

    /// <summary>Replace a non-empty <c>db/</c> (kept aside as <c>db.replaced-&lt;timestamp&gt;</c>).</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    protected override void PrepareRecord()
    {
        RequireSource(DataDir, Repository, dataDirIsSource: false);
        if (Snapshot is not null && BackupId is not null && !string.Equals(Snapshot, BackupId, StringComparison.Ordinal))
        {
            ThrowTerminatingError(ErrorMapping.ToErrorRecord(new Engine.InvalidInputException("AmbiguousSnapshot",
                $"-Snapshot '{Snapshot}' and -BackupId '{BackupId}' name different snapshots. Give one of them.", Snapshot)));
        }
        _dataDir = string.IsNullOrEmpty(DataDir) ? null : ResolveFileSystemPath(DataDir, nameof(DataDir));
        _targetDataDir = TargetDataDir is null ? null : ResolveFileSystemPath(TargetDataDir, nameof(TargetDataDir));
        _repository = RepositoryTargetFor(Repository);
        if (_repository is not null && _dataDir is null && _targetDataDir is null)
        {
            ThrowTerminatingError(ErrorMapping.ToErrorRecord(new Engine.InvalidInputException("MissingTargetDataDir",
                "Give -TargetDataDir (or -DataDir): the data directory to restore the snapshot into.", null)));
        }
    }

    protected override async Task ProcessRecordAsync()
    {
        var options = new RestoreStoreSnapshotOptions(_dataDir ?? _targetDataDir!, Namespace)
        {
            Snapshot = Snapshot ?? BackupId,
            TargetDataDir = _targetDataDir,
            Force = Force.IsPresent,
            Repository = _repository,
        };
        StoreSnapshotRestoreResult? result = await RestoreOperations.RestoreSnapshotAsync(options, CreateContext()).ConfigureAwait(false);
        if (result is not null)
        {
            if (result.Warning is { } warning)
            {
                PostWriteWarning(warning);
            }
            await WriteObjectAsync(result).ConfigureAwait(false);
        }
    }
}
