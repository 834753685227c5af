using System.CommandLine;
using System.Globalization;
using PSBackup.Engine;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Restore;

namespace PSBackup.Cli;

/// <summary><c>psbackup test-restore</c> (Test-Restore): the restore drill.</summary>
public static partial class CliApp
{
    /// <summary>Environment variable holding the restored namespace folder for --validate-command.</summary>
    public const string RestoredPathVariable = "PSBACKUP_RESTORED_PATH";

    internal static Command TestRestoreCommand()
    {
        var command = new Command("test-restore",
            "The restore drill: restore the latest (or a given) snapshot plus every archived WAL segment after it into a scratch folder, verify every byte, run --validate-command, clean up and record the result. Exit 4 when the backup fails verification, 1 when the validation fails (Test-Restore).");
        var dataDir = new Option<string>("--data-dir") { Description = "Drill the local backup root <data-dir>/backups/<namespace>." };
        Option<string> ns = Required("--namespace", "The namespace.");
        var backupId = new Option<string>("--backup-id") { Description = "The snapshot to start from, as 'psbackup list' shows it (repository: manifest id; local: its path under the backup root). Default: the newest." };
        var snapshot = new Option<string>("--snapshot") { Description = "Local: the snapshot's path relative to the backup root (same as --backup-id)." };
        var targetTime = new Option<string>("--target-time") { Description = "Restore what was durable at this time (ISO 8601) instead of the latest." };
        var targetLogIndex = new Option<long?>("--target-log-index") { Description = "Restore up to and including this log index instead of the latest." };
        var scratchPath = new Option<string>("--scratch-path") { Description = "Folder the drill creates its scratch folder in (default: the system temp dir)." };
        var keep = new Option<bool>("--keep") { Description = "Keep the restored copy and print its path." };
        var validate = new Option<string>("--validate-command") { Description = $"Shell command run against the restored copy: the namespace folder is its first argument ($1) and {RestoredPathVariable}; non-zero exit fails the drill." };
        var oracle = new Option<string>("--unison-oracle") { Description = "UnisonDB namespaces: the unisondb-walfs binary whose store-recover replays the restored copy; the drill passes only if UnisonDB's recovery ends at the planned record." };
        var expectedHash = new Option<string>("--expected-content-hash") { Description = "With --unison-oracle: the content hash (store-info's SHA-256) the recovered namespace must have." };
        foreach (Option o in new Option[] { dataDir, ns, backupId, snapshot, targetTime, targetLogIndex, scratchPath, keep, validate, oracle, expectedHash })
        {
            command.Options.Add(o);
        }
        var repository = AddRepositoryOptions(command, "Drill this repository (a folder or s3://bucket/prefix) instead of a local backup root.");
        command.Options.Add(new Option<bool>("--fail-on-error") { Description = "Accepted for parity with -FailOnError: the CLI always exits non-zero when the drill fails." });
        AddCommon(command, out Option<bool> json, out Option<bool>? whatIf, writes: true);
        command.SetAction((parse, ct) => Run(parse, ct, async io =>
        {
            RepositoryTarget? target = RepositoryTargetOf(parse, repository);
            string? local = parse.GetValue(dataDir);
            if ((local is null) == (target is null))
            {
                throw new InvalidInputException("MissingSource", "Give --data-dir for a local backup root or --repository for a repository (exactly one).", "--data-dir");
            }
            string? snap = parse.GetValue(snapshot), id = parse.GetValue(backupId);
            if (snap is not null && target is not null)
            {
                throw new InvalidInputException("SnapshotWithRepository", "--snapshot names a local snapshot; with --repository give --backup-id.", snap);
            }
            if (snap is not null && id is not null && !string.Equals(snap, id, StringComparison.Ordinal))
            {
                throw new InvalidInputException("AmbiguousSnapshot", $"--snapshot '{snap}' and --backup-id '{id}' name different snapshots. Give one of them.", snap);
            }
            string? scratch = parse.GetValue(scratchPath);
            string? validateCommand = parse.GetValue(validate);
            var options = new TestRestoreOptions(parse.GetValue(ns)!)
            {
                DataDir = local is null ? null : FullPath(local, "--data-dir"),
                Repository = target,
                Snapshot = snap ?? id,
                TargetTime = Time(parse.GetValue(targetTime), "--target-time"),
                TargetLogIndex = parse.GetValue(targetLogIndex),
                ScratchPath = scratch is null ? null : FullPath(scratch, "--scratch-path"),
                Keep = parse.GetValue(keep),
                Validation = string.IsNullOrWhiteSpace(validateCommand) ? null : (path, c) => ShellCommand.RunAsync(
                    validateCommand, "validate", "ValidateCommandFailed", io.Stderr, path,
                    new Dictionary<string, string> { [RestoredPathVariable] = path }, c),
                UnisonOracle = parse.GetValue(oracle) is { } o ? FullPath(o, "--unison-oracle") : null,
                ExpectedContentHash = parse.GetValue(expectedHash),
            };
            RestoreDrillResult? result = await RestoreDrill.RunAsync(options, io.Context(parse.GetValue(whatIf!))).ConfigureAwait(false);
            if (result is null)
            {
                return;
            }
            DrillOutput.Result(io.Stdout, result, parse.GetValue(json));
            if (result.RecordError is not null)
            {
                io.Stderr.WriteLine($"psbackup: warning: {OneLine(result.RecordError)}");
            }
            if (!result.Passed)
            {
                throw new PSBackupException(result.FailureKind ?? ErrorKind.Failed, "RestoreDrillFailed",
                    $"The restore drill of namespace '{result.Namespace}' failed: {result.Errors[0]}", result.Snapshot);
            }
        }));
        return command;
    }
}

