using System.Text.Json;
using PSBackup.Cli;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Storage;
using PSBackup.Engine.Tests.Storage;
using PSBackup.Engine.Tests.Support;

namespace PSBackup.Engine.Tests.Maintenance;

/// <summary>Test classes that need both object stores at once.</summary>
[CollectionDefinition(Name)]
public sealed class ObjectStoresCollection : ICollectionFixture<S3ServerFixture>, ICollectionFixture<AzuriteFixture>
{
    public const string Name = "S3 server and Azurite";
}

/// <summary>Sync-BackupRepository between every pair of folder, S3 (s3rver) and Azure Blob
/// (Azurite), each side with its own credentials: folder → Azure → S3 → folder, each copy checked
/// with every byte read, and the last equal to the first object for object.</summary>
[Collection(ObjectStoresCollection.Name)]
[Trait("Category", "Integration")]
public sealed class SyncAcrossStoresTests(S3ServerFixture s3, AzuriteFixture azurite) : IDisposable
{
    private readonly TestDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private RepositoryTarget S3(string bucket) => new()
    {
        Location = $"s3://{bucket}/offsite", Endpoint = s3.Endpoint, StorageCredential = new StorageCredential(S3ServerFixture.AccessKey, S3ServerFixture.SecretKey),
    };

    private RepositoryTarget Azure(string container) => new()
    {
        Location = azurite.LocationOf(container, "offsite"), ConnectionString = azurite.ConnectionString,
    };

    private static async Task CheckAsync(RepositoryTarget target)
    {
        RepositoryCheckResult check = await RepositoryCheckOperation.CheckAsync(new TestBackupRepositoryOptions(target) { ReadData = true }, OperationContext.Default);
        Assert.True(check.Passed, $"{target}: {string.Join("; ", check.Errors.Select(p => p.ToString()))}");
        Assert.Equal(3, check.Backups);
    }

    [Fact]
    public async Task Folder_to_Azure_to_S3_to_folder_keeps_every_object_and_each_copy_checks_clean()
    {
        string src = _dir.Combine("repo");
        Directory.CreateDirectory(src);
        using (var b = new LocalBackend(src))
        {
            await MaintenanceTestSupport.PopulateAsync(b);
        }
        RepositoryTarget azure = Azure(await azurite.CreateContainerAsync("sync"));
        RepositoryTarget s3Target = S3(await s3.CreateBucketAsync("sync"));
        var back = new RepositoryTarget { Location = _dir.Combine("back") };

        SyncResult toAzure = await RepositorySync.SyncAsync(new SyncBackupRepositoryOptions(new RepositoryTarget { Location = src }, azure), OperationContext.Default);
        await CheckAsync(azure);
        SyncResult toS3 = await RepositorySync.SyncAsync(new SyncBackupRepositoryOptions(azure, s3Target), OperationContext.Default);
        await CheckAsync(s3Target);
        SyncResult toFolder = await RepositorySync.SyncAsync(new SyncBackupRepositoryOptions(s3Target, back), OperationContext.Default);
        SyncResult again = await RepositorySync.SyncAsync(new SyncBackupRepositoryOptions(azure, s3Target), OperationContext.Default);

        Assert.True(toAzure.Copied > 5);
        Assert.Equal(toAzure.Copied, toS3.Copied);
        Assert.Equal(toAzure.Copied, toFolder.Copied);
        Assert.Equal((0, toAzure.Copied), (again.Copied, again.Skipped));
        Assert.Equal(azure.ToString(), toAzure.Destination);
        using var s = new LocalBackend(src);
        using var d = new LocalBackend(back.Location);
        Assert.Equal(await MaintenanceTestSupport.ListingAsync(s), await MaintenanceTestSupport.ListingAsync(d));
    }

    [Fact]
    public async Task The_CLI_syncs_S3_to_Azure_with_each_sides_own_credentials()
    {
        string bucket = await s3.CreateBucketAsync("clisync");
        using (var b = new S3Backend(s3.OptionsFor(bucket, "offsite")))
        {
            await MaintenanceTestSupport.PopulateAsync(b);
        }
        string container = await azurite.CreateContainerAsync("clisync");
        var stdout = new StringWriter();
        var stderr = new StringWriter();

        int code = await TestCli.RunAsync(
        [
            "sync", "--source", $"s3://{bucket}/offsite", "--endpoint", s3.Endpoint, "--storage-credential", $"{S3ServerFixture.AccessKey}:{S3ServerFixture.SecretKey}",
            "--destination", azurite.LocationOf(container, "copy"), "--destination-storage-credential", $"{AzuriteFixture.Account}:{AzuriteFixture.AccountKey}", "--json",
        ], stdout, stderr, CancellationToken.None);

        Assert.True(code == 0, stderr.ToString());
        JsonElement result = JsonDocument.Parse(stdout.ToString()).RootElement;
        Assert.True(result.GetProperty("copied").GetInt32() > 5);
        await CheckAsync(new RepositoryTarget { Location = azurite.LocationOf(container, "copy"), ConnectionString = azurite.ConnectionString });
        Assert.DoesNotContain(AzuriteFixture.AccountKey, stdout.ToString() + stderr.ToString());
    }

    [Fact]
    public async Task Options_of_the_wrong_store_are_refused_naming_the_option()
    {
        string container = await azurite.CreateContainerAsync("wrongopt");
        var e = Assert.Throws<InvalidInputException>(() => RepositoryConnector.OpenBackend(Azure(container) with { Region = "eu-west-1" }));
        Assert.Contains("-Region", e.Message);
        var f = Assert.Throws<InvalidInputException>(() => RepositoryConnector.OpenBackend(new RepositoryTarget { Location = "s3://bucket/p", SasToken = "sig=x" }));
        Assert.Contains("-SasToken", f.Message);
        Assert.DoesNotContain("sig=x", f.Message);
        var g = Assert.Throws<InvalidInputException>(() => RepositoryConnector.OpenBackend(new RepositoryTarget { Location = _dir.Path, ConnectionString = "x" }));
        Assert.Contains("-ConnectionString", g.Message);
    }
}
