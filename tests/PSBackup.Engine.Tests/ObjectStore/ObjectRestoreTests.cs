using PSBackup.Engine.ObjectStore;
using PSBackup.Engine.Tests.Support;

namespace PSBackup.Engine.Tests.ObjectStore;

public sealed class ObjectRestoreTests
{
    private static readonly DateTimeOffset T1 = new(2026, 4, 18, 14, 0, 0, TimeSpan.Zero);

    private static OperationContext Context(DateTimeOffset now, Func<string, string, bool>? shouldProcess = null) =>
        new() { Clock = new FixedClock(now), ShouldProcess = shouldProcess ?? ((_, _) => true) };

    /// <summary>Backs up the object as it is now, at <paramref name="at"/>.</summary>
    private static async Task<ObjectBackupResult> BackupAsync(ObjectFixture fx, DateTimeOffset at) =>
        (await ObjectOperations.BackupAsync(fx.BackupOptions(), Context(at)))!;

    /// <summary>Changes the live object: one file rewritten, one removed, one added.</summary>
    private static void ChangeLive(ObjectFixture fx, int seed)
    {
        ObjectFixture.Write(fx.ObjectPath, "data/001.bin", ObjectFixture.Bytes($"changed{seed}", 7000));
        File.Delete(Path.Combine(fx.ObjectPath, "fields.conf"));
        ObjectFixture.Write(fx.ObjectPath, $"files/new{seed}.bin", [1, 2, (byte)seed]);
    }

    [Fact]
    public async Task Force_swaps_the_backup_in_keeps_the_replaced_object_aside_and_leaves_the_backup_intact()
    {
        using var fx = new ObjectFixture();
        ObjectBackupResult backup = await BackupAsync(fx, T1);
        var backupState = TreeState.Capture(fx.DirPath + "/" + backup.BackupName);
        string manifestText = File.ReadAllText(backup.ManifestPath!);
        ChangeLive(fx, 2);
        var oldLive = ObjectFixture.Snapshot(fx.ObjectPath);
        var asked = new List<(string, string)>();

        ObjectRestoreResult? result = await ObjectOperations.RestoreAsync(fx.RestoreOptions(backup.BackupName, force: true),
            Context(T1.AddHours(1), (t, a) => { asked.Add((t, a)); return true; }));

        Assert.NotNull(result);
        Assert.Equal([(fx.ObjectPath, $"Replace with backup {backup.BackupName}")], asked);
        Assert.Equal(backup.BackupName, result.BackupName);
        Assert.Equal(fx.ObjectPath, result.RestoredPath);
        Assert.Equal(Path.Combine(fx.DirPath, "users.replaced-20260418T150000"), result.ReplacedPath);
        Assert.Equal(backup.FileCount, result.FileCount);
        Assert.Equal(backup.Bytes, result.Bytes);
        Assert.Equal(ObjectFixture.Snapshot(backup.BackupPath!), ObjectFixture.Snapshot(fx.ObjectPath)); // byte for byte, folders too
        Assert.Equal(oldLive, ObjectFixture.Snapshot(result.ReplacedPath!));
        backupState.AssertUnchanged(backup.BackupPath!);
        Assert.Equal(manifestText, File.ReadAllText(backup.ManifestPath!));
        Assert.Equal(
            new[] { "users", "users.backup-20260418T140000", "users.backup-20260418T140000.manifest.json", "users.replaced-20260418T150000" },
            Directory.EnumerateFileSystemEntries(fx.DirPath).Select(Path.GetFileName).Order(StringComparer.Ordinal));

        // Re-restorable: the same backup again, in the same second, keeps the first replaced copy.
        ChangeLive(fx, 3);
        ObjectRestoreResult? again = await ObjectOperations.RestoreAsync(fx.RestoreOptions("20260418T140000", force: true), Context(T1.AddHours(1)));
        Assert.Equal(Path.Combine(fx.DirPath, "users.replaced-20260418T150000-2"), again!.ReplacedPath);
        Assert.Equal(ObjectFixture.Snapshot(backup.BackupPath!), ObjectFixture.Snapshot(fx.ObjectPath));
        Assert.Equal(oldLive, ObjectFixture.Snapshot(result.ReplacedPath!));
    }

    [Fact]
    public async Task Non_empty_live_object_without_force_is_a_conflict_and_nothing_changes()
    {
        using var fx = new ObjectFixture();
        ObjectBackupResult backup = await BackupAsync(fx, T1);
        ChangeLive(fx, 2);
        var state = TreeState.Capture(fx.DbRoot);

        var e = await Assert.ThrowsAsync<ConflictException>(() => ObjectOperations.RestoreAsync(fx.RestoreOptions(backup.BackupName), Context(T1.AddHours(1))));

        Assert.Contains("-Force", e.Message);
        Assert.Contains("kept aside", e.Message);
        state.AssertUnchanged(fx.DbRoot);
    }

