using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;

namespace PSBackup.Engine.Storage;

/// <summary>Writes every storage call to the -Debug log (<see cref="OperationLog.Debug"/>): the
/// call, the key, the size and how long it took (kopia's logging storage wrapper). Installed by
/// <see cref="Repository.RepositoryConnector.OpenBackend"/> only when a front end reads the debug
/// level, so a normal run pays nothing. Reads are logged when the stream opens (the bytes are
/// read later by the caller).</summary>
public sealed class LoggingBackend(IStorageBackend inner) : IStorageBackend
{
    public IStorageBackend Inner => inner;

    public string Location => inner.Location;

    /// <summary><paramref name="backend"/> wrapped when the current flow reads debug messages.</summary>
    public static IStorageBackend WrapWhenDebugging(IStorageBackend backend) =>
        OperationLog.IsDebug ? new LoggingBackend(backend) : backend;

    public async Task PutAsync(string key, Stream content, long length, CancellationToken ct)
    {
        long start = Stopwatch.GetTimestamp();
        try
        {
            await inner.PutAsync(key, content, length, ct).ConfigureAwait(false);
            Log("PUT", key, length >= 0 ? Sizes.Format(length) : null, start);
        }
        catch (Exception e)
        {
            Log("PUT", key, Failed(e), start);
            throw;
        }
    }

    public async Task<Stream> GetAsync(string key, CancellationToken ct)
    {
        long start = Stopwatch.GetTimestamp();
        try
        {
            Stream s = await inner.GetAsync(key, ct).ConfigureAwait(false);
            Log("GET", key, s.CanSeek ? Sizes.Format(s.Length) : null, start);
            return s;
        }
        catch (Exception e)
        {
            Log("GET", key, Failed(e), start);
            throw;
        }
    }

    public async Task<Stream> GetRangeAsync(string key, long offset, long length, CancellationToken ct)
    {
        long start = Stopwatch.GetTimestamp();
        string range = $"bytes {offset.ToString(CultureInfo.InvariantCulture)}+{Sizes.Format(length)}";
        try
        {
            Stream s = await inner.GetRangeAsync(key, offset, length, ct).ConfigureAwait(false);
            Log("GET", key, range, start);
            return s;
        }
        catch (Exception e)
        {
            Log("GET", key, $"{range}, {Failed(e)}", start);
            throw;
        }
    }

    public async Task<StoredObject?> StatAsync(string key, CancellationToken ct)
    {
        long start = Stopwatch.GetTimestamp();
        StoredObject? found = await inner.StatAsync(key, ct).ConfigureAwait(false);
        Log("STAT", key, found is null ? "absent" : Sizes.Format(found.Size), start);
        return found;
    }

    public async IAsyncEnumerable<StoredObject> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken ct)
    {
        long start = Stopwatch.GetTimestamp();
        int count = 0;
        await foreach (StoredObject o in inner.ListAsync(prefix, ct).ConfigureAwait(false))
        {
            count++;
            yield return o;
        }
        Log("LIST", prefix.Length == 0 ? "(all)" : prefix, $"{count.ToString(CultureInfo.InvariantCulture)} object(s)", start);
    }

    public async Task DeleteAsync(string key, CancellationToken ct)
    {
        long start = Stopwatch.GetTimestamp();
        await inner.DeleteAsync(key, ct).ConfigureAwait(false);
        Log("DELETE", key, null, start);
    }

    public void Dispose() => inner.Dispose();

    private void Log(string call, string key, string? detail, long start)
    {
        double ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        string extra = detail is null ? "" : $" ({detail})";
        OperationLog.Debug($"Storage {call} {key}{extra} in {ms.ToString("F1", CultureInfo.InvariantCulture)} ms [{inner.Location}]");
    }

    private static string Failed(Exception e) => $"failed: {e.GetType().Name}: {e.Message}";
}
