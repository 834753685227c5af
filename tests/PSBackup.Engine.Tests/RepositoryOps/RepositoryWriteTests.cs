using System.Text.Json;
using PSBackup.Engine.ObjectStore;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Retention;
using PSBackup.Engine.Snapshots;
using PSBackup.Engine.Storage;
using PSBackup.Engine.Tests.ObjectStore;
using PSBackup.Engine.Tests.Snapshots;
using PSBackup.Engine.Tests.Storage;
using PSBackup.Engine.Tests.Support;
using PSBackup.Engine.Wal;
using static PSBackup.Engine.Tests.Wal.WalTestData;

namespace PSBackup.Engine.Tests.RepositoryOps;

/// <summary>The three write paths to a repository (object backup, store snapshot, WAL ship) and
/// repository init, run against a local folder and against the real S3 server.</summary>
public abstract class RepositoryWriteTests : IDisposable
{
    protected readonly TestDirectory Dir = new();

    public void Dispose() => Dir.Dispose();

    /// <summary>A location for a new repository, not yet initialized.</summary>
    protected abstract Task<RepositoryTarget> NewLocationAsync();

    protected async Task<RepositoryTarget> NewRepositoryAsync(string? passphrase = null)
    {
        RepositoryTarget target = await NewLocationAsync();
        RepositoryInfo? info = await RepositoryOperations.InitializeAsync(new InitializeRepositoryOptions(target with { Passphrase = passphrase }) { Unencrypted = passphrase is null }, OperationContext.Default);
        Assert.NotNull(info);
        return target with { Passphrase = passphrase };
    }

    /// <summary>Every stored key with its size: equal before and after means nothing was written.
    /// Operation-history records (which refusals write too) are left out.</summary>
    protected static async Task<SortedDictionary<string, long>> KeysAsync(RepositoryTarget target)
    {
        var keys = new SortedDictionary<string, long>(StringComparer.Ordinal);
        using IStorageBackend backend = RepositoryConnector.OpenBackend(target);
        await foreach (StoredObject o in backend.ListAsync("", CancellationToken.None))
        {
            if (o.Key.StartsWith("events/", StringComparison.Ordinal))
            {
                await using Stream s = await backend.GetAsync(o.Key, CancellationToken.None);
                using var ms = new MemoryStream();
                await s.CopyToAsync(ms);
                if (History.IsOperationEvent(ms.ToArray()))
                {
                    continue;
                }
            }
            keys[o.Key] = o.Size;
        }
        return keys;
    }

    protected static async Task<SortedDictionary<string, string>> RestoreAsync(RepositoryTarget target, string backupId, string into)
    {
        using OpenRepository open = await RepositoryConnector.OpenAsync(target, CancellationToken.None);
        RepositoryManifest m = await open.Repository.ReadManifestAsync(backupId);
        await open.Repository.RestoreAsync(m, into);
        return ObjectFixture.Snapshot(into);
    }

    protected static SortedDictionary<string, string> FilesOnly(SortedDictionary<string, string> tree) =>
        new(tree.Where(kv => kv.Value != "<dir>").ToDictionary(), StringComparer.Ordinal);

    // ---- object backups -------------------------------------------------------------------------

    [Fact]
    public async Task Object_backup_round_trips_through_the_repository_and_leaves_no_local_copy()
    {
        RepositoryTarget repo = await NewRepositoryAsync();
        using var obj = new ObjectFixture();
        ObjectFixture.Write(obj.ObjectPath, "data/003.bin.new", [1, 2, 3]); // a transient artifact: never stored

        ObjectBackupResult? result = await ObjectOperations.BackupAsync(obj.BackupOptions() with { Repository = repo }, OperationContext.Default);

        Assert.NotNull(result);
        Assert.Equal(repo.Location, result.Repository);
        Assert.Matches("^[0-9a-f]{64}$", result.BackupId);
        Assert.Null(result.BackupPath);
        Assert.Null(result.ManifestPath);
        Assert.Equal(BackupConsistency.Stable, result.Consistency);
        Assert.Equal([ObjectFixture.Object], Directory.GetFileSystemEntries(obj.DirPath).Select(Path.GetFileName));
        SortedDictionary<string, string> restored = await RestoreAsync(repo, result.BackupId!, Dir.Combine("restored"));
        Assert.Equal(FilesOnly(ObjectFixture.Snapshot(obj.ObjectPath)), FilesOnly(restored));
        Assert.DoesNotContain("data/003.bin.new", restored.Keys);

        using OpenRepository open = await RepositoryConnector.OpenAsync(repo, CancellationToken.None);
        RepositoryManifest m = await open.Repository.ReadManifestAsync(result.BackupId!);
        Assert.Equal(BackupKind.Object, m.Kind);
        Assert.Equal((ObjectFixture.Dir, ObjectFixture.Object, "Stable"), (m.Dir, m.Object, m.Consistency));
        RepositoryRef r = Assert.Single(await open.Repository.ListRefsAsync($"object/{ObjectFixture.Dir}/{ObjectFixture.Object}/"));
        Assert.Equal(result.BackupId, r.ManifestId);
    }

    [Fact]
    public async Task An_object_backup_derives_the_passphrase_key_while_it_lists_and_the_open_reuses_it()
    {
        string passphrase = "prewarm " + Guid.NewGuid().ToString("N"); // this test's own cache entry
        RepositoryTarget repo = await NewRepositoryAsync(passphrase);
        using var obj = new ObjectFixture();
        var log = new RecordingLogSink();

        using (OperationLog.Use(log))
        {
            Assert.NotNull(await ObjectOperations.BackupAsync(obj.BackupOptions() with { Repository = repo }, OperationContext.Default));
        }

        // Derived once, beside the listing; the look for a parent backup that follows it on that
        // core and the open both found it in the session's key cache.
        Assert.Single(log.Lines, l => l.Message.StartsWith("Key cache: derived", StringComparison.Ordinal));
        Assert.Equal(2, log.Lines.Count(l => l.Message.StartsWith("Key cache: reused", StringComparison.Ordinal)));
    }

    /// <summary>The parent is read ahead, without the lock, beside the open; what it proves is
    /// checked under the lock: when a prune removed that backup and its data in between, its chunks
    /// are not reused, every file is read again and the backup restores.</summary>
    [Fact]
    public async Task A_parent_read_ahead_that_a_prune_removed_before_the_lock_costs_reads_never_data()
    {
        RepositoryTarget repo = await NewRepositoryAsync();
        using var obj = new ObjectFixture();
        NewObjectBackupOptions options = obj.SettledBackupOptions() with { Repository = repo };
        ObjectBackupResult first = (await ObjectOperations.BackupAsync(options, OperationContext.Default))!;

        ObjectBackupResult second = (await ObjectOperations.BackupAsync(options with
        {
            BeforeOpen = async _ => Assert.Contains(await BackupRemoval.RemoveAsync(
                new RemoveBackupOptions { Repository = repo, BackupIds = [first.BackupId!], PackGracePeriod = TimeSpan.Zero }, OperationContext.Default), i => i.Removed),
        }, OperationContext.Default))!;

        Assert.Equal(first.BackupId, second.ParentId); // the parent read ahead, gone by the lock
        Assert.Equal((first.FileCount, 0), (second.FilesRead, second.FilesReused));
        SortedDictionary<string, string> restored = await RestoreAsync(repo, second.BackupId!, Dir.Combine("after-prune"));
        Assert.Equal(FilesOnly(ObjectFixture.Snapshot(obj.ObjectPath)), FilesOnly(restored));
    }

    [Fact]
    public async Task Deriving_the_key_ahead_keeps_only_a_key_that_opens_the_repository_and_never_throws()
    {
        string passphrase = "prewarm " + Guid.NewGuid().ToString("N");
        RepositoryTarget repo = await NewRepositoryAsync(passphrase);
        KeyObject key;
        using (IStorageBackend backend = RepositoryConnector.OpenBackend(repo))
        {
            key = Assert.Single(await PSBackup.Engine.Repository.Repository.ReadKeysAsync(backend, CancellationToken.None)).Item2!;
        }
        Assert.Null(WrapKeyCache.TryGet(passphrase, key.Salt, key.Iterations));

        await RepositoryConnector.PrewarmKeyAsync(repo with { Passphrase = passphrase + "x" }, CancellationToken.None);
        Assert.Null(WrapKeyCache.TryGet(passphrase + "x", key.Salt, key.Iterations));
        await RepositoryConnector.PrewarmKeyAsync(repo with { Location = repo.Location + "-missing" }, CancellationToken.None);
        using (var cancelled = new CancellationTokenSource())
        {
            cancelled.Cancel();
            await RepositoryConnector.PrewarmKeyAsync(repo, cancelled.Token);
        }

        await RepositoryConnector.PrewarmKeyAsync(repo, CancellationToken.None);

        Assert.Equal(System.Security.Cryptography.Rfc2898DeriveBytes.Pbkdf2(passphrase, Convert.FromBase64String(key.Salt), key.Iterations,
            System.Security.Cryptography.HashAlgorithmName.SHA256, 32), WrapKeyCache.TryGet(passphrase, key.Salt, key.Iterations));
        // A wrong passphrase still fails the open (the cache never stands in for another one).
        await Assert.ThrowsAsync<RepositoryKeyException>(() => RepositoryConnector.OpenAsync(repo with { Passphrase = passphrase + "x" }, CancellationToken.None));
    }

