using Amazon.S3.Model;
using PSBackup.Cli;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Storage;
using PSBackup.Engine.Tests.Maintenance;
using PSBackup.Engine.Tests.ObjectStore;
using PSBackup.Engine.Tests.Storage;
using PSBackup.Engine.Tests.Support;

namespace PSBackup.Engine.Tests.Cli;

/// <summary>Only <c>repo init</c> creates a repository. Every other command run against a
/// repository that is not there (a missing folder, an empty folder, an empty S3 prefix, a missing
/// Azure container or an empty prefix in one) fails with its not-found error and exit 3, in one
/// message, and leaves nothing behind: no folder, no object, no container, and no restore target.
/// The follower (<c>wal ship --follow</c>) ends the same way instead of retrying for ever.</summary>
[Collection(ObjectStoresCollection.Name)]
[Trait("Category", "Integration")]
public sealed class CliMissingRepositoryTests(S3ServerFixture s3, AzuriteFixture azurite) : IDisposable
{
    private readonly TestDirectory _dir = new();
    private readonly ObjectFixture _db = new();

    public void Dispose()
    {
        _db.Dispose();
        _dir.Dispose();
    }

    /// <summary>A repository location that is not one, the options that reach it (storage options
    /// for commands where --endpoint is S3's, and for wal ship / snapshot create where it is
    /// UnisonDB's), what the message must say, and how to tell that nothing was left there.</summary>
    private sealed record Missing(string Location, string[] Options, string[] LiveDataOptions, string Says, Func<Task<string?>> Leftover);

    private async Task<Missing> MissingAsync(string store)
    {
        switch (store)
        {
            case "folder":
            {
                string path = _dir.Combine("no-such-repo");
                return new Missing(path, [], [], "does not exist", () => Task.FromResult(Path.Exists(path) ? $"{path} was created" : null));
            }
            case "empty-folder":
            {
                string path = _dir.Combine("empty");
                Directory.CreateDirectory(path);
                return new Missing(path, [], [], "no repository",
                    () => Task.FromResult(Directory.EnumerateFileSystemEntries(path).FirstOrDefault() is { } e ? $"{e} was written" : null));
            }
            case "s3":
            {
                string bucket = await s3.CreateBucketAsync("missing");
                string[] keys = ["--access-key", S3ServerFixture.AccessKey, "--secret-key", S3ServerFixture.SecretKey];
                return new Missing($"s3://{bucket}/repo", ["--endpoint", s3.Endpoint, .. keys], ["--s3-endpoint", s3.Endpoint, .. keys], "no repository", async () =>
                {
                    ListObjectsV2Response listed = await s3.CreateClient().ListObjectsV2Async(new ListObjectsV2Request { BucketName = bucket });
                    return listed.S3Objects is { Count: > 0 } objects ? $"{objects[0].Key} was written" : null;
                });
            }
            case "azure-container":
            {
                string container = azurite.NewContainerName("missing");
                string[] options = ["--connection-string", azurite.ConnectionString];
                return new Missing(azurite.LocationOf(container, "repo"), options, options, $"container '{container}' does not exist", async () =>
                    (await azurite.CreateClient().GetBlobContainerClient(container).ExistsAsync()).Value ? $"container {container} was created" : null);
            }
            case "azure-prefix":
            {
                string container = await azurite.CreateContainerAsync("empty");
                string[] options = ["--connection-string", azurite.ConnectionString];
                return new Missing(azurite.LocationOf(container, "repo"), options, options, "no repository", async () =>
                {
                    await foreach (var blob in azurite.CreateClient().GetBlobContainerClient(container).GetBlobsAsync())
                    {
                        return $"{blob.Name} was written";
                    }
                    return null;
                });
            }
            default:
                throw new ArgumentOutOfRangeException(nameof(store), store, null);
        }
    }

    public static TheoryData<string> Stores => new() { "folder", "empty-folder", "s3", "azure-container", "azure-prefix" };

