using System.Text.Json;
using PSBackup.Cli;
using PSBackup.Engine.Tests.ObjectStore;
using PSBackup.Engine.Tests.Support;

namespace PSBackup.Engine.Tests.Cli;

/// <summary><c>psbackup prune</c> (Remove-ExpiredBackup) over the retention engine: --what-if
/// lists and removes nothing, a real prune keeps exactly what the policy says and leaves a
/// repository that <c>check --read-data</c> passes, no rule is bad input, and the --json shape.</summary>
public sealed class CliRetentionTests : IDisposable
{
    private readonly TestDirectory _dir = new();
    private readonly ObjectFixture _obj = new();

    public void Dispose()
    {
        _obj.Dispose();
        _dir.Dispose();
    }

    private sealed record Run(int ExitCode, string Stdout, string Stderr)
    {
        public JsonElement Json => JsonDocument.Parse(Stdout).RootElement;
    }

    private static async Task<Run> RunCli(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = await TestCli.RunAsync(args, stdout, stderr);
        return new Run(code, stdout.ToString(), stderr.ToString());
    }

    private string Repo => _dir.Combine("repo");

    /// <summary>A repository with <paramref name="count"/> object backups of tenant1/users, each of
    /// different content (so older ones own packs nothing newer uses); ids oldest first.</summary>
    private async Task<List<string>> RepositoryWithBackups(int count)
    {
        Assert.Equal(0, (await RunCli("repo", "init", "--repository", Repo, "--unencrypted")).ExitCode);
        var ids = new List<string>();
        for (int i = 0; i < count; i++)
        {
            ObjectFixture.Populate(_obj.ObjectPath, 100 + i);
            Run backup = await RunCli("object", "backup", "--db-root", _obj.DbRoot, "--dir", ObjectFixture.Dir, "--object", ObjectFixture.Object, "--repository", Repo, "--json");
            Assert.Equal(0, backup.ExitCode);
            ids.Add(backup.Json.GetProperty("backupId").GetString()!);
            await Task.Delay(20); // distinct creation times
        }
        return ids;
    }

    private async Task<string[]> ListedIds()
    {
        Run list = await RunCli("list", "--repository", Repo, "--json");
        Assert.Equal(0, list.ExitCode);
        return list.Json.GetProperty("backups").EnumerateArray().Select(b => b.GetProperty("backupId").GetString()!).Order(StringComparer.Ordinal).ToArray();
    }

