namespace PSBackup.Bench;

/// <summary>What <see cref="Mutation.Apply"/> changed.</summary>
public sealed record MutationResult(long TotalBytes, long ChangedBytes, int Appended, int Overwritten, int Rewritten, int IndexesRewritten);

/// <summary>The incremental scenario's change: about <c>percent</c> % of the object store's bytes,
/// deterministic from the seed and the current tree. Shard files are picked in a seeded order and
/// each gets one of: new blocks appended; a region overwritten in place; or the whole file
/// rewritten the database's way (<c>.new</c>, then rename). Every touched shard's index files are
/// rewritten too, as an index rebuild would.</summary>
public static class Mutation
{
    private const long MinStep = 256 * 1024;
    private const long MaxStep = 4L << 20;

    public static MutationResult Apply(string outputDir, double percent, long seed)
    {
        if (percent is <= 0 or > 100)
        {
            throw new ArgumentOutOfRangeException(nameof(percent), percent, "Give a percentage in (0, 100].");
        }
        string dbRoot = Path.Combine(Path.GetFullPath(outputDir), "db");
        if (!Directory.Exists(dbRoot))
        {
            throw new DirectoryNotFoundException($"No object store at '{dbRoot}'. Run 'generate --out {outputDir}' first.");
        }
        var files = Directory.EnumerateFiles(dbRoot, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
        long total = files.Sum(f => new FileInfo(f).Length);
        long target = (long)(total * percent / 100);
        var shards = files.Where(f => f.EndsWith(".bin", StringComparison.Ordinal)).ToList();
        var prng = Prng.For(seed, "mutate");
        for (int i = shards.Count - 1; i > 0; i--)
        {
            int j = prng.Next(i + 1);
            (shards[i], shards[j]) = (shards[j], shards[i]);
        }

        long changed = 0;
        int appended = 0, overwritten = 0, rewritten = 0, indexes = 0;
        for (int step = 0; step < shards.Count && changed < target; step++)
        {
            string shard = shards[step];
            long length = new FileInfo(shard).Length;
            long size = Math.Min(target - changed, prng.Next(MinStep, MaxStep)) & ~4095L;
            size = Math.Max(size, 4096);
            var content = Prng.For(seed, Path.GetRelativePath(dbRoot, shard), step);
            long recordId = length / 64;
            int op = prng.Next(3);
            if (op == 2 && length > target - changed + MinStep)
            {
                op = 1; // rewriting this shard whole would overshoot the target: change a region
            }
            if (op == 1 && size >= length)
            {
                op = 2; // a region as large as the file: rewrite it whole
            }
            switch (op)
            {
                case 0:
                    using (var file = new FileStream(shard, FileMode.Append, FileAccess.Write))
                    {
                        file.Write(Fresh(size, content, ref recordId));
                    }
                    appended++;
                    break;
                case 1:
                    using (var file = new FileStream(shard, FileMode.Open, FileAccess.Write))
                    {
                        file.Position = prng.Next(0, (length - size) / 4096 + 1) * 4096;
                        file.Write(Fresh(size, content, ref recordId));
                    }
                    overwritten++;
                    break;
                default:
                    // The whole file, as the database rebuilds a shard: .new, then rename over.
                    size = length;
                    ReplaceAtomically(shard, Fresh(size, content, ref recordId));
                    rewritten++;
                    break;
            }
            changed += size;
            string objectDir = Path.GetDirectoryName(Path.GetDirectoryName(shard)!)!;
            string indexName = Path.ChangeExtension(Path.GetFileName(shard), ".idx");
            foreach (string index in Directory.EnumerateDirectories(Path.Combine(objectDir, "indexes")).Order(StringComparer.Ordinal).Select(d => Path.Combine(d, indexName)).Where(File.Exists))
            {
                long indexLength = new FileInfo(index).Length;
                ReplaceAtomically(index, Fresh(indexLength, content, ref recordId));
                changed += indexLength;
                indexes++;
            }
        }
        return new MutationResult(total, changed, appended, overwritten, rewritten, indexes);
    }

    private static byte[] Fresh(long size, Prng prng, ref long recordId)
    {
        byte[] bytes = new byte[size];
        Content.Fill(bytes, prng, "mutated", ref recordId);
        return bytes;
    }

    private static void ReplaceAtomically(string path, byte[] content)
    {
        string temporary = path + ".new";
        Dataset.Write(temporary, content);
        File.Move(temporary, path, overwrite: true);
    }
}
