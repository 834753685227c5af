using System.Globalization;
using System.Text.Json;
using PSBackup.Cli;
using PSBackup.Engine.Tests.Support;

namespace PSBackup.Engine.Tests.Cli;

/// <summary>A WAL-only UnisonDB namespace (no <c>unison.db</c>, as the v1-small and v2-small fixtures
/// are) restored to a point in time through the command line alone: with no snapshot the plan starts
/// from an empty store, lays out only <c>wal/</c>, and UnisonDB's own reader (replay from 0:0) and
/// recovery (store-recover, which creates the empty store) must yield exactly records 1..target.</summary>
public sealed class CliUnisonWalOnlyTests : IDisposable
{
    private const long SegmentSize = 1 << 20;
    private readonly TestDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private sealed record Run(int ExitCode, string Stdout, string Stderr)
    {
        public JsonElement Json => JsonDocument.Parse(Stdout).RootElement;
        public override string ToString() => $"exit {ExitCode}\n{Stdout}\n{Stderr}";
    }

    private static async Task<Run> RunCli(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        int code = await TestCli.RunAsync(args, stdout, stderr);
        return new Run(code, stdout.ToString(), stderr.ToString());
    }

    private static UnisonOracle.ReplayResult Replay(string nsDir, bool v2)
    {
        UnisonOracle.ReplayResult replay = UnisonOracle.Replay(Path.Combine(nsDir, "wal"), SegmentSize, from: "0:0", v2: v2);
        Assert.True(replay.ExitCode == 0, replay.ToString());
        return replay;
    }

    [Theory]
    [InlineData("v1-small", false)]
    [InlineData("v2-small", true)]
    public async Task A_WAL_only_namespace_restores_by_index_and_by_time_from_a_repository_and_the_local_root(string fixture, bool v2)
    {
        string data = _dir.Combine("data");
        UnisonOracle.CopyFixture(fixture, data);
        Assert.False(Path.Exists(Path.Combine(data, "users", "unison.db")));
        string wal = Path.Combine(data, "users", "wal");
        string repo = _dir.Combine("repo");
        Assert.Equal(0, (await RunCli("repo", "init", "--repository", repo, "--unencrypted")).ExitCode);
        Run toRepo = await RunCli("wal", "ship", "--data-dir", data, "--namespace", "users", "--repository", repo);
        Assert.True(toRepo.ExitCode == 0, toRepo.ToString());
        Run toLocal = await RunCli("wal", "ship", "--data-dir", data, "--namespace", "users", "--backup-dir", "wal");
        Assert.True(toLocal.ExitCode == 0, toLocal.ToString());
        UnisonOracle.ReplayResult all = UnisonOracle.Replay(wal, SegmentSize, v2: v2, verbose: true);

        // The plan says where it starts: an empty store, wal/ alone.
        Run whatIf = await RunCli("pitr", "--namespace", "users", "--repository", repo, "--target-log-index", "700", "--target-data-dir", _dir.Combine("never"), "--what-if", "--json");
        Assert.True(whatIf.ExitCode == 0, whatIf.ToString());
        JsonElement plan = whatIf.Json.TryGetProperty("plan", out JsonElement p) ? p : whatIf.Json;
        Assert.True(plan.GetProperty("snapshot").GetProperty("emptyStore").GetBoolean(), whatIf.Stdout);
        Assert.Equal(0, plan.GetProperty("snapshot").GetProperty("fileCount").GetInt32());
        Assert.Contains(plan.GetProperty("notes").EnumerateArray(), n => n.GetString()!.Contains("empty store", StringComparison.Ordinal) && n.GetString()!.Contains("only wal/", StringComparison.Ordinal));
        Assert.False(Directory.Exists(_dir.Combine("never")));

        foreach (string[] source in new[] { new[] { "--repository", repo }, new[] { "--data-dir", data } })
        {
            // By log index, inside sealed segment 4 (576..801), and the last record (the active segment's partial).
            foreach (long target in new long[] { 700, 1005 })
            {
                string into = _dir.Combine($"idx-{target}-{source[0].TrimStart('-')}");
                Run r = await RunCli([.. new[] { "pitr", "--namespace", "users", "--target-log-index", target.ToString(CultureInfo.InvariantCulture), "--target-data-dir", into }, .. source]);
                Assert.True(r.ExitCode == 0, r.ToString());
                string nsDir = Path.Combine(into, "users");
                Assert.Equal(["wal"], Directory.GetFileSystemEntries(nsDir).Select(Path.GetFileName));
                UnisonOracle.ReplayResult replay = Replay(nsDir, v2);
                Assert.Equal((target, 1UL, (ulong)target), (replay.Count, replay.FirstLsn, replay.LastLsn));
            }

            // By time: the record whose own HLC is the target and every one written at or before it.
            UnisonOracle.RecordLine pick = all.Records.First(r => r.Lsn == 650);
            long expected = (long)all.Records.TakeWhile(r => r.Hlc <= pick.Hlc).Last().Lsn;
            string byTime = _dir.Combine($"time-{source[0].TrimStart('-')}");
            string at = DateTimeOffset.FromUnixTimeMilliseconds((long)pick.Hlc).UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture);
            Run t = await RunCli([.. new[] { "pitr", "--namespace", "users", "--target-time", at, "--target-data-dir", byTime, "--json" }, .. source]);
            Assert.True(t.ExitCode == 0, t.ToString());
            UnisonOracle.ReplayResult timed = Replay(Path.Combine(byTime, "users"), v2);
            Assert.Equal((expected, 1UL, (ulong)expected, pick.Hlc), (timed.Count, timed.FirstLsn, timed.LastLsn, timed.LastHlc));
        }