    [Fact]
    public async Task A_second_object_backup_of_a_slightly_changed_object_stores_little()
    {
        RepositoryTarget repo = await NewRepositoryAsync();
        using var obj = new ObjectFixture();
        ObjectBackupResult first = (await ObjectOperations.BackupAsync(obj.BackupOptions() with { Repository = repo }, OperationContext.Default))!;
        ObjectFixture.Write(obj.ObjectPath, "metadata/counts", "rows=1001\n"u8.ToArray());

        ObjectBackupResult second = (await ObjectOperations.BackupAsync(obj.BackupOptions() with { Repository = repo }, OperationContext.Default))!;

        Assert.NotEqual(first.BackupId, second.BackupId);
        Assert.True(first.StoredBytes > 60_000, $"first run stored {first.StoredBytes} bytes");
        Assert.True(second.StoredBytes < first.StoredBytes / 10, $"second run stored {second.StoredBytes} of the first's {first.StoredBytes} bytes");
        SortedDictionary<string, string> restored = await RestoreAsync(repo, second.BackupId!, Dir.Combine("second"));
        Assert.Equal(FilesOnly(ObjectFixture.Snapshot(obj.ObjectPath)), FilesOnly(restored));
    }

    // ---- object restore from the repository ---------------------------------------------------

    /// <summary>Two backups a minute apart (the clock names them), the live object changed after each.</summary>
    private async Task<(RepositoryTarget Repo, ObjectFixture Obj, ObjectBackupResult First, ObjectBackupResult Second, SortedDictionary<string, string> FirstTree, SortedDictionary<string, string> SecondTree)> TwoObjectBackupsAsync()
    {
        RepositoryTarget repo = await NewRepositoryAsync();
        var obj = new ObjectFixture();
        var clock = new FixedClock(new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero));
        ObjectBackupResult first = (await ObjectOperations.BackupAsync(obj.BackupOptions() with { Repository = repo }, new OperationContext { Clock = clock }))!;
        SortedDictionary<string, string> firstTree = FilesOnly(ObjectFixture.Snapshot(obj.ObjectPath));
        ObjectFixture.Populate(obj.ObjectPath, seed: 2);
        clock.Now = clock.Now.AddMinutes(1);
        ObjectBackupResult second = (await ObjectOperations.BackupAsync(obj.BackupOptions() with { Repository = repo }, new OperationContext { Clock = clock }))!;
        SortedDictionary<string, string> secondTree = FilesOnly(ObjectFixture.Snapshot(obj.ObjectPath));
        ObjectFixture.Populate(obj.ObjectPath, seed: 3); // the live object moves on
        return (repo, obj, first, second, firstTree, secondTree);
    }

    [Fact]
    public async Task Object_restore_from_the_repository_is_byte_exact_newest_by_default_and_by_id()
    {
        var (repo, obj, first, second, firstTree, secondTree) = await TwoObjectBackupsAsync();
        using ObjectFixture owned = obj;
        SortedDictionary<string, string> live = FilesOnly(ObjectFixture.Snapshot(obj.ObjectPath));
        string audit = Dir.Combine("audit.jsonl");

        ObjectRestoreResult? newest = await ObjectOperations.RestoreAsync(
            new RestoreObjectBackupOptions(obj.DbRoot, ObjectFixture.Dir, ObjectFixture.Object, null) { Repository = repo, Force = true },
            new OperationContext { AuditLogPath = audit });

        Assert.NotNull(newest);
        Assert.Equal((second.BackupId, second.BackupName, repo.Location), (newest.BackupId, newest.BackupName, newest.Repository));
        Assert.Equal(secondTree, FilesOnly(ObjectFixture.Snapshot(obj.ObjectPath)));
        Assert.Equal(live, FilesOnly(ObjectFixture.Snapshot(newest.ReplacedPath!))); // the replaced object is kept aside
        Assert.Equal((secondTree.Count, second.Bytes), (newest.FileCount, newest.Bytes));

        ObjectRestoreResult? byId = await ObjectOperations.RestoreAsync(
            new RestoreObjectBackupOptions(obj.DbRoot, ObjectFixture.Dir, ObjectFixture.Object, first.BackupName) { Repository = repo, BackupId = first.BackupId, Force = true },
            OperationContext.Default); // a New-ObjectBackup -Repository result carries both

        Assert.Equal(first.BackupName, byId!.BackupName);
        Assert.Equal(firstTree, FilesOnly(ObjectFixture.Snapshot(obj.ObjectPath)));
        Assert.Empty(Directory.EnumerateDirectories(obj.DirPath, "*.tmp"));
        // Recorded like the other restores: an audit line, and history in the repository under the dir.
        Assert.Contains(File.ReadLines(audit), l => l.Contains("\"Restore-ObjectBackup\"", StringComparison.Ordinal) && l.Contains("tenant1/users", StringComparison.Ordinal));
        using IStorageBackend backend = RepositoryConnector.OpenBackend(repo);
        var events = new List<string>();
        await foreach (StoredObject o in backend.ListAsync($"events/{ObjectFixture.Dir}/", CancellationToken.None))
        {
            await using Stream st = await backend.GetAsync(o.Key, CancellationToken.None);
            events.Add(await new StreamReader(st).ReadToEndAsync());
        }
        Assert.Equal(2, events.Count(e => e.Contains("\"object-restore\"", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Object_restore_from_the_repository_refuses_another_objects_backup_and_a_non_empty_object()
    {
        var (repo, obj, first, _, _, _) = await TwoObjectBackupsAsync();
        using ObjectFixture owned = obj;
        Directory.CreateDirectory(Path.Combine(obj.DbRoot, "tenant2"));
        ObjectFixture.Populate(Path.Combine(obj.DbRoot, "tenant2", "orders"), seed: 9);
        var before = ObjectFixture.Snapshot(obj.DbRoot);

        var otherDir = await Assert.ThrowsAsync<InvalidInputException>(() => ObjectOperations.RestoreAsync(
            new RestoreObjectBackupOptions(obj.DbRoot, "tenant2", ObjectFixture.Object, null) { Repository = repo, BackupId = first.BackupId, Force = true }, OperationContext.Default));
        var otherObject = await Assert.ThrowsAsync<InvalidInputException>(() => ObjectOperations.RestoreAsync(
            new RestoreObjectBackupOptions(obj.DbRoot, ObjectFixture.Dir, "orders", null) { Repository = repo, BackupId = first.BackupId, Force = true }, OperationContext.Default));
        var none = await Assert.ThrowsAsync<NotFoundException>(() => ObjectOperations.RestoreAsync(
            new RestoreObjectBackupOptions(obj.DbRoot, "tenant2", "orders", null) { Repository = repo, Force = true }, OperationContext.Default));
        var notEmpty = await Assert.ThrowsAsync<ConflictException>(() => ObjectOperations.RestoreAsync(
            new RestoreObjectBackupOptions(obj.DbRoot, ObjectFixture.Dir, ObjectFixture.Object, null) { Repository = repo }, OperationContext.Default));
        var badId = await Assert.ThrowsAsync<InvalidInputException>(() => ObjectOperations.RestoreAsync(
            new RestoreObjectBackupOptions(obj.DbRoot, ObjectFixture.Dir, ObjectFixture.Object, null) { Repository = repo, BackupId = "../x", Force = true }, OperationContext.Default));
        var fromOther = await Assert.ThrowsAsync<InvalidInputException>(() => ObjectOperations.RestoreAsync(
            new RestoreObjectBackupOptions(obj.DbRoot, ObjectFixture.Dir, ObjectFixture.Object, "users.backup-20990101T000000") { Repository = repo, BackupId = first.BackupId, Force = true }, OperationContext.Default));

        Assert.Equal(("BackupOfOtherObject", "BackupOfOtherObject", "NoBackup", "ObjectNotEmpty", "InvalidBackupId", "AmbiguousBackup"),
            (otherDir.ErrorId, otherObject.ErrorId, none.ErrorId, notEmpty.ErrorId, badId.ErrorId, fromOther.ErrorId));
        Assert.Equal(before, ObjectFixture.Snapshot(obj.DbRoot));
    }

    [Fact]
    public async Task Object_restore_from_a_damaged_pack_is_an_integrity_error_and_WhatIf_writes_nothing()
    {
        var (repo, obj, _, _, _, _) = await TwoObjectBackupsAsync();
        using ObjectFixture owned = obj;
        var before = ObjectFixture.Snapshot(obj.DbRoot, skipArtifacts: false);
        var asked = new List<string>();

        ObjectRestoreResult? declined = await ObjectOperations.RestoreAsync(
            new RestoreObjectBackupOptions(obj.DbRoot, ObjectFixture.Dir, ObjectFixture.Object, null) { Repository = repo, Force = true },
            new OperationContext { ShouldProcess = (target, action) => { asked.Add(action); return false; } });

        Assert.Null(declined);
        Assert.Contains(asked, a => a.Contains("Replace with backup users.backup-20260301T120100", StringComparison.Ordinal));
        Assert.Equal(before, ObjectFixture.Snapshot(obj.DbRoot));

        using (IStorageBackend backend = RepositoryConnector.OpenBackend(repo))
        {
            var packs = new List<string>();
            await foreach (StoredObject o in backend.ListAsync("packs/", CancellationToken.None))
            {
                packs.Add(o.Key);
            }
            foreach (string key in packs)
            {
                byte[] bytes;
                await using (Stream st = await backend.GetAsync(key, CancellationToken.None))
                using (var ms = new MemoryStream())
                {
                    await st.CopyToAsync(ms);
                    bytes = ms.ToArray();
                }
                bytes[bytes.Length / 2] ^= 0x5a;
                await backend.PutAsync(key, new MemoryStream(bytes), bytes.Length, CancellationToken.None);
            }
        }

        await Assert.ThrowsAnyAsync<RepositoryIntegrityException>(() => ObjectOperations.RestoreAsync(
            new RestoreObjectBackupOptions(obj.DbRoot, ObjectFixture.Dir, ObjectFixture.Object, null) { Repository = repo, Force = true }, OperationContext.Default));

        Assert.Equal(before, ObjectFixture.Snapshot(obj.DbRoot, skipArtifacts: false)); // no temp left, live object untouched
    }

    [Fact]
    public async Task Files_unchanged_since_the_parent_backup_are_reused_unread_and_a_changed_one_is_read()
    {
        RepositoryTarget repo = await NewRepositoryAsync();
        using var obj = new ObjectFixture();
        NewObjectBackupOptions options = obj.SettledBackupOptions() with { Repository = repo };
        ObjectBackupResult first = (await ObjectOperations.BackupAsync(options, OperationContext.Default))!;
        Assert.Null(first.ParentId);
        Assert.Equal((first.FileCount, 0), (first.FilesRead, first.FilesReused));

        ObjectBackupResult same = (await ObjectOperations.BackupAsync(options, OperationContext.Default))!;
        Assert.Equal(first.BackupId, same.ParentId);
        Assert.Equal((0, first.FileCount), (same.FilesRead, same.FilesReused));
        Assert.Equal(BackupConsistency.Stable, same.Consistency);

        // Same size, new content, a new (still settled) last-write time: read again.
        string changed = Path.Combine(obj.ObjectPath, "data", "001.bin");
        byte[] content = ObjectFixture.Bytes("changed", (int)new FileInfo(changed).Length);
        File.WriteAllBytes(changed, content);
        File.SetLastWriteTimeUtc(changed, DateTime.UtcNow.AddMinutes(-30));
        ObjectBackupResult third = (await ObjectOperations.BackupAsync(options, OperationContext.Default))!;

        Assert.Equal(same.BackupId, third.ParentId);
        Assert.Equal((1, first.FileCount - 1), (third.FilesRead, third.FilesReused));
        SortedDictionary<string, string> restored = await RestoreAsync(repo, third.BackupId!, Dir.Combine("third"));
        Assert.Equal(FilesOnly(ObjectFixture.Snapshot(obj.ObjectPath)), FilesOnly(restored));
        Assert.Equal(ObjectFixture.Sha256(content).ToUpperInvariant(), restored["data/001.bin"]);

        ObjectBackupResult forced = (await ObjectOperations.BackupAsync(options with { Force = true }, OperationContext.Default))!;
        Assert.Null(forced.ParentId);
        Assert.Equal((first.FileCount, 0), (forced.FilesRead, forced.FilesReused));
    }

    /// <summary>The listings after the copy keep only names that appeared; a name copied before is
    /// only marked as still there. A file removed after its copy, one that appeared during the copy
    /// and one that appeared while that one was copied are each told apart.</summary>
    [Fact]
    public async Task A_file_removed_after_its_copy_and_files_that_appeared_during_the_copy_or_at_its_end_are_listed_as_changed()
    {
        RepositoryTarget repo = await NewRepositoryAsync();
        using var obj = new ObjectFixture();
        string removedLater = Path.Combine(obj.ObjectPath, "data", "000.bin");
        byte[] removedContent = File.ReadAllBytes(removedLater);
        byte[] appeared = ObjectFixture.Bytes("appeared", 7_000);
        byte[] atTheEnd = ObjectFixture.Bytes("at the end", 3_000);
        var progress = new PSBackup.Engine.Tests.Restore.SyncProgress(p =>
        {
            if (p.Status == "Copied data/001.bin")
            {
                File.Delete(removedLater); // already copied
                ObjectFixture.Write(obj.ObjectPath, "data/003.bin", appeared); // the second listing finds it
            }
            else if (p.Status == "Copied data/003.bin")
            {
                ObjectFixture.Write(obj.ObjectPath, "indexes/age/001.idx", atTheEnd); // only the last listing sees it
            }
        });
        OperationContext context = new() { Progress = progress };

        ObjectBackupResult result = (await ObjectOperations.BackupAsync(obj.SettledBackupOptions() with { Repository = repo }, context))!;

        Assert.Equal(BackupConsistency.Recent, result.Consistency);
        Assert.Equal(["data/000.bin", "data/003.bin", "indexes/age/001.idx"], result.ChangedFiles);
        SortedDictionary<string, string> restored = FilesOnly(await RestoreAsync(repo, result.BackupId!, Dir.Combine("restored")));
        Assert.Equal(ObjectFixture.Sha256(removedContent).ToUpperInvariant(), restored["data/000.bin"]);
        Assert.Equal(ObjectFixture.Sha256(appeared).ToUpperInvariant(), restored["data/003.bin"]);
        Assert.DoesNotContain("indexes/age/001.idx", restored.Keys);
        Assert.Equal(result.FileCount, restored.Count);
    }

    /// <summary>The listing runs before the Quiesce hook; a fenced backup is of the files as the
    /// fence left them, so a file the last write before the fence changed is read, never reused
    /// from the parent because the listing saw the parent's stamp.</summary>
    [Fact]
    public async Task A_file_written_just_before_the_fence_is_read_not_reused_from_the_stamp_listed_before_it()
    {
        RepositoryTarget repo = await NewRepositoryAsync();
        using var obj = new ObjectFixture();
        NewObjectBackupOptions options = obj.SettledBackupOptions() with { Repository = repo };
        ObjectBackupResult first = (await ObjectOperations.BackupAsync(options, OperationContext.Default))!;
        string changed = Path.Combine(obj.ObjectPath, "data", "001.bin");
        byte[] content = ObjectFixture.Bytes("written before the fence", (int)new FileInfo(changed).Length);

        ObjectBackupResult fenced = (await ObjectOperations.BackupAsync(options with
        {
            Quiesce = _ =>
            {
                File.WriteAllBytes(changed, content); // the writer's last write, then it pauses
                File.SetLastWriteTimeUtc(changed, DateTime.UtcNow.AddMinutes(-30));
                return Task.CompletedTask;
            },
            Resume = _ => Task.CompletedTask,
        }, OperationContext.Default))!;

        Assert.Equal(first.BackupId, fenced.ParentId);
        Assert.Equal((1, first.FileCount - 1), (fenced.FilesRead, fenced.FilesReused));
        SortedDictionary<string, string> restored = await RestoreAsync(repo, fenced.BackupId!, Dir.Combine("fenced"));
        Assert.Equal(ObjectFixture.Sha256(content).ToUpperInvariant(), restored["data/001.bin"]);
    }

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    private static extern int link(string existing, string newName);

    [Fact]
    public async Task Hard_links_to_one_inode_are_read_once_and_each_name_restores_its_content()
    {
        if (!OperatingSystem.IsLinux())
        {
            return; // the hard links are made with link(2)
        }
        RepositoryTarget repo = await NewRepositoryAsync();
        using var obj = new ObjectFixture();
        // As Debian's dri/*_dri.so: one inode under several names.
        ObjectFixture.Write(obj.ObjectPath, "files/driver.so", ObjectFixture.Bytes("driver", 600_000));
        string first = Path.Combine(obj.ObjectPath, "files", "driver.so");
        foreach (string other in new[] { Path.Combine(obj.ObjectPath, "files", "driver-b.so"), Path.Combine(obj.ObjectPath, "data", "driver-c.so") })
        {
            Assert.Equal(0, link(first, other));
        }
        NewObjectBackupOptions options = obj.SettledBackupOptions() with { Repository = repo };

        ObjectBackupResult full = (await ObjectOperations.BackupAsync(options, OperationContext.Default))!;

        Assert.Equal((full.FileCount - 2, 2), (full.FilesRead, full.FilesReused)); // the inode is read once
        SortedDictionary<string, string> restored = await RestoreAsync(repo, full.BackupId!, Dir.Combine("full"));
        Assert.Equal(FilesOnly(ObjectFixture.Snapshot(obj.ObjectPath)), FilesOnly(restored));

        // New bytes through one name are new bytes under every name: one read, the other names follow.
        byte[] changed = ObjectFixture.Bytes("driver v2", 650_000);
        File.WriteAllBytes(Path.Combine(obj.ObjectPath, "files", "driver-b.so"), changed);
        File.SetLastWriteTimeUtc(first, DateTime.UtcNow.AddMinutes(-30));
        ObjectBackupResult next = (await ObjectOperations.BackupAsync(options, OperationContext.Default))!;

        Assert.Equal((1, next.FileCount - 1), (next.FilesRead, next.FilesReused));
        restored = await RestoreAsync(repo, next.BackupId!, Dir.Combine("next"));
        string sha = ObjectFixture.Sha256(changed).ToUpperInvariant();
        Assert.Equal((sha, sha, sha), (restored["files/driver.so"], restored["files/driver-b.so"], restored["data/driver-c.so"]));
        Assert.Equal(FilesOnly(ObjectFixture.Snapshot(obj.ObjectPath)), FilesOnly(restored));
    }

    [Fact]
    public async Task Names_that_differ_only_in_case_are_two_files_and_two_folders_where_the_file_system_keeps_them_apart()
    {
        if (SafePath.NamesIgnoreCase)
        {
            return; // Windows and macOS cannot hold 'Sys' and 'sys' apart, so no object there has both
        }
        // As Debian's /usr/lib/x86_64-linux-gnu/perl/5.36.0 has Sys/ and sys/ side by side.
        RepositoryTarget repo = await NewRepositoryAsync();
        using var obj = new ObjectFixture();
        ObjectFixture.Write(obj.ObjectPath, "perl/Sys/Hostname.pm", ObjectFixture.Bytes("Sys", 70_000));
        ObjectFixture.Write(obj.ObjectPath, "perl/sys/ioctl.ph", ObjectFixture.Bytes("sys", 90_000));
        ObjectFixture.Write(obj.ObjectPath, "perl/README", ObjectFixture.Bytes("README", 5_000));
        ObjectFixture.Write(obj.ObjectPath, "perl/readme", ObjectFixture.Bytes("readme", 6_000));
        NewObjectBackupOptions options = obj.SettledBackupOptions() with { Repository = repo };

        ObjectBackupResult first = (await ObjectOperations.BackupAsync(options, OperationContext.Default))!;
        ObjectBackupResult again = (await ObjectOperations.BackupAsync(options, OperationContext.Default))!;

        // The backup reads back (the next run finds it as its parent and reuses every file) ...
        Assert.Equal(first.BackupId, again.ParentId);
        Assert.Equal((0, first.FileCount), (again.FilesRead, again.FilesReused));
        // ... and restores both spellings of each name, byte for byte, folders included.
        SortedDictionary<string, string> restored = await RestoreAsync(repo, again.BackupId!, Dir.Combine("restored"));
        Assert.Equal(FilesOnly(ObjectFixture.Snapshot(obj.ObjectPath)), FilesOnly(restored));
        Assert.Contains("perl/Sys/Hostname.pm", restored.Keys);
        Assert.Contains("perl/sys/ioctl.ph", restored.Keys);
        Assert.NotEqual(restored["perl/README"], restored["perl/readme"]);
    }

    [Fact]
    public async Task Files_written_within_the_clock_window_record_no_stamp_and_are_read_next_time()
    {
        RepositoryTarget repo = await NewRepositoryAsync();
        using var obj = new ObjectFixture(); // just written: inside the racy window and (made so) the clock window
        NewObjectBackupOptions options = obj.BackupOptions() with { Repository = repo, ClockWindow = TimeSpan.FromHours(1) };

        ObjectBackupResult first = (await ObjectOperations.BackupAsync(options, OperationContext.Default))!;
        ObjectBackupResult second = (await ObjectOperations.BackupAsync(options, OperationContext.Default))!;

        Assert.Equal(first.BackupId, second.ParentId);
        Assert.Equal((first.FileCount, 0), (second.FilesRead, second.FilesReused));
        using OpenRepository open = await RepositoryConnector.OpenAsync(repo, CancellationToken.None);
        RepositoryManifest m = await open.Repository.ReadManifestAsync(second.BackupId!);
        Assert.All(m.Files, f => Assert.Null(f.Stamp));
    }

    [Fact]
    public async Task Object_backup_refuses_a_symbolic_link_and_writes_nothing()
    {
        RepositoryTarget repo = await NewRepositoryAsync();
        using var obj = new ObjectFixture();
        File.CreateSymbolicLink(Path.Combine(obj.ObjectPath, "files", "link"), "/etc/hostname");
        var before = await KeysAsync(repo);

        var e = await Assert.ThrowsAsync<InvalidInputException>(() => ObjectOperations.BackupAsync(obj.BackupOptions() with { Repository = repo }, OperationContext.Default));

        Assert.Equal("SymbolicLinkInObject", e.ErrorId);
        Assert.Equal(before, await KeysAsync(repo));
    }

    [Fact]
    public async Task WhatIf_writes_nothing_to_the_repository()
    {
        RepositoryTarget repo = await NewRepositoryAsync();
        using var obj = new ObjectFixture();
        string data = Dir.Combine("data");
        CreateNamespace(data, "users", (3, true), (2, false));
        SnapshotTestSupport.CreateFileNamespace(data, "users");
        var before = await KeysAsync(repo);
        var whatIf = new OperationContext { ShouldProcess = (_, _) => false };

        Assert.Null(await ObjectOperations.BackupAsync(obj.BackupOptions() with { Repository = repo }, whatIf));
        Assert.Null(await SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(data, "users", null) { Repository = repo }, whatIf));
        Assert.Empty((await WalOperations.ShipAsync(new InvokeWalShipOptions(data, "users", null) { Repository = repo }, whatIf)).Backups);

        Assert.Equal(before, await KeysAsync(repo));
    }

    // ---- store snapshots ----------------------------------------------------------------------

    [Fact]
    public async Task Store_snapshot_round_trips_with_its_WAL_position_and_removes_its_temp()
    {
        RepositoryTarget repo = await NewRepositoryAsync();
        string data = Dir.Combine("data");
        SnapshotTestSupport.CreateSqliteNamespace(data, "ns1", keys: 200);
        CreateNamespace(data, "ns1", (3, true), (2, false));

        StoreSnapshotResult? result = await SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(data, "ns1", null) { Repository = repo }, OperationContext.Default);

        Assert.NotNull(result);
        Assert.Matches("^snapshot/ns1/[0-9]{8}T[0-9]{6}Z$", result.Path);
        Assert.Null(result.ManifestPath);
        Assert.Equal(200, result.WalPosition.AppliedLogIndex);
        Assert.Equal([1L, 2L], result.WalPosition.SegmentIds);
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(data, "backups", "ns1")));

        string restored = Dir.Combine("restored");
        SortedDictionary<string, string> files = await RestoreAsync(repo, result.BackupId!, restored);
        string db = Assert.Single(files.Keys, k => files[k] != "<dir>");
        Assert.StartsWith("db/", db);
        Assert.Equal("ok", SnapshotTestSupport.IntegrityCheck(Path.Combine(restored, db)));
        using OpenRepository open = await RepositoryConnector.OpenAsync(repo, CancellationToken.None);
        RepositoryManifest m = await open.Repository.ReadManifestAsync(result.BackupId!);
        Assert.Equal((BackupKind.StoreSnapshot, "ns1"), (m.Kind, m.Namespace));
        Assert.Equal(result.WalPosition.AppliedLogIndex, m.Wal!.AppliedLogIndex);
        Assert.Equal(result.BackupId, Assert.Single(await open.Repository.FindRefAsync(result.Path)).ManifestId);
    }

    [Fact]
    public async Task A_second_snapshot_of_a_store_with_a_few_changed_pages_stores_little()
    {
        RepositoryTarget repo = await NewRepositoryAsync();
        string data = Dir.Combine("data");
        string nsDir = SnapshotTestSupport.CreateFileNamespace(data, "ns1", size: 1 << 20);
        StoreSnapshotResult first = (await SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(data, "ns1", null) { Repository = repo }, OperationContext.Default))!;
        using (var f = new FileStream(Path.Combine(nsDir, "db", "data.mdb"), FileMode.Open))
        {
            foreach (long page in new long[] { 3, 100, 200 })
            {
                f.Position = page * 4096;
                f.Write(new byte[4096].Select((_, i) => (byte)(i * 7 + page)).ToArray());
            }
        }

        StoreSnapshotResult second = (await SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(data, "ns1", null) { Repository = repo }, OperationContext.Default))!;

        Assert.True(first.StoredBytes > 3 << 20, $"first snapshot stored {first.StoredBytes} bytes");
        Assert.True(second.StoredBytes < first.StoredBytes / 20, $"second snapshot stored {second.StoredBytes} of the first's {first.StoredBytes} bytes");
        SortedDictionary<string, string> restored = await RestoreAsync(repo, second.BackupId!, Dir.Combine("restored"));
        Assert.Equal(ObjectFixture.Sha256(File.ReadAllBytes(Path.Combine(nsDir, "db", "data.mdb"))).ToUpperInvariant(), restored["db/data.mdb"]);
    }

    // ---- WAL shipping -------------------------------------------------------------------------

    private string NewWal(params (int Records, bool Sealed)[] segments)
    {
        string data = Dir.Combine("data");
        CreateNamespace(data, "users", segments);
        return data;
    }

    private static Task<WalShipResult> Ship(string data, RepositoryTarget repo, long after = 0, OperationContext? context = null) =>
        WalOperations.ShipAsync(new InvokeWalShipOptions(data, "users", null) { Repository = repo, AfterSegmentId = after, SealedOnly = true }, context ?? OperationContext.Default);

    [Fact]
    public async Task Wal_ship_archives_each_sealed_segment_once_and_a_rerun_ships_nothing()
    {
        RepositoryTarget repo = await NewRepositoryAsync();
        string data = NewWal((4, true), (3, true), (5, true), (2, true), (2, false));

        WalShipResult first = await Ship(data, repo);

        Assert.Equal([1L, 2L, 3L, 4L], first.Backups.Select(b => b.SegmentId));
        Assert.All(first.Backups, b => Assert.False(b.AlreadyPresent));
        Assert.Equal(["wal/users/000000001", "wal/users/000000002", "wal/users/000000003", "wal/users/000000004"], first.Backups.Select(b => b.Path));
        string restored = Dir.Combine("restored");
        await RestoreAsync(repo, first.Backups[2].BackupId!, restored);
        Assert.Equal(File.ReadAllBytes(Path.Combine(data, "users", "wal", "000000003.wal")), File.ReadAllBytes(Path.Combine(restored, "wal", "000000003.wal")));
        using (OpenRepository open = await RepositoryConnector.OpenAsync(repo, CancellationToken.None))
        {
            RepositoryManifest m = await open.Repository.ReadManifestAsync(first.Backups[2].BackupId!);
            Assert.Equal(BackupKind.WalSegment, m.Kind);
            Assert.Equal((3L, 8L, 5L, true), (m.Segment!.SegmentId, m.Segment.FirstLogIndex, m.Segment.EntryCount, m.Segment.Sealed));
            Assert.Equal(first.Backups[2].Sha256, Assert.Single(m.Files).Sha256);
        }
        var keys = await KeysAsync(repo);

        WalShipResult again = await Ship(data, repo);

        Assert.Equal([1L, 2L, 3L, 4L], again.Backups.Select(b => b.SegmentId));
        Assert.All(again.Backups, b => Assert.True(b.AlreadyPresent));
        Assert.Equal(first.Backups.Select(b => b.BackupId), again.Backups.Select(b => b.BackupId));
        Assert.Equal(keys, await KeysAsync(repo));
    }

    [Fact]
    public async Task A_sealed_segment_is_cut_after_its_header_and_then_every_chunking_maximum()
    {
        RepositoryTarget repo = await NewRepositoryAsync();
        string data = Dir.Combine("data");
        string wal = Path.Combine(data, "users", "wal");
        Directory.CreateDirectory(wal);
        // 3.5 MiB of records (random bytes: content-defined cuts would fall anywhere) in a 4 MiB segment.
        WriteSegment(Path.Combine(wal, "000000001.wal"), 1, Payloads(1400, 7, maxSize: 5000), seal: true, size: 4 << 20);

        ShippedSegment s = Assert.Single((await Ship(data, repo)).Backups);

        using OpenRepository open = await RepositoryConnector.OpenAsync(repo, CancellationToken.None);
        RepositoryFile f = Assert.Single((await open.Repository.ReadManifestAsync(s.BackupId!)).Files);
        int max = open.Repository.Config.DefaultChunking.MaxSize;
        var lengths = f.Chunks.Select(id => open.Repository.Index.TryGet(id, out RepositoryIndex.ChunkLocation loc) ? loc.Length : -1).ToList();
        Assert.Equal(4L << 20, lengths.Sum(l => (long)l));
        Assert.Equal(WalFormat.HeaderSize, lengths[0]);
        Assert.All(lengths.Skip(1).SkipLast(1), l => Assert.Equal(max, l));
        Assert.Equal((4 << 20) - WalFormat.HeaderSize - (lengths.Count - 2) * (long)max, lengths[^1]);
        Assert.InRange(lengths[^1], 1, max);
    }

    [Fact]
    public async Task Wal_ship_ships_only_what_is_new_after_the_database_sealed_more()
    {
        RepositoryTarget repo = await NewRepositoryAsync();
        string data = NewWal((4, true), (3, true), (2, false));
        Assert.Equal([1L, 2L], (await Ship(data, repo)).Backups.Select(b => b.SegmentId));
        // The database seals 3 and opens 4.
        string wal = Path.Combine(data, "users", "wal");
        File.Delete(Path.Combine(wal, "000000003.wal"));
        WriteSegment(Path.Combine(wal, "000000003.wal"), 8, Payloads(2, 3 * 31), seal: true);
        WriteSegment(Path.Combine(wal, "000000004.wal"), 10, Payloads(1, 4 * 31), seal: false);

        WalShipResult next = await Ship(data, repo);

        Assert.Equal([(1L, true), (2L, true), (3L, false)], next.Backups.Select(b => (b.SegmentId, b.AlreadyPresent)));
    }

    [Fact]
    public async Task An_archived_segment_damaged_locally_after_shipping_is_refused_though_only_its_header_is_reread()
    {
        RepositoryTarget repo = await NewRepositoryAsync();
        string data = NewWal((4, true), (3, true), (2, false));
        Assert.Equal([1L, 2L], (await Ship(data, repo)).Backups.Select(b => b.SegmentId));
        // A write damages a record of archived segment 2 (the header is intact; the write moves
        // the file's last-write time, so the segment is read and compared again), then the
        // database seals 3 and opens 4.
        string wal = Path.Combine(data, "users", "wal");
        string two = Path.Combine(wal, "000000002.wal");
        byte[] bytes = File.ReadAllBytes(two);
        bytes[WalFormat.HeaderSize + 20] ^= 0x5a;
        File.WriteAllBytes(two, bytes);
        Assert.False(WalSegmentReader.Inspect(two, "users").Valid);
        File.Delete(Path.Combine(wal, "000000003.wal"));
        WriteSegment(Path.Combine(wal, "000000003.wal"), 8, Payloads(2, 3 * 31), seal: true);
        WriteSegment(Path.Combine(wal, "000000004.wal"), 10, Payloads(1, 4 * 31), seal: false);
        var before = await KeysAsync(repo);

        var e = await Assert.ThrowsAsync<ConflictException>(() => Ship(data, repo));

        Assert.Equal("WalSegmentConflict", e.ErrorId);
        Assert.Equal("wal/users/000000002", e.Target);
        Assert.Equal(before, await KeysAsync(repo));
    }

    [Fact]
    public async Task An_archived_segment_unchanged_since_its_upload_is_proven_by_its_recorded_identity_not_read_again()
    {
        RepositoryTarget repo = await NewRepositoryAsync();
        string data = NewWal((4, true), (3, true), (2, false));
        string wal = Path.Combine(data, "users", "wal");
        string two = Path.Combine(wal, "000000002.wal");
        var stamp = new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        File.SetLastWriteTimeUtc(two, stamp);
        Assert.Equal([1L, 2L], (await Ship(data, repo)).Backups.Select(b => b.SegmentId));
        // A byte of segment 2 changes under a write that puts its last-write time back: the ship
        // sees the size, time and header its manifest recorded, so it does not read the segment
        // (a ship over a WAL of a thousand sealed segments must not hash 16 GiB each time).
        using (var f = new FileStream(two, FileMode.Open, FileAccess.Write))
        {
            f.Position = WalFormat.HeaderSize + 20;
            f.WriteByte(0x5a);
        }
        File.SetLastWriteTimeUtc(two, stamp);
        File.Delete(Path.Combine(wal, "000000003.wal"));
        WriteSegment(Path.Combine(wal, "000000003.wal"), 8, Payloads(2, 3 * 31), seal: true);
        WriteSegment(Path.Combine(wal, "000000004.wal"), 10, Payloads(1, 4 * 31), seal: false);

        WalShipResult next = await Ship(data, repo);

        Assert.Equal([(1L, true), (2L, true), (3L, false)], next.Backups.Select(b => (b.SegmentId, b.AlreadyPresent)));
        // Any other last-write time: read and compared, and refused.
        File.SetLastWriteTimeUtc(two, stamp.AddSeconds(1));
        var before = await KeysAsync(repo);
        var e = await Assert.ThrowsAsync<ConflictException>(() => Ship(data, repo));
        Assert.Equal("wal/users/000000002", e.Target);
        Assert.Equal(before, await KeysAsync(repo));
    }

    [Fact]
    public async Task An_archived_segment_with_different_content_is_refused_never_overwritten()
    {
        RepositoryTarget repo = await NewRepositoryAsync();
        string data = NewWal((4, true), (3, true), (5, true), (2, false));
        using (OpenRepository open = await RepositoryConnector.OpenAsync(repo, CancellationToken.None))
        {
            // Plant a different segment 2, as another host with a diverged WAL would have shipped it.
            await using BackupWriter w = open.Repository.BeginBackup(new BackupInfo
            {
                Kind = BackupKind.WalSegment,
                Namespace = "users",
                Segment = new RepositorySegment { SegmentId = 2, FirstLogIndex = 5, EntryCount = 3, Sealed = true },
            });
            await w.AddFileAsync("wal/000000002.wal", new MemoryStream(new byte[SmallSegment]));
            await w.CommitAsync("wal/users/000000002");
        }
        var before = await KeysAsync(repo);

        var e = await Assert.ThrowsAsync<ConflictException>(() => Ship(data, repo));

        Assert.Equal("WalSegmentConflict", e.ErrorId);
        Assert.Contains("Segment 2 ", e.Message);
        Assert.Equal("wal/users/000000002", e.Target);
        Assert.Equal(before, await KeysAsync(repo));
    }

    [Fact]
    public async Task A_gap_between_the_archive_and_the_WAL_is_refused_and_recorded_as_an_event()
    {
        RepositoryTarget repo = await NewRepositoryAsync();
        string data = NewWal((4, true), (3, true), (5, true), (2, true), (2, false));
        string wal = Path.Combine(data, "users", "wal");
        string aside = Dir.Combine("aside");
        Directory.CreateDirectory(aside);
        foreach (long id in new long[] { 2, 3, 4, 5 })
        {
            File.Move(Path.Combine(wal, WalFormat.SegmentFileName(id)), Path.Combine(aside, WalFormat.SegmentFileName(id)));
        }
        Assert.Equal([1L], (await Ship(data, repo)).Backups.Select(b => b.SegmentId));
        // Segments 2 and 3 are lost before they were shipped; 4 (sealed) and 5 (active) remain.
        foreach (long id in new long[] { 4, 5 })
        {
            File.Move(Path.Combine(aside, WalFormat.SegmentFileName(id)), Path.Combine(wal, WalFormat.SegmentFileName(id)));
        }
        File.Delete(Path.Combine(wal, WalFormat.SegmentFileName(1)));
        var before = await KeysAsync(repo);

        var e = await Assert.ThrowsAsync<WalGapException>(() => Ship(data, repo));

        Assert.Equal([2L, 3L], e.MissingSegmentIds);
        Assert.Contains("2, 3", e.Message);
        var after = await KeysAsync(repo);
        string added = Assert.Single(after.Keys.Except(before.Keys));
        Assert.Matches("^events/users/[0-9]{8}T[0-9]{9}Z-[0-9a-f]{8}\\.json$", added);
        using IStorageBackend backend = RepositoryConnector.OpenBackend(repo);
        await using Stream s = await backend.GetAsync(added, CancellationToken.None);
        using JsonDocument doc = await JsonDocument.ParseAsync(s);
        Assert.Equal("wal-gap", doc.RootElement.GetProperty("kind").GetString());
        Assert.Equal("users", doc.RootElement.GetProperty("namespace").GetString());
        Assert.Equal([2L, 3L], doc.RootElement.GetProperty("missingSegmentIds").EnumerateArray().Select(x => x.GetInt64()));
        Assert.True(doc.RootElement.TryGetProperty("detectedAt", out _));
    }

    [Fact]
    public async Task A_log_index_gap_at_the_seam_with_the_archive_is_refused()
    {
        RepositoryTarget repo = await NewRepositoryAsync();
        string data = NewWal((4, true), (2, false));
        Assert.Equal([1L], (await Ship(data, repo)).Backups.Select(b => b.SegmentId));
        // Segment 2 is sealed claiming to start at 9, but 1 ended at 4: indexes 5..8 are missing.
        string wal = Path.Combine(data, "users", "wal");
        File.Delete(Path.Combine(wal, "000000001.wal"));
        File.Delete(Path.Combine(wal, "000000002.wal"));
        WriteSegment(Path.Combine(wal, "000000002.wal"), 9, Payloads(2, 62), seal: true);
        var before = await KeysAsync(repo);

        var e = await Assert.ThrowsAsync<WalGapException>(() => Ship(data, repo));

        Assert.Contains("log indexes 5..8", e.Message);
        Assert.Single((await KeysAsync(repo)).Keys.Except(before.Keys), k => k.StartsWith("events/users/", StringComparison.Ordinal));
    }

    // ---- bad input ----------------------------------------------------------------------------

    [Fact]
    public async Task Bad_names_are_refused_before_anything_is_written()
    {
        RepositoryTarget repo = await NewRepositoryAsync();
        using var obj = new ObjectFixture();
        string data = NewWal((2, true), (1, false));
        var before = await KeysAsync(repo);

        await Assert.ThrowsAsync<InvalidInputException>(() => ObjectOperations.BackupAsync(new NewObjectBackupOptions(obj.DbRoot, "..", "users") { Repository = repo }, OperationContext.Default));
        await Assert.ThrowsAsync<InvalidInputException>(() => ObjectOperations.BackupAsync(new NewObjectBackupOptions(obj.DbRoot, ObjectFixture.Dir, "users.tmp") { Repository = repo }, OperationContext.Default));
        await Assert.ThrowsAsync<InvalidInputException>(() => SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(data, "../users", null) { Repository = repo }, OperationContext.Default));
        await Assert.ThrowsAsync<InvalidInputException>(() => WalOperations.ShipAsync(new InvokeWalShipOptions(data, "users/x", null) { Repository = repo }, OperationContext.Default));

        Assert.Equal(before, await KeysAsync(repo));
    }

    [Fact]
    public async Task A_wrong_passphrase_is_a_key_error_that_never_shows_the_passphrase_and_writes_nothing()
    {
        RepositoryTarget repo = await NewRepositoryAsync(passphrase: "correct horse battery staple");
        using var obj = new ObjectFixture();
        string data = NewWal((2, true), (1, false));
        var before = await KeysAsync(repo);
        const string wrong = "Tr0ub4dor&3-wrong";

        var e1 = await Assert.ThrowsAsync<RepositoryKeyException>(() => ObjectOperations.BackupAsync(obj.BackupOptions() with { Repository = repo with { Passphrase = wrong } }, OperationContext.Default));
        var e2 = await Assert.ThrowsAsync<RepositoryKeyException>(() => WalOperations.ShipAsync(new InvokeWalShipOptions(data, "users", null) { Repository = repo with { Passphrase = null } }, OperationContext.Default));

        Assert.Equal(ErrorKind.InvalidArgument, e1.Kind);
        Assert.DoesNotContain(wrong, e1.Message);
        Assert.DoesNotContain("correct horse", e1.Message);
        Assert.Contains("passphrase", e2.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(before, await KeysAsync(repo));

        // The right passphrase works and the backup restores.
        ObjectBackupResult ok = (await ObjectOperations.BackupAsync(obj.BackupOptions() with { Repository = repo }, OperationContext.Default))!;
        Assert.Equal(FilesOnly(ObjectFixture.Snapshot(obj.ObjectPath)), FilesOnly(await RestoreAsync(repo, ok.BackupId!, Dir.Combine("r"))));
    }

    [Fact]
    public async Task Writing_to_a_location_without_a_repository_is_not_found()
    {
        RepositoryTarget location = await NewLocationAsync();
        if (location.Kind == RepositoryKind.Folder)
        {
            Directory.CreateDirectory(location.Location);
        }
        using var obj = new ObjectFixture();

        var e = await Assert.ThrowsAsync<NotFoundException>(() => ObjectOperations.BackupAsync(obj.BackupOptions() with { Repository = location }, OperationContext.Default));

        Assert.Equal("RepositoryNotFound", e.ErrorId);
        Assert.Empty(await KeysAsync(location));
    }

    // ---- init ---------------------------------------------------------------------------------

    [Fact]
    public async Task Init_refuses_an_existing_repository_and_changes_nothing()
    {
        RepositoryTarget repo = await NewRepositoryAsync();
        var before = await KeysAsync(repo);

        var e = await Assert.ThrowsAsync<ConflictException>(() => RepositoryOperations.InitializeAsync(new InitializeRepositoryOptions(repo with { Passphrase = "other" }), OperationContext.Default));

        Assert.Equal("RepositoryExists", e.ErrorId);
        Assert.Equal(before, await KeysAsync(repo));
    }

    [Fact]
    public async Task Init_with_a_key_file_makes_an_encrypted_repository_that_the_key_file_opens()
    {
        RepositoryTarget location = await NewLocationAsync();
        string keyFile = Dir.Combine("repo.key");
        File.WriteAllBytes(keyFile, System.Security.Cryptography.RandomNumberGenerator.GetBytes(64));

        RepositoryInfo info = (await RepositoryOperations.InitializeAsync(new InitializeRepositoryOptions(location with { KeyFile = keyFile }), OperationContext.Default))!;

        Assert.True(info.Encrypted);
        Assert.Equal("key-file", info.KeyKind);
        Assert.Matches("^[0-9a-f]{64}$", info.RepositoryId);
        using OpenRepository open = await RepositoryConnector.OpenAsync(location with { KeyFile = keyFile }, CancellationToken.None);
        Assert.Equal(info.RepositoryId, open.Repository.Config.Id);
        await Assert.ThrowsAsync<RepositoryKeyException>(() => RepositoryConnector.OpenAsync(location, CancellationToken.None));
    }

    // ---- locks --------------------------------------------------------------------------------

    protected sealed class At(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }

    protected static async Task<string[]> LockKeysAsync(RepositoryTarget target)
    {
        using IStorageBackend backend = RepositoryConnector.OpenBackend(target);
        var keys = new List<string>();
        await foreach (StoredObject o in backend.ListAsync(RepositoryLock.Prefix, CancellationToken.None))
        {
            keys.Add(o.Key);
        }
        return keys.ToArray();
    }

    protected static RemoveExpiredBackupOptions PruneToOne(RepositoryTarget repo) =>
        new() { Repository = repo, Policy = new RetentionPolicy { KeepLast = 1 }, PackGracePeriod = TimeSpan.Zero };

    /// <summary>A keep-last-1 prune that runs (no live lock), removes one object backup and leaves no lock behind.</summary>
    protected static async Task PruneRemovesOneAndLeavesNoLockAsync(RepositoryTarget repo)
    {
        IReadOnlyList<RetentionItem> items = await RetentionOperations.RemoveExpiredAsync(PruneToOne(repo), OperationContext.Default);
        Assert.Single(items, i => i.Kind == RetentionItemKind.Object && i.Removed);
        Assert.Empty(await LockKeysAsync(repo));
    }

    private static async Task<string[]> IndexKeysAsync(RepositoryTarget repo) =>
        (await KeysAsync(repo)).Keys.Where(k => k.StartsWith(RepositoryLayout.IndexPrefix, StringComparison.Ordinal)).ToArray();

    /// <summary>Every backup writes an index object and every open reads them all, so a prune that
    /// removes nothing still folds many of them into one (a WAL shipper writes 1,440 a day); every
    /// backup then still restores and the check finds nothing. Fewer, or -WhatIf: left alone.</summary>
    [Fact]
    public async Task Prune_folds_many_index_objects_into_one_when_nothing_else_goes()
    {
        RepositoryTarget repo = await NewRepositoryAsync();
        using var obj = new ObjectFixture();
        var ids = new List<string>();
        var keepAll = new RemoveExpiredBackupOptions { Repository = repo, Policy = new RetentionPolicy { KeepLast = 100 }, PackGracePeriod = TimeSpan.Zero };
        int fold = RetentionOperations.CompactIndexObjects;
        for (int i = 0; i < fold; i++)
        {
            File.WriteAllText(Path.Combine(obj.ObjectPath, $"more-{i}.txt"), $"data of backup {i} " + new string('x', 100 + i));
            ids.Add((await ObjectOperations.BackupAsync(obj.BackupOptions() with { Repository = repo }, OperationContext.Default))!.BackupId!);
            if (i == fold - 2)
            {
                string[] few = await IndexKeysAsync(repo);
                Assert.Equal(fold - 1, few.Length);
                await RetentionOperations.RemoveExpiredAsync(keepAll, OperationContext.Default);
                Assert.Equal(few, await IndexKeysAsync(repo));
            }
        }
        Assert.Equal(fold, (await IndexKeysAsync(repo)).Length);
        var before = await KeysAsync(repo);
        await RetentionOperations.RemoveExpiredAsync(keepAll, new OperationContext { ShouldProcess = (_, _) => false });
        Assert.Equal(before, await KeysAsync(repo));

        IReadOnlyList<RetentionItem> items = await RetentionOperations.RemoveExpiredAsync(keepAll, OperationContext.Default);

        Assert.DoesNotContain(items, i => i.Removed);
        Assert.Single(await IndexKeysAsync(repo));
        Assert.Equal(before.Keys.Where(k => !k.StartsWith(RepositoryLayout.IndexPrefix, StringComparison.Ordinal)),
            (await KeysAsync(repo)).Keys.Where(k => !k.StartsWith(RepositoryLayout.IndexPrefix, StringComparison.Ordinal)));
        using (OpenRepository open = await RepositoryConnector.OpenAsync(repo, CancellationToken.None))
        {
            RepositoryCheckReport report = await open.Repository.CheckAsync(readData: true);
            Assert.Empty(report.Errors);
            Assert.Empty(report.Warnings);
            Assert.Equal(1, report.Indexes);
        }
        foreach (string id in ids)
        {
            Assert.NotEmpty(await RestoreAsync(repo, id, Dir.Combine("restored-" + id[..8])));
        }
    }

    /// <summary>Two object backups a minute apart, so a keep-last-1 prune has one to remove.</summary>
    protected static async Task TwoBackupsAsync(ObjectFixture obj, RepositoryTarget repo)
    {
        DateTimeOffset now = DateTimeOffset.UtcNow;
        Assert.NotNull(await ObjectOperations.BackupAsync(obj.BackupOptions() with { Repository = repo }, new OperationContext { Clock = new At(now.AddMinutes(-2)) }));
        File.WriteAllText(Path.Combine(obj.ObjectPath, "changed.txt"), "new data for the second backup");
        Assert.NotNull(await ObjectOperations.BackupAsync(obj.BackupOptions() with { Repository = repo }, new OperationContext { Clock = new At(now.AddMinutes(-1)) }));
    }

    [Fact]
    public async Task A_held_shared_lock_makes_prune_refuse_with_nothing_deleted()
    {
        RepositoryTarget repo = await NewRepositoryAsync();
        using var obj = new ObjectFixture();
        await TwoBackupsAsync(obj, repo);
        Assert.Empty(await LockKeysAsync(repo)); // released after each backup
        using IStorageBackend backend = RepositoryConnector.OpenBackend(repo);
        await using (RepositoryLock held = await RepositoryLock.AcquireAsync(backend, RepositoryLockMode.Shared, "New-ObjectBackup", TimeProvider.System, CancellationToken.None))
        {
            var before = await KeysAsync(repo);
            ConflictException e = await Assert.ThrowsAsync<ConflictException>(() => RetentionOperations.RemoveExpiredAsync(PruneToOne(repo), OperationContext.Default));
            Assert.Equal("RepositoryLocked", e.ErrorId);
            Assert.Contains("a shared lock of New-ObjectBackup", e.Message, StringComparison.Ordinal);
            Assert.Contains($"host '{Environment.MachineName}' (pid {Environment.ProcessId}", e.Message, StringComparison.Ordinal);
            Assert.Contains("Wait until that operation finishes", e.Message, StringComparison.Ordinal);
            Assert.Equal(held.Key, e.Target);
            Assert.Equal(before, await KeysAsync(repo));
            Assert.Equal([held.Key], await LockKeysAsync(repo));
        }
        Assert.Empty(await LockKeysAsync(repo));
        await PruneRemovesOneAndLeavesNoLockAsync(repo);
    }

    [Fact]
    public async Task An_exclusive_lock_makes_every_writer_refuse_and_write_nothing()
    {
        RepositoryTarget repo = await NewRepositoryAsync();
        using var obj = new ObjectFixture();
        string data = Dir.Combine("data");
        CreateNamespace(data, "users", (3, true), (2, false));
        SnapshotTestSupport.CreateFileNamespace(data, "users");
        using IStorageBackend backend = RepositoryConnector.OpenBackend(repo);
        await using RepositoryLock prune = await RepositoryLock.AcquireAsync(backend, RepositoryLockMode.Exclusive, "Remove-ExpiredBackup", TimeProvider.System, CancellationToken.None);
        var before = await KeysAsync(repo);

        var errors = new List<ConflictException>
        {
            await Assert.ThrowsAsync<ConflictException>(() => ObjectOperations.BackupAsync(obj.BackupOptions() with { Repository = repo }, OperationContext.Default)),
            await Assert.ThrowsAsync<ConflictException>(() => SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(data, "users", null) { Repository = repo }, OperationContext.Default)),
            await Assert.ThrowsAsync<ConflictException>(() => WalOperations.ShipAsync(new InvokeWalShipOptions(data, "users", null) { Repository = repo }, OperationContext.Default)),
            await Assert.ThrowsAsync<ConflictException>(() => RetentionOperations.RemoveExpiredAsync(PruneToOne(repo), OperationContext.Default)),
        };
        Assert.All(errors, e => Assert.Equal("RepositoryLocked", e.ErrorId));
        Assert.All(errors, e => Assert.Contains("an exclusive lock of Remove-ExpiredBackup", e.Message, StringComparison.Ordinal));
        Assert.Equal(before, await KeysAsync(repo));
        Assert.Equal([prune.Key], await LockKeysAsync(repo));
    }

    [Fact]
    public async Task A_stale_lock_is_ignored_and_prune_removes_it()
    {
        RepositoryTarget repo = await NewRepositoryAsync();
        using var obj = new ObjectFixture();
        using IStorageBackend backend = RepositoryConnector.OpenBackend(repo);
        DateTimeOffset now = DateTimeOffset.UtcNow;
        var stale = new RepositoryLockInfo { Operation = "Remove-ExpiredBackup", Exclusive = true, Host = "a-host-that-crashed", Pid = 4242, Created = now.AddHours(-2), Refreshed = now - RepositoryLock.StaleAfter - TimeSpan.FromMinutes(10) };
        byte[] bytes = JsonSerializer.SerializeToUtf8Bytes(stale, new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.CamelCase });
        await backend.PutAsync("locks/0123456789abcdef0123456789abcdef", new MemoryStream(bytes), bytes.Length, CancellationToken.None);
        // Fresh (refreshed a minute ago) on another host: still counts.
        var live = stale with { Host = "another-host", Refreshed = now.AddMinutes(-1) };
        Assert.False(RepositoryLock.IsStale(live, now));
        Assert.True(Assert.Single(await RepositoryLock.ListAsync(backend, TimeProvider.System, CancellationToken.None)).Stale);

        await TwoBackupsAsync(obj, repo);
        await PruneRemovesOneAndLeavesNoLockAsync(repo);
    }

    [Fact]
    public async Task Locks_are_released_after_a_failure_and_refreshed_under_a_new_key()
    {
        RepositoryTarget repo = await NewRepositoryAsync();
        using var obj = new ObjectFixture();
        var failing = obj.BackupOptions() with { Repository = repo, Quiesce = _ => throw new OperationFailedException("QuiesceFailed", "the writer did not pause") };
        Assert.Equal("QuiesceFailed", (await Assert.ThrowsAsync<OperationFailedException>(() => ObjectOperations.BackupAsync(failing, OperationContext.Default))).ErrorId);
        Assert.Empty(await LockKeysAsync(repo));

        using IStorageBackend backend = RepositoryConnector.OpenBackend(repo);
        DateTimeOffset t0 = DateTimeOffset.UtcNow;
        var clock = new MovableClock(t0);
        await using RepositoryLock held = await RepositoryLock.AcquireAsync(backend, RepositoryLockMode.Shared, "Invoke-WalShip", clock, CancellationToken.None);
        string first = held.Key;
        clock.Now = t0 + RepositoryLock.RefreshInterval;
        await held.RefreshAsync(CancellationToken.None);
        Assert.NotEqual(first, held.Key);
        RepositoryLockHolder now = Assert.Single(await RepositoryLock.ListAsync(backend, clock, CancellationToken.None));
        Assert.Equal(held.Key, now.Key);
        Assert.Equal(t0 + RepositoryLock.RefreshInterval, now.Info.Refreshed);
        Assert.Equal(t0, now.Info.Created);
        Assert.False(now.Stale);
    }

    protected sealed class MovableClock(DateTimeOffset now) : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = now;
        public override DateTimeOffset GetUtcNow() => Now;
    }
}

