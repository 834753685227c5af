using PSBackup.Engine.ObjectStore;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Storage;
using PSBackup.Engine.Tests.Support;
using PSBackup.Engine.Tests.Wal;
using PSBackup.Engine.Wal;
using Repo = PSBackup.Engine.Repository.Repository;

namespace PSBackup.Engine.Tests.Maintenance;

/// <summary>Get-Backup, Test-BackupRepository and Sync-BackupRepository through their engine operations.</summary>
public sealed class RepositoryMaintenanceTests : IDisposable
{
    private readonly TestDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private async Task<(string Path, (string Object, string Snapshot, string Segment) Ids)> RepoAsync(string name = "repo", string? passphrase = null)
    {
        string path = _dir.Combine(name);
        Directory.CreateDirectory(path);
        using var backend = new LocalBackend(path);
        return (path, await MaintenanceTestSupport.PopulateAsync(backend, passphrase));
    }

    private static RepositoryTarget Target(string location, string? passphrase = null) => new() { Location = location, Passphrase = passphrase };

    // ---------------------------------------------------------------- Get-Backup

    [Fact]
    public async Task List_returns_every_backup_newest_first_with_binding_properties()
    {
        var (path, ids) = await RepoAsync();
        IReadOnlyList<BackupRecord> all = await BackupCatalog.ListAsync(new GetBackupOptions { Repository = Target(path) }, OperationContext.Default);
        Assert.Equal([ids.Segment, ids.Snapshot, ids.Object], all.Select(r => r.BackupId));
        Assert.All(all, r => Assert.Equal(path, r.Repository));
        BackupRecord seg = all[0];
        Assert.Equal(BackupKind.WalSegment, seg.Kind);
        Assert.Equal("ns1", seg.Namespace);
        Assert.Equal(7, seg.SegmentId);
        Assert.Equal(101, seg.FirstLogIndex);
        Assert.True(seg.Sealed);
        Assert.Equal(70_000, seg.Bytes);
        BackupRecord obj = all[2];
        Assert.Equal(("tenant", "orders", "Stable", 2), (obj.Dir, obj.Object, obj.Consistency, obj.FileCount));
        // Time is the completion PITR compares; CreatedAt when it began.
        Assert.Equal(MaintenanceTestSupport.T0.AddMinutes(1), obj.Time);
        Assert.Equal((MaintenanceTestSupport.T0, MaintenanceTestSupport.T0.AddMinutes(1)), (obj.CreatedAt, obj.CompletedAt));
        Assert.Equal(MaintenanceTestSupport.T0.AddHours(1).AddMinutes(1), all[1].Time);
        // A sealed segment's time is its seal stamp (what PITR compares), not when it was shipped.
        Assert.Equal((MaintenanceTestSupport.T0.AddHours(2), MaintenanceTestSupport.T0.AddHours(2)), (seg.Time, seg.CompletedAt));
        Assert.Equal(118, all[1].Wal!.AppliedLogIndex);
    }

    [Fact]
    public async Task List_filters_by_namespace_kind_and_time()
    {
        var (path, ids) = await RepoAsync();
        async Task<string[]> Ids(GetBackupOptions o) =>
            (await BackupCatalog.ListAsync(o with { Repository = Target(path) }, OperationContext.Default)).Select(r => r.BackupId).ToArray();
        Assert.Equal([ids.Segment, ids.Snapshot], await Ids(new GetBackupOptions { Namespace = "ns1" }));
        Assert.Empty(await Ids(new GetBackupOptions { Namespace = "ns2" }));
        Assert.Equal([ids.Snapshot], await Ids(new GetBackupOptions { Kind = BackupKind.StoreSnapshot }));
        Assert.Equal([ids.Object], await Ids(new GetBackupOptions { Dir = "tenant", Object = "orders" }));
        DateTimeOffset t = MaintenanceTestSupport.T0;
        Assert.Equal([ids.Segment, ids.Snapshot], await Ids(new GetBackupOptions { After = t.AddHours(1) }));
        Assert.Equal([ids.Snapshot, ids.Object], await Ids(new GetBackupOptions { Before = t.AddHours(1).AddMinutes(1) }));
        Assert.Equal([ids.Object], await Ids(new GetBackupOptions { Before = t.AddHours(1) }));
        Assert.Equal([ids.Snapshot], await Ids(new GetBackupOptions { After = t.AddMinutes(30), Before = t.AddMinutes(90) }));
    }

