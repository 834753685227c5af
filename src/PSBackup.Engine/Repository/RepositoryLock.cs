using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using PSBackup.Engine.Storage;

namespace PSBackup.Engine.Repository;

public enum RepositoryLockMode
{
    /// <summary>Writers (backups, snapshots, WAL ships, sync into the repository): any number at once.</summary>
    Shared,
    /// <summary>Prune: alone, no other lock.</summary>
    Exclusive,
}

/// <summary>One lock object, <c>locks/&lt;32 hex&gt;</c>: plain JSON (docs/repository-format.md, "Locks").</summary>
public sealed record RepositoryLockInfo
{
    public int FormatVersion { get; init; } = 1;
    /// <summary>The cmdlet that holds it, e.g. <c>New-ObjectBackup</c>.</summary>
    public required string Operation { get; init; }
    public required bool Exclusive { get; init; }
    public required string Host { get; init; }
    public required int Pid { get; init; }
    public string? User { get; init; }
    public required DateTimeOffset Created { get; init; }
    /// <summary>Rewritten every <see cref="RepositoryLock.RefreshInterval"/> while the operation runs.</summary>
    public required DateTimeOffset Refreshed { get; init; }
}

/// <summary>A lock found in a repository and whether it still counts.</summary>
public sealed record RepositoryLockHolder(string Key, RepositoryLockInfo Info, bool Stale)
{
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture,
            $"{(Info.Exclusive ? "an exclusive" : "a shared")} lock of {Info.Operation} on host '{Info.Host}' (pid {Info.Pid}{(Info.User is null ? "" : ", user " + Info.User)}, since {Info.Created:u}, refreshed {Info.Refreshed:u}; {Key})");
}

/// <summary>restic-style repository locks, written through the storage backend (so they work on
/// every backend): a writer holds a shared lock, prune an exclusive one. A lock is taken by (1)
/// listing the locks and refusing on a conflict before writing anything, (2) writing its own
/// uniquely named lock object and (3) listing again, removing its own and refusing on a conflict
/// (two operations starting at once: at least one of them sees the other). It is refreshed every
/// <see cref="RefreshInterval"/> (a new object, then the old one deleted: nothing is updated in
/// place) and deleted on dispose. A lock not refreshed for <see cref="StaleAfter"/>, or one of this
/// host whose process is gone, is stale: ignored, and removed by prune.</summary>
public sealed class RepositoryLock : IAsyncDisposable
{
    public const string Prefix = "locks/";
    public static readonly TimeSpan StaleAfter = TimeSpan.FromMinutes(30);
    public static readonly TimeSpan RefreshInterval = TimeSpan.FromMinutes(5);

    private readonly IStorageBackend _backend;
    private readonly TimeProvider _clock;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _refresher;
    private RepositoryLockInfo _info;
    private bool _released;

    /// <summary>The token of the operation that holds the lock: once it is cancelled (SIGTERM,
    /// Ctrl+C), the release is bounded by <see cref="CancelledReleaseTimeout"/>.</summary>
    private CancellationToken _operation;

    private RepositoryLock(IStorageBackend backend, TimeProvider clock, string key, RepositoryLockInfo info)
    {
        _backend = backend;
        _clock = clock;
        Key = key;
        _info = info;
        _refresher = RefreshLoopAsync(_stop.Token);
    }

    /// <summary>The current key of this lock (it changes on refresh).</summary>
    public string Key { get; private set; }

    public RepositoryLockInfo Info => _info;

    /// <summary>Takes a lock, or throws <see cref="ConflictException"/> <c>RepositoryLocked</c>
    /// naming the holder and the fix (nothing is left behind).</summary>
    public static async Task<RepositoryLock> AcquireAsync(IStorageBackend backend, RepositoryLockMode mode, string operation, TimeProvider clock, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(clock);
        await ThrowIfConflictAsync(backend, mode, operation, null, clock, ct).ConfigureAwait(false);
        DateTimeOffset now = clock.GetUtcNow();
        var info = new RepositoryLockInfo
        {
            Operation = operation,
            Exclusive = mode == RepositoryLockMode.Exclusive,
            Host = Environment.MachineName,
            Pid = Environment.ProcessId,
            User = Environment.UserName,
            Created = now,
            Refreshed = now,
        };
        string key = NewKey();
        await PutAsync(backend, key, info, ct).ConfigureAwait(false);
        try
        {
            await ThrowIfConflictAsync(backend, mode, operation, key, clock, ct).ConfigureAwait(false);
        }
        catch
        {
            await backend.DeleteAsync(key, CancellationToken.None).ConfigureAwait(false);
            throw;
        }
        return new RepositoryLock(backend, clock, key, info) { _operation = ct };
    }

