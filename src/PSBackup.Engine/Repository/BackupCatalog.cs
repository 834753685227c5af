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
    /// <summary>When the backup was taken (its manifest's createdAt; for a local segment, when it was sealed or last written).</summary>
    public required DateTimeOffset Time { get; init; }
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
}

/// <summary>Get-Backup: lists what a repository or a local backup root holds.</summary>
public static class BackupCatalog
{
    public static async Task<IReadOnlyList<BackupRecord>> ListAsync(GetBackupOptions options, OperationContext context)
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
        IEnumerable<BackupRecord> records = options.Repository is not null ? await ListRepositoryAsync(options, context).ConfigureAwait(false)
            : options.DataDir is not null ? ListNamespace(options, context.CancellationToken)
            : ListObjects(options, context.CancellationToken);
        return records
            .Where(r => options.Kind is null || r.Kind == options.Kind)
            .Where(r => options.After is null || r.Time >= options.After)
            .Where(r => options.Before is null || r.Time <= options.Before)
            .OrderByDescending(r => r.Time)
            .ThenBy(r => r.BackupId, StringComparer.Ordinal)
            .ToList();
    }

    private static async Task<IEnumerable<BackupRecord>> ListRepositoryAsync(GetBackupOptions options, OperationContext context)
    {
        if (options.Namespace is not null) { SafePath.ValidateName(options.Namespace, "namespace"); }
        if (options.Dir is not null) { SafePath.ValidateName(options.Dir, "dir"); }
        if (options.Object is not null) { SafePath.ValidateName(options.Object, "object"); }
        CancellationToken ct = context.CancellationToken;
        using OpenRepository open = await RepositoryConnector.OpenAsync(options.Repository!, ct).ConfigureAwait(false);
        Repository repo = open.Repository;
        var ids = new List<string>();
        await foreach (StoredObject o in open.Backend.ListAsync(RepositoryLayout.SnapshotsPrefix, ct).ConfigureAwait(false))
        {
            ids.Add(o.Key[RepositoryLayout.SnapshotsPrefix.Length..]);
        }
        var result = new List<BackupRecord>();
        int done = 0;
        await Parallel.ForEachAsync(ids, new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = ct }, async (id, c) =>
        {
            RepositoryManifest m = await repo.ReadManifestAsync(id, c).ConfigureAwait(false);
            context.Report("List backups", $"Read {Interlocked.Increment(ref done)} of {ids.Count} manifests", done, ids.Count, id);
            if ((options.Namespace is not null && m.Namespace != options.Namespace)
                || (options.Dir is not null && m.Dir != options.Dir)
                || (options.Object is not null && m.Object != options.Object))
            {
                return;
            }
            var r = new BackupRecord
            {
                Repository = options.Repository!.Location,
                BackupId = id,
                Kind = m.Kind,
                Namespace = m.Namespace,
                Dir = m.Dir,
                Object = m.Object,
                Time = m.CreatedAt,
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
            lock (result)
            {
                result.Add(r);
            }
        }).ConfigureAwait(false);
        return result;
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
                    Time = m.CreatedAt,
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
                    Time = m.CreatedAt,
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
    public static BackupKind Parse(string value) => value.ToLowerInvariant() switch
    {
        "object" => BackupKind.Object,
        "store-snapshot" or "storesnapshot" => BackupKind.StoreSnapshot,
        "wal-segment" or "walsegment" => BackupKind.WalSegment,
        _ => throw new InvalidInputException("InvalidKind", $"'{SafePath.Printable(value)}' is not a backup kind. Use object, store-snapshot or wal-segment.", value),
    };

    public static string ToName(BackupKind kind) => BackupKindJsonConverter.ToName(kind);
}
