using System.Management.Automation;
using PSBackup.Engine;
using PSBackup.Engine.Events;

namespace PSBackup.Commands;

/// <summary>The seed's alerts from the operation history of a repository (default) or a local
/// backup root (-DataDir): consecutive failures, stale backups, size anomalies, WAL gaps and
/// failed or overdue restore drills. Writes one <see cref="HealthAlert"/> per problem, nothing
/// (and an information message) when healthy.</summary>
/// <cli>health</cli>
/// <example>
/// <summary>Check a repository's backups</summary>
/// <code>Get-BackupHealth -Repository ./repo</code>
/// One HealthAlert per problem: consecutive failures, a newest backup older than -MaxAge, a size
/// anomaly, a WAL gap, a failed or overdue restore drill. Nothing (and an information message) when
/// healthy.
/// </example>
/// <example>
/// <summary>Alert on the critical problems of a local backup root</summary>
/// <code>Get-BackupHealth -DataDir ./unison -MaxAge 1h | Where-Object Severity -EQ Critical</code>
/// Critical means a restore right now might fail or lose data; the command line exits 6 on them.
/// </example>
/// <example>
/// <summary>Object backups in a repository, and what killed runs left in the database root</summary>
/// <code>Get-BackupHealth -Repository ./repo -DbRoot ./shard-db</code>
/// Besides the history's alerts, a LeftoverTemp warning per tenant dir that holds temp copies
/// (&lt;object&gt;.backup-*.tmp, &lt;object&gt;.restore-*.tmp) over an hour old, naming them; remove them
/// with Clear-StaleArtifact -Root ./shard-db.
/// </example>
/// <example>
/// <summary>Local object backups recorded in a history folder</summary>
/// <code>Get-BackupHealth -HistoryPath ./history</code>
/// New-ObjectBackup -HistoryPath (or $env:PSBACKUP_HISTORY_PATH) records local object backups there.
/// </example>
[Cmdlet(VerbsCommon.Get, "BackupHealth", DefaultParameterSetName = RepositorySet)]
[OutputType(typeof(HealthAlert))]
public sealed class GetBackupHealthCommand : PSBackupHistoryCmdlet
{
    /// <summary>Alert when the newest successful backup of a kind is older (default 24h): 24h, 2d,
    /// 1d12h or a TimeSpan such as 1.12:00:00, like Remove-ExpiredBackup's -KeepWithin.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? MaxAge { get; set; }

    /// <summary>Alert when the last two successful backups of a kind differ by more than this percentage (default 50).</summary>
    [Parameter]
    [ValidateRange(0.001, double.MaxValue)]
    public double SizeChangeThreshold { get; set; } = 50;

    /// <summary>Alert after this many consecutive failures of a kind (default 2).</summary>
    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    public int FailureThreshold { get; set; } = 2;

    /// <summary>Alert when the last restore drill is older (default 31d); written like -MaxAge.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? MaxRestoreTestAge { get; set; }

    /// <summary>The shard-db root ($DB_ROOT) the object backups copy from: its tenant dirs are also
    /// searched for temp copies a killed backup or restore left (a LeftoverTemp warning naming
    /// them; Clear-StaleArtifact removes them).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? DbRoot { get; set; }

    /// <summary>After writing the alerts, fail (a terminating error, BackupUnhealthy) when any is
    /// Critical, so a scheduled job's exit code says so.</summary>
    [Parameter]
    public SwitchParameter FailOnCritical { get; set; }

    /// <summary>Alert (Critical, WalLagTooHigh) when the oldest WAL record not archived yet is older
    /// than this (default 5min; written like -MaxAge, plus "min" and "s"). Measured where the live
    /// WAL is readable: -DataDir, or -Repository with -LiveDataDir.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? MaxWalLag { get; set; }

    private TimeSpan _maxWalLag;
    private TimeSpan _maxAge;
    private string? _dbRoot;
    private int _critical;
    private TimeSpan _maxRestoreTestAge;

    protected override void PrepareRecord()
    {
        base.PrepareRecord();
        var defaults = new BackupHealthOptions();
        _dbRoot = string.IsNullOrEmpty(DbRoot) ? null : ResolveFileSystemPath(DbRoot, nameof(DbRoot));
        try
        {
            _maxAge = MaxAge is null ? defaults.MaxAge : Durations.Parse(MaxAge);
            _maxRestoreTestAge = MaxRestoreTestAge is null ? defaults.MaxRestoreTestAge : Durations.Parse(MaxRestoreTestAge);
            _maxWalLag = MaxWalLag is null ? defaults.MaxWalLag : Durations.Parse(MaxWalLag);
        }
        catch (InvalidInputException e)
        {
            ThrowTerminatingError(ErrorMapping.ToErrorRecord(e));
        }
    }

    protected override async Task ProcessRecordAsync()
    {
        var options = new BackupHealthOptions
        {
            Repository = SourceRepository,
            DataDir = SourceDataDir,
            HistoryPath = SourceHistoryPath,
            Namespace = Namespace,
            DbRoot = _dbRoot,
            MaxAge = _maxAge,
            SizeChangeThreshold = SizeChangeThreshold,
            FailureThreshold = FailureThreshold,
            MaxRestoreTestAge = _maxRestoreTestAge,
            MaxWalLag = _maxWalLag,
            LiveDataDir = SourceLiveDataDir,
        };
        IReadOnlyList<HealthAlert> alerts = await BackupHealth.GetAlertsAsync(options, CreateContext()).ConfigureAwait(false);
        foreach (HealthAlert alert in alerts)
        {
            await WriteObjectAsync(alert).ConfigureAwait(false);
        }
        Interlocked.Add(ref _critical, alerts.Count(a => a.Severity == HealthSeverity.Critical));
    }

    protected override void EndProcessingOnPipelineThread()
    {
        if (FailOnCritical && _critical > 0)
        {
            ThrowTerminatingError(ErrorMapping.ToErrorRecord(new OperationFailedException("BackupUnhealthy",
                $"Backups are unhealthy: {_critical} critical alert(s) (written above). Fix what they name; -FailOnCritical makes this an error so a scheduled job fails.")));
        }
    }
}
