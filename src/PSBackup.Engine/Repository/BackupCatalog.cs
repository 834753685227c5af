using System.Globalization;
using PSBackup.Engine.ObjectStore;
using PSBackup.Engine.Storage;
using PSBackup.Engine.Wal;

namespace PSBackup.Engine.Repository;

/// <summary>What Get-Backup lists from: a repository, a namespace's local backup root
/// (<c>&lt;dataDir&gt;/backups/&lt;ns&gt;</c>), or a tenant dir of an object store. Exactly one of
/// <see cref="Repository"/>, <see cref="DataDir"/> and <see cref="DbRoot"/>.</summary>
public sealed record GetBackupOptions
{
    public RepositoryTarget? Repository { get; init; }
    /// <summary>Local namespace backups: the data directory (with <see cref="Namespace"/>).</summary>
    public string? DataDir { get; init; }
    /// <summary>Local object backups: the database root (with <see cref="Dir"/>).</summary>
    public string? DbRoot { get; init; }
    public string? Namespace { get; init; }
    public string? Dir { get; init; }
    public string? Object { get; init; }
    public BackupKind? Kind { get; init; }
    /// <summary>Only backups taken at or after this instant.</summary>
    public DateTimeOffset? After { get; init; }
    /// <summary>Only backups taken at or before this instant.</summary>
    public DateTimeOffset? Before { get; init; }
}

/// <summary>One backup as Get-Backup reports it. Property names bind by name into later cmdlets:
/// <see cref="Repository"/>, <see cref="BackupId"/> and <see cref="Namespace"/> for repository
/// backups; <see cref="DbRoot"/>, <see cref="Dir"/>, <see cref="Object"/> and
/// <see cref="BackupName"/> for local object backups (Restore-ObjectBackup).</summary>
public sealed record BackupRecord
{
    /// <summary>The repository location (folder or s3://...); null for a local backup.</summary>
    public string? Repository { get; init; }
    /// <summary>Repository: the manifest id (64 hex). Local: the backup's name (object backup
    /// folder, snapshot path relative to the namespace's backup root, or segment path).</summary>
    public required string BackupId { get; init; }
    public required BackupKind Kind { get; init; }
    public string? Namespace { get; init; }
    public string? Dir { get; init; }
    public string? Object { get; init; }
    /// <summary>The instant the backup stands for, and the one point-in-time restore compares: for an
    /// object backup or store snapshot its completion (<see cref="CompletedAt"/>; <see cref="CreatedAt"/>
    /// for manifests written before completion was recorded), for a WAL segment when it was sealed
    /// (or, for a partial, when the shipper observed it). Get-Backup lists newest first by it, and
    /// <c>Restore-PointInTime -TargetTime $record.Time</c> restores exactly up to that backup.</summary>
    public required DateTimeOffset Time { get; init; }
    /// <summary>When the backup began (the manifest's createdAt; a segment's creation).</summary>
    public DateTimeOffset? CreatedAt { get; init; }
    /// <summary>When the backup was complete (the manifest's completedAt; a sealed segment's seal
    /// stamp); null when the manifest predates the field or the segment is a partial.</summary>
    public DateTimeOffset? CompletedAt { get; init; }
    public required long Bytes { get; init; }
    public required int FileCount { get; init; }
    /// <summary>False for a local object backup folder without its manifest (interrupted or in progress): never restore it.</summary>
    public bool Complete { get; init; } = true;
    public string? Host { get; init; }
    /// <summary>Object backups: "Stable" or "Recent".</summary>
    public string? Consistency { get; init; }
    public long? SegmentId { get; init; }
    public long? FirstLogIndex { get; init; }
    public long? EntryCount { get; init; }
    /// <summary>WAL segments: false for a partial (a prefix of the then-active segment).</summary>
    public bool? Sealed { get; init; }
    /// <summary>Store snapshots: the WAL position the snapshot covers.</summary>
    public WalPosition? Wal { get; init; }
    /// <summary>Local backups: the backup's full path.</summary>
    public string? Path { get; init; }
    /// <summary>Local object backups: the database root, for Restore-ObjectBackup.</summary>
    public string? DbRoot { get; init; }
    /// <summary>Local object backups: the backup folder name, for Restore-ObjectBackup -From.</summary>
    public string? BackupName { get; init; }
    /// <summary>Local namespace backups: the data directory.</summary>
    public string? DataDir { get; init; }
    /// <summary>Repository backups: null when every chunk is in a pack that is present and not marked
    /// damaged; else why the backup cannot be restored as it stands (Repair-BackupRepository, or the
    /// next backup of the same data, may heal it).</summary>
    public string? Problem { get; init; }
}

