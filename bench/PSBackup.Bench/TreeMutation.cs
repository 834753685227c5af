namespace PSBackup.Bench;

/// <summary>What <see cref="TreeMutation.Apply"/> changed.</summary>
public sealed record TreeMutationResult(int Files, int ChangedFiles, long BytesWritten, int Overwritten, int Appended, int Rewritten);

/// <summary>The real tree's "5 % of files changed": about <c>percent</c> % of the regular files
/// under a folder, picked in a seeded order (deterministic for one tree and seed), each changed one
/// of three ways as software updates and databases change files: a region overwritten in place
/// (same size and inode), bytes appended, or the whole file rewritten to a temp name and renamed
/// over it (new inode, as dpkg and package managers install). Only whole-file picks, so the share of
/// changed bytes follows the tree's own size distribution.</summary>
public static class TreeMutation
{
    private const int MaxRegion = 64 * 1024;

    public static TreeMutationResult Apply(string root, double percent, long seed)
    {
        if (percent is <= 0 or > 100)
        {
            throw new ArgumentOutOfRangeException(nameof(percent), percent, "Give a percentage in (0, 100].");
        }
        root = Path.GetFullPath(root);
        if (!Directory.Exists(root))
        {
            throw new DirectoryNotFoundException($"No folder at '{root}'.");
        }
        var files = Directory.EnumerateFiles(root, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = FileAttributes.ReparsePoint })
            .Order(StringComparer.Ordinal).ToList();
        var prng = Prng.For(seed, "mutate-tree");
        for (int i = files.Count - 1; i > 0; i--)
        {
            int j = prng.Next(i + 1);
            (files[i], files[j]) = (files[j], files[i]);
        }
        int count = Math.Max(1, (int)Math.Round(files.Count * percent / 100));
        long changed = 0;
        int overwritten = 0, appended = 0, rewritten = 0;
        for (int step = 0; step < count && step < files.Count; step++)
        {
            string file = files[step];
            long length = new FileInfo(file).Length;
            var content = Prng.For(seed, Path.GetRelativePath(root, file), step);
            int region = (int)prng.Next(4096, MaxRegion + 1);
            byte[] bytes = new byte[region];
            content.Fill(bytes);
            switch (length == 0 ? 1 : prng.Next(3))
            {
                case 0:
                {
                    // In place: same size, same inode; the region lands anywhere in the file.
                    int n = (int)Math.Min(region, length);
                    long offset = length > n ? prng.Next(0L, length - n + 1) : 0;
                    using var fs = new FileStream(file, FileMode.Open, FileAccess.Write);
                    fs.Position = offset;
                    fs.Write(bytes, 0, n);
                    changed += n;
                    overwritten++;
                    break;
                }
                case 1:
                {
                    using var fs = new FileStream(file, FileMode.Append, FileAccess.Write);
                    fs.Write(bytes);
                    changed += region;
                    appended++;
                    break;
                }
                default:
                {
                    // A new version of the file: its old bytes with a region replaced, written
                    // whole to a temp name and renamed over it (a new inode).
                    byte[] whole = File.ReadAllBytes(file);
                    int n = Math.Min(region, whole.Length);
                    int offset = whole.Length > n ? (int)prng.Next(0L, whole.Length - n + 1L) : 0;
                    Array.Copy(bytes, 0, whole, offset, n);
                    string temp = file + ".bench-rewrite";
                    File.WriteAllBytes(temp, whole);
                    File.Move(temp, file, overwrite: true);
                    changed += n;
                    rewritten++;
                    break;
                }
            }
        }
        return new TreeMutationResult(files.Count, Math.Min(count, files.Count), changed, overwritten, appended, rewritten);
    }
}
