using System.Security.Cryptography;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Tests.Support;
using static PSBackup.Engine.Tests.Repository.RepositoryTestSupport;
using Repo = PSBackup.Engine.Repository.Repository;

namespace PSBackup.Engine.Tests.Repository;

public sealed class RepositoryRoundTripTests
{
    [Fact]
    public async Task ManyFilesIncludingEmptyAndMultiPackRoundTripThroughAFolder()
    {
        using var backend = new MemoryBackend();
        Repo repo = await Repo.InitializeAsync(backend, Small());
        var files = new List<(string, byte[])>
        {
            ("fields.conf", "a=1\n"u8.ToArray()),
            ("metadata/counts", []),
            ("data/000.bin", Data(3 * 1024 * 1024 + 17, 1)),
            ("data/001.bin", Data(700_000, 2)),
            ("indexes/name/000.idx", Data(1, 3)),
            ("files/empty", []),
        };
        for (int i = 0; i < 40; i++)
        {
            files.Add(($"files/small-{i:D2}", Data(100 + i * 37, 100 + i)));
        }
        BackupCommitResult r = await BackupAsync(repo, files);
        Assert.True(r.PacksWritten > 3, $"expected several packs, got {r.PacksWritten}");
        Assert.Equal(files.Count, r.FileCount);

        Repo reopened = await Repo.OpenAsync(backend, RepositoryCredentials.None);
        RepositoryManifest m = await reopened.ReadManifestAsync(r.ManifestId);
        Assert.Equal(BackupKind.Object, m.Kind);
        Assert.Equal("orders", m.Object);
        using var dir = new TestDirectory();
        RestoreResult rr = await reopened.RestoreAsync(m, dir.Path);
        Assert.Equal(files.Count, rr.FileCount);
        foreach (var (path, data) in files)
        {
            Assert.Equal(data, File.ReadAllBytes(Path.Combine(dir.Path, path)));
        }
        Assert.Empty(Directory.GetFiles(dir.Path, "*.tmp", SearchOption.AllDirectories));
        Assert.Equal(files[2].Item2, await RestoreBytesAsync(reopened, m, "data/000.bin"));

        RepositoryCheckReport check = await reopened.CheckAsync(readData: true);
        Assert.True(check.Ok, string.Join("\n", check.Errors));
        Assert.Empty(check.Warnings);
        Assert.True(check.BytesRead > 0);
    }

    [Fact]
    public async Task RestoreRefusesExistingFilesBeforeWritingAnything()
    {
        using var backend = new MemoryBackend();
        Repo repo = await Repo.InitializeAsync(backend, Small());
        BackupCommitResult r = await BackupAsync(repo, [("a", Data(1000, 1)), ("b", Data(1000, 2))]);
        RepositoryManifest m = await repo.ReadManifestAsync(r.ManifestId);
        using var dir = new TestDirectory();
        File.WriteAllText(Path.Combine(dir.Path, "b"), "live");
        var e = await Assert.ThrowsAsync<ConflictException>(() => repo.RestoreAsync(m, dir.Path));
        Assert.Equal("RestoreTargetExists", e.ErrorId);
        Assert.False(File.Exists(Path.Combine(dir.Path, "a")));
        await repo.RestoreAsync(m, dir.Path, overwrite: true);
        Assert.Equal(Data(1000, 2), File.ReadAllBytes(Path.Combine(dir.Path, "b")));
    }

    [Fact]
    public async Task InitializeRefusesAnExistingRepositoryAndOpenOfNothingIsNotFound()
    {
        using var backend = new MemoryBackend();
        await Assert.ThrowsAsync<NotFoundException>(() => Repo.OpenAsync(backend, RepositoryCredentials.None));
        await Repo.InitializeAsync(backend, Small());
        var e = await Assert.ThrowsAsync<ConflictException>(() => Repo.InitializeAsync(backend, Small()));
        Assert.Equal("RepositoryExists", e.ErrorId);
    }

    [Fact]
    public async Task ListBackupsSummarisesAndFilters()
    {
        using var backend = new MemoryBackend();
        Repo repo = await Repo.InitializeAsync(backend, Small());
        await BackupAsync(repo, [("x", Data(5000, 1))]);
        await BackupAsync(repo, [("db/data.mdb", Data(9000, 2)), ("db/lock", [])], info: new BackupInfo
        {
            Kind = BackupKind.StoreSnapshot,
            Namespace = "ns1",
            Wal = new WalPosition([1, 2, 3], 42, 40),
            CreatedAt = DateTimeOffset.UtcNow.AddMinutes(1),
        });
        var all = await repo.ListBackupsAsync();
        Assert.Equal(2, all.Count);
        Assert.Equal(BackupKind.StoreSnapshot, all[0].Kind);
        Assert.Equal(9000, all[0].Bytes);
        Assert.Equal(2, all[0].FileCount);
        var snaps = await repo.ListBackupsAsync(BackupKind.StoreSnapshot, "ns1");
        RepositoryManifest m = await repo.ReadManifestAsync(Assert.Single(snaps).Id);
        Assert.Equal(40, m.Wal!.AppliedLogIndex);
        Assert.Empty(await repo.ListBackupsAsync(ns: "other"));
    }

