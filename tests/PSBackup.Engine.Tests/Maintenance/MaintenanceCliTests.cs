using System.Text.Json;
using PSBackup.Cli;
using PSBackup.Engine.Storage;
using PSBackup.Engine.Tests.Support;

namespace PSBackup.Engine.Tests.Maintenance;

/// <summary>psbackup list, check and sync in-process: exit codes, one-line errors, what they name.</summary>
public sealed class MaintenanceCliTests : IDisposable
{
    private readonly TestDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private sealed record Run(int ExitCode, string Stdout, string Stderr)
    {
        public string[] StderrLines => Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    }

    private static async Task<Run> RunCli(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = await TestCli.RunAsync(args, stdout, stderr);
        return new Run(code, stdout.ToString(), stderr.ToString());
    }

    private async Task<(string Path, (string Object, string Snapshot, string Segment) Ids)> RepoAsync(string? passphrase = null)
    {
        string path = _dir.Combine("repo");
        Directory.CreateDirectory(path);
        using var backend = new LocalBackend(path);
        return (path, await MaintenanceTestSupport.PopulateAsync(backend, passphrase));
    }

    [Fact]
    public async Task A_wrong_passphrase_exits_2_with_one_clear_line_and_changes_nothing()
    {
        var (repo, _) = await RepoAsync("right passphrase");
        string dbRoot = _dir.Combine("db");
        Directory.CreateDirectory(Path.Combine(dbRoot, "acme", "orders", "data"));
        File.WriteAllBytes(Path.Combine(dbRoot, "acme", "orders", "data", "000.bin"), new byte[100_000]);
        using var backend = new LocalBackend(repo);
        SortedDictionary<string, string> before = await MaintenanceTestSupport.ListingAsync(backend);
        string[][] commands =
        [
            ["object", "backup", "--db-root", dbRoot, "--dir", "acme", "--object", "orders", "--repository", repo, "--passphrase", "wrong"],
            ["list", "--repository", repo, "--passphrase", "wrong"],
            ["check", "--repository", repo, "--read-data", "--passphrase", "wrong"],
            ["sync", "--source", repo, "--destination", _dir.Combine("copy"), "--passphrase", "wrong"],
        ];
        foreach (string[] args in commands)
        {
            Run run = await RunCli(args);
            Assert.True(run.ExitCode == 2, $"{args[0]}: exit {run.ExitCode}: {run.Stderr}");
            Assert.Equal("", run.Stdout);
            string line = Assert.Single(run.StderrLines);
            Assert.StartsWith("psbackup: The passphrase does not open the repository", line);
            Assert.DoesNotContain("   at ", run.Stderr);
        }
        Assert.Equal(before, await MaintenanceTestSupport.ListingAsync(backend));
        Assert.False(Directory.Exists(_dir.Combine("copy")));
        Assert.Equal(0, (await RunCli("list", "--repository", repo, "--passphrase", "right passphrase")).ExitCode);
    }

    [Fact]
    public async Task Check_read_data_exits_4_and_names_the_backup_and_file_of_a_flipped_pack_byte()
    {
        var (repo, _) = await RepoAsync();
        Assert.Equal(0, (await RunCli("check", "--repository", repo, "--read-data")).ExitCode);
        string[] ids0 = await IdsAsync(repo);
        string[] packs = Directory.GetFiles(Path.Combine(repo, "packs"), "*", SearchOption.AllDirectories);
        foreach (string pack in packs)
        {
            MaintenanceTestSupport.FlipByte(pack, 64);
        }
        Run run = await RunCli("check", "--repository", repo, "--read-data");
        Assert.Equal(4, run.ExitCode);
        foreach (string id in ids0)
        {
            Assert.Contains($"backup {id}", run.Stdout);
        }
        Assert.Contains("file 'db/data.db'", run.Stdout);
        Assert.Contains("file 'wal/000000007.wal'", run.Stdout);
        Assert.Contains("DataCorrupt", run.Stdout);
        string line = Assert.Single(run.StderrLines);
        Assert.StartsWith("psbackup: The check found", line);
        // Structure alone cannot see a flipped byte, but the check that read it marked the packs
        // damaged (so the next backups store those chunks again), and a plain check now reports that.
        Run plain = await RunCli("check", "--repository", repo);
        Assert.Equal(4, plain.ExitCode);
        Assert.Contains("PackDamaged", plain.Stdout);
    }

    private static async Task<string[]> IdsAsync(string repo)
    {
        Run list = await RunCli("list", "--repository", repo, "--json");
        using JsonDocument doc = JsonDocument.Parse(list.Stdout);
        return doc.RootElement.GetProperty("backups").EnumerateArray().Select(b => b.GetProperty("backupId").GetString()!).ToArray();
    }

