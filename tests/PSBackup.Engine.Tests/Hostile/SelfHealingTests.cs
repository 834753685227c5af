using PSBackup.Engine.Events;
using PSBackup.Engine.ObjectStore;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Storage;
using PSBackup.Engine.Tests.ObjectStore;
using PSBackup.Engine.Tests.Support;
using PSBackup.Engine.Wal;
using static PSBackup.Engine.Tests.Wal.WalTestData;

namespace PSBackup.Engine.Tests.Hostile;

/// <summary>Lost and damaged packs (issue 12, item 1): a backup never references a chunk whose every
/// copy is missing or known damaged, check marks what it finds damaged so the next backup stores it
/// again, readers fall back to another copy, repair rebuilds the index, salvages and re-stores from a
/// source, a WAL ship re-stores a damaged archived segment, and health alerts.</summary>
public sealed class SelfHealingTests : IDisposable
{
    private readonly TestDirectory _dir = new();
    private readonly ObjectFixture _obj = new();

    public void Dispose()
    {
        _obj.Dispose();
        _dir.Dispose();
    }

    private string RepoPath => _dir.Combine("repo");

    private async Task<RepositoryTarget> NewRepositoryAsync()
    {
        var target = new RepositoryTarget { Location = RepoPath };
        Assert.NotNull(await RepositoryOperations.InitializeAsync(new InitializeRepositoryOptions(target) { Unencrypted = true }, OperationContext.Default));
        return target;
    }

    private async Task<ObjectBackupResult> BackupAsync(RepositoryTarget repo, bool force = false) =>
        (await ObjectOperations.BackupAsync(_obj.SettledBackupOptions() with { Repository = repo, Force = force }, OperationContext.Default))!;

    /// <summary>Restores one backup into a fresh folder and returns its files (path → SHA-256).</summary>
    private async Task<SortedDictionary<string, string>> RestoreFilesAsync(RepositoryTarget repo, string backupId)
    {
        string into = _dir.Combine("restore-" + Guid.NewGuid().ToString("N")[..8]);
        using OpenRepository open = await RepositoryConnector.OpenAsync(repo, CancellationToken.None);
        RepositoryManifest m = await open.Repository.ReadManifestAsync(backupId);
        await open.Repository.RestoreAsync(m, into);
        return FilesOf(into);
    }

    private static SortedDictionary<string, string> FilesOf(string root) =>
        new(ObjectFixture.Snapshot(root).Where(kv => kv.Value != "<dir>").ToDictionary(), StringComparer.Ordinal);

    private SortedDictionary<string, string> Source => FilesOf(_obj.ObjectPath);

    /// <summary>Adds a new file, so the next backup's pack differs from the first (an unencrypted
    /// repository would otherwise store the very same pack again under the same name, healing it).</summary>
    private void AddFile(string name) => ObjectFixture.Write(_obj.ObjectPath, "files/" + name, ObjectFixture.Bytes(name, 20_000));

    private string[] Packs() => Directory.GetFiles(Path.Combine(RepoPath, "packs"), "*", SearchOption.AllDirectories)
        .Where(p => !Path.GetFileName(p).StartsWith('.')).Order(StringComparer.Ordinal).ToArray();

    private static async Task<RepositoryCheckResult> CheckAsync(RepositoryTarget repo, bool readData) =>
        await RepositoryCheckOperation.CheckAsync(new TestBackupRepositoryOptions(repo) { ReadData = readData }, OperationContext.Default);

    /// <summary>Flips one byte in the middle of the first frame of <paramref name="pack"/>.</summary>
    private static async Task FlipFrameByteAsync(RepositoryTarget repo, string pack)
    {
        string id = Path.GetFileName(pack);
        using OpenRepository open = await RepositoryConnector.OpenAsync(repo, CancellationToken.None);
        string indexKey = Directory.GetFiles(Path.Combine(repo.Location, "index")).Select(f => "index/" + Path.GetFileName(f)).First();
        IndexPack p = (await open.Repository.ReadIndexObjectAsync(indexKey, CancellationToken.None)).Packs.First(x => x.Id == id);
        FrameEntry f = p.Frames[0];
        byte[] bytes = File.ReadAllBytes(pack);
        bytes[f.Offset + f.Length / 2] ^= 0x5A;
        File.WriteAllBytes(pack, bytes);
    }