    [Fact]
    public async Task FilesAreStreamedFromPathsAndHashed()
    {
        using var backend = new MemoryBackend();
        using var dir = new TestDirectory();
        byte[] data = Data(2_000_000, 9);
        string src = dir.Combine("store.db");
        File.WriteAllBytes(src, data);
        Repo repo = await Repo.InitializeAsync(backend, Small());
        await using BackupWriter w = repo.BeginBackup(new BackupInfo { Kind = BackupKind.StoreSnapshot, Namespace = "ns1" });
        RepositoryFile f = await w.AddFileFromPathAsync("db/store.db", src, ChunkingProfile.Store);
        Assert.Equal(Convert.ToHexString(SHA256.HashData(data)).ToLowerInvariant(), f.Sha256);
        Assert.InRange(f.Chunks.Count, 2_000_000 / 32768, 2_000_000 / 2048);
        var dup = await Assert.ThrowsAsync<InvalidInputException>(() => w.AddFileAsync("db/store.db", new MemoryStream()));
        Assert.Equal("DuplicatePath", dup.ErrorId);
        BackupCommitResult r = await w.CommitAsync();
        Assert.Equal(data, await RestoreBytesAsync(repo, await repo.ReadManifestAsync(r.ManifestId), "db/store.db"));
    }

    /// <summary>The writer's names: each once, exactly (case counts), whichever way a file is added,
    /// and free again once the file is taken out.</summary>
    [Fact]
    public async Task ANameIsRefusedTwiceWhicheverWayItIsAddedAndFreeAgainOnceRemoved()
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

    [Theory]
    [InlineData(0)]
    [InlineData(1024 * 1024 - 1)]
    [InlineData(9 * 1024 * 1024 + 300_001)]
    public async Task A_file_read_from_its_path_in_blocks_and_a_small_tail_hashes_counts_and_restores_whole(int size)
    {
        // Blocks of 4 MiB are hashed beside the chunking, a tail under 1 MiB on the reading thread:
        // the file's SHA-256 must still take every byte once, in order.
        using var backend = new MemoryBackend();
        using var dir = new TestDirectory();
        byte[] data = Data(size, 11);
        string src = dir.Combine("data.bin");
        File.WriteAllBytes(src, data);
        Repo repo = await Repo.InitializeAsync(backend, Small());
        await using BackupWriter w = repo.BeginBackup(new BackupInfo { Kind = BackupKind.Object, Dir = "d", Object = "o" });
        long counted = -1;
        RepositoryFile f = await w.AddFileFromPathAsync("data.bin", src, ChunkingProfile.Default, onBytes: n => counted = n);
        Assert.Equal(Convert.ToHexString(SHA256.HashData(data)).ToLowerInvariant(), f.Sha256);
        Assert.Equal(size, f.Size);
        Assert.Equal(size == 0 ? -1 : size, counted);
        BackupCommitResult r = await w.CommitAsync();
        Assert.Equal(data, await RestoreBytesAsync(repo, await repo.ReadManifestAsync(r.ManifestId), "data.bin"));
    }

    [Fact]
    public async Task FastCdcIsDeterministicBoundedAndResynchronisesAfterAnInsert()
    {
        var p = ChunkingParameters.StoreDefault;
        var cdc = new FastCdc(p, RepositoryConfig.DefaultGearSeed);
        byte[] data = new byte[4 * 1024 * 1024];
        new Random(5).NextBytes(data);
        List<int> Cuts(byte[] d)
        {
            var cuts = new List<int>();
            int pos = 0;
            while (pos < d.Length)
            {
                int n = cdc.NextCut(d.AsSpan(pos, Math.Min(d.Length - pos, 2 * p.MaxSize)));
                Assert.True(n == d.Length - pos || (n >= p.MinSize && n <= p.MaxSize));
                pos += n;
                cuts.Add(pos);
            }
            return cuts;
        }
        List<int> a = Cuts(data);
        Assert.Equal(a, Cuts(data));
        double avg = data.Length / (double)a.Count;
        Assert.InRange(avg, 6 * 1024, 12 * 1024);
        byte[] shifted = [.. data.AsSpan(0, 1000), 1, 2, 3, .. data.AsSpan(1000)];
        var b = Cuts(shifted).Select(c => c - 3).ToHashSet();
        Assert.True(a.Count(b.Contains) > a.Count * 0.95, "cut points after an insert should mostly survive");
        Assert.Equal(FastCdc.GearTable(RepositoryConfig.DefaultGearSeed), FastCdc.GearTable(RepositoryConfig.DefaultGearSeed));
        await Task.CompletedTask;
    }
}
