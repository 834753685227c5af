using System.Buffers.Binary;

namespace PSBackup.Engine.Wal;

/// <summary>How a segment's record payloads are read.</summary>
public enum WalPayloadFormat
{
    /// <summary>Not decoded: log indexes are the header's first index + ordinal, times come from
    /// segment headers (the example database, or payloads of another program).</summary>
    Opaque,
    /// <summary>UnisonDB standalone mode: each payload is a <c>LogRecord</c> FlatBuffer
    /// (<c>schemas/logrecord</c>) carrying <c>lsn</c> (log index) and <c>hlc</c> (Unix ms).</summary>
    LogRecord,
    /// <summary>UnisonDB raft mode: each payload is a raft log entry
    /// (<c>pkg/raftwalfs/codec.go</c> BinaryCodecV1) whose index is the log index; commands wrap a LogRecord.</summary>
    Raft,
}

/// <summary>What one record payload says about itself.</summary>
public readonly record struct WalPayloadFacts(long LogIndex, DateTimeOffset? Time);

/// <summary>Decodes UnisonDB record payloads just far enough to get each record's log index and
/// time. Every offset is bounds-checked against the payload; anything that does not decode
/// cleanly is "not this format", never an exception.</summary>
public static class WalPayload
{
    /// <summary>Bytes of a payload's start that are enough to decode it in practice: a FlatBuffer
    /// built by Go's builder puts the root table and its vtable first, the raft envelope is 25
    /// bytes plus a varint before its LogRecord.</summary>
    public const int PrefixSize = 512;

    /// <summary>hashicorp/raft LogType values (LogCommand = 0 … LogConfiguration = 5).</summary>
    private const byte MaxRaftLogType = 5;

    /// <summary>Decodes <paramref name="payload"/> (the first bytes of a record whose data is
    /// <paramref name="length"/> bytes) as <paramref name="format"/>. False when it is not one, or
    /// when a field lies beyond the bytes given (<paramref name="needMore"/> then says how many
    /// bytes of the payload would be enough).</summary>
    public static bool TryDecode(ReadOnlySpan<byte> payload, long length, WalPayloadFormat format, out WalPayloadFacts facts, out int needMore)
    {
        facts = default;
        needMore = 0;
        return format switch
        {
            WalPayloadFormat.LogRecord => TryDecodeLogRecord(payload, length, out facts, out needMore),
            WalPayloadFormat.Raft => TryDecodeRaft(payload, length, out facts, out needMore),
            _ => false,
        };
    }

    /// <summary>A <c>LogRecord</c> FlatBuffer: root u32 → table T, vtable at T - i32(T), field
    /// slot 0 = lsn (u64), slot 1 = hlc (u64, Unix ms). lsn must be present and positive.</summary>
    public static bool TryDecodeLogRecord(ReadOnlySpan<byte> p, long length, out WalPayloadFacts facts, out int needMore)
    {
        facts = default;
        needMore = 0;
        if (length < 12 || p.Length < 4)
        {
            return false;
        }
        long table = BinaryPrimitives.ReadUInt32LittleEndian(p);
        if (table < 4 || table + 4 > length)
        {
            return false;
        }
        if (!Need(p, table, 4, ref needMore))
        {
            return false;
        }
        long vtable = table - BinaryPrimitives.ReadInt32LittleEndian(p[(int)table..]);
        if (vtable < 4 || vtable + 4 > length || (vtable & 1) != 0)
        {
            return false;
        }
        if (!Need(p, vtable, 4, ref needMore))
        {
            return false;
        }
        int vtSize = BinaryPrimitives.ReadUInt16LittleEndian(p[(int)vtable..]);
        int tableSize = BinaryPrimitives.ReadUInt16LittleEndian(p[((int)vtable + 2)..]);
        if (vtSize < 4 || (vtSize & 1) != 0 || vtSize > 4 + 2 * 64 || vtable + vtSize > length || tableSize < 4 || table + tableSize > length)
        {
            return false;
        }
        // The vtable and the table must not overlap.
        if (vtable < table ? vtable + vtSize > table : table + tableSize > vtable)
        {
            return false;
        }
        if (!Need(p, vtable, vtSize, ref needMore) || !Need(p, table, tableSize, ref needMore))
        {
            return false;
        }
        int fields = (vtSize - 4) / 2;
        ReadOnlySpan<byte> vt = p.Slice((int)vtable, vtSize);
        for (int i = 0; i < fields; i++)
        {
            int at = BinaryPrimitives.ReadUInt16LittleEndian(vt[(4 + 2 * i)..]);
            if (at != 0 && at < 4)
            {
                return false; // a field offset inside the table's own vtable pointer
            }
        }
        if (!TryField(vt, fields, 0, tableSize, 8, out int lsnAt) || lsnAt == 0)
        {
            return false;
        }
        if (!TryField(vt, fields, 1, tableSize, 8, out int hlcAt))
        {
            return false;
        }
        ulong lsn = BinaryPrimitives.ReadUInt64LittleEndian(p[((int)table + lsnAt)..]);
        ulong hlc = hlcAt == 0 ? 0 : BinaryPrimitives.ReadUInt64LittleEndian(p[((int)table + hlcAt)..]);
        if (lsn == 0 || lsn > long.MaxValue)
        {
            return false;
        }
        facts = new WalPayloadFacts((long)lsn, FromUnixMilliseconds(hlc));
        return true;
    }

