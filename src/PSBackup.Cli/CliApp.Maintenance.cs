using System.CommandLine;
using System.Globalization;
using PSBackup.Engine;
using PSBackup.Engine.Repository;

namespace PSBackup.Cli;

/// <summary>Repository maintenance commands: <c>list</c> (Get-Backup), <c>check</c>
/// (Test-BackupRepository) and <c>sync</c> (Sync-BackupRepository).</summary>
public static partial class CliApp
{
    private static void AddMaintenanceCommands(RootCommand root)
    {
        root.Subcommands.Add(ListCommand());
        root.Subcommands.Add(CheckCommand());
        root.Subcommands.Add(SyncCommand());
        root.Subcommands.Add(RepairCommand());
    }

    private static Command ListCommand()
    {
        var command = new Command("list", "List the backups of a repository (--repository), of a namespace's local backup root (--data-dir --namespace) or of a tenant dir's local object backups (--db-root --dir) (Get-Backup).");
        var repository = new Option<string>("--repository") { Description = "The repository: a folder or s3://bucket/prefix." };
        var dataDir = new Option<string>("--data-dir") { Description = "List <data-dir>/backups/<namespace>: store snapshots and shipped WAL segments." };
        var dbRoot = new Option<string>("--db-root") { Description = "List the local object backups under <db-root>/<dir>." };
        var ns = new Option<string>("--namespace") { Description = "Only this namespace (required with --data-dir)." };
        var dir = new Option<string>("--dir") { Description = "Only this tenant dir (required with --db-root)." };
        var obj = new Option<string>("--object") { Description = "Only this object." };
        var kind = new Option<string>("--kind") { Description = "Only this kind: object, store-snapshot or wal-segment." };
        kind.AcceptOnlyFromAmong("object", "store-snapshot", "wal-segment");
        var after = new Option<string>("--after") { Description = "Only backups taken at or after this time (ISO 8601; local time unless it carries an offset or Z)." };
        var before = new Option<string>("--before") { Description = "Only backups taken at or before this time (ISO 8601)." };
        foreach (Option o in new Option[] { repository, dataDir, dbRoot, ns, dir, obj, kind, after, before })
        {
            command.Options.Add(o);
        }
        var repo = new RepositoryCliOptions(command);
        AddCommon(command, out Option<bool> json, out _, writes: false);
        command.SetAction((parse, ct) => Run(parse, ct, async io =>
        {
            string? d = parse.GetValue(dataDir), r = parse.GetValue(dbRoot);
            var options = new GetBackupOptions
            {
                Repository = repo.Target(parse, parse.GetValue(repository)),
                DataDir = d is null ? null : FullPath(d, "--data-dir"),
                DbRoot = r is null ? null : FullPath(r, "--db-root"),
                Namespace = parse.GetValue(ns),
                Dir = parse.GetValue(dir),
                Object = parse.GetValue(obj),
                Kind = parse.GetValue(kind) is { } k ? BackupKinds.Parse(k) : null,
                After = Time(parse.GetValue(after), "--after"),
                Before = Time(parse.GetValue(before), "--before"),
            };
            BackupListing listing = await BackupCatalog.ListDetailedAsync(options, io.Context(whatIf: false)).ConfigureAwait(false);
            MaintenanceOutput.List(io.Stdout, listing.Backups, parse.GetValue(json));
            foreach (BackupRecord record in listing.Backups.Where(b => b.Problem is not null))
            {
                io.Stderr.WriteLine($"psbackup: warning: backup {record.BackupId} cannot be restored as it stands: {record.Problem}. Run 'psbackup repair'.");
            }
            foreach (DamagedBackup damaged in listing.Damaged)
            {
                io.Stderr.WriteLine($"psbackup: damaged: {OneLine(damaged.Message)}");
            }
            if (listing.Damaged.Count > 0)
            {
                throw new IntegrityException("DamagedBackups",
                    $"{listing.Damaged.Count} manifest(s) in {options.Repository?.Location} are damaged and were not listed (see above); the other backups are listed. Remove them with 'psbackup prune'.",
                    options.Repository?.Location);
            }
        }));
        return command;
    }

