using System.Runtime.CompilerServices;
using PSBackup.Engine.Storage;
using PSBackup.Engine.Tests.Support;

namespace PSBackup.Engine.Tests.Storage;

/// <summary>The retry wrapper over a real folder backend with injected faults; waits are
/// recorded instead of slept.</summary>
public sealed class RetryingBackendTests : IDisposable
{
    private readonly TestDirectory _dir = new();
    private readonly List<TimeSpan> _waits = [];
    private readonly FaultInjectingBackend _faults;
    private readonly RetryingBackend _backend;

    public RetryingBackendTests()
    {
        _faults = new FaultInjectingBackend(new LocalBackend(_dir.Path));
        _backend = new RetryingBackend(_faults, Policy());
    }

    private StorageRetryPolicy Policy(int attempts = 4, TimeSpan? total = null) => new()
    {
        MaxAttempts = attempts,
        BaseDelay = TimeSpan.FromMilliseconds(100),
        MaxDelay = TimeSpan.FromSeconds(1),
        MaxTotal = total ?? TimeSpan.FromMinutes(1),
        NextJitter = () => 0.5,
        Delay = (wait, _) =>
        {
            lock (_waits)
            {
                _waits.Add(wait);
            }
            return Task.CompletedTask;
        },
    };

    public static TheoryData<string> TransientFaults() => ["io", "http", "timeout", "s3-503"];

    private static Exception Make(string kind) => kind switch
    {
        "io" => new IOException("connection reset (test)"),
        "http" => new HttpRequestException("bad gateway (test)"),
        "timeout" => new TimeoutException("timed out (test)"),
        "s3-503" => new StorageIOException("SlowDown (test)", "k", "s3://b", isTransient: true, statusCode: 503, errorCode: "SlowDown"),
        "s3-400" => new StorageIOException("bad request (test)", "k", "s3://b", isTransient: false, statusCode: 400),
        "notfound" => new StorageNotFoundException("k", "s3://b"),
        "auth" => new OperationFailedException("S3AccessDenied", "check credentials (test)"),
        "argument" => new ArgumentException("bad (test)"),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    [Theory]
    [MemberData(nameof(TransientFaults))]
    public async Task Transient_faults_are_retried_until_success(string kind)
    {
        byte[] data = TestData.Bytes(1000);
        _faults.FailCalls(StorageOperation.Put, 1, 2, () => Make(kind)).FailCall(StorageOperation.Get, 1, () => Make(kind));

        await _backend.PutAsync("k", new MemoryStream(data), data.Length, CancellationToken.None);
        byte[] back = await TestData.ReadAllAsync(await _backend.GetAsync("k", CancellationToken.None));

        Assert.Equal(data, back);
        Assert.Equal(3, _faults.Calls(StorageOperation.Put));
        Assert.Equal(2, _faults.Calls(StorageOperation.Get));
        Assert.Equal([TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(50)], _waits);
    }

    [Theory]
    [InlineData("s3-400")]
    [InlineData("notfound")]
    [InlineData("auth")]
    [InlineData("argument")]
    public async Task Permanent_faults_are_not_retried(string kind)
    {
        _faults.FailCall(StorageOperation.Stat, 1, () => Make(kind));

        Exception e = await Assert.ThrowsAnyAsync<Exception>(() => _backend.StatAsync("k", CancellationToken.None));

        Assert.Equal(Make(kind).GetType(), e.GetType());
        Assert.Equal(1, _faults.Calls(StorageOperation.Stat));
        Assert.Empty(_waits);
    }

    [Fact]
    public async Task Not_found_from_the_real_backend_is_not_retried()
    {
        await Assert.ThrowsAsync<StorageNotFoundException>(() => _backend.GetAsync("missing", CancellationToken.None));
        Assert.Equal(1, _faults.Calls(StorageOperation.Get));
    }

    [Fact]
    public async Task A_put_from_a_non_seekable_stream_is_not_retried()
    {
        _faults.FailCall(StorageOperation.Put, 1, () => Make("io"));

        await Assert.ThrowsAsync<IOException>(() =>
            _backend.PutAsync("k", ScriptedStream.Over(TestData.Bytes(100), seekable: false), 100, CancellationToken.None));

        Assert.Equal(1, _faults.Calls(StorageOperation.Put));
        Assert.Null(await _backend.StatAsync("k", CancellationToken.None));
    }

    [Fact]
    public async Task A_retried_put_rewinds_to_the_callers_start_position()
    {
        byte[] data = TestData.Bytes(10_000);
        // The source itself fails once half-way (a transient read error), after the inner put
        // has consumed bytes; the retry must start again at position 1000, not 0 or 5500.
        var source = new ScriptedStream(new MemoryStream(data), true, 5500, () => throw new IOException("flaky read (test)")) { Once = true };
        source.Position = 1000;

        await _backend.PutAsync("k", source, 9000, CancellationToken.None);

        Assert.Equal(data[1000..], await TestData.ReadAllAsync(await _backend.GetAsync("k", CancellationToken.None)));
        Assert.Equal(2, _faults.Calls(StorageOperation.Put));
    }

    [Fact]
    public async Task Attempts_are_bounded()
    {
        _faults.FailCalls(StorageOperation.Delete, 1, 10, () => Make("io"));

        await Assert.ThrowsAsync<IOException>(() => _backend.DeleteAsync("k", CancellationToken.None));

        Assert.Equal(4, _faults.Calls(StorageOperation.Delete));
        Assert.Equal(3, _waits.Count);
    }

    [Fact]
    public async Task Total_time_is_bounded()
    {
        using var backend = new RetryingBackend(_faults, Policy(attempts: 100, total: TimeSpan.FromMilliseconds(120)));
        _faults.FailCalls(StorageOperation.Delete, 1, 100, () => Make("io"));

        await Assert.ThrowsAsync<IOException>(() => backend.DeleteAsync("k", CancellationToken.None));

        // waits of 50 and 100 ms: the third attempt starts at 150 ms > 120 ms, so no fourth
        Assert.Equal(3, _faults.Calls(StorageOperation.Delete));
    }

    [Fact]
    public void Backoff_doubles_up_to_the_cap_with_full_jitter()
    {
        var policy = Policy() with { NextJitter = () => 1.0 };
        Assert.Equal(
            [100, 200, 400, 800, 1000, 1000],
            Enumerable.Range(1, 6).Select(a => (int)policy.BackoffAfter(a).TotalMilliseconds));
        Assert.Equal(TimeSpan.Zero, (policy with { NextJitter = () => 0 }).BackoffAfter(3));
    }

    [Fact]
    public async Task The_callers_cancellation_is_not_retried()
    {
        using var cts = new CancellationTokenSource();
        _faults.FailCall(StorageOperation.Stat, 1, () =>
        {
            cts.Cancel();
            return new OperationCanceledException(cts.Token);
        });

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => _backend.StatAsync("k", cts.Token));
        Assert.Equal(1, _faults.Calls(StorageOperation.Stat));
    }

