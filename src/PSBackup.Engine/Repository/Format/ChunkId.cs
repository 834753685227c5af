using System.Buffers.Binary;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace PSBackup.Engine.Repository;

/// <summary>A 32-byte chunk identity: SHA-256 of the plaintext in an unencrypted repository,
/// HMAC-SHA256(idKey, plaintext) in an encrypted one. Written as 64 lowercase hex digits.</summary>
[JsonConverter(typeof(ChunkIdJsonConverter))]
public readonly struct ChunkId : IEquatable<ChunkId>
{
    private readonly ulong _a, _b, _c, _d;

    public ChunkId(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != 32)
        {
            throw new ArgumentException("A chunk id is 32 bytes.", nameof(bytes));
        }
        _a = BinaryPrimitives.ReadUInt64BigEndian(bytes);
        _b = BinaryPrimitives.ReadUInt64BigEndian(bytes[8..]);
        _c = BinaryPrimitives.ReadUInt64BigEndian(bytes[16..]);
        _d = BinaryPrimitives.ReadUInt64BigEndian(bytes[24..]);
    }

    public void CopyTo(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, _a);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], _b);
        BinaryPrimitives.WriteUInt64BigEndian(destination[16..], _c);
        BinaryPrimitives.WriteUInt64BigEndian(destination[24..], _d);
    }

    /// <summary>Parses 64 hex digits; anything else returns false.</summary>
    public static bool TryParse(string? hex, out ChunkId id)
    {
        id = default;
        if (hex is null || hex.Length != 64)
        {
            return false;
        }
        Span<byte> b = stackalloc byte[32];
        if (!Hex.TryDecode(hex, b))
        {
            return false;
        }
        id = new ChunkId(b);
        return true;
    }

    public static ChunkId Parse(string hex) =>
        TryParse(hex, out ChunkId id) ? id : throw new FormatException($"'{hex}' is not a 64-digit hex chunk id.");

    public bool Equals(ChunkId other) => _a == other._a && _b == other._b && _c == other._c && _d == other._d;
    public override bool Equals(object? obj) => obj is ChunkId o && Equals(o);
    public override int GetHashCode() => (int)_a ^ (int)(_a >> 32) ^ (int)_b;
    public static bool operator ==(ChunkId x, ChunkId y) => x.Equals(y);
    public static bool operator !=(ChunkId x, ChunkId y) => !x.Equals(y);

    /// <summary>Writes the 64 lowercase hex digits as UTF-8 into <paramref name="destination"/> (64 bytes).</summary>
    public void FormatUtf8(Span<byte> destination)
    {
        Span<byte> b = stackalloc byte[32];
        CopyTo(b);
        for (int i = 0; i < 32; i++)
        {
            destination[2 * i] = (byte)"0123456789abcdef"[b[i] >> 4];
            destination[2 * i + 1] = (byte)"0123456789abcdef"[b[i] & 0xF];
        }
    }

    /// <summary>Parses 64 hex digits given as UTF-8 bytes; anything else returns false.</summary>
    public static bool TryParseUtf8(ReadOnlySpan<byte> hex, out ChunkId id)
    {
        id = default;
        if (hex.Length != 64)
        {
            return false;
        }
        Span<byte> b = stackalloc byte[32];
        for (int i = 0; i < 32; i++)
        {
            int hi = Hex.Nibble((char)hex[2 * i]), lo = Hex.Nibble((char)hex[2 * i + 1]);
            if (hi < 0 || lo < 0)
            {
                return false;
            }
            b[i] = (byte)((hi << 4) | lo);
        }
        id = new ChunkId(b);
        return true;
    }

    /// <summary>The 64 lowercase hex digits, made in one string (a file's SHA-256 is made from its
    /// bytes each time it is read, <see cref="RepositoryFile.Sha256"/>).</summary>
    public override string ToString()
    {
        Span<byte> digits = stackalloc byte[64];
        FormatUtf8(digits);
        return System.Text.Encoding.ASCII.GetString(digits);
    }

    /// <summary>Parses exactly 64 lowercase hex digits given as UTF-8; anything else (uppercase
    /// included) returns false.</summary>
    internal static bool TryParseLowerUtf8(ReadOnlySpan<byte> hex, out ChunkId id)
    {
        if (!Hex.IsSha256HexUtf8(hex))
        {
            id = default;
            return false;
        }
        return TryParseUtf8(hex, out id);
    }
}

