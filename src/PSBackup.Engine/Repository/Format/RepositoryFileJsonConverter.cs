using System.Text.Json;
using System.Text.Json.Serialization;

namespace PSBackup.Engine.Repository;

/// <summary>A manifest's file entries (<see cref="RepositoryFile"/>) read and written by hand: the
/// same JSON as the generated metadata gives (docs/repository-format.md: camelCase, nulls left out,
/// unknown properties skipped), at a fraction of the cost. A manifest holds one entry per file and
/// one hex id per chunk; through the generated constructor-parameter converter, with a string
/// allocated per chunk id, parsing the parent backup's manifest was ~15 % of a no-change backup's
/// CPU on Debian's /usr/lib/x86_64-linux-gnu (docs/design.md, Performance). Anything of the wrong
/// type is a <see cref="JsonException"/> (the manifest does not parse); what the values mean
/// (paths, sizes, hashes) is <see cref="Repository.ValidateManifest"/>'s to check, as before.</summary>
internal sealed class RepositoryFileJsonConverter : JsonConverter<RepositoryFile>
{
    public override RepositoryFile Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw new JsonException("A file entry must be an object.");
        }
        string? path = null, sha256 = null;
        ChunkId digest = default;
        bool held = false;
        long size = 0;
        ChunkId[]? chunks = null;
        RepositoryFileStamp? stamp = null;
        int? mode = null;
        long? uid = null, gid = null, modifiedNs = null;
        while (Next(ref reader) != JsonTokenType.EndObject)
        {
            if (reader.TokenType != JsonTokenType.PropertyName)
            {
                throw new JsonException("A file entry holds a value without a name.");
            }
            if (reader.ValueTextEquals("path"u8))
            {
                Next(ref reader);
                path = ReadString(ref reader, "path");
            }
            else if (reader.ValueTextEquals("size"u8))
            {
                Next(ref reader);
                size = ReadInt64(ref reader, "size");
            }
            else if (reader.ValueTextEquals("sha256"u8))
            {
                Next(ref reader);
                // The usual form straight to its bytes, with no string made; anything else is read as
                // text for validation to judge (and refuse).
                held = reader.TokenType == JsonTokenType.String && !reader.ValueIsEscaped && !reader.HasValueSequence
                    && ChunkId.TryParseLowerUtf8(reader.ValueSpan, out digest);
                sha256 = held ? null : ReadString(ref reader, "sha256");
            }
            else if (reader.ValueTextEquals("chunks"u8))
            {
                Next(ref reader);
                chunks = ReadChunks(ref reader);
            }
            else if (reader.ValueTextEquals("stamp"u8))
            {
                Next(ref reader);
                stamp = ReadStamp(ref reader);
            }
            else if (reader.ValueTextEquals("mode"u8))
            {
                Next(ref reader);
                mode = reader.TokenType == JsonTokenType.Null ? null
                    : reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out int m) ? m
                    : throw new JsonException("A file's mode must be a whole number.");
            }
            else if (reader.ValueTextEquals("uid"u8))
            {
                Next(ref reader);
                uid = ReadNullableInt64(ref reader, "uid");
            }
            else if (reader.ValueTextEquals("gid"u8))
            {
                Next(ref reader);
                gid = ReadNullableInt64(ref reader, "gid");
            }
            else if (reader.ValueTextEquals("modifiedNs"u8))
            {
                Next(ref reader);
                modifiedNs = ReadNullableInt64(ref reader, "modifiedNs");
            }
            else
            {
                Next(ref reader);
                reader.Skip(); // a property this version does not know
            }
        }
        return held
            ? new RepositoryFile(path!, size, null!, chunks!) { Digest = digest, Stamp = stamp, Mode = mode, Uid = uid, Gid = gid, ModifiedNs = modifiedNs }
            : new RepositoryFile(path!, size, sha256!, chunks!) { Stamp = stamp, Mode = mode, Uid = uid, Gid = gid, ModifiedNs = modifiedNs };
    }

    public override void Write(Utf8JsonWriter writer, RepositoryFile value, JsonSerializerOptions options)
    {
        writer.WriteStartObject();
        if (value.Path is not null)
        {
            writer.WriteString("path"u8, value.Path);
        }
        writer.WriteNumber("size"u8, value.Size);
        if (value.TryGetSha256(out ChunkId sha))
        {
            Span<byte> digits = stackalloc byte[64];
            sha.FormatUtf8(digits);
            writer.WriteString("sha256"u8, digits);
        }
        else if (value.Sha256 is not null)
        {
            writer.WriteString("sha256"u8, value.Sha256);
        }
        if (value.Chunks is not null)
        {
            writer.WriteStartArray("chunks"u8);
            Span<byte> hex = stackalloc byte[64];
            foreach (ChunkId id in value.Chunks)
            {
                id.FormatUtf8(hex);
                writer.WriteStringValue(hex);
            }
            writer.WriteEndArray();
        }
        if (value.Stamp is { } s)
        {
            writer.WriteStartObject("stamp"u8);
            writer.WriteNumber("modifiedNs"u8, s.ModifiedNs);
            writer.WriteNumber("changedNs"u8, s.ChangedNs);
            writer.WriteNumber("device"u8, s.Device);
            writer.WriteNumber("inode"u8, s.Inode);
            writer.WriteEndObject();
        }
        if (value.Mode is { } mode)
        {
            writer.WriteNumber("mode"u8, mode);
        }
        if (value.Uid is { } uid)
        {
            writer.WriteNumber("uid"u8, uid);
        }
        if (value.Gid is { } gid)
        {
            writer.WriteNumber("gid"u8, gid);
        }
        if (value.ModifiedNs is { } modifiedNs)
        {
            writer.WriteNumber("modifiedNs"u8, modifiedNs);
        }
        writer.WriteEndObject();
    }

    /// <summary>The next token (the converter is handed the whole value, so the data never ends early).</summary>
    private static JsonTokenType Next(ref Utf8JsonReader reader) =>
        reader.Read() ? reader.TokenType : throw new JsonException("A file entry ends early.");

    private static string? ReadString(ref Utf8JsonReader reader, string what) => reader.TokenType switch
    {
        JsonTokenType.String => reader.GetString(),
        JsonTokenType.Null => null,
        _ => throw new JsonException($"A file's {what} must be a string."),
    };

    private static long ReadInt64(ref Utf8JsonReader reader, string what) =>
        reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out long v) ? v : throw new JsonException($"A file's {what} must be a whole number.");

    private static long? ReadNullableInt64(ref Utf8JsonReader reader, string what) =>
        reader.TokenType == JsonTokenType.Null ? null : ReadInt64(ref reader, what);

    private static ulong ReadUInt64(ref Utf8JsonReader reader, string what) =>
        reader.TokenType == JsonTokenType.Number && reader.TryGetUInt64(out ulong v) ? v : throw new JsonException($"A file stamp's {what} must be a whole number.");

    /// <summary>The ids as an exact array: a parent manifest of many one-chunk files is held whole
    /// during the next backup, and a list grown by doubling kept room for four ids behind each.</summary>
    private static ChunkId[]? ReadChunks(ref Utf8JsonReader reader)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return null;
        }
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            throw new JsonException("A file's chunks must be a list.");
        }
        var chunks = new List<ChunkId>();
        while (Next(ref reader) != JsonTokenType.EndArray)
        {
            chunks.Add(ChunkIdJsonConverter.ReadId(ref reader));
        }
        return chunks.ToArray();
    }

    private static RepositoryFileStamp? ReadStamp(ref Utf8JsonReader reader)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return null;
        }
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw new JsonException("A file's stamp must be an object.");
        }
        long modifiedNs = 0, changedNs = 0;
        ulong device = 0, inode = 0;
        while (Next(ref reader) != JsonTokenType.EndObject)
        {
            if (reader.ValueTextEquals("modifiedNs"u8))
            {
                Next(ref reader);
                modifiedNs = ReadInt64(ref reader, "stamp's modifiedNs");
            }
            else if (reader.ValueTextEquals("changedNs"u8))
            {
                Next(ref reader);
                changedNs = ReadInt64(ref reader, "stamp's changedNs");
            }
            else if (reader.ValueTextEquals("device"u8))
            {
                Next(ref reader);
                device = ReadUInt64(ref reader, "device");
            }
            else if (reader.ValueTextEquals("inode"u8))
            {
                Next(ref reader);
                inode = ReadUInt64(ref reader, "inode");
            }
            else
            {
                Next(ref reader);
                reader.Skip();
            }
        }
        return new RepositoryFileStamp(modifiedNs, changedNs, device, inode);
    }
}
