using System.Text.RegularExpressions;
using Microsoft.Data.Sqlite;

namespace PSBackup.Engine.Snapshots;

/// <summary>One file of a store as a snapshot sees it: its path relative to <c>db/</c>, where to
/// read it now, and whether it is a SQLite database.</summary>
public sealed record StoreFile(string RelativePath, string FullPath, bool IsSqlite);

/// <summary>Knows one kind of store well enough to read its applied (checkpoint) log index: the
/// last WAL record already folded into the store. A snapshot asks the adapters about its own copy
/// of the store, so the index it records is exactly what the snapshot contains.</summary>
public interface IStoreAdapter
{
    /// <summary>A short name for messages and logs.</summary>
    string Name { get; }

    /// <summary>Whether these files look like a store this adapter understands. Must be cheap
    /// and must not write.</summary>
    bool Recognizes(IReadOnlyList<StoreFile> files);

    /// <summary>The store's applied log index, or null when the store does not record one.</summary>
    long? ReadAppliedLogIndex(IReadOnlyList<StoreFile> files);
}

/// <summary>The adapters a snapshot tries, in order, when the caller names none.</summary>
public static class StoreAdapters
{
    public static IReadOnlyList<IStoreAdapter> Default { get; } = [new SqliteMetaTableAdapter()];
}

/// <summary>A SQLite store that keeps its applied log index as an integer row of a key/value
/// table, e.g. the example database's <c>meta(key, value)</c> with key <c>applied_log_index</c>.</summary>
public sealed partial class SqliteMetaTableAdapter : IStoreAdapter
{
    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
    private static partial Regex Identifier();

    public SqliteMetaTableAdapter(string table = "meta", string key = "applied_log_index")
    {
        if (!Identifier().IsMatch(table))
        {
            throw new InvalidInputException("InvalidName", $"The SQLite table name '{SafePath.Printable(table)}' is not a plain identifier. Use letters, digits and '_'.", table);
        }
        Table = table;
        Key = key;
    }

    public string Table { get; }
    public string Key { get; }
    public string Name => $"sqlite:{Table}.{Key}";

    public bool Recognizes(IReadOnlyList<StoreFile> files) => files.Any(f => f.IsSqlite);

    public long? ReadAppliedLogIndex(IReadOnlyList<StoreFile> files)
    {
        foreach (StoreFile file in files.Where(f => f.IsSqlite).OrderBy(f => f.RelativePath, StringComparer.Ordinal))
        {
            // Read-write (never create) and unpooled: the last close removes the -wal/-shm files
            // that opening a WAL-mode database creates, and changes no byte of the database.
            using var connection = new SqliteConnection(SqliteStore.ConnectionString(file.FullPath, SqliteOpenMode.ReadWrite));
            connection.Open();
            using SqliteCommand exists = connection.CreateCommand();
            exists.CommandText = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = $t";
            exists.Parameters.AddWithValue("$t", Table);
            if (Convert.ToInt64(exists.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture) == 0)
            {
                continue;
            }
            using SqliteCommand read = connection.CreateCommand();
            read.CommandText = $"SELECT value FROM \"{Table}\" WHERE key = $k";
            read.Parameters.AddWithValue("$k", Key);
            object? value = read.ExecuteScalar();
            if (value is long l)
            {
                return l;
            }
        }
        return null;
    }
}

/// <summary>SQLite helpers for snapshots: recognising a database file and copying it with the
/// online backup API.</summary>
public static class SqliteStore
{
    private static readonly byte[] HeaderMagic = "SQLite format 3\0"u8.ToArray();

    /// <summary>Siblings of a database that hold no state of their own once the database has
    /// been copied through SQLite (their content is in the copy).</summary>
    public static readonly IReadOnlyList<string> SidecarSuffixes = ["-wal", "-shm", "-journal"];

    public static string ConnectionString(string path, SqliteOpenMode mode) =>
        new SqliteConnectionStringBuilder { DataSource = path, Mode = mode, Pooling = false }.ToString();

    /// <summary>True when the file starts with the 16-byte SQLite header.</summary>
    public static bool IsDatabase(string path)
    {
        Span<byte> header = stackalloc byte[16];
        using var stream = FileCopy.OpenRead(path);
        int read = 0;
        while (read < header.Length)
        {
            int n = stream.Read(header[read..]);
            if (n == 0)
            {
                return false;
            }
            read += n;
        }
        return header.SequenceEqual(HeaderMagic);
    }

    /// <summary>Copies a live database to a new file with sqlite3_backup in one step, i.e. under
    /// one read transaction: a writer (WAL mode) keeps writing and the copy is the database as of
    /// one commit. The copy is fsynced.</summary>
    public static void Backup(string source, string destination)
    {
        if (File.Exists(destination))
        {
            throw new IOException($"'{destination}' already exists.");
        }
        using (var src = new SqliteConnection(ConnectionString(source, SqliteOpenMode.ReadWrite)))
        using (var dst = new SqliteConnection(ConnectionString(destination, SqliteOpenMode.ReadWriteCreate)))
        {
            src.Open();
            Execute(src, "PRAGMA busy_timeout = 30000");
            dst.Open();
            // No journal file beside the copy: it is a fresh temp file, so a failed copy is
            // simply deleted.
            Execute(dst, "PRAGMA journal_mode = MEMORY");
            src.BackupDatabase(dst);
        }
        using var stream = new FileStream(destination, FileMode.Open, FileAccess.ReadWrite, FileShare.Read);
        stream.Flush(flushToDisk: true);
    }

    private static void Execute(SqliteConnection connection, string sql)
    {
        using SqliteCommand command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteScalar();
    }
}
