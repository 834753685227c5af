using System.Diagnostics;
using PSBackup.Engine.Tests.ObjectStore;
using PSBackup.Engine.Tests.Proofs;
using PSBackup.Engine.Tests.Storage;
using PSBackup.Engine.Tests.Support;

namespace PSBackup.Engine.Tests.Hostile;

/// <summary>SIGTERM (systemd stop, docker stop) is Ctrl+C (issue 12, item 15): the run is cancelled,
/// its temp copy removed, the outcome 'cancelled' recorded in the audit log, and the process exits
/// (130 from the CLI, 143 from PowerShell), in the CLI and in a pwsh running the cmdlet. The signal
/// goes to the process doing the work (the pwsh shim does not forward signals).</summary>
[Collection(SerialProofs.Name)]
public sealed class SigtermTests : IDisposable
{
    private readonly TestDirectory _dir = new();
    private readonly ObjectFixture _obj = new();

    public void Dispose()
    {
        _obj.Dispose();
        _dir.Dispose();
    }

    private static void Term(int pid)
    {
        using Process kill = Process.Start(new ProcessStartInfo("kill", ["-TERM", pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]) { UseShellExecute = false })!;
        kill.WaitForExit();
    }

    /// <summary>Waits until the backup's temp sibling exists (the copy is under way), then SIGTERMs.</summary>
    private async Task TermWhileCopyingAsync(Func<bool> exited, int pid)
    {
        var watch = Stopwatch.StartNew();
        while (!Directory.EnumerateDirectories(_obj.DirPath, "*.tmp").Any())
        {
            Assert.False(exited(), "the backup finished before it could be interrupted");
            Assert.True(watch.Elapsed < TimeSpan.FromMinutes(2), "the backup never started copying");
            await Task.Delay(20);
        }
        Term(pid);
    }

    private void AssertCleanAndRecorded(string audit)
    {
        Assert.DoesNotContain(Directory.EnumerateFileSystemEntries(_obj.DirPath), e => !string.Equals(e, _obj.ObjectPath, StringComparison.Ordinal));
        string last = File.ReadLines(audit).Last();
        Assert.Contains("\"outcome\":\"cancelled\"", last);
        Assert.Contains("New-ObjectBackup", last);
    }

    [Fact]
    public async Task The_cli_handles_SIGTERM_like_ctrl_c()
    {
        BulkData.WriteFile(Path.Combine(_obj.ObjectPath, "data", "big.bin"), 768L << 20, seed: 3);
        string audit = _dir.Combine("audit.jsonl");
        string history = _dir.Combine("history");
        using CliProcess backup = CliProcess.Start(new Dictionary<string, string?> { ["PSBACKUP_AUDIT_LOG"] = audit },
            "object", "backup", "--db-root", _obj.DbRoot, "--dir", ObjectFixture.Dir, "--object", ObjectFixture.Object, "--history-path", history);
        await TermWhileCopyingAsync(() => backup.HasExited, backup.Id);
        Assert.Equal(130, await backup.WaitAsync(TimeSpan.FromMinutes(1)));
        AssertCleanAndRecorded(audit);
        // The history (what health and metrics read) has it too, as cancelled, not failed.
        string evt = File.ReadAllText(Assert.Single(Directory.GetFiles(Path.Combine(history, ObjectFixture.Dir, "events"))));
        Assert.Contains("\"cancelled\": true", evt);
    }

    [Fact]
    public async Task A_pwsh_running_the_cmdlet_cleans_up_and_exits_on_SIGTERM()
    {
        string root = S3ServerFixture.FindRepoRoot();
        string pwsh = Path.Combine(root, ".tools", "pwsh", ".store", "powershell", "7.6.10", "powershell", "7.6.10", "tools", "net10.0", "any", "unix", "pwsh.dll");
        Assert.True(File.Exists(pwsh), $"{pwsh} is missing: scripts/install-pwsh.sh installs it (scripts/test.sh runs it first).");
        string module = Path.Combine(root, "out", "PSBackup", "PSBackup.psd1");
        BulkData.WriteFile(Path.Combine(_obj.ObjectPath, "data", "big.bin"), 768L << 20, seed: 4);
        string audit = _dir.Combine("audit.jsonl");
        var start = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in new[] { pwsh, "-NoProfile", "-NonInteractive", "-Command",
            $"Import-Module '{module}'; New-ObjectBackup -DbRoot '{_obj.DbRoot}' -Dir {ObjectFixture.Dir} -Object {ObjectFixture.Object}" })
        {
            start.ArgumentList.Add(a);
        }
        start.Environment["PSBACKUP_AUDIT_LOG"] = audit;
        using Process p = Process.Start(start)!;
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        try
        {
            await TermWhileCopyingAsync(() => p.HasExited, p.Id);
            using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(1));
            await p.WaitForExitAsync(cts.Token);
            Assert.Equal(143, p.ExitCode);
            AssertCleanAndRecorded(audit); // before: the .tmp sibling stayed, nothing was recorded
        }
        finally
        {
            if (!p.HasExited)
            {
                p.Kill(entireProcessTree: true);
            }
        }
    }
}
