using PSBackup.Engine.Events;
using PSBackup.Engine.Restore;
using PSBackup.Engine.Storage;
using PSBackup.Engine.Tests.Support;
using PSBackup.Example;

namespace PSBackup.Engine.Tests.Restore;

/// <summary>Test-Restore's engine: the drill over the PITR scenario's local backup root (copied per
/// test, so a test may damage its copy), with the example database's replay as the validation.</summary>
public sealed class RestoreDrillTests(PitrScenario scenario) : IClassFixture<PitrScenario>, IDisposable
{
    private const string Ns = PitrScenario.Ns;
    private readonly TestDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>A data dir holding a copy of the scenario's backups only (no live namespace).</summary>
    private string CopyOfBackups()
    {
        string dataDir = _dir.Combine("data-" + Guid.NewGuid().ToString("N")[..6]);
        string from = scenario.BackupRoot;
        foreach (string file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            string to = Path.Combine(dataDir, "backups", Ns, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            File.Copy(file, to);
        }
        return dataDir;
    }

    /// <summary>A scenario snapshot's id: its path relative to the backup root.</summary>
    private string SnapshotId(Index i) => Path.GetRelativePath(scenario.BackupRoot, scenario.Snapshots[i].Path).Replace(Path.DirectorySeparatorChar, '/');

    private string Scratch()
    {
        string path = _dir.Combine("scratch-" + Guid.NewGuid().ToString("N")[..6]);
        Directory.CreateDirectory(path);
        return path;
    }

    private static Func<string, CancellationToken, Task> ReplayCheck(Action<ExampleState>? inspect = null) => (nsDir, _) =>
    {
        ExampleStore.Replay(nsDir);
        inspect?.Invoke(ExampleStore.ReadState(ExampleStore.DbPath(nsDir)));
        return Task.CompletedTask;
    };

    private static async Task<RestoreDrillEvent> SingleEvent(string dataDir)
    {
        IReadOnlyList<StoredEvent> events = await EventLog.ForDataDir(dataDir).ListAsync(Ns, CancellationToken.None);
        StoredEvent e = Assert.Single(History.OtherEvents(events));
        Assert.Equal(RestoreDrillEvent.EventKind, e.Kind);
        Assert.Equal(Ns, e.Namespace);
        return e.As<RestoreDrillEvent>();
    }

    private static void FlipByte(string file, long offset)
    {
        using var stream = new FileStream(file, FileMode.Open, FileAccess.ReadWrite);
        stream.Position = offset;
        int b = stream.ReadByte();
        stream.Position = offset;
        stream.WriteByte((byte)(b ^ 0x5A));
    }

    [Fact]
    public async Task Latest_drill_restores_the_newest_snapshot_and_every_archived_segment_validates_and_cleans_up()
    {
        string dataDir = CopyOfBackups();
        string scratch = Scratch();
        ExampleState? replayed = null;
        RestoreDrillResult? result = await RestoreDrill.RunAsync(
            new TestRestoreOptions(Ns) { DataDir = dataDir, ScratchPath = scratch, Validation = ReplayCheck(s => replayed = s) },
            OperationContext.Default);

        Assert.NotNull(result);
        Assert.True(result.Passed, string.Join("; ", result.Errors));
        Assert.Null(result.FailureKind);
        Assert.True(result.ValidationPassed);
        Assert.Equal(SnapshotId(^1), result.Snapshot);
        Assert.Equal(scenario.LastArchivedLogIndex, result.LastLogIndex);
        Assert.True(result.Segments > 0);
        Assert.True(result.Bytes > 0);
        Assert.Null(result.RestoredPath);
        Assert.Empty(Directory.EnumerateFileSystemEntries(scratch)); // the drill's folder is gone

        // The replayed copy is exactly the writer's state at the last archived record.
        Assert.NotNull(replayed);
        scenario.AssertStateAt(scenario.LastArchivedLogIndex, replayed);

        RestoreDrillEvent e = await SingleEvent(dataDir);
        Assert.True(e.Passed);
        Assert.Equal(result.Snapshot, e.Snapshot);
        Assert.Equal(result.Bytes, e.Bytes);
        Assert.Equal(result.Segments, e.Segments);
        Assert.Empty(e.Errors);
        Assert.Equal(result.EventName, Assert.Single(History.OtherEventFiles(Path.Combine(dataDir, "backups", Ns, "events"))).Split(Path.DirectorySeparatorChar)[^1]);
    }

    [Fact]
    public async Task A_failing_validation_fails_the_drill_with_its_message_removes_the_scratch_and_is_recorded()
    {
        string dataDir = CopyOfBackups();
        string scratch = Scratch();
        string? seen = null;
        RestoreDrillResult result = (await RestoreDrill.RunAsync(new TestRestoreOptions(Ns)
        {
            DataDir = dataDir,
            ScratchPath = scratch,
            Validation = (path, _) =>
            {
                seen = path;
                Assert.True(Directory.Exists(Path.Combine(path, "db")));
                Assert.True(Directory.Exists(Path.Combine(path, "wal")));
                throw new InvalidOperationException("row count 0, expected > 100");
            },
        }, OperationContext.Default))!;

        Assert.False(result.Passed);
        Assert.True(result.FailureKind == ErrorKind.Failed, string.Join("; ", result.Errors));
        Assert.False(result.ValidationPassed);
        Assert.Contains("row count 0, expected > 100", Assert.Single(result.Errors));
        Assert.Equal(Path.Combine(scratch, Path.GetFileName(Path.GetDirectoryName(seen)!), Ns), seen);
        Assert.Empty(Directory.EnumerateFileSystemEntries(scratch));
        RestoreDrillEvent e = await SingleEvent(dataDir);
        Assert.False(e.Passed);
        Assert.Contains("row count 0", Assert.Single(e.Errors));
    }

    [Fact]
    public async Task A_damaged_snapshot_file_fails_the_drill_naming_the_file()
    {
        string dataDir = CopyOfBackups();
        string snapshotFile = Path.Combine(dataDir, "backups", Ns, SnapshotId(^1));
        FlipByte(snapshotFile, new FileInfo(snapshotFile).Length / 2);
        bool validated = false;
        string scratch = Scratch();

        RestoreDrillResult result = (await RestoreDrill.RunAsync(new TestRestoreOptions(Ns)
        {
            DataDir = dataDir,
            ScratchPath = scratch,
            Validation = (_, _) => { validated = true; return Task.CompletedTask; },
        }, OperationContext.Default))!;

        Assert.False(result.Passed);
        Assert.Equal(ErrorKind.Integrity, result.FailureKind);
        Assert.Contains(SnapshotId(^1), Assert.Single(result.Errors));
        Assert.False(validated, "validation must not run on a copy that failed verification");
        Assert.Null(result.ValidationPassed);
        Assert.Empty(Directory.EnumerateFileSystemEntries(scratch));
        Assert.False((await SingleEvent(dataDir)).Passed);
    }

    [Fact]
    public async Task A_damaged_shipped_segment_fails_the_drill_naming_the_segment()
    {
        string dataDir = CopyOfBackups();
        string last = Directory.EnumerateFiles(Path.Combine(dataDir, "backups", Ns), "*.wal", SearchOption.AllDirectories)
            .OrderBy(Path.GetFileName, StringComparer.Ordinal).Last();
        FlipByte(last, 64 + 12); // inside the first record's data

        RestoreDrillResult result = (await RestoreDrill.RunAsync(new TestRestoreOptions(Ns) { DataDir = dataDir, ScratchPath = Scratch() }, OperationContext.Default))!;

        Assert.False(result.Passed);
        Assert.Equal(ErrorKind.Integrity, result.FailureKind);
        Assert.Contains(Path.GetFileName(last), string.Join(" ", result.Errors));
        RestoreDrillEvent e = await SingleEvent(dataDir);
        Assert.False(e.Passed);
        Assert.Contains(Path.GetFileName(last), string.Join(" ", e.Errors));
    }

    [Fact]
    public async Task Keep_keeps_the_restored_copy_and_reports_its_path()
    {
        string dataDir = CopyOfBackups();
        string scratch = Scratch();
        RestoreDrillResult result = (await RestoreDrill.RunAsync(new TestRestoreOptions(Ns) { DataDir = dataDir, ScratchPath = scratch, Keep = true }, OperationContext.Default))!;

        Assert.True(result.Passed, string.Join("; ", result.Errors));
        Assert.NotNull(result.RestoredPath);
        Assert.StartsWith(scratch, result.RestoredPath);
        Assert.True(File.Exists(ExampleStore.DbPath(result.RestoredPath)));
        Assert.Equal(result.Segments, Directory.GetFiles(Path.Combine(result.RestoredPath, "wal"), "*.wal").Length);
        ExampleStore.Replay(result.RestoredPath);
        scenario.AssertStateAt(scenario.LastArchivedLogIndex, ExampleStore.ReadState(ExampleStore.DbPath(result.RestoredPath)));
    }

    [Fact]
    public async Task A_given_snapshot_and_log_index_are_drilled_exactly()
    {
        string dataDir = CopyOfBackups();
        string path = SnapshotId(0);
        long applied = scenario.Snapshots[0].Applied;
        long target = applied + 40;
        ExampleState? replayed = null;
        RestoreDrillResult result = (await RestoreDrill.RunAsync(new TestRestoreOptions(Ns)
        {
            DataDir = dataDir,
            Snapshot = path,
            TargetLogIndex = target,
            ScratchPath = Scratch(),
            Validation = ReplayCheck(s => replayed = s),
        }, OperationContext.Default))!;

        Assert.True(result.Passed, string.Join("; ", result.Errors));
        Assert.Equal(path, result.Snapshot);
        Assert.Equal(target, result.LastLogIndex);
        scenario.AssertStateAt(target, replayed!);
    }

    [Fact]
    public async Task A_given_older_snapshot_replays_every_segment_after_it_to_the_latest()
    {
        string dataDir = CopyOfBackups();
        RestoreDrillResult result = (await RestoreDrill.RunAsync(new TestRestoreOptions(Ns)
        {
            DataDir = dataDir,
            Snapshot = SnapshotId(0),
            ScratchPath = Scratch(),
            Validation = ReplayCheck(s => scenario.AssertStateAt(scenario.LastArchivedLogIndex, s)),
        }, OperationContext.Default))!;
        Assert.True(result.Passed, string.Join("; ", result.Errors));
        Assert.Equal(scenario.LastArchivedLogIndex, result.LastLogIndex);
    }

    public static TheoryData<string> BadInputs => new() { "unknown-snapshot", "two-targets", "no-scratch", "no-source", "bad-namespace", "target-before-first" };

    [Theory]
    [MemberData(nameof(BadInputs))]
    public async Task Bad_input_is_a_typed_error_and_writes_nothing(string what)
    {
        string dataDir = CopyOfBackups();
        string scratch = Scratch();
        var options = new TestRestoreOptions(Ns) { DataDir = dataDir, ScratchPath = scratch };
        options = what switch
        {
            "unknown-snapshot" => options with { Snapshot = "snapshots/nope.sqlite" },
            "two-targets" => options with { TargetLogIndex = 5, TargetTime = DateTimeOffset.UtcNow },
            "no-scratch" => options with { ScratchPath = Path.Combine(scratch, "missing") },
            "no-source" => options with { DataDir = null },
            "bad-namespace" => options with { Namespace = "../users" },
            _ => options with { TargetLogIndex = 1 },
        };
        PSBackupException e = await Assert.ThrowsAnyAsync<PSBackupException>(() => RestoreDrill.RunAsync(options, OperationContext.Default));
        Assert.Contains(e.Kind, new[] { ErrorKind.InvalidArgument, ErrorKind.NotFound });
        Assert.Empty(Directory.EnumerateFileSystemEntries(scratch));
        Assert.Empty(History.OtherEventFiles(Path.Combine(dataDir, "backups", Ns, "events")));
    }

    [Fact]
    public async Task WhatIf_restores_and_records_nothing()
    {
        string dataDir = CopyOfBackups();
        string scratch = Scratch();
        string? asked = null;
        RestoreDrillResult? result = await RestoreDrill.RunAsync(new TestRestoreOptions(Ns) { DataDir = dataDir, ScratchPath = scratch },
            new OperationContext { ShouldProcess = (target, _) => { asked = target; return false; } });
        Assert.Null(result);
        Assert.StartsWith(Path.Combine(scratch, "psbackup-drill-users-"), asked);
        Assert.Empty(Directory.EnumerateFileSystemEntries(scratch));
        Assert.Empty(History.OtherEventFiles(Path.Combine(dataDir, "backups", Ns, "events")));
    }

    [Fact]
    public async Task The_repository_event_log_appends_unique_objects_and_lists_every_kind_oldest_first()
    {
        string root = _dir.Combine("repo");
        Directory.CreateDirectory(root);
        using var backend = new LocalBackend(root);
        IEventLog log = EventLog.ForBackend(backend);
        var t = new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);
        RestoreDrillEvent drill = new()
        {
            Namespace = Ns, Passed = true, Segments = 2, Bytes = 10, DurationSeconds = 1.5, Errors = [], Time = t, Host = "h",
        };
        string second = await log.AppendAsync(Ns, t.AddSeconds(1), drill, CancellationToken.None);
        string first = await log.AppendAsync(Ns, t, drill with { Passed = false, Errors = ["boom"] }, CancellationToken.None);
        Assert.NotEqual(first, second);
        Assert.Matches(@"^20260301T120000000Z-[0-9a-f]{8}\.json$", first);
        // A WAL-gap event as shipping writes it, and a stray object, sit beside them.
        await backend.PutAsync($"events/{Ns}/20260301T115959000Z-0000abcd.json", new MemoryStream("{\"kind\":\"wal-gap\",\"namespace\":\"users\"}"u8.ToArray()), -1, CancellationToken.None);
        await backend.PutAsync($"events/{Ns}/notes.txt", new MemoryStream("x"u8.ToArray()), -1, CancellationToken.None);
        await backend.PutAsync($"events/other/20260301T120000000Z-00000001.json", new MemoryStream("{}"u8.ToArray()), -1, CancellationToken.None);

        IReadOnlyList<StoredEvent> events = await log.ListAsync(Ns, CancellationToken.None);
        Assert.Equal(["wal-gap", "restore-drill", "restore-drill"], events.Select(e => e.Kind));
        Assert.Equal([first, second], events.Skip(1).Select(e => e.Name));
        Assert.Equal(t, events[1].Time);
        RestoreDrillEvent read = events[1].As<RestoreDrillEvent>();
        Assert.False(read.Passed);
        Assert.Equal(["boom"], read.Errors);
        Assert.Equal(1.5, read.DurationSeconds);
    }
}
