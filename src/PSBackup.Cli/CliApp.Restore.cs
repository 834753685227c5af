using System.CommandLine;
using System.Globalization;
using PSBackup.Engine;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Restore;

namespace PSBackup.Cli;

/// <summary><c>snapshot restore</c> (Restore-StoreSnapshot) and <c>pitr</c> (Restore-PointInTime),
/// each reading a local backup root (--data-dir) or a repository (--repository).</summary>
public static partial class CliApp
{
    private static Command SnapshotRestoreCommand()
    {
        var command = new Command("restore", "Verify a store snapshot and swap it in as <target-data-dir>/<namespace>/unison.db (UnisonDB; with the archived WAL at its checkpoint when the target has no wal/, else a warning) or /db, keeping the replaced store aside (Restore-StoreSnapshot).");
        var dataDir = new Option<string>("--data-dir") { Description = "The data directory; its backups are read from <data-dir>/backups/<namespace> (local mode), and it is the default --target-data-dir." };
        Option<string> ns = Required("--namespace", "The namespace.");
        var snapshot = new Option<string>("--snapshot") { Description = "The snapshot's path relative to <data-dir>/backups/<namespace> (local mode); default: the newest." };
        var backupId = new Option<string>("--backup-id") { Description = "The snapshot's backup id in the repository (repository mode); default: the newest." };
        var targetDataDir = new Option<string>("--target-data-dir") { Description = "The data directory to restore into; default: --data-dir." };
        var force = new Option<bool>("--force") { Description = "Replace a non-empty db/ (kept aside as db.replaced-<timestamp>). Stop the database first." };
        foreach (Option option in new Option[] { dataDir, ns, snapshot, backupId, targetDataDir, force })
        {
            command.Options.Add(option);
        }
        var repository = AddRepositoryOptions(command, "Read the snapshot from this repository (a folder or s3://bucket/prefix) instead of <data-dir>/backups.");
        AddCommon(command, out Option<bool> json, out Option<bool>? whatIf, writes: true);
        command.SetAction((parse, ct) => Run(parse, ct, async io =>
        {
            RepositoryTarget? target = RepositoryTargetOf(parse, repository);
            (string data, string? into) = RestoreDirs(parse.GetValue(dataDir), parse.GetValue(targetDataDir), target);
            string? picked = PickOne(parse.GetValue(snapshot), "--snapshot", parse.GetValue(backupId), "--backup-id", target);
            var options = new RestoreStoreSnapshotOptions(data, parse.GetValue(ns)!)
            {
                Snapshot = picked,
                TargetDataDir = into,
                Force = parse.GetValue(force),
                Repository = target,
            };
            StoreSnapshotRestoreResult? result = await RestoreOperations.RestoreSnapshotAsync(options, io.Context(parse.GetValue(whatIf!))).ConfigureAwait(false);
            if (result is not null)
            {
                if (result.Warning is { } warning)
                {
                    io.Stderr.WriteLine($"psbackup: warning: {warning}");
                }
                CliOutput.SnapshotRestore(io.Stdout, result, parse.GetValue(json));
            }
        }));
        return command;
    }

