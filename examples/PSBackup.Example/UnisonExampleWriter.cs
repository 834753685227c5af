using System.Buffers.Binary;
using System.Text;
using PSBackup.Engine.Snapshots;
using PSBackup.Engine.Wal;

namespace PSBackup.Example;

/// <summary>Writes one namespace exactly as a standalone UnisonDB engine lays it out
/// (<c>&lt;dataDir&gt;/&lt;ns&gt;/</c>): <c>wal/%09d.seg</c> walfs v1 segments with UnisonDB's
/// standalone marker and <c>.seg.idx</c> sidecars once sealed, written through the engine's
/// <see cref="WalSegmentWriter"/> with <see cref="UnisonLogRecord"/> payloads (LSN = log index, HLC =
/// the record's Unix ms time); <c>unison.db/</c> an LMDB 0.9 environment with UnisonDB's two named
/// databases (the namespace's, keys prefixed 0xFE, and <c>sys.kv.unison.db.wal.metadata.bucket</c>
/// holding the engine mode and the WAL checkpoint); and an empty <c>pid.lock</c>.</summary>
/// <remarks>Folding records into the store is a memtable flush as UnisonDB does it: the keys'
/// latest values and deletes, then the checkpoint (RecordProcessed, the last applied record's
/// position) in the same transaction (dbkernel/internal/metadata.go SaveMetadata), so the store never
/// claims more than it holds. Records after the checkpoint live only in the WAL; UnisonDB's start-up
/// recovery replays them.</remarks>
public sealed class UnisonExampleWriter : IExampleNamespaceWriter
{
    /// <summary>Small segments, so a few thousand records fill several.</summary>
    public const long DefaultSegmentSize = 256 * 1024;
    public const string StoreFolder = "unison.db";
    public const string WalFolder = "wal";
    public const string PidLock = "pid.lock";
    /// <summary>pkg/kvdrivers/common.go sysBucketMetaData.</summary>
    public const string MetadataDatabase = "sys.kv.unison.db.wal.metadata.bucket";
    /// <summary>NewDefaultEngineConfig's MmapSize (4 GiB): LMDB's map size.</summary>
    public const long MapSize = 4L << 30;
    /// <summary>dbkernel/internal/metadata.go SysKeyWalCheckPoint.</summary>
    public static readonly byte[] CheckpointKey = Encoding.ASCII.GetBytes("sys.kv.unisondb.key.wal.checkpoint");
    /// <summary>dbkernel/internal/metadata.go SysKeyEngineMode (value EngineModeStandalone = 1).</summary>
    public static readonly byte[] EngineModeKey = Encoding.ASCII.GetBytes("sys.kv.unisondb.key.engine.mode");

    private readonly string _ns;
    private readonly string _walDir;
    private readonly long _segmentSize;
    private readonly Lmdb.Writer _store;
    private readonly List<Pending> _pending = [];
    private WalSegmentWriter _segment;
    private long _lastTimestampMs;
    private long _nextLogIndex = 1;

    private sealed record Pending(long LogIndex, long SegmentId, long Offset, ExampleRecord Record);

    private UnisonExampleWriter(string ns, string walDir, long segmentSize, Lmdb.Writer store, WalSegmentWriter segment, long createdMs)
    {
        _ns = ns;
        _walDir = walDir;
        _segmentSize = segmentSize;
        _store = store;
        _segment = segment;
        _lastTimestampMs = createdMs;
    }

    public long ActiveSegmentId { get; private set; } = 1;
    /// <summary>Log index of the active segment's first record (the next one while it is empty).</summary>
    public long ActiveSegmentFirstLogIndex { get; private set; } = 1;
    public long LastLogIndex => _nextLogIndex - 1;
    public long AppliedLogIndex { get; private set; }
    public int SealedSegments { get; private set; }

    /// <summary>Starts namespace <paramref name="ns"/> in <paramref name="namespaceDir"/>: segment 1,
    /// the LMDB environment with its databases and the engine mode, <c>pid.lock</c>. Fails if the
    /// folder already holds a WAL or a store.</summary>
    public static UnisonExampleWriter Create(string namespaceDir, string ns, DateTimeOffset createdAt, long segmentSize = DefaultSegmentSize)
    {
        string walDir = Path.Combine(namespaceDir, WalFolder);
        string storeDir = Path.Combine(namespaceDir, StoreFolder);
        if ((Directory.Exists(walDir) && Directory.EnumerateFileSystemEntries(walDir).Any()) || Directory.Exists(storeDir) || File.Exists(storeDir))
        {
            throw new IOException($"'{namespaceDir}' already holds a WAL or a store; the example writer only starts new namespaces.");
        }
        Directory.CreateDirectory(walDir);
        Directory.CreateDirectory(storeDir);
        File.WriteAllBytes(Path.Combine(namespaceDir, PidLock), []);
        Lmdb.Writer store = Lmdb.OpenWriter(storeDir, MapSize);
        try
        {
            // dbkernel/engine.go validateAndPersistEngineMode on a new store.
            store.Commit([new Lmdb.Change(MetadataDatabase, EngineModeKey, [1])], [ns, MetadataDatabase]);
            var segment = WalSegmentWriter.Create(SegmentPath(walDir, 1), 1, createdAt, segmentSize, version: 1, customMarker: WalFormat.MarkerStandalone);
            return new UnisonExampleWriter(ns, walDir, segmentSize, store, segment, createdAt.ToUnixTimeMilliseconds());
        }
        catch
        {
            store.Dispose();
            throw;
        }
    }

