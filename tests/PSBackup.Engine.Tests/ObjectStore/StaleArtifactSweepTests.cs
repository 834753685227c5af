using PSBackup.Engine.ObjectStore;
using PSBackup.Engine.Tests.Support;

namespace PSBackup.Engine.Tests.ObjectStore;

public sealed class StaleArtifactSweepTests
{
    /// <summary>A db root with artifacts at several depths, look-alikes, and links.</summary>
    private static (string[] Artifacts, string[] Kept) Build(string root, string outside)
    {
        ObjectFixture.Populate(Path.Combine(root, "t1", "users"), seed: 1);
        ObjectFixture.Write(root, "t1/users/data/003.bin.new", new byte[1000]);
        ObjectFixture.Write(root, "t1/users/data/000.bin.old", new byte[250]);
        ObjectFixture.Write(root, "t1/users/indexes/email.tmp/000.idx", new byte[40]);
        ObjectFixture.Write(root, "t1/users/indexes/email.tmp/nested.new", new byte[2]); // inside an artifact: not listed by itself
        ObjectFixture.Write(root, "t1/users.backup-20260101T000000.tmp/fields.conf", new byte[7]);
        ObjectFixture.Write(root, "fields.conf.tmp", new byte[3]);
        foreach (string lookAlike in new[] { "t1/users/files/x.newer", "t1/users/files/file.tmpl", "t1/users/metadata/old", "t1/users/files/new", "t1/users/files/tmp", "t1/users/files/.new", "t1/users/files/a.old.bak" })
        {
            ObjectFixture.Write(root, lookAlike, [1]);
        }
        ObjectFixture.Write(outside, "keep.tmp", [1, 2, 3]);
        ObjectFixture.Write(outside, "inner/keep.new", [1]);
        Directory.CreateSymbolicLink(Path.Combine(root, "t1", "link.tmp"), outside);     // an artifact itself: the link goes, never its target
        Directory.CreateSymbolicLink(Path.Combine(root, "t1", "linkdir"), outside);      // not followed: keep.tmp behind it is not found
        string[] artifacts =
        [
            "fields.conf.tmp",
            "t1/link.tmp",
            "t1/users.backup-20260101T000000.tmp",
            "t1/users/data/000.bin.old",
            "t1/users/data/003.bin.new",
            "t1/users/indexes/email.tmp",
        ];
        string[] kept = ["t1/linkdir", "t1/users/files/x.newer", "t1/users/files/file.tmpl", "t1/users/metadata/old", "t1/users/files/new", "t1/users/files/tmp", "t1/users/files/.new", "t1/users/files/a.old.bak", "t1/users/fields.conf"];
        return (artifacts.Select(a => Path.Combine(root, a)).ToArray(), kept.Select(k => Path.Combine(root, k)).ToArray());
    }

    [Fact]
    public async Task WhatIf_lists_every_artifact_with_its_size_and_removes_nothing()
    {
        using var root = new TestDirectory();
        using var outside = new TestDirectory();
        (string[] artifacts, _) = Build(root.Path, outside.Path);
        var rootState = TreeState.Capture(root.Path);
        var outsideState = TreeState.Capture(outside.Path);
        var asked = new List<(string, string)>();

        IReadOnlyList<StaleArtifact> found = await ObjectOperations.ClearStaleArtifactsAsync(new ClearStaleArtifactOptions(root.Path),
            new OperationContext { ShouldProcess = (t, a) => { asked.Add((t, a)); return false; } });

        Assert.Equal(artifacts, found.Select(a => a.Path));
        Assert.Equal(artifacts.Select(a => (a, "Remove stale artifact")), asked);
        Assert.All(found, a => Assert.False(a.Removed));
        Assert.All(found, a => Assert.Null(a.Error));
        var byName = found.ToDictionary(a => Path.GetRelativePath(root.Path, a.Path).Replace('\\', '/'));
        Assert.Equal((false, 1000L), (byName["t1/users/data/003.bin.new"].IsDirectory, byName["t1/users/data/003.bin.new"].Bytes));
        Assert.Equal((true, 42L), (byName["t1/users/indexes/email.tmp"].IsDirectory, byName["t1/users/indexes/email.tmp"].Bytes));
        Assert.Equal((false, 0L), (byName["t1/link.tmp"].IsDirectory, byName["t1/link.tmp"].Bytes));
        rootState.AssertUnchanged(root.Path);
        outsideState.AssertUnchanged(outside.Path);
    }

