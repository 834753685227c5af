using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using PSBackup.Engine.Wal;

namespace PSBackup.Engine.Snapshots;

/// <summary>The kinds of B-tree store a namespace can have, as recorded in snapshot manifests.</summary>
public static class StoreEngines
{
    /// <summary>UnisonDB engine BOLT: one bbolt file <c>&lt;ns&gt;/unison.db</c>.</summary>
    public const string Bolt = "bolt";
    /// <summary>UnisonDB engine LMDB: the folder <c>&lt;ns&gt;/unison.db</c> holding data.mdb (+ lock.mdb).</summary>
    public const string Lmdb = "lmdb";
    /// <summary>Files under <c>&lt;ns&gt;/db/</c> (the example database's SQLite store, other engines).</summary>
    public const string DbFolder = "db";
    /// <summary>No store at all: a restore from the empty-store base lays out only <c>wal/</c>
    /// (<see cref="Restore.RestorableSnapshot.EmptyStore"/>).</summary>
    public const string None = "none";

    /// <summary>Where a snapshot of this engine is laid out, relative to the namespace folder: the
    /// folder its manifest paths are relative to.</summary>
    public static string PlacementFolder(string? engine, string namespaceDir) => engine switch
    {
        Bolt => namespaceDir,
        Lmdb => Path.Combine(namespaceDir, UnisonStore.StoreName),
        _ => Path.Combine(namespaceDir, "db"),
    };

    /// <summary>The entry a restore replaces: <c>unison.db</c> (file or folder) or <c>db</c>.</summary>
    public static string RestoredEntry(string? engine) => engine is Bolt or Lmdb ? UnisonStore.StoreName : "db";

    /// <summary>UnisonDB's name for the engine (store-gen/store-recover <c>-engine</c>).</summary>
    public static string? UnisonName(string? engine) => engine switch { Bolt => "BOLT", Lmdb => "LMDB", _ => null };
}

/// <summary>UnisonDB's WAL checkpoint as stored in the store (dbkernel/internal/metadata.go): the
/// position of the last record applied to the B-tree, which start-up recovery reads and skips.
/// <see cref="LogIndex"/> and <see cref="Hlc"/> are that record's, read from the WAL (null when the
/// segment was not there to read).</summary>
public sealed record StoreCheckpoint(long RecordsProcessed, long SegmentId, long Offset, long RaftIndex, long RaftTerm)
{
    public long? LogIndex { get; init; }
    public long? Hlc { get; init; }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{SegmentId}:{Offset} (records processed {RecordsProcessed}{(LogIndex is long l ? $", log index {l}" : "")})");
}

/// <summary>A namespace's store as found on disk.</summary>
public sealed record DiscoveredStore(string Engine, string Path);

/// <summary>UnisonDB's store facts (dbkernel/common.go, pkg/kvdrivers): where the store lives, how to
/// recognise it by content, the metadata bucket and keys, the checkpoint encoding.</summary>
public static class UnisonStore
{
    public const string StoreName = "unison.db";
    public const string MetadataBucket = "sys.kv.unison.db.wal.metadata.bucket";
    public const string CheckpointKey = "sys.kv.unisondb.key.wal.checkpoint";
    public const string EngineModeKey = "sys.kv.unisondb.key.engine.mode";
    public const uint LmdbMagic = 0xBEEFC0DE;

