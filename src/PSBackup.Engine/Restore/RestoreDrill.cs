using System.Globalization;
using System.Security.Cryptography;
using PSBackup.Engine.Events;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Wal;

namespace PSBackup.Engine.Restore;

/// <summary>Test-Restore: the restore drill. Exactly one of <see cref="DataDir"/> (a local backup
/// root, <c>&lt;DataDir&gt;/backups/&lt;Namespace&gt;</c>) or <see cref="Repository"/>.</summary>
public sealed record TestRestoreOptions(string Namespace)
{
    public string? DataDir { get; init; }
    public RepositoryTarget? Repository { get; init; }
    /// <summary>The snapshot to start from: its id in the source (local: the path it was created
    /// with, relative to the backup root; repository: the manifest id). Null: the newest one the
    /// target allows.</summary>
    public string? Snapshot { get; init; }
    /// <summary>Restore what was durable at this time; with neither target, the latest: every
    /// archived segment after the snapshot (point-in-time restore to the end of the archive).</summary>
    public DateTimeOffset? TargetTime { get; init; }
    public long? TargetLogIndex { get; init; }
    /// <summary>The folder the drill's own scratch folder (<c>psbackup-drill-&lt;ns&gt;-&lt;ts&gt;-&lt;rand&gt;</c>)
    /// is created in; null: the system temp dir. Only the drill's own folder is ever deleted.</summary>
    public string? ScratchPath { get; init; }
    /// <summary>Keep the restored copy (its path is reported) instead of removing it.</summary>
    public bool Keep { get; init; }
    /// <summary>The user's check of the restored copy, given the restored namespace folder
    /// (<c>&lt;scratch&gt;/&lt;ns&gt;</c>, holding <c>db/</c> and <c>wal/</c>). Throwing fails the drill
    /// with the exception's message.</summary>
    public Func<string, CancellationToken, Task>? Validation { get; init; }
    public int MaxParallelism { get; init; } = 4;
    /// <summary>UnisonDB namespaces: UnisonDB's own recovery as the proof. The path of a
    /// <c>unisondb-walfs</c> oracle (built from UnisonDB's walfs and kvdrivers): its
    /// <c>store-recover</c> replays the restored WAL from the restored store's checkpoint on a copy,
    /// and the recovered checkpoint must be the plan's last record.</summary>
    public string? UnisonOracle { get; init; }
    /// <summary>With <see cref="UnisonOracle"/>: the namespace's content hash (store-info's SHA-256
    /// over its keys and values) the recovered copy must have.</summary>
    public string? ExpectedContentHash { get; init; }
}

/// <summary>What one drill found. A failed drill is a result (<see cref="Passed"/> false, the
/// reasons in <see cref="Errors"/>), not an exception.</summary>
public sealed record RestoreDrillResult
{
    public required bool Passed { get; init; }
    public required string Namespace { get; init; }
    /// <summary>The snapshot restored (its id in the source); null if the drill failed before choosing one.</summary>
    public string? Snapshot { get; init; }
    /// <summary>Repository: the snapshot's manifest id (binds to -BackupId). Local: null.</summary>
    public string? BackupId { get; init; }
    public string? Repository { get; init; }
    public string? DataDir { get; init; }
    /// <summary>WAL segments laid out.</summary>
    public required int Segments { get; init; }
    /// <summary>Bytes restored (snapshot files and segments).</summary>
    public required long Bytes { get; init; }
    /// <summary>The last log index the restored copy holds once replayed.</summary>
    public long? LastLogIndex { get; init; }
    /// <summary>Seconds the operation took (a number: ConvertTo-Json writes it as one).</summary>
    public required double Duration { get; init; }
    public required IReadOnlyList<string> Errors { get; init; }
    /// <summary>Why it failed: <see cref="ErrorKind.Integrity"/> for damaged or unverifiable
    /// backups, <see cref="ErrorKind.Failed"/> for a failed validation or restore; null when passed.
    /// The CLI's exit code (4 or 1).</summary>
    public ErrorKind? FailureKind { get; init; }
    /// <summary>Whether a validation ran and passed (null: none given, or not reached).</summary>
    public bool? ValidationPassed { get; init; }
    /// <summary>The restored namespace folder when kept (-Keep); null once removed.</summary>
    public string? RestoredPath { get; init; }
    public required DateTimeOffset StartedAt { get; init; }
    /// <summary>The recorded event's name, or null when recording failed (see <see cref="RecordError"/>).</summary>
    public string? EventName { get; init; }
    public string? RecordError { get; init; }
    public IReadOnlyList<string> Notes { get; init; } = [];
    /// <summary>What UnisonDB's recovery made of the restored copy (with -UnisonOracle), else null.</summary>
    public UnisonRecovery? UnisonRecovery { get; init; }
}

