using System.Buffers.Binary;

namespace PSBackup.Engine.Wal;

/// <summary>The valid prefix of an active segment as a partial archives it: a 64-byte header that
/// describes exactly the prefix (active, its record count and end, the first log index), then the
/// segment's bytes from 64 to <see cref="Length"/> as they are on disk. Every record is checked
/// again while it streams past (frame, CRC-32C, trailer, zero padding), so bytes that changed
/// between the validating scan and this read (raft log truncation rewriting the active segment, a
/// disk error) fail the read instead of being archived: a torn or rewritten record never reaches
/// the archive.</summary>
/// <remarks>The live header is not copied: walfs rewrites it with every append (LastModifiedAt,
/// the low 32 bits of WriteOffset, EntryCount) and may seal the segment while the prefix is read,
/// so its bytes may describe more records than the prefix holds, or a sealed file. The header
/// written here keeps the live one's magic, version, creation time, last-modified time and mode
/// marker, and states the prefix: the form walfs itself leaves on disk after the last of these
/// records (<c>pkg/walfs/segment.go</c> Write), which a reader opens by scanning records.</remarks>
internal sealed class WalPrefixStream : Stream
{
    private enum Phase { RecordHeader, Data, Trailer, Padding }

    private readonly FileStream _file;
    private readonly long _expectedRecords;
    private readonly WalCrcKind _crcKind;
    private readonly string _path;
    private readonly byte[] _header = new byte[WalFormat.HeaderSize];
    private readonly byte[] _small = new byte[WalFormat.RecordHeaderSize];
    private long _position;
    private Phase _phase = Phase.RecordHeader;
    private int _smallFill;
    private long _left;
    private uint _stored;
    private uint _crc;
    private uint _crcIeee;
    private long _records;