    [Fact]
    public async Task List_refuses_no_source_two_sources_and_an_empty_time_range()
    {
        var none = await Assert.ThrowsAsync<InvalidInputException>(() => BackupCatalog.ListAsync(new GetBackupOptions(), OperationContext.Default));
        Assert.Equal("AmbiguousBackupSource", none.ErrorId);
        var two = await Assert.ThrowsAsync<InvalidInputException>(() =>
            BackupCatalog.ListAsync(new GetBackupOptions { Repository = Target(_dir.Path), DataDir = _dir.Path, Namespace = "ns1" }, OperationContext.Default));
        Assert.Equal("AmbiguousBackupSource", two.ErrorId);
        var range = await Assert.ThrowsAsync<InvalidInputException>(() => BackupCatalog.ListAsync(
            new GetBackupOptions { Repository = Target(_dir.Path), After = MaintenanceTestSupport.T0, Before = MaintenanceTestSupport.T0.AddDays(-1) }, OperationContext.Default));
        Assert.Equal("InvalidTimeRange", range.ErrorId);
    }

    [Fact]
    public async Task List_names_bad_names_missing_repositories_and_wrong_keys()
    {
        var (path, _) = await RepoAsync(passphrase: "right horse battery");
        var name = await Assert.ThrowsAsync<InvalidInputException>(() =>
            BackupCatalog.ListAsync(new GetBackupOptions { Repository = Target(path), Namespace = "../etc" }, OperationContext.Default));
        Assert.Equal("InvalidName", name.ErrorId);
        var missing = await Assert.ThrowsAsync<NotFoundException>(() =>
            BackupCatalog.ListAsync(new GetBackupOptions { Repository = Target(_dir.Path) }, OperationContext.Default));
        Assert.Equal("RepositoryNotFound", missing.ErrorId);
        await Assert.ThrowsAsync<RepositoryKeyException>(() =>
            BackupCatalog.ListAsync(new GetBackupOptions { Repository = Target(path, "wrong") }, OperationContext.Default));
        Assert.Equal(3, (await BackupCatalog.ListAsync(new GetBackupOptions { Repository = Target(path, "right horse battery") }, OperationContext.Default)).Count);
    }

    [Fact]
    public async Task List_reads_a_namespaces_local_snapshots_and_shipped_segments()
    {
        string dataDir = _dir.Combine("data");
        string root = Path.Combine(dataDir, "backups", "ns1");
        Directory.CreateDirectory(Path.Combine(root, "snapshots"));
        Directory.CreateDirectory(Path.Combine(root, "wal", "archive"));
        File.WriteAllBytes(Path.Combine(root, "snapshots", "s1.db"), new byte[1000]);
        await ManifestIO.WriteAsync(Path.Combine(root, "snapshots", "s1.db.manifest.json"), new BackupManifest
        {
            Kind = "snapshot", CreatedAt = MaintenanceTestSupport.T0, Source = "x", Wal = new WalPosition([1], 10, 9),
            Files = [new ManifestFile("s1.db", 1000, new string('a', 64))],
        }, CancellationToken.None);
        WalTestData.WriteSegment(Path.Combine(root, "wal", "archive", WalFormat.SegmentFileName(3)), 21, WalTestData.Payloads(5, 3), seal: true);
        File.WriteAllBytes(Path.Combine(root, "wal", "archive", "000000004.wal.tmp"), new byte[10]); // transient: never listed
        File.WriteAllBytes(Path.Combine(root, "snapshots", "s2.db.tmp"), new byte[10]);

        IReadOnlyList<BackupRecord> all = await BackupCatalog.ListAsync(new GetBackupOptions { DataDir = dataDir, Namespace = "ns1" }, OperationContext.Default);
        Assert.Equal(2, all.Count);
        BackupRecord snap = Assert.Single(all, r => r.Kind == BackupKind.StoreSnapshot);
        Assert.Equal(("snapshots/s1.db", 1000L, true, 9L), (snap.BackupId, snap.Bytes, snap.Complete, snap.Wal!.AppliedLogIndex!.Value));
        Assert.Null(snap.Repository);
        BackupRecord seg = Assert.Single(all, r => r.Kind == BackupKind.WalSegment);
        Assert.Equal((3L, 21L, 5L, true), (seg.SegmentId!.Value, seg.FirstLogIndex!.Value, seg.EntryCount!.Value, seg.Sealed!.Value));
        Assert.Equal("wal/archive/000000003.wal", seg.BackupId);
        Assert.Equal(WalTestData.SealedAt, seg.Time);
        Assert.Single(await BackupCatalog.ListAsync(new GetBackupOptions { DataDir = dataDir, Namespace = "ns1", Kind = BackupKind.WalSegment }, OperationContext.Default));
        Assert.Empty(await BackupCatalog.ListAsync(new GetBackupOptions { DataDir = dataDir, Namespace = "other" }, OperationContext.Default));
        var noNs = await Assert.ThrowsAsync<InvalidInputException>(() => BackupCatalog.ListAsync(new GetBackupOptions { DataDir = dataDir }, OperationContext.Default));
        Assert.Equal("NamespaceRequired", noNs.ErrorId);
    }

