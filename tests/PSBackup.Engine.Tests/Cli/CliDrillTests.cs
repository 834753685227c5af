using System.Text.Json;
using PSBackup.Cli;
using PSBackup.Engine.Events;
using PSBackup.Engine.Tests.Restore;
using PSBackup.Engine.Tests.Support;

namespace PSBackup.Engine.Tests.Cli;

/// <summary><c>psbackup test-restore</c> in-process: exit codes 0 / 1 (validation) / 4 (integrity) / 2 (bad input).</summary>
public sealed class CliDrillTests(PitrScenario scenario) : IClassFixture<PitrScenario>, IDisposable
{
    private const string Ns = PitrScenario.Ns;
    private readonly TestDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private string CopyOfBackups()
    {
        string dataDir = _dir.Combine("data-" + Guid.NewGuid().ToString("N")[..6]);
        foreach (string file in Directory.EnumerateFiles(scenario.BackupRoot, "*", SearchOption.AllDirectories))
        {
            string to = Path.Combine(dataDir, "backups", Ns, Path.GetRelativePath(scenario.BackupRoot, file));
            Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            File.Copy(file, to);
        }
        return dataDir;
    }

    private static async Task<(int Code, string Stdout, string Stderr)> RunCli(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = await TestCli.RunAsync(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public async Task A_good_backup_passes_with_exit_0_and_the_command_sees_the_restored_path()
    {
        string dataDir = CopyOfBackups();
        string scratch = _dir.Combine("scratch");
        Directory.CreateDirectory(scratch);
        var (code, stdout, stderr) = await RunCli("test-restore", "--data-dir", dataDir, "--namespace", Ns, "--scratch-path", scratch, "--json",
            "--validate-command", "test -f \"$1/db/store.sqlite\" && test -d \"$1/wal\" && test \"$PSBACKUP_RESTORED_PATH\" = \"$1\"");
        Assert.True(code == 0, stderr);
        using JsonDocument doc = JsonDocument.Parse(stdout);
        Assert.True(doc.RootElement.GetProperty("passed").GetBoolean());
        Assert.Equal(scenario.LastArchivedLogIndex, doc.RootElement.GetProperty("lastLogIndex").GetInt64());
        Assert.True(doc.RootElement.GetProperty("validationPassed").GetBoolean());
        Assert.Empty(Directory.EnumerateFileSystemEntries(scratch));
        Assert.Single(History.OtherEvents(await EventLog.ForDataDir(dataDir).ListAsync(Ns, CancellationToken.None)));
    }

    [Fact]
    public async Task A_failing_validate_command_exits_1_with_one_line()
    {
        string dataDir = CopyOfBackups();
        var (code, stdout, stderr) = await RunCli("test-restore", "--data-dir", dataDir, "--namespace", Ns, "--validate-command", "echo nope >&2; exit 3");
        Assert.Equal(1, code);
        Assert.Contains("False", stdout);
        Assert.Contains("psbackup: The restore drill of namespace 'users' failed: Validation failed: The validate command exited with code 3", stderr);
        Assert.False(History.OtherEvents(await EventLog.ForDataDir(dataDir).ListAsync(Ns, CancellationToken.None)).Single().As<RestoreDrillEvent>().Passed);
    }

    [Fact]
    public async Task A_damaged_snapshot_exits_4()
    {
        string dataDir = CopyOfBackups();
        string file = Directory.GetFiles(Path.Combine(dataDir, "backups", Ns, "snapshots"), "s650.sqlite").Single();
        byte[] bytes = File.ReadAllBytes(file);
        bytes[bytes.Length / 2] ^= 0xFF;
        File.WriteAllBytes(file, bytes);
        var (code, _, stderr) = await RunCli("test-restore", "--data-dir", dataDir, "--namespace", Ns);
        Assert.Equal(4, code);
        Assert.Contains("s650.sqlite", stderr);
    }

    [Theory]
    [InlineData("--namespace", "users")]
    [InlineData("--namespace", "users", "--data-dir", "X", "--target-log-index", "0")]
    [InlineData("--namespace", "users", "--data-dir", "X", "--snapshot", "a", "--backup-id", "b")]
    public async Task Bad_input_exits_2_and_writes_nothing(params string[] args)
    {
        string dataDir = CopyOfBackups();
        string[] full = ["test-restore", .. args.Select(a => a == "X" ? dataDir : a)];
        var (code, stdout, stderr) = await RunCli(full);
        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        Assert.StartsWith("psbackup: ", stderr);
        Assert.Empty(History.OtherEventFiles(Path.Combine(dataDir, "backups", Ns, "events")));
    }
}
