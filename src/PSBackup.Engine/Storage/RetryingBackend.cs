using System.Diagnostics;
using System.Net.Http;
using System.Net.Sockets;
using System.Runtime.CompilerServices;

namespace PSBackup.Engine.Storage;

/// <summary>How <see cref="RetryingBackend"/> retries: bounded attempts and total time,
/// exponential backoff with full jitter.</summary>
public sealed record StorageRetryPolicy
{
    /// <summary>Attempts per operation, the first included.</summary>
    public int MaxAttempts { get; init; } = 5;

    /// <summary>Backoff before the second attempt; doubled each time, capped by <see cref="MaxDelay"/>.</summary>
    public TimeSpan BaseDelay { get; init; } = TimeSpan.FromMilliseconds(200);

    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>No retry starts once this much time (attempts plus waits) has passed.</summary>
    public TimeSpan MaxTotal { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>How long one request (stat, delete, a listing page, opening a read) may go without an
    /// answer before it is abandoned as timed out (a transient fault: retried). A storage endpoint that
    /// accepts connections and never answers then fails in minutes, not never.</summary>
    public TimeSpan RequestTimeout { get; init; } = DefaultRequestTimeout;

    /// <summary>How long a transfer may move no byte (a put's body not being read, a read's body not
    /// arriving) before it is abandoned as timed out. Slow transfers that keep moving never time out.</summary>
    public TimeSpan IdleTimeout { get; init; } = DefaultIdleTimeout;

    public static readonly TimeSpan DefaultRequestTimeout = TimeSpan.FromSeconds(60);
    public static readonly TimeSpan DefaultIdleTimeout = TimeSpan.FromSeconds(60);

    /// <summary>Environment variables that set <see cref="RequestTimeout"/> and <see cref="IdleTimeout"/>
    /// (durations such as <c>30s</c>, <c>2m</c>, <c>00:00:45</c>).</summary>
    public const string RequestTimeoutVariable = "PSBACKUP_STORAGE_TIMEOUT";
    public const string IdleTimeoutVariable = "PSBACKUP_STORAGE_IDLE_TIMEOUT";

    /// <summary>The default policy with the timeouts the environment sets (bad values are bad input).</summary>
    public static StorageRetryPolicy FromEnvironment(Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        return new StorageRetryPolicy
        {
            RequestTimeout = Timeout(environment(RequestTimeoutVariable), RequestTimeoutVariable) ?? DefaultRequestTimeout,
            IdleTimeout = Timeout(environment(IdleTimeoutVariable), IdleTimeoutVariable) ?? DefaultIdleTimeout,
        };
    }

    private static TimeSpan? Timeout(string? value, string name)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return null;
        }
        string v = value.Trim();
        TimeSpan t;
        if (v.EndsWith('s') && double.TryParse(v[..^1], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double seconds) && seconds is > 0 and < 86_400)
        {
            t = TimeSpan.FromSeconds(seconds);
        }
        else if (v.EndsWith('m') && double.TryParse(v[..^1], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double minutes) && minutes is > 0 and < 1440)
        {
            t = TimeSpan.FromMinutes(minutes);
        }
        else if (!TimeSpan.TryParse(v, System.Globalization.CultureInfo.InvariantCulture, out t))
        {
            throw new InvalidInputException("InvalidTimeout", $"{name} '{SafePath.Printable(value)}' is not a duration. Give seconds or minutes such as 30s or 2m (or hh:mm:ss).", value);
        }
        return t > TimeSpan.Zero && t <= TimeSpan.FromDays(1) ? t
            : throw new InvalidInputException("InvalidTimeout", $"{name} '{SafePath.Printable(value)}' must be more than 0 and at most a day.", value);
    }

    /// <summary>Waits between attempts; tests replace it so they never sleep.</summary>
    public Func<TimeSpan, CancellationToken, Task> Delay { get; init; } = Task.Delay;

    /// <summary>Jitter source in [0, 1); tests make it deterministic.</summary>
    public Func<double> NextJitter { get; init; } = Random.Shared.NextDouble;

    /// <summary>Called before each retry with the attempt that failed (1-based), the failure
    /// and the wait; for logging.</summary>
    public Action<int, Exception, TimeSpan>? OnRetry { get; init; }

    /// <summary>The wait before attempt <paramref name="failedAttempt"/> + 1: a random share of
    /// min(MaxDelay, BaseDelay * 2^(failedAttempt - 1)).</summary>
    public TimeSpan BackoffAfter(int failedAttempt)
    {
        double cap = Math.Min(MaxDelay.TotalMilliseconds, BaseDelay.TotalMilliseconds * Math.Pow(2, Math.Min(failedAttempt - 1, 30)));
        return TimeSpan.FromMilliseconds(cap * Math.Clamp(NextJitter(), 0, 1));
    }

    /// <summary>True for faults that repeating the request can cure: network and I/O failures,
    /// timeouts, server errors and throttling. Never a missing object, bad credentials, a bad
    /// argument or any other <see cref="PSBackupException"/>, and never the caller's cancellation.</summary>
    public static bool IsTransient(Exception e, CancellationToken ct) => e switch
    {
        _ when ct.IsCancellationRequested => false,
        StorageNotFoundException or PSBackupException or ArgumentException or UnauthorizedAccessException
            or NotSupportedException or ObjectDisposedException => false,
        StorageIOException s => s.IsTransient,
        FileNotFoundException or DirectoryNotFoundException => false,
        IOException or HttpRequestException or SocketException or TimeoutException => true,
        OperationCanceledException => true, // not the caller's token: a request timeout
        _ => false,
    };
}

