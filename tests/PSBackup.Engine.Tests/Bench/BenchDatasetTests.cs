using System.Security.Cryptography;
using PSBackup.Bench;
using PSBackup.Engine.Repository.Compression;
using PSBackup.Engine.Tests.Support;
using PSBackup.Engine.Wal;

namespace PSBackup.Engine.Tests.Bench;

/// <summary>Two generations of a small benchmark dataset with the same seed, and one with another.</summary>
public sealed class GeneratedDatasets : IDisposable
{
    public const long Seed = 17;
    public const int SizeMiB = 32;
    public const int Segments = 3;
    private readonly TestDirectory _dir = new();

    public GeneratedDatasets()
    {
        First = Dataset.Generate(_dir.Combine("first"), Seed, SizeMiB, Segments);
        Second = Dataset.Generate(_dir.Combine("second"), Seed, SizeMiB, Segments);
    }

    public DatasetResult First { get; }
    public DatasetResult Second { get; }

    public string Scratch(string name) => _dir.Combine("scratch", name);

    public void Dispose() => _dir.Dispose();
}

public sealed class BenchDatasetTests(GeneratedDatasets datasets) : IClassFixture<GeneratedDatasets>
{
    private static SortedDictionary<string, string> Hashes(string root) =>
        new(Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories)
                .Where(f => !f.Contains(".sqlite", StringComparison.Ordinal))
                .ToDictionary(f => Path.GetRelativePath(root, f).Replace('\\', '/'), f => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f)))),
            StringComparer.Ordinal);

    private static void CopyTree(string from, string to)
    {
        foreach (string file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            string dest = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(dest)!);
            File.Copy(file, dest);
        }
    }

    /// <summary>Per segment file name: the SHA-256 of each record's data, in order.</summary>
    private static SortedDictionary<string, string> RecordHashes(string walDir) =>
        new(WalDirectory.ListSegmentFiles(walDir).ToDictionary(s => Path.GetFileName(s.Path),
                s => string.Join(",", WalSegmentReader.ReadRecords(s.Path).Select(r => Convert.ToHexString(SHA256.HashData(r.Data))))),
            StringComparer.Ordinal);

    [Fact]
    public void TheSameSeedGivesTheSameObjectBytesWalRecordsAndStoreContent()
    {
        Assert.Equal(Hashes(datasets.First.DbRoot), Hashes(datasets.Second.DbRoot));
        Assert.Contains(Hashes(datasets.First.DbRoot).Keys, k => k.StartsWith("acme/orders/data/", StringComparison.Ordinal));
        // UnisonDB stamps segment headers with the wall clock, so the WAL is compared by its
        // records, and the bbolt store by its content (store-info's hash over every key and value).
        string walA = Path.Combine(datasets.First.DataDir, Dataset.Namespace, "wal");
        string walB = Path.Combine(datasets.Second.DataDir, Dataset.Namespace, "wal");
        Assert.Equal(RecordHashes(walA), RecordHashes(walB));
        UnisonOracle.StoreInfo a = UnisonOracle.StoreInfoOf(Path.Combine(datasets.First.DataDir, Dataset.Namespace, "unison.db"));
        UnisonOracle.StoreInfo b = UnisonOracle.StoreInfoOf(Path.Combine(datasets.Second.DataDir, Dataset.Namespace, "unison.db"));
        Assert.Equal(0, a.ExitCode);
        Assert.NotNull(a.ContentSha256);
        Assert.Equal(a.ContentSha256, b.ContentSha256);
        Assert.Equal((ulong)Dataset.AppliedRecords, a.RecordProcessed);
    }

    [Fact]
    public void ADifferentSeedGivesDifferentContentOfTheSameShape()
    {
        DatasetResult other = Dataset.Generate(datasets.Scratch("seed-18"), GeneratedDatasets.Seed + 1, GeneratedDatasets.SizeMiB, GeneratedDatasets.Segments);
        var mine = Hashes(datasets.First.DbRoot);
        var theirs = Hashes(other.DbRoot);
        Assert.NotEqual(mine.Values.Order(), theirs.Values.Order());
        Assert.InRange(other.ObjectBytes, GeneratedDatasets.SizeMiB * 1048576L * 95 / 100, GeneratedDatasets.SizeMiB * 1048576L * 110 / 100);
    }

    [Fact]
    public void TheObjectStoreIsAboutTheRequestedSizeAndSemiCompressibleUnderZstd3()
    {
        DatasetResult d = datasets.First;
        Assert.InRange(d.ObjectBytes, GeneratedDatasets.SizeMiB * 1048576L * 95 / 100, GeneratedDatasets.SizeMiB * 1048576L * 110 / 100);
        foreach (var (tenant, obj, fields, attachment, _) in Dataset.Objects)
        {
            string dir = Path.Combine(d.DbRoot, tenant, obj);
            Assert.NotEmpty(Directory.GetFiles(Path.Combine(dir, "data"), "*.bin"));
            Assert.All(fields, f => Assert.Equal(Directory.GetFiles(Path.Combine(dir, "data")).Length, Directory.GetFiles(Path.Combine(dir, "indexes", f)).Length));
            Assert.True(File.Exists(Path.Combine(dir, "files", attachment)));
            Assert.True(File.Exists(Path.Combine(dir, "fields.conf")));
        }

        long input = 0, compressed = 0;
        foreach (string file in Directory.EnumerateFiles(d.DbRoot, "*", SearchOption.AllDirectories))
        {
            byte[] content = File.ReadAllBytes(file);
            byte[] frame = new byte[ZstdCompressor.Instance.MaxCompressedLength(content.Length)];
            input += content.Length;
            compressed += ZstdCompressor.Instance.Compress(content, frame, 3);
        }
        Assert.InRange(input / (double)compressed, 1.5, 2.5);
    }

    [Fact]
    public async Task TheNamespaceIsUnisonDbsOwnSealedSegmentsAnActiveOneAndAStoreCheckpointedInTheFirst()
    {
        DatasetResult d = datasets.First;
        string nsDir = Path.Combine(d.DataDir, Dataset.Namespace);
        WalDirectoryReport report = await WalOperations.GetSegmentsAsync(new GetWalSegmentOptions(d.DataDir, Dataset.Namespace), OperationContext.Default);
        Assert.False(report.HasGap);
        Assert.Equal(Enumerable.Range(1, GeneratedDatasets.Segments + 1).Select(i => (long)i), report.Segments.Select(s => s.SegmentId));
        Assert.All(report.Segments, s =>
        {
            Assert.True(s.Valid, s.Error);
            Assert.Equal(1, s.Version);
            Assert.EndsWith(".seg", s.Path, StringComparison.Ordinal);
            Assert.Equal(WalFormat.DefaultSegmentSize, s.Bytes);
        });
        Assert.All(report.Segments.SkipLast(1), s =>
        {
            Assert.True(s.Sealed);
            Assert.True(File.Exists(s.Path + ".idx"), "walfs v1 writes a sidecar for each sealed segment");
            Assert.True(s.ValidBytes > WalFormat.DefaultSegmentSize * 9 / 10, "a sealed segment is nearly full");
        });
        Assert.False(report.Segments[^1].Sealed);
        Assert.Equal(Dataset.ActiveRecords, report.Segments[^1].EntryCount);
        Assert.Equal(d.Stamp.LastLogIndex, report.Segments[^1].LastLogIndex);
        Assert.Equal(d.Stamp, Dataset.ReadStamp(d.OutputDir));
        // UnisonDB's reader takes the whole log, and its store's checkpoint lies in segment 1.
        UnisonOracle.ReplayResult replay = UnisonOracle.Replay(Path.Combine(nsDir, "wal"), WalFormat.DefaultSegmentSize);
        Assert.Equal(d.Stamp.LastLogIndex, replay.Count);
        Assert.Equal(0, replay.ExitCode);
        Assert.Empty(replay.Discontinuities);
        UnisonOracle.StoreInfo store = UnisonOracle.StoreInfoOf(Path.Combine(nsDir, "unison.db"));
        Assert.Equal(1u, store.CheckpointSegment);
    }

    [Fact]
    public void MutationChangesAboutThePercentageAskedForTheSameWayEveryTime()
    {
        string a = datasets.Scratch("mutate-a");
        string b = datasets.Scratch("mutate-b");
        CopyTree(datasets.First.DbRoot, Path.Combine(a, "db"));
        CopyTree(datasets.First.DbRoot, Path.Combine(b, "db"));

        MutationResult ra = Mutation.Apply(a, 5, seed: 3);
        MutationResult rb = Mutation.Apply(b, 5, seed: 3);

        Assert.Equal(ra, rb);
        Assert.Equal(Hashes(Path.Combine(a, "db")), Hashes(Path.Combine(b, "db")));
        Assert.InRange(ra.ChangedBytes, ra.TotalBytes * 5 / 100, ra.TotalBytes * 12 / 100);
        Assert.True(ra.IndexesRewritten > 0);
        var before = Hashes(datasets.First.DbRoot);
        var after = Hashes(Path.Combine(a, "db"));
        int changedFiles = after.Count(f => !before.TryGetValue(f.Key, out string? h) || h != f.Value);
        Assert.InRange(changedFiles, 1, after.Count / 2);
        Assert.DoesNotContain(after.Keys, k => k.EndsWith(".new", StringComparison.Ordinal));
    }

    [Fact]
    public void TreeMutationChangesThatShareOfFilesTheSameWayEveryTimeAndLeavesNoTempName()
    {
        string a = datasets.Scratch("tree-a");
        string b = datasets.Scratch("tree-b");
        CopyTree(datasets.First.DbRoot, a);
        CopyTree(datasets.First.DbRoot, b);
        var before = Hashes(a);

        TreeMutationResult ra = TreeMutation.Apply(a, 10, seed: 4);
        TreeMutationResult rb = TreeMutation.Apply(b, 10, seed: 4);

        Assert.Equal(ra, rb);
        var after = Hashes(a);
        Assert.Equal(after, Hashes(b));
        Assert.Equal(before.Count, ra.Files);
        Assert.Equal((int)Math.Round(before.Count * 0.10), ra.ChangedFiles);
        Assert.Equal(ra.ChangedFiles, ra.Overwritten + ra.Appended + ra.Rewritten);
        Assert.True(ra.Overwritten > 0 && ra.Appended > 0 && ra.Rewritten > 0);
        // Every picked file really differs now (a random region could only match by chance).
        Assert.Equal(ra.ChangedFiles, after.Count(f => before[f.Key] != f.Value));
        Assert.Equal(before.Keys, after.Keys);
        Assert.NotEqual(after, Hashes(TreeMutationOtherSeed(datasets.Scratch("tree-c")))); // another seed, other files
    }

    private string TreeMutationOtherSeed(string dir)
    {
        CopyTree(datasets.First.DbRoot, dir);
        TreeMutation.Apply(dir, 10, seed: 5);
        return dir;
    }
}
