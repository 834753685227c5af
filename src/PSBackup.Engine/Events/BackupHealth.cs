using System.Globalization;
using System.Text;
using System.Text.Json;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Storage;
using PSBackup.Engine.Wal;

namespace PSBackup.Engine.Events;

/// <summary>How bad an alert is (ConvertTo-Json writes the name).</summary>
[Newtonsoft.Json.JsonConverter(typeof(Newtonsoft.Json.Converters.StringEnumConverter))]
public enum HealthSeverity
{
    Warning,
    Critical,
}

/// <summary>What a health alert is about. The backup kinds have <see cref="BackupKind"/>'s names and
/// values; ConvertTo-Json writes the name.</summary>
[Newtonsoft.Json.JsonConverter(typeof(Newtonsoft.Json.Converters.StringEnumConverter))]
[System.ComponentModel.TypeConverter(typeof(HealthAlertKindConverter))]
public enum HealthAlertKind
{
    Object = BackupKind.Object,
    StoreSnapshot = BackupKind.StoreSnapshot,
    WalSegment = BackupKind.WalSegment,
    ObjectRestore,
    SnapshotRestore,
    /// <summary>"pitr" on the command line and in the history.</summary>
    PointInTimeRestore,
    RestoreDrill,
    /// <summary>The history itself (malformed events).</summary>
    History,
    /// <summary>The repository (damaged backups).</summary>
    Repository,
    /// <summary>An operation kind this version does not know (a newer writer's).</summary>
    Other,
}

/// <summary>Either spelling of a <see cref="HealthAlertKind"/> (the history's "pitr" too).</summary>
public sealed class HealthAlertKindConverter()
    : SpelledEnumConverter(typeof(HealthAlertKind), new Dictionary<string, object> { [OperationKinds.PointInTimeRestore] = HealthAlertKind.PointInTimeRestore });

/// <summary>Between the history's operation kinds (<see cref="OperationKinds"/>) and <see cref="HealthAlertKind"/>.</summary>
public static class HealthAlertKinds
{
    /// <summary>The kind an operation kind of the history is (Other when this version does not know it).</summary>
    public static HealthAlertKind Of(string operationKind) =>
        SpelledEnumConverter.Parse(typeof(HealthAlertKind), operationKind, new Dictionary<string, object> { [OperationKinds.PointInTimeRestore] = HealthAlertKind.PointInTimeRestore })
            is HealthAlertKind k ? k : HealthAlertKind.Other;

    /// <summary>The command line's and the history's spelling: store-snapshot, pitr, restore-drill.</summary>
    public static string ToName(HealthAlertKind kind) =>
        kind == HealthAlertKind.PointInTimeRestore ? OperationKinds.PointInTimeRestore : SpelledEnumConverter.Kebab(kind);
}

/// <summary>One health alert (Get-BackupHealth).</summary>
public sealed record HealthAlert
{
    public required HealthSeverity Severity { get; init; }
    public required string Namespace { get; init; }
    /// <summary>What the alert is about, in Get-Backup's vocabulary (Object, StoreSnapshot,
    /// WalSegment) plus the restores, drills, history and repository; the command line's spelling
    /// (store-snapshot, restore-drill, pitr) converts to it, so <c>Where-Object Kind -eq
    /// store-snapshot</c> and <c>-eq StoreSnapshot</c> both match.</summary>
    public required HealthAlertKind Kind { get; init; }
    /// <summary>Stable: ConsecutiveFailures, BackupTooOld, NoSuccessfulBackup, SizeAnomaly, WalGap, WalLagTooHigh, WalDirectoryMissing, WalNoSegments, WalMixedNaming, WalSegmentCorrupt, NoRestoreBase, BackupDamaged, RestoreDrillFailed, RestoreDrillTooOld, NoRestoreDrill, LeftoverTemp.</summary>
    public required string Code { get; init; }
    public required string Message { get; init; }
    public DateTimeOffset? Time { get; init; }
}

/// <summary>Where to read the history from and the alert thresholds.</summary>
public sealed record BackupHealthOptions
{
    public RepositoryTarget? Repository { get; init; }
    public string? DataDir { get; init; }
    /// <summary>A history folder (local object backups: <c>ObjectHistory</c>).</summary>
    public string? HistoryPath { get; init; }
    /// <summary>Only these namespaces; null or empty: every namespace with backups or events.</summary>
    public IReadOnlyList<string>? Namespace { get; init; }
    /// <summary>The shard-db root ($DB_ROOT) the object backups watch: its tenant dirs are searched
    /// for the temp copies killed backups and restores left (<c>LeftoverTemp</c> alerts; with
    /// <see cref="Namespace"/>, only those tenant dirs).</summary>
    public string? DbRoot { get; init; }
    public TimeSpan MaxAge { get; init; } = TimeSpan.FromHours(24);
    /// <summary>Percent change between the last two successful backups of a kind that is an anomaly.</summary>
    public double SizeChangeThreshold { get; init; } = 50;
    public int FailureThreshold { get; init; } = 2;
    public TimeSpan MaxRestoreTestAge { get; init; } = TimeSpan.FromDays(31);
    /// <summary>Alert (Critical, WalLagTooHigh) when the oldest record not archived yet is older
    /// than this: the recovery point promised by continuous shipping is missed. 5 minutes by default.</summary>
    public TimeSpan MaxWalLag { get; init; } = TimeSpan.FromMinutes(5);
    /// <summary>With a repository: the data directory whose live WAL the lag is measured against.</summary>
    public string? LiveDataDir { get; init; }
}