    private static Command CheckCommand()
    {
        var command = new Command("check", "Check a repository's structure and references; --read-data also verifies every stored byte. Exit 4 when it finds damage (Test-BackupRepository).");
        var repository = new Option<string>("--repository") { Description = "The repository: a folder or s3://bucket/prefix.", Required = true };
        var readData = new Option<bool>("--read-data") { Description = "Download every pack and verify every frame and chunk." };
        command.Options.Add(repository);
        command.Options.Add(readData);
        var repo = new RepositoryCliOptions(command);
        command.Options.Add(new Option<bool>("--fail-on-error") { Description = "Accepted for parity with -FailOnError: the CLI always exits 4 when the check finds damage." });
        AddCommon(command, out Option<bool> json, out _, writes: false);
        command.SetAction((parse, ct) => Run(parse, ct, async io =>
        {
            var options = new TestBackupRepositoryOptions(repo.Target(parse, parse.GetValue(repository))!) { ReadData = parse.GetValue(readData) };
            RepositoryCheckResult result = await RepositoryCheckOperation.CheckAsync(options, io.Context(whatIf: false)).ConfigureAwait(false);
            MaintenanceOutput.Check(io.Stdout, result, parse.GetValue(json));
            if (!result.Passed)
            {
                RepositoryCheckFinding first = result.Errors[0];
                throw new IntegrityException("RepositoryCheckFailed",
                    $"The check found {result.ErrorCount} error(s) in {result.Repository}; first: {first.Code}{(first.BackupId is null ? "" : $" in backup {first.BackupId}")}{(first.File is null ? "" : $", file '{first.File}'")}.",
                    result.Repository);
            }
        }));
        return command;
    }

    private static Command RepairCommand()
    {
        var command = new Command("repair", "Repair a repository: salvage damaged packs, store lacking chunks from --source-path, rebuild the index, drop dangling refs (Repair-BackupRepository). Exit 4 when backups remain unrestorable.");
        var repository = new Option<string>("--repository") { Description = "The repository: a folder or s3://bucket/prefix.", Required = true };
        var sourcePath = new Option<string[]>("--source-path") { Description = "A folder or file still holding the original data (repeatable): chunks the repository lacks are stored again from it.", AllowMultipleArgumentsPerToken = false };
        var readData = new Option<bool>("--read-data") { Description = "Verify every pack, not only those known to be damaged." };
        command.Options.Add(repository);
        command.Options.Add(sourcePath);
        command.Options.Add(readData);
        var repo = new RepositoryCliOptions(command);
        AddCommon(command, out Option<bool> json, out Option<bool>? whatIf, writes: true);
        command.SetAction((parse, ct) => Run(parse, ct, async io =>
        {
            var options = new RepairBackupRepositoryOptions(repo.Target(parse, parse.GetValue(repository))!)
            {
                SourcePath = parse.GetValue(sourcePath)?.Select(p => FullPath(p, "--source-path")).ToList(),
                ReadData = parse.GetValue(readData),
            };
            RepairResult result = await RepositoryRepair.RepairAsync(options, io.Context(parse.GetValue(whatIf!))).ConfigureAwait(false);
            MaintenanceOutput.Repair(io.Stdout, result, parse.GetValue(json));
            if (result.Applied && !result.Repaired)
            {
                foreach (UnrepairedFile f in result.Unrepaired)
                {
                    io.Stderr.WriteLine($"psbackup: unrepaired: {AsOptions(OneLine(f.Message))}");
                }
                foreach (string m in result.DamagedManifests)
                {
                    io.Stderr.WriteLine($"psbackup: damaged: {OneLine(m)}");
                }
                throw RepositoryRepair.IncompleteError(result);
            }
        }));
        return command;
    }