    public long Append(ExampleRecord record)
    {
        if (record.TimestampUnixMs < _lastTimestampMs)
        {
            throw new ArgumentException("Record timestamps must not go backwards.", nameof(record));
        }
        long lsn = _nextLogIndex;
        byte[] key = UnisonLogRecord.KeyKV(Encoding.UTF8.GetBytes(record.Key));
        byte[] payload = record.Op == ExampleOp.Put
            ? UnisonLogRecord.Encode(lsn, record.TimestampUnixMs, UnisonLogRecord.OperationInsert, [(key, record.Value)])
            : UnisonLogRecord.Encode(lsn, record.TimestampUnixMs, UnisonLogRecord.OperationDelete, [(key, null)]);
        if (!_segment.HasRoomFor(payload.Length))
        {
            Rotate(record.Timestamp);
        }
        long offset = _segment.WriteOffset;
        _segment.Append(payload, lsn);
        _pending.Add(new Pending(lsn, ActiveSegmentId, offset, record));
        _nextLogIndex++;
        _lastTimestampMs = record.TimestampUnixMs;
        return lsn;
    }

    public int ApplyUpTo(long logIndex)
    {
        int count = _pending.FindLastIndex(p => p.LogIndex <= logIndex) + 1;
        if (count == 0)
        {
            return 0;
        }
        _segment.Sync(); // the store never runs ahead of the durable log
        List<Pending> batch = _pending.GetRange(0, count);
        var changes = new List<Lmdb.Change>(count + 1);
        foreach (Pending p in batch)
        {
            byte[] key = UnisonLogRecord.KeyKV(Encoding.UTF8.GetBytes(p.Record.Key));
            changes.Add(new Lmdb.Change(_ns, key, p.Record.Op == ExampleOp.Put ? p.Record.Value : null));
        }
        Pending last = batch[^1];
        changes.Add(new Lmdb.Change(MetadataDatabase, CheckpointKey, Checkpoint(last.LogIndex, last.SegmentId, last.Offset)));
        _store.Commit(changes);
        _pending.RemoveRange(0, count);
        AppliedLogIndex = last.LogIndex;
        return count;
    }

    /// <summary>UnisonDB's checkpoint value (metadata.go MarshalBinary): RecordProcessed u64,
    /// position (SegmentID u32, Offset u64), RaftIndex u64, RaftTerm u64 (0 standalone).</summary>
    public static byte[] Checkpoint(long recordsProcessed, long segmentId, long offset)
    {
        byte[] value = new byte[36];
        BinaryPrimitives.WriteUInt64LittleEndian(value, (ulong)recordsProcessed);
        BinaryPrimitives.WriteUInt32LittleEndian(value.AsSpan(8), checked((uint)segmentId));
        BinaryPrimitives.WriteUInt64LittleEndian(value.AsSpan(12), (ulong)offset);
        return value;
    }

    private static string SegmentPath(string walDir, long id) => Path.Combine(walDir, WalFormat.SegmentFileName(id, WalFormat.SegExtension));

    private void Rotate(DateTimeOffset createdAt)
    {
        _segment.Seal(DateTimeOffset.FromUnixTimeMilliseconds(_lastTimestampMs));
        _segment.Dispose();
        SealedSegments++;
        ActiveSegmentId++;
        ActiveSegmentFirstLogIndex = _nextLogIndex;
        _segment = WalSegmentWriter.Create(SegmentPath(_walDir, ActiveSegmentId), _nextLogIndex, createdAt, _segmentSize, version: 1, customMarker: WalFormat.MarkerStandalone);
    }

    /// <summary>Syncs the active segment (left active, as a running UnisonDB leaves it) and closes the store.</summary>
    public void Dispose()
    {
        try
        {
            _segment.Sync();
        }
        finally
        {
            _segment.Dispose();
            _store.Dispose();
        }
    }
}
