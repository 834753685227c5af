using PSBackup.Engine.Storage;
using PSBackup.Engine.Tests.Support;

namespace PSBackup.Engine.Tests.Storage;

/// <summary>Folder-only behaviour: the root, temp files, links.</summary>
public sealed class LocalBackendTests : IDisposable
{
    private readonly TestDirectory _dir = new();

    [Fact]
    public void A_missing_root_is_NotFound()
    {
        var e = Assert.Throws<NotFoundException>(() => new LocalBackend(_dir.Combine("nope")));
        Assert.Contains("does not exist", e.Message);
    }

    [Fact]
    public async Task A_root_removed_later_is_NotFound_not_a_missing_key()
    {
        string root = _dir.Combine("repo");
        Directory.CreateDirectory(root);
        using var backend = new LocalBackend(root);
        Directory.Delete(root);

        await Assert.ThrowsAsync<NotFoundException>(() => backend.GetAsync("k", CancellationToken.None));
        await Assert.ThrowsAsync<NotFoundException>(() => backend.PutAsync("k", new MemoryStream([1]), 1, CancellationToken.None));
        Assert.False(Directory.Exists(root));
    }

    [Fact]
    public async Task A_root_removed_while_a_put_creates_its_folders_is_never_created_again()
    {
        // The put and the removal race; whichever way they interleave, a removal that went through
        // leaves no root behind (before: the put's folder creation could make the root again).
        for (int round = 0; round < 200; round++)
        {
            string root = _dir.Combine($"race{round}");
            Directory.CreateDirectory(root);
            using var backend = new LocalBackend(root);
            Task put = Task.Run(() => backend.PutAsync("a/b/c/d/k", new MemoryStream([1]), 1, CancellationToken.None));
            bool removed;
            try
            {
                Directory.Delete(root, recursive: true);
                removed = true;
            }
            catch (IOException)
            {
                removed = false; // the put made an entry while the removal ran
            }
            try
            {
                await put;
            }
            catch (Exception e) when (e is NotFoundException or IOException)
            {
            }
            if (removed)
            {
                Assert.False(Path.Exists(root), $"round {round}: the put created the removed root again");
            }
        }
    }

    [Fact]
    public async Task Leftover_temp_files_are_invisible_and_their_names_reserved()
    {
        using var backend = new LocalBackend(_dir.Path);
        await backend.PutAsync("d/k", new MemoryStream([1]), 1, CancellationToken.None);
        File.WriteAllBytes(_dir.Combine("d", $".psb-{Guid.NewGuid():N}.tmp"), [1, 2]);
        await backend.PutAsync("d/plain.tmp", new MemoryStream([3]), 1, CancellationToken.None);

        var keys = new List<string>();
        await foreach (StoredObject o in backend.ListAsync("", CancellationToken.None))
        {
            keys.Add(o.Key);
        }

        Assert.Equal(["d/k", "d/plain.tmp"], keys);
        await Assert.ThrowsAsync<InvalidInputException>(() =>
            backend.PutAsync($"d/.psb-{Guid.NewGuid():N}.tmp", new MemoryStream([1]), 1, CancellationToken.None));
    }

    [Fact]
    public async Task Links_below_the_root_are_neither_followed_nor_listed()
    {
        string outside = _dir.Combine("outside");
        string root = _dir.Combine("repo");
        Directory.CreateDirectory(outside);
        Directory.CreateDirectory(root);
        File.WriteAllBytes(Path.Combine(outside, "secret"), [42]);
        Directory.CreateSymbolicLink(Path.Combine(root, "escape"), outside);
        using var backend = new LocalBackend(root);

        await Assert.ThrowsAsync<InvalidInputException>(() => backend.GetAsync("escape/secret", CancellationToken.None));
        await Assert.ThrowsAsync<InvalidInputException>(() => backend.PutAsync("escape/new", new MemoryStream([1]), 1, CancellationToken.None));
        await Assert.ThrowsAsync<InvalidInputException>(() => backend.DeleteAsync("escape/secret", CancellationToken.None));
        await foreach (StoredObject o in backend.ListAsync("", CancellationToken.None))
        {
            Assert.Fail($"listed {o.Key}");
        }
        Assert.True(File.Exists(Path.Combine(outside, "secret")));
        Assert.False(File.Exists(Path.Combine(outside, "new")));
    }

    [Fact]
    public async Task A_range_is_streamed_not_buffered()
    {
        using var backend = new LocalBackend(_dir.Path);
        byte[] data = TestData.Bytes(1 << 20);
        await backend.PutAsync("big", new MemoryStream(data), data.Length, CancellationToken.None);

        await using Stream range = await backend.GetRangeAsync("big", 1000, 10, CancellationToken.None);

        Assert.False(range is MemoryStream);
        Assert.Equal(10, range.Length);
        Assert.Equal(data[1000..1010], await TestData.ReadAllAsync(range));
    }

    [Fact]
    public async Task A_key_that_is_a_folder_of_other_keys_is_not_an_object()
    {
        using var backend = new LocalBackend(_dir.Path);
        await backend.PutAsync("a/b", new MemoryStream([1]), 1, CancellationToken.None);

        await Assert.ThrowsAsync<StorageNotFoundException>(() => backend.GetAsync("a", CancellationToken.None));
        Assert.Null(await backend.StatAsync("a", CancellationToken.None));
        await backend.DeleteAsync("a", CancellationToken.None);
        await Assert.ThrowsAsync<StorageIOException>(() => backend.PutAsync("a", new MemoryStream([1]), 1, CancellationToken.None));
        Assert.NotNull(await backend.StatAsync("a/b", CancellationToken.None));
    }

    public void Dispose() => _dir.Dispose();
}