    [Fact]
    public async Task List_reads_local_object_backups_and_marks_one_without_manifest_incomplete()
    {
        string dbRoot = _dir.Combine("db");
        string tenant = Path.Combine(dbRoot, "acme");
        Directory.CreateDirectory(Path.Combine(tenant, "orders"));
        string done = Path.Combine(tenant, "orders.backup-20260301T120000");
        Directory.CreateDirectory(Path.Combine(done, "data"));
        File.WriteAllBytes(Path.Combine(done, "data", "000.bin"), new byte[500]);
        await ManifestIO.WriteAsync(done + ObjectLayout.ManifestSuffix, new BackupManifest
        {
            Kind = "object", CreatedAt = MaintenanceTestSupport.T0, Source = "x", Consistency = "Stable",
            Files = [new ManifestFile("data/000.bin", 500, new string('b', 64))],
        }, CancellationToken.None);
        string partial = Path.Combine(tenant, "orders.backup-20260302T120000");
        Directory.CreateDirectory(partial);
        File.WriteAllBytes(Path.Combine(partial, "fields.conf"), new byte[7]);
        Directory.CreateDirectory(Path.Combine(tenant, "orders.backup-20260303T120000.abc123.tmp")); // a run in progress: not a backup yet
        Directory.CreateDirectory(Path.Combine(tenant, "users.backup-20260301T120000"));

        IReadOnlyList<BackupRecord> orders = await BackupCatalog.ListAsync(new GetBackupOptions { DbRoot = dbRoot, Dir = "acme", Object = "orders" }, OperationContext.Default);
        Assert.Equal(["orders.backup-20260302T120000", "orders.backup-20260301T120000"], orders.Select(r => r.BackupName));
        Assert.False(orders[0].Complete);
        Assert.Equal((1, 7L), (orders[0].FileCount, orders[0].Bytes));
        Assert.True(orders[1].Complete);
        Assert.Equal(("Stable", 500L, dbRoot), (orders[1].Consistency, orders[1].Bytes, orders[1].DbRoot));
        Assert.Equal(3, (await BackupCatalog.ListAsync(new GetBackupOptions { DbRoot = dbRoot, Dir = "acme" }, OperationContext.Default)).Count);
        var missing = await Assert.ThrowsAsync<NotFoundException>(() => BackupCatalog.ListAsync(new GetBackupOptions { DbRoot = dbRoot, Dir = "nobody" }, OperationContext.Default));
        Assert.Equal("DirNotFound", missing.ErrorId);
        var noDir = await Assert.ThrowsAsync<InvalidInputException>(() => BackupCatalog.ListAsync(new GetBackupOptions { DbRoot = dbRoot }, OperationContext.Default));
        Assert.Equal("DirRequired", noDir.ErrorId);
    }

    // ---------------------------------------------------------------- Test-BackupRepository

