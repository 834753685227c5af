using System.Security.Cryptography;
using PSBackup.Bench;
using PSBackup.Engine.Repository.Compression;
using PSBackup.Engine.Tests.Support;
using PSBackup.Engine.Wal;
using PSBackup.Example;

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

    [Fact]
    public void TheSameSeedGivesTheSameBytes()
    {
        var first = Hashes(datasets.First.OutputDir);
        var second = Hashes(datasets.Second.OutputDir);
        Assert.Equal(first, second);
        Assert.Contains(first.Keys, k => k.StartsWith("db/acme/orders/data/", StringComparison.Ordinal));
        Assert.Contains(first.Keys, k => k.StartsWith("data/ledger/wal/", StringComparison.Ordinal));
        // The SQLite store is not byte-stable across writes; its rows are.
        ExampleState a = ExampleStore.ReadState(ExampleStore.DbPath(Path.Combine(datasets.First.DataDir, Dataset.Namespace)));
        ExampleState b = ExampleStore.ReadState(ExampleStore.DbPath(Path.Combine(datasets.Second.DataDir, Dataset.Namespace)));
        Assert.Equal(a.AppliedLogIndex, b.AppliedLogIndex);
        Assert.Equal(a.Rows, b.Rows);
        Assert.Equal(Dataset.AppliedRecords, a.AppliedLogIndex);
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
    public async Task TheNamespaceHoldsContinuousSealedSegmentsAndAStoreAtTheStartOfTheLog()
    {
        DatasetResult d = datasets.First;
        WalDirectoryReport report = await WalOperations.GetSegmentsAsync(new GetWalSegmentOptions(d.DataDir, Dataset.Namespace), OperationContext.Default);
        Assert.False(report.HasGap);
        Assert.Equal(Enumerable.Range(1, GeneratedDatasets.Segments).Select(i => (long)i), report.Segments.Select(s => s.SegmentId));
        Assert.All(report.Segments, s =>
        {
            Assert.True(s.Valid, s.Error);
            Assert.True(s.Sealed);
            Assert.Equal(WalFormat.DefaultSegmentSize, s.Bytes);
            Assert.True(s.ValidBytes > WalFormat.DefaultSegmentSize * 9 / 10, "a sealed segment is nearly full");
        });
        Assert.Equal(d.Stamp.LastLogIndex, report.Segments[^1].LastLogIndex);
        Assert.Equal(d.Stamp, Dataset.ReadStamp(d.OutputDir));
        // Every record is a put of the example database, so its replay can apply the WAL.
        Assert.All(WalSegmentReader.ReadRecords(report.Segments[0].Path).Take(50), r => Assert.Equal(ExampleOp.Put, ExampleRecord.Decode(r.Data).Op));
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
