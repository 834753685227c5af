using PSBackup.Engine.Repository;
using PSBackup.Engine.Retention;
using PSBackup.Engine.Storage;
using PSBackup.Engine.Tests.Support;
using PSBackup.Engine.Wal;

namespace PSBackup.Engine.Tests.Wal;

/// <summary>What the continuous shipper keeps between passes (<see cref="WalRepositorySession"/>):
/// driven pass by pass (no timers, no sleeps) over a walfs WAL that a real writer grows between
/// passes, rotating small segments. After N passes and after 4N passes the state it holds is the
/// same size (the index holds the newest partial's chunks, the refs what the namespace holds, one
/// full index read in all), nothing of an early pass is still reachable, a prune between passes is
/// noticed (the index is read again) and the repository checks clean with every record restorable.</summary>
public sealed class WalFollowSessionTests : IDisposable
{
    private const long SegmentSize = 64 * 1024;
    private readonly TestDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>Appends opaque records to the newest segment, sealing it and starting the next when full.</summary>
    private sealed class Writer(string walDir) : IDisposable
    {
        private readonly Random _random = new(7);
        private WalSegmentWriter? _segment;
        private long _segmentId;
        public long LastLogIndex { get; private set; }

        public void Append(int records)
        {
            for (int i = 0; i < records; i++)
            {
                byte[] payload = new byte[_random.Next(100, 2000)];
                _random.NextBytes(payload);
                if (_segment is null || !_segment.HasRoomFor(payload.Length))
                {
                    if (_segment is not null)
                    {
                        _segment.Seal(DateTimeOffset.UtcNow);
                        _segment.Dispose();
                    }
                    _segmentId++;
                    _segment = WalSegmentWriter.Create(Path.Combine(walDir, WalFormat.SegmentFileName(_segmentId, WalFormat.SegExtension)), LastLogIndex + 1,
                        DateTimeOffset.UtcNow, SegmentSize, 1, WalFormat.MarkerStandalone, writeSidecar: false);
                }
                _segment.Append(payload, ++LastLogIndex);
            }
            _segment!.Sync();
        }

        public void Dispose() => _segment?.Dispose();
    }

    private sealed class Follower(string data, RepositoryTarget target)
    {
        private long _after;
        public WalRepositorySession Session { get; } = new(target, "users");

        /// <summary>One pass; returns the newest log index it archived.</summary>
        public async Task<long> PassAsync()
        {
            var options = new InvokeWalShipOptions(data, "users", null) { Repository = target, AfterSegmentId = _after };
            WalShipResult result = await WalRepositoryShip.RunAsync(options, "users", Path.Combine(data, "users", "wal"), target, OperationContext.Default, new WalPassClock(), Session);
            _after = Math.Max(_after, result.Backups.Where(b => !b.Partial).Select(b => b.SegmentId).DefaultIfEmpty(0).Max());
            return result.Backups.Max(b => b.LastLogIndex ?? 0);
        }
    }

    /// <summary>The namespace's refs as a fresh reader sees them, less partials superseded by their sealed segment.</summary>
    private static async Task<int> LiveRefs(RepositoryTarget target)
    {
        using OpenRepository open = await RepositoryConnector.OpenAsync(target, CancellationToken.None, loadIndex: false);
        IReadOnlyList<RepositoryRef> refs = await open.Repository.ListRefsAsync("wal/users/");
        var sealedIds = refs.Select(r => r.Name["wal/users/".Length..]).Where(n => n.Length == 9).ToHashSet();
        return refs.Count(r => !(r.Name.Contains(WalPartialShip.RefMarker, StringComparison.Ordinal) && sealedIds.Contains(r.Name["wal/users/".Length..][..9])));
    }