    [Fact]
    public async Task A_deleted_pack_is_stored_again_by_the_next_backup_which_heals_the_older_backup_too()
    {
        RepositoryTarget repo = await NewRepositoryAsync();
        ObjectBackupResult first = await BackupAsync(repo);
        var original = Source;
        File.Delete(Assert.Single(Packs()));
        AddFile("later.bin");

        ObjectBackupResult second = await BackupAsync(repo);

        // Before: the second backup deduplicated against the lost pack and stored only the new file.
        Assert.True(second.StoredBytes > 70_000, $"stored only {second.StoredBytes} bytes: the lost chunks were not stored again");
        Assert.Equal(Source, await RestoreFilesAsync(repo, second.BackupId!));
        Assert.Equal(original, await RestoreFilesAsync(repo, first.BackupId!));

        RepositoryCheckResult check = await CheckAsync(repo, readData: true);
        Assert.Contains(check.Errors, e => e.Code == "PackMissing");
        RepairResult repair = await RepositoryRepair.RepairAsync(new RepairBackupRepositoryOptions(repo), OperationContext.Default);
        Assert.True(repair.Repaired);
        Assert.Single(repair.MissingPacks);
        Assert.True((await CheckAsync(repo, readData: true)).Passed);
    }

    [Fact]
    public async Task A_flipped_byte_found_by_check_is_marked_so_the_next_backup_stores_the_chunks_again()
    {
        RepositoryTarget repo = await NewRepositoryAsync();
        ObjectBackupResult first = await BackupAsync(repo);
        var original = Source;
        string pack = Assert.Single(Packs());
        await FlipFrameByteAsync(repo, pack);
        AddFile("later.bin");

        RepositoryCheckResult deep = await CheckAsync(repo, readData: true);
        Assert.Contains(deep.Errors, e => e.Code == "PackCorrupt");
        Assert.True(File.Exists(Path.Combine(RepoPath, "damaged", Path.GetFileName(pack))), "check --read-data did not mark the pack");
        // A plain check (no read) now reports it too.
        Assert.Contains((await CheckAsync(repo, readData: false)).Errors, e => e.Code == "PackDamaged");

        ObjectBackupResult second = await BackupAsync(repo);
        Assert.True(second.StoredBytes > 70_000, $"stored only {second.StoredBytes} bytes: the damaged chunks were deduplicated against");
        Assert.Equal(Source, await RestoreFilesAsync(repo, second.BackupId!));
        Assert.Equal(original, await RestoreFilesAsync(repo, first.BackupId!)); // falls back to the new copy

        RepairResult repair = await RepositoryRepair.RepairAsync(new RepairBackupRepositoryOptions(repo), OperationContext.Default);
        Assert.True(repair.Repaired, string.Join("; ", repair.Unrepaired.Select(u => u.Message)));
        Assert.Equal([Path.GetFileName(pack)], repair.DamagedPacks);
        Assert.False(File.Exists(pack));
        Assert.False(Directory.Exists(Path.Combine(RepoPath, "damaged")) && Directory.EnumerateFiles(Path.Combine(RepoPath, "damaged")).Any());
        Assert.True((await CheckAsync(repo, readData: true)).Passed);
    }

    [Fact]
    public async Task Under_force_a_backup_reads_back_what_it_deduplicates_and_stores_a_damaged_frame_again()
    {
        RepositoryTarget repo = await NewRepositoryAsync();
        await BackupAsync(repo);
        string pack = Assert.Single(Packs());
        await FlipFrameByteAsync(repo, pack);
        AddFile("later.bin");

        ObjectBackupResult forced = await BackupAsync(repo, force: true);

        Assert.Equal(Source, await RestoreFilesAsync(repo, forced.BackupId!));
        Assert.Equal(Path.GetFileName(pack), Path.GetFileName(Assert.Single(Directory.GetFiles(Path.Combine(RepoPath, "damaged")))));

        // Without a change, the very same pack is stored again under its name: the damage is healed in place.
        using var again = new ObjectFixture();
        RepositoryTarget other = new() { Location = _dir.Combine("repo2") };
        Assert.NotNull(await RepositoryOperations.InitializeAsync(new InitializeRepositoryOptions(other) { Unencrypted = true }, OperationContext.Default));
        await ObjectOperations.BackupAsync(again.SettledBackupOptions() with { Repository = other }, OperationContext.Default);
        string only = Assert.Single(Directory.GetFiles(Path.Combine(other.Location, "packs"), "*", SearchOption.AllDirectories));
        await FlipFrameByteAsync(other, only);
        await ObjectOperations.BackupAsync(again.SettledBackupOptions() with { Repository = other, Force = true }, OperationContext.Default);
        Assert.True((await CheckAsync(other, readData: true)).Passed);
        Assert.False(Directory.Exists(Path.Combine(other.Location, "damaged")) && Directory.EnumerateFiles(Path.Combine(other.Location, "damaged")).Any());
    }

