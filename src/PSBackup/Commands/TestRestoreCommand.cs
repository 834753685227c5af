using System.Management.Automation;
using PSBackup.Engine;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Restore;

namespace PSBackup.Commands;

/// <summary>The restore drill: restores the latest (or a given) snapshot of a namespace plus every
/// archived WAL segment after it (or up to -TargetTime/-TargetLogIndex) into a scratch folder,
/// verifies every byte, runs -ValidationScript with the restored namespace folder, removes the
/// copy unless -Keep, records the outcome as a restore-drill event and returns it. A failed drill
/// is a result with Passed = $false (and a warning per error), not an error; bad input is.</summary>
/// <cli>test-restore</cli>
/// <example>
/// <summary>The monthly restore drill</summary>
/// <code>Test-Restore -Repository ./repo -Namespace users</code>
/// Restores the newest snapshot and every archived segment after it into a scratch folder, verifies
/// every byte, removes the copy and records the outcome (Get-BackupHealth and Export-BackupMetric read
/// it). A failed drill is a result with Passed = False, not an error.
/// </example>
/// <example>
/// <summary>A drill with a check of your own</summary>
/// <code>Test-Restore -DataDir ./unison -Namespace users -ValidationScript { param($Path) Test-Path (Join-Path $Path 'db') }</code>
/// The script gets the restored namespace folder; the drill fails when it throws or outputs $false.
/// </example>
[Cmdlet(VerbsDiagnostic.Test, "Restore", SupportsShouldProcess = true, DefaultParameterSetName = DataDirSet)]
[OutputType(typeof(RestoreDrillResult))]
public sealed class TestRestoreCommand : PSBackupRepositoryCmdlet
{
    private const string DataDirSet = "DataDir";
    private string? _dataDir;
    private string? _scratchPath;
    private RepositoryTarget? _repository;

    /// <summary>The data directory whose local backup root (&lt;DataDir&gt;/backups/&lt;Namespace&gt;) is drilled.</summary>
    /// <remarks>-DataDir and -Repository are in every parameter set, optional and without null
    /// validation: Get-Backup's records carry both and one of them is always null, and PowerShell
    /// binds a null property by name (failing a [ValidateNotNullOrEmpty] parameter, or latching
    /// on to the wrong parameter set). Exactly one is checked per record in <see cref="PrepareRecord"/>.</remarks>
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    public string? DataDir { get; set; }

    /// <summary>The repository to drill: a folder or s3://bucket/prefix.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? Repository { get; set; }

    /// <summary>The namespace to drill.</summary>
    [Parameter(Mandatory = true, Position = 1, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(NamespaceCompleter))]
    public string Namespace { get; set; } = "";

    /// <summary>The snapshot to start from, as Get-Backup reports it: the manifest id in a
    /// repository, the snapshot's path under the backup root locally. Default: the newest.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(StoreSnapshotIdCompleter))]
    public string? BackupId { get; set; }

