using System.Globalization;
using Microsoft.Data.Sqlite;
using PSBackup.Engine.Wal;

namespace PSBackup.Example;

/// <summary>One row of the example store's <c>kv</c> table (the value as lowercase hex, so rows
/// compare by value).</summary>
public sealed record ExampleRow(string Key, string ValueHex, long LogIndex, long UpdatedMs);

/// <summary>Everything the example store holds: its applied index and every kv row by key.</summary>
public sealed record ExampleState(long AppliedLogIndex, IReadOnlyList<ExampleRow> Rows);

/// <summary>What one <see cref="ExampleStore.Replay"/> did.</summary>
public sealed record ReplayResult(long AppliedBefore, long AppliedAfter, long RecordsApplied, int SegmentsRead);

/// <summary>The example database's B-tree store: a SQLite file <c>db/store.sqlite</c> in WAL
/// journal mode with <c>kv(key, value, log_index, updated_ms)</c> and <c>meta(key, value)</c>,
/// where <c>meta['applied_log_index']</c> is the last WAL record folded in.</summary>
public static class ExampleStore
{
    public const string DbFolder = "db";
    public const string WalFolder = "wal";
    public const string DbFileName = "store.sqlite";
    public const string AppliedKey = "applied_log_index";

    public static string DbPath(string namespaceDir) => Path.Combine(namespaceDir, DbFolder, DbFileName);

