using System.Management.Automation;
using PSBackup.Engine;
using PSBackup.Engine.Events;

namespace PSBackup.Commands;

/// <summary>The seed's alerts from the operation history of a repository (default) or a local
/// backup root (-DataDir): consecutive failures, stale backups, size anomalies, WAL gaps and
/// failed or overdue restore drills. Writes one <see cref="HealthAlert"/> per problem, nothing
/// (and an information message) when healthy.</summary>
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

    /// <summary>Alert (Critical, WalLagTooHigh) when the oldest WAL record not archived yet is older
    /// than this (default 5min; written like -MaxAge, plus "min" and "s"). Measured where the live
    /// WAL is readable: -DataDir, or -Repository with -LiveDataDir.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? MaxWalLag { get; set; }

    private TimeSpan _maxWalLag;
    private TimeSpan _maxAge;
    private TimeSpan _maxRestoreTestAge;

    protected override void PrepareRecord()
    {
        base.PrepareRecord();
        var defaults = new BackupHealthOptions();
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
            PostWriteObject(alert);
        }
    }
}
