using System.Management.Automation;
using PSBackup.Engine.Events;

namespace PSBackup.Commands;

/// <summary>Writes the operation history of a repository (default), a local backup root (-DataDir)
/// or a history folder (-HistoryPath) as Prometheus text exposition: with -Path to that file,
/// atomically (temp file + rename) for the node_exporter textfile collector, and a
/// MetricExportResult saying what was written; without -Path the exposition text itself, to read
/// or to pipe (Set-Content, a push gateway).</summary>
[Cmdlet(VerbsData.Export, "BackupMetric", DefaultParameterSetName = RepositorySet, SupportsShouldProcess = true)]
[OutputType(typeof(MetricExportResult), typeof(string))]
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
        var options = new MetricExportOptions { Repository = SourceRepository, DataDir = SourceDataDir, HistoryPath = SourceHistoryPath, Namespace = Namespace, Path = _path };
        if (await BackupHealth.ExportMetricsAsync(options, CreateContext()).ConfigureAwait(false) is { } result)
        {
            // Without a file the text is the output (what the CLI prints); with one, the record of what was written.
            await WriteObjectAsync(result.Path is null ? result.Text : result).ConfigureAwait(false);
        }
    }
}
