using PSBackup.Engine.Repository;
using PSBackup.Engine.Storage;
using PSBackup.Engine.Tests.Storage;
using PSBackup.Engine.Tests.Support;

namespace PSBackup.Engine.Tests.Maintenance;

/// <summary>Offsite replication to the real S3 server: local → S3, S3 → local, and a plain backup root → S3.</summary>
[Collection(S3ServerCollection.Name)]
[Trait("Category", "Integration")]
public sealed class SyncS3Tests(S3ServerFixture s3) : IDisposable
{
    private readonly TestDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private RepositoryTarget S3(string bucket, string prefix) => new()
    {
        Location = $"s3://{bucket}/{prefix}", Endpoint = s3.Endpoint, AccessKey = S3ServerFixture.AccessKey, SecretKey = S3ServerFixture.SecretKey,
    };

    [Fact]
    public async Task A_local_repository_syncs_to_S3_and_back_and_checks_clean_on_both()
    {
        string src = _dir.Combine("repo");
        Directory.CreateDirectory(src);
        using (var b = new LocalBackend(src))
        {
            await MaintenanceTestSupport.PopulateAsync(b);
        }
        string bucket = await s3.CreateBucketAsync("sync");
        // The S3 options describe the S3 side; the folder side ignores them.
        RepositoryTarget local = new() { Location = src, Endpoint = s3.Endpoint, AccessKey = S3ServerFixture.AccessKey, SecretKey = S3ServerFixture.SecretKey };
        SyncResult up = await RepositorySync.SyncAsync(new SyncBackupRepositoryOptions(local, S3(bucket, "offsite")), OperationContext.Default);
        Assert.True(up.Copied > 5);
        RepositoryCheckResult check = await RepositoryCheckOperation.CheckAsync(new TestBackupRepositoryOptions(S3(bucket, "offsite")) { ReadData = true }, OperationContext.Default);
        Assert.True(check.Passed);
        Assert.Equal(3, check.Backups);
        SyncResult again = await RepositorySync.SyncAsync(new SyncBackupRepositoryOptions(local, S3(bucket, "offsite")), OperationContext.Default);
        Assert.Equal((0, up.Copied), (again.Copied, again.Skipped));

        string back = _dir.Combine("back");
        SyncResult down = await RepositorySync.SyncAsync(new SyncBackupRepositoryOptions(S3(bucket, "offsite"), new RepositoryTarget { Location = back }), OperationContext.Default);
        Assert.Equal(up.Copied, down.Copied);
        using var s = new LocalBackend(src);
        using var d = new LocalBackend(back);
        Assert.Equal(await MaintenanceTestSupport.ListingAsync(s), await MaintenanceTestSupport.ListingAsync(d));
    }

    [Fact]
    public async Task A_plain_backup_root_syncs_to_S3_without_transient_artifacts()
    {
        string root = _dir.Combine("backups");
        Directory.CreateDirectory(Path.Combine(root, "ns1", "wal"));
        File.WriteAllBytes(Path.Combine(root, "ns1", "wal", "000000001.wal"), Repository.RepositoryTestSupport.Data(50_000, 1));
        File.WriteAllBytes(Path.Combine(root, "ns1", "wal", "000000002.wal.new"), new byte[5]);
        string bucket = await s3.CreateBucketAsync("plain");
        SyncResult r = await RepositorySync.SyncAsync(new SyncBackupRepositoryOptions(new RepositoryTarget { Location = root }, S3(bucket, "backups")), OperationContext.Default);
        Assert.Equal(("Folder", 1, 1), (r.Mode, r.Copied, r.Ignored));
        using var b = new S3Backend(s3.OptionsFor(bucket, "backups"));
        Assert.Equal(["ns1/wal/000000001.wal"], (await MaintenanceTestSupport.ListingAsync(b)).Keys);
        var missing = await Assert.ThrowsAsync<NotFoundException>(() =>
            RepositorySync.SyncAsync(new SyncBackupRepositoryOptions(S3(bucket, "nothing"), new RepositoryTarget { Location = _dir.Combine("x") }), OperationContext.Default));
        Assert.Equal("RepositoryNotFound", missing.ErrorId);
    }
}