/// <summary>A manifest Get-Backup could not read (fails its hash, does not decode or validate):
/// listed apart, never as a backup. Namespace, dir and object come from the refs naming it.</summary>
public sealed record DamagedBackup
{
    public required string Repository { get; init; }
    public required string BackupId { get; init; }
    public string? Namespace { get; init; }
    public string? Dir { get; init; }
    public string? Object { get; init; }
    public required string ErrorId { get; init; }
    public required string Message { get; init; }

    /// <summary>The error front ends report for it.</summary>
    public RepositoryIntegrityException ToException() => new(ErrorId, Message, RepositoryLayout.ManifestKey(BackupId), BackupId);
}

/// <summary>What a listing found: the backups, and the manifests that could not be read.</summary>
public sealed record BackupListing(IReadOnlyList<BackupRecord> Backups, IReadOnlyList<DamagedBackup> Damaged);

/// <summary>Get-Backup: lists what a repository or a local backup root holds.</summary>
public static class BackupCatalog
{
    /// <summary>Manifests read at once from a repository.</summary>
    private const int ReadParallelism = 8;

    /// <summary>Every matching backup, newest first by <see cref="BackupRecord.Time"/> (exactly,
    /// ties by id): the whole listing in memory, for the CLI, health and retention.
    /// Damaged manifests are left out (<see cref="ListDetailedAsync"/> names them).</summary>
    public static async Task<IReadOnlyList<BackupRecord>> ListAsync(GetBackupOptions options, OperationContext context) =>
        (await ListDetailedAsync(options, context).ConfigureAwait(false)).Backups;

    /// <summary>The backups (sorted exactly), and (repositories) the manifests that could not be
    /// read: one damaged manifest never hides the others.</summary>
    public static async Task<BackupListing> ListDetailedAsync(GetBackupOptions options, OperationContext context)
    {
        var records = new List<BackupRecord>();
        var damaged = new List<DamagedBackup>();
        await foreach (BackupRecord r in ListEachAsync(options, context, damaged).ConfigureAwait(false))
        {
            records.Add(r);
        }
        List<DamagedBackup> bad;
        lock (damaged)
        {
            bad = damaged.OrderBy(d => d.BackupId, StringComparer.Ordinal).ToList();
        }
        return new BackupListing(Sorted(records), bad);
    }

