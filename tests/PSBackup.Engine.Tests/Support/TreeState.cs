using PSBackup.Engine;
using System.Security.Cryptography;

namespace PSBackup.Engine.Tests.Support;

/// <summary>Every entry under a folder with its size and hash, to prove an operation wrote
/// (or deleted) nothing: capture before, capture after, compare. Operation-history records
/// (<see cref="History"/>) and the events folders holding them are not part of the state.</summary>
public sealed record TreeState(IReadOnlyDictionary<string, string> Entries)
{
    public static TreeState Capture(string root)
    {
        var entries = new SortedDictionary<string, string>(StringComparer.Ordinal);
        if (Directory.Exists(root))
        {
            foreach (string path in Directory.EnumerateFileSystemEntries(root, "*", SearchOption.AllDirectories))
            {
                // The operation history records refusals too; "nothing written" means nothing else.
                if (Directory.Exists(path) ? History.OnlyHoldsOperationEvents(path) : History.IsOperationEventFile(path))
                {
                    continue;
                }
                string rel = Path.GetRelativePath(root, path);
                // A FIFO or device (planted by hostile-input tests) is recorded by its kind, never
                // read: opening a FIFO for reading blocks until a writer comes.
                entries[rel] = Directory.Exists(path) ? "<dir>"
                    : SpecialFiles.KindOf(path) is var kind && kind != FileKind.Regular ? $"<{SpecialFiles.Describe(kind)}>"
                    : Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));
            }
        }
        return new TreeState(entries);
    }

    /// <summary>Asserts the folder is exactly as captured.</summary>
    public void AssertUnchanged(string root)
    {
        TreeState now = Capture(root);
        var added = now.Entries.Keys.Except(Entries.Keys).ToList();
        var removed = Entries.Keys.Except(now.Entries.Keys).ToList();
        var changed = Entries.Keys.Intersect(now.Entries.Keys).Where(k => Entries[k] != now.Entries[k]).ToList();
        Assert.True(added.Count == 0 && removed.Count == 0 && changed.Count == 0,
            $"tree changed: added [{string.Join(", ", added)}], removed [{string.Join(", ", removed)}], changed [{string.Join(", ", changed)}]");
    }
}
