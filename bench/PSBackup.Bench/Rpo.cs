using System.Diagnostics;
using System.Globalization;
using PSBackup.Engine;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Storage;
using PSBackup.Engine.Wal;

namespace PSBackup.Bench;

/// <summary>What the RPO scenario measured.</summary>
public sealed record RpoResult
{
    public required string Target { get; init; }
    public required TimeSpan Interval { get; init; }
    public required double Seconds { get; init; }
    public required long Records { get; init; }
    public required long BytesWritten { get; init; }
    public required long RepositoryGrowth { get; init; }
    public required double LagP50 { get; init; }
    public required double LagP99 { get; init; }
    public required double LagMax { get; init; }
    /// <summary>Records never shipped before the end (should be 0).</summary>
    public required long Unshipped { get; init; }
    public required double LoadCpuPercent { get; init; }
    public required double IdleCpuPercent { get; init; }
    public required double IdleSeconds { get; init; }
    public required long RssStartMiB { get; init; }
    public required long RssEndMiB { get; init; }
    public required long RssMaxMiB { get; init; }
    public required long Segments { get; init; }
    public required int Items { get; init; }
    /// <summary>Per phase of a shipping pass: mean, p50, p99 and max in ms over the passes that shipped.</summary>
    public required string PassCost { get; init; }
    /// <summary>RSS (MiB) at each minute, and the GC heap after the run.</summary>
    public required string RssSeries { get; init; }
    public required string LoadAverage { get; init; }

    public double Growth => BytesWritten == 0 ? 0 : (double)RepositoryGrowth / BytesWritten;

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"rpo ({Target}, interval {Interval.TotalSeconds:0.###} s, {Seconds:F0} s): {Records} records ({BytesWritten / 1048576.0:F1} MiB in {Segments} segments), " +
        $"lag p50 {LagP50:F3} s, p99 {LagP99:F3} s, max {LagMax:F3} s, unshipped {Unshipped}; repository growth {RepositoryGrowth / 1048576.0:F1} MiB = {Growth:F3}x bytes written; " +
        $"CPU {LoadCpuPercent:F1} % of a core under load, {IdleCpuPercent:F2} % idle over {IdleSeconds:F0} s; RSS {RssStartMiB} -> {RssEndMiB} MiB (max {RssMaxMiB}); {Items} items shipped\n" +
        $"  load average {LoadAverage}\n  RSS by minute: {RssSeries}\n  pass cost (ms: mean / p50 / p99 / max over passes that shipped):\n{PassCost}");
}

