using System.Security.Cryptography;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Storage;
using PSBackup.Engine.Tests.Support;
using static PSBackup.Engine.Tests.Repository.RepositoryTestSupport;
using Repo = PSBackup.Engine.Repository.Repository;

namespace PSBackup.Engine.Tests.Repository;

/// <summary>Packs are assembled on disk (<see cref="PackSpool"/>): in a repository folder as a
/// temp-named file renamed to the pack's content address, elsewhere as a temp file uploaded by a put.</summary>
public sealed class PackSpoolTests
{
    private static string[] TempFiles(string root) =>
        Directory.GetFiles(root, ".psb-*.tmp", SearchOption.AllDirectories);

    [Fact]
    public async Task Packs_spooled_in_a_folder_land_under_their_content_address_and_leave_no_temp_file()
    {
        using var dir = new TestDirectory();
        string root = dir.Combine("repo");
        Directory.CreateDirectory(root);
        using var backend = new LocalBackend(root);
        Repo repo = await Repo.InitializeAsync(backend, Small(passphrase: "spool"));
        byte[] a = Data(3_000_000, 1), b = Data(1_200_000, 2);

        BackupCommitResult r = await BackupAsync(repo, [("a", a), ("sub/b", b)]);

        Assert.True(r.PacksWritten >= 4, $"{r.PacksWritten} packs"); // 256 KiB packs: the data spans several
        string[] packs = Directory.GetFiles(Path.Combine(root, "packs"), "*", SearchOption.AllDirectories);
        Assert.Equal(r.PacksWritten, packs.Length);
        foreach (string pack in packs)
        {
            // The name is the SHA-256 of the bytes on disk, in the folder named by its first two digits.
            string id = Path.GetFileName(pack);
            Assert.Equal(id, Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(pack))).ToLowerInvariant());
            Assert.Equal(id[..2], Path.GetFileName(Path.GetDirectoryName(pack)));
        }
        Assert.Empty(TempFiles(root));
        Repo reopened = await Repo.OpenAsync(backend, RepositoryCredentials.FromPassphrase("spool"));
        RepositoryCheckReport check = await reopened.CheckAsync(readData: true);
        Assert.True(check.Ok, string.Join("\n", check.Errors));
        Assert.Empty(check.Warnings);
        RepositoryManifest m = await reopened.ReadManifestAsync(r.ManifestId);
        Assert.Equal(a, await RestoreBytesAsync(reopened, m, "a"));
        Assert.Equal(b, await RestoreBytesAsync(reopened, m, "sub/b"));
    }

    [Fact]
    public async Task A_backup_cancelled_half_way_into_a_folder_leaves_no_spooled_pack_and_the_next_one_completes()
    {
        using var dir = new TestDirectory();
        string root = dir.Combine("repo");
        Directory.CreateDirectory(root);
        using var backend = new LocalBackend(root);
        Repo repo = await Repo.InitializeAsync(backend, Small());
        byte[] big = Data(4_000_000, 7);
        using var cts = new CancellationTokenSource();

        BackupWriter w = repo.BeginBackup(new BackupInfo { Kind = BackupKind.Object, Dir = "d", Object = "o" });
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => w.AddFileAsync("big", new InterruptingStream(big, 2_500_000, cts), ChunkingProfile.Default, cts.Token));
        await w.AbortAsync();
        await w.DisposeAsync();

        Assert.Empty(TempFiles(root)); // the pack being filled and any finished one not yet stored are deleted
        Assert.Empty(await repo.ListBackupsAsync());
        BackupCommitResult r = await BackupAsync(repo, [("big", big)]);
        Repo reopened = await Repo.OpenAsync(backend, RepositoryCredentials.None);
        Assert.Equal(big, await RestoreBytesAsync(reopened, await reopened.ReadManifestAsync(r.ManifestId), "big"));
        RepositoryCheckReport check = await reopened.CheckAsync(readData: true);
        Assert.True(check.Ok, string.Join("\n", check.Errors));
        Assert.Empty(TempFiles(root));
    }

    [Fact]
    public async Task Packs_spooled_for_another_backend_are_uploaded_whole_by_a_put()
    {
        using var backend = new MemoryBackend();
        Repo repo = await Repo.InitializeAsync(backend, Small(passphrase: "spool"));
        byte[] a = Data(2_000_000, 3);

        BackupCommitResult r = await BackupAsync(repo, [("a", a)]);

        var packKeys = backend.Keys.Where(k => k.StartsWith(RepositoryLayout.PacksPrefix, StringComparison.Ordinal)).ToList();
        Assert.Equal(r.PacksWritten, packKeys.Count);
        foreach (string key in packKeys)
        {
            await using Stream s = await backend.GetAsync(key, CancellationToken.None);
            Assert.Equal(key[(key.LastIndexOf('/') + 1)..], Convert.ToHexString(await SHA256.HashDataAsync(s)).ToLowerInvariant());
        }
        Assert.Equal(a, await RestoreBytesAsync(repo, await repo.ReadManifestAsync(r.ManifestId), "a"));
    }
}
