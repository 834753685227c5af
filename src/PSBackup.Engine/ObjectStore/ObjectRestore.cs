using System.Security.Cryptography;

namespace PSBackup.Engine.ObjectStore;

/// <summary>Restore-ObjectBackup: the seed's manual "stop, rename, mv" done safely. The backup is
/// verified against its manifest, copied (not moved, so it stays re-restorable) to a temp sibling,
/// and swapped in with two renames; the replaced live object is kept aside.</summary>
internal static class ObjectRestore
{
    private const string Activity = "Restore-ObjectBackup";
    private const string FromHint = "Give -From a backup folder name '<object>.backup-yyyyMMddTHHmmss', its timestamp 'yyyyMMddTHHmmss', or 'latest'.";

    public static async Task<ObjectRestoreResult?> RunAsync(RestoreObjectBackupOptions options, OperationContext context)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(context);
        // A repository restore may recreate a lost tenant dir (disaster recovery): the backup it
        // names exists, so a mistyped dir is NoBackup, not a new folder.
        ObjectLocation location = ObjectLocation.Resolve(options.DbRoot, options.Dir, options.Object, requireDir: options.Repository is null);
        if (options.Repository is { } target)
        {
            return await RunFromRepositoryAsync(options, target, location, context).ConfigureAwait(false);
        }
        if (options.From is not null && options.BackupId is not null && !string.Equals(options.BackupId, options.From, StringComparison.Ordinal))
        {
            throw new InvalidInputException("AmbiguousBackup",
                $"-From '{SafePath.Printable(options.From)}' and -BackupId '{SafePath.Printable(options.BackupId)}' name different backups. Give one of them.", options.BackupId);
        }
        string backupName = ResolveFrom(options.From ?? options.BackupId, location);
        string backupPath = SafePath.Combine(location.DirPath, backupName, "backup");
        string manifestPath = SafePath.Combine(location.DirPath, ObjectLayout.ManifestName(backupName), "backup manifest");
        if (!Directory.Exists(backupPath))
        {
            throw new NotFoundException("BackupNotFound",
                $"The backup '{backupName}' does not exist in '{location.DirPath}'. Check -From, or pass -From latest for the newest complete backup.", backupPath);
        }
        if (!File.Exists(manifestPath))
        {
            throw new NotFoundException("ManifestNotFound",
                $"The backup '{backupName}' has no manifest '{manifestPath}': it is incomplete (interrupted) and cannot be verified. Restore another backup.", manifestPath);
        }

        BackupManifest manifest = ManifestIO.Read(manifestPath);
        if (!string.Equals(manifest.Kind, "object", StringComparison.Ordinal))
        {
            throw new IntegrityException("ManifestKind",
                $"The manifest '{manifestPath}' describes a '{SafePath.Printable(manifest.Kind ?? "")}' backup, not an object backup. Restore an object backup with Restore-ObjectBackup.", manifestPath);
        }
        await ManifestIO.VerifyAsync(backupPath, manifest, context, Activity + ": verifying " + backupName).ConfigureAwait(false);