/// <summary>The RPO benchmark (issue 16): a writer appends records of 100 B..8 KiB (log-uniform,
/// random, so nothing compresses or deduplicates away) at a fixed rate to a walfs v1 WAL of 16 MiB
/// segments (the engine's WalSegmentWriter; the header and an fsync every 50 ms, a group commit),
/// rotating when a segment is full; in the same process <c>Invoke-WalShip -Continuous</c> ships it
/// to a repository every interval. A record's lag is from its append (write) to the moment the ship that
/// first holds it (partial or sealed) is committed. Then the writer stops and the follower runs
/// idle: its CPU is measured over that stretch. RSS is sampled every second.</summary>
public static class Rpo
{
    public static async Task<RpoResult> RunAsync(string workDir, TimeSpan duration, int rate, TimeSpan interval, TimeSpan idle,
        string? s3Location, string? s3Endpoint, int seed, TextWriter log)
    {
        string work = Path.GetFullPath(workDir);
        if (Directory.Exists(work))
        {
            Directory.Delete(work, recursive: true);
        }
        const string ns = "rpo";
        string walDir = Path.Combine(work, "data", ns, "wal");
        Directory.CreateDirectory(walDir);
        var target = s3Location is null
            ? new RepositoryTarget { Location = Path.Combine(work, "repository") }
            : new RepositoryTarget { Location = s3Location, Endpoint = s3Endpoint };
        var quiet = new OperationContext { AuditLogPath = "off" };
        await RepositoryOperations.InitializeAsync(new InitializeRepositoryOptions(target) { Unencrypted = RepositoryConnector.Credentials(target).IsNone }, quiet).ConfigureAwait(false);
        long repoStart = await RepositoryBytesAsync(target).ConfigureAwait(false);

        long capacity = (long)(rate * (duration.TotalSeconds + 5)) + 16;
        long[] appendedAt = new long[capacity + 1];
        double[] lag = new double[capacity + 1];
        long shippedThrough = 0;
        object gate = new();
        var costs = new List<WalPassCost>();
        string loadBefore = LoadAverageNow();
        int items = 0;

        using var stop = new CancellationTokenSource();
        var context = new OperationContext { AuditLogPath = "off", CancellationToken = stop.Token };
        var options = new InvokeWalShipOptions(Path.Combine(work, "data"), ns, null) { Repository = target };

        // The first segment exists before the follower starts.
        long segmentId = 1;
        WalSegmentWriter writer = WalSegmentWriter.Create(Path.Combine(walDir, WalFormat.SegmentFileName(segmentId, WalFormat.SegExtension)), 1, DateTimeOffset.UtcNow,
            WalFormat.DefaultSegmentSize, 1, WalFormat.MarkerStandalone, writeSidecar: true);
        writer.Sync();

        Task follower = WalOperations.FollowAsync(options, new WalFollowOptions { Interval = interval },
            s =>
            {
                long now = Stopwatch.GetTimestamp();
                lock (gate)
                {
                    items++;
                    if (s.LastLogIndex is long last)
                    {
                        for (long i = shippedThrough + 1; i <= last && i < appendedAt.Length; i++)
                        {
                            if (appendedAt[i] != 0)
                            {
                                lag[i] = Stopwatch.GetElapsedTime(appendedAt[i], now).TotalSeconds;
                            }
                        }
                        shippedThrough = Math.Max(shippedThrough, last);
                    }
                }
            },
            s =>
            {
                if (s.Error is not null)
                {
                    log.WriteLine("follower: " + s);
                }
                else if (s.Shipped > 0 && s.Cost is { } cost)
                {
                    lock (costs)
                    {
                        costs.Add(cost);
                    }
                }
            },
            context);

        var rss = new List<long>();
        var process = Process.GetCurrentProcess();
        using var sampler = new PeriodicTimer(TimeSpan.FromSeconds(1));
        Task sampling = Task.Run(async () =>
        {
            while (await sampler.WaitForNextTickAsync().ConfigureAwait(false))
            {
                process.Refresh();
                lock (rss)
                {
                    rss.Add(process.WorkingSet64);
                }
            }
        });

        // The writer: catch up with the schedule every 5 ms; header + fsync every 50 ms.
        var random = new Random(seed);
        byte[] payload = new byte[8192];
        long next = 1;
        long bytes = 0;
        long segments = 1;
        TimeSpan cpuStart = process.TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        long lastSync = 0;
        while (clock.Elapsed < duration)
        {
            long due = (long)(clock.Elapsed.TotalSeconds * rate) + 1;
            while (next <= due && next < capacity)
            {
                int size = (int)Math.Round(Math.Exp(Math.Log(100) + random.NextDouble() * (Math.Log(8192) - Math.Log(100))));
                random.NextBytes(payload.AsSpan(0, size));
                if (!writer.HasRoomFor(size))
                {
                    writer.Seal(DateTimeOffset.UtcNow);
                    writer.Dispose();
                    segmentId++;
                    segments++;
                    writer = WalSegmentWriter.Create(Path.Combine(walDir, WalFormat.SegmentFileName(segmentId, WalFormat.SegExtension)), next, DateTimeOffset.UtcNow,
                        WalFormat.DefaultSegmentSize, 1, WalFormat.MarkerStandalone, writeSidecar: true);
                }
                writer.Append(payload.AsSpan(0, size), next);
                appendedAt[next] = Stopwatch.GetTimestamp();
                bytes += WalFormat.RecordSize(size);
                next++;
            }
            if (clock.ElapsedMilliseconds - lastSync >= 50)
            {
                writer.Sync(); // the header walfs rewrites with every append, and a group commit's fsync
                lastSync = clock.ElapsedMilliseconds;
            }
            await Task.Delay(5).ConfigureAwait(false);
        }
        writer.Sync();
        long records = next - 1;
        double loadSeconds = clock.Elapsed.TotalSeconds;

        // Let the follower catch up (at most 60 s), then measure it idle.
        var catchUp = Stopwatch.StartNew();
        while (Volatile.Read(ref shippedThrough) < records && catchUp.Elapsed < TimeSpan.FromSeconds(60))
        {
            await Task.Delay(50).ConfigureAwait(false);
        }
        process.Refresh();
        TimeSpan cpuLoadEnd = process.TotalProcessorTime;
        double loadCpu = 100 * (cpuLoadEnd - cpuStart).TotalSeconds / (loadSeconds + catchUp.Elapsed.TotalSeconds);
        var idleClock = Stopwatch.StartNew();
        await Task.Delay(idle).ConfigureAwait(false);
        process.Refresh();
        double idleCpu = 100 * (process.TotalProcessorTime - cpuLoadEnd).TotalSeconds / idleClock.Elapsed.TotalSeconds;

        stop.Cancel();
        await follower.ConfigureAwait(false);
        writer.Dispose();
        sampler.Dispose();
        await sampling.ConfigureAwait(false);
        long repoEnd = await RepositoryBytesAsync(target).ConfigureAwait(false);

        double[] lags;
        long unshipped;
        lock (gate)
        {
            lags = lag.Skip(1).Take((int)records).Where(l => l > 0).Order().ToArray();
            unshipped = records - Math.Min(records, shippedThrough);
        }
        long[] rssSamples;
        lock (rss)
        {
            rssSamples = rss.ToArray();
        }
        WalPassCost[] passes;
        lock (costs)
        {
            passes = costs.ToArray();
        }
        string loadAfter = LoadAverageNow();
        long heap = GC.GetTotalMemory(forceFullCollection: true);
        double P(double p) => lags.Length == 0 ? double.NaN : lags[Math.Min(lags.Length - 1, (int)Math.Ceiling(p * lags.Length) - 1)];
        return new RpoResult
        {
            Target = target.IsS3 ? "s3" : "local",
            Interval = interval,
            Seconds = loadSeconds,
            Records = records,
            BytesWritten = bytes,
            RepositoryGrowth = repoEnd - repoStart,
            LagP50 = P(0.5),
            LagP99 = P(0.99),
            LagMax = lags.Length == 0 ? double.NaN : lags[^1],
            Unshipped = unshipped,
            LoadCpuPercent = loadCpu,
            IdleCpuPercent = idleCpu,
            IdleSeconds = idle.TotalSeconds,
            RssStartMiB = rssSamples.Length == 0 ? 0 : rssSamples[Math.Min(rssSamples.Length - 1, 10)] >> 20,
            RssEndMiB = rssSamples.Length == 0 ? 0 : rssSamples[^1] >> 20,
            RssMaxMiB = rssSamples.Length == 0 ? 0 : rssSamples.Max() >> 20,
            Segments = segments,
            Items = items,
            PassCost = Summarize(passes),
            RssSeries = string.Join(" ", rssSamples.Where((_, i) => i % 60 == 0 || i == rssSamples.Length - 1).Select(b => (b >> 20).ToString(CultureInfo.InvariantCulture))) +
                string.Create(CultureInfo.InvariantCulture, $" (GC heap after a full collection at the end: {heap / 1048576.0:F1} MiB)"),
            LoadAverage = $"{loadBefore} before, {loadAfter} after",
        };
    }

