using System.Management.Automation;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Restore;

namespace PSBackup.Commands;

/// <summary>Lays out <c>&lt;TargetDataDir&gt;/&lt;ns&gt;</c> (the store in its engine's shape: UnisonDB's
/// <c>unison.db</c>, or <c>db/</c>; and <c>wal/</c>) so that the database, replaying its
/// WAL on start, holds exactly the state at -TargetTime (what was provably durable then) or
/// -TargetLogIndex: a snapshot plus the archived segments after it, the last one cut. A UnisonDB
/// namespace with no snapshot whose WAL is archived from segment 1 restores from an empty store:
/// <c>wal/</c> alone, which UnisonDB replays from its start. Reads the local backup root or a repository.
/// <para>With -WhatIf nothing is read beyond the listings and nothing is written; the plan
/// (<see cref="PointInTimePlan"/>: snapshot, segments with their cut, last log index, notes) is
/// written to the pipeline so it can be inspected. A target past the last shipped record restores
/// the latest archived state with a warning, and the result's TargetPastArchive is true.</para></summary>
/// <cli>pitr</cli>
/// <example>
/// <summary>Restore a namespace to now</summary>
/// <code>Restore-PointInTime -Repository ./repo -Namespace users -TargetTime (Get-Date) -TargetDataDir ./restored -WarningAction SilentlyContinue</code>
/// The newest snapshot completed by then plus the archived WAL after it, cut at the last record
/// provably durable at the target. A target past the last shipped record restores the latest archived
/// state with a warning (TargetPastArchive).
/// </example>
/// <example>
/// <summary>Restore exactly to a snapshot</summary>
/// <code>$snap = Get-Backup -Repository ./repo -Namespace users -Kind StoreSnapshot | Select-Object -First 1
/// Restore-PointInTime -Repository ./repo -Namespace users -TargetTime $snap.Time -TargetDataDir ./restored</code>
/// A record's Time is the instant point-in-time restore compares (the snapshot's completion), so it
/// restores that snapshot; its WalPosition says up to which log index.
/// </example>
/// <example>
/// <summary>Preview the plan for a log index</summary>
/// <code>$snap = Get-Backup -DataDir ./unison -Namespace users -Kind StoreSnapshot | Select-Object -First 1
/// Restore-PointInTime -DataDir ./unison -Namespace users -TargetLogIndex $snap.Wal.AppliedLogIndex -TargetDataDir ./restored -WhatIf</code>
/// -WhatIf writes the plan (snapshot, segments, where the last one is cut, notes) and nothing else;
/// -TargetLogIndex cuts at an exact record.
/// </example>
[Cmdlet(VerbsData.Restore, "PointInTime", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, DefaultParameterSetName = DefaultSet)]
[OutputType(typeof(PointInTimeRestoreResult), typeof(PointInTimePlan))]
public sealed class RestorePointInTimeCommand : PSBackupRepositoryCmdlet
{
    private const string DefaultSet = "Default";
    private string? _dataDir;
    private string? _targetDataDir;
    private RepositoryTarget? _repository;
    private bool _whatIf;

    /// <summary>The database's data directory. With -Repository it is only where to restore when
    /// -TargetDataDir is not given.</summary>
    /// <remarks>-DataDir and -Repository are in every parameter set, optional and without null
    /// validation: Get-Backup's records carry both and one of them is always null, and PowerShell
    /// binds a null property by name (failing a [ValidateNotNullOrEmpty] parameter). The source
    /// is checked per record in <see cref="PrepareRecord"/>.</remarks>
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    public string? DataDir { get; set; }

    /// <summary>The namespace to restore.</summary>
    [Parameter(Mandatory = true, Position = 1, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(NamespaceCompleter))]
    public string Namespace { get; set; } = "";

    /// <summary>The repository to read snapshots and WAL from (a folder or s3://bucket/prefix).</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? Repository { get; set; }

    /// <summary>Restore what was provably durable at this instant (a DateTime without a zone is local time).</summary>
    [Parameter]
    [InstantTransformation]
    public DateTimeOffset? TargetTime { get; set; }

    /// <summary>Restore up to and including this record.</summary>
    [Parameter]
    [ValidateRange(1L, long.MaxValue)]
    public long? TargetLogIndex { get; set; }

    /// <summary>The data directory to lay the namespace out in; default: -DataDir.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? TargetDataDir { get; set; }

    /// <summary>Replace a non-empty namespace folder (kept aside as <c>&lt;ns&gt;.replaced-&lt;timestamp&gt;</c>).</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    protected override void PrepareRecord()
    {
        if (TargetTime.HasValue == TargetLogIndex.HasValue)
        {
            ThrowTerminatingError(ErrorMapping.ToErrorRecord(new Engine.InvalidInputException("InvalidRestoreTarget",
                "Give exactly one of -TargetTime (restore what was durable at that instant) or -TargetLogIndex (restore up to and including that record).", null)));
        }
        RequireSource(DataDir, Repository, dataDirIsSource: false);
        _whatIf = IsWhatIf();
        _dataDir = string.IsNullOrEmpty(DataDir) ? null : ResolveFileSystemPath(DataDir, nameof(DataDir));
        _targetDataDir = TargetDataDir is null ? null : ResolveFileSystemPath(TargetDataDir, nameof(TargetDataDir));
        _repository = RepositoryTargetFor(Repository);
        if (_repository is not null && _dataDir is null && _targetDataDir is null)
        {
            ThrowTerminatingError(ErrorMapping.ToErrorRecord(new Engine.InvalidInputException("MissingTargetDataDir",
                "Give -TargetDataDir (or -DataDir): the data directory to lay the namespace out in.", null)));
        }
    }

    protected override async Task ProcessRecordAsync()
    {
        var options = new RestorePointInTimeOptions(_dataDir ?? _targetDataDir!, Namespace)
        {
            TargetTime = TargetTime,
            TargetLogIndex = TargetLogIndex,
            TargetDataDir = _targetDataDir,
            Force = Force.IsPresent,
            Repository = _repository,
        };
        PointInTimeRestoreResult result = await RestoreOperations.RestorePointInTimeAsync(options, CreateContext()).ConfigureAwait(false);
        if (result.TargetPastArchive)
        {
            PostWriteWarning($"The target {result.Plan.Target} is past the last shipped record: {(result.Restored ? "restored" : "would restore")} the latest archived state, log index {result.LastLogIndex}. Records written after it were not shipped.");
        }
        if (!result.Restored)
        {
            // Declined: under -WhatIf the plan is the output, to inspect; a "no" at the prompt writes nothing.
            if (_whatIf)
            {
                await WriteObjectAsync(result.Plan).ConfigureAwait(false);
            }
            return;
        }
        await WriteObjectAsync(result).ConfigureAwait(false);
    }
}
