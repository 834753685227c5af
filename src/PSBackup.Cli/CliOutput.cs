using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using PSBackup.Engine;
using PSBackup.Engine.ObjectStore;
using PSBackup.Engine.Retention;
using PSBackup.Engine.Snapshots;
using PSBackup.Engine.Wal;

namespace PSBackup.Cli;

/// <summary>How each command's result is shown: an aligned table for people (the same columns as
/// the module's default views) or JSON for scripts, with camelCase names matching the seed API
/// responses (<c>backups[].segmentId</c>, <c>path</c>, <c>bytes</c>).</summary>
internal static partial class CliOutput
{
    /// <summary>The options of every JSON output: resolved through <see cref="CliJsonContext"/> only
    /// (no reflection fallback, so Native AOT and the tests see the same types), enums as camelCase
    /// strings: one converter per enum an output can hold (the non-generic converter needs
    /// reflection); CliJsonContextTests fails when an output type reaches an enum not listed here.</summary>
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        TypeInfoResolver = CliJsonContext.Default,
        Converters =
        {
            new JsonStringEnumConverter<BackupConsistency>(JsonNamingPolicy.CamelCase),
            new JsonStringEnumConverter<WalCrcKind>(JsonNamingPolicy.CamelCase),
            new JsonStringEnumConverter<WalPayloadFormat>(JsonNamingPolicy.CamelCase),
            new JsonStringEnumConverter<RetentionDecision>(JsonNamingPolicy.CamelCase),
        },
    };

    /// <summary>The value as indented JSON through its registered metadata; a type not in
    /// <see cref="CliJsonContext"/> throws <see cref="NotSupportedException"/>.</summary>
    public static string ToJson<T>(T value) => JsonSerializer.Serialize(value, TypeInfo<T>(Json));

    private static JsonTypeInfo<T> TypeInfo<T>(JsonSerializerOptions options) => (JsonTypeInfo<T>)options.GetTypeInfo(typeof(T));

    /// <summary>One object per line (JSON Lines), for output that streams.</summary>
    private static readonly JsonSerializerOptions JsonLines = new(Json) { WriteIndented = false, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    // ---- object backup / restore ------------------------------------------------------------

    /// <summary>Object backups: one table row each (a repository backup shows its id and the bytes it
    /// added), then the files that changed during each copy. JSON: the one result, or an array
    /// when <paramref name="list"/> (the command named objects by wildcard).</summary>
    public static void ObjectBackups(TextWriter output, IReadOnlyList<ObjectBackupResult> results, bool json, bool list)
    {
        if (json)
        {
            JsonOneOrList(output, results, list);
            return;
        }
        if (results.Count == 0)
        {
            return;
        }
        bool repository = results[0].Repository is not null;
        var table = new TableWriter().Column("Dir").Column("Object").Column(repository ? "BackupId" : "BackupName").Column("Consistency")
            .Column("Files", rightAlign: true).Column("Size", rightAlign: true);
        if (repository)
        {
            table.Column("Stored", rightAlign: true);
        }
        foreach (ObjectBackupResult r in results)
        {
            var cells = new List<string> { r.Dir, r.Object, repository ? r.BackupId ?? "" : r.BackupName, r.Consistency.ToString(),
                r.FileCount.ToString(CultureInfo.InvariantCulture), TableWriter.Size(r.Bytes) };
            if (repository)
            {
                cells.Add(TableWriter.Size(r.StoredBytes ?? 0));
            }
            table.Row([.. cells]);
        }
        table.WriteTo(output);
        foreach (ObjectBackupResult r in repository ? results : [])
        {
            string reuse = r.ParentId is null
                ? $"Read {r.FilesRead} file(s); no parent backup to reuse unchanged files from."
                : $"Read {r.FilesRead} file(s); reused {r.FilesReused} unchanged since parent {r.ParentId}.";
            output.WriteLine(results.Count > 1 ? $"{r.Dir}/{r.Object}: {reuse}" : reuse);
        }
        foreach (string temp in results.SelectMany(r => r.StaleTemps))
        {
            output.WriteLine($"warning: '{temp}' is a temp copy an interrupted run left; remove it with 'psbackup sweep'.");
        }
        foreach (ObjectBackupResult r in results.Where(r => r.ChangedFiles.Count > 0))
        {
            output.WriteLine();
            output.WriteLine($"{r.Dir}/{r.Object}: changed during the copy ({r.ChangedFiles.Count}); use --quiesce-command for a fenced copy:");
            foreach (string file in r.ChangedFiles)
            {
                output.WriteLine($"  {file}");
            }
        }
    }

    /// <summary>JSON of a per-object command: an array when objects were named by wildcard (also
    /// empty), else the one result (nothing when -WhatIf declined it).</summary>
    private static void JsonOneOrList<T>(TextWriter output, IReadOnlyList<T> results, bool list) where T : class
    {
        if (list)
        {
            output.WriteLine(ToJson(results));
        }
        else if (results.Count > 0)
        {
            output.WriteLine(ToJson(results[0]));
        }
    }

    /// <summary>Object restores, one row each; JSON as <see cref="ObjectBackups"/>.</summary>
    public static void ObjectRestores(TextWriter output, IReadOnlyList<ObjectRestoreResult> results, bool json, bool list)
    {
        if (json)
        {
            JsonOneOrList(output, results, list);
            return;
        }
        if (results.Count == 0)
        {
            return;
        }
        // From a repository the id is what Get-Backup and --backup-id use; locally the folder name.
        bool repository = results[0].BackupId is not null;
        var table = new TableWriter().Column("Dir").Column("Object").Column(repository ? "BackupId" : "BackupName")
            .Column("Files", rightAlign: true).Column("Size", rightAlign: true).Column("ReplacedPath");
        foreach (ObjectRestoreResult r in results)
        {
            table.Row(r.Dir, r.Object, r.BackupId ?? r.BackupName, r.FileCount.ToString(CultureInfo.InvariantCulture),
                TableWriter.Size(r.Bytes), r.ReplacedPath ?? "");
        }
        table.WriteTo(output);
    }

    // ---- sweep ------------------------------------------------------------------------------

    public static void Sweep(TextWriter output, IReadOnlyList<StaleArtifact> artifacts, bool json)
    {
        if (json)
        {
            output.WriteLine(ToJson(new SweepJson(artifacts)));
            return;
        }
        if (artifacts.Count == 0)
        {
            output.WriteLine("No stale artifacts.");
            return;
        }
        var table = new TableWriter().Column("Removed").Column("Type").Column("Size", rightAlign: true).Column("Path");
        foreach (StaleArtifact a in artifacts)
        {
            table.Row(a.Removed ? "True" : "False", a.IsDirectory ? "Directory" : "File", TableWriter.Size(a.Bytes), a.Path);
        }
        table.WriteTo(output);
    }

    // ---- wal --------------------------------------------------------------------------------

    public static void WalList(TextWriter output, WalDirectoryReport report, bool json)
    {
        if (json)
        {
            output.WriteLine(ToJson(new WalListJson(report.WalDirectory, report.Naming, report.Segments, report.MissingSegmentIds,
                report.ContinuityErrors, report.Warnings, report.OtherFiles)));
            return;
        }
        var table = new TableWriter().Column("SegmentId", rightAlign: true).Column("Name").Column("V", rightAlign: true).Column("Sealed")
            .Column("FirstLogIndex", rightAlign: true).Column("LastLogIndex", rightAlign: true).Column("FirstRecordTime").Column("LastRecordTime")
            .Column("Entries", rightAlign: true).Column("Size", rightAlign: true).Column("Valid");
        foreach (WalSegmentInfo s in report.Segments)
        {
            table.Row(s.SegmentId.ToString(CultureInfo.InvariantCulture), s.FileName, s.Version.ToString(CultureInfo.InvariantCulture), s.Sealed ? "True" : "False",
                s.FirstLogIndex.ToString(CultureInfo.InvariantCulture), s.LastLogIndex?.ToString(CultureInfo.InvariantCulture) ?? "",
                RecordTime(s.FirstRecordTime), RecordTime(s.LastRecordTime), s.EntryCount.ToString(CultureInfo.InvariantCulture),
                TableWriter.Size(s.Bytes), s.Valid ? (s.TornTail ? "True (torn tail)" : "True") : $"False: {s.Error}");
        }
        table.WriteTo(output);
        foreach (string warning in report.Warnings)
        {
            output.WriteLine($"Warning: {warning}");
        }
        if (report.OtherFiles.Count > 0)
        {
            output.WriteLine($"Not segments (not archived): {string.Join(", ", report.OtherFiles)}");
        }
        if (report.MissingSegmentIds.Count > 0)
        {
            output.WriteLine($"WAL gap: missing segment ids {string.Join(", ", report.MissingSegmentIds)}.");
        }
        foreach (string error in report.ContinuityErrors)
        {
            output.WriteLine($"WAL gap: {error}");
        }
    }

    private static string RecordTime(DateTimeOffset? t) =>
        t is { } v ? v.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture) : "";

    /// <summary>The seed's <c>POST /wal/backup</c> response shape, so <c>jq -r '.backups[-1].segmentId'</c>
    /// keeps working; shipped to a repository, each entry adds its <c>backupId</c> (its path is the
    /// ref there), the response the repository, and the table the bytes each segment stored.</summary>
    public static void WalShip(TextWriter output, WalShipResult result, bool json)
    {
        bool repository = result.Repository is not null;
        if (json)
        {
            // Partials stay out of "backups": the seed's scripts pass .backups[-1].segmentId back as
            // afterSegmentId, which must name a sealed segment.
            output.WriteLine(ToJson(new SeedShipResponse(
                result.Backups.Where(b => !b.Partial).Select(b => new SeedShippedSegment(b.SegmentId, b.Path, b.Bytes, b.Sha256, b.AlreadyPresent, repository ? b.BackupId : null)).ToList(),
                result.Repository)
            {
                Partials = result.Backups.Any(b => b.Partial)
                    ? result.Backups.Where(b => b.Partial).Select(b => new ShippedPartial(b.SegmentId, b.Path, b.Bytes, b.Sha256, b.AlreadyPresent, repository ? b.BackupId : null,
                        b.ObservedAt, b.EntryCount, b.LastLogIndex, b.LastRecordTime, b.StoredBytes)).ToList()
                    : null,
            }));
            return;
        }
        if (result.Backups.Count == 0)
        {
            output.WriteLine($"No sealed segments to ship for '{result.Namespace}'.");
            return;
        }
        var table = new TableWriter().Column("SegmentId", rightAlign: true).Column("Size", rightAlign: true);
        if (repository)
        {
            table.Column("Stored", rightAlign: true);
        }
        table.Column("Kind").Column("AlreadyPresent").Column("Path");
        foreach (ShippedSegment s in result.Backups)
        {
            var cells = new List<string> { s.SegmentId.ToString(CultureInfo.InvariantCulture), TableWriter.Size(s.Bytes) };
            if (repository)
            {
                cells.Add(s.StoredBytes is long stored ? TableWriter.Size(stored) : "");
            }
            cells.Add(s.Partial ? $"partial to {s.LastLogIndex?.ToString(CultureInfo.InvariantCulture) ?? "?"}" : "sealed");
            cells.Add(s.AlreadyPresent ? "True" : "False");
            cells.Add(s.Path);
            table.Row([.. cells]);
        }
        table.WriteTo(output);
    }

    /// <summary>One item a follower (<c>wal ship --follow</c>) shipped, as it happens: a JSON line
    /// with --json, else one text line; flushed, so a log or a pipe sees it at once.</summary>
    public static void WalShipped(TextWriter output, ShippedSegment s, bool json)
    {
        lock (output)
        {
            if (json)
            {
                output.WriteLine(JsonSerializer.Serialize(s, TypeInfo<ShippedSegment>(JsonLines)));
            }
            else
            {
                string what = s.Partial
                    ? $"partial of segment {s.SegmentId}: {s.EntryCount} record(s) to log index {s.LastLogIndex}, observed {s.ObservedAt:yyyy-MM-ddTHH:mm:ss.fffZ}"
                    : $"segment {s.SegmentId}" + (s.LastLogIndex is long last ? $" to log index {last}" : "");
                output.WriteLine($"{what}: {TableWriter.Size(s.Bytes)}{(s.StoredBytes is long stored ? $", {TableWriter.Size(stored)} stored" : "")} -> {s.Path}");
            }
            output.Flush();
        }
    }

    internal sealed record SeedShipResponse(
        IReadOnlyList<SeedShippedSegment> Backups,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Repository)
    {
        /// <summary>The active segment's valid prefix, when one was shipped (not a seed field).</summary>
        [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
        public IReadOnlyList<ShippedPartial>? Partials { get; init; }
    }

    internal sealed record ShippedPartial(long SegmentId, string Path, long Bytes, string Sha256, bool AlreadyPresent,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? BackupId,
        DateTimeOffset? ObservedAt, long? EntryCount, long? LastLogIndex,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] DateTimeOffset? LastRecordTime,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] long? StoredBytes);

    internal sealed record SeedShippedSegment(long SegmentId, string Path, long Bytes, string Sha256, bool AlreadyPresent,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? BackupId);

    // ---- snapshot ---------------------------------------------------------------------------

    /// <summary>The seed's <c>POST /btree/backup</c> response <c>{path, bytes}</c>, then what PSBackup records.</summary>
    public static void Snapshot(TextWriter output, StoreSnapshotResult result, bool json)
    {
        if (json && result.Repository is not null)
        {
            output.WriteLine(ToJson(new RepositorySnapshotJson(result.Path, result.Bytes, result.Namespace, result.Repository, result.BackupId,
                result.StoredBytes, result.FileCount, result.WalPosition, result.CreatedAt, TimeSpan.FromSeconds(result.Duration))));
            return;
        }
        if (json)
        {
            output.WriteLine(ToJson(new LocalSnapshotJson(result.Path, result.Bytes, result.Namespace, result.ManifestPath, result.FileCount,
                result.WalPosition, result.CreatedAt, TimeSpan.FromSeconds(result.Duration))));
            return;
        }
        if (result.Repository is not null)
        {
            RepositorySnapshot(output, result);
            return;
        }
        var table = new TableWriter().Column("Namespace").Column("Path").Column("Size", rightAlign: true)
            .Column("Files", rightAlign: true).Column("CreatedAt");
        table.Row(result.Namespace, result.Path, TableWriter.Size(result.Bytes), result.FileCount.ToString(CultureInfo.InvariantCulture),
            result.CreatedAt.ToString("u", CultureInfo.InvariantCulture));
        table.WriteTo(output);
    }

    // ---- JSON shapes ------------------------------------------------------------------------
    // Named for CliJsonContext (build-time metadata); the property order is the JSON's order.

    /// <summary><c>sweep --json</c>.</summary>
    internal sealed record SweepJson(IReadOnlyList<StaleArtifact> Artifacts);

    /// <summary><c>wal list --json</c>: the report without its derived <c>HasGap</c>.</summary>
    internal sealed record WalListJson(string WalDirectory, string? Naming, IReadOnlyList<WalSegmentInfo> Segments, IReadOnlyList<long> MissingSegmentIds,
        IReadOnlyList<string> ContinuityErrors, IReadOnlyList<string> Warnings, IReadOnlyList<string> OtherFiles);

    /// <summary><c>snapshot create --repository --json</c>: the seed's <c>{path, bytes}</c> first.</summary>
    internal sealed record RepositorySnapshotJson(string Path, long Bytes, string Namespace, string? Repository, string? BackupId, long? StoredBytes,
        int FileCount, WalPosition WalPosition, DateTimeOffset CreatedAt, TimeSpan Duration);

    /// <summary><c>snapshot create --json</c> to a local path.</summary>
    internal sealed record LocalSnapshotJson(string Path, long Bytes, string Namespace, string? ManifestPath, int FileCount,
        WalPosition WalPosition, DateTimeOffset CreatedAt, TimeSpan Duration);
}
