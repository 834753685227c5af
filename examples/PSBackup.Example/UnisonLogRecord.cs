using System.Buffers.Binary;

namespace PSBackup.Example;

/// <summary>UnisonDB's WAL record payload: a <c>LogRecord</c> FlatBuffer (UnisonDB
/// <c>flatbuffer.fbs</c>, namespace <c>schemas.logrecord</c>) as <c>dbkernel/engine.go</c>
/// <c>persistKeyValue</c> builds it for a standalone engine: <c>lsn</c> = the log index,
/// <c>hlc</c> = Unix ms, <c>operation_type</c> Insert (1) or Delete (2), <c>txn_state</c> None and
/// <c>entry_type</c> KV (both 0, left out as FlatBuffers leaves out defaults), <c>crc32_checksum</c> 0
/// (persistKeyValue discards the checksum it computes), and <c>entries</c>: one <c>EncodedEntry</c>
/// per key whose <c>entry</c> bytes are a <c>KeyValueEntry</c> FlatBuffer of its own
/// (<c>internal/logcodec/kv_codec.go</c> SerializeKVEntry; a delete carries an empty value).</summary>
/// <remarks>Written front to back: every offset (uoffset) points forward as FlatBuffers requires,
/// vtables precede their tables, 8-byte scalars sit at 8-byte aligned positions.</remarks>
public static class UnisonLogRecord
{
    public const byte OperationInsert = 1;
    public const byte OperationDelete = 2;

    /// <summary>UnisonDB's key-value key kind (internal/keycodec KeyTypeKV): every KV key is stored
    /// and logged with this first byte.</summary>
    public const byte KeyTypeKV = 0xFE;

    /// <summary>The storage key of a user key (keycodec.KeyKV).</summary>
    public static byte[] KeyKV(ReadOnlySpan<byte> key)
    {
        if (key.Length > 0 && key[0] == KeyTypeKV)
        {
            return key.ToArray();
        }
        byte[] typed = new byte[key.Length + 1];
        typed[0] = KeyTypeKV;
        key.CopyTo(typed.AsSpan(1));
        return typed;
    }

    /// <summary>A LogRecord with <paramref name="entries"/> (storage keys, values; null values for a delete).</summary>
    public static byte[] Encode(long lsn, long hlc, byte operation, IReadOnlyList<(byte[] Key, byte[]? Value)> entries)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(lsn);
        var b = new Buffer();
        int root = b.Reserve(4);
        // LogRecord vtable: fields lsn(0) hlc(1) crc32(2) op(3) txn_state(4) entry_type(5) txn_id(6) prev(7) entries(8).
        const int TableSize = 32;
        int vtable = b.Position;
        b.U16(4 + 2 * 9);
        b.U16(TableSize);
        foreach (ushort at in new ushort[] { 8, 16, 0, 28, 0, 0, 0, 0, 24 })
        {
            b.U16(at);
        }
        b.Align(8);
        int table = b.Position;
        b.PatchU32(root, (uint)table);
        b.I32(table - vtable);
        b.U32(0);
        b.U64((ulong)lsn);
        b.U64((ulong)hlc);
        int entriesField = b.Reserve(4);
        b.U8(operation);
        b.Align(8);

        // entries: [EncodedEntry]
        b.Align(4);
        int vector = b.Position;
        b.PatchU32(entriesField, (uint)(vector - entriesField));
        b.U32((uint)entries.Count);
        int[] slots = new int[entries.Count];
        for (int i = 0; i < entries.Count; i++)
        {
            slots[i] = b.Reserve(4);
        }
        for (int i = 0; i < entries.Count; i++)
        {
            byte[] kv = EncodeKeyValue(entries[i].Key, entries[i].Value ?? []);
            // EncodedEntry: vtable (one field: entry at 4), table, then the byte vector.
            b.Align(2);
            int entryVtable = b.Position;
            b.U16(6);
            b.U16(8);
            b.U16(4);
            b.Align(4);
            int entryTable = b.Position;
            b.PatchU32(slots[i], (uint)(entryTable - slots[i]));
            b.I32(entryTable - entryVtable);
            int dataField = b.Reserve(4);
            b.Align(4);
            b.PatchU32(dataField, (uint)(b.Position - dataField));
            b.U32((uint)kv.Length);
            b.Bytes(kv);
        }
        b.Align(8);
        return b.ToArray();
    }

    /// <summary>A KeyValueEntry FlatBuffer: key (field 0) and value (field 1) byte vectors.</summary>
    public static byte[] EncodeKeyValue(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
    {
        var b = new Buffer();
        int root = b.Reserve(4);
        int vtable = b.Position;
        b.U16(4 + 2 * 2);
        b.U16(12);
        b.U16(4);
        b.U16(8);
        b.Align(4);
        int table = b.Position;
        b.PatchU32(root, (uint)table);
        b.I32(table - vtable);
        int keyField = b.Reserve(4);
        int valueField = b.Reserve(4);
        b.PatchU32(keyField, (uint)(b.Position - keyField));
        b.U32((uint)key.Length);
        b.Bytes(key);
        b.Align(4);
        b.PatchU32(valueField, (uint)(b.Position - valueField));
        b.U32((uint)value.Length);
        b.Bytes(value);
        return b.ToArray();
    }

    private sealed class Buffer
    {
        private byte[] _data = new byte[256];

        public int Position { get; private set; }

        public int Reserve(int count)
        {
            int at = Position;
            Grow(count);
            Position += count;
            return at;
        }

        public void Align(int alignment)
        {
            while (Position % alignment != 0)
            {
                U8(0);
            }
        }

        public void U8(byte v)
        {
            int at = Reserve(1);
            _data[at] = v;
        }

        public void U16(ushort v)
        {
            int at = Reserve(2);
            BinaryPrimitives.WriteUInt16LittleEndian(_data.AsSpan(at), v);
        }

        public void U32(uint v)
        {
            int at = Reserve(4);
            BinaryPrimitives.WriteUInt32LittleEndian(_data.AsSpan(at), v);
        }

        public void I32(int v)
        {
            int at = Reserve(4);
            BinaryPrimitives.WriteInt32LittleEndian(_data.AsSpan(at), v);
        }

        public void U64(ulong v)
        {
            int at = Reserve(8);
            BinaryPrimitives.WriteUInt64LittleEndian(_data.AsSpan(at), v);
        }

        public void PatchU32(int at, uint v) => BinaryPrimitives.WriteUInt32LittleEndian(_data.AsSpan(at), v);

        public void Bytes(ReadOnlySpan<byte> bytes)
        {
            int at = Reserve(bytes.Length);
            bytes.CopyTo(_data.AsSpan(at));
        }

        public byte[] ToArray() => _data.AsSpan(0, Position).ToArray();

        private void Grow(int count)
        {
            if (Position + count > _data.Length)
            {
                Array.Resize(ref _data, Math.Max(_data.Length * 2, Position + count));
            }
        }
    }
}