    private static Command SyncCommand()
    {
        var command = new Command("sync", "Copy a repository, or a local backup root, to a folder, s3:// prefix or Azure Blob container: only what is missing, verifying each object (Sync-BackupRepository).");
        var source = new Option<string>("--source") { Description = "A repository (folder, s3://bucket/prefix or az://account/container/prefix), or a local backup folder such as <data-dir>/backups.", Required = true };
        var destination = new Option<string>("--destination") { Description = "A folder, s3://bucket/prefix or az://account/container/prefix: empty, or an earlier copy of the source.", Required = true };
        command.Options.Add(source);
        command.Options.Add(destination);
        var repo = new RepositoryCliOptions(command);
        var destinationStorage = new RepositoryCliOptions(command, prefix: "destination");
        AddCommon(command, out Option<bool> json, out Option<bool>? whatIf, writes: true);
        command.SetAction((parse, ct) => Run(parse, ct, async io =>
        {
            RepositoryTarget from = repo.Target(parse, parse.GetValue(source))!;
            RepositoryTarget to = repo.Target(parse, parse.GetValue(destination))!;
            // --destination-* options describe the destination; without them the plain storage
            // options apply to both sides (each side ignores those of another kind of storage).
            if (destinationStorage.FirstGiven(parse) is not null)
            {
                to = destinationStorage.StorageOptionsOnto(parse, to).WithSasSplitOff();
            }
            var options = new SyncBackupRepositoryOptions(from, to);
            SyncResult result = await RepositorySync.SyncAsync(options, io.Context(parse.GetValue(whatIf!))).ConfigureAwait(false);
            MaintenanceOutput.Sync(io.Stdout, result, parse.GetValue(json));
            foreach (string damaged in result.DamagedSkipped)
            {
                io.Stderr.WriteLine($"psbackup: warning: {damaged}");
            }
            if (result.DamagedSkipped.Count > 0)
            {
                throw RepositorySync.DamagedError(result);
            }
        }));
        return command;
    }

    private static DateTimeOffset? Time(string? value, string option)
    {
        if (value is null)
        {
            return null;
        }
        return DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeLocal, out DateTimeOffset t)
            ? t
            : throw new InvalidInputException("InvalidTime", $"{option} '{value}' is not a time. Use ISO 8601, e.g. 2025-01-08T14:30:00Z.", value);
    }
}

