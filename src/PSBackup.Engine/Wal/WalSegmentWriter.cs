using System.Buffers;
using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;

namespace PSBackup.Engine.Wal;

/// <summary>Writes a walfs segment, version 2 (the default: <see cref="Seal"/> writes the footer)
/// or version 1 (UnisonDB's released walfs: no footer, <see cref="Seal"/> writes the
/// <c>.seg.idx</c> sidecar): preallocated, records appended, header kept current on
/// <see cref="Sync"/>, and <see cref="Seal"/> flips the flags.</summary>
/// <remarks>Records are written with positional writes; nothing is durable until <see cref="Sync"/>
/// or <see cref="Seal"/>. <see cref="Dispose"/> closes the file without writing, so a writer
/// disposed without a sync leaves the header as last synced (a reader scans an active segment
/// anyway, as walfs does after a crash).</remarks>
public sealed class WalSegmentWriter : IDisposable
{
    private readonly FileStream _file;
    private readonly SafeFileHandle _handle;
    private readonly long _fileSize;
    private readonly long _createdAtNs;
    private readonly List<(uint Ordinal, uint Offset)> _sparse = [];
    private readonly List<(long Offset, int Length)> _records = [];
    private readonly string _path;
    private readonly uint _customMarker;
    private readonly bool _writeSidecar;
    private long _firstLogIndex;
    private long _lastSampledOffset = -WalFormat.SparseInterval;
    private long _lastModifiedNs;
    private bool _sealed;
    private bool _disposed;

    private WalSegmentWriter(FileStream file, string path, long firstLogIndex, long createdAtNs, long fileSize, int version, uint customMarker, bool writeSidecar)
    {
        _file = file;
        _path = path;
        _handle = file.SafeFileHandle;
        _firstLogIndex = firstLogIndex;
        _createdAtNs = createdAtNs;
        _fileSize = fileSize;
        _customMarker = customMarker;
        _writeSidecar = writeSidecar;
        Version = version;
        WriteOffset = WalFormat.HeaderSize;
        // walfs v1 stamps LastModifiedAt with every write (segment.go Write); the creation time until then.
        _lastModifiedNs = version == 1 ? createdAtNs : 0;
    }

    /// <summary>The smallest segment that holds the header, one empty record and the footer reserve.</summary>
    public static long MinimumFileSize
    {
        get
        {
            long size = WalFormat.HeaderSize;
            while (WalFormat.RecordLimit(size) < WalFormat.HeaderSize + WalFormat.RecordSize(0))
            {
                size++;
            }
            return size;
        }
    }

    /// <summary>Creates a new active walfs v2 segment file (fails if it exists), zero-filled to <paramref name="fileSize"/>.</summary>
    public static WalSegmentWriter Create(string path, long firstLogIndex, DateTimeOffset createdAt, long fileSize = WalFormat.DefaultSegmentSize) =>
        Create(path, firstLogIndex, createdAt, fileSize, version: 2, customMarker: 0);

