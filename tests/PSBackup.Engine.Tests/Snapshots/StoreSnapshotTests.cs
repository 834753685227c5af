using Microsoft.Data.Sqlite;
using PSBackup.Engine.Snapshots;
using PSBackup.Engine.Tests.Support;
using PSBackup.Engine.Wal;
using PSBackup.Example;
using static PSBackup.Engine.Tests.Snapshots.SnapshotTestSupport;

namespace PSBackup.Engine.Tests.Snapshots;

public sealed class StoreSnapshotTests
{
    [Fact]
    public async Task SqliteSnapshotsTakenDuringContinuousWritesAreConsistentAndMonotonic()
    {
        using var dir = new TestDirectory();
        string nsDir = CreateSqliteNamespace(dir.Path, "app", 0);
        string dbPath = ExampleStore.DbPath(nsDir);
        long committed = 0;
        Exception? writerError = null;
        using var stop = new CancellationTokenSource();
        var writer = new Thread(() =>
        {
            try
            {
                using SqliteConnection connection = ExampleStore.Open(dbPath);
                long next = 1;
                while (!stop.IsCancellationRequested)
                {
                    var batch = Enumerable.Range(0, 3)
                        .Select(i => (next + i, ExampleRecord.Put($"key-{next + i:0000000}", new byte[200], 5_000 + next + i)))
                        .ToList();
                    ExampleStore.ApplyBatch(connection, batch);
                    next += batch.Count;
                    Volatile.Write(ref committed, next - 1);
                }
            }
            catch (Exception e)
            {
                writerError = e;
            }
        }) { IsBackground = true, Name = "sqlite-writer" };
        writer.Start();

        try
        {
            long previousRows = -1;
            long previousCommitted = 0;
            for (int i = 0; i < 12; i++)
            {
                // Let the writer commit more before each snapshot, so consecutive ones differ.
                long floor = previousCommitted + 9;
                Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref committed) >= floor || writerError is not null, TimeSpan.FromSeconds(30)), "writer made no progress");
                Assert.Null(writerError);
                previousCommitted = Volatile.Read(ref committed);