    /// <summary>Local: the snapshot's path relative to the backup root (New-StoreSnapshot -Path); same as -BackupId.</summary>
    [Parameter(ParameterSetName = DataDirSet)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(StoreSnapshotIdCompleter))]
    public string? Snapshot { get; set; }

    /// <summary>Restore what was durable at this time instead of the latest.</summary>
    [Parameter]
    [InstantTransformation]
    public DateTimeOffset? TargetTime { get; set; }

    /// <summary>Restore up to and including this record instead of the latest.</summary>
    [Parameter]
    [ValidateRange(1L, long.MaxValue)]
    public long? TargetLogIndex { get; set; }

    /// <summary>Where the drill creates its scratch folder (default: the system temp dir).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? ScratchPath { get; set; }

    /// <summary>Keep the restored copy and report its path (RestoredPath).</summary>
    [Parameter]
    public SwitchParameter Keep { get; set; }

    /// <summary>Run against the restored copy with its namespace folder as the first argument
    /// (<c>param($Path)</c>); the drill fails if it throws or outputs $false.</summary>
    [Parameter]
    [ValidateNotNull]
    public ScriptBlock? ValidationScript { get; set; }

    /// <summary>UnisonDB namespaces: the <c>unisondb-walfs</c> binary (built from UnisonDB's own code)
    /// whose <c>store-recover</c> replays the restored copy from its checkpoint; the drill passes only
    /// if UnisonDB's recovery ends exactly at the planned last record.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? UnisonOracle { get; set; }

    /// <summary>With -UnisonOracle: the content hash (SHA-256, as store-info prints it) the recovered
    /// namespace must have.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? ExpectedContentHash { get; set; }

    protected override void PrepareRecord()
    {
        RequireSource(DataDir, Repository, dataDirIsSource: true);
        _repository = RepositoryTargetFor(Repository);
        _dataDir = string.IsNullOrEmpty(DataDir) ? null : ResolveFileSystemPath(DataDir, nameof(DataDir));
        _scratchPath = ScratchPath is null ? null : ResolveFileSystemPath(ScratchPath, nameof(ScratchPath));
        if (Snapshot is not null && BackupId is not null && !string.Equals(Snapshot, BackupId, StringComparison.Ordinal))
        {
            ThrowTerminatingError(ErrorMapping.ToErrorRecord(new InvalidInputException("AmbiguousSnapshot",
                $"-Snapshot '{Snapshot}' and -BackupId '{BackupId}' name different snapshots. Give one of them.", Snapshot)));
        }
    }

    protected override async Task ProcessRecordAsync()
    {
        var options = new TestRestoreOptions(Namespace)
        {
            DataDir = _dataDir,
            Repository = _repository,
            Snapshot = Snapshot ?? BackupId,
            TargetTime = TargetTime,
            TargetLogIndex = TargetLogIndex,
            ScratchPath = _scratchPath,
            Keep = Keep.IsPresent,
            Validation = ValidationFor(ValidationScript),
            UnisonOracle = UnisonOracle is null ? null : ResolveFileSystemPath(UnisonOracle, nameof(UnisonOracle)),
            ExpectedContentHash = ExpectedContentHash,
        };
        RestoreDrillResult? result = await RestoreDrill.RunAsync(options, CreateContext()).ConfigureAwait(false);
        if (result is null)
        {
            return;
        }
        foreach (string error in result.Errors)
        {
            PostWriteWarning($"Restore drill of '{result.Namespace}' failed: {error}");
        }
        if (result.RecordError is not null)
        {
            PostWriteWarning(result.RecordError);
        }
        await WriteObjectAsync(result).ConfigureAwait(false);
        if (!result.Passed)
        {
            lock (_failed)
            {
                _failed.Add(result.Namespace);
            }
        }
    }

    /// <summary>After writing the result, fail (a terminating error, RestoreTestFailed) when the
    /// drill did not pass, so a scheduled job's exit code says so.</summary>
    [Parameter]
    public SwitchParameter FailOnError { get; set; }

    private readonly List<string> _failed = [];

    protected override void EndProcessingOnPipelineThread()
    {
        if (FailOnError && _failed.Count > 0)
        {
            ThrowTerminatingError(ErrorMapping.ToErrorRecord(new Engine.IntegrityException("RestoreTestFailed",
                $"The restore drill failed for {string.Join(", ", _failed)}; the warnings above say why.")));
        }
    }

    /// <summary>The script runs on the pipeline thread; a throw or a $false output fails the drill.</summary>
    private Func<string, CancellationToken, Task>? ValidationFor(ScriptBlock? script)
    {
        if (script is null)
        {
            return null;
        }
        return async (path, _) =>
        {
            System.Collections.ObjectModel.Collection<PSObject> output;
            try
            {
                output = await InvokeOnPipelineThread(() => script.Invoke(path)).ConfigureAwait(false);
            }
            catch (PipelineStoppedException)
            {
                throw new OperationCanceledException(CancelToken);
            }
            catch (RuntimeException e)
            {
                throw new OperationFailedException("ValidationScriptFailed", $"The validation script failed: {e.Message}", script.ToString());
            }
            if (output.Count > 0 && output[^1]?.BaseObject is false)
            {
                throw new OperationFailedException("ValidationScriptFailed", "The validation script returned $false.", script.ToString());
            }
        };
    }
}
