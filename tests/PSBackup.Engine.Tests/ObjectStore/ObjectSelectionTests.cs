using PSBackup.Cli;
using PSBackup.Engine.ObjectStore;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Tests.Support;

namespace PSBackup.Engine.Tests.ObjectStore;

/// <summary>-Dir/-Object wildcards: which folders are objects, and a run over several objects that
/// goes on past a failing one.</summary>
public sealed class ObjectSelectionTests
{
    private static readonly DateTimeOffset T1 = new(2026, 4, 18, 14, 30, 5, TimeSpan.Zero);

    private static OperationContext Context() => new() { Clock = new FixedClock(T1), ShouldProcess = (_, _) => true };

    /// <summary>Two tenant dirs with objects, plus everything under a root that is not an object.</summary>
    private static TestDirectory Root()
    {
        var root = new TestDirectory();
        ObjectFixture.Populate(root.Combine("acme", "orders"), seed: 1);
        ObjectFixture.Populate(root.Combine("acme", "customers"), seed: 2);
        ObjectFixture.Populate(root.Combine("globex", "inventory"), seed: 3);
        // A local backup sibling: its manifest beside it says it is one (one without is reported, issue 12).
        Directory.CreateDirectory(root.Combine("acme", "orders.backup-20260101T000000"));
        File.WriteAllText(root.Combine("acme", "orders.backup-20260101T000000.manifest.json"), "{}");
        Directory.CreateDirectory(root.Combine("acme", "orders.replaced-20260101T000000"));
        Directory.CreateDirectory(root.Combine("acme", "rebuild.tmp"));
        Directory.CreateDirectory(root.Combine("acme", ".hidden"));
        Directory.CreateSymbolicLink(root.Combine("acme", "alias"), root.Combine("acme", "orders"));
        File.WriteAllText(root.Combine("acme", "fields.conf"), "a file, not an object");
        return root;
    }

    [Theory]
    [InlineData("orders", "*", true)]
    [InlineData("orders", "ord*", true)]
    [InlineData("orders", "*ers", true)]
    [InlineData("orders", "o?ders", true)]
    [InlineData("orders", "*d*r*", true)]
    [InlineData("orders", "order", false)]
    [InlineData("orders", "?orders", false)]
    [InlineData("orders", "Orders", false)]
    [InlineData("", "*", true)]
    [InlineData("a", "a*", true)]
    public void Glob_matches_like_powershell_wildcards_and_is_case_sensitive(string name, string pattern, bool expected) =>
        Assert.Equal(expected, ObjectSelection.Matches(name, pattern));

    [Fact]
    public void Wildcards_select_only_real_objects_in_order()
    {
        using var root = Root();

        var all = ObjectSelection.Expand(root.Path, "*", "*");

        Assert.Equal(new[] { ("acme", "customers"), ("acme", "orders"), ("globex", "inventory") }, all);
        Assert.Equal(new[] { ("acme", "orders") }, ObjectSelection.Expand(root.Path, "a*", "o*"));
        Assert.Equal(new[] { ("globex", "inventory") }, ObjectSelection.Expand(root.Path, "*", "inv?ntory"));
    }

    [Fact]
    public void Exact_names_pass_through_unchecked_for_the_backup_to_judge()
    {
        using var root = Root();
        Assert.Equal(new[] { ("acme", "missing") }, ObjectSelection.Expand(root.Path, "acme", "missing"));
    }

    [Fact]
    public void A_pattern_that_matches_nothing_is_not_found_naming_the_patterns()
    {
        using var root = Root();
        var e = Assert.Throws<NotFoundException>(() => ObjectSelection.Expand(root.Path, "*", "zz*"));
        Assert.Equal("ObjectNotMatched", e.ErrorId);
        Assert.Contains("zz*", e.Message);
    }

