using System.ComponentModel;
using System.Diagnostics;
using PSBackup.Cli;
using PSBackup.Engine.ObjectStore;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Snapshots;
using PSBackup.Engine.Tests.ObjectStore;
using PSBackup.Engine.Tests.Support;

namespace PSBackup.Engine.Tests.Core;

/// <summary>The Windows rules of issue 13, proven on any OS: each rule is a function of the facts
/// Windows reports (a reparse tag, a rename refused, a process that cannot be opened, a frozen
/// last-write time) or takes the Windows switch, so these run in the Linux suite. What only real
/// Windows code can show runs in <see cref="WindowsFileSemanticsTests"/> under Wine.</summary>
public sealed class WindowsRulesTests
{
    // ---- names and paths (item 8) ----------------------------------------------------------

    [Theory]
    [InlineData("CON")]
    [InlineData("nul")]
    [InlineData("Aux.txt")]
    [InlineData("com1")]
    [InlineData("LPT9.log")]
    [InlineData("COM\u00B9")]
    [InlineData("data:stream")]
    [InlineData("a|b")]
    [InlineData("a<b")]
    [InlineData("a>b")]
    [InlineData("a\"b")]
    [InlineData("a?")]
    [InlineData("a*")]
    [InlineData("trailing.")]
    [InlineData("trailing ")]
    public void Names_Windows_cannot_hold_are_refused_under_its_rules(string segment)
    {
        Assert.NotNull(SafePath.WindowsNameProblem(segment));
        InvalidInputException e = Assert.Throws<InvalidInputException>(() => SafePath.ValidateRelativePath("dir/" + segment, "snapshot path", windows: true));
        Assert.Equal("InvalidPath", e.ErrorId);
        Assert.Contains("Windows", e.Message, StringComparison.Ordinal);
        // A user path gets Windows' rules on every OS (a backup root must restore on Windows).
        Assert.Throws<InvalidInputException>(() => SafePath.ValidateUserPath("dir/" + segment, "snapshot path"));
    }

    [Theory]
    [InlineData("console")]
    [InlineData("com10")]
    [InlineData("lpt")]
    [InlineData("nullable.db")]
    [InlineData("auxiliary")]
    [InlineData("users.db")]
    public void Ordinary_names_near_the_device_names_are_fine(string segment)
    {
        Assert.Null(SafePath.WindowsNameProblem(segment));
        Assert.Equal("dir/" + segment, SafePath.ValidateRelativePath("dir/" + segment, "p", windows: true));
    }

    [Fact]
    public void Device_names_are_refused_as_namespace_dir_and_object_names_under_Windows_rules()
    {
        foreach (string name in new[] { "CON", "nul", "com3", "aux.d" })
        {
            Assert.Equal("InvalidName", Assert.Throws<InvalidInputException>(() => SafePath.ValidateName(name, "dir", windows: true)).ErrorId);
            Assert.Equal(name, SafePath.ValidateName(name, "dir", windows: false)); // a Linux folder may be called that
        }
        Assert.Equal("console", SafePath.ValidateName("console", "dir", windows: true));
    }

