using System.Globalization;
using PSBackup.Engine.ObjectStore;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Snapshots;
using PSBackup.Engine.Wal;

namespace PSBackup.Cli;

/// <summary>Human output of the repository side: repo init, and backups stored in a repository
/// (the backup id and the bytes the run added, which is what dedup makes small).</summary>
internal static partial class CliOutput
{
    public static void RepositoryInit(TextWriter output, RepositoryInfo info, bool json)
    {
        if (json)
        {
            output.WriteLine(ToJson(info));
            return;
        }
        var table = new TableWriter().Column("Repository").Column("RepositoryId").Column("Encrypted").Column("CreatedAt");
        table.Row(info.Repository, info.RepositoryId, info.Encrypted ? $"True ({info.KeyKind})" : "False",
            info.CreatedAt.ToString("u", CultureInfo.InvariantCulture));
        table.WriteTo(output);
    }

    private static void RepositoryObjectBackup(TextWriter output, ObjectBackupResult result)
    {
        var table = new TableWriter().Column("Dir").Column("Object").Column("BackupId").Column("Consistency")
            .Column("Files", rightAlign: true).Column("Size", rightAlign: true).Column("Stored", rightAlign: true);
        table.Row(result.Dir, result.Object, result.BackupId ?? "", result.Consistency.ToString(),
            result.FileCount.ToString(CultureInfo.InvariantCulture), TableWriter.Size(result.Bytes), TableWriter.Size(result.StoredBytes ?? 0));
        table.WriteTo(output);
        output.WriteLine(result.ParentId is null
            ? $"Read {result.FilesRead} file(s); no parent backup to reuse unchanged files from."
            : $"Read {result.FilesRead} file(s); reused {result.FilesReused} unchanged since parent {result.ParentId}.");
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

    private static void RepositorySnapshot(TextWriter output, StoreSnapshotResult result)
    {
        var table = new TableWriter().Column("Namespace").Column("Path").Column("BackupId").Column("Size", rightAlign: true)
            .Column("Stored", rightAlign: true).Column("AppliedLogIndex", rightAlign: true);
        table.Row(result.Namespace, result.Path, result.BackupId ?? "", TableWriter.Size(result.Bytes), TableWriter.Size(result.StoredBytes ?? 0),
            result.WalPosition.AppliedLogIndex?.ToString(CultureInfo.InvariantCulture) ?? "");
        table.WriteTo(output);
    }

    /// <summary>The seed's <c>{"backups":[{"segmentId","path"}]}</c> shape, path being the ref in the repository.</summary>
    private static void RepositoryWalShip(TextWriter output, WalShipResult result, bool json)
    {
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
                    backupId = b.BackupId,
                }),
                repository = result.Repository,
            }));
            return;
        }
        if (result.Backups.Count == 0)
        {
            output.WriteLine($"No sealed segments to ship for '{result.Namespace}'.");
            return;
        }
        var table = new TableWriter().Column("SegmentId", rightAlign: true).Column("Size", rightAlign: true)
            .Column("Stored", rightAlign: true).Column("AlreadyPresent").Column("Path");
        foreach (ShippedSegment s in result.Backups)
        {
            table.Row(s.SegmentId.ToString(CultureInfo.InvariantCulture), TableWriter.Size(s.Bytes),
                s.StoredBytes is long stored ? TableWriter.Size(stored) : "", s.AlreadyPresent ? "True" : "False", s.Path);
        }
        table.WriteTo(output);
    }
}
