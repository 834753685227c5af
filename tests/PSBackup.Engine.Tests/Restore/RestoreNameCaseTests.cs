using PSBackup.Engine.ObjectStore;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Tests.ObjectStore;
using PSBackup.Engine.Tests.Support;
using Xunit.Abstractions;
using Repo = PSBackup.Engine.Repository.Repository;

namespace PSBackup.Engine.Tests.Restore;

/// <summary>Names that differ only in case. Debian's /usr/lib/x86_64-linux-gnu holds both
/// perl/5.36.0/Sys and perl/5.36.0/sys: such a tree is backed up, listed, checked and restored
/// byte-exact where names are case-sensitive; where the target ignores case, two names that would
/// overwrite each other are refused before anything is written (the Windows side runs in
/// WindowsFileSemanticsTests under Wine).</summary>
public sealed class RestoreNameCaseTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_tree_with_folders_and_files_differing_only_in_case_is_listed_checked_and_restored_byte_exact()
    {
        using var obj = new ObjectFixture();
        if (SafePath.FolderIgnoresCase(obj.ObjectPath))
        {
            output.WriteLine("SKIPPED: this file system ignores case, so the tree cannot be made here.");
            return;
        }
        ObjectFixture.Write(obj.ObjectPath, "perl/Sys/Hostname.pm", ObjectFixture.Bytes("Sys/Hostname.pm", 3000));
        ObjectFixture.Write(obj.ObjectPath, "perl/sys/wait.ph", ObjectFixture.Bytes("sys/wait.ph", 2000));
        ObjectFixture.Write(obj.ObjectPath, "docs/README", ObjectFixture.Bytes("README", 700));
        ObjectFixture.Write(obj.ObjectPath, "docs/readme", ObjectFixture.Bytes("readme", 900));
        SortedDictionary<string, string> tree = ObjectFixture.Snapshot(obj.ObjectPath);
        using var loc = new TestDirectory();
        var repo = new RepositoryTarget { Location = loc.Combine("repo") };
        Assert.NotNull(await RepositoryOperations.InitializeAsync(new InitializeRepositoryOptions(repo) { Unencrypted = true }, OperationContext.Default));

        ObjectBackupResult backup = (await ObjectOperations.BackupAsync(obj.BackupOptions() with { Repository = repo }, OperationContext.Default))!;

        using (OpenRepository open = await RepositoryConnector.OpenAsync(repo, CancellationToken.None))
        {
            Assert.Contains(await open.Repository.ListBackupsAsync(), b => b.Id == backup.BackupId);
            RepositoryCheckReport check = await open.Repository.CheckAsync(readData: true);
            Assert.True(check.Ok, string.Join("\n", check.Errors));
        }
        Directory.Delete(obj.ObjectPath, recursive: true);
        await ObjectOperations.RestoreAsync(new RestoreObjectBackupOptions(obj.DbRoot, ObjectFixture.Dir, ObjectFixture.Object, null) { Repository = repo }, OperationContext.Default);
        SortedDictionary<string, string> restored = ObjectFixture.Snapshot(obj.ObjectPath);
        Assert.True(tree.SequenceEqual(restored), $"missing [{string.Join(", ", tree.Except(restored))}], extra [{string.Join(", ", restored.Except(tree))}]");
    }

    [Theory]
    [InlineData(new[] { "a/B", "a/b" }, new string[0], "a/B", "a/b")]                 // two files
    [InlineData(new[] { "a/b", "A/B/c" }, new string[0], "a/b", "A/B")]               // a file and the folder another lies in
    [InlineData(new[] { "x" }, new[] { "X" }, "x", "X")]                               // a file and an (empty) folder
    [InlineData(new[] { "Sys/Hostname.pm", "sys/wait.ph" }, new[] { "Sys", "sys" }, null, null)] // folders merge
    [InlineData(new[] { "a", "b", "c/d" }, new[] { "c", "e" }, null, null)]
    public void Case_collisions_are_names_that_would_overwrite_each_other(string[] files, string[] folders, string? first, string? second)
    {
        (string, string)? expected = first is null ? null : (first, second!);
        Assert.Equal(expected, SafePath.FindCaseCollision(files, folders));
    }

    [Fact]
    public void A_target_that_ignores_case_refuses_colliding_names_and_one_that_does_not_is_never_asked()
    {
        var m = new RepositoryManifest
        {
            Kind = BackupKind.Object,
            Host = "h",
            CreatedAt = DateTimeOffset.UnixEpoch,
            Files = [new("docs/README", 1, new string('0', 64), []), new("docs/readme", 1, new string('0', 64), [])],
        };
        var e = Assert.Throws<ConflictException>(() => Repo.RequireDistinctNames(m, () => true));
        Assert.Equal("RestoreNameCollision", e.ErrorId);
        Assert.Contains("'docs/README' and 'docs/readme'", e.Message, StringComparison.Ordinal);
        Repo.RequireDistinctNames(m, () => false);
        Repo.RequireDistinctNames(m with { Files = [m.Files[0]] }, () => throw new InvalidOperationException("asked without a collision"));
    }

    [Fact]
    public void The_probe_tells_a_case_sensitive_folder_and_leaves_nothing_behind()
    {
        using var dir = new TestDirectory();
        Assert.Equal(OperatingSystem.IsWindows() || OperatingSystem.IsMacOS(), SafePath.FolderIgnoresCase(dir.Path));
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir.Path));
    }

    /// <summary>Before: under Wine, restoring '--dir acme --object deep' into an empty root when the
    /// history is 'Acme/Deep' was refused ("is a backup of 'Acme/Deep', not of 'acme/deep'") after the
    /// backup was found ignoring case. Where the target root ignores case (the probe says so here, so
    /// the Windows rule runs on Linux), the history's spelling is found and restored.</summary>
    [Fact]
    public async Task Where_the_target_ignores_case_a_restore_finds_and_takes_the_historys_spelling()
    {
        using var obj = new ObjectFixture();
        using var loc = new TestDirectory();
        var repo = new RepositoryTarget { Location = loc.Combine("repo") };
        Assert.NotNull(await RepositoryOperations.InitializeAsync(new InitializeRepositoryOptions(repo) { Unencrypted = true }, OperationContext.Default));
        ObjectBackupResult backup = (await ObjectOperations.BackupAsync(obj.SettledBackupOptions() with { Repository = repo }, OperationContext.Default))!;
        SortedDictionary<string, string> tree = ObjectFixture.Snapshot(obj.ObjectPath);
        string emptyRoot = loc.Combine("recovery");
        Directory.CreateDirectory(emptyRoot);
        string otherDir = ObjectFixture.Dir.ToUpperInvariant(), otherObject = ObjectFixture.Object.ToUpperInvariant();

        // Where names are exact, another spelling is another object: nothing is found.
        await Assert.ThrowsAsync<NotFoundException>(() => ObjectOperations.RestoreAsync(
            new RestoreObjectBackupOptions(emptyRoot, otherDir, otherObject, null) { Repository = repo }, OperationContext.Default));

        ObjectRestore.CaseProbe.Value = _ => true;
        try
        {
            ObjectRestoreResult restored = (await ObjectOperations.RestoreAsync(
                new RestoreObjectBackupOptions(emptyRoot, otherDir, otherObject, null) { Repository = repo }, OperationContext.Default))!;
            Assert.Equal(ObjectFixture.Dir, restored.Dir);
            Assert.Equal(ObjectFixture.Object, restored.Object);
            Assert.Equal(tree, ObjectFixture.Snapshot(Path.Combine(emptyRoot, ObjectFixture.Dir, ObjectFixture.Object)));

            // By id too (before: refused as another object's backup).
            string byId = loc.Combine("recovery-by-id");
            Directory.CreateDirectory(byId);
            await ObjectOperations.RestoreAsync(new RestoreObjectBackupOptions(byId, otherDir, otherObject, null) { Repository = repo, BackupId = backup.BackupId }, OperationContext.Default);
            Assert.Equal(tree, ObjectFixture.Snapshot(Path.Combine(byId, ObjectFixture.Dir, ObjectFixture.Object)));
        }
        finally
        {
            ObjectRestore.CaseProbe.Value = null;
        }
    }
}
