using PSBackup.Engine.Repository;

namespace PSBackup.Engine.Wal;

/// <summary>What a continuous shipper keeps between its passes into one repository, so that a pass
/// costs what it ships, not what the repository holds (docs/design.md, WAL, "Continuous shipping").</summary>
/// <remarks>
/// <para>A one-shot ship opens the repository (config, keys: with a passphrase, 600,000 PBKDF2
/// iterations), takes a lock, reads every index object and lists every ref of the namespace. Done
/// every second, that is a key derivation per second and a cost that grows with every partial
/// committed. A session opens the repository once and keeps it open; each pass still takes its own
/// shared lock (so prune can get in between passes), and then only checks that the index it holds
/// is still right.</para>
/// <para><b>The index.</b> A follower deduplicates only against the newest partial of the segment
/// it ships (the next partial, or the sealed segment, repeats its chunks), so after each pass the
/// in-memory index is cut down to that partial's chunks: memory stays flat however many partials
/// are committed. Those chunks are referenced by a live manifest, so prune never removes their
/// packs. What other writers store meanwhile is not seen: at worst a chunk is stored twice. Prune
/// and repair replace the index objects (<c>ReclaimPacksAsync</c> writes one new object and deletes
/// every other; repair deletes every object it rewrote), so two index objects this process knows
/// to exist are checked each pass (one stat each): after any prune at least one of two distinct
/// objects is gone, and the index is then read again in full. Packs marked damaged are listed each
/// pass (usually an empty listing).</para>
/// <para><b>The refs.</b> The namespace's WAL refs are listed once and then kept current with this
/// session's own commits and forgets; they are listed again every <see cref="RelistEvery"/> and
/// after a prune, so what other hosts or retention changed is seen within that time.</para>
/// <para>Any failure of a pass resets the session (<see cref="ResetAsync"/>): the next attempt opens
/// the repository again, as a one-shot ship would.</para>
/// </remarks>
internal sealed class WalRepositorySession(RepositoryTarget target, string ns) : IAsyncDisposable
{
    /// <summary>How long a listing of the namespace's refs is trusted before it is taken again.</summary>
    public static readonly TimeSpan RelistEvery = TimeSpan.FromMinutes(10);

    private readonly object _gate = new();
    private readonly string _prefix = WalRepositoryShip.RefPrefix(ns);
    private OpenRepository? _open;
    private List<RepositoryRef>? _refs;
    private DateTimeOffset _listedAt;
    private (long SegmentId, RepositoryManifest Manifest)? _newestPartial;
    private IReadOnlyList<ChunkId>? _keep;

    public RepositoryTarget Target { get; } = target;

    /// <summary>Passes run since the repository was (re)opened, and full index reads among them (for tests and the bench).</summary>
    public int Passes { get; private set; }

    public int IndexLoads { get; private set; }

    /// <summary>Refs held in the session's listing (bounded by what the namespace holds, not by passes).</summary>
    public int CachedRefs { get { lock (_gate) { return _refs?.Count ?? 0; } } }

    /// <summary>Chunks in the held index after the last pass.</summary>
    public int IndexedChunks => _open?.Repository.IndexedChunkCount ?? 0;

    /// <summary>Opens the repository when not open, takes this pass's shared lock (none under
    /// -WhatIf) and makes the index current. Dispose the lock at the end of the pass.</summary>
    public async Task<(OpenRepository Open, RepositoryLock? Lock)> BeginAsync(OperationContext context, WalPassClock? clock)
    {
        CancellationToken ct = context.CancellationToken;
        bool fresh = _open is null;
        if (_open is null)
        {
            _open = await RepositoryConnector.OpenAsync(Target, ct, loadIndex: false).ConfigureAwait(false);
        }
        clock?.Lap(WalPassPhase.Open);
        RepositoryLock? held = context.WhatIf ? null
            : await RepositoryLock.AcquireAsync(_open.Backend, RepositoryLockMode.Shared, "Invoke-WalShip", context.Clock, ct).ConfigureAwait(false);
        clock?.Lap(WalPassPhase.Lock);
        try
        {
            Repository.Repository repo = _open.Repository;
            if (fresh || !await repo.IndexStillCurrentAsync(ct).ConfigureAwait(false))
            {
                // First pass, or a prune or repair replaced the index: read it in full, and take
                // the refs again (retention may have removed some).
                await repo.ReloadIndexAsync(ct).ConfigureAwait(false);
                IndexLoads++;
                lock (_gate)
                {
                    _refs = null;
                    _newestPartial = null;
                    _keep = null;
                }
            }
            else
            {
                await repo.RefreshDamagedMarksAsync(ct).ConfigureAwait(false);
            }
            Passes++;
            clock?.Lap(WalPassPhase.Index);
            return (_open, held);
        }
        catch
        {
            if (held is not null)
            {
                await held.DisposeAsync().ConfigureAwait(false);
            }
            throw;
        }
    }

