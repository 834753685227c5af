using System.Management.Automation;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Restore;

namespace PSBackup.Commands;

/// <summary>Restores a store snapshot into <c>&lt;TargetDataDir&gt;/&lt;ns&gt;/db</c>: from the local backup
/// root <c>&lt;DataDir&gt;/backups/&lt;ns&gt;</c> (-Snapshot, its relative path; the newest when left out)
/// or from a repository (-BackupId; the newest when left out). Every byte is verified before
/// anything is touched; a non-empty <c>db/</c> needs -Force and is kept aside, never deleted.</summary>
[Cmdlet(VerbsData.Restore, "StoreSnapshot", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, DefaultParameterSetName = DefaultSet)]
[OutputType(typeof(StoreSnapshotRestoreResult))]
public sealed class RestoreStoreSnapshotCommand : PSBackupRepositoryCmdlet
{
    private const string DefaultSet = "Default";
    private string? _dataDir;
    private string? _targetDataDir;
    private RepositoryTarget? _repository;

    /// <summary>The database's data directory (one folder per namespace). In the repository set it
    /// is only where to restore when -TargetDataDir is not given.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true, ParameterSetName = DefaultSet)]
    [Parameter(ParameterSetName = RepositorySet, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string? DataDir { get; set; }

    [Parameter(Mandatory = true, Position = 1, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string Namespace { get; set; } = "";

    /// <summary>The snapshot's path relative to <c>&lt;DataDir&gt;/backups/&lt;ns&gt;</c> (its New-StoreSnapshot -Path).</summary>
    [Parameter(ParameterSetName = DefaultSet)]
    [ValidateNotNullOrEmpty]
    public string? Snapshot { get; set; }

    /// <summary>The repository to read from (a folder or s3://bucket/prefix).</summary>
    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true, ParameterSetName = RepositorySet)]
    [ValidateNotNullOrEmpty]
    public string? Repository { get; set; }

    /// <summary>The snapshot's backup id in the repository (Get-Backup -Kind StoreSnapshot).</summary>
    [Parameter(ValueFromPipelineByPropertyName = true, ParameterSetName = RepositorySet)]
    [ValidateNotNullOrEmpty]
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
        _dataDir = DataDir is null ? null : ResolveFileSystemPath(DataDir, nameof(DataDir));
        _targetDataDir = TargetDataDir is null ? null : ResolveFileSystemPath(TargetDataDir, nameof(TargetDataDir));
        _repository = ParameterSetName == RepositorySet ? RepositoryTargetFor(Repository) : null;
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
            Snapshot = _repository is null ? Snapshot : BackupId,
            TargetDataDir = _targetDataDir,
            Force = Force.IsPresent,
            Repository = _repository,
        };
        StoreSnapshotRestoreResult? result = await RestoreOperations.RestoreSnapshotAsync(options, CreateContext()).ConfigureAwait(false);
        if (result is not null)
        {
            PostWriteObject(result);
        }
    }
}
