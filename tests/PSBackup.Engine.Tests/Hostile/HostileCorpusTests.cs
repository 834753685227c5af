using System.Diagnostics;
using System.Text.Json;
using PSBackup.Cli;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Storage;
using PSBackup.Engine.Tests.Proofs;
using PSBackup.Engine.Tests.Support;
using Repo = PSBackup.Engine.Repository.Repository;

namespace PSBackup.Engine.Tests.Hostile;

/// <summary>Runs every command over every case of the <see cref="HostileCorpus"/>: no command
/// crashes or hangs (exit codes 0 and 2-6 only, no exception text, bounded time), read-only
/// commands write nothing but history and damage markers, every restore either yields exactly the
/// manifest's bytes or fails with an integrity error and writes nothing outside its target. Then
/// each case's own promise (items 7, 9, 10, 11, 12 of issue 12).</summary>
public sealed class HostileCorpusTests(Xunit.Abstractions.ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(2);
    private readonly TestDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    public static TheoryData<string> Cases() => new(HostileCorpus.Cases);

    private sealed record Run(int ExitCode, string Stdout, string Stderr);

    private static async Task<Run> RunCli(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        Task<int> run = TestCli.RunAsync(args, stdout, stderr);
        Assert.True(await Task.WhenAny(run, Task.Delay(Bound)) == run, $"psbackup {string.Join(' ', args)} did not finish within {Bound}");
        return new Run(await run, stdout.ToString(), stderr.ToString());
    }

    private static string[] Key(HostileCorpus.Built b) => b.Passphrase is null ? [] : ["--passphrase", b.Passphrase];

    /// <summary>Files of the repository but history and damage markers (what readers may add).</summary>
    private static SortedDictionary<string, string> State(string location) =>
        new(TreeState.Capture(location).Entries.Where(kv => !kv.Key.StartsWith("events", StringComparison.Ordinal) && !kv.Key.StartsWith("damaged", StringComparison.Ordinal)).ToDictionary(), StringComparer.Ordinal);

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task No_command_crashes_hangs_or_writes_where_it_must_not_and_no_restore_yields_wrong_bytes(string kase)
    {
        HostileCorpus.Built b = await HostileCorpus.Build(kase, _dir.Path);
        string r = b.Location;
        List<string[]> readOnly =
        [
            ["list", "--repository", r, "--json"],
            ["check", "--repository", r],
            ["check", "--repository", r, "--read-data"],
            ["prune", "--repository", r, "--keep-last", "1", "--what-if"],
            ["health", "--repository", r],
            ["metrics", "--repository", r],
            ["repair", "--repository", r, "--what-if"],
        ];
        var before = State(r);
        foreach (string[] args in readOnly)
        {
            Run run = await RunCli([.. args, .. Key(b)]);
            string what = $"{kase}: psbackup {string.Join(' ', args)} -> {run.ExitCode}: {run.Stderr}";
            Assert.True(run.ExitCode is 0 or 2 or 3 or 4 or 5 or 6, what);
            Assert.DoesNotContain("Exception", run.Stderr);
            Assert.DoesNotContain("   at ", run.Stderr);
            Assert.Equal(before, State(r));
        }

        // Every sound backup restores exactly, or fails as damaged; nothing lands outside the target.
        if (kase is "downgraded-config" or "huge-config")
        {
            return;
        }
        using var backend = new LocalBackend(r);
        Repo repo = await Repo.OpenAsync(backend, RepositoryCredentials.None);
        string outside = _dir.Combine("restores");
        foreach (string id in b.Sound.Append(b.Damaged).OfType<string>())
        {
            string target = Path.Combine(outside, id[..12], "target");
            try
            {
                RepositoryManifest m = await repo.ReadManifestAsync(id);
                await repo.RestoreAsync(m, target);
                foreach (RepositoryFile f in m.Files)
                {
                    Assert.Equal(f.Sha256, ObjectStore.ObjectFixture.Sha256(File.ReadAllBytes(Path.Combine(target, f.Path))));
                }
            }
            catch (RepositoryIntegrityException)
            {
                // refused as damaged: fine, as long as nothing wrong was written
            }
            catch (InvalidInputException)
            {
                // an id that is not one (the forged bomb): refused before anything
            }
        }
        if (Directory.Exists(outside))
        {
            foreach (string f in Directory.GetFileSystemEntries(outside, "*", SearchOption.AllDirectories))
            {
                string rel = Path.GetRelativePath(outside, f);
                Assert.True(rel.Split(Path.DirectorySeparatorChar).Length <= 2 || rel.Split(Path.DirectorySeparatorChar)[1] == "target", $"{kase}: a restore wrote '{f}' outside its target");
            }
        }
        Assert.Empty(Directory.GetFiles(_dir.Path, "evil.bin", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task One_bad_manifest_is_listed_as_damaged_pruned_away_and_never_synced_while_everything_else_works()
    {
        HostileCorpus.Built b = await HostileCorpus.Build("bad-manifest", _dir.Path);
        string r = b.Location;

        Run list = await RunCli("list", "--repository", r, "--json");
        Assert.Equal(4, list.ExitCode); // before: 4 too, but with nothing listed
        using (JsonDocument doc = JsonDocument.Parse(list.Stdout))
        {
            Assert.Equal(b.Sound.Order(StringComparer.Ordinal), doc.RootElement.GetProperty("backups").EnumerateArray().Select(e => e.GetProperty("backupId").GetString()!).Order(StringComparer.Ordinal));
        }
        Assert.Contains(b.Damaged!, list.Stderr);

        Run whatIf = await RunCli("prune", "--repository", r, "--keep-last", "10", "--what-if", "--json");
        Assert.Equal(0, whatIf.ExitCode);
        Assert.Contains(b.Damaged!, whatIf.Stdout);
        Assert.Equal(0, (await RunCli("health", "--repository", r, "--max-age", "100000d")).ExitCode is 0 or 6 ? 0 : 1);
        Run metrics = await RunCli("metrics", "--repository", r);
        Assert.Equal(0, metrics.ExitCode);
        Assert.Contains("backup_damaged{namespace=\"tenant\"} 1", metrics.Stdout);

        string copy = _dir.Combine("copy");
        Run sync = await RunCli("sync", "--source", r, "--destination", copy);
        Assert.Equal(4, sync.ExitCode);
        Assert.False(File.Exists(Path.Combine(copy, "snapshots", b.Damaged!)));
        Assert.Equal(b.Sound.Count, Directory.GetFiles(Path.Combine(copy, "snapshots")).Length);
        Assert.Equal(0, (await RunCli("check", "--repository", copy, "--read-data")).ExitCode);

        Run prune = await RunCli("prune", "--repository", r, "--keep-last", "10");
        Assert.Equal(0, prune.ExitCode);
        Assert.False(File.Exists(Path.Combine(r, "snapshots", b.Damaged!)));
        Assert.Equal(0, (await RunCli("list", "--repository", r)).ExitCode);
    }

    [Fact]
    public async Task A_manifest_whose_sizes_overflow_is_damaged_not_an_overflow_exception()
    {
        HostileCorpus.Built b = await HostileCorpus.Build("overflowing-sizes", _dir.Path);
        Run list = await RunCli("list", "--repository", b.Location);
        Assert.Equal(4, list.ExitCode);
        Assert.Contains("no backup can hold", list.Stderr);
        Assert.DoesNotContain("Overflow", list.Stderr);
    }

    [Fact]
    public async Task A_decompression_bomb_is_refused_from_its_header_in_bounded_memory()
    {
        HostileCorpus.Built b = await HostileCorpus.Build("manifest-bomb", _dir.Path);
        Assert.True(new FileInfo(Path.Combine(b.Location, "snapshots", b.Damaged!)).Length < 40_000);
        for (int i = 1; i <= 7; i++)
        {
            HostileCorpus.StoreBomb(b.Location, (1L << 30) - i * 131072); // eight distinct bombs, each under its own valid name
        }
        using CliProcess list = CliProcess.Start("list", "--repository", b.Location);
        long peak = 0;
        while (!list.HasExited)
        {
            peak = Math.Max(peak, PeakRss(list.Id));
            await Task.Delay(20);
        }
        Assert.Equal(4, await list.WaitAsync(Bound));
        Assert.Contains("decompression bomb", list.Stderr);
        // Before: eight bombs drove list to 7.1 GiB.
        output.WriteLine($"list over eight 1 GiB manifest bombs: exit 4, peak RSS {peak >> 20} MiB");
        Assert.True(peak < 400L << 20, $"list peaked at {peak >> 20} MiB");
    }

    private static long PeakRss(int pid)
    {
        try
        {
            string? line = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
            return line is null ? 0 : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        }
        catch (IOException)
        {
            return 0;
        }
    }

    [Theory]
    [InlineData("dangling-ref", "RefDangling")]
    [InlineData("mismatched-ref", "RefMismatch")]
    [InlineData("missing-wal-ref", "WalGap")]
    [InlineData("lost-index", "ChunkMissing")]
    public async Task Check_finds_what_would_break_a_restore_and_repair_fixes_it(string kase, string code)
    {
        HostileCorpus.Built b = await HostileCorpus.Build(kase, _dir.Path);
        Run check = await RunCli("check", "--repository", b.Location, "--read-data", "--json");
        Assert.Equal(4, check.ExitCode); // before: dangling refs only; a mismatched or missing ref passed
        Assert.Contains($"\"code\": \"{code}\"", check.Stdout);

        Run repair = await RunCli("repair", "--repository", b.Location);
        Assert.True(repair.ExitCode == 0, repair.Stderr);
        Run again = await RunCli("check", "--repository", b.Location, "--read-data");
        Assert.True(again.ExitCode == 0, again.Stdout);
    }

    [Fact]
    public async Task A_killed_runs_temp_pack_is_reported_by_check_and_reclaimed_by_prune()
    {
        HostileCorpus.Built b = await HostileCorpus.Build("temp-pack-leftover", _dir.Path);
        Run check = await RunCli("check", "--repository", b.Location);
        Assert.Equal(0, check.ExitCode);
        Assert.Contains("TempFileLeftover", check.Stdout);
        Run prune = await RunCli("prune", "--repository", b.Location, "--keep-last", "10", "--pack-grace-period", "0h");
        Assert.Equal(0, prune.ExitCode);
        Assert.Empty(Directory.GetFiles(Path.Combine(b.Location, "packs"), ".psb-*", SearchOption.AllDirectories)); // before: survived
    }

    [Fact]
    public async Task Malformed_events_are_skipped_and_counted_not_fatal_to_health_and_metrics()
    {
        HostileCorpus.Built b = await HostileCorpus.Build("malformed-event", _dir.Path);
        Run health = await RunCli("health", "--repository", b.Location, "--max-age", "100000d");
        Assert.True(health.ExitCode is 0 or 6, health.Stderr); // before: exit 1, a raw JsonException
        Assert.Contains("MalformedEvents", health.Stdout);
        Run metrics = await RunCli("metrics", "--repository", b.Location);
        Assert.Equal(0, metrics.ExitCode);
        Assert.Contains("backup_malformed_events{namespace=\"ns1\"} 2", metrics.Stdout);
    }

    /// <summary>Before: a FIFO under a manifest's name failed list, check, health, prune and every
    /// backup with exit 1, and nothing could remove it.</summary>
    [Fact]
    public async Task A_fifo_in_place_of_a_manifest_is_a_damaged_manifest_listed_pruned_and_never_synced()
    {
        HostileCorpus.Built b = await HostileCorpus.Build("fifo-manifest", _dir.Path);
        string r = b.Location;
        Run list = await RunCli("list", "--repository", r, "--json");
        Assert.Equal(4, list.ExitCode);
        using (JsonDocument doc = JsonDocument.Parse(list.Stdout))
        {
            Assert.Equal(b.Sound.Order(StringComparer.Ordinal), doc.RootElement.GetProperty("backups").EnumerateArray().Select(e => e.GetProperty("backupId").GetString()!).Order(StringComparer.Ordinal));
        }
        Assert.Contains(b.Damaged!, list.Stderr);
        Assert.Contains("not a regular file", list.Stderr);
        Run health = await RunCli("health", "--repository", r, "--max-age", "100000d");
        Assert.True(health.ExitCode is 0 or 6, health.Stderr);
        Assert.Contains("BackupDamaged", health.Stdout);

        using (var obj = new ObjectStore.ObjectFixture())
        {
            Run backup = await RunCli("object", "backup", "--db-root", obj.DbRoot, "--dir", ObjectStore.ObjectFixture.Dir, "--object", ObjectStore.ObjectFixture.Object, "--repository", r);
            Assert.True(backup.ExitCode == 0, backup.Stderr);
        }

        string copy = _dir.Combine("copy");
        Run sync = await RunCli("sync", "--source", r, "--destination", copy);
        Assert.True(sync.ExitCode == 4, sync.Stderr);
        Assert.False(File.Exists(Path.Combine(copy, "snapshots", b.Damaged!)));
        Assert.Equal(0, (await RunCli("check", "--repository", copy, "--read-data")).ExitCode);

        Run prune = await RunCli("prune", "--repository", r, "--keep-last", "10");
        Assert.True(prune.ExitCode == 0, prune.Stderr);
        Assert.False(Path.Exists(Path.Combine(r, "snapshots", b.Damaged!)));
        Assert.Equal(0, (await RunCli("list", "--repository", r)).ExitCode);
    }

    /// <summary>Before: exit 1 for every command. Now: the index is damaged (like one with a flipped
    /// byte): backups and lists run from the others, check names it, prune refuses (which packs it
    /// named is unknown) and says to repair, and repair rebuilds the index without it.</summary>
    [Fact]
    public async Task A_fifo_in_place_of_an_index_object_is_a_damaged_index_that_repair_replaces()
    {
        HostileCorpus.Built b = await HostileCorpus.Build("fifo-index", _dir.Path);
        string r = b.Location;
        Run list = await RunCli("list", "--repository", r, "--json");
        Assert.True(list.ExitCode == 0, list.Stderr);
        Run check = await RunCli("check", "--repository", r, "--json");
        Assert.Equal(4, check.ExitCode);
        Assert.Contains("\"code\": \"IndexCorrupt\"", check.Stdout);
        Assert.Contains("not a regular file", check.Stdout);
        Run prune = await RunCli("prune", "--repository", r, "--keep-last", "10");
        Assert.Equal(4, prune.ExitCode);
        Assert.Contains("Repair-BackupRepository", prune.Stderr);
        Run repair = await RunCli("repair", "--repository", r);
        Assert.True(repair.ExitCode == 0, repair.Stdout + repair.Stderr);
        Assert.Equal(0, (await RunCli("check", "--repository", r, "--read-data")).ExitCode);
        Assert.Equal(0, (await RunCli("prune", "--repository", r, "--keep-last", "10")).ExitCode);
    }

    /// <summary>Before: every backup and prune failed with exit 1 while the FIFO lock existed. A lock
    /// object that is no lock holds no one's lock (restic ignores such locks too): runs go on, check
    /// warns, prune removes it.</summary>
    [Fact]
    public async Task A_fifo_in_place_of_a_lock_is_ignored_by_backups_reported_by_check_and_removed_by_prune()
    {
        HostileCorpus.Built b = await HostileCorpus.Build("fifo-lock", _dir.Path);
        string r = b.Location;
        using (var obj = new ObjectStore.ObjectFixture())
        {
            Run backup = await RunCli("object", "backup", "--db-root", obj.DbRoot, "--dir", ObjectStore.ObjectFixture.Dir, "--object", ObjectStore.ObjectFixture.Object, "--repository", r);
            Assert.True(backup.ExitCode == 0, backup.Stderr);
        }
        Run check = await RunCli("check", "--repository", r, "--json");
        Assert.True(check.ExitCode == 0, check.Stdout);
        Assert.Contains("LockUnreadable", check.Stdout);
        Run prune = await RunCli("prune", "--repository", r, "--keep-last", "10");
        Assert.True(prune.ExitCode == 0, prune.Stderr);
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(r, "locks")));
        Assert.DoesNotContain("LockUnreadable", (await RunCli("check", "--repository", r, "--json")).Stdout);
    }

    /// <summary>Before: health exited 1. A FIFO event is a malformed event: counted, not fatal.</summary>
    [Fact]
    public async Task A_fifo_in_place_of_an_event_is_counted_as_malformed()
    {
        HostileCorpus.Built b = await HostileCorpus.Build("fifo-event", _dir.Path);
        Run health = await RunCli("health", "--repository", b.Location, "--max-age", "100000d");
        Assert.True(health.ExitCode is 0 or 6, health.Stderr);
        Assert.Contains("MalformedEvents", health.Stdout);
        Run metrics = await RunCli("metrics", "--repository", b.Location);
        Assert.Equal(0, metrics.ExitCode);
        Assert.Contains("backup_malformed_events{namespace=\"ns1\"} 1", metrics.Stdout);
    }

    /// <summary>Before: check said a stray file in index/ "is ignored" while prune failed with exit 4
    /// calling it a damaged object. Both ignore it now; repair (which rewrites index/) removes it.</summary>
    [Fact]
    public async Task A_stray_file_in_the_index_folder_is_ignored_alike_by_check_and_prune()
    {
        HostileCorpus.Built b = await HostileCorpus.Build("stray-index", _dir.Path);
        string r = b.Location;
        Run check = await RunCli("check", "--repository", r, "--json");
        Assert.True(check.ExitCode == 0, check.Stdout);
        Assert.Contains("StrayObject", check.Stdout);
        Run prune = await RunCli("prune", "--repository", r, "--keep-last", "10");
        Assert.True(prune.ExitCode == 0, prune.Stderr);
        Assert.Equal(0, (await RunCli("check", "--repository", r, "--read-data")).ExitCode);
    }

    [Fact]
    public async Task A_huge_config_is_refused_without_reading_it_whole()
    {
        HostileCorpus.Built b = await HostileCorpus.Build("huge-config", _dir.Path);
        var watch = Stopwatch.StartNew();
        Run list = await RunCli("list", "--repository", b.Location);
        Assert.Equal(4, list.ExitCode);
        Assert.Contains("larger than", list.Stderr);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(30));
    }
}