    /// <summary>After a successful pass: the held index keeps only what the next pass deduplicates against.</summary>
    public void EndPass()
    {
        IReadOnlyList<ChunkId> keep;
        lock (_gate)
        {
            keep = _keep ?? [];
        }
        _open?.Repository.KeepOnlyInIndex(keep);
    }

    /// <summary>The refs under <paramref name="prefix"/> (which starts with the namespace's WAL prefix).</summary>
    public async Task<IReadOnlyList<RepositoryRef>> ListRefsAsync(Repository.Repository repo, string prefix, DateTimeOffset now, CancellationToken ct)
    {
        if (!prefix.StartsWith(_prefix, StringComparison.Ordinal))
        {
            return await repo.ListRefsAsync(prefix, ct).ConfigureAwait(false);
        }
        bool relist;
        lock (_gate)
        {
            relist = _refs is null || now - _listedAt >= RelistEvery || now < _listedAt;
        }
        if (relist)
        {
            IReadOnlyList<RepositoryRef> listed = await repo.ListRefsAsync(_prefix, ct).ConfigureAwait(false);
            lock (_gate)
            {
                _refs = [.. listed];
                _listedAt = now;
            }
        }
        lock (_gate)
        {
            return _refs!.Where(r => r.Name.StartsWith(prefix, StringComparison.Ordinal)).ToList();
        }
    }

    /// <summary>A ref this session committed.</summary>
    public void Added(string refName, string manifestId)
    {
        lock (_gate)
        {
            _refs?.Add(new RepositoryRef(refName, manifestId));
        }
    }

    /// <summary>A ref this session forgot.</summary>
    public void Removed(string refName, string manifestId)
    {
        lock (_gate)
        {
            _refs?.RemoveAll(r => r.Name == refName && r.ManifestId == manifestId);
        }
    }

    /// <summary>Manifests read by id (immutable: an id is the hash of the manifest's bytes), the
    /// last few only: the archived segment before the active one is read for the log-index seam on
    /// every pass.</summary>
    private readonly List<RepositoryManifest> _manifests = [];

    public async Task<RepositoryManifest> ReadManifestAsync(Repository.Repository repo, string id, CancellationToken ct)
    {
        lock (_gate)
        {
            if (_manifests.Find(m => m.Id == id) is { } held)
            {
                return held;
            }
        }
        RepositoryManifest read = await repo.ReadManifestAsync(id, ct).ConfigureAwait(false);
        lock (_gate)
        {
            _manifests.Add(read);
            if (_manifests.Count > 4)
            {
                _manifests.RemoveAt(0);
            }
        }
        return read;
    }

    /// <summary>The newest partial this session committed, when it is of <paramref name="segmentId"/>.</summary>
    public RepositoryManifest? NewestPartial(long segmentId)
    {
        lock (_gate)
        {
            return _newestPartial is { } p && p.SegmentId == segmentId ? p.Manifest : null;
        }
    }

    /// <summary>A partial this session committed: the next pass deduplicates against its chunks.</summary>
    public void PartialCommitted(long segmentId, RepositoryManifest manifest)
    {
        lock (_gate)
        {
            _newestPartial = (segmentId, manifest);
            _keep = manifest.Files.Count == 1 ? manifest.Files[0].Chunks : [];
        }
    }

    /// <summary>A sealed segment this session committed: its partials are done with (superseded;
    /// retention removes them), so the listing held drops them too and stays as small as the
    /// archive's list of segments.</summary>
    public void SealedCommitted(long segmentId)
    {
        lock (_gate)
        {
            string partials = WalRepositoryShip.RefName(ns, segmentId) + WalPartialShip.RefMarker;
            _refs?.RemoveAll(r => r.Name.StartsWith(partials, StringComparison.Ordinal));
            if (_newestPartial is { } p && p.SegmentId == segmentId)
            {
                _newestPartial = null;
                _keep = null;
            }
        }
    }

    /// <summary>Forgets everything: the next pass opens the repository again.</summary>
    public async Task ResetAsync()
    {
        OpenRepository? open = _open;
        _open = null;
        lock (_gate)
        {
            _refs = null;
            _newestPartial = null;
            _keep = null;
            _manifests.Clear();
        }
        if (open is not null)
        {
            await open.DisposeAsync().ConfigureAwait(false);
        }
    }

    public ValueTask DisposeAsync() => new(ResetAsync());
}
