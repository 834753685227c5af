using System.Globalization;
using System.Text;

namespace PSBackup.Bench;

/// <summary>One timed command of one run, a line of the script's <c>raw.tsv</c>:
/// <c>scenario tool run wall_s rss_kib input_bytes stored_bytes note [cpu_s]</c>; wall is <c>NA</c> for a
/// scenario the build cannot run and <c>FAIL</c> when the command failed; cpu_s (user + sys of
/// every process of the command) is absent in older files.</summary>
public sealed record Measurement(string Scenario, string Tool, int Run, double? WallSeconds, long? RssKiB, long InputBytes, long? StoredBytes, string Status, double? CpuSeconds = null);

/// <summary>Turns the raw measurements into the README's markdown table: medians over runs, MB/s
/// over the dataset bytes each scenario handles, the highest peak RSS of any run, PSBackup's
/// median over each peer's, and the issue's targets with whether they are met.</summary>
public static class Report
{
    public const string PsBackup = "psbackup";
    /// <summary>PSBackup on a key-file repository: no PBKDF2 per process, which shows what the
    /// passphrase's key derivation costs the short backups.</summary>
    public const string KeyFile = "psbackup (key file)";
    /// <summary>PSBackup on the managed zstd codec (PSBACKUP_ZSTD=managed): what runs where no
    /// libzstd loads (Windows, Azure Automation).</summary>
    public const string ManagedZstd = "psbackup (managed zstd)";
    public const string InProcess = "psbackup (in-process)";
    /// <summary>The seed's local ship (a verified copy into the backup folder), in-process.</summary>
    public const string InProcessLocal = "psbackup (in-process, local folder)";
    public const string Cli = "psbackup (CLI)";
    /// <summary>The CLI ship of one new segment into a WAL that still holds every earlier one, all
    /// archived (UnisonDB standalone never removes sealed segments).</summary>
    public const string CliKept = "psbackup (CLI, WAL keeps all)";
    public const string Tar = "tar | zstd -3 -T0";
    public const string Restic = "restic";
    public const string Borg = "borg";

    /// <summary>Scenario id, the name shown, and the targets (issue 17, SPEC §5): each a peer and
    /// the highest PSBackup/peer wall-time ratio. The first target's peer is the one the
    /// PSBackup variants (key file, managed codec) are compared with. Scenarios starting
    /// <c>real-</c> run on the real tree (<c>--real</c>), the others on the synthetic set.</summary>
    public static readonly IReadOnlyList<(string Id, string Name, (string Peer, double MaxRatio)[] Targets)> Scenarios =
    [
        ("real-full", "real tree: full backup", [(Borg, 0.8), (Tar, 1.25)]),
        ("real-nochange", "real tree: no-change backup", [(Borg, 0.5)]),
        ("real-incremental", "real tree: 5 % of files changed", [(Borg, 0.7)]),
        ("real-fresh", "real tree: first backup right after a bulk copy", []),
        ("real-racy", "real tree: no change right after a bulk copy", [(Borg, 0.5)]),
        ("real-verify", "real tree: verify all data", [(Restic, 0.5)]),
        ("real-restore", "real tree: full restore", [(Tar, 0.8)]),
        ("full", "full backup", [(Borg, 0.8), (Tar, 1.25)]),
        ("incremental", "incremental, 5 % changed", [(Borg, 0.7)]),
        ("nochange", "no-change backup", [(Borg, 0.5)]),
        ("restore", "full restore", [(Tar, 0.8)]),
        ("verify", "verify all data", [(Restic, 0.5)]),
        ("walship", "WAL ship, 64 segments", [(Tar, 1.0)]),
        ("pitr", "PITR over 64 segments", [(Tar, 0.8)]),
        ("ship1", "ship 1 sealed 16 MiB segment", []),
        ("full-small", "full backup, smaller dataset (RSS scaling)", []),
    ];

    public const double ShipTargetSeconds = 0.050;
    /// <summary>The same ship through the CLI, process start included.</summary>
    public const double CliShipTargetSeconds = 0.25;
    public const long RssTargetKiB = 128 * 1024;
    /// <summary>"Flat": peak RSS of the full backup at the full size at most this much above the small size.</summary>
    public const double RssFlatFactor = 1.25;

    private static readonly string[] ToolOrder = [PsBackup, ManagedZstd, KeyFile, InProcess, InProcessLocal, Cli, CliKept, Tar, Restic, Borg];

