using System.Management.Automation;
using PSBackup.Engine;
using PSBackup.Engine.ObjectStore;
using PSBackup.Engine.Repository;

namespace PSBackup.Commands;

/// <summary>Copies one object of an object store to a timestamped sibling backup with a manifest,
/// or with -Repository stores it as one backup in a repository. -Dir and -Object take wildcards
/// (<c>-Dir * -Object *</c>: every object under the root), one backup per object; an object that
/// fails is a non-terminating error and the others still run.</summary>
/// <cli>object backup</cli>
/// <example>
/// <summary>Back up one object beside itself</summary>
/// <code>New-ObjectBackup -DbRoot ./shard-db -Dir acme -Object orders</code>
/// Copies acme/orders to orders.backup-&lt;UTC time&gt; next to it, with a manifest (size and SHA-256
/// per file). Consistency says Stable when every file equals its source at one instant, Recent (with
/// ChangedFiles) when the database wrote during the copy.
/// </example>
/// <example>
/// <summary>Back up every object into a repository</summary>
/// <code>New-ObjectBackup -DbRoot ./shard-db -Dir '*' -Object '*' -Repository ./repo</code>
/// One backup per object, one repository open for all of them; an unchanged file is not even read again
/// (this host's previous backup of the object is the parent). A failing object is an error record and
/// the others still run.
/// </example>
/// <example>
/// <summary>A fenced copy</summary>
/// <code>New-ObjectBackup -DbRoot ./shard-db -Dir acme -Object customers -QuiesceScript { Write-Verbose 'pause the writers here' } -ResumeScript { Write-Verbose 'resume them here' }</code>
/// The quiesce script runs before the copy and the resume script after it, always, even when the copy
/// fails; a script that throws fails the backup.
/// </example>
[Cmdlet(VerbsCommon.New, "ObjectBackup", SupportsShouldProcess = true, DefaultParameterSetName = DefaultSet)]
[OutputType(typeof(ObjectBackupResult))]
public sealed class NewObjectBackupCommand : PSBackupRepositoryCmdlet
{
    private const string DefaultSet = "Default";
    private string _dbRoot = "";

    /// <summary>The database root ($DB_ROOT); relative paths resolve against the current location.</summary>
    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true, ParameterSetName = DefaultSet)]
    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true, ParameterSetName = RepositorySet)]
    [ValidateNotNullOrEmpty]
    public string DbRoot { get; set; } = "";

    /// <summary>The tenant directory under the root; wildcards select several.</summary>
    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true, ParameterSetName = DefaultSet)]
    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true, ParameterSetName = RepositorySet)]
    [ValidateNotNullOrEmpty]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(DirCompleter))]
    public string Dir { get; set; } = "";

    /// <summary>The object to back up; wildcards select several.</summary>
    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true, ParameterSetName = DefaultSet)]
    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true, ParameterSetName = RepositorySet)]
    [ValidateNotNullOrEmpty]
    [SupportsWildcards]
    [ArgumentCompleter(typeof(ObjectCompleter))]
    public string Object { get; set; } = "";

    /// <summary>Run before the copy to pause writers (a fenced copy).</summary>
    [Parameter]
    public ScriptBlock? QuiesceScript { get; set; }

    /// <summary>Run after the copy, always, when a quiesce script ran.</summary>
    [Parameter]
    public ScriptBlock? ResumeScript { get; set; }

    /// <summary>Store the backup in this repository (a folder or s3://bucket/prefix) instead of a sibling folder.</summary>
    [Parameter(Mandatory = true, ParameterSetName = RepositorySet)]
    [ValidateNotNullOrEmpty]
    public string Repository { get; set; } = "";

    /// <summary>Local backups only: record the outcome in this history folder (outside $DB_ROOT;
    /// default: PSBACKUP_HISTORY_PATH) for Get-BackupHealth / Export-BackupMetric -HistoryPath.</summary>
    [Parameter(ParameterSetName = DefaultSet)]
    [ValidateNotNullOrEmpty]
    public string? HistoryPath { get; set; }
    /// <summary>With -Repository: read every file, even those whose stamp (size, times, inode) shows
    /// them unchanged since this host's latest backup of the object (restic's --force).</summary>
    [Parameter(ParameterSetName = RepositorySet)]
    public SwitchParameter Force { get; set; }

    private RepositoryTarget? _repository;
    private string? _historyPath;

    protected override void PrepareRecord()
    {
        _dbRoot = ResolveFileSystemPath(DbRoot, nameof(DbRoot));
        _repository = ParameterSetName == RepositorySet ? RepositoryTargetFor(Repository) : null;
        _historyPath = HistoryPath is null ? null : GetUnresolvedProviderPathFromPSPath(HistoryPath);
    }

    protected override async Task ProcessRecordAsync()
    {
        var options = new NewObjectBackupOptions(_dbRoot, Dir, Object)
        {
            Quiesce = HookFor(QuiesceScript, "QuiesceScriptFailed", "quiesce"),
            Resume = HookFor(ResumeScript, "ResumeScriptFailed", "resume"),
            Repository = _repository,
            HistoryPath = _historyPath,
            Force = Force.IsPresent,
        };
        PostWriteVerbose(_repository is null
            ? $"Backing up object '{Dir}/{Object}' under '{_dbRoot}'."
            : $"Backing up object '{Dir}/{Object}' under '{_dbRoot}' to the repository {_repository}.");
        await WriteEachAsync(ObjectOperations.BackupEachAsync(options, CreateContext()), result =>
        {
            foreach (string temp in result.StaleTemps)
            {
                PostWriteWarning($"'{temp}' is a temp copy an interrupted run left. Remove it with Clear-StaleArtifact.");
            }
            if (result.Consistency == BackupConsistency.Recent)
            {
                PostWriteWarning($"Backup '{result.BackupName}' is Recent, not Stable: {result.ChangedFiles.Count} file(s) changed during the copy. Use -QuiesceScript/-ResumeScript for a fenced copy.");
            }
        }).ConfigureAwait(false);
    }

    /// <summary>A script block hook the engine can await; it runs on the pipeline thread, and a
    /// script failure becomes a named engine failure.</summary>
    private Func<CancellationToken, Task>? HookFor(ScriptBlock? script, string errorId, string what)
    {
        if (script is null)
        {
            return null;
        }
        return async _ =>
        {
            try
            {
                await InvokeScriptAsync(script).ConfigureAwait(false);
            }
            catch (RuntimeException e) when (e is not PipelineStoppedException)
            {
                throw new OperationFailedException(errorId, $"The {what} script failed: {e.Message}", script.ToString());
            }
        };
    }
}
