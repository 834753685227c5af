using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;

namespace PSBackup.Engine.ObjectStore;

/// <summary>New-ObjectBackup: copies a live object to <c>&lt;obj&gt;.backup-&lt;ts&gt;</c> while the
/// database may be writing, and tells a copy taken at one instant per file (Stable) from one where
/// files moved under it (Recent).</summary>
internal static class ObjectBackup
{
    /// <summary>How many times one file is copied before it is given up as changing.</summary>
    internal const int MaxAttempts = 3;

    private const string Activity = "New-ObjectBackup";

    public static async Task<ObjectBackupResult?> RunAsync(NewObjectBackupOptions options, OperationContext context)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(context);
        CancellationToken ct = context.CancellationToken;

        ObjectLocation location = ObjectLocation.Resolve(options.DbRoot, options.Dir, options.Object);
        string objectPath = location.ObjectPath;
        if (!Directory.Exists(objectPath))
        {
            throw File.Exists(objectPath)
                ? new InvalidInputException("ObjectNotADirectory", $"'{objectPath}' is a file, not an object folder. Check -Dir and -Object.", objectPath)
                : new NotFoundException("ObjectNotFound", $"The object '{location.Object}' does not exist in '{location.DirPath}'. Check -Dir and -Object (names are case-sensitive).", objectPath);
        }

        DateTimeOffset startedAt = context.UtcNow;
        long startTimestamp = context.Clock.GetTimestamp();
        string backupName = ObjectLayout.BackupName(location.Object, ObjectLayout.FormatTimestamp(startedAt));
        string backupPath = Path.Combine(location.DirPath, backupName);
        string manifestPath = Path.Combine(location.DirPath, ObjectLayout.ManifestName(backupName));
        // A unique temp name: two runs in the same second copy apart, and the second one's commit
        // fails cleanly on the taken final name instead of both writing into one folder.
        string tempPath = $"{backupPath}.{Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4)).ToLowerInvariant()}.tmp";
        foreach (string taken in options.Repository is null ? new[] { backupPath, manifestPath } : [])
        {
            if (Exists(taken))
            {
                throw new ConflictException("BackupExists",
                    $"'{taken}' already exists: a backup of '{location.Object}' was already taken (or is running) in this second. Wait a second and run again; if it is a leftover '.tmp', run Clear-StaleArtifact first.",
                    taken);
            }
        }

