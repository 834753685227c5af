using System.Text.Json.Serialization;

namespace PSBackup.Engine.Repository;

/// <summary>Content-defined chunk sizes of one profile, in bytes.</summary>
public sealed record ChunkingParameters(int MinSize, int AvgSize, int MaxSize)
{
    /// <summary>For database store files: small chunks so a few rewritten pages add little.</summary>
    public static ChunkingParameters StoreDefault { get; } = new(2 * 1024, 8 * 1024, 32 * 1024);

    /// <summary>For everything else: larger chunks, fewer index entries.</summary>
    public static ChunkingParameters Default { get; } = new(64 * 1024, 256 * 1024, 1024 * 1024);

    internal void Validate()
    {
        if (MinSize < 64 || AvgSize <= MinSize || MaxSize <= AvgSize || MaxSize > 8 * 1024 * 1024 || (AvgSize & (AvgSize - 1)) != 0)
        {
            throw new InvalidInputException("InvalidChunking",
                $"Chunk sizes min {MinSize}, avg {AvgSize}, max {MaxSize} are not usable. Use 64 <= min < avg < max <= 8 MiB with avg a power of two.");
        }
    }
}

/// <summary>Which chunking profile a file is cut with. The manifest records each file's chunk
/// list, so profiles may differ per file and change between backups.</summary>
public enum ChunkingProfile
{
    /// <summary>~256 KiB chunks (64 KiB..1 MiB).</summary>
    Default,
    /// <summary>~8 KiB chunks (2..32 KiB), for B-tree store files rewritten page by page.</summary>
    Store,
}

/// <summary>The <c>config</c> object: never encrypted, says whether the repository is; fixes
/// the parameters every writer must share (chunking, gear seed) so dedup works across hosts.</summary>
public sealed record RepositoryConfig
{
    public const int CurrentFormatVersion = 1;
    /// <summary>The default gear seed ("PSBKGEAR" as a big-endian integer).</summary>
    public const ulong DefaultGearSeed = 0x5053424B47454152UL;

    public int FormatVersion { get; init; } = CurrentFormatVersion;
    /// <summary>Random 32-byte id in hex; bound into every key wrap.</summary>
    public required string Id { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    /// <summary>"none" or "aes-256-gcm".</summary>
    public required string Encryption { get; init; }
    /// <summary>"sha256" (unencrypted) or "hmac-sha256" (encrypted).</summary>
    public required string ChunkIdAlgorithm { get; init; }
    public string Compression { get; init; } = "zstd";
    public int CompressionLevel { get; init; } = 3;
    public ulong GearSeed { get; init; } = DefaultGearSeed;
    public required ChunkingParameters DefaultChunking { get; init; }
    public required ChunkingParameters StoreChunking { get; init; }
    /// <summary>Plaintext bytes per zstd frame (a frame closes once it reaches this).</summary>
    public int FrameSize { get; init; } = 1024 * 1024;
    /// <summary>Stored bytes per pack (a pack closes once it reaches this).</summary>
    public int PackSize { get; init; } = 16 * 1024 * 1024;

    [JsonIgnore]
    public bool IsEncrypted => Encryption == EncryptionAes256Gcm;

    internal const string EncryptionNone = "none";
    internal const string EncryptionAes256Gcm = "aes-256-gcm";

    internal ChunkingParameters For(ChunkingProfile p) => p == ChunkingProfile.Store ? StoreChunking : DefaultChunking;
}

/// <summary>How to create a repository.</summary>
public sealed record RepositoryInitOptions
{
    /// <summary>Encrypt with a key derived from this passphrase (PBKDF2-SHA256).</summary>
    public string? Passphrase { get; init; }
    /// <summary>Encrypt with a key derived from this file's bytes (at least 32 bytes; HKDF-SHA256).</summary>
    public string? KeyFile { get; init; }
    /// <summary>The key file's bytes given directly (-KeyFile as a SecureString); same derivation.</summary>
    public byte[]? Key { get; init; }
    /// <summary>PBKDF2 iterations; at least 600,000.</summary>
    public int Pbkdf2Iterations { get; init; } = RepositoryCrypto.MinPbkdf2Iterations;
    public ChunkingParameters? DefaultChunking { get; init; }
    public ChunkingParameters? StoreChunking { get; init; }
    public int CompressionLevel { get; init; } = 3;
    /// <summary>Plaintext bytes per frame (64 KiB..16 MiB; default 1 MiB).</summary>
    public int FrameSize { get; init; } = 1024 * 1024;
    /// <summary>Stored bytes per pack (256 KiB..256 MiB; default 16 MiB).</summary>
    public int PackSize { get; init; } = 16 * 1024 * 1024;
}

/// <summary>What opens a repository: nothing (unencrypted), a passphrase, or a key file.</summary>
public sealed record RepositoryCredentials
{
    public string? Passphrase { get; private init; }
    public string? KeyFile { get; private init; }
    /// <summary>A key file's content given directly (an Automation variable, a secret store).</summary>
    public byte[]? Key { get; private init; }

