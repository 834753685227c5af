using System.Collections.Concurrent;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Tests.Support;
using PSBackup.Engine.Wal;

namespace PSBackup.Engine.Tests.Wal;

/// <summary>Continuous shipping (<c>Invoke-WalShip -Continuous</c>, <c>wal ship --follow</c>) in
/// process against a real UnisonDB WAL grown by the oracle's gen: new records are shipped as
/// partials, a sealed segment as it seals, a storage outage is retried and recovered from, and
/// cancellation ends the follower cleanly. Every wait is for an event, with a deadline.</summary>
public sealed class WalFollowTests : IDisposable
{
    private const long SegmentSize = 1 << 20;
    private static readonly TimeSpan Deadline = TimeSpan.FromMinutes(2);
    private readonly TestDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static string Wal(string data) => Path.Combine(data, "users", "wal");

    private static void Grow(string data, long lastLsn, int records, int seed)
    {
        UnisonOracle.OracleRun gen = UnisonOracle.Run(UnisonOracle.V1, "gen", "-dir", Wal(data), "-seg-size", SegmentSize.ToString(),
            "-records", records.ToString(), "-sessions", "1", "-start-lsn", (lastLsn + 1).ToString(), "-seed", seed.ToString());
        Assert.True(gen.ExitCode == 0, gen.ToString());
    }

    /// <summary>Collects what a follower reports and lets a test wait for a condition on it.</summary>
    private sealed class Observer
    {
        private readonly object _gate = new();
        private readonly List<(Func<bool> Condition, TaskCompletionSource Done)> _waiters = [];
        public ConcurrentQueue<ShippedSegment> Shipped { get; } = new();
        public ConcurrentQueue<WalFollowStatus> Statuses { get; } = new();

        public void OnShipped(ShippedSegment s)
        {
            Shipped.Enqueue(s);
            Check();
        }

        public void OnStatus(WalFollowStatus s)
        {
            Statuses.Enqueue(s);
            Check();
        }

        private void Check()
        {
            lock (_gate)
            {
                foreach (var w in _waiters.Where(w => w.Condition()).ToList())
                {
                    w.Done.TrySetResult();
                    _waiters.Remove(w);
                }
            }
        }

