using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Storage;

namespace PSBackup.Engine.Events;

/// <summary>The kinds of work the operation history and health checks tell apart (the metrics'
/// <c>kind</c> label).</summary>
public static class OperationKinds
{
    public const string Object = "object";
    public const string StoreSnapshot = "store-snapshot";
    public const string WalSegment = "wal-segment";
    public const string ObjectRestore = "object-restore";
    public const string SnapshotRestore = "snapshot-restore";
    public const string PointInTimeRestore = "pitr";
    public const string RestoreDrill = "restore-drill";

    /// <summary>The kinds that are backups (age, size and failure alerts).</summary>
    public static IReadOnlyList<string> Backups { get; } = [Object, StoreSnapshot, WalSegment];
}

/// <summary>One operation's outcome in the history (<c>events/&lt;ns&gt;/</c> of a repository,
/// <c>&lt;dataDir&gt;/backups/&lt;ns&gt;/events/</c> of a local backup root).</summary>
public sealed record OperationEvent
{
    public const string EventKind = "operation";

    public int FormatVersion { get; init; } = 1;
    public string Kind { get; init; } = EventKind;
    public required string Namespace { get; init; }
    /// <summary>The cmdlet that ran, e.g. <c>New-StoreSnapshot</c>.</summary>
    public required string Operation { get; init; }
    /// <summary>One of <see cref="OperationKinds"/>.</summary>
    public required string Category { get; init; }
    public required bool Success { get; init; }
    /// <summary>Bytes backed up, shipped or restored (0 on failure).</summary>
    public required long Bytes { get; init; }
    public string? Target { get; init; }
    public string? ErrorId { get; init; }
    public string? Error { get; init; }
    public required DateTimeOffset Time { get; init; }
    public required double DurationSeconds { get; init; }
    public required string Host { get; init; }
    /// <summary>True when the run was cancelled (Ctrl+C, SIGTERM, a stopped pipeline): recorded so
    /// the history shows it, never counted as a failure. Omitted otherwise.</summary>
    public bool? Cancelled { get; init; }
}

/// <summary>What an operation reports about itself for the history and the audit log.</summary>
/// <param name="Bytes">Bytes backed up, shipped or restored.</param>
/// <param name="Success">False for an operation that returns a failed result (a failed drill).</param>
public readonly record struct OperationOutcome(long Bytes, bool Success = true, string? ErrorId = null, string? Error = null);

/// <summary>Who an operation is about and where its history goes.</summary>
public sealed record OperationScope
{
    /// <summary>The cmdlet name, e.g. <c>Invoke-WalShip</c>.</summary>
    public required string Operation { get; init; }
    public required string Category { get; init; }
    /// <summary>The namespace (or, for object backups, the tenant dir); events need a valid one.</summary>
    public string? Namespace { get; init; }
    /// <summary>What the audit line names: a path, a repository location, <c>dir/object</c>.</summary>
    public string? Target { get; init; }
    /// <summary>The data directory whose local backup root keeps the history (when no repository).</summary>
    public string? DataDir { get; init; }
    public RepositoryTarget? Repository { get; init; }
    /// <summary>A history folder (<see cref="EventLog.ForFolder"/>) for operations with neither a
    /// repository nor a data directory: local object backups and restores.</summary>
    public string? HistoryPath { get; init; }
    /// <summary>False when the operation keeps its own history (the restore drill's event).</summary>
    public bool History { get; init; } = true;
}