    [Fact]
    public async Task Missing_or_empty_live_object_is_restored_without_force()
    {
        using var fx = new ObjectFixture();
        ObjectBackupResult backup = await BackupAsync(fx, T1);
        Directory.Delete(fx.ObjectPath, recursive: true);

        ObjectRestoreResult? result = await ObjectOperations.RestoreAsync(fx.RestoreOptions("latest"), Context(T1.AddHours(1)));

        Assert.Null(result!.ReplacedPath);
        Assert.Equal(ObjectFixture.Snapshot(backup.BackupPath!), ObjectFixture.Snapshot(fx.ObjectPath));

        Directory.Delete(fx.ObjectPath, recursive: true);
        Directory.CreateDirectory(fx.ObjectPath);
        ObjectRestoreResult? overEmpty = await ObjectOperations.RestoreAsync(fx.RestoreOptions("latest"), Context(T1.AddHours(2)));
        Assert.Equal(ObjectFixture.Snapshot(backup.BackupPath!), ObjectFixture.Snapshot(fx.ObjectPath));
        Assert.Empty(Directory.EnumerateFileSystemEntries(overEmpty!.ReplacedPath!));
    }

    [Fact]
    public async Task A_flipped_byte_in_the_backup_is_an_integrity_error_naming_backup_and_file_and_live_is_untouched()
    {
        using var fx = new ObjectFixture();
        ObjectBackupResult backup = await BackupAsync(fx, T1);
        string damaged = Path.Combine(backup.BackupPath!, "indexes", "email", "000.idx");
        byte[] bytes = File.ReadAllBytes(damaged);
        bytes[100] ^= 0x01;
        File.WriteAllBytes(damaged, bytes);
        ChangeLive(fx, 2);
        var state = TreeState.Capture(fx.DbRoot);

        var e = await Assert.ThrowsAsync<IntegrityException>(() => ObjectOperations.RestoreAsync(fx.RestoreOptions(backup.BackupName, force: true), Context(T1.AddHours(1))));

        Assert.Contains(backup.BackupName, e.Message);
        Assert.Contains("indexes/email/000.idx", e.Message);
        state.AssertUnchanged(fx.DbRoot);
    }

    [Fact]
    public async Task An_extra_file_in_the_backup_is_an_integrity_error()
    {
        using var fx = new ObjectFixture();
        ObjectBackupResult backup = await BackupAsync(fx, T1);
        ObjectFixture.Write(backup.BackupPath!, "data/099.bin", [9, 9, 9]);
        var state = TreeState.Capture(fx.DbRoot);

        var e = await Assert.ThrowsAsync<IntegrityException>(() => ObjectOperations.RestoreAsync(fx.RestoreOptions(backup.BackupName, force: true), Context(T1.AddHours(1))));

        Assert.Contains("data/099.bin", e.Message);
        state.AssertUnchanged(fx.DbRoot);
    }

    [Fact]
    public async Task A_backup_without_its_manifest_or_a_missing_backup_is_not_found()
    {
        using var fx = new ObjectFixture();
        ObjectBackupResult backup = await BackupAsync(fx, T1);
        File.Delete(backup.ManifestPath!);
        var state = TreeState.Capture(fx.DbRoot);

        await Assert.ThrowsAsync<NotFoundException>(() => ObjectOperations.RestoreAsync(fx.RestoreOptions(backup.BackupName, force: true), Context(T1.AddHours(1))));
        await Assert.ThrowsAsync<NotFoundException>(() => ObjectOperations.RestoreAsync(fx.RestoreOptions("20250101T000000", force: true), Context(T1.AddHours(1))));
        await Assert.ThrowsAsync<NotFoundException>(() => ObjectOperations.RestoreAsync(fx.RestoreOptions("latest", force: true), Context(T1.AddHours(1))));
        state.AssertUnchanged(fx.DbRoot);
    }