    [Fact]
    public async Task Check_passes_a_sound_repository_and_counts_what_it_read()
    {
        var (path, _) = await RepoAsync();
        RepositoryCheckResult r = await RepositoryCheckOperation.CheckAsync(new TestBackupRepositoryOptions(Target(path)) { ReadData = true }, OperationContext.Default);
        Assert.True(r.Passed, string.Join("; ", r.Errors.Select(e => e.Message)));
        Assert.Equal(3, r.Backups);
        Assert.Equal(1, r.Refs);
        Assert.True(r.Packs > 0 && r.BytesRead > 0 && r.StoredBytes >= r.BytesRead);
        RepositoryCheckResult quick = await RepositoryCheckOperation.CheckAsync(new TestBackupRepositoryOptions(Target(path)), OperationContext.Default);
        Assert.True(quick.Passed);
        Assert.Equal(0, quick.BytesRead);
    }

    [Fact]
    public async Task Check_with_read_data_names_the_backup_and_file_of_a_flipped_pack_byte()
    {
        var (path, ids) = await RepoAsync();
        string pack = Directory.GetFiles(Path.Combine(path, "packs"), "*", SearchOption.AllDirectories).OrderBy(p => p, StringComparer.Ordinal).First();
        MaintenanceTestSupport.FlipByte(pack, 100);
        RepositoryCheckResult quick = await RepositoryCheckOperation.CheckAsync(new TestBackupRepositoryOptions(Target(path)), OperationContext.Default);
        Assert.True(quick.Passed); // structure alone cannot see a flipped data byte
        RepositoryCheckResult r = await RepositoryCheckOperation.CheckAsync(new TestBackupRepositoryOptions(Target(path)) { ReadData = true }, OperationContext.Default);
        Assert.False(r.Passed);
        Assert.Contains(r.Errors, e => e.Code == "PackCorrupt" && e.ObjectKey!.EndsWith(Path.GetFileName(pack), StringComparison.Ordinal));
        RepositoryCheckFinding data = Assert.Single(r.Errors, e => e.Code == "DataCorrupt" && e.BackupId is not null);
        Assert.Contains(data.BackupId, new[] { ids.Object, ids.Snapshot, ids.Segment });
        Assert.NotNull(data.File);
        Assert.Contains(data.BackupId!, data.Message);
    }

    [Fact]
    public async Task Check_names_a_damaged_manifest_and_refuses_a_missing_repository()
    {
        var (path, ids) = await RepoAsync();
        MaintenanceTestSupport.FlipByte(Path.Combine(path, "snapshots", ids.Snapshot), 20);
        RepositoryCheckResult r = await RepositoryCheckOperation.CheckAsync(new TestBackupRepositoryOptions(Target(path)), OperationContext.Default);
        Assert.False(r.Passed);
        RepositoryCheckFinding e = Assert.Single(r.Errors);
        Assert.Equal((ids.Snapshot, "snapshots/" + ids.Snapshot), (e.BackupId, e.ObjectKey));
        await Assert.ThrowsAsync<NotFoundException>(() => RepositoryCheckOperation.CheckAsync(new TestBackupRepositoryOptions(Target(_dir.Combine("nothing-here"))), OperationContext.Default));
    }

    // ---------------------------------------------------------------- Sync-BackupRepository

