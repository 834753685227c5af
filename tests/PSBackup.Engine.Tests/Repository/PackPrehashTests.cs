using PSBackup.Engine.Repository;
using PSBackup.Engine.Storage;
using PSBackup.Engine.Tests.Maintenance;
using PSBackup.Engine.Tests.Support;
using Repo = PSBackup.Engine.Repository.Repository;

namespace PSBackup.Engine.Tests.Repository;

/// <summary>check --read-data hashes a folder repository's packs while it opens (PackPrehash); a pack
/// hashed then is still read, decoded and judged by its worker, which only takes the hash.</summary>
public sealed class PackPrehashTests : IDisposable
{
    private readonly TestDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private async Task<(string Path, LocalBackend Backend, Repo Repo, string[] Packs)> PrehashedAsync()
    {
        string path = _dir.Combine("repo");
        Directory.CreateDirectory(path);
        var backend = new LocalBackend(path);
        await MaintenanceTestSupport.PopulateAsync(backend);
        Repo repo = await Repo.OpenAsync(backend, RepositoryCredentials.None, CancellationToken.None, loadIndex: false);
        string[] packs = Directory.GetFiles(Path.Combine(path, "packs"), "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray();
        return (path, backend, repo, packs);
    }

    [Fact]
    public async Task Every_pack_of_a_folder_repository_is_hashed_by_its_content_address_and_none_elsewhere()
    {
        var (_, backend, _, packs) = await PrehashedAsync();
        await using PackPrehash prehash = PackPrehash.Start(backend, CancellationToken.None)!;
        await prehash.Completion;
        Assert.NotEmpty(packs);
        foreach (string pack in packs)
        {
            Assert.True(prehash.TryGet(Path.GetFileName(pack), out ContentDigest d));
            Assert.Equal((new FileInfo(pack).Length, Path.GetFileName(pack)), (d.Bytes, d.Sha256));
        }
        // Object storage would download every pack twice: no prehash there.
        Assert.Null(PackPrehash.Start(new MemoryBackend(), CancellationToken.None));
    }

    [Fact]
    public async Task A_pack_that_grew_after_it_was_hashed_fails_its_hash()
    {
        var (_, backend, repo, packs) = await PrehashedAsync();
        await using PackPrehash prehash = PackPrehash.Start(backend, CancellationToken.None)!;
        await prehash.Completion;
        await File.AppendAllTextAsync(packs[0], "x");
        RepositoryCheckReport r = await repo.CheckAsync(readData: true, prehash, null, CancellationToken.None);
        Assert.Contains(r.Errors, e => e.Code == "PackCorrupt" && e.ObjectKey!.EndsWith(Path.GetFileName(packs[0]), StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_prehashed_pack_whose_bytes_then_changed_still_has_every_frame_decoded_and_every_chunk_checked()
    {
        var (_, backend, repo, packs) = await PrehashedAsync();
        await using PackPrehash prehash = PackPrehash.Start(backend, CancellationToken.None)!;
        await prehash.Completion;
        MaintenanceTestSupport.FlipByte(packs[0], 100); // inside the first frame; same length
        RepositoryCheckReport r = await repo.CheckAsync(readData: true, prehash, null, CancellationToken.None);
        Assert.False(r.Ok);
        Assert.Contains(r.Errors, e => e.Code == "DataCorrupt");
    }

    [Fact]
    public async Task A_check_that_hashed_every_pack_early_reports_a_sound_repository_as_sound_and_reads_every_byte()
    {
        var (_, backend, repo, packs) = await PrehashedAsync();
        await using PackPrehash prehash = PackPrehash.Start(backend, CancellationToken.None)!;
        await prehash.Completion;
        RepositoryCheckReport r = await repo.CheckAsync(readData: true, prehash, null, CancellationToken.None);
        Assert.True(r.Ok, string.Join("; ", r.Errors.Select(e => e.Message)));
        Assert.Equal(packs.Sum(p => new FileInfo(p).Length), r.BytesRead);
    }
}
