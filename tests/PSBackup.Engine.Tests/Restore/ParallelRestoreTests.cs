using PSBackup.Engine.ObjectStore;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Storage;
using PSBackup.Engine.Tests.ObjectStore;
using PSBackup.Engine.Tests.Repository;
using PSBackup.Engine.Tests.Support;
using static PSBackup.Engine.Tests.Repository.RepositoryTestSupport;
using Repo = PSBackup.Engine.Repository.Repository;

namespace PSBackup.Engine.Tests.Restore;

/// <summary>The parallel restore (Repository.RestoreAsync over ParallelRestore): many workers, packs
/// read once in pack order, pieces written out of file order, each file's SHA-256 brought forward in
/// file order. Correctness under parallelism, not timing: every byte, every order, every failure.</summary>
public sealed class ParallelRestoreTests
{
    /// <summary>Small files, empty files, files larger than a pack, a file holding the same bytes twice
    /// and files holding each other's bytes (one chunk, several targets), in 64 KiB frames and 256 KiB
    /// packs, so a restore reads dozens of packs with several workers at once.</summary>
    private static List<(string Path, byte[] Data)> MixedFiles()
    {
        var files = new List<(string, byte[])>();
        for (int i = 0; i < 150; i++)
        {
            files.Add(($"small/{i % 7}/f{i:D3}", Data(i % 11 == 0 ? 0 : 50 + i * 61 % 5000, 1000 + i)));
        }
        byte[] big = Data(3 * 1024 * 1024 + 12345, 1);
        files.Add(("big/one.bin", big));
        files.Add(("big/two.bin", Data(2 * 1024 * 1024 + 7, 2)));
        files.Add(("big/copy-of-one.bin", big));                             // every chunk shared
        files.Add(("big/twice.bin", [.. big.AsSpan(0, 400_000), .. big.AsSpan(0, 400_000)])); // chunks repeated in one file
        files.Add(("empty", []));
        return files;
    }

