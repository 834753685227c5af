using System.Buffers.Binary;
using System.Diagnostics;
using System.Text.Json;
using PSBackup.Cli;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Restore;
using PSBackup.Engine.Tests.Support;
using PSBackup.Engine.Wal;
using Xunit.Abstractions;

namespace PSBackup.Engine.Tests.Proofs;

/// <summary>Issue 16 "crash safety", proven against the real CLI: a child <c>psbackup wal ship
/// --follow --interval 100ms --repository</c> is killed (SIGKILL, whole tree) at seeded random points
/// while it ships partials of a real UnisonDB WAL that the oracle's gen grows between rounds, some
/// rounds with a torn append at the active segment's end. After every kill the repository passes
/// <c>check --read-data</c>, the next ship completes, and the newest archived partial ends exactly
/// at the live WAL's last valid record: a torn tail is never archived. At the end a restore through
/// the partials is replayed by UnisonDB's reader to exactly the live records.</summary>
[Trait("Category", "Proof")]
[Collection(SerialProofs.Name)]
public sealed class FollowCrashTests(ITestOutputHelper output) : IDisposable
{
    private const int Kills = 20;
    private const int MaxRounds = 40;
    private const long SegmentSize = 1 << 20;
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);
    private readonly TestDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private string Data => _dir.Combine("data");
    private string WalDir => Path.Combine(Data, "users", "wal");
    private string RepoPath => _dir.Combine("repo");

    private void Grow(long lastLsn, int records, int seed)
    {
        UnisonOracle.OracleRun gen = UnisonOracle.Run(UnisonOracle.V1, "gen", "-dir", WalDir, "-seg-size", SegmentSize.ToString(),
            "-records", records.ToString(), "-sessions", "1", "-start-lsn", (lastLsn + 1).ToString(), "-seed", seed.ToString());
        Assert.True(gen.ExitCode == 0, gen.ToString());
    }

    private WalSegmentInfo Active() =>
        WalDirectory.List(WalDir).Segments.Select(s => WalSegmentReader.Inspect(s.Path, "users", s.Id)).Last();

    /// <summary>A torn append at the end of the active segment's records: a frame header promising
    /// more bytes than follow, then random bytes. Returns where it starts and how long it is.</summary>
    private (string Path, long Offset, int Length) Tear(int seed)
    {
        WalSegmentInfo live = Active();
        var rng = new Random(seed);
        int length = rng.Next(12, 3000);
        byte[] torn = new byte[length];
        rng.NextBytes(torn);
        BinaryPrimitives.WriteUInt32LittleEndian(torn.AsSpan(4), (uint)(length + rng.Next(1, 5000)));
        using (var f = new FileStream(live.Path, FileMode.Open, FileAccess.Write))
        {
            f.Position = live.ValidBytes;
            f.Write(torn);
        }
        return (live.Path, live.ValidBytes, length);
    }

    /// <summary>The writer's recovery after a torn append (walfs overwrites from the last valid
    /// record; our harness zeroes the torn bytes so the oracle's next session starts clean).</summary>
    private static void Heal((string Path, long Offset, int Length) tear)
    {
        using var f = new FileStream(tear.Path, FileMode.Open, FileAccess.Write);
        f.Position = tear.Offset;
        f.Write(new byte[tear.Length]);
    }

    private static async Task<(int Code, string Stdout, string Stderr)> Cli(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = await TestCli.RunAsync(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public async Task Killing_a_follower_at_random_points_never_damages_the_repository_nor_archives_a_torn_record()
    {
        UnisonOracle.CopyFixture("v1-small", Data);
        Assert.Equal(0, (await Cli("repo", "init", "--repository", RepoPath, "--unencrypted")).Code);
        string[] follow = ["wal", "ship", "--data-dir", Data, "--namespace", "users", "--repository", RepoPath, "--follow", "--interval", "100ms", "--json"];

        // Uninterrupted runs: the first ships the sealed segments and a partial; the second, after
        // more records, only a partial, as every round does: its start-to-shipped time sets the
        // range of kill points.
        TimeSpan window = TimeSpan.Zero;
        long last = 1005;
        for (int warm = 0; warm < 2; warm++)
        {
            if (warm == 1)
            {
                Grow(last, 20, seed: 999);
                last = Active().LastLogIndex!.Value;
            }
            var clock = Stopwatch.StartNew();
            using CliProcess run = CliProcess.Start(follow);
            while (!run.Stdout.Contains($"\"lastLogIndex\":{last},", StringComparison.Ordinal))
            {
                Assert.False(run.HasExited, $"the follower exited: {run.Stderr}");
                Assert.True(clock.Elapsed < Timeout, "no partial shipped in time");
                await Task.Delay(10);
            }
            window = clock.Elapsed;
            output.WriteLine($"uninterrupted run {warm + 1} (process start to the partial shipped): {window.TotalMilliseconds:F0} ms");
        }

        var rng = new Random(16016);
        int killedMidRun = 0, round = 0, torn = 0;
        while (killedMidRun < Kills && round < MaxRounds)
        {
            round++;
            Grow(last, rng.Next(5, 40), seed: 1000 + round);
            WalSegmentInfo live = Active();
            last = live.LastLogIndex ?? last;
            (string, long, int)? tear = round % 3 == 0 ? Tear(round) : null;
            torn += tear is null ? 0 : 1;

            int delay = rng.Next((int)(window.TotalMilliseconds * 0.2), (int)(window.TotalMilliseconds * 0.95));
            using (CliProcess victim = CliProcess.Start(follow))
            {
                await Task.Delay(delay);
                bool exitedEarly = victim.HasExited;
                bool shipping = !exitedEarly && !victim.Stdout.Contains($"\"lastLogIndex\":{last},", StringComparison.Ordinal);
                victim.Kill();
                await victim.WaitAsync(Timeout);
                killedMidRun += shipping ? 1 : 0;
                output.WriteLine($"round {round}: killed at {delay} ms{(shipping ? "" : " (after its pass)")}{(tear is null ? "" : ", torn tail")}; live log index {last}");
                if (!shipping && !exitedEarly)
                {
                    // It had shipped before `delay`: on a loaded machine one warm run is a poor
                    // measure of start-to-shipped, so the window follows what the victims show.
                    window = TimeSpan.FromMilliseconds(Math.Max(200, 0.7 * window.TotalMilliseconds + 0.3 * delay));
                }
            }

            var check = await Cli("check", "--repository", RepoPath, "--read-data", "--json");
            Assert.True(check.Code == 0, $"round {round}: check --read-data exited {check.Code}: {check.Stderr}{check.Stdout}");
            using (JsonDocument report = JsonDocument.Parse(check.Stdout))
            {
                Assert.Equal(0, report.RootElement.GetProperty("errors").GetArrayLength());
            }

            // The next ship completes, and its partial ends at the last valid record, never in the torn bytes.
            var ship = await Cli("wal", "ship", "--data-dir", Data, "--namespace", "users", "--repository", RepoPath, "--json");
            Assert.True(ship.Code == 0, $"round {round}: the next ship exited {ship.Code}: {ship.Stderr}");
            using (JsonDocument shipped = JsonDocument.Parse(ship.Stdout))
            {
                JsonElement partial = shipped.RootElement.GetProperty("partials")[0];
                Assert.Equal(last, partial.GetProperty("lastLogIndex").GetInt64());
                Assert.Equal(live.ValidBytes, partial.GetProperty("bytes").GetInt64());
            }
            if (tear is { } t)
            {
                Heal(t);
            }
        }
        output.WriteLine($"killed mid-pass {killedMidRun} of {round} rounds ({torn} with a torn tail)");
        Assert.True(killedMidRun >= Kills, $"Only {killedMidRun} of {round} kills landed while the follower shipped; the proof needs {Kills}.");

        // Restore through the partials: UnisonDB's reader replays exactly 1..last.
        await SnapshotOfEmptyStore();
        PointInTimeRestoreResult r = await RestoreOperations.RestorePointInTimeAsync(new RestorePointInTimeOptions(Data, "users")
        {
            TargetLogIndex = last,
            TargetDataDir = _dir.Combine("restored"),
            Repository = new RepositoryTarget { Location = RepoPath },
        }, OperationContext.Default);
        UnisonOracle.ReplayResult replay = UnisonOracle.Replay(Path.Combine(r.RestoredPath, "wal"), SegmentSize, from: "0:0");
        Assert.True(replay.ExitCode == 0, replay.ToString());
        Assert.Equal(((long)last, 1UL, (ulong)last), (replay.Count, replay.FirstLsn, replay.LastLsn));
    }

    [Fact]
    public async Task SIGTERM_stops_a_follower_cleanly_with_exit_0_after_what_it_shipped()
    {
        if (OperatingSystem.IsWindows())
        {
            return; // no SIGTERM; a Windows service stop ends the process, which the kill proof covers
        }
        UnisonOracle.CopyFixture("v1-small", Data);
        Assert.Equal(0, (await Cli("repo", "init", "--repository", RepoPath, "--unencrypted")).Code);
        using CliProcess follower = CliProcess.Start("wal", "ship", "--data-dir", Data, "--namespace", "users", "--repository", RepoPath, "--follow", "--interval", "200ms", "--json", "-v");
        var clock = Stopwatch.StartNew();
        while (!follower.Stdout.Contains("\"lastLogIndex\":1005,", StringComparison.Ordinal))
        {
            Assert.False(follower.HasExited, $"the follower exited: {follower.Stderr}");
            Assert.True(clock.Elapsed < Timeout, "no partial shipped in time");
            await Task.Delay(20);
        }
        using (Process kill = Process.Start("kill", ["-TERM", follower.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }
        int code = await follower.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(code == 0, $"exit {code}: {follower.Stderr}");
        // Every stdout line is one whole JSON object: nothing was cut off.
        foreach (string line in follower.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            using JsonDocument item = JsonDocument.Parse(line);
            Assert.True(item.RootElement.GetProperty("segmentId").GetInt64() >= 1);
        }
        Assert.Contains("users: lag", follower.Stderr);
        var check = await Cli("check", "--repository", RepoPath, "--read-data", "--json");
        Assert.True(check.Code == 0, check.Stdout + check.Stderr);
    }

    private async Task SnapshotOfEmptyStore()
    {
        WalSegmentInfo first = WalSegmentReader.Inspect(Path.Combine(WalDir, "000000001.seg"), "users");
        DateTimeOffset at = first.FirstRecordTime!.Value.AddMilliseconds(-2);
        var repo = new RepositoryTarget { Location = RepoPath };
        await using OpenRepository open = await RepositoryConnector.OpenForWriteAsync(repo, RepositoryLockMode.Shared, "test", OperationContext.Default);
        await using BackupWriter writer = open.Repository.BeginBackup(new BackupInfo
        {
            Kind = BackupKind.StoreSnapshot,
            Namespace = "users",
            CreatedAt = at,
            Wal = new WalPosition([1], 0, 0),
        }, new PSBackup.Engine.Tests.Restore.ManualClock(at.AddMilliseconds(1)));
        await using (var content = new MemoryStream("store"u8.ToArray()))
        {
            await writer.AddFileAsync("db/unison.db", content, ChunkingProfile.Default, CancellationToken.None);
        }
        await writer.CommitAsync("snapshot/users/empty", CancellationToken.None);
    }
}