    [Fact]
    public async Task A_lost_index_is_rebuilt_from_the_pack_trailers()
    {
        RepositoryTarget repo = await NewRepositoryAsync();
        ObjectBackupResult first = await BackupAsync(repo);
        foreach (string f in Directory.GetFiles(Path.Combine(RepoPath, "index")))
        {
            File.Delete(f);
        }
        await Assert.ThrowsAsync<RepositoryIntegrityException>(() => RestoreFilesAsync(repo, first.BackupId!));

        RepairResult repair = await RepositoryRepair.RepairAsync(new RepairBackupRepositoryOptions(repo), OperationContext.Default);

        Assert.True(repair.Repaired);
        Assert.Equal(1, repair.PacksReindexed);
        Assert.Equal(Source, await RestoreFilesAsync(repo, first.BackupId!));
        Assert.True((await CheckAsync(repo, readData: true)).Passed);
    }

    [Fact]
    public async Task Repair_stores_lost_chunks_again_from_the_source_and_says_what_it_could_not_repair_without_one()
    {
        RepositoryTarget repo = await NewRepositoryAsync();
        ObjectBackupResult first = await BackupAsync(repo);
        File.Delete(Assert.Single(Packs()));

        RepairResult blind = await RepositoryRepair.RepairAsync(new RepairBackupRepositoryOptions(repo), OperationContext.Default);
        Assert.False(blind.Repaired);
        Assert.Equal(Source.Keys, blind.Unrepaired.Select(u => u.File).Order(StringComparer.Ordinal));
        Assert.All(blind.Unrepaired, u => Assert.Equal(first.BackupId, u.BackupId));

        RepairResult repaired = await RepositoryRepair.RepairAsync(new RepairBackupRepositoryOptions(repo) { SourcePath = [_obj.ObjectPath] }, OperationContext.Default);
        Assert.True(repaired.Repaired, string.Join("; ", repaired.Unrepaired.Select(u => u.Message)));
        Assert.True(repaired.ChunksRestored > 0);
        Assert.Equal(Source, await RestoreFilesAsync(repo, first.BackupId!));
        Assert.True((await CheckAsync(repo, readData: true)).Passed);
    }

    /// <summary>Before: repair cut source files from offset 0 by content only, while a WAL segment is
    /// cut after its 64-byte header and at its previous partial's chunk boundaries, so no lost WAL
    /// chunk was ever found in a copy of the WAL ("chunk … is in no pack", exit 4).</summary>
    [Fact]
    public async Task Repair_stores_lost_wal_segments_again_from_a_copy_of_the_wal_cut_where_the_ship_cut_them()
    {
        RepositoryTarget repo = await NewRepositoryAsync();
        string data = _dir.Combine("data");
        string wal = CreateNamespace(data, "users", (40, true), (30, false));
        // Segment 2 is shipped as a partial first, then sealed with more records: its sealed copy is
        // cut at the partial's chunk boundaries too.
        WalShipResult partial = await WalOperations.ShipAsync(new InvokeWalShipOptions(data, "users", null) { Repository = repo }, OperationContext.Default);
        string[] partialIds = partial.Backups.Where(b => b.SegmentId == 2).Select(b => b.BackupId!).ToArray();
        Assert.NotEmpty(partialIds);
        string second = Path.Combine(wal, WalFormat.SegmentFileName(2));
        File.Delete(second);
        WriteSegment(second, 41, Payloads(120, 2 * 31), seal: true);
        CreateNamespaceSegment3(wal);
        WalShipResult shipped = await WalOperations.ShipAsync(new InvokeWalShipOptions(data, "users", null) { Repository = repo, SealedOnly = true }, OperationContext.Default);
        Assert.Contains(2L, shipped.Backups.Select(b => b.SegmentId));

        string copy = _dir.Combine("wal-copy");
        Directory.CreateDirectory(copy);
        foreach (string f in Directory.GetFiles(wal))
        {
            File.Copy(f, Path.Combine(copy, Path.GetFileName(f)));
        }
        foreach (string pack in Packs())
        {
            File.Delete(pack);
        }

        RepairResult repaired = await RepositoryRepair.RepairAsync(new RepairBackupRepositoryOptions(repo) { SourcePath = [copy] }, OperationContext.Default);
        // Every sealed segment is whole again. Only the superseded partial of segment 2 may lack its
        // header chunk: walfs rewrote the header since, so those 64 bytes exist nowhere any more.
        Assert.True(repaired.ChunksRestored > 0);
        Assert.All(repaired.Unrepaired, u => Assert.Contains(u.BackupId, partialIds));
        using OpenRepository open = await RepositoryConnector.OpenAsync(repo, CancellationToken.None);
        foreach (ShippedSegment s in shipped.Backups)
        {
            RepositoryManifest m = await open.Repository.ReadManifestAsync(s.BackupId!);
            var ms = new MemoryStream();
            await open.Repository.RestoreFileAsync(m, m.Files[0], ms);
            Assert.Equal(File.ReadAllBytes(Path.Combine(copy, WalFormat.SegmentFileName(s.SegmentId))), ms.ToArray());
        }
    }

