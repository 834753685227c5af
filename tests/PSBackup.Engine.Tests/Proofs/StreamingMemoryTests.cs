using System.Diagnostics;
using System.Globalization;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Storage;
using PSBackup.Engine.Tests.Support;
using Xunit.Abstractions;
using Repo = PSBackup.Engine.Repository.Repository;

namespace PSBackup.Engine.Tests.Proofs;

/// <summary>A fact that runs only on Linux (it reads /proc), skipped with the reason elsewhere.</summary>
public sealed class LinuxFactAttribute : FactAttribute
{
    public LinuxFactAttribute()
    {
        if (!OperatingSystem.IsLinux())
        {
            Skip = "Reads the child's peak memory from /proc/<pid>/status (VmHWM), which only Linux has.";
        }
    }
}

/// <summary>SPEC §5 "peak memory bounded (streaming), independent of data size": the CLI backs up
/// a 2 GiB file into a repository in a child process whose peak resident memory (VmHWM) stays
/// under 300 MiB.</summary>
[Trait("Category", "Proof")]
[Collection(SerialProofs.Name)]
public sealed class StreamingMemoryTests(ITestOutputHelper output) : IDisposable
{
    private const long FileSize = 2L << 30;
    private const long LimitKiB = 300 * 1024;
    private readonly TestDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [LinuxFact]
    public async Task Backing_up_a_2_GiB_file_keeps_peak_memory_under_300_MiB()
    {
        string dbRoot = _dir.Combine("db");
        string file = Path.Combine(dbRoot, "acme", "big", "data", "000.bin");
        var clock = Stopwatch.StartNew();
        BulkData.WriteFile(file, FileSize, 2026);
        output.WriteLine($"wrote the 2 GiB test file in {clock.Elapsed.TotalSeconds:F1} s");
        string repo = _dir.Combine("repo");
        Directory.CreateDirectory(repo);
        using (var backend = new LocalBackend(repo))
        {
            await Repo.InitializeAsync(backend, new RepositoryInitOptions());
        }

        clock.Restart();
        using CliProcess child = CliProcess.Start("object", "backup", "--db-root", dbRoot, "--dir", "acme", "--object", "big", "--repository", repo, "--json");
        long peakKiB = 0;
        string status = $"/proc/{child.Id}/status";
        while (!child.HasExited)
        {
            // VmHWM is a high-water mark: the last value read before exit is the peak.
            try
            {
                foreach (string line in File.ReadLines(status))
                {
                    if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    {
                        peakKiB = Math.Max(peakKiB, long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture));
                    }
                }
            }
            catch (IOException)
            {
                break; // exited between the check and the read
            }
            await Task.Delay(20);
        }
        int code = await child.WaitAsync(TimeSpan.FromMinutes(5));
        TimeSpan wall = clock.Elapsed;
        Assert.True(code == 0, child.Stderr);
        output.WriteLine($"backup of 2 GiB: peak memory (VmHWM) {peakKiB / 1024.0:F1} MiB, wall time {wall.TotalSeconds:F1} s ({FileSize / wall.TotalSeconds / (1 << 20):F0} MiB/s)");
        Assert.True(peakKiB > 0, "No VmHWM sample was read.");
        Assert.True(peakKiB < LimitKiB, $"Peak memory {peakKiB / 1024.0:F1} MiB exceeds 300 MiB.");

        using var backend2 = new LocalBackend(repo);
        Repo r = await Repo.OpenAsync(backend2, RepositoryCredentials.None);
        RepositoryManifest m = await r.ReadManifestAsync(CliProcess.BackupIdOf(child.Stdout));
        RepositoryFile f = Assert.Single(m.Files, x => x.Path == "data/000.bin");
        Assert.Equal(FileSize, f.Size);
        Assert.Equal(BulkData.Sha256(file).ToLowerInvariant(), f.Sha256);
    }
}
