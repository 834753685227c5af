using System.Collections.Concurrent;
using PSBackup.Engine.Storage;

namespace PSBackup.Engine.Repository;

/// <summary>The SHA-256s of a local repository's packs, taken on an idle core while a
/// <c>check --read-data</c> does its single-threaded start: the passphrase's key derivation (600,000
/// PBKDF2 iterations, ~70 ms), config, keys, the listings and every index object. A pack's hash needs
/// no key, so the largest packs (the order the check's workers take them in) are hashed meanwhile;
/// the worker that later streams such a pack decodes and checks every frame as before and takes its
/// hash from here instead of hashing the same bytes again (<see cref="RepositoryChecker"/>).
/// <para>Only for a folder repository: there a second read comes from the page cache; on S3 or Azure
/// it would download the pack twice. <see cref="Stop"/> (when the workers start) cancels what is
/// left: a pack being hashed then is hashed by its worker.</para></summary>
internal sealed class PackPrehash : IAsyncDisposable
{
    private readonly CancellationTokenSource _cts;
    private readonly ConcurrentDictionary<string, ContentDigest> _digests = new(StringComparer.Ordinal);
    private readonly Task _run;

    private PackPrehash(IStorageBackend backend, CancellationToken ct)
    {
        _cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        CancellationToken token = _cts.Token;
        _run = Task.Run(() => RunAsync(backend, token), CancellationToken.None);
    }

    /// <summary>Starts hashing <paramref name="backend"/>'s packs when it is a folder; null otherwise.</summary>
    public static PackPrehash? Start(IStorageBackend backend, CancellationToken ct) =>
        backend is LocalBackend ? new PackPrehash(backend, ct) : null;

    /// <summary>The bytes and SHA-256 of a pack hashed before <see cref="Stop"/>.</summary>
    public bool TryGet(string packId, out ContentDigest digest) => _digests.TryGetValue(packId, out digest);

    /// <summary>Done: every pack hashed, or stopped. Never faults.</summary>
    internal Task Completion => _run;

    /// <summary>Hashes no more packs (idempotent).</summary>
    public void Stop()
    {
        try
        {
            _cts.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private async Task RunAsync(IStorageBackend backend, CancellationToken ct)
    {
        try
        {
            var packs = new List<StoredObject>();
            await foreach (StoredObject o in backend.ListAsync(RepositoryLayout.PacksPrefix, ct).ConfigureAwait(false))
            {
                packs.Add(o);
            }
            // The check's workers take the largest packs first (then by id): hash in that order.
            foreach (StoredObject o in packs.OrderByDescending(o => o.Size).ThenBy(o => o.Key, StringComparer.Ordinal))
            {
                ct.ThrowIfCancellationRequested();
                if (RepositoryLayout.PackIdOf(o.Key) is not { } id)
                {
                    continue; // a stray object: the check reports it
                }
                await using Stream stream = await backend.GetAsync(o.Key, ct).ConfigureAwait(false);
                _digests[id] = await FileCopy.HashAsync(stream, ct).ConfigureAwait(false);
            }
        }
        catch (Exception)
        {
            // Stopped, or a pack that could not be read here: its worker reads, hashes and reports it.
        }
    }

    public async ValueTask DisposeAsync()
    {
        Stop();
        await _run.ConfigureAwait(false);
        _cts.Dispose();
    }
}
