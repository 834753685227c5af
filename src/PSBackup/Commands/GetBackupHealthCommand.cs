using System.Management.Automation;
using PSBackup.Engine.Events;
using PSBackup.Engine.Repository;

namespace PSBackup.Commands;

/// <summary>The seed's alerts from the operation history of a repository (default) or a local
/// backup root (-DataDir): consecutive failures, stale backups, size anomalies, WAL gaps and
/// failed or overdue restore drills. Writes one <see cref="HealthAlert"/> per problem, nothing
/// (and an information message) when healthy.</summary>
[Cmdlet(VerbsCommon.Get, "BackupHealth", DefaultParameterSetName = RepositorySet)]
[OutputType(typeof(HealthAlert))]
public sealed class GetBackupHealthCommand : PSBackupRepositoryCmdlet
{
    private const string DataDirSet = "DataDir";
    private RepositoryTarget? _repository;
    private string? _dataDir;

    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true, ParameterSetName = RepositorySet)]
    [ValidateNotNullOrEmpty]
    public string Repository { get; set; } = "";

    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true, ParameterSetName = DataDirSet)]
    [ValidateNotNullOrEmpty]
    public string DataDir { get; set; } = "";

    /// <summary>Only these namespaces (default: every namespace with backups or history).</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string[]? Namespace { get; set; }

    /// <summary>Alert when the newest successful backup of a kind is older (default 24 h).</summary>
    [Parameter]
    public TimeSpan MaxAge { get; set; } = TimeSpan.FromHours(24);

    /// <summary>Alert when the last two successful backups of a kind differ by more than this percentage (default 50).</summary>
    [Parameter]
    [ValidateRange(0.001, double.MaxValue)]
    public double SizeChangeThreshold { get; set; } = 50;

    /// <summary>Alert after this many consecutive failures of a kind (default 2).</summary>
    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    public int FailureThreshold { get; set; } = 2;

    /// <summary>Alert when the last restore drill is older (default 31 days).</summary>
    [Parameter]
    public TimeSpan MaxRestoreTestAge { get; set; } = TimeSpan.FromDays(31);

    protected override void PrepareRecord()
    {
        _repository = ParameterSetName == RepositorySet ? RepositoryTargetFor(Repository) : null;
        _dataDir = ParameterSetName == DataDirSet ? ResolveFileSystemPath(DataDir, nameof(DataDir)) : null;
    }

    protected override async Task ProcessRecordAsync()
    {
        var options = new BackupHealthOptions
        {
            Repository = _repository,
            DataDir = _dataDir,
            Namespace = Namespace,
            MaxAge = MaxAge,
            SizeChangeThreshold = SizeChangeThreshold,
            FailureThreshold = FailureThreshold,
            MaxRestoreTestAge = MaxRestoreTestAge,
        };
        IReadOnlyList<HealthAlert> alerts = await BackupHealth.GetAlertsAsync(options, CreateContext()).ConfigureAwait(false);
        foreach (HealthAlert alert in alerts)
        {
            PostWriteObject(alert);
        }
    }
}