/// <summary>The one place that appends an operation's outcome to the history and the audit log.
/// Each operation's public entry point wraps its work in <see cref="RunAsync{T}"/>; declined
/// work (-WhatIf: a null result or <c>describe</c> returning null) records nothing. Recording never
/// changes the operation's outcome: a history or audit write that fails is ignored (an operation
/// that succeeded stays a success; a failure's own exception is rethrown unchanged).</summary>
public static class OperationRecorder
{
    public static async Task<T> RunAsync<T>(OperationScope scope, OperationContext context, Func<OperationContext, Task<T>> work, Func<T, OperationOutcome?> describe)
    {
        ArgumentNullException.ThrowIfNull(scope);
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(work);
        ArgumentNullException.ThrowIfNull(describe);
        if (context.WhatIf)
        {
            return await work(context).ConfigureAwait(false);
        }
        DateTimeOffset started = context.UtcNow;
        long timestamp = context.Clock.GetTimestamp();
        int accepted = 0, declined = 0;
        var watched = new OperationContext
        {
            ShouldProcess = (target, action) =>
            {
                bool ok = context.ShouldProcess(target, action);
                Interlocked.Increment(ref ok ? ref accepted : ref declined);
                return ok;
            },
            Progress = context.Progress,
            CancellationToken = context.CancellationToken,
            Clock = context.Clock,
            AuditLogPath = context.AuditLogPath,
        };
        T result;
        try
        {
            result = await work(watched).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Recorded in the history too (as cancelled, not failed), so a SIGTERMed job leaves a trace
            // where monitoring looks; bounded, because the store may be what stalled.
            await RecordAsync(scope, context, started, timestamp, new OperationOutcome(0, false, "Cancelled", "The operation was cancelled."), history: true).ConfigureAwait(false);
            throw;
        }
        catch (Exception ex)
        {
            string id = ex is PSBackupException p ? p.ErrorId : ex.GetType().Name;
            // Bad input (invalid or unknown names, paths, ids, credentials) is refused before
            // anything is written (SPEC §4): it reaches the audit log, never the history.
            bool badInput = ex is PSBackupException { Kind: ErrorKind.InvalidArgument or ErrorKind.NotFound };
            await RecordAsync(scope, context, started, timestamp, new OperationOutcome(0, false, id, ex.Message), history: !badInput).ConfigureAwait(false);
            throw;
        }
        // Everything declined (-WhatIf through ShouldProcess, -Confirm answered No): nothing ran.
        if (declined > 0 && accepted == 0)
        {
            return result;
        }
        if (result is not null && describe(result) is { } outcome)
        {
            await RecordAsync(scope, context, started, timestamp, outcome, history: true).ConfigureAwait(false);
        }
        return result;
    }

    private static async Task RecordAsync(OperationScope scope, OperationContext context, DateTimeOffset started, long timestamp, OperationOutcome outcome, bool history)
    {
        TimeSpan duration = context.Clock.GetElapsedTime(timestamp);
        AuditLog.Append(AuditLog.ResolvePath(context, scope), new AuditEntry
        {
            Time = started,
            Operation = scope.Operation,
            Namespace = scope.Namespace,
            Target = scope.Target,
            Outcome = outcome.Success ? "success" : outcome.ErrorId == "Cancelled" ? "cancelled" : "failure",
            Bytes = outcome.Bytes,
            Error = outcome.Error is null ? null : (outcome.ErrorId is null ? outcome.Error : $"{outcome.ErrorId}: {outcome.Error}"),
            DurationSeconds = Math.Round(duration.TotalSeconds, 3),
        });
        if (!history || !scope.History || !IsValidName(scope.Namespace))
        {
            return;
        }
        IStorageBackend? backend = null;
        try
        {
            bool cancelled = outcome.ErrorId == "Cancelled" && !outcome.Success;
            using var bound = new CancellationTokenSource(cancelled ? CancelledRecordTimeout : Timeout.InfiniteTimeSpan);
            IEventLog? log;
            if (scope.Repository is { } repo)
            {
                // The history goes into the repository only while it is one: an event written after
                // the repository was removed (or its disk unmounted, or its prefix emptied) would
                // start a stray folder or prefix where it was. Only Initialize-BackupRepository creates one.
                backend = RepositoryConnector.OpenBackend(repo);
                if (await backend.StatAsync(RepositoryLayout.ConfigKey, bound.Token).ConfigureAwait(false) is null)
                {
                    return;
                }
                log = EventLog.ForBackend(backend);
            }
            else
            {
                log = scope.DataDir is { } dd && Directory.Exists(dd) ? EventLog.ForDataDir(Path.GetFullPath(dd))
                    : scope.HistoryPath is { } hp ? EventLog.ForFolder(Path.GetFullPath(hp)) : null;
            }
            if (log is null)
            {
                return;
            }
            await log.AppendAsync(scope.Namespace!, started, new OperationEvent
            {
                Cancelled = cancelled ? true : null,
                Namespace = scope.Namespace!,
                Operation = scope.Operation,
                Category = scope.Category,
                Success = outcome.Success,
                Bytes = outcome.Bytes,
                Target = scope.Target,
                ErrorId = outcome.ErrorId,
                Error = outcome.Error,
                Time = started,
                DurationSeconds = Math.Round(duration.TotalSeconds, 3),
                Host = Environment.MachineName,
            }, bound.Token).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // recording must never change the operation's outcome
        catch (Exception)
#pragma warning restore CA1031
        {
        }
        finally
        {
            backend?.Dispose();
        }
    }

    /// <summary>How long the history event of a cancelled run may take to write: a SIGTERMed run
    /// against stalled storage exits within about this plus <see cref="Repository.RepositoryLock.CancelledReleaseTimeout"/>
    /// (docs/guarantees.md); an event not written is only a missing trace (the audit log has it).</summary>
    internal static readonly TimeSpan CancelledRecordTimeout = TimeSpan.FromSeconds(1);

    private static bool IsValidName(string? ns)
    {
        try
        {
            SafePath.ValidateName(ns, "namespace");
            return true;
        }
        catch (InvalidInputException)
        {
            return false;
        }
    }
}

/// <summary>One line of the audit log.</summary>
public sealed record AuditEntry
{
    public required DateTimeOffset Time { get; init; }
    public required string Operation { get; init; }
    public string? Namespace { get; init; }
    public string? Target { get; init; }
    /// <summary><c>success</c>, <c>failure</c> or <c>cancelled</c>.</summary>
    public required string Outcome { get; init; }
    public required long Bytes { get; init; }
    public string? Error { get; init; }
    public double DurationSeconds { get; init; }
}

/// <summary>The audit log: JSON Lines, one line per operation. Its path is
/// <see cref="OperationContext.AuditLogPath"/>, else <c>PSBACKUP_AUDIT_LOG</c>, else
/// <c>&lt;user data folder&gt;/PSBackup/audit.jsonl</c> (never inside a data directory or repository:
/// bad input writes nothing there). Setting either to <c>off</c> disables it.
/// <para>Lines are never lost or interleaved across processes: .NET's <c>FileMode.Append</c> is not
/// <c>O_APPEND</c> (it seeks to the end once at open and writes at its own offset), so concurrent
/// writers overwrote each other's lines. Each append now holds the file exclusively against other
/// writers while it seeks to the end, writes the whole line and flushes it to disk: on Windows by
/// denying write sharing (readers that allow writers, such as <c>Get-Content -Wait</c>, are not
/// disturbed), on Unix by <see cref="FileShare.None"/>, which .NET takes as <c>flock(LOCK_EX)</c>
/// (advisory: readers never notice). A writer that finds the file held retries with a short
/// randomized backoff for up to <see cref="LockWait"/>. A line left torn by a crash is closed with
/// a newline before the next one, so one bad line never swallows the next.</para></summary>
public static class AuditLog
{
    public const string PathVariable = "PSBACKUP_AUDIT_LOG";
    public const string FileName = "audit.jsonl";