    [Fact]
    public async Task Sync_copies_everything_into_an_empty_folder_then_only_what_is_missing()
    {
        var (src, ids) = await RepoAsync("src");
        string dst = _dir.Combine("dst"); // does not exist yet: created
        SyncResult first = await RepositorySync.SyncAsync(new SyncBackupRepositoryOptions(Target(src), Target(dst)), OperationContext.Default);
        Assert.Equal("Repository", first.Mode);
        Assert.Equal(0, first.Skipped);
        using (var s = new LocalBackend(src))
        using (var d = new LocalBackend(dst))
        {
            Assert.Equal(await MaintenanceTestSupport.ListingAsync(s), await MaintenanceTestSupport.ListingAsync(d));
            Assert.Equal((await MaintenanceTestSupport.ListingAsync(s)).Count, first.Copied);
        }
        SyncResult again = await RepositorySync.SyncAsync(new SyncBackupRepositoryOptions(Target(src), Target(dst)), OperationContext.Default);
        Assert.Equal((0, first.Copied, first.CopiedBytes), (again.Copied, again.Skipped, again.SkippedBytes));

        // A new backup at the source: only its objects travel.
        using (var s = new LocalBackend(src))
        {
            Repo repo = await Repo.OpenAsync(s, RepositoryCredentials.None);
            await Tests.Repository.RepositoryTestSupport.BackupAsync(repo, [("x.bin", Tests.Repository.RepositoryTestSupport.Data(50_000, 9))]);
        }
        SyncResult third = await RepositorySync.SyncAsync(new SyncBackupRepositoryOptions(Target(src), Target(dst)), OperationContext.Default);
        Assert.Equal(3, third.Copied); // one pack, one index object, one manifest
        RepositoryCheckResult check = await RepositoryCheckOperation.CheckAsync(new TestBackupRepositoryOptions(Target(dst)) { ReadData = true }, OperationContext.Default);
        Assert.True(check.Passed);
        Assert.Equal(4, check.Backups);
        Assert.Equal(ids.Object, (await BackupCatalog.ListAsync(new GetBackupOptions { Repository = Target(dst), Kind = BackupKind.Object, Dir = "tenant" }, OperationContext.Default)).Last().BackupId);
    }

    [Fact]
    public async Task Sync_refuses_a_destination_holding_another_repository_or_other_data_and_writes_nothing()
    {
        var (src, _) = await RepoAsync("src");
        var (other, _) = await RepoAsync("other");
        SortedDictionary<string, string> before;
        using (var o = new LocalBackend(other))
        {
            before = await MaintenanceTestSupport.ListingAsync(o);
        }
        var e = await Assert.ThrowsAsync<ConflictException>(() => RepositorySync.SyncAsync(new SyncBackupRepositoryOptions(Target(src), Target(other)), OperationContext.Default));
        Assert.Equal("DifferentRepository", e.ErrorId);
        Assert.Contains("different repository", e.Message);
        using (var o = new LocalBackend(other))
        {
            Assert.Equal(before, await MaintenanceTestSupport.ListingAsync(o));
        }
        string junk = _dir.Combine("junk");
        Directory.CreateDirectory(junk);
        File.WriteAllText(Path.Combine(junk, "notes.txt"), "mine");
        var j = await Assert.ThrowsAsync<ConflictException>(() => RepositorySync.SyncAsync(new SyncBackupRepositoryOptions(Target(src), Target(junk)), OperationContext.Default));
        Assert.Equal("DestinationNotEmpty", j.ErrorId);
        Assert.Single(Directory.GetFileSystemEntries(junk));
        var same = await Assert.ThrowsAsync<InvalidInputException>(() => RepositorySync.SyncAsync(new SyncBackupRepositoryOptions(Target(src), Target(src + "/")), OperationContext.Default));
        Assert.Equal("SameSyncTarget", same.ErrorId);
    }

