using System.Buffers;
using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;

namespace PSBackup.Engine.Wal;

/// <summary>Writes a walfs v2 segment: preallocated, records appended, header kept current on
/// <see cref="Sync"/>, and <see cref="Seal"/> writes the footer and flips the flags.</summary>
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
    private long _lastSampledOffset = -WalFormat.SparseInterval;
    private long _lastModifiedNs;
    private bool _sealed;
    private bool _disposed;

    private WalSegmentWriter(FileStream file, long firstLogIndex, long createdAtNs, long fileSize)
    {
        _file = file;
        _handle = file.SafeFileHandle;
        FirstLogIndex = firstLogIndex;
        _createdAtNs = createdAtNs;
        _fileSize = fileSize;
        WriteOffset = WalFormat.HeaderSize;
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

    /// <summary>Creates a new active segment file (fails if it exists), zero-filled to <paramref name="fileSize"/>.</summary>
    public static WalSegmentWriter Create(string path, long firstLogIndex, DateTimeOffset createdAt, long fileSize = WalFormat.DefaultSegmentSize)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentOutOfRangeException.ThrowIfNegative(firstLogIndex);
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
            var writer = new WalSegmentWriter(file, firstLogIndex, WalFormat.ToUnixNanoseconds(createdAt), fileSize);
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

    public long FirstLogIndex { get; }
    public long EntryCount { get; private set; }
    public long NextLogIndex => FirstLogIndex + EntryCount;
    /// <summary>End of the last record; where the footer goes at seal.</summary>
    public long WriteOffset { get; private set; }
    public bool IsSealed => _sealed;
    public long FileSize => _fileSize;

    /// <summary>Whether a record of this length still fits, leaving room for the footer.</summary>
    public bool HasRoomFor(int dataLength) =>
        dataLength >= 0 && !_sealed && WriteOffset + WalFormat.RecordSize(dataLength) <= WalFormat.RecordLimit(_fileSize);

    /// <summary>Appends one record; returns its log index. Throws when it does not fit.</summary>
    public long Append(ReadOnlySpan<byte> data)
    {
        ThrowIfUnwritable();
        if (!HasRoomFor(data.Length))
        {
            throw new InvalidOperationException(
                $"A record of {data.Length} bytes does not fit in the segment (write offset {WriteOffset}, record limit {WalFormat.RecordLimit(_fileSize)}). Seal it and start a new segment.");
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
        long logIndex = NextLogIndex;
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

    /// <summary>Writes the footer, syncs, sets Sealed, clears Active, stamps LastModifiedAt, and syncs.
    /// Sealing a sealed segment does nothing.</summary>
    public void Seal(DateTimeOffset sealedAt)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_sealed)
        {
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
        new WalHeader(
            WalFormat.Magic,
            WalFormat.Version,
            _createdAtNs,
            _lastModifiedNs,
            WriteOffset,
            EntryCount,
            _sealed ? WalFormat.FlagSealed : WalFormat.FlagActive,
            FirstLogIndex,
            CustomMarker: 0,
            Crc: 0).Encode(header);
        RandomAccess.Write(_handle, header, 0);
    }
}