    [Fact]
    public async Task A_listing_that_fails_part_way_resumes_after_the_last_key()
    {
        foreach (string key in new[] { "a", "b", "c", "d", "e" })
        {
            await _faults.PutAsync(key, new MemoryStream([1]), 1, CancellationToken.None);
        }
        using var backend = new RetryingBackend(new FlakyListing(_faults, failAfter: 2), Policy());

        var keys = new List<string>();
        await foreach (StoredObject o in backend.ListAsync("", CancellationToken.None))
        {
            keys.Add(o.Key);
        }

        Assert.Equal(["a", "b", "c", "d", "e"], keys);
        Assert.Single(_waits);
    }

    [Fact]
    public async Task Fault_injection_corrupts_reads_and_truncates_puts()
    {
        byte[] data = TestData.Bytes(100);
        _faults.CorruptReads(offset: 10, keys: k => k == "bad").TruncatePuts(40, keys: k => k == "short");
        await _faults.PutAsync("bad", new MemoryStream(data), data.Length, CancellationToken.None);
        await _faults.PutAsync("short", new MemoryStream(data), data.Length, CancellationToken.None);

        byte[] bad = await TestData.ReadAllAsync(await _faults.GetAsync("bad", CancellationToken.None));
        Assert.Equal(data.Length, bad.Length);
        Assert.Equal((byte)(data[10] ^ 0xFF), bad[10]);
        Assert.Equal(data[..10], bad[..10]);
        Assert.Equal(data[11..], bad[11..]);
        byte[] range = await TestData.ReadAllAsync(await _faults.GetRangeAsync("bad", 5, 20, CancellationToken.None));
        Assert.Equal((byte)(data[15] ^ 0xFF), range[10]); // the offset counts from the start of the returned stream
        Assert.Equal(data[..40], await TestData.ReadAllAsync(await _faults.GetAsync("short", CancellationToken.None)));
    }

    public void Dispose()
    {
        _backend.Dispose();
        _dir.Dispose();
    }

    /// <summary>Fails its first listing with a transient error after <c>failAfter</c> items.</summary>
    private sealed class FlakyListing(IStorageBackend inner, int failAfter) : IStorageBackend
    {
        private int _listings;

        public string Location => inner.Location;
        public Task PutAsync(string key, Stream content, long length, CancellationToken ct) => inner.PutAsync(key, content, length, ct);
        public Task<Stream> GetAsync(string key, CancellationToken ct) => inner.GetAsync(key, ct);
        public Task<Stream> GetRangeAsync(string key, long offset, long length, CancellationToken ct) => inner.GetRangeAsync(key, offset, length, ct);
        public Task<StoredObject?> StatAsync(string key, CancellationToken ct) => inner.StatAsync(key, ct);
        public Task DeleteAsync(string key, CancellationToken ct) => inner.DeleteAsync(key, ct);

        public async IAsyncEnumerable<StoredObject> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken ct)
        {
            bool fail = Interlocked.Increment(ref _listings) == 1;
            int n = 0;
            await foreach (StoredObject o in inner.ListAsync(prefix, ct))
            {
                if (fail && n++ == failAfter)
                {
                    throw new IOException("connection reset while listing (test)");
                }
                yield return o;
            }
        }

        public void Dispose()
        {
        }
    }
}
