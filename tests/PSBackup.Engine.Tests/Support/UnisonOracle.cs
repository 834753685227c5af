using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace PSBackup.Engine.Tests.Support;

/// <summary>UnisonDB's own code as the judge of what PSBackup writes: the <c>unisondb-walfs</c>
/// (walfs v1 + bolt/LMDB drivers) and <c>unisondb-walfs-v2</c> binaries from
/// <c>../shared/unisondb/bin</c>, and the fixtures they wrote, copied into
/// <c>tests/fixtures/unisondb</c>. A missing binary fails the test that needs it (never a skip):
/// a restore counts only when UnisonDB's reader accepts it.</summary>
internal static partial class UnisonOracle
{
    /// <summary>Environment variable naming the folder of the oracle binaries.</summary>
    public const string BinVariable = PSBackup.Bench.UnisonWalfs.BinVariable;

    public const string V1 = "unisondb-walfs";
    public const string V2 = "unisondb-walfs-v2";

    private static readonly Lazy<string> RepoRootLazy = new(FindRepoRoot);

    public static string RepoRoot => RepoRootLazy.Value;

    /// <summary>The copied fixtures: <c>v1-small</c>, <c>v2-small</c>, <c>v1-store-bolt</c>, <c>v1-store-lmdb</c>.</summary>
    public static string FixturesDir => Path.Combine(RepoRoot, "tests", "fixtures", "unisondb");

    /// <summary>The folder holding the oracle binaries: <see cref="BinVariable"/>, else
    /// <c>shared/unisondb/bin</c> beside the checkout or beside any folder above it.</summary>
    public static string BinDir => PSBackup.Bench.UnisonWalfs.BinDir(RepoRoot);

