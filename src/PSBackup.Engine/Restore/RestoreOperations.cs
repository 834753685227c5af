using System.Globalization;
using System.Security.Cryptography;
using PSBackup.Engine.Events;
using PSBackup.Engine.Wal;

namespace PSBackup.Engine.Restore;

/// <summary>Engine operations behind Restore-StoreSnapshot and Restore-PointInTime. Each has an
/// overload taking the <see cref="IRestoreSource"/> to read from; the plain one reads the
/// namespace's local backup root.</summary>
/// <remarks>Both build the result in a temp sibling (<c>*.restore-&lt;ts&gt;-&lt;rand&gt;.tmp</c>, which
/// the startup sweep removes if a crash leaves one), verify every byte against the manifest or
/// segment structure, fsync the tree and swap it in with renames. What they replace is moved
/// aside as <c>*.replaced-&lt;ts&gt;</c> (as Restore-ObjectBackup does), never deleted. On failure or
/// cancellation the temp is removed and nothing changes under the final name.</remarks>
public static class RestoreOperations
{
    public const string SnapshotActivity = "Restore-StoreSnapshot";
    public const string PointInTimeActivity = "Restore-PointInTime";
    private const string TimestampFormat = "yyyyMMddTHHmmss";

    /// <summary>From the namespace's local backup root, or from <see cref="RestoreStoreSnapshotOptions.Repository"/> when set.</summary>
    public static Task<StoreSnapshotRestoreResult?> RestoreSnapshotAsync(RestoreStoreSnapshotOptions options, OperationContext context) =>
        OperationRecorder.RunAsync(new OperationScope { Operation = SnapshotActivity, Category = OperationKinds.SnapshotRestore, Namespace = options?.Namespace, Target = options?.TargetDataDir ?? options?.DataDir, DataDir = options?.DataDir, Repository = options?.Repository },
            context, c => RestoreSnapshotCoreAsync(options!, c), r => r is null ? null : new OperationOutcome(r.Bytes));