    /// <summary>The matching backups newest first, streamed: a repository's manifests are read as
    /// the consumer asks for records (at most <see cref="ReadParallelism"/> at once, a few ahead),
    /// so a consumer that stops after the first record (<c>Get-Backup | Select-Object -First 1</c>)
    /// stops the reads, and a slow one holds them back.
    /// <para>Order without reading everything: refs name each backup (<c>object/&lt;dir&gt;/&lt;obj&gt;/&lt;start&gt;</c>,
    /// <c>snapshot/&lt;ns&gt;/&lt;start&gt;Z</c>, <c>wal/&lt;ns&gt;/&lt;segment id&gt;</c>), which splits them into
    /// streams (one object, one namespace's snapshots, one namespace's WAL) that are already in
    /// time order by name: a later start means a later completion for backups of one object or
    /// namespace, and walfs seals segment N before it creates N + 1. The streams are merged by the
    /// exact time of their heads, so only each stream's head must be read before the newest record
    /// is known. Backups of one object or namespace that overlap in time may come out in start
    /// order; <see cref="ListAsync"/> sorts exactly. Manifests no usable ref names (an interrupted
    /// commit or removal) are read first. Name filters (-Namespace, -Dir, -Object, -Kind) skip
    /// streams by their refs without reading them, and are checked again on each manifest (the
    /// source of truth).</para></summary>
    /// <param name="damaged">Collects the repository manifests that could not be read (filtered by
    /// the refs naming them); the caller reports them after the records. Null: skipped silently.</param>
    public static async IAsyncEnumerable<BackupRecord> ListEachAsync(GetBackupOptions options, OperationContext context, ICollection<DamagedBackup>? damaged = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(context);
        int sources = (options.Repository is not null ? 1 : 0) + (options.DataDir is not null ? 1 : 0) + (options.DbRoot is not null ? 1 : 0);
        if (sources != 1)
        {
            throw new InvalidInputException("AmbiguousBackupSource",
                "Say where to list backups from: -Repository (a repository), -DataDir with -Namespace (a namespace's local backups), or -DbRoot with -Dir (local object backups); exactly one of them.");
        }
        if (options.After is { } a && options.Before is { } b && a > b)
        {
            throw new InvalidInputException("InvalidTimeRange", $"-After ({a:O}) is later than -Before ({b:O}); no backup can match. Swap them.");
        }
        if (options.Repository is null)
        {
            IEnumerable<BackupRecord> local = options.DataDir is not null ? ListNamespace(options, context.CancellationToken) : ListObjects(options, context.CancellationToken);
            foreach (BackupRecord r in Sorted(local.Where(r => Matches(options, r))))
            {
                yield return r;
            }
            yield break;
        }
        await foreach (BackupRecord r in StreamRepositoryAsync(options, context, damaged).ConfigureAwait(false))
        {
            if (Matches(options, r))
            {
                yield return r;
            }
        }
    }

    /// <summary>Newest first; at equal times the higher segment id (segments sealed in one clock
    /// tick), then by id, so the merge and the full sort agree.</summary>
    private static List<BackupRecord> Sorted(IEnumerable<BackupRecord> records) =>
        records.OrderByDescending(r => r.Time).ThenByDescending(r => r.SegmentId ?? -1).ThenBy(r => r.BackupId, StringComparer.Ordinal).ToList();

    /// <summary>The order of <see cref="Sorted"/> for two records.</summary>
    private static bool Precedes(BackupRecord x, BackupRecord y) =>
        x.Time != y.Time ? x.Time > y.Time
        : (x.SegmentId ?? -1) != (y.SegmentId ?? -1) ? (x.SegmentId ?? -1) > (y.SegmentId ?? -1)
        : string.CompareOrdinal(x.BackupId, y.BackupId) < 0;

    private static bool Matches(GetBackupOptions options, BackupRecord r) =>
        (options.Kind is null || r.Kind == options.Kind)
        && (options.After is null || r.Time >= options.After)
        && (options.Before is null || r.Time <= options.Before);

    /// <summary>The record Get-Backup shows for a repository manifest.</summary>
    public static BackupRecord RecordOf(RepositoryManifest m, string repository)
    {
        ArgumentNullException.ThrowIfNull(m);
        DateTimeOffset? completed = m.Kind == BackupKind.WalSegment
            ? m.Segment is { Sealed: true } seg ? seg.LastModifiedAt ?? m.CompletedAt : null
            : m.CompletedAt;
        DateTimeOffset time = m.Kind == BackupKind.WalSegment
            ? m.Segment is { } s ? (s.Sealed ? s.LastModifiedAt : s.ObservedAt) ?? m.CompletedAt ?? m.CreatedAt : m.CreatedAt
            : m.CompletedAt ?? m.CreatedAt;
        return new BackupRecord
        {
            Repository = repository,
            BackupId = m.Id,
            Kind = m.Kind,
            Namespace = m.Namespace,
            Dir = m.Dir,
            Object = m.Object,
            Time = time,
            CreatedAt = m.Kind == BackupKind.WalSegment ? m.Segment?.CreatedAt ?? m.CreatedAt : m.CreatedAt,
            CompletedAt = completed,
            Bytes = m.TotalBytes,
            FileCount = m.Files.Count,
            Host = m.Host,
            Consistency = m.Consistency,
            SegmentId = m.Segment?.SegmentId,
            FirstLogIndex = m.Segment?.FirstLogIndex,
            EntryCount = m.Segment?.EntryCount,
            Sealed = m.Segment?.Sealed,
            Wal = m.Wal,
        };
    }