                StoreSnapshotResult? result = await SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(dir.Path, "app", $"snapshots/s{i:00}.sqlite"), OperationContext.Default);
                Assert.NotNull(result);
                Assert.Equal(1, result.FileCount); // -wal and -shm are inside the online-backup copy
                Assert.True(File.Exists(result.Path));
                BackupManifest manifest = await VerifyAsync(result);
                Assert.Equal("snapshot", manifest.Kind);
                Assert.Equal("store.sqlite", Assert.Single(manifest.Files).Path);
                Assert.Equal(new FileInfo(result.Path).Length, result.Bytes);

                Assert.Equal("ok", IntegrityCheck(result.Path));
                ExampleState state = ExampleStore.ReadState(result.Path);
                Assert.Equal(state.AppliedLogIndex, result.WalPosition.AppliedLogIndex);
                Assert.Equal(state.AppliedLogIndex, manifest.Wal!.AppliedLogIndex);
                // Each record is a new key: a torn copy would break rows == applied index.
                Assert.Equal(state.AppliedLogIndex, state.Rows.Count);
                Assert.True(state.Rows.Count >= previousRows, $"snapshot {i} has {state.Rows.Count} rows, fewer than the previous {previousRows}");
                Assert.True(state.Rows.Count >= previousCommitted, "snapshot misses commits made before it started");
                previousRows = state.Rows.Count;
            }
            long last = Volatile.Read(ref committed);
            Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref committed) > last || writerError is not null, TimeSpan.FromSeconds(30)), "writer stopped during the snapshots");
        }
        finally
        {
            stop.Cancel();
            writer.Join();
        }
        Assert.Null(writerError);
    }

    [Fact]
    public async Task SingleFileSnapshotRestoresWithCopyAndRecordsNoWalWithoutWalFolder()
    {
        using var dir = new TestDirectory();
        string nsDir = CreateSqliteNamespace(dir.Path, "users", 25);
        ExampleState live = ExampleStore.ReadState(ExampleStore.DbPath(nsDir));

        StoreSnapshotResult result = (await SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(dir.Path, "users", "snapshots/users-20260101.snapshot"), OperationContext.Default))!;

        Assert.Equal(Path.Combine(dir.Path, "backups", "users", "snapshots", "users-20260101.snapshot"), result.Path);
        Assert.Equal(result.Path + ".manifest.json", result.ManifestPath);
        Assert.Equal("users", result.Namespace);
        Assert.Empty(result.WalPosition.SegmentIds);
        Assert.Null(result.WalPosition.HighestLogIndex);
        Assert.Equal(25, result.WalPosition.AppliedLogIndex);
        await VerifyAsync(result);
        Assert.False(File.Exists(result.Path + ".tmp"));

        // The seed's restore: cp the snapshot over db/<file>.
        string restored = dir.Combine("restore", "users", "db", "store.sqlite");
        Directory.CreateDirectory(Path.GetDirectoryName(restored)!);
        File.Copy(result.Path, restored);
        ExampleState back = ExampleStore.ReadState(restored);
        Assert.Equal(live.AppliedLogIndex, back.AppliedLogIndex);
        Assert.Equal(live.Rows, back.Rows);
    }

    [Fact]
    public async Task WalPositionIsTheWalDirectoryStateWhenTheSnapshotStarts()
    {
        using var dir = new TestDirectory();
        string nsDir = Path.Combine(dir.Path, "users");
        long time = ExampleGenerator.BaseTime.ToUnixTimeMilliseconds();
        var writer = ExampleWriter.Create(nsDir, ExampleGenerator.BaseTime, 64 * 1024);
        try
        {
            for (int i = 0; i < 1500; i++)
            {
                writer.Append(ExampleRecord.Put($"k{i % 300}", new byte[40], time += 10));
            }
            writer.ApplyUpTo(writer.LastLogIndex - 100);
            writer.Sync();
            WalDirectoryReport before = WalDirectory.Scan(Path.Combine(nsDir, "wal"), "users");
            Assert.True(before.Segments.Count >= 2, "the test needs a sealed and an active segment");
            long beforeHighest = writer.LastLogIndex;

            // The WAL keeps growing (into a new segment) while the snapshot copies the store.
            bool grew = false;
            var context = new OperationContext
            {
                Progress = new CallbackProgress(p =>
                {
                    if (p.CurrentItem is not null && !grew)
                    {
                        grew = true;
                        long target = writer.ActiveSegmentId + 1;
                        while (writer.ActiveSegmentId < target)
                        {
                            writer.Append(ExampleRecord.Put("late", new byte[40], time += 10));
                        }
                        writer.ApplyUpTo(writer.LastLogIndex);
                    }
                }),
            };
            StoreSnapshotResult result = (await SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(dir.Path, "users", "snap/s1.db"), context))!;

            Assert.True(grew);
            WalDirectoryReport after = WalDirectory.Scan(Path.Combine(nsDir, "wal"), "users");
            Assert.True(after.Segments.Count > before.Segments.Count);
            Assert.Equal(before.Segments.Select(s => s.SegmentId), result.WalPosition.SegmentIds);
            Assert.Equal(beforeHighest, result.WalPosition.HighestLogIndex);
            Assert.Equal(before.Segments.Max(s => s.LastLogIndex), result.WalPosition.HighestLogIndex);
            BackupManifest manifest = await VerifyAsync(result);
            Assert.Equal(result.WalPosition.SegmentIds, manifest.Wal!.SegmentIds);
            Assert.Equal(result.WalPosition.HighestLogIndex, manifest.Wal.HighestLogIndex);
            Assert.Equal(ExampleStore.ReadState(result.Path).AppliedLogIndex, manifest.Wal.AppliedLogIndex);
        }
        finally
        {
            writer.Dispose();
        }
    }

    [Fact]
    public async Task ExampleNamespaceSnapshotPlusWalReplaysToTheLiveState()
    {
        using var dir = new TestDirectory();
        string nsDir = Path.Combine(dir.Path, "users");
        ExampleNamespaceSummary generated = ExampleGenerator.GenerateNamespace(nsDir, "users", 3000, 17, new Random(3), ExampleStoreKind.Sqlite);
        Assert.True(generated.SealedSegments >= 1);

        StoreSnapshotResult result = (await SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(dir.Path, "users", "snapshots/users.snapshot"), OperationContext.Default))!;

        Assert.Equal(generated.AppliedLogIndex, result.WalPosition.AppliedLogIndex);
        Assert.Equal(generated.LastLogIndex, result.WalPosition.HighestLogIndex);
        Assert.Equal(Enumerable.Range(1, (int)generated.ActiveSegmentId).Select(i => (long)i), result.WalPosition.SegmentIds);

        // Restore: the snapshot as db/store.sqlite, the WAL beside it, then the database's replay.
        string restored = dir.Combine("restore", "users");
        Directory.CreateDirectory(Path.Combine(restored, "db"));
        File.Copy(result.Path, ExampleStore.DbPath(restored));
        Directory.CreateDirectory(Path.Combine(restored, "wal"));
        foreach (string segment in Directory.GetFiles(Path.Combine(nsDir, "wal")))
        {
            File.Copy(segment, Path.Combine(restored, "wal", Path.GetFileName(segment)));
        }
        ReplayResult replay = ExampleStore.Replay(restored);
        Assert.Equal(generated.LastLogIndex - generated.AppliedLogIndex, replay.RecordsApplied);
        ExampleStore.Replay(nsDir);
        ExampleState live = ExampleStore.ReadState(ExampleStore.DbPath(nsDir));
        ExampleState back = ExampleStore.ReadState(ExampleStore.DbPath(restored));
        Assert.Equal(generated.LastLogIndex, back.AppliedLogIndex);
        Assert.Equal(live.AppliedLogIndex, back.AppliedLogIndex);
        Assert.Equal(live.Rows, back.Rows);
    }

    [Theory]
    [InlineData("..")]
    [InlineData("a/../b")]
    [InlineData("/abs")]
    [InlineData("C:\\x")]
    [InlineData("\\\\srv\\share")]
    [InlineData("")]
    [InlineData("snap/./x")]
    [InlineData("nul")]
    [InlineData("a/con.txt")]
    [InlineData("a:stream")]
    [InlineData("a/b.")]
    [InlineData("a/b ")]
    [InlineData("a|b")]
    [InlineData("a?")]
    [InlineData(@"\\?\C:\x")]
    public async Task BadSnapshotPathIsRejectedBeforeAnythingIsWritten(string path)
    {
        using var dir = new TestDirectory();
        CreateSqliteNamespace(dir.Path, "users", 3);
        var before = TreeState.Capture(dir.Path);

        var e = await Assert.ThrowsAsync<InvalidInputException>(() => SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(dir.Path, "users", path), OperationContext.Default));

        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("snapshot path", e.Message);
        before.AssertUnchanged(dir.Path);
    }

    [Theory]
    [InlineData("..")]
    [InlineData("a/b")]
    [InlineData("")]
    [InlineData("../users")]
    public async Task BadNamespaceIsRejectedBeforeAnythingIsWritten(string ns)
    {
        using var dir = new TestDirectory();
        CreateSqliteNamespace(dir.Path, "users", 3);
        var before = TreeState.Capture(dir.Path);

        var e = await Assert.ThrowsAsync<InvalidInputException>(() => SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(dir.Path, ns, "s.db"), OperationContext.Default));

        Assert.Equal("InvalidName", e.ErrorId);
        before.AssertUnchanged(dir.Path);
    }

    [Fact]
    public async Task MissingDataDirNamespaceOrStoreIsNotFoundAndWritesNothing()
    {
        using var dir = new TestDirectory();
        CreateSqliteNamespace(dir.Path, "users", 3);
        Directory.CreateDirectory(dir.Combine("events", "wal"));
        var before = TreeState.Capture(dir.Path);

        var noDataDir = await Assert.ThrowsAsync<NotFoundException>(() => SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(dir.Combine("nope"), "users", "s.db"), OperationContext.Default));
        Assert.Contains("data directory", noDataDir.Message);
        var noNamespace = await Assert.ThrowsAsync<NotFoundException>(() => SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(dir.Path, "orders", "s.db"), OperationContext.Default));
        Assert.Equal("NamespaceNotFound", noNamespace.ErrorId);
        Assert.Contains("users", noNamespace.Message); // names what does exist
        var noStore = await Assert.ThrowsAsync<NotFoundException>(() => SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(dir.Path, "events", "s.db"), OperationContext.Default));
        Assert.Equal("StoreNotFound", noStore.ErrorId);
        Directory.CreateDirectory(dir.Combine("events", "db"));
        before = TreeState.Capture(dir.Path);
        var empty = await Assert.ThrowsAsync<NotFoundException>(() => SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(dir.Path, "events", "s.db"), OperationContext.Default));
        Assert.Equal("StoreEmpty", empty.ErrorId);

        before.AssertUnchanged(dir.Path);
    }

    [Fact]
    public async Task ExistingSnapshotIsAConflictAndStaysUntouched()
    {
        using var dir = new TestDirectory();
        CreateSqliteNamespace(dir.Path, "users", 3);
        await SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(dir.Path, "users", "snaps/a.db"), OperationContext.Default);
        string folder = dir.Combine("backups", "users", "other");
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "keep.txt"), "mine");
        var before = TreeState.Capture(dir.Path);

        var file = await Assert.ThrowsAsync<ConflictException>(() => SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(dir.Path, "users", "snaps/a.db"), OperationContext.Default));
        Assert.Equal("SnapshotExists", file.ErrorId);
        var dirConflict = await Assert.ThrowsAsync<ConflictException>(() => SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(dir.Path, "users", "other"), OperationContext.Default));
        Assert.Equal("SnapshotExists", dirConflict.ErrorId);
        var blocked = await Assert.ThrowsAsync<ConflictException>(() => SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(dir.Path, "users", "other/keep.txt/x.db"), OperationContext.Default));
        Assert.Equal("PathBlocked", blocked.ErrorId);

        before.AssertUnchanged(dir.Path);
    }

    [Fact]
    public async Task StaleTempIsAConflictPointingAtTheSweep()
    {
        using var dir = new TestDirectory();
        CreateSqliteNamespace(dir.Path, "users", 3);
        string stale = dir.Combine("backups", "users", "snaps", "b.db.tmp");
        Directory.CreateDirectory(Path.GetDirectoryName(stale)!);
        File.WriteAllText(stale, "half a snapshot");
        var before = TreeState.Capture(dir.Path);

        var e = await Assert.ThrowsAsync<ConflictException>(() => SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(dir.Path, "users", "snaps/b.db"), OperationContext.Default));

        Assert.Equal("SnapshotInProgress", e.ErrorId);
        Assert.Contains("interrupted", e.Message);
        Assert.Contains("Clear-StaleArtifact", e.Message);
        Assert.Contains("psbackup sweep", e.Message);
        before.AssertUnchanged(dir.Path);
    }

    [Fact]
    public async Task WhatIfReturnsNullAndWritesNothing()
    {
        using var dir = new TestDirectory();
        CreateSqliteNamespace(dir.Path, "users", 3);
        var before = TreeState.Capture(dir.Path);
        var asked = new List<(string Target, string Action)>();
        var context = new OperationContext { ShouldProcess = (t, a) => { asked.Add((t, a)); return false; } };

        StoreSnapshotResult? result = await SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(dir.Path, "users", "snaps/c.db"), context);

        Assert.Null(result);
        var (target, action) = Assert.Single(asked);
        Assert.Equal(Path.Combine(dir.Path, "backups", "users", "snaps", "c.db"), target);
        Assert.Equal("Create store snapshot", action);
        before.AssertUnchanged(dir.Path);
    }

    [Fact]
    public async Task MultiFileStoreBecomesAFolderMirroringDbWithAVerifiedManifest()
    {
        using var dir = new TestDirectory();
        string nsDir = CreateFileNamespace(dir.Path, "lmdb");
        // A SQLite database with a live connection beside the plain files: its -wal/-shm are
        // skipped, everything else is mirrored.
        string sqlite = Path.Combine(nsDir, "db", "sub", "index.sqlite");
        using SqliteConnection live = ExampleStore.Open(sqlite);
        ExampleStore.ApplyBatch(live, [(1, ExampleRecord.Put("a", [1], 1)), (2, ExampleRecord.Put("b", [2], 2))]);
        Assert.True(File.Exists(sqlite + "-wal"));
        File.WriteAllText(Path.Combine(nsDir, "db", "notes-wal"), "not a sidecar of a database");

        var reports = new List<OperationProgress>();
        StoreSnapshotResult result = (await SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(dir.Path, "lmdb", "snaps/full"), new OperationContext { Progress = new CallbackProgress(reports.Add) }))!;

        Assert.True(Directory.Exists(result.Path));
        BackupManifest manifest = await VerifyAsync(result);
        string[] expected = ["data.mdb", "lock.mdb", "notes-wal", "sub/deeper/part-2.bin", "sub/index.sqlite", "sub/part-1.bin"];
        Assert.Equal(expected, manifest.Files.Select(f => f.Path).Order(StringComparer.Ordinal));
        Assert.Equal(6, result.FileCount);
        Assert.Equal(manifest.Files.Sum(f => f.Size), result.Bytes);
        foreach (string rel in expected.Where(r => !r.EndsWith(".sqlite", StringComparison.Ordinal)))
        {
            Assert.Equal(File.ReadAllBytes(Path.Combine(nsDir, "db", rel)), File.ReadAllBytes(Path.Combine(result.Path, rel)));
        }
        Assert.Equal(2, ExampleStore.ReadState(Path.Combine(result.Path, "sub", "index.sqlite")).Rows.Count);
        Assert.Equal(2, result.WalPosition.AppliedLogIndex);
        Assert.False(Directory.Exists(result.Path + ".tmp"));
        Assert.Contains(reports, r => r.CurrentItem == "data.mdb");
        Assert.Equal(result.Bytes, reports[^1].Completed);
    }

    [Fact]
    public async Task FileThatKeepsChangingFailsTheSnapshotAndLeavesNothing()
    {
        using var dir = new TestDirectory();
        // 32 MiB: each copy attempt reads it three times, a window far longer than a writer thread's
        // scheduling latency. Three writer threads, so that a copy attempt can only see the file
        // still if all three are starved for its whole window at once (one writer was, once, under
        // load 45 on two cores).
        string nsDir = CreateFileNamespace(dir.Path, "lmdb", 32 * 1024 * 1024);
        string hot = Path.Combine(nsDir, "db", "data.mdb");
        long writes = 0;
        using var stop = new CancellationTokenSource();
        var writers = Enumerable.Range(0, 3).Select(w => new Thread(() =>
        {
            using var stream = new FileStream(hot, FileMode.Open, FileAccess.Write, FileShare.ReadWrite);
            byte[] counter = new byte[8];
            long length = stream.Length;
            for (long n = 1; !stop.IsCancellationRequested; n++)
            {
                BitConverter.TryWriteBytes(counter, n * 3 + w);
                stream.Position = (n * 4096 + w * 1024) % (length - 8);
                stream.Write(counter);
                stream.Flush();
                Interlocked.Increment(ref writes);
            }
        }) { IsBackground = true, Name = $"rewriter-{w}" }).ToList();
        writers.ForEach(t => t.Start());
        try
        {
            Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref writes) > 3000, TimeSpan.FromSeconds(30)));
            string final = Path.Combine(dir.Path, "backups", "lmdb", "snaps", "hot");

            var e = await Assert.ThrowsAsync<OperationFailedException>(() => SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(dir.Path, "lmdb", "snaps/hot"), OperationContext.Default));

            Assert.Equal("StoreFileUnstable", e.ErrorId);
            Assert.Contains("data.mdb", e.Message);
            Assert.Contains("Pause writes", e.Message);
            AssertNothingLeft(final);
        }
        finally
        {
            stop.Cancel();
            writers.ForEach(t => t.Join());
        }
    }

    [Fact]
    public async Task CancellingFromTheProgressCallbackLeavesNothingUnderTheFinalName()
    {
        using var dir = new TestDirectory();
        CreateFileNamespace(dir.Path, "lmdb");
        using var cts = new CancellationTokenSource();
        int copied = 0;
        var context = new OperationContext
        {
            CancellationToken = cts.Token,
            Progress = new CallbackProgress(p =>
            {
                if (p.Status.StartsWith("Copied", StringComparison.Ordinal) && ++copied == 2)
                {
                    cts.Cancel(); // half-way: two files already in the temp folder
                }
            }),
        };

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(dir.Path, "lmdb", "snaps/cancelled"), context));

        Assert.Equal(2, copied);
        AssertNothingLeft(Path.Combine(dir.Path, "backups", "lmdb", "snaps", "cancelled"));
        // And the same path works afterwards: nothing stale blocks it.
        Assert.NotNull(await SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(dir.Path, "lmdb", "snaps/cancelled"), OperationContext.Default));
    }

    [Fact]
    public async Task SymbolicLinkInsideTheStoreIsRefused()
    {
        using var dir = new TestDirectory();
        string nsDir = CreateFileNamespace(dir.Path, "lmdb");
        File.WriteAllText(dir.Combine("secret.txt"), "outside");
        File.CreateSymbolicLink(Path.Combine(nsDir, "db", "link.mdb"), dir.Combine("secret.txt"));
        var before = TreeState.Capture(dir.Path);

        var e = await Assert.ThrowsAsync<InvalidInputException>(() => SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(dir.Path, "lmdb", "s"), OperationContext.Default));

        Assert.Equal("SymbolicLink", e.ErrorId);
        before.AssertUnchanged(dir.Path);
    }
}