public sealed class LocalFolderRepositoryWriteTests : RepositoryWriteTests
{
    protected override Task<RepositoryTarget> NewLocationAsync() =>
        Task.FromResult(new RepositoryTarget { Location = Dir.Combine("repo-" + Guid.NewGuid().ToString("N")[..8]) });

    [Fact]
    public async Task A_racy_file_whose_pages_were_written_back_records_its_stamp_and_is_reused_next_time()
    {
        if (!Writeback.Available)
        {
            return; // sync_file_range is Linux's; elsewhere racy files are re-hashed (the test above)
        }
        RepositoryTarget repo = await NewRepositoryAsync();
        using var obj = new ObjectFixture(); // just written: every file inside the racy window, dirty in the page cache
        var flushed = new List<string>();
        // A racy window longer than the test and no clock window: every file needs the flush.
        NewObjectBackupOptions options = obj.BackupOptions() with
        {
            Repository = repo,
            RacyWindow = TimeSpan.FromHours(1),
            ClockWindow = TimeSpan.Zero,
            Flush = p => { lock (flushed) { flushed.Add(p); } return Writeback.Flush(p); },
        };

        ObjectBackupResult first = (await ObjectOperations.BackupAsync(options, OperationContext.Default))!;
        Assert.Equal(first.FileCount, flushed.Count);
        Assert.Equal(BackupConsistency.Stable, first.Consistency);
        using (OpenRepository open = await RepositoryConnector.OpenAsync(repo, CancellationToken.None))
        {
            RepositoryManifest m = await open.Repository.ReadManifestAsync(first.BackupId!);
            Assert.All(m.Files, f => Assert.NotNull(f.Stamp));
        }

        ObjectBackupResult second = (await ObjectOperations.BackupAsync(options, OperationContext.Default))!;
        Assert.Equal((0, first.FileCount), (second.FilesRead, second.FilesReused));
        Assert.Equal(first.FileCount, flushed.Count); // reused files are not flushed either

        // Where the flush cannot be done, a racy file is re-hashed and proves nothing for next time.
        ObjectFixture.Write(obj.ObjectPath, "files/new.bin", ObjectFixture.Bytes("new", 5000));
        ObjectBackupResult noFlush = (await ObjectOperations.BackupAsync(options with { Flush = _ => false }, OperationContext.Default))!;
        Assert.Equal((1, first.FileCount), (noFlush.FilesRead, noFlush.FilesReused));
        ObjectBackupResult after = (await ObjectOperations.BackupAsync(options with { Flush = _ => false }, OperationContext.Default))!;
        Assert.Equal((1, first.FileCount), (after.FilesRead, after.FilesReused));
    }