    [Fact]
    public async Task Sync_what_if_lists_every_object_and_writes_nothing()
    {
        var (src, _) = await RepoAsync("src");
        string dst = _dir.Combine("dst");
        var asked = new List<string>();
        var ctx = new OperationContext { ShouldProcess = (target, _) => { asked.Add(target); return false; } };
        SyncResult r = await RepositorySync.SyncAsync(new SyncBackupRepositoryOptions(Target(src), Target(dst)), ctx);
        Assert.False(Directory.Exists(dst));
        Assert.Equal(0, r.Copied);
        using var s = new LocalBackend(src);
        int objects = (await MaintenanceTestSupport.ListingAsync(s)).Count;
        Assert.Equal(objects, r.Declined);
        Assert.Equal(objects + 1, asked.Count); // + creating the destination folder
        Assert.Contains(asked, a => a.EndsWith("/config", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Sync_stops_before_the_index_when_a_source_pack_is_damaged_so_the_destination_stays_valid()
    {
        var (src, _) = await RepoAsync("src");
        string pack = Directory.GetFiles(Path.Combine(src, "packs"), "*", SearchOption.AllDirectories).OrderBy(p => p, StringComparer.Ordinal).Last();
        MaintenanceTestSupport.FlipByte(pack, 10);
        string dst = _dir.Combine("dst");
        var e = await Assert.ThrowsAsync<RepositoryIntegrityException>(() => RepositorySync.SyncAsync(new SyncBackupRepositoryOptions(Target(src), Target(dst)), OperationContext.Default));
        Assert.Equal("SyncSourceCorrupt", e.ErrorId);
        Assert.Contains(Path.GetFileName(pack), e.Message);
        Assert.False(File.Exists(Path.Combine(dst, "packs", Path.GetFileName(pack)[..2], Path.GetFileName(pack))));
        Assert.False(Directory.Exists(Path.Combine(dst, "index")));
        Assert.False(Directory.Exists(Path.Combine(dst, "snapshots")));
        RepositoryCheckResult check = await RepositoryCheckOperation.CheckAsync(new TestBackupRepositoryOptions(Target(dst)), OperationContext.Default);
        Assert.True(check.Passed); // only unreferenced packs: warnings
    }

    [Fact]
    public async Task Sync_skips_a_damaged_manifest_when_it_can_parse_and_never_ships_stray_or_temp_objects()
    {
        var (src, ids) = await RepoAsync("src");
        File.WriteAllText(Path.Combine(src, "snapshots", ".psb-0123456789abcdef0123456789abcdef.tmp"), "half-written");
        File.WriteAllText(Path.Combine(src, "index", "notes.new"), "x");
        string dst = _dir.Combine("dst");
        SyncResult ok = await RepositorySync.SyncAsync(new SyncBackupRepositoryOptions(Target(src), Target(dst)), OperationContext.Default);
        Assert.Equal(1, ok.Ignored); // notes.new; the backend itself never lists its temp files
        Assert.False(File.Exists(Path.Combine(dst, "index", "notes.new")));
        Assert.Empty(Directory.GetFiles(dst, ".psb-*", SearchOption.AllDirectories));

        // A manifest whose bytes were replaced consistently (hash = name) but that does not decode.
        string dst2 = _dir.Combine("dst2");
        byte[] junk = "not a zstd frame"u8.ToArray();
        string junkId = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(junk)).ToLowerInvariant();
        File.WriteAllBytes(Path.Combine(src, "snapshots", junkId), junk);
        // Issue 12: one damaged manifest no longer stops the sync; it (and any ref naming it) is never
        // copied, everything else is, and the result names it (the front ends then fail with exit 4).
        SyncResult partial = await RepositorySync.SyncAsync(new SyncBackupRepositoryOptions(Target(src), Target(dst2)), OperationContext.Default);
        Assert.Contains(junkId, Assert.Single(partial.DamagedSkipped));
        Assert.Equal("SyncSkippedDamaged", RepositorySync.DamagedError(partial).ErrorId);
        Assert.True(File.Exists(Path.Combine(dst2, "snapshots", ids.Snapshot)));
        Assert.False(File.Exists(Path.Combine(dst2, "snapshots", junkId)));
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(dst2, "refs"), "*", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task Sync_replicates_an_encrypted_repository_without_its_key()
    {
        var (src, ids) = await RepoAsync("src", passphrase: "correct horse");
        string dst = _dir.Combine("dst");
        SyncResult r = await RepositorySync.SyncAsync(new SyncBackupRepositoryOptions(Target(src), Target(dst)), OperationContext.Default);
        Assert.True(r.Copied > 0);
        Assert.True(Directory.GetFiles(Path.Combine(dst, "keys")).Length == 1);
        IReadOnlyList<BackupRecord> list = await BackupCatalog.ListAsync(new GetBackupOptions { Repository = Target(dst, "correct horse") }, OperationContext.Default);
        Assert.Equal(3, list.Count);
        using var d = new LocalBackend(dst);
        Repo repo = await Repo.OpenAsync(d, RepositoryCredentials.FromPassphrase("correct horse"));
        RepositoryManifest m = await repo.ReadManifestAsync(ids.Segment);
        Assert.Equal(Tests.Repository.RepositoryTestSupport.Data(70_000, 3), await Tests.Repository.RepositoryTestSupport.RestoreBytesAsync(repo, m, "wal/000000007.wal"));
    }

    [Fact]
    public async Task Sync_resumes_after_an_interruption_between_phases()
    {
        var (src, _) = await RepoAsync("src");
        string dst = _dir.Combine("dst");
        // Interrupt: the first index object copy is refused by a ShouldProcess that cancels the run.
        using var cts = new CancellationTokenSource();
        var ctx = new OperationContext
        {
            CancellationToken = cts.Token,
            ShouldProcess = (target, _) =>
            {
                if (target.Contains("/index/", StringComparison.Ordinal))
                {
                    cts.Cancel();
                }
                return true;
            },
        };
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => RepositorySync.SyncAsync(new SyncBackupRepositoryOptions(Target(src), Target(dst)), ctx));
        Assert.True(File.Exists(Path.Combine(dst, "config")));
        Assert.True((await RepositoryCheckOperation.CheckAsync(new TestBackupRepositoryOptions(Target(dst)), OperationContext.Default)).Passed);
        SyncResult rest = await RepositorySync.SyncAsync(new SyncBackupRepositoryOptions(Target(src), Target(dst)), OperationContext.Default);
        Assert.True(rest.Copied > 0 && rest.Skipped > 0);
        Assert.True((await RepositoryCheckOperation.CheckAsync(new TestBackupRepositoryOptions(Target(dst)) { ReadData = true }, OperationContext.Default)).Passed);
    }

    [Fact]
    public async Task Sync_copies_a_plain_backup_root_skipping_transient_artifacts_and_only_what_differs()
    {
        string root = _dir.Combine("backups");
        Directory.CreateDirectory(Path.Combine(root, "ns1", "wal"));
        File.WriteAllBytes(Path.Combine(root, "ns1", "wal", "000000001.wal"), Tests.Repository.RepositoryTestSupport.Data(40_000, 1));
        File.WriteAllBytes(Path.Combine(root, "ns1", "snap.db"), Tests.Repository.RepositoryTestSupport.Data(30_000, 2));
        File.WriteAllText(Path.Combine(root, "ns1", "snap.db.manifest.json"), "{}");
        File.WriteAllBytes(Path.Combine(root, "ns1", "wal", "000000002.wal.new"), new byte[10]);
        File.WriteAllBytes(Path.Combine(root, "ns1", "snap2.db.tmp"), new byte[10]);
        Directory.CreateDirectory(Path.Combine(root, "ns1", "obj.backup-20260101T000000.x1.tmp"));
        File.WriteAllBytes(Path.Combine(root, "ns1", "obj.backup-20260101T000000.x1.tmp", "f"), new byte[10]);
        string dst = _dir.Combine("offsite");
        var order = new List<string>();
        var ctx = new OperationContext { ShouldProcess = (t, _) => { lock (order) { order.Add(t); } return true; } };
        SyncResult r = await RepositorySync.SyncAsync(new SyncBackupRepositoryOptions(Target(root), Target(dst)), ctx);
        Assert.Equal(("Folder", 3, 0, 3), (r.Mode, r.Copied, r.Skipped, r.Ignored));
        Assert.EndsWith("snap.db.manifest.json", order.Last()); // the manifest, the commit marker, goes last
        Assert.Equal(["ns1/snap.db", "ns1/snap.db.manifest.json", "ns1/wal/000000001.wal"],
            Directory.GetFiles(dst, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(dst, f).Replace('\\', '/')).Order(StringComparer.Ordinal));

        File.WriteAllBytes(Path.Combine(root, "ns1", "snap.db"), Tests.Repository.RepositoryTestSupport.Data(30_000, 3)); // same size, other bytes
        SyncResult again = await RepositorySync.SyncAsync(new SyncBackupRepositoryOptions(Target(root), Target(dst)), OperationContext.Default);
        Assert.Equal((1, 2), (again.Copied, again.Skipped));
        Assert.Equal(File.ReadAllBytes(Path.Combine(root, "ns1", "snap.db")), File.ReadAllBytes(Path.Combine(dst, "ns1", "snap.db")));
    }
}