        public async Task WaitFor(Func<bool> condition, string what)
        {
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_gate)
            {
                if (condition())
                {
                    return;
                }
                _waiters.Add((condition, done));
            }
            Task finished = await Task.WhenAny(done.Task, Task.Delay(Deadline));
            Assert.True(finished == done.Task, $"timed out waiting for {what}; shipped: {string.Join(", ", Shipped.Select(s => $"{s.SegmentId}{(s.Partial ? "p" : "")}@{s.LastLogIndex}"))}; statuses: {string.Join(" | ", Statuses.TakeLast(5))}");
        }
    }

    [Fact]
    public async Task A_follower_ships_new_records_as_partials_then_the_sealed_segment_and_stops_cleanly_when_cancelled()
    {
        string data = _dir.Combine("data");
        UnisonOracle.CopyFixture("v1-small", data);
        var repo = new RepositoryTarget { Location = _dir.Combine("repo") };
        await RepositoryOperations.InitializeAsync(new InitializeRepositoryOptions(repo) { Unencrypted = true }, OperationContext.Default);
        var seen = new Observer();
        using var stop = new CancellationTokenSource();
        Task follower = WalOperations.FollowAsync(new InvokeWalShipOptions(data, "users", null) { Repository = repo },
            new WalFollowOptions { Interval = TimeSpan.FromMilliseconds(100) }, seen.OnShipped, seen.OnStatus,
            new OperationContext { CancellationToken = stop.Token });

        await seen.WaitFor(() => seen.Shipped.Any(s => s.Partial && s.LastLogIndex == 1005), "the first partial");
        Assert.Equal([1L, 2, 3, 4, 5], seen.Shipped.Where(s => !s.Partial).Select(s => s.SegmentId));

        Grow(data, 1005, 5, seed: 3);
        await seen.WaitFor(() => seen.Shipped.Any(s => s.Partial && s.LastLogIndex == 1010), "a partial with the 5 new records");
        Assert.Contains(seen.Statuses, s => s.Shipped > 0 && s.Error is null && s.ArchivedLastLogIndex == 1010);

        long last = 1010;
        for (int round = 0; WalDirectory.List(Wal(data)).Segments[^1].Id == 6; round++)
        {
            Grow(data, last, 40, seed: 50 + round);
            last += 40;
        }
        long end = last;
        await seen.WaitFor(() => seen.Shipped.Any(s => !s.Partial && s.SegmentId == 6) && seen.Shipped.Any(s => s.LastLogIndex == end), "sealed segment 6 and a partial of 7 up to the end");

        stop.Cancel();
        Task ended = await Task.WhenAny(follower, Task.Delay(Deadline));
        Assert.True(ended == follower, "the follower did not stop after cancellation");
        await follower; // ends normally, not with an exception
        // Each item was shipped once: no partial of the same prefix twice.
        Assert.Equal(seen.Shipped.Count, seen.Shipped.Select(s => (s.SegmentId, s.Partial, s.LastLogIndex)).Distinct().Count());
        var check = await (await PSBackup.Engine.Repository.Repository.OpenAsync(new PSBackup.Engine.Storage.LocalBackend(repo.Location), RepositoryCredentials.None)).CheckAsync(readData: true);
        Assert.True(check.Ok, string.Join("; ", check.Errors));
        // Older partials were forgotten as newer ones were committed (UnisonDB payloads carry record
        // times), and their ref folders went with them: a listing walks only what exists.
        IReadOnlyList<RepositoryRef> refs = await (await PSBackup.Engine.Repository.Repository.OpenAsync(new PSBackup.Engine.Storage.LocalBackend(repo.Location), RepositoryCredentials.None)).ListRefsAsync("wal/users/");
        Assert.True(seen.Shipped.Count(s => s.Partial) > refs.Count(r => r.Name.Contains("_partial-", StringComparison.Ordinal)), "no partial was forgotten");
        Assert.Equal(refs.Select(r => r.Name).Distinct().Order(StringComparer.Ordinal),
            Directory.GetDirectories(Path.Combine(repo.Location, "refs", "wal", "users")).Select(d => "wal/users/" + Path.GetFileName(d)).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task A_storage_outage_is_retried_with_backoff_and_the_follower_recovers()
    {
        string data = _dir.Combine("data");
        UnisonOracle.CopyFixture("v1-small", data);
        string repoPath = _dir.Combine("repo");
        var repo = new RepositoryTarget { Location = repoPath };
        await RepositoryOperations.InitializeAsync(new InitializeRepositoryOptions(repo) { Unencrypted = true }, OperationContext.Default);
        var seen = new Observer();
        using var stop = new CancellationTokenSource();
        Task follower = WalOperations.FollowAsync(new InvokeWalShipOptions(data, "users", null) { Repository = repo },
            new WalFollowOptions { Interval = TimeSpan.FromMilliseconds(100), MaxBackoff = TimeSpan.FromMilliseconds(800) }, seen.OnShipped, seen.OnStatus,
            new OperationContext { CancellationToken = stop.Token });
        await seen.WaitFor(() => seen.Shipped.Any(s => s.Partial && s.LastLogIndex == 1005), "the first partial");

        // The repository becomes unreachable (a file where its folder was, so nothing can be
        // created there either): new records cannot be shipped.
        string away = repoPath + ".away";
        Directory.Move(repoPath, away);
        File.WriteAllText(repoPath, "not a repository");
        Grow(data, 1005, 4, seed: 9);
        await seen.WaitFor(() => seen.Statuses.Count(s => s.Error is not null) >= 3, "three failed attempts");
        var failures = seen.Statuses.Where(s => s.Error is not null).ToList();
        Assert.All(failures, f => Assert.True(f.RetryIn >= TimeSpan.FromMilliseconds(100) && f.RetryIn <= TimeSpan.FromMilliseconds(1200), $"retry in {f.RetryIn}"));
        Assert.All(failures, f => Assert.Equal(4, f.LagRecords));
        Assert.False(follower.IsCompleted);

        File.Delete(repoPath);
        Directory.Move(away, repoPath);
        await seen.WaitFor(() => seen.Shipped.Any(s => s.Partial && s.LastLogIndex == 1009), "the partial after recovery");
        stop.Cancel();
        await follower;
    }

    [Fact]
    public async Task A_repository_that_is_not_there_when_the_follower_starts_ends_it_at_once_and_nothing_is_created()
    {
        string data = _dir.Combine("data");
        UnisonOracle.CopyFixture("v1-small", data);
        string missing = _dir.Combine("no-such-repo");
        string empty = _dir.Combine("empty");
        Directory.CreateDirectory(empty);
        foreach ((string location, string says) in new[] { (missing, "does not exist"), (empty, "no repository") })
        {
            var seen = new Observer();
            Task follower = WalOperations.FollowAsync(new InvokeWalShipOptions(data, "users", null) { Repository = new RepositoryTarget { Location = location } },
                new WalFollowOptions { Interval = TimeSpan.FromMilliseconds(100) }, seen.OnShipped, seen.OnStatus, OperationContext.Default);
            Assert.True(await Task.WhenAny(follower, Task.Delay(Deadline)) == follower, "the follower kept retrying a repository that is not there");
            var e = await Assert.ThrowsAsync<NotFoundException>(() => follower);
            Assert.Equal("RepositoryNotFound", e.ErrorId);
            Assert.Contains(says, e.Message, StringComparison.Ordinal);
            Assert.Empty(seen.Shipped);
        }
        Assert.False(Path.Exists(missing));
        Assert.Empty(Directory.EnumerateFileSystemEntries(empty));
        Assert.False(Path.Exists(Path.Combine(data, "backups", "users", "wal")));
    }

    [Fact]
    public async Task Bad_input_ends_the_follower_at_once_with_a_typed_error()
    {
        string data = _dir.Combine("data");
        UnisonOracle.CopyFixture("v1-small", data);
        var options = new InvokeWalShipOptions(data, "users", "wal");
        await Assert.ThrowsAsync<InvalidInputException>(() => WalOperations.FollowAsync(options, new WalFollowOptions { Interval = TimeSpan.FromMilliseconds(10) }, _ => { }, null, OperationContext.Default));
        await Assert.ThrowsAsync<InvalidInputException>(() => WalOperations.FollowAsync(options with { SealedOnly = true }, new WalFollowOptions(), _ => { }, null, OperationContext.Default));
        await Assert.ThrowsAsync<InvalidInputException>(() => WalOperations.FollowAsync(options with { Namespace = "../x" }, new WalFollowOptions(), _ => { }, null, OperationContext.Default));
        Assert.False(Directory.Exists(Path.Combine(data, "backups", "users", "wal")));
    }
}
