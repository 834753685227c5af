using System.Diagnostics;
using Microsoft.Data.Sqlite;
using PSBackup.Engine.Events;
using PSBackup.Engine.Wal;

namespace PSBackup.Engine.Snapshots;

/// <summary>Engine operation behind New-StoreSnapshot (seed <c>POST /btree/backup</c>, local mode).</summary>
public static class SnapshotOperations
{
    public const string Activity = "New-StoreSnapshot";

    /// <summary>How often a non-SQLite file is re-read before the snapshot gives up on it.</summary>
    public const int StableCopyAttempts = 5;

    /// <summary>Snapshots <c>&lt;dataDir&gt;/&lt;ns&gt;/db</c> to
    /// <c>&lt;dataDir&gt;/backups/&lt;ns&gt;/&lt;Path&gt;</c> (a single file when the store is one file,
    /// else a folder mirroring <c>db/</c>), written as <c>{path}.tmp</c>, fsynced and renamed, then
    /// <c>{path}.manifest.json</c>. Null when ShouldProcess declined (-WhatIf).</summary>
    public static Task<StoreSnapshotResult?> CreateAsync(NewStoreSnapshotOptions options, OperationContext context) =>
        OperationRecorder.RunAsync(new OperationScope { Operation = Activity, Category = OperationKinds.StoreSnapshot, Namespace = options?.Namespace, Target = options?.Repository?.Location ?? options?.Path, DataDir = options?.DataDir, Repository = options?.Repository },
            context, c => CreateCoreAsync(options!, c), r => r is null ? null : new OperationOutcome(r.Bytes));

    private static async Task<StoreSnapshotResult?> CreateCoreAsync(NewStoreSnapshotOptions options, OperationContext context)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(context);
        CancellationToken ct = context.CancellationToken;

        // Everything is validated before anything is written.
        string ns = SafePath.ValidateName(options.Namespace, "namespace");
        string dataDir = SafePath.RequireDirectory(options.DataDir, "data directory",
            "Give the database's data directory, the folder that holds one folder per namespace.");
        string nsDir = Path.Combine(dataDir, ns);
        string backupRoot = Path.Combine(dataDir, "backups", ns);
        RequireNamespace(dataDir, ns, nsDir);
        if (options.Endpoint is not null)
        {
            return await EndpointSnapshot.CreateAsync(options, ns, dataDir, nsDir, backupRoot, context).ConfigureAwait(false);
        }
        DiscoveredStore store = UnisonStore.Discover(nsDir, ns);
        string dbDir = store.Path;
        if (options.Repository is { } target)
        {
            return await CreateInRepositoryAsync(options, target, ns, nsDir, store, backupRoot, context).ConfigureAwait(false);
        }
        string finalPath = SafePath.Combine(backupRoot, SafePath.ValidateUserPath(options.Path, "snapshot path"), "snapshot path");
        string tempPath = finalPath + ".tmp";
        string manifestPath = finalPath + ".manifest.json";
        RequireFree(finalPath, tempPath, manifestPath, backupRoot);
        RequireNotEmpty(store, ns);
        IReadOnlyList<IStoreAdapter> adapters = options.StoreAdapters ?? StoreAdapters.Default;

        if (!context.ShouldProcess(finalPath, "Create store snapshot"))
        {
            return null;
        }