/// <summary>What the history says about one namespace and kind.</summary>
public sealed record KindStatus(string Namespace, string Kind)
{
    public int Successes { get; set; }
    public int Failures { get; set; }
    public int ConsecutiveFailures { get; set; }
    /// <summary>Runs that were cancelled (Ctrl+C, SIGTERM): not failures.</summary>
    public int Cancellations { get; set; }
    public long Bytes { get; set; }
    public DateTimeOffset? LastSuccess { get; set; }
    public List<long> SuccessSizes { get; } = new();
    public string? LastError { get; set; }
}

/// <summary>What the history and the archive say about one namespace.</summary>
public sealed record NamespaceStatus(string Namespace)
{
    public SortedDictionary<string, KindStatus> Kinds { get; } = new(StringComparer.Ordinal);
    public IReadOnlyList<long> MissingSegmentIds { get; set; } = [];
    /// <summary>Why no point-in-time restore of the namespace is possible at all (no store snapshot,
    /// and the WAL archive does not start at the WAL's first segment); null when one is.</summary>
    public string? NoRestoreBase { get; set; }
    /// <summary>Problems of the live WAL that make archiving it impossible (no <c>wal/</c>, no
    /// recognisable segment, mixed naming): (alert id, message). Read from a data directory only.</summary>
    public List<(string Id, string Message)> WalProblems { get; } = [];
    /// <summary>How far the archive is behind the live WAL, when the live WAL is on this host
    /// (-DataDir, or -LiveDataDir with -Repository); null otherwise.</summary>
    public Wal.WalLagInfo? WalLag { get; set; }
    public DateTimeOffset? LastDrill { get; set; }
    public bool? LastDrillPassed { get; set; }
    public DateTimeOffset? LastDrillSuccess { get; set; }
    public int DrillSuccesses { get; set; }
    public int DrillFailures { get; set; }
    /// <summary>Backups of the namespace that cannot be restored as they stand: damaged manifests, or
    /// chunks whose every copy is in a missing or damaged pack (one line each: id and why).</summary>
    public List<string> DamagedBackups { get; } = new();
    /// <summary>Events of the namespace that could not be read (skipped).</summary>
    public int MalformedEvents { get; set; }

    public KindStatus Kind(string kind) => Kinds.TryGetValue(kind, out KindStatus? k) ? k : Kinds[kind] = new KindStatus(Namespace, kind);
}