    /// <summary>One time-ordered run of backups named by refs (see <see cref="ListEachAsync"/>):
    /// the manifest ids still to read (newest name first) and the reads started for them.</summary>
    private sealed class BackupStream(List<string> ids)
    {
        public int Next;
        public readonly Queue<Task<BackupRecord?>> Reading = new();
        public BackupRecord? Head;
        public bool Done => Head is null && Reading.Count == 0 && Next >= ids.Count;
        public List<string> Ids => ids;
    }

    /// <summary>Reads started ahead per stream: the head and the one after it, so the next record
    /// of the stream just emitted is usually ready.</summary>
    private const int Lookahead = 2;

    private static async IAsyncEnumerable<BackupRecord> StreamRepositoryAsync(GetBackupOptions options, OperationContext context, ICollection<DamagedBackup>? damaged)
    {
        if (options.Namespace is not null) { SafePath.ValidateName(options.Namespace, "namespace"); }
        if (options.Dir is not null) { SafePath.ValidateName(options.Dir, "dir"); }
        if (options.Object is not null) { SafePath.ValidateName(options.Object, "object"); }
        // The index is loaded (not only manifests and refs): each record says whether every chunk it
        // needs is in a pack that exists and is not marked damaged (BackupRecord.Problem).
        using OpenRepository open = await RepositoryConnector.OpenAsync(options.Repository!, context.CancellationToken).ConfigureAwait(false);
        Repository repo = open.Repository;
        string location = options.Repository!.Location;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken);
        CancellationToken ct = stop.Token;

        // Refs before manifests: a listed ref's manifest was written before it, so it is in the
        // later listing unless a removal took it meanwhile.
        IReadOnlyList<RepositoryRef> refs = await repo.ListRefsAsync("", ct).ConfigureAwait(false);
        Dictionary<string, (string? Ns, string? Dir, string? Obj)> owners = OwnersOf(refs);
        var ids = new HashSet<string>(StringComparer.Ordinal);
        await foreach (StoredObject o in open.Backend.ListAsync(RepositoryLayout.SnapshotsPrefix, ct).ConfigureAwait(false))
        {
            ids.Add(o.Key[RepositoryLayout.SnapshotsPrefix.Length..]);
        }
        var named = new Dictionary<string, List<(string Key, string Id)>>(StringComparer.Ordinal);
        var placed = new HashSet<string>(StringComparer.Ordinal);
        foreach (RepositoryRef r in refs.OrderBy(r => r.Name, StringComparer.Ordinal).ThenBy(r => r.ManifestId, StringComparer.Ordinal))
        {
            if (!ids.Contains(r.ManifestId) || placed.Contains(r.ManifestId) || BackupRefName.Parse(r.Name) is not { } named1)
            {
                continue;
            }
            placed.Add(r.ManifestId);
            if (!named1.Matches(options.Kind, options.Namespace, options.Dir, options.Object))
            {
                continue; // filtered out by its name: never read
            }
            if (!named.TryGetValue(named1.Stream, out List<(string, string)>? list))
            {
                named[named1.Stream] = list = [];
            }
            list.Add((named1.SortKey, r.ManifestId));
        }
        var unnamed = ids.Where(id => !placed.Contains(id)).Order(StringComparer.Ordinal).ToList();
        int total = unnamed.Count + named.Values.Sum(l => l.Count);
        int done = 0;
        using var gate = new SemaphoreSlim(ReadParallelism);
        var started = new List<Task>();