    private static void AssertRestored(IEnumerable<(string Path, byte[] Data)> files, string root)
    {
        foreach (var (path, data) in files)
        {
            Assert.True(data.AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(root, path))), $"'{path}' differs");
        }
        Assert.Empty(Directory.EnumerateFiles(root, "*.tmp", SearchOption.AllDirectories));
        Assert.Equal(files.Count(), Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories).Count());
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public async Task Many_small_and_large_files_spanning_packs_restore_byte_exact(bool freshFolder, bool encrypted)
    {
        using var backend = new MemoryBackend();
        using var keys = new TestDirectory();
        // Encrypted with a key file: PBKDF2 fails under Wine, which runs this class too.
        Repo repo = await Repo.InitializeAsync(backend, Small(keyFile: encrypted ? KeyFile(keys) : null));
        List<(string Path, byte[] Data)> files = MixedFiles();
        BackupCommitResult r = await BackupAsync(repo, files);
        Assert.True(r.PacksWritten > 8, $"expected many packs, got {r.PacksWritten}");
        RepositoryManifest m = await repo.ReadManifestAsync(r.ManifestId);
        using var dir = new TestDirectory();
        var seen = new List<OperationProgress>();

        RestoreResult result = await repo.RestoreAsync(m, dir.Path, progress: new SyncProgress(p => seen.Add(p)), freshFolder: freshFolder);

        Assert.Equal((files.Count, files.Sum(f => (long)f.Data.Length)), (result.FileCount, result.Bytes));
        AssertRestored(files, dir.Path);
        // One report per sealed file (besides the bytes written so far, a few times a second),
        // never going back, ending at the total.
        Assert.Equal(files.Count, seen.Count(p => p.Status.StartsWith("Restored ", StringComparison.Ordinal)));
        Assert.All(seen.Where(p => !p.Status.StartsWith("Restored ", StringComparison.Ordinal)), p => Assert.Equal("Restoring", p.Status));
        Assert.True(seen.Zip(seen.Skip(1)).All(p => p.First.Completed <= p.Second.Completed));
        Assert.Equal(result.Bytes, seen[^1].Completed);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public async Task Pieces_written_in_the_reverse_of_file_order_are_hashed_in_file_order(int workers)
    {
        using var backend = new MemoryBackend();
        Repo repo = await Repo.InitializeAsync(backend, Small());
        List<(string Path, byte[] Data)> files = MixedFiles();
        RepositoryManifest m = await repo.ReadManifestAsync((await BackupAsync(repo, files)).ManifestId);
        using var dir = new TestDirectory();
        List<string> paths = m.Files.Select(f => Path.Combine(dir.Path, f.Path)).ToList();
        foreach (string folder in paths.Select(p => Path.GetDirectoryName(p)!).Distinct())
        {
            Directory.CreateDirectory(folder);
        }
        var sealedFiles = new System.Collections.Concurrent.ConcurrentBag<int>();

        // Last pack first: every file that spans packs gets its later pieces before its first one,
        // so its hash reads them back from the file once the first arrives.
        await ParallelRestore.RunAsync(repo, m, paths, paths, i => sealedFiles.Add(i), CancellationToken.None, workers: workers, reverse: true);

        Assert.Equal(Enumerable.Range(0, m.Files.Count), sealedFiles.Order());
        AssertRestored(files, dir.Path);
    }

    /// <summary>An incremental backup whose file is new bytes, then bytes of the first backup, then new
    /// bytes again: its first and last pieces come from one new frame, the middle from old packs.</summary>
    [Fact]
    public async Task A_file_interleaving_new_and_deduplicated_chunks_restores_byte_exact()
    {
        using var backend = new MemoryBackend();
        Repo repo = await Repo.InitializeAsync(backend, Small());
        byte[] old = Data(900_000, 7);
        await BackupAsync(repo, [("old.bin", old)]);
        byte[] head = Data(30_000, 8), tail = Data(30_000, 9);
        byte[] mixed = [.. head, .. old, .. tail];
        BackupCommitResult second = await BackupAsync(repo, [("mixed.bin", mixed), ("old.bin", old)]);
        Assert.True(second.NewChunks < 20, $"the old bytes should deduplicate ({second.NewChunks} new chunks)");
        using var dir = new TestDirectory();

        await repo.RestoreAsync(await repo.ReadManifestAsync(second.ManifestId), dir.Path, freshFolder: true);

        AssertRestored([("mixed.bin", mixed), ("old.bin", old)], dir.Path);
    }

    /// <summary>A byte flipped in a pack in the middle of a large file: the restore fails naming it,
    /// the live object is untouched, no temp folder is left, and the pack is marked damaged.</summary>
    [Fact]
    public async Task A_corrupted_pack_fails_the_restore_before_anything_is_swapped_in()
    {
        using var scene = await ObjectScene.CreateAsync();
        string pack = scene.PackHolding("data/big.bin");
        byte[] bytes = File.ReadAllBytes(pack);
        bytes[bytes.Length / 2] ^= 0x40;
        File.WriteAllBytes(pack, bytes);
        var live = TreeState.Capture(scene.Obj.ObjectPath);

        var e = await Assert.ThrowsAsync<RepositoryIntegrityException>(() => scene.RestoreAsync(OperationContext.Default));

        Assert.Equal("FrameCorrupt", e.ErrorId);
        Assert.Contains(Path.GetFileName(pack), e.Message);
        live.AssertUnchanged(scene.Obj.ObjectPath);
        scene.AssertNoLeftovers();
        Assert.True(File.Exists(Path.Combine(scene.RepoPath, "damaged", Path.GetFileName(pack))));
    }

    /// <summary>Cancelled once a third of the bytes are sealed (workers and closers busy): the
    /// restore stops with a cancellation, the live object is untouched and no temp folder is left.</summary>
    [Fact]
    public async Task Cancellation_mid_restore_leaves_the_live_object_intact()
    {
        using var scene = await ObjectScene.CreateAsync();
        var live = TreeState.Capture(scene.Obj.ObjectPath);
        using var cts = new CancellationTokenSource();
        long seenBytes = 0;
        var progress = new SyncProgress(p =>
        {
            if (p.Unit == ProgressUnit.Bytes && p.Total > 0 && p.Completed * 3 >= p.Total && p.Completed < p.Total)
            {
                seenBytes = p.Completed;
                cts.Cancel();
            }
        });

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => scene.RestoreAsync(new OperationContext { CancellationToken = cts.Token, Progress = progress }));

        Assert.True(seenBytes > 0, "the restore was cancelled before it began");
        live.AssertUnchanged(scene.Obj.ObjectPath);
        scene.AssertNoLeftovers();
        // And the same restore then completes.
        await scene.RestoreAsync(OperationContext.Default);
        Assert.Equal(scene.Tree, ObjectFixture.Snapshot(scene.Obj.ObjectPath));
    }

    [Fact]
    public async Task An_object_restore_gives_back_every_file_and_folder_with_its_mode_and_time()
    {
        using var scene = await ObjectScene.CreateAsync();

        await scene.RestoreAsync(OperationContext.Default);

        Assert.Equal(scene.Tree, ObjectFixture.Snapshot(scene.Obj.ObjectPath));
        foreach (var (rel, meta) in scene.Metadata)
        {
            FileMetadata now = FileMetadata.Read(Path.Combine(scene.Obj.ObjectPath, rel))!;
            Assert.Equal(meta.ModifiedNs / 100, now.ModifiedNs / 100); // .NET sets times in 100 ns ticks
            if (!OperatingSystem.IsWindows())
            {
                Assert.Equal(meta.Mode, now.Mode);
            }
        }
    }

    /// <summary>An object of a few hundred small files and three large ones in nested folders, with
    /// modes and times, backed up into a folder repository encrypted with a key file; the live
    /// object then changes.</summary>
    private sealed class ObjectScene : IDisposable
    {
        private readonly TestDirectory _dir = new();
        public ObjectFixture Obj { get; } = new();
        public string RepoPath => _dir.Combine("repo");
        public RepositoryTarget Repo => new() { Location = RepoPath, KeyFile = _dir.Combine("repo.key") };
        public SortedDictionary<string, string> Tree { get; private set; } = new();
        public Dictionary<string, FileMetadata> Metadata { get; } = new();

        public static async Task<ObjectScene> CreateAsync()
        {
            var s = new ObjectScene();
            var rng = new Random(5);
            for (int i = 0; i < 240; i++)
            {
                ObjectFixture.Write(s.Obj.ObjectPath, $"files/{i % 9}/{i % 4}/n{i:D3}", ObjectFixture.Bytes($"n{i}", rng.Next(0, 9000)));
            }
            ObjectFixture.Write(s.Obj.ObjectPath, "data/big.bin", Data(5 * 1024 * 1024 + 3, 3));
            ObjectFixture.Write(s.Obj.ObjectPath, "data/big2.bin", Data(3 * 1024 * 1024 + 5, 4));
            ObjectFixture.Write(s.Obj.ObjectPath, "indexes/email/big.idx", Data(2 * 1024 * 1024, 5));
            Directory.CreateDirectory(Path.Combine(s.Obj.ObjectPath, "files", "empty-folder"));
            int n = 0;
            foreach (string path in Directory.EnumerateFileSystemEntries(s.Obj.ObjectPath, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
            {
                bool folder = Directory.Exists(path);
                if (!OperatingSystem.IsWindows())
                {
                    File.SetUnixFileMode(path, folder ? (UnixFileMode)Convert.ToInt32(n % 2 == 0 ? "750" : "755", 8) : (UnixFileMode)Convert.ToInt32(n % 3 == 0 ? "640" : "604", 8));
                }
                if (!folder)
                {
                    File.SetLastWriteTimeUtc(path, new DateTime(2024, 1, 1, 0, 0, 0, DateTimeKind.Utc).AddMinutes(n));
                }
                n++;
            }
            foreach (string path in Directory.EnumerateFileSystemEntries(s.Obj.ObjectPath, "*", SearchOption.AllDirectories))
            {
                s.Metadata[Path.GetRelativePath(s.Obj.ObjectPath, path)] = FileMetadata.Read(path)!;
            }
            s.Tree = ObjectFixture.Snapshot(s.Obj.ObjectPath);
            KeyFile(s._dir); // encrypted with a key file: PBKDF2 fails under Wine, which runs this class too
            Assert.NotNull(await RepositoryOperations.InitializeAsync(new InitializeRepositoryOptions(s.Repo), OperationContext.Default));
            Assert.NotNull(await ObjectOperations.BackupAsync(s.Obj.BackupOptions() with { Repository = s.Repo }, OperationContext.Default));
            ObjectFixture.Populate(s.Obj.ObjectPath, seed: 9); // the live object moves on
            File.Delete(Path.Combine(s.Obj.ObjectPath, "data", "big2.bin"));
            return s;
        }

        public Task<ObjectRestoreResult?> RestoreAsync(OperationContext context) =>
            ObjectOperations.RestoreAsync(new RestoreObjectBackupOptions(Obj.DbRoot, ObjectFixture.Dir, ObjectFixture.Object, null) { Repository = Repo, Force = true }, context);

        /// <summary>The pack file holding the middle of a file of the newest backup.</summary>
        public string PackHolding(string rel)
        {
            using OpenRepository open = RepositoryConnector.OpenAsync(Repo, CancellationToken.None).GetAwaiter().GetResult();
            string id = open.Repository.ListBackupsAsync().GetAwaiter().GetResult()[0].Id;
            RepositoryFile f = open.Repository.ReadManifestAsync(id).GetAwaiter().GetResult().Files.Single(x => x.Path == rel);
            Assert.True(open.Repository.Index.TryGet(f.Chunks[f.Chunks.Count / 2], out var loc));
            return Path.Combine(RepoPath, loc.Frame.Pack.Key.Replace('/', Path.DirectorySeparatorChar));
        }

        /// <summary>No temp folder of a restore and no replaced copy beside the object.</summary>
        public void AssertNoLeftovers() =>
            Assert.Equal([ObjectFixture.Object], Directory.EnumerateFileSystemEntries(Obj.DirPath).Select(Path.GetFileName).Where(n => !n!.EndsWith(".manifest.json", StringComparison.Ordinal)));

        public void Dispose()
        {
            Obj.Dispose();
            _dir.Dispose();
        }
    }

    /// <summary>Reports synchronously on the reporting thread (Progress&lt;T&gt; would post them later).</summary>
    private sealed class SyncProgress(Action<OperationProgress> report) : IProgress<OperationProgress>
    {
        public void Report(OperationProgress value)
        {
            lock (this)
            {
                report(value);
            }
        }
    }
}