/// <summary>Engine operations behind Get-BackupHealth and Export-BackupMetric: both read the
/// operation history (<see cref="OperationEvent"/>, <see cref="RestoreDrillEvent"/>,
/// <see cref="WalGapEvent"/>) and the archive listing of a repository or local backup root.</summary>
public static class BackupHealth
{
    /// <summary>Reads every selected namespace's status from one source: a repository, a data
    /// directory's local backup roots, or a history folder (events only: local object backups
    /// have no catalog outside <c>$DB_ROOT</c>).</summary>
    public static async Task<IReadOnlyList<NamespaceStatus>> ReadStatusAsync(RepositoryTarget? repository, string? dataDir, string? historyPath, IReadOnlyList<string>? namespaces, OperationContext context, string? liveDataDir = null)
    {
        ArgumentNullException.ThrowIfNull(context);
        CancellationToken ct = context.CancellationToken;
        if ((repository is not null ? 1 : 0) + (dataDir is not null ? 1 : 0) + (historyPath is not null ? 1 : 0) != 1)
        {
            throw new InvalidInputException("InvalidSource", "Give exactly one of a repository, a data directory or a history folder (-Repository, -DataDir or -HistoryPath).", null);
        }
        IEventLog log;
        IReadOnlyList<BackupRecord> catalog;
        IReadOnlyList<DamagedBackup> damaged = [];
        var names = new SortedSet<string>(StringComparer.Ordinal);
        if (historyPath is not null)
        {
            string folder = SafePath.RequireDirectory(historyPath, "history folder", "Give the folder local object backups record into (-HistoryPath / PSBACKUP_HISTORY_PATH).");
            log = EventLog.ForFolder(folder);
            foreach (string d in Directory.EnumerateDirectories(folder).Where(d => Directory.Exists(Path.Combine(d, "events"))))
            {
                names.Add(Path.GetFileName(d));
            }
            catalog = [];
        }
        else if (repository is not null)
        {
            IStorageBackend backend = RepositoryConnector.OpenBackend(repository);
            log = EventLog.ForBackend(backend);
            await foreach (StoredObject o in backend.ListAsync("events/", ct).ConfigureAwait(false))
            {
                string[] parts = o.Key.Split('/');
                if (parts.Length == 3)
                {
                    names.Add(parts[1]);
                }
            }
            BackupListing listing = await BackupCatalog.ListDetailedAsync(new GetBackupOptions { Repository = repository }, context).ConfigureAwait(false);
            catalog = listing.Backups;
            damaged = listing.Damaged;
        }
        else
        {
            string dd = SafePath.RequireDirectory(dataDir, "data directory", "Give the database's data directory (its backups are under <dataDir>/backups).");
            log = EventLog.ForDataDir(dd);
            string backups = Path.Combine(dd, "backups");
            if (Directory.Exists(backups))
            {
                foreach (string d in Directory.EnumerateDirectories(backups))
                {
                    names.Add(Path.GetFileName(d));
                }
            }
            foreach (string d in Directory.EnumerateDirectories(dd))
            {
                string name = Path.GetFileName(d);
                if (name != "backups" && LooksLikeNamespaceFolder(d) && IsNamespaceName(name))
                {
                    names.Add(name);
                }
            }
            var records = new List<BackupRecord>();
            foreach (string ns in names.ToList())
            {
                if (namespaces is { Count: > 0 } && !namespaces.Contains(ns, StringComparer.Ordinal))
                {
                    continue;
                }
                try
                {
                    records.AddRange(await BackupCatalog.ListAsync(new GetBackupOptions { DataDir = dd, Namespace = ns }, context).ConfigureAwait(false));
                }
                catch (InvalidInputException)
                {
                    names.Remove(ns); // a folder under backups/ that is not a namespace's
                }
            }
            catalog = records;
        }
        foreach (BackupRecord r in catalog)
        {
            if ((r.Namespace ?? r.Dir) is { } n)
            {
                names.Add(n);
            }
        }
        foreach (DamagedBackup d in damaged)
        {
            if ((d.Namespace ?? d.Dir) is { } n)
            {
                names.Add(n);
            }
        }
        if (namespaces is { Count: > 0 })
        {
            foreach (string n in namespaces)
            {
                SafePath.ValidateName(n, "namespace");
            }
            names.IntersectWith(namespaces);
            names.UnionWith(namespaces);
        }

        var result = new List<NamespaceStatus>();
        OpenRepository? lagRepository = null;
        await using var closeLag = new AsyncDisposer(() => lagRepository);
        foreach (string ns in names)
        {
            ct.ThrowIfCancellationRequested();
            var status = new NamespaceStatus(ns);
            DateTimeOffset? lastShip = null;
            (DateTimeOffset Time, IReadOnlyList<long> Ids, string Message)? lastGap = null;
            foreach (StoredEvent e in await log.ListAsync(ns, ct).ConfigureAwait(false))
            {
                // One malformed event (a missing field, a wrong type, a hand-edited file) is skipped
                // and counted; it must not blind monitoring to every other event.
                if (!IsWellFormed(e))
                {
                    status.MalformedEvents++;
                    continue;
                }
                switch (e.Kind)
                {
                    case OperationEvent.EventKind:
                        OperationEvent op = e.As<OperationEvent>();
                        KindStatus k = status.Kind(op.Category);
                        if (op.Cancelled == true)
                        {
                            k.Cancellations++; // neither a success nor a failure
                        }
                        else if (op.Success)
                        {
                            k.Successes++;
                            k.ConsecutiveFailures = 0;
                            k.Bytes += op.Bytes;
                            k.LastSuccess = Max(k.LastSuccess, op.Time);
                            k.SuccessSizes.Add(op.Bytes);
                            if (op.Category == OperationKinds.WalSegment)
                            {
                                lastShip = op.Time;
                            }
                        }
                        else
                        {
                            k.Failures++;
                            k.ConsecutiveFailures++;
                            k.LastError = $"{op.ErrorId}: {op.Error}";
                            if (op.ErrorId == "WalGap")
                            {
                                lastGap = (op.Time, [], op.Error ?? "");
                            }
                        }
                        break;
                    case RestoreDrillEvent.EventKind:
                        RestoreDrillEvent d = e.As<RestoreDrillEvent>();
                        status.LastDrill = d.Time;
                        status.LastDrillPassed = d.Passed;
                        if (d.Passed)
                        {
                            status.DrillSuccesses++;
                            status.LastDrillSuccess = d.Time;
                        }
                        else
                        {
                            status.DrillFailures++;
                        }
                        break;
                    case "wal-gap":
                        WalGapEvent g = e.As<WalGapEvent>();
                        lastGap = (g.DetectedAt, g.MissingSegmentIds, g.Message);
                        break;
                }
            }
            // Backups made before (or without) the history still count as the newest backup.
            foreach (BackupRecord r in catalog.Where(r => (r.Namespace ?? r.Dir) == ns && r.Complete))
            {
                string kind = r.Kind switch { BackupKind.Object => OperationKinds.Object, BackupKind.StoreSnapshot => OperationKinds.StoreSnapshot, _ => OperationKinds.WalSegment };
                KindStatus k = status.Kind(kind);
                k.LastSuccess = Max(k.LastSuccess, r.Time);
            }
            var archived = catalog.Where(r => r.Namespace == ns && r.Kind == BackupKind.WalSegment && r.SegmentId is not null).Select(r => r.SegmentId!.Value).ToHashSet();
            var missing = new SortedSet<long>(SegmentHoles(archived));
            if (lastGap is { } gap && (lastShip is null || gap.Time > lastShip))
            {
                // A recorded gap is resolved once every missing id is archived.
                missing.UnionWith(gap.Ids.Where(id => !archived.Contains(id)));
                if (gap.Ids.Count == 0 && missing.Count == 0)
                {
                    missing.Add(-1); // a gap error without ids (local ship): counted as one
                }
            }
            status.MissingSegmentIds = missing.ToList();
            // Point-in-time restore starts from a store snapshot, or, with none, from an empty store
            // replaying the WAL from its first segment (UnisonDB starts an empty store at 0:0): an
            // archive that lost its start and has no snapshot can restore nothing.
            if (archived.Count > 0 && archived.Min() > 1 &&
                !catalog.Any(r => (r.Namespace ?? r.Dir) == ns && r.Kind == BackupKind.StoreSnapshot && r.Complete))
            {
                status.NoRestoreBase = $"Namespace '{ns}' has no store snapshot, and its WAL archive starts at segment {archived.Min()}, not at the WAL's first segment (1): no point-in-time restore is possible from it. Take a store snapshot (New-StoreSnapshot) now.";
            }
            foreach (BackupRecord r in catalog.Where(r => (r.Namespace ?? r.Dir) == ns && r.Problem is not null))
            {
                status.DamagedBackups.Add($"backup {r.BackupId} ({BackupKinds.ToName(r.Kind)}, {r.Time:u}): {r.Problem}");
            }
            // A damaged manifest no ref names belongs to no known namespace: every namespace hears of it.
            foreach (DamagedBackup d in damaged.Where(d => (d.Namespace ?? d.Dir) is null || (d.Namespace ?? d.Dir) == ns))
            {
                status.DamagedBackups.Add($"backup {d.BackupId}: its manifest is damaged ({d.ErrorId})");
            }
            if (dataDir is not null)
            {
                CheckLiveWal(Path.Combine(Path.GetFullPath(dataDir), ns), ns, status);
                status.WalLag = WalLagOf(() => Task.FromResult(Wal.WalLag.MeasureLocal(Path.Combine(Path.GetFullPath(dataDir), ns, "wal"), ns, Path.Combine(Path.GetFullPath(dataDir), "backups", ns), context.UtcNow)));
            }
            else if (repository is not null && liveDataDir is not null && Directory.Exists(Path.Combine(Path.GetFullPath(liveDataDir), ns, "wal")))
            {
                lagRepository ??= await RepositoryConnector.OpenAsync(repository, ct).ConfigureAwait(false);
                OpenRepository open = lagRepository;
                status.WalLag = await WalLagOfAsync(() => Wal.WalLag.MeasureRepositoryAsync(Path.Combine(Path.GetFullPath(liveDataDir), ns, "wal"), ns, open.Repository, context.UtcNow, ct)).ConfigureAwait(false);
            }
            result.Add(status);
        }
        return result;
    }