    /// <summary>Finds the store of a namespace folder by content: <c>unison.db</c> as a bbolt file
    /// or as an LMDB folder (data.mdb with LMDB's meta page), else <c>db/</c>. Anything else is an
    /// error naming what was found.</summary>
    public static DiscoveredStore Discover(string namespaceDir, string @namespace)
    {
        string unison = Path.Combine(namespaceDir, StoreName);
        string db = Path.Combine(namespaceDir, "db");
        if (File.Exists(unison))
        {
            RejectLink(unison, @namespace);
            byte[] head;
            try
            {
                head = ReadHead(unison, 32);
            }
            catch (IOException) when (File.Exists(unison))
            {
                // A bbolt writer's exclusive flock also refuses the shared lock .NET takes for a
                // read: the file is held by a running server. The copy says so.
                return new DiscoveredStore(StoreEngines.Bolt, unison);
            }
            if (BoltFile.LooksLikeBolt(head))
            {
                return new DiscoveredStore(StoreEngines.Bolt, unison);
            }
            throw new InvalidInputException("UnknownStore",
                $"'{unison}' of namespace '{@namespace}' is a file but not a bbolt database ({Describe(head)}). UnisonDB's BOLT engine keeps one bbolt file there; check that this is a UnisonDB data directory.", unison);
        }
        if (Directory.Exists(unison))
        {
            RejectLink(unison, @namespace);
            string data = Path.Combine(unison, "data.mdb");
            if (File.Exists(data))
            {
                byte[] dataHead = ReadHead(data, 32);
                if (IsLmdbData(dataHead))
                {
                    return new DiscoveredStore(StoreEngines.Lmdb, unison);
                }
                throw new InvalidInputException("UnknownStore",
                    $"'{data}' of namespace '{@namespace}' is not an LMDB data file ({Describe(dataHead)}; an LMDB environment starts with a meta page carrying the magic 0xBEEFC0DE). UnisonDB's LMDB engine keeps data.mdb and lock.mdb in '{unison}'; check the data directory, or restore the store from a snapshot.", data);
            }
            string found = string.Join(", ", Directory.EnumerateFileSystemEntries(unison).Select(System.IO.Path.GetFileName).Order(StringComparer.Ordinal).Take(8));
            throw new InvalidInputException("UnknownStore",
                $"'{unison}' of namespace '{@namespace}' is a folder but holds no LMDB data.mdb ({(found.Length == 0 ? "it is empty" : "found: " + found)}). UnisonDB's LMDB engine keeps data.mdb and lock.mdb there; check the data directory.", unison);
        }
        if (Directory.Exists(db))
        {
            return new DiscoveredStore(StoreEngines.DbFolder, db);
        }
        string present = Directory.Exists(namespaceDir)
            ? string.Join(", ", Directory.EnumerateFileSystemEntries(namespaceDir).Select(System.IO.Path.GetFileName).Order(StringComparer.Ordinal).Take(10))
            : "";
        throw new NotFoundException("StoreNotFound",
            $"Namespace '{@namespace}' has no store: neither '{unison}' (UnisonDB: a bbolt file or an LMDB folder) nor a 'db' folder exists in '{namespaceDir}' ({(present.Length == 0 ? "it is empty" : "found: " + present)}). Check the data directory, or start the database once so it creates its store.", namespaceDir);
    }

    /// <summary>True when the bytes start with an LMDB meta page (page header, then magic
    /// 0xBEEFC0DE at offset 16; mdb.c MDB_MAGIC and MDB_meta).</summary>
    public static bool IsLmdbData(ReadOnlySpan<byte> head) =>
        head.Length >= 24 && BinaryPrimitives.ReadUInt32LittleEndian(head[16..]) == LmdbMagic;

    /// <summary>Which engine a single snapshot file is, by content; null when neither.</summary>
    public static string? EngineOfFile(string path)
    {
        byte[] head = ReadHead(path, 32);
        return BoltFile.LooksLikeBolt(head) ? StoreEngines.Bolt : IsLmdbData(head) ? StoreEngines.Lmdb : null;
    }

    /// <summary>Decodes the checkpoint value; readers accept 20 bytes or more (raft fields 0 then),
    /// as UnmarshalMetadata does.</summary>
    public static StoreCheckpoint? ParseCheckpoint(ReadOnlySpan<byte> value)
    {
        if (value.Length < 20)
        {
            return null;
        }
        return new StoreCheckpoint(
            (long)BinaryPrimitives.ReadUInt64LittleEndian(value),
            BinaryPrimitives.ReadUInt32LittleEndian(value[8..]),
            (long)BinaryPrimitives.ReadUInt64LittleEndian(value[12..]),
            value.Length >= 28 ? (long)BinaryPrimitives.ReadUInt64LittleEndian(value[20..]) : 0,
            value.Length >= 36 ? (long)BinaryPrimitives.ReadUInt64LittleEndian(value[28..]) : 0);
    }