    private static string LoadAverageNow()
    {
        try
        {
            return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "?";
        }
    }

    /// <summary>One line per phase: mean, p50, p99, max (ms).</summary>
    private static string Summarize(IReadOnlyList<WalPassCost> passes)
    {
        if (passes.Count == 0)
        {
            return "    (no pass shipped)";
        }
        string Line(string name, double[] ms)
        {
            Array.Sort(ms);
            double P(double p) => ms[Math.Min(ms.Length - 1, Math.Max(0, (int)Math.Ceiling(p * ms.Length) - 1))];
            return string.Create(CultureInfo.InvariantCulture, $"    {name,-8} {ms.Average(),8:F1} {P(0.5),8:F1} {P(0.99),8:F1} {ms[^1],8:F1}");
        }
        var lines = new List<string> { Line("total", passes.Select(p => p.Total.TotalMilliseconds).ToArray()) };
        foreach (WalPassPhase phase in Enum.GetValues<WalPassPhase>())
        {
            double[] ms = passes.Select(p => p[phase].TotalMilliseconds).ToArray();
            if (ms.Any(m => m > 0))
            {
                lines.Add(Line(phase.ToString().ToLowerInvariant(), ms));
            }
        }
        return string.Create(CultureInfo.InvariantCulture, $"    {passes.Count} passes\n") + string.Join("\n", lines);
    }

    /// <summary>Bytes stored in the repository (every object).</summary>
    private static async Task<long> RepositoryBytesAsync(RepositoryTarget target)
    {
        using IStorageBackend backend = RepositoryConnector.OpenBackend(target);
        long total = 0;
        await foreach (StoredObject o in backend.ListAsync("", CancellationToken.None).ConfigureAwait(false))
        {
            total += o.Size;
        }
        return total;
    }
}
