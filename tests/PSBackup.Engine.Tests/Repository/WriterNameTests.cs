using PSBackup.Engine.Repository;
using static PSBackup.Engine.Tests.Repository.RepositoryTestSupport;
using Repo = PSBackup.Engine.Repository.Repository;
using Xunit;

namespace PSBackup.Engine.Tests.Repository;

/// <summary>The writer's names: each once, exactly (case counts), whichever way a file is added,
/// and free again once the file is taken out.</summary>
public sealed class WriterNameTests
{
    [Fact]
    public async Task A_name_is_refused_twice_whichever_way_it_is_added_and_free_again_once_removed()
    {
        using var backend = new MemoryBackend();
        Repo repo = await Repo.InitializeAsync(backend, Small());
        BackupCommitResult first = await BackupAsync(repo, [("a/file", Data(50_000, 1))]);
        RepositoryFile parent = (await repo.ReadManifestAsync(first.ManifestId)).Files.Single();

        await using BackupWriter w = repo.BeginBackup(new BackupInfo { Kind = BackupKind.Object, Dir = "t", Object = "o" });
        Assert.True(w.TryReuseFile(parent));
        Assert.Equal("DuplicatePath", (await Assert.ThrowsAsync<InvalidInputException>(() => w.AddFileAsync("a/file", new MemoryStream(Data(10, 2))))).ErrorId);
        Assert.Equal("DuplicatePath", Assert.Throws<InvalidInputException>(() => w.TryReuseFile(parent)).ErrorId);
        Assert.Equal("DuplicatePath", Assert.Throws<InvalidInputException>(() => w.TryAddSameContent("a/file", parent)).ErrorId);

        // Another case is another name; taking one out leaves the other.
        await w.AddFileAsync("a/FILE", new MemoryStream(Data(20, 3)));
        Assert.True(w.RemoveFile("a/file"));
        Assert.False(w.RemoveFile("a/file"));
        Assert.NotNull(w.Find("a/FILE"));
        Assert.Null(w.Find("a/file"));

        // Free again: added anew (the writer is still usable after the refusals above).
        await w.AddFileAsync("a/file", new MemoryStream(Data(30, 4)));
        Assert.Equal(["a/FILE", "a/file"], w.Files.Select(f => f.Path));
        BackupCommitResult next = await w.CommitAsync();
        RepositoryManifest m = await repo.ReadManifestAsync(next.ManifestId);
        Assert.Equal(Data(30, 4), await RestoreBytesAsync(repo, m, "a/file"));
        Assert.Equal(Data(20, 3), await RestoreBytesAsync(repo, m, "a/FILE"));
    }
}
