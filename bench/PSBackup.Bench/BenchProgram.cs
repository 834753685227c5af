using System.Globalization;

namespace PSBackup.Bench;

/// <summary>psbackup-bench: the benchmark's helper (bench/run.sh drives it).
/// <code>
/// generate --out DIR [--size-mib 1024] [--segments 64] [--seed N]
/// mutate --out DIR [--percent 5] [--seed N]
/// mutate-tree --root DIR [--percent 5] [--seed N]
/// ship-latency --out DIR --work DIR [--cases 10] [--run N] [--tsv FILE]
/// report --raw FILE [--md FILE]
/// rpo --work DIR [--seconds 600] [--rate 1000] [--interval 1s] [--idle-seconds 60] [--s3 s3://bucket/prefix --s3-endpoint URL] [--seed N] [--tsv FILE]
/// </code></summary>
public static class BenchProgram
{
    private const string Usage = """
        usage: psbackup-bench generate --out DIR [--size-mib 1024] [--segments 64] [--seed N]
               psbackup-bench mutate --out DIR [--percent 5] [--seed N]
               psbackup-bench mutate-tree --root DIR [--percent 5] [--seed N]
               psbackup-bench ship-latency --out DIR --work DIR [--target repository|local] [--cases 10] [--run N] [--tsv FILE]
               psbackup-bench report --raw FILE [--md FILE]
               psbackup-bench rpo --work DIR [--seconds 600] [--rate 1000] [--interval 1s] [--idle-seconds 60] [--s3 s3://bucket/prefix --s3-endpoint URL] [--seed N] [--tsv FILE]
        """;

    public static async Task<int> Main(string[] args)
    {
        if (args.Length == 0)
        {
            Console.Error.WriteLine(Usage);
            return 2;
        }
        Dictionary<string, string> options;
        try
        {
            options = Options(args.Skip(1).ToArray());
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"{e.Message}\n{Usage}");
            return 2;
        }
        string Get(string name, string fallback) => options.TryGetValue(name, out string? value) ? value : fallback;
        string Required(string name) => options.TryGetValue(name, out string? value) ? value : throw new ArgumentException($"--{name} is required.");
        long Number(string name, long fallback) => long.Parse(Get(name, fallback.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);
        try
        {
            switch (args[0])
            {
                case "generate":
                {
                    DatasetResult r = Dataset.Generate(Required("out"), Number("seed", Dataset.DefaultSeed), (int)Number("size-mib", Dataset.DefaultSizeMiB), (int)Number("segments", Dataset.DefaultSegments));
                    Console.WriteLine($"object store: {r.DbRoot} ({r.ObjectFiles} files, {r.ObjectBytes / 1048576.0:F0} MiB)");
                    Console.WriteLine($"namespace:    {Path.Combine(r.DataDir, r.Namespace)} ({r.Stamp.Segments} sealed segments, log index 1..{r.Stamp.LastLogIndex}, store applied {Dataset.AppliedRecords})");
                    return 0;
                }
                case "mutate":
                {
                    MutationResult r = Mutation.Apply(Required("out"), double.Parse(Get("percent", "5"), CultureInfo.InvariantCulture), Number("seed", Dataset.DefaultSeed));
                    Console.WriteLine($"changed {r.ChangedBytes / 1048576.0:F1} of {r.TotalBytes / 1048576.0:F1} MiB ({100.0 * r.ChangedBytes / r.TotalBytes:F1} %): {r.Appended} appended, {r.Overwritten} overwritten in place, {r.Rewritten} rewritten, {r.IndexesRewritten} index files rebuilt");
                    return 0;
                }
                case "mutate-tree":
                {
                    TreeMutationResult r = TreeMutation.Apply(Required("root"), double.Parse(Get("percent", "5"), CultureInfo.InvariantCulture), Number("seed", Dataset.DefaultSeed));
                    Console.WriteLine($"changed {r.ChangedFiles} of {r.Files} files ({100.0 * r.ChangedFiles / r.Files:F1} %), {r.BytesWritten / 1048576.0:F1} MiB written: {r.Overwritten} overwritten in place, {r.Appended} appended to, {r.Rewritten} rewritten and renamed over");
                    return 0;
                }
                case "rpo":
                {
                    RpoResult r = await Rpo.RunAsync(Required("work"), TimeSpan.FromSeconds(Number("seconds", 600)), (int)Number("rate", 1000),
                        PSBackup.Engine.Durations.Parse(Get("interval", "1s")), TimeSpan.FromSeconds(Number("idle-seconds", 60)),
                        options.GetValueOrDefault("s3"), options.GetValueOrDefault("s3-endpoint"), (int)Number("seed", 16), Console.Error).ConfigureAwait(false);
                    Console.WriteLine(r);
                    if (options.TryGetValue("tsv", out string? rpoTsv))
                    {
                        File.AppendAllLines(rpoTsv, [string.Create(CultureInfo.InvariantCulture,
                            $"{r.Target}\t{r.Interval.TotalSeconds}\t{r.Seconds:F0}\t{r.Records}\t{r.BytesWritten}\t{r.RepositoryGrowth}\t{r.Growth:F4}\t{r.LagP50:F4}\t{r.LagP99:F4}\t{r.LagMax:F4}\t{r.Unshipped}\t{r.LoadCpuPercent:F2}\t{r.IdleCpuPercent:F3}\t{r.RssStartMiB}\t{r.RssEndMiB}\t{r.RssMaxMiB}")]);
                    }
                    return r.Unshipped == 0 ? 0 : 1;
                }
                case "ship-latency":
                {
                    bool local = Get("target", "repository") switch
                    {
                        "repository" => false,
                        "local" => true,
                        string other => throw new ArgumentException($"--target is 'repository' or 'local', not '{other}'."),
                    };
                    ShipLatencyResult r = await ShipLatency.MeasureAsync(Required("out"), Required("work"), (int)Number("cases", 10), repository: !local).ConfigureAwait(false);
                    string tool = local ? Report.InProcessLocal : Report.InProcess;
                    Console.WriteLine($"ship of one sealed segment ({tool}): median {r.Median:F1} ms, p90 {r.P90:F1} ms over {r.Milliseconds.Count} cases");
                    if (options.TryGetValue("tsv", out string? tsv))
                    {
                        long run = Number("run", 1);
                        File.AppendAllLines(tsv, r.Milliseconds.Select(ms =>
                            string.Create(CultureInfo.InvariantCulture, $"ship1\t{tool}\t{run}\t{ms / 1000:F6}\t0\t{16L << 20}\t\t")));
                    }
                    return 0;
                }
                case "report":
                {
                    string markdown = Report.Render(Report.Parse(File.ReadAllLines(Required("raw"))));
                    Console.Write(markdown);
                    if (options.TryGetValue("md", out string? md))
                    {
                        File.WriteAllText(md, markdown);
                    }
                    return 0;
                }
                default:
                    Console.Error.WriteLine($"unknown command '{args[0]}'.\n{Usage}");
                    return 2;
            }
        }
        catch (Exception e) when (e is ArgumentException or FormatException)
        {
            Console.Error.WriteLine($"{e.Message}\n{Usage}");
            return 2;
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine(e.Message);
            return 1;
        }
    }

    private static Dictionary<string, string> Options(string[] args)
    {
        var options = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < args.Length; i += 2)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Length)
            {
                throw new ArgumentException($"unknown or incomplete option '{args[i]}'.");
            }
            options[args[i][2..]] = args[i + 1];
        }
        return options;
    }
}
