using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Tests.Support;
using Xunit.Abstractions;
using static PSBackup.Engine.Tests.Repository.RepositoryTestSupport;
using Repo = PSBackup.Engine.Repository.Repository;

namespace PSBackup.Engine.Tests.Repository;

public sealed class RepositoryDedupTests(ITestOutputHelper output)
{
    /// <summary>A 256 MiB store file; 1 % of its 4 KiB pages rewritten at random positions; the
    /// second snapshot must add under 5 % of the file's size (every stored byte counted: packs,
    /// index, manifest).</summary>
    [Fact]
    public async Task ASecondSnapshotWithOnePercentOfPagesRewrittenAddsUnderFivePercent()
    {
        const int pageSize = 4096, pages = 65536;
        byte[] store = new byte[pageSize * pages];
        var rng = new Random(42);
        for (int p = 0; p < pages; p++)
        {
            // Pages like a B-tree's: a random half (keys/values) and a zero-filled free area.
            rng.NextBytes(store.AsSpan(p * pageSize, pageSize / 2));
        }
        using var backend = new MemoryBackend();
        Repo repo = await Repo.InitializeAsync(backend, new RepositoryInitOptions());

        var sw = Stopwatch.StartNew();
        BackupCommitResult first = await BackupAsync(repo, [("db/data.mdb", store)], BackupKind.StoreSnapshot, ChunkingProfile.Store);
        double backupSeconds = sw.Elapsed.TotalSeconds;

        var changed = new HashSet<int>();
        while (changed.Count < pages / 100)
        {
            changed.Add(rng.Next(pages));
        }
        foreach (int p in changed)
        {
            rng.NextBytes(store.AsSpan(p * pageSize, pageSize / 2));
        }
        long before = backend.TotalBytes;
        BackupCommitResult second = await BackupAsync(repo, [("db/data.mdb", store)], BackupKind.StoreSnapshot, ChunkingProfile.Store);
        long added = backend.TotalBytes - before;
        double pct = 100.0 * added / store.Length;

        sw.Restart();
        var sink = new HashingSink();
        RepositoryManifest m = await repo.ReadManifestAsync(second.ManifestId);
        await repo.RestoreFileAsync(m, m.Files[0], sink);
        double restoreSeconds = sw.Elapsed.TotalSeconds;
        Assert.Equal(SHA256.HashData(store), sink.Hash());
        sw.Restart();
        await repo.RestoreFileAsync(m, m.Files[0], sink);
        double warmRestoreSeconds = sw.Elapsed.TotalSeconds;

        output.WriteLine($"first backup: {first.StoredBytes / 1048576.0:F1} MiB stored, {store.Length / 1048576.0 / backupSeconds:F0} MB/s");
        output.WriteLine($"second backup: added {added} bytes = {pct:F2} % of {store.Length}; new chunks {second.NewChunks}, new chunk bytes {second.NewChunkBytes}, reported {second.StoredBytes}");
        output.WriteLine($"restore: {store.Length / 1048576.0 / restoreSeconds:F0} MB/s (first), {store.Length / 1048576.0 / warmRestoreSeconds:F0} MB/s (second)");
        Assert.Equal(added, second.StoredBytes);
        Assert.True(pct < 5.0, $"the second snapshot added {pct:F2} % of the file's size");
    }

    private sealed class HashingSink : Stream
    {
        private readonly IncrementalHash _h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        public byte[] Hash() => _h.GetHashAndReset();
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => 0;
        public override long Position { get => 0; set { } }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) { }
        public override void Write(byte[] buffer, int offset, int count) => _h.AppendData(buffer, offset, count);
        public override void Write(ReadOnlySpan<byte> buffer) => _h.AppendData(buffer);
        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct = default)
        {
            _h.AppendData(buffer.Span);
            return ValueTask.CompletedTask;
        }
    }
}

public sealed class RepositoryZstdInteropTests(ITestOutputHelper output)
{
    private const string ZstdCli = "/usr/bin/zstd";

