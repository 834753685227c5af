using System.Management.Automation;
using PSBackup.Engine.ObjectStore;
using PSBackup.Engine.Repository;

namespace PSBackup.Commands;

/// <summary>Verifies an object backup against its manifest and swaps it in atomically, keeping
/// the replaced live object aside. The backup is a sibling folder (-From) or lives in a repository
/// (-Repository, -BackupId; the newest backup of the object when left out). Get-Backup's object
/// records, local or repository, bind by property name. With -Repository, -Dir/-Object wildcards
/// restore the newest backup of every matching object (disaster recovery; a lost tenant dir is
/// recreated); an object that fails is a non-terminating error and the others still run.</summary>
/// <remarks>-DbRoot, -From (alias BackupName), -Repository and -BackupId are in every parameter
/// set, optional and without null validation: Get-Backup's records carry them and some are null
/// (a repository record has no DbRoot or BackupName, a local one no Repository), and PowerShell
/// binds a null property by name, which would fail a validated parameter or latch the call on to
/// one set. So -From and -Repository exclude each other per record, in <see cref="PrepareRecord"/>.</remarks>
/// <cli>object restore</cli>
/// <example>
/// <summary>Restore an object's newest local backup</summary>
/// <code>Restore-ObjectBackup -DbRoot ./shard-db -Dir acme -Object orders -From latest -Force</code>
/// The backup is verified against its manifest first; the live object is replaced atomically and kept
/// aside as orders.replaced-&lt;time&gt;. Without -Force a live object that is not empty is refused;
/// stop the database first.
/// </example>
/// <example>
/// <summary>Restore every object a repository holds</summary>
/// <code>Restore-ObjectBackup -DbRoot ./shard-db -Dir '*' -Object '*' -Repository ./repo -Force</code>
/// Disaster recovery: the newest backup of every object in the repository, each verified while it is
/// written and swapped in; a lost tenant dir is recreated.
/// </example>
/// <example>
/// <summary>Preview a restore piped from Get-Backup</summary>
/// <code>Get-Backup -DbRoot ./shard-db -Dir acme -Object orders | Select-Object -First 1 | Restore-ObjectBackup -WhatIf</code>
/// The record binds -DbRoot, -Dir, -Object and -From by property name. -WhatIf says what would be
/// replaced, and that a non-empty live object would need -Force, without failing.
/// </example>
[Cmdlet(VerbsData.Restore, "ObjectBackup", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High,
    DefaultParameterSetName = DefaultSet)]
[OutputType(typeof(ObjectRestoreResult))]
public sealed class RestoreObjectBackupCommand : PSBackupRepositoryCmdlet
{
    private const string DefaultSet = "Default";
    private string _dbRoot = "";
    private RepositoryTarget? _repository;

    /// <summary>The database root ($DB_ROOT) holding the tenant dirs.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? DbRoot { get; set; }

    /// <summary>The tenant dir; with -Repository, wildcards restore several (the newest backup of each).</summary>
    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(DirCompleter))]
    public string Dir { get; set; } = "";

    /// <summary>The object; with -Repository, wildcards restore several (the newest backup of each).</summary>
    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(ObjectCompleter))]
    public string Object { get; set; } = "";

    /// <summary>The backup folder name (<c>&lt;obj&gt;.backup-yyyyMMddTHHmmss</c>), a sibling of the
    /// object, its timestamp, or 'latest'.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [Alias("BackupName")]
    [ArgumentCompleter(typeof(ObjectBackupIdCompleter))]
    public string? From { get; set; }

    /// <summary>The repository to restore from (a folder or s3://bucket/prefix).</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? Repository { get; set; }

    /// <summary>The backup as Get-Backup reports it: its manifest id in a repository (default: the
    /// newest backup of the object), its folder name locally (the same as -From).</summary>
    /// <remarks>No null validation: a local New-ObjectBackup result has a null BackupId.</remarks>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(ObjectBackupIdCompleter))]
    public string? BackupId { get; set; }

    /// <summary>Replace a live object that is not empty (it is kept aside, never deleted).</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    /// <summary>Record the outcome of a local restore in this history folder (outside $DB_ROOT;
    /// default: PSBACKUP_HISTORY_PATH). A repository restore records in the repository.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? HistoryPath { get; set; }

    private string? _historyPath;

    protected override void PrepareRecord()
    {
        bool repository = !string.IsNullOrEmpty(Repository);
        RequireRepositoryForOptions(Repository);
        if (string.IsNullOrEmpty(DbRoot))
        {
            ThrowTerminatingError(ErrorMapping.ToErrorRecord(new Engine.InvalidInputException("DbRootRequired",
                "Give -DbRoot: the database root ($DB_ROOT) that holds the tenant dir to restore into.", null)));
        }
        if (!repository && string.IsNullOrEmpty(From) && string.IsNullOrEmpty(BackupId))
        {
            ThrowTerminatingError(ErrorMapping.ToErrorRecord(new Engine.InvalidInputException("SourceRequired",
                "Give -From (a backup folder beside the object, its timestamp, or 'latest') or -Repository (a folder or s3://bucket/prefix), or pipe a record from Get-Backup.", null)));
        }
        _dbRoot = ResolveFileSystemPath(DbRoot!, nameof(DbRoot));
        _repository = RepositoryTargetFor(Repository);
        _historyPath = HistoryPath is null ? null : GetUnresolvedProviderPathFromPSPath(HistoryPath);
    }

    protected override async Task ProcessRecordAsync()
    {
        string? from = string.IsNullOrEmpty(From) ? null : From;
        var options = new RestoreObjectBackupOptions(_dbRoot, Dir, Object, from)
        {
            Force = Force.IsPresent,
            Repository = _repository,
            BackupId = string.IsNullOrEmpty(BackupId) ? null : BackupId,
            HistoryPath = _historyPath,
        };
        string source = _repository is null ? $"'{from ?? BackupId}'" : $"{_repository.Location} ({BackupId ?? "newest backup"})";
        PostWriteVerbose($"Restoring '{Dir}/{Object}' under '{_dbRoot}' from {source}.");
        await WriteEachAsync(ObjectOperations.RestoreEachAsync(options, CreateContext())).ConfigureAwait(false);
    }
}
