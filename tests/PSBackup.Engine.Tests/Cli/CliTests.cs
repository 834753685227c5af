using System.Text.Json;
using PSBackup.Cli;
using PSBackup.Engine.Tests.Support;
using PSBackup.Engine.Wal;

namespace PSBackup.Engine.Tests.Cli;

/// <summary>The CLI run in-process through <see cref="CliApp.RunAsync"/>: exit codes, one-line
/// errors, nothing on stdout when failing.</summary>
public sealed class CliTests : IDisposable
{
    private readonly TestDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private sealed record Run(int ExitCode, string Stdout, string Stderr)
    {
        public string[] StderrLines => Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    }

    private static async Task<Run> RunCli(params string[] args) => await RunCli(CancellationToken.None, args);

    private static async Task<Run> RunCli(CancellationToken cancellationToken, params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = await TestCli.RunAsync(args, stdout, stderr, cancellationToken);
        return new Run(code, stdout.ToString(), stderr.ToString());
    }

    private static void AssertUserError(Run run, int exitCode, string mentions)
    {
        Assert.Equal(exitCode, run.ExitCode);
        Assert.Equal("", run.Stdout);
        string line = Assert.Single(run.StderrLines);
        Assert.StartsWith("psbackup: ", line);
        Assert.Contains(mentions, line, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("   at ", run.Stderr); // no stack trace
    }

    // ---- command tree and parsing (no engine involved) ----------------------------------------

    [Theory]
    [InlineData("object", "backup")]
    [InlineData("object", "restore")]
    [InlineData("sweep")]
    [InlineData("wal", "list")]
    [InlineData("wal", "ship")]
    [InlineData("snapshot", "create")]
    public async Task Each_command_exists_and_has_help(params string[] path)
    {
        Run run = await RunCli([.. path, "--help"]);
        Assert.Equal(0, run.ExitCode);
        Assert.Contains("--json", run.Stdout);
        Assert.Equal("", run.Stderr);
    }

    [Fact]
    public async Task Unknown_option_is_bad_input()
    {
        Run run = await RunCli("wal", "ship", "--data-dir", _dir.Path, "--namespace", "users", "--backup-dir", "d", "--bogus");
        AssertUserError(run, ExitCodes.InvalidArgument, "--bogus");
    }

    [Fact]
    public async Task Unknown_command_is_bad_input()
    {
        Run run = await RunCli("frobnicate");
        AssertUserError(run, ExitCodes.InvalidArgument, "frobnicate");
    }

    [Fact]
    public async Task Missing_required_option_is_bad_input_naming_it()
    {
        Run run = await RunCli("wal", "ship", "--data-dir", _dir.Path, "--namespace", "users");
        AssertUserError(run, ExitCodes.InvalidArgument, "--backup-dir");
    }

    [Fact]
    public async Task Non_numeric_segment_id_is_bad_input()
    {
        Run run = await RunCli("wal", "ship", "--data-dir", _dir.Path, "--namespace", "users", "--backup-dir", "d", "--after-segment-id", "forty");
        AssertUserError(run, ExitCodes.InvalidArgument, "forty");
    }

    [Fact]
    public async Task Negative_after_segment_id_is_bad_input()
    {
        Run run = await RunCli("wal", "ship", "--data-dir", _dir.Path, "--namespace", "users", "--backup-dir", "d", "--after-segment-id", "-1");
        AssertUserError(run, ExitCodes.InvalidArgument, "--after-segment-id");
    }

    [Fact]
    public async Task Empty_data_dir_is_bad_input()
    {
        Run run = await RunCli("wal", "list", "--data-dir", "", "--namespace", "users");
        AssertUserError(run, ExitCodes.InvalidArgument, "--data-dir");
    }

    [Fact]
    public async Task Force_exists_only_where_the_cmdlet_has_Force()
    {
        Run run = await RunCli("wal", "ship", "--data-dir", _dir.Path, "--namespace", "users", "--backup-dir", "d", "--force");
        AssertUserError(run, ExitCodes.InvalidArgument, "--force");
    }

    [Fact]
    public async Task What_if_exists_only_on_writing_commands()
    {
        Run run = await RunCli("wal", "list", "--data-dir", _dir.Path, "--namespace", "users", "--what-if");
        AssertUserError(run, ExitCodes.InvalidArgument, "--what-if");
    }

    // ---- exit-code mapping --------------------------------------------------------------------

    [Fact]
    public void Exit_codes_are_distinct_per_error_kind()
    {
        Assert.Equal(2, ExitCodes.For(new InvalidInputException("InvalidName", "bad")));
        Assert.Equal(3, ExitCodes.For(new NotFoundException("DirectoryNotFound", "missing")));
        Assert.Equal(4, ExitCodes.For(new IntegrityException("BackupFileCorrupt", "corrupt")));
        Assert.Equal(4, ExitCodes.For(new WalGapException("gap", "users", [44])));
        Assert.Equal(5, ExitCodes.For(new ConflictException("AlreadyExists", "exists")));
        Assert.Equal(1, ExitCodes.For(new OperationFailedException("CopyFailed", "failed")));
        Assert.Equal(130, ExitCodes.For(new OperationCanceledException()));
        Assert.Equal(1, ExitCodes.For(new IOException("disk")));
        Assert.Equal(Enum.GetValues<ErrorKind>().Length, Enum.GetValues<ErrorKind>().Select(ExitCodes.For).Distinct().Count());
    }

    // ---- shell hooks ----------------------------------------------------------------------------

    [Fact]
    public async Task A_hook_command_that_exits_non_zero_is_a_named_failure()
    {
        var log = new StringWriter();
        var e = await Assert.ThrowsAsync<OperationFailedException>(() => ShellCommand.RunAsync("exit 3", "quiesce", log, CancellationToken.None));
        Assert.Equal("QuiesceCommandFailed", e.ErrorId);
        Assert.Contains("code 3", e.Message);
    }

    [Fact]
    public async Task A_hook_command_runs_in_the_shell_and_its_output_goes_to_the_log()
    {
        var log = new StringWriter();
        await ShellCommand.RunAsync("echo quiesced", "resume", log, CancellationToken.None);
        Assert.Contains("quiesced", log.ToString());
    }

    // ---- output shapes (no engine involved) -----------------------------------------------------

    [Fact]
    public void Wal_ship_json_matches_the_seed_response()
    {
        var result = new WalShipResult("users", "wal/archive",
        [
            new ShippedSegment("users", 43, "/data/backups/users/wal/archive/000000043.wal", 4096, "ab12", false),
            new ShippedSegment("users", 44, "/data/backups/users/wal/archive/000000044.wal", 8192, "cd34", true),
        ]);
        var output = new StringWriter();
        CliOutput.WalShip(output, result, json: true);
        using JsonDocument doc = JsonDocument.Parse(output.ToString());
        JsonElement backups = doc.RootElement.GetProperty("backups");
        Assert.Equal(2, backups.GetArrayLength());
        JsonElement first = backups[0];
        Assert.Equal(43, first.GetProperty("segmentId").GetInt64());
        Assert.Equal("/data/backups/users/wal/archive/000000043.wal", first.GetProperty("path").GetString());
        Assert.Equal(4096, first.GetProperty("bytes").GetInt64());
        Assert.Equal("ab12", first.GetProperty("sha256").GetString());
        Assert.False(first.GetProperty("alreadyPresent").GetBoolean());
        Assert.Equal(44, backups[1].GetProperty("segmentId").GetInt64()); // jq '.backups[-1].segmentId'
    }

    [Fact]
    public void Snapshot_json_starts_with_the_seed_path_and_bytes()
    {
        var result = new Engine.Snapshots.StoreSnapshotResult
        {
            Namespace = "users",
            Path = "/data/backups/users/snapshots/s.db",
            Bytes = 73400320,
            ManifestPath = "/data/backups/users/snapshots/s.db.manifest.json",
            FileCount = 1,
            WalPosition = new WalPosition([1, 2, 3], 300, 250),
            CreatedAt = DateTimeOffset.UnixEpoch,
            CompletedAt = DateTimeOffset.UnixEpoch.AddSeconds(2),
            Duration = 2,
        };
        var output = new StringWriter();
        CliOutput.Snapshot(output, result, json: true);
        using JsonDocument doc = JsonDocument.Parse(output.ToString());
        string[] names = doc.RootElement.EnumerateObject().Select(p => p.Name).ToArray();
        Assert.Equal(["path", "bytes"], names[..2]);
        Assert.Equal(73400320, doc.RootElement.GetProperty("bytes").GetInt64());
        Assert.Equal(250, doc.RootElement.GetProperty("walPosition").GetProperty("appliedLogIndex").GetInt64());
    }

    [Fact]
    public void Human_tables_are_aligned()
    {
        var table = new TableWriter().Column("SegmentId", rightAlign: true).Column("Path");
        table.Row("7", "/a");
        table.Row("1234567890", "/b");
        var output = new StringWriter();
        table.WriteTo(output);
        string[] lines = output.ToString().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(4, lines.Length);
        Assert.Equal(lines[2].IndexOf("/a", StringComparison.Ordinal), lines[3].IndexOf("/b", StringComparison.Ordinal));
        Assert.Equal(lines[0].IndexOf("Path", StringComparison.Ordinal), lines[3].IndexOf("/b", StringComparison.Ordinal));
    }

    // ---- engine-backed paths (need the engine operations, not the stubs) -----------------------

    [Fact]
    public async Task Namespace_with_traversal_is_bad_input()
    {
        Run run = await RunCli("wal", "ship", "--data-dir", _dir.Path, "--namespace", "../x", "--backup-dir", "d");
        AssertUserError(run, ExitCodes.InvalidArgument, "namespace");
    }

    [Fact]
    public async Task Absolute_backup_dir_is_bad_input()
    {
        Directory.CreateDirectory(_dir.Combine("users", "wal"));
        Run run = await RunCli("wal", "ship", "--data-dir", _dir.Path, "--namespace", "users", "--backup-dir", "/etc/wal");
        AssertUserError(run, ExitCodes.InvalidArgument, "absolute");
        Assert.False(Directory.Exists(_dir.Combine("backups")), "Nothing may be written for bad input.");
    }

    [Fact]
    public async Task Unsafe_object_name_is_bad_input()
    {
        Run run = await RunCli("object", "restore", "--db-root", _dir.Path, "--dir", "acme", "--object", "../orders", "--from", "orders.backup-20250101T000000", "--force");
        AssertUserError(run, ExitCodes.InvalidArgument, "../orders");
    }

    [Fact]
    public async Task Missing_data_dir_is_not_found()
    {
        Run run = await RunCli("wal", "list", "--data-dir", _dir.Combine("nope"), "--namespace", "users");
        AssertUserError(run, ExitCodes.NotFound, "nope");
    }

    [Fact]
    public async Task Missing_object_to_back_up_is_not_found()
    {
        Directory.CreateDirectory(_dir.Combine("acme"));
        Run run = await RunCli("object", "backup", "--db-root", _dir.Path, "--dir", "acme", "--object", "ghost");
        AssertUserError(run, ExitCodes.NotFound, "ghost");
    }

    [Fact]
    public async Task Cancelled_run_exits_130()
    {
        WriteWal(_dir.Path, "users", sealedSegments: 2);
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        Run run = await RunCli(cancelled.Token, "wal", "ship", "--data-dir", _dir.Path, "--namespace", "users", "--backup-dir", "wal/archive");
        Assert.Equal(ExitCodes.Cancelled, run.ExitCode);
        Assert.Equal("psbackup: cancelled.", Assert.Single(run.StderrLines));
    }

    [Fact]
    public async Task Wal_ship_json_lists_the_sealed_segments_and_what_if_writes_nothing()
    {
        WriteWal(_dir.Path, "users", sealedSegments: 2);

        Run whatIf = await RunCli("wal", "ship", "--data-dir", _dir.Path, "--namespace", "users", "--backup-dir", "wal/archive", "--what-if");
        Assert.Equal(0, whatIf.ExitCode);
        Assert.Contains("What if: ", whatIf.Stdout);
        Assert.False(Directory.Exists(_dir.Combine("backups", "users", "wal", "archive")) &&
            Directory.EnumerateFiles(_dir.Combine("backups", "users", "wal", "archive")).Any(), "--what-if must not write segments.");

        Run run = await RunCli("wal", "ship", "--data-dir", _dir.Path, "--namespace", "users", "--backup-dir", "wal/archive", "--json");
        Assert.Equal(0, run.ExitCode);
        Assert.Equal("", run.Stderr);
        using JsonDocument doc = JsonDocument.Parse(run.Stdout);
        long[] ids = doc.RootElement.GetProperty("backups").EnumerateArray().Select(b => b.GetProperty("segmentId").GetInt64()).ToArray();
        Assert.Equal([1L, 2L], ids);
        foreach (JsonElement b in doc.RootElement.GetProperty("backups").EnumerateArray())
        {
            Assert.True(File.Exists(b.GetProperty("path").GetString()));
        }

        Run list = await RunCli("wal", "list", "--data-dir", _dir.Path, "--namespace", "users");
        Assert.Equal(0, list.ExitCode);
        Assert.Contains("SegmentId", list.Stdout);
        Assert.Equal(5, list.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length); // header, rule, 3 segments
    }

    /// <summary>Sealed segments 1..n and one active segment n+1, 3 records each.</summary>
    private static void WriteWal(string dataDir, string ns, int sealedSegments)
    {
        string wal = Path.Combine(dataDir, ns, "wal");
        Directory.CreateDirectory(wal);
        long next = 1;
        DateTimeOffset t = DateTimeOffset.UtcNow.AddHours(-1);
        for (int id = 1; id <= sealedSegments + 1; id++)
        {
            using WalSegmentWriter writer = WalSegmentWriter.Create(Path.Combine(wal, $"{id:D9}.wal"), next, t, fileSize: 64 * 1024);
            for (int r = 0; r < 3; r++)
            {
                writer.Append(System.Text.Encoding.UTF8.GetBytes($"record {next + r}"));
            }
            writer.Sync();
            if (id <= sealedSegments)
            {
                writer.Seal(t.AddMinutes(id));
            }
            next += 3;
        }
    }

    [Theory]
    [InlineData("pass -Force to replace it", "pass --force to replace it")]
    [InlineData("Check -Namespace and -DataDir: x", "Check --namespace and --data-dir: x")]
    [InlineData("AfterSegmentId -1 is negative; give -AfterSegmentId 0", "AfterSegmentId -1 is negative; give --after-segment-id 0")]
    [InlineData("file data-mdb and re-Run -x", "file data-mdb and re-Run -x")]
    public void Error_messages_name_cli_options_not_cmdlet_parameters(string engine, string cli) =>
        Assert.Equal(cli, PSBackup.Cli.CliApp.AsOptions(engine));
}