    [Fact]
    public async Task What_if_lists_what_would_go_and_removes_nothing()
    {
        List<string> ids = await RepositoryWithBackups(3);
        TreeState before = TreeState.Capture(Repo);

        Run run = await RunCli("prune", "--repository", Repo, "--keep-last", "1", "--pack-grace-period", "0h", "--what-if");

        Assert.Equal(0, run.ExitCode);
        Assert.Equal("", run.Stderr);
        before.AssertUnchanged(Repo);
        // ShouldProcess's "What if: ..." lines come first, then the table.
        string[] lines = run.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Count(l => l.StartsWith("What if: Remove expired backup on object backup ", StringComparison.Ordinal)));
        string header = Assert.Single(lines, l => l.StartsWith("Decision", StringComparison.Ordinal));
        Assert.Matches(@"^Decision\s+Kind\s+Id\s+Time\s+Size\s+Reasons$", header.TrimEnd());
        Assert.Contains(lines, l => l.StartsWith("Keep", StringComparison.Ordinal) && l.Contains(ids[2], StringComparison.Ordinal) && l.Contains("last", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("Remove (what-if)", StringComparison.Ordinal) && l.Contains(ids[0], StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("Remove (what-if)", StringComparison.Ordinal) && l.Contains(ids[1], StringComparison.Ordinal));
        Assert.Contains("nothing was removed", lines[^1]);
        Assert.Equal(ids.Order(StringComparer.Ordinal), await ListedIds());
    }

    [Fact]
    public async Task Keep_last_keeps_exactly_the_newest_backups_reclaims_their_packs_and_the_repository_checks_clean()
    {
        List<string> ids = await RepositoryWithBackups(4);

        Run run = await RunCli("prune", "--repository", Repo, "--keep-last", "2", "--pack-grace-period", "0h", "--json");

        Assert.Equal(0, run.ExitCode);
        Assert.Equal("", run.Stderr);
        JsonElement[] items = run.Json.GetProperty("items").EnumerateArray().ToArray();
        string[] RemovedOf(string kind) => items.Where(i => i.GetProperty("kind").GetString() == kind && i.GetProperty("removed").GetBoolean())
            .Select(i => i.GetProperty("id").GetString()!).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(ids.Take(2).Order(StringComparer.Ordinal), RemovedOf("objectBackup"));
        Assert.NotEmpty(RemovedOf("pack"));
        Assert.Equal(ids.Skip(2).Order(StringComparer.Ordinal), await ListedIds());

        Run check = await RunCli("check", "--repository", Repo, "--read-data", "--json");
        Assert.Equal(0, check.ExitCode);
        Assert.True(check.Json.GetProperty("passed").GetBoolean());
        Assert.Equal(0, check.Json.GetProperty("errorCount").GetInt32());

        // Pruning again with the same policy finds nothing more to remove.
        Run again = await RunCli("prune", "--repository", Repo, "--keep-last", "2", "--pack-grace-period", "0h", "--json");
        Assert.Equal(0, again.ExitCode);
        Assert.Equal(0, again.Json.GetProperty("removed").GetInt32());
    }

    [Fact]
    public async Task The_json_shape_names_each_item_and_the_totals()
    {
        List<string> ids = await RepositoryWithBackups(2);

        Run run = await RunCli("prune", "--repository", Repo, "--keep-last", "1", "--json", "--what-if");

        Assert.Equal(0, run.ExitCode);
        JsonElement root = run.Json;
        Assert.True(root.GetProperty("whatIf").GetBoolean());
        Assert.Equal(0, root.GetProperty("removed").GetInt32());
        Assert.Equal(0, root.GetProperty("removedBytes").GetInt64());
        Assert.Equal(root.GetProperty("items").EnumerateArray().Count(i => i.GetProperty("decision").GetString() == "keep"), root.GetProperty("kept").GetInt32());
        JsonElement[] objects = root.GetProperty("items").EnumerateArray().Where(i => i.GetProperty("kind").GetString() == "objectBackup").ToArray();
        Assert.Equal(2, objects.Length);
        JsonElement kept = Assert.Single(objects, o => o.GetProperty("decision").GetString() == "keep");
        JsonElement gone = Assert.Single(objects, o => o.GetProperty("decision").GetString() == "remove");
        Assert.Equal(ids[1], kept.GetProperty("id").GetString());
        Assert.Equal(ids[1], kept.GetProperty("backupId").GetString());
        Assert.Equal(ids[0], gone.GetProperty("id").GetString());
        Assert.False(gone.GetProperty("removed").GetBoolean());
        Assert.Equal(Repo, kept.GetProperty("repository").GetString());
        Assert.Equal(ObjectFixture.Dir, kept.GetProperty("dir").GetString());
        Assert.Equal(ObjectFixture.Object, kept.GetProperty("object").GetString());
        Assert.True(kept.GetProperty("bytes").GetInt64() > 0);
        Assert.True(kept.TryGetProperty("time", out _));
        Assert.True(kept.TryGetProperty("segmentId", out _));
        Assert.True(kept.TryGetProperty("path", out _));
        Assert.Contains("last", kept.GetProperty("reasons").EnumerateArray().Select(r => r.GetString()));
        Assert.Equal(JsonValueKind.Array, gone.GetProperty("reasons").ValueKind);
    }

    [Fact]
    public async Task Local_object_backups_are_pruned_under_db_root()
    {
        var made = new List<string>();
        for (int i = 0; i < 3; i++)
        {
            ObjectFixture.Populate(_obj.ObjectPath, 200 + i);
            Run backup = await RunCli("object", "backup", "--db-root", _obj.DbRoot, "--dir", ObjectFixture.Dir, "--object", ObjectFixture.Object, "--json");
            Assert.Equal(0, backup.ExitCode);
            made.Add(backup.Json.GetProperty("backupName").GetString()!);
            await Task.Delay(1100); // local backup folders are named to the second
        }

        Run run = await RunCli("prune", "--db-root", _obj.DbRoot, "--dir", ObjectFixture.Dir, "--keep-last", "1", "--json");

        Assert.Equal(0, run.ExitCode);
        Assert.Equal(2, run.Json.GetProperty("removed").GetInt32());
        Assert.False(Directory.Exists(Path.Combine(_obj.DirPath, made[0])));
        Assert.False(Directory.Exists(Path.Combine(_obj.DirPath, made[1])));
        Assert.True(Directory.Exists(Path.Combine(_obj.DirPath, made[2])));
    }

    [Theory]
    [InlineData("retention rule", "prune", "--repository", "R")]
    [InlineData("retention rule", "prune", "--repository", "R", "--keep-last", "0", "--keep-daily", "0")]
    [InlineData("negative", "prune", "--repository", "R", "--keep-last", "-1")]
    [InlineData("not a duration", "prune", "--repository", "R", "--keep-within", "3m")]
    [InlineData("--pack-grace-period", "prune", "--db-root", "R", "--dir", "tenant1", "--keep-last", "1", "--pack-grace-period", "0h")]
    [InlineData("--passphrase", "prune", "--db-root", "R", "--dir", "tenant1", "--keep-last", "1", "--passphrase", "p")]
    [InlineData("exactly one", "prune", "--keep-last", "1")]
    public async Task Bad_input_is_exit_2_and_removes_nothing(string mentions, params string[] args)
    {
        await RepositoryWithBackups(2);
        TreeState before = TreeState.Capture(Repo);

        Run run = await RunCli(args.Select(a => a == "R" ? Repo : a).ToArray());

        Assert.Equal(2, run.ExitCode);
        Assert.Equal("", run.Stdout);
        Assert.StartsWith("psbackup: ", run.Stderr);
        Assert.Contains(mentions, run.Stderr, StringComparison.OrdinalIgnoreCase);
        before.AssertUnchanged(Repo);
    }

    [Fact]
    public async Task Remove_takes_named_ids_reclaims_their_packs_and_checks_clean()
    {
        List<string> ids = await RepositoryWithBackups(3);
        Run whatIf = await RunCli("remove", "--repository", Repo, "--backup-id", ids[0], "--what-if", "--json");
        Assert.Equal(0, whatIf.ExitCode);
        Assert.False(whatIf.Json.GetProperty("items")[0].GetProperty("removed").GetBoolean());
        Assert.Equal(3, (await ListedIds()).Length);

        Run removed = await RunCli("remove", "--repository", Repo, "--backup-id", ids[0], "--backup-id", ids[1], "--pack-grace-period", "0h", "--json");
        Assert.Equal(0, removed.ExitCode);
        Assert.Equal(2, removed.Json.GetProperty("items").EnumerateArray().Count(i => i.GetProperty("kind").GetString() == "objectBackup" && i.GetProperty("removed").GetBoolean()));
        Assert.True(removed.Json.GetProperty("items").EnumerateArray().Any(i => i.GetProperty("kind").GetString() == "pack"), "the packs only the removed backups used are reclaimed");
        Assert.Equal([ids[2]], await ListedIds());
        Assert.Equal(0, (await RunCli("check", "--repository", Repo, "--read-data")).ExitCode);

        Run missing = await RunCli("remove", "--repository", Repo, "--backup-id", ids[0]);
        Assert.Equal(3, missing.ExitCode);
        Assert.Contains(ids[0], missing.Stderr);
        Run local = await RunCli("remove", "--db-root", _obj.DbRoot, "--dir", ObjectFixture.Dir, "--backup-id", "x", "--pack-grace-period", "1h");
        Assert.Equal(2, local.ExitCode);
        Assert.Contains("--pack-grace-period", local.Stderr);
    }
}
