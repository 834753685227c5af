using System.Diagnostics;
using System.Text.Json;
using PSBackup.Cli;
using PSBackup.Engine.Events;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Snapshots;
using PSBackup.Engine.Tests.Snapshots;
using PSBackup.Engine.Tests.Support;

namespace PSBackup.Engine.Tests.Health;

/// <summary>Operation history, audit log, Get-BackupHealth and Export-BackupMetric.</summary>
public sealed class HealthTests : IDisposable
{
    private const string Ns = "users";
    private const string Secret = "Zebra-Passphrase-7f3c91";
    private readonly TestDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private string Audit => _dir.Combine("audit.jsonl");

    private OperationContext Context(DateTimeOffset? now = null) => new() { AuditLogPath = Audit, Clock = now is { } n ? new FixedClock(n) : TimeProvider.System };

    private sealed class FixedClock(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }

    private static Task Append(string dataDir, OperationEvent e) => EventLog.ForDataDir(dataDir).AppendAsync(e.Namespace, e.Time, e, CancellationToken.None);

    private static OperationEvent Op(string kind, DateTimeOffset time, bool success, long bytes = 100) => new()
    {
        Namespace = Ns, Operation = "test", Category = kind, Success = success, Bytes = success ? bytes : 0,
        ErrorId = success ? null : "Boom", Error = success ? null : "it failed", Time = time, DurationSeconds = 1, Host = "h",
    };

    [Fact]
    public async Task History_is_never_written_where_the_repository_is_gone()
    {
        // A success recorded after the fact (a follower's summary, a run whose repository folder was
        // removed or unmounted meanwhile) must not start a folder where the repository was: only the
        // audit log gets the line.
        string repo = _dir.Combine("repo");
        var target = new RepositoryTarget { Location = repo };
        await RepositoryOperations.InitializeAsync(new InitializeRepositoryOptions(target) { Unencrypted = true }, OperationContext.Default);
        var scope = new OperationScope { Operation = "Invoke-WalShip", Category = OperationKinds.WalSegment, Namespace = Ns, Target = repo, Repository = target };
        Assert.Equal(7, await OperationRecorder.RunAsync(scope, Context(), _ => Task.FromResult(7L), b => new OperationOutcome(b)));
        Assert.Single(Directory.EnumerateFiles(Path.Combine(repo, "events", Ns)));

        Directory.Delete(repo, recursive: true);
        Assert.Equal(7, await OperationRecorder.RunAsync(scope, Context(), _ => Task.FromResult(7L), b => new OperationOutcome(b)));
        Assert.False(Path.Exists(repo));

        Directory.CreateDirectory(repo); // an unmounted disk leaves its empty mount point
        Assert.Equal(7, await OperationRecorder.RunAsync(scope, Context(), _ => Task.FromResult(7L), b => new OperationOutcome(b)));
        Assert.Empty(Directory.EnumerateFileSystemEntries(repo));
        Assert.Equal(3, File.ReadAllLines(Audit).Length);
    }