        // Listing first rejects links and unsafe names before anything is written, also under -WhatIf.
        // Meanwhile another core derives the repository's passphrase key, which the open then
        // finds in the session's key cache (reads only; see RepositoryConnector.PrewarmKeyAsync).
        Task prewarm = options.Repository is { } repositoryTarget && options.Session is null
            ? Task.Run(() => Repository.RepositoryConnector.PrewarmKeyAsync(repositoryTarget, ct), CancellationToken.None)
            : Task.CompletedTask;
        // Then, on that core, the parent backup is read while this one opens the repository (see
        // RunToRepositoryAsync: the lock and the index load) instead of after it.
        Task<ParentAhead> parentAhead = options.Repository is { } parentTarget && options.Session is null && !options.Force
            ? Task.Run(async () =>
            {
                await prewarm.ConfigureAwait(false);
                (Repository.RepositoryManifest? m, string? id) = await Repository.RepositoryConnector.PeekAsync(parentTarget,
                    (repo, c) => FindParentAsync(repo, location, Environment.MachineName, c), ct).ConfigureAwait(false);
                return new ParentAhead(m, id);
            }, CancellationToken.None)
            : Task.FromResult(new ParentAhead(null, null));
        try
        {
            ObjectTree tree;
            try
            {
                tree = ObjectTree.List(objectPath, ct);
            }
            finally
            {
                await prewarm.ConfigureAwait(false); // never throws
            }

            if (options.Repository is { } target)
            {
                return await RunToRepositoryAsync(options, target, location, tree, backupName, startedAt, startTimestamp, parentAhead, context).ConfigureAwait(false);
            }
            return await RunToFolderAsync(options, location, tree, backupName, backupPath, manifestPath, tempPath, startedAt, startTimestamp, context).ConfigureAwait(false);
        }
        finally
        {
            await parentAhead.ConfigureAwait(false); // never throws; nothing runs on after this call
        }
    }

    /// <summary>The local path: a sibling folder, committed by its rename and then its manifest.</summary>
    private static async Task<ObjectBackupResult?> RunToFolderAsync(NewObjectBackupOptions options, ObjectLocation location, ObjectTree tree,
        string backupName, string backupPath, string manifestPath, string tempPath, DateTimeOffset startedAt, long startTimestamp, OperationContext context)
    {
        CancellationToken ct = context.CancellationToken;
        string objectPath = location.ObjectPath;

        if (!context.ShouldProcess(backupPath, "Create object backup"))
        {
            return null;
        }

        var copy = new CopyState(objectPath, new FolderSink(tempPath), context, options);
        bool commitStarted = false;
        try
        {
            Directory.CreateDirectory(tempPath);
            await CopyFencedAsync(options, copy, tree).ConfigureAwait(false);
            ct.ThrowIfCancellationRequested();

            DateTimeOffset completedAt = context.UtcNow;
            var manifest = new BackupManifest
            {
                Kind = "object",
                CreatedAt = startedAt,
                CompletedAt = completedAt,
                Source = objectPath,
                Consistency = (copy.Changed.Count == 0 ? BackupConsistency.Stable : BackupConsistency.Recent).ToString(),
                ChangedFiles = copy.Changed.ToList(),
                Files = copy.Copied!.Values.ToList(),
            };

            context.ReportBytes(Activity, $"Committing {backupName}", copy.DoneBytes, copy.DoneBytes, backupName);
            commitStarted = true;
            Durable.CommitDirectory(tempPath, backupPath);
            // The manifest is the commit marker; once the folder is in place it is written even if
            // cancellation arrives now, so a committed copy never lacks it.
            await ManifestIO.WriteAsync(manifestPath, manifest, CancellationToken.None).ConfigureAwait(false);
            OperationLog.Verbose($"Copied {manifest.Files.Count} file(s), {Sizes.Format(manifest.Files.Sum(f => f.Size))}, of '{location.Dir}/{location.Object}' to '{backupPath}'; wrote its manifest last (the commit marker).");

            return new ObjectBackupResult
            {
                DbRoot = location.DbRoot,
                Dir = location.Dir,
                Object = location.Object,
                BackupName = backupName,
                BackupPath = backupPath,
                ManifestPath = manifestPath,
                StaleTemps = StaleTemps(location, tempPath),
                FileCount = manifest.Files.Count,
                FilesRead = manifest.Files.Count,
                Bytes = manifest.Files.Sum(f => f.Size),
                Consistency = copy.Changed.Count == 0 ? BackupConsistency.Stable : BackupConsistency.Recent,
                ChangedFiles = manifest.ChangedFiles!,
                Fenced = options.Quiesce is not null,
                StartedAt = startedAt,
                CompletedAt = completedAt,
                Duration = Durations.Seconds(context.Clock.GetElapsedTime(startTimestamp)),
            };
        }
        catch (Exception)
        {
            // Our own rename happened exactly when the temp folder is gone; while it still exists,
            // the final name (if any) belongs to someone else and must not be touched.
            bool committedOurs = commitStarted && !Directory.Exists(tempPath) && Directory.Exists(backupPath);
            Durable.TryDelete(tempPath);
            if (committedOurs)
            {
                Durable.TryDelete(backupPath);
            }
            throw;
        }
    }

    /// <summary>The off-host path: the same listing, fence and Stable/Recent checks, but each file
    /// streams into one repository backup instead of a sibling folder; a file whose settled stamp
    /// equals the one recorded in this host's latest backup of the object (the parent) reuses the
    /// parent's chunk list unread, unless <see cref="NewObjectBackupOptions.Force"/>. The manifest
    /// is the commit; a failure commits nothing.</summary>
    private static async Task<ObjectBackupResult?> RunToRepositoryAsync(NewObjectBackupOptions options, Repository.RepositoryTarget target,
        ObjectLocation location, ObjectTree tree, string backupName, DateTimeOffset startedAt, long startTimestamp,
        Task<ParentAhead> parentAhead, OperationContext context)
    {
        CancellationToken ct = context.CancellationToken;
        if (options.BeforeOpen is { } beforeOpen)
        {
            await parentAhead.ConfigureAwait(false);
            await beforeOpen(ct).ConfigureAwait(false);
        }
        // Opening checks the location, the S3 options and the key, then takes a shared lock (released
        // on return); a wildcard run hands every object the session it opened once.
        await using Repository.OpenRepository? owned = options.Session is null
            ? await Repository.RepositoryConnector.OpenForWriteAsync(target, Repository.RepositoryLockMode.Shared, "New-ObjectBackup", context).ConfigureAwait(false)
            : null;
        Repository.OpenRepository open = options.Session ?? owned!;
        string refName = $"object/{location.Dir}/{location.Object}/{ObjectLayout.FormatTimestamp(startedAt)}";
        if (!context.ShouldProcess($"{open.Repository.Location} ({location.Dir}/{location.Object})", "Create object backup in the repository"))
        {
            return null;
        }
        await using Repository.BackupWriter writer = open.Repository.BeginBackup(new Repository.BackupInfo
        {
            Kind = Repository.BackupKind.Object,
            Dir = location.Dir,
            Object = location.Object,
            CreatedAt = startedAt,
        }, verifyExisting: options.Force);
        // The parent read ahead (without the lock) serves when it is this repository's and this
        // host's; its chunks are reused only where the index loaded under the lock still holds them
        // (BackupWriter.TryReuseFile), so a prune that ran in between costs reads, never data.
        Repository.RepositoryManifest? parent = options.Force ? null
            : await ChooseParentAsync((await parentAhead.ConfigureAwait(false)).Take(), open.Repository, location, writer.Info.Host, ct).ConfigureAwait(false);
        string? parentId = parent?.Id;
        OperationLog.Verbose(parent is not null
            ? $"Parent backup {parent.Id} of '{location.Dir}/{location.Object}' (taken {parent.CreatedAt:u} on {parent.Host}): files whose size, times and inode are unchanged reuse its chunks unread."
            : options.Force
                ? $"-Force: every file of '{location.Dir}/{location.Object}' is read (no parent reuse)."
                : $"No earlier backup of '{location.Dir}/{location.Object}' from host {writer.Info.Host}: every file is read.");
        var sink = new RepositorySink(writer, parent);
        // The sink holds the parent's files it may still reuse and lets each go once its path is
        // copied; the manifest itself is not kept (62,105 files: ~10 MiB at the commit).
        parent = null;
        var copy = new CopyState(location.ObjectPath, sink, context, options);
        await CopyFencedAsync(options, copy, tree).ConfigureAwait(false);
        ct.ThrowIfCancellationRequested();
        BackupConsistency consistency = copy.Changed.Count == 0 ? BackupConsistency.Stable : BackupConsistency.Recent;
        writer.UpdateInfo(writer.Info with { Consistency = consistency.ToString(), ChangedFiles = copy.Changed.ToList() });
        context.ReportBytes(Activity, $"Committing {backupName} to {open.Repository.Location}", copy.DoneBytes, copy.DoneBytes, backupName);
        Repository.BackupCommitResult commit = await writer.CommitAsync(refName, ct).ConfigureAwait(false);
        OperationLog.Verbose($"Committed backup {commit.ManifestId} of '{location.Dir}/{location.Object}': {commit.FileCount} file(s), {Sizes.Format(commit.Bytes)}; read {commit.FileCount - sink.Reused.Count}, reused {sink.Reused.Count} unread (unchanged since the parent, or another name of an inode read in this run); {Sizes.Format(commit.StoredBytes)} new data stored.");
        return new ObjectBackupResult
        {
            DbRoot = location.DbRoot,
            Dir = location.Dir,
            Object = location.Object,
            BackupName = backupName,
            BackupPath = null,
            ManifestPath = null,
            Repository = target.Location,
            BackupId = commit.ManifestId,
            StoredBytes = commit.StoredBytes,
            ParentId = parentId,
            FilesReused = sink.Reused.Count,
            FilesRead = commit.FileCount - sink.Reused.Count,
            FileCount = commit.FileCount,
            Bytes = commit.Bytes,
            Consistency = consistency,
            ChangedFiles = copy.Changed.ToList(),
            Fenced = options.Quiesce is not null,
            StartedAt = startedAt,
            CompletedAt = writer.Committed?.CompletedAt ?? context.UtcNow,
            Duration = Durations.Seconds(context.Clock.GetElapsedTime(startTimestamp)),
        };
    }

    /// <summary>The parent read ahead, handed over once (<see cref="Take"/>), so a backup does not
    /// keep the whole manifest alive through the task that read it.</summary>
    private sealed class ParentAhead(Repository.RepositoryManifest? manifest, string? repositoryId)
    {
        private Repository.RepositoryManifest? _manifest = manifest;

        public (Repository.RepositoryManifest? Manifest, string? RepositoryId) Take()
        {
            Repository.RepositoryManifest? m = _manifest;
            _manifest = null;
            return (m, repositoryId);
        }
    }

    /// <summary>The parent read ahead when it is this repository's and this host's; otherwise
    /// found again under the lock.</summary>
    private static async Task<Repository.RepositoryManifest?> ChooseParentAsync((Repository.RepositoryManifest? Manifest, string? RepositoryId) ahead,
        Repository.Repository repo, ObjectLocation location, string host, CancellationToken ct) =>
        ahead.Manifest is not null && ahead.Manifest.Host == host
            && string.Equals(ahead.RepositoryId, repo.Config.Id, StringComparison.Ordinal)
            ? ahead.Manifest
            : await FindParentAsync(repo, location, host, ct).ConfigureAwait(false);

    /// <summary>How many of the newest ref names of the object are looked at for a parent.</summary>
    private const int ParentCandidates = 10;

    /// <summary>The newest backup of this object written by <paramref name="host"/> (stamps, inodes
    /// included, only mean something on the host that took them), found by the object's refs
    /// (named by the second a backup began; backups begun in the same second are told apart by
    /// their manifests' start time). A candidate that cannot be read is skipped: a damaged old
    /// backup must not stop new ones.</summary>
    private static async Task<Repository.RepositoryManifest?> FindParentAsync(Repository.Repository repo, ObjectLocation location, string host, CancellationToken ct)
    {
        IReadOnlyList<Repository.RepositoryRef> refs = await repo.ListRefsAsync($"object/{location.Dir}/{location.Object}/", ct).ConfigureAwait(false);
        foreach (IGrouping<string, Repository.RepositoryRef> name in refs.GroupBy(r => r.Name).OrderByDescending(g => g.Key, StringComparer.Ordinal).Take(ParentCandidates))
        {
            Repository.RepositoryManifest? newest = null;
            foreach (Repository.RepositoryRef r in name)
            {
                Repository.RepositoryManifest m;
                try
                {
                    m = await repo.ReadManifestAsync(r.ManifestId, ct).ConfigureAwait(false);
                }
                catch (Exception e) when (e is Repository.RepositoryIntegrityException or NotFoundException)
                {
                    continue;
                }
                if (m.Kind == Repository.BackupKind.Object && m.Dir == location.Dir && m.Object == location.Object && m.Host == host
                    && (newest is null || m.CreatedAt > newest.CreatedAt))
                {
                    newest = m;
                }
            }
            if (newest is not null)
            {
                return newest;
            }
        }
        return null;
    }

    /// <summary>Quiesce, copy, then Resume whatever happened (with no token: writers must not stay
    /// paused because the user pressed Ctrl+C).</summary>
    private static async Task CopyFencedAsync(NewObjectBackupOptions options, CopyState copy, ObjectTree tree)
    {
        Exception? failure = null;
        try
        {
            if (options.Quiesce is not null)
            {
                await options.Quiesce(copy.Context.CancellationToken).ConfigureAwait(false);
                // A fenced copy is of the tree as the fence left it: names created or removed between
                // the first listing and the hook are neither changes during the copy nor missing
                // from it (listed before the hook, they made every such copy Recent).
                tree.ReleaseFiles(); // the callers still hold the first listing
                tree = ObjectTree.List(copy.SourceRoot, copy.Context.CancellationToken);
            }
            await copy.CopyAllAsync(tree).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            failure = e;
        }
        if (options.Resume is not null)
        {
            try
            {
                await options.Resume(CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                string before = failure is null ? "" : $" The copy had already failed: {failure.Message}";
                failure = new OperationFailedException("ResumeFailed",
                    $"The Resume hook failed ({e.Message}); writers of '{copy.SourceRoot}' may still be paused. Resume them by hand; no backup was kept.{before}",
                    copy.SourceRoot, e);
            }
        }
        if (failure is not null)
        {
            ExceptionDispatchInfo.Capture(failure).Throw();
        }
    }

    /// <summary>Temp siblings of the object over an hour old: what a killed run left
    /// (<see cref="ObjectLayout.LeftoverTemps"/>).</summary>
    private static IReadOnlyList<string> StaleTemps(ObjectLocation location, string ownTemp) =>
        ObjectLayout.LeftoverTemps(location.DirPath, location.Object, DateTime.UtcNow - ObjectLayout.LeftoverTempAge, ownTemp);

    private static bool Exists(string path) =>
        File.Exists(path) || Directory.Exists(path) || new FileInfo(path).LinkTarget is not null;

    /// <summary>Where the copy of one file goes: a temp folder (local backups) or a repository
    /// backup being written. Storing hashes what it stored; storing a path again replaces it.</summary>
    private interface IFileSink
    {
        void CreateDirectory(string rel);

        /// <summary>Stores the file (replacing an earlier attempt). FileNotFound/DirectoryNotFound
        /// when the source is gone; the sink is left without the path then. <paramref name="settled"/>
        /// is the file's settled stamp before the copy: a sink that has a proven copy of exactly that
        /// stamp (a repository's parent backup) may reuse it without reading (Reused is then true).
        /// <paramref name="beforeRead"/> runs just before the file is opened for reading, never
        /// when it is reused.
        /// <paramref name="onBytes"/> gets the bytes read so far while the file is read.</summary>
        Task<(ContentDigest Digest, bool Reused)> StoreAsync(string rel, string source, FileStamp? settled, Action? beforeRead, Action<long>? onBytes, CancellationToken ct);

        /// <summary>Stores <paramref name="rel"/> without reading it when the sink has a proven copy of
        /// exactly the <paramref name="settled"/> stamp (what <see cref="StoreAsync"/> does first);
        /// null, and nothing stored, when it has none.</summary>
        /// <paramref name="settling"/>: the caller settles <paramref name="settled"/> right after
        /// (<see cref="Settle"/>), so a copy proven by that very stamp may keep it.
        ContentDigest? TryReuse(string rel, FileStamp settled, bool settling = false);

        /// <summary>The stored copy of <paramref name="rel"/> is proven to be the file as stamped.
        /// <paramref name="mayHaveOtherNames"/> is false when the file system said the file has one
        /// name only (no hard link can reuse it).</summary>
        void Settle(string rel, FileStamp stamp, bool mayHaveOtherNames);

        /// <summary>Forgets an earlier attempt of <paramref name="rel"/>.</summary>
        void Discard(string rel);

        /// <summary>The copy of <paramref name="rel"/> is over (stored, or gone): nothing of a
        /// parent's entry for it is needed again.</summary>
        void Done(string rel);

        /// <summary>The stored copy of <paramref name="rel"/> gets (or records) the source's mode, owner and time.</summary>
        void SetMetadata(string rel, FileMetadata metadata);

        /// <summary>Every folder below the root (empty ones included) and the root itself, with their metadata.</summary>
        void SetFolders(IReadOnlyList<(string Rel, FileMetadata Metadata)> folders, FileMetadata? root);
    }

    private sealed class FolderSink(string destRoot) : IFileSink
    {
        public void CreateDirectory(string rel) => Directory.CreateDirectory(Path.Combine(destRoot, rel));

        public ContentDigest? TryReuse(string rel, FileStamp settled, bool settling = false) => null; // a folder copy has no parent

        public async Task<(ContentDigest Digest, bool Reused)> StoreAsync(string rel, string source, FileStamp? settled, Action? beforeRead, Action<long>? onBytes, CancellationToken ct)
        {
            string dest = Path.Combine(destRoot, rel);
            Directory.CreateDirectory(Path.GetDirectoryName(dest)!);
            File.Delete(dest);
            try
            {
                beforeRead?.Invoke();
                // Private until the source's own mode is given to it: a 0600 file's copy is never world-readable.
                return (await FileCopy.CopyAsync(source, dest, ct, PrivateFiles.FileMode, onBytes).ConfigureAwait(false), false);
            }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
            {
                File.Delete(dest);
                throw;
            }
        }

        public void Discard(string rel) => File.Delete(Path.Combine(destRoot, rel));

        public void Done(string rel)
        {
            // A folder copy has no parent.
        }

        public void Settle(string rel, FileStamp stamp, bool mayHaveOtherNames)
        {
            // A folder copy has no parent to compare with next time.
        }

        public void SetMetadata(string rel, FileMetadata metadata) => metadata.Apply(Path.Combine(destRoot, rel));

        public void SetFolders(IReadOnlyList<(string Rel, FileMetadata Metadata)> folders, FileMetadata? root)
        {
            foreach ((string rel, _) in folders)
            {
                Directory.CreateDirectory(Path.Combine(destRoot, rel));
            }
            // Deepest first: making entries in a folder changes its time.
            foreach ((string rel, FileMetadata m) in folders.OrderByDescending(f => f.Rel.Count(c => c == '/')).ThenByDescending(f => f.Rel, StringComparer.Ordinal))
            {
                m.Apply(Path.Combine(destRoot, rel));
            }
            root?.Apply(destRoot);
        }
    }

    /// <summary>Streams each file into one repository backup; nothing is buffered whole. A file the
    /// parent backup proved with the same settled stamp is referenced, not read; so is another name
    /// of an inode this run already read and proved (a hard link with the same stamp), as borg reads
    /// a hard-linked inode once (borg/archive.py, <c>create_helper</c>: <c>hard_links[(st_ino,
    /// st_dev)]</c>). Debian's /usr/lib/x86_64-linux-gnu holds 21 names of 9 inodes, 330 MiB of
    /// names for 35 MiB of content.</summary>
    private sealed class RepositorySink(Repository.BackupWriter writer, Repository.RepositoryManifest? parent) : IFileSink
    {
        private readonly Dictionary<string, Repository.RepositoryFile> _parentFiles =
            parent?.Files.Where(f => f.HasStamp).ToDictionary(f => f.Path, StringComparer.Ordinal) ?? new(StringComparer.Ordinal);

        /// <summary>Files of this run proven by their stamp, by device and inode.</summary>
        private readonly Dictionary<(ulong Device, ulong Inode), (FileStamp Stamp, string Path)> _proven = new();
        private readonly Dictionary<string, (ulong Device, ulong Inode)> _provenInode = new(StringComparer.Ordinal);

        /// <summary>The paths stored without reading: from the parent, or as another name of an inode read in this run.</summary>
        public HashSet<string> Reused { get; } = new(StringComparer.Ordinal);

        public void CreateDirectory(string rel)
        {
            // A repository backup holds files; folders come back with their files.
        }

        public async Task<(ContentDigest Digest, bool Reused)> StoreAsync(string rel, string source, FileStamp? settled, Action? beforeRead, Action<long>? onBytes, CancellationToken ct)
        {
            if (settled is { } s && TryReuse(rel, s) is { } reused)
            {
                return (reused, true);
            }
            Discard(rel);
            beforeRead?.Invoke();
            Repository.RepositoryFile f = await writer.AddFileFromPathAsync(rel, source, Repository.ChunkingProfile.Default, ct, onBytes).ConfigureAwait(false);
            return (new ContentDigest(f.Size, f.Sha256), false);
        }

        public ContentDigest? TryReuse(string rel, FileStamp settled, bool settling = false)
        {
            Discard(rel);
            if (_parentFiles.TryGetValue(rel, out Repository.RepositoryFile? p)
                && p.Size == settled.Size
                && p.StampIs(settled)
                && writer.TryReuseFile(p, keepStamp: settling))
            {
                Reused.Add(rel);
                return new ContentDigest(p.Size, p.Sha256);
            }
            if (settled.Inode != 0
                && _proven.TryGetValue((settled.Device, settled.Inode), out var twin)
                && twin.Stamp == settled
                && writer.Find(twin.Path) is { } same
                && writer.TryAddSameContent(rel, same))
            {
                Reused.Add(rel);
                return new ContentDigest(same.Size, same.Sha256);
            }
            return null;
        }

        public void Discard(string rel)
        {
            writer.RemoveFile(rel);
            Reused.Remove(rel);
            if (_provenInode.Remove(rel, out (ulong, ulong) inode))
            {
                _proven.Remove(inode);
            }
        }

        public void Done(string rel) => _parentFiles.Remove(rel);

        public void Settle(string rel, FileStamp stamp, bool mayHaveOtherNames)
        {
            writer.SetStamp(rel, Repository.RepositoryFileStamp.From(stamp));
            // Only a file with other names can be another name's twin: remembering every file cost
            // ~135 bytes each (62,105 files: 8.4 MiB) for the few hard links a tree has.
            if (mayHaveOtherNames && stamp.Inode != 0 && _proven.TryAdd((stamp.Device, stamp.Inode), (stamp, rel)))
            {
                _provenInode[rel] = (stamp.Device, stamp.Inode);
            }
        }

        public void SetMetadata(string rel, FileMetadata metadata) => writer.SetMetadata(rel, metadata);

        public void SetFolders(IReadOnlyList<(string Rel, FileMetadata Metadata)> folders, FileMetadata? root) =>
            writer.UpdateInfo(writer.Info with
            {
                Root = root is null ? null : Repository.RepositoryDirectory.From("", root),
                Directories = folders.Select(f => Repository.RepositoryDirectory.From(f.Rel, f.Metadata)).ToList(),
            });
    }

    /// <summary>The running copy of one object into a sink.</summary>
    private sealed class CopyState(string sourceRoot, IFileSink sink, OperationContext context, NewObjectBackupOptions options)
    {
        private readonly TimeSpan racyWindow = options.RacyWindow;
        private readonly TimeSpan clockWindow = options.ClockWindow;
        private readonly Func<string, FileStamp?> stamps = options.Stamps;
        private readonly Func<string, bool> flush = options.Flush;
        /// <summary>One statx answers kind, stamp and metadata at once (<see cref="FileStatus"/>),
        /// unless a test stands in for the stamps.</summary>
        private readonly bool oneStat = FileStatus.Available && options.Stamps == (Func<string, FileStamp?>)FileStamp.Read;

        public string SourceRoot { get; } = sourceRoot;
        public OperationContext Context { get; } = context;
        /// <summary>What a folder copy's manifest lists; null for a repository backup, whose writer
        /// holds the files (a second entry per file there cost ~100 bytes each).</summary>
        public SortedDictionary<string, ManifestFile>? Copied { get; } = sink is FolderSink ? new(StringComparer.Ordinal) : null;
        public SortedSet<string> Changed { get; } = new(StringComparer.Ordinal);
        public long DoneBytes { get; private set; }

        /// <summary>Every path a copy was attempted of; true once the last listing has seen it again.</summary>
        private readonly Dictionary<string, bool> _attempted = new(StringComparer.Ordinal);
        private long _totalBytes;
        /// <summary>Progress within a file: a large file reports while it is read.</summary>
        private readonly ProgressThrottle _throttle = new();

        /// <summary>Copies the listed tree, then lists it again: files that appeared are copied
        /// (and listed as changed), files that went away are listed as changed; a last listing
        /// catches what appeared or went away during that.</summary>
        public async Task CopyAllAsync(ObjectTree tree)
        {
            CancellationToken ct = Context.CancellationToken;
            _totalBytes = tree.TotalBytes;
            CreateDirectories(tree);
            using (var ahead = CancellationTokenSource.CreateLinkedTokenSource(ct))
            {
                Task writeback = StartWritebackAhead(tree, ahead.Token);
                try
                {
                    IReadOnlyList<ObjectTree.ListedFile> files = tree.Files;
                    IReadOnlyList<ObjectTree.ListedStatus?>? statuses = tree.Statuses;
                    for (int i = 0; i < files.Count; i++)
                    {
                        // A fenced copy is of the files as the fence left them: a status listed before the
                        // Quiesce hook ran proves nothing about them.
                        ObjectTree.ListedStatus? listed = oneStat && options.Quiesce is null ? statuses?[i] : null;
                        await CopyOneAsync(files[i].Rel, appeared: false, listed).ConfigureAwait(false);
                    }
                }
                finally
                {
                    await ahead.CancelAsync().ConfigureAwait(false);
                    await writeback.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                }
            }

            tree.ReleaseFiles();

            // The later listings look for names that appeared or went away: only a new name is
            // examined and kept; a name already copied is only marked as still there.
            Func<string, bool> isNew = r => !_attempted.ContainsKey(r);
            ObjectTree second = ObjectTree.List(SourceRoot, isNew, isNew, ct);
            CreateDirectories(second);
            foreach (ObjectTree.ListedFile file in second.Files)
            {
                _totalBytes += file.Size;
                await CopyOneAsync(file.Rel, appeared: true, listed: null).ConfigureAwait(false);
            }

            ObjectTree last = ObjectTree.List(SourceRoot, _ => false, r =>
            {
                ref bool present = ref CollectionsMarshal.GetValueRefOrNullRef(_attempted, r);
                if (Unsafe.IsNullRef(ref present))
                {
                    return true;
                }
                present = true;
                return false;
            }, ct);
            foreach (ObjectTree.ListedFile file in last.Files)
            {
                Changed.Add(file.Rel); // appeared at the very end: not in this backup
            }
            foreach ((string rel, bool present) in _attempted)
            {
                if (!present)
                {
                    Changed.Add(rel); // went away during the copy
                }
            }
            // Folders (empty ones too) and the object folder itself, with mode, owner and time, so a
            // restore gives the database back the tree it had (its own files, its own permissions).
            var folders = new List<(string, FileMetadata)>();
            foreach (string rel in last.Directories.Union(second.Directories).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))
            {
                if (ReadMetadata(Path.Combine(SourceRoot, rel)) is { } m)
                {
                    folders.Add((rel, m));
                }
            }
            sink.SetFolders(folders, ReadMetadata(SourceRoot));
        }

        private static FileMetadata? ReadMetadata(string path)
        {
            try
            {
                return FileMetadata.Read(path);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw CopyFailed(path, e);
            }
        }

        /// <summary>Starts writeback of the dirty pages of every file that will need a flush before
        /// it is read (written within the racy window, older than the clock window), in copy order
        /// on a pool thread, so the disk writes while earlier files are hashed and compressed and
        /// each file's own flush mostly finds its pages clean. Nothing to do where files need no
        /// flush (a tree older than the racy window: one stat each) or flushing is not available.</summary>
        private Task StartWritebackAhead(ObjectTree tree, CancellationToken ct)
        {
            if (!Writeback.Available || flush != (Func<string, bool>)Writeback.Flush)
            {
                return Task.CompletedTask;
            }
            // The copy lets go of the tree's files when it is done; this keeps its own references.
            IReadOnlyList<ObjectTree.ListedFile> files = tree.Files;
            IReadOnlyList<ObjectTree.ListedStatus?>? statuses = oneStat ? tree.Statuses : null;
            return Task.Run(() =>
            {
                for (int i = 0; i < files.Count; i++)
                {
                    string rel = files[i].Rel;
                    if (ct.IsCancellationRequested)
                    {
                        return;
                    }
                    string source = Path.Combine(SourceRoot, rel);
                    DateTime now = DateTime.UtcNow;
                    try
                    {
                        // The listing's stamp decides when there is one (a stale one costs at most a
                        // needless or a missed early writeback; the copy flushes what it must).
                        FileStamp? stamp = statuses?[i] is { } l ? l.Status.Stamp : stamps(source);
                        if (stamp is { } s && !s.IsSettledAt(now, racyWindow) && s.IsSettledAt(now, clockWindow))
                        {
                            Writeback.Start(source);
                        }
                    }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                    {
                        // The copy itself reports what is wrong with this file.
                    }
                }
            }, CancellationToken.None);
        }

        private void CreateDirectories(ObjectTree tree)
        {
            foreach (string rel in tree.Directories)
            {
                sink.CreateDirectory(rel);
            }
        }

        private async Task CopyOneAsync(string rel, bool appeared, ObjectTree.ListedStatus? listed)
        {
            CancellationToken ct = Context.CancellationToken;
            ct.ThrowIfCancellationRequested();
            _attempted[rel] = false;
            string source = Path.Combine(SourceRoot, rel);

            (ContentDigest Digest, bool Stable)? result = await CopyStableAsync(source, rel, listed, ct).ConfigureAwait(false);
            sink.Done(rel);
            if (result is not { } done)
            {
                Changed.Add(rel); // removed before it could be read
                return;
            }
            if (!done.Stable || appeared)
            {
                Changed.Add(rel);
            }
            if (Copied is not null)
            {
                Copied[rel] = new ManifestFile(rel, done.Digest.Bytes, done.Digest.Sha256);
            }
            DoneBytes += done.Digest.Bytes;
            Context.ReportBytes(Activity, $"Copied {rel}", DoneBytes, Math.Max(_totalBytes, DoneBytes), rel);
        }

        /// <summary>Copies one file until a copy provably equals the source at one instant. The proof
        /// is the file's stamp (size, last-write and change time, device and inode): the same before
        /// and after the copy, the copy as long as the stamp says, and the times settled (older than
        /// the racy window when the copy began), so a write during the copy would
        /// have changed the stamp. A file written more recently ("racy") is re-hashed by path and
        /// must hash as copied. When a racy file's times are older than the clock window, its dirty
        /// pages are written back before it is read (<see cref="Writeback"/>): from then on any
        /// write moves its times, so its stamp is recorded and proves it to the next backup, which
        /// reuses it unread instead of reading it again. A file reused from the parent backup is
        /// proven by the parent's stamp, which the parent recorded only for a proven copy. Null when
        /// the file vanished before it was read.</summary>
        private async Task<(ContentDigest Digest, bool Stable)?> CopyStableAsync(string source, string rel, ObjectTree.ListedStatus? listed, CancellationToken ct)
        {
            // The listing's own status, read moments ago, proves the parent's copy when its stamp is
            // the parent's and was settled (clock window) when read: the file is this backup's as of
            // that instant, and nothing is read, so there is no copy for a second stamp to check.
            if (listed is { } l
                && (l.Status.Stamp.IsSettledAt(l.ObservedAtUtc, racyWindow) || l.Status.Stamp.IsSettledAt(l.ObservedAtUtc, clockWindow))
                && sink.TryReuse(rel, l.Status.Stamp, settling: true) is { } reusedAsListed)
            {
                sink.Settle(rel, l.Status.Stamp, l.Status.Links != 1);
                sink.SetMetadata(rel, l.Status.Metadata);
                return (reusedAsListed, true);
            }
            for (int attempt = 1; ; attempt++)
            {
                DateTime readStart;
                FileStamp before;
                uint links = 0; // not known
                if (oneStat)
                {
                    readStart = DateTime.UtcNow;
                    if (StatusOf(source) is not { } status || status.Kind == FileKind.Directory)
                    {
                        return null;
                    }
                    if (status.Kind == FileKind.SymbolicLink)
                    {
                        throw BecameLink(source);
                    }
                    before = status.Stamp;
                    links = status.Links;
                }
                else
                {
                    var info = new FileInfo(source);
                    if (!info.Exists)
                    {
                        return null;
                    }
                    if (ObjectLayout.IsLink(info))
                    {
                        throw BecameLink(source);
                    }
                    readStart = DateTime.UtcNow;
                    if (StampOf(source) is not { } stamped)
                    {
                        return null;
                    }
                    before = stamped;
                }
                Context.ReportBytes(Activity, $"Copying {rel}", DoneBytes, _totalBytes, rel);
                bool settled = before.IsSettledAt(readStart, racyWindow);
                bool clockSettled = settled || before.IsSettledAt(readStart, clockWindow);
                bool flushed = false;
                Action? beforeRead = settled || !clockSettled ? null : () => flushed = flush(source);

                ContentDigest copied;
                bool reused;
                try
                {
                    (copied, reused) = await sink.StoreAsync(rel, source, clockSettled ? before : null, beforeRead, n =>
                    {
                        long at = DoneBytes + n;
                        if (_throttle.Due(at))
                        {
                            Context.ReportBytes(Activity, $"Copying {rel}", at, Math.Max(_totalBytes, at), rel);
                        }
                    }, ct).ConfigureAwait(false);
                }
                catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
                {
                    sink.Discard(rel);
                    return null;
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException && e is not Storage.StorageIOException)
                {
                    throw CopyFailed(source, e);
                }
                // After the copy: the stamp again (and the metadata, from the same statx where one answers both).
                FileStatus? after = oneStat ? StatusOf(source) : null;
                bool stable = copied.Bytes == before.Size && (oneStat ? after?.Stamp : StampOf(source)) == before;
                if (stable && !settled && !reused)
                {
                    stable = await RehashesAsAsync(source, copied, ct).ConfigureAwait(false);
                    after = oneStat ? StatusOf(source) : null;
                    stable = stable && (oneStat ? after?.Stamp : StampOf(source)) == before;
                }
                if (stable && (settled || flushed || reused))
                {
                    sink.Settle(rel, before, links != 1);
                }
                if ((oneStat ? after?.Metadata : ReadMetadata(source)) is { } metadata)
                {
                    sink.SetMetadata(rel, metadata);
                }
                if (stable || attempt >= MaxAttempts)
                {
                    return (copied, stable);
                }
            }
        }

        /// <summary>True when the file at <paramref name="source"/> hashes as <paramref name="copied"/>; false when it differs or went away.</summary>
        private static async Task<bool> RehashesAsAsync(string source, ContentDigest copied, CancellationToken ct)
        {
            try
            {
                return await FileCopy.HashAsync(source, ct).ConfigureAwait(false) == copied;
            }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
            {
                return false; // a real earlier version; it went away after
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw CopyFailed(source, e);
            }
        }

        private static FileStatus? StatusOf(string source)
        {
            try
            {
                return FileStatus.Read(source);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw CopyFailed(source, e);
            }
        }

        private static InvalidInputException BecameLink(string source) =>
            new("SymbolicLinkInObject",
                $"'{SafePath.Printable(source)}' became a symbolic link during the backup. PSBackup does not follow links in an object; replace it with the real file, then run again.",
                source);

        private FileStamp? StampOf(string source)
        {
            try
            {
                return stamps(source);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw CopyFailed(source, e);
            }
        }

        private static OperationFailedException CopyFailed(string source, Exception e) =>
            new("CopyFailed", SafePath.IsSharingViolation(e)
                ? $"Cannot copy '{source}' into the backup: another process holds it open without sharing it for reading ({e.Message.TrimEnd('.')}). Back it up while that process does not hold it, or have it open the file with read sharing, then run again."
                : $"Cannot copy '{source}' into the backup ({e.Message.TrimEnd('.')}). Check that the file is readable and the backup disk has space, then run again.", source, e);
    }
}
