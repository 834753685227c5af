using PSBackup.Cli;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Storage;
using PSBackup.Engine.Tests.Storage;
using PSBackup.Engine.Tests.Support;
using Repo = PSBackup.Engine.Repository.Repository;

namespace PSBackup.Engine.Tests.Proofs;

/// <summary>SPEC §3 "several hosts may write to one repository at once": two CLI processes back
/// up two objects that share half their content into one repository at the same time, on a local
/// folder and on the real S3 server. Both backups pass check --read-data and restore byte-exact.</summary>
[Trait("Category", "Proof")]
[Collection(S3ServerCollection.Name)]
public sealed class ConcurrentWriterTests(S3ServerFixture s3) : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);
    private readonly TestDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private string DbRoot => _dir.Combine("db");

    private void CreateObjects()
    {
        foreach (string obj in new[] { "orders", "users" })
        {
            string root = Path.Combine(DbRoot, "acme", obj);
            // data/000.bin and 001.bin are identical in both objects: both writers store the same chunks at once.
            BulkData.WriteFile(Path.Combine(root, "data", "000.bin"), 12L << 20, 1);
            BulkData.WriteFile(Path.Combine(root, "data", "001.bin"), 12L << 20, 2);
            BulkData.WriteFile(Path.Combine(root, "data", "002.bin"), 12L << 20, obj == "orders" ? 3 : 4);
            File.WriteAllText(Path.Combine(root, "fields.conf"), $"object {obj}\n");
        }
    }

    private async Task TwoWritersAsync(string repository, string[] extra, IStorageBackend backend)
    {
        CreateObjects();
        await Repo.InitializeAsync(backend, new RepositoryInitOptions());
        string[] Args(string obj) => ["object", "backup", "--db-root", DbRoot, "--dir", "acme", "--object", obj, "--repository", repository, "--json", .. extra];
        using CliProcess a = CliProcess.Start(Args("orders"));
        using CliProcess b = CliProcess.Start(Args("users"));
        int codeA = await a.WaitAsync(Timeout), codeB = await b.WaitAsync(Timeout);
        Assert.True(codeA == 0, a.Stderr);
        Assert.True(codeB == 0, b.Stderr);

        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int check = await TestCli.RunAsync(["check", "--repository", repository, "--read-data", .. extra], stdout, stderr);
        Assert.True(check == 0, $"check --read-data exited {check}: {stderr}{stdout}");

        Repo repo = await Repo.OpenAsync(backend, RepositoryCredentials.None);
        foreach (var (proc, obj) in new[] { (a, "orders"), (b, "users") })
        {
            string target = _dir.Combine("restore-" + obj);
            await repo.RestoreAsync(await repo.ReadManifestAsync(CliProcess.BackupIdOf(proc.Stdout)), target);
            Assert.Equal(BulkData.Tree(Path.Combine(DbRoot, "acme", obj)), BulkData.Tree(target));
        }
        Assert.Equal(2, (await repo.ListBackupsAsync()).Count);
    }

    [Fact]
    public async Task Two_CLI_processes_write_one_local_repository_at_once()
    {
        string repository = _dir.Combine("repo");
        Directory.CreateDirectory(repository);
        using var backend = new LocalBackend(repository);
        await TwoWritersAsync(repository, [], backend);
    }

    [Fact]
    [Trait("Category", "Integration")]
    public async Task Two_CLI_processes_write_one_S3_repository_at_once()
    {
        string bucket = await s3.CreateBucketAsync("writers");
        using var backend = new S3Backend(s3.OptionsFor(bucket, "repo"));
        await TwoWritersAsync($"s3://{bucket}/repo", ["--endpoint", s3.Endpoint, "--access-key", S3ServerFixture.AccessKey, "--secret-key", S3ServerFixture.SecretKey], backend);
    }
}