/// <summary>Retries transient failures of another backend (kopia's retrying storage wrapper).
/// A put is retried only when its source can be rewound (seekable); a read retries only the
/// opening of the stream; a listing that fails part-way resumes after the last key it returned.</summary>
public sealed class RetryingBackend(IStorageBackend inner, StorageRetryPolicy? policy = null) : IStorageBackend, IStorageLeftovers
{
    private readonly StorageRetryPolicy _policy = policy ?? new StorageRetryPolicy();

    public IStorageBackend Inner => inner;

    public string Location => inner.Location;

    public StorageRetryPolicy Policy => _policy;

    public Task PutAsync(string key, Stream content, long length, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(content);
        if (!content.CanSeek)
        {
            // The bytes read so far cannot be read again: one attempt, still bounded by the idle timeout.
            return Attempt(async (attempt, c) =>
            {
                await inner.PutAsync(key, new WatchedStream(content, attempt, _policy.IdleTimeout), length, c).ConfigureAwait(false);
                return true;
            }, key, "store", ct, _policy.IdleTimeout);
        }
        long start = content.Position;
        return RunAsync(async (n, attempt, c) =>
        {
            if (n > 1)
            {
                content.Position = start;
            }
            // The attempt times out when the body is not read for the idle timeout (a stalled
            // connection) or the answer does not come that long after the last byte.
            await inner.PutAsync(key, new WatchedStream(content, attempt, _policy.IdleTimeout), length, c).ConfigureAwait(false);
            return true;
        }, key, "store", ct, _policy.IdleTimeout);
    }

    public Task<Stream> GetAsync(string key, CancellationToken ct) =>
        RunAsync(async (_, _, c) => (Stream)new IdleTimeoutStream(await inner.GetAsync(key, c).ConfigureAwait(false), _policy.IdleTimeout, key, Location, ct), key, "read", ct);

    public Task<Stream> GetRangeAsync(string key, long offset, long length, CancellationToken ct) =>
        RunAsync(async (_, _, c) => (Stream)new IdleTimeoutStream(await inner.GetRangeAsync(key, offset, length, c).ConfigureAwait(false), _policy.IdleTimeout, key, Location, ct), key, "read", ct);

    public Task<StoredObject?> StatAsync(string key, CancellationToken ct) => RunAsync((_, _, c) => inner.StatAsync(key, c), key, "stat", ct);

    public Task DeleteAsync(string key, CancellationToken ct) => RunAsync(async (_, _, c) =>
    {
        await inner.DeleteAsync(key, c).ConfigureAwait(false);
        return true;
    }, key, "delete", ct);

