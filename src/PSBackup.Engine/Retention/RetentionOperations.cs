using PSBackup.Engine.Events;
using System.Globalization;
using System.Security.Cryptography;
using PSBackup.Engine.ObjectStore;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Restore;
using PSBackup.Engine.Storage;

namespace PSBackup.Engine.Retention;

/// <summary>Remove-ExpiredBackup / <c>psbackup prune</c>.</summary>
public static class RetentionOperations
{
    private const string Action = "Remove expired backup";

    /// <summary>Applies the policy and removes what it does not keep (audited like every
    /// operation; not part of the backup history, which records backups, ships and restores).</summary>
    public static Task<IReadOnlyList<RetentionItem>> RemoveExpiredAsync(RemoveExpiredBackupOptions options, OperationContext context) =>
        OperationRecorder.RunAsync(new OperationScope
            {
                Operation = "Remove-ExpiredBackup", Category = "retention", Namespace = options?.Namespace ?? options?.Dir,
                Target = options?.Repository?.Location ?? options?.DataDir ?? options?.DbRoot, History = false,
            },
            context, c => RemoveExpiredCoreAsync(options!, c),
            r => new OperationOutcome(r.Where(i => i.Removed).Sum(i => i.Bytes), true, null, null));

    private static async Task<IReadOnlyList<RetentionItem>> RemoveExpiredCoreAsync(RemoveExpiredBackupOptions options, OperationContext context)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(context);
        options.Policy.Validate();
        if (options.PackGracePeriod < TimeSpan.Zero)
        {
            throw new InvalidInputException("InvalidPackGracePeriod", $"-PackGracePeriod {options.PackGracePeriod} is negative; give a duration such as 1h. Nothing was removed.");
        }
        int sources = (options.Repository is not null ? 1 : 0) + (options.DataDir is not null ? 1 : 0) + (options.DbRoot is not null ? 1 : 0);
        if (sources != 1)
        {
            throw new InvalidInputException("AmbiguousBackupSource",
                "Say what to prune: -Repository (a repository), -DataDir with -Namespace (a namespace's local snapshots and WAL), or -DbRoot with -Dir (local object backups); exactly one of them. Nothing was removed.");
        }
        if (options.Repository is not null)
        {
            return await PruneRepositoryAsync(options, context).ConfigureAwait(false);
        }
        return options.DataDir is not null
            ? await PruneLocalNamespaceAsync(options, context).ConfigureAwait(false)
            : await PruneLocalObjectsAsync(options, context).ConfigureAwait(false);
    }

    // ------------------------------------------------------------------ local

    private static async Task<IReadOnlyList<RetentionItem>> PruneLocalNamespaceAsync(RemoveExpiredBackupOptions o, OperationContext ctx)
    {
        LocalRestoreSource source = LocalRestoreSource.Open(o.DataDir, o.Namespace);
        string ns = source.Namespace;
        IReadOnlyList<RestorableSnapshot> snapshots = await source.ListSnapshotsAsync(ctx.CancellationToken).ConfigureAwait(false);
        IReadOnlyList<ArchivedSegment> segments = await source.ListSegmentsAsync(ctx.CancellationToken).ConfigureAwait(false);
        NamespaceRetentionPlan plan = RetentionPlanner.PlanNamespace(snapshots, segments, o.Policy);
        var items = new List<RetentionItem>();
        // Snapshots first (manifest, then data: a half-removed snapshot is seen as incomplete),
        // then the segments no retained snapshot needs.
        foreach (Decided<RestorableSnapshot> d in plan.Snapshots)
        {
            ctx.CancellationToken.ThrowIfCancellationRequested();
            RestorableSnapshot s = d.Item;
            bool removed = !d.Keep && ctx.ShouldProcess($"snapshot '{s.Id}' of namespace '{ns}' ({Stamp(s.CreatedAt)}, {s.Location})", Action);
            if (removed)
            {
                DeleteFile(s.Location + LocalManifestSuffix);
                DeleteData(s.Location);
            }
            items.Add(new RetentionItem
            {
                Kind = RetentionItemKind.StoreSnapshot, Decision = d.Keep ? RetentionDecision.Keep : RetentionDecision.Remove, Removed = removed,
                Id = s.Id, Namespace = ns, Time = s.CompletedAt ?? s.CreatedAt, Bytes = s.Bytes, Reasons = d.Reasons, Path = s.Location,
            });
        }
        items.AddRange(DecideLocalSegments(plan, ns, ctx));
        return items;
    }

    private const string LocalManifestSuffix = ".manifest.json";

    private static async Task<IReadOnlyList<RetentionItem>> PruneLocalObjectsAsync(RemoveExpiredBackupOptions o, OperationContext ctx)
    {
        IReadOnlyList<BackupRecord> records = await BackupCatalog.ListAsync(new GetBackupOptions { DbRoot = o.DbRoot, Dir = o.Dir, Object = o.Object }, ctx).ConfigureAwait(false);
        var items = new List<RetentionItem>();
        foreach (IGrouping<string?, BackupRecord> group in records.GroupBy(r => r.Object).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var complete = group.Where(r => r.Complete).ToList();
            foreach (Decided<BackupRecord> d in RetentionPlanner.Decide(complete, r => r.BackupId, r => r.CreatedAt ?? r.Time, o.Policy))
            {
                ctx.CancellationToken.ThrowIfCancellationRequested();
                BackupRecord r = d.Item;
                bool removed = !d.Keep && ctx.ShouldProcess($"object backup '{r.BackupId}' of '{r.Dir}/{r.Object}' ({Stamp(r.Time)}, {r.Path})", Action);
                if (removed)
                {
                    DeleteFile(System.IO.Path.Combine(System.IO.Path.GetDirectoryName(r.Path!)!, ObjectLayout.ManifestName(r.BackupId)));
                    DeleteData(r.Path!);
                }
                items.Add(Item(RetentionItemKind.Object, d, removed, r.BackupId, null, r) with { Path = r.Path });
            }
            foreach (BackupRecord r in group.Where(r => !r.Complete))
            {
                items.Add(new RetentionItem
                {
                    Kind = RetentionItemKind.Object, Decision = RetentionDecision.Keep, Removed = false, Id = r.BackupId,
                    Dir = r.Dir, Object = r.Object, Time = r.Time, Bytes = r.Bytes, Path = r.Path,
                    Reasons = ["incomplete (no manifest): not subject to retention; Clear-StaleArtifact or a manual check decides"],
                });
            }
        }
        return items;
    }

    private static RetentionItem Item(RetentionItemKind kind, Decided<BackupRecord> d, bool removed, string id, string? repository, BackupRecord r) => new()
    {
        Kind = kind, Decision = d.Keep ? RetentionDecision.Keep : RetentionDecision.Remove, Removed = removed, Id = id,
        Repository = repository, BackupId = repository is null ? null : r.BackupId, Namespace = r.Namespace, Dir = r.Dir, Object = r.Object,
        Time = r.Time, Bytes = r.Bytes, Reasons = d.Reasons,
    };

    /// <summary>Keeps or deletes the shipped segment files of a local backup root.</summary>
    private static IEnumerable<RetentionItem> DecideLocalSegments(NamespaceRetentionPlan plan, string ns, OperationContext ctx)
    {
        var items = new List<RetentionItem>();
        foreach (Decided<ArchivedSegment> d in plan.Segments)
        {
            ctx.CancellationToken.ThrowIfCancellationRequested();
            ArchivedSegment seg = d.Item;
            string id = seg.SegmentId.ToString("D9", CultureInfo.InvariantCulture) + (seg.Sealed ? "" : " (partial)");
            bool removed = !d.Keep && ctx.ShouldProcess($"WAL segment {id} of namespace '{ns}' (log {seg.FirstLogIndex}..{seg.LastLogIndex}, {seg.Location})", Action);
            if (removed)
            {
                DeleteFile(seg.Location);
            }
            items.Add(new RetentionItem
            {
                Kind = RetentionItemKind.WalSegment, Decision = d.Keep ? RetentionDecision.Keep : RetentionDecision.Remove, Removed = removed,
                Id = id, Namespace = ns, SegmentId = seg.SegmentId, Time = seg.SealedAt ?? seg.CreatedAt,
                Bytes = seg.Bytes, Reasons = d.Reasons, Path = seg.Location,
            });
        }
        return items;
    }

    internal static void DeleteFile(string path)
    {
        if (File.Exists(path))
        {
            File.Delete(path);
            Durable.FsyncDirectory(System.IO.Path.GetDirectoryName(path)!);
        }
    }

    internal static void DeleteData(string path)
    {
        if (Directory.Exists(path))
        {
            Directory.Delete(path, recursive: true);
        }
        else
        {
            DeleteFile(path);
        }
    }

    private static string Stamp(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);

    // ------------------------------------------------------------- repository

    private static async Task<IReadOnlyList<RetentionItem>> PruneRepositoryAsync(RemoveExpiredBackupOptions o, OperationContext ctx)
    {
        CancellationToken ct = ctx.CancellationToken;
        string? onlyNs = o.Namespace is null ? null : SafePath.ValidateName(o.Namespace, "namespace");
        string? onlyDir = o.Dir is null ? null : SafePath.ValidateName(o.Dir, "dir");
        string? onlyObj = o.Object is null ? null : SafePath.ValidateName(o.Object, "object");
        // Exclusive: no backup may reuse a pack this prune is about to delete (-WhatIf deletes nothing and takes no lock).
        await using OpenRepository open = await RepositoryConnector.OpenForWriteAsync(o.Repository!, RepositoryLockMode.Exclusive, "Remove-ExpiredBackup", ctx).ConfigureAwait(false);
        Repository.Repository repo = open.Repository;
        if (open.Lock is not null)
        {
            await RepositoryLock.RemoveStaleAsync(repo.Backend, ctx.Clock, ct).ConfigureAwait(false);
        }
        string location = repo.Location;

        ctx.Report("Remove-ExpiredBackup", "Reading manifests", 0, 0);
        var damaged = new Dictionary<string, RepositoryIntegrityException>(StringComparer.Ordinal);
        Dictionary<string, RepositoryManifest> manifests = await ReadAllManifestsAsync(repo, ct, damaged).ConfigureAwait(false);
        var items = new List<RetentionItem>();
        var toRemove = new List<(string Id, string Target, Func<bool, RetentionItem> Make)>();

        // Damaged manifests are not backups (nothing can restore them): they go, like expired ones,
        // so one flipped byte never disables retention. A manifest of a newer format is not damage.
        foreach ((string id, RepositoryIntegrityException e) in damaged.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            RetentionItem Make(bool removed) => new()
            {
                Kind = RetentionItemKind.DamagedBackup, Decision = RetentionDecision.Remove, Removed = removed,
                Id = id, Repository = location, BackupId = id, Time = null, Bytes = 0,
                Reasons = [$"damaged ({e.ErrorId}): {e.Message}"],
            };
            toRemove.Add((id, $"damaged backup {id} in {location}", Make));
        }

        // Store snapshots and WAL segments, per namespace.
        var namespaces = manifests.Values.Where(m => m.Kind is BackupKind.StoreSnapshot or BackupKind.WalSegment && m.Namespace is not null)
            .Select(m => m.Namespace!).Distinct(StringComparer.Ordinal).Where(n => onlyNs is null || n == onlyNs).Order(StringComparer.Ordinal).ToList();
        if (onlyDir is null || onlyNs is not null)
        {
            foreach (string ns in namespaces)
            {
                var snaps = manifests.Values.Where(m => m.Kind == BackupKind.StoreSnapshot && m.Namespace == ns && m.Wal is not null)
                    .Select(m => new RestorableSnapshot
                    {
                        Id = m.Id, CreatedAt = m.CreatedAt, CompletedAt = m.CompletedAt, Wal = m.Wal!,
                        Files = m.Files.Select(f => new ManifestFile(f.Path, f.Size, f.Sha256)).ToList(), Location = m.Id,
                    }).ToList();
                var segs = manifests.Values.Where(m => m.Kind == BackupKind.WalSegment && m.Namespace == ns && m.Segment is not null && m.Files.Count == 1)
                    .Select(m => new ArchivedSegment
                    {
                        SegmentId = m.Segment!.SegmentId, Sealed = m.Segment.Sealed, FirstLogIndex = m.Segment.FirstLogIndex, EntryCount = m.Segment.EntryCount,
                        CreatedAt = m.Segment.CreatedAt ?? m.CreatedAt, SealedAt = m.Segment.Sealed ? m.Segment.LastModifiedAt : null,
                        ObservedAt = m.Segment.Sealed ? null : m.Segment.ObservedAt, Bytes = m.Files[0].Size, Sha256 = m.Files[0].Sha256, Location = m.Id,
                    }).ToList();
                NamespaceRetentionPlan plan = RetentionPlanner.PlanNamespace(snaps, segs, o.Policy);
                foreach (Decided<RestorableSnapshot> d in plan.Snapshots)
                {
                    RestorableSnapshot s = d.Item;
                    RetentionItem Make(bool removed) => new()
                    {
                        Kind = RetentionItemKind.StoreSnapshot, Decision = d.Keep ? RetentionDecision.Keep : RetentionDecision.Remove, Removed = removed,
                        Id = s.Id, Repository = location, BackupId = s.Id, Namespace = ns, Time = s.CompletedAt ?? s.CreatedAt, Bytes = s.Bytes, Reasons = d.Reasons,
                    };
                    if (d.Keep) { items.Add(Make(false)); }
                    else { toRemove.Add((s.Id, $"snapshot {s.Id} of namespace '{ns}' ({Stamp(s.CreatedAt)}) in {location}", Make)); }
                }
                foreach (Decided<ArchivedSegment> d in plan.Segments)
                {
                    ArchivedSegment seg = d.Item;
                    string id = seg.SegmentId.ToString("D9", CultureInfo.InvariantCulture) + (seg.Sealed ? "" : " (partial)");
                    RetentionItem Make(bool removed) => new()
                    {
                        Kind = RetentionItemKind.WalSegment, Decision = d.Keep ? RetentionDecision.Keep : RetentionDecision.Remove, Removed = removed,
                        Id = id, Repository = location, BackupId = seg.Location, Namespace = ns, SegmentId = seg.SegmentId,
                        Time = seg.SealedAt ?? seg.ObservedAt ?? seg.CreatedAt, Bytes = seg.Bytes, Reasons = d.Reasons,
                    };
                    if (d.Keep) { items.Add(Make(false)); }
                    else { toRemove.Add((seg.Location, $"WAL segment {id} of namespace '{ns}' (log {seg.FirstLogIndex}..{seg.LastLogIndex}, backup {seg.Location}) in {location}", Make)); }
                }
            }
        }
        // Object backups, per dir/object.
        if (onlyNs is null || onlyDir is not null)
        {
            var objects = manifests.Values.Where(m => m.Kind == BackupKind.Object && (onlyDir is null || m.Dir == onlyDir) && (onlyObj is null || m.Object == onlyObj))
                .GroupBy(m => (m.Dir, m.Object)).OrderBy(g => g.Key.Dir, StringComparer.Ordinal).ThenBy(g => g.Key.Object, StringComparer.Ordinal);
            foreach (var group in objects)
            {
                foreach (Decided<RepositoryManifest> d in RetentionPlanner.Decide(group.ToList(), m => m.Id, m => m.CreatedAt, o.Policy))
                {
                    RepositoryManifest m = d.Item;
                    RetentionItem Make(bool removed) => new()
                    {
                        Kind = RetentionItemKind.Object, Decision = d.Keep ? RetentionDecision.Keep : RetentionDecision.Remove, Removed = removed,
                        Id = m.Id, Repository = location, BackupId = m.Id, Dir = m.Dir, Object = m.Object, Time = m.CompletedAt ?? m.CreatedAt, Bytes = m.TotalBytes, Reasons = d.Reasons,
                    };
                    if (d.Keep) { items.Add(Make(false)); }
                    else { toRemove.Add((m.Id, $"object backup {m.Id} of '{m.Dir}/{m.Object}' ({Stamp(m.CreatedAt)}) in {location}", Make)); }
                }
            }
        }

        // 1. Forget: refs, then the manifest (the backup no longer exists once its manifest is gone).
        IReadOnlyList<RepositoryRef> refs = await repo.ListRefsAsync("", ct).ConfigureAwait(false);
        var removedIds = new HashSet<string>(StringComparer.Ordinal);
        int done = 0;
        foreach ((string id, string target, Func<bool, RetentionItem> make) in toRemove)
        {
            ct.ThrowIfCancellationRequested();
            bool go = ctx.ShouldProcess(target, Action);
            if (go)
            {
                foreach (RepositoryRef r in refs.Where(r => r.ManifestId == id))
                {
                    await repo.Backend.DeleteAsync(RepositoryLayout.RefKey(r.Name, r.ManifestId), ct).ConfigureAwait(false);
                }
                await repo.Backend.DeleteAsync(RepositoryLayout.ManifestKey(id), ct).ConfigureAwait(false);
                removedIds.Add(id);
            }
            items.Add(make(go));
            ctx.Report("Remove-ExpiredBackup", "Removing expired backups", ++done, toRemove.Count, target);
        }

        // 2. Reclaim packs no remaining manifest references.
        items.AddRange(await ReclaimPacksAsync(repo, toRemove.Select(t => t.Id).ToHashSet(StringComparer.Ordinal), removedIds, o.PackGracePeriod, ctx).ConfigureAwait(false));
        items.AddRange(await ReclaimLeftoversAsync(repo.Backend, o.PackGracePeriod, ctx).ConfigureAwait(false));
        return items;
    }

    /// <summary>Temp files interrupted puts left (a killed backup's half-written pack): removed once
    /// older than the grace period, since a running put's temp file is younger.</summary>
    internal static async Task<IReadOnlyList<RetentionItem>> ReclaimLeftoversAsync(IStorageBackend backend, TimeSpan grace, OperationContext ctx)
    {
        CancellationToken ct = ctx.CancellationToken;
        DateTimeOffset cutoff = ctx.UtcNow - grace;
        var items = new List<RetentionItem>();
        await foreach (StoredObject left in StorageLeftovers.List(backend, ct).ConfigureAwait(false))
        {
            RetentionItem Make(RetentionDecision d, bool gone, string why) => new()
            {
                Kind = RetentionItemKind.TempFile, Decision = d, Removed = gone, Id = left.Key, Repository = backend.Location,
                Time = left.LastModified, Bytes = left.Size, Reasons = [why], Path = left.Key,
            };
            if (left.LastModified is not { } written || written > cutoff)
            {
                items.Add(Make(RetentionDecision.Keep, false, $"temp file younger than the grace period ({Durations.Format(grace)}): a running write may still own it"));
                continue;
            }
            bool go = ctx.ShouldProcess($"temp file {left.Key} ({left.Size.ToString(CultureInfo.InvariantCulture)} bytes) in {backend.Location}", "Remove leftover temp file");
            if (go)
            {
                await StorageLeftovers.Delete(backend, left.Key, ct).ConfigureAwait(false);
            }
            items.Add(Make(RetentionDecision.Remove, go, "left by an interrupted write"));
        }
        return items;
    }

    /// <summary>Every readable manifest; damaged ones go to <paramref name="damaged"/> (null: ignored).
    /// A manifest of a newer format stops the prune: its retention cannot be decided here.</summary>
    internal static async Task<Dictionary<string, RepositoryManifest>> ReadAllManifestsAsync(Repository.Repository repo, CancellationToken ct,
        Dictionary<string, RepositoryIntegrityException>? damaged = null)
    {
        var ids = new List<string>();
        await foreach (StoredObject so in repo.Backend.ListAsync(RepositoryLayout.SnapshotsPrefix, ct).ConfigureAwait(false))
        {
            ids.Add(so.Key[RepositoryLayout.SnapshotsPrefix.Length..]);
        }
        var result = new Dictionary<string, RepositoryManifest>(StringComparer.Ordinal);
        await Parallel.ForEachAsync(ids, new ParallelOptions { MaxDegreeOfParallelism = 4, CancellationToken = ct }, async (id, c) =>
        {
            RepositoryManifest m;
            try
            {
                m = await repo.ReadManifestAsync(id, c).ConfigureAwait(false);
            }
            catch (RepositoryIntegrityException e) when (e.ErrorId != "ManifestTooNew")
            {
                if (damaged is not null)
                {
                    lock (damaged)
                    {
                        damaged[id] = e;
                    }
                }
                return;
            }
            catch (RepositoryIntegrityException e)
            {
                throw new OperationFailedException("ManifestTooNew", $"{e.Message} Retention is not decided while backups of a newer format exist; nothing was removed.", e.ObjectKey, e);
            }
            catch (InvalidInputException)
            {
                return; // not a manifest name (a stray object); check reports it
            }
            lock (result)
            {
                result[id] = m;
            }
        }).ConfigureAwait(false);
        return result;
    }

    /// <summary>Prune folds the index objects into one from this many on, even when no pack goes.</summary>
    internal const int CompactIndexObjects = 16;

    /// <summary>Packs no manifest that will remain references, older than the grace period. The
    /// index is rewritten without them first (new object written, then the old ones deleted), then
    /// the packs go: interrupted at any step the repository stays valid (at worst unreferenced
    /// packs or index entries that check reports as warnings and the next prune reclaims).
    /// <paramref name="onlyWith"/>: only packs holding one of these chunks (Remove-Backup reclaims
    /// what the removed backups used, not every unreferenced pack); null: all (prune).</summary>
    internal static async Task<IEnumerable<RetentionItem>> ReclaimPacksAsync(Repository.Repository repo, HashSet<string> planned, HashSet<string> removed,
        TimeSpan grace, OperationContext ctx, HashSet<ChunkId>? onlyWith = null, string activity = "Remove-ExpiredBackup")
    {
        CancellationToken ct = ctx.CancellationToken;
        string location = repo.Location;
        ctx.Report(activity, "Finding unreferenced packs", 0, 0);
        // Re-read what exists now: backups committed meanwhile by other hosts count as live.
        Dictionary<string, RepositoryManifest> existing = await ReadAllManifestsAsync(repo, ct).ConfigureAwait(false);
        var liveIfPlanned = new HashSet<ChunkId>();
        var liveNow = new HashSet<ChunkId>();
        foreach ((string id, RepositoryManifest m) in existing)
        {
            foreach (ChunkId c in m.Files.SelectMany(f => f.Chunks))
            {
                liveNow.Add(c);
                if (!planned.Contains(id))
                {
                    liveIfPlanned.Add(c);
                }
            }
        }
        _ = removed;
        var indexKeys = new List<string>();
        await foreach (StoredObject so in repo.Backend.ListAsync(RepositoryLayout.IndexPrefix, ct).ConfigureAwait(false))
        {
            indexKeys.Add(so.Key);
        }
        var indexed = new Dictionary<string, IndexPack>(StringComparer.Ordinal);
        var chunksOf = new Dictionary<string, HashSet<ChunkId>>(StringComparer.Ordinal);
        int indexObjects = 0;
        foreach (string key in indexKeys)
        {
            if (!Hex.IsSha256Hex(key[RepositoryLayout.IndexPrefix.Length..]))
            {
                continue; // not an index name: check warns about it and ignores it, so does prune
            }
            indexObjects++;
            IndexObject idx;
            try
            {
                idx = await repo.ReadIndexObjectAsync(key, ct).ConfigureAwait(false);
            }
            catch (RepositoryIntegrityException e)
            {
                // Which packs it named is unknown, so no pack is proven unused: refuse, name the fix.
                throw new RepositoryIntegrityException(e.ErrorId == "ObjectNotRegular" ? "IndexCorrupt" : e.ErrorId,
                    $"{e.Message} Prune removes no pack while an index object is damaged (a pack only it names would look unused). Run Repair-BackupRepository (it rebuilds the index from the packs), then prune again.", key, inner: e);
            }
            foreach (IndexPack p in idx.Packs)
            {
                indexed.TryAdd(p.Id, p);
                if (!chunksOf.TryGetValue(p.Id, out HashSet<ChunkId>? set))
                {
                    chunksOf[p.Id] = set = [];
                }
                foreach (ChunkEntry c in p.Frames.SelectMany(f => f.Chunks))
                {
                    set.Add(c.Id);
                }
            }
        }
        DateTimeOffset cutoff = ctx.UtcNow - grace;
        var items = new List<RetentionItem>();
        var approved = new List<StoredObject>();
        await foreach (StoredObject pack in repo.Backend.ListAsync(RepositoryLayout.PacksPrefix, ct).ConfigureAwait(false))
        {
            string id = pack.Key[(pack.Key.LastIndexOf('/') + 1)..];
            bool has = chunksOf.TryGetValue(id, out HashSet<ChunkId>? chunks);
            if (has && chunks!.Overlaps(liveIfPlanned))
            {
                continue; // in use: not listed
            }
            if (onlyWith is not null && !(has && chunks!.Overlaps(onlyWith)))
            {
                continue; // not one of the removed backups' packs
            }
            RetentionItem Make(RetentionDecision d, bool gone, string why) => new()
            {
                Kind = RetentionItemKind.Pack, Decision = d, Removed = gone, Id = id, Repository = location, Time = pack.LastModified,
                Bytes = pack.Size, Reasons = [why], Path = pack.Key,
            };
            string what = has ? "used by no remaining backup" : "in no index (left by an interrupted backup)";
            if (pack.LastModified is not { } written || written > cutoff)
            {
                items.Add(Make(RetentionDecision.Keep, false, $"{what}, but younger than the grace period ({Durations.Format(grace)}): a running backup may still commit it"));
                continue;
            }
            if (has && chunks!.Overlaps(liveNow))
            {
                items.Add(Make(RetentionDecision.Remove, false, "would be unused once the declined removals are made; kept because a backup using it remains"));
                continue;
            }
            if (ctx.ShouldProcess($"pack {id} ({pack.Size.ToString(CultureInfo.InvariantCulture)} bytes, {what}) in {location}", "Remove unreferenced pack"))
            {
                approved.Add(pack);
            }
            else
            {
                items.Add(Make(RetentionDecision.Remove, false, what));
            }
        }
        // Index first: one new object without the packs going, then the old objects. Prune also
        // folds many index objects into one when no pack goes: every backup writes one (a WAL
        // shipper every minute, 1,440 a day), and every open of the repository reads them all.
        // One object, never several: a session that holds the index (the continuous shipper) knows
        // it is stale when one of two objects it knows is gone, and only a single new object
        // cannot leave two distinct old ones standing.
        var going = approved.Select(p => p.Key[(p.Key.LastIndexOf('/') + 1)..]).ToHashSet(StringComparer.Ordinal);
        bool compact = onlyWith is null && approved.Count == 0 && indexObjects >= CompactIndexObjects
            && ctx.ShouldProcess($"{indexObjects.ToString(CultureInfo.InvariantCulture)} index objects in {location}", "Fold the index objects into one");
        if (approved.Count == 0 && !compact)
        {
            return items;
        }
        if (compact || indexed.Keys.Any(going.Contains))
        {
            var remaining = indexed.Values.Where(p => !going.Contains(p.Id)).OrderBy(p => p.Id, StringComparer.Ordinal).ToList();
            string? newKey = null;
            if (remaining.Count > 0)
            {
                byte[] blob = repo.Codec.EncodeJson(new IndexObject(1, remaining));
                newKey = RepositoryLayout.IndexKey(Hex.Encode(SHA256.HashData(blob)));
                await Repository.Repository.PutBytesAsync(repo.Backend, newKey, blob, ct).ConfigureAwait(false);
            }
            foreach (string key in indexKeys.Where(k => k != newKey))
            {
                await repo.Backend.DeleteAsync(key, ct).ConfigureAwait(false);
            }
            if (compact)
            {
                OperationLog.Verbose($"Folded {indexObjects.ToString(CultureInfo.InvariantCulture)} index objects of {location} into one ({remaining.Count.ToString(CultureInfo.InvariantCulture)} packs).");
            }
        }
        int done = 0;
        foreach (StoredObject pack in approved)
        {
            ct.ThrowIfCancellationRequested();
            await repo.Backend.DeleteAsync(pack.Key, ct).ConfigureAwait(false);
            string id = pack.Key[(pack.Key.LastIndexOf('/') + 1)..];
            items.Add(new RetentionItem
            {
                Kind = RetentionItemKind.Pack, Decision = RetentionDecision.Remove, Removed = true, Id = id, Repository = location,
                Time = pack.LastModified, Bytes = pack.Size, Path = pack.Key,
                Reasons = [chunksOf.ContainsKey(id) ? "used by no remaining backup" : "in no index (left by an interrupted backup)"],
            });
            ctx.Report(activity, "Removing unreferenced packs", ++done, approved.Count, id);
        }
        await repo.ReloadIndexAsync(ct).ConfigureAwait(false);
        return items;
    }
}
