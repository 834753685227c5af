using System.Globalization;
using System.Text;
using System.Text.Json;
using PSBackup.Engine.Wal;
using PSBackup.Example;

namespace PSBackup.Bench;

/// <summary>The parameters a dataset was generated with, stored as <c>dataset.json</c> so the
/// benchmark script can reuse a dataset only when they match.</summary>
public sealed record DatasetStamp(int Version, long Seed, int SizeMiB, int Segments, long LastLogIndex);

/// <summary>What <see cref="Dataset.Generate"/> wrote.</summary>
public sealed record DatasetResult(string OutputDir, string DbRoot, string DataDir, string Namespace, long ObjectBytes, int ObjectFiles, DatasetStamp Stamp);

/// <summary>The benchmark's reference data (SPEC §5), deterministic from a seed:
/// <c>db/&lt;tenant&gt;/&lt;object&gt;/...</c>, a shard-db object store of about <c>sizeMiB</c> of
/// semi-compressible shard files, index files and small metadata; and <c>data/&lt;ns&gt;/</c>, a
/// UnisonDB namespace written by UnisonDB's own code: sealed 16 MiB walfs v1 segments, an active
/// one, and a bbolt store whose checkpoint lies in the first segment, so a point-in-time restore
/// lays out every segment (<see cref="GenerateNamespace"/>).</summary>
public static class Dataset
{
    /// <summary>2: the namespace is written by UnisonDB's own code (walfs v1 <c>.seg</c>, bbolt).</summary>
    public const int FormatVersion = 2;
    public const string Namespace = "ledger";
    public const string StampFile = "dataset.json";
    public const int DefaultSizeMiB = 1024;
    public const int DefaultSegments = 64;
    public const long DefaultSeed = 6;
    /// <summary>Records of the first segment already folded into the store (its checkpoint).</summary>
    public const int AppliedRecords = 1000;
    /// <summary>Records in the active segment after the sealed ones.</summary>
    public const int ActiveRecords = 1000;
    public static readonly DateTimeOffset BaseTime = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>(tenant, object, the indexed fields, an attachment, share of the total size in per mille).</summary>
    public static readonly IReadOnlyList<(string Tenant, string Object, string[] Fields, string Attachment, int PerMille)> Objects =
    [
        ("acme", "customers", ["id", "email"], "logo.png", 150),
        ("acme", "orders", ["id", "customer_id"], "invoice-template.txt", 300),
        ("globex", "inventory", ["sku", "warehouse"], "locations.csv", 200),
        ("globex", "events", ["id", "type"], "schema.json", 250),
        ("initech", "tickets", ["id", "assignee"], "sla.txt", 100),
    ];

    private const long MinShard = 1L << 20;
    private const long MaxShard = 48L << 20;

    /// <summary>One file to write: its path under the output folder and its size (its content
    /// comes from its own generator, seeded by the dataset seed and the path).</summary>
    public sealed record PlannedFile(string RelativePath, long Size, string Table);

