using System.Security.Cryptography;
using PSBackup.Engine.Tests.Support;
using PSBackup.Engine.Wal;
using PSBackup.Example;

namespace PSBackup.Engine.Tests.Example;

/// <summary>Two generations of the example in the SQLite adapter's layout with the same seed,
/// shared by the tests of the class (UnisonDB's layout: <see cref="UnisonExampleTests"/>).</summary>
public sealed class GeneratedExamples : IDisposable
{
    public const int Seed = 1234;
    private readonly TestDirectory _dir = new();

    public GeneratedExamples()
    {
        First = ExampleGenerator.Generate(_dir.Combine("first"), Seed, ExampleStoreKind.Sqlite);
        Second = ExampleGenerator.Generate(_dir.Combine("second"), Seed, ExampleStoreKind.Sqlite);
    }

    public ExampleGenerationResult First { get; }
    public ExampleGenerationResult Second { get; }

    public string Scratch(string name) => _dir.Combine("scratch", name);

    public void Dispose() => _dir.Dispose();
}

public sealed class ExampleDatabaseTests(GeneratedExamples examples) : IClassFixture<GeneratedExamples>
{
    private static bool IsSqlite(string path) => path.Contains(".sqlite", StringComparison.Ordinal);

    private static SortedDictionary<string, string> Hashes(string root) =>
        new(Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories)
                .ToDictionary(f => Path.GetRelativePath(root, f).Replace('\\', '/'), f => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f)))),
            StringComparer.Ordinal);

    [Fact]
    public void GenerationWithTheSameSeedIsDeterministic()
    {
        var first = Hashes(examples.First.OutputDir);
        var second = Hashes(examples.Second.OutputDir);
        Assert.Equal(first.Keys, second.Keys);
        foreach (string rel in first.Keys.Where(k => !IsSqlite(k)))
        {
            Assert.True(first[rel] == second[rel], $"'{rel}' differs between two runs with seed {GeneratedExamples.Seed}");
        }
        foreach (string rel in first.Keys.Where(k => k.EndsWith(".sqlite", StringComparison.Ordinal)))
        {
            ExampleState a = ExampleStore.ReadState(Path.Combine(examples.First.OutputDir, rel));
            ExampleState b = ExampleStore.ReadState(Path.Combine(examples.Second.OutputDir, rel));
            Assert.Equal(a.AppliedLogIndex, b.AppliedLogIndex);
            Assert.Equal(a.Rows, b.Rows);
        }
        Assert.Equal(examples.First.Namespaces.Select(n => n with { Path = "" }), examples.Second.Namespaces.Select(n => n with { Path = "" }));
    }

    [Fact]
    public void ADifferentSeedGivesDifferentData()
    {
        string other = examples.Scratch("seed-99");
        ExampleGenerator.Generate(other, 99, ExampleStoreKind.Sqlite);
        Assert.NotEqual(Hashes(examples.First.OutputDir)["unison/users/wal/000000001.wal"], Hashes(other)["unison/users/wal/000000001.wal"]);
    }

    [Fact]
    public void LayoutMatchesBothDatabaseKindsAndStaysSmall()
    {
        string shard = examples.First.ShardDbRoot;
        foreach (var (tenant, obj, fields, attachment) in ShardDbGenerator.Objects)
        {
            string o = Path.Combine(shard, tenant, obj);
            Assert.True(File.Exists(Path.Combine(o, "data", "000.bin")));
            Assert.InRange(Directory.GetFiles(Path.Combine(o, "data"), "*.bin").Sum(f => new FileInfo(f).Length), 100_000, 600_000);
            foreach (string field in fields)
            {
                Assert.Equal(Directory.GetFiles(Path.Combine(o, "data")).Length, Directory.GetFiles(Path.Combine(o, "indexes", field), "*.idx").Length);
            }
            Assert.True(File.Exists(Path.Combine(o, "metadata", "counts")));
            Assert.Single(Directory.GetFiles(Path.Combine(o, "metadata", "sequences")));
            Assert.True(File.Exists(Path.Combine(o, "files", attachment)));
            Assert.True(File.Exists(Path.Combine(o, "fields.conf")));
        }
        Assert.Equal(["acme", "globex"], Directory.GetDirectories(shard).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        foreach (ExampleNamespaceSummary ns in examples.First.Namespaces)
        {
            Assert.Equal(["store.sqlite"], Directory.GetFiles(Path.Combine(ns.Path, "db")).Select(Path.GetFileName));
            Assert.True(ns.AppliedLogIndex < ns.LastLogIndex, "the store must lag the WAL so replay matters");
        }
        long total = Directory.EnumerateFiles(examples.First.OutputDir, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
        Assert.True(total < 10 * 1024 * 1024, $"example is {total} bytes");
    }

    [Fact]
    public void WalSegmentsValidateWithoutGapsAndOnlyTheLastIsActive()
    {
        foreach (ExampleNamespaceSummary ns in examples.First.Namespaces)
        {
            WalDirectoryReport report = WalDirectory.Scan(Path.Combine(ns.Path, "wal"), ns.Namespace);
            Assert.False(report.HasGap, string.Join("; ", report.ContinuityErrors));
            Assert.True(report.Segments.Count >= 4, $"{ns.Namespace} has {report.Segments.Count} segments; several sealed plus one active expected");
            Assert.All(report.Segments, s => Assert.True(s.Valid, s.Error));
            Assert.All(report.Segments.SkipLast(1), s => Assert.True(s.Sealed));
            Assert.False(report.Segments[^1].Sealed);
            Assert.Equal(ns.ActiveSegmentId, report.Segments[^1].SegmentId);
            Assert.Equal(Enumerable.Range(1, report.Segments.Count).Select(i => (long)i), report.Segments.Select(s => s.SegmentId));
            Assert.Equal(1, report.Segments[0].FirstLogIndex);
            Assert.Equal(ns.LastLogIndex, report.Segments[^1].LastLogIndex);
            Assert.All(report.Segments, s => Assert.Equal(ExampleWriter.DefaultSegmentSize, s.Bytes));
            // Payloads decode and time never goes backwards.
            long previous = 0;
            foreach (WalSegmentInfo segment in report.Segments)
            {
                foreach (WalRecord record in WalSegmentReader.ReadRecords(segment.Path))
                {
                    long ts = ExampleRecord.Decode(record.Data).TimestampUnixMs;
                    Assert.True(ts > previous);
                    previous = ts;
                }
            }
        }
    }

    [Fact]
    public void ReplayIntoAnEmptyStoreMatchesTheGeneratedStoreAfterItsOwnReplay()
    {
        foreach (ExampleNamespaceSummary ns in examples.First.Namespaces)
        {
            // The generated store, copied, replays the records it lagged behind.
            string own = Path.Combine(examples.Scratch("own"), ns.Namespace);
            CopyTree(ns.Path, own);
            ExampleState lagging = ExampleStore.ReadState(ExampleStore.DbPath(own));
            ReplayResult ownReplay = ExampleStore.Replay(own);
            Assert.Equal(lagging.AppliedLogIndex, ownReplay.AppliedBefore);
            Assert.Equal(ns.LastLogIndex - ns.AppliedLogIndex, ownReplay.RecordsApplied);
            ExampleState ownState = ExampleStore.ReadState(ExampleStore.DbPath(own));
            Assert.Equal(ns.LastLogIndex, ownState.AppliedLogIndex);
            Assert.NotEqual(lagging.Rows, ownState.Rows);

            // Only the WAL, into a fresh empty store.
            string fresh = Path.Combine(examples.Scratch("fresh"), ns.Namespace);
            CopyTree(Path.Combine(ns.Path, "wal"), Path.Combine(fresh, "wal"));
            ReplayResult freshReplay = ExampleStore.Replay(fresh);
            Assert.Equal(0, freshReplay.AppliedBefore);
            Assert.Equal(ns.LastLogIndex, freshReplay.RecordsApplied);
            ExampleState freshState = ExampleStore.ReadState(ExampleStore.DbPath(fresh));
            Assert.Equal(ownState.AppliedLogIndex, freshState.AppliedLogIndex);
            Assert.Equal(ownState.Rows, freshState.Rows);

            // Idempotent: a second replay changes nothing.
            ReplayResult again = ExampleStore.Replay(fresh);
            Assert.Equal(0, again.RecordsApplied);
            Assert.Equal(freshState.Rows, ExampleStore.ReadState(ExampleStore.DbPath(fresh)).Rows);
        }
    }

    [Fact]
    public void ReplayRefusesAWalGap()
    {
        ExampleNamespaceSummary ns = examples.First.Namespaces[0];
        string gap = Path.Combine(examples.Scratch("gap"), ns.Namespace);
        CopyTree(Path.Combine(ns.Path, "wal"), Path.Combine(gap, "wal"));
        File.Delete(Path.Combine(gap, "wal", WalFormat.SegmentFileName(1)));

        var e = Assert.Throws<InvalidDataException>(() => ExampleStore.Replay(gap));
        Assert.Contains("log index 1", e.Message);
    }

    [Fact]
    public void GeneratorRefusesANonEmptyOutputFolder()
    {
        string target = examples.Scratch("occupied");
        Directory.CreateDirectory(target);
        File.WriteAllText(Path.Combine(target, "keep.txt"), "mine");
        var before = TreeState.Capture(target);

        Assert.Throws<IOException>(() => ExampleGenerator.Generate(target, 1));

        before.AssertUnchanged(target);
    }

    [Fact]
    public void RecordsRoundTripAndGarbageIsRejected()
    {
        var put = ExampleRecord.Put("user:ü", [0, 1, 2, 255], 1_767_225_600_123);
        ExampleRecord back = ExampleRecord.Decode(put.Encode());
        Assert.Equal((put.Op, put.Key, put.TimestampUnixMs), (back.Op, back.Key, back.TimestampUnixMs));
        Assert.Equal(put.Value, back.Value);
        var delete = ExampleRecord.Decode(ExampleRecord.Delete("k", 5).Encode());
        Assert.Equal(ExampleOp.Delete, delete.Op);
        Assert.Empty(delete.Value);
        byte[] bad = put.Encode();
        Assert.Throws<InvalidDataException>(() => ExampleRecord.Decode(bad.AsSpan(0, bad.Length - 1)));
        bad[1] = 9;
        Assert.Throws<InvalidDataException>(() => ExampleRecord.Decode(bad));
    }

    private static void CopyTree(string source, string destination)
    {
        foreach (string file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            string target = Path.Combine(destination, Path.GetRelativePath(source, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }
}