    [Theory]
    [MemberData(nameof(Stores))]
    public async Task Every_command_but_init_fails_with_not_found_and_creates_nothing(string store)
    {
        Missing missing = await MissingAsync(store);
        string data = _dir.Combine("data");
        UnisonOracle.CopyFixture("v1-store-bolt", data);
        string restoreRoot = _dir.Combine("restore-root");
        Directory.CreateDirectory(restoreRoot);
        string target = _dir.Combine("target"); // restores must not create it either
        string[] repo = ["--repository", missing.Location];
        List<string[]> commands =
        [
            ["list", .. repo, .. missing.Options],
            ["health", .. repo, .. missing.Options],
            ["metrics", .. repo, .. missing.Options],
            ["check", .. repo, .. missing.Options],
            ["check", "--read-data", .. repo, .. missing.Options],
            ["object", "backup", "--db-root", _db.DbRoot, "--dir", ObjectFixture.Dir, "--object", ObjectFixture.Object, .. repo, .. missing.Options],
            ["object", "backup", "--db-root", _db.DbRoot, "--dir", "*", "--object", "*", .. repo, .. missing.Options],
            ["object", "restore", "--db-root", restoreRoot, "--dir", ObjectFixture.Dir, "--object", ObjectFixture.Object, .. repo, .. missing.Options],
            ["object", "restore", "--db-root", restoreRoot, "--dir", "*", "--object", "*", .. repo, .. missing.Options],
            ["wal", "ship", "--data-dir", data, "--namespace", "users", .. repo, .. missing.LiveDataOptions],
            ["wal", "ship", "--data-dir", data, "--namespace", "users", "--follow", "--interval", "100ms", .. repo, .. missing.LiveDataOptions],
            ["snapshot", "create", "--data-dir", data, "--namespace", "users", .. repo, .. missing.LiveDataOptions],
            ["snapshot", "restore", "--data-dir", target, "--namespace", "users", .. repo, .. missing.Options],
            ["pitr", "--data-dir", target, "--namespace", "users", "--target-log-index", "500", .. repo, .. missing.Options],
            ["test-restore", "--namespace", "users", "--scratch-path", restoreRoot, .. repo, .. missing.Options],
            ["prune", "--keep-last", "1", "--force", .. repo, .. missing.Options],
            ["remove", "--backup-id", new string('0', 64), "--force", .. repo, .. missing.Options],
            ["repair", .. repo, .. missing.Options],
        ];
        if (store != "empty-folder")
        {
            // An existing folder without a config is synced as a plain backup root; anything else is no source.
            commands.Add(["sync", "--source", missing.Location, "--destination", target, .. missing.Options]);
        }
        var failures = new List<string>();
        foreach (string[] args in commands)
        {
            var stdout = new StringWriter();
            var stderr = new StringWriter();
            using var deadline = new CancellationTokenSource();
            Task<int> run = TestCli.RunAsync(args, stdout, stderr, deadline.Token);
            if (await Task.WhenAny(run, Task.Delay(TimeSpan.FromMinutes(2))) != run)
            {
                await deadline.CancelAsync();
                await run;
                failures.Add($"{string.Join(' ', args.Take(3))}: still running after 2 minutes (it should end at once)");
                continue;
            }
            int code = await run;
            string[] lines = stderr.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
            string command = string.Join(' ', args.TakeWhile(a => !a.StartsWith("--", StringComparison.Ordinal)));
            if (code != ExitCodes.NotFound || lines.Length != 1 || !lines[0].Contains(missing.Says, StringComparison.Ordinal))
            {
                failures.Add($"{command}: exit {code}, stderr: {stderr}");
            }
            if (await missing.Leftover() is { } left)
            {
                failures.Add($"{command}: {left}");
            }
            if (Path.Exists(target) || Directory.EnumerateFileSystemEntries(restoreRoot).Any())
            {
                failures.Add($"{command}: wrote a restore target");
            }
        }
        Assert.True(failures.Count == 0, string.Join(Environment.NewLine, failures));
    }

    [Fact]
    public async Task Only_init_creates_it()
    {
        Missing missing = await MissingAsync("folder");
        var stderr = new StringWriter();
        Assert.Equal(0, await TestCli.RunAsync(["repo", "init", "--repository", missing.Location, "--unencrypted"], new StringWriter(), stderr));
        Assert.NotNull(await missing.Leftover());
        using var backend = new LocalBackend(missing.Location);
        Assert.NotNull(await backend.StatAsync(RepositoryLayout.ConfigKey, CancellationToken.None));
    }
}