        async Task<BackupRecord?> ReadAsync(string id)
        {
            await gate.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                ct.ThrowIfCancellationRequested();
                RepositoryManifest m;
                try
                {
                    m = await repo.ReadManifestAsync(id, ct).ConfigureAwait(false);
                }
                catch (RepositoryIntegrityException e)
                {
                    owners.TryGetValue(id, out (string? Ns, string? Dir, string? Obj) owner);
                    if (damaged is not null
                        && (options.Namespace is null || owner.Ns is null || owner.Ns == options.Namespace)
                        && (options.Dir is null || owner.Dir is null || owner.Dir == options.Dir)
                        && (options.Object is null || owner.Obj is null || owner.Obj == options.Object))
                    {
                        lock (damaged)
                        {
                            damaged.Add(new DamagedBackup
                            {
                                Repository = location, BackupId = id, Namespace = owner.Ns, Dir = owner.Dir, Object = owner.Obj,
                                ErrorId = e.ErrorId, Message = e.Message,
                            });
                        }
                    }
                    return null;
                }
                int n = Interlocked.Increment(ref done);
                context.Report("List backups", $"Read {n} of {total} manifests", n, total, id);
                if ((options.Namespace is not null && m.Namespace != options.Namespace)
                    || (options.Dir is not null && m.Dir != options.Dir)
                    || (options.Object is not null && m.Object != options.Object)
                    || (options.Kind is not null && m.Kind != options.Kind))
                {
                    return null;
                }
                return RecordOf(m, location) with { Problem = repo.RestoreProblem(m) };
            }
            finally
            {
                gate.Release();
            }
        }

        Task<BackupRecord?> Start(string id)
        {
            Task<BackupRecord?> t = ReadAsync(id);
            started.Add(t);
            return t;
        }

        var streams = named.Values.Select(l => new BackupStream(l.OrderByDescending(e => e.Key, StringComparer.Ordinal).Select(e => e.Id).ToList())).ToList();
        try
        {
            // Unnamed manifests could be anywhere in time: read them all first.
            var early = new List<BackupRecord>();
            foreach (Task<BackupRecord?> t in unnamed.Select(Start).ToList())
            {
                if (await t.ConfigureAwait(false) is { } r)
                {
                    early.Add(r);
                }
            }
            var loose = new Queue<BackupRecord>(Sorted(early));

            void Fill(BackupStream s)
            {
                while (s.Reading.Count < Lookahead && s.Next < s.Ids.Count)
                {
                    s.Reading.Enqueue(Start(s.Ids[s.Next++]));
                }
            }

            async Task AdvanceAsync(BackupStream s)
            {
                s.Head = null;
                while (s.Head is null)
                {
                    Fill(s);
                    if (s.Reading.Count == 0)
                    {
                        return;
                    }
                    s.Head = await s.Reading.Dequeue().ConfigureAwait(false);
                }
                Fill(s);
            }

            foreach (BackupStream s in streams)
            {
                Fill(s);
            }
            foreach (BackupStream s in streams)
            {
                await AdvanceAsync(s).ConfigureAwait(false);
            }
            while (true)
            {
                BackupStream? best = null;
                foreach (BackupStream s in streams)
                {
                    if (s.Head is not null && (best is null || Precedes(s.Head, best.Head!)))
                    {
                        best = s;
                    }
                }
                if (loose.Count > 0 && (best is null || Precedes(loose.Peek(), best.Head!)))
                {
                    yield return loose.Dequeue();
                    continue;
                }
                if (best is null)
                {
                    yield break;
                }
                BackupRecord next = best.Head!;
                yield return next;
                await AdvanceAsync(best).ConfigureAwait(false);
                started.RemoveAll(t => t.IsCompleted);
            }
        }
        finally
        {
            // Nothing reads on after the consumer stopped (or failed): cancel and wait.
            stop.Cancel();
            try
            {
                await Task.WhenAll(started).ConfigureAwait(false);
            }
            catch (Exception)
            {
                // Cancelled reads, or failures nobody asked for any more.
            }
        }
    }

    /// <summary>Which namespace, or dir and object, each manifest belongs to by the refs naming it
    /// (refs are plain names, readable when the manifest is not).</summary>
    private static Dictionary<string, (string? Ns, string? Dir, string? Obj)> OwnersOf(IEnumerable<RepositoryRef> refs)
    {
        var owners = new Dictionary<string, (string?, string?, string?)>(StringComparer.Ordinal);
        foreach (RepositoryRef r in refs)
        {
            string[] parts = r.Name.Split('/');
            (string?, string?, string?)? owner = parts switch
            {
                ["wal" or "snapshot", var ns, _] => (ns, null, null),
                ["object", var dir, var obj, _] => (null, dir, obj),
                _ => null,
            };
            if (owner is { } o)
            {
                owners.TryAdd(r.ManifestId, o);
            }
        }
        return owners;
    }

    /// <summary>Store snapshots (a <c>.manifest.json</c> beside each) and shipped WAL segments
    /// (<c>NNNNNNNNN.wal</c>) anywhere under <c>&lt;dataDir&gt;/backups/&lt;ns&gt;</c>.</summary>
    private static IEnumerable<BackupRecord> ListNamespace(GetBackupOptions options, CancellationToken ct)
    {
        if (options.Namespace is null)
        {
            throw new InvalidInputException("NamespaceRequired", "-DataDir lists one namespace's local backups: give -Namespace too.");
        }
        string ns = SafePath.ValidateName(options.Namespace, "namespace");
        string dataDir = SafePath.RequireDirectory(options.DataDir, "data directory", "Give the database's data directory.");
        string root = SafePath.Combine(dataDir, "backups/" + ns, "namespace backup root");
        var result = new List<BackupRecord>();
        if (!Directory.Exists(root))
        {
            return result;
        }
        foreach (string file in EnumerateFiles(root))
        {
            ct.ThrowIfCancellationRequested();
            string name = System.IO.Path.GetFileName(file);
            string rel = ObjectLayout.Relative(root, file);
            if (name.EndsWith(ObjectLayout.ManifestSuffix, StringComparison.Ordinal))
            {
                string snapshot = file[..^ObjectLayout.ManifestSuffix.Length];
                BackupManifest m = ManifestIO.Read(file);
                if (m.Kind != "snapshot")
                {
                    continue;
                }
                result.Add(new BackupRecord
                {
                    BackupId = rel[..^ObjectLayout.ManifestSuffix.Length],
                    Kind = BackupKind.StoreSnapshot,
                    Namespace = ns,
                    Time = m.CompletedAt ?? m.CreatedAt,
                    CreatedAt = m.CreatedAt,
                    CompletedAt = m.CompletedAt,
                    Bytes = m.Files.Sum(f => f.Size),
                    FileCount = m.Files.Count,
                    Complete = File.Exists(snapshot) || Directory.Exists(snapshot),
                    Wal = m.Wal,
                    Path = snapshot,
                    DataDir = dataDir,
                });
            }
            else if (WalFormat.TryParseSegmentFileName(name, out long segmentId))
            {
                WalSegmentInfo s = WalSegmentReader.Inspect(file, ns, segmentId);
                result.Add(new BackupRecord
                {
                    BackupId = rel,
                    Kind = BackupKind.WalSegment,
                    Namespace = ns,
                    Time = s.LastModifiedAt ?? new DateTimeOffset(File.GetLastWriteTimeUtc(file), TimeSpan.Zero),
                    CreatedAt = s.CreatedAt,
                    CompletedAt = s.Sealed ? s.LastModifiedAt : null,
                    Bytes = s.Bytes,
                    FileCount = 1,
                    Complete = s.Valid,
                    SegmentId = segmentId,
                    FirstLogIndex = s.FirstLogIndex,
                    EntryCount = s.EntryCount,
                    Sealed = s.Sealed,
                    Path = file,
                    DataDir = dataDir,
                });
            }
        }
        return result;
    }

    /// <summary>Object backup folders <c>&lt;obj&gt;.backup-&lt;ts&gt;</c> under <c>$DB_ROOT/&lt;dir&gt;</c>;
    /// one without its manifest is listed as incomplete.</summary>
    private static IEnumerable<BackupRecord> ListObjects(GetBackupOptions options, CancellationToken ct)
    {
        if (options.Dir is null)
        {
            throw new InvalidInputException("DirRequired", "-DbRoot lists the object backups of one tenant directory: give -Dir too.");
        }
        string dir = ObjectLayout.ValidateName(options.Dir, "dir");
        string? obj = options.Object is null ? null : ObjectLayout.ValidateName(options.Object, "object");
        string dbRoot = SafePath.RequireDirectory(options.DbRoot, "database root", "Give the object store's root ($DB_ROOT).");
        string tenant = SafePath.Combine(dbRoot, dir, "tenant dir");
        var result = new List<BackupRecord>();
        if (!Directory.Exists(tenant))
        {
            throw new NotFoundException("DirNotFound", $"The tenant dir '{tenant}' does not exist. Check -DbRoot and -Dir.", tenant);
        }
        foreach (string folder in Directory.EnumerateDirectories(tenant))
        {
            ct.ThrowIfCancellationRequested();
            string name = System.IO.Path.GetFileName(folder);
            if (!ObjectLayout.TryParseBackupName(name, out string o, out string ts) || (obj is not null && o != obj))
            {
                continue;
            }
            string manifestPath = System.IO.Path.Combine(tenant, ObjectLayout.ManifestName(name));
            DateTimeOffset stamp = new(DateTime.ParseExact(ts, ObjectLayout.TimestampFormat, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal), TimeSpan.Zero);
            var record = new BackupRecord
            {
                BackupId = name,
                Kind = BackupKind.Object,
                Dir = dir,
                Object = o,
                Time = stamp,
                CreatedAt = stamp,
                Bytes = 0,
                FileCount = 0,
                Path = folder,
                DbRoot = dbRoot,
                BackupName = name,
            };
            if (File.Exists(manifestPath))
            {
                BackupManifest m = ManifestIO.Read(manifestPath);
                record = record with
                {
                    Time = m.CompletedAt ?? m.CreatedAt,
                    CreatedAt = m.CreatedAt,
                    CompletedAt = m.CompletedAt,
                    Bytes = m.Files.Sum(f => f.Size),
                    FileCount = m.Files.Count,
                    Consistency = m.Consistency,
                };
            }
            else
            {
                var files = EnumerateFiles(folder).Select(f => new FileInfo(f)).ToList();
                record = record with { Complete = false, Bytes = files.Sum(f => f.Length), FileCount = files.Count };
            }
            result.Add(record);
        }
        return result;
    }

    /// <summary>Regular files below <paramref name="root"/>, never following links and skipping
    /// transient <c>.new</c>/<c>.old</c>/<c>.tmp</c> artifacts and everything inside them.</summary>
    internal static IEnumerable<string> EnumerateFiles(string root)
    {
        var pending = new Stack<string>();
        pending.Push(root);
        while (pending.Count > 0)
        {
            string dir = pending.Pop();
            foreach (FileSystemInfo entry in new DirectoryInfo(dir).EnumerateFileSystemInfos().OrderBy(e => e.Name, StringComparer.Ordinal))
            {
                if (ObjectLayout.IsTransientArtifact(entry.Name) || ObjectLayout.IsLink(entry))
                {
                    continue;
                }
                if (entry is DirectoryInfo)
                {
                    pending.Push(entry.FullName);
                }
                else
                {
                    yield return entry.FullName;
                }
            }
        }
    }
}