    /// <param name="info">The validating scan's result for this file (its valid prefix, record
    /// count, first log index and header facts).</param>
    public WalPrefixStream(string path, WalSegmentInfo info, WalCrcKind crcKind, long createdAtNs, long lastModifiedNs, uint version, uint marker)
    {
        _path = path;
        Length = info.ValidBytes;
        _expectedRecords = info.EntryCount;
        _crcKind = crcKind;
        var header = new WalHeader(WalFormat.Magic, version, createdAtNs, lastModifiedNs, info.ValidBytes, info.EntryCount,
            WalFormat.FlagActive, info.EntryCount == 0 ? 0 : info.FirstLogIndex, marker, 0);
        // walfs v1 keeps only the low 32 bits of WriteOffset while a segment is active.
        header.Encode(_header, version == WalFormat.Version1 ? (uint)info.ValidBytes : (ulong)info.ValidBytes, crcKind);
        _file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.SequentialScan);
        _file.Position = WalFormat.HeaderSize;
    }

    /// <summary>Opens the prefix of <paramref name="info"/>'s file, reading the header facts it keeps.</summary>
    public static WalPrefixStream Open(WalSegmentInfo info)
    {
        ArgumentNullException.ThrowIfNull(info);
        using var header = new FileStream(info.Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.None);
        Span<byte> b = stackalloc byte[WalFormat.HeaderSize];
        header.ReadExactly(b);
        WalHeader h = WalHeader.Decode(b);
        return new WalPrefixStream(info.Path, info, info.HeaderCrc ?? WalCrcKind.Castagnoli, h.CreatedAtNs, h.LastModifiedAtNs, h.Version, h.CustomMarker);
    }

    public override long Length { get; }
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Position { get => _position; set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (_position >= Length || buffer.IsEmpty)
        {
            if (_position >= Length)
            {
                Finish();
            }
            return 0;
        }
        int want = (int)Math.Min(buffer.Length, Length - _position);
        int n;
        if (_position < WalFormat.HeaderSize)
        {
            n = Math.Min(want, WalFormat.HeaderSize - (int)_position);
            _header.AsSpan((int)_position, n).CopyTo(buffer);
        }
        else
        {
            n = _file.Read(buffer[..want]);
            if (n == 0)
            {
                throw Changed($"the file ends at offset {_position}, before the {Length} bytes the scan found");
            }
            Check(buffer[..n]);
        }
        _position += n;
        return n;
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return ValueTask.FromResult(Read(buffer.Span));
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <summary>Feeds record bytes (from offset 64 on) through the frame checks.</summary>
    private void Check(ReadOnlySpan<byte> bytes)
    {
        long at = _position;
        while (!bytes.IsEmpty)
        {
            switch (_phase)
            {
                case Phase.RecordHeader:
                {
                    int take = Math.Min(bytes.Length, WalFormat.RecordHeaderSize - _smallFill);
                    bytes[..take].CopyTo(_small.AsSpan(_smallFill));
                    _smallFill += take;
                    bytes = bytes[take..];
                    at += take;
                    if (_smallFill == WalFormat.RecordHeaderSize)
                    {
                        _smallFill = 0;
                        _stored = BinaryPrimitives.ReadUInt32LittleEndian(_small);
                        uint length = BinaryPrimitives.ReadUInt32LittleEndian(_small.AsSpan(4));
                        long recordStart = at - WalFormat.RecordHeaderSize;
                        if (recordStart + WalFormat.RecordSize(length) > Length)
                        {
                            throw Changed($"the record at offset {recordStart} (length {length}) now runs past the prefix end {Length}");
                        }
                        _left = length;
                        _crc = Crc32C.Update(Crc32C.InitialState, _small.AsSpan(4, 4));
                        _crcIeee = Crc32Ieee.Update(Crc32C.InitialState, _small.AsSpan(4, 4));
                        _phase = Phase.Data;
                    }
                    break;
                }
                case Phase.Data:
                {
                    int take = (int)Math.Min(bytes.Length, _left);
                    _crc = Crc32C.Update(_crc, bytes[..take]);
                    if (_crcKind == WalCrcKind.Ieee)
                    {
                        _crcIeee = Crc32Ieee.Update(_crcIeee, bytes[..take]);
                    }
                    _left -= take;
                    bytes = bytes[take..];
                    at += take;
                    if (_left == 0)
                    {
                        bool ok = Crc32C.Finish(_crc) == _stored || (_crcKind == WalCrcKind.Ieee && Crc32Ieee.Finish(_crcIeee) == _stored);
                        if (!ok)
                        {
                            throw Changed($"the record ending at offset {at} no longer matches its CRC");
                        }
                        _phase = Phase.Trailer;
                        _smallFill = 0;
                    }
                    break;
                }
                case Phase.Trailer:
                {
                    int take = Math.Min(bytes.Length, WalFormat.TrailerSize - _smallFill);
                    bytes[..take].CopyTo(_small.AsSpan(_smallFill));
                    _smallFill += take;
                    bytes = bytes[take..];
                    at += take;
                    if (_smallFill == WalFormat.TrailerSize)
                    {
                        _smallFill = 0;
                        if (BinaryPrimitives.ReadUInt64LittleEndian(_small) != WalFormat.TrailerWord)
                        {
                            throw Changed($"the trailer ending at offset {at} is no longer DE AD BE EF FE ED FA CE");
                        }
                        _records++;
                        _left = WalFormat.AlignUp(at) - at;
                        _phase = _left == 0 ? Phase.RecordHeader : Phase.Padding;
                    }
                    break;
                }
                case Phase.Padding:
                {
                    int take = (int)Math.Min(bytes.Length, _left);
                    if (bytes[..take].ContainsAnyExcept((byte)0))
                    {
                        throw Changed($"the padding before offset {WalFormat.AlignUp(at + 1)} is no longer zero");
                    }
                    _left -= take;
                    bytes = bytes[take..];
                    at += take;
                    if (_left == 0)
                    {
                        _phase = Phase.RecordHeader;
                    }
                    break;
                }
            }
        }
    }

    /// <summary>At the end: the prefix must end on a record boundary with the scanned record count.</summary>
    private void Finish()
    {
        if (_phase != Phase.RecordHeader || _smallFill != 0 || _records != _expectedRecords)
        {
            throw Changed($"it ends inside a record or holds {_records} records, not the {_expectedRecords} the scan found");
        }
    }

    private IntegrityException Changed(string what) => new("WalSegmentChanged",
        $"The active segment '{_path}' changed while its valid prefix was read: {what}. Nothing of this partial was archived; the next ship reads it again.",
        _path);

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _file.Dispose();
        }
        base.Dispose(disposing);
    }
}
