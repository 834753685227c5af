using System.Security.Cryptography;
using PSBackup.Engine.Events;
using PSBackup.Engine.ObjectStore;
using PSBackup.Engine.Storage;

namespace PSBackup.Engine.Repository;

/// <summary>What Sync-BackupRepository copies: a repository, or a plain local backup root (a
/// folder without a <c>config</c>, e.g. <c>&lt;dataDir&gt;/backups</c>), to a folder, an S3 prefix
/// or an Azure Blob container. Each side carries its own storage options and credentials;
/// options of another kind of storage than a side's are ignored for that side.</summary>
public sealed record SyncBackupRepositoryOptions(RepositoryTarget Source, RepositoryTarget Destination);

/// <summary>What a sync did. Objects the ShouldProcess stand-in declined (-WhatIf) are counted in
/// <see cref="Declined"/> and not copied.</summary>
public sealed record SyncResult
{
    public required string Source { get; init; }
    public required string Destination { get; init; }
    /// <summary>"Repository" (object by object, in write order) or "Folder" (a plain backup root).</summary>
    public required string Mode { get; init; }
    /// <summary>The repository id (Repository mode).</summary>
    public string? RepositoryId { get; init; }
    public int Copied { get; init; }
    public long CopiedBytes { get; init; }
    /// <summary>Already at the destination.</summary>
    public int Skipped { get; init; }
    public long SkippedBytes { get; init; }
    /// <summary>Not copied because -WhatIf / -Confirm declined them.</summary>
    public int Declined { get; init; }
    public long DeclinedBytes { get; init; }
    /// <summary>Source entries that are not part of the format or are transient artifacts (.new/.old/.tmp): never shipped.</summary>
    public int Ignored { get; init; }
    /// <summary>Damaged source manifests (and the refs naming them) that were not copied: what each
    /// is and why. Everything else was copied; a non-empty list makes the CLI exit 4.</summary>
    public IReadOnlyList<string> DamagedSkipped { get; init; } = [];
    /// <summary>Seconds the operation took (a number: ConvertTo-Json writes it as one).</summary>
    public required double Duration { get; init; }
}

/// <summary>Sync-BackupRepository. A repository is copied object by object: keys and config
/// first (only into an empty destination; a destination holding another repository is refused),
/// then packs, index objects, manifests and refs, each phase finished before the next, so an
/// interrupted sync leaves a destination whose every manifest has its index and packs. Source
/// listings are taken in the reverse order (refs first, packs last), so a backup committed on the
/// source while the sync runs is either wholly in the listing or only as unreferenced packs.
/// Every object is downloaded and verified before it is stored: a pack's SHA-256 is its id; index
/// objects and manifests are content-addressed and, when the repository can be opened (not
/// encrypted, or the key given), decoded and validated too. No key is needed to replicate an
/// encrypted repository.</summary>
public static class RepositorySync
{
    private const string Activity = "Sync backup repository";
    private const int Parallelism = 4;
    /// <summary>Objects up to this size are verified in memory; larger ones spool to a temp file.</summary>
    private const long MemoryLimit = 64L * 1024 * 1024;

    public static Task<SyncResult> SyncAsync(SyncBackupRepositoryOptions options, OperationContext context) =>
        OperationRecorder.RunAsync(new OperationScope { Operation = "Sync-BackupRepository", Category = "sync", Target = $"{options?.Source} -> {options?.Destination}", History = false },
            context, c => SyncCoreAsync(options!, c), r => new OperationOutcome(r.CopiedBytes));