    [Theory]
    [InlineData(@"snapshots\users.db", "snapshots/users.db")]
    [InlineData(@"wal\archive\", "wal/archive")]
    [InlineData("wal/archive", "wal/archive")]
    [InlineData(@"a\b/c", "a/b/c")]
    public void A_backslash_typed_by_a_user_is_a_folder_separator(string typed, string meant) =>
        Assert.Equal(meant, SafePath.ValidateUserPath(typed, "backup dir"));

    [Theory]
    [InlineData(@"C:\data")]
    [InlineData(@"\\server\share\x")]
    [InlineData(@"\\?\C:\data")]
    [InlineData(@"\rooted")]
    [InlineData(@"a\..\b")]
    [InlineData(@"a\\b")]
    public void Absolute_or_escaping_Windows_forms_stay_refused(string typed) =>
        Assert.Throws<InvalidInputException>(() => SafePath.ValidateUserPath(typed, "backup dir"));

    [Fact]
    public void A_backslash_in_a_name_read_from_disk_or_a_manifest_is_still_refused() =>
        Assert.Throws<InvalidInputException>(() => SafePath.ValidateRelativePath(@"data\000.bin", "manifest entry", windows: false));

    [Fact]
    public async Task A_snapshot_path_written_with_backslashes_lands_in_the_nested_folder()
    {
        using var dir = new TestDirectory();
        string nsDir = Path.Combine(dir.Path, "users", "db");
        Directory.CreateDirectory(nsDir);
        using (var c = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(nsDir, "store.db")};Pooling=False"))
        {
            c.Open();
            using var cmd = c.CreateCommand();
            cmd.CommandText = "CREATE TABLE t(x); INSERT INTO t VALUES (1);";
            cmd.ExecuteNonQuery();
        }
        StoreSnapshotResult? r = await SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(dir.Path, "users", @"snapshots\users.db"), OperationContext.Default);
        Assert.NotNull(r);
        Assert.True(File.Exists(Path.Combine(dir.Path, "backups", "users", "snapshots", "users.db")));
    }

    // ---- reparse points (item 4) ---------------------------------------------------------------

    [Theory]
    [InlineData(0x80000013u, false)] // IO_REPARSE_TAG_DEDUP: Windows Server Data Deduplication
    [InlineData(0x9000001Au, false)] // IO_REPARSE_TAG_CLOUD (OneDrive files on demand)
    [InlineData(0x9000601Au, false)] // IO_REPARSE_TAG_CLOUD_6
    [InlineData(0x8000001Eu, false)] // IO_REPARSE_TAG_STORAGE_SYNC: Azure File Sync tiering
    [InlineData(0x80000017u, false)] // IO_REPARSE_TAG_WOF: compressed system files
    [InlineData(0xA000000Cu, true)]  // IO_REPARSE_TAG_SYMLINK
    [InlineData(0xA0000003u, true)]  // IO_REPARSE_TAG_MOUNT_POINT: junctions
    [InlineData(0xA0000027u, true)]  // IO_REPARSE_TAG_AF_UNIX... any name surrogate counts
    public void A_reparse_point_is_a_link_only_when_its_tag_is_a_name_surrogate(uint tag, bool link)
    {
        Assert.Equal(link, SafePath.IsLink(FileAttributes.Archive | FileAttributes.ReparsePoint, null, () => tag));
    }

    [Fact]
    public void Unknown_reparse_points_count_as_links_and_plain_files_never_do()
    {
        Assert.True(SafePath.IsLink(FileAttributes.ReparsePoint, null, () => null));
        Assert.True(SafePath.IsLink(FileAttributes.Normal, "/elsewhere", () => throw new InvalidOperationException("no tag needed")));
        Assert.False(SafePath.IsLink(FileAttributes.Normal, null, () => throw new InvalidOperationException("no tag needed")));
        Assert.False(SafePath.IsLink((FileAttributes)(-1), null, () => throw new InvalidOperationException("missing file")));
    }

    // ---- lock liveness (item 5) ------------------------------------------------------------------

    [Fact]
    public void A_lock_holder_that_cannot_be_inspected_is_alive_not_a_crash()
    {
        Assert.Null(RepositoryLock.Liveness(() => throw new Win32Exception(5, "Access is denied")));
        Assert.False(RepositoryLock.Liveness(() => throw new InvalidOperationException("No process is associated with this object.")));
        Assert.True(RepositoryLock.Liveness(() => false));

        DateTimeOffset now = DateTimeOffset.UtcNow;
        var info = new RepositoryLockInfo { Operation = "New-ObjectBackup", Exclusive = false, Host = Environment.MachineName.ToLowerInvariant(), Pid = 4242, Created = now, Refreshed = now };
        Assert.False(RepositoryLock.IsStale(info, now, _ => null)); // another account's process: alive
        Assert.True(RepositoryLock.IsStale(info, now, _ => false)); // gone: stale at once, host compared ignoring case
        Assert.True(RepositoryLock.IsStale(info, now + RepositoryLock.StaleAfter + TimeSpan.FromMinutes(1), _ => null)); // by age
    }

    [Fact]
    public void Another_accounts_running_process_keeps_its_lock()
    {
        if (!OperatingSystem.IsLinux() || !File.Exists("/usr/bin/setpriv") || Environment.UserName != "root")
        {
            return; // needs root to start a process as another account
        }
        using Process other = Process.Start(new ProcessStartInfo("/usr/bin/setpriv", "--reuid=65534 --regid=65534 --clear-groups /bin/sleep 30") { UseShellExecute = false })!;
        try
        {
            DateTimeOffset now = DateTimeOffset.UtcNow;
            var info = new RepositoryLockInfo { Operation = "New-ObjectBackup", Exclusive = false, Host = Environment.MachineName, Pid = other.Id, Created = now, Refreshed = now };
            Assert.True(RepositoryLock.ProcessIsRunning(other.Id) is true or null);
            Assert.False(RepositoryLock.IsStale(info, now));
        }
        finally
        {
            other.Kill();
        }
    }

    // ---- the put-back paths (item 3) --------------------------------------------------------------

    /// <summary>Directory.Move, except where a test makes Windows refuse it.</summary>
    private sealed class RefusingMover(Func<string, string, int, Exception?> refuse) : FolderSwap.IFolderMover
    {
        private int _calls;

        public List<(string From, string To)> Moves { get; } = new();

        public void Move(string from, string to)
        {
            Exception? e = refuse(from, to, ++_calls);
            if (e is not null)
            {
                throw e;
            }
            Directory.Move(from, to);
            Moves.Add((from, to));
        }
    }

    private static (string Temp, string Live) SwapFolders(TestDirectory dir)
    {
        string live = dir.Combine("users");
        string temp = dir.Combine("users.restore-1.tmp");
        ObjectFixture.Write(live, "data/000.bin", [1, 2, 3]);
        ObjectFixture.Write(temp, "data/000.bin", [9, 9]);
        return (temp, live);
    }

    [Fact]
    public void When_the_restored_copy_cannot_take_the_live_name_the_live_folder_is_put_back()
    {
        using var dir = new TestDirectory();
        (string temp, string live) = SwapFolders(dir);
        var mover = new RefusingMover((from, _, _) => from == temp ? new UnauthorizedAccessException($"Access to the path '{temp}' is denied.") : null);

        OperationFailedException e = Assert.Throws<OperationFailedException>(() => FolderSwap.Replace(temp, live, "20260101T000000", "live object", deleteEmptyLive: false, mover, attempts: 2));

        Assert.Equal("ReplaceFailed", e.ErrorId);
        Assert.Contains("put back unchanged", e.Message, StringComparison.Ordinal);
        Assert.Equal(new byte[] { 1, 2, 3 }, File.ReadAllBytes(Path.Combine(live, "data", "000.bin")));
        Assert.False(Directory.Exists(live + ".replaced-20260101T000000"));
        Assert.True(Directory.Exists(temp)); // the caller deletes its temp
    }

    [Fact]
    public void A_live_folder_that_cannot_be_moved_aside_is_a_typed_failure_and_nothing_moves()
    {
        using var dir = new TestDirectory();
        (string temp, string live) = SwapFolders(dir);
        var mover = new RefusingMover((from, _, _) => from == live ? new UnauthorizedAccessException("Access denied (a file inside is open).") : null);

        OperationFailedException e = Assert.Throws<OperationFailedException>(() => FolderSwap.Replace(temp, live, "20260101T000000", "live object", deleteEmptyLive: false, mover, attempts: 2));

        Assert.Equal("ReplaceFailed", e.ErrorId);
        Assert.Empty(mover.Moves);
        Assert.Equal(new byte[] { 1, 2, 3 }, File.ReadAllBytes(Path.Combine(live, "data", "000.bin")));
    }

    [Fact]
    public void A_briefly_held_folder_is_retried_and_swapped()
    {
        using var dir = new TestDirectory();
        (string temp, string live) = SwapFolders(dir);
        // A scanner holds a file of the new copy for the first two attempts (sharing violation).
        var mover = new RefusingMover((from, _, call) => from == temp && call <= 3 ? new IOException("The process cannot access the file because it is being used by another process.", unchecked((int)0x80070020)) : null);

        string? replaced = FolderSwap.Replace(temp, live, "20260101T000000", "live object", deleteEmptyLive: false, mover, attempts: 4);

        Assert.Equal(live + ".replaced-20260101T000000", replaced);
        Assert.Equal(new byte[] { 9, 9 }, File.ReadAllBytes(Path.Combine(live, "data", "000.bin")));
        Assert.Equal(new byte[] { 1, 2, 3 }, File.ReadAllBytes(Path.Combine(replaced!, "data", "000.bin")));
    }

    [Fact]
    public void When_even_the_put_back_fails_the_message_names_where_the_live_data_is()
    {
        using var dir = new TestDirectory();
        (string temp, string live) = SwapFolders(dir);
        var mover = new RefusingMover((from, _, _) => from != live ? new UnauthorizedAccessException("Access denied.") : null);

        OperationFailedException e = Assert.Throws<OperationFailedException>(() => FolderSwap.Replace(temp, live, "20260101T000000", "live object", deleteEmptyLive: false, mover, attempts: 1));

        string kept = live + ".replaced-20260101T000000";
        Assert.Contains(kept, e.Message, StringComparison.Ordinal);
        Assert.Equal(new byte[] { 1, 2, 3 }, File.ReadAllBytes(Path.Combine(kept, "data", "000.bin")));
    }

    // ---- cmd.exe quoting (item 7) -----------------------------------------------------------------

    [Fact]
    public void Cmd_gets_the_command_line_verbatim_with_the_path_quoted()
    {
        const string command = "\"C:\\Program Files\\Check\\check.exe\" --mode \"full scan\"";
        ProcessStartInfo start = ShellCommand.CreateStartInfo(command, "validate", @"C:\scratch\psbackup drill\users", windows: true, comSpec: @"C:\Windows\system32\cmd.exe");

        Assert.Equal(@"C:\Windows\system32\cmd.exe", start.FileName);
        Assert.Empty(start.ArgumentList);
        Assert.Equal("/d /s /c \"\"C:\\Program Files\\Check\\check.exe\" --mode \"full scan\" \"C:\\scratch\\psbackup drill\\users\"\"", start.Arguments);

        ProcessStartInfo hook = ShellCommand.CreateStartInfo("net stop \"My Db\"", "quiesce", null, windows: true, comSpec: null);
        Assert.Equal("cmd.exe", hook.FileName);
        Assert.Equal("/d /s /c \"net stop \"My Db\"\"", hook.Arguments);
    }

    [Fact]
    public void Sh_gets_the_command_and_the_path_as_separate_arguments()
    {
        ProcessStartInfo start = ShellCommand.CreateStartInfo("test -f \"$1/wal/x\"", "validate", "/scratch/a b", windows: false, comSpec: null);
        Assert.Equal("/bin/sh", start.FileName);
        Assert.Equal(["-c", "test -f \"$1/wal/x\"", "psbackup-validate", "/scratch/a b"], start.ArgumentList);
    }

    // ---- case-insensitive file systems (item 6) ---------------------------------------------------

    [Theory]
    [InlineData("ACME", new[] { "acme" }, true, "acme")]      // NTFS opens acme for ACME: one object
    [InlineData("acme", new[] { "acme", "ACME" }, true, "acme")] // an exact entry always wins
    [InlineData("ACME", new[] { "acme" }, false, "ACME")]     // case-sensitive: another (missing) folder
    [InlineData("Acme", new[] { "acme", "ACME" }, true, "Acme")] // ambiguous: keep what was asked
    [InlineData("new", new string[0], false, "new")]
    public void Names_take_the_spelling_the_file_system_resolves_them_to(string requested, string[] entries, bool resolves, string expected) =>
        Assert.Equal(expected, ObjectLocation.PickOnDiskName(requested, entries, resolves));

    [Fact]
    public void Wildcards_ignore_case_where_names_do()
    {
        Assert.True(ObjectSelection.Matches("ACME", "acm*", ignoreCase: true));
        Assert.True(ObjectSelection.Matches("Orders", "?RDERS", ignoreCase: true));
        Assert.False(ObjectSelection.Matches("ACME", "acm*", ignoreCase: false));
        Assert.False(ObjectSelection.Matches("ACME", "acx*", ignoreCase: true));
    }

    // ---- change detection (item 2) ----------------------------------------------------------------

    [Fact]
    public void A_stamp_with_a_writer_open_is_never_settled()
    {
        var old = new FileStamp(10, 1, 1, 7, 8);
        Assert.True(old.IsSettledAt(DateTime.UtcNow, TimeSpan.FromSeconds(2)));
        Assert.False((old with { WriterOpen = true }).IsSettledAt(DateTime.UtcNow, TimeSpan.FromSeconds(2)));
    }

    /// <summary>NTFS while a database holds a file open for writing: the file is rewritten in
    /// place, but size, last-write and change time, volume and id read as before (the times move
    /// when the handle closes, or never for a memory-mapped writer). Only the open writer shows.
    /// The backup must read the file (not reuse the parent's entry) and store the new bytes.</summary>
    [Fact]
    public async Task A_file_rewritten_under_an_open_writer_is_read_again_not_reused_from_the_parent()
    {
        using var loc = new TestDirectory();
        RepositoryTarget repo = new() { Location = loc.Combine("repo") };
        Assert.NotNull(await RepositoryOperations.InitializeAsync(new InitializeRepositoryOptions(repo) { Unencrypted = true }, OperationContext.Default));
        using var obj = new ObjectFixture();
        NewObjectBackupOptions options = obj.SettledBackupOptions() with { Repository = repo };
        ObjectBackupResult first = (await ObjectOperations.BackupAsync(options, OperationContext.Default))!;

        string live = Path.Combine(obj.ObjectPath, "data", "001.bin");
        FileStamp frozen = FileStamp.Read(live)!.Value;
        byte[] rewritten = ObjectFixture.Bytes("rewritten in place", (int)frozen.Size);
        File.WriteAllBytes(live, rewritten);
        FileStamp? Ntfs(string path) =>
            string.Equals(path, live, StringComparison.Ordinal) ? frozen with { WriterOpen = true } : FileStamp.Read(path);

        ObjectBackupResult second = (await ObjectOperations.BackupAsync(options with { Stamps = Ntfs }, OperationContext.Default))!;

        Assert.Equal(first.BackupId, second.ParentId);
        Assert.Equal((1, first.FileCount - 1), (second.FilesRead, second.FilesReused));
        string restored = loc.Combine("restored");
        Directory.CreateDirectory(Path.Combine(restored, ObjectFixture.Dir));
        await ObjectOperations.RestoreAsync(new RestoreObjectBackupOptions(restored, ObjectFixture.Dir, ObjectFixture.Object, null) { Repository = repo, BackupId = second.BackupId }, OperationContext.Default);
        Assert.Equal(rewritten, File.ReadAllBytes(Path.Combine(restored, ObjectFixture.Dir, ObjectFixture.Object, "data", "001.bin")));
    }
}