    public async IAsyncEnumerable<StoredObject> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken ct)
    {
        string? last = null;
        var clock = Stopwatch.StartNew();
        TimeSpan waited = TimeSpan.Zero;
        for (int attempt = 1; ; attempt++)
        {
            // Each page must come within the request timeout: the attempt's token is armed around
            // every step of the listing and disarmed while the caller works on what it got.
            using var step = CancellationTokenSource.CreateLinkedTokenSource(ct);
            IAsyncEnumerator<StoredObject> e = inner.ListAsync(prefix, step.Token).GetAsyncEnumerator(step.Token);
            Exception? failure = null;
            try
            {
                while (true)
                {
                    StoredObject item;
                    try
                    {
                        step.CancelAfter(_policy.RequestTimeout);
                        if (!await e.MoveNextAsync().ConfigureAwait(false))
                        {
                            yield break;
                        }
                        item = e.Current;
                        step.CancelAfter(Timeout.InfiniteTimeSpan);
                    }
                    catch (Exception ex) when (ShouldRetry(TimedOut(ex, step, ct) ?? ex, attempt, clock.Elapsed + waited, ct))
                    {
                        failure = TimedOut(ex, step, ct) ?? ex;
                        break;
                    }
                    catch (Exception ex) when (TimedOut(ex, step, ct) is { } timeout)
                    {
                        throw timeout;
                    }
                    // Ordinal order makes resuming exact: skip what was already returned.
                    if (last is not null && string.CompareOrdinal(item.Key, last) <= 0)
                    {
                        continue;
                    }
                    last = item.Key;
                    yield return item;
                }
            }
            finally
            {
                await e.DisposeAsync().ConfigureAwait(false);
            }
            TimeSpan wait = _policy.BackoffAfter(attempt);
            _policy.OnRetry?.Invoke(attempt, failure!, wait);
            LogRetry(attempt, failure!, wait);
            await _policy.Delay(wait, ct).ConfigureAwait(false);
            waited += wait;
        }
    }

    public void Dispose() => inner.Dispose();

    /// <summary>Runs a step of the wrapped backend that is outside the storage contract (creating
    /// an Azure container at init or sync) under the same retries, backoff and request timeout as
    /// the contract's operations, so a throttled container creation is retried like a throttled put.</summary>
    public Task<T> RunWithRetriesAsync<T>(Func<CancellationToken, Task<T>> operation, string what, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(operation);
        return RunAsync((_, _, c) => operation(c), what, "run", ct);
    }

    public IAsyncEnumerable<StoredObject> ListLeftoversAsync(CancellationToken ct) => StorageLeftovers.List(inner, ct);

    public Task DeleteLeftoverAsync(string name, CancellationToken ct) => StorageLeftovers.Delete(inner, name, ct);

    /// <summary>Runs attempts of <paramref name="operation"/> (attempt number, the attempt's timer,
    /// the attempt's token) until one succeeds, a fault is permanent, or the budget is spent. Each
    /// attempt is abandoned after <paramref name="timeout"/> (default: the request timeout) without
    /// an answer; the caller's cancellation ends everything at once, waits included.</summary>
    private async Task<T> RunAsync<T>(Func<int, CancellationTokenSource, CancellationToken, Task<T>> operation, string key, string action, CancellationToken ct, TimeSpan? timeout = null)
    {
        var clock = Stopwatch.StartNew();
        TimeSpan waited = TimeSpan.Zero;
        for (int attempt = 1; ; attempt++)
        {
            int n = attempt;
            try
            {
                return await Attempt((a, c) => operation(n, a, c), key, action, ct, timeout).ConfigureAwait(false);
            }
            catch (Exception e) when (ShouldRetry(e, attempt, clock.Elapsed + waited, ct))
            {
                TimeSpan wait = _policy.BackoffAfter(attempt);
                _policy.OnRetry?.Invoke(attempt, e, wait);
                LogRetry(attempt, e, wait);
                await _policy.Delay(wait, ct).ConfigureAwait(false);
                waited += wait;
            }
        }
    }

    /// <summary>One attempt under its own timer; a timeout becomes a transient <see cref="StorageIOException"/>.</summary>
    private async Task<T> Attempt<T>(Func<CancellationTokenSource, CancellationToken, Task<T>> operation, string key, string action, CancellationToken ct, TimeSpan? timeout)
    {
        using var attempt = CancellationTokenSource.CreateLinkedTokenSource(ct);
        attempt.CancelAfter(timeout ?? _policy.RequestTimeout);
        try
        {
            return await operation(attempt, attempt.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (TimedOut(e, attempt, ct) is { } timedOut)
        {
            throw new StorageIOException(
                $"Cannot {action} '{key}' in {Location}: {timedOut.Message}", key, Location, isTransient: true, timedOut);
        }
    }

    /// <summary>The timeout a failure stands for when the attempt's own timer (not the caller) cancelled it.</summary>
    private StorageIOException? TimedOut(Exception e, CancellationTokenSource attempt, CancellationToken ct) =>
        e is OperationCanceledException or TaskCanceledException or TimeoutException && attempt.IsCancellationRequested && !ct.IsCancellationRequested
            ? new StorageIOException(
                $"the storage did not answer within the timeout ({_policy.RequestTimeout.TotalSeconds:0.#} s per request, {_policy.IdleTimeout.TotalSeconds:0.#} s without a byte moving; set {StorageRetryPolicy.RequestTimeoutVariable} / {StorageRetryPolicy.IdleTimeoutVariable} to change them). Check that the endpoint is up and reachable",
                null, Location, isTransient: true, e)
            : null;

    /// <summary>The content of a put: every read re-arms the attempt's timer, so the attempt lives as
    /// long as bytes move and dies <paramref name="idle"/> after they stop. Seeks pass through (retries rewind).</summary>
    private sealed class WatchedStream(Stream inner, CancellationTokenSource attempt, TimeSpan idle) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => inner.CanSeek;
        public override bool CanWrite => false;
        public override long Length => inner.Length;
        public override long Position { get => inner.Position; set => inner.Position = value; }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => inner.Seek(offset, origin);
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        private void Alive()
        {
            try
            {
                attempt.CancelAfter(idle);
            }
            catch (ObjectDisposedException)
            {
                // the attempt is over
            }
        }

        public override int Read(byte[] buffer, int offset, int count)
        {
            Alive();
            return inner.Read(buffer, offset, count);
        }

        public override int Read(Span<byte> buffer)
        {
            Alive();
            return inner.Read(buffer);
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Alive();
            return await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
    }

    /// <summary>A read stream whose every read must return within <paramref name="idle"/>: a body that
    /// stops arriving is a transient <see cref="StorageIOException"/>, not a hang.</summary>
    private sealed class IdleTimeoutStream(Stream inner, TimeSpan idle, string key, string location, CancellationToken ct) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => inner.Length;
        public override long Position { get => inner.Position; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            using var read = CancellationTokenSource.CreateLinkedTokenSource(ct, cancellationToken);
            read.CancelAfter(idle);
            try
            {
                return await inner.ReadAsync(buffer, read.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException e) when (read.IsCancellationRequested && !ct.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                throw new StorageIOException(
                    $"Reading '{key}' from {location} stopped: no data for {idle.TotalSeconds:0.#} s ({StorageRetryPolicy.IdleTimeoutVariable}). Check that the endpoint is up and reachable, then try again.",
                    key, location, isTransient: true, e);
            }
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }
            base.Dispose(disposing);
        }

        public override async ValueTask DisposeAsync()
        {
            await inner.DisposeAsync().ConfigureAwait(false);
            await base.DisposeAsync().ConfigureAwait(false);
        }
    }

    private bool ShouldRetry(Exception e, int attempt, TimeSpan elapsed, CancellationToken ct) =>
        attempt < _policy.MaxAttempts && elapsed < _policy.MaxTotal && StorageRetryPolicy.IsTransient(e, ct);

    private void LogRetry(int attempt, Exception failure, TimeSpan wait) =>
        OperationLog.Verbose($"Storage call to {inner.Location} failed (attempt {attempt} of {_policy.MaxAttempts}: {failure.GetType().Name}: {failure.Message}); retrying in {wait.TotalMilliseconds:F0} ms.");
}