    public static RepositoryCredentials None { get; } = new();
    public static RepositoryCredentials FromPassphrase(string passphrase) => new() { Passphrase = passphrase };
    public static RepositoryCredentials FromKeyFile(string path) => new() { KeyFile = path };
    public static RepositoryCredentials FromKey(byte[] key) => new() { Key = key };

    /// <summary>No key: the repository is (or is to be) unencrypted.</summary>
    public bool IsNone => Passphrase is null && KeyFile is null && Key is null;

    /// <summary>A key file or its content.</summary>
    public bool HasKeyFile => KeyFile is not null || Key is not null;

    /// <summary>The key file's bytes (read, or as given), checked for length.</summary>
    internal byte[] ReadKey() => Key is not null ? RepositoryCrypto.CheckKey(Key, "the key given") : RepositoryCrypto.ReadKeyFile(KeyFile!);
}

/// <summary>The <c>keys/&lt;id&gt;</c> object: the master keys wrapped under a key derived from
/// a passphrase or key file. <see cref="Checksum"/> (unkeyed SHA-256 of the other fields) tells a
/// damaged key object apart from a wrong passphrase.</summary>
internal sealed record KeyObject
{
    public int FormatVersion { get; init; } = 1;
    /// <summary>"pbkdf2-sha256" or "hkdf-sha256-keyfile".</summary>
    public required string Kdf { get; init; }
    public int Iterations { get; init; }
    public required string Salt { get; init; }
    public required string Nonce { get; init; }
    /// <summary>AES-256-GCM(wrapKey, encKey || idKey) ciphertext || tag, base64; AAD = "psbackup-key:" + repository id.</summary>
    public required string Wrapped { get; init; }
    /// <summary>SHA-256 of the config object's stored bytes when the key was made.</summary>
    public required string ConfigSha256 { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
    public string? Host { get; init; }
    public required string Checksum { get; init; }

    internal string ComputeChecksum() => Hex.Encode(System.Security.Cryptography.SHA256.HashData(
        System.Text.Encoding.UTF8.GetBytes($"{FormatVersion}|{Kdf}|{Iterations}|{Salt}|{Nonce}|{Wrapped}|{ConfigSha256}")));
}

/// <summary>One chunk inside a frame's plaintext.</summary>
internal sealed record ChunkEntry(ChunkId Id, int Offset, int Length);

/// <summary>One frame inside a pack: where its stored bytes are, their SHA-256, the plaintext length and its chunks.</summary>
internal sealed record FrameEntry(long Offset, int Length, string Sha256, int PlainLength, IReadOnlyList<ChunkEntry> Chunks);

/// <summary>The pack trailer (a skippable zstd frame at the end of every pack).</summary>
internal sealed record PackTrailer(int FormatVersion, IReadOnlyList<FrameEntry> Frames);

/// <summary>One pack in an index object.</summary>
internal sealed record IndexPack(string Id, long Size, IReadOnlyList<FrameEntry> Frames);

/// <summary>The <c>index/&lt;id&gt;</c> object written by a backup run.</summary>
internal sealed record IndexObject(int FormatVersion, IReadOnlyList<IndexPack> Packs);

/// <summary>The plain JSON marker <c>damaged/&lt;packId&gt;</c>: a pack whose bytes failed a check.
/// Writers store its chunks again, readers try other copies first, repair salvages and removes it.</summary>
public sealed record DamagedPackMarker
{
    public int FormatVersion { get; init; } = 1;
    public required string Pack { get; init; }
    public required string Reason { get; init; }
    public required DateTimeOffset DetectedAt { get; init; }
    public required string Host { get; init; }
}
