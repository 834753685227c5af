using System.Diagnostics;
using System.Text.Json;
using PSBackup.Cli;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Storage;
using PSBackup.Engine.Tests.Support;
using Xunit.Abstractions;
using Repo = PSBackup.Engine.Repository.Repository;

namespace PSBackup.Engine.Tests.Proofs;

/// <summary>SPEC §3 "writes are crash-safe", proven against the real CLI: a child
/// <c>psbackup object backup --repository</c> is killed (whole process tree, no chance to clean
/// up) at seeded random points spread over a measured uninterrupted run; after every kill the
/// repository passes <c>check --read-data</c>, and the next backup completes and restores byte-exact.</summary>
[Trait("Category", "Proof")]
[Collection(SerialProofs.Name)]
public sealed class CrashSafetyTests(ITestOutputHelper output) : IDisposable
{
    private const int Kills = 20;
    private const int MaxRounds = 34;
    private const int Files = 8;
    private const long FileSize = 16L << 20;
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);
    private readonly TestDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private string DbRoot => _dir.Combine("db");
    private string ObjectPath => Path.Combine(DbRoot, "acme", "orders");
    private string RepoPath => _dir.Combine("repo");

    private string[] BackupArgs => ["object", "backup", "--db-root", DbRoot, "--dir", "acme", "--object", "orders", "--repository", RepoPath, "--json"];

    /// <summary>Rewrites two of the data files (rotating) with new content, so every run stores new packs.</summary>
    private void Mutate(int round)
    {
        for (int k = 0; k < 2; k++)
        {
            int file = (round * 2 + k) % Files;
            BulkData.WriteFile(Path.Combine(ObjectPath, "data", $"{file:D3}.bin"), FileSize, 1000 + round * 10 + k);
        }
    }

    [Fact]
    public async Task Killing_the_CLI_at_random_points_never_damages_the_repository()
    {
        for (int i = 0; i < Files; i++)
        {
            BulkData.WriteFile(Path.Combine(ObjectPath, "data", $"{i:D3}.bin"), FileSize, i);
        }
        File.WriteAllText(Path.Combine(ObjectPath, "fields.conf"), "id:int\nname:string\n");
        Directory.CreateDirectory(RepoPath);
        using (var backend = new LocalBackend(RepoPath))
        {
            await Repo.InitializeAsync(backend, new RepositoryInitOptions());
        }

        // A first full backup, then a representative uninterrupted run (two files changed): its
        // wall time, process start to exit, sets the range of kill points.
        await CliProcess.RunOkAsync(Timeout, BackupArgs);
        Mutate(0);
        var clock = Stopwatch.StartNew();
        await CliProcess.RunOkAsync(Timeout, BackupArgs);
        TimeSpan full = clock.Elapsed;
        output.WriteLine($"uninterrupted backup of {Files * FileSize >> 20} MiB: {full.TotalMilliseconds:F0} ms");

        var rng = new Random(20260301);
        int killedMidRun = 0;
        var checkTimes = new List<double>();
        int round = 0;
        while (killedMidRun < Kills && round < MaxRounds)
        {
            round++;
            Mutate(round);
            int delay = rng.Next(0, (int)(full.TotalMilliseconds * 0.9));
            // (full is the shortest uninterrupted incremental run seen so far: runs vary with load.)
            using (CliProcess victim = CliProcess.Start(BackupArgs))
            {
                await Task.Delay(delay);
                bool running = !victim.HasExited;
                victim.Kill();
                await victim.WaitAsync(Timeout);
                killedMidRun += running ? 1 : 0;
                output.WriteLine($"round {round}: killed at {delay} ms{(running ? "" : " (had already exited)")}");
            }

            // The repository is valid after every kill: no errors (unreferenced packs are warnings).
            var check = Stopwatch.StartNew();
            var stdout = new StringWriter();
            var stderr = new StringWriter();
            int code = await TestCli.RunAsync(["check", "--repository", RepoPath, "--read-data", "--json"], stdout, stderr);
            checkTimes.Add(check.Elapsed.TotalMilliseconds);
            Assert.True(code == 0, $"round {round}, killed at {delay} ms: check --read-data exited {code}: {stderr}{stdout}");
            using (JsonDocument report = JsonDocument.Parse(stdout.ToString()))
            {
                Assert.True(report.RootElement.GetProperty("passed").GetBoolean());
                Assert.Equal(0, report.RootElement.GetProperty("errors").GetArrayLength());
            }

            // The next run completes, and restores byte-exact.
            var next = Stopwatch.StartNew();
            string id = CliProcess.BackupIdOf(await CliProcess.RunOkAsync(Timeout, BackupArgs));
            if (next.Elapsed < full)
            {
                full = next.Elapsed;
            }
            SortedDictionary<string, string> expected = BulkData.Tree(ObjectPath);
            string target = _dir.Combine("restore");
            using (var backend = new LocalBackend(RepoPath))
            {
                Repo repo = await Repo.OpenAsync(backend, RepositoryCredentials.None);
                RepositoryManifest m = await repo.ReadManifestAsync(id);
                await repo.RestoreAsync(m, target);
            }
            Assert.Equal(expected, BulkData.Tree(target));
            Directory.Delete(target, recursive: true);
        }
        output.WriteLine($"killed mid-run {killedMidRun} of {round}; check --read-data took {checkTimes.Min():F0}..{checkTimes.Max():F0} ms");
        Assert.True(killedMidRun >= Kills, $"Only {killedMidRun} of {round} kills landed while the backup ran; the proof needs {Kills}.");
    }
}
