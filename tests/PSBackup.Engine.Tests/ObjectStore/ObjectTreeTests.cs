using PSBackup.Engine.ObjectStore;
using PSBackup.Engine.Tests.Support;
using Xunit;

namespace PSBackup.Engine.Tests.ObjectStore;

/// <summary>The object listing: files in ordinal path order, each status at its file's position.</summary>
public sealed class ObjectTreeTests
{
    [Fact]
    public void Files_are_in_ordinal_path_order_with_each_status_beside_its_own_file()
    {
        using var dir = new TestDirectory();
        // Ordinal order differs from a culture's here: '-' < '.' < '/' < 'B' < 'a' < 'é'.
        string[] rels = ["a-b", "a.b", "a/b", "a/c/d", "B", "é", "ab"];
        for (int i = 0; i < rels.Length; i++)
        {
            string path = dir.Combine(rels[i].Split('/'));
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllBytes(path, new byte[10 + i]); // each its own size
        }

        ObjectTree tree = ObjectTree.List(dir.Path, CancellationToken.None);

        Assert.Equal(rels.Order(StringComparer.Ordinal), tree.Files.Select(f => f.Rel));
        Assert.Equal(rels.Select((r, i) => (r, 10L + i)).OrderBy(x => x.r, StringComparer.Ordinal), tree.Files.Select(f => (f.Rel, f.Size)));
        Assert.Equal(rels.Sum(r => 10L + Array.IndexOf(rels, r)), tree.TotalBytes);
        if (FileStatus.Available)
        {
            Assert.NotNull(tree.Statuses);
            Assert.Equal(tree.Files.Count, tree.Statuses!.Count);
            for (int i = 0; i < tree.Files.Count; i++)
            {
                Assert.Equal(tree.Files[i].Size, tree.Statuses[i]!.Value.Status.Stamp.Size);
            }
        }
        else
        {
            Assert.Null(tree.Statuses);
        }

        tree.ReleaseFiles();
        Assert.Empty(tree.Files);
        Assert.Null(tree.Statuses);
        Assert.Equal(["a", "a/c"], tree.Directories);
    }

    [Fact]
    public void A_names_only_listing_has_no_status_or_size_for_a_name_it_did_not_examine()
    {
        using var dir = new TestDirectory();
        File.WriteAllBytes(dir.Combine("old"), new byte[5]);
        File.WriteAllBytes(dir.Combine("new"), new byte[7]);

        ObjectTree tree = ObjectTree.List(dir.Path, rel => rel == "new", CancellationToken.None);

        Assert.Equal([("new", 7L), ("old", FileStatus.Available ? 0L : 5L)], tree.Files.Select(f => (f.Rel, f.Size)));
        if (FileStatus.Available)
        {
            Assert.NotNull(tree.Statuses![0]);
            Assert.Null(tree.Statuses[1]);
        }
    }
}