        long started = context.Clock.GetTimestamp();
        DateTimeOffset createdAt = context.UtcNow;
        bool committed = false;
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(finalPath)!);
            (List<ManifestFile> entries, bool single, WalPosition position) = await CopyStoreAsync(ns, nsDir, store, tempPath, singleFileAllowed: true, adapters, context).ConfigureAwait(false);

            ct.ThrowIfCancellationRequested();
            // The copy keeps the store file's mode and owner: a copy of a private store is private
            // (before: 0644, world-readable), and its user can open it after a restore.
            foreach (ManifestFile entry in entries)
            {
                FileMetadata.TryRead(StoreFileOf(store, entry.Path))?.WithoutTime().TryApply(single ? tempPath : SafePath.Combine(tempPath, entry.Path, "store file"));
            }
            if (single)
            {
                Durable.CommitFile(tempPath, finalPath);
            }
            else
            {
                Durable.CommitDirectory(tempPath, finalPath);
            }
            committed = true;

            DateTimeOffset completedAt = context.UtcNow;
            var manifest = new BackupManifest
            {
                Kind = "snapshot",
                CreatedAt = createdAt,
                CompletedAt = completedAt,
                Source = dbDir,
                Wal = position,
                Store = store.Engine,
                Files = entries,
            };
            await ManifestIO.WriteAsync(manifestPath, manifest, ct).ConfigureAwait(false);

            long bytes = entries.Sum(e => e.Size);
            context.ReportBytes(Activity, "Snapshot complete", bytes, bytes);
            return new StoreSnapshotResult
            {
                Namespace = ns,
                Path = finalPath,
                Bytes = bytes,
                ManifestPath = manifestPath,
                FileCount = entries.Count,
                WalPosition = position,
                Store = store.Engine,
                CreatedAt = createdAt,
                CompletedAt = completedAt,
                Duration = Durations.Seconds(context.Clock.GetElapsedTime(started)),
            };
        }
        catch (Exception e)
        {
            Durable.TryDelete(tempPath);
            if (committed)
            {
                Durable.TryDelete(finalPath);
                Durable.TryDelete(manifestPath);
            }
            if (e is PSBackupException or OperationCanceledException)
            {
                throw;
            }
            if (e is IOException or UnauthorizedAccessException or SqliteException)
            {
                throw new OperationFailedException("SnapshotFailed",
                    $"The snapshot of namespace '{ns}' failed: {e.Message} Nothing was left under '{finalPath}'. Fix the cause (disk space, permissions, a damaged store file) and run again.",
                    finalPath, e);
            }
            throw;
        }
    }

    /// <summary>The off-host snapshot: the same consistent copy into a temp folder under
    /// <c>backups/&lt;ns&gt;</c> (a <c>.tmp</c> name the sweep removes after a crash), then stored
    /// in the repository with the store chunking profile, so the next snapshot of a slightly
    /// changed store adds only the changed chunks. The temp is removed whatever happens.</summary>
    private static async Task<StoreSnapshotResult?> CreateInRepositoryAsync(NewStoreSnapshotOptions options, Repository.RepositoryTarget target,
        string ns, string nsDir, DiscoveredStore store, string backupRoot, OperationContext context)
    {
        CancellationToken ct = context.CancellationToken;
        RequireNotEmpty(store, ns);
        IReadOnlyList<IStoreAdapter> adapters = options.StoreAdapters ?? StoreAdapters.Default;
        await using Repository.OpenRepository open = await Repository.RepositoryConnector.OpenForWriteAsync(target, Repository.RepositoryLockMode.Shared, "New-StoreSnapshot", context).ConfigureAwait(false);
        DateTimeOffset createdAt = context.UtcNow;
        string refName = RefName(ns, createdAt);
        if (!context.ShouldProcess($"{open.Repository.Location} ({refName})", "Create store snapshot in the repository"))
        {
            return null;
        }

        long started = context.Clock.GetTimestamp();
        string tempPath = Path.Combine(backupRoot, $"repository-snapshot-{Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(6)).ToLowerInvariant()}.tmp");
        try
        {
            Directory.CreateDirectory(backupRoot);
            SafePath.RejectLinksBelow(Path.GetDirectoryName(Path.GetDirectoryName(backupRoot)!)!, backupRoot, "namespace backup root");
            (List<ManifestFile> entries, bool single, WalPosition position) = await CopyStoreAsync(ns, nsDir, store, tempPath, singleFileAllowed: store.Engine != StoreEngines.DbFolder, adapters, context).ConfigureAwait(false);
            return await StoreInRepositoryAsync(open, target, ns, store.Engine, refName, createdAt, entries, single, tempPath, position, backupRoot, started, context,
                sourceOf: path => StoreFileOf(store, path)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or SqliteException && e is not PSBackupException)
        {
            throw new OperationFailedException("SnapshotFailed",
                $"The snapshot of namespace '{ns}' to {target.Location} failed: {e.Message} Nothing was committed to the repository. Fix the cause (disk space, permissions, network, a damaged store file) and run again.",
                target.Location, e);
        }
        finally
        {
            Durable.TryDelete(tempPath);
        }
    }

    /// <summary>The live file a snapshot entry was copied from: the store file itself (bbolt), or the
    /// entry inside the store folder (LMDB's data.mdb, the files of db/).</summary>
    private static string StoreFileOf(DiscoveredStore store, string entryPath) =>
        Directory.Exists(store.Path) ? SafePath.Combine(store.Path, entryPath, "store file") : store.Path;

    /// <summary>The ref a snapshot made at <paramref name="createdAt"/> gets.</summary>
    internal static string RefName(string ns, DateTimeOffset createdAt) =>
        $"snapshot/{ns}/{createdAt.UtcDateTime.ToString("yyyyMMdd'T'HHmmss'Z'", System.Globalization.CultureInfo.InvariantCulture)}";

    /// <summary>Stores a finished copy (a file or a folder at <paramref name="copyPath"/>) as one
    /// snapshot backup, each file checked against the hash taken when it was copied.</summary>
    internal static async Task<StoreSnapshotResult> StoreInRepositoryAsync(Repository.OpenRepository open, Repository.RepositoryTarget target, string ns, string engine,
        string refName, DateTimeOffset createdAt, List<ManifestFile> entries, bool single, string copyPath, WalPosition position, string backupRoot, long started, OperationContext context,
        Func<string, string>? sourceOf = null)
    {
        CancellationToken ct = context.CancellationToken;
        {
            await using Repository.BackupWriter writer = open.Repository.BeginBackup(new Repository.BackupInfo
            {
                Kind = Repository.BackupKind.StoreSnapshot,
                Namespace = ns,
                CreatedAt = createdAt,
                Wal = position,
                Store = engine,
            }, context.Clock);
            long total = entries.Sum(e => e.Size), done = 0;
            foreach (ManifestFile entry in entries)
            {
                ct.ThrowIfCancellationRequested();
                context.ReportBytes(Activity, $"Storing {entry.Path}", done, total, entry.Path);
                Repository.RepositoryFile stored = await writer.AddFileFromPathAsync("db/" + entry.Path,
                    single ? copyPath : SafePath.Combine(copyPath, entry.Path, "store file"), Repository.ChunkingProfile.Store, ct).ConfigureAwait(false);
                if (stored.Sha256 != entry.Sha256 || stored.Size != entry.Size)
                {
                    throw new IntegrityException("SnapshotVerifyFailed",
                        $"The copy of store file '{entry.Path}' of namespace '{ns}' read back as SHA-256 {stored.Sha256} ({stored.Size} bytes), not {entry.Sha256} ({entry.Size} bytes) as copied. Nothing was stored; check the disk under '{backupRoot}' and run again.",
                        entry.Path);
                }
                // The store file's mode and owner (not the copy's): a restore gives them back, so a
                // store that runs as its own user can open what was restored.
                if (sourceOf is not null && FileMetadata.TryRead(sourceOf(entry.Path)) is { } metadata)
                {
                    writer.SetMetadata("db/" + entry.Path, metadata);
                }
                done += entry.Size;
            }
            context.ReportBytes(Activity, $"Committing {refName}", done, total);
            Repository.BackupCommitResult commit = await writer.CommitAsync(refName, ct).ConfigureAwait(false);
            context.ReportBytes(Activity, "Snapshot complete", total, total);
            return new StoreSnapshotResult
            {
                Namespace = ns,
                Path = refName,
                Bytes = commit.Bytes,
                ManifestPath = null,
                Repository = target.Location,
                BackupId = commit.ManifestId,
                StoredBytes = commit.StoredBytes,
                FileCount = commit.FileCount,
                WalPosition = position,
                Store = engine,
                CreatedAt = createdAt,
                CompletedAt = writer.Committed?.CompletedAt ?? context.UtcNow,
                Duration = Durations.Seconds(context.Clock.GetElapsedTime(started)),
            };
        }
    }

    /// <summary>Makes the consistent copy of <c>db/</c> at <paramref name="tempPath"/> (a file when
    /// the store is one file and <paramref name="singleFileAllowed"/>, else a folder): the WAL
    /// position first, SQLite through its online backup, other files by a stable copy, then the
    /// applied log index read from the copy and the copies re-hashed. The caller removes the temp.</summary>
    private static async Task<(List<ManifestFile> Entries, bool Single, WalPosition Position)> CopyStoreAsync(
        string ns, string nsDir, DiscoveredStore store, string tempPath, bool singleFileAllowed, IReadOnlyList<IStoreAdapter> adapters, OperationContext context)
    {
        CancellationToken ct = context.CancellationToken;
        // The WAL first: whatever the copy contains was applied from records that were in
        // the WAL by now, or later.
        context.Report(Activity, "Recording WAL position", 0, 0);
        WalPosition walAtStart = ReadWalPosition(nsDir, ns);
        if (store.Engine != StoreEngines.DbFolder)
        {
            (ManifestFile entry, WalPosition position) = await UnisonCopy.CopyAsync(ns, nsDir, store, tempPath, walAtStart, context).ConfigureAwait(false);
            return ([entry], true, position);
        }
        string dbDir = store.Path;
        IReadOnlyList<StoreFile> files = ListStoreFiles(dbDir, ns);
        if (files.Count == 0)
        {
            throw new NotFoundException("StoreEmpty",
                $"The store folder '{dbDir}' of namespace '{ns}' became empty while the snapshot started. Check the database, then run again.", dbDir);
        }
        long total = files.Sum(f => SafeLength(f.FullPath));
        bool single = singleFileAllowed && files.Count == 1;
        if (!single)
        {
            Directory.CreateDirectory(tempPath);
        }
        var entries = new List<ManifestFile>(files.Count);
        var copies = new List<StoreFile>(files.Count);
        long done = 0;
        foreach (StoreFile file in files)
        {
            ct.ThrowIfCancellationRequested();
            string destination = single ? tempPath : SafePath.Combine(tempPath, file.RelativePath, "store file");
            Directory.CreateDirectory(Path.GetDirectoryName(destination)!);
            context.ReportBytes(Activity, $"Copying {file.RelativePath}", done, total, file.RelativePath);
            ContentDigest digest = file.IsSqlite
                ? await CopySqliteAsync(file, destination, ct).ConfigureAwait(false)
                : await CopyStableAsync(file, destination, ns, context).ConfigureAwait(false);
            entries.Add(new ManifestFile(file.RelativePath, digest.Bytes, digest.Sha256));
            copies.Add(file with { FullPath = destination });
            done += digest.Bytes;
            context.ReportBytes(Activity, $"Copied {file.RelativePath}", done, Math.Max(total, done), file.RelativePath);
        }

        ct.ThrowIfCancellationRequested();
        long? applied = ReadAppliedLogIndex(adapters, copies);
        await RehashAsync(copies, entries, ct).ConfigureAwait(false);

        return (entries, single, walAtStart with { AppliedLogIndex = applied, CompletedLogIndex = HighWaterLogIndex(nsDir, ns) });
    }

    /// <summary>The highest log index in the namespace's WAL right now (the newest segment's last
    /// record), or null when there is none or it cannot be read. Only the newest segments are read.</summary>
    public static long? HighWaterLogIndex(string namespaceDir, string @namespace)
    {
        string walDir = Path.Combine(namespaceDir, "wal");
        if (!Directory.Exists(walDir))
        {
            return null;
        }
        try
        {
            List<(long Id, string Path)> ids = WalDirectory.ListSegmentFiles(walDir);
            for (int i = ids.Count - 1; i >= 0; i--)
            {
                WalSegmentInfo info = WalSegmentReader.Inspect(ids[i].Path, @namespace, ids[i].Id);
                if (info.LastLogIndex is long last)
                {
                    return last;
                }
            }
        }
        catch (Exception e) when (e is IOException or PSBackupException)
        {
            return null;
        }
        return null;
    }

    /// <summary>The WAL as it stands: segment ids present and the highest log index on disk.
    /// No WAL folder means an empty position.</summary>
    public static WalPosition ReadWalPosition(string namespaceDir, string @namespace)
    {
        string walDir = Path.Combine(namespaceDir, "wal");
        if (!Directory.Exists(walDir))
        {
            return new WalPosition([], null, null);
        }
        WalDirectoryReport report = WalDirectory.Scan(walDir, @namespace);
        var ids = report.Segments.Select(s => s.SegmentId).Order().ToList();
        long? highest = report.Segments.Select(s => s.LastLogIndex).Max();
        return new WalPosition(ids, highest, null);
    }

    /// <summary>Every file under <c>db/</c> a snapshot copies, sorted by relative path: SQLite
    /// sidecars (-wal, -shm, -journal of a database in the set) are left out, their content
    /// arrives through the database's own copy. A symbolic link is refused.</summary>
    public static IReadOnlyList<StoreFile> ListStoreFiles(string dbDir, string @namespace)
    {
        var all = new List<(string Rel, string Full)>();
        foreach (string entry in Directory.EnumerateFileSystemEntries(dbDir, "*", SearchOption.AllDirectories))
        {
            var info = new FileInfo(entry);
            if (SafePath.IsLink(info))
            {
                throw new InvalidInputException("SymbolicLink",
                    $"The store of namespace '{@namespace}' contains a symbolic link '{entry}'. PSBackup does not follow links inside a store; replace it with the real file or folder.", entry);
            }
            if (Directory.Exists(entry))
            {
                continue;
            }
            if (SpecialFiles.KindOf(entry) is var kind and not FileKind.Regular and not FileKind.Missing)
            {
                throw SpecialFiles.NotRegular(entry, kind);
            }
            all.Add((Path.GetRelativePath(dbDir, entry).Replace(Path.DirectorySeparatorChar, '/'), entry));
        }
        var databases = new HashSet<string>(StringComparer.Ordinal);
        var files = new List<StoreFile>();
        foreach ((string rel, string full) in all)
        {
            bool sqlite;
            try
            {
                sqlite = SqliteStore.IsDatabase(full);
            }
            catch (FileNotFoundException)
            {
                continue; // removed since the listing: not part of the store any more
            }
            if (sqlite)
            {
                databases.Add(rel);
            }
            files.Add(new StoreFile(rel, full, sqlite));
        }
        return files
            .Where(f => f.IsSqlite || !SqliteStore.SidecarSuffixes.Any(s => f.RelativePath.EndsWith(s, StringComparison.Ordinal) && databases.Contains(f.RelativePath[..^s.Length])))
            .OrderBy(f => f.RelativePath, StringComparer.Ordinal)
            .ToList();
    }

    private static void RequireNamespace(string dataDir, string ns, string nsDir)
    {
        if (!Directory.Exists(nsDir))
        {
            var present = Directory.EnumerateDirectories(dataDir)
                .Where(d => Directory.Exists(Path.Combine(d, "db")) || Path.Exists(Path.Combine(d, UnisonStore.StoreName)) || Directory.Exists(Path.Combine(d, "wal")))
                .Select(Path.GetFileName)
                .Order(StringComparer.Ordinal)
                .Take(10)
                .ToList();
            string known = present.Count == 0 ? "none holds a store or a WAL" : "namespaces found: " + string.Join(", ", present);
            throw new NotFoundException("NamespaceNotFound",
                $"Namespace '{ns}' does not exist in data directory '{dataDir}' ({known}). Check the namespace name and the data directory.", nsDir);
        }
    }

    private static void RequireNotEmpty(DiscoveredStore store, string ns)
    {
        if (store.Engine == StoreEngines.DbFolder && ListStoreFiles(store.Path, ns).Count == 0)
        {
            throw new NotFoundException("StoreEmpty",
                $"The store folder '{store.Path}' of namespace '{ns}' holds no files, so there is nothing to snapshot. Check that the database has created its store there.", store.Path);
        }
    }

    private static void RequireFree(string finalPath, string tempPath, string manifestPath, string backupRoot)
    {
        if (File.Exists(finalPath) || Directory.Exists(finalPath))
        {
            throw new ConflictException("SnapshotExists",
                $"A snapshot already exists at '{finalPath}'. Choose another -Path, or remove the old snapshot first.", finalPath);
        }
        if (File.Exists(manifestPath) || Directory.Exists(manifestPath))
        {
            throw new ConflictException("SnapshotExists",
                $"A snapshot manifest already exists at '{manifestPath}'. Choose another -Path, or remove the old snapshot and its manifest first.", manifestPath);
        }
        foreach (string temp in new[] { tempPath, manifestPath + ".tmp" })
        {
            if (File.Exists(temp) || Directory.Exists(temp))
            {
                throw new ConflictException("SnapshotInProgress",
                    $"'{temp}' exists: a snapshot to this path is in progress or was interrupted. Wait for it to finish, or if none is running remove the leftover with Clear-StaleArtifact (psbackup sweep), then run again.", temp);
            }
        }
        // A file where a folder of the path must go would make the copy fail half-way.
        string root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(backupRoot));
        for (string? dir = Path.GetDirectoryName(finalPath); dir is not null && dir.Length > root.Length; dir = Path.GetDirectoryName(dir))
        {
            if (File.Exists(dir))
            {
                throw new ConflictException("PathBlocked",
                    $"'{dir}' is a file, so the snapshot folder cannot be created under it. Choose another -Path, or move that file.", dir);
            }
        }
    }

    private static Task<ContentDigest> CopySqliteAsync(StoreFile file, string destination, CancellationToken ct) =>
        Task.Run(async () =>
        {
            SqliteStore.Backup(file.FullPath, destination);
            return await FileCopy.HashAsync(destination, ct).ConfigureAwait(false);
        }, ct);

    /// <summary>Copies a file that is not a SQLite database until one attempt reads the same
    /// bytes before, during and after the copy.</summary>
    private static async Task<ContentDigest> CopyStableAsync(StoreFile file, string destination, string ns, OperationContext context)
    {
        CancellationToken ct = context.CancellationToken;
        for (int attempt = 1; attempt <= StableCopyAttempts; attempt++)
        {
            ct.ThrowIfCancellationRequested();
            ContentDigest before = await FileCopy.HashAsync(file.FullPath, ct).ConfigureAwait(false);
            Durable.TryDelete(destination);
            ContentDigest copied = await FileCopy.CopyAsync(file.FullPath, destination, ct).ConfigureAwait(false);
            ContentDigest after = await FileCopy.HashAsync(file.FullPath, ct).ConfigureAwait(false);
            if (before == copied && copied == after)
            {
                return copied;
            }
            context.Report(Activity, $"{file.RelativePath} changed during the copy (attempt {attempt} of {StableCopyAttempts})", 0, 0, file.RelativePath);
        }
        Durable.TryDelete(destination);
        throw new OperationFailedException("StoreFileUnstable",
            $"Store file '{file.RelativePath}' of namespace '{ns}' changed during each of {StableCopyAttempts} copy attempts, so no consistent copy of it could be made. Pause writes to the store (quiesce or stop the database) while the snapshot runs, then run it again.",
            file.FullPath);
    }

    private static long? ReadAppliedLogIndex(IReadOnlyList<IStoreAdapter> adapters, IReadOnlyList<StoreFile> copies)
    {
        foreach (IStoreAdapter adapter in adapters)
        {
            if (adapter.Recognizes(copies) && adapter.ReadAppliedLogIndex(copies) is long applied)
            {
                return applied;
            }
        }
        return null;
    }

    /// <summary>Adapters may open the copies (SQLite does); the manifest must describe the bytes
    /// that are committed, so copies that changed are re-hashed.</summary>
    private static async Task RehashAsync(IReadOnlyList<StoreFile> copies, List<ManifestFile> entries, CancellationToken ct)
    {
        for (int i = 0; i < copies.Count; i++)
        {
            if (!copies[i].IsSqlite)
            {
                continue;
            }
            ContentDigest digest = await FileCopy.HashAsync(copies[i].FullPath, ct).ConfigureAwait(false);
            entries[i] = entries[i] with { Size = digest.Bytes, Sha256 = digest.Sha256 };
        }
    }

    private static long SafeLength(string path)
    {
        try
        {
            return new FileInfo(path).Length;
        }
        catch (IOException)
        {
            return 0;
        }
    }
}