    private static DateTimeOffset Max(DateTimeOffset? a, DateTimeOffset b) => a is { } x && x > b ? x : b;

    /// <summary>True when the event of a kind health reads deserializes with every field it needs;
    /// unknown kinds are well-formed (readers ignore them).</summary>
    private static bool IsWellFormed(StoredEvent e)
    {
        try
        {
            return !e.IsUnreadable && e.Kind switch
            {
                OperationEvent.EventKind => e.As<OperationEvent>() is { Category.Length: > 0, Namespace: not null, Bytes: >= 0 },
                RestoreDrillEvent.EventKind => e.As<RestoreDrillEvent>() is { Namespace: not null },
                "wal-gap" => e.As<WalGapEvent>() is { MissingSegmentIds: not null },
                _ => true,
            };
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or NotSupportedException or FormatException or OverflowException)
        {
            return false;
        }
    }

    /// <summary>The lag, or null when the WAL cannot be read now (its problems are reported apart).</summary>
    private static Wal.WalLagInfo? WalLagOf(Func<Task<Wal.WalLagInfo?>> measure) => WalLagOfAsync(measure).GetAwaiter().GetResult();

    private static async Task<Wal.WalLagInfo?> WalLagOfAsync(Func<Task<Wal.WalLagInfo?>> measure)
    {
        try
        {
            return await measure().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or PSBackupException)
        {
            return null;
        }
    }

    private sealed class AsyncDisposer(Func<IAsyncDisposable?> target) : IAsyncDisposable
    {
        public ValueTask DisposeAsync() => target() is { } t ? t.DisposeAsync() : ValueTask.CompletedTask;
    }

    /// <summary>A folder of the data directory that a database keeps a namespace in: it has a WAL,
    /// a store (UnisonDB's <c>unison.db</c>, the example's <c>db/</c>) or UnisonDB's lock.</summary>
    private static bool LooksLikeNamespaceFolder(string dir) =>
        Directory.Exists(Path.Combine(dir, "wal")) || Path.Exists(Path.Combine(dir, "unison.db")) ||
        Directory.Exists(Path.Combine(dir, "db")) || File.Exists(Path.Combine(dir, "pid.lock"));

