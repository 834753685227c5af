using System.Management.Automation;
using PSBackup.Engine.Events;
using PSBackup.Engine.Repository;

namespace PSBackup.Commands;

/// <summary>Writes the operation history of a repository (default) or a local backup root
/// (-DataDir) as Prometheus text exposition to -Path, atomically (temp file + rename), for the
/// node_exporter textfile collector. The result's Text holds the exposition (without -Path only that).</summary>
[Cmdlet(VerbsData.Export, "BackupMetric", DefaultParameterSetName = RepositorySet, SupportsShouldProcess = true)]
[OutputType(typeof(MetricExportResult))]
public sealed class ExportBackupMetricCommand : PSBackupRepositoryCmdlet
{
    private const string DataDirSet = "DataDir";
    private const string HistorySet = "History";
    private RepositoryTarget? _repository;
    private string? _dataDir;
    private string? _path;

    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true, ParameterSetName = RepositorySet)]
    [ValidateNotNullOrEmpty]
    public string Repository { get; set; } = "";

    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true, ParameterSetName = DataDirSet)]
    [ValidateNotNullOrEmpty]
    public string DataDir { get; set; } = "";

    /// <summary>Read the history folder local object backups record into (New-ObjectBackup -HistoryPath).</summary>
    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true, ParameterSetName = HistorySet)]
    [ValidateNotNullOrEmpty]
    public string HistoryPath { get; set; } = "";

    private string? _historyPath;

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string[]? Namespace { get; set; }

    /// <summary>The .prom file to write (e.g. in the textfile collector directory).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Path { get; set; }

    protected override void PrepareRecord()
    {
        _repository = ParameterSetName == RepositorySet ? RepositoryTargetFor(Repository) : null;
        _dataDir = ParameterSetName == DataDirSet ? ResolveFileSystemPath(DataDir, nameof(DataDir)) : null;
        _historyPath = ParameterSetName == HistorySet ? ResolveFileSystemPath(HistoryPath, nameof(HistoryPath)) : null;
        _path = Path is null ? null : GetUnresolvedProviderPathFromPSPath(Path);
    }

    protected override async Task ProcessRecordAsync()
    {
        var options = new MetricExportOptions { Repository = _repository, DataDir = _dataDir, HistoryPath = _historyPath, Namespace = Namespace, Path = _path };
        if (await BackupHealth.ExportMetricsAsync(options, CreateContext()).ConfigureAwait(false) is { } result)
        {
            PostWriteObject(result);
        }
    }
}
