using PSBackup.Engine.Repository;
using PSBackup.Engine.Restore;
using PSBackup.Engine.Tests.Support;
using PSBackup.Engine.Wal;

namespace PSBackup.Engine.Tests.Snapshots;

/// <summary>Invoke-WalShip -Endpoint against a server implementing UnisonDB's <c>/wal/backup</c>
/// contract that hands out the shared fixtures' real v1 and v2 segments: every returned file is read
/// with the walfs reader before anything is archived, a damaged copy archives nothing, a repeat
/// ship finds nothing new, and a hole in what the server returns is a WAL gap. What was archived
/// is judged by UnisonDB's own reader (oracle <c>replay</c>).</summary>
public sealed class UnisonEndpointWalShipTests : IDisposable
{
    private const long SmallSegmentSize = 1048576;
    private readonly TestDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static OperationContext Context() => OperationContext.Default;

    [Theory]
    [InlineData("v1-small", false)]
    [InlineData("v2-small", true)]
    public async Task Sealed_segments_are_verified_archived_locally_and_a_repeat_ship_finds_nothing_new(string fixture, bool v2)
    {
        string data = UnisonOracle.CopyFixture(fixture, _dir.Combine("data"));
        await using var server = new UnisonTestServer(data, "users");
        WalShipResult first = await WalOperations.ShipAsync(new InvokeWalShipOptions(data, "users", "wal/archive") { Endpoint = server.Endpoint }, Context());

        string archive = Path.Combine(data, "backups", "users", "wal", "archive");
        Assert.Equal([1L, 2, 3, 4, 5], first.Backups.Select(b => b.SegmentId).ToArray());
        Assert.All(first.Backups, b => Assert.False(b.AlreadyPresent));
        foreach (ShippedSegment b in first.Backups)
        {
            Assert.Equal(Path.Combine(archive, $"{b.SegmentId:D9}.seg"), b.Path);
            Assert.Equal(File.ReadAllBytes(Path.Combine(data, "users", "wal", $"{b.SegmentId:D9}.seg")), File.ReadAllBytes(b.Path));
        }
        Assert.Contains(server.Requests, q => q.Contains("\"afterSegmentId\":0", StringComparison.Ordinal));
        AssertNoStagingLeft(data);

        // UnisonDB's reader accepts the archive: LSN 1..978 in segments 1..5. It runs on a copy:
        // opening a folder as a WAL lets walfs create its next active segment there.
        string judged = _dir.Combine("judged");
        Directory.CreateDirectory(judged);
        foreach (string f in Directory.GetFiles(archive))
        {
            File.Copy(f, Path.Combine(judged, Path.GetFileName(f)));
        }
        UnisonOracle.ReplayResult replay = UnisonOracle.Replay(judged, SmallSegmentSize, v2: v2);
        Assert.True(replay.ExitCode == 0, replay.ToString());
        Assert.Equal(978, replay.Count);
        Assert.Equal(978UL, replay.LastLsn);

        // Again: the archive's highest id is asked for, the server's 404 is "nothing new".
        WalShipResult again = await WalOperations.ShipAsync(new InvokeWalShipOptions(data, "users", "wal/archive") { Endpoint = server.Endpoint }, Context());
        Assert.Empty(again.Backups);
        Assert.True(server.Requests.Any(q => q.Contains("\"afterSegmentId\":5", StringComparison.Ordinal)), string.Join("\n", server.Requests));
        Assert.Equal(5, Directory.GetFiles(archive, "*.seg").Length);
        AssertNoStagingLeft(data);
    }

    [Fact]
    public async Task A_segment_with_a_flipped_byte_is_refused_and_nothing_is_archived_locally()
    {
        string data = UnisonOracle.CopyFixture("v1-small", _dir.Combine("data"));
        await using var server = new UnisonTestServer(data, "users") { CorruptSegmentId = 3 };
        IntegrityException e = await Assert.ThrowsAsync<IntegrityException>(() =>
            WalOperations.ShipAsync(new InvokeWalShipOptions(data, "users", "wal/archive") { Endpoint = server.Endpoint }, Context()));
        Assert.Equal("EndpointSegmentInvalid", e.ErrorId);
        Assert.Contains("Segment 3", e.Message, StringComparison.Ordinal);
        Assert.Contains("none was archived", e.Message, StringComparison.Ordinal);
        string archive = Path.Combine(data, "backups", "users", "wal", "archive");
        Assert.False(Directory.Exists(archive) && Directory.EnumerateFileSystemEntries(archive).Any(), "nothing may be archived");
        AssertNoStagingLeft(data);

        // The fault gone, the next ship archives everything (it asks from 0 again: nothing was kept).
        server.CorruptSegmentId = null;
        WalShipResult ok = await WalOperations.ShipAsync(new InvokeWalShipOptions(data, "users", "wal/archive") { Endpoint = server.Endpoint }, Context());
        Assert.Equal(5, ok.Backups.Count);
    }