    [Theory]
    [InlineData("../*")]
    [InlineData("*/..")]
    [InlineData("a*/b")]
    [InlineData("-*")]
    public void A_pattern_that_could_leave_its_folder_is_bad_input(string pattern)
    {
        using var root = Root();
        var e = Assert.Throws<InvalidInputException>(() => ObjectSelection.Expand(root.Path, pattern, "*"));
        Assert.Equal("InvalidPattern", e.ErrorId);
        Assert.Contains(pattern, e.Message);
    }

    [Fact]
    public async Task Backing_up_several_goes_on_past_a_failing_object_and_reports_it()
    {
        using var root = Root();
        using var outside = new TestDirectory();
        File.WriteAllText(outside.Combine("secret"), "not part of the object");
        File.CreateSymbolicLink(root.Combine("acme", "customers", "files", "link"), outside.Combine("secret"));

        var outcomes = new List<ObjectOutcome<ObjectBackupResult>>();
        await foreach (ObjectOutcome<ObjectBackupResult> o in ObjectOperations.BackupEachAsync(new NewObjectBackupOptions(root.Path, "*", "*"), Context()))
        {
            outcomes.Add(o);
        }

        Assert.Equal(new[] { "acme/customers", "acme/orders", "globex/inventory" }, outcomes.Select(o => $"{o.Dir}/{o.Object}"));
        Assert.IsType<InvalidInputException>(outcomes[0].Error);
        Assert.Null(outcomes[0].Result);
        Assert.False(Directory.Exists(root.Combine("acme", "customers.backup-20260418T143005")));
        foreach (ObjectOutcome<ObjectBackupResult> ok in outcomes.Skip(1))
        {
            Assert.Null(ok.Error);
            Assert.Equal(ObjectFixture.Snapshot(root.Combine(ok.Dir, ok.Object)), ObjectFixture.Snapshot(ok.Result!.BackupPath!));
        }
    }

    private static async Task<List<ObjectOutcome<T>>> All<T>(IAsyncEnumerable<ObjectOutcome<T>> outcomes) where T : class
    {
        var list = new List<ObjectOutcome<T>>();
        await foreach (ObjectOutcome<T> o in outcomes)
        {
            list.Add(o);
        }
        return list;
    }

    /// <summary>Files and their hashes (repository manifests list files; empty folders are not kept).</summary>
    private static Dictionary<string, string> Files(string path) =>
        ObjectFixture.Snapshot(path).Where(kv => kv.Value != "<dir>").ToDictionary();

    [Fact]
    public async Task Disaster_recovery_restores_the_newest_backup_of_every_object_the_repository_holds_into_an_empty_root()
    {
        using var root = Root();
        using var store = new TestDirectory();
        var target = new RepositoryTarget { Location = store.Combine("repo") };
        await RepositoryOperations.InitializeAsync(new InitializeRepositoryOptions(target) { Unencrypted = true }, OperationContext.Default);
        var expected = new Dictionary<string, Dictionary<string, string>>
        {
            ["acme/customers"] = Files(root.Combine("acme", "customers")),
            ["acme/orders"] = Files(root.Combine("acme", "orders")),
            ["globex/inventory"] = Files(root.Combine("globex", "inventory")),
        };
        var backups = await All(ObjectOperations.BackupEachAsync(new NewObjectBackupOptions(root.Path, "*", "*") { Repository = target }, Context()));
        Assert.All(backups, b => Assert.NotNull(b.Result?.BackupId));
        using var lost = new TestDirectory(); // the machine is gone: restore into an empty root

        var restored = await All(ObjectOperations.RestoreEachAsync(new RestoreObjectBackupOptions(lost.Path, "*", "*", null) { Repository = target }, Context()));

        Assert.Equal(expected.Keys, restored.Select(r => $"{r.Dir}/{r.Object}"));
        foreach (ObjectOutcome<ObjectRestoreResult> r in restored)
        {
            Assert.Null(r.Error);
            Assert.Equal(backups.Single(b => b.Dir == r.Dir && b.Object == r.Object).Result!.BackupId, r.Result!.BackupId);
            Assert.Equal(expected[$"{r.Dir}/{r.Object}"], Files(lost.Combine(r.Dir, r.Object)));
        }
        Assert.Equal(new[] { ("globex", "inventory") },
            await ObjectSelection.ExpandBackedUpAsync(target, "g*", "*", CancellationToken.None));
    }