    [Fact]
    public async Task Check_exits_4_and_names_the_backup_of_a_flipped_manifest_byte()
    {
        var (repo, ids) = await RepoAsync();
        MaintenanceTestSupport.FlipByte(Path.Combine(repo, "snapshots", ids.Segment), 30);
        Run run = await RunCli("check", "--repository", repo, "--read-data", "--json");
        Assert.Equal(4, run.ExitCode);
        using JsonDocument doc = JsonDocument.Parse(run.Stdout);
        JsonElement error = Assert.Single(doc.RootElement.GetProperty("errors").EnumerateArray());
        Assert.Equal(ids.Segment, error.GetProperty("backupId").GetString());
        Assert.Equal("snapshots/" + ids.Segment, error.GetProperty("objectKey").GetString());
        Assert.False(doc.RootElement.GetProperty("passed").GetBoolean());
        Assert.Contains(ids.Segment, Assert.Single(run.StderrLines));
    }

    [Fact]
    public async Task List_prints_a_table_and_json_with_the_seed_style_kind_names_and_refuses_bad_input()
    {
        var (repo, ids) = await RepoAsync();
        Run table = await RunCli("list", "--repository", repo, "--namespace", "ns1");
        Assert.Equal(0, table.ExitCode);
        Assert.Contains("wal-segment", table.Stdout);
        Assert.Contains("ns1 #7", table.Stdout);
        Assert.Contains(ids.Snapshot, table.Stdout);
        Assert.DoesNotContain(ids.Object, table.Stdout);
        Run json = await RunCli("list", "--repository", repo, "--kind", "store-snapshot", "--json");
        using (JsonDocument doc = JsonDocument.Parse(json.Stdout))
        {
            JsonElement b = Assert.Single(doc.RootElement.GetProperty("backups").EnumerateArray());
            Assert.Equal(("store-snapshot", ids.Snapshot, repo), (b.GetProperty("kind").GetString(), b.GetProperty("backupId").GetString(), b.GetProperty("repository").GetString()));
        }
        Run after = await RunCli("list", "--repository", repo, "--after", "2026-03-01T13:30:00Z", "--json");
        using (JsonDocument doc = JsonDocument.Parse(after.Stdout))
        {
            Assert.Equal(ids.Segment, Assert.Single(doc.RootElement.GetProperty("backups").EnumerateArray()).GetProperty("backupId").GetString());
        }
        Run badTime = await RunCli("list", "--repository", repo, "--after", "yesterday-ish");
        Assert.Equal(2, badTime.ExitCode);
        Assert.Contains("--after 'yesterday-ish' is not a time", badTime.Stderr);
        Run badKind = await RunCli("list", "--repository", repo, "--kind", "tarball");
        Assert.Equal(2, badKind.ExitCode);
        Run none = await RunCli("list");
        Assert.Equal(2, none.ExitCode);
        Assert.Contains("--repository", Assert.Single(none.StderrLines)); // the engine's -Repository, as the CLI spells it
        Run missing = await RunCli("list", "--repository", _dir.Combine("nope"));
        Assert.Equal(3, missing.ExitCode);
    }

    [Fact]
    public async Task Sync_what_if_lists_objects_then_a_real_sync_copies_them_and_a_different_repository_is_a_conflict()
    {
        var (repo, _) = await RepoAsync();
        string dst = _dir.Combine("offsite");
        Run whatIf = await RunCli("sync", "--source", repo, "--destination", dst, "--what-if");
        Assert.Equal(0, whatIf.ExitCode);
        Assert.Contains("What if: Copy repository object on " + dst + "/config", whatIf.Stdout);
        Assert.Contains("/packs/", whatIf.Stdout);
        Assert.False(Directory.Exists(dst));
        Run real = await RunCli("sync", "--source", repo, "--destination", dst, "--json");
        Assert.Equal(0, real.ExitCode);
        using (JsonDocument doc = JsonDocument.Parse(real.Stdout))
        {
            Assert.Equal("Repository", doc.RootElement.GetProperty("mode").GetString());
            Assert.True(doc.RootElement.GetProperty("copied").GetInt32() > 5);
        }
        Assert.Equal(0, (await RunCli("check", "--repository", dst, "--read-data")).ExitCode);

        string other = _dir.Combine("other");
        Directory.CreateDirectory(other);
        using (var b = new LocalBackend(other))
        {
            await PSBackup.Engine.Repository.Repository.InitializeAsync(b, new PSBackup.Engine.Repository.RepositoryInitOptions());
        }
        Run conflict = await RunCli("sync", "--source", repo, "--destination", other);
        Assert.Equal(5, conflict.ExitCode);
        Assert.Contains("holds a different repository", Assert.Single(conflict.StderrLines));
    }
}