/// <summary>Table and JSON for test-restore.</summary>
internal static class DrillOutput
{
    public static void Result(TextWriter output, RestoreDrillResult result, bool json)
    {
        if (json)
        {
            output.WriteLine(CliOutput.ToJson(new DrillJson(result.Passed, result.Namespace, result.Snapshot, result.BackupId, result.Repository, result.DataDir,
                result.Segments, result.Bytes, result.LastLogIndex, result.Duration, result.Errors, result.ValidationPassed, result.RestoredPath,
                result.StartedAt, result.EventName, result.RecordError)));
            return;
        }
        var table = new TableWriter().Column("Passed").Column("Namespace").Column("Snapshot")
            .Column("Segments", rightAlign: true).Column("LastLogIndex", rightAlign: true).Column("Size", rightAlign: true).Column("Duration", rightAlign: true);
        table.Row(result.Passed ? "True" : "False", result.Namespace, result.Snapshot ?? "-",
            result.Segments.ToString(CultureInfo.InvariantCulture), result.LastLogIndex?.ToString(CultureInfo.InvariantCulture) ?? "-",
            TableWriter.Size(result.Bytes), result.Duration.ToString("0.0 's'", CultureInfo.InvariantCulture));
        table.WriteTo(output);
        foreach (string error in result.Errors)
        {
            output.WriteLine($"ERROR {error}");
        }
        if (result.RestoredPath is not null)
        {
            output.WriteLine($"Kept the restored copy at {result.RestoredPath}");
        }
    }

    /// <summary><c>test-restore --json</c> (CliJsonContext): the result's fields scripts read, the duration in seconds.</summary>
    internal sealed record DrillJson(bool Passed, string Namespace, string? Snapshot, string? BackupId, string? Repository, string? DataDir,
        int Segments, long Bytes, long? LastLogIndex, double DurationSeconds, IReadOnlyList<string> Errors, bool? ValidationPassed,
        string? RestoredPath, DateTimeOffset StartedAt, string? EventName, string? RecordError);
}
