using System.Diagnostics;
using PSBackup.Engine.Storage;
using PSBackup.Engine.Tests.ObjectStore;
using PSBackup.Engine.Tests.Proofs;
using PSBackup.Engine.Tests.Storage;

namespace PSBackup.Engine.Tests.Hostile;

/// <summary>A real S3 server (its own s3rver) paused with SIGSTOP: it accepts connections and never
/// answers (issue 12, item 5). Requests time out and are retried within a bounded budget, the
/// command fails with a clear error, and SIGTERM ends a run stalled in a request at once.</summary>
public sealed class StalledStorageTests(Xunit.Abstractions.ITestOutputHelper output) : IAsyncLifetime
{
    private readonly S3ServerFixture _s3 = new();
    private string _bucket = "";

    public async Task InitializeAsync()
    {
        await _s3.InitializeAsync();
        _bucket = await _s3.CreateBucketAsync("stall");
    }

    public Task DisposeAsync()
    {
        Signal("CONT", _s3.ProcessId);
        return _s3.DisposeAsync();
    }

    private static void Signal(string name, int pid)
    {
        using Process kill = Process.Start(new ProcessStartInfo("kill", ["-" + name, pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]) { UseShellExecute = false })!;
        kill.WaitForExit();
    }

    private string[] S3(string prefix) =>
        ["--repository", $"s3://{_bucket}/{prefix}", "--endpoint", _s3.Endpoint, "--access-key", S3ServerFixture.AccessKey, "--secret-key", S3ServerFixture.SecretKey];

    [Fact]
    public async Task A_stalled_endpoint_fails_with_a_clear_error_in_bounded_time_and_SIGTERM_ends_a_stalled_backup()
    {
        await CliProcess.RunOkAsync(TimeSpan.FromMinutes(2), ["repo", "init", .. S3("r"), "--unencrypted"]);
        using var obj = new ObjectFixture();
        Signal("STOP", _s3.ProcessId);
        try
        {
            var timeouts = new Dictionary<string, string?>
            {
                [StorageRetryPolicy.RequestTimeoutVariable] = "2s",
                [StorageRetryPolicy.IdleTimeoutVariable] = "2s",
            };
            var watch = Stopwatch.StartNew();
            using (CliProcess list = CliProcess.Start(timeouts, ["list", .. S3("r")]))
            {
                int code = await list.WaitAsync(TimeSpan.FromMinutes(2)); // before: > 400 s
                Assert.Equal(1, code);
                Assert.Contains("did not answer within the timeout", list.Stderr);
                Assert.DoesNotContain("disk", list.Stderr);
            }
            output.WriteLine($"list against a SIGSTOPped S3 server (2 s timeouts): failed after {watch.Elapsed.TotalSeconds:0.0} s");
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(90), $"list took {watch.Elapsed}");

            // Default timeouts: SIGTERM while a request hangs cancels it, cleans up, exits 130.
            using CliProcess backup = CliProcess.Start(["object", "backup", "--db-root", obj.DbRoot, "--dir", ObjectFixture.Dir, "--object", ObjectFixture.Object, .. S3("r")]);
            await Task.Delay(TimeSpan.FromSeconds(3));
            Assert.False(backup.HasExited);
            Signal("TERM", backup.Id);
            var stop = Stopwatch.StartNew();
            Assert.Equal(130, await backup.WaitAsync(TimeSpan.FromMinutes(1))); // before: ignored, ran > 5 min
            output.WriteLine($"backup stalled in an S3 request: exit 130 {stop.Elapsed.TotalSeconds:0.0} s after SIGTERM");
            // The cancelled run's history event and lock release get 1 s each against the stalled
            // store (before: 10 s each, so 10-20 s); the rest is slack for a loaded machine.
            Assert.True(stop.Elapsed < TimeSpan.FromSeconds(6), $"SIGTERM took {stop.Elapsed} to end the run");
            Assert.Contains("cancelled", backup.Stderr);
        }
        finally
        {
            Signal("CONT", _s3.ProcessId);
        }
    }
}