    [Fact]
    public async Task Many_passes_hold_the_same_bounded_state_and_read_the_index_once()
    {
        string data = _dir.Combine("data");
        string walDir = Path.Combine(data, "users", "wal");
        Directory.CreateDirectory(walDir);
        var target = new RepositoryTarget { Location = _dir.Combine("repo") };
        await RepositoryOperations.InitializeAsync(new InitializeRepositoryOptions(target) { Unencrypted = true }, OperationContext.Default);
        using var writer = new Writer(walDir);
        var follower = new Follower(data, target);
        await using WalRepositorySession session = follower.Session;
        const int n = 30;

        async Task<WeakReference> Run(int passes)
        {
            WeakReference? first = null;
            for (int i = 0; i < passes; i++)
            {
                writer.Append(3 + (i % 5));
                Assert.Equal(writer.LastLogIndex, await follower.PassAsync());
                // What this pass holds for the next one: unreachable once later passes have replaced it.
                first ??= new WeakReference(session.NewestPartial(WalDirectory.List(walDir).Segments[^1].Id));
            }
            return first!;
        }

        WeakReference early = await Run(n);
        int chunksAtN = session.IndexedChunks;
        int refsAtN = session.CachedRefs;
        Assert.Equal(await LiveRefs(target), refsAtN);

        await Run(3 * n);
        Assert.True(WalDirectory.List(walDir).Segments.Count >= 8, "the writer should have rotated several segments");
        Assert.Equal(4 * n, session.Passes);
        Assert.Equal(1, session.IndexLoads); // no full index read per pass
        // The index held is the newest partial's chunks, whatever was committed before it.
        RepositoryManifest newest = session.NewestPartial(WalDirectory.List(walDir).Segments[^1].Id)!;
        Assert.Equal(newest.Files[0].Chunks.Distinct().Count(), session.IndexedChunks);
        Assert.True(session.IndexedChunks <= Math.Max(chunksAtN, 1) * 4 + 8, $"index held {session.IndexedChunks} chunks after {4 * n} passes, {chunksAtN} after {n}");
        // The refs held are what the namespace holds (one per sealed segment, the active one's
        // partials), not one per pass.
        Assert.Equal(await LiveRefs(target), session.CachedRefs);
        Assert.True(session.CachedRefs < 4 * n, $"{session.CachedRefs} refs held after {4 * n} passes");
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        Assert.False(early.IsAlive, "the first pass's partial manifest is still reachable");

        using var backend = new LocalBackend(target.Location);
        var check = await (await PSBackup.Engine.Repository.Repository.OpenAsync(backend, RepositoryCredentials.None)).CheckAsync(readData: true);
        Assert.True(check.Ok, string.Join("; ", check.Errors));
    }

    [Fact]
    public async Task A_new_segment_read_before_its_header_names_its_first_index_waits_for_the_next_pass_and_is_no_gap()
    {
        string data = _dir.Combine("data");
        string walDir = Path.Combine(data, "users", "wal");
        Directory.CreateDirectory(walDir);
        var target = new RepositoryTarget { Location = _dir.Combine("repo") };
        await RepositoryOperations.InitializeAsync(new InitializeRepositoryOptions(target) { Unencrypted = true }, OperationContext.Default);
        var follower = new Follower(data, target);
        await using WalRepositorySession session = follower.Session;
        byte[] payload = new byte[300];
        new Random(5).NextBytes(payload);

        using (WalSegmentWriter first = WalSegmentWriter.Create(Path.Combine(walDir, "000000001.seg"), 1, DateTimeOffset.UtcNow, SegmentSize, 1, WalFormat.MarkerStandalone, writeSidecar: false))
        {
            for (long i = 1; i <= 5; i++)
            {
                first.Append(payload, i);
            }
            first.Sync();
            Assert.Equal(5, await follower.PassAsync());
            first.Seal(DateTimeOffset.UtcNow);
        }
        // The next segment's first records are on disk, its header (walfs v1: FirstLogIndex 0 until
        // the header write that follows the first append) not yet rewritten.
        using WalSegmentWriter second = WalSegmentWriter.Create(Path.Combine(walDir, "000000002.seg"), 6, DateTimeOffset.UtcNow, SegmentSize, 1, WalFormat.MarkerStandalone, writeSidecar: false);
        second.Append(payload, 6);
        second.Append(payload, 7);
        var between = new InvokeWalShipOptions(data, "users", null) { Repository = target, AfterSegmentId = 1 };
        WalShipResult sealedOnly = await WalRepositoryShip.RunAsync(new InvokeWalShipOptions(data, "users", null) { Repository = target }, "users", walDir, target, OperationContext.Default, null, session);
        Assert.Contains(sealedOnly.Backups, b => !b.Partial && b.SegmentId == 1);
        Assert.DoesNotContain(sealedOnly.Backups, b => b.SegmentId == 2);
        Assert.False(Directory.Exists(Path.Combine(target.Location, "events")), "a WAL gap event was recorded for a header not yet written");

        second.Sync();
        WalShipResult next = await WalRepositoryShip.RunAsync(between, "users", walDir, target, OperationContext.Default, null, session);
        ShippedSegment partial = Assert.Single(next.Backups, b => b.Partial);
        Assert.Equal(2, partial.SegmentId);
        Assert.Equal(7, partial.LastLogIndex);
        Assert.Equal(2, partial.EntryCount);
    }

