using System.CommandLine;
using System.Globalization;
using PSBackup.Engine;
using PSBackup.Engine.Events;
using PSBackup.Engine.Repository;

namespace PSBackup.Cli;

/// <summary><c>psbackup health</c> (Get-BackupHealth) and <c>psbackup metrics</c> (Export-BackupMetric).</summary>
public static partial class CliApp
{
    internal static Command HealthCommand()
    {
        var command = new Command("health",
            $"Alerts from the operation history: consecutive failures, stale backups, size anomalies, WAL gaps, failed or overdue restore drills. Exit {ExitCodes.Unhealthy} when any alert is Critical (Get-BackupHealth).");
        var dataDir = new Option<string>("--data-dir") { Description = "Check the local backup roots under <data-dir>/backups." };
        var ns = new Option<string[]>("--namespace") { Description = "Only these namespaces (repeatable; default: all).", AllowMultipleArgumentsPerToken = true };
        var maxAge = new Option<string>("--max-age") { Description = "Newest successful backup older than this is Critical (24h, 2d, 1d12h or d.hh:mm:ss; default 24h)." };
        var sizeChange = new Option<double?>("--size-change-threshold") { Description = "Percent change between the last two backups of a kind that is an anomaly (default 50)." };
        var failures = new Option<int?>("--failure-threshold") { Description = "Consecutive failures that are Critical (default 2)." };
        var drillAge = new Option<string>("--max-restore-test-age") { Description = "Last restore drill older than this is a Warning (like --max-age; default 31d)." };
        Option<string> history = HistoryPathOption("Check the history folder local object backups record into (object backup --history-path).");
        var dbRoot = new Option<string>("--db-root") { Description = "Also search this database root ($DB_ROOT) for temp copies killed object backups or restores left (a LeftoverTemp warning; remove them with 'psbackup sweep')." };
        var maxWalLag = new Option<string>("--max-wal-lag") { Description = "The oldest unarchived WAL record older than this is Critical (5min, 30s, 1h; default 5min). Measured with --data-dir, or --repository with --live-data-dir." };
        var liveData = new Option<string>("--live-data-dir") { Description = "With --repository: the live database's data directory, to measure how far the repository's WAL archive is behind it." };
        foreach (Option o in new Option[] { dataDir, history, dbRoot, ns, maxAge, sizeChange, failures, drillAge, maxWalLag, liveData })
        {
            command.Options.Add(o);
        }
        var repository = AddRepositoryOptions(command, "Check this repository (a folder or s3://bucket/prefix).");
        command.Options.Add(new Option<bool>("--fail-on-critical") { Description = "Accepted for parity with -FailOnCritical: the CLI always exits non-zero when an alert is Critical." });
        AddCommon(command, out Option<bool> json, out _, writes: false);
        command.SetAction((parse, ct) => Run(parse, ct, async io =>
        {
            (RepositoryTarget? target, string? local, string? historyPath) = HealthSource(parse, repository, dataDir, history);
            var defaults = new BackupHealthOptions();
            var options = new BackupHealthOptions
            {
                Repository = target,
                DataDir = local,
                HistoryPath = historyPath,
                Namespace = parse.GetValue(ns),
                DbRoot = parse.GetValue(dbRoot) is { } root ? FullPath(root, "--db-root") : null,
                MaxAge = parse.GetValue(maxAge) is { } age ? Durations.Parse(age) : defaults.MaxAge,
                SizeChangeThreshold = parse.GetValue(sizeChange) ?? defaults.SizeChangeThreshold,
                FailureThreshold = parse.GetValue(failures) ?? defaults.FailureThreshold,
                MaxRestoreTestAge = parse.GetValue(drillAge) is { } drill ? Durations.Parse(drill) : defaults.MaxRestoreTestAge,
                MaxWalLag = parse.GetValue(maxWalLag) is { } walLag ? Durations.Parse(walLag) : defaults.MaxWalLag,
                LiveDataDir = LiveDataDirOf(parse, liveData, target),
            };
            IReadOnlyList<HealthAlert> alerts = await BackupHealth.GetAlertsAsync(options, io.Context(false)).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                io.Stdout.WriteLine(CliOutput.ToJson(new HealthJson(alerts.Count == 0,
                    [.. alerts.Select(a => new HealthAlertJson(a.Severity.ToString(), a.Namespace, HealthAlertKinds.ToName(a.Kind), a.Code, a.Message, a.Time))])));
            }
            else if (alerts.Count == 0)
            {
                io.Stdout.WriteLine("healthy: no alerts");
            }
            else
            {
                var table = new TableWriter().Column("Severity").Column("Namespace").Column("Kind").Column("Code").Column("Message");
                foreach (HealthAlert a in alerts)
                {
                    table.Row(a.Severity.ToString(), a.Namespace, HealthAlertKinds.ToName(a.Kind), a.Code, a.Message);
                }
                table.WriteTo(io.Stdout);
            }
            int critical = alerts.Count(a => a.Severity == HealthSeverity.Critical);
            if (critical > 0)
            {
                throw new UnhealthyException(string.Create(CultureInfo.InvariantCulture, $"unhealthy: {critical} critical alert(s)."));
            }
        }));
        return command;
    }

    internal static Command MetricsCommand()
    {
        var command = new Command("metrics",
            "Prometheus text exposition of the operation history for the node_exporter textfile collector, written atomically to --path (stdout without it) (Export-BackupMetric).");
        var dataDir = new Option<string>("--data-dir") { Description = "Read the local backup roots under <data-dir>/backups." };
        var ns = new Option<string[]>("--namespace") { Description = "Only these namespaces (repeatable; default: all).", AllowMultipleArgumentsPerToken = true };
        var path = new Option<string>("--path") { Description = "The .prom file to write (temp file + rename)." };
        Option<string> history = HistoryPathOption("Read the history folder local object backups record into (object backup --history-path).");
        var liveData = new Option<string>("--live-data-dir") { Description = "With --repository: the live database's data directory, so backup_wal_lag_seconds/records are measured against it." };
        foreach (Option o in new Option[] { dataDir, history, ns, path, liveData })
        {
            command.Options.Add(o);
        }
        var repository = AddRepositoryOptions(command, "Read this repository (a folder or s3://bucket/prefix).");
        AddCommon(command, out Option<bool> json, out Option<bool>? whatIf, writes: true);
        command.SetAction((parse, ct) => Run(parse, ct, async io =>
        {
            (RepositoryTarget? target, string? local, string? historyPath) = HealthSource(parse, repository, dataDir, history);
            string? file = parse.GetValue(path);
            var options = new MetricExportOptions { Repository = target, DataDir = local, HistoryPath = historyPath, Namespace = parse.GetValue(ns), Path = file is null ? null : FullPath(file, "--path"), LiveDataDir = LiveDataDirOf(parse, liveData, target) };
            MetricExportResult? result = await BackupHealth.ExportMetricsAsync(options, io.Context(parse.GetValue(whatIf!))).ConfigureAwait(false);
            if (result is null)
            {
                return;
            }
            if (result.Path is null)
            {
                io.Stdout.Write(result.Text);
            }
            else if (parse.GetValue(json))
            {
                io.Stdout.WriteLine(CliOutput.ToJson(new MetricsJson(result.Path, result.Namespaces, result.Samples, result.Bytes)));
            }
            else
            {
                io.Stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"wrote {result.Samples} samples for {result.Namespaces} namespace(s) to {result.Path}"));
            }
        }));
        return command;
    }

    private static (RepositoryTarget? Target, string? DataDir, string? HistoryPath) HealthSource(ParseResult parse, (Option<string> Repository, RepositoryCliOptions Options) repository,
        Option<string> dataDir, Option<string> history)
    {
        RepositoryTarget? target = RepositoryTargetOf(parse, repository);
        string? local = parse.GetValue(dataDir);
        string? folder = parse.GetValue(history);
        if ((local is null ? 0 : 1) + (target is null ? 0 : 1) + (folder is null ? 0 : 1) != 1)
        {
            throw new InvalidInputException("MissingSource", "Give --data-dir for local backup roots, --repository for a repository or --history-path for a history folder (exactly one).", "--data-dir");
        }
        return (target, local is null ? null : FullPath(local, "--data-dir"), folder is null ? null : FullPath(folder, "--history-path"));
    }

    /// <summary>--live-data-dir, which only goes with --repository (with --data-dir the live WAL is that one).</summary>
    private static string? LiveDataDirOf(System.CommandLine.ParseResult parse, Option<string> option, RepositoryTarget? target)
    {
        string? value = parse.GetValue(option);
        if (value is null)
        {
            return null;
        }
        if (target is null)
        {
            throw new InvalidInputException("LiveDataDirWithoutRepository", "--live-data-dir goes with --repository; with --data-dir the WAL lag is measured against that data directory already.", value);
        }
        return FullPath(value, "--live-data-dir");
    }

    /// <summary><c>health --json</c> (CliJsonContext): the severity as its enum name, the kind as Get-BackupHealth writes it.</summary>
    internal sealed record HealthJson(bool Healthy, IReadOnlyList<HealthAlertJson> Alerts);

    internal sealed record HealthAlertJson(string Severity, string Namespace, string Kind, string Code, string Message, DateTimeOffset? Time);

    /// <summary><c>metrics --path --json</c> (CliJsonContext): the result without the exposition text.</summary>
    internal sealed record MetricsJson(string? Path, int Namespaces, int Samples, long Bytes);
}