        var outcome = await ReplaceAsync(location, options.Force, $"Replace with backup {backupName}", backupName, context,
            temp => CopyVerifiedAsync(backupPath, backupName, temp, manifest, context)).ConfigureAwait(false);
        return outcome is null ? null : new ObjectRestoreResult
        {
            DbRoot = location.DbRoot,
            Dir = location.Dir,
            Object = location.Object,
            BackupName = backupName,
            RestoredPath = location.ObjectPath,
            ReplacedPath = outcome.ReplacedPath,
            FileCount = manifest.Files.Count,
            Bytes = manifest.Files.Sum(f => f.Size),
        };
    }

    /// <summary>The repository twin: the backup (by id, else the newest of this dir/object) is
    /// streamed out of the repository into the temp sibling, where every frame, chunk and whole
    /// file is checked as it is written (<see cref="Repository.Repository.RestoreAsync"/>), so the
    /// data is read once; nothing outside the temp is touched before every file has passed.</summary>
    private static async Task<ObjectRestoreResult?> RunFromRepositoryAsync(RestoreObjectBackupOptions options, Repository.RepositoryTarget target,
        ObjectLocation location, OperationContext context)
    {
        CancellationToken ct = context.CancellationToken;
        if (options.BackupId is not null && !Repository.Hex.IsSha256Hex(options.BackupId))
        {
            throw new InvalidInputException("InvalidBackupId",
                $"'{SafePath.Printable(options.BackupId)}' is not a backup id (64 lowercase hex digits). Get ids from Get-Backup -Kind Object, or leave -BackupId out for the newest backup.", options.BackupId);
        }
        if (options.From is not null && options.BackupId is null)
        {
            throw new InvalidInputException("FromWithRepository",
                $"-From names a backup folder beside the object; with -Repository give -BackupId, or leave it out for the newest backup of '{location.Dir}/{location.Object}'.", options.From);
        }
        using Repository.OpenRepository open = await Repository.RepositoryConnector.OpenAsync(target, ct).ConfigureAwait(false);
        Repository.Repository repo = open.Repository;
        string id = options.BackupId ?? await FindLatestInRepositoryAsync(repo, location, ct).ConfigureAwait(false);
        Repository.RepositoryManifest manifest = await repo.ReadManifestAsync(id, ct).ConfigureAwait(false);
        // Where the target root ignores case (Windows), 'acme/deep' is the object whose history is
        // 'Acme/Deep': restored under the history's spelling unless the disk already has one.
        if (manifest.Kind == Repository.BackupKind.Object && manifest.Dir is not null && manifest.Object is not null
            && (!string.Equals(manifest.Dir, location.Dir, StringComparison.Ordinal) || !string.Equals(manifest.Object, location.Object, StringComparison.Ordinal))
            && string.Equals(manifest.Dir, location.Dir, StringComparison.OrdinalIgnoreCase) && string.Equals(manifest.Object, location.Object, StringComparison.OrdinalIgnoreCase)
            && TargetIgnoresCase(location))
        {
            location = ObjectLocation.Resolve(location.DbRoot, manifest.Dir, manifest.Object, requireDir: false) with { Dir = manifest.Dir, Object = manifest.Object };
        }
        if (manifest.Kind != Repository.BackupKind.Object
            || !string.Equals(manifest.Dir, location.Dir, StringComparison.Ordinal)
            || !string.Equals(manifest.Object, location.Object, StringComparison.Ordinal))
        {
            string what = manifest.Kind != Repository.BackupKind.Object
                ? $"a {Repository.BackupKinds.ToName(manifest.Kind)} backup"
                : $"a backup of '{SafePath.Printable(manifest.Dir ?? "")}/{SafePath.Printable(manifest.Object ?? "")}'";
            throw new InvalidInputException("BackupOfOtherObject",
                $"Backup {id} in {repo.Location} is {what}, not of '{location.Dir}/{location.Object}'. One object is never restored from another's backup; pick an id from Get-Backup -Kind Object -Dir {location.Dir} -Object {location.Object}.", id);
        }
        string backupName = ObjectLayout.BackupName(location.Object, ObjectLayout.FormatTimestamp(manifest.CreatedAt));
        if (options.From is not null && !string.Equals(options.From, backupName, StringComparison.Ordinal))
        {
            throw new InvalidInputException("AmbiguousBackup",
                $"-From '{SafePath.Printable(options.From)}' is not backup {id} (that one is '{backupName}'). Give -BackupId alone.", options.From);
        }

        var outcome = await ReplaceAsync(location, options.Force,
            $"Replace with backup {backupName} ({id}, {manifest.Files.Count} files, {manifest.TotalBytes} bytes) from {repo.Location}", backupName, context,
            temp => repo.RestoreAsync(manifest, temp, overwrite: false, new RestoreProgress(context, manifest.TotalBytes), ct, freshFolder: true)).ConfigureAwait(false);
        return outcome is null ? null : new ObjectRestoreResult
        {
            DbRoot = location.DbRoot,
            Dir = location.Dir,
            Object = location.Object,
            BackupName = backupName,
            Repository = target.Location,
            BackupId = id,
            RestoredPath = location.ObjectPath,
            ReplacedPath = outcome.ReplacedPath,
            FileCount = manifest.Files.Count,
            Bytes = manifest.TotalBytes,
        };
    }

    /// <summary>The newest backup of the object by its ref <c>object/&lt;dir&gt;/&lt;obj&gt;/&lt;ts&gt;</c>
    /// (a ref is written after its manifest, so a listed ref is a complete backup).</summary>
    /// <summary>Whether names under the target root ignore case (probed in the nearest existing
    /// folder). <see cref="CaseProbe"/> replaces the probe in tests, so the Windows rule runs on Linux.</summary>
    private static bool TargetIgnoresCase(ObjectLocation location) =>
        (CaseProbe.Value ?? SafePath.FolderIgnoresCase)(Directory.Exists(location.DirPath) ? location.DirPath : location.DbRoot);

    /// <summary>Tests: answers "does this folder ignore case" for the current async flow.</summary>
    internal static readonly AsyncLocal<Func<string, bool>?> CaseProbe = new();

    private static async Task<string> FindLatestInRepositoryAsync(Repository.Repository repo, ObjectLocation location, CancellationToken ct)
    {
        string prefix = $"object/{location.Dir}/{location.Object}/";
        IReadOnlyList<Repository.RepositoryRef> refs = await repo.ListRefsAsync(prefix, ct).ConfigureAwait(false);
        if (refs.Count == 0 && TargetIgnoresCase(location))
        {
            // A disaster recovery into an empty root on Windows: '-Dir acme' for the history
            // 'Acme/...' (a case-sensitive store, S3, keeps the spelling it was given). One history
            // matching ignoring case is taken; two are ambiguous and named.
            IReadOnlyList<Repository.RepositoryRef> all = await repo.ListRefsAsync("object/", ct).ConfigureAwait(false);
            var spellings = all.Select(r => r.Name.Split('/')).Where(p => p.Length == 4
                    && string.Equals(p[1], location.Dir, StringComparison.OrdinalIgnoreCase) && string.Equals(p[2], location.Object, StringComparison.OrdinalIgnoreCase))
                .Select(p => $"object/{p[1]}/{p[2]}/").Distinct(StringComparer.Ordinal).ToList();
            if (spellings.Count > 1)
            {
                throw new InvalidInputException("AmbiguousObjectName",
                    $"The repository {repo.Location} holds histories of '{location.Dir}/{location.Object}' under several spellings ({string.Join(", ", spellings.Select(s => s[7..^1]))}), and this root does not tell them apart. Give -BackupId (from Get-Backup -Kind Object).", repo.Location);
            }
            if (spellings.Count == 1)
            {
                prefix = spellings[0];
                refs = all.Where(r => r.Name.StartsWith(prefix, StringComparison.Ordinal)).ToList();
            }
        }
        Repository.RepositoryRef? newest = refs
            .Where(r => ObjectLayout.IsTimestamp(r.Name[prefix.Length..]))
            .OrderByDescending(r => r.Name, StringComparer.Ordinal)
            .ThenByDescending(r => r.ManifestId, StringComparer.Ordinal)
            .FirstOrDefault();
        return newest?.ManifestId ?? throw new NotFoundException("NoBackup",
            $"There is no backup of '{location.Dir}/{location.Object}' in {repo.Location}. Run New-ObjectBackup -Repository first, or check -Dir and -Object (names are case-sensitive).",
            repo.Location);
    }

    /// <summary>What both restores share once the backup is chosen and checked: the live object
    /// must be empty or missing (unless -Force), ShouldProcess is asked, <paramref name="fill"/>
    /// builds the verified copy in a temp sibling, which is fsynced and swapped in. Null when
    /// declined; the temp is removed on any failure, leaving the live object untouched.</summary>
    private static async Task<Replacement?> ReplaceAsync(ObjectLocation location, bool force, string action, string backupName,
        OperationContext context, Func<string, Task> fill)
    {
        CancellationToken ct = context.CancellationToken;
        string livePath = location.ObjectPath;
        if (File.Exists(livePath))
        {
            throw new ConflictException("ObjectNotADirectory",
                $"'{livePath}' is a file, not an object folder. Move it away by hand, then run again.", livePath);
        }
        if (!force && context.WhatIf && IsNonEmptyFolder(livePath))
        {
            // A preview never fails for want of -Force: it says so.
            action += $" (replaces the non-empty live object '{livePath}': needs -Force)";
        }
        else if (!force)
        {
            RequireEmptyOrMissing(livePath);
        }
        if (!context.ShouldProcess(livePath, action))
        {
            return null;
        }

        bool createdDir = !Directory.Exists(location.DirPath);
        if (createdDir)
        {
            Directory.CreateDirectory(location.DirPath);
            Durable.FsyncDirectory(location.DbRoot);
        }
        string timestamp = ObjectLayout.FormatTimestamp(context.UtcNow);
        string tempPath = Path.Combine(location.DirPath,
            $"{location.Object}.restore-{timestamp}-{Convert.ToHexString(RandomNumberGenerator.GetBytes(4)).ToLowerInvariant()}.tmp");
        try
        {
            Directory.CreateDirectory(tempPath);
            await fill(tempPath).ConfigureAwait(false);
            Durable.FsyncTree(tempPath);
            ct.ThrowIfCancellationRequested();
            if (!force)
            {
                RequireEmptyOrMissing(livePath); // it may have filled while we copied
            }
            context.Report(Activity, $"Swapping in {backupName}", 1, 1, livePath);
            return new Replacement(FolderSwap.Replace(tempPath, livePath, timestamp, "live object", deleteEmptyLive: false));
        }
        catch
        {
            Durable.TryDelete(tempPath);
            if (createdDir)
            {
                try
                {
                    Directory.Delete(location.DirPath); // only when still empty
                }
                catch (IOException)
                {
                }
            }
            throw;
        }
    }

    /// <summary>Where the replaced live object went (null when there was none).</summary>
    private sealed record Replacement(string? ReplacedPath);

    /// <summary>Forwards the repository's per-file progress as this activity's.</summary>
    private sealed class RestoreProgress(OperationContext context, long total) : IProgress<OperationProgress>
    {
        public void Report(OperationProgress value) =>
            context.ReportBytes(Activity, value.Status, value.Completed, total, value.CurrentItem);
    }

    /// <summary>Turns -From into a backup folder name of this object, or refuses it before anything
    /// is touched.</summary>
    internal static string ResolveFrom(string? from, ObjectLocation location)
    {
        if (string.IsNullOrWhiteSpace(from))
        {
            throw new InvalidInputException("InvalidBackupName", $"-From is empty. {FromHint}", from);
        }
        string shown = SafePath.Printable(from);
        if (from.Any(char.IsControl) || from.Contains('/') || from.Contains('\\') || from.Contains("..", StringComparison.Ordinal) || from.Contains(':'))
        {
            throw new InvalidInputException("InvalidBackupName",
                $"-From '{shown}' is a path, not a backup name; backups are only looked up beside the object. {FromHint}", from);
        }
        if (string.Equals(from, "latest", StringComparison.OrdinalIgnoreCase))
        {
            return FindLatest(location);
        }
        if (ObjectLayout.IsTimestamp(from))
        {
            return ObjectLayout.BackupName(location.Object, from);
        }
        if (ObjectLayout.TryParseBackupName(from, out string obj, out _))
        {
            if (string.Equals(obj, location.Object, StringComparison.Ordinal))
            {
                return from;
            }
            throw new InvalidInputException("BackupOfOtherObject",
                $"-From '{shown}' is a backup of object '{SafePath.Printable(obj)}', not of '{location.Object}'. Restore it with -Object {SafePath.Printable(obj)}, or pick a backup of '{location.Object}'.", from);
        }
        throw new InvalidInputException("InvalidBackupName", $"-From '{shown}' is not a backup name. {FromHint}", from);
    }

    /// <summary>The newest backup of the object that has its manifest (backups without one are
    /// incomplete).</summary>
    private static string FindLatest(ObjectLocation location)
    {
        string? best = null;
        string? bestTimestamp = null;
        foreach (FileSystemInfo entry in new DirectoryInfo(location.DirPath).EnumerateFileSystemInfos("*", ObjectTree.OneLevel))
        {
            if (entry is not DirectoryInfo || ObjectLayout.IsLink(entry)
                || !ObjectLayout.TryParseBackupName(entry.Name, out string obj, out string timestamp)
                || !string.Equals(obj, location.Object, StringComparison.Ordinal))
            {
                continue;
            }
            var manifest = new FileInfo(Path.Combine(location.DirPath, ObjectLayout.ManifestName(entry.Name)));
            if (!manifest.Exists || ObjectLayout.IsLink(manifest))
            {
                continue;
            }
            if (bestTimestamp is null || string.CompareOrdinal(timestamp, bestTimestamp) > 0)
            {
                best = entry.Name;
                bestTimestamp = timestamp;
            }
        }
        return best ?? throw new NotFoundException("NoBackup",
            $"There is no complete backup of '{location.Object}' in '{location.DirPath}' (a backup counts only with its manifest). Run New-ObjectBackup first, or name a backup with -From.",
            location.DirPath);
    }

    private static bool IsNonEmptyFolder(string path) => Directory.Exists(path) && Directory.EnumerateFileSystemEntries(path).Any();

    private static void RequireEmptyOrMissing(string livePath)
    {
        if (IsNonEmptyFolder(livePath))
        {
            throw new ConflictException("ObjectNotEmpty",
                $"The live object '{livePath}' is not empty. Stop the database and pass -Force to replace it; the current object will be kept aside as '<object>.replaced-<timestamp>'.",
                livePath);
        }
    }

    /// <summary>Copies every file the manifest lists (and the backup's folders, empty ones too),
    /// checking each copied byte stream against the manifest: the backup may change after it was
    /// verified.</summary>
    private static async Task CopyVerifiedAsync(string backupPath, string backupName, string tempPath, BackupManifest manifest, OperationContext context)
    {
        CancellationToken ct = context.CancellationToken;
        foreach (string dir in Directory.EnumerateDirectories(backupPath, "*", SearchOption.AllDirectories))
        {
            string rel = ObjectLayout.Relative(backupPath, dir);
            SafePath.RejectLinksBelow(backupPath, dir, "backup folder");
            Directory.CreateDirectory(Path.Combine(tempPath, rel));
        }
        long total = manifest.Files.Sum(f => f.Size);
        long done = 0;
        foreach (ManifestFile entry in manifest.Files)
        {
            ct.ThrowIfCancellationRequested();
            context.ReportBytes(Activity, $"Restoring {entry.Path}", done, total, entry.Path);
            string source = SafePath.Combine(backupPath, entry.Path, "backup file");
            string dest = Path.Combine(tempPath, entry.Path);
            Directory.CreateDirectory(Path.GetDirectoryName(dest)!);
            ContentDigest digest = await FileCopy.CopyAsync(source, dest, ct, PrivateFiles.FileMode).ConfigureAwait(false);
            if (digest.Bytes != entry.Size || !string.Equals(digest.Sha256, entry.Sha256, StringComparison.Ordinal))
            {
                throw new IntegrityException("BackupFileCorrupt",
                    $"Backup '{backupName}' file '{entry.Path}' changed while it was restored (it no longer matches its manifest). Nothing was replaced; check what is writing to the backup, then run again.",
                    source);
            }
            // The backup copy kept the object's mode, owner and time: the restored file gets them.
            FileMetadata.Read(source)?.Apply(dest);
            done += entry.Size;
        }
        foreach (string dir in Directory.EnumerateDirectories(backupPath, "*", SearchOption.AllDirectories)
            .OrderByDescending(d => d.Count(c => c == Path.DirectorySeparatorChar)).ThenByDescending(d => d, StringComparer.Ordinal))
        {
            FileMetadata.Read(dir)?.Apply(Path.Combine(tempPath, ObjectLayout.Relative(backupPath, dir)));
        }
        FileMetadata.Read(backupPath)?.Apply(tempPath);
        context.ReportBytes(Activity, $"Restored {manifest.Files.Count} files", done, total);
    }
}