    [Fact]
    public async Task Segments_the_server_no_longer_has_are_a_WAL_gap_and_nothing_is_archived()
    {
        string data = UnisonOracle.CopyFixture("v1-small", _dir.Combine("data"));
        string wal = Path.Combine(data, "users", "wal");
        string aside = _dir.Combine("aside");
        Directory.CreateDirectory(aside);
        foreach (int id in new[] { 3, 4, 5, 6 })
        {
            File.Move(Path.Combine(wal, $"{id:D9}.seg"), Path.Combine(aside, $"{id:D9}.seg"));
        }
        await using var server = new UnisonTestServer(data, "users");
        WalShipResult first = await WalOperations.ShipAsync(new InvokeWalShipOptions(data, "users", "archive") { Endpoint = server.Endpoint }, Context());
        Assert.Equal([1L, 2], first.Backups.Select(b => b.SegmentId).ToArray());

        // Segment 3 was deleted by the server's cleanup before it was archived; 4 and 5 are there.
        foreach (int id in new[] { 4, 5, 6 })
        {
            File.Move(Path.Combine(aside, $"{id:D9}.seg"), Path.Combine(wal, $"{id:D9}.seg"));
        }
        WalGapException gap = await Assert.ThrowsAsync<WalGapException>(() =>
            WalOperations.ShipAsync(new InvokeWalShipOptions(data, "users", "archive") { Endpoint = server.Endpoint }, Context()));
        Assert.Equal([3L], gap.MissingSegmentIds);
        Assert.Equal(new[] { "000000001.seg", "000000002.seg" }, Directory.GetFiles(Path.Combine(data, "backups", "users", "archive")).Select(f => Path.GetFileName(f)).Order(StringComparer.Ordinal).ToArray());
        AssertNoStagingLeft(data);
    }

    [Fact]
    public async Task Into_a_repository_a_flipped_byte_archives_nothing_and_a_repeat_ship_finds_nothing_new()
    {
        string data = UnisonOracle.CopyFixture("v1-small", _dir.Combine("data"));
        var repo = new RepositoryTarget { Location = _dir.Combine("repo") };
        await RepositoryOperations.InitializeAsync(new InitializeRepositoryOptions(repo) { Unencrypted = true }, Context());
        await using var server = new UnisonTestServer(data, "users") { CorruptSegmentId = 4 };

        IntegrityException e = await Assert.ThrowsAsync<IntegrityException>(() =>
            WalOperations.ShipAsync(new InvokeWalShipOptions(data, "users", null) { Endpoint = server.Endpoint, Repository = repo }, Context()));
        Assert.Equal("EndpointSegmentInvalid", e.ErrorId);
        long[] none = await ArchivedIds(repo);
        Assert.Empty(none);
        AssertNoStagingLeft(data);

        server.CorruptSegmentId = null;
        WalShipResult ok = await WalOperations.ShipAsync(new InvokeWalShipOptions(data, "users", null) { Endpoint = server.Endpoint, Repository = repo }, Context());
        Assert.Equal([1L, 2, 3, 4, 5], ok.Backups.Select(b => b.SegmentId).ToArray());
        long[] archived = await ArchivedIds(repo);
        Assert.Equal(new long[] { 1, 2, 3, 4, 5 }, archived);

        WalShipResult again = await WalOperations.ShipAsync(new InvokeWalShipOptions(data, "users", null) { Endpoint = server.Endpoint, Repository = repo }, Context());
        Assert.DoesNotContain(again.Backups, b => !b.AlreadyPresent);
        Assert.Contains(server.Requests, q => q.Contains("\"afterSegmentId\":5", StringComparison.Ordinal));
        AssertNoStagingLeft(data);
    }

    private static async Task<long[]> ArchivedIds(RepositoryTarget repo)
    {
        using RepositoryRestoreSource source = await RepositoryRestoreSource.OpenAsync(repo, "users", CancellationToken.None);
        return (await source.ListSegmentsAsync(CancellationToken.None)).Select(s => s.SegmentId).Order().ToArray();
    }

    private static void AssertNoStagingLeft(string data)
    {
        string root = Path.Combine(data, "backups", "users");
        Assert.Empty(Directory.Exists(root) ? Directory.GetDirectories(root, "*.tmp") : []);
    }
}