    /// <summary>Reads a snapshot file of <paramref name="engine"/> as a whole store: verifies it
    /// (bbolt: meta checksums and every page; LMDB: LMDB opens it and walks each database's
    /// root) and returns its checkpoint (null when none is stored) and key counts.</summary>
    public static (StoreCheckpoint? Checkpoint, IReadOnlyDictionary<string, long> Keys) ReadSnapshotFile(string engine, string file, string @namespace)
    {
        byte[] checkpointKey = Encoding.ASCII.GetBytes(CheckpointKey);
        if (engine == StoreEngines.Bolt)
        {
            using BoltFile bolt = BoltFile.Open(file);
            IReadOnlyDictionary<string, long> keys = bolt.Verify();
            byte[]? value = bolt.Get(Encoding.UTF8.GetBytes(MetadataBucket), checkpointKey);
            return (value is null ? null : ParseCheckpoint(value), keys);
        }
        (byte[]? v, IReadOnlyDictionary<string, long> entries) = Lmdb.ReadFile(file, MetadataBucket, checkpointKey, [@namespace]);
        return (v is null ? null : ParseCheckpoint(v), entries);
    }

    /// <summary>The log index (LSN) and HLC of the record at the checkpoint position, read from
    /// <paramref name="walDir"/> by <see cref="WalRecordLocator"/> (segment <c>%09d.seg</c> or
    /// <c>%09d.wal</c>, the offset a record start, the record whole). Both stay null when the segment or the record is not there or cannot be
    /// read: the snapshot is still valid, its log index unknown.</summary>
    public static StoreCheckpoint WithRecord(StoreCheckpoint checkpoint, string walDir)
    {
        try
        {
            WalRecordAt record = WalRecordLocator.ReadRecordAt(walDir, checkpoint.SegmentId, checkpoint.Offset);
            return checkpoint with { LogIndex = record.LogIndex, Hlc = record.Time?.ToUnixTimeMilliseconds() };
        }
        catch (Exception e) when (e is PSBackupException or IOException or UnauthorizedAccessException)
        {
            return checkpoint with { LogIndex = null, Hlc = null };
        }
    }

    private static byte[] ReadHead(string path, int count)
    {
        using FileStream s = FileCopy.OpenRead(path);
        byte[] head = new byte[Math.Min(count, s.Length)];
        s.ReadExactly(head);
        return head;
    }

    private static string Describe(byte[] head) => head.Length == 0 ? "it is empty" : $"it starts with {Convert.ToHexString(head.AsSpan(0, Math.Min(8, head.Length)))}";

    private static void RejectLink(string path, string ns)
    {
        if (SafePath.IsLink(new FileInfo(path)))
        {
            throw new InvalidInputException("SymbolicLink",
                $"The store of namespace '{ns}' at '{path}' is a symbolic link. PSBackup does not follow links inside a data directory; replace it with the real file or folder.", path);
        }
    }
}

/// <summary>bbolt's file lock from outside: bbolt takes <c>flock(LOCK_EX)</c> for a writer and
/// <c>flock(LOCK_SH)</c> for a read-only open (bolt_unix.go); on Windows it locks with LockFileEx
/// and opens the file shared for read and write, so our read-only open without write sharing fails
/// while it is open. A shared lock we hold means no bbolt writer has the file open.</summary>
public static partial class BoltLock
{
    private const int LockSh = 1, LockNb = 4;

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    private static partial int Flock(int fd, int operation);

    /// <summary>Opens the file for reading under a shared lock, or null when a writer holds it
    /// (the server is running). Windows: an open that denies writers, which fails while bbolt has it open.</summary>
    public static FileStream? TryOpenShared(string path, out string? why)
    {
        FileStream stream;
        try
        {
            // .NET on Unix also takes flock(LOCK_SH|LOCK_NB) for this open unless file locking is
            // disabled by configuration; the explicit flock below does not depend on that.
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
        }
        catch (IOException e) when (e is not FileNotFoundException and not DirectoryNotFoundException)
        {
            why = e.Message;
            return null;
        }
        if (!OperatingSystem.IsWindows())
        {
            int fd = (int)stream.SafeFileHandle.DangerousGetHandle();
            if (Flock(fd, LockSh | LockNb) != 0)
            {
                why = $"flock(LOCK_SH) failed with errno {Marshal.GetLastPInvokeError()}: another process holds bbolt's exclusive lock";
                stream.Dispose();
                return null;
            }
        }
        why = null;
        return stream;
    }
}
