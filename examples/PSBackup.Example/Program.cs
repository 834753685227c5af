using System.Globalization;
using PSBackup.Example;

// psbackup-example generate --out <dir> [--seed N] [--store unison|sqlite]
const string Usage = "usage: psbackup-example generate --out <dir> [--seed N] [--store unison|sqlite]";
if (args.Length == 0 || args[0] != "generate")
{
    Console.Error.WriteLine(Usage);
    return 2;
}
string? output = null;
int seed = ExampleGenerator.DefaultSeed;
ExampleStoreKind store = ExampleStoreKind.Unison;
for (int i = 1; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--out" when i + 1 < args.Length:
            output = args[++i];
            break;
        case "--seed" when i + 1 < args.Length && int.TryParse(args[i + 1], NumberStyles.Integer, CultureInfo.InvariantCulture, out int parsed):
            seed = parsed;
            i++;
            break;
        case "--store" when i + 1 < args.Length && args[i + 1] is "unison" or "sqlite":
            store = args[++i] == "unison" ? ExampleStoreKind.Unison : ExampleStoreKind.Sqlite;
            break;
        default:
            Console.Error.WriteLine($"unknown or incomplete option '{args[i]}'. {Usage}");
            return 2;
    }
}
if (string.IsNullOrWhiteSpace(output))
{
    Console.Error.WriteLine($"--out is required. {Usage}");
    return 2;
}
try
{
    ExampleGenerationResult result = ExampleGenerator.Generate(output, seed, store);
    Console.WriteLine($"object store:    {result.ShardDbRoot}");
    Console.WriteLine(store == ExampleStoreKind.Unison
        ? $"namespace store: {result.UnisonDataDir} (UnisonDB layout: <ns>/wal/*.seg, <ns>/unison.db LMDB)"
        : $"namespace store: {result.UnisonDataDir} (SQLite adapter layout: <ns>/wal/*.wal, <ns>/db/store.sqlite)");
    foreach (ExampleNamespaceSummary ns in result.Namespaces)
    {
        Console.WriteLine($"  {ns.Namespace}: log index 1..{ns.LastLogIndex}, store applied {ns.AppliedLogIndex}, {ns.SealedSegments} sealed segments + active {ns.ActiveSegmentId}");
    }
    return 0;
}
catch (Exception e) when (e is IOException or PSBackup.Engine.PSBackupException)
{
    Console.Error.WriteLine(e.Message);
    return 1;
}