    [Fact]
    public async Task A_write_through_a_shared_memory_map_after_the_flush_moves_the_stamp_and_is_backed_up()
    {
        if (!Writeback.Available)
        {
            return; // sync_file_range is Linux's; elsewhere racy files are re-hashed (the test above)
        }
        RepositoryTarget repo = await NewRepositoryAsync();
        using var obj = new ObjectFixture();
        string path = Path.Combine(obj.ObjectPath, "data", "mapped.bin");
        byte[] content = ObjectFixture.Bytes("mapped", 64 * 1024);
        File.WriteAllBytes(path, content);
        NewObjectBackupOptions options = obj.BackupOptions() with { Repository = repo, RacyWindow = TimeSpan.FromHours(1), ClockWindow = TimeSpan.Zero };

        using var map = System.IO.MemoryMappedFiles.MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, System.IO.MemoryMappedFiles.MemoryMappedFileAccess.ReadWrite);
        using var view = map.CreateViewAccessor(0, content.Length, System.IO.MemoryMappedFiles.MemoryMappedFileAccess.ReadWrite);
        // A database writing through its map: the page is dirty when the backup starts.
        view.Write(100, (byte)(content[100] ^ 0xff));
        content[100] ^= 0xff;
        // Any later time update must show, whatever the clock's tick: last-write an hour back.
        File.SetLastWriteTimeUtc(path, DateTime.UtcNow.AddHours(-1));
        ObjectBackupResult first = (await ObjectOperations.BackupAsync(options, OperationContext.Default))!;
        Assert.Equal(BackupConsistency.Stable, first.Consistency);