    private static byte[] RunTool(string file, string args, byte[] stdin)
    {
        var psi = new ProcessStartInfo(file, args) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        using Process p = Process.Start(psi)!;
        var outTask = Task.Run(() => { var ms = new MemoryStream(); p.StandardOutput.BaseStream.CopyTo(ms); return ms.ToArray(); });
        p.StandardInput.BaseStream.Write(stdin);
        p.StandardInput.Close();
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"{file} {args} failed: {err}");
        return outTask.Result;
    }

    [Fact]
    public async Task TheSystemZstdDecodesStoredFramesPacksAndIndexes()
    {
        if (!File.Exists(ZstdCli))
        {
            output.WriteLine($"SKIPPED: {ZstdCli} is not installed; the interop check needs the zstd command-line tool.");
            return;
        }
        using var backend = new MemoryBackend();
        Repo repo = await Repo.InitializeAsync(backend, Small());
        byte[] a = Data(150_000, 1), b = Data(40_000, 2);
        BackupCommitResult r = await BackupAsync(repo, [("a.bin", a), ("b.bin", b)]);

        // One frame, cut out of its pack by the index's offset and length, decoded by zstd -d.
        RepositoryManifest m = await repo.ReadManifestAsync(r.ManifestId);
        Assert.True(repo.Index.TryGet(m.Files[0].Chunks[0], out var loc));
        byte[] pack = backend.Read(loc.Frame.Pack.Key);
        byte[] frame = pack.AsSpan((int)loc.Frame.Offset, loc.Frame.Length).ToArray();
        byte[] plain = RunTool(ZstdCli, "-d -c -q", frame);
        Assert.Equal(a.AsSpan(0, loc.Length).ToArray(), plain.AsSpan(loc.Offset, loc.Length).ToArray());

        // The whole pack: zstd skips the trailer (a skippable frame) and yields the frames' plaintext;
        // all packs in order of the index concatenated contain every byte of both files.
        byte[] all = backend.Keys.Where(k => k.StartsWith("packs/", StringComparison.Ordinal)).SelectMany(k => RunTool(ZstdCli, "-d -c -q", backend.Read(k))).ToArray();
        Assert.Equal(a.Length + b.Length, all.Length);

        // Index and manifest are zstd-compressed JSON.
        string indexKey = backend.Single("index/");
        using JsonDocument idx = JsonDocument.Parse(RunTool(ZstdCli, "-d -c -q", backend.Read(indexKey)));
        Assert.Equal(1, idx.RootElement.GetProperty("formatVersion").GetInt32());
        using JsonDocument man = JsonDocument.Parse(RunTool(ZstdCli, "-d -c -q", backend.Read("snapshots/" + r.ManifestId)));
        Assert.Equal("object", man.RootElement.GetProperty("kind").GetString());
        Assert.Equal("a.bin", man.RootElement.GetProperty("files")[0].GetProperty("path").GetString());
    }

    /// <summary>The manual restore of docs/repository-format.md (zstd, jq, dd, sha256sum), run against a
    /// repository written to disk, restores the file byte for byte.</summary>
    [Fact]
    public async Task TheDocumentedManualRestoreWorksWithoutPSBackup()
    {
        foreach (string tool in new[] { ZstdCli, "/usr/bin/jq", "/bin/dd", "/usr/bin/sha256sum", "/bin/bash" })
        {
            if (!File.Exists(tool))
            {
                output.WriteLine($"SKIPPED: {tool} is not installed; the manual restore needs zstd, jq, dd, sha256sum and bash.");
                return;
            }
        }
        string doc = File.ReadAllText(Path.Combine(FindRoot(), "docs", "repository-format.md"));
        const string begin = "```bash manual-restore\n";
        int s = doc.IndexOf(begin, StringComparison.Ordinal);
        Assert.True(s >= 0, "docs/repository-format.md has a ```bash manual-restore block");
        string script = doc[(s + begin.Length)..doc.IndexOf("```", s + begin.Length, StringComparison.Ordinal)];

        using var backend = new MemoryBackend();
        Repo repo = await Repo.InitializeAsync(backend, Small());
        byte[] data = Data(900_000, 5);
        BackupCommitResult r = await BackupAsync(repo, [("db/data.mdb", data), ("empty", [])], BackupKind.StoreSnapshot, ChunkingProfile.Store);
        using var dir = new TestDirectory();
        string repoDir = dir.Combine("repo");
        foreach (string key in backend.Keys)
        {
            string path = Path.Combine(repoDir, key);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllBytes(path, backend.Read(key));
        }
        string scriptPath = dir.Combine("restore.sh");
        File.WriteAllText(scriptPath, script);
        string outDir = dir.Combine("out");
        var psi = new ProcessStartInfo("/bin/bash", [scriptPath, repoDir, r.ManifestId, outDir]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using Process p = Process.Start(psi)!;
        string stdout = p.StandardOutput.ReadToEnd(), stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        output.WriteLine(stdout + stderr);
        Assert.Equal(0, p.ExitCode);
        Assert.Equal(data, File.ReadAllBytes(Path.Combine(outDir, "db", "data.mdb")));
        Assert.Empty(File.ReadAllBytes(Path.Combine(outDir, "empty")));
    }

    private static string FindRoot()
    {
        string? d = AppContext.BaseDirectory;
        while (d is not null && !File.Exists(Path.Combine(d, "PSBackup.sln")))
        {
            d = Path.GetDirectoryName(d);
        }
        return d ?? throw new InvalidOperationException("repository root not found");
    }
}