    private static bool IsNamespaceName(string name)
    {
        try
        {
            SafePath.ValidateName(name, "namespace");
            return !name.Contains(".replaced-", StringComparison.Ordinal) && !name.EndsWith(".tmp", StringComparison.Ordinal);
        }
        catch (InvalidInputException)
        {
            return false;
        }
    }

    /// <summary>The live WAL of a namespace folder: one that cannot be archived (no <c>wal/</c>,
    /// files but no segment, mixed naming) is a problem; one that holds a sealed segment makes the
    /// WAL kind expected, so an archive without any shipped segment is "NoSuccessfulBackup".</summary>
    private static void CheckLiveWal(string nsDir, string ns, NamespaceStatus status)
    {
        if (!Directory.Exists(nsDir))
        {
            return; // backups of a namespace this host does not run
        }
        string walDir = Path.Combine(nsDir, "wal");
        if (!Directory.Exists(walDir))
        {
            status.WalProblems.Add(("WalDirectoryMissing", $"Namespace folder '{nsDir}' has no WAL directory 'wal': nothing of its WAL can be archived. Check where the database writes its WAL."));
            return;
        }
        WalDirectoryListing listing;
        try
        {
            listing = WalDirectory.List(walDir);
        }
        catch (PSBackupException e)
        {
            status.WalProblems.Add((e.ErrorId, e.Message));
            return;
        }
        if (listing.Segments.Count == 0)
        {
            if (listing.OtherFiles.Count > 0)
            {
                status.WalProblems.Add(("WalNoSegments", $"The WAL directory '{walDir}' holds {listing.OtherFiles.Count} file(s) ({string.Join(", ", listing.OtherFiles.Take(5))}) but no segment named %09d.seg or %09d.wal: nothing of it can be archived."));
            }
            return;
        }
        bool anySealed = listing.Segments.Count > 1;
        (long newestId, string newestPath) = listing.Segments[^1];
        // The newest segment as the shipper reads it: damage there (a damaged header, a record
        // damaged mid-way) stops its partials, and the records in it are unreadable to the database.
        if (WalPartialShip.InspectSettled(newestPath, ns, newestId, CancellationToken.None) is { Valid: false, Sealed: false } damaged)
        {
            status.WalProblems.Add(("WalSegmentCorrupt", WalPartialShip.Corrupt(newestId, newestPath, damaged).Message));
        }
        if (!anySealed)
        {
            try
            {
                anySealed = WalSegmentReader.Inspect(listing.Segments[0].Path, ns, listing.Segments[0].Id, headerOnly: true).Sealed;
            }
            catch (NotFoundException)
            {
            }
        }
        if (anySealed)
        {
            status.Kind(OperationKinds.WalSegment); // a WAL to archive: none archived is NoSuccessfulBackup
        }
    }

    private static IEnumerable<long> SegmentHoles(IEnumerable<long> ids)
    {
        long? previous = null;
        foreach (long id in ids.Distinct().Order())
        {
            if (previous is { } p)
            {
                for (long m = p + 1; m < id && m - p <= 10_000; m++)
                {
                    yield return m;
                }
            }
            previous = id;
        }
    }