    /// <summary>Every lock of the repository, oldest first; objects under <c>locks/</c> that are
    /// not lock documents are skipped (see <see cref="ReadAllAsync"/>), and so are locks released
    /// while listing.</summary>
    public static async Task<IReadOnlyList<RepositoryLockHolder>> ListAsync(IStorageBackend backend, TimeProvider clock, CancellationToken ct) =>
        (await ReadAllAsync(backend, clock, ct).ConfigureAwait(false)).Holders;

    /// <summary>The objects under <c>locks/</c> that are no lock document: garbage JSON, an empty
    /// file, a FIFO or device planted under a lock's name. <c>check</c> warns about them.</summary>
    public static async Task<IReadOnlyList<string>> ListUnreadableAsync(IStorageBackend backend, TimeProvider clock, CancellationToken ct) =>
        (await ReadAllAsync(backend, clock, ct).ConfigureAwait(false)).Unreadable;

    /// <summary>Reads every object under <c>locks/</c>. One that is no lock document holds no one's
    /// lock (a lock is put whole, by one atomic put, so a half-written lock never exists): it is
    /// ignored by every lock check rather than blocking every run (restic does the same since
    /// restic/restic#1653, lock.go), reported by check, and removed by prune and repair, which hold
    /// the exclusive lock.</summary>
    private static async Task<(List<RepositoryLockHolder> Holders, List<string> Unreadable)> ReadAllAsync(IStorageBackend backend, TimeProvider clock, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(clock);
        DateTimeOffset now = clock.GetUtcNow();
        var keys = new List<string>();
        await foreach (StoredObject o in backend.ListAsync(Prefix, ct).ConfigureAwait(false))
        {
            keys.Add(o.Key);
        }
        var holders = new List<RepositoryLockHolder>();
        var unreadable = new List<string>();
        foreach (string key in keys)
        {
            RepositoryLockInfo? info;
            try
            {
                byte[] bytes = await Repository.GetBytesAsync(backend, key, ct).ConfigureAwait(false);
                info = RepositoryJson.Deserialize<RepositoryLockInfo>(bytes);
            }
            catch (StorageNotFoundException)
            {
                continue;
            }
            catch (Exception e) when (e is JsonException or RepositoryIntegrityException)
            {
                info = null; // garbage, too large, or not a regular file
            }
            if (info is not null)
            {
                holders.Add(new RepositoryLockHolder(key, info, IsStale(info, now)));
            }
            else
            {
                unreadable.Add(key);
            }
        }
        return (holders.OrderBy(h => h.Info.Created).ToList(), unreadable);
    }

    /// <summary>Deletes the stale locks and the objects under <c>locks/</c> that are no lock
    /// (prune and repair do this once they hold the exclusive lock).</summary>
    public static async Task<int> RemoveStaleAsync(IStorageBackend backend, TimeProvider clock, CancellationToken ct)
    {
        int removed = 0;
        (List<RepositoryLockHolder> holders, List<string> unreadable) = await ReadAllAsync(backend, clock, ct).ConfigureAwait(false);
        foreach (string key in holders.Where(h => h.Stale).Select(h => h.Key).Concat(unreadable))
        {
            await backend.DeleteAsync(key, ct).ConfigureAwait(false);
            removed++;
        }
        return removed;
    }

    /// <summary>Not refreshed for <see cref="StaleAfter"/>, or written on this host by a process
    /// that no longer runs (restic's rule). A process that cannot be inspected (Windows refuses to
    /// open another account's process: Win32Exception, access denied) is alive: such a lock goes
    /// stale by age only, never by a guess.</summary>
    public static bool IsStale(RepositoryLockInfo info, DateTimeOffset now) => IsStale(info, now, ProcessIsRunning);

    internal static bool IsStale(RepositoryLockInfo info, DateTimeOffset now, Func<int, bool?> isRunning)
    {
        ArgumentNullException.ThrowIfNull(info);
        if (now - info.Refreshed > StaleAfter)
        {
            return true;
        }
        if (!string.Equals(info.Host, Environment.MachineName, StringComparison.OrdinalIgnoreCase) || info.Pid == Environment.ProcessId)
        {
            return false;
        }
        return isRunning(info.Pid) == false;
    }