    [Fact]
    public async Task A_repository_that_cannot_be_opened_is_one_setup_failure_that_ends_the_run_and_writes_nothing()
    {
        using var root = Root();
        using var store = new TestDirectory();
        var right = new RepositoryTarget { Location = store.Combine("repo"), Passphrase = "right passphrase" };
        await RepositoryOperations.InitializeAsync(new InitializeRepositoryOptions(right), OperationContext.Default);
        var repoState = TreeState.Capture(store.Path);

        var outcomes = await All(ObjectOperations.BackupEachAsync(
            new NewObjectBackupOptions(root.Path, "*", "*") { Repository = right with { Passphrase = "wrong passphrase" } }, Context()));

        // The wrong key is the call's failure, not each object's: reported once, and the run ends.
        var only = Assert.Single(outcomes);
        Assert.Null(only.Result);
        Assert.NotNull(only.Error);
        Assert.Equal("WrongRepositoryKey", only.Error!.ErrorId);
        Assert.True(only.Error.IsSetupFailure);
        Assert.DoesNotContain("wrong passphrase", only.Error.Message);
        repoState.AssertUnchanged(store.Path);
    }

    [Theory]
    [InlineData(false, null, null)]
    [InlineData(true, "latest", null)]
    [InlineData(true, null, "0000000000000000000000000000000000000000000000000000000000000000")]
    public async Task Wildcard_restores_need_a_repository_and_no_named_backup(bool repository, string? from, string? backupId)
    {
        using var root = Root();
        using var store = new TestDirectory();
        var options = new RestoreObjectBackupOptions(root.Path, "acme", "*", from)
        {
            Repository = repository ? new RepositoryTarget { Location = store.Path } : null,
            BackupId = backupId,
        };
        var state = TreeState.Capture(root.Path);

        var e = await Assert.ThrowsAsync<InvalidInputException>(() => All(ObjectOperations.RestoreEachAsync(options, Context())));

        Assert.Equal("WildcardNeedsRepository", e.ErrorId);
        state.AssertUnchanged(root.Path);
    }

    [Fact]
    public async Task Cli_backs_up_every_selected_object_in_one_call_and_fails_with_the_first_error_kind()
    {
        using var root = Root();
        var stdout = new StringWriter();
        var stderr = new StringWriter();

        int ok = await TestCli.RunAsync(["object", "backup", "--db-root", root.Path, "--dir", "*", "--object", "*", "--json"], stdout, stderr, CancellationToken.None);

        Assert.Equal(ExitCodes.Success, ok);
        var results = System.Text.Json.JsonDocument.Parse(stdout.ToString()).RootElement;
        Assert.Equal(3, results.GetArrayLength());
        Assert.All(results.EnumerateArray(), r => Assert.True(Directory.Exists(r.GetProperty("backupPath").GetString())));

        foreach (var r in results.EnumerateArray())
        {
            // Backup names have one-second resolution: clear the first run's so the second cannot collide.
            string path = r.GetProperty("backupPath").GetString()!;
            Directory.Delete(path, recursive: true);
            File.Delete(path + ObjectLayout.ManifestSuffix);
        }
        File.CreateSymbolicLink(root.Combine("globex", "inventory", "data", "999.bin"), root.Combine("acme", "fields.conf"));
        stdout = new StringWriter();
        stderr = new StringWriter();

        int failed = await TestCli.RunAsync(["object", "backup", "--db-root", root.Path, "--dir", "*", "--object", "*"], stdout, stderr, CancellationToken.None);

        Assert.Equal(ExitCodes.InvalidArgument, failed);
        Assert.Contains("customers", stdout.ToString());
        Assert.Contains("orders", stdout.ToString());
        string[] lines = stderr.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.StartsWith("psbackup: globex/inventory: ", lines[0]);
        Assert.Contains("1 of 3", lines[1]);
    }
}
