namespace PSBackup.Engine.Storage;

/// <summary>One stored object: its key, size and (when the backend knows it) last-modified time.</summary>
public sealed record StoredObject(string Key, long Size, DateTimeOffset? LastModified);

/// <summary>The one storage contract every backend implements (local folder, S3, later Azure).
/// Keys are '/'-separated relative names validated by <see cref="StorageKey"/>. A put is atomic:
/// readers see the whole object or none of it. Correctness never depends on conditional writes
/// (s3rver ignores If-None-Match): the repository writes content-addressed or uniquely named
/// objects only, so concurrent writers never update the same key with different bytes.</summary>
public interface IStorageBackend : IDisposable
{
    /// <summary>Where this backend stores, for messages: a folder path or s3://bucket/prefix.</summary>
    string Location { get; }

    /// <summary>Stores <paramref name="content"/> (read to its end) under <paramref name="key"/>,
    /// replacing any object with that key. <paramref name="length"/> is the content length when
    /// known (-1 if not); large objects go up in parts.</summary>
    Task PutAsync(string key, Stream content, long length, CancellationToken ct);

    /// <summary>Opens the object for reading. Throws <see cref="StorageNotFoundException"/> if absent.</summary>
    Task<Stream> GetAsync(string key, CancellationToken ct);

    /// <summary>Reads <paramref name="length"/> bytes at <paramref name="offset"/>. Throws
    /// <see cref="StorageNotFoundException"/> if absent; a range past the end is an IOException.</summary>
    Task<Stream> GetRangeAsync(string key, long offset, long length, CancellationToken ct);

    /// <summary>The object's metadata, or null if absent.</summary>
    Task<StoredObject?> StatAsync(string key, CancellationToken ct);

    /// <summary>Every object whose key starts with <paramref name="prefix"/> (all when empty), in
    /// ordinal key order, paging as needed.</summary>
    IAsyncEnumerable<StoredObject> ListAsync(string prefix, CancellationToken ct);

    /// <summary>Removes the object; removing an absent key is not an error.</summary>
    Task DeleteAsync(string key, CancellationToken ct);
}

/// <summary>The typed not-found of the storage contract.</summary>
public sealed class StorageNotFoundException(string key, string location)
    : Exception($"'{key}' does not exist in {location}.")
{
    public string Key { get; } = key;
}

/// <summary>A backend whose interrupted puts can leave partial temp objects behind (a folder: the
/// <c>.psb-&lt;random&gt;.tmp</c> files a killed process left beside their targets). They are invisible to
/// <see cref="IStorageBackend.ListAsync"/>; prune and repair reclaim them once they are older than
/// the pack grace period (a running put is younger), and check reports them.</summary>
public interface IStorageLeftovers
{
    /// <summary>Every leftover temp object: its backend-relative name, size and last write.</summary>
    IAsyncEnumerable<StoredObject> ListLeftoversAsync(CancellationToken ct);

    /// <summary>Removes one leftover listed by <see cref="ListLeftoversAsync"/>.</summary>
    Task DeleteLeftoverAsync(string name, CancellationToken ct);
}

/// <summary>Leftovers of any backend: those of a backend that has them, else none.</summary>
public static class StorageLeftovers
{
    public static IAsyncEnumerable<StoredObject> List(IStorageBackend backend, CancellationToken ct) =>
        backend is IStorageLeftovers l ? l.ListLeftoversAsync(ct) : None();

    public static Task Delete(IStorageBackend backend, string name, CancellationToken ct) =>
        backend is IStorageLeftovers l ? l.DeleteLeftoverAsync(name, ct) : Task.CompletedTask;

    private static async IAsyncEnumerable<StoredObject> None()
    {
        await Task.CompletedTask.ConfigureAwait(false);
        yield break;
    }
}