    private static async Task<SyncResult> SyncCoreAsync(SyncBackupRepositoryOptions options, OperationContext context)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(options.Source);
        ArgumentNullException.ThrowIfNull(options.Destination);
        RepositoryTarget source = options.Source.WithoutForeignStorageOptions();
        RepositoryTarget destination = options.Destination.WithoutForeignStorageOptions();
        if (source.Kind == RepositoryKind.Folder && destination.Kind == RepositoryKind.Folder && SameFolder(source.Location, destination.Location))
        {
            throw new InvalidInputException("SameSyncTarget", $"-Source and -Destination are the same place ({source.Location}). Give a different destination.", destination.Location);
        }
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        using IStorageBackend src = RepositoryConnector.OpenBackend(source);
        StoredObject? config = await src.StatAsync(RepositoryLayout.ConfigKey, context.CancellationToken).ConfigureAwait(false);
        if (config is null && source.Kind != RepositoryKind.Folder)
        {
            throw new NotFoundException("RepositoryNotFound",
                $"There is no repository at {source} (no 'config' object). Only a local folder can be synced as a plain backup root.", source.ToString());
        }
        // Open (and so authenticate) the source before the destination is touched: a wrong key writes nothing.
        Repository? repo = null;
        if (config is not null)
        {
            RepositoryConfig sourceConfig = Repository.ParseConfig(await Repository.GetBytesAsync(src, RepositoryLayout.ConfigKey, context.CancellationToken).ConfigureAwait(false), src.Location);
            RepositoryCredentials credentials = RepositoryConnector.Credentials(source);
            if (!sourceConfig.IsEncrypted || !credentials.IsNone)
            {
                repo = await Repository.OpenAsync(src, credentials, context.CancellationToken).ConfigureAwait(false);
            }
        }
        using IStorageBackend dst = OpenDestination(destination, context);
        if (dst is RetryingBackend { Inner: AzureBlobBackend azure } retrying && context.ShouldProcess(destination.ToString(), "Create the destination container if missing"))
        {
            await retrying.RunWithRetriesAsync(azure.CreateContainerIfMissingAsync, "create the container", context.CancellationToken).ConfigureAwait(false);
        }
        var counter = new Counter();
        string mode;
        string? id = null;
        if (config is null)
        {
            mode = "Folder";
            await SyncFolderAsync(source.Location, dst, context, counter).ConfigureAwait(false);
        }
        else
        {
            mode = "Repository";
            id = await SyncRepositoryAsync(repo, src, dst, context, counter).ConfigureAwait(false);
        }
        return new SyncResult
        {
            Source = source.ToString(),
            Destination = destination.ToString(),
            Mode = mode,
            RepositoryId = id,
            Copied = counter.Copied,
            CopiedBytes = counter.CopiedBytes,
            Skipped = counter.Skipped,
            SkippedBytes = counter.SkippedBytes,
            Declined = counter.Declined,
            DeclinedBytes = counter.DeclinedBytes,
            Ignored = counter.Ignored,
            DamagedSkipped = counter.Damaged.Order(StringComparer.Ordinal).ToList(),
            Duration = Durations.Seconds(System.Diagnostics.Stopwatch.GetElapsedTime(start)),
        };
    }

    private sealed class Counter
    {
        public int Copied, Skipped, Declined, Ignored;
        public List<string> Damaged { get; } = new();
        public long CopiedBytes, SkippedBytes, DeclinedBytes;
        public long Done, Total;
    }

    private static bool SameFolder(string a, string b) =>
        string.Equals(Path.TrimEndingDirectorySeparator(Path.GetFullPath(a)), Path.TrimEndingDirectorySeparator(Path.GetFullPath(b)),
            OperatingSystem.IsWindows() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal);

    /// <summary>The destination backend. A missing destination folder is created only when
    /// ShouldProcess agrees; under -WhatIf it is read as an empty destination.</summary>
    private static IStorageBackend OpenDestination(RepositoryTarget destination, OperationContext context)
    {
        if (destination.Kind != RepositoryKind.Folder || Directory.Exists(destination.Location))
        {
            return RepositoryConnector.OpenBackend(destination);
        }
        return context.ShouldProcess(destination.Location, "Create destination folder")
            ? RepositoryConnector.OpenBackend(destination, createFolder: true)
            : new EmptyBackend(destination.Location);
    }

    /// <summary>A destination that does not exist yet, seen under -WhatIf: lists nothing, stores nothing.</summary>
    private sealed class EmptyBackend(string location) : IStorageBackend
    {
        public string Location => location;
        public Task PutAsync(string key, Stream content, long length, CancellationToken ct) => throw new InvalidOperationException("The destination was not created (-WhatIf).");
        public Task<Stream> GetAsync(string key, CancellationToken ct) => throw new StorageNotFoundException(key, location);
        public Task<Stream> GetRangeAsync(string key, long offset, long length, CancellationToken ct) => throw new StorageNotFoundException(key, location);
        public Task<StoredObject?> StatAsync(string key, CancellationToken ct) => Task.FromResult<StoredObject?>(null);
        public async IAsyncEnumerable<StoredObject> ListAsync(string prefix, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
        {
            await Task.CompletedTask.ConfigureAwait(false);
            yield break;
        }
        public Task DeleteAsync(string key, CancellationToken ct) => Task.CompletedTask;
        public void Dispose() { }
    }

    // ------------------------------------------------------------------ repository mode

    private static async Task<string> SyncRepositoryAsync(Repository? repo, IStorageBackend src, IStorageBackend dst, OperationContext context, Counter counter)
    {
        CancellationToken ct = context.CancellationToken;
        byte[] configBytes = await Repository.GetBytesAsync(src, RepositoryLayout.ConfigKey, ct).ConfigureAwait(false);
        RepositoryConfig config = Repository.ParseConfig(configBytes, src.Location);

        // The destination: empty, or the same repository.
        StoredObject? dstConfig = await dst.StatAsync(RepositoryLayout.ConfigKey, ct).ConfigureAwait(false);
        if (dstConfig is not null)
        {
            byte[] theirs = await Repository.GetBytesAsync(dst, RepositoryLayout.ConfigKey, ct).ConfigureAwait(false);
            RepositoryConfig other;
            try
            {
                other = Repository.ParseConfig(theirs, dst.Location);
            }
            catch (RepositoryIntegrityException e)
            {
                throw new ConflictException("DestinationNotRepository", $"The destination {dst.Location} has a 'config' that is not a valid repository config ({e.Message}). Choose an empty destination.", dst.Location);
            }
            if (other.Id != config.Id)
            {
                throw new ConflictException("DifferentRepository",
                    $"The destination {dst.Location} holds a different repository (id {other.Id[..12]}..., the source is {config.Id[..12]}...). Sync only copies a repository into an empty destination or into a copy of itself; choose another destination.",
                    dst.Location);
            }
            if (!theirs.AsSpan().SequenceEqual(configBytes))
            {
                throw new RepositoryIntegrityException("ConfigMismatch",
                    $"The destination {dst.Location} has the same repository id but a different config. One of them is damaged; run Test-BackupRepository on both.", RepositoryLayout.ConfigKey);
            }
        }
        else
        {
            await foreach (StoredObject o in dst.ListAsync("", ct).ConfigureAwait(false))
            {
                // Keys and a lock: what an interrupted first sync leaves behind.
                if (!o.Key.StartsWith(RepositoryLayout.KeysPrefix, StringComparison.Ordinal) && !o.Key.StartsWith(RepositoryLock.Prefix, StringComparison.Ordinal))
                {
                    throw new ConflictException("DestinationNotEmpty",
                        $"The destination {dst.Location} is not empty ('{o.Key}') and holds no repository. Sync a repository only into an empty destination or into a copy of itself.", dst.Location);
                }
            }
        }

        // A writer like any backup: no prune may delete what this sync is about to reference.
        await using RepositoryLock? held = context.WhatIf || dst is EmptyBackend ? null
            : await RepositoryLock.AcquireAsync(dst, RepositoryLockMode.Shared, "Sync-BackupRepository", context.Clock, ct).ConfigureAwait(false);

        // Decoding needs the key (repo is null without it); every object is still verified by its content address.

        // List newest-written first: anything a listed ref/manifest/index needs was written before it, so it is in a later listing.
        var refs = await ListAsync(src, RepositoryLayout.RefsPrefix, ct).ConfigureAwait(false);
        var manifests = await ListAsync(src, RepositoryLayout.SnapshotsPrefix, ct).ConfigureAwait(false);
        var indexes = await ListAsync(src, RepositoryLayout.IndexPrefix, ct).ConfigureAwait(false);
        var packs = await ListAsync(src, RepositoryLayout.PacksPrefix, ct).ConfigureAwait(false);
        var keys = await ListAsync(src, RepositoryLayout.KeysPrefix, ct).ConfigureAwait(false);
        var present = new Dictionary<string, long>(StringComparer.Ordinal);
        await foreach (StoredObject o in dst.ListAsync("", ct).ConfigureAwait(false))
        {
            present[o.Key] = o.Size;
        }
        counter.Total = refs.Concat(manifests).Concat(indexes).Concat(packs).Concat(keys).Sum(o => o.Size) + configBytes.Length;

        // Keys, then config (the order init uses): an interrupted first sync leaves no config, and the next run resumes.
        if (dstConfig is null)
        {
            await CopyPhaseAsync(src, dst, keys, present, Verifier(KeyName), context, counter).ConfigureAwait(false);
            if (context.ShouldProcess($"{dst.Location}/{RepositoryLayout.ConfigKey}", "Copy repository object"))
            {
                await Repository.PutBytesAsync(dst, RepositoryLayout.ConfigKey, configBytes, ct).ConfigureAwait(false);
                Count(counter, ref counter.Copied, ref counter.CopiedBytes, configBytes.Length);
            }
            else
            {
                Count(counter, ref counter.Declined, ref counter.DeclinedBytes, configBytes.Length);
            }
        }
        else
        {
            await CopyPhaseAsync(src, dst, keys, present, Verifier(KeyName), context, counter).ConfigureAwait(false);
            Count(counter, ref counter.Skipped, ref counter.SkippedBytes, configBytes.Length);
        }

        await CopyPhaseAsync(src, dst, packs, present, Verifier(PackName), context, counter).ConfigureAwait(false);
        await CopyPhaseAsync(src, dst, indexes, present, Verifier(o => Suffix(o.Key, RepositoryLayout.IndexPrefix), repo is null ? null : (key, bytes) =>
        {
            IndexObject idx = ParseIndex(repo, key, bytes);
            foreach (IndexPack p in idx.Packs)
            {
                if (!present.ContainsKey(RepositoryLayout.PackKey(p.Id)))
                {
                    throw new RepositoryIntegrityException("PackMissing", $"The index object {key} lists pack {p.Id}, which is in neither the source listing nor the destination. Run Test-BackupRepository on the source.", key);
                }
            }
        }), context, counter).ConfigureAwait(false);
        // A damaged manifest is a backup that cannot be restored: it is never copied (nor the refs
        // naming it), and the rest of the sync goes on; the result lists it.
        await CopyPhaseAsync(src, dst, manifests, present, Verifier(o => Suffix(o.Key, RepositoryLayout.SnapshotsPrefix), repo is null ? null : (key, bytes) =>
        {
            string id = key[RepositoryLayout.SnapshotsPrefix.Length..];
            Repository.ParseManifest(repo.Codec.DecodeBlob(bytes, BlobKind.Manifest), id);
        }), context, counter, skipDamaged: true).ConfigureAwait(false);
        await CopyPhaseAsync(src, dst, refs, present, (o, bytes) =>
        {
            string rest = o.Key[RepositoryLayout.RefsPrefix.Length..];
            int slash = rest.LastIndexOf('/');
            string manifestId = slash > 0 ? rest[(slash + 1)..] : "";
            if (bytes.Length != 0 || !Hex.IsSha256Hex(manifestId))
            {
                return $"'{o.Key}' is not a ref (refs are empty objects named refs/<name>/<manifest id>)";
            }
            return present.ContainsKey(RepositoryLayout.ManifestKey(manifestId)) ? null
                : $"ref '{o.Key}' points at backup {manifestId}, which is damaged or in neither the source listing nor the destination";
        }, context, counter, skipDamaged: true).ConfigureAwait(false);
        return config.Id;
    }

    private static IndexObject ParseIndex(Repository repo, string key, byte[] stored)
    {
        IndexObject? idx;
        try
        {
            idx = RepositoryJson.Deserialize<IndexObject>(repo.Codec.DecodeBlob(stored, BlobKind.Index));
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidDataException)
        {
            throw new RepositoryIntegrityException("IndexCorrupt", $"The index object {key} does not decode or parse: {e.Message}", key, inner: e);
        }
        string? problem = RepositoryIndex.Validate(idx);
        return problem is null ? idx! : throw new RepositoryIntegrityException("IndexCorrupt", $"The index object {key} is invalid: {problem}", key);
    }

    private static string? KeyName(StoredObject o) => Suffix(o.Key, RepositoryLayout.KeysPrefix);

    private static string? PackName(StoredObject o) => RepositoryLayout.PackIdOf(o.Key);

    private static string? Suffix(string key, string prefix)
    {
        string rest = key[prefix.Length..];
        return Hex.IsSha256Hex(rest) ? rest : null;
    }

    /// <summary>A verifier for a content-addressed object: <paramref name="expectedSha"/> names
    /// the SHA-256 its bytes must have (null: not an object of the format, ignored), then the
    /// optional <paramref name="parse"/> decodes and validates it (throws on damage).</summary>
    private static Func<StoredObject, byte[], string?> Verifier(Func<StoredObject, string?> expectedSha, Action<string, byte[]>? parse = null) =>
        (o, bytes) =>
        {
            string? sha = expectedSha(o);
            if (sha is null)
            {
                return null; // filtered out before download; see CopyPhaseAsync
            }
            if (Hex.Encode(SHA256.HashData(bytes)) != sha)
            {
                return $"'{o.Key}' fails its SHA-256 (the stored bytes changed after they were written)";
            }
            if (parse is not null)
            {
                try
                {
                    parse(o.Key, bytes);
                }
                catch (Exception e) when (e is PSBackupException or InvalidDataException)
                {
                    return $"'{o.Key}' does not decode or validate: {e.Message.TrimEnd('.')}";
                }
            }
            return null;
        };

    /// <summary>The error both front ends report after a sync that skipped damaged backups.</summary>
    public static IntegrityException DamagedError(SyncResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        return new IntegrityException("SyncSkippedDamaged",
            $"{result.DamagedSkipped.Count} damaged source object(s) were not copied (first: {result.DamagedSkipped[0]}); everything else was. The destination has no copy of those backups: run Test-BackupRepository on the source, and remove them with Remove-ExpiredBackup.",
            result.Source);
    }

    private static async Task<List<StoredObject>> ListAsync(IStorageBackend b, string prefix, CancellationToken ct)
    {
        var list = new List<StoredObject>();
        await foreach (StoredObject o in b.ListAsync(prefix, ct).ConfigureAwait(false))
        {
            list.Add(o);
        }
        return list;
    }

    private static void Count(Counter c, ref int n, ref long bytes, long size)
    {
        Interlocked.Increment(ref n);
        Interlocked.Add(ref bytes, size);
        Interlocked.Add(ref c.Done, size);
    }

    /// <summary>Copies the objects of one phase that the destination lacks (or holds with another
    /// size: a damaged copy, replaced by the verified source bytes), <see cref="Parallelism"/> at a
    /// time. Each is downloaded, verified, then stored. Any verification failure stops the sync
    /// after the phase, before a later phase could reference the object.</summary>
    private static async Task CopyPhaseAsync(IStorageBackend src, IStorageBackend dst, List<StoredObject> objects,
        Dictionary<string, long> present, Func<StoredObject, byte[], string?> verify, OperationContext context, Counter counter, bool skipDamaged = false)
    {
        CancellationToken ct = context.CancellationToken;
        var todo = new List<StoredObject>();
        foreach (StoredObject o in objects)
        {
            bool ours = o.Key.StartsWith(RepositoryLayout.RefsPrefix, StringComparison.Ordinal) ? IsRefKey(o.Key)
                : o.Key.StartsWith(RepositoryLayout.PacksPrefix, StringComparison.Ordinal) ? PackName(o) is not null
                : o.Key.StartsWith(RepositoryLayout.KeysPrefix, StringComparison.Ordinal) ? KeyName(o) is not null
                : Suffix(o.Key, o.Key[..(o.Key.IndexOf('/') + 1)]) is not null;
            if (!ours)
            {
                Interlocked.Increment(ref counter.Ignored);
                Interlocked.Add(ref counter.Done, o.Size);
                continue;
            }
            if (present.TryGetValue(o.Key, out long size) && size == o.Size)
            {
                Count(counter, ref counter.Skipped, ref counter.SkippedBytes, o.Size);
                continue;
            }
            if (!context.ShouldProcess($"{dst.Location}/{o.Key}", "Copy repository object"))
            {
                Count(counter, ref counter.Declined, ref counter.DeclinedBytes, o.Size);
                continue;
            }
            todo.Add(o);
        }
        var failures = new List<string>();
        await Parallel.ForEachAsync(todo, new ParallelOptions { MaxDegreeOfParallelism = Parallelism, CancellationToken = ct }, async (o, c) =>
        {
            Stream held;
            try
            {
                held = await DownloadAsync(src, o, c).ConfigureAwait(false);
            }
            catch (StorageIOException e) when (e.ErrorCode == StorageIOException.NotARegularFile)
            {
                lock (failures)
                {
                    failures.Add($"'{o.Key}' is not a regular file (a FIFO, device or socket was put in its place)");
                }
                return;
            }
            await using Stream disposeHeld = held;
            byte[] bytes = held is MemoryStream ms ? ms.ToArray() : [];
            string? problem = held is MemoryStream ? verify(o, bytes) : await VerifyLargeAsync(o, held, verify, c).ConfigureAwait(false);
            if (problem is not null)
            {
                lock (failures)
                {
                    failures.Add(problem);
                }
                return;
            }
            held.Position = 0;
            await dst.PutAsync(o.Key, held, held.Length, c).ConfigureAwait(false);
            lock (present)
            {
                present[o.Key] = o.Size;
            }
            Count(counter, ref counter.Copied, ref counter.CopiedBytes, o.Size);
            context.ReportBytes(Activity, $"Copied {counter.Copied} objects", Interlocked.Read(ref counter.Done), counter.Total, o.Key);
        }).ConfigureAwait(false);
        if (failures.Count > 0 && skipDamaged)
        {
            lock (counter.Damaged)
            {
                counter.Damaged.AddRange(failures);
            }
        }
        else if (failures.Count > 0)
        {
            failures.Sort(StringComparer.Ordinal);
            throw new RepositoryIntegrityException("SyncSourceCorrupt",
                $"{failures.Count} source object(s) failed verification and were not copied; the sync stopped before anything that references them. First: {failures[0]}. Run Test-BackupRepository -ReadData on the source.",
                failures[0]);
        }
    }

    private static bool IsRefKey(string key)
    {
        string rest = key[RepositoryLayout.RefsPrefix.Length..];
        int slash = rest.LastIndexOf('/');
        if (slash <= 0 || !Hex.IsSha256Hex(rest[(slash + 1)..]))
        {
            return false;
        }
        try
        {
            Repository.ValidateRefName(rest[..slash]);
            return true;
        }
        catch (InvalidInputException)
        {
            return false;
        }
    }

    /// <summary>The whole object, in memory when small, else in a temp file deleted on close.</summary>
    private static async Task<Stream> DownloadAsync(IStorageBackend src, StoredObject o, CancellationToken ct)
    {
        Stream holder = o.Size <= MemoryLimit
            ? new MemoryStream((int)Math.Max(0, o.Size))
            : new FileStream(Path.Combine(Path.GetTempPath(), $"psbackup-sync-{Guid.NewGuid():N}.tmp"), FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.DeleteOnClose | FileOptions.Asynchronous);
        try
        {
            await using (Stream s = await src.GetAsync(o.Key, ct).ConfigureAwait(false))
            {
                await s.CopyToAsync(holder, 1 << 20, ct).ConfigureAwait(false);
            }
            holder.Position = 0;
            return holder;
        }
        catch
        {
            await holder.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>A pack too big for memory: only its SHA-256 is checked (it streams from the temp file).</summary>
    private static async Task<string?> VerifyLargeAsync(StoredObject o, Stream held, Func<StoredObject, byte[], string?> verify, CancellationToken ct)
    {
        string? sha = PackName(o);
        if (sha is null)
        {
            // Only packs grow this large; verify anything else in memory.
            held.Position = 0;
            using var ms = new MemoryStream();
            await held.CopyToAsync(ms, ct).ConfigureAwait(false);
            return verify(o, ms.ToArray());
        }
        held.Position = 0;
        byte[] hash = await SHA256.HashDataAsync(held, ct).ConfigureAwait(false);
        return Hex.Encode(hash) == sha ? null : $"'{o.Key}' fails its SHA-256 (the stored bytes changed after they were written)";
    }

    // ------------------------------------------------------------------ folder mode

    /// <summary>A plain backup root: every regular file (no links, no .new/.old/.tmp artifacts,
    /// no backend temp files) missing at the destination or different there is copied, verified by
    /// reading the stored object back. Local manifests (<c>*.manifest.json</c>) go last, after the
    /// data they describe, so the destination never shows a manifest before its backup.</summary>
    private static async Task SyncFolderAsync(string root, IStorageBackend dst, OperationContext context, Counter counter)
    {
        CancellationToken ct = context.CancellationToken;
        string full = SafePath.RequireDirectory(root, "sync source", "Give a repository or a local backup folder.");
        var files = new List<(string Path, string Key, long Size)>();
        foreach (string file in BackupCatalog.EnumerateFiles(full))
        {
            string key = ObjectLayout.Relative(full, file);
            string name = Path.GetFileName(file);
            bool valid;
            try
            {
                valid = StorageKey.Validate(key) == key && !name.StartsWith(".psb-", StringComparison.Ordinal);
            }
            catch (InvalidInputException)
            {
                valid = false;
            }
            if (!valid)
            {
                counter.Ignored++;
                continue;
            }
            files.Add((file, key, new FileInfo(file).Length));
        }
        // Count artifacts the walk skipped, so the result says they were seen and not shipped.
        counter.Ignored += CountArtifacts(full);
        var present = new Dictionary<string, long>(StringComparer.Ordinal);
        await foreach (StoredObject o in dst.ListAsync("", ct).ConfigureAwait(false))
        {
            present[o.Key] = o.Size;
        }
        counter.Total = files.Sum(f => f.Size);
        static bool IsManifest((string Path, string Key, long Size) f) => f.Key.EndsWith(ObjectLayout.ManifestSuffix, StringComparison.Ordinal);
        foreach (var group in new[] { files.Where(f => !IsManifest(f)).ToList(), files.Where(IsManifest).ToList() })
        {
            await Parallel.ForEachAsync(group, new ParallelOptions { MaxDegreeOfParallelism = Parallelism, CancellationToken = ct }, async (f, c) =>
            {
                string sourceSha = await HashFileAsync(f.Path, c).ConfigureAwait(false);
                if (present.TryGetValue(f.Key, out long size) && size == f.Size
                    && await HashObjectAsync(dst, f.Key, c).ConfigureAwait(false) == sourceSha)
                {
                    Count(counter, ref counter.Skipped, ref counter.SkippedBytes, f.Size);
                    return;
                }
                if (!context.ShouldProcess($"{dst.Location}/{f.Key}", "Copy backup file"))
                {
                    Count(counter, ref counter.Declined, ref counter.DeclinedBytes, f.Size);
                    return;
                }
                await using (var fs = new FileStream(f.Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan))
                {
                    await dst.PutAsync(f.Key, fs, fs.Length, c).ConfigureAwait(false);
                }
                string? stored = await HashObjectAsync(dst, f.Key, c).ConfigureAwait(false);
                if (stored != sourceSha)
                {
                    await dst.DeleteAsync(f.Key, c).ConfigureAwait(false);
                    throw new IntegrityException("SyncVerifyFailed",
                        $"'{f.Key}' at {dst.Location} does not match the source after the copy (the source changed during the copy, or the destination stored other bytes); it was removed. Run the sync again.", f.Key);
                }
                Count(counter, ref counter.Copied, ref counter.CopiedBytes, f.Size);
                context.ReportBytes(Activity, $"Copied {counter.Copied} files", Interlocked.Read(ref counter.Done), counter.Total, f.Key);
            }).ConfigureAwait(false);
        }
    }

    private static int CountArtifacts(string root)
    {
        int n = 0;
        var pending = new Stack<string>();
        pending.Push(root);
        while (pending.Count > 0)
        {
            foreach (FileSystemInfo e in new DirectoryInfo(pending.Pop()).EnumerateFileSystemInfos())
            {
                if (ObjectLayout.IsTransientArtifact(e.Name))
                {
                    n++;
                }
                else if (e is DirectoryInfo && !ObjectLayout.IsLink(e))
                {
                    pending.Push(e.FullName);
                }
            }
        }
        return n;
    }

    private static async Task<string> HashFileAsync(string path, CancellationToken ct)
    {
        await using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
        return Hex.Encode(await SHA256.HashDataAsync(fs, ct).ConfigureAwait(false));
    }

    private static async Task<string?> HashObjectAsync(IStorageBackend b, string key, CancellationToken ct)
    {
        try
        {
            await using Stream s = await b.GetAsync(key, ct).ConfigureAwait(false);
            return Hex.Encode(await SHA256.HashDataAsync(s, ct).ConfigureAwait(false));
        }
        catch (StorageNotFoundException)
        {
            return null;
        }
    }
}