    [Fact]
    public async Task Sweep_removes_only_artifacts_keeps_look_alikes_and_never_follows_links()
    {
        using var root = new TestDirectory();
        using var outside = new TestDirectory();
        (string[] artifacts, string[] kept) = Build(root.Path, outside.Path);
        var outsideState = TreeState.Capture(outside.Path);
        var before = ObjectFixture.Snapshot(root.Path, skipArtifacts: false);

        IReadOnlyList<StaleArtifact> found = await ObjectOperations.ClearStaleArtifactsAsync(new ClearStaleArtifactOptions(root.Path), new OperationContext());

        Assert.Equal(artifacts, found.Select(a => a.Path));
        Assert.All(found, a => Assert.True(a.Removed, a.Path));
        foreach (string artifact in artifacts)
        {
            Assert.False(File.Exists(artifact) || Directory.Exists(artifact) || new FileInfo(artifact).LinkTarget is not null, artifact);
        }
        foreach (string keep in kept)
        {
            Assert.True(File.Exists(keep) || Directory.Exists(keep), keep);
        }
        outsideState.AssertUnchanged(outside.Path);
        // Everything that remains was there before, and only artifacts (and what is inside them) went.
        // (TreeState follows t1/linkdir into the outside folder, checked above, so leave that out.)
        static bool BehindLink(string rel) => rel.StartsWith("t1/linkdir/", StringComparison.Ordinal);
        var after = ObjectFixture.Snapshot(root.Path, skipArtifacts: false).Where(kv => !BehindLink(kv.Key)).ToDictionary();
        var expected = before.Where(kv => !BehindLink(kv.Key) && !kv.Key.Split('/').Any(ObjectLayout.IsTransientArtifact)).ToDictionary();
        Assert.Equal(expected, after);
        Assert.Contains("t1/users/files/x.newer", after.Keys);

        Assert.Empty(await ObjectOperations.ClearStaleArtifactsAsync(new ClearStaleArtifactOptions(root.Path), new OperationContext()));
    }

    [Fact]
    public async Task Some_artifacts_declined_others_removed()
    {
        using var root = new TestDirectory();
        using var outside = new TestDirectory();
        (string[] artifacts, _) = Build(root.Path, outside.Path);

        IReadOnlyList<StaleArtifact> found = await ObjectOperations.ClearStaleArtifactsAsync(new ClearStaleArtifactOptions(root.Path),
            new OperationContext { ShouldProcess = (t, _) => t.EndsWith(".new", StringComparison.Ordinal) });

        Assert.Equal(artifacts.Select(a => a.EndsWith(".new", StringComparison.Ordinal)), found.Select(a => a.Removed));
        Assert.False(File.Exists(Path.Combine(root.Path, "t1/users/data/003.bin.new")));
        Assert.True(File.Exists(Path.Combine(root.Path, "t1/users/data/000.bin.old")));
    }

    [Fact]
    public async Task Missing_root_is_not_found()
    {
        using var root = new TestDirectory();
        await Assert.ThrowsAsync<NotFoundException>(() => ObjectOperations.ClearStaleArtifactsAsync(new ClearStaleArtifactOptions(root.Combine("nope")), new OperationContext()));
        await Assert.ThrowsAsync<InvalidInputException>(() => ObjectOperations.ClearStaleArtifactsAsync(new ClearStaleArtifactOptions(""), new OperationContext()));
    }
}