/// <summary>Tables and JSON for list, check and sync.</summary>
internal static class MaintenanceOutput
{
    public static void List(TextWriter output, IReadOnlyList<BackupRecord> records, bool json)
    {
        if (json)
        {
            output.WriteLine(CliOutput.ToJson(new ListJson([.. records.Select(r => new ListItemJson(r.Repository, r.BackupId, BackupKinds.ToName(r.Kind),
                r.Namespace, r.Dir, r.Object, r.Time, r.Bytes, r.FileCount, r.Complete, r.Host, r.Consistency, r.SegmentId, r.FirstLogIndex,
                r.EntryCount, r.Sealed, r.Wal, r.Path, r.Problem))])));
            return;
        }
        if (records.Count == 0)
        {
            output.WriteLine("No backups.");
            return;
        }
        var table = new TableWriter().Column("Time").Column("Kind").Column("Of").Column("Files", rightAlign: true)
            .Column("Size", rightAlign: true).Column("BackupId");
        foreach (BackupRecord r in records)
        {
            string of = r.Namespace ?? $"{r.Dir}/{r.Object}";
            if (r.SegmentId is { } s)
            {
                of += $" #{s}{(r.Sealed == false ? " (partial)" : "")}";
            }
            table.Row(r.Time.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture),
                BackupKinds.ToName(r.Kind) + (r.Complete ? "" : " (incomplete)") + (r.Problem is null ? "" : " (DAMAGED)"), of,
                r.FileCount.ToString(CultureInfo.InvariantCulture), TableWriter.Size(r.Bytes), r.BackupId);
        }
        table.WriteTo(output);
    }

    public static void Check(TextWriter output, RepositoryCheckResult result, bool json)
    {
        if (json)
        {
            output.WriteLine(CliOutput.ToJson(result));
            return;
        }
        var table = new TableWriter().Column("Passed").Column("Errors", rightAlign: true).Column("Warnings", rightAlign: true)
            .Column("Backups", rightAlign: true).Column("Packs", rightAlign: true).Column("Stored", rightAlign: true).Column("Read", rightAlign: true);
        table.Row(result.Passed ? "True" : "False", result.ErrorCount.ToString(CultureInfo.InvariantCulture), result.WarningCount.ToString(CultureInfo.InvariantCulture),
            result.Backups.ToString(CultureInfo.InvariantCulture), result.Packs.ToString(CultureInfo.InvariantCulture),
            TableWriter.Size(result.StoredBytes), result.ReadData ? TableWriter.Size(result.BytesRead) : "-");
        table.WriteTo(output);
        foreach (RepositoryCheckFinding f in result.Errors.Concat(result.Warnings))
        {
            string where = string.Join(", ", new[] { f.BackupId is null ? null : $"backup {f.BackupId}", f.File is null ? null : $"file '{f.File}'", f.ObjectKey is null ? null : $"object {f.ObjectKey}" }.OfType<string>());
            output.WriteLine($"{f.Severity.ToUpperInvariant()} {f.Code}{(where.Length > 0 ? $" ({where})" : "")}: {f.Message}");
        }
    }

    public static void Repair(TextWriter output, RepairResult result, bool json)
    {
        if (json)
        {
            output.WriteLine(CliOutput.ToJson(result));
            return;
        }
        var table = new TableWriter().Column("Applied").Column("Verified", rightAlign: true).Column("Damaged", rightAlign: true)
            .Column("Missing", rightAlign: true).Column("Salvaged", rightAlign: true).Column("Restored", rightAlign: true)
            .Column("Stored", rightAlign: true).Column("Unrepaired", rightAlign: true);
        table.Row(result.Applied ? "yes" : "no (what if)", result.PacksVerified.ToString(CultureInfo.InvariantCulture),
            result.DamagedPacks.Count.ToString(CultureInfo.InvariantCulture), result.MissingPacks.Count.ToString(CultureInfo.InvariantCulture),
            result.ChunksSalvaged.ToString(CultureInfo.InvariantCulture), result.ChunksRestored.ToString(CultureInfo.InvariantCulture),
            TableWriter.Size(result.StoredBytes), (result.Unrepaired.Count + result.DamagedManifests.Count).ToString(CultureInfo.InvariantCulture));
        table.WriteTo(output);
        output.WriteLine($"Index objects written {result.IndexObjectsWritten}, removed {result.IndexObjectsRemoved}; packs reindexed {result.PacksReindexed}, removed {result.PacksRemoved}; refs removed {result.RefsRemoved}, written {result.RefsWritten}; temp files removed {result.TempFilesRemoved}.");
    }

    public static void Sync(TextWriter output, SyncResult result, bool json)
    {
        if (json)
        {
            output.WriteLine(CliOutput.ToJson(result));
            return;
        }
        var table = new TableWriter().Column("Mode").Column("Copied", rightAlign: true).Column("CopiedSize", rightAlign: true)
            .Column("Skipped", rightAlign: true).Column("SkippedSize", rightAlign: true).Column("Declined", rightAlign: true).Column("Ignored", rightAlign: true);
        table.Row(result.Mode, result.Copied.ToString(CultureInfo.InvariantCulture), TableWriter.Size(result.CopiedBytes),
            result.Skipped.ToString(CultureInfo.InvariantCulture), TableWriter.Size(result.SkippedBytes),
            result.Declined.ToString(CultureInfo.InvariantCulture), result.Ignored.ToString(CultureInfo.InvariantCulture));
        table.WriteTo(output);
    }

    /// <summary><c>list --json</c> (CliJsonContext): the kind as Get-Backup names it.</summary>
    internal sealed record ListJson(IReadOnlyList<ListItemJson> Backups);

    internal sealed record ListItemJson(string? Repository, string BackupId, string Kind, string? Namespace, string? Dir, string? Object,
        DateTimeOffset Time, long Bytes, int FileCount, bool Complete, string? Host, string? Consistency, long? SegmentId, long? FirstLogIndex,
        long? EntryCount, bool? Sealed, WalPosition? Wal, string? Path, string? Problem);
}
