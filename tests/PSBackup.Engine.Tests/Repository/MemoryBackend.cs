using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using PSBackup.Engine.Storage;

namespace PSBackup.Engine.Tests.Repository;

/// <summary>An in-memory <see cref="IStorageBackend"/> for repository tests: atomic puts, ordinal
/// listing, counters of writes, and helpers to damage stored bytes. It runs the storage contract
/// suite (MemoryBackendContractTests) like every other backend.</summary>
internal sealed class MemoryBackend : IStorageBackend
{
    private readonly ConcurrentDictionary<string, byte[]> _objects = new(StringComparer.Ordinal);
    private int _puts;
    private int _deletes;

    public string Location => "memory://test";
    public int Puts => _puts;
    public int Deletes => _deletes;
    public IReadOnlyCollection<string> Keys => _objects.Keys.Order(StringComparer.Ordinal).ToList();
    public long TotalBytes => _objects.Values.Sum(v => (long)v.Length);

    public async Task PutAsync(string key, Stream content, long length, CancellationToken ct)
    {
        StorageKey.ValidateObjectKey(key);
        using var ms = new MemoryStream();
        await content.CopyToAsync(ms, ct);
        byte[] bytes = ms.ToArray();
        if (length >= 0 && bytes.Length != length)
        {
            throw new StorageIOException($"The content for '{key}' was {bytes.Length} bytes, not the {length} announced; nothing was stored.", key, Location, isTransient: false);
        }
        ct.ThrowIfCancellationRequested();
        _objects[key] = bytes;
        Interlocked.Increment(ref _puts);
    }

    public Task<Stream> GetAsync(string key, CancellationToken ct) =>
        _objects.TryGetValue(StorageKey.ValidateObjectKey(key), out byte[]? b)
            ? Task.FromResult<Stream>(new MemoryStream(b, writable: false))
            : throw new StorageNotFoundException(key, Location);

    public Task<Stream> GetRangeAsync(string key, long offset, long length, CancellationToken ct)
    {
        if (!_objects.TryGetValue(StorageKey.ValidateObjectKey(key), out byte[]? b))
        {
            throw new StorageNotFoundException(key, Location);
        }
        if (offset < 0 || length < 0 || offset + length > b.Length)
        {
            throw new IOException($"Range {offset}+{length} is past the end of '{key}' ({b.Length} bytes).");
        }
        return Task.FromResult<Stream>(new MemoryStream(b, (int)offset, (int)length, writable: false));
    }

    public Task<StoredObject?> StatAsync(string key, CancellationToken ct) =>
        Task.FromResult(_objects.TryGetValue(StorageKey.ValidateObjectKey(key), out byte[]? b) ? new StoredObject(key, b.Length, null) : null);

    public async IAsyncEnumerable<StoredObject> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken ct)
    {
        StorageKey.ValidatePrefix(prefix);
        await Task.Yield();
        foreach (var kv in _objects.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal)).OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList())
        {
            yield return new StoredObject(kv.Key, kv.Value.Length, null);
        }
    }

    public Task DeleteAsync(string key, CancellationToken ct)
    {
        _objects.TryRemove(StorageKey.ValidateObjectKey(key), out _);
        Interlocked.Increment(ref _deletes);
        return Task.CompletedTask;
    }

    public void Dispose()
    {
    }

    public byte[] Read(string key) => _objects[key];

    public void Write(string key, byte[] bytes) => _objects[key] = bytes;

    /// <summary>Flips one bit of the stored byte at <paramref name="offset"/> (negative: from the end).</summary>
    public void Flip(string key, long offset)
    {
        byte[] b = _objects[key].ToArray();
        long at = offset < 0 ? b.Length + offset : offset;
        b[at] ^= 0x40;
        _objects[key] = b;
    }

    public string Single(string prefix) => Keys.Single(k => k.StartsWith(prefix, StringComparison.Ordinal));
}
