using System.Text.Json;
using PSBackup.Cli;
using PSBackup.Engine.Tests.Restore;
using PSBackup.Engine.Tests.Support;

namespace PSBackup.Engine.Tests.Cli;

/// <summary><c>psbackup snapshot restore</c> and <c>psbackup pitr</c> over the PITR scenario's local
/// backup root and repository: exit codes, --json shapes, and nothing written on every error path.</summary>
public sealed class CliRestoreTests(RepositoryPitrScenario scenario) : IClassFixture<RepositoryPitrScenario>
{
    private const string Ns = PitrScenario.Ns;

    private sealed record Run(int ExitCode, string Stdout, string Stderr)
    {
        public JsonElement Json => JsonDocument.Parse(Stdout).RootElement;
    }

    private static async Task<Run> RunCli(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        int code = await TestCli.RunAsync(args, stdout, stderr);
        return new Run(code, stdout.ToString(), stderr.ToString());
    }

    private string Repo => scenario.Repository!.Location;

    [Fact]
    public async Task Snapshot_restore_local_and_repository_json()
    {
        string into = scenario.NewTarget("cli-snap-local");
        Run local = await RunCli("snapshot", "restore", "--data-dir", scenario.DataDir, "--namespace", Ns, "--snapshot", "snapshots/s170.sqlite", "--target-data-dir", into, "--json");
        Assert.True(local.ExitCode == 0, local.Stderr);
        Assert.Equal(Ns, local.Json.GetProperty("namespace").GetString());
        Assert.Equal(Path.Combine(into, Ns, "db"), local.Json.GetProperty("restoredPath").GetString());
        Assert.True(local.Json.GetProperty("bytes").GetInt64() > 0);
        Assert.Equal(JsonValueKind.Null, local.Json.GetProperty("repository").ValueKind);

        string fromRepo = scenario.NewTarget("cli-snap-repo");
        Run repo = await RunCli("snapshot", "restore", "--repository", Repo, "--namespace", Ns, "--backup-id", scenario.RepositorySnapshots[0].BackupId, "--target-data-dir", fromRepo, "--json");
        Assert.True(repo.ExitCode == 0, repo.Stderr);
        Assert.Equal(scenario.RepositorySnapshots[0].BackupId, repo.Json.GetProperty("backupId").GetString());
        Assert.Equal(Repo, repo.Json.GetProperty("repository").GetString());
        Assert.Equal(scenario.RepositorySnapshots[0].Applied, repo.Json.GetProperty("walPosition").GetProperty("appliedLogIndex").GetInt64());
    }

    [Fact]
    public async Task Pitr_local_and_repository_restore_json_and_replay()
    {
        long target = scenario.Snapshots[1].Applied + 33;
        foreach ((string name, string[] source) in new[] { ("cli-pitr-local", new[] { "--data-dir", scenario.DataDir }), ("cli-pitr-repo", new[] { "--repository", Repo }) })
        {
            string into = scenario.NewTarget(name);
            Run run = await RunCli([.. new[] { "pitr", "--namespace", Ns, "--target-log-index", target.ToString(System.Globalization.CultureInfo.InvariantCulture), "--target-data-dir", into, "--json" }, .. source]);
            Assert.True(run.ExitCode == 0, run.Stderr);
            Assert.True(run.Json.GetProperty("restored").GetBoolean());
            Assert.Equal(target, run.Json.GetProperty("lastLogIndex").GetInt64());
            Assert.False(run.Json.GetProperty("targetPastArchive").GetBoolean());
            JsonElement plan = run.Json.GetProperty("plan");
            Assert.Equal(target, plan.GetProperty("target").GetProperty("logIndex").GetInt64());
            Assert.True(plan.GetProperty("segments").GetArrayLength() > 0);
            Assert.True(plan.GetProperty("segments").EnumerateArray().Last().GetProperty("cut").GetBoolean());
            scenario.AssertStateAt(target, PitrScenario.ReplayAndRead(into));
        }
    }

    [Fact]
    public async Task Pitr_what_if_prints_the_plan_and_writes_nothing()
    {
        string into = scenario.NewTarget("cli-whatif");
        var before = TreeState.Capture(scenario.Root);
        Run table = await RunCli("pitr", "--data-dir", scenario.DataDir, "--namespace", Ns, "--target-log-index", "600", "--target-data-dir", into, "--what-if");
        Assert.True(table.ExitCode == 0, table.Stderr);
        Assert.Contains("What if: Restore to log index 600", table.Stdout, StringComparison.Ordinal);
        Assert.Contains("SegmentId", table.Stdout, StringComparison.Ordinal);
        Assert.Contains("cut", table.Stdout, StringComparison.Ordinal);

        Run json = await RunCli("pitr", "--repository", Repo, "--namespace", Ns, "--target-time", scenario.RecordTimes[600].ToString("O"), "--target-data-dir", into, "--what-if", "--json");
        Assert.True(json.ExitCode == 0, json.Stderr);
        Assert.Contains("What if:", json.Stderr, StringComparison.Ordinal);
        Assert.Equal(scenario.ExpectedIndexAt(scenario.RecordTimes[600]), json.Json.GetProperty("lastLogIndex").GetInt64());
        Assert.Equal(JsonValueKind.Array, json.Json.GetProperty("notes").ValueKind);
        before.AssertUnchanged(scenario.Root);
    }