    /// <summary>A raft envelope (BinaryCodecV1): <c>term u64 | index u64 | type u8 | appendedAt
    /// i64 ns | uvarint len | data | uvarint extLen | ext</c>, ending exactly at the payload's end.
    /// The log index is the raft index; the time is the wrapped LogRecord's HLC for a command,
    /// else appendedAt.</summary>
    public static bool TryDecodeRaft(ReadOnlySpan<byte> p, long length, out WalPayloadFacts facts, out int needMore)
    {
        facts = default;
        needMore = 0;
        const int Fixed = 25;
        if (length < Fixed + 2)
        {
            return false;
        }
        if (!Need(p, 0, Fixed + 10, ref needMore, length))
        {
            return false;
        }
        ulong index = BinaryPrimitives.ReadUInt64LittleEndian(p[8..]);
        byte type = p[16];
        long appendedAt = BinaryPrimitives.ReadInt64LittleEndian(p[17..]);
        if (index == 0 || index > long.MaxValue || type > MaxRaftLogType || appendedAt < 0)
        {
            return false;
        }
        if (!TryUvarint(p[Fixed..], out ulong dataLen, out int n))
        {
            return false;
        }
        long dataStart = Fixed + n;
        if (dataLen > (ulong)(length - dataStart))
        {
            return false;
        }
        long extAt = dataStart + (long)dataLen;
        if (!Need(p, extAt, (int)Math.Min(10, length - extAt), ref needMore, length))
        {
            return false;
        }
        if (!TryUvarint(p[(int)extAt..(int)Math.Min(p.Length, length)], out ulong extLen, out int m) || extAt + m + (long)extLen != length)
        {
            return false;
        }
        DateTimeOffset? time = appendedAt == 0 ? null : DateTimeOffset.UnixEpoch.AddTicks(appendedAt / 100);
        if (type == 0 && dataLen > 0)
        {
            int have = (int)Math.Min(p.Length - dataStart, (long)dataLen);
            if (TryDecodeLogRecord(p.Slice((int)dataStart, have), (long)dataLen, out WalPayloadFacts inner, out int innerMore))
            {
                time = inner.Time ?? time;
            }
            else if (innerMore > 0)
            {
                needMore = (int)Math.Min(length, dataStart + innerMore);
                return false;
            }
        }
        facts = new WalPayloadFacts((long)index, time);
        return true;
    }

    /// <summary>Field <paramref name="slot"/>'s offset in the table (0 = absent), when a field of
    /// <paramref name="size"/> bytes there fits inside the table.</summary>
    private static bool TryField(ReadOnlySpan<byte> vt, int fields, int slot, int tableSize, int size, out int at)
    {
        at = slot < fields ? BinaryPrimitives.ReadUInt16LittleEndian(vt[(4 + 2 * slot)..]) : 0;
        return at == 0 || at + size <= tableSize;
    }

    /// <summary>True when [offset, offset+count) is inside the bytes given; else records in
    /// <paramref name="needMore"/> how many payload bytes would be enough.</summary>
    private static bool Need(ReadOnlySpan<byte> p, long offset, int count, ref int needMore, long cap = long.MaxValue)
    {
        long end = Math.Min(offset + count, cap);
        if (end <= p.Length)
        {
            return true;
        }
        needMore = (int)Math.Min(int.MaxValue, Math.Max(end, p.Length * 2L));
        return false;
    }

    private static bool TryUvarint(ReadOnlySpan<byte> b, out ulong value, out int size)
    {
        value = 0;
        size = 0;
        int shift = 0;
        for (int i = 0; i < b.Length && i < 10; i++)
        {
            byte x = b[i];
            if (x < 0x80)
            {
                if (i == 9 && x > 1)
                {
                    return false;
                }
                value |= (ulong)x << shift;
                size = i + 1;
                return true;
            }
            value |= (ulong)(x & 0x7F) << shift;
            shift += 7;
        }
        return false;
    }

    /// <summary>An HLC (Unix ms) as a time; null for 0 or a value no clock produces.</summary>
    public static DateTimeOffset? FromUnixMilliseconds(ulong ms) =>
        ms == 0 || ms > 253402300799999UL ? null : DateTimeOffset.FromUnixTimeMilliseconds((long)ms);
}
