using System.Globalization;
using PSBackup.Example;

// psbackup-example generate --out <dir> [--seed N]
const string Usage = "usage: psbackup-example generate --out <dir> [--seed N]";
if (args.Length == 0 || args[0] != "generate")
{
    Console.Error.WriteLine(Usage);
    return 2;
}
string? output = null;
int seed = ExampleGenerator.DefaultSeed;
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
    ExampleGenerationResult result = ExampleGenerator.Generate(output, seed);
    Console.WriteLine($"object store:    {result.ShardDbRoot}");
    Console.WriteLine($"namespace store: {result.UnisonDataDir}");
    foreach (ExampleNamespaceSummary ns in result.Namespaces)
    {
        Console.WriteLine($"  {ns.Namespace}: log index 1..{ns.LastLogIndex}, store applied {ns.AppliedLogIndex}, {ns.SealedSegments} sealed segments + active {ns.ActiveSegmentId}");
    }
    return 0;
}
catch (IOException e)
{
    Console.Error.WriteLine(e.Message);
    return 1;
}