        // Test-Restore proves it with UnisonDB's recovery, which creates the empty store itself
        // (the v1 binary's store-recover reads v2 segments too).
        Run drill = await RunCli("test-restore", "--namespace", "users", "--repository", repo, "--target-log-index", "900",
            "--unison-oracle", Path.Combine(UnisonOracle.BinDir, UnisonOracle.V1), "--json");
        Assert.True(drill.ExitCode == 0, drill.ToString());
        Assert.True(drill.Json.GetProperty("passed").GetBoolean(), drill.Stdout);
        Assert.Equal(900, drill.Json.GetProperty("lastLogIndex").GetInt64());
    }

    [Fact]
    public async Task Without_a_snapshot_an_archive_that_lost_the_WALs_start_is_refused_and_health_says_so()
    {
        string data = _dir.Combine("data");
        UnisonOracle.CopyFixture("v1-small", data);
        string repo = _dir.Combine("repo");
        Assert.Equal(0, (await RunCli("repo", "init", "--repository", repo, "--unencrypted")).ExitCode);
        Run ship = await RunCli("wal", "ship", "--data-dir", data, "--namespace", "users", "--repository", repo, "--after-segment-id", "2");
        Assert.True(ship.ExitCode == 0, ship.ToString());

        Run pitr = await RunCli("pitr", "--namespace", "users", "--repository", repo, "--target-log-index", "700", "--target-data-dir", _dir.Combine("never"));
        Assert.Equal(3, pitr.ExitCode);
        Assert.Contains("starts at segment 3 (log index 326)", pitr.Stderr, StringComparison.Ordinal);
        Assert.False(Directory.Exists(_dir.Combine("never")));

        Run health = await RunCli("health", "--repository", repo, "--namespace", "users", "--json");
        Assert.Equal(6, health.ExitCode);
        Assert.Contains(health.Json.GetProperty("alerts").EnumerateArray(), a => a.GetProperty("code").GetString() == "NoRestoreBase" && a.GetProperty("severity").GetString() == "Critical");

        // Shipped from its start, the same WAL needs no snapshot and raises no such alert.
        string full = _dir.Combine("repo-full");
        Assert.Equal(0, (await RunCli("repo", "init", "--repository", full, "--unencrypted")).ExitCode);
        Assert.Equal(0, (await RunCli("wal", "ship", "--data-dir", data, "--namespace", "users", "--repository", full)).ExitCode);
        Run fine = await RunCli("health", "--repository", full, "--namespace", "users", "--json");
        Assert.DoesNotContain(fine.Json.GetProperty("alerts").EnumerateArray(), a => a.GetProperty("code").GetString() == "NoRestoreBase");
    }

    [Fact]
    public async Task A_consumed_log_index_inside_a_segment_is_in_the_plans_notes_and_a_target_on_it_reports_where_it_stops()
    {
        string data = _dir.Combine("data");
        string wal = Path.Combine(data, "users", "wal");
        Directory.CreateDirectory(wal);
        // LSN 61 is consumed by a failed append inside segment 1 (1..89; segment 2 starts at 90).
        UnisonOracle.OracleRun gen = UnisonOracle.Run(UnisonOracle.V1, "gen", "-dir", wal, "-seg-size", "262144", "-records", "120", "-sessions", "1", "-fail-at", "60", "-seed", "5");
        Assert.True(gen.ExitCode == 0, gen.ToString());
        string repo = _dir.Combine("repo");
        Assert.Equal(0, (await RunCli("repo", "init", "--repository", repo, "--unencrypted")).ExitCode);
        Assert.Equal(0, (await RunCli("wal", "ship", "--data-dir", data, "--namespace", "users", "--repository", repo)).ExitCode);
        Assert.Equal(0, (await RunCli("wal", "ship", "--data-dir", data, "--namespace", "users", "--backup-dir", "wal")).ExitCode);

        foreach (string[] source in new[] { new[] { "--repository", repo }, new[] { "--data-dir", data } })
        {
            Run across = await RunCli([.. new[] { "pitr", "--namespace", "users", "--target-log-index", "100", "--target-data-dir", _dir.Combine("never"), "--what-if", "--json" }, .. source]);
            Assert.True(across.ExitCode == 0, across.ToString());
            JsonElement plan = JsonDocument.Parse(across.Stdout[across.Stdout.IndexOf('{')..(across.Stdout.LastIndexOf('}') + 1)]).RootElement;
            plan = plan.TryGetProperty("plan", out JsonElement inner) ? inner : plan;
            Assert.Equal(100, plan.GetProperty("lastLogIndex").GetInt64());
            Assert.Contains(plan.GetProperty("notes").EnumerateArray(), n => n.GetString()!.Contains("segment 1", StringComparison.Ordinal) && n.GetString()!.Contains("log index 62 follows 60; log index 61 was never written", StringComparison.Ordinal));

            string into = _dir.Combine("at-61-" + source[0].TrimStart('-'));
            Run at = await RunCli([.. new[] { "pitr", "--namespace", "users", "--target-log-index", "61", "--target-data-dir", into, "--json" }, .. source]);
            Assert.True(at.ExitCode == 0, at.ToString());
            Assert.Equal(60, at.Json.GetProperty("lastLogIndex").GetInt64());
            Assert.Contains(at.Json.GetProperty("plan").GetProperty("notes").EnumerateArray(), n => n.GetString()!.Contains("Log index 61 was never written", StringComparison.Ordinal) && n.GetString()!.Contains("ends at log index 60", StringComparison.Ordinal));
            UnisonOracle.ReplayResult replay = UnisonOracle.Replay(Path.Combine(into, "users", "wal"), 262144, from: "0:0");
            Assert.True(replay.ExitCode == 0, replay.ToString());
            Assert.Equal((60L, 1UL, 60UL), (replay.Count, replay.FirstLsn, replay.LastLsn));
        }
    }
}
