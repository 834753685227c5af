using Microsoft.Data.Sqlite;
using PSBackup.Engine.Wal;

namespace PSBackup.Example;

/// <summary>Drives one namespace of the example database the way the database itself does:
/// every write is appended to the active walfs segment first (rotating to a new segment when it
/// is full), and folded into <c>db/store.sqlite</c> later, in transactions, so the store lags
/// the WAL and start-up replay matters.</summary>
public sealed class ExampleWriter : IExampleNamespaceWriter
{
    /// <summary>The example's segment size: small, so a few thousand records fill several.</summary>
    public const long DefaultSegmentSize = 256 * 1024;

    private readonly string _walDir;
    private readonly long _segmentSize;
    private readonly SqliteConnection _store;
    private readonly List<(long LogIndex, ExampleRecord Record)> _pending = [];
    private WalSegmentWriter _segment;
    private long _lastTimestampMs;

    private ExampleWriter(string namespaceDir, long segmentSize, SqliteConnection store, WalSegmentWriter segment, long segmentId, long createdMs)
    {
        NamespaceDir = namespaceDir;
        _walDir = Path.Combine(namespaceDir, ExampleStore.WalFolder);
        _segmentSize = segmentSize;
        _store = store;
        _segment = segment;
        ActiveSegmentId = segmentId;
        _lastTimestampMs = createdMs;
    }

    public string NamespaceDir { get; }
    public long ActiveSegmentId { get; private set; }
    /// <summary>Log index of the last record appended to the WAL (0 before the first).</summary>
    public long LastLogIndex => _segment.NextLogIndex - 1;
    public long AppliedLogIndex { get; private set; }
    public int SealedSegments { get; private set; }

    /// <summary>Starts a new namespace: <c>wal/000000001.wal</c> (first log index 1) and an empty
    /// store. Fails if the namespace already has a WAL or a store.</summary>
    public static ExampleWriter Create(string namespaceDir, DateTimeOffset createdAt, long segmentSize = DefaultSegmentSize)
    {
        string walDir = Path.Combine(namespaceDir, ExampleStore.WalFolder);
        string dbDir = Path.Combine(namespaceDir, ExampleStore.DbFolder);
        if ((Directory.Exists(walDir) && Directory.EnumerateFileSystemEntries(walDir).Any()) || File.Exists(ExampleStore.DbPath(namespaceDir)))
        {
            throw new IOException($"'{namespaceDir}' already holds a WAL or a store; the example writer only starts new namespaces.");
        }
        Directory.CreateDirectory(walDir);
        Directory.CreateDirectory(dbDir);
        SqliteConnection store = ExampleStore.Open(ExampleStore.DbPath(namespaceDir));
        try
        {
            var segment = WalSegmentWriter.Create(Path.Combine(walDir, WalFormat.SegmentFileName(1)), 1, createdAt, segmentSize);
            return new ExampleWriter(namespaceDir, segmentSize, store, segment, 1, createdAt.ToUnixTimeMilliseconds());
        }
        catch
        {
            store.Dispose();
            throw;
        }
    }

    /// <summary>Appends a record to the WAL (not yet applied to the store); returns its log index.
    /// When the active segment is full it is sealed at the previous record's time and the next
    /// segment (id + 1, first log index continuing) is created at this record's time.</summary>
    public long Append(ExampleRecord record)
    {
        if (record.TimestampUnixMs < _lastTimestampMs)
        {
            throw new ArgumentException("Record timestamps must not go backwards.", nameof(record));
        }
        byte[] data = record.Encode();
        if (!_segment.HasRoomFor(data.Length))
        {
            Rotate(record.Timestamp);
        }
        long logIndex = _segment.Append(data);
        _pending.Add((logIndex, record));
        _lastTimestampMs = record.TimestampUnixMs;
        return logIndex;
    }

    /// <summary>Makes the active segment's header current and durable.</summary>
    public void Sync() => _segment.Sync();

    /// <summary>Folds pending records up to <paramref name="logIndex"/> into the store in one
    /// transaction. The WAL is synced first: the store never runs ahead of the durable log.</summary>
    public int ApplyUpTo(long logIndex)
    {
        int count = _pending.FindLastIndex(p => p.LogIndex <= logIndex) + 1;
        if (count == 0)
        {
            return 0;
        }
        _segment.Sync();
        var batch = _pending.GetRange(0, count);
        ExampleStore.ApplyBatch(_store, batch);
        _pending.RemoveRange(0, count);
        AppliedLogIndex = batch[^1].LogIndex;
        return count;
    }

    private void Rotate(DateTimeOffset createdAt)
    {
        long next = _segment.NextLogIndex;
        _segment.Seal(DateTimeOffset.FromUnixTimeMilliseconds(_lastTimestampMs));
        _segment.Dispose();
        SealedSegments++;
        ActiveSegmentId++;
        _segment = WalSegmentWriter.Create(Path.Combine(_walDir, WalFormat.SegmentFileName(ActiveSegmentId)), next, createdAt, _segmentSize);
    }

    /// <summary>Syncs the active segment (left active, not sealed) and closes the store.</summary>
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