/// <summary>The names users type for <see cref="BackupKind"/> (the manifest's own names, and the enum's).</summary>
public static class BackupKinds
{
    public static BackupKind Parse(string value) => TryParse(value)
        ?? throw new InvalidInputException("InvalidKind", $"'{SafePath.Printable(value)}' is not a backup kind. Use Object, StoreSnapshot or WalSegment (or object, store-snapshot, wal-segment).", value);

    /// <summary>A kind in either spelling, any case; null when it is none.</summary>
    public static BackupKind? TryParse(string? value) => value?.ToLowerInvariant() switch
    {
        "object" => BackupKind.Object,
        "store-snapshot" or "storesnapshot" => BackupKind.StoreSnapshot,
        "wal-segment" or "walsegment" => BackupKind.WalSegment,
        _ => null,
    };

    public static string ToName(BackupKind kind) => BackupKindJsonConverter.ToName(kind);
}

/// <summary>What a ref name (<c>refs/&lt;name&gt;/&lt;manifest id&gt;</c>) says of its backup without
/// reading the manifest: <c>object/&lt;dir&gt;/&lt;obj&gt;/&lt;yyyyMMddTHHmmss&gt;</c> (begun then, UTC),
/// <c>snapshot/&lt;ns&gt;/&lt;yyyyMMddTHHmmss&gt;Z</c>, <c>wal/&lt;ns&gt;/&lt;segment id:D9&gt;[_g&lt;n&gt;|_partial-&lt;observed&gt;]</c>.
/// <see cref="Stream"/> groups the backups of one object, one namespace's snapshots or one
/// namespace's WAL, which are in time order by <see cref="SortKey"/> (ordinal). The manifest stays
/// the source of truth; listing and completion use names to avoid reading it.</summary>
public sealed record BackupRefName(BackupKind Kind, string? Namespace, string? Dir, string? Object, string Stream, string SortKey)
{
    public bool Matches(BackupKind? kind, string? @namespace, string? dir, string? @object) =>
        (kind is null || kind == Kind)
        && (@namespace is null || (Kind != BackupKind.Object && @namespace == Namespace))
        && (dir is null || (Kind == BackupKind.Object && dir == Dir))
        && (@object is null || (Kind == BackupKind.Object && @object == Object));

