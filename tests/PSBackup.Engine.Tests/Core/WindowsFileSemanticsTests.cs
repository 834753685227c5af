using System.Text;
using PSBackup.Cli;
using PSBackup.Engine.Events;
using PSBackup.Engine.ObjectStore;
using PSBackup.Engine.Tests.ObjectStore;
using PSBackup.Engine.Tests.Support;
using Xunit.Abstractions;

namespace PSBackup.Engine.Tests.Core;

/// <summary>The Windows code paths themselves (kernel32 file information, sharing modes, cmd.exe,
/// case-insensitive names), run by the Windows leg under Wine (scripts/wine-test.sh, one class per
/// process). On Linux every test notes that it needs Windows and returns.</summary>
public sealed class WindowsFileSemanticsTests(ITestOutputHelper output)
{
    private bool NotWindows()
    {
        if (OperatingSystem.IsWindows())
        {
            return false;
        }
        output.WriteLine("SKIPPED: Windows only (the Windows leg runs this class under Wine).");
        return true;
    }

    [Fact]
    public void The_stamp_comes_from_GetFileInformationByHandleEx_with_change_time_and_identity()
    {
        if (NotWindows())
        {
            return;
        }
        using var dir = new TestDirectory();
        string file = dir.Combine("a.bin");
        File.WriteAllBytes(file, new byte[1234]);
        FileStamp stamp = FileStamp.Read(file)!.Value;
        Assert.Equal(1234, stamp.Size);
        Assert.NotEqual(0, stamp.ChangedNs);
        Assert.NotEqual(0UL, stamp.Inode);
        Assert.False(stamp.WriterOpen);
        Assert.Null(FileStamp.Read(dir.Combine("missing.bin")));

        // A rename over the path is a new file id.
        string other = dir.Combine("b.bin");
        File.WriteAllBytes(other, new byte[1234]);
        File.Move(other, file, overwrite: true);
        Assert.NotEqual(stamp.Inode, FileStamp.Read(file)!.Value.Inode);
    }

    [Fact]
    public void A_file_held_open_for_writing_is_flagged_and_never_settled()
    {
        if (NotWindows())
        {
            return;
        }
        using var dir = new TestDirectory();
        string file = dir.Combine("live.db");
        File.WriteAllBytes(file, new byte[4096]);
        File.SetLastWriteTimeUtc(file, DateTime.UtcNow.AddHours(-1));
        using (var writer = new FileStream(file, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete))
        {
            FileStamp held = FileStamp.Read(file)!.Value;
            Assert.True(held.WriterOpen);
            Assert.False(held.IsSettledAt(DateTime.UtcNow, TimeSpan.FromSeconds(2)));
            // The backup's own read still opens it (it shares with writers).
            using FileStream reader = FileCopy.OpenRead(file);
            Assert.Equal(4096, reader.Length);
        }
        Assert.False(FileStamp.Read(file)!.Value.WriterOpen);
    }

    [Fact]
    public void Windows_name_rules_are_on_by_default()
    {
        if (NotWindows())
        {
            return;
        }
        Assert.True(SafePath.WindowsRules);
        Assert.Throws<InvalidInputException>(() => SafePath.ValidateRelativePath("a/data:stream", "manifest entry"));
        Assert.Throws<InvalidInputException>(() => SafePath.ValidateName("CON", "dir"));
        Assert.Equal("snapshots/users.db", SafePath.ValidateUserPath(@"snapshots\users.db", "snapshot path"));
    }

