using System.Management.Automation;
using PSBackup.Engine.Events;

namespace PSBackup.Commands;

/// <summary>Writes the operation history of a repository (default), a local backup root (-DataDir)
/// or a history folder (-HistoryPath) as Prometheus text exposition: with -Path to that file,
/// atomically (temp file + rename) for the node_exporter textfile collector, and a
/// MetricExportResult saying what was written; without -Path the exposition text itself, to read
/// or to pipe (Set-Content, a push gateway).</summary>
/// <cli>metrics</cli>
/// <example>
/// <summary>Write the textfile-collector file</summary>
/// <code>Export-BackupMetric -Repository ./repo -Path ./psbackup.prom</code>
/// Written to a temporary file and renamed, as node_exporter's textfile collector needs; the result
/// says how many samples it holds.
/// </example>
/// <example>
/// <summary>Read the metrics</summary>
/// <code>Export-BackupMetric -Repository ./repo | Select-String 'backup_last_timestamp_seconds'</code>
/// Without -Path the exposition text itself is the output.
/// </example>
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
        var options = new MetricExportOptions { Repository = SourceRepository, DataDir = SourceDataDir, HistoryPath = SourceHistoryPath, Namespace = Namespace, Path = _path, LiveDataDir = SourceLiveDataDir };
        if (await BackupHealth.ExportMetricsAsync(options, CreateContext()).ConfigureAwait(false) is { } result)
        {
            // Without a file the text is the output (what the CLI prints); with one, the record of what was written.
            await WriteObjectAsync(result.Path is null ? result.Text : result).ConfigureAwait(false);
        }
    }
}
