using PSBackup.Cli;
using PSBackup.Engine.Events;
using PSBackup.Engine.ObjectStore;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Storage;
using PSBackup.Engine.Tests.ObjectStore;
using PSBackup.Engine.Tests.Support;

namespace PSBackup.Engine.Tests.Cli;

/// <summary>Setup failures (the repository missing, locked by another process, or the wrong key)
/// are the call's, not each object's: the engine marks them, a wildcard run stops at the first
/// one, and the CLI prints one message with the kind's exit code. A failure of one object stays
/// that object's. Also the LeftoverTemp health alert for what a killed local backup left.</summary>
public sealed class CliSetupFailureTests : IDisposable
{
    private const string Passphrase = "the right passphrase";
    private readonly TestDirectory _dir = new();
    private readonly ObjectFixture _db = new();

    public CliSetupFailureTests()
    {
        // Three objects in two tenant dirs: a wildcard selects them all.
        ObjectFixture.Populate(Path.Combine(_db.DirPath, "orders"), seed: 2);
        ObjectFixture.Populate(Path.Combine(_db.DbRoot, "tenant2", "inventory"), seed: 3);
    }

    public void Dispose()
    {
        _db.Dispose();
        _dir.Dispose();
    }

    private sealed record Run(int ExitCode, string Stdout, string Stderr);

    private static async Task<Run> RunCli(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = await TestCli.RunAsync(args, stdout, stderr);
        return new Run(code, stdout.ToString(), stderr.ToString());
    }

    private async Task<RepositoryTarget> NewRepositoryAsync(string name)
    {
        var target = new RepositoryTarget { Location = _dir.Combine(name), Passphrase = Passphrase };
        Assert.NotNull(await RepositoryOperations.InitializeAsync(new InitializeRepositoryOptions(target), OperationContext.Default));
        return target;
    }

    /// <summary>Everything in the repository but its operation history.</summary>
    private static TreeState Content(RepositoryTarget repo) => TreeState.Capture(repo.Location);

    private async Task<List<ObjectOutcome<ObjectBackupResult>>> BackupAllAsync(RepositoryTarget repo)
    {
        var outcomes = new List<ObjectOutcome<ObjectBackupResult>>();
        await foreach (ObjectOutcome<ObjectBackupResult> o in ObjectOperations.BackupEachAsync(new NewObjectBackupOptions(_db.DbRoot, "*", "*") { Repository = repo }, OperationContext.Default))
        {
            outcomes.Add(o);
        }
        return outcomes;
    }

    private static void AssertOneSetupFailure(List<ObjectOutcome<ObjectBackupResult>> outcomes, string errorId)
    {
        ObjectOutcome<ObjectBackupResult> only = Assert.Single(outcomes);
        Assert.NotNull(only.Error);
        Assert.Equal(errorId, only.Error.ErrorId);
        Assert.True(only.Error.IsSetupFailure);
        Assert.Null(only.Result);
    }