        // The same page written again through the map, nothing else: the flush cleaned and
        // write-protected it, so this write faults and moves the file's times.
        view.Write(200, (byte)(content[200] ^ 0xff));
        content[200] ^= 0xff;
        ObjectBackupResult second = (await ObjectOperations.BackupAsync(options, OperationContext.Default))!;

        Assert.Equal((1, first.FileCount - 1), (second.FilesRead, second.FilesReused));
        SortedDictionary<string, string> restored = await RestoreAsync(repo, second.BackupId!, Dir.Combine("restored"));
        Assert.Equal(ObjectFixture.Sha256(content).ToUpperInvariant(), restored["data/mapped.bin"]);
    }

    [Fact]
    public async Task A_CLI_backup_holds_its_lock_until_killed_then_the_lock_is_stale()
    {
        RepositoryTarget repo = await NewRepositoryAsync();
        using var obj = new ObjectFixture();
        await TwoBackupsAsync(obj, repo);
        string started = Dir.Combine("quiesce-started"), go = Dir.Combine("quiesce-go");
        using var child = Proofs.CliProcess.Start("object", "backup", "--db-root", obj.DbRoot, "--dir", ObjectFixture.Dir, "--object", ObjectFixture.Object, "--repository", repo.Location,
            "--quiesce-command", $"touch '{started}'; while [ ! -f '{go}' ]; do sleep 0.05; done");
        // The quiesce command runs after the repository was opened and locked.
        using (var wait = new CancellationTokenSource(TimeSpan.FromSeconds(120)))
        {
            while (!File.Exists(started))
            {
                Assert.False(child.HasExited, "the CLI backup ended early: " + child.Stderr);
                await Task.Delay(50, wait.Token);
            }
        }
        var before = await KeysAsync(repo);
        ConflictException e = await Assert.ThrowsAsync<ConflictException>(() => RetentionOperations.RemoveExpiredAsync(PruneToOne(repo), OperationContext.Default));
        Assert.Contains($"a shared lock of New-ObjectBackup on host '{Environment.MachineName}' (pid {child.Id}", e.Message, StringComparison.Ordinal);
        var cli = new StringWriter();
        Assert.Equal(PSBackup.Cli.ExitCodes.Conflict, await TestCli.RunAsync(["prune", "--repository", repo.Location, "--keep-last", "1"], new StringWriter(), cli, CancellationToken.None));
        Assert.Contains("is locked by a shared lock of New-ObjectBackup", cli.ToString(), StringComparison.Ordinal);
        Assert.Equal(before, await KeysAsync(repo));

        // Killed mid-backup: the lock stays behind, but its process is gone, so it is stale.
        child.Kill();
        await child.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Single(await LockKeysAsync(repo));
        await PruneRemovesOneAndLeavesNoLockAsync(repo);
    }

    [Fact]
    public async Task Init_creates_a_missing_folder_but_not_under_WhatIf()
    {
        string folder = Dir.Combine("new", "repo");
        var target = new RepositoryTarget { Location = folder };

        Assert.Null(await RepositoryOperations.InitializeAsync(new InitializeRepositoryOptions(target) { Unencrypted = true }, new OperationContext { ShouldProcess = (_, _) => false }));
        Assert.False(Directory.Exists(Dir.Combine("new")));

        RepositoryInfo info = (await RepositoryOperations.InitializeAsync(new InitializeRepositoryOptions(target) { Unencrypted = true }, OperationContext.Default))!;
        Assert.Equal(folder, info.Repository);
        Assert.False(info.Encrypted);
        Assert.True(File.Exists(Path.Combine(folder, "config")));
    }

    [Fact]
    public async Task Init_needs_a_key_or_an_explicit_unencrypted_and_not_both()
    {
        var target = new RepositoryTarget { Location = Dir.Combine("undecided") };
        TreeState before = TreeState.Capture(Dir.Path);

        var none = await Assert.ThrowsAsync<InvalidInputException>(() => RepositoryOperations.InitializeAsync(new InitializeRepositoryOptions(target), OperationContext.Default));
        var both = await Assert.ThrowsAsync<InvalidInputException>(() => RepositoryOperations.InitializeAsync(
            new InitializeRepositoryOptions(target with { Passphrase = "a passphrase" }) { Unencrypted = true }, OperationContext.Default));

        Assert.Equal("EncryptionNotChosen", none.ErrorId);
        Assert.Contains("-Unencrypted", none.Message);
        Assert.Contains("-Passphrase or -KeyFile", none.Message);
        Assert.Equal("ConflictingEncryption", both.ErrorId);
        // The CLI names its own options, each once.
        var stderr = new StringWriter();
        Assert.Equal(2, await TestCli.RunAsync(["repo", "init", "--repository", target.Location], new StringWriter(), stderr));
        Assert.Contains("Give --passphrase or --key-file", stderr.ToString());
        Assert.Contains("or --unencrypted to store", stderr.ToString());
        before.AssertUnchanged(Dir.Path);
    }

    [Fact]
    public async Task Init_refuses_bad_locations_and_s3_options_on_a_folder_and_creates_nothing()
    {
        string file = Dir.Combine("a-file");
        File.WriteAllText(file, "x");
        var cases = new RepositoryTarget[]
        {
            new() { Location = Dir.Combine("r1"), Endpoint = "http://127.0.0.1:9" },
            new() { Location = Dir.Combine("r2"), AccessKey = "AKIA" },
            new() { Location = file },
            new() { Location = "s3://" },
            new() { Location = "s3://Bad_Bucket!/x" },
            new() { Location = "ftp://host/x" },
            new() { Location = "" },
        };
        TreeState before = TreeState.Capture(Dir.Path);
        foreach (RepositoryTarget t in cases)
        {
            var e = await Assert.ThrowsAsync<InvalidInputException>(() => RepositoryOperations.InitializeAsync(new InitializeRepositoryOptions(t) { Unencrypted = true }, OperationContext.Default));
            Assert.False(string.IsNullOrEmpty(e.Message));
        }
        before.AssertUnchanged(Dir.Path);
    }

    [Fact]
    public async Task Object_backup_with_s3_options_on_a_folder_repository_is_refused()
    {
        RepositoryTarget repo = await NewRepositoryAsync();
        using var obj = new ObjectFixture();
        var before = await KeysAsync(repo);

        var e = await Assert.ThrowsAsync<InvalidInputException>(() => ObjectOperations.BackupAsync(obj.BackupOptions() with { Repository = repo with { Endpoint = "http://127.0.0.1:9" } }, OperationContext.Default));

        Assert.Equal("InvalidRepository", e.ErrorId);
        Assert.Equal(before, await KeysAsync(repo));
    }
}

[Collection(S3ServerCollection.Name)]
public sealed class S3RepositoryWriteTests(S3ServerFixture s3) : RepositoryWriteTests
{
    protected override async Task<RepositoryTarget> NewLocationAsync()
    {
        string bucket = await s3.CreateBucketAsync("repoops");
        return new RepositoryTarget
        {
            Location = $"s3://{bucket}/backups/prod",
            Endpoint = s3.Endpoint,
            AccessKey = S3ServerFixture.AccessKey,
            SecretKey = S3ServerFixture.SecretKey,
        };
    }
}

/// <summary>The same repository operations against Azure Blob Storage (Azurite), authenticated
/// with the account name and key given as one credential.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class AzureRepositoryWriteTests(AzuriteFixture azurite) : RepositoryWriteTests
{
    protected override async Task<RepositoryTarget> NewLocationAsync()
    {
        string container = await azurite.CreateContainerAsync("repoops");
        return new RepositoryTarget
        {
            Location = azurite.LocationOf(container, "backups/prod"),
            StorageCredential = new StorageCredential(AzuriteFixture.Account, AzuriteFixture.AccountKey),
        };
    }
}