    public static List<Measurement> Parse(IEnumerable<string> lines)
    {
        var result = new List<Measurement>();
        foreach (string line in lines.Where(l => l.Length > 0 && !l.StartsWith('#')))
        {
            string[] f = line.Split('\t');
            if (f.Length < 7)
            {
                throw new FormatException($"A raw measurement needs 7 or 8 tab-separated fields: '{line}'.");
            }
            double? wall = double.TryParse(f[3], NumberStyles.Float, CultureInfo.InvariantCulture, out double w) ? w : null;
            long? rss = long.TryParse(f[4], NumberStyles.Integer, CultureInfo.InvariantCulture, out long r) && r > 0 ? r : null;
            long? stored = long.TryParse(f[6], NumberStyles.Integer, CultureInfo.InvariantCulture, out long s) ? s : null;
            string status = wall is null ? f[3] : f.Length > 7 ? f[7] : "";
            double? cpu = f.Length > 8 && double.TryParse(f[8], NumberStyles.Float, CultureInfo.InvariantCulture, out double c) ? c : null;
            result.Add(new Measurement(f[0], f[1], int.Parse(f[2], CultureInfo.InvariantCulture), wall, rss, long.Parse(f[5], CultureInfo.InvariantCulture), stored, status, cpu));
        }
        return result;
    }

