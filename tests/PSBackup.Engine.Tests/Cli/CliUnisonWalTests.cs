using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using PSBackup.Cli;
using PSBackup.Engine.Tests.Support;

namespace PSBackup.Engine.Tests.Cli;

/// <summary>The command line on a WAL UnisonDB's own code wrote with its default 16 MiB segments and
/// a consumed LSN (<c>gen -fail-at</c>): <c>wal list</c>, <c>wal ship</c> (local and repository, twice),
/// <c>pitr</c> by index and by time from the repository, each restore replayed by UnisonDB's reader.</summary>
public sealed class CliUnisonWalTests : IDisposable
{
    private const long DefaultSegmentSize = 16 << 20;
    private readonly TestDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private sealed record Run(int ExitCode, string Stdout, string Stderr)
    {
        public JsonElement Json => JsonDocument.Parse(Stdout).RootElement;
    }

    private static async Task<Run> RunCli(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        int code = await TestCli.RunAsync(args, stdout, stderr);
        return new Run(code, stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public async Task List_ship_and_pitr_a_default_sized_WAL_with_a_consumed_LSN()
    {
        string data = _dir.Combine("data");
        string wal = Path.Combine(data, "users", "wal");
        Directory.CreateDirectory(wal);
        UnisonOracle.OracleRun gen = UnisonOracle.Run(UnisonOracle.V1, "gen", "-dir", wal, "-records", "3600", "-sessions", "2", "-fail-at", "1234", "-seed", "21");
        Assert.True(gen.ExitCode == 0, gen.ToString());
        UnisonOracle.ReplayResult oracle = UnisonOracle.Replay(wal, DefaultSegmentSize, verbose: true);
        Assert.True(oracle.ExitCode == 0, oracle.ToString());
        Assert.True(oracle.Segments.Count >= 3, oracle.ToString());
        Assert.Single(oracle.Discontinuities);

        // wal list: every segment, the consumed LSN as a warning with its exact index, no gap.
        Run list = await RunCli("wal", "list", "--data-dir", data, "--namespace", "users", "--json");
        Assert.True(list.ExitCode == 0, list.Stderr);
        JsonElement[] segments = [.. list.Json.GetProperty("segments").EnumerateArray()];
        Assert.Equal(oracle.Segments.Select(s => (long)s.Id), segments.Select(s => s.GetProperty("segmentId").GetInt64()));
        Assert.Empty(list.Json.GetProperty("continuityErrors").EnumerateArray());
        Assert.Contains("log index 1235 was never written", list.Json.GetProperty("warnings")[0].GetString());
        foreach (JsonElement s in segments)
        {
            var records = oracle.Records.Where(r => r.SegmentId == s.GetProperty("segmentId").GetInt64()).ToList();
            Assert.Equal((long)records[0].Lsn, s.GetProperty("firstLogIndex").GetInt64());
            Assert.Equal((long)records[^1].Lsn, s.GetProperty("lastLogIndex").GetInt64());
            Assert.Equal((long)records[^1].Hlc, s.GetProperty("lastRecordTime").GetDateTimeOffset().ToUnixTimeMilliseconds());
        }

        // wal ship, local and to a repository, twice: the second run ships nothing new.
        string repo = _dir.Combine("repo");
        Assert.Equal(0, (await RunCli("repo", "init", "--repository", repo, "--unencrypted")).ExitCode);
        int sealedCount = oracle.Segments.Count(s => s.Sealed);
        foreach (string[] target in new[] { new[] { "--backup-dir", "wal" }, new[] { "--repository", repo } })
        {
            Run first = await RunCli([.. new[] { "wal", "ship", "--data-dir", data, "--namespace", "users", "--json" }, .. target]);
            Assert.True(first.ExitCode == 0, first.Stderr);
            Assert.Equal(sealedCount, first.Json.GetProperty("backups").EnumerateArray().Count(b => !b.GetProperty("alreadyPresent").GetBoolean()));
            Run second = await RunCli([.. new[] { "wal", "ship", "--data-dir", data, "--namespace", "users", "--json" }, .. target]);
            Assert.True(second.ExitCode == 0, second.Stderr);
            Assert.All(second.Json.GetProperty("backups").EnumerateArray(), b => Assert.True(b.GetProperty("alreadyPresent").GetBoolean()));
        }

        // A snapshot of the empty store taken before the first record (as the store adapter would
        // record it), in the local backup root: replay starts at the WAL's start.
        DateTimeOffset firstHlc = DateTimeOffset.FromUnixTimeMilliseconds((long)oracle.Records[0].Hlc);
        string snap = Path.Combine(data, "backups", "users", "snapshots", "empty");
        Directory.CreateDirectory(Path.GetDirectoryName(snap)!);
        await File.WriteAllBytesAsync(snap, [7]);
        await ManifestIO.WriteAsync(snap + ".manifest.json", new BackupManifest
        {
            Kind = "snapshot",
            CreatedAt = firstHlc.AddMilliseconds(-2),
            CompletedAt = firstHlc.AddMilliseconds(-1),
            Source = "test",
            Wal = new WalPosition([1], 0, 0),
            Files = [new ManifestFile("unison.db", 1, Convert.ToHexStringLower(SHA256.HashData([7])))],
        }, CancellationToken.None);

        // pitr by index, inside the second segment, past the consumed LSN.
        UnisonOracle.SegmentLine second2 = oracle.Segments[1];
        long index = (long)second2.FirstLogIndex + second2.EntryCount / 2;
        string byIndex = _dir.Combine("by-index");
        Run pitr = await RunCli("pitr", "--data-dir", data, "--namespace", "users", "--target-log-index", index.ToString(CultureInfo.InvariantCulture), "--target-data-dir", byIndex, "--json");
        Assert.True(pitr.ExitCode == 0, pitr.Stderr);
        UnisonOracle.ReplayResult replay = UnisonOracle.Replay(Path.Combine(byIndex, "users", "wal"), DefaultSegmentSize, from: "0:0");
        Assert.True(replay.ExitCode == 0, replay.ToString());
        long expected = oracle.Records.Count(r => (long)r.Lsn <= index);
        Assert.Equal((expected, 1UL, (ulong)index), (replay.Count, replay.FirstLsn, replay.LastLsn));

        // pitr by time: the oracle's own listing names the last record at or before it.
        var inSecond = oracle.Records.Where(r => r.SegmentId == second2.Id).ToList(); // sealed, so archived
        UnisonOracle.RecordLine pick = inSecond[inSecond.Count / 3];
        DateTimeOffset t = DateTimeOffset.FromUnixTimeMilliseconds((long)pick.Hlc);
        var atOrBefore = oracle.Records.TakeWhile(r => r.Hlc <= pick.Hlc).ToList();
        string byTime = _dir.Combine("by-time");
        Run timed = await RunCli("pitr", "--data-dir", data, "--namespace", "users", "--target-time", t.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture), "--target-data-dir", byTime, "--json");
        Assert.True(timed.ExitCode == 0, timed.Stderr);
        Assert.Equal((long)atOrBefore[^1].Lsn, timed.Json.GetProperty("lastLogIndex").GetInt64());
        UnisonOracle.ReplayResult timedReplay = UnisonOracle.Replay(Path.Combine(byTime, "users", "wal"), DefaultSegmentSize, from: "0:0");
        Assert.True(timedReplay.ExitCode == 0, timedReplay.ToString());
        Assert.Equal(((long)atOrBefore.Count, atOrBefore[^1].Lsn, pick.Hlc), (timedReplay.Count, timedReplay.LastLsn, timedReplay.LastHlc));
    }
}