    /// <summary>The parts of a name, or null for any other name (read like a backup without a ref).</summary>
    public static BackupRefName? Parse(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        string[] p = name.Split('/');
        if (p.Length == 4 && p[0] == "object" && IsStamp(p[3]))
        {
            return new BackupRefName(BackupKind.Object, null, p[1], p[2], $"object/{p[1]}/{p[2]}", p[3]);
        }
        if (p.Length == 3 && p[0] == "snapshot" && IsStamp(p[2]))
        {
            return new BackupRefName(BackupKind.StoreSnapshot, p[1], null, null, $"snapshot/{p[1]}", p[2]);
        }
        if (p.Length == 3 && p[0] == "wal" && p[2].Length >= 9 && !p[2].AsSpan(0, 9).ContainsAnyExceptInRange('0', '9')
            && (p[2].Length == 9 || p[2][9] is '.' or '_'))
        {
            // Generations ("_g<n>", formerly ".g<n>") and partials ("_partial-<observed>") of an id
            // sort before its sealed segment (partials were observed before it sealed).
            return new BackupRefName(BackupKind.WalSegment, p[1], null, null, $"wal/{p[1]}", p[2].Length == 9 ? p[2] + "~" : p[2]);
        }
        return null;
    }

    /// <summary>"store-snapshot of users begun 2025-01-08T03:00:00Z", "wal-segment 43 of users", "object acme/orders begun ...".</summary>
    public override string ToString() => Kind switch
    {
        BackupKind.Object => $"object {Dir}/{Object} begun {Stamp(SortKey)}",
        BackupKind.StoreSnapshot => $"store-snapshot of {Namespace} begun {Stamp(SortKey)}",
        _ => $"wal-segment {SortKey.TrimEnd('~').TrimStart('0')} of {Namespace}",
    };

    private static string Stamp(string s) =>
        s.Length >= 15 ? $"{s[..4]}-{s[4..6]}-{s[6..8]}T{s[9..11]}:{s[11..13]}:{s[13..15]}Z" : s;

    /// <summary>yyyyMMddTHHmmss, optionally followed by Z: fixed width, so ordinal order is time order.</summary>
    private static bool IsStamp(string s) =>
        (s.Length == 15 || (s.Length == 16 && s[^1] == 'Z')) && s[8] == 'T'
        && !s.AsSpan(0, 8).ContainsAnyExceptInRange('0', '9') && !s.AsSpan(9, 6).ContainsAnyExceptInRange('0', '9');
}