    private static void AssertOneMessage(Run run, int exitCode, string mentions)
    {
        Assert.Equal(exitCode, run.ExitCode);
        Assert.Equal("", run.Stdout);
        string line = Assert.Single(run.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("psbackup: ", line);
        Assert.Contains(mentions, line, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("ObjectsFailed", line, StringComparison.Ordinal);
    }

    private string[] BackupAllArgs(string repository, params string[] more) =>
        ["object", "backup", "--db-root", _db.DbRoot, "--dir", "*", "--object", "*", "--repository", repository, .. more];

    [Fact]
    public async Task A_missing_repository_is_one_failure_and_one_message_with_exit_3()
    {
        var missing = new RepositoryTarget { Location = _dir.Combine("no-such-repo") };

        AssertOneSetupFailure(await BackupAllAsync(missing), "RepositoryNotFound");
        AssertOneMessage(await RunCli(BackupAllArgs(missing.Location)), ExitCodes.NotFound, "does not exist");

        Directory.CreateDirectory(missing.Location); // a folder, but no repository in it
        AssertOneSetupFailure(await BackupAllAsync(missing), "RepositoryNotFound");
        AssertOneMessage(await RunCli(BackupAllArgs(missing.Location)), ExitCodes.NotFound, "no repository");
        Assert.Empty(Directory.EnumerateFileSystemEntries(missing.Location));
    }

    [Fact]
    public async Task A_repository_locked_by_another_operation_is_one_failure_and_one_message_with_exit_5()
    {
        RepositoryTarget repo = await NewRepositoryAsync("locked");
        using IStorageBackend backend = RepositoryConnector.OpenBackend(repo);
        await using RepositoryLock prune = await RepositoryLock.AcquireAsync(backend, RepositoryLockMode.Exclusive, "Remove-ExpiredBackup", TimeProvider.System, CancellationToken.None);
        TreeState before = Content(repo);

        AssertOneSetupFailure(await BackupAllAsync(repo), "RepositoryLocked");
        AssertOneMessage(await RunCli(BackupAllArgs(repo.Location, "--passphrase", Passphrase)), ExitCodes.Conflict, "Remove-ExpiredBackup");
        before.AssertUnchanged(repo.Location); // (the history of the refusal is not part of the state)
    }

    [Fact]
    public async Task The_wrong_key_is_one_failure_and_one_message_with_exit_2_and_writes_nothing()
    {
        RepositoryTarget repo = await NewRepositoryAsync("keyed");
        TreeState before = Content(repo);

        AssertOneSetupFailure(await BackupAllAsync(repo with { Passphrase = "not the passphrase" }), "WrongRepositoryKey");
        AssertOneMessage(await RunCli(BackupAllArgs(repo.Location, "--passphrase", "not the passphrase")), ExitCodes.InvalidArgument, "does not open");
        before.AssertUnchanged(repo.Location);
    }

    [Fact]
    public async Task A_failing_object_stays_that_objects_failure_and_the_others_are_backed_up()
    {
        RepositoryTarget repo = await NewRepositoryAsync("sound");
        // A folder '*' matches that is not an object (it looks like a backup sibling): that object's failure.
        ObjectFixture.Populate(Path.Combine(_db.DirPath, "orders.backup-20250101T000000"), seed: 5);

        List<ObjectOutcome<ObjectBackupResult>> outcomes = await BackupAllAsync(repo);

        Assert.Equal(4, outcomes.Count);
        ObjectOutcome<ObjectBackupResult> failed = Assert.Single(outcomes, o => o.Error is not null);
        Assert.Equal("ObjectNotSelectable", failed.Error!.ErrorId);
        Assert.False(failed.Error.IsSetupFailure);
        Assert.Equal(["tenant1/orders", "tenant1/users", "tenant2/inventory"],
            outcomes.Where(o => o.Result is not null).Select(o => $"{o.Dir}/{o.Object}").Order(StringComparer.Ordinal));

        Run run = await RunCli(BackupAllArgs(repo.Location, "--passphrase", Passphrase));
        Assert.NotEqual(0, run.ExitCode);
        Assert.Contains("1 of 4 selected object backups failed", run.Stderr, StringComparison.Ordinal);
        Assert.Contains("orders.backup-20250101T000000", run.Stderr, StringComparison.Ordinal);
        Assert.Contains("inventory", run.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Health_with_a_db_root_warns_of_the_temp_copy_a_killed_backup_left_and_names_the_fix()
    {
        string history = _dir.Combine("history");
        Assert.NotNull(await ObjectOperations.BackupAsync(new NewObjectBackupOptions(_db.DbRoot, ObjectFixture.Dir, ObjectFixture.Object) { HistoryPath = history }, OperationContext.Default));
        // Named exactly as ObjectBackup names its temp copy: <object>.backup-<ts>.<8 hex>.tmp.
        string left = Path.Combine(_db.DirPath, ObjectFixture.Object + ".backup-20250101T000000.0a1b2c3d.tmp");
        ObjectFixture.Populate(left, seed: 9);
        Directory.SetLastWriteTimeUtc(left, DateTime.UtcNow.AddHours(-3));
        // A young one is a backup still running: not reported.
        string running = Path.Combine(_db.DbRoot, "tenant2", "inventory.backup-20250101T000001.0f0f0f0f.tmp");
        ObjectFixture.Populate(running, seed: 10);

        IReadOnlyList<HealthAlert> alerts = await BackupHealth.GetAlertsAsync(new BackupHealthOptions { HistoryPath = history, DbRoot = _db.DbRoot }, OperationContext.Default);

        HealthAlert alert = Assert.Single(alerts, a => a.Code == "LeftoverTemp");
        Assert.Equal(HealthSeverity.Warning, alert.Severity);
        Assert.Equal(ObjectFixture.Dir, alert.Namespace);
        Assert.Contains(left, alert.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(running, alert.Message, StringComparison.Ordinal);
        Assert.Contains("Clear-StaleArtifact", alert.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(await BackupHealth.GetAlertsAsync(new BackupHealthOptions { HistoryPath = history, DbRoot = _db.DbRoot, Namespace = ["tenant2"] }, OperationContext.Default),
            a => a.Code == "LeftoverTemp");

        Run cli = await RunCli("health", "--history-path", history, "--db-root", _db.DbRoot, "--json");
        Assert.Contains("LeftoverTemp", cli.Stdout, StringComparison.Ordinal);
        Assert.Contains("0a1b2c3d.tmp", cli.Stdout, StringComparison.Ordinal);

        // The sweep it names removes it, and the warning is gone.
        await ObjectOperations.ClearStaleArtifactsAsync(new ClearStaleArtifactOptions(_db.DbRoot), OperationContext.Default);
        Assert.False(Directory.Exists(left));
        Assert.DoesNotContain(await BackupHealth.GetAlertsAsync(new BackupHealthOptions { HistoryPath = history, DbRoot = _db.DbRoot }, OperationContext.Default),
            a => a.Code == "LeftoverTemp");

        Run missing = await RunCli("health", "--history-path", history, "--db-root", _dir.Combine("no-db-root"));
        Assert.Equal(ExitCodes.NotFound, missing.ExitCode);
        Assert.Contains("--db-root", missing.Stderr, StringComparison.Ordinal);
    }
}
