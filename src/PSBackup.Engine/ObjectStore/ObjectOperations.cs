using PSBackup.Engine.Events;

namespace PSBackup.Engine.ObjectStore;

/// <summary>Engine operations behind New-ObjectBackup, Restore-ObjectBackup and Clear-StaleArtifact.</summary>
public static class ObjectOperations
{
    /// <summary>Copies <c>$DbRoot/&lt;Dir&gt;/&lt;Object&gt;</c> to the sibling
    /// <c>&lt;Object&gt;.backup-&lt;UTC yyyyMMddTHHmmss&gt;</c> plus its manifest. Null when ShouldProcess
    /// declined (-WhatIf).</summary>
    public static Task<ObjectBackupResult?> BackupAsync(NewObjectBackupOptions options, OperationContext context) =>
        RecordedAsync("New-ObjectBackup", OperationKinds.Object, options?.DbRoot, options?.Dir, options?.Object, options?.Repository, options?.HistoryPath,
            context, c => ObjectBackup.RunAsync(options!, c), r => r.Bytes);

    /// <summary>Backs up every object that <see cref="NewObjectBackupOptions.Dir"/> and
    /// <see cref="NewObjectBackupOptions.Object"/> select (wildcards <c>*</c>, <c>?</c>; see
    /// <see cref="ObjectSelection.Expand"/>), one backup each through <see cref="BackupAsync"/>, in
    /// order. A typed failure of one object is yielded and the next object still runs, as a
    /// scheduled job needs; a setup failure (repository missing, locked, wrong key) is yielded once
    /// and ends the run.</summary>
    public static async IAsyncEnumerable<ObjectOutcome<ObjectBackupResult>> BackupEachAsync(NewObjectBackupOptions options, OperationContext context)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(context);
        var skipped = new List<(string Dir, string Object, string Why)>();
        IReadOnlyList<(string Dir, string Object)> selected = ObjectSelection.Expand(options.DbRoot, options.Dir, options.Object, skipped);
        // Folders the pattern matched that are not backed up are reported (a failure each, so the run
        // says so), never left out silently.
        foreach ((string dir, string obj, string why) in skipped)
        {
            yield return new ObjectOutcome<ObjectBackupResult>(dir, obj, null, new InvalidInputException("ObjectNotSelectable",
                $"'{SafePath.Printable(Path.Combine(options.DbRoot, dir, obj))}' matched -Object '{SafePath.Printable(options.Object)}', but {why}.", Path.Combine(options.DbRoot, dir, obj)));
        }
        if (selected.Count == 0)
        {
            yield break;
        }
        Repository.OpenRepository? session = selected.Count > 1 && options.Repository is { } target ? await TryOpenSessionAsync(target, context).ConfigureAwait(false) : null;
        await using (session)
        {
            await foreach (ObjectOutcome<ObjectBackupResult> outcome in EachAsync(selected,
                (dir, obj) => BackupAsync(options with { Dir = dir, Object = obj, Session = session }, context), context.CancellationToken).ConfigureAwait(false))
            {
                yield return outcome;
            }
        }
    }

    /// <summary>Several objects into one repository share one open: one key check, one index load,
    /// one lock, and each backup's new chunks deduplicate the next one's in memory. When it cannot
    /// be opened, null: the first backup then opens it itself and fails, so the failure is
    /// recorded in the history and the audit log as a single backup's would be, and (a setup
    /// failure) ends the run there: one failure per call, not one per object.</summary>
    private static async Task<Repository.OpenRepository?> TryOpenSessionAsync(Repository.RepositoryTarget target, OperationContext context)
    {
        try
        {
            return await Repository.RepositoryConnector.OpenForWriteAsync(target, Repository.RepositoryLockMode.Shared, "New-ObjectBackup", context).ConfigureAwait(false);
        }
        catch (Exception e) when (e is PSBackupException or IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Restores every object that <see cref="RestoreObjectBackupOptions.Dir"/> and
    /// <see cref="RestoreObjectBackupOptions.Object"/> select, each from its newest backup in
    /// <see cref="RestoreObjectBackupOptions.Repository"/> (the disaster-recovery case: the objects
    /// come from the repository's list, not the live tree), through <see cref="RestoreAsync"/>;
    /// like <see cref="BackupEachAsync"/>, a typed failure of one object does not stop the others.
    /// Wildcards need a repository and exclude -From/-BackupId, which name one backup.</summary>
    public static async IAsyncEnumerable<ObjectOutcome<ObjectRestoreResult>> RestoreEachAsync(RestoreObjectBackupOptions options, OperationContext context)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(context);
        IReadOnlyList<(string Dir, string Object)> selected;
        if (!ObjectSelection.IsPattern(options.Dir) && !ObjectSelection.IsPattern(options.Object))
        {
            selected = [(options.Dir, options.Object)];
        }
        else if (options.Repository is null || options.From is not null || options.BackupId is not null)
        {
            throw new InvalidInputException("WildcardNeedsRepository",
                "Wildcards in -Dir/-Object restore the newest backup of each matching object from a repository: give -Repository and leave out -From and -BackupId, or name one object.", $"{options.Dir}/{options.Object}");
        }
        else
        {
            selected = await ObjectSelection.ExpandBackedUpAsync(options.Repository, options.Dir, options.Object, context.CancellationToken).ConfigureAwait(false);
        }
        await foreach (ObjectOutcome<ObjectRestoreResult> outcome in EachAsync(selected,
            (dir, obj) => RestoreAsync(options with { Dir = dir, Object = obj }, context), context.CancellationToken).ConfigureAwait(false))
        {
            yield return outcome;
        }
    }

    /// <summary>Runs <paramref name="run"/> for each selected object in order, yielding its result or
    /// typed failure; cancellation, unexpected exceptions and a setup failure (the repository is
    /// missing, locked or the key is wrong: <see cref="PSBackupException.IsSetupFailure"/>, yielded
    /// as the last outcome) stop the run.</summary>
    private static async IAsyncEnumerable<ObjectOutcome<T>> EachAsync<T>(IReadOnlyList<(string Dir, string Object)> selected,
        Func<string, string, Task<T?>> run, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default) where T : class
    {
        foreach ((string dir, string obj) in selected)
        {
            ct.ThrowIfCancellationRequested();
            T? result = null;
            PSBackupException? error = null;
            try
            {
                result = await run(dir, obj).ConfigureAwait(false);
            }
            catch (PSBackupException e)
            {
                error = e;
            }
            yield return new ObjectOutcome<T>(dir, obj, result, error);
            if (error is { IsSetupFailure: true })
            {
                // The repository cannot be opened or locked: every other object would fail the same
                // way, so the run ends with this one failure (recorded once, reported once).
                yield break;
            }
        }
    }

    /// <summary>Verifies a backup (a sibling folder, or one in <see cref="RestoreObjectBackupOptions.Repository"/>)
    /// and swaps it in for the live object, keeping the replaced object aside. Null when
    /// ShouldProcess declined (-WhatIf). A repository restore is recorded in that repository's
    /// history (the tenant dir as namespace); a local one in the history folder, when there is one.</summary>
    public static Task<ObjectRestoreResult?> RestoreAsync(RestoreObjectBackupOptions options, OperationContext context) =>
        RecordedAsync("Restore-ObjectBackup", OperationKinds.ObjectRestore, options?.DbRoot, options?.Dir, options?.Object, options?.Repository, options?.HistoryPath,
            context, c => ObjectRestore.RunAsync(options!, c), r => r.Bytes);

    /// <summary>One object operation recorded where its history lives: the repository's when it used
    /// one, else the history folder (-HistoryPath, PSBACKUP_HISTORY_PATH), else only the audit log;
    /// the tenant dir is the namespace.</summary>
    private static Task<T?> RecordedAsync<T>(string operation, string category, string? dbRoot, string? dir, string? obj,
        Repository.RepositoryTarget? repository, string? historyPath, OperationContext context, Func<OperationContext, Task<T?>> run, Func<T, long> bytes) where T : class
    {
        string? history = repository is null ? ObjectHistory.Resolve(historyPath) : null;
        return OperationRecorder.RunAsync(new OperationScope { Operation = operation, Category = category, Namespace = dir, Target = $"{dir}/{obj}", Repository = repository, HistoryPath = history },
            context, c =>
            {
                ObjectHistory.Validate(repository, historyPath, history, dbRoot!);
                return run(c);
            }, r => r is null ? null : new OperationOutcome(bytes(r)));
    }

    /// <summary>Finds (and, where ShouldProcess allows, removes) stale .new/.old/.tmp artifacts
    /// under a root. Every artifact found is returned, removed or not.</summary>
    public static Task<IReadOnlyList<StaleArtifact>> ClearStaleArtifactsAsync(ClearStaleArtifactOptions options, OperationContext context) =>
        OperationRecorder.RunAsync(new OperationScope { Operation = "Clear-StaleArtifact", Category = "sweep", Target = options?.Root, History = false },
            context, c => StaleArtifactSweep.RunAsync(options!, c), r => new OperationOutcome(r.Where(a => a.Removed).Sum(a => a.Bytes), r.All(a => a.Error is null), r.Any(a => a.Error is not null) ? "SweepIncomplete" : null, r.FirstOrDefault(a => a.Error is not null)?.Error));
}