    /// <summary>Get-BackupHealth: the alerts, most severe first (empty: healthy).</summary>
    public static async Task<IReadOnlyList<HealthAlert>> GetAlertsAsync(BackupHealthOptions options, OperationContext context)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(context);
        if (options.MaxAge <= TimeSpan.Zero || options.MaxRestoreTestAge <= TimeSpan.Zero || options.MaxWalLag <= TimeSpan.Zero)
        {
            throw new InvalidInputException("InvalidThreshold", "MaxAge, MaxRestoreTestAge and MaxWalLag must be positive durations.", null);
        }
        if (options.SizeChangeThreshold <= 0 || options.FailureThreshold < 1)
        {
            throw new InvalidInputException("InvalidThreshold", "SizeChangeThreshold must be a positive percentage and FailureThreshold 1 or more.", null);
        }
        string? dbRoot = options.DbRoot is null ? null
            : SafePath.RequireDirectory(options.DbRoot, "database root", "Give the shard-db root ($DB_ROOT) the object backups copy from (-DbRoot / --db-root).");
        IReadOnlyList<NamespaceStatus> statuses = await ReadStatusAsync(options.Repository, options.DataDir, options.HistoryPath, options.Namespace, context, options.LiveDataDir).ConfigureAwait(false);
        DateTimeOffset now = context.UtcNow;
        var alerts = new List<HealthAlert>();
        if (dbRoot is not null)
        {
            alerts.AddRange(LeftoverTempAlerts(dbRoot, options.Namespace, now));
        }
        foreach (NamespaceStatus s in statuses)
        {
            string ns = s.Namespace;
            // Nothing archived at all is NoSuccessfulBackup's alert, not a lag.
            if (s.WalLag is { Records: > 0, ArchivedLastLogIndex: not null } lag && lag.Lag > options.MaxWalLag)
            {
                alerts.Add(Alert(HealthSeverity.Critical, ns, OperationKinds.WalSegment, "WalLagTooHigh",
                    $"The WAL archive of namespace '{ns}' is {lag.Records} record(s) behind the live WAL (log index {lag.ArchivedLastLogIndex?.ToString(CultureInfo.InvariantCulture) ?? "none"} of {lag.LiveLastLogIndex}); the oldest unarchived record is {Seconds(lag.Lag)} old (threshold {Seconds(options.MaxWalLag)}). Records written since would be lost with this disk. Check that Invoke-WalShip -Continuous (or the scheduled ship) runs and can reach its target."));
            }
            foreach (KindStatus k in s.Kinds.Values)
            {
                if (k.ConsecutiveFailures >= options.FailureThreshold)
                {
                    alerts.Add(Alert(HealthSeverity.Critical, ns, k.Kind, "ConsecutiveFailures", $"The last {k.ConsecutiveFailures} {k.Kind} operations of namespace '{ns}' failed (latest: {k.LastError})."));
                }
                if (!OperationKinds.Backups.Contains(k.Kind))
                {
                    continue;
                }
                if (k.LastSuccess is not { } last)
                {
                    alerts.Add(Alert(HealthSeverity.Critical, ns, k.Kind, "NoSuccessfulBackup", $"Namespace '{ns}' has no successful {k.Kind} backup."));
                }
                else if (now - last > options.MaxAge)
                {
                    alerts.Add(Alert(HealthSeverity.Critical, ns, k.Kind, "BackupTooOld", $"The newest successful {k.Kind} backup of namespace '{ns}' is from {last:u}, {Hours(now - last)} ago (threshold {Hours(options.MaxAge)}).", last));
                }
                if (k.Kind != OperationKinds.WalSegment && k.SuccessSizes.Count >= 2)
                {
                    long previous = k.SuccessSizes[^2], latest = k.SuccessSizes[^1];
                    double change = previous == 0 ? (latest == 0 ? 0 : double.PositiveInfinity) : Math.Abs(latest - previous) * 100.0 / previous;
                    if (change > options.SizeChangeThreshold)
                    {
                        alerts.Add(Alert(HealthSeverity.Warning, ns, k.Kind, "SizeAnomaly",
                            $"The last {k.Kind} backup of namespace '{ns}' is {latest} bytes, the one before {previous} bytes: a change of {(double.IsInfinity(change) ? "∞" : change.ToString("0", CultureInfo.InvariantCulture))} % (threshold {options.SizeChangeThreshold.ToString(CultureInfo.InvariantCulture)} %)."));
                    }
                }
            }
            foreach ((string id, string message) in s.WalProblems)
            {
                alerts.Add(Alert(HealthSeverity.Critical, ns, OperationKinds.WalSegment, id, message));
            }
            if (s.MissingSegmentIds.Count > 0)
            {
                IEnumerable<long> known = s.MissingSegmentIds.Where(i => i >= 0);
                alerts.Add(Alert(HealthSeverity.Critical, ns, OperationKinds.WalSegment, "WalGap",
                    known.Any() ? $"The WAL archive of namespace '{ns}' is missing segment(s) {string.Join(", ", known.Take(20))}; point-in-time recovery across them is impossible. Take a new snapshot and ship again."
                                : $"The last WAL ship of namespace '{ns}' failed with a WAL gap and none succeeded since. Take a new snapshot and ship again."));
            }
            if (s.NoRestoreBase is { } noBase)
            {
                alerts.Add(Alert(HealthSeverity.Critical, ns, OperationKinds.StoreSnapshot, "NoRestoreBase", noBase));
            }
            if (s.MalformedEvents > 0)
            {
                alerts.Add(Alert(HealthSeverity.Warning, ns, "history", "MalformedEvents",
                    $"{s.MalformedEvents} event(s) of namespace '{ns}' are malformed and were skipped; health and metrics may miss what they recorded. Look for hand-edited or truncated files under events/{ns}/."));
            }
            if (s.DamagedBackups.Count > 0)
            {
                alerts.Add(Alert(HealthSeverity.Critical, ns, "repository", "BackupDamaged",
                    $"{s.DamagedBackups.Count} backup(s) of namespace '{ns}' cannot be restored as they stand (first: {s.DamagedBackups[0]}). Run Repair-BackupRepository (with -SourcePath while the data still exists) and take new backups."));
            }
            if (s.LastDrill is { } drill)
            {
                if (s.LastDrillPassed == false)
                {
                    alerts.Add(Alert(HealthSeverity.Critical, ns, OperationKinds.RestoreDrill, "RestoreDrillFailed", $"The last restore drill of namespace '{ns}' ({drill:u}) failed. Run Test-Restore and read its errors.", drill));
                }
                else if (now - drill > options.MaxRestoreTestAge)
                {
                    alerts.Add(Alert(HealthSeverity.Warning, ns, OperationKinds.RestoreDrill, "RestoreDrillTooOld", $"The last restore drill of namespace '{ns}' is from {drill:u}, older than {options.MaxRestoreTestAge.TotalDays.ToString("0.#", CultureInfo.InvariantCulture)} days. Run Test-Restore.", drill));
                }
            }
            else if (s.Kinds.ContainsKey(OperationKinds.StoreSnapshot))
            {
                alerts.Add(Alert(HealthSeverity.Warning, ns, OperationKinds.RestoreDrill, "NoRestoreDrill", $"Namespace '{ns}' has no recorded restore drill. Run Test-Restore."));
            }
        }
        return alerts.OrderByDescending(a => a.Severity).ThenBy(a => a.Namespace, StringComparer.Ordinal).ThenBy(a => HealthAlertKinds.ToName(a.Kind), StringComparer.Ordinal).ToList();
    }

    private static string Seconds(TimeSpan t) => t.TotalSeconds.ToString("0.#", CultureInfo.InvariantCulture) + " s";

    /// <summary>One Warning per tenant dir of <paramref name="dbRoot"/> that holds temp copies a
    /// killed object backup or restore left (<see cref="ObjectStore.ObjectLayout.LeftoverTemps"/>,
    /// over an hour old): they fill the disk and only Clear-StaleArtifact removes them, so a job's
    /// health check names them. Links and unreadable dirs are passed over.</summary>
    private static IEnumerable<HealthAlert> LeftoverTempAlerts(string dbRoot, IReadOnlyList<string>? namespaces, DateTimeOffset now)
    {
        var dirs = new List<DirectoryInfo>();
        foreach (DirectoryInfo d in new DirectoryInfo(dbRoot).EnumerateDirectories())
        {
            if (!ObjectStore.ObjectLayout.IsLink(d) && (namespaces is not { Count: > 0 } || namespaces.Contains(d.Name, StringComparer.Ordinal)))
            {
                dirs.Add(d);
            }
        }
        foreach (DirectoryInfo d in dirs.OrderBy(d => d.Name, StringComparer.Ordinal))
        {
            IReadOnlyList<string> temps;
            try
            {
                temps = ObjectStore.ObjectLayout.LeftoverTemps(d.FullName, null, (now - ObjectStore.ObjectLayout.LeftoverTempAge).UtcDateTime);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue;
            }
            if (temps.Count > 0)
            {
                yield return Alert(HealthSeverity.Warning, d.Name, OperationKinds.Object, "LeftoverTemp",
                    $"{temps.Count} temp cop{(temps.Count == 1 ? "y" : "ies")} left by a killed backup or restore in '{SafePath.Printable(d.FullName)}': {string.Join(", ", temps.Take(20).Select(SafePath.Printable))}{(temps.Count > 20 ? ", ..." : "")}. Remove them with Clear-StaleArtifact -Root '{SafePath.Printable(dbRoot)}' (psbackup sweep --root) once no backup runs.");
            }
        }
    }

    private static string Hours(TimeSpan t) => t.TotalHours.ToString("0.#", CultureInfo.InvariantCulture) + " h";

    private static HealthAlert Alert(HealthSeverity severity, string ns, string kind, string code, string message, DateTimeOffset? time = null) =>
        new() { Severity = severity, Namespace = ns, Kind = HealthAlertKinds.Of(kind), Code = code, Message = message, Time = time };

    /// <summary>Export-BackupMetric: the Prometheus text exposition of the history; with
    /// <see cref="MetricExportOptions.Path"/> also written there atomically (a temp file in the same
    /// folder, then renamed over the old one) so the textfile collector never reads half a file.
    /// Null when ShouldProcess declined writing the file.</summary>
    public static async Task<MetricExportResult?> ExportMetricsAsync(MetricExportOptions options, OperationContext context)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(context);
        string? full = null;
        if (options.Path is not null)
        {
            if (string.IsNullOrWhiteSpace(options.Path))
            {
                throw new InvalidInputException("InvalidPath", "The metrics file path is empty. Give e.g. /var/lib/node_exporter/textfile_collector/psbackup.prom.", options.Path);
            }
            full = System.IO.Path.GetFullPath(options.Path);
            string dir = System.IO.Path.GetDirectoryName(full)!;
            if (!Directory.Exists(dir))
            {
                throw new NotFoundException("MetricsFolderNotFound", $"The folder '{dir}' for the metrics file does not exist. Create it (the node_exporter textfile collector directory) first.", dir);
            }
        }
        IReadOnlyList<NamespaceStatus> statuses = await ReadStatusAsync(options.Repository, options.DataDir, options.HistoryPath, options.Namespace, context, options.LiveDataDir).ConfigureAwait(false);
        string text = PrometheusText.Render(statuses, context.UtcNow);
        var result = new MetricExportResult
        {
            Path = full,
            Namespaces = statuses.Count,
            Samples = text.Split('\n').Count(l => l.Length > 0 && l[0] != '#'),
            Bytes = Encoding.UTF8.GetByteCount(text),
            Text = text,
        };
        if (full is null)
        {
            return result;
        }
        if (!context.ShouldProcess(full, "Write Prometheus metrics"))
        {
            return null;
        }
        string temp = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(full)!, $".{System.IO.Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            await File.WriteAllTextAsync(temp, text, new UTF8Encoding(false), context.CancellationToken).ConfigureAwait(false);
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            File.Delete(temp);
        }
        return result;
    }
}