    [Fact]
    public async Task Pitr_past_the_archive_restores_the_latest_and_says_so_on_stderr()
    {
        string into = scenario.NewTarget("cli-past");
        Run run = await RunCli("pitr", "--data-dir", scenario.DataDir, "--namespace", Ns, "--target-log-index", (scenario.LastLogIndex + 100).ToString(System.Globalization.CultureInfo.InvariantCulture), "--target-data-dir", into, "--json");
        Assert.True(run.ExitCode == 0, run.Stderr);
        Assert.True(run.Json.GetProperty("targetPastArchive").GetBoolean());
        Assert.Equal(scenario.LastArchivedLogIndex, run.Json.GetProperty("lastLogIndex").GetInt64());
        Assert.Contains("warning: the target log index", run.Stderr, StringComparison.Ordinal);
        Assert.Contains("past the last shipped record", run.Stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(2, "exactly one of --target-time", "pitr", "--namespace", Ns, "--data-dir", "{data}", "--target-data-dir", "{into}")]
    [InlineData(2, "exactly one of --target-time", "pitr", "--namespace", Ns, "--data-dir", "{data}", "--target-log-index", "5", "--target-time", "2026-03-01T00:00:00Z", "--target-data-dir", "{into}")]
    [InlineData(2, "not a time", "pitr", "--namespace", Ns, "--data-dir", "{data}", "--target-time", "yesterday-ish", "--target-data-dir", "{into}")]
    [InlineData(2, "namespace", "pitr", "--namespace", "../users", "--data-dir", "{data}", "--target-log-index", "5", "--target-data-dir", "{into}")]
    [InlineData(3, "before the first snapshot", "pitr", "--namespace", Ns, "--data-dir", "{data}", "--target-log-index", "3", "--target-data-dir", "{into}")]
    [InlineData(3, "before the first snapshot", "pitr", "--namespace", Ns, "--repository", "{repo}", "--target-time", "2026-03-01T00:00:01Z", "--target-data-dir", "{into}")]
    [InlineData(3, "no local backup root", "pitr", "--namespace", "orders", "--data-dir", "{data}", "--target-log-index", "5", "--target-data-dir", "{into}")]
    [InlineData(2, "--backup-id only applies to a repository", "snapshot", "restore", "--namespace", Ns, "--data-dir", "{data}", "--backup-id", "abc", "--target-data-dir", "{into}")]
    [InlineData(2, "not a backup id", "snapshot", "restore", "--namespace", Ns, "--repository", "{repo}", "--backup-id", "../x", "--target-data-dir", "{into}")]
    [InlineData(2, "--target-data-dir", "snapshot", "restore", "--namespace", Ns, "--repository", "{repo}")]
    [InlineData(3, "no complete snapshot 'snapshots/nope'", "snapshot", "restore", "--namespace", Ns, "--data-dir", "{data}", "--snapshot", "snapshots/nope", "--target-data-dir", "{into}")]
    public async Task Error_paths_exit_non_zero_and_write_nothing(int exitCode, string mentions, params string[] args)
    {
        string into = scenario.NewTarget("cli-error-" + Guid.NewGuid().ToString("n")[..8]);
        string[] resolved = args.Select(a => a.Replace("{data}", scenario.DataDir).Replace("{repo}", Repo).Replace("{into}", into)).ToArray();
        var before = TreeState.Capture(scenario.Root);
        Run run = await RunCli(resolved);
        Assert.Equal(exitCode, run.ExitCode);
        Assert.Contains(mentions, run.Stderr, StringComparison.Ordinal);
        Assert.StartsWith("psbackup: ", run.Stderr, StringComparison.Ordinal);
        Assert.Equal("", run.Stdout);
        before.AssertUnchanged(scenario.Root);
    }

    [Fact]
    public async Task A_wal_gap_names_the_missing_segment_and_exits_4()
    {
        string dataDir = scenario.NewTarget("cli-gap-source");
        PointInTimeReplayTests.CopyTree(scenario.DataDir, dataDir);
        var lost = scenario.Archived.First(s => s.FirstLogIndex > scenario.Snapshots[1].Applied + 1);
        File.Delete(Directory.EnumerateFiles(Path.Combine(dataDir, "backups", Ns), Engine.Wal.WalFormat.SegmentFileName(lost.SegmentId), SearchOption.AllDirectories).Single());
        string into = scenario.NewTarget("cli-gap-into");
        Run run = await RunCli("pitr", "--data-dir", dataDir, "--namespace", Ns, "--target-log-index", (lost.LastLogIndex!.Value + 3).ToString(System.Globalization.CultureInfo.InvariantCulture), "--target-data-dir", into);
        Assert.Equal(4, run.ExitCode);
        Assert.Contains($"segment {lost.SegmentId} is not archived", run.Stderr, StringComparison.Ordinal);
        Assert.False(Directory.Exists(into) && Directory.EnumerateFileSystemEntries(into).Any());
    }
}