    /// <summary>Copies fixture <paramref name="name"/> (e.g. <c>v1-small</c>) into
    /// <paramref name="dataDir"/>, giving <c>dataDir/users/...</c>; returns <paramref name="dataDir"/>.</summary>
    public static string CopyFixture(string name, string dataDir)
    {
        string source = Path.Combine(FixturesDir, name);
        if (!Directory.Exists(source))
        {
            throw new DirectoryNotFoundException($"No UnisonDB fixture '{name}' under {FixturesDir}.");
        }
        foreach (string file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            string target = Path.Combine(dataDir, Path.GetRelativePath(source, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target, overwrite: true);
        }
        return dataDir;
    }

    /// <summary>Runs an oracle binary; never throws on a non-zero exit (the caller asserts it).</summary>
    public static OracleRun Run(string binary, params string[] args)
    {
        (int exit, string stdout, string stderr) = PSBackup.Bench.UnisonWalfs.Start(Path.Combine(BinDir, binary), args, TimeSpan.FromMinutes(2));
        return new OracleRun(binary, args, exit, stdout, stderr);
    }

    /// <summary><c>replay -dir walDir -seg-size n [-from seg:off] [-raw]</c>, parsed.</summary>
    public static ReplayResult Replay(string walDir, long segmentSize, string? from = null, bool v2 = false, bool raw = false, bool verbose = false)
    {
        var args = new List<string> { "replay", "-dir", walDir, "-seg-size", segmentSize.ToString(CultureInfo.InvariantCulture) };
        if (from is not null)
        {
            args.AddRange(["-from", from]);
        }
        if (raw)
        {
            args.Add("-raw");
        }
        if (verbose)
        {
            args.Add("-v");
        }
        return ReplayResult.Parse(Run(v2 ? V2 : V1, [.. args]));
    }

    /// <summary><c>store-info -db path</c> (v1 binary): checkpoint, key count and content hash.</summary>
    public static StoreInfo StoreInfoOf(string dbPath, bool keys = false) =>
        StoreInfo.Parse(keys ? Run(V1, "store-info", "-db", dbPath, "-keys") : Run(V1, "store-info", "-db", dbPath));

    /// <summary><c>store-recover</c>: UnisonDB's start-up recovery on <paramref name="dataDir"/>/<paramref name="ns"/>
    /// (modifies the store: run it on a copy).</summary>
    public static OracleRun StoreRecover(string dataDir, string ns, string engine, long segmentSize) =>
        Run(V1, "store-recover", "-data", dataDir, "-ns", ns, "-engine", engine, "-seg-size", segmentSize.ToString(CultureInfo.InvariantCulture));

    private static string FindRepoRoot()
    {
        for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "PSBackup.sln")))
            {
                return d.FullName;
            }
        }
        throw new InvalidOperationException($"PSBackup.sln not found above {AppContext.BaseDirectory}.");
    }

    internal sealed record OracleRun(string Binary, IReadOnlyList<string> Args, int ExitCode, string Stdout, string Stderr)
    {
        public string Output => Stdout + Stderr;

        public override string ToString() => $"{Binary} {string.Join(' ', Args)} -> exit {ExitCode}\n{Output}";
    }

    /// <summary>What <c>replay</c> printed: per segment header facts, the summary line and any
    /// <c>LSN discontinuity</c> lines.</summary>
    internal sealed partial record ReplayResult(
        OracleRun Run,
        IReadOnlyList<SegmentLine> Segments,
        long Count,
        ulong FirstLsn,
        ulong LastLsn,
        ulong LastHlc,
        uint LastSegmentId,
        long LastOffset,
        IReadOnlyList<string> Discontinuities,
        IReadOnlyList<RecordLine> Records)
    {
        public int ExitCode => Run.ExitCode;

        public static ReplayResult Parse(OracleRun run)
        {
            var segments = new List<SegmentLine>();
            foreach (Match m in SegmentRegex().Matches(run.Stdout))
            {
                segments.Add(new SegmentLine(
                    uint.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture),
                    int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture),
                    bool.Parse(m.Groups[3].Value),
                    ulong.Parse(m.Groups[4].Value, CultureInfo.InvariantCulture),
                    long.Parse(m.Groups[5].Value, CultureInfo.InvariantCulture),
                    long.Parse(m.Groups[6].Value, CultureInfo.InvariantCulture),
                    long.Parse(m.Groups[7].Value, CultureInfo.InvariantCulture)));
            }
            var records = new List<RecordLine>();
            foreach (Match m in RecordRegex().Matches(run.Stdout))
            {
                records.Add(new RecordLine(
                    uint.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture),
                    long.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture),
                    ulong.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture),
                    ulong.Parse(m.Groups[4].Value, CultureInfo.InvariantCulture),
                    int.Parse(m.Groups[5].Value, CultureInfo.InvariantCulture)));
            }
            var gaps = run.Stdout.Split('\n').Where(l => l.Contains("LSN discontinuity", StringComparison.Ordinal)).Select(l => l.Trim()).ToList();
            Match s = SummaryRegex().Match(run.Stdout);
            return s.Success
                ? new ReplayResult(run, segments,
                    long.Parse(s.Groups[1].Value, CultureInfo.InvariantCulture),
                    ulong.Parse(s.Groups[2].Value, CultureInfo.InvariantCulture),
                    ulong.Parse(s.Groups[3].Value, CultureInfo.InvariantCulture),
                    ulong.Parse(s.Groups[4].Value, CultureInfo.InvariantCulture),
                    uint.Parse(s.Groups[5].Value, CultureInfo.InvariantCulture),
                    long.Parse(s.Groups[6].Value, CultureInfo.InvariantCulture),
                    gaps, records)
                : new ReplayResult(run, segments, -1, 0, 0, 0, 0, -1, gaps, records);
        }

        public override string ToString() => Run.ToString();

        [GeneratedRegex(@"segment (\d+): flags=(\d+) sealed=(true|false) firstLogIndex=(\d+) entryCount=(\d+) writeOffset=(\d+) size=(\d+)")]
        private static partial Regex SegmentRegex();

        [GeneratedRegex(@"replayed (\d+) records, lsn (\d+)\.\.(\d+), last hlc (\d+) .*last position SegmentID=(\d+), Offset=(\d+)")]
        private static partial Regex SummaryRegex();

        [GeneratedRegex(@"SegmentID=(\d+), Offset=(\d+) lsn=(\d+) hlc=(\d+) len=(\d+)")]
        private static partial Regex RecordRegex();
    }

    internal sealed record SegmentLine(uint Id, int Flags, bool Sealed, ulong FirstLogIndex, long EntryCount, long WriteOffset, long Size);

    internal sealed record RecordLine(uint SegmentId, long Offset, ulong Lsn, ulong Hlc, int Length);

    /// <summary>What <c>store-info</c> printed.</summary>
    internal sealed partial record StoreInfo(OracleRun Run, string? Engine, ulong RecordProcessed, uint CheckpointSegment, long CheckpointOffset, int NamespaceKeys, string? ContentSha256)
    {
        public int ExitCode => Run.ExitCode;

        public static StoreInfo Parse(OracleRun run)
        {
            Match engine = EngineRegex().Match(run.Stdout);
            Match cp = CheckpointRegex().Match(run.Stdout);
            Match ns = NamespaceRegex().Match(run.Stdout);
            return new StoreInfo(run,
                engine.Success ? engine.Groups[1].Value : null,
                cp.Success ? ulong.Parse(cp.Groups[1].Value, CultureInfo.InvariantCulture) : 0,
                cp.Success ? uint.Parse(cp.Groups[2].Value, CultureInfo.InvariantCulture) : 0,
                cp.Success ? long.Parse(cp.Groups[3].Value, CultureInfo.InvariantCulture) : -1,
                ns.Success ? int.Parse(ns.Groups[1].Value, CultureInfo.InvariantCulture) : -1,
                ns.Success ? ns.Groups[2].Value : null);
        }

        public override string ToString() => Run.ToString();

        [GeneratedRegex(@"^engine: (\w+)", RegexOptions.Multiline)]
        private static partial Regex EngineRegex();

        [GeneratedRegex(@"checkpoint: RecordProcessed=(\d+) Pos=(\d+):(\d+)")]
        private static partial Regex CheckpointRegex();

        [GeneratedRegex(@"namespace bucket ""[^""]*"": (\d+) keys .*content sha256 ([0-9a-f]{64})")]
        private static partial Regex NamespaceRegex();
    }
}