    private static Command PitrCommand()
    {
        var command = new Command("pitr", "Lay out <target-data-dir>/<namespace>/{unison.db or db, wal} so the database replays to exactly --target-time or --target-log-index (Restore-PointInTime); with no snapshot, a UnisonDB WAL archived from segment 1 restores from an empty store (wal/ alone).");
        var dataDir = new Option<string>("--data-dir") { Description = "The data directory; its backups are read from <data-dir>/backups/<namespace> (local mode), and it is the default --target-data-dir." };
        Option<string> ns = Required("--namespace", "The namespace.");
        var targetTime = new Option<string>("--target-time") { Description = "Restore what was provably durable at this instant (ISO 8601, e.g. 2026-03-01T12:00:00Z; without an offset: UTC)." };
        var targetLogIndex = new Option<long?>("--target-log-index") { Description = "Restore up to and including this record." };
        var targetDataDir = new Option<string>("--target-data-dir") { Description = "The data directory to lay the namespace out in; default: --data-dir." };
        var force = new Option<bool>("--force") { Description = "Replace a non-empty namespace folder (kept aside as <namespace>.replaced-<timestamp>). Stop the database first." };
        foreach (Option option in new Option[] { dataDir, ns, targetTime, targetLogIndex, targetDataDir, force })
        {
            command.Options.Add(option);
        }
        var repository = AddRepositoryOptions(command, "Read snapshots and WAL from this repository (a folder or s3://bucket/prefix) instead of <data-dir>/backups.");
        AddCommon(command, out Option<bool> json, out Option<bool>? whatIf, writes: true);
        command.SetAction((parse, ct) => Run(parse, ct, async io =>
        {
            DateTimeOffset? time = ParseTime(parse.GetValue(targetTime));
            RestoreTarget.From(time, parse.GetValue(targetLogIndex)); // exactly one, before anything else
            RepositoryTarget? target = RepositoryTargetOf(parse, repository);
            (string data, string? into) = RestoreDirs(parse.GetValue(dataDir), parse.GetValue(targetDataDir), target);
            var options = new RestorePointInTimeOptions(data, parse.GetValue(ns)!)
            {
                TargetTime = time,
                TargetLogIndex = parse.GetValue(targetLogIndex),
                TargetDataDir = into,
                Force = parse.GetValue(force),
                Repository = target,
            };
            bool asJson = parse.GetValue(json);
            PointInTimeRestoreResult result = await RestoreOperations.RestorePointInTimeAsync(options, io.Context(parse.GetValue(whatIf!))).ConfigureAwait(false);
            if (result.TargetPastArchive)
            {
                io.Stderr.WriteLine($"psbackup: warning: the target {result.Plan.Target} is past the last shipped record; {(result.Restored ? "restored" : "would restore")} the latest archived state, log index {result.LastLogIndex}. Records written after it were not shipped.");
            }
            if (result.Restored)
            {
                CliOutput.PointInTime(io.Stdout, result, asJson);
            }
            else
            {
                CliOutput.Plan(io.Stdout, result.Plan, asJson);
            }
        }));
        return command;
    }

    /// <summary>The data dir the engine gets and where to restore: local mode needs --data-dir;
    /// repository mode needs --data-dir or --target-data-dir.</summary>
    private static (string DataDir, string? TargetDataDir) RestoreDirs(string? dataDir, string? targetDataDir, RepositoryTarget? repository)
    {
        string? into = targetDataDir is null ? null : FullPath(targetDataDir, "--target-data-dir");
        if (dataDir is not null)
        {
            return (FullPath(dataDir, "--data-dir"), into);
        }
        if (repository is null)
        {
            throw new InvalidInputException("MissingDataDir", "Give --data-dir (its backups are read from <data-dir>/backups/<namespace>), or --repository with --target-data-dir.", "--data-dir");
        }
        return into is null
            ? throw new InvalidInputException("MissingTargetDataDir", "Give --target-data-dir (or --data-dir): the data directory to restore into.", "--target-data-dir")
            : (into, into);
    }

    /// <summary>The local option in local mode, the repository option in repository mode; never the other.</summary>
    private static string? PickOne(string? localValue, string localOption, string? repositoryValue, string repositoryOption, RepositoryTarget? repository)
    {
        if (repository is null && repositoryValue is not null)
        {
            throw new InvalidInputException("RepositoryOptionWithoutRepository", $"{repositoryOption} only applies to a repository. Add --repository, or give {localOption}.", repositoryOption);
        }
        if (repository is not null && localValue is not null)
        {
            throw new InvalidInputException("LocalOptionWithRepository", $"{localOption} names a local backup; with --repository give {repositoryOption}.", localOption);
        }
        return repository is null ? localValue : repositoryValue;
    }

    private static DateTimeOffset? ParseTime(string? value)
    {
        if (value is null)
        {
            return null;
        }
        if (DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out DateTimeOffset t))
        {
            return t;
        }
        throw new InvalidInputException("InvalidTargetTime", $"--target-time '{value}' is not a time. Give ISO 8601, e.g. 2026-03-01T12:00:00Z.", value);
    }
}
