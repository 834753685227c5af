using System.Buffers.Binary;
using System.Text;

namespace PSBackup.Example;

public enum ExampleOp : byte
{
    Put = 1,
    Delete = 2,
}

/// <summary>One record payload of the example database's WAL. Opaque to the engine; encoded as
/// <c>[u8 version=1][u8 op][i64 timestampUnixMs][u16 keyLength][key UTF-8][u32 valueLength][value]</c>,
/// little-endian.</summary>
public sealed record ExampleRecord(ExampleOp Op, string Key, byte[] Value, long TimestampUnixMs)
{
    public const byte FormatVersion = 1;
    private const int FixedLength = 1 + 1 + 8 + 2 + 4;

    public static ExampleRecord Put(string key, byte[] value, long timestampUnixMs) => new(ExampleOp.Put, key, value, timestampUnixMs);

    public static ExampleRecord Delete(string key, long timestampUnixMs) => new(ExampleOp.Delete, key, [], timestampUnixMs);

    public DateTimeOffset Timestamp => DateTimeOffset.FromUnixTimeMilliseconds(TimestampUnixMs);

    public byte[] Encode()
    {
        int keyLength = Encoding.UTF8.GetByteCount(Key);
        if (keyLength > ushort.MaxValue)
        {
            throw new ArgumentException($"Key is {keyLength} bytes; at most {ushort.MaxValue} fit a record.");
        }
        byte[] data = new byte[FixedLength + keyLength + Value.Length];
        Span<byte> span = data;
        span[0] = FormatVersion;
        span[1] = (byte)Op;
        BinaryPrimitives.WriteInt64LittleEndian(span[2..], TimestampUnixMs);
        BinaryPrimitives.WriteUInt16LittleEndian(span[10..], (ushort)keyLength);
        Encoding.UTF8.GetBytes(Key, span.Slice(12, keyLength));
        BinaryPrimitives.WriteUInt32LittleEndian(span[(12 + keyLength)..], (uint)Value.Length);
        Value.CopyTo(span[(16 + keyLength)..]);
        return data;
    }

    /// <summary>Decodes a payload; anything malformed is an <see cref="InvalidDataException"/>.</summary>
    public static ExampleRecord Decode(ReadOnlySpan<byte> data)
    {
        if (data.Length < FixedLength || data[0] != FormatVersion || data[1] is not ((byte)ExampleOp.Put or (byte)ExampleOp.Delete))
        {
            throw new InvalidDataException($"Not an example record (length {data.Length}, version {(data.Length > 0 ? data[0] : -1)}).");
        }
        long timestamp = BinaryPrimitives.ReadInt64LittleEndian(data[2..]);
        int keyLength = BinaryPrimitives.ReadUInt16LittleEndian(data[10..]);
        if (data.Length < FixedLength + keyLength)
        {
            throw new InvalidDataException("Example record key runs past the end of the record.");
        }
        string key = Encoding.UTF8.GetString(data.Slice(12, keyLength));
        long valueLength = BinaryPrimitives.ReadUInt32LittleEndian(data[(12 + keyLength)..]);
        if (data.Length != FixedLength + keyLength + valueLength)
        {
            throw new InvalidDataException("Example record value length does not match the record length.");
        }
        return new ExampleRecord((ExampleOp)data[1], key, data[(16 + keyLength)..].ToArray(), timestamp);
    }
}