/// <summary>What Export-BackupMetric reads and where it writes.</summary>
public sealed record MetricExportOptions
{
    public RepositoryTarget? Repository { get; init; }
    public string? DataDir { get; init; }
    /// <summary>A history folder (local object backups: <c>ObjectHistory</c>).</summary>
    public string? HistoryPath { get; init; }
    public IReadOnlyList<string>? Namespace { get; init; }
    /// <summary>With a repository: the data directory whose live WAL the lag is measured against.</summary>
    public string? LiveDataDir { get; init; }
    /// <summary>The .prom file; null: only return the text.</summary>
    public string? Path { get; init; }
}

/// <summary>Export-BackupMetric's result: where the text went and the text itself.</summary>
public sealed record MetricExportResult
{
    /// <summary>The file written; null when none was asked for.</summary>
    public string? Path { get; init; }
    public required int Namespaces { get; init; }
    public required int Samples { get; init; }
    public required long Bytes { get; init; }
    /// <summary>The exposition text.</summary>
    public required string Text { get; init; }
}

/// <summary>Renders namespace statuses in the Prometheus text exposition format 0.0.4.</summary>
public static class PrometheusText
{
    public static string Render(IReadOnlyList<NamespaceStatus> statuses, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(statuses);
        var sb = new StringBuilder();
        IEnumerable<KindStatus> kinds = statuses.SelectMany(s => s.Kinds.Values).ToList();
        Family(sb, "backup_success_total", "counter", "Successful operations recorded in the history.", kinds.Select(k => (Labels(k), (double)k.Successes)));
        Family(sb, "backup_failure_total", "counter", "Failed operations recorded in the history.", kinds.Select(k => (Labels(k), (double)k.Failures)));
        Family(sb, "backup_cancelled_total", "counter", "Operations cancelled (Ctrl+C, SIGTERM) recorded in the history.", kinds.Select(k => (Labels(k), (double)k.Cancellations)));
        Family(sb, "backup_last_timestamp_seconds", "gauge", "Unix time of the newest successful operation.", kinds.Where(k => k.LastSuccess is not null).Select(k => (Labels(k), (double)k.LastSuccess!.Value.ToUnixTimeMilliseconds() / 1000)));
        Family(sb, "backup_age_seconds", "gauge", "Seconds since the newest successful operation.", kinds.Where(k => k.LastSuccess is not null).Select(k => (Labels(k), Math.Max(0, (now - k.LastSuccess!.Value).TotalSeconds))));
        Family(sb, "backup_bytes_total", "counter", "Bytes written or restored by successful operations.", kinds.Select(k => (Labels(k), (double)k.Bytes)));
        Family(sb, "backup_last_bytes", "gauge", "Bytes of the newest successful operation.", kinds.Where(k => k.SuccessSizes.Count > 0).Select(k => (Labels(k), (double)k.SuccessSizes[^1])));
        Family(sb, "backup_wal_lag_seconds", "gauge", "Age of the oldest WAL record not archived yet (0: the archive is current); only where the live WAL is readable.", statuses.Where(s => s.WalLag is not null).Select(s => (NsLabel(s.Namespace), s.WalLag!.Lag.TotalSeconds)));
        Family(sb, "backup_wal_lag_records", "gauge", "WAL records (log indexes) written but not archived yet.", statuses.Where(s => s.WalLag is not null).Select(s => (NsLabel(s.Namespace), (double)s.WalLag!.Records)));
        Family(sb, "wal_gap_segments", "gauge", "WAL segments missing from the archive (0: contiguous).", statuses.Select(s => (NsLabel(s.Namespace), (double)s.MissingSegmentIds.Count)));
        Family(sb, "backup_malformed_events", "gauge", "History events that could not be read and were skipped.", statuses.Select(s => (NsLabel(s.Namespace), (double)s.MalformedEvents)));
        Family(sb, "backup_damaged", "gauge", "Backups that cannot be restored as they stand (damaged manifest, or a chunk only in missing or damaged packs).", statuses.Select(s => (NsLabel(s.Namespace), (double)s.DamagedBackups.Count)));
        Family(sb, "restore_test_last_success_timestamp_seconds", "gauge", "Unix time of the newest passed restore drill.", statuses.Where(s => s.LastDrillSuccess is not null).Select(s => (NsLabel(s.Namespace), (double)s.LastDrillSuccess!.Value.ToUnixTimeMilliseconds() / 1000)));
        Family(sb, "restore_test_success_total", "counter", "Passed restore drills.", statuses.Select(s => (NsLabel(s.Namespace), (double)s.DrillSuccesses)));
        Family(sb, "restore_test_failure_total", "counter", "Failed restore drills.", statuses.Select(s => (NsLabel(s.Namespace), (double)s.DrillFailures)));
        return sb.ToString();
    }

    private static string Labels(KindStatus k) => $"namespace=\"{Escape(k.Namespace)}\",kind=\"{Escape(k.Kind)}\"";

    private static string NsLabel(string ns) => $"namespace=\"{Escape(ns)}\"";

    /// <summary>Label value escaping of the text format: backslash, double quote and line feed.</summary>
    public static string Escape(string value) =>
        value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    private static void Family(StringBuilder sb, string name, string type, string help, IEnumerable<(string Labels, double Value)> samples)
    {
        sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n');
        sb.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
        foreach ((string labels, double value) in samples)
        {
            sb.Append(name).Append('{').Append(labels).Append("} ").Append(value.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
        }
    }
}
