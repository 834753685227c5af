using System.Diagnostics;
using PSBackup.Engine;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Wal;

namespace PSBackup.Bench;

/// <summary>Per-case ship times of one sealed segment, in milliseconds, in case order.</summary>
public sealed record ShipLatencyResult(IReadOnlyList<double> Milliseconds)
{
    public double Median => Percentile(0.5);
    public double P90 => Percentile(0.9);

    private double Percentile(double p)
    {
        var sorted = Milliseconds.Order().ToList();
        return sorted[(int)Math.Ceiling(p * sorted.Count) - 1];
    }
}

/// <summary>Times the engine's ship of ONE newly sealed 16 MiB segment into a repository,
/// in-process (so .NET start-up, ~80 ms, does not swamp a figure meant to be tens of
/// milliseconds). Steady state: the namespace's WAL holds the segment shipped last time and the
/// new one; the repository already holds every earlier segment. Each ship opens the repository,
/// as a runbook calling Invoke-WalShip every minute in one session does; the first ship (JIT, and
/// the passphrase's key derivation, which the engine then remembers for the process) is a warm-up
/// and not counted.</summary>
public static class ShipLatency
{
    /// <param name="repository">True: ship into a repository (chunk, compress, encrypt, commit);
    /// false: the seed's local ship, a verified copy into the namespace's backup folder.</param>
    public static async Task<ShipLatencyResult> MeasureAsync(string datasetDir, string workDir, int cases, bool repository = true)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(cases, 1);
        string sourceWal = Path.Combine(Path.GetFullPath(datasetDir), "data", Dataset.Namespace, "wal");
        List<(long Id, string Path)> segments = WalDirectory.ListSegmentFiles(sourceWal);
        if (segments.Count < cases + 1)
        {
            throw new InvalidOperationException($"'{sourceWal}' holds {segments.Count} segments; {cases + 1} are needed for {cases} cases and a warm-up.");
        }
        string work = Path.GetFullPath(workDir);
        if (Directory.Exists(work))
        {
            Directory.Delete(work, recursive: true);
        }
        string dataDir = Path.Combine(work, "data");
        string walDir = Path.Combine(dataDir, Dataset.Namespace, "wal");
        Directory.CreateDirectory(walDir);
        // Encrypted exactly when the CLI's would be: PSBACKUP_PASSPHRASE / PSBACKUP_KEY_FILE.
        var target = new RepositoryTarget { Location = Path.Combine(work, "repository") };
        var context = new OperationContext { AuditLogPath = "off" };
        if (repository)
        {
            await RepositoryOperations.InitializeAsync(new InitializeRepositoryOptions(target) { Unencrypted = RepositoryConnector.Credentials(target).IsNone }, context).ConfigureAwait(false);
        }

        var times = new List<double>(cases);
        for (int i = 0; i <= cases; i++)
        {
            if (i >= 2)
            {
                File.Delete(Path.Combine(walDir, Path.GetFileName(segments[i - 2].Path)));
                File.Delete(Path.Combine(walDir, Path.GetFileName(segments[i - 2].Path) + WalFormat.SidecarSuffix));
            }
            File.Copy(segments[i].Path, Path.Combine(walDir, Path.GetFileName(segments[i].Path)));
            if (File.Exists(segments[i].Path + WalFormat.SidecarSuffix)) // walfs v1 writes one per sealed segment
            {
                File.Copy(segments[i].Path + WalFormat.SidecarSuffix, Path.Combine(walDir, Path.GetFileName(segments[i].Path) + WalFormat.SidecarSuffix));
            }
            var watch = Stopwatch.StartNew();
            var options = repository
                ? new InvokeWalShipOptions(dataDir, Dataset.Namespace, null) { Repository = target }
                : new InvokeWalShipOptions(dataDir, Dataset.Namespace, "wal") { AfterSegmentId = i == 0 ? 0 : segments[i - 1].Id };
            WalShipResult result = await WalOperations.ShipAsync(options, context).ConfigureAwait(false);
            watch.Stop();
            int shipped = result.Backups.Count(b => !b.AlreadyPresent);
            if (shipped != 1)
            {
                throw new InvalidOperationException($"Case {i} shipped {shipped} segments, expected exactly one.");
            }
            if (i > 0)
            {
                times.Add(watch.Elapsed.TotalMilliseconds);
            }
        }
        Directory.Delete(work, recursive: true);
        return new ShipLatencyResult(times);
    }
}