    /// <summary>Creates a new active segment of walfs <paramref name="version"/> (1 or 2) with
    /// UnisonDB's mode marker (<see cref="WalFormat.MarkerStandalone"/>, <see cref="WalFormat.MarkerRaft"/>,
    /// or 0). A version 1 segment's header holds FirstLogIndex 0 until its first record, as walfs
    /// writes it; <paramref name="writeSidecar"/> makes <see cref="Seal"/> write its <c>.seg.idx</c>.</summary>
    public static WalSegmentWriter Create(string path, long firstLogIndex, DateTimeOffset createdAt, long fileSize, int version, uint customMarker, bool writeSidecar = true)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentOutOfRangeException.ThrowIfNegative(firstLogIndex);
        if (version is not (1 or 2))
        {
            throw new ArgumentOutOfRangeException(nameof(version), version, "walfs segment versions are 1 and 2.");
        }
        if (fileSize < MinimumFileSize || fileSize > WalFormat.MaxSegmentSize)
        {
            throw new ArgumentOutOfRangeException(nameof(fileSize), fileSize,
                $"A segment must be between {MinimumFileSize} and {WalFormat.MaxSegmentSize} bytes.");
        }
        // Shared like a Go program's files on Windows (UnisonDB): readers and renames never hit a sharing violation.
        var file = new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.None);
        try
        {
            file.SetLength(fileSize); // zero fill: unwritten bytes read as zeros
            var writer = new WalSegmentWriter(file, Path.GetFullPath(path), firstLogIndex, WalFormat.ToUnixNanoseconds(createdAt), fileSize, version, customMarker, writeSidecar);
            writer.WriteHeader();
            file.Flush(flushToDisk: true);
            Durable.FsyncDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
            return writer;
        }
        catch
        {
            file.Dispose();
            File.Delete(path);
            throw;
        }
    }

    public long FirstLogIndex => _firstLogIndex;
    /// <summary>walfs version written: 1 or 2.</summary>
    public int Version { get; }
    public long EntryCount { get; private set; }
    public long NextLogIndex => FirstLogIndex + EntryCount;
    /// <summary>End of the last record; where the footer goes at seal.</summary>
    public long WriteOffset { get; private set; }
    public bool IsSealed => _sealed;
    public long FileSize => _fileSize;

    /// <summary>Where records must end: before the footer reserve (v2) or the file's end (v1).</summary>
    private long Limit => Version == 2 ? WalFormat.RecordLimit(_fileSize) : _fileSize;

    /// <summary>Whether a record of this length still fits, leaving room for the footer (v2).</summary>
    public bool HasRoomFor(int dataLength) =>
        dataLength >= 0 && !_sealed && WriteOffset + WalFormat.RecordSize(dataLength) <= Limit;

    /// <summary>Appends one record; returns its log index. Throws when it does not fit.</summary>
    public long Append(ReadOnlySpan<byte> data) => Append(data, EntryCount == 0 ? _firstLogIndex : NextLogIndex);

    /// <summary>Appends one record whose payload carries <paramref name="logIndex"/> (UnisonDB
    /// records may skip an index): the segment's first record sets the header's FirstLogIndex, as
    /// walfs does. Returns <paramref name="logIndex"/>.</summary>
    public long Append(ReadOnlySpan<byte> data, long logIndex)
    {
        ThrowIfUnwritable();
        if (!HasRoomFor(data.Length))
        {
            throw new InvalidOperationException(
                $"A record of {data.Length} bytes does not fit in the segment (write offset {WriteOffset}, record limit {Limit}). Seal it and start a new segment.");
        }
        if (EntryCount == 0)
        {
            _firstLogIndex = logIndex;
        }
        int size = checked((int)WalFormat.RecordSize(data.Length));
        byte[] buffer = ArrayPool<byte>.Shared.Rent(size);
        try
        {
            Span<byte> record = buffer.AsSpan(0, size);
            record.Clear();
            BinaryPrimitives.WriteUInt32LittleEndian(record[4..], (uint)data.Length);
            data.CopyTo(record[WalFormat.RecordHeaderSize..]);
            BinaryPrimitives.WriteUInt32LittleEndian(record, Crc32C.Compute(record.Slice(4, 4 + data.Length)));
            BinaryPrimitives.WriteUInt64LittleEndian(record[(WalFormat.RecordHeaderSize + data.Length)..], WalFormat.TrailerWord);
            RandomAccess.Write(_handle, record, WriteOffset);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        if (WriteOffset - _lastSampledOffset >= WalFormat.SparseInterval)
        {
            _sparse.Add(((uint)EntryCount, (uint)WriteOffset));
            _lastSampledOffset = WriteOffset;
        }
        if (Version == 1)
        {
            _records.Add((WriteOffset, data.Length));
        }
        WriteOffset += size;
        EntryCount++;
        return logIndex;
    }

    /// <summary>Rewrites the header (WriteOffset, EntryCount, CRC) and fsyncs.</summary>
    public void Sync()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        WriteHeader();
        _file.Flush(flushToDisk: true);
    }

    /// <summary>v2: writes the footer, syncs, sets Sealed, clears Active, stamps LastModifiedAt,
    /// and syncs. v1: syncs the records, flips the header the same way, then writes the
    /// <c>.seg.idx</c> sidecar (temp name, fsync, rename), as walfs seals and then flushes its
    /// index. Sealing a sealed segment does nothing.</summary>
    public void Seal(DateTimeOffset sealedAt)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_sealed)
        {
            return;
        }
        if (Version == 1)
        {
            _file.Flush(flushToDisk: true);
            _sealed = true;
            _lastModifiedNs = WalFormat.ToUnixNanoseconds(sealedAt);
            WriteHeader();
            _file.Flush(flushToDisk: true);
            if (_writeSidecar)
            {
                WriteSidecar();
            }
            return;
        }
        int size = WalFormat.FooterHeadSize + WalFormat.FooterEntrySize * _sparse.Count;
        if (WriteOffset + size > _fileSize)
        {
            throw new InvalidOperationException($"The footer of {size} bytes does not fit after offset {WriteOffset}.");
        }
        byte[] footer = new byte[size];
        Span<byte> entries = footer.AsSpan(WalFormat.FooterHeadSize);
        for (int i = 0; i < _sparse.Count; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(entries[(i * WalFormat.FooterEntrySize)..], _sparse[i].Ordinal);
            BinaryPrimitives.WriteUInt32LittleEndian(entries[(i * WalFormat.FooterEntrySize + 4)..], _sparse[i].Offset);
        }
        Span<byte> head = footer.AsSpan(0, WalFormat.FooterHeadSize);
        BinaryPrimitives.WriteUInt32LittleEndian(head, WalFormat.FooterMagic);
        BinaryPrimitives.WriteUInt32LittleEndian(head[4..], WalFormat.FooterLengthSentinel);
        BinaryPrimitives.WriteUInt64LittleEndian(head[8..], (ulong)EntryCount);
        BinaryPrimitives.WriteUInt32LittleEndian(head[16..], (uint)_sparse.Count);
        BinaryPrimitives.WriteUInt32LittleEndian(head[20..], Crc32C.Compute(entries));
        BinaryPrimitives.WriteUInt16LittleEndian(head[24..], WalFormat.FooterVersion);
        BinaryPrimitives.WriteUInt16LittleEndian(head[26..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(head[28..], Crc32C.Compute(head[..28]));

        // Footer durable first: one sync for both could persist a sealed header without its footer.
        RandomAccess.Write(_handle, footer, WriteOffset);
        _file.Flush(flushToDisk: true);

        _sealed = true;
        _lastModifiedNs = WalFormat.ToUnixNanoseconds(sealedAt);
        WriteHeader();
        _file.Flush(flushToDisk: true);
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        _file.Dispose();
    }

    private void ThrowIfUnwritable()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_sealed)
        {
            throw new InvalidOperationException("The segment is sealed; records cannot be appended.");
        }
    }

    private void WriteHeader()
    {
        Span<byte> header = stackalloc byte[WalFormat.HeaderSize];
        // walfs v1 stores only the low 32 bits of the write offset while a segment is active
        // (segment.go Write) and the whole value at seal; FirstLogIndex stays 0 until the first record.
        ulong writeOffsetField = Version == 1 && !_sealed ? (uint)WriteOffset : (ulong)WriteOffset;
        long firstLogIndex = Version == 1 && EntryCount == 0 ? 0 : _firstLogIndex;
        new WalHeader(
            WalFormat.Magic,
            (uint)Version,
            _createdAtNs,
            _lastModifiedNs,
            WriteOffset,
            EntryCount,
            _sealed ? WalFormat.FlagSealed : WalFormat.FlagActive,
            firstLogIndex,
            _customMarker,
            Crc: 0).Encode(header, writeOffsetField, WalCrcKind.Castagnoli);
        RandomAccess.Write(_handle, header, 0);
    }

    /// <summary>The v1 sparse-index sidecar: one <c>{u64 offset, u32 length, u32 0}</c> per record.</summary>
    private void WriteSidecar()
    {
        byte[] bytes = new byte[_records.Count * WalFormat.SidecarEntrySize];
        for (int i = 0; i < _records.Count; i++)
        {
            Span<byte> e = bytes.AsSpan(i * WalFormat.SidecarEntrySize, WalFormat.SidecarEntrySize);
            BinaryPrimitives.WriteUInt64LittleEndian(e, (ulong)_records[i].Offset);
            BinaryPrimitives.WriteUInt32LittleEndian(e[8..], (uint)_records[i].Length);
        }
        string sidecar = _path + WalFormat.SidecarSuffix;
        string temp = sidecar + ".tmp";
        Durable.TryDelete(temp);
        using (var f = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.None))
        {
            f.Write(bytes);
            f.Flush(flushToDisk: true);
        }
        Durable.CommitFile(temp, sidecar);
    }
}
