using System.Diagnostics;
using System.Text;
using PSBackup.Cli;
using PSBackup.Engine.ObjectStore;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Tests.ObjectStore;
using PSBackup.Engine.Tests.Proofs;
using PSBackup.Engine.Tests.Support;
using PSBackup.Engine.Wal;
using static PSBackup.Engine.Tests.Repository.RepositoryTestSupport;
using Repo = PSBackup.Engine.Repository.Repository;

namespace PSBackup.Engine.Tests.Hostile;

/// <summary>Hostile inputs (issue 12, items 3, 4, 6, 8, 13, 14): FIFOs and device nodes, 255-byte
/// names, manifests holding both x and x.tmp, invalid UTF-8 names, modes and owners, bad durations
/// and locations, folders named like backups, init into a non-empty folder.</summary>
public sealed class HostileInputTests : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(2);
    private readonly TestDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private sealed record Run(int ExitCode, string Stdout, string Stderr);

    private static async Task<Run> RunCli(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = await TestCli.RunAsync(args, stdout, stderr);
        return new Run(code, stdout.ToString(), stderr.ToString());
    }

    private static void Exec(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in args)
        {
            start.ArgumentList.Add(a);
        }
        using Process p = Process.Start(start)!;
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"{file} {string.Join(' ', args)}: {p.StandardError.ReadToEnd()}");
    }

    private async Task<RepositoryTarget> NewRepositoryAsync(string name = "repo")
    {
        var target = new RepositoryTarget { Location = _dir.Combine(name) };
        Assert.NotNull(await RepositoryOperations.InitializeAsync(new InitializeRepositoryOptions(target) { Unencrypted = true }, OperationContext.Default));
        return target;
    }

    // ---- item 4: FIFOs and device nodes ------------------------------------------------------

    [Fact]
    public async Task A_fifo_in_an_object_is_refused_by_path_at_once_instead_of_hanging_the_backup()
    {
        using var obj = new ObjectFixture();
        string fifo = Path.Combine(obj.ObjectPath, "data", "pipe");
        Exec("mkfifo", fifo);
        using CliProcess backup = CliProcess.Start("object", "backup", "--db-root", obj.DbRoot, "--dir", ObjectFixture.Dir, "--object", ObjectFixture.Object);
        Assert.Equal(2, await backup.WaitAsync(Bound)); // before: blocked in open() until killed
        Assert.Contains("FIFO", backup.Stderr);
        Assert.Contains(fifo, backup.Stderr);
        Assert.DoesNotContain(Directory.GetDirectories(obj.DirPath), d => d.Contains(".backup-", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_fifo_or_device_named_like_a_wal_segment_is_reported_unreadable_and_never_read()
    {
        string data = _dir.Combine("data");
        string wal = Wal.WalTestData.CreateNamespace(data, "users", (3, true), (2, true));
        Exec("mkfifo", Path.Combine(wal, WalFormat.SegmentFileName(3)));
        Exec("mknod", Path.Combine(wal, WalFormat.SegmentFileName(4)), "c", "1", "5"); // /dev/zero's numbers
        WalSegmentWriterTestHelpers.WriteActive(Path.Combine(wal, WalFormat.SegmentFileName(5)));

        using CliProcess list = CliProcess.Start("wal", "list", "--data-dir", data, "--namespace", "users", "--json");
        Assert.Equal(0, await list.WaitAsync(Bound));
        Assert.Contains("not a regular file", list.Stdout);

        RepositoryTarget repo = await NewRepositoryAsync();
        using CliProcess ship = CliProcess.Start("wal", "ship", "--data-dir", data, "--namespace", "users", "--repository", repo.Location);
        int code = await ship.WaitAsync(Bound);
        Assert.Equal(1, code);
        Assert.Contains("could not be read", ship.Stderr);
        Assert.DoesNotContain("corrupt", ship.Stderr, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task A_device_node_in_an_object_is_not_read_as_endless_zeros_or_as_an_empty_file()
    {
        using var obj = new ObjectFixture();
        Exec("mknod", Path.Combine(obj.ObjectPath, "files", "zero"), "c", "1", "5");
        Exec("mknod", Path.Combine(obj.ObjectPath, "files", "null"), "c", "1", "3");
        RepositoryTarget repo = await NewRepositoryAsync();
        var e = await Assert.ThrowsAsync<InvalidInputException>(() =>
            ObjectOperations.BackupAsync(obj.BackupOptions() with { Repository = repo }, OperationContext.Default));
        Assert.Equal("SpecialFileInObject", e.ErrorId);
        Assert.Contains("character device", e.Message);
    }

    [Fact]
    public async Task A_fifo_in_a_store_folder_is_refused_by_snapshot_create_at_once()
    {
        string data = _dir.Combine("snapdata");
        string nsDir = Snapshots.SnapshotTestSupport.CreateFileNamespace(data, "users");
        Exec("mkfifo", Path.Combine(nsDir, "db", "sub", "pipe"));
        using CliProcess snap = CliProcess.Start("snapshot", "create", "--data-dir", data, "--namespace", "users", "--path", "snapshots/s1");
        Assert.Equal(2, await snap.WaitAsync(Bound)); // before: blocked until killed
        Assert.Contains("FIFO", snap.Stderr);
    }

    [Fact]
    public async Task A_fifo_given_as_the_key_file_is_refused_at_once()
    {
        string fifo = _dir.Combine("key-pipe");
        Exec("mkfifo", fifo);
        using CliProcess init = CliProcess.Start("repo", "init", "--repository", _dir.Combine("keyed"), "--key-file", fifo);
        Assert.Equal(2, await init.WaitAsync(Bound)); // before: blocked reading the FIFO
        Assert.Contains("FIFO", init.Stderr);
    }

    [Fact]
    public void Opening_a_fifo_for_reading_data_throws_at_once()
    {
        string fifo = _dir.Combine("pipe");
        Exec("mkfifo", fifo);
        var watch = Stopwatch.StartNew();
        var e = Assert.Throws<InvalidInputException>(() => FileCopy.OpenRead(fifo));
        Assert.Equal("NotARegularFile", e.ErrorId);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10));
        Assert.Equal(FileKind.Fifo, SpecialFiles.KindOf(fifo));
    }

    // ---- item 3: 255-byte names; item 8: temp names that cross --------------------------------

    [Fact]
    public async Task Files_with_252_to_255_byte_names_restore_from_a_repository()
    {
        using var obj = new ObjectFixture();
        var names = new List<string>();
        for (int n = 252; n <= 255; n++)
        {
            string name = new string((char)('a' + n - 252), n);
            ObjectFixture.Write(obj.ObjectPath, "files/" + name, ObjectFixture.Bytes(name, 1000 + n));
            names.Add(name);
        }
        string utf8 = string.Concat(Enumerable.Repeat("é", 127)) + "x"; // 255 bytes in UTF-8, 128 chars
        Assert.Equal(255, Encoding.UTF8.GetByteCount(utf8));
        ObjectFixture.Write(obj.ObjectPath, "files/" + utf8, ObjectFixture.Bytes(utf8, 999));
        RepositoryTarget repo = await NewRepositoryAsync();
        ObjectBackupResult backup = (await ObjectOperations.BackupAsync(obj.BackupOptions() with { Repository = repo }, OperationContext.Default))!;
        var before = ObjectFixture.Snapshot(obj.ObjectPath);

        // Before: every repository restore failed, '<255-byte name>.tmp' exceeds NAME_MAX.
        ObjectRestoreResult? restored = await ObjectOperations.RestoreAsync(
            new RestoreObjectBackupOptions(obj.DbRoot, ObjectFixture.Dir, ObjectFixture.Object, null) { Repository = repo, BackupId = backup.BackupId, Force = true }, OperationContext.Default);

        Assert.NotNull(restored);
        Assert.Equal(before, ObjectFixture.Snapshot(obj.ObjectPath));
    }

    [Fact]
    public async Task A_manifest_holding_x_and_x_tmp_restores_each_with_its_own_bytes_every_time()
    {
        using var backend = new Tests.Repository.MemoryBackend();
        Repo repo = await Repo.InitializeAsync(backend, Small());
        var files = new List<(string, byte[])>();
        for (int i = 0; i < 24; i++)
        {
            files.Add(($"d/f{i}", Data(30_000 + i, i)));
            files.Add(($"d/f{i}.tmp", Data(20_000 + i, 100 + i)));
        }
        BackupCommitResult r = await BackupAsync(repo, files);
        RepositoryManifest m = await repo.ReadManifestAsync(r.ManifestId);
        for (int round = 0; round < 10; round++)
        {
            string into = _dir.Combine($"r{round}");
            await repo.RestoreAsync(m, into);
            foreach ((string path, byte[] data) in files)
            {
                Assert.Equal(data, File.ReadAllBytes(Path.Combine(into, path)));
            }
            Assert.Empty(Directory.GetFiles(into, ".psb-*", SearchOption.AllDirectories));
        }
    }

    // ---- item 6: modes, owners, times, empty folders; private repository files ---------------

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task Mode_owner_time_and_empty_folders_come_back_and_repository_files_are_private()
    {
        Assert.True(Environment.IsPrivilegedProcess, "this test gives files to another owner and needs root");
        using var obj = new ObjectFixture();
        string secret = Path.Combine(obj.ObjectPath, "metadata", "counts");
        File.SetUnixFileMode(secret, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        Directory.CreateDirectory(Path.Combine(obj.ObjectPath, "empty", "deeper"));
        File.SetUnixFileMode(obj.ObjectPath, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        Exec("chown", "-R", "1234:2345", obj.ObjectPath);
        // setuid and setgid after the chown that would clear them: the restore must give the owner first.
        string tool = Path.Combine(obj.ObjectPath, "metadata", "tool");
        File.WriteAllText(tool, "#!/bin/sh\n");
        Exec("chown", "1234:2345", tool);
        File.SetUnixFileMode(tool, (UnixFileMode)Convert.ToInt32("6750", 8));
        FileMetadata sourceTool = FileMetadata.Read(tool)!;
        var when = new DateTime(2021, 5, 6, 7, 8, 9, DateTimeKind.Utc);
        File.SetLastWriteTimeUtc(secret, when);
        FileMetadata sourceRoot = FileMetadata.Read(obj.ObjectPath)!;
        FileMetadata sourceSecret = FileMetadata.Read(secret)!;

        // Repository round trip.
        RepositoryTarget repo = await NewRepositoryAsync();
        ObjectBackupResult backup = (await ObjectOperations.BackupAsync(obj.BackupOptions() with { Repository = repo }, OperationContext.Default))!;
        foreach (string f in Directory.GetFiles(repo.Location, "*", SearchOption.AllDirectories))
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(f));
        }
        foreach (string d in Directory.GetDirectories(repo.Location, "*", SearchOption.AllDirectories))
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(d));
        }
        Directory.Delete(obj.ObjectPath, recursive: true);
        await ObjectOperations.RestoreAsync(new RestoreObjectBackupOptions(obj.DbRoot, ObjectFixture.Dir, ObjectFixture.Object, null) { Repository = repo, BackupId = backup.BackupId }, OperationContext.Default);
        AssertSame(sourceRoot, FileMetadata.Read(obj.ObjectPath)!);
        AssertSame(sourceSecret, FileMetadata.Read(secret)!);
        AssertSame(sourceTool, FileMetadata.Read(tool)!);
        Assert.Equal(Convert.ToInt32("6750", 8), sourceTool.Mode);
        Assert.True(Directory.Exists(Path.Combine(obj.ObjectPath, "empty", "deeper"))); // before: empty folders were dropped
        Assert.Equal(1234, FileMetadata.Read(Path.Combine(obj.ObjectPath, "empty", "deeper"))!.Uid);

        // Local backup and restore: the sibling copy keeps the mode (before: world-readable 0644).
        ObjectBackupResult local = (await ObjectOperations.BackupAsync(obj.BackupOptions(), OperationContext.Default))!;
        AssertSame(sourceSecret, FileMetadata.Read(Path.Combine(local.BackupPath!, "metadata", "counts"))!);
        Directory.Delete(obj.ObjectPath, recursive: true);
        await ObjectOperations.RestoreAsync(obj.RestoreOptions(local.BackupName), OperationContext.Default);
        AssertSame(sourceSecret, FileMetadata.Read(secret)!);
        AssertSame(sourceRoot with { ModifiedNs = null }, FileMetadata.Read(obj.ObjectPath)! with { ModifiedNs = null });
        Assert.True(Directory.Exists(Path.Combine(obj.ObjectPath, "empty", "deeper")));
    }

    /// <summary>Before: store snapshots, the local WAL archive and PITR gave back 0644/0755 root files
    /// for a 0600/0700 store of its own user, and local copies of 0600 files were world-readable.</summary>
    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task Store_snapshots_wal_segments_and_pitr_keep_mode_and_owner_and_local_copies_are_private()
    {
        Assert.True(Environment.IsPrivilegedProcess, "this test gives files to another owner and needs root");
        string data = _dir.Combine("data");
        UnisonOracle.CopyFixture("v1-store-bolt", data);
        string nsDir = Path.Combine(data, "users");
        foreach (string d in Directory.GetDirectories(nsDir, "*", SearchOption.AllDirectories).Append(nsDir))
        {
            File.SetUnixFileMode(d, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        foreach (string f in Directory.GetFiles(nsDir, "*", SearchOption.AllDirectories))
        {
            File.SetUnixFileMode(f, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        Exec("chown", "-R", "1234:2345", nsDir);
        static void AssertPrivateOf1234(string file)
        {
            FileMetadata m = FileMetadata.Read(file)!;
            Assert.True(m.Mode == 0x180 && m.Uid == 1234 && m.Gid == 2345, $"'{file}' is {Convert.ToString(m.Mode ?? 0, 8)} {m.Uid}:{m.Gid}, not 600 1234:2345");
        }

        // Local copies: a snapshot and the WAL archive.
        PSBackup.Engine.Snapshots.StoreSnapshotResult local = (await PSBackup.Engine.Snapshots.SnapshotOperations.CreateAsync(new PSBackup.Engine.Snapshots.NewStoreSnapshotOptions(data, "users", "snapshots/priv.db"), OperationContext.Default))!;
        AssertPrivateOf1234(local.Path);
        await WalOperations.ShipAsync(new InvokeWalShipOptions(data, "users", "arch") { SealedOnly = true }, OperationContext.Default);
        string[] archived = Directory.GetFiles(Path.Combine(data, "backups", "users", "arch"), "*.seg");
        Assert.NotEmpty(archived);
        Assert.All(archived, AssertPrivateOf1234);

        // The repository: snapshot, WAL ship, then a point-in-time restore into an empty folder.
        RepositoryTarget repo = await NewRepositoryAsync();
        await PSBackup.Engine.Snapshots.SnapshotOperations.CreateAsync(new PSBackup.Engine.Snapshots.NewStoreSnapshotOptions(data, "users", null) { Repository = repo }, OperationContext.Default);
        await WalOperations.ShipAsync(new InvokeWalShipOptions(data, "users", null) { Repository = repo }, OperationContext.Default);
        string target = _dir.Combine("pitr");
        await PSBackup.Engine.Restore.RestoreOperations.RestorePointInTimeAsync(new PSBackup.Engine.Restore.RestorePointInTimeOptions(data, "users")
        {
            TargetLogIndex = 500,
            TargetDataDir = target,
            Repository = repo,
        }, OperationContext.Default);
        string[] restored = Directory.GetFiles(target, "*", SearchOption.AllDirectories);
        Assert.Contains(restored, f => f.EndsWith(".seg", StringComparison.Ordinal));
        Assert.Contains(restored, f => Path.GetFileName(f) == "unison.db");
        Assert.All(restored, AssertPrivateOf1234);
        foreach (string d in Directory.GetDirectories(target, "*", SearchOption.AllDirectories))
        {
            FileMetadata m = FileMetadata.Read(d)!;
            Assert.True(m.Mode == 0x1C0 && m.Uid == 1234, $"folder '{d}' is {Convert.ToString(m.Mode ?? 0, 8)} {m.Uid}:{m.Gid}, not 700 1234"); // before: 755 root
        }

        // Local sources too: the snapshot restored from the local copy keeps its mode and owner.
        string fromLocal = _dir.Combine("from-local");
        await PSBackup.Engine.Restore.RestoreOperations.RestorePointInTimeAsync(new PSBackup.Engine.Restore.RestorePointInTimeOptions(data, "users")
        {
            TargetLogIndex = 420,
            TargetDataDir = fromLocal,
        }, OperationContext.Default);
        Assert.All(Directory.GetFiles(fromLocal, "unison.db", SearchOption.AllDirectories), AssertPrivateOf1234);
    }

    private static void AssertSame(FileMetadata expected, FileMetadata actual)
    {
        Assert.Equal(expected.Mode, actual.Mode);
        Assert.Equal(expected.Uid, actual.Uid);
        Assert.Equal(expected.Gid, actual.Gid);
        if (expected.ModifiedNs is { } ns)
        {
            Assert.Equal(ns / 100, actual.ModifiedNs!.Value / 100); // 100 ns ticks
        }
    }

    // ---- item 13: raw exceptions and wrong messages; item 14: name rules ----------------------

    [Fact]
    public async Task Empty_locations_huge_durations_and_missing_key_files_are_bad_input_not_crashes()
    {
        RepositoryTarget repo = await NewRepositoryAsync();
        Run empty = await RunCli("check", "--repository", "");
        Assert.Equal(2, empty.ExitCode);
        Assert.DoesNotContain("Exception", empty.Stderr);

        Run huge = await RunCli("prune", "--repository", repo.Location, "--keep-within", "99999999y", "--what-if");
        Assert.Equal(2, huge.ExitCode);
        Assert.Contains("longer than any duration", huge.Stderr);
        Assert.Equal("InvalidDuration", Assert.Throws<InvalidInputException>(() => Durations.Parse("9999999999999999999999d")).ErrorId);

        Run key = await RunCli("list", "--repository", repo.Location, "--key-file", _dir.Combine("no-such.key"));
        Assert.Equal(3, key.ExitCode);
        Assert.Contains("does not exist", key.Stderr);
        Assert.DoesNotContain("denied", key.Stderr, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task A_file_name_that_is_not_utf8_is_named_as_such_not_as_a_link()
    {
        using var obj = new ObjectFixture();
        Exec("bash", "-c", $"touch \"{obj.ObjectPath}/files/\"$'\\xff\\xfe'");
        var e = await Assert.ThrowsAsync<InvalidInputException>(() => ObjectOperations.BackupAsync(obj.BackupOptions(), OperationContext.Default));
        Assert.Equal("UnsafeNameInObject", e.ErrorId);
        Assert.Contains("UTF-8", e.Message);
        Assert.DoesNotContain("symbolic link", e.Message);
    }

    [Fact]
    public async Task A_wildcard_run_reports_a_folder_named_like_a_backup_and_still_backs_up_the_others()
    {
        using var obj = new ObjectFixture();
        string impostor = Path.Combine(obj.DirPath, "orders.backup-20250101T000000");
        ObjectFixture.Populate(impostor, seed: 5);
        RepositoryTarget repo = await NewRepositoryAsync();
        Run run = await RunCli("object", "backup", "--db-root", obj.DbRoot, "--dir", ObjectFixture.Dir, "--object", "*", "--repository", repo.Location);
        Assert.NotEqual(0, run.ExitCode); // before: exit 0, the folder silently left out
        Assert.Contains("orders.backup-20250101T000000", run.Stderr);
        Assert.Contains(ObjectFixture.Object, run.Stdout);
    }

    [Fact]
    public async Task The_next_backup_reports_the_temp_copy_a_killed_run_left()
    {
        using var obj = new ObjectFixture();
        string left = Path.Combine(obj.DirPath, ObjectFixture.Object + ".backup-20250101T000000.0a1b2c3d.tmp");
        ObjectFixture.Populate(left, seed: 9);
        Directory.SetLastWriteTimeUtc(left, DateTime.UtcNow.AddHours(-3));
        ObjectBackupResult r = (await ObjectOperations.BackupAsync(obj.BackupOptions(), OperationContext.Default))!;
        Assert.Equal([left], r.StaleTemps);
        Directory.Delete(r.BackupPath!, recursive: true); // the CLI run may start in the same second
        File.Delete(r.ManifestPath!);
        Run cli = await RunCli("object", "backup", "--db-root", obj.DbRoot, "--dir", ObjectFixture.Dir, "--object", ObjectFixture.Object, "--json");
        Assert.Equal(0, cli.ExitCode);
        Assert.Contains("0a1b2c3d.tmp", cli.Stdout);
    }

    [Fact]
    public async Task Init_refuses_a_folder_that_holds_other_things_and_writes_nothing()
    {
        string folder = _dir.Combine("busy");
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "notes.txt"), "mine");
        TreeState before = TreeState.Capture(folder);
        Run run = await RunCli("repo", "init", "--repository", folder, "--unencrypted");
        Assert.Equal(5, run.ExitCode);
        Assert.Contains("not empty", run.Stderr);
        before.AssertUnchanged(folder);
    }
}

internal static class WalSegmentWriterTestHelpers
{
    /// <summary>An active (unsealed) newest segment, so the sealed ones before it are shippable.</summary>
    public static void WriteActive(string path) =>
        Wal.WalTestData.WriteSegment(path, 6, Wal.WalTestData.Payloads(1, 7), seal: false);
}
