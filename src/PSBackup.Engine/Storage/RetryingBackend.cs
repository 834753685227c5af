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
public sealed class RetryingBackend(IStorageBackend inner, StorageRetryPolicy? policy = null) : IStorageBackend
{
    private readonly StorageRetryPolicy _policy = policy ?? new StorageRetryPolicy();

    public IStorageBackend Inner => inner;

    public string Location => inner.Location;

    public Task PutAsync(string key, Stream content, long length, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(content);
        if (!content.CanSeek)
        {
            return inner.PutAsync(key, content, length, ct); // the bytes read so far cannot be read again
        }
        long start = content.Position;
        return RunAsync(attempt =>
        {
            if (attempt > 1)
            {
                content.Position = start;
            }
            return inner.PutAsync(key, content, length, ct);
        }, ct);
    }

    public Task<Stream> GetAsync(string key, CancellationToken ct) => RunAsync(_ => inner.GetAsync(key, ct), ct);

    public Task<Stream> GetRangeAsync(string key, long offset, long length, CancellationToken ct) =>
        RunAsync(_ => inner.GetRangeAsync(key, offset, length, ct), ct);

    public Task<StoredObject?> StatAsync(string key, CancellationToken ct) => RunAsync(_ => inner.StatAsync(key, ct), ct);

    public Task DeleteAsync(string key, CancellationToken ct) => RunAsync(_ => inner.DeleteAsync(key, ct), ct);

    public async IAsyncEnumerable<StoredObject> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken ct)
    {
        string? last = null;
        var clock = Stopwatch.StartNew();
        TimeSpan waited = TimeSpan.Zero;
        for (int attempt = 1; ; attempt++)
        {
            IAsyncEnumerator<StoredObject> e = inner.ListAsync(prefix, ct).GetAsyncEnumerator(ct);
            Exception? failure = null;
            try
            {
                while (true)
                {
                    StoredObject item;
                    try
                    {
                        if (!await e.MoveNextAsync().ConfigureAwait(false))
                        {
                            yield break;
                        }
                        item = e.Current;
                    }
                    catch (Exception ex) when (ShouldRetry(ex, attempt, clock.Elapsed + waited, ct))
                    {
                        failure = ex;
                        break;
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

    private async Task<T> RunAsync<T>(Func<int, Task<T>> operation, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        TimeSpan waited = TimeSpan.Zero;
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                return await operation(attempt).ConfigureAwait(false);
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

    private Task RunAsync(Func<int, Task> operation, CancellationToken ct) =>
        RunAsync<bool>(async attempt =>
        {
            await operation(attempt).ConfigureAwait(false);
            return true;
        }, ct);

    private bool ShouldRetry(Exception e, int attempt, TimeSpan elapsed, CancellationToken ct) =>
        attempt < _policy.MaxAttempts && elapsed < _policy.MaxTotal && StorageRetryPolicy.IsTransient(e, ct);

    private void LogRetry(int attempt, Exception failure, TimeSpan wait) =>
        OperationLog.Verbose($"Storage call to {inner.Location} failed (attempt {attempt} of {_policy.MaxAttempts}: {failure.GetType().Name}: {failure.Message}); retrying in {wait.TotalMilliseconds:F0} ms.");
}
