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

    public static void KeyFile(TextWriter output, KeyFileInfo info, bool json)
    {
        if (json)
        {
            output.WriteLine(ToJson(info));
            return;
        }
        var table = new TableWriter().Column("Path").Column("Fingerprint").Column("Permissions").Column("CreatedAt");
        table.Row(info.Path, info.Fingerprint, info.Permissions, info.CreatedAt.ToString("u", CultureInfo.InvariantCulture));
        table.WriteTo(output);
    }

    private static void RepositorySnapshot(TextWriter output, StoreSnapshotResult result)
    {
        var table = new TableWriter().Column("Namespace").Column("Path").Column("BackupId").Column("Size", rightAlign: true)
            .Column("Stored", rightAlign: true).Column("AppliedLogIndex", rightAlign: true);
        table.Row(result.Namespace, result.Path, result.BackupId ?? "", TableWriter.Size(result.Bytes), TableWriter.Size(result.StoredBytes ?? 0),
            result.WalPosition.AppliedLogIndex?.ToString(CultureInfo.InvariantCulture) ?? "");
        table.WriteTo(output);
    }
}
