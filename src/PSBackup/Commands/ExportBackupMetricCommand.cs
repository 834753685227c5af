using System.Management.Automation;
using PSBackup.Engine.Events;

namespace PSBackup.Commands;

/// <summary>Writes the operation history of a repository (default) or a local backup root
/// (-DataDir) as Prometheus text exposition to -Path, atomically (temp file + rename), for the
/// node_exporter textfile collector. The result's Text holds the exposition (without -Path only that).</summary>
[Cmdlet(VerbsData.Export, "BackupMetric", DefaultParameterSetName = RepositorySet, SupportsShouldProcess = true)]
[OutputType(typeof(MetricExportResult))]
public sealed class ExportBackupMetricCommand : PSBackupHistoryCmdlet
{
    private string? _path;

    /// <summary>The .prom file to write (e.g. in the textfile collector directory).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Path { get; set; }

    protected override void PrepareRecord()
    {
        base.PrepareRecord();
        _path = Path is null ? null : GetUnresolvedProviderPathFromPSPath(Path);
    }

    protected override async Task ProcessRecordAsync()
    {
        var options = new MetricExportOptions { Repository = SourceRepository, DataDir = SourceDataDir, HistoryPath = SourceHistoryPath, Namespace = Namespace, Path = _path, LiveDataDir = SourceLiveDataDir };
        if (await BackupHealth.ExportMetricsAsync(options, CreateContext()).ConfigureAwait(false) is { } result)
        {
            PostWriteObject(result);
        }
    }
}