    /// <summary>True/false when this host can tell whether process <paramref name="pid"/> runs;
    /// null when it cannot (another account's process on Windows).</summary>
    internal static bool? ProcessIsRunning(int pid)
    {
        Process p;
        try
        {
            p = Process.GetProcessById(pid);
        }
        catch (ArgumentException)
        {
            return false; // no such process
        }
        using (p)
        {
            return Liveness(() => p.HasExited);
        }
    }

    /// <summary><paramref name="hasExited"/> asked safely: an exit seen between lookup and query is
    /// "not running" (InvalidOperationException), a process the OS will not let us open is unknown.</summary>
    internal static bool? Liveness(Func<bool> hasExited)
    {
        try
        {
            return !hasExited();
        }
        catch (InvalidOperationException)
        {
            return false;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
        catch (NotSupportedException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static async Task ThrowIfConflictAsync(IStorageBackend backend, RepositoryLockMode mode, string operation, string? own, TimeProvider clock, CancellationToken ct)
    {
        foreach (RepositoryLockHolder h in await ListAsync(backend, clock, ct).ConfigureAwait(false))
        {
            if (h.Stale || h.Key == own || (mode == RepositoryLockMode.Shared && !h.Info.Exclusive))
            {
                continue;
            }
            string why = mode == RepositoryLockMode.Exclusive
                ? $"{operation} needs the repository to itself (a backup that reuses data a prune deletes would lose it)"
                : $"{operation} cannot write while a prune may delete the data it would reuse";
            throw new ConflictException("RepositoryLocked",
                $"The repository {backend.Location} is locked by {h}: {why}. Nothing was written. Wait until that operation finishes and run again. " +
                $"If its process is gone, the lock is stale once it has not been refreshed for {Durations.Format(StaleAfter)} (at once when checked on the same host) and is then ignored; the next prune removes it.",
                h.Key);
        }
    }

    private static string NewKey() => Prefix + Convert.ToHexString(RandomNumberGenerator.GetBytes(16)).ToLowerInvariant();

    private static async Task PutAsync(IStorageBackend backend, string key, RepositoryLockInfo info, CancellationToken ct)
    {
        byte[] bytes = RepositoryJson.Serialize(info, indented: true);
        using var ms = new MemoryStream(bytes, writable: false);
        await backend.PutAsync(key, ms, bytes.Length, ct).ConfigureAwait(false);
    }

    /// <summary>Writes the lock again with the current time under a new key, then deletes the old one.</summary>
    internal async Task RefreshAsync(CancellationToken ct)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (_released)
            {
                return;
            }
            RepositoryLockInfo info = _info with { Refreshed = _clock.GetUtcNow() };
            string key = NewKey();
            await PutAsync(_backend, key, info, ct).ConfigureAwait(false);
            string old = Key;
            (Key, _info) = (key, info);
            await _backend.DeleteAsync(old, ct).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task RefreshLoopAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(RefreshInterval, _clock, stop).ConfigureAwait(false);
                await RefreshAsync(stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
#pragma warning disable CA1031 // a failed refresh is retried at the next interval; the lock goes stale only after 30 min
            catch (Exception)
#pragma warning restore CA1031
            {
            }
        }
    }

    /// <summary>Stops refreshing and deletes the lock. A delete that fails leaves a lock that goes stale.</summary>
    /// <summary>How long releasing the lock may take.</summary>
    internal static readonly TimeSpan ReleaseTimeout = TimeSpan.FromSeconds(10);

    /// <summary>How long releasing the lock of a cancelled operation may take: a SIGTERMed run exits
    /// promptly even when the store stalls (docs/guarantees.md); a lock left behind goes stale.</summary>
    internal static readonly TimeSpan CancelledReleaseTimeout = TimeSpan.FromSeconds(1);

    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested)
        {
            return;
        }
        await _stop.CancelAsync().ConfigureAwait(false);
        await _refresher.ConfigureAwait(false);
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            _released = true;
            // Bounded: a stalled store must not keep a cancelled (SIGTERM) process alive; an
            // undeleted lock goes stale (and is ignored at once on this host once this pid is gone).
            using var bound = new CancellationTokenSource(_operation.IsCancellationRequested ? CancelledReleaseTimeout : ReleaseTimeout);
            await _backend.DeleteAsync(Key, bound.Token).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // releasing never fails the operation: the lock goes stale instead
        catch (Exception)
#pragma warning restore CA1031
        {
        }
        finally
        {
            _gate.Release();
            _stop.Dispose();
            _gate.Dispose();
        }
    }
}