    [Fact]
    public async Task A_prune_between_passes_is_noticed_and_the_index_read_again()
    {
        string data = _dir.Combine("data");
        string walDir = Path.Combine(data, "users", "wal");
        Directory.CreateDirectory(walDir);
        var target = new RepositoryTarget { Location = _dir.Combine("repo") };
        await RepositoryOperations.InitializeAsync(new InitializeRepositoryOptions(target) { Unencrypted = true }, OperationContext.Default);
        // Another backup in the same repository, with packs of its own, removed later.
        string other;
        await using (OpenRepository open = await RepositoryConnector.OpenForWriteAsync(target, RepositoryLockMode.Shared, "test", OperationContext.Default))
        await using (BackupWriter backup = open.Repository.BeginBackup(new BackupInfo
        {
            Kind = BackupKind.StoreSnapshot,
            Namespace = "other",
            CreatedAt = DateTimeOffset.UtcNow,
            Wal = new WalPosition([1], 0, 0),
        }, TimeProvider.System))
        {
            byte[] content = new byte[200_000];
            new Random(3).NextBytes(content);
            await backup.AddFileAsync("db/unison.db", new MemoryStream(content), ChunkingProfile.Default, CancellationToken.None);
            other = (await backup.CommitAsync()).ManifestId;
        }
        using var writer = new Writer(walDir);
        var follower = new Follower(data, target);
        await using WalRepositorySession session = follower.Session;
        for (int i = 0; i < 25; i++)
        {
            writer.Append(6);
            Assert.Equal(writer.LastLogIndex, await follower.PassAsync());
        }
        Assert.Equal(1, session.IndexLoads);

        // A removal with prune between passes (no lock is held then): the other backup's packs are
        // reclaimed, and the index objects are replaced by one.
        IReadOnlyList<RetentionItem> pruned = await BackupRemoval.RemoveAsync(new RemoveBackupOptions
        {
            Repository = target,
            BackupIds = [other],
            Force = true,
            PackGracePeriod = TimeSpan.Zero,
        }, OperationContext.Default);
        Assert.Contains(pruned, p => p.Removed && p.Kind == RetentionItemKind.Pack);
        using (var backend = new LocalBackend(target.Location))
        {
            int indexObjects = 0;
            await foreach (StoredObject _ in backend.ListAsync(RepositoryLayout.IndexPrefix, CancellationToken.None))
            {
                indexObjects++;
            }
            Assert.Equal(1, indexObjects);
        }

        writer.Append(6);
        Assert.Equal(writer.LastLogIndex, await follower.PassAsync());
        Assert.Equal(2, session.IndexLoads);
        for (int i = 0; i < 5; i++)
        {
            writer.Append(6);
            Assert.Equal(writer.LastLogIndex, await follower.PassAsync());
        }
        Assert.Equal(2, session.IndexLoads);
        using var check2 = new LocalBackend(target.Location);
        var check = await (await PSBackup.Engine.Repository.Repository.OpenAsync(check2, RepositoryCredentials.None)).CheckAsync(readData: true);
        Assert.True(check.Ok, string.Join("; ", check.Errors));
    }
}