/// <summary>Where local object backups and restores keep their operation history: a folder given
/// by -HistoryPath / <c>--history-path</c>, else <c>PSBACKUP_HISTORY_PATH</c>, laid out like a local
/// backup root (<c>&lt;folder&gt;/&lt;dir&gt;/events/</c>, <see cref="Events.EventLog.ForFolder"/>). Never a default
/// inside <c>$DB_ROOT</c>: every folder there is the database's (a tenant dir), so the history must
/// live outside it, like pgBackRest's repository or restic's cache.</summary>
public static class ObjectHistory
{
    public const string PathVariable = "PSBACKUP_HISTORY_PATH";

    /// <summary>The history folder to record in: the given one, else the environment's, else null (none).</summary>
    public static string? Resolve(string? given)
    {
        string? path = string.IsNullOrWhiteSpace(given) ? Environment.GetEnvironmentVariable(PathVariable) : given;
        return string.IsNullOrWhiteSpace(path) ? null : Path.GetFullPath(path);
    }

    /// <summary>Refuses -HistoryPath beside a repository (which keeps its own history), and a history
    /// folder inside the database root (it would read as a tenant dir) or that is a file.</summary>
    public static void Validate(Repository.RepositoryTarget? repository, string? given, string? history, string dbRoot)
    {
        if (repository is not null && given is not null)
        {
            throw new InvalidInputException("HistoryPathWithRepository",
                "-HistoryPath is for local object backups and restores; with -Repository the history is kept in the repository. Drop one of them.", given);
        }
        if (history is null)
        {
            return;
        }
        string root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(dbRoot));
        StringComparison cmp = OperatingSystem.IsWindows() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
        if (history.Equals(root, cmp) || history.StartsWith(root + Path.DirectorySeparatorChar, cmp))
        {
            throw new InvalidInputException("HistoryInsideDbRoot",
                $"The history folder '{history}' is inside the database root '{root}', where every folder belongs to the database. Give a -HistoryPath (or {PathVariable}) outside it, e.g. /var/lib/psbackup/history.", history);
        }
        if (File.Exists(history))
        {
            throw new InvalidInputException("HistoryPathIsFile", $"The history folder '{history}' is a file. Give a folder (it is created when missing).", history);
        }
    }
}
