using System.Text;

namespace PSBackup.Example;

/// <summary>What <see cref="ExampleGenerator.Generate"/> produced, per namespace.</summary>
public sealed record ExampleNamespaceSummary(string Namespace, string Path, long LastLogIndex, long AppliedLogIndex, int SealedSegments, long ActiveSegmentId);

public sealed record ExampleGenerationResult(string OutputDir, string ShardDbRoot, string UnisonDataDir, IReadOnlyList<ExampleNamespaceSummary> Namespaces)
{
    /// <summary>How the namespaces' stores are laid out.</summary>
    public ExampleStoreKind Store { get; init; }
}

/// <summary>The namespace store layout the example is generated in.</summary>
public enum ExampleStoreKind
{
    /// <summary>Exactly UnisonDB's data directory: <c>&lt;ns&gt;/wal/%09d.seg</c> (walfs v1 with
    /// <c>.seg.idx</c>), <c>&lt;ns&gt;/unison.db/</c> (LMDB) with a WAL checkpoint, <c>pid.lock</c>
    /// (<see cref="UnisonExampleWriter"/>). The default.</summary>
    Unison,
    /// <summary>The SQLite store adapter's layout for other engines: <c>&lt;ns&gt;/db/store.sqlite</c>
    /// and <c>&lt;ns&gt;/wal/%09d.wal</c> (walfs v2 with opaque payloads; <see cref="ExampleWriter"/>).</summary>
    Sqlite,
}

/// <summary>Generates the bundled example database from a seed: <c>shard-db/</c> (object store)
/// and <c>unison/</c> (namespace store: UnisonDB's layout, or the SQLite adapter's with
/// <see cref="ExampleStoreKind.Sqlite"/>). Same seed, same records (store files: same content). No
/// wall clock: all times derive from <see cref="BaseTime"/>.</summary>
public static class ExampleGenerator
{
    public const int DefaultSeed = 42;
    public static readonly DateTimeOffset BaseTime = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>(namespace, records to write, records the store lags behind at the end).</summary>
    public static readonly IReadOnlyList<(string Name, int Records, int FinalLag)> Namespaces =
    [
        ("users", 9000, 37),
        ("events", 8000, 23),
    ];

    public static ExampleGenerationResult Generate(string outputDir, int seed = DefaultSeed, ExampleStoreKind store = ExampleStoreKind.Unison)
    {
        string output = Path.GetFullPath(outputDir);
        if (Directory.Exists(output) && Directory.EnumerateFileSystemEntries(output).Any())
        {
            throw new IOException($"'{output}' is not empty. Give a new or empty folder for the example database.");
        }
        if (File.Exists(output))
        {
            throw new IOException($"'{output}' is a file. Give a new or empty folder for the example database.");
        }
        Directory.CreateDirectory(output);
        string shardDb = Path.Combine(output, "shard-db");
        string unison = Path.Combine(output, "unison");

        ShardDbGenerator.Generate(shardDb, new Random(seed));
        var summaries = new List<ExampleNamespaceSummary>();
        for (int i = 0; i < Namespaces.Count; i++)
        {
            var (name, records, lag) = Namespaces[i];
            summaries.Add(GenerateNamespace(Path.Combine(unison, name), name, records, lag, new Random(unchecked(seed * 7919 + i + 1)), store));
            if (store == ExampleStoreKind.Unison)
            {
                // UnisonDB's backup API writes into <dataDir>/backups/<ns> (seed 003).
                Directory.CreateDirectory(Path.Combine(unison, "backups", name));
            }
        }
        Directory.CreateDirectory(Path.Combine(unison, "backups"));
        return new ExampleGenerationResult(output, shardDb, unison, summaries) { Store = store };
    }

    /// <summary>Writes <paramref name="records"/> records: puts over a bounded key space (so keys
    /// are overwritten) and some deletes, applying to the store every 50 records while lagging 10-40
    /// records behind. The SQLite layout ends <paramref name="finalLag"/> records behind the WAL. In
    /// UnisonDB's layout the store's checkpoint ends <paramref name="finalLag"/> records before the end
    /// of the last sealed segment (flushes that would pass it are not made), as a UnisonDB store
    /// lags its WAL by a memtable: what a snapshot holds plus the shipped sealed segments can then be
    /// restored, and the active segment's records live only in the WAL.</summary>
    public static ExampleNamespaceSummary GenerateNamespace(string namespaceDir, string name, int records, int finalLag, Random random,
        ExampleStoreKind store = ExampleStoreKind.Unison)
    {
        // The records and the flush schedule first (one random stream, so both layouts hold the same records).
        long timeMs = BaseTime.ToUnixTimeMilliseconds();
        int keySpace = name == "users" ? 800 : 2500;
        var stream = new List<ExampleRecord>(records);
        var flushes = new List<(int AfterRecords, int Lag)>();
        for (int i = 0; i < records; i++)
        {
            timeMs += random.Next(100, 3000);
            string key = $"{name}:{random.Next(keySpace):00000}";
            stream.Add(random.Next(10) == 0
                ? ExampleRecord.Delete(key, timeMs)
                : ExampleRecord.Put(key, Value(name, key, i, random), timeMs));
            if (i % 50 == 49)
            {
                flushes.Add((i + 1, random.Next(10, 41)));
            }
        }

        if (store == ExampleStoreKind.Sqlite)
        {
            using var sqlite = ExampleWriter.Create(namespaceDir, BaseTime);
            int next = 0;
            for (int i = 0; i < stream.Count; i++)
            {
                sqlite.Append(stream[i]);
                if (next < flushes.Count && flushes[next].AfterRecords == i + 1)
                {
                    sqlite.ApplyUpTo(sqlite.LastLogIndex - flushes[next++].Lag);
                }
            }
            sqlite.ApplyUpTo(sqlite.LastLogIndex - finalLag);
            return new ExampleNamespaceSummary(name, namespaceDir, sqlite.LastLogIndex, sqlite.AppliedLogIndex, sqlite.SealedSegments, sqlite.ActiveSegmentId);
        }

        using var unison = UnisonExampleWriter.Create(namespaceDir, name, BaseTime);
        foreach (ExampleRecord record in stream)
        {
            unison.Append(record);
        }
        long checkpoint = unison.ActiveSegmentFirstLogIndex - 1 - finalLag;
        if (checkpoint < 1)
        {
            checkpoint = unison.LastLogIndex - finalLag;
        }
        foreach ((int afterRecords, int lag) in flushes)
        {
            if (afterRecords - lag <= checkpoint)
            {
                unison.ApplyUpTo(afterRecords - lag);
            }
        }
        unison.ApplyUpTo(checkpoint);
        return new ExampleNamespaceSummary(name, namespaceDir, unison.LastLogIndex, unison.AppliedLogIndex, unison.SealedSegments, unison.ActiveSegmentId);
    }

    private static byte[] Value(string name, string key, int sequence, Random random)
    {
        var text = new StringBuilder();
        text.Append($"{{\"key\":\"{key}\",\"seq\":{sequence},\"ns\":\"{name}\",\"data\":\"");
        int length = random.Next(20, 120);
        for (int i = 0; i < length; i++)
        {
            text.Append((char)('a' + random.Next(26)));
        }
        text.Append("\"}");
        return Encoding.UTF8.GetBytes(text.ToString());
    }
}
