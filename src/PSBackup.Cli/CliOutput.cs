using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using PSBackup.Engine.ObjectStore;
using PSBackup.Engine.Snapshots;
using PSBackup.Engine.Wal;

namespace PSBackup.Cli;

/// <summary>How each command's result is shown: an aligned table for people (the same columns as
/// the module's default views) or JSON for scripts, with camelCase names matching the seed API
/// responses (<c>backups[].segmentId</c>, <c>path</c>, <c>bytes</c>).</summary>
internal static partial class CliOutput
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
    };

    public static string ToJson(object value) => JsonSerializer.Serialize(value, Json);

    // ---- object backup / restore ------------------------------------------------------------

    public static void ObjectBackup(TextWriter output, ObjectBackupResult result, bool json)
    {
        if (json)
        {
            output.WriteLine(ToJson(result));
            return;
        }
        if (result.Repository is not null)
        {
            RepositoryObjectBackup(output, result);
            return;
        }
        var table = new TableWriter().Column("Dir").Column("Object").Column("BackupName").Column("Consistency")
            .Column("Files", rightAlign: true).Column("Size", rightAlign: true);
        table.Row(result.Dir, result.Object, result.BackupName, result.Consistency.ToString(),
            result.FileCount.ToString(CultureInfo.InvariantCulture), TableWriter.Size(result.Bytes));
        table.WriteTo(output);
        if (result.ChangedFiles.Count > 0)
        {
            output.WriteLine();
            output.WriteLine($"Changed during the copy ({result.ChangedFiles.Count}); use --quiesce-command for a fenced copy:");
            foreach (string file in result.ChangedFiles)
            {
                output.WriteLine($"  {file}");
            }
        }
    }

    public static void ObjectRestore(TextWriter output, ObjectRestoreResult result, bool json)
    {
        if (json)
        {
            output.WriteLine(ToJson(result));
            return;
        }
        // From a repository the id is what Get-Backup and --backup-id use; locally the folder name.
        var table = new TableWriter().Column("Dir").Column("Object").Column(result.BackupId is null ? "BackupName" : "BackupId")
            .Column("Files", rightAlign: true).Column("Size", rightAlign: true).Column("ReplacedPath");
        table.Row(result.Dir, result.Object, result.BackupId ?? result.BackupName, result.FileCount.ToString(CultureInfo.InvariantCulture),
            TableWriter.Size(result.Bytes), result.ReplacedPath ?? "");
        table.WriteTo(output);
    }

    // ---- sweep ------------------------------------------------------------------------------

    public static void Sweep(TextWriter output, IReadOnlyList<StaleArtifact> artifacts, bool json)
    {
        if (json)
        {
            output.WriteLine(ToJson(new { artifacts }));
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
            output.WriteLine(ToJson(new
            {
                walDirectory = report.WalDirectory,
                segments = report.Segments,
                missingSegmentIds = report.MissingSegmentIds,
                continuityErrors = report.ContinuityErrors,
            }));
            return;
        }
        var table = new TableWriter().Column("SegmentId", rightAlign: true).Column("Sealed").Column("FirstLogIndex", rightAlign: true)
            .Column("Entries", rightAlign: true).Column("Size", rightAlign: true).Column("Valid");
        foreach (WalSegmentInfo s in report.Segments)
        {
            table.Row(s.SegmentId.ToString(CultureInfo.InvariantCulture), s.Sealed ? "True" : "False",
                s.FirstLogIndex.ToString(CultureInfo.InvariantCulture), s.EntryCount.ToString(CultureInfo.InvariantCulture),
                TableWriter.Size(s.Bytes), s.Valid ? "True" : $"False: {s.Error}");
        }
        table.WriteTo(output);
        if (report.MissingSegmentIds.Count > 0)
        {
            output.WriteLine($"WAL gap: missing segment ids {string.Join(", ", report.MissingSegmentIds)}.");
        }
        foreach (string error in report.ContinuityErrors)
        {
            output.WriteLine($"WAL gap: {error}");
        }
    }

    /// <summary>The seed's <c>POST /wal/backup</c> response shape, so <c>jq -r '.backups[-1].segmentId'</c> keeps working.</summary>
    public static void WalShip(TextWriter output, WalShipResult result, bool json)
    {
        if (result.Repository is not null)
        {
            RepositoryWalShip(output, result, json);
            return;
        }
        if (json)
        {
            output.WriteLine(ToJson(new
            {
                backups = result.Backups.Select(b => new
                {
                    segmentId = b.SegmentId,
                    path = b.Path,
                    bytes = b.Bytes,
                    sha256 = b.Sha256,
                    alreadyPresent = b.AlreadyPresent,
                }),
            }));
            return;
        }
        if (result.Backups.Count == 0)
        {
            output.WriteLine($"No sealed segments to ship for '{result.Namespace}'.");
            return;
        }
        var table = new TableWriter().Column("SegmentId", rightAlign: true).Column("Size", rightAlign: true)
            .Column("AlreadyPresent").Column("Path");
        foreach (ShippedSegment s in result.Backups)
        {
            table.Row(s.SegmentId.ToString(CultureInfo.InvariantCulture), TableWriter.Size(s.Bytes),
                s.AlreadyPresent ? "True" : "False", s.Path);
        }
        table.WriteTo(output);
    }

    // ---- snapshot ---------------------------------------------------------------------------

    /// <summary>The seed's <c>POST /btree/backup</c> response <c>{path, bytes}</c>, then what PSBackup records.</summary>
    public static void Snapshot(TextWriter output, StoreSnapshotResult result, bool json)
    {
        if (json && result.Repository is not null)
        {
            output.WriteLine(ToJson(new
            {
                path = result.Path,
                bytes = result.Bytes,
                @namespace = result.Namespace,
                repository = result.Repository,
                backupId = result.BackupId,
                storedBytes = result.StoredBytes,
                fileCount = result.FileCount,
                walPosition = result.WalPosition,
                createdAt = result.CreatedAt,
                duration = result.Duration,
            }));
            return;
        }
        if (json)
        {
            output.WriteLine(ToJson(new
            {
                path = result.Path,
                bytes = result.Bytes,
                @namespace = result.Namespace,
                manifestPath = result.ManifestPath,
                fileCount = result.FileCount,
                walPosition = result.WalPosition,
                createdAt = result.CreatedAt,
                duration = result.Duration,
            }));
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
}