    [Fact]
    public async Task Snapshots_are_recorded_in_the_history_and_the_audit_log()
    {
        string dataDir = _dir.Combine("data");
        SnapshotTestSupport.CreateFileNamespace(dataDir, Ns);
        StoreSnapshotResult? r = await SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(dataDir, Ns, "snap/one"), Context());
        await Assert.ThrowsAnyAsync<PSBackupException>(() => SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(dataDir, Ns, "snap/one"), Context()));

        IReadOnlyList<StoredEvent> events = await EventLog.ForDataDir(dataDir).ListAsync(Ns, CancellationToken.None);
        Assert.Equal(2, events.Count);
        OperationEvent ok = events.Select(e => e.As<OperationEvent>()).Single(e => e.Success);
        Assert.Equal(OperationKinds.StoreSnapshot, ok.Category);
        Assert.Equal(r!.Bytes, ok.Bytes);
        OperationEvent failed = events.Select(e => e.As<OperationEvent>()).Single(e => !e.Success);
        Assert.False(string.IsNullOrEmpty(failed.ErrorId));

        string[] lines = File.ReadAllLines(Audit);
        Assert.Equal(2, lines.Length);
        using JsonDocument first = JsonDocument.Parse(lines[0]);
        Assert.Equal("New-StoreSnapshot", first.RootElement.GetProperty("operation").GetString());
        Assert.Equal("success", first.RootElement.GetProperty("outcome").GetString());
        Assert.Equal(r.Bytes, first.RootElement.GetProperty("bytes").GetInt64());
        using JsonDocument second = JsonDocument.Parse(lines[1]);
        Assert.Equal("failure", second.RootElement.GetProperty("outcome").GetString());
        Assert.Contains(failed.ErrorId!, second.RootElement.GetProperty("error").GetString()!);
    }

    [Fact]
    public async Task Passphrases_never_appear_in_the_audit_log_history_or_errors()
    {
        string dataDir = _dir.Combine("data");
        SnapshotTestSupport.CreateFileNamespace(dataDir, Ns);
        string repo = _dir.Combine("repo");
        var target = new RepositoryTarget { Location = repo, Passphrase = Secret };
        await RepositoryOperations.InitializeAsync(new InitializeRepositoryOptions(target), Context());
        await SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(dataDir, Ns, null) { Repository = target }, Context());
        var messages = new List<string>();
        var wrong = target with { Passphrase = Secret + "-wrong" };
        Exception e1 = await Assert.ThrowsAnyAsync<Exception>(() => SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(dataDir, Ns, null) { Repository = wrong }, Context()));
        messages.Add(e1.ToString());
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = await TestCli.RunAsync(["snapshot", "create", "--data-dir", dataDir, "--namespace", Ns, "--repository", repo, "--passphrase", Secret + "-cli-wrong"], stdout, stderr, CancellationToken.None);
        Assert.NotEqual(0, code);
        messages.Add(stdout.ToString() + stderr.ToString());

        // A key-file repository: the key's bytes (distinctive text here) never appear either.
        string keyFile = _dir.Combine("repo.key");
        File.WriteAllText(keyFile, "Zebra-Passphrase-keyfile-" + new string('k', 64));
        string wrongKey = _dir.Combine("wrong.key");
        File.WriteAllText(wrongKey, "Zebra-Passphrase-wrongkey-" + new string('w', 64));
        string keyed = _dir.Combine("keyed");
        var keyTarget = new RepositoryTarget { Location = keyed, KeyFile = keyFile };
        await RepositoryOperations.InitializeAsync(new InitializeRepositoryOptions(keyTarget), Context());
        await SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(dataDir, Ns, null) { Repository = keyTarget }, Context());
        Exception e2 = await Assert.ThrowsAnyAsync<Exception>(() => SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(dataDir, Ns, null) { Repository = keyTarget with { KeyFile = wrongKey } }, Context()));
        messages.Add(e2.ToString());

        string audit = File.ReadAllText(Audit);
        Assert.Contains("failure", audit, StringComparison.Ordinal);
        var everything = new List<string>(messages) { audit };
        everything.AddRange(new[] { repo, keyed }.SelectMany(r => Directory.EnumerateFiles(r, "*", SearchOption.AllDirectories)).Where(f => f.Contains("events", StringComparison.Ordinal)).Select(File.ReadAllText));
        everything.AddRange(Directory.EnumerateFiles(dataDir, "*.jsonl", SearchOption.AllDirectories).Select(File.ReadAllText));
        foreach (string text in everything)
        {
            Assert.DoesNotContain("Zebra-Passphrase", text, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Health_reports_each_seed_alert_and_healthy_when_none()
    {
        DateTimeOffset now = new(2026, 6, 1, 12, 0, 0, TimeSpan.Zero);
        string dataDir = _dir.Combine("data");
        Directory.CreateDirectory(dataDir);
        await Append(dataDir, Op(OperationKinds.StoreSnapshot, now.AddDays(-3), true, 1000));
        await Append(dataDir, Op(OperationKinds.StoreSnapshot, now.AddDays(-2), true, 2000));
        await Append(dataDir, Op(OperationKinds.StoreSnapshot, now.AddHours(-2), false));
        await Append(dataDir, Op(OperationKinds.StoreSnapshot, now.AddHours(-1), false));
        await Append(dataDir, Op(OperationKinds.WalSegment, now.AddHours(-1), true));
        await EventLog.ForDataDir(dataDir).AppendAsync(Ns, now.AddMinutes(-30), new PSBackup.Engine.Wal.WalGapEvent { Namespace = Ns, MissingSegmentIds = [7, 8], DetectedAt = now.AddMinutes(-30), Host = "h", Message = "gap" }, CancellationToken.None);

        IReadOnlyList<HealthAlert> alerts = await BackupHealth.GetAlertsAsync(new BackupHealthOptions { DataDir = dataDir }, Context(now));
        string[] codes = alerts.Select(a => a.Code).Order().ToArray();
        Assert.Equal(new[] { "BackupTooOld", "ConsecutiveFailures", "NoRestoreDrill", "SizeAnomaly", "WalGap" }, codes);
        Assert.All(alerts, a => Assert.Equal(Ns, a.Namespace));
        Assert.Equal(HealthSeverity.Critical, alerts.Single(a => a.Code == "WalGap").Severity);
        Assert.Equal(HealthSeverity.Warning, alerts.Single(a => a.Code == "SizeAnomaly").Severity);

        // Thresholds are parameters.
        IReadOnlyList<HealthAlert> relaxed = await BackupHealth.GetAlertsAsync(new BackupHealthOptions { DataDir = dataDir, MaxAge = TimeSpan.FromDays(7), SizeChangeThreshold = 200, FailureThreshold = 3 }, Context(now));
        Assert.Equal(new[] { "NoRestoreDrill", "WalGap" }, relaxed.Select(a => a.Code).Order().ToArray());

        // CLI: critical -> exit 6.
        var stdout = new StringWriter();
        int code = await TestCli.RunAsync(["health", "--data-dir", dataDir], stdout, new StringWriter(), CancellationToken.None);
        Assert.Equal(ExitCodes.Unhealthy, code);
        Assert.Contains("WalGap", stdout.ToString(), StringComparison.Ordinal);

        // A failed drill, then a healthy namespace.
        string healthy = _dir.Combine("healthy");
        Directory.CreateDirectory(healthy);
        await Append(healthy, Op(OperationKinds.StoreSnapshot, DateTimeOffset.UtcNow.AddHours(-1), true));
        // Each event is named by its own time, as Test-Restore records it: the history's order is the
        // names' order, so a second drill named in the same millisecond could otherwise sort first.
        DateTimeOffset failedAt = DateTimeOffset.UtcNow.AddMinutes(-5);
        await EventLog.ForDataDir(healthy).AppendAsync(Ns, failedAt, new RestoreDrillEvent { Namespace = Ns, Passed = false, Segments = 0, Bytes = 0, DurationSeconds = 1, Errors = ["x"], Time = failedAt, Host = "h" }, CancellationToken.None);
        Assert.Equal("RestoreDrillFailed", Assert.Single(await BackupHealth.GetAlertsAsync(new BackupHealthOptions { DataDir = healthy }, Context())).Code);
        DateTimeOffset passedAt = DateTimeOffset.UtcNow;
        await EventLog.ForDataDir(healthy).AppendAsync(Ns, passedAt, new RestoreDrillEvent { Namespace = Ns, Passed = true, Segments = 0, Bytes = 0, DurationSeconds = 1, Errors = [], Time = passedAt, Host = "h" }, CancellationToken.None);
        Assert.Empty(await BackupHealth.GetAlertsAsync(new BackupHealthOptions { DataDir = healthy }, Context()));
        stdout = new StringWriter();
        Assert.Equal(0, await TestCli.RunAsync(["health", "--data-dir", healthy], stdout, new StringWriter(), CancellationToken.None));
        Assert.Equal("healthy: no alerts", stdout.ToString().Trim());
    }

    [Fact]
    public async Task Health_thresholds_take_the_durations_prune_takes_with_the_same_error()
    {
        string dataDir = _dir.Combine("data");
        Directory.CreateDirectory(dataDir);
        await Append(dataDir, Op(OperationKinds.StoreSnapshot, DateTimeOffset.UtcNow.AddDays(-3), true));

        var stdout = new StringWriter();
        Assert.Equal(ExitCodes.Unhealthy, await TestCli.RunAsync(["health", "--data-dir", dataDir], stdout, new StringWriter(), CancellationToken.None));
        Assert.Contains("BackupTooOld", stdout.ToString(), StringComparison.Ordinal);
        stdout = new StringWriter();
        Assert.Equal(0, await TestCli.RunAsync(["health", "--data-dir", dataDir, "--max-age", "3d12h", "--max-restore-test-age", "1y"], stdout, new StringWriter(), CancellationToken.None));
        Assert.DoesNotContain("BackupTooOld", stdout.ToString(), StringComparison.Ordinal);
        Assert.Contains("NoRestoreDrill", stdout.ToString(), StringComparison.Ordinal);
        stdout = new StringWriter();
        Assert.Equal(ExitCodes.Unhealthy, await TestCli.RunAsync(["health", "--data-dir", dataDir, "--max-age", "2.00:00:00"], stdout, new StringWriter(), CancellationToken.None));
        Assert.Contains("BackupTooOld", stdout.ToString(), StringComparison.Ordinal);

        // A bad duration is the same typed error, with the same message and exit code, as prune's.
        var healthError = new StringWriter();
        int healthCode = await TestCli.RunAsync(["health", "--data-dir", dataDir, "--max-age", "3x"], new StringWriter(), healthError, CancellationToken.None);
        var pruneError = new StringWriter();
        int pruneCode = await TestCli.RunAsync(["prune", "--data-dir", dataDir, "--namespace", Ns, "--keep-within", "3x"], new StringWriter(), pruneError, CancellationToken.None);
        Assert.Equal(ExitCodes.InvalidArgument, healthCode);
        Assert.Equal(pruneCode, healthCode);
        Assert.Equal(pruneError.ToString(), healthError.ToString());
        Assert.Contains("'3x' is not a duration", healthError.ToString(), StringComparison.Ordinal);
        Assert.Equal("InvalidDuration", Assert.Throws<InvalidInputException>(() => Durations.Parse("1d3m")).ErrorId);
    }

    [Fact]
    public async Task Metrics_are_valid_exposition_text_for_a_real_parser_and_written_atomically()
    {
        DateTimeOffset now = new(2026, 6, 1, 12, 0, 0, TimeSpan.Zero);
        string dataDir = _dir.Combine("data");
        Directory.CreateDirectory(dataDir);
        await Append(dataDir, Op(OperationKinds.StoreSnapshot, now.AddHours(-3), true, 1000));
        await Append(dataDir, Op(OperationKinds.StoreSnapshot, now.AddHours(-2), false));
        await Append(dataDir, Op(OperationKinds.WalSegment, now.AddHours(-1), true, 500));
        await EventLog.ForDataDir(dataDir).AppendAsync(Ns, now, new RestoreDrillEvent { Namespace = Ns, Passed = true, Segments = 0, Bytes = 0, DurationSeconds = 1, Errors = [], Time = now.AddMinutes(-10), Host = "h" }, CancellationToken.None);
        string path = _dir.Combine("psbackup.prom");
        MetricExportResult? written = await BackupHealth.ExportMetricsAsync(new MetricExportOptions { DataDir = dataDir, Path = path }, Context(now));
        Assert.Equal(path, written!.Path);
        Assert.Single(Directory.EnumerateFiles(_dir.Path, "*prom*"));

        JsonElement families = ParseWithPrometheusParser(path);
        var byName = families.EnumerateArray().ToDictionary(f => f.GetProperty("name").GetString()!);
        foreach (string name in new[] { "backup_success_total", "backup_failure_total", "backup_last_timestamp_seconds", "backup_age_seconds", "backup_bytes_total", "wal_gap_segments", "restore_test_last_success_timestamp_seconds", "restore_test_failure_total" })
        {
            Assert.True(byName.ContainsKey(name), name);
            Assert.False(string.IsNullOrEmpty(byName[name].GetProperty("help").GetString()));
        }
        Assert.Equal("COUNTER", byName["backup_success_total"].GetProperty("type").GetString());
        JsonElement snap = byName["backup_failure_total"].GetProperty("metrics").EnumerateArray().Single(m => m.GetProperty("labels").GetProperty("kind").GetString() == "store-snapshot");
        Assert.Equal(Ns, snap.GetProperty("labels").GetProperty("namespace").GetString());
        Assert.Equal("1", snap.GetProperty("value").GetString());
        JsonElement age = byName["backup_age_seconds"].GetProperty("metrics").EnumerateArray().Single(m => m.GetProperty("labels").GetProperty("kind").GetString() == "wal-segment");
        Assert.Equal("3600", age.GetProperty("value").GetString());
        Assert.Equal(((double)now.AddMinutes(-10).ToUnixTimeSeconds()).ToString(System.Globalization.CultureInfo.InvariantCulture),
            byName["restore_test_last_success_timestamp_seconds"].GetProperty("metrics")[0].GetProperty("value").GetString());

        // CLI without --path writes the same text to stdout.
        var stdout = new StringWriter();
        Assert.Equal(0, await TestCli.RunAsync(["metrics", "--data-dir", dataDir], stdout, new StringWriter(), CancellationToken.None));
        Assert.Contains("# TYPE wal_gap_segments gauge", stdout.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Local_object_backups_and_restores_record_into_a_history_folder_that_health_and_metrics_read()
    {
        using var obj = new PSBackup.Engine.Tests.ObjectStore.ObjectFixture();
        string history = _dir.Combine("history");
        string dir = PSBackup.Engine.Tests.ObjectStore.ObjectFixture.Dir;
        DateTimeOffset now = DateTimeOffset.UtcNow;
        var ok = await PSBackup.Engine.ObjectStore.ObjectOperations.BackupAsync(obj.BackupOptions() with { HistoryPath = history }, Context(now.AddMinutes(-30)));
        Assert.NotNull(ok);
        var failing = obj.BackupOptions() with { HistoryPath = history, Quiesce = _ => throw new OperationFailedException("QuiesceFailed", "the writer did not pause") };
        for (int i = 1; i <= 2; i++)
        {
            await Assert.ThrowsAsync<OperationFailedException>(() => PSBackup.Engine.ObjectStore.ObjectOperations.BackupAsync(failing, Context(now.AddMinutes(-20 + i))));
        }
        Assert.NotNull(await PSBackup.Engine.ObjectStore.ObjectOperations.RestoreAsync(obj.RestoreOptions(ok.BackupName, force: true) with { HistoryPath = history }, Context(now.AddMinutes(-5))));
        // The history lives outside $DB_ROOT: the root holds only its tenant dir, and no events anywhere below.
        Assert.Equal([obj.DirPath], Directory.GetFileSystemEntries(obj.DbRoot));
        Assert.Empty(Directory.GetDirectories(obj.DbRoot, "events", SearchOption.AllDirectories));
        Assert.Equal(4, Directory.GetFiles(Path.Combine(history, dir, "events")).Length);

        IReadOnlyList<HealthAlert> alerts = await BackupHealth.GetAlertsAsync(new BackupHealthOptions { HistoryPath = history }, Context(now));
        HealthAlert failures = Assert.Single(alerts);
        Assert.Equal(("ConsecutiveFailures", OperationKinds.Object, dir, HealthSeverity.Critical), (failures.Code, HealthAlertKinds.ToName(failures.Kind), failures.Namespace, failures.Severity));
        Assert.Contains("QuiesceFailed", failures.Message, StringComparison.Ordinal);
        var stdout = new StringWriter();
        Assert.Equal(ExitCodes.Unhealthy, await TestCli.RunAsync(["health", "--history-path", history], stdout, new StringWriter(), CancellationToken.None));
        Assert.Contains("ConsecutiveFailures", stdout.ToString(), StringComparison.Ordinal);

        string prom = _dir.Combine("objects.prom");
        Assert.Equal(0, await TestCli.RunAsync(["metrics", "--history-path", history, "--path", prom], new StringWriter(), new StringWriter(), CancellationToken.None));
        var byName = ParseWithPrometheusParser(prom).EnumerateArray().ToDictionary(f => f.GetProperty("name").GetString()!);
        string Value(string family, string kind) => byName[family].GetProperty("metrics").EnumerateArray()
            .Single(m => m.GetProperty("labels").GetProperty("kind").GetString() == kind && m.GetProperty("labels").GetProperty("namespace").GetString() == dir).GetProperty("value").GetString()!;
        Assert.Equal("1", Value("backup_success_total", OperationKinds.Object));
        Assert.Equal("2", Value("backup_failure_total", OperationKinds.Object));
        Assert.Equal(ok.Bytes.ToString(System.Globalization.CultureInfo.InvariantCulture), Value("backup_last_bytes", OperationKinds.Object));
        Assert.Equal("1", Value("backup_success_total", OperationKinds.ObjectRestore));

        // A success resets the streak.
        Assert.NotNull(await PSBackup.Engine.ObjectStore.ObjectOperations.BackupAsync(obj.BackupOptions() with { HistoryPath = history }, Context(now.AddMinutes(-1))));
        Assert.Empty(await BackupHealth.GetAlertsAsync(new BackupHealthOptions { HistoryPath = history }, Context(now)));
    }

    [Fact]
    public async Task A_history_folder_inside_the_db_root_is_refused_and_nothing_is_written()
    {
        using var obj = new PSBackup.Engine.Tests.ObjectStore.ObjectFixture();
        TreeState before = TreeState.Capture(obj.DbRoot);
        InvalidInputException e = await Assert.ThrowsAsync<InvalidInputException>(() =>
            PSBackup.Engine.ObjectStore.ObjectOperations.BackupAsync(obj.BackupOptions() with { HistoryPath = Path.Combine(obj.DbRoot, "history") }, Context()));
        Assert.Equal("HistoryInsideDbRoot", e.ErrorId);
        before.AssertUnchanged(obj.DbRoot);
        var stderr = new StringWriter();
        Assert.Equal(ExitCodes.InvalidArgument, await TestCli.RunAsync(["object", "backup", "--db-root", obj.DbRoot, "--dir", PSBackup.Engine.Tests.ObjectStore.ObjectFixture.Dir,
            "--object", PSBackup.Engine.Tests.ObjectStore.ObjectFixture.Object, "--history-path", Path.Combine(obj.DbRoot, "h")], new StringWriter(), stderr, CancellationToken.None));
        Assert.Contains("inside the database root", stderr.ToString(), StringComparison.Ordinal);
        before.AssertUnchanged(obj.DbRoot);
    }

    [Fact]
    public void Label_values_are_escaped_per_the_format()
    {
        Assert.Equal("a\\\\b\\\"c\\nd", PrometheusText.Escape("a\\b\"c\nd"));
    }

    /// <summary>Runs parse-prometheus-text-format (tests/prom, installed by scripts/test.sh); a missing
    /// parser fails the test rather than skipping it.</summary>
    private static JsonElement ParseWithPrometheusParser(string file)
    {
        string root = RepoRoot();
        string script = Path.Combine(root, "tests", "prom", "parse.js");
        Assert.True(Directory.Exists(Path.Combine(root, "tests", "prom", "node_modules", "parse-prometheus-text-format")),
            "parse-prometheus-text-format is not installed: run 'npm ci --prefix tests/prom' (scripts/test.sh does).");
        var psi = new ProcessStartInfo("node") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(script);
        psi.ArgumentList.Add(file);
        using Process p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd();
        string error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, "the Prometheus parser rejected the output: " + error);
        return JsonDocument.Parse(output).RootElement.Clone();
    }

    private static string RepoRoot()
    {
        string? dir = AppContext.BaseDirectory;
        while (dir is not null && !File.Exists(Path.Combine(dir, "PSBackup.sln")))
        {
            dir = Path.GetDirectoryName(dir);
        }
        return dir ?? throw new InvalidOperationException("PSBackup.sln not found above the test assembly.");
    }
}
