using Microsoft.Data.Sqlite;
using PSBackup.Engine.Snapshots;
using PSBackup.Example;

namespace PSBackup.Engine.Tests.Snapshots;

/// <summary>An IProgress that runs its callback synchronously on the reporting thread
/// (Progress&lt;T&gt; posts to the thread pool, too late to cancel deterministically).</summary>
internal sealed class CallbackProgress(Action<OperationProgress> callback) : IProgress<OperationProgress>
{
    public void Report(OperationProgress value) => callback(value);
}

internal static class SnapshotTestSupport
{
    /// <summary>A namespace whose store is one example SQLite database holding <paramref name="keys"/>
    /// puts (log indexes 1..keys, all applied).</summary>
    public static string CreateSqliteNamespace(string dataDir, string ns, int keys)
    {
        string nsDir = Path.Combine(dataDir, ns);
        using SqliteConnection connection = ExampleStore.Open(ExampleStore.DbPath(nsDir));
        ExampleStore.ApplyBatch(connection, Enumerable.Range(1, keys)
            .Select(i => ((long)i, ExampleRecord.Put($"k{i:000000}", [(byte)i, 1, 2, 3], 1_000 + i)))
            .ToList());
        return nsDir;
    }

    /// <summary>A namespace whose store is several plain (non-SQLite) files in nested folders.</summary>
    public static string CreateFileNamespace(string dataDir, string ns, int size = 64 * 1024)
    {
        string db = Path.Combine(dataDir, ns, "db");
        Directory.CreateDirectory(Path.Combine(db, "sub", "deeper"));
        var random = new Random(5);
        foreach (string rel in new[] { "data.mdb", "lock.mdb", "sub/part-1.bin", "sub/deeper/part-2.bin" })
        {
            byte[] bytes = new byte[rel == "lock.mdb" ? 128 : size];
            random.NextBytes(bytes);
            File.WriteAllBytes(Path.Combine(db, rel), bytes);
        }
        return Path.Combine(dataDir, ns);
    }

    public static string IntegrityCheck(string sqlitePath)
    {
        using var connection = new SqliteConnection(SqliteStore.ConnectionString(sqlitePath, SqliteOpenMode.ReadWrite));
        connection.Open();
        using SqliteCommand command = connection.CreateCommand();
        command.CommandText = "PRAGMA integrity_check";
        return Convert.ToString(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture) ?? "";
    }

    public static async Task<BackupManifest> VerifyAsync(StoreSnapshotResult result)
    {
        BackupManifest manifest = ManifestIO.Read(result.ManifestPath!);
        await ManifestIO.VerifyAsync(result.Path, manifest, OperationContext.Default, "verify");
        return manifest;
    }

    public static void AssertNothingLeft(string finalPath)
    {
        Assert.False(File.Exists(finalPath) || Directory.Exists(finalPath), $"'{finalPath}' exists");
        Assert.False(File.Exists(finalPath + ".tmp") || Directory.Exists(finalPath + ".tmp"), $"'{finalPath}.tmp' exists");
        Assert.False(File.Exists(finalPath + ".manifest.json"), $"'{finalPath}.manifest.json' exists");
    }
}
