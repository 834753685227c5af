using System.CommandLine;
using System.Runtime.InteropServices;
using PSBackup.Engine;
using PSBackup.Engine.ObjectStore;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Snapshots;
using PSBackup.Engine.Wal;

namespace PSBackup.Cli;

/// <summary>The <c>psbackup</c> command line: one command per cmdlet over the same engine
/// operation, each cmdlet parameter an option named by kebab-casing it (SPEC §2).</summary>
public static partial class CliApp
{
    /// <summary>Entry point of the executable: console writers, Ctrl+C and SIGTERM cancel the run.</summary>
    public static async Task<int> RunConsoleAsync(string[] args)
    {
        using var cancel = new CancellationTokenSource();
        void OnCancelKey(object? sender, ConsoleCancelEventArgs e)
        {
            e.Cancel = true; // let the operation unwind and clean up; exit code 130
            cancel.Cancel();
        }
        Console.CancelKeyPress += OnCancelKey;
        using PosixSignalRegistration sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx =>
        {
            ctx.Cancel = true;
            cancel.Cancel();
        });
        try
        {
            return await RunAsync(args, Console.Out, Console.Error, cancel.Token).ConfigureAwait(false);
        }
        finally
        {
            Console.CancelKeyPress -= OnCancelKey;
        }
    }

    /// <summary>Runs the CLI in-process: parses <paramref name="args"/>, runs the command, writes
    /// results to <paramref name="stdout"/> and one-line errors to <paramref name="stderr"/>, and
    /// returns the exit code (see <see cref="ExitCodes"/>).</summary>
    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr, CancellationToken cancellationToken = default)
    {
        ParseResult parse = BuildRootCommand().Parse(args);
        if (parse.Errors.Count > 0)
        {
            stderr.WriteLine($"psbackup: {string.Join(" ", parse.Errors.Select(e => e.Message).Distinct())} (see 'psbackup --help')");
            return ExitCodes.InvalidArgument;
        }
        var configuration = new InvocationConfiguration
        {
            Output = stdout,
            Error = stderr,
            EnableDefaultExceptionHandler = false,
            ProcessTerminationTimeout = null, // RunConsoleAsync owns Ctrl+C
        };
        try
        {
            return await parse.InvokeAsync(configuration, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            return Fail(stderr, e);
        }
    }

    /// <summary>The command tree: object backup|restore, sweep, wal list|ship, snapshot create, repo init.</summary>
    public static RootCommand BuildRootCommand()
    {
        var root = new RootCommand("PSBackup: backups, WAL archiving and point-in-time restore for file-based databases.");
        var @object = new Command("object", "Back up and restore objects of an object store (shard-db layout).");
        @object.Subcommands.Add(ObjectBackupCommand());
        @object.Subcommands.Add(ObjectRestoreCommand());
        root.Subcommands.Add(@object);
        root.Subcommands.Add(SweepCommand());
        var wal = new Command("wal", "Inspect and archive a namespace's write-ahead log.");
        wal.Subcommands.Add(WalListCommand());
        wal.Subcommands.Add(WalShipCommand());
        root.Subcommands.Add(wal);
        var snapshot = new Command("snapshot", "Snapshots of a namespace's B-tree store.");
        snapshot.Subcommands.Add(SnapshotCreateCommand());
        snapshot.Subcommands.Add(SnapshotRestoreCommand());
        root.Subcommands.Add(snapshot);
        root.Subcommands.Add(PitrCommand());
        root.Subcommands.Add(RepoCommand());
        root.Subcommands.Add(KeyCommand());
        AddMaintenanceCommands(root);
        root.Subcommands.Add(PruneCommand());
        root.Subcommands.Add(RemoveCommand());
        root.Subcommands.Add(TestRestoreCommand());
        root.Subcommands.Add(HealthCommand());
        root.Subcommands.Add(MetricsCommand());
        return root;
    }

    // ---- commands -----------------------------------------------------------------------------

    private static Command ObjectBackupCommand()
    {
        var command = new Command("backup", "Copy an object to a timestamped sibling backup with a manifest, or store it in a repository; wildcards in --dir/--object back up several, one backup each (New-ObjectBackup).");
        Option<string> dbRoot = Required("--db-root", "The database root ($DB_ROOT).");
        Option<string> dir = Required("--dir", "The tenant directory under the root; * and ? select several (quote them).");
        Option<string> obj = Required("--object", "The object to back up; * and ? select several (quote them), e.g. --dir '*' --object '*' for all.");
        var quiesce = new Option<string>("--quiesce-command") { Description = "Shell command run before the copy to pause writers (a fenced copy); non-zero exit fails the backup." };
        var resume = new Option<string>("--resume-command") { Description = "Shell command run after the copy, always, when a quiesce command ran." };
        command.Options.Add(dbRoot);
        command.Options.Add(dir);
        command.Options.Add(obj);
        command.Options.Add(quiesce);
        command.Options.Add(resume);
        Option<string> history = HistoryPathOption("Local backups: record the outcome in this history folder, outside the db root (default: $PSBACKUP_HISTORY_PATH).");
        command.Options.Add(history);
        var repository = AddRepositoryOptions(command, "Store the backup in this repository (a folder or s3://bucket/prefix) instead of a sibling folder.");
        var force = new Option<bool>("--force") { Description = "With --repository: read every file, even those unchanged (same size, times, inode) since this host's latest backup of the object." };
        command.Options.Add(force);
        AddCommon(command, out Option<bool> json, out Option<bool>? whatIf, writes: true);
        command.SetAction((parse, ct) => Run(parse, ct, async io =>
        {
            RepositoryTarget? target = RepositoryTargetOf(parse, repository);
            string? quiesceCommand = parse.GetValue(quiesce);
            string? resumeCommand = parse.GetValue(resume);
            var options = new NewObjectBackupOptions(FullPath(parse.GetValue(dbRoot), "--db-root"), parse.GetValue(dir)!, parse.GetValue(obj)!)
            {
                Quiesce = Hook(quiesceCommand, "quiesce", io),
                Resume = Hook(resumeCommand, "resume", io),
                Repository = target,
                HistoryPath = parse.GetValue(history) is { } h ? FullPath(h, "--history-path") : null,
                Force = parse.GetValue(force),
            };
            bool list = ObjectSelection.IsPattern(options.Dir) || ObjectSelection.IsPattern(options.Object);
            await RunEachAsync(ObjectOperations.BackupEachAsync(options, io.Context(parse.GetValue(whatIf!))), list, "backups", io,
                results => CliOutput.ObjectBackups(io.Stdout, results, parse.GetValue(json), list)).ConfigureAwait(false);
        }));
        return command;
    }

    private static Command ObjectRestoreCommand()
    {
        var command = new Command("restore", "Verify an object backup (a sibling folder or a repository backup) and swap it in atomically, keeping the replaced object aside (Restore-ObjectBackup).");
        Option<string> dbRoot = Required("--db-root", "The database root ($DB_ROOT).");
        Option<string> dir = Required("--dir", "The tenant directory under the root; with --repository, * and ? select several (quote them).");
        Option<string> obj = Required("--object", "The object to restore; with --repository, * and ? restore the newest backup of each match (quote them).");
        var from = new Option<string>("--from") { Description = "The backup folder name <object>.backup-yyyyMMddTHHmmss, its timestamp, or 'latest' (local mode)." };
        var backupId = new Option<string>("--backup-id") { Description = "The backup's id in the repository (repository mode); default: the newest backup of the object." };
        var force = new Option<bool>("--force") { Description = "Replace a live object that is not empty (it is kept aside, never deleted)." };
        Option<string> history = HistoryPathOption("Record the outcome of a local restore in this history folder, outside the db root (default: $PSBACKUP_HISTORY_PATH).");
        foreach (Option option in new Option[] { dbRoot, dir, obj, from, backupId, force, history })
        {
            command.Options.Add(option);
        }
        var repository = AddRepositoryOptions(command, "Restore from this repository (a folder or s3://bucket/prefix) instead of a sibling folder.");
        AddCommon(command, out Option<bool> json, out Option<bool>? whatIf, writes: true);
        command.SetAction((parse, ct) => Run(parse, ct, async io =>
        {
            RepositoryTarget? target = RepositoryTargetOf(parse, repository);
            string? picked = PickOne(parse.GetValue(from), "--from", parse.GetValue(backupId), "--backup-id", target);
            if (target is null && picked is null)
            {
                throw new InvalidInputException("MissingSource",
                    "Give --from (a backup folder beside the object, its timestamp, or 'latest') or --repository <folder or s3://bucket/prefix>.", "--from");
            }
            var options = new RestoreObjectBackupOptions(FullPath(parse.GetValue(dbRoot), "--db-root"), parse.GetValue(dir)!, parse.GetValue(obj)!, target is null ? picked : null)
            {
                Force = parse.GetValue(force),
                Repository = target,
                BackupId = target is null ? null : picked,
                HistoryPath = parse.GetValue(history) is { } h ? FullPath(h, "--history-path") : null,
            };
            bool list = ObjectSelection.IsPattern(options.Dir) || ObjectSelection.IsPattern(options.Object);
            await RunEachAsync(ObjectOperations.RestoreEachAsync(options, io.Context(parse.GetValue(whatIf!))), list, "restores", io,
                results => CliOutput.ObjectRestores(io.Stdout, results, parse.GetValue(json), list)).ConfigureAwait(false);
        }));
        return command;
    }

    private static Command SweepCommand()
    {
        var command = new Command("sweep", "Remove stale .new/.old/.tmp artifacts under a root; --what-if lists them (Clear-StaleArtifact).");
        Option<string> root = Required("--root", "The folder to sweep.");
        command.Options.Add(root);
        command.Options.Add(new Option<bool>("--force") { Description = "Accepted for parity with -Force: the CLI never asks for confirmation." });
        AddCommon(command, out Option<bool> json, out Option<bool>? whatIf, writes: true);
        command.SetAction((parse, ct) => Run(parse, ct, async io =>
        {
            IReadOnlyList<StaleArtifact> artifacts = await ObjectOperations.ClearStaleArtifactsAsync(
                new ClearStaleArtifactOptions(FullPath(parse.GetValue(root), "--root")), io.Context(parse.GetValue(whatIf!))).ConfigureAwait(false);
            CliOutput.Sweep(io.Stdout, artifacts, parse.GetValue(json));
        }));
        return command;
    }

    private static Command WalListCommand()
    {
        var command = new Command("list", "Inspect a namespace's WAL segments (Get-WalSegment).");
        Option<string> dataDir = Required("--data-dir", "The data directory holding one folder per namespace.");
        Option<string> ns = Required("--namespace", "The namespace.");
        var segmentId = new Option<long?>("--segment-id") { Description = "Only this segment." };
        command.Options.Add(dataDir);
        command.Options.Add(ns);
        command.Options.Add(segmentId);
        AddCommon(command, out Option<bool> json, out _, writes: false);
        command.SetAction((parse, ct) => Run(parse, ct, async io =>
        {
            var options = new GetWalSegmentOptions(FullPath(parse.GetValue(dataDir), "--data-dir"), parse.GetValue(ns)!)
            {
                SegmentId = parse.GetValue(segmentId),
            };
            WalDirectoryReport report = await WalOperations.GetSegmentsAsync(options, io.Context(whatIf: false)).ConfigureAwait(false);
            CliOutput.WalList(io.Stdout, report, parse.GetValue(json));
        }));
        return command;
    }

    private static Command WalShipCommand()
    {
        var command = new Command("ship", "Copy sealed WAL segments after --after-segment-id into --backup-dir, or ship the ones a repository lacks (Invoke-WalShip).");
        Option<string> dataDir = Required("--data-dir", "The data directory holding one folder per namespace.");
        Option<string> ns = Required("--namespace", "The namespace.");
        var backupDir = new Option<string>("--backup-dir") { Description = "Relative to <data-dir>/backups/<namespace>, e.g. wal/archive (local mode)." };
        var after = new Option<long>("--after-segment-id") { Description = "Only segments with a greater id; 0 (default) ships all sealed segments." };
        command.Options.Add(dataDir);
        command.Options.Add(ns);
        command.Options.Add(backupDir);
        command.Options.Add(after);
        var sealedOnly = new Option<bool>("--sealed-only") { Description = "Ship sealed segments only: no partial (valid prefix) of the active segment." };
        command.Options.Add(sealedOnly);
        // --follow is what log shippers call it (tail -f, pg_receivewal); --continuous is the cmdlet's -Continuous.
        var continuous = new Option<bool>("--continuous", "--follow") { Description = "Keep shipping until stopped (Ctrl+C, SIGTERM): poll the live WAL and ship partials and newly sealed segments as they appear (Invoke-WalShip -Continuous)." };
        var interval = new Option<string>("--interval") { Description = "With --follow: how often the live WAL is polled (1s, 5s, 500ms, 1min; default 5s)." };
        command.Options.Add(continuous);
        command.Options.Add(interval);
        // The cmdlet's common -Verbose.
        var verboseOption = new Option<bool>("-v", "--verbose") { Description = "With --follow: a lag line on stderr after every pass (the cmdlet's -Verbose)." };
        command.Options.Add(verboseOption);
        var repository = AddRepositoryOptions(command, "Ship to this repository (a folder or s3://bucket/prefix): every sealed segment it does not hold yet.", "--s3-endpoint");
        var endpoint = AddUnisonEndpointOptions(command, "UnisonDB's HTTP API (http://host:port): the server copies its sealed segments (POST /api/v1/<ns>/wal/backup) and PSBackup verifies and archives them.");
        AddCommon(command, out Option<bool> json, out Option<bool>? whatIf, writes: true);
        command.SetAction((parse, ct) => Run(parse, ct, async io =>
        {
            RepositoryTarget? target = RepositoryTargetOf(parse, repository);
            string? local = LocalOrRepository(parse.GetValue(backupDir), target, "--backup-dir");
            long afterId = parse.GetValue(after);
            if (afterId < 0)
            {
                throw new InvalidInputException("InvalidSegmentId", $"--after-segment-id {afterId} is negative. Give 0 to ship all sealed segments, or the last shipped id.", afterId.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
            (Uri? server, TimeSpan? serverTimeout) = UnisonEndpointOf(parse, endpoint);
            var options = new InvokeWalShipOptions(FullPath(parse.GetValue(dataDir), "--data-dir"), parse.GetValue(ns)!, local)
            {
                AfterSegmentId = afterId,
                Repository = target,
                Endpoint = server,
                EndpointTimeout = serverTimeout,
                SealedOnly = parse.GetValue(sealedOnly),
            };
            bool following = parse.GetValue(continuous);
            string? every = parse.GetValue(interval);
            if (every is not null && !following)
            {
                throw new InvalidInputException("IntervalWithoutContinuous", "--interval only applies with --follow. Add --follow, or drop --interval.", every);
            }
            if (following)
            {
                var followOptions = new WalFollowOptions { Interval = every is null ? new WalFollowOptions().Interval : Durations.Parse(every) };
                bool asJson = parse.GetValue(json);
                bool verbose = parse.GetValue(verboseOption);
                await WalOperations.FollowAsync(options, followOptions,
                    s => CliOutput.WalShipped(io.Stdout, s, asJson),
                    st =>
                    {
                        if (st.Error is not null || verbose)
                        {
                            io.Stderr.WriteLine((st.Error is null ? "" : "warning: ") + st);
                            io.Stderr.Flush();
                        }
                    },
                    io.Context(parse.GetValue(whatIf!))).ConfigureAwait(false);
                return;
            }
            WalShipResult result = await WalOperations.ShipAsync(options, io.Context(parse.GetValue(whatIf!))).ConfigureAwait(false);
            CliOutput.WalShip(io.Stdout, result, parse.GetValue(json));
        }));
        return command;
    }

    private static Command SnapshotCreateCommand()
    {
        var command = new Command("create", "A consistent snapshot of a namespace's B-tree store (New-StoreSnapshot).");
        Option<string> dataDir = Required("--data-dir", "The data directory holding one folder per namespace.");
        Option<string> ns = Required("--namespace", "The namespace.");
        var path = new Option<string>("--path") { Description = "Relative to <data-dir>/backups/<namespace>, e.g. snapshots/users-20250108.snapshot (local mode)." };
        command.Options.Add(dataDir);
        command.Options.Add(ns);
        command.Options.Add(path);
        var repository = AddRepositoryOptions(command, "Store the snapshot in this repository (a folder or s3://bucket/prefix) instead of --path.", "--s3-endpoint");
        var endpoint = AddUnisonEndpointOptions(command, "UnisonDB's HTTP API (http://host:port): the server makes the snapshot itself (POST /api/v1/<ns>/btree/backup); needed for a bbolt store while the server runs.");
        AddCommon(command, out Option<bool> json, out Option<bool>? whatIf, writes: true);
        command.SetAction((parse, ct) => Run(parse, ct, async io =>
        {
            RepositoryTarget? target = RepositoryTargetOf(parse, repository);
            string? local = LocalOrRepository(parse.GetValue(path), target, "--path");
            (Uri? server, TimeSpan? serverTimeout) = UnisonEndpointOf(parse, endpoint);
            var options = new NewStoreSnapshotOptions(FullPath(parse.GetValue(dataDir), "--data-dir"), parse.GetValue(ns)!, local) { Repository = target, Endpoint = server, EndpointTimeout = serverTimeout };
            StoreSnapshotResult? result = await SnapshotOperations.CreateAsync(options, io.Context(parse.GetValue(whatIf!))).ConfigureAwait(false);
            if (result is not null)
            {
                CliOutput.Snapshot(io.Stdout, result, parse.GetValue(json));
            }
        }));
        return command;
    }

    // ---- plumbing -----------------------------------------------------------------------------

    private static Option<string> HistoryPathOption(string description) => new("--history-path") { Description = description };

    private static Option<string> Required(string name, string description) =>
        new(name) { Description = description, Required = true };

    private static void AddCommon(Command command, out Option<bool> json, out Option<bool>? whatIf, bool writes)
    {
        json = new Option<bool>("--json") { Description = "Write the result as JSON (camelCase) for scripts." };
        command.Options.Add(json);
        command.Options.Add(new Option<bool>("--verbose") { Description = "Tell on stderr what the command does (repository opened, lock, key cache, parent reused, files read, bytes stored), like -Verbose." });
        command.Options.Add(new Option<bool>("--debug") { Description = "Also print every storage call (key, size, time) on stderr, like -Debug." });
        whatIf = null;
        if (writes)
        {
            whatIf = new Option<bool>("--what-if") { Description = "Show what would be written or deleted, and change nothing." };
            command.Options.Add(whatIf);
        }
    }

    /// <summary>A path option resolved against the process's working directory.</summary>
    private static string FullPath(string? value, string option)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            throw new InvalidInputException("InvalidPath", $"{option} is empty. Give a directory path.", value);
        }
        try
        {
            return Path.GetFullPath(value);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            throw new InvalidInputException("InvalidPath", $"{option} '{value}' is not a valid path: {e.Message}", value);
        }
    }

    private static Func<CancellationToken, Task>? Hook(string? command, string what, CommandIO io) =>
        string.IsNullOrWhiteSpace(command) ? null : ct => ShellCommand.RunAsync(command, what, io.Stderr, ct);

    /// <summary>The per-object loop of object backup/restore. Named by wildcards, a failed object is
    /// one stderr line and the others go on; after <paramref name="print"/> has shown what worked,
    /// the command fails with the first failure's kind (its exit code). One named object's
    /// failure is the command's own, as before.</summary>
    private static async Task RunEachAsync<T>(IAsyncEnumerable<ObjectOutcome<T>> outcomes, bool list, string what, CommandIO io, Action<List<T>> print) where T : class
    {
        var results = new List<T>();
        var failed = new List<ObjectOutcome<T>>();
        await foreach (ObjectOutcome<T> outcome in outcomes.ConfigureAwait(false))
        {
            if (outcome.Error is { } error)
            {
                if (!list || error.IsSetupFailure)
                {
                    System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(error);
                }
                failed.Add(outcome);
                io.Stderr.WriteLine($"psbackup: {outcome.Dir}/{outcome.Object}: {AsOptions(OneLine(error.Message))}");
            }
            else if (outcome.Result is { } result)
            {
                results.Add(result);
            }
        }
        print(results);
        if (failed.Count > 0)
        {
            throw new PSBackupException(failed[0].Error!.Kind, "ObjectsFailed",
                $"{failed.Count} of {failed.Count + results.Count} selected object {what} failed ({string.Join(", ", failed.Select(f => $"{f.Dir}/{f.Object}"))}); the others succeeded. Fix the errors above and run again.");
        }
    }

    /// <summary>Runs a command body; every failure becomes one stderr line and an exit code here.</summary>
    private static async Task<int> Run(ParseResult parse, CancellationToken cancellationToken, Func<CommandIO, Task> body)
    {
        TextWriter stdout = parse.InvocationConfiguration.Output;
        TextWriter stderr = parse.InvocationConfiguration.Error;
        bool json = Flag(parse, "--json");
        var io = new CommandIO(stdout, stderr, json, cancellationToken);
        bool debug = Flag(parse, "--debug");
        using IDisposable log = OperationLog.Use(debug || Flag(parse, "--verbose") ? new StderrLog(stderr, debug) : null);
        try
        {
            WarnAboutKeyFile(parse, stderr);
            await body(io).ConfigureAwait(false);
            return ExitCodes.Success;
        }
        catch (Exception e)
        {
            return Fail(stderr, e);
        }
    }

    /// <summary>A key file others can read gets the warning the cmdlets write (naming chmod 600 or
    /// the ACL), on stderr, for every command that takes --key-file, whether the file came from the
    /// option or from PSBACKUP_KEY_FILE: a cron or systemd job's log shows it too.</summary>
    private static void WarnAboutKeyFile(ParseResult parse, TextWriter stderr)
    {
        IList<Option> options = parse.CommandResult.Command.Options;
        if (!options.Any(o => o.Name == "--key-file"))
        {
            return;
        }
        string? keyFile = parse.GetValue<string>("--key-file");
        if (keyFile is null && (!options.Any(o => o.Name == "--passphrase") || parse.GetValue<string>("--passphrase") is null))
        {
            keyFile = Environment.GetEnvironmentVariable(RepositoryConnector.KeyFileVariable) is { Length: > 0 } fromEnvironment
                && Environment.GetEnvironmentVariable(RepositoryConnector.PassphraseVariable) is null ? fromEnvironment : null;
        }
        if (!string.IsNullOrWhiteSpace(keyFile) && KeyFiles.PermissionWarning(Path.GetFullPath(keyFile)) is { } warning)
        {
            stderr.WriteLine($"psbackup: warning: {warning}");
        }
    }

    private static bool Flag(ParseResult parse, string name) =>
        parse.CommandResult.Command.Options.Any(o => o.Name == name) && parse.GetValue<bool>(name);

    /// <summary>--verbose / --debug: the engine's log on stderr, one line each, so stdout stays the
    /// table or JSON. Lines from parallel work are written whole.</summary>
    private sealed class StderrLog(TextWriter stderr, bool debug) : IOperationLogSink
    {
        public bool IsEnabled(OperationLogLevel level) => level == OperationLogLevel.Verbose || debug;

        public void Write(OperationLogLevel level, string message)
        {
            lock (this)
            {
                stderr.WriteLine((level == OperationLogLevel.Verbose ? "VERBOSE: " : "DEBUG: ") + message);
            }
        }
    }

    private static int Fail(TextWriter stderr, Exception e)
    {
        string message = e switch
        {
            OperationCanceledException => "cancelled.",
            PSBackupException p => p.Message,
            UnhealthyException u => u.Message,
            UnauthorizedAccessException or IOException => e.Message,
            _ => $"{e.Message} ({e.GetType().Name})",
        };
        stderr.WriteLine($"psbackup: {AsOptions(OneLine(message))}");
        return ExitCodes.For(e);
    }

    private static string OneLine(string message) => message.ReplaceLineEndings(" ").Trim();

    /// <summary>Engine messages name cmdlet parameters (-Force, -DataDir); the CLI user types
    /// their kebab-cased options (--force, --data-dir), so the message says those.</summary>
    internal static string AsOptions(string message) =>
        ParameterMention().Replace(message, m => "--" + KebabBoundary().Replace(m.Groups[1].Value, "-$1").ToLowerInvariant());

    [System.Text.RegularExpressions.GeneratedRegex(@"(?<![\w-])-([A-Z][a-z]+(?:[A-Z][a-z]+)*)\b")]
    private static partial System.Text.RegularExpressions.Regex ParameterMention();

    [System.Text.RegularExpressions.GeneratedRegex("(?<!^)([A-Z])")]
    private static partial System.Text.RegularExpressions.Regex KebabBoundary();

    /// <summary>The writers and token of one invocation, and the engine context built from them.</summary>
    private sealed record CommandIO(TextWriter Stdout, TextWriter Stderr, bool Json, CancellationToken CancellationToken)
    {
        /// <summary>--what-if answers every ShouldProcess with "no", saying what would have happened
        /// (on stderr under --json, so stdout stays valid JSON).</summary>
        public OperationContext Context(bool whatIf) => new()
        {
            CancellationToken = CancellationToken,
            WhatIf = whatIf,
            ShouldProcess = whatIf
                ? (target, action) =>
                {
                    (Json ? Stderr : Stdout).WriteLine($"What if: {action} on {target}");
                    return false;
                }
                : static (_, _) => true,
        };
    }
}
