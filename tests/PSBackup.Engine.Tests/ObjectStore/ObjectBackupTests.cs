using PSBackup.Engine.ObjectStore;
using PSBackup.Engine.Tests.Support;

namespace PSBackup.Engine.Tests.ObjectStore;

public sealed class ObjectBackupTests
{
    private static readonly DateTimeOffset T1 = new(2026, 4, 18, 14, 30, 5, TimeSpan.Zero);

    private static OperationContext Context(TimeProvider? clock = null, Func<string, string, bool>? shouldProcess = null,
        IProgress<OperationProgress>? progress = null, CancellationToken ct = default) =>
        new()
        {
            Clock = clock ?? new FixedClock(T1),
            ShouldProcess = shouldProcess ?? ((_, _) => true),
            Progress = progress,
            CancellationToken = ct,
        };

    [Fact]
    public async Task Quiet_object_is_copied_whole_as_a_stable_drop_in_replacement_with_a_manifest()
    {
        using var fx = new ObjectFixture();
        var before = ObjectFixture.Snapshot(fx.ObjectPath);

        ObjectBackupResult? result = await ObjectOperations.BackupAsync(fx.BackupOptions(), Context());

        Assert.NotNull(result);
        Assert.Equal("users.backup-20260418T143005", result.BackupName);
        Assert.Equal(Path.Combine(fx.DirPath, "users.backup-20260418T143005"), result.BackupPath!);
        Assert.Equal(Path.Combine(fx.DirPath, "users.backup-20260418T143005.manifest.json"), result.ManifestPath!);
        Assert.Equal(BackupConsistency.Stable, result.Consistency);
        Assert.Empty(result.ChangedFiles);
        Assert.False(result.Fenced);
        Assert.Equal(T1, result.StartedAt);
        Assert.Equal(before, ObjectFixture.Snapshot(result.BackupPath!)); // empty folders too
        Assert.Contains("indexes/unused", before.Keys);

        BackupManifest manifest = ManifestIO.Read(result.ManifestPath!);
        Assert.Equal("object", manifest.Kind);
        Assert.Equal("Stable", manifest.Consistency);
        Assert.Equal(before.Where(kv => kv.Value != "<dir>").Select(kv => kv.Key), manifest.Files.Select(f => f.Path));
        foreach (ManifestFile f in manifest.Files)
        {
            byte[] live = File.ReadAllBytes(Path.Combine(fx.ObjectPath, f.Path));
            Assert.Equal(ObjectFixture.Sha256(live), f.Sha256);
            Assert.Equal(live.Length, f.Size);
        }
        Assert.Equal(manifest.Files.Count, result.FileCount);
        Assert.Equal(manifest.Files.Sum(f => f.Size), result.Bytes);
        await ManifestIO.VerifyAsync(result.BackupPath!, manifest, Context(), "verify");
        Assert.Equal(before, ObjectFixture.Snapshot(fx.ObjectPath)); // source untouched
        Assert.DoesNotContain(Directory.EnumerateFileSystemEntries(fx.DirPath), p => p.EndsWith(".tmp", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Transient_artifacts_are_not_copied_or_entered_but_look_alikes_are()
    {
        using var fx = new ObjectFixture();
        ObjectFixture.Write(fx.ObjectPath, "data/003.bin.new", [1, 2, 3]);
        ObjectFixture.Write(fx.ObjectPath, "data/000.bin.old", [4]);
        ObjectFixture.Write(fx.ObjectPath, "indexes/email.tmp/000.idx", [5]);
        using var outside = new TestDirectory();
        File.WriteAllText(outside.Combine("elsewhere"), "x");
        Directory.CreateSymbolicLink(Path.Combine(fx.ObjectPath, "files", "stale.tmp"), outside.Path); // an artifact: never followed
        ObjectFixture.Write(fx.ObjectPath, "files/x.newer", [6]);
        ObjectFixture.Write(fx.ObjectPath, "files/file.tmpl", [7]);
        ObjectFixture.Write(fx.ObjectPath, "metadata/old", [8]);

        ObjectBackupResult? result = await ObjectOperations.BackupAsync(fx.BackupOptions(), Context());

        Assert.NotNull(result);
        var copied = ObjectFixture.Snapshot(result.BackupPath!, skipArtifacts: false);
        Assert.DoesNotContain(copied.Keys, k => k.Split('/').Any(ObjectLayout.IsTransientArtifact));
        Assert.Contains("files/x.newer", copied.Keys);
        Assert.Contains("files/file.tmpl", copied.Keys);
        Assert.Contains("metadata/old", copied.Keys);
        Assert.Equal(ObjectFixture.Snapshot(fx.ObjectPath), copied);
        Assert.Equal(BackupConsistency.Stable, result.Consistency);
    }

    [Fact]
    public async Task A_settled_file_written_during_its_copy_is_recent_without_a_re_read_proving_it()
    {
        using var fx = new ObjectFixture();
        NewObjectBackupOptions options = fx.SettledBackupOptions();
        string target = Path.Combine(fx.ObjectPath, "data", "001.bin");
        int writes = 0;
        // Reported after the file's stamp is taken and before its bytes are read: a write lands mid-copy.
        var progress = new SyncProgress(p =>
        {
            if (p.Status == "Copying data/001.bin")
            {
                using var f = new FileStream(target, FileMode.Open, FileAccess.Write);
                f.Position = 100;
                f.Write(ObjectFixture.Bytes($"write{++writes}", 50));
            }
        });

        ObjectBackupResult? result = await ObjectOperations.BackupAsync(options, Context(progress: progress));

        Assert.NotNull(result);
        Assert.Equal(BackupConsistency.Recent, result.Consistency);
        Assert.Equal(["data/001.bin"], result.ChangedFiles);
        Assert.Equal(ObjectBackup.MaxAttempts, writes);
        await ManifestIO.VerifyAsync(result.BackupPath!, ManifestIO.Read(result.ManifestPath!), Context(), "verify");
    }

    [Fact]
    public async Task A_settled_file_replaced_during_its_copy_by_one_of_the_same_size_and_time_is_recent()
    {
        using var fx = new ObjectFixture();
        NewObjectBackupOptions options = fx.SettledBackupOptions();
        string target = Path.Combine(fx.ObjectPath, "data", "001.bin");
        DateTime written = File.GetLastWriteTimeUtc(target);
        int length = (int)new FileInfo(target).Length, replaced = 0;
        var progress = new SyncProgress(p =>
        {
            if (p.Status == "Copying data/001.bin")
            {
                // The atomic-replace writer: same size and last-write time, another inode.
                string temp = Path.Combine(fx.DirPath, "replacement");
                File.WriteAllBytes(temp, ObjectFixture.Bytes($"replacement{++replaced}", length));
                File.SetLastWriteTimeUtc(temp, written);
                File.Move(temp, target, overwrite: true);
            }
        });

        ObjectBackupResult? result = await ObjectOperations.BackupAsync(options, Context(progress: progress));

        Assert.NotNull(result);
        Assert.Equal(BackupConsistency.Recent, result.Consistency);
        Assert.Equal(["data/001.bin"], result.ChangedFiles);
    }

    [Fact]
    public async Task Settled_files_of_a_quiet_object_are_proven_by_their_stamps_and_copied_exactly()
    {
        using var fx = new ObjectFixture();
        NewObjectBackupOptions options = fx.SettledBackupOptions();
        var before = ObjectFixture.Snapshot(fx.ObjectPath);

        ObjectBackupResult? result = await ObjectOperations.BackupAsync(options, Context());

        Assert.NotNull(result);
        Assert.Equal(BackupConsistency.Stable, result.Consistency);
        Assert.Equal(before, ObjectFixture.Snapshot(result.BackupPath!));
    }

    [Fact]
    public async Task Files_added_or_removed_during_the_copy_make_it_recent_and_are_listed()
    {
        using var fx = new ObjectFixture();
        string removed = Path.Combine(fx.ObjectPath, "metadata", "counts"); // copied after data/ and files/
        byte[] added = ObjectFixture.Bytes("new shard", 5000);
        var progress = new SyncProgress(p =>
        {
            if (p.Status == "Copied data/000.bin")
            {
                File.Delete(removed);
                ObjectFixture.Write(fx.ObjectPath, "data/003.bin", added);
            }
        });

        ObjectBackupResult? result = await ObjectOperations.BackupAsync(fx.BackupOptions(), Context(progress: progress));

        Assert.NotNull(result);
        Assert.Equal(BackupConsistency.Recent, result.Consistency);
        Assert.Equal(["data/003.bin", "metadata/counts"], result.ChangedFiles);
        Assert.Equal(added, File.ReadAllBytes(Path.Combine(result.BackupPath!, "data", "003.bin")));
        Assert.False(File.Exists(Path.Combine(result.BackupPath!, "metadata", "counts")));
        BackupManifest manifest = ManifestIO.Read(result.ManifestPath!);
        Assert.Equal("Recent", manifest.Consistency);
        Assert.Equal(result.ChangedFiles, manifest.ChangedFiles);
        await ManifestIO.VerifyAsync(result.BackupPath!, manifest, Context(), "verify");
    }

    public static TheoryData<string> BadNames() => new() { "..", ".", "a/b", "/abs", "C:\\x", "a\\b", "", ".hidden", "a\0b", "users.tmp" };

    [Theory]
    [MemberData(nameof(BadNames))]
    public async Task Bad_dir_name_is_refused_before_anything_is_written(string name)
    {
        using var fx = new ObjectFixture();
        var state = TreeState.Capture(fx.DbRoot);
        var e = await Assert.ThrowsAsync<InvalidInputException>(() => ObjectOperations.BackupAsync(fx.BackupOptions() with { Dir = name }, Context()));
        Assert.Contains("dir name", e.Message);
        state.AssertUnchanged(fx.DbRoot);
    }

    [Theory]
    [MemberData(nameof(BadNames))]
    public async Task Bad_object_name_is_refused_before_anything_is_written(string name)
    {
        using var fx = new ObjectFixture();
        var state = TreeState.Capture(fx.DbRoot);
        var e = await Assert.ThrowsAsync<InvalidInputException>(() => ObjectOperations.BackupAsync(fx.BackupOptions() with { Object = name }, Context()));
        Assert.Contains("object name", e.Message);
        state.AssertUnchanged(fx.DbRoot);
    }

    [Fact]
    public async Task Missing_object_dir_or_root_is_not_found()
    {
        using var fx = new ObjectFixture();
        var state = TreeState.Capture(fx.DbRoot);
        await Assert.ThrowsAsync<NotFoundException>(() => ObjectOperations.BackupAsync(fx.BackupOptions() with { Object = "nosuch" }, Context()));
        await Assert.ThrowsAsync<NotFoundException>(() => ObjectOperations.BackupAsync(fx.BackupOptions() with { Dir = "nosuch" }, Context()));
        await Assert.ThrowsAsync<NotFoundException>(() => ObjectOperations.BackupAsync(fx.BackupOptions() with { DbRoot = Path.Combine(fx.DbRoot, "missing") }, Context()));
        state.AssertUnchanged(fx.DbRoot);
    }

    [Fact]
    public async Task Symbolic_link_inside_the_object_is_refused_naming_it_and_nothing_is_written()
    {
        using var fx = new ObjectFixture();
        using var outside = new TestDirectory();
        File.WriteAllText(outside.Combine("secret"), "not part of the object");
        string link = Path.Combine(fx.ObjectPath, "indexes", "email", "002.idx");
        File.CreateSymbolicLink(link, outside.Combine("secret"));
        var state = TreeState.Capture(fx.DbRoot);

        var e = await Assert.ThrowsAsync<InvalidInputException>(() => ObjectOperations.BackupAsync(fx.BackupOptions(), Context()));

        Assert.Contains(link, e.Message);
        Assert.Equal(link, e.Target);
        state.AssertUnchanged(fx.DbRoot);
    }

    [Fact]
    public async Task Object_that_is_a_symbolic_link_is_refused()
    {
        using var fx = new ObjectFixture();
        Directory.CreateSymbolicLink(Path.Combine(fx.DirPath, "alias"), fx.ObjectPath);
        var state = TreeState.Capture(fx.DbRoot);
        await Assert.ThrowsAsync<InvalidInputException>(() => ObjectOperations.BackupAsync(fx.BackupOptions() with { Object = "alias" }, Context()));
        state.AssertUnchanged(fx.DbRoot);
    }

    [Fact]
    public async Task WhatIf_returns_null_after_asking_about_the_backup_path_and_writes_nothing()
    {
        using var fx = new ObjectFixture();
        var state = TreeState.Capture(fx.DbRoot);
        var asked = new List<(string, string)>();

        ObjectBackupResult? result = await ObjectOperations.BackupAsync(fx.BackupOptions(),
            Context(shouldProcess: (t, a) => { asked.Add((t, a)); return false; }));

        Assert.Null(result);
        Assert.Equal([(Path.Combine(fx.DirPath, "users.backup-20260418T143005"), "Create object backup")], asked);
        state.AssertUnchanged(fx.DbRoot);
    }

    [Fact]
    public async Task Second_backup_in_the_same_second_is_a_conflict_and_changes_nothing()
    {
        using var fx = new ObjectFixture();
        var clock = new FixedClock(T1);
        Assert.NotNull(await ObjectOperations.BackupAsync(fx.BackupOptions(), Context(clock)));
        var state = TreeState.Capture(fx.DbRoot);

        var e = await Assert.ThrowsAsync<ConflictException>(() => ObjectOperations.BackupAsync(fx.BackupOptions(), Context(clock)));

        Assert.Contains("users.backup-20260418T143005", e.Message);
        state.AssertUnchanged(fx.DbRoot);
        clock.Now = T1.AddSeconds(1);
        Assert.Equal("users.backup-20260418T143006", (await ObjectOperations.BackupAsync(fx.BackupOptions(), Context(clock)))!.BackupName);
    }

    /// <summary>Two runs racing in the same second must not copy into one temp folder: exactly
    /// one commits, the other fails on the taken name, and the committed backup verifies.</summary>
    [Fact]
    public async Task Two_concurrent_backups_in_the_same_second_never_share_a_temp_folder()
    {
        using var fx = new ObjectFixture();
        var clock = new FixedClock(T1);
        using var bothStarted = new Barrier(2);
        IProgress<OperationProgress> MeetOnce()
        {
            bool met = false;
            return new SyncProgress(_ =>
            {
                if (!met)
                {
                    met = true;
                    bothStarted.SignalAndWait(TimeSpan.FromSeconds(10)); // both copies under way at once
                }
            });
        }
        Task<ObjectBackupResult?> Run() => Task.Run(() => ObjectOperations.BackupAsync(fx.BackupOptions(), Context(clock, progress: MeetOnce())));

        Task<ObjectBackupResult?>[] runs = [Run(), Run()];
        var outcomes = new List<(ObjectBackupResult? Result, Exception? Error)>();
        foreach (Task<ObjectBackupResult?> run in runs)
        {
            try
            {
                outcomes.Add((await run, null));
            }
            catch (Exception e)
            {
                outcomes.Add((null, e));
            }
        }

        ObjectBackupResult won = Assert.Single(outcomes, o => o.Error is null).Result!;
        Assert.IsType<ConflictException>(Assert.Single(outcomes, o => o.Error is not null).Error);
        await ManifestIO.VerifyAsync(won.BackupPath!, ManifestIO.Read(won.ManifestPath!), OperationContext.Default, "verify");
        Assert.DoesNotContain(Directory.EnumerateFileSystemEntries(fx.DirPath), p => p.EndsWith(".tmp", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Cancelled_after_the_first_file_leaves_no_backup_no_manifest_and_no_temp()
    {
        using var fx = new ObjectFixture();
        var state = TreeState.Capture(fx.DbRoot);
        using var cts = new CancellationTokenSource();
        int copied = 0;
        var progress = new SyncProgress(p =>
        {
            if (p.Status.StartsWith("Copied ", StringComparison.Ordinal) && ++copied == 1)
            {
                cts.Cancel();
            }
        });
        int resumed = 0;
        var options = fx.BackupOptions() with
        {
            Quiesce = _ => Task.CompletedTask,
            Resume = ct => { Assert.False(ct.IsCancellationRequested); resumed++; return Task.CompletedTask; },
        };

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => ObjectOperations.BackupAsync(options, Context(progress: progress, ct: cts.Token)));

        Assert.Equal(1, copied);
        Assert.Equal(1, resumed);
        state.AssertUnchanged(fx.DbRoot); // no users.backup-*, no manifest, no .tmp
    }

    [Fact]
    public async Task Failure_after_the_folder_is_committed_removes_it_so_no_backup_lacks_its_manifest()
    {
        using var fx = new ObjectFixture();
        string manifestPath = Path.Combine(fx.DirPath, "users.backup-20260418T143005.manifest.json");
        var state = TreeState.Capture(fx.DbRoot);
        // Another party takes the manifest's name just before the commit: writing the manifest
        // fails after the folder was renamed into place.
        var progress = new SyncProgress(p =>
        {
            if (p.Status.StartsWith("Committing", StringComparison.Ordinal))
            {
                File.WriteAllText(manifestPath, "someone else's");
            }
        });

        await Assert.ThrowsAsync<ConflictException>(() => ObjectOperations.BackupAsync(fx.BackupOptions(), Context(progress: progress)));

        Assert.Equal("someone else's", File.ReadAllText(manifestPath));
        File.Delete(manifestPath);
        state.AssertUnchanged(fx.DbRoot); // the committed folder and every temp are gone
    }

    [Fact]
    public async Task Quiesce_failure_still_resumes_and_leaves_nothing()
    {
        using var fx = new ObjectFixture();
        var state = TreeState.Capture(fx.DbRoot);
        int resumed = 0;
        var options = fx.BackupOptions() with
        {
            Quiesce = _ => throw new InvalidOperationException("writer did not stop"),
            Resume = _ => { resumed++; return Task.CompletedTask; },
        };

        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => ObjectOperations.BackupAsync(options, Context()));

        Assert.Equal("writer did not stop", e.Message);
        Assert.Equal(1, resumed);
        state.AssertUnchanged(fx.DbRoot);
    }

    [Fact]
    public async Task Resume_failure_fails_the_backup_saying_writers_may_be_paused()
    {
        using var fx = new ObjectFixture();
        var state = TreeState.Capture(fx.DbRoot);
        var options = fx.BackupOptions() with
        {
            Quiesce = _ => Task.CompletedTask,
            Resume = _ => throw new InvalidOperationException("server unreachable"),
        };

        var e = await Assert.ThrowsAsync<OperationFailedException>(() => ObjectOperations.BackupAsync(options, Context()));

        Assert.Equal("ResumeFailed", e.ErrorId);
        Assert.Contains("paused", e.Message);
        state.AssertUnchanged(fx.DbRoot);
    }
}