    public static DatasetResult Generate(string outputDir, long seed = DefaultSeed, int sizeMiB = DefaultSizeMiB, int segments = DefaultSegments)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(sizeMiB, 8);
        ArgumentOutOfRangeException.ThrowIfLessThan(segments, 2);
        string output = Path.GetFullPath(outputDir);
        if (File.Exists(output) || (Directory.Exists(output) && Directory.EnumerateFileSystemEntries(output).Any()))
        {
            throw new IOException($"'{output}' is not an empty folder. Give a new or empty folder for the benchmark dataset.");
        }
        List<PlannedFile> plan = Plan(seed, sizeMiB);
        string dataDir = Path.Combine(output, "data");
        var wal = Task.Run(() => GenerateNamespace(Path.Combine(dataDir, Namespace), seed, segments));
        Parallel.ForEach(plan, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, file =>
        {
            byte[] content = new byte[file.Size];
            long recordId = 0;
            Content.Fill(content, Prng.For(seed, file.RelativePath), file.Table, ref recordId);
            Write(Path.Combine(output, file.RelativePath), content);
        });
        long lastLogIndex = wal.GetAwaiter().GetResult();
        WriteSmallFiles(output, seed);
        Directory.CreateDirectory(Path.Combine(dataDir, "backups"));
        var stamp = new DatasetStamp(FormatVersion, seed, sizeMiB, segments, lastLogIndex);
        File.WriteAllText(Path.Combine(output, StampFile), JsonSerializer.Serialize(stamp) + "\n");
        string dbRoot = Path.Combine(output, "db");
        var files = Directory.EnumerateFiles(dbRoot, "*", SearchOption.AllDirectories).Select(f => new FileInfo(f).Length).ToList();
        return new DatasetResult(output, dbRoot, dataDir, Namespace, files.Sum(), files.Count, stamp);
    }

    /// <summary>The shard and index files of every object, sizes drawn log-uniformly between 1 and
    /// 48 MiB (4 KiB aligned) until the object's share is met; each shard has one index file per
    /// indexed field of 1/48 of its size.</summary>
    public static List<PlannedFile> Plan(long seed, int sizeMiB)
    {
        var prng = Prng.For(seed, "plan");
        long total = (long)sizeMiB << 20;
        var plan = new List<PlannedFile>();
        foreach (var (tenant, obj, fields, _, perMille) in Objects)
        {
            long budget = total * perMille / 1000;
            long left = budget;
            for (int shard = 0; left > 0; shard++)
            {
                double exponent = Math.Log(MinShard) + prng.Next(1_000_000) / 1_000_000.0 * (Math.Log(MaxShard) - Math.Log(MinShard));
                long size = Math.Min(left, (long)Math.Exp(exponent) & ~4095L);
                long indexSize = Math.Max(4096, size / 48) & ~7L;
                left -= size + indexSize * fields.Length;
                if (left < MinShard / 2)
                {
                    size += Math.Max(0, left);
                    left = 0;
                }
                string objectDir = Path.Combine("db", tenant, obj);
                plan.Add(new PlannedFile(Path.Combine(objectDir, "data", $"{shard:000}.bin"), size, obj));
                foreach (string field in fields)
                {
                    plan.Add(new PlannedFile(Path.Combine(objectDir, "indexes", field, $"{shard:000}.idx"), indexSize, field));
                }
            }
        }
        return plan;
    }

    /// <summary>metadata/counts, metadata/sequences/&lt;field&gt;, files/&lt;attachment&gt; and fields.conf of each object.</summary>
    private static void WriteSmallFiles(string output, long seed)
    {
        foreach (var (tenant, obj, fields, attachment, _) in Objects)
        {
            string dir = Path.Combine(output, "db", tenant, obj);
            int shards = Directory.GetFiles(Path.Combine(dir, "data")).Length;
            Write(Path.Combine(dir, "metadata", "counts"), Encoding.UTF8.GetBytes($"shards={shards}\n"));
            Write(Path.Combine(dir, "metadata", "sequences", fields[0]), Encoding.UTF8.GetBytes($"next={shards * 100_000 + 1}\n"));
            byte[] attached = new byte[64 * 1024];
            long id = 0;
            Content.Fill(attached, Prng.For(seed, Path.Combine("db", tenant, obj, "files", attachment)), obj, ref id);
            Write(Path.Combine(dir, "files", attachment), attached);
            var conf = new StringBuilder("# name:type:indexed\n");
            foreach (string field in fields)
            {
                conf.Append(CultureInfo.InvariantCulture, $"{field}:string:yes\n");
            }
            conf.Append("payload:bytes:no\nupdated_at:timestamp:no\n");
            Write(Path.Combine(dir, "fields.conf"), Encoding.UTF8.GetBytes(conf.ToString()));
        }
    }

    /// <summary>Writes the namespace with UnisonDB's own code (<c>unisondb-walfs store-gen</c>:
    /// walfs v1 <c>%09d.seg</c> segments of 16 MiB with <c>.seg.idx</c> sidecars, and a bbolt
    /// <c>unison.db</c> that applied the first <see cref="AppliedRecords"/> records, its checkpoint
    /// in the first segment, so a point-in-time restore replays every segment): exactly
    /// <paramref name="segments"/> sealed segments and an active one holding
    /// <see cref="ActiveRecords"/> records. store-gen takes a record count, not a segment count, and
    /// its records are the same for a seed whatever the count, so a first run with a generous
    /// count says where segment <paramref name="segments"/> + 1 begins and the second stops there.
    /// Returns the last log index.</summary>
    private static long GenerateNamespace(string namespaceDir, long seed, int segments)
    {
        string dataDir = Path.GetDirectoryName(namespaceDir)!;
        string walDir = Path.Combine(namespaceDir, ExampleStore.WalFolder);
        long records = (segments + 2) * 20_000L;
        for (int attempt = 0; ; attempt++)
        {
            StoreGen(dataDir, seed, records);
            string active = Path.Combine(walDir, WalFormat.SegmentFileName(segments + 1, WalFormat.SegExtension));
            if (File.Exists(active))
            {
                long first = WalSegmentReader.Inspect(active, Namespace).FirstLogIndex;
                if (records == first + ActiveRecords - 1)
                {
                    break;
                }
                records = first + ActiveRecords - 1;
            }
            else
            {
                records *= 2;
            }
            if (attempt == 3)
            {
                throw new InvalidOperationException($"unisondb-walfs store-gen did not give {segments} sealed segments in {walDir}.");
            }
        }
        var listed = WalDirectory.ListSegmentFiles(walDir);
        if (listed.Count != segments + 1)
        {
            throw new InvalidOperationException($"unisondb-walfs store-gen wrote {listed.Count} segments in {walDir}, not {segments} sealed and one active.");
        }
        return records;
    }

    private static void StoreGen(string dataDir, long seed, long records)
    {
        string nsDir = Path.Combine(dataDir, Namespace);
        if (Directory.Exists(nsDir))
        {
            Directory.Delete(nsDir, recursive: true);
        }
        Directory.CreateDirectory(dataDir);
        string I(long n) => n.ToString(CultureInfo.InvariantCulture);
        UnisonWalfs.Run("store-gen", "-data", dataDir, "-ns", Namespace, "-engine", "BOLT", "-seg-size", I(WalFormat.DefaultSegmentSize),
            "-records", I(records), "-checkpoint-lsn", I(AppliedRecords), "-flush-every", I(AppliedRecords), "-seed", I(seed),
            "-hlc-start", I(BaseTime.ToUnixTimeMilliseconds()), "-hlc-step", "10");
    }

    /// <summary>Reads <c>dataset.json</c>, or null when the folder holds no complete dataset.</summary>
    public static DatasetStamp? ReadStamp(string outputDir)
    {
        string path = Path.Combine(outputDir, StampFile);
        return File.Exists(path) ? JsonSerializer.Deserialize<DatasetStamp>(File.ReadAllText(path)) : null;
    }

    internal static void Write(string path, ReadOnlySpan<byte> content)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1);
        file.Write(content);
    }
}