    /// <summary>Opens (creating when missing) the store, in WAL mode, with the schema in place.
    /// Unpooled, so disposing really closes the file.</summary>
    public static SqliteConnection Open(string sqlitePath)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(sqlitePath))!);
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = sqlitePath,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = false,
        }.ToString());
        connection.Open();
        Execute(connection, null, """
            PRAGMA busy_timeout = 30000;
            PRAGMA journal_mode = WAL;
            PRAGMA synchronous = FULL;
            CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB, log_index INTEGER NOT NULL, updated_ms INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
            INSERT OR IGNORE INTO meta (key, value) VALUES ('applied_log_index', 0);
            """);
        return connection;
    }

    public static long ReadAppliedLogIndex(SqliteConnection connection, SqliteTransaction? transaction = null)
    {
        using SqliteCommand command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "SELECT value FROM meta WHERE key = 'applied_log_index'";
        return command.ExecuteScalar() is long value ? value : 0;
    }

    /// <summary>Applies records (log index ascending, each greater than the applied index) in one
    /// transaction and advances the applied index to the last of them.</summary>
    public static void ApplyBatch(SqliteConnection connection, IReadOnlyList<(long LogIndex, ExampleRecord Record)> records)
    {
        if (records.Count == 0)
        {
            return;
        }
        using SqliteTransaction transaction = connection.BeginTransaction();
        long applied = ReadAppliedLogIndex(connection, transaction);
        foreach ((long logIndex, ExampleRecord record) in records)
        {
            if (logIndex <= applied)
            {
                continue;
            }
            Apply(connection, transaction, logIndex, record);
            applied = logIndex;
        }
        SetApplied(connection, transaction, applied);
        transaction.Commit();
    }

    /// <summary>Applies one record. Idempotent: a put or delete never undoes a newer write.</summary>
    public static void Apply(SqliteConnection connection, SqliteTransaction transaction, long logIndex, ExampleRecord record)
    {
        using SqliteCommand command = connection.CreateCommand();
        command.Transaction = transaction;
        if (record.Op == ExampleOp.Put)
        {
            command.CommandText = """
                INSERT INTO kv (key, value, log_index, updated_ms) VALUES ($k, $v, $i, $t)
                ON CONFLICT(key) DO UPDATE SET value = excluded.value, log_index = excluded.log_index, updated_ms = excluded.updated_ms
                WHERE excluded.log_index > kv.log_index
                """;
            command.Parameters.AddWithValue("$v", record.Value);
            command.Parameters.AddWithValue("$t", record.TimestampUnixMs);
        }
        else
        {
            command.CommandText = "DELETE FROM kv WHERE key = $k AND log_index < $i";
        }
        command.Parameters.AddWithValue("$k", record.Key);
        command.Parameters.AddWithValue("$i", logIndex);
        command.ExecuteNonQuery();
    }

    public static void SetApplied(SqliteConnection connection, SqliteTransaction transaction, long logIndex) =>
        Execute(connection, transaction, $"UPDATE meta SET value = {logIndex.ToString(CultureInfo.InvariantCulture)} WHERE key = 'applied_log_index'");

    /// <summary>The database's start-up replay: reads <c>wal/</c> in segment order and applies every
    /// record with a log index above the store's applied index, one transaction per segment.
    /// Idempotent. A hole between the applied index and the WAL (a missing record) is an
    /// <see cref="InvalidDataException"/>, as a real database would refuse to start.</summary>
    public static ReplayResult Replay(string namespaceDir)
    {
        string walDir = Path.Combine(namespaceDir, WalFolder);
        using SqliteConnection connection = Open(DbPath(namespaceDir));
        long before = ReadAppliedLogIndex(connection);
        long expected = before + 1;
        long appliedCount = 0;
        int segments = 0;
        var files = Directory.Exists(walDir)
            ? Directory.EnumerateFiles(walDir)
                .Select(f => (Ok: WalFormat.TryParseSegmentFileName(Path.GetFileName(f), out long id), Id: id, Path: f))
                .Where(s => s.Ok)
                .OrderBy(s => s.Id)
                .ToList()
            : [];
        foreach (var segment in files)
        {
            segments++;
            using SqliteTransaction transaction = connection.BeginTransaction();
            bool any = false;
            foreach (WalRecord walRecord in WalSegmentReader.ReadRecords(segment.Path))
            {
                if (walRecord.LogIndex < expected)
                {
                    continue;
                }
                if (walRecord.LogIndex > expected)
                {
                    throw new InvalidDataException(
                        $"WAL gap: the store needs log index {expected} next but segment '{segment.Path}' continues at {walRecord.LogIndex}. Restore the missing segments.");
                }
                Apply(connection, transaction, walRecord.LogIndex, ExampleRecord.Decode(walRecord.Data));
                expected++;
                appliedCount++;
                any = true;
            }
            if (any)
            {
                SetApplied(connection, transaction, expected - 1);
            }
            transaction.Commit();
        }
        return new ReplayResult(before, expected - 1, appliedCount, segments);
    }

    /// <summary>The store's full contents, rows ordered by key. Opened read-write (never created)
    /// so the last close removes the -wal/-shm files; no byte of the database changes.</summary>
    public static ExampleState ReadState(string sqlitePath)
    {
        if (!File.Exists(sqlitePath))
        {
            throw new FileNotFoundException($"No example store at '{sqlitePath}'.", sqlitePath);
        }
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = sqlitePath,
            Mode = SqliteOpenMode.ReadWrite,
            Pooling = false,
        }.ToString());
        connection.Open();
        using SqliteTransaction transaction = connection.BeginTransaction(deferred: true);
        long applied = ReadAppliedLogIndex(connection, transaction);
        var rows = new List<ExampleRow>();
        using (SqliteCommand command = connection.CreateCommand())
        {
            command.Transaction = transaction;
            command.CommandText = "SELECT key, value, log_index, updated_ms FROM kv ORDER BY key";
            using SqliteDataReader reader = command.ExecuteReader();
            while (reader.Read())
            {
                byte[] value = reader.IsDBNull(1) ? [] : (byte[])reader.GetValue(1);
                rows.Add(new ExampleRow(reader.GetString(0), Convert.ToHexString(value).ToLowerInvariant(), reader.GetInt64(2), reader.GetInt64(3)));
            }
        }
        transaction.Commit();
        return new ExampleState(applied, rows);
    }

    private static void Execute(SqliteConnection connection, SqliteTransaction? transaction, string sql)
    {
        using SqliteCommand command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }
}
