using System.Text;

namespace PSBackup.Example;

/// <summary>What <see cref="ExampleGenerator.Generate"/> produced, per namespace.</summary>
public sealed record ExampleNamespaceSummary(string Namespace, string Path, long LastLogIndex, long AppliedLogIndex, int SealedSegments, long ActiveSegmentId);

public sealed record ExampleGenerationResult(string OutputDir, string ShardDbRoot, string UnisonDataDir, IReadOnlyList<ExampleNamespaceSummary> Namespaces);

/// <summary>Generates the bundled example database from a seed: <c>shard-db/</c> (object store)
/// and <c>unison/</c> (namespace store). Same seed, same bytes (SQLite files: same rows). No wall
/// clock: all times derive from <see cref="BaseTime"/>.</summary>
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

    public static ExampleGenerationResult Generate(string outputDir, int seed = DefaultSeed)
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
            summaries.Add(GenerateNamespace(Path.Combine(unison, name), name, records, lag, new Random(unchecked(seed * 7919 + i + 1))));
        }
        Directory.CreateDirectory(Path.Combine(unison, "backups"));
        return new ExampleGenerationResult(output, shardDb, unison, summaries);
    }

    /// <summary>Writes <paramref name="records"/> records through an <see cref="ExampleWriter"/>:
    /// puts over a bounded key space (so keys are overwritten) and some deletes, applying to the
    /// store every 50 records while lagging 10-40 records behind, and finally
    /// <paramref name="finalLag"/> behind.</summary>
    public static ExampleNamespaceSummary GenerateNamespace(string namespaceDir, string name, int records, int finalLag, Random random)
    {
        long timeMs = BaseTime.ToUnixTimeMilliseconds();
        using var writer = ExampleWriter.Create(namespaceDir, BaseTime);
        int keySpace = name == "users" ? 800 : 2500;
        for (int i = 0; i < records; i++)
        {
            timeMs += random.Next(100, 3000);
            string key = $"{name}:{random.Next(keySpace):00000}";
            ExampleRecord record = random.Next(10) == 0
                ? ExampleRecord.Delete(key, timeMs)
                : ExampleRecord.Put(key, Value(name, key, i, random), timeMs);
            writer.Append(record);
            if (i % 50 == 49)
            {
                writer.ApplyUpTo(writer.LastLogIndex - random.Next(10, 41));
            }
        }
        writer.ApplyUpTo(writer.LastLogIndex - finalLag);
        return new ExampleNamespaceSummary(name, namespaceDir, writer.LastLogIndex, writer.AppliedLogIndex, writer.SealedSegments, writer.ActiveSegmentId);
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