    [Fact]
    public async Task Latest_picks_the_newest_complete_backup_of_this_object()
    {
        using var fx = new ObjectFixture();
        await BackupAsync(fx, T1);
        ChangeLive(fx, 2);
        ObjectBackupResult newest = await BackupAsync(fx, T1.AddDays(1));
        ChangeLive(fx, 3);
        await BackupAsync(fx, T1.AddHours(5)); // taken later in the day before the newest: older name
        // Newer but incomplete (no manifest), and a newer backup of another object.
        ChangeLive(fx, 4);
        Directory.CreateDirectory(Path.Combine(fx.DirPath, "users.backup-20270101T000000"));
        ObjectFixture.Write(fx.DirPath, "users.backup-20270101T000000/fields.conf", [1]);
        Directory.CreateDirectory(Path.Combine(fx.DirPath, "orders.backup-20280101T000000"));
        File.WriteAllText(Path.Combine(fx.DirPath, "orders.backup-20280101T000000.manifest.json"), "{}");

        ObjectRestoreResult? result = await ObjectOperations.RestoreAsync(fx.RestoreOptions("latest", force: true), Context(T1.AddDays(2)));

        Assert.Equal("users.backup-20260419T140000", result!.BackupName);
        Assert.Equal(ObjectFixture.Snapshot(newest.BackupPath!), ObjectFixture.Snapshot(fx.ObjectPath));
    }

    public static TheoryData<string> BadFrom() => new()
    {
        "../x", "x/y", "/abs", "other.backup-20260418T140000", "garbage", "", " ", "..", "users.backup-20260418T140000/..",
        "C:\\x", "users.backup-20261399T000000", "users.backup-20260418T140000.tmp", "users.backup-\n20260418T140000", "20260418",
    };

    [Theory]
    [MemberData(nameof(BadFrom))]
    public async Task Unsafe_or_foreign_from_values_are_refused_before_anything_is_touched(string from)
    {
        using var fx = new ObjectFixture();
        await BackupAsync(fx, T1);
        // A real backup of another object sits beside it: it still may not be restored over 'users'.
        Directory.CreateDirectory(Path.Combine(fx.DirPath, "other"));
        await ObjectOperations.BackupAsync(fx.BackupOptions() with { Object = "other" }, Context(T1));
        ChangeLive(fx, 2);
        var state = TreeState.Capture(fx.DbRoot);
        bool asked = false;

        await Assert.ThrowsAsync<InvalidInputException>(() => ObjectOperations.RestoreAsync(fx.RestoreOptions(from, force: true),
            Context(T1.AddHours(1), (_, _) => asked = true)));

        Assert.False(asked);
        state.AssertUnchanged(fx.DbRoot);
    }

    [Theory]
    [InlineData("..")]
    [InlineData("a/b")]
    [InlineData(".hidden")]
    [InlineData("a\0b")]
    public async Task Bad_dir_or_object_names_are_refused(string name)
    {
        using var fx = new ObjectFixture();
        await BackupAsync(fx, T1);
        var state = TreeState.Capture(fx.DbRoot);
        await Assert.ThrowsAsync<InvalidInputException>(() => ObjectOperations.RestoreAsync(fx.RestoreOptions("latest", force: true) with { Object = name }, Context(T1.AddHours(1))));
        await Assert.ThrowsAsync<InvalidInputException>(() => ObjectOperations.RestoreAsync(fx.RestoreOptions("latest", force: true) with { Dir = name }, Context(T1.AddHours(1))));
        state.AssertUnchanged(fx.DbRoot);
    }

    [Fact]
    public async Task WhatIf_verifies_but_returns_null_and_changes_nothing()
    {
        using var fx = new ObjectFixture();
        ObjectBackupResult backup = await BackupAsync(fx, T1);
        ChangeLive(fx, 2);
        var state = TreeState.Capture(fx.DbRoot);

        ObjectRestoreResult? result = await ObjectOperations.RestoreAsync(fx.RestoreOptions(backup.BackupName, force: true), Context(T1.AddHours(1), (_, _) => false));

        Assert.Null(result);
        state.AssertUnchanged(fx.DbRoot);
    }

    [Fact]
    public async Task A_backup_that_is_a_symbolic_link_is_refused()
    {
        using var fx = new ObjectFixture();
        ObjectBackupResult backup = await BackupAsync(fx, T1);
        using var elsewhere = new TestDirectory();
        string moved = Path.Combine(elsewhere.Path, backup.BackupName);
        Directory.Move(backup.BackupPath!, moved);
        Directory.CreateSymbolicLink(backup.BackupPath!, moved);
        var state = TreeState.Capture(fx.DbRoot);

        await Assert.ThrowsAsync<InvalidInputException>(() => ObjectOperations.RestoreAsync(fx.RestoreOptions(backup.BackupName, force: true), Context(T1.AddHours(1))));

        state.AssertUnchanged(fx.DbRoot);
    }
}