/// <summary>The restore drill: restore the latest (or a given) backup into a scratch folder with
/// the restore operations (which verify every byte they copy), verify the laid-out copy again
/// (db files against the manifest, the WAL by structure and continuity), run the user's
/// validation, clean up, and record the outcome as a <see cref="RestoreDrillEvent"/>.</summary>
public static class RestoreDrill
{
    public const string Activity = "Test-Restore";

    /// <summary>Opens the source and event log named by the options and runs the drill.</summary>
    public static Task<RestoreDrillResult?> RunAsync(TestRestoreOptions options, OperationContext context) =>
        OperationRecorder.RunAsync(new OperationScope { Operation = Activity, Category = OperationKinds.RestoreDrill, Namespace = options?.Namespace, Target = options?.Repository?.Location ?? options?.DataDir, DataDir = options?.DataDir, History = false },
            context, c => RunCoreAsync(options!, c), r => r is null ? null : new OperationOutcome(r.Bytes, r.Passed, r.Passed ? null : "RestoreDrillFailed", r.Passed ? null : string.Join("; ", r.Errors)));

    private static async Task<RestoreDrillResult?> RunCoreAsync(TestRestoreOptions options, OperationContext context)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(context);
        CheckInput(options);
        if (options.Repository is not null)
        {
            return await RunRepositoryAsync(options, context).ConfigureAwait(false);
        }
        string dataDir = SafePath.RequireDirectory(options.DataDir, "data directory",
            "Give the database's data directory; its backups are read from <dataDir>/backups/<namespace>.");
        IRestoreSource source = LocalRestoreSource.Open(dataDir, options.Namespace);
        return await RunAsync(options with { DataDir = dataDir }, source, EventLog.ForDataDir(dataDir), context).ConfigureAwait(false);
    }

    /// <summary>Runs the drill over <paramref name="source"/>, recording into <paramref name="events"/>.
    /// Throws only for bad input (invalid options, an unknown namespace, snapshot or target:
    /// nothing is written then) and cancellation; every other failure is a failed result.
    /// Null when ShouldProcess declined (-WhatIf).</summary>
    public static async Task<RestoreDrillResult?> RunAsync(TestRestoreOptions options, IRestoreSource source, IEventLog events, OperationContext context)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(events);
        ArgumentNullException.ThrowIfNull(context);
        CheckInput(options);
        string ns = SafePath.ValidateName(options.Namespace, "namespace");
        CancellationToken ct = context.CancellationToken;
        DateTimeOffset startedAt = context.UtcNow;
        long started = context.Clock.GetTimestamp();
        string scratchParent = ResolveScratchParent(options.ScratchPath);
        IRestoreSource restoreFrom = source;
        if (options.Snapshot is { } given)
        {
            // A local snapshot id is a relative path: 'snapshots\users.db' names 'snapshots/users.db'.
            string wanted = options.Repository is null ? given.Replace('\\', '/') : given;
            IReadOnlyList<RestorableSnapshot> all = await source.ListSnapshotsAsync(ct).ConfigureAwait(false);
            RestorableSnapshot match = all.FirstOrDefault(s => string.Equals(s.Id, wanted, StringComparison.Ordinal))
                ?? throw new NotFoundException("SnapshotNotFound",
                    $"There is no complete snapshot '{SafePath.Printable(wanted)}' of namespace '{ns}' in the {source.Description} ({(all.Count == 0 ? "there are none" : "present: " + string.Join(", ", all.Select(s => s.Id).Order(StringComparer.Ordinal).Take(10)))}). Give the id Get-Backup reports, or leave it out to drill the newest.",
                    wanted);
            restoreFrom = new OneSnapshotSource(source, match);
        }

        string scratch = Path.Combine(scratchParent, $"psbackup-drill-{ns}-{startedAt.UtcDateTime.ToString("yyyyMMdd'T'HHmmss", CultureInfo.InvariantCulture)}-{Convert.ToHexString(RandomNumberGenerator.GetBytes(4)).ToLowerInvariant()}");
        if (!context.ShouldProcess(scratch, $"Restore drill of namespace '{ns}' from the {source.Description} (then remove{(options.Keep ? " nothing: -Keep" : " the copy")} and record the result in {events.Location})"))
        {
            return null;
        }

        var inner = new OperationContext { Progress = context.Progress, CancellationToken = ct, Clock = context.Clock };
        var errors = new List<string>();
        var notes = new List<string>();
        ErrorKind? failure = null;
        bool? validationPassed = null;
        PointInTimeRestoreResult? restored = null;
        UnisonRecovery? recovery = null;
        string nsDir = Path.Combine(scratch, ns);
        bool keep = options.Keep;
        try
        {
            try
            {
                Directory.CreateDirectory(scratch);
                restored = await RestoreOperations.RestorePointInTimeAsync(
                    new RestorePointInTimeOptions(scratch, ns)
                    {
                        // Latest: the end of time, i.e. every archived record after the newest snapshot
                        // (not "now": a backup stamped by a host whose clock runs ahead must still count).
                        TargetTime = options.TargetTime ?? (options.TargetLogIndex is null ? DateTimeOffset.MaxValue : null),
                        TargetLogIndex = options.TargetLogIndex,
                        TargetDataDir = scratch,
                        MaxParallelism = options.MaxParallelism,
                    }, restoreFrom, inner).ConfigureAwait(false);
                notes.AddRange(restored.Plan.Notes);
                context.ReportBytes(Activity, "Verifying the restored copy", 0, restored.Bytes, nsDir);
                errors.AddRange(await VerifyLaidOutAsync(restored, ct).ConfigureAwait(false));
                if (errors.Count > 0)
                {
                    failure = ErrorKind.Integrity;
                }
                else if (options.UnisonOracle is { } oracle)
                {
                    context.Report(Activity, "UnisonDB's recovery of the restored copy", 0, 0, nsDir);
                    string work = Path.Combine(scratch, "unison-recovery");
                    (List<string> found, recovery) = await UnisonRecoveryCheck.RunAsync(oracle, nsDir, ns, 
                        // From the empty-store base UnisonDB creates the store itself: any engine recovers the same content.
                        restored.Plan.Snapshot.EmptyStore ? Snapshots.StoreEngines.Bolt : restored.Plan.Snapshot.Store ?? Snapshots.StoreEngines.DbFolder,
                        restored.LastLogIndex, options.ExpectedContentHash, work, ct).ConfigureAwait(false);
                    Durable.TryDelete(work);
                    if (found.Count > 0)
                    {
                        errors.AddRange(found);
                        failure = ErrorKind.Integrity;
                    }
                }
            }
            catch (PSBackupException e) when (e.Kind is ErrorKind.InvalidArgument or ErrorKind.NotFound or ErrorKind.Conflict)
            {
                Durable.TryDelete(scratch);
                throw; // bad input (no snapshot, target before the first one): nothing to record
            }
            catch (Exception e) when (e is PSBackupException or IOException or UnauthorizedAccessException)
            {
                errors.Add(e.Message);
                failure = e is PSBackupException p ? p.Kind : ErrorKind.Failed;
            }

            if (failure is null && options.Validation is { } validate)
            {
                context.Report(Activity, "Running the validation", 0, 0, nsDir);
                try
                {
                    await validate(nsDir, ct).ConfigureAwait(false);
                    validationPassed = true;
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    throw;
                }
                catch (Exception e)
                {
                    validationPassed = false;
                    failure = ErrorKind.Failed;
                    errors.Add($"Validation failed: {e.Message}");
                }
            }
        }
        catch (OperationCanceledException)
        {
            Durable.TryDelete(scratch);
            throw;
        }
        finally
        {
            if (!keep)
            {
                Durable.TryDelete(scratch);
            }
        }
        if (!keep && Directory.Exists(scratch))
        {
            notes.Add($"The scratch folder '{scratch}' could not be removed completely; delete it by hand.");
        }

        bool passed = failure is null;
        TimeSpan duration = context.Clock.GetElapsedTime(started);
        string? backupId = options.Repository is not null && restored?.Plan.Snapshot.EmptyStore != true ? restored?.Plan.Snapshot.Id ?? options.Snapshot : null;
        var drillEvent = new RestoreDrillEvent
        {
            Namespace = ns,
            Passed = passed,
            Snapshot = restored?.Plan.Snapshot.Id ?? options.Snapshot,
            BackupId = backupId,
            Segments = restored?.Plan.Segments.Count ?? 0,
            Bytes = restored?.Bytes ?? 0,
            LastLogIndex = restored?.LastLogIndex,
            DurationSeconds = Math.Round(duration.TotalSeconds, 3),
            Errors = errors,
            Time = startedAt,
            Host = Environment.MachineName,
        };
        string? eventName = null, recordError = null;
        try
        {
            eventName = await events.AppendAsync(ns, startedAt, drillEvent, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or PSBackupException)
        {
            recordError = $"Recording the drill in {events.Location} failed: {e.Message}";
        }
        context.Report(Activity, passed ? "Drill passed" : "Drill failed", 1, 1, nsDir);
        return new RestoreDrillResult
        {
            Passed = passed,
            Namespace = ns,
            Snapshot = drillEvent.Snapshot,
            BackupId = backupId,
            Repository = options.Repository?.Location,
            DataDir = options.Repository is null ? options.DataDir : null,
            Segments = drillEvent.Segments,
            Bytes = drillEvent.Bytes,
            LastLogIndex = drillEvent.LastLogIndex,
            Duration = Durations.Seconds(duration),
            Errors = errors,
            FailureKind = failure,
            ValidationPassed = validationPassed,
            RestoredPath = keep && Directory.Exists(nsDir) ? nsDir : null,
            StartedAt = startedAt,
            EventName = eventName,
            RecordError = recordError,
            Notes = notes,
            UnisonRecovery = recovery,
        };
    }

    /// <summary>Opens the repository (a wrong key or missing repository is bad input: thrown) and
    /// drills it, recording into its <c>events/&lt;ns&gt;/</c>.</summary>
    private static async Task<RestoreDrillResult?> RunRepositoryAsync(TestRestoreOptions options, OperationContext context)
    {
        using RepositoryRestoreSource source = await RepositoryRestoreSource.OpenAsync(options.Repository!, options.Namespace, context.CancellationToken).ConfigureAwait(false);
        return await RunAsync(options, source, EventLog.ForBackend(source.Repository.Backend), context).ConfigureAwait(false);
    }

    private static void CheckInput(TestRestoreOptions options)
    {
        SafePath.ValidateName(options.Namespace, "namespace");
        if ((options.DataDir is null) == (options.Repository is null))
        {
            throw new InvalidInputException("MissingSource",
                "Give exactly one of -DataDir (drill the local backup root <dataDir>/backups/<namespace>) or -Repository (a folder or s3://bucket/prefix).", options.Namespace);
        }
        if (options.TargetTime is not null && options.TargetLogIndex is not null)
        {
            throw new InvalidInputException("InvalidRestoreTarget",
                "Give at most one of -TargetTime or -TargetLogIndex; with neither, the drill restores the latest archived state.", null);
        }
        if (options.TargetLogIndex is < 1)
        {
            RestoreTarget.AtLogIndex(options.TargetLogIndex.Value); // throws the planner's message
        }
        if (options.Snapshot is not null && options.Repository is null)
        {
            SafePath.ValidateUserPath(options.Snapshot, "snapshot path");
        }
        if (options.MaxParallelism < 1)
        {
            throw new InvalidInputException("InvalidParallelism", "MaxParallelism must be at least 1.", null);
        }
        if (options.UnisonOracle is { } oracle && !File.Exists(oracle))
        {
            throw new InvalidInputException("OracleNotFound", $"-UnisonOracle '{oracle}' is not a file. Give the path of the unisondb-walfs binary (built from UnisonDB's own code).", oracle);
        }
        if (options.ExpectedContentHash is { } hash && (options.UnisonOracle is null || !Repository.Hex.IsSha256Hex(hash.ToLowerInvariant())))
        {
            throw new InvalidInputException("InvalidContentHash", options.UnisonOracle is null
                ? "-ExpectedContentHash is checked by UnisonDB's recovery: give -UnisonOracle too."
                : $"-ExpectedContentHash '{SafePath.Printable(hash)}' is not a SHA-256 (64 hex digits).", hash);
        }
    }

    private static string ResolveScratchParent(string? scratchPath)
    {
        if (scratchPath is null)
        {
            return Path.GetTempPath();
        }
        if (string.IsNullOrWhiteSpace(scratchPath))
        {
            throw new InvalidInputException("InvalidPath", "-ScratchPath is empty. Give a folder for the drill's scratch copy, or leave it out for the system temp dir.", scratchPath);
        }
        string full = Path.GetFullPath(scratchPath);
        if (File.Exists(full))
        {
            throw new InvalidInputException("InvalidPath", $"-ScratchPath '{full}' is a file. Give a folder; the drill creates its own subfolder in it.", full);
        }
        if (!Directory.Exists(full))
        {
            throw new NotFoundException("DirectoryNotFound", $"-ScratchPath '{full}' does not exist. Create it, or leave it out for the system temp dir.", full);
        }
        return full;
    }

    /// <summary>The restored copy, checked again where it lies: every db file against the
    /// snapshot's manifest, and wal/ by structure (every segment valid, ids and log indexes
    /// contiguous, exactly the planned segments, ending at the plan's last record).</summary>
    private static async Task<List<string>> VerifyLaidOutAsync(PointInTimeRestoreResult restored, CancellationToken ct)
    {
        var errors = new List<string>();
        PointInTimePlan plan = restored.Plan;
        string dbDir = Snapshots.StoreEngines.PlacementFolder(plan.Snapshot.Store, restored.RestoredPath);
        foreach (ManifestFile file in plan.Snapshot.Files)
        {
            string path = SafePath.Combine(dbDir, file.Path, "snapshot file");
            if (!File.Exists(path))
            {
                errors.Add($"Restored file 'db/{file.Path}' of snapshot '{plan.Snapshot.Id}' is missing.");
                continue;
            }
            ContentDigest digest;
            await using (FileStream stream = SpecialFiles.OpenRegular(path))
            {
                digest = await FileCopy.HashAsync(stream, ct).ConfigureAwait(false);
            }
            if (digest.Bytes != file.Size || !string.Equals(digest.Sha256, file.Sha256, StringComparison.Ordinal))
            {
                errors.Add($"Restored file 'db/{file.Path}' does not match snapshot '{plan.Snapshot.Id}''s manifest ({digest.Bytes} bytes, SHA-256 {digest.Sha256[..12]}…; expected {file.Size} bytes, {file.Sha256[..12]}…).");
            }
        }
        string walDir = Path.Combine(restored.RestoredPath, "wal");
        if (plan.Segments.Count == 0)
        {
            return errors;
        }
        WalDirectoryReport report = WalDirectory.Scan(walDir, plan.Namespace, ct);
        foreach (WalSegmentInfo s in report.Segments.Where(s => !s.Valid))
        {
            errors.Add($"Restored WAL segment {s.SegmentId} is invalid: {s.Error} (offset {s.ErrorOffset}).");
        }
        errors.AddRange(report.ContinuityErrors.Select(e => "Restored WAL: " + e));
        if (report.MissingSegmentIds.Count > 0)
        {
            errors.Add($"Restored WAL is missing segments {string.Join(", ", report.MissingSegmentIds)}.");
        }
        long[] expected = [.. plan.Segments.Select(s => s.SegmentId), .. plan.EmptyActiveSegmentId is long empty ? [empty] : Array.Empty<long>()];
        long[] found = report.Segments.Select(s => s.SegmentId).ToArray();
        if (!expected.SequenceEqual(found))
        {
            errors.Add($"Restored WAL holds segments [{string.Join(", ", found)}], not the planned [{string.Join(", ", expected)}].");
        }
        else
        {
            for (int i = 0; i < plan.Segments.Count; i++)
            {
                WalSegmentInfo s = report.Segments[i];
                PlannedSegment p = plan.Segments[i];
                if (s.Valid && (s.FirstLogIndex != p.FirstLogIndex || s.LastLogIndex != p.LastLogIndex))
                {
                    errors.Add($"Restored WAL segment {s.SegmentId} holds log indexes {s.FirstLogIndex}..{s.LastLogIndex?.ToString(CultureInfo.InvariantCulture) ?? "(none)"}, not {p.FirstLogIndex}..{p.LastLogIndex} as planned.");
                }
                if (s.Valid && !s.Sealed && i != plan.Segments.Count - 1)
                {
                    errors.Add($"Restored WAL segment {s.SegmentId} is unsealed but not the last one.");
                }
            }
        }
        return errors;
    }

    /// <summary>A source that lists one snapshot only, so the planner starts from the one given.</summary>
    private sealed class OneSnapshotSource(IRestoreSource inner, RestorableSnapshot snapshot) : IRestoreSource
    {
        public string Namespace => inner.Namespace;
        public string Description => inner.Description;
        public Task<IReadOnlyList<RestorableSnapshot>> ListSnapshotsAsync(CancellationToken ct) => Task.FromResult<IReadOnlyList<RestorableSnapshot>>([snapshot]);
        public Task<IReadOnlyList<ArchivedSegment>> ListSegmentsAsync(CancellationToken ct) => inner.ListSegmentsAsync(ct);
        public Task<Stream> OpenSnapshotFileAsync(RestorableSnapshot s, ManifestFile file, CancellationToken ct) => inner.OpenSnapshotFileAsync(s, file, ct);
        public Task<Stream> OpenSegmentAsync(ArchivedSegment segment, CancellationToken ct) => inner.OpenSegmentAsync(segment, ct);
    }
}