    private sealed record Row(string Scenario, string Tool, double? Wall, long? RssKiB, long InputBytes, long? Stored, string Status, double? Cpu = null);

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }

    public static string Render(IReadOnlyList<Measurement> measurements)
    {
        var rows = measurements
            .GroupBy(m => (m.Scenario, m.Tool))
            .Select(g =>
            {
                var ok = g.Where(m => m.WallSeconds is not null).ToList();
                return new Row(g.Key.Scenario, g.Key.Tool,
                    ok.Count > 0 ? Median(ok.Select(m => m.WallSeconds!.Value)) : null,
                    g.Max(m => m.RssKiB),
                    g.Max(m => m.InputBytes),
                    ok.Count > 0 && ok.Any(m => m.StoredBytes is not null) ? (long)Median(ok.Where(m => m.StoredBytes is not null).Select(m => (double)m.StoredBytes!.Value)) : null,
                    ok.Count > 0 ? string.Join("; ", g.Select(m => m.Status).Where(s => s.Length > 0).Distinct()) : g.First().Status,
                    ok.Any(m => m.CpuSeconds is not null) ? Median(ok.Where(m => m.CpuSeconds is not null).Select(m => m.CpuSeconds!.Value)) : null);
            })
            .ToList();
        Row? Find(string scenario, string tool) => rows.FirstOrDefault(r => r.Scenario == scenario && r.Tool == tool);

        var md = new StringBuilder();
        md.AppendLine("| scenario | tool | median wall s | CPU s | MB/s | peak RSS MiB | PSBackup / peer | target | met? |");
        md.AppendLine("|---|---|---:|---:|---:|---:|---:|---|---|");
        foreach (var (id, name, targets) in Scenarios)
        {
            Row? ours = Find(id, PsBackup);
            foreach (Row row in rows.Where(r => r.Scenario == id).OrderBy(r => Array.IndexOf(ToolOrder, r.Tool)))
            {
                string ratio = "", target = "", met = "";
                if (row.Tool is KeyFile or ManagedZstd && targets.Length > 0 && row.Wall is double k && Find(id, targets[0].Peer)?.Wall is double p && p > 0)
                {
                    ratio = $"{Fixed(k / p, 2)}× {Cell(targets[0].Peer)}";
                    target = $"≤ {Fixed(targets[0].MaxRatio, 2)}×";
                    met = k / p <= targets[0].MaxRatio ? "yes" : "no";
                }
                if (row.Tool is not (PsBackup or KeyFile or ManagedZstd or InProcess or InProcessLocal or Cli or CliKept) && ours?.Wall is double a && row.Wall is double b && b > 0)
                {
                    ratio = Fixed(a / b, 2) + "×";
                    foreach (var (peer, maxRatio) in targets.Where(t => t.Peer == row.Tool))
                    {
                        target = $"≤ {Fixed(maxRatio, 2)}×";
                        met = a / b <= maxRatio ? "yes" : "no";
                        if (id.EndsWith("full", StringComparison.Ordinal) && ours.Stored is long s1 && row.Stored is long s2)
                        {
                            target += ", stored ≤ peer's";
                            met = a / b <= maxRatio && s1 <= s2 ? "yes" : s1 > s2 ? $"no (stores {Fixed(100.0 * s1 / s2 - 100, 1)} % more)" : "no";
                        }
                    }
                }
                if (id == "ship1" && row.Tool is InProcess or InProcessLocal && row.Wall is double ship)
                {
                    target = $"median ≤ {ShipTargetSeconds * 1000:0} ms";
                    met = ship <= ShipTargetSeconds ? "yes" : "no";
                }
                if (id == "ship1" && row.Tool is Cli or CliKept && row.Wall is double cli)
                {
                    target = $"≤ {CliShipTargetSeconds:0.00} s";
                    met = cli <= CliShipTargetSeconds ? "yes" : "no";
                }
                if (row.Tool == PsBackup && id == "full-small" && row.RssKiB is long small && Find("full", PsBackup)?.RssKiB is long large)
                {
                    target = $"RSS flat: full-size RSS ≤ {RssFlatFactor}× this";
                    met = large <= small * RssFlatFactor ? $"yes ({Fixed(large / (double)small, 2)}×)" : $"no ({Fixed(large / (double)small, 2)}×)";
                }
                md.Append(CultureInfo.InvariantCulture, $"| {name} | {Cell(row.Tool)} | {Wall(row)} | {(row.Cpu is double cpu ? Fixed(cpu, 2) : "")} | {Throughput(row)} | {Rss(row)} | {ratio} | {target} | {met} |\n");
            }
        }

        // Every row a psbackup process was measured in: the key-file rows and the CLI ship too (the
        // summary said "met" over a key-file row of 130 MiB).
        var ourRss = rows.Where(r => r.Tool is PsBackup or ManagedZstd or KeyFile or Cli or CliKept && r.RssKiB is not null).ToList();
        if (ourRss.Count > 0)
        {
            Row worst = ourRss.MaxBy(r => r.RssKiB)!;
            md.AppendLine();
            md.Append(CultureInfo.InvariantCulture,
                $"Peak RSS target (≤ {RssTargetKiB / 1024} MiB in every PSBackup row): {(worst.RssKiB <= RssTargetKiB ? "met" : "not met")}; highest {Fixed(worst.RssKiB!.Value / 1024.0, 0)} MiB in \"{Scenarios.First(s => s.Id == worst.Scenario).Name}\" ({Cell(worst.Tool)}).\n");
        }

        foreach (string fullId in new[] { "real-full", "full" })
        {
            var full = rows.Where(r => r.Scenario == fullId && r.Stored is not null).OrderBy(r => Array.IndexOf(ToolOrder, r.Tool)).ToList();
            if (full.Count == 0)
            {
                continue;
            }
            md.AppendLine();
            md.Append(CultureInfo.InvariantCulture, $"| {Scenarios.First(s => s.Id == fullId).Name} | input MiB | stored MiB | stored / input | compression (input / stored) |\n");
            md.AppendLine("|---|---:|---:|---:|---:|");
            foreach (Row row in full)
            {
                md.Append(CultureInfo.InvariantCulture,
                    $"| {Cell(row.Tool)} | {Fixed(row.InputBytes / 1048576.0, 0)} | {Fixed(row.Stored!.Value / 1048576.0, 0)} | {Fixed(row.Stored!.Value / (double)row.InputBytes, 3)} | {Fixed(row.InputBytes / (double)row.Stored!.Value, 2)}× |\n");
            }
        }
        int runs = measurements.Count > 0 ? measurements.Max(m => m.Run) : 0;
        md.AppendLine();
        md.Append(CultureInfo.InvariantCulture, $"Median of {runs} run(s); CPU s = user + sys seconds of every process of the command (the steadier figure on a shared machine; ratios and targets are wall time); MB/s = 10^6 dataset bytes the scenario handles per second of wall time; peak RSS = the highest of any run (for a pipeline or several processes, the largest single process).\n");
        return md.ToString();
    }

    private static string Wall(Row row) => row.Wall is double w ? Fixed(w, w < 1 ? 3 : 2) : row.Status.Length > 0 ? row.Status : "n/a";

    private static string Throughput(Row row) => row.Wall is double w && w > 0 && row.InputBytes > 0 ? Fixed(row.InputBytes / w / 1e6, 0) : "";

    private static string Rss(Row row) => row.RssKiB is long k ? Fixed(k / 1024.0, 0) : "";

    /// <summary>A table cell: a literal pipe would end it.</summary>
    private static string Cell(string text) => text.Replace("|", "\\|", StringComparison.Ordinal);

    private static string Fixed(double value, int decimals) => value.ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
}