    private static async Task<StoreSnapshotRestoreResult?> RestoreSnapshotCoreAsync(RestoreStoreSnapshotOptions options, OperationContext context)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(context);
        if (options.Repository is null)
        {
            return await RestoreSnapshotAsync(options, LocalRestoreSource.Open(options.DataDir, options.Namespace), context).ConfigureAwait(false);
        }
        if (options.Snapshot is not null && !Repository.Hex.IsSha256Hex(options.Snapshot))
        {
            throw new InvalidInputException("InvalidBackupId", $"'{SafePath.Printable(options.Snapshot!)}' is not a backup id (64 lowercase hex digits). Get ids from Get-Backup -Kind StoreSnapshot, or leave -BackupId out for the newest snapshot.", options.Snapshot);
        }
        using RepositoryRestoreSource source = await RepositoryRestoreSource.OpenAsync(options.Repository, options.Namespace, context.CancellationToken).ConfigureAwait(false);
        StoreSnapshotRestoreResult? result = await RestoreSnapshotAsync(options, source, context).ConfigureAwait(false);
        return result is null ? null : result with { Repository = options.Repository.Location, BackupId = result.Snapshot };
    }

    /// <summary>Verifies the snapshot against its manifest, then copies it (checked again) into a
    /// temp sibling of <c>db/</c> and swaps it in. Null when ShouldProcess declined.</summary>
    public static async Task<StoreSnapshotRestoreResult?> RestoreSnapshotAsync(RestoreStoreSnapshotOptions options, IRestoreSource source, OperationContext context)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(context);
        CancellationToken ct = context.CancellationToken;
        long started = context.Clock.GetTimestamp();

        string ns = SafePath.ValidateName(options.Namespace, "namespace");
        RequireSameNamespace(ns, source);
        string? wanted = options.Snapshot is null ? null : SafePath.ValidateUserPath(options.Snapshot, "snapshot path");
        string targetDataDir = ResolveTargetDataDir(options.TargetDataDir ?? options.DataDir);
        string nsDir = Path.Combine(targetDataDir, ns);

        IReadOnlyList<RestorableSnapshot> snapshots = await source.ListSnapshotsAsync(ct).ConfigureAwait(false);
        RestorableSnapshot snapshot = PickSnapshot(ns, source, snapshots, wanted);
        RequireLayout(snapshot);
        string entry = Snapshots.StoreEngines.RestoredEntry(snapshot.Store);
        string dbDir = Path.Combine(nsDir, entry);
        SafePath.RejectLinksBelow(targetDataDir, dbDir, "restore target");
        string? needsForce = RequireRestorable(dbDir, options.Force, "store", entry, context.WhatIf);

        // A UnisonDB store without the WAL at its checkpoint cannot start: planned before anything is read.
        (PointInTimePlan? walPlan, string? walWarning) = await PlanCheckpointWalAsync(ns, source, snapshot, nsDir, ct).ConfigureAwait(false);

        // Every byte first: a damaged snapshot is refused before anything is touched.
        await VerifySnapshotAsync(source, snapshot, context, SnapshotActivity).ConfigureAwait(false);

        string withWal = walPlan is null ? "" : $", and the archived WAL from its checkpoint {snapshot.Wal.Checkpoint} ({walPlan.Segments.Count} segment(s){(walPlan.EmptyActiveSegmentId is long emptyId ? $" and an empty active segment {emptyId}" : "")}) into '{Path.Combine(nsDir, "wal")}'";
        if (!context.ShouldProcess(dbDir, $"Restore store snapshot '{snapshot.Id}' ({snapshot.Files.Count} files, {snapshot.Bytes} bytes){withWal}{needsForce}"))
        {
            return null;
        }

        string stamp = context.UtcNow.UtcDateTime.ToString(TimestampFormat, CultureInfo.InvariantCulture);
        string temp = Path.Combine(nsDir, $"{entry}.restore-{stamp}-{RandomSuffix()}.tmp");
        string walTemp = Path.Combine(nsDir, $"wal.restore-{stamp}-{RandomSuffix()}.tmp");
        string walDir = Path.Combine(nsDir, "wal");
        bool walPlaced = false;
        string? replaced;
        try
        {
            CreateDirectoryDurably(nsDir);
            if (walPlan is not null)
            {
                // The WAL first, in a temp sibling renamed into place: the store never lands without it.
                Directory.CreateDirectory(walTemp);
                await FetchSegmentsAsync(source, walPlan, walTemp, context, 1, new ProgressCounter(context, SnapshotActivity, walPlan.SegmentBytes)).ConfigureAwait(false);
                AddEmptyActiveSegment(walPlan, walTemp, context);
                Durable.FsyncTree(walTemp);
                ct.ThrowIfCancellationRequested();
                FolderSwap.Replace(walTemp, walDir, stamp, "WAL folder", deleteEmptyLive: true);
                walPlaced = true;
            }
            Directory.CreateDirectory(temp);
            // bbolt: the one file unison.db; LMDB: the folder unison.db holding data.mdb (never a
            // lock.mdb: LMDB creates a fresh one); otherwise the files of db/.
            await CopySnapshotAsync(source, snapshot, temp, context, SnapshotActivity, maxParallelism: 1).ConfigureAwait(false);
            Durable.FsyncTree(temp);
            ct.ThrowIfCancellationRequested();
            RequireRestorable(dbDir, options.Force, "store", entry); // it may have filled meanwhile
            if (snapshot.Store == Snapshots.StoreEngines.Bolt)
            {
                replaced = FolderSwap.Replace(Path.Combine(temp, Snapshots.UnisonStore.StoreName), dbDir, stamp, "store", deleteEmptyLive: true);
                Durable.TryDelete(temp);
            }
            else
            {
                replaced = FolderSwap.Replace(temp, dbDir, stamp, "store", deleteEmptyLive: true);
            }
        }
        catch (Exception e)
        {
            Durable.TryDelete(temp);
            Durable.TryDelete(walTemp);
            if (walPlaced)
            {
                Durable.TryDelete(walDir); // it was laid out by this restore, into a target that had none
            }
            Exception wrapped = Wrap(e, $"Restoring snapshot '{snapshot.Id}' into '{dbDir}'");
            if (ReferenceEquals(wrapped, e))
            {
                throw;
            }
            throw wrapped;
        }
        context.ReportBytes(SnapshotActivity, "Restore complete", snapshot.Bytes, snapshot.Bytes, dbDir);
        return new StoreSnapshotRestoreResult
        {
            Namespace = ns,
            Snapshot = snapshot.Id,
            SnapshotPath = snapshot.Location,
            RestoredPath = dbDir,
            ReplacedPath = replaced,
            FileCount = snapshot.Files.Count,
            Bytes = snapshot.Bytes,
            WalPosition = snapshot.Wal,
            WalPath = walPlan is null ? null : walDir,
            WalSegments = walPlan is null ? 0 : walPlan.Segments.Count + (walPlan.EmptyActiveSegmentId is null ? 0 : 1),
            Warning = walWarning,
            Duration = Durations.Seconds(context.Clock.GetElapsedTime(started)),
        };
    }

    /// <summary>UnisonDB starts a store by reading the WAL record at its checkpoint and replaying
    /// what follows (<c>dbkernel/internal/recovery/wal_recovery.go:56-93</c>): <c>unison.db</c> alone,
    /// in a namespace folder without <c>wal/</c>, fails its start-up ("segment not found"). For such a
    /// target the archived WAL is laid out as a restore to the snapshot's own checkpoint lays it out
    /// (the checkpoint's segment, cut right after the checkpoint record, or whole and followed by an
    /// empty active segment when the record ends it), so the database resumes exactly at the
    /// snapshot's state. No plan when nothing is needed (another engine, no checkpoint, or a target
    /// that has its WAL: an in-place restore keeps the live one); when the source does not hold that
    /// segment, no plan and the warning to give (the store is still restored: it is what was asked
    /// for, and can be put beside a WAL that holds the checkpoint).</summary>
    private static async Task<(PointInTimePlan? Plan, string? Warning)> PlanCheckpointWalAsync(string ns, IRestoreSource source, RestorableSnapshot snapshot, string nsDir, CancellationToken ct)
    {
        if (snapshot.Store is not (Snapshots.StoreEngines.Bolt or Snapshots.StoreEngines.Lmdb) ||
            snapshot.Wal.Checkpoint is not { } checkpoint || snapshot.Wal.AppliedLogIndex is not long applied || applied < 1)
        {
            return (null, null);
        }
        string walDir = Path.Combine(nsDir, "wal");
        if (Directory.Exists(walDir) && Directory.EnumerateFileSystemEntries(walDir).Any())
        {
            return (null, null);
        }
        IReadOnlyList<ArchivedSegment> segments = await source.ListSegmentsAsync(ct).ConfigureAwait(false);
        try
        {
            PointInTimePlan plan = PointInTimePlanner.Plan(ns, RestoreTarget.AtLogIndex(applied), [snapshot], segments);
            if (plan.Segments.Count > 0 && plan.Segments[0].SegmentId == checkpoint.SegmentId && plan.LastLogIndex == applied)
            {
                return (plan, null);
            }
        }
        catch (PSBackupException e) when (e is WalGapException or TargetBeforeFirstSnapshotException || e.ErrorId == "CheckpointNotInSegment")
        {
            // the checkpoint's segment is missing from the source, or does not hold the checkpoint record
        }
        return (null, $"UnisonDB cannot start from this store alone: it reads its WAL at the checkpoint {checkpoint} first, '{nsDir}' has no wal/, and segment {checkpoint.SegmentId} holding that record is not archived in the {source.Description}. Put the store beside a WAL that holds segment {checkpoint.SegmentId}, ship that WAL (Invoke-WalShip) and restore again, or use Restore-PointInTime, which lays out a store and its WAL together.");
    }

    /// <summary>From the namespace's local backup root, or from <see cref="RestorePointInTimeOptions.Repository"/> when set.</summary>
    public static async Task<PointInTimePlan> PlanPointInTimeAsync(RestorePointInTimeOptions options, OperationContext context)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(context);
        if (options.Repository is null)
        {
            return await PlanPointInTimeAsync(options, LocalRestoreSource.Open(options.DataDir, options.Namespace), context).ConfigureAwait(false);
        }
        RestoreTarget.From(options.TargetTime, options.TargetLogIndex); // before any I/O
        using RepositoryRestoreSource source = await RepositoryRestoreSource.OpenAsync(options.Repository, options.Namespace, context.CancellationToken).ConfigureAwait(false);
        return await PlanPointInTimeAsync(options, source, context).ConfigureAwait(false);
    }

    /// <summary>The plan alone, from the source's listings; reads no data and writes nothing.</summary>
    public static async Task<PointInTimePlan> PlanPointInTimeAsync(RestorePointInTimeOptions options, IRestoreSource source, OperationContext context)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(context);
        string ns = SafePath.ValidateName(options.Namespace, "namespace");
        RequireSameNamespace(ns, source);
        RestoreTarget target = RestoreTarget.From(options.TargetTime, options.TargetLogIndex);
        CancellationToken ct = context.CancellationToken;
        context.Report(PointInTimeActivity, "Listing snapshots and WAL segments", 0, 0);
        Task<IReadOnlyList<RestorableSnapshot>> snapshots = source.ListSnapshotsAsync(ct);
        Task<IReadOnlyList<ArchivedSegment>> segments = source.ListSegmentsAsync(ct);
        await Task.WhenAll(snapshots, segments).ConfigureAwait(false);
        PointInTimePlan plan = PointInTimePlanner.Plan(ns, target, snapshots.Result, segments.Result);
        if (plan.TimeCutSegmentId is long straddling)
        {
            // The records of the segment straddling the target decide the exact cut: read it once.
            ArchivedSegment segment = plan.Segments.First(p => p.SegmentId == straddling).Source;
            TimeCut cut = await ResolveTimeCutAsync(source, segment, target.Time!.Value, context).ConfigureAwait(false);
            plan = PointInTimePlanner.Plan(ns, target, snapshots.Result, segments.Result, cut);
        }
        IReadOnlyList<string> ignored = source switch
        {
            LocalRestoreSource local => local.Ignored,
            RepositoryRestoreSource repository => repository.Ignored,
            _ => [],
        };
        if (ignored.Count > 0)
        {
            plan = plan with { Notes = [.. plan.Notes, .. ignored.Select(i => "Ignored " + i + ".")] };
        }
        return plan;
    }

    /// <summary>Reads the records of <paramref name="segment"/> (a copy in a temp file) up to the
    /// first whose own time is after <paramref name="t"/>.</summary>
    private static async Task<TimeCut> ResolveTimeCutAsync(IRestoreSource source, ArchivedSegment segment, DateTimeOffset t, OperationContext context)
    {
        CancellationToken ct = context.CancellationToken;
        context.Report(PointInTimeActivity, $"Reading segment {segment.SegmentId} for the record at {t:O}", 0, 0);
        string temp = Path.Combine(Path.GetTempPath(), $"psbackup-timecut-{RandomSuffix()}.tmp");
        try
        {
            await using (Stream input = await source.OpenSegmentAsync(segment, ct).ConfigureAwait(false))
            await using (var output = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.Asynchronous))
            {
                await input.CopyToAsync(output, FileCopy.BufferSize, ct).ConfigureAwait(false);
            }
            WalRecord? last = null, next = null;
            foreach (WalRecord r in WalSegmentReader.ReadRecords(temp))
            {
                if (r.Time is not { } time)
                {
                    throw new IntegrityException("WalSegmentCorrupt",
                        $"Archived segment {segment.SegmentId} ('{segment.Location}') was listed with record times, but its record at offset {r.Offset} carries none. Nothing was restored.",
                        segment.Location);
                }
                if (time > t)
                {
                    next = r;
                    break;
                }
                last = r;
            }
            return new TimeCut(segment.SegmentId, last?.LogIndex, last?.Time, next?.LogIndex, next?.Time);
        }
        finally
        {
            Durable.TryDelete(temp);
        }
    }

    /// <summary>From the namespace's local backup root, or from <see cref="RestorePointInTimeOptions.Repository"/> when set.</summary>
    public static Task<PointInTimeRestoreResult> RestorePointInTimeAsync(RestorePointInTimeOptions options, OperationContext context) =>
        OperationRecorder.RunAsync(new OperationScope { Operation = PointInTimeActivity, Category = OperationKinds.PointInTimeRestore, Namespace = options?.Namespace, Target = options?.TargetDataDir ?? options?.DataDir, DataDir = options?.DataDir, Repository = options?.Repository },
            context, c => RestorePointInTimeCoreAsync(options!, c), r => r.Restored ? new OperationOutcome(r.Bytes) : null);

    private static async Task<PointInTimeRestoreResult> RestorePointInTimeCoreAsync(RestorePointInTimeOptions options, OperationContext context)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(context);
        RestoreTarget.From(options.TargetTime, options.TargetLogIndex); // exactly one target, before any I/O
        if (options.Repository is null)
        {
            return await RestorePointInTimeAsync(options, LocalRestoreSource.Open(options.DataDir, options.Namespace), context).ConfigureAwait(false);
        }
        using RepositoryRestoreSource source = await RepositoryRestoreSource.OpenAsync(options.Repository, options.Namespace, context.CancellationToken).ConfigureAwait(false);
        PointInTimeRestoreResult result = await RestorePointInTimeAsync(options, source, context).ConfigureAwait(false);
        return result with { Repository = options.Repository.Location };
    }

    /// <summary>Plans, then lays out <c>&lt;target&gt;/&lt;ns&gt;/db</c> (the snapshot) and <c>wal/</c>
    /// (the planned segments, the boundary one cut) in a temp sibling, fetching and verifying files
    /// in parallel, and renames it into place. When ShouldProcess declines (-WhatIf) the result
    /// carries the plan with <see cref="PointInTimeRestoreResult.Restored"/> false and nothing is written.</summary>
    public static async Task<PointInTimeRestoreResult> RestorePointInTimeAsync(RestorePointInTimeOptions options, IRestoreSource source, OperationContext context)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(context);
        CancellationToken ct = context.CancellationToken;
        long started = context.Clock.GetTimestamp();
        if (options.MaxParallelism < 1)
        {
            throw new InvalidInputException("InvalidParallelism", $"MaxParallelism {options.MaxParallelism} must be 1 or more.", null);
        }
        string ns = SafePath.ValidateName(options.Namespace, "namespace");
        string targetDataDir = ResolveTargetDataDir(options.TargetDataDir ?? options.DataDir);
        string nsDir = Path.Combine(targetDataDir, ns);
        SafePath.RejectLinksBelow(targetDataDir, nsDir, "restore target");
        PointInTimePlan plan = await PlanPointInTimeAsync(options, source, context).ConfigureAwait(false);
        RequireLayout(plan.Snapshot);
        string? needsForce = RequireRestorable(nsDir, options.Force, "namespace folder", ns, context.WhatIf);
        if (needsForce is not null)
        {
            plan = plan with { Notes = [.. plan.Notes, $"The namespace folder '{nsDir}' is not empty: the restore needs -Force (it keeps the current folder aside as '{ns}.replaced-<timestamp>')."] };
        }

        string action = $"Restore to {plan.Target}: snapshot '{plan.Snapshot.Id}' + {plan.Segments.Count} WAL segment(s), up to log index {plan.LastLogIndex}{(plan.TargetPastArchive ? " (the latest archived)" : "")}{needsForce}";
        if (!context.ShouldProcess(nsDir, action))
        {
            return new PointInTimeRestoreResult
            {
                Namespace = ns,
                Plan = plan,
                Restored = false,
                RestoredPath = nsDir,
                Bytes = 0,
                Duration = Durations.Seconds(context.Clock.GetElapsedTime(started)),
            };
        }

        string stamp = context.UtcNow.UtcDateTime.ToString(TimestampFormat, CultureInfo.InvariantCulture);
        string temp = Path.Combine(targetDataDir, $"{ns}.restore-{stamp}-{RandomSuffix()}.tmp");
        string? replaced;
        try
        {
            string placement = Snapshots.StoreEngines.PlacementFolder(plan.Snapshot.Store, temp);
            if (!plan.Snapshot.EmptyStore)
            {
                Directory.CreateDirectory(placement); // the empty-store base lays out wal/ alone
            }
            Directory.CreateDirectory(Path.Combine(temp, "wal"));
            var progress = new ProgressCounter(context, PointInTimeActivity, plan.Bytes);
            Task snapshotCopy = CopySnapshotAsync(source, plan.Snapshot, placement, context, PointInTimeActivity, options.MaxParallelism, progress);
            Task walCopy = FetchSegmentsAsync(source, plan, Path.Combine(temp, "wal"), context, options.MaxParallelism, progress);
            await Task.WhenAll(snapshotCopy, walCopy).ConfigureAwait(false);
            AddEmptyActiveSegment(plan, Path.Combine(temp, "wal"), context);
            // The folders the restore made belong to whoever owns the files in them, so a database
            // that runs as its own user can add segments and store files (before: root, 0755).
            FileMetadata? walFiles = plan.Segments.Select(p => p.Source.Metadata).FirstOrDefault(m => m is not null);
            FileMetadata? storeFiles = plan.Snapshot.Files.Select(f => f.Metadata).FirstOrDefault(m => m is not null);
            FolderFor(walFiles)?.TryApply(Path.Combine(temp, "wal"));
            if (!string.Equals(Path.GetFullPath(placement), Path.GetFullPath(temp), StringComparison.Ordinal))
            {
                FolderFor(storeFiles)?.TryApply(placement);
            }
            FolderFor(walFiles ?? storeFiles)?.TryApply(temp);
            Durable.FsyncTree(temp);
            ct.ThrowIfCancellationRequested();
            RequireRestorable(nsDir, options.Force, "namespace folder", ns);
            replaced = FolderSwap.Replace(temp, nsDir, stamp, "namespace folder", deleteEmptyLive: true);
        }
        catch (Exception e)
        {
            Durable.TryDelete(temp);
            Exception wrapped = Wrap(e, $"Restoring namespace '{ns}' to {plan.Target} into '{nsDir}'");
            if (ReferenceEquals(wrapped, e))
            {
                throw;
            }
            throw wrapped;
        }
        context.ReportBytes(PointInTimeActivity, "Restore complete", plan.Bytes, plan.Bytes, nsDir);
        return new PointInTimeRestoreResult
        {
            Namespace = ns,
            Plan = plan,
            Restored = true,
            RestoredPath = nsDir,
            ReplacedPath = replaced,
            Bytes = plan.Bytes,
            Duration = Durations.Seconds(context.Clock.GetElapsedTime(started)),
        };
    }

    private static void RequireSameNamespace(string ns, IRestoreSource source)
    {
        if (!string.Equals(ns, source.Namespace, StringComparison.Ordinal))
        {
            throw new InvalidInputException("NamespaceMismatch",
                $"The restore source holds namespace '{source.Namespace}', not '{ns}'. One namespace never restores from another's backups.", ns);
        }
    }

    private static string ResolveTargetDataDir(string? path)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            throw new InvalidInputException("InvalidPath", "The target data directory is empty. Give the data directory to restore into.", path);
        }
        string full = Path.GetFullPath(path);
        if (File.Exists(full))
        {
            throw new ConflictException("PathBlocked", $"The target data directory '{full}' is a file. Give a folder.", full);
        }
        return full;
    }

    /// <summary>A missing or empty folder is free; a non-empty one needs Force; a file never.
    /// Under -WhatIf a folder that would need -Force is not an error: the preview says so (the
    /// returned text is appended to the ShouldProcess action); otherwise null.</summary>
    private static string? RequireRestorable(string path, bool force, string what, string name, bool whatIf = false)
    {
        if (File.Exists(path) && name == Snapshots.UnisonStore.StoreName)
        {
            if (!force)
            {
                if (whatIf)
                {
                    return $" (replaces the existing {what} '{path}': needs -Force)";
                }
                throw new ConflictException("RestoreTargetNotEmpty",
                    $"The {what} '{path}' exists. Stop the database and pass -Force to replace it; the current one will be kept aside as '{name}.replaced-<timestamp>'.", path);
            }
            return null;
        }
        if (File.Exists(path))
        {
            throw new ConflictException("RestoreTargetIsFile",
                $"'{path}' is a file where the {what} '{name}' goes. Move it away, then run again.", path);
        }
        if (!force && Directory.Exists(path) && Directory.EnumerateFileSystemEntries(path).Any())
        {
            if (whatIf)
            {
                return $" (replaces the non-empty {what} '{path}': needs -Force)";
            }
            throw new ConflictException("RestoreTargetNotEmpty",
                $"The {what} '{path}' is not empty. Stop the database and pass -Force to replace it; the current one will be kept aside as '{name}.replaced-<timestamp>'.",
                path);
        }
        return null;
    }

    /// <summary>A snapshot's engine and files must be a layout the engine starts from: bbolt one file
    /// "unison.db", LMDB one file "data.mdb" (a lock.mdb is never restored), "db" any files.
    /// Manifests are hostile input, so anything else is refused before a byte is written.</summary>
    private static void RequireLayout(RestorableSnapshot snapshot)
    {
        string? why = snapshot.Store switch
        {
            null or Snapshots.StoreEngines.DbFolder => null,
            Snapshots.StoreEngines.None => snapshot.EmptyStore && snapshot.Files.Count == 0 ? null : "only the planner's empty-store base has no store",
            Snapshots.StoreEngines.Bolt => snapshot.Files.Count == 1 && snapshot.Files[0].Path == Snapshots.UnisonStore.StoreName ? null : "a bbolt snapshot must hold exactly the file 'unison.db'",
            Snapshots.StoreEngines.Lmdb => snapshot.Files.Count == 1 && snapshot.Files[0].Path == "data.mdb" ? null : "an LMDB snapshot must hold exactly the file 'data.mdb'",
            var other => $"its store engine '{SafePath.Printable(other)}' is unknown",
        };
        if (why is not null)
        {
            throw new IntegrityException("SnapshotLayoutInvalid",
                $"Snapshot '{snapshot.Id}' cannot be laid out: {why} (it lists {string.Join(", ", snapshot.Files.Take(5).Select(f => "'" + SafePath.Printable(f.Path) + "'"))}). Nothing was restored; restore another snapshot.",
                snapshot.Location);
        }
    }

    private static RestorableSnapshot PickSnapshot(string ns, IRestoreSource source, IReadOnlyList<RestorableSnapshot> snapshots, string? wanted)
    {
        if (wanted is null)
        {
            return snapshots
                .OrderByDescending(s => s.CompletedAt ?? s.CreatedAt)
                .ThenByDescending(s => s.Id, StringComparer.Ordinal)
                .FirstOrDefault()
                ?? throw new NotFoundException("NoSnapshot",
                    $"Namespace '{ns}' has no complete store snapshot in the {source.Description} (a snapshot counts only with its manifest). Create one with New-StoreSnapshot, or check -DataDir and -Namespace.",
                    source.Description);
        }
        RestorableSnapshot? match = snapshots.FirstOrDefault(s => string.Equals(s.Id, wanted, StringComparison.Ordinal));
        if (match is null)
        {
            string known = snapshots.Count == 0 ? "there are none" : "present: " + string.Join(", ", snapshots.Select(s => s.Id).Order(StringComparer.Ordinal).Take(10));
            throw new NotFoundException("SnapshotNotFound",
                $"There is no complete snapshot '{SafePath.Printable(wanted)}' of namespace '{ns}' in the {source.Description} ({known}). Give -Snapshot as the path the snapshot was created with, or leave it out for the newest.",
                wanted);
        }
        return match;
    }

    private static async Task VerifySnapshotAsync(IRestoreSource source, RestorableSnapshot snapshot, OperationContext context, string activity)
    {
        CancellationToken ct = context.CancellationToken;
        long done = 0;
        foreach (ManifestFile file in snapshot.Files)
        {
            ct.ThrowIfCancellationRequested();
            ContentDigest digest;
            await using (Stream stream = await source.OpenSnapshotFileAsync(snapshot, file, ct).ConfigureAwait(false))
            {
                digest = await FileCopy.HashAsync(stream, ct).ConfigureAwait(false);
            }
            RequireMatch(snapshot, file, digest, "is damaged");
            done += file.Size;
            context.ReportBytes(activity, $"Verified {file.Path}", done, snapshot.Bytes, file.Path);
        }
    }

    private static void RequireMatch(RestorableSnapshot snapshot, ManifestFile file, ContentDigest digest, string verdict)
    {
        if (digest.Bytes != file.Size || !string.Equals(digest.Sha256, file.Sha256, StringComparison.Ordinal))
        {
            throw new IntegrityException("BackupFileCorrupt",
                $"Snapshot '{snapshot.Id}' file '{file.Path}' does not match its manifest (expected {file.Size} bytes, SHA-256 {file.Sha256[..12]}…; found {digest.Bytes} bytes, {digest.Sha256[..12]}…): the snapshot {verdict}. Nothing was restored; restore another snapshot.",
                snapshot.Location);
        }
    }

    /// <summary>Copies every file of the snapshot into <paramref name="dbDir"/>, each hashed as it
    /// is written and checked against the manifest (the source may change after verification).</summary>
    private static Task CopySnapshotAsync(IRestoreSource source, RestorableSnapshot snapshot, string dbDir, OperationContext context, string activity, int maxParallelism, ProgressCounter? progress = null)
    {
        progress ??= new ProgressCounter(context, activity, snapshot.Bytes);
        return Parallel.ForEachAsync(snapshot.Files, new ParallelOptions { MaxDegreeOfParallelism = maxParallelism, CancellationToken = context.CancellationToken }, async (file, ct) =>
        {
            string dest = SafePath.Combine(dbDir, file.Path, "snapshot file");
            Directory.CreateDirectory(Path.GetDirectoryName(dest)!);
            ContentDigest digest;
            await using (Stream input = await source.OpenSnapshotFileAsync(snapshot, file, ct).ConfigureAwait(false))
            await using (var output = new FileStream(dest, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.Asynchronous))
            {
                digest = await CopyAsync(source, input, output, file.Sha256, ct).ConfigureAwait(false);
                output.Flush(flushToDisk: true);
            }
            RequireMatch(snapshot, file, digest, "changed while it was restored");
            file.Metadata?.Apply(dest); // owner, mode, time of the store file (so its own user can open it)
            progress.Add(file.Size, $"Restored {file.Path}", file.Path);
        });
    }

    /// <summary>Fetches the planned segments in parallel (bounded); each copy is checked against
    /// the source's SHA-256 when it has one and always by structure: valid, sealed as listed, the
    /// listed first log index and record count. The boundary segment is then cut.</summary>
    private static Task FetchSegmentsAsync(IRestoreSource source, PointInTimePlan plan, string walDir, OperationContext context, int maxParallelism, ProgressCounter progress) =>
        Parallel.ForEachAsync(plan.Segments, new ParallelOptions { MaxDegreeOfParallelism = maxParallelism, CancellationToken = context.CancellationToken }, async (planned, ct) =>
        {
            ArchivedSegment s = planned.Source;
            string final = Path.Combine(walDir, s.LayoutFileName);
            string fetched = planned.Cut ? final + ".fetch" : final;
            ContentDigest digest;
            await using (Stream input = await source.OpenSegmentAsync(s, ct).ConfigureAwait(false))
            await using (var output = new FileStream(fetched, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.Asynchronous))
            {
                digest = await CopyAsync(source, input, output, s.Sha256, ct).ConfigureAwait(false);
                output.Flush(flushToDisk: true);
            }
            if (s.Sha256 is not null && (!string.Equals(digest.Sha256, s.Sha256, StringComparison.Ordinal) || digest.Bytes != s.Bytes))
            {
                throw new IntegrityException("WalSegmentCorrupt",
                    $"Archived segment {s.SegmentId} ('{s.Location}') reads as SHA-256 {digest.Sha256[..12]}… ({digest.Bytes} bytes), not {s.Sha256[..Math.Min(12, s.Sha256.Length)]}… ({s.Bytes} bytes) as recorded. Nothing was restored; the archive is damaged.",
                    s.Location);
            }
            ct.ThrowIfCancellationRequested();
            if (s.LayoutBytes is long layout && layout > digest.Bytes)
            {
                // A repository partial holds the valid prefix only: zero-fill it to the live segment's size.
                await using var grow = new FileStream(fetched, FileMode.Open, FileAccess.Write, FileShare.None, 1, FileOptions.None);
                grow.SetLength(layout);
                grow.Flush(flushToDisk: true);
            }
            WalSegmentInfo check = WalSegmentReader.Inspect(fetched, plan.Namespace, s.SegmentId);
            if (!check.Valid || check.Sealed != s.Sealed || check.FirstLogIndex != s.FirstLogIndex || check.EntryCount != s.EntryCount)
            {
                string why = !check.Valid ? $"{check.Error} (offset {check.ErrorOffset})"
                    : $"it holds {check.EntryCount} records from log index {check.FirstLogIndex} (sealed={check.Sealed}), not {s.EntryCount} from {s.FirstLogIndex} (sealed={s.Sealed}) as listed";
                throw new IntegrityException("WalSegmentCorrupt",
                    $"Archived segment {s.SegmentId} ('{s.Location}') failed verification: {why}. Nothing was restored; the archive is damaged or changed during the restore.",
                    s.Location);
            }
            if (planned.Cut)
            {
                WalCutter.Cut(fetched, final, planned.LastLogIndex, plan.Namespace, s.SegmentId);
                File.Delete(fetched);
            }
            // The live segment's owner and mode (its time only when whole: a cut segment is new).
            (planned.Cut ? s.Metadata?.WithoutTime() : s.Metadata)?.Apply(final);
            progress.Add(s.Bytes, $"Fetched segment {s.SegmentId}{(planned.Cut ? $", cut after log index {planned.LastLogIndex}" : "")}", final);
        });

    /// <summary>Lays out the plan's empty active segment after its last (sealed) one: same version,
    /// size, naming and mode marker, as walfs creates a segment when it rotates.</summary>
    private static void AddEmptyActiveSegment(PointInTimePlan plan, string walDir, OperationContext context)
    {
        if (plan.EmptyActiveSegmentId is not long id)
        {
            return;
        }
        PlannedSegment last = plan.Segments[^1];
        string lastPath = Path.Combine(walDir, last.Source.LayoutFileName);
        WalSegmentInfo info = WalSegmentReader.Inspect(lastPath, plan.Namespace, last.SegmentId, headerOnly: true);
        uint marker = info.Mode switch { "standalone" => WalFormat.MarkerStandalone, "raft" => WalFormat.MarkerRaft, _ => 0 };
        string extension = WalFormat.TryParseSegmentFileName(last.Source.LayoutFileName, out _, out string ext) ? ext : WalFormat.SegExtension;
        string path = Path.Combine(walDir, WalFormat.SegmentFileName(id, extension));
        WalSegmentInfo empty = WalCutter.CreateEmptyActive(path, info.Version, info.Bytes, marker, context.UtcNow, plan.Namespace, id);
        if (!empty.Valid || empty.Sealed || empty.EntryCount != 0)
        {
            throw new IntegrityException("WalCutVerifyFailed", $"The empty active segment {id} laid out after segment {last.SegmentId} does not read back as one ({empty.Error}). Check the disk, then run again.", path);
        }
        last.Source.Metadata?.WithoutTime().Apply(path); // the same owner and mode as the segments before it
    }

    /// <summary>Copies a source stream into a new file and returns what was copied. A source that
    /// verifies its own streams (<see cref="IRestoreSource.VerifiesContent"/>) already proved the
    /// bytes match <paramref name="listedSha256"/>, so only the size is taken; else they are hashed.</summary>
    private static async Task<ContentDigest> CopyAsync(IRestoreSource source, Stream input, FileStream output, string? listedSha256, CancellationToken ct)
    {
        if (!source.VerifiesContent || listedSha256 is null)
        {
            return await FileCopy.CopyAsync(input, output, ct).ConfigureAwait(false);
        }
        await input.CopyToAsync(output, FileCopy.BufferSize, ct).ConfigureAwait(false);
        return new ContentDigest(output.Length, listedSha256);
    }

    /// <summary>What a folder holding files of <paramref name="file"/>'s owner and mode gets: the same
    /// owner and group, the mode with search ('x') wherever the files are readable (0600 gives 0700,
    /// 0640 gives 0750). The folders themselves are not in the backup; their files are.</summary>
    private static FileMetadata? FolderFor(FileMetadata? file) =>
        file is null ? null : new FileMetadata(file.Mode is int m ? (m & 0x1FF) | ((m & 0x124) >> 2) : null, file.Uid, file.Gid, null);

    private static void CreateDirectoryDurably(string directory)
    {
        var created = new Stack<string>();
        for (string? d = directory; d is not null && !Directory.Exists(d); d = Path.GetDirectoryName(d))
        {
            created.Push(d);
        }
        Directory.CreateDirectory(directory);
        foreach (string d in created)
        {
            Durable.FsyncDirectory(Path.GetDirectoryName(d)!);
        }
    }

    private static string RandomSuffix() => Convert.ToHexString(RandomNumberGenerator.GetBytes(4)).ToLowerInvariant();

    private static Exception Wrap(Exception e, string what) => e switch
    {
        PSBackupException or OperationCanceledException => e,
        IOException or UnauthorizedAccessException => new OperationFailedException("RestoreFailed",
            $"{what} failed: {e.Message} Nothing was changed under the final name; fix the cause (disk space, permissions) and run again.", null, e),
        _ => e,
    };

    /// <summary>Progress from parallel copies, reported one at a time.</summary>
    private sealed class ProgressCounter(OperationContext context, string activity, long total)
    {
        private readonly object _lock = new();
        private long _done;

        public void Add(long bytes, string status, string item)
        {
            lock (_lock)
            {
                _done += bytes;
                context.ReportBytes(activity, status, _done, Math.Max(total, _done), item);
            }
        }
    }
}