    [Fact]
    public void Extended_length_and_backslash_paths_combine_under_their_root()
    {
        if (NotWindows())
        {
            return;
        }
        using var dir = new TestDirectory();
        string root = @"\\?\" + dir.Path;
        string full = SafePath.Combine(root, "a/b", "path");
        Assert.StartsWith(@"\\?\", full, StringComparison.Ordinal);
        Assert.EndsWith(@"a\b", full, StringComparison.Ordinal);
        Assert.Throws<InvalidInputException>(() => SafePath.Combine(root, @"..\x", "path"));
    }

    [Fact]
    public void Names_take_their_on_disk_spelling_and_wildcards_ignore_case()
    {
        if (NotWindows())
        {
            return;
        }
        using var dir = new TestDirectory();
        Directory.CreateDirectory(dir.Combine("Acme", "Orders"));
        ObjectLocation location = ObjectLocation.Resolve(dir.Path, "ACME", "orders");
        Assert.Equal(("Acme", "Orders"), (location.Dir, location.Object));
        Assert.Equal(new[] { ("Acme", "Orders") }, ObjectSelection.Expand(dir.Path, "ac*", "ORD*"));
    }

    [Fact]
    public async Task Cmd_runs_a_quoted_command_with_the_quoted_path()
    {
        if (NotWindows())
        {
            return;
        }
        var log = new StringWriter();
        await ShellCommand.RunAsync("if \"%PSB_T%\"==\"a b\" (echo quoted-ok) else (exit 7)", "validate", "ValidationFailed", log, null,
            new Dictionary<string, string> { ["PSB_T"] = "a b" }, CancellationToken.None);
        Assert.Contains("quoted-ok", log.ToString(), StringComparison.Ordinal);

        var echo = new StringWriter();
        await ShellCommand.RunAsync("echo ARG:", "validate", "ValidationFailed", echo, @"C:\scratch\a b\users", null, CancellationToken.None);
        Assert.Contains("ARG: \"C:\\scratch\\a b\\users\"", echo.ToString(), StringComparison.Ordinal);

        OperationFailedException e = await Assert.ThrowsAsync<OperationFailedException>(() =>
            ShellCommand.RunAsync("exit 3", "validate", "ValidationFailed", new StringWriter(), null, null, CancellationToken.None));
        Assert.Equal("ValidationFailed", e.ErrorId);
    }

    [Fact]
    public async Task An_audit_line_waits_for_another_writer_that_holds_the_log()
    {
        if (NotWindows())
        {
            return;
        }
        using var dir = new TestDirectory();
        string log = dir.Combine("audit.jsonl");
        var holder = new FileStream(log, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read | FileShare.Delete);
        Task release = Task.Run(async () =>
        {
            await Task.Delay(500);
            holder.Dispose();
        });
        AuditLog.AppendLine(log, Encoding.UTF8.GetBytes("{\"a\":1}\n"), TimeSpan.FromSeconds(30));
        await release;
        Assert.Equal(["{\"a\":1}"], File.ReadAllLines(log));
    }

    [Fact]
    public async Task An_object_backs_up_and_restores_through_Windows_paths()
    {
        if (NotWindows())
        {
            return;
        }
        using var obj = new ObjectFixture();
        ObjectBackupResult backup = (await ObjectOperations.BackupAsync(obj.BackupOptions() with { Dir = ObjectFixture.Dir.ToUpperInvariant() }, OperationContext.Default))!;
        Assert.Equal(ObjectFixture.Dir, backup.Dir); // the on-disk spelling
        var before = ObjectFixture.Snapshot(obj.ObjectPath);
        File.WriteAllBytes(Path.Combine(obj.ObjectPath, "data", "000.bin"), [0]);
        await ObjectOperations.RestoreAsync(obj.RestoreOptions(backup.BackupName, force: true), OperationContext.Default);
        Assert.Equal(before, ObjectFixture.Snapshot(obj.ObjectPath));
    }
    /// <summary>A backup made on Linux of a tree holding 'Sys' and 'sys' (Debian's perl tree does):
    /// on NTFS the two folders merge and every file is restored; two files that differ only in case
    /// would overwrite each other, so that backup is refused before anything is written.</summary>
    [Fact]
    public async Task Names_differing_only_in_case_merge_as_folders_and_are_refused_as_files()
    {
        if (NotWindows())
        {
            return;
        }
        using var backend = new PSBackup.Engine.Tests.Repository.MemoryBackend();
        var repo = await PSBackup.Engine.Repository.Repository.InitializeAsync(backend, PSBackup.Engine.Tests.Repository.RepositoryTestSupport.Small());
        byte[] hostname = PSBackup.Engine.Tests.Repository.RepositoryTestSupport.Data(3000, 1), wait = PSBackup.Engine.Tests.Repository.RepositoryTestSupport.Data(2000, 2);
        var merged = await PSBackup.Engine.Tests.Repository.RepositoryTestSupport.BackupAsync(repo, [("perl/Sys/Hostname.pm", hostname), ("perl/sys/wait.ph", wait)]);
        var colliding = await PSBackup.Engine.Tests.Repository.RepositoryTestSupport.BackupAsync(repo, [("docs/README", hostname), ("docs/readme", wait)]);
        using var dir = new TestDirectory();

        await repo.RestoreAsync(await repo.ReadManifestAsync(merged.ManifestId), dir.Combine("merged"));
        Assert.Equal(hostname, File.ReadAllBytes(dir.Combine("merged", "perl", "sys", "Hostname.pm")));
        Assert.Equal(wait, File.ReadAllBytes(dir.Combine("merged", "perl", "SYS", "wait.ph")));

        var e = await Assert.ThrowsAsync<ConflictException>(async () => await repo.RestoreAsync(await repo.ReadManifestAsync(colliding.ManifestId), dir.Combine("colliding")));
        Assert.Equal("RestoreNameCollision", e.ErrorId);
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir.Combine("colliding")));
    }
}