    /// <summary>How long an append waits for other writers before it gives up (auditing never
    /// fails an operation; a line is lost only if another process held the file this long).</summary>
    public static TimeSpan LockWait { get; } = TimeSpan.FromSeconds(60);

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        WriteIndented = false,
        TypeInfoResolver = EngineJsonContext.Default,
    };

    private static readonly object Gate = new();

    /// <summary>The audit log file for an operation, or null when disabled.</summary>
    public static string? ResolvePath(OperationContext context, OperationScope scope)
    {
        ArgumentNullException.ThrowIfNull(context);
        string? configured = context.AuditLogPath ?? Environment.GetEnvironmentVariable(PathVariable);
        if (!string.IsNullOrWhiteSpace(configured))
        {
            return string.Equals(configured.Trim(), "off", StringComparison.OrdinalIgnoreCase) ? null : Path.GetFullPath(configured);
        }
        return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.Create), "PSBackup", FileName);
    }

    /// <summary>Appends one line; failures are ignored (auditing never fails an operation).</summary>
    public static void Append(string? path, AuditEntry entry)
    {
        if (path is null)
        {
            return;
        }
        byte[] line = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(entry, JsonInfo.Of<AuditEntry>(Json)) + "\n");
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            AppendLine(path, line, LockWait);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    /// <summary>Appends <paramref name="line"/> (ending in '\n') as one write while holding the file
    /// against every other writer, process or thread; throws the last IOException when the file
    /// stayed held for <paramref name="wait"/>.</summary>
    internal static void AppendLine(string path, ReadOnlySpan<byte> line, TimeSpan wait)
    {
        FileShare share = OperatingSystem.IsWindows() ? FileShare.Read | FileShare.Delete : FileShare.None;
        long deadline = Environment.TickCount64 + (long)wait.TotalMilliseconds;
        int backoff = 1;
        lock (Gate)
        {
            while (true)
            {
                FileStream fs;
                try
                {
                    fs = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, share, 1, FileOptions.None);
                }
                catch (IOException e) when (e is not (DirectoryNotFoundException or PathTooLongException) && Environment.TickCount64 < deadline)
                {
                    // Held by another writer (a sharing violation on Windows, EWOULDBLOCK from flock on Unix).
                    Thread.Sleep(Random.Shared.Next(backoff, (2 * backoff) + 1));
                    backoff = Math.Min(backoff * 2, 32);
                    continue;
                }
                using (fs)
                {
                    long end = fs.Length;
                    if (end > 0)
                    {
                        fs.Position = end - 1;
                        if (fs.ReadByte() != '\n')
                        {
                            fs.Position = end;
                            fs.WriteByte((byte)'\n'); // close a line torn by a crash
                        }
                    }
                    fs.Position = fs.Length;
                    fs.Write(line);
                    fs.Flush(flushToDisk: true);
                }
                return;
            }
        }
    }
}