internal sealed class ChunkIdJsonConverter : JsonConverter<ChunkId>
{
    public override ChunkId Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => ReadId(ref reader);

    /// <summary>The chunk id at the reader's string token, decoded from its UTF-8 bytes (no string
    /// is made for an id written plainly, as every writer does).</summary>
    internal static ChunkId ReadId(ref Utf8JsonReader reader)
    {
        if (reader.TokenType == JsonTokenType.String
            && (reader.ValueIsEscaped || reader.HasValueSequence
                ? ChunkId.TryParse(reader.GetString(), out ChunkId id)
                : ChunkId.TryParseUtf8(reader.ValueSpan, out id)))
        {
            return id;
        }
        throw new JsonException("A chunk id must be a string of 64 hex digits.");
    }

    public override void Write(Utf8JsonWriter writer, ChunkId value, JsonSerializerOptions options)
    {
        Span<byte> hex = stackalloc byte[64];
        value.FormatUtf8(hex);
        writer.WriteStringValue(hex);
    }
}

/// <summary>Lowercase hex without APIs newer than .NET 8.</summary>
internal static class Hex
{
    public static string Encode(ReadOnlySpan<byte> bytes) => Convert.ToHexString(bytes).ToLowerInvariant();

    public static bool TryDecode(string hex, Span<byte> destination)
    {
        if (hex.Length != destination.Length * 2)
        {
            return false;
        }
        for (int i = 0; i < destination.Length; i++)
        {
            int hi = Nibble(hex[2 * i]), lo = Nibble(hex[2 * i + 1]);
            if (hi < 0 || lo < 0)
            {
                return false;
            }
            destination[i] = (byte)((hi << 4) | lo);
        }
        return true;
    }

    private static readonly System.Buffers.SearchValues<char> LowerHexDigits = System.Buffers.SearchValues.Create("0123456789abcdef");

    /// <summary>True for exactly 64 lowercase hex digits (the form every id in the repository takes).
    /// Vectorized (SearchValues): it runs for every hash of every manifest and index read.</summary>
    public static bool IsSha256Hex(string? s) => s is not null && s.Length == 64 && s.AsSpan().IndexOfAnyExcept(LowerHexDigits) < 0;

    private static readonly System.Buffers.SearchValues<byte> LowerHexDigitsUtf8 = System.Buffers.SearchValues.Create("0123456789abcdef"u8);

    /// <summary><see cref="IsSha256Hex(string?)"/> for the digits as UTF-8 (a manifest's bytes, read
    /// without making a string).</summary>
    public static bool IsSha256HexUtf8(ReadOnlySpan<byte> utf8) => utf8.Length == 64 && utf8.IndexOfAnyExcept(LowerHexDigitsUtf8) < 0;

    /// <summary>A hex digit's value (either case), -1 for anything else; by table: it runs twice for
    /// every byte of every chunk id read.</summary>
    internal static int Nibble(char c) => c < 128 ? NibbleValues[c] : -1;

    private static ReadOnlySpan<sbyte> NibbleValues =>
    [
        -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
        -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
        -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, -1, -1, -1, -1, -1, -1,
        -1, 10, 11, 12, 13, 14, 15, -1, -1, -1, -1, -1, -1, -1, -1, -1,
        -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
        -1, 10, 11, 12, 13, 14, 15, -1, -1, -1, -1, -1, -1, -1, -1, -1,
        -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    ];
}