    /// <summary>An active segment 3 after the sealed segment 2 (a sealed segment is the newest only
    /// when UnisonDB stopped; this keeps the layout ordinary).</summary>
    private static void CreateNamespaceSegment3(string wal) =>
        WriteSegment(Path.Combine(wal, WalFormat.SegmentFileName(3)), 161, Payloads(5, 3 * 31), seal: false);

    [Fact]
    public async Task Repair_under_what_if_writes_nothing()
    {
        RepositoryTarget repo = await NewRepositoryAsync();
        await BackupAsync(repo);
        await FlipFrameByteAsync(repo, Assert.Single(Packs()));
        TreeState before = TreeState.Capture(RepoPath);

        RepairResult plan = await RepositoryRepair.RepairAsync(new RepairBackupRepositoryOptions(repo) { ReadData = true },
            new OperationContext { WhatIf = true, ShouldProcess = (_, _) => false });

        Assert.False(plan.Applied);
        Assert.Single(plan.DamagedPacks);
        before.AssertUnchanged(RepoPath);
    }

    [Fact]
    public async Task A_wal_ship_stores_again_a_segment_whose_archived_copy_is_lost_while_the_wal_still_has_it()
    {
        RepositoryTarget repo = await NewRepositoryAsync();
        string data = _dir.Combine("data");
        CreateNamespace(data, "users", (40, true), (30, true), (5, false));
        // Sealed segments only: the active segment's partial is shipped and healed the same way, apart.
        WalShipResult shipped = await WalOperations.ShipAsync(new InvokeWalShipOptions(data, "users", null) { Repository = repo, SealedOnly = true }, OperationContext.Default);
        Assert.Equal([1L, 2L], shipped.Backups.Select(b => b.SegmentId));
        foreach (string pack in Packs())
        {
            File.Delete(pack); // the archived copies of both segments are gone
        }

        WalShipResult again = await WalOperations.ShipAsync(new InvokeWalShipOptions(data, "users", null) { Repository = repo, SealedOnly = true }, OperationContext.Default);

        Assert.Equal([1L, 2L], again.Backups.Select(b => b.SegmentId));
        Assert.All(again.Backups, b => Assert.False(b.AlreadyPresent)); // before: "already present", unrestorable
        using OpenRepository open = await RepositoryConnector.OpenAsync(repo, CancellationToken.None);
        foreach (ShippedSegment s in shipped.Backups.Concat(again.Backups))
        {
            RepositoryManifest m = await open.Repository.ReadManifestAsync(s.BackupId!);
            var ms = new MemoryStream();
            await open.Repository.RestoreFileAsync(m, m.Files[0], ms);
            Assert.Equal(File.ReadAllBytes(Path.Combine(data, "users", "wal", WalFormat.SegmentFileName(s.SegmentId))), ms.ToArray());
        }
        // A third ship finds restorable copies: nothing more is stored.
        WalShipResult third = await WalOperations.ShipAsync(new InvokeWalShipOptions(data, "users", null) { Repository = repo, SealedOnly = true }, OperationContext.Default);
        Assert.All(third.Backups, b => Assert.True(b.AlreadyPresent));
    }

    [Fact]
    public async Task Health_alerts_on_a_backup_whose_pack_is_missing_or_marked_damaged()
    {
        RepositoryTarget repo = await NewRepositoryAsync();
        await BackupAsync(repo);
        var options = new BackupHealthOptions { Repository = repo };
        Assert.DoesNotContain(await BackupHealth.GetAlertsAsync(options, OperationContext.Default), a => a.Code == "BackupDamaged");

        await FlipFrameByteAsync(repo, Assert.Single(Packs()));
        await CheckAsync(repo, readData: true);

        HealthAlert alert = Assert.Single(await BackupHealth.GetAlertsAsync(options, OperationContext.Default), a => a.Code == "BackupDamaged");
        Assert.Equal(HealthSeverity.Critical, alert.Severity);
        Assert.Equal(ObjectFixture.Dir, alert.Namespace);
        MetricExportResult metrics = (await BackupHealth.ExportMetricsAsync(new MetricExportOptions { Repository = repo }, OperationContext.Default))!;
        Assert.Contains($"backup_damaged{{namespace=\"{ObjectFixture.Dir}\"}} 1", metrics.Text);
    }
}
