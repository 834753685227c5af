using System.Text.Json;
using PSBackup.Cli;
using PSBackup.Engine.Tests.ObjectStore;
using PSBackup.Engine.Tests.Snapshots;
using PSBackup.Engine.Tests.Storage;
using PSBackup.Engine.Tests.Support;
using static PSBackup.Engine.Tests.Wal.WalTestData;

namespace PSBackup.Engine.Tests.Cli;

/// <summary>The CLI's repository side: repo init and --repository on object backup, snapshot
/// create and wal ship. Exit codes, --json shapes, and secrets kept out of messages.</summary>
public sealed class CliRepositoryTests : IDisposable
{
    private readonly TestDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

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

    private static void AssertFails(Run run, int exitCode, string mentions)
    {
        Assert.Equal(exitCode, run.ExitCode);
        Assert.Equal("", run.Stdout);
        Assert.StartsWith("psbackup: ", run.Stderr);
        Assert.Single(run.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains(mentions, run.Stderr, StringComparison.OrdinalIgnoreCase);
    }

    private string Repo => _dir.Combine("repo");

    [Fact]
    public async Task Repo_init_creates_the_folder_reports_json_and_refuses_a_second_init_with_exit_5()
    {
        Run run = await RunCli("repo", "init", "--repository", Repo, "--unencrypted", "--json");

        Assert.Equal(0, run.ExitCode);
        Assert.Equal(Repo, run.Json.GetProperty("repository").GetString());
        Assert.Matches("^[0-9a-f]{64}$", run.Json.GetProperty("repositoryId").GetString());
        Assert.False(run.Json.GetProperty("encrypted").GetBoolean());
        Assert.True(run.Json.TryGetProperty("createdAt", out _));
        TreeState before = TreeState.Capture(Repo);

        AssertFails(await RunCli("repo", "init", "--repository", Repo, "--unencrypted"), 5, "already exists");
        before.AssertUnchanged(Repo);
    }

    [Fact]
    public async Task Repo_init_without_a_key_or_unencrypted_is_bad_input_and_creates_nothing()
    {
        AssertFails(await RunCli("repo", "init", "--repository", Repo), 2, "--unencrypted");
        AssertFails(await RunCli("repo", "init", "--repository", Repo, "--unencrypted", "--passphrase", "a passphrase"), 2, "Drop --unencrypted");
        Assert.False(Directory.Exists(Repo));
    }

    [Fact]
    public async Task Repo_init_what_if_creates_nothing()
    {
        Run run = await RunCli("repo", "init", "--repository", Repo, "--unencrypted", "--what-if");
        Assert.Equal(0, run.ExitCode);
        Assert.Contains("What if: Create repository", run.Stdout);
        Assert.False(Directory.Exists(Repo));
    }

    [Fact]
    public async Task Repo_init_with_s3_options_on_a_folder_is_bad_input()
    {
        AssertFails(await RunCli("repo", "init", "--repository", Repo, "--unencrypted", "--endpoint", "http://127.0.0.1:9"), 2, "s3://");
        Assert.False(Directory.Exists(Repo));
    }

    [Fact]
    public async Task Object_backup_to_a_repository_prints_the_backup_id_and_json()
    {
        Assert.Equal(0, (await RunCli("repo", "init", "--repository", Repo, "--unencrypted")).ExitCode);
        using var obj = new ObjectFixture();

        Run table = await RunCli("object", "backup", "--db-root", obj.DbRoot, "--dir", ObjectFixture.Dir, "--object", ObjectFixture.Object, "--repository", Repo);
        Run json = await RunCli("object", "backup", "--db-root", obj.DbRoot, "--dir", ObjectFixture.Dir, "--object", ObjectFixture.Object, "--repository", Repo, "--json");

        Assert.Equal(0, table.ExitCode);
        Assert.Contains("BackupId", table.Stdout);
        Assert.Contains("Stable", table.Stdout);
        Assert.Equal(0, json.ExitCode);
        Assert.Equal(Repo, json.Json.GetProperty("repository").GetString());
        Assert.Matches("^[0-9a-f]{64}$", json.Json.GetProperty("backupId").GetString());
        Assert.Equal(JsonValueKind.Null, json.Json.GetProperty("backupPath").ValueKind);
        Assert.True(json.Json.GetProperty("storedBytes").GetInt64() > 0);
    }

    [Fact]
    public async Task Object_restore_from_a_repository_restores_byte_exact_and_refuses_bad_combinations()
    {
        Assert.Equal(0, (await RunCli("repo", "init", "--repository", Repo, "--unencrypted")).ExitCode);
        using var obj = new ObjectFixture();
        Run backup = await RunCli("object", "backup", "--db-root", obj.DbRoot, "--dir", ObjectFixture.Dir, "--object", ObjectFixture.Object, "--repository", Repo, "--json");
        string id = backup.Json.GetProperty("backupId").GetString()!;
        var backedUp = ObjectFixture.Snapshot(obj.ObjectPath).Where(kv => kv.Value != "<dir>").ToDictionary();
        ObjectFixture.Populate(obj.ObjectPath, seed: 5);
        string[] target = ["object", "restore", "--db-root", obj.DbRoot, "--dir", ObjectFixture.Dir, "--object", ObjectFixture.Object];
        TreeState before = TreeState.Capture(obj.DbRoot);

        Run whatIf = await RunCli([.. target, "--repository", Repo, "--force", "--what-if"]);
        Assert.Equal((0, ""), (whatIf.ExitCode, whatIf.Stderr));
        Assert.Contains("Replace with backup", whatIf.Stdout);
        AssertFails(await RunCli([.. target, "--repository", Repo]), 5, "--force");
        AssertFails(await RunCli([.. target, "--repository", Repo, "--from", "latest", "--force"]), 2, "--backup-id");
        AssertFails(await RunCli([.. target, "--backup-id", id, "--force"]), 2, "--repository");
        AssertFails(await RunCli([.. target, "--force"]), 2, "--from");
        AssertFails(await RunCli("object", "restore", "--db-root", obj.DbRoot, "--dir", ObjectFixture.Dir, "--object", "orders", "--repository", Repo, "--backup-id", id, "--force"), 2, "not of 'tenant1/orders'");
        before.AssertUnchanged(obj.DbRoot);

        Run restored = await RunCli([.. target, "--repository", Repo, "--backup-id", id, "--force", "--json"]);

        Assert.Equal((0, ""), (restored.ExitCode, restored.Stderr));
        Assert.Equal((id, Repo), (restored.Json.GetProperty("backupId").GetString(), restored.Json.GetProperty("repository").GetString()));
        Assert.Equal(backedUp, ObjectFixture.Snapshot(obj.ObjectPath).Where(kv => kv.Value != "<dir>").ToDictionary());
    }

    [Fact]
    public async Task Wal_ship_to_a_repository_keeps_the_seed_json_shape_and_a_rerun_ships_nothing()
    {
        Assert.Equal(0, (await RunCli("repo", "init", "--repository", Repo, "--unencrypted")).ExitCode);
        string data = _dir.Combine("data");
        CreateNamespace(data, "users", (4, true), (3, true), (2, false));

        Run first = await RunCli("wal", "ship", "--data-dir", data, "--namespace", "users", "--repository", Repo, "--json");
        Run second = await RunCli("wal", "ship", "--data-dir", data, "--namespace", "users", "--repository", Repo, "--json");

        Assert.Equal(0, first.ExitCode);
        JsonElement[] backups = first.Json.GetProperty("backups").EnumerateArray().ToArray();
        Assert.Equal([1L, 2L], backups.Select(b => b.GetProperty("segmentId").GetInt64()));
        Assert.Equal(["wal/users/000000001", "wal/users/000000002"], backups.Select(b => b.GetProperty("path").GetString()));
        Assert.All(backups, b => Assert.False(b.GetProperty("alreadyPresent").GetBoolean()));
        Assert.Equal(2, first.Json.GetProperty("backups")[1].GetProperty("segmentId").GetInt64()); // jq '.backups[-1].segmentId'
        Assert.All(second.Json.GetProperty("backups").EnumerateArray(), b => Assert.True(b.GetProperty("alreadyPresent").GetBoolean()));
    }

    [Fact]
    public async Task Wal_ship_gap_is_exit_4_naming_the_missing_ids()
    {
        Assert.Equal(0, (await RunCli("repo", "init", "--repository", Repo, "--unencrypted")).ExitCode);
        string data = _dir.Combine("data");
        string wal = CreateNamespace(data, "users", (4, true), (3, true), (5, true), (2, true), (1, false));
        foreach (int id in new[] { 2, 3, 4, 5 })
        {
            File.Move(Path.Combine(wal, $"00000000{id}.wal"), _dir.Combine($"{id}.wal"));
        }
        Assert.Equal(0, (await RunCli("wal", "ship", "--data-dir", data, "--namespace", "users", "--repository", Repo)).ExitCode);
        File.Move(_dir.Combine("4.wal"), Path.Combine(wal, "000000004.wal"));
        File.Move(_dir.Combine("5.wal"), Path.Combine(wal, "000000005.wal"));
        File.Delete(Path.Combine(wal, "000000001.wal"));

        Run run = await RunCli("wal", "ship", "--data-dir", data, "--namespace", "users", "--repository", Repo);

        AssertFails(run, 4, "2, 3");
        Assert.Single(History.OtherEventFiles(Path.Combine(Repo, "events", "users")));
    }

    [Fact]
    public async Task Snapshot_to_a_repository_json_has_path_bytes_and_the_backup_id()
    {
        Assert.Equal(0, (await RunCli("repo", "init", "--repository", Repo, "--unencrypted")).ExitCode);
        string data = _dir.Combine("data");
        SnapshotTestSupport.CreateSqliteNamespace(data, "ns1", keys: 50);

        Run run = await RunCli("snapshot", "create", "--data-dir", data, "--namespace", "ns1", "--repository", Repo, "--json");

        Assert.Equal(0, run.ExitCode);
        Assert.StartsWith("snapshot/ns1/", run.Json.GetProperty("path").GetString());
        Assert.True(run.Json.GetProperty("bytes").GetInt64() > 0);
        Assert.Matches("^[0-9a-f]{64}$", run.Json.GetProperty("backupId").GetString());
        Assert.Equal(50, run.Json.GetProperty("walPosition").GetProperty("appliedLogIndex").GetInt64());
    }

    [Fact]
    public async Task A_wrong_passphrase_is_exit_2_and_never_echoed()
    {
        Assert.Equal(0, (await RunCli("repo", "init", "--repository", Repo, "--passphrase", "right-passphrase-1")).ExitCode);
        using var obj = new ObjectFixture();
        TreeState before = TreeState.Capture(Repo);

        Run wrong = await RunCli("object", "backup", "--db-root", obj.DbRoot, "--dir", ObjectFixture.Dir, "--object", ObjectFixture.Object, "--repository", Repo, "--passphrase", "wrong-passphrase-2");
        Run none = await RunCli("object", "backup", "--db-root", obj.DbRoot, "--dir", ObjectFixture.Dir, "--object", ObjectFixture.Object, "--repository", Repo);

        AssertFails(wrong, 2, "passphrase");
        Assert.DoesNotContain("wrong-passphrase-2", wrong.Stderr);
        Assert.DoesNotContain("right-passphrase-1", wrong.Stderr);
        AssertFails(none, 2, "--passphrase");
        before.AssertUnchanged(Repo);
    }

    [Theory]
    [InlineData("snapshot", "create", "--data-dir", "D", "--namespace", "ns1")]
    [InlineData("snapshot", "create", "--data-dir", "D", "--namespace", "ns1", "--path", "s", "--repository", "R")]
    [InlineData("wal", "ship", "--data-dir", "D", "--namespace", "users", "--backup-dir", "b", "--repository", "R")]
    [InlineData("wal", "ship", "--data-dir", "D", "--namespace", "users", "--backup-dir", "b", "--passphrase", "p")]
    [InlineData("object", "backup", "--db-root", "D", "--dir", "a", "--object", "b", "--endpoint", "http://127.0.0.1:9")]
    [InlineData("object", "backup", "--db-root", "D", "--dir", "a", "--object", "b", "--repository", "")]
    public async Task Local_and_repository_options_that_do_not_fit_together_are_bad_input(params string[] args)
    {
        string data = _dir.Combine("data");
        Directory.CreateDirectory(data);
        string[] resolved = args.Select(a => a == "D" ? data : a == "R" ? Repo : a).ToArray();

        Run run = await RunCli(resolved);

        Assert.Equal(2, run.ExitCode);
        Assert.Equal("", run.Stdout);
        Assert.False(Directory.Exists(Repo));
        Assert.False(Directory.Exists(Path.Combine(data, "backups")));
    }
}

/// <summary>The same CLI against the real S3 server, with the endpoint and keys as options.</summary>
[Collection(S3ServerCollection.Name)]
public sealed class CliS3RepositoryTests(S3ServerFixture s3) : IDisposable
{
    private readonly TestDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Init_backup_and_ship_to_s3_through_the_cli()
    {
        string bucket = await s3.CreateBucketAsync("cli");
        string repo = $"s3://{bucket}/psbackup";
        string[] s3Options = ["--endpoint", s3.Endpoint, "--access-key", S3ServerFixture.AccessKey, "--secret-key", S3ServerFixture.SecretKey];
        async Task<(int Code, string Out, string Err)> Cli(params string[] args)
        {
            var o = new StringWriter();
            var e = new StringWriter();
            int code = await TestCli.RunAsync([.. args, .. s3Options], o, e);
            return (code, o.ToString(), e.ToString());
        }
        using var obj = new ObjectFixture();
        string data = _dir.Combine("data");
        CreateNamespace(data, "users", (4, true), (2, false));

        var init = await Cli("repo", "init", "--repository", repo, "--unencrypted", "--json");
        var again = await Cli("repo", "init", "--repository", repo, "--unencrypted");
        var backup = await Cli("object", "backup", "--db-root", obj.DbRoot, "--dir", ObjectFixture.Dir, "--object", ObjectFixture.Object, "--repository", repo, "--json");
        // On wal ship (and snapshot create) --endpoint is UnisonDB's HTTP API; S3's is --s3-endpoint.
        var o2 = new StringWriter();
        var e2 = new StringWriter();
        int shipCode = await TestCli.RunAsync(["wal", "ship", "--data-dir", data, "--namespace", "users", "--repository", repo, "--json",
            "--s3-endpoint", s3.Endpoint, "--access-key", S3ServerFixture.AccessKey, "--secret-key", S3ServerFixture.SecretKey], o2, e2);
        var ship = (Code: shipCode, Out: o2.ToString(), Err: e2.ToString());

        Assert.Equal((0, ""), (init.Code, init.Err));
        Assert.Equal(repo, JsonDocument.Parse(init.Out).RootElement.GetProperty("repository").GetString());
        Assert.Equal(5, again.Code);
        Assert.Equal((0, ""), (backup.Code, backup.Err));
        Assert.Equal((0, ""), (ship.Code, ship.Err));
        Assert.Equal("wal/users/000000001", JsonDocument.Parse(ship.Out).RootElement.GetProperty("backups")[0].GetProperty("path").GetString());
        Assert.DoesNotContain(S3ServerFixture.SecretKey + "x", backup.Out);

        var expected = ObjectFixture.Snapshot(obj.ObjectPath).Where(kv => kv.Value != "<dir>").ToDictionary();
        ObjectFixture.Populate(obj.ObjectPath, seed: 4);
        var restore = await Cli("object", "restore", "--db-root", obj.DbRoot, "--dir", ObjectFixture.Dir, "--object", ObjectFixture.Object, "--repository", repo, "--force", "--json");
        Assert.Equal((0, ""), (restore.Code, restore.Err));
        Assert.Equal(JsonDocument.Parse(backup.Out).RootElement.GetProperty("backupId").GetString(), JsonDocument.Parse(restore.Out).RootElement.GetProperty("backupId").GetString());
        Assert.Equal(expected, ObjectFixture.Snapshot(obj.ObjectPath).Where(kv => kv.Value != "<dir>").ToDictionary());
    }
}
