using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using PSBackup.Engine.Repository.Compression;

namespace PSBackup.Engine.Repository;

/// <summary>Key derivation, key wrapping and the byte encodings of frames and blobs.
/// Stored frame = zstd frame, or when encrypted nonce(12) || AES-256-GCM(zstd frame) || tag(16).
/// Stored blob (index, manifest, pack trailer) = the same encoding of UTF-8 JSON.</summary>
public static class RepositoryCrypto
{
    public const int MinPbkdf2Iterations = 600_000;
    internal const int NonceSize = 12;
    internal const int TagSize = 16;
    internal const int SealOverhead = NonceSize + TagSize;
    internal const string KdfPbkdf2 = "pbkdf2-sha256";
    internal const string KdfKeyFile = "hkdf-sha256-keyfile";

    internal static byte[] DeriveWrapKey(KeyObject k, RepositoryCredentials cred, string where)
    {
        byte[] salt = Convert.FromBase64String(k.Salt);
        if (k.Kdf == KdfPbkdf2)
        {
            if (cred.Passphrase is null)
            {
                throw new RepositoryKeyException($"The repository at {where} is encrypted with a passphrase. Give the passphrase (-Passphrase, or the PSBACKUP_PASSPHRASE environment variable).", where);
            }
            return Pbkdf2Sha256.Derive(Encoding.UTF8.GetBytes(cred.Passphrase), salt, k.Iterations, 32);
        }
        if (k.Kdf == KdfKeyFile)
        {
            if (!cred.HasKeyFile)
            {
                throw new RepositoryKeyException($"The repository at {where} is encrypted with a key file. Give the key file (-KeyFile, or the PSBACKUP_KEY_FILE environment variable).", where);
            }
            return HKDF.DeriveKey(HashAlgorithmName.SHA256, cred.ReadKey(), 32, salt, Encoding.UTF8.GetBytes("psbackup key file"));
        }
        throw new RepositoryIntegrityException("KeyInvalid", $"The key object uses an unknown key derivation '{k.Kdf}'. Use a newer PSBackup.", where);
    }

    internal static byte[] ReadKeyFile(string path)
    {
        byte[] bytes;
        try
        {
            using FileStream stream = SpecialFiles.OpenRegular(path, 1, FileOptions.None); // never a FIFO that blocks
            if (stream.Length > 1 << 20)
            {
                throw new InvalidInputException("KeyFileTooLarge", $"The key file '{path}' has {stream.Length} bytes; a key file is a few random bytes (e.g. 64). Give the right file.", path);
            }
            bytes = new byte[stream.Length];
            stream.ReadExactly(bytes);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new NotFoundException("KeyFileNotFound", $"The key file '{path}' does not exist. Give the path of the repository's key file (-KeyFile, or PSBACKUP_KEY_FILE).", path);
        }
        catch (UnauthorizedAccessException)
        {
            throw new InvalidInputException("KeyFileUnreadable", $"The key file '{path}' exists but this user may not read it. Run as the user the key file belongs to, or give it read permission for this user.", path);
        }
        catch (IOException e)
        {
            throw new InvalidInputException("KeyFileUnreadable", $"The key file '{path}' cannot be read: {e.Message}. Give a readable key file.", path);
        }
        return CheckKey(bytes, $"the key file '{path}'", path);
    }

    /// <summary>A key file's content must hold at least 32 bytes.</summary>
    internal static byte[] CheckKey(byte[] bytes, string what, string? target = null)
    {
        if (bytes.Length < 32)
        {
            throw new InvalidInputException("KeyFileTooShort", $"{char.ToUpperInvariant(what[0])}{what[1..]} has {bytes.Length} bytes; a key file needs at least 32 random bytes (New-BackupKeyFile / 'psbackup key new' makes one).", target);
        }
        return bytes;
    }

    /// <summary>Creates a key object wrapping <paramref name="master"/> (64 bytes: encKey || idKey).</summary>
    internal static KeyObject CreateKey(RepositoryInitOptions o, string repoId, string configSha256, byte[] master, DateTimeOffset now)
    {
        byte[] salt = RandomNumberGenerator.GetBytes(32);
        KeyObject k;
        if (o.Passphrase is not null)
        {
            if (o.Passphrase.Length == 0)
            {
                throw new InvalidInputException("EmptyPassphrase", "The passphrase is empty. Give a non-empty passphrase or a key file.");
            }
            if (o.Pbkdf2Iterations < MinPbkdf2Iterations)
            {
                throw new InvalidInputException("InvalidIterations", $"PBKDF2 iterations must be at least {MinPbkdf2Iterations:N0}.");
            }
            k = new KeyObject { Kdf = KdfPbkdf2, Iterations = o.Pbkdf2Iterations, Salt = Convert.ToBase64String(salt), Nonce = "", Wrapped = "", ConfigSha256 = configSha256, Checksum = "" };
        }
        else
        {
            k = new KeyObject { Kdf = KdfKeyFile, Salt = Convert.ToBase64String(salt), Nonce = "", Wrapped = "", ConfigSha256 = configSha256, Checksum = "" };
        }
        byte[] wrapKey = DeriveWrapKey(k, new RepositoryCredentialsInternal(o.Passphrase, o.KeyFile, o.Key).ToCredentials(), "(new repository)");
        byte[] nonce = RandomNumberGenerator.GetBytes(NonceSize);
        byte[] ct = new byte[master.Length + TagSize];
        using (var gcm = new AesGcm(wrapKey, TagSize))
        {
            gcm.Encrypt(nonce, master, ct.AsSpan(0, master.Length), ct.AsSpan(master.Length), KeyAad(repoId));
        }
        k = k with { Nonce = Convert.ToBase64String(nonce), Wrapped = Convert.ToBase64String(ct), CreatedAt = now, Host = Environment.MachineName };
        return k with { Checksum = k.ComputeChecksum() };
    }

    private sealed record RepositoryCredentialsInternal(string? Passphrase, string? KeyFile, byte[]? Key)
    {
        public RepositoryCredentials ToCredentials() =>
            Passphrase is not null ? RepositoryCredentials.FromPassphrase(Passphrase)
            : Key is not null ? RepositoryCredentials.FromKey(Key) : RepositoryCredentials.FromKeyFile(KeyFile!);
    }

    /// <summary>The master keys wrapped in <paramref name="k"/>, or null when the credential does not
    /// open it. A passphrase's PBKDF2 result is remembered in <see cref="WrapKeyCache"/> once it has
    /// unwrapped a key, so later opens in this process skip the derivation (never the unwrap).</summary>
    internal static byte[]? Unwrap(KeyObject k, RepositoryCredentials cred, string repoId, string where)
    {
        bool pbkdf2 = k.Kdf == KdfPbkdf2 && cred.Passphrase is not null;
        if (pbkdf2 && WrapKeyCache.TryGet(cred.Passphrase!, k.Salt, k.Iterations) is { } cached)
        {
            OperationLog.Verbose($"Key cache: reused the passphrase key derived earlier in this session (skipped PBKDF2, {k.Iterations} iterations; {WrapKeyCache.Variable}=off disables the cache).");
            return TryUnwrap(k, cached, repoId);
        }
        byte[] wrapKey = DeriveWrapKey(k, cred, where);
        byte[]? master = TryUnwrap(k, wrapKey, repoId);
        if (master is not null && pbkdf2)
        {
            bool kept = WrapKeyCache.Add(cred.Passphrase!, k.Salt, k.Iterations, wrapKey);
            OperationLog.Verbose(kept
                ? $"Key cache: derived the passphrase key (PBKDF2, {k.Iterations} iterations) and kept it for later opens in this session."
                : $"Key cache: derived the passphrase key (PBKDF2, {k.Iterations} iterations); the cache is off ({WrapKeyCache.Variable}).");
        }
        else if (master is not null)
        {
            OperationLog.Verbose("Opened the repository key with the key file.");
        }
        return master;
    }

    /// <summary>Unwraps the master keys, or returns null when the tag does not verify (wrong key).</summary>
    private static byte[]? TryUnwrap(KeyObject k, byte[] wrapKey, string repoId)
    {
        byte[] nonce = Convert.FromBase64String(k.Nonce);
        byte[] ct = Convert.FromBase64String(k.Wrapped);
        if (nonce.Length != NonceSize || ct.Length != 64 + TagSize)
        {
            return null;
        }
        byte[] master = new byte[64];
        try
        {
            using var gcm = new AesGcm(wrapKey, TagSize);
            gcm.Decrypt(nonce, ct.AsSpan(0, 64), ct.AsSpan(64), master, KeyAad(repoId));
            return master;
        }
        catch (AuthenticationTagMismatchException)
        {
            return null;
        }
    }

    private static byte[] KeyAad(string repoId) => Encoding.UTF8.GetBytes("psbackup-key:" + repoId);
}

/// <summary>Turns plaintext into stored bytes and back for one repository (compression, and
/// encryption when the repository is encrypted), and computes chunk ids.</summary>
internal sealed class BlobCodec
{
    private readonly byte[]? _encKey;
    private readonly byte[]? _idKey;
    private readonly int _level;

    public BlobCodec(IBlockCompressor zstd, byte[]? encKey, byte[]? idKey, int level)
    {
        Zstd = zstd;
        _encKey = encKey;
        _idKey = idKey;
        _level = level;
    }

    public IBlockCompressor Zstd { get; }
    public bool Encrypted => _encKey is not null;

    public ChunkId ComputeId(ReadOnlySpan<byte> plaintext)
    {
        Span<byte> h = stackalloc byte[32];
        if (_idKey is null)
        {
            SHA256.HashData(plaintext, h);
        }
        else
        {
            HMACSHA256.HashData(_idKey, plaintext, h);
        }
        return new ChunkId(h);
    }

    /// <summary>Buffer size <see cref="Encode"/> needs for <paramref name="plainLength"/> bytes.</summary>
    public int MaxStoredLength(int plainLength) => Zstd.MaxCompressedLength(plainLength) + RepositoryCrypto.SealOverhead;

    /// <summary>Encodes into <paramref name="output"/> (at least <see cref="MaxStoredLength"/>).
    /// When encrypted, the zstd frame is written after the nonce and sealed in place. Returns the
    /// stored length.</summary>
    public int Encode(ReadOnlySpan<byte> plain, Span<byte> output) => Encode(plain, output, _level);

    /// <summary>As <see cref="Encode(ReadOnlySpan{byte}, Span{byte})"/> at another zstd level (any
    /// level decodes the same way: the level is the writer's choice, not part of the format).</summary>
    public int Encode(ReadOnlySpan<byte> plain, Span<byte> output, int level)
    {
        if (_encKey is null)
        {
            return Zstd.Compress(plain, output, level);
        }
        int n = Zstd.Compress(plain, output[RepositoryCrypto.NonceSize..^RepositoryCrypto.TagSize], level);
        Seal(output, n);
        return n + RepositoryCrypto.SealOverhead;
    }

    /// <summary>Seals the <paramref name="n"/>-byte frame that follows the nonce's room in
    /// <paramref name="output"/> in place: a fresh nonce before it, the AES-GCM tag after it.</summary>
    private void Seal(Span<byte> output, int n)
    {
        Span<byte> nonce = output[..RepositoryCrypto.NonceSize];
        Span<byte> frame = output.Slice(RepositoryCrypto.NonceSize, n);
        RandomNumberGenerator.Fill(nonce);
        using var gcm = new AesGcm(_encKey!, RepositoryCrypto.TagSize);
        gcm.Encrypt(nonce, frame, frame, output.Slice(RepositoryCrypto.NonceSize + n, RepositoryCrypto.TagSize));
    }

    /// <summary>Authenticates and decrypts a sealed object's frame into <paramref name="into"/>
    /// (which may be the frame's own bytes in <paramref name="stored"/>); returns its length.</summary>
    private int Unseal(ReadOnlySpan<byte> stored, Span<byte> into)
    {
        if (stored.Length < RepositoryCrypto.SealOverhead)
        {
            throw new InvalidDataException("The sealed object is shorter than its nonce and tag.");
        }
        int n = stored.Length - RepositoryCrypto.SealOverhead;
        try
        {
            using var gcm = new AesGcm(_encKey!, RepositoryCrypto.TagSize);
            gcm.Decrypt(stored[..RepositoryCrypto.NonceSize], stored.Slice(RepositoryCrypto.NonceSize, n), stored[^RepositoryCrypto.TagSize..], into[..n]);
        }
        catch (AuthenticationTagMismatchException e)
        {
            throw new InvalidDataException("The AES-GCM tag does not verify.", e);
        }
        return n;
    }

    /// <summary>Decodes stored bytes (already hash-checked) into <paramref name="plain"/>;
    /// returns the plaintext length. Throws <see cref="InvalidDataException"/> on a bad tag or frame.</summary>
    public int Decode(ReadOnlySpan<byte> stored, Span<byte> plain, Span<byte> scratch)
    {
        if (_encKey is null)
        {
            return Zstd.Decompress(stored, plain);
        }
        int n = Unseal(stored, scratch);
        return Zstd.Decompress(scratch[..n], plain);
    }

    /// <summary><see cref="Decode"/> for stored bytes the caller owns and will not read again: an
    /// encrypted frame is decrypted where it lies (no second buffer of the frame's size), so
    /// <paramref name="stored"/> holds the compressed frame afterwards.</summary>
    public int DecodeInPlace(Span<byte> stored, Span<byte> plain)
    {
        if (_encKey is null)
        {
            return Zstd.Decompress(stored, plain);
        }
        int n = UnsealInPlace(stored);
        return Zstd.Decompress(stored.Slice(RepositoryCrypto.NonceSize, n), plain);
    }

    /// <summary><see cref="Unseal"/> into the sealed bytes themselves: the plaintext over the
    /// ciphertext, after the nonce; its length.</summary>
    private int UnsealInPlace(Span<byte> stored) =>
        stored.Length < RepositoryCrypto.SealOverhead
            ? throw new InvalidDataException("The sealed object is shorter than its nonce and tag.") // before the slice below
            : Unseal(stored, stored[RepositoryCrypto.NonceSize..]);

    /// <summary>Encodes a JSON document as a stored blob.</summary>
    public byte[] EncodeJson<T>(T value) => EncodeJson(value, out _);

    /// <summary>Encodes a JSON document as a stored blob; <paramref name="plainLength"/> is its JSON size.</summary>
    public byte[] EncodeJson<T>(T value, out int plainLength)
    {
        long counted = RepositoryJson.Count(value);
        if (counted >= StreamedJsonFrom && ZstdFrameWriter.Begin(Zstd, _level, counted) is { } frame)
        {
            using (frame)
            {
                plainLength = checked((int)counted);
                return EncodeStreamed(value, frame, counted);
            }
        }
        byte[] json = RepositoryJson.SerializeExact(value, counted);
        plainLength = json.Length;
        // Uninitialized: only the first n bytes are written and only they leave (copied below); the
        // bound is the JSON's size, and zeroing it touched every page of it (a 25 MiB manifest of
        // 62,000 files stores ~5 MiB, so ~20 MiB more at a backup's peak).
        byte[] output = GC.AllocateUninitializedArray<byte>(MaxStoredLength(json.Length));
        int n = Encode(json, output);
        return output.AsSpan(0, n).ToArray();
    }

    /// <summary>Blobs written and read in steps on this thread (tests: the paths are taken).</summary>
    [ThreadStatic]
    internal static int StreamedEncodes, StreamedDecodes;

    /// <summary>JSON from this size on is compressed while it is serialized
    /// (<see cref="EncodeStreamed"/>); smaller JSON in one call, as before.</summary>
    internal const long StreamedJsonFrom = 1 << 20;

    /// <summary>The stored blob of <paramref name="value"/>'s JSON (<paramref name="counted"/> bytes)
    /// without the JSON ever whole in memory: the serializer writes into a small buffer that zstd
    /// consumes as it fills, and only the compressed frame is held. A 62,000-file manifest is
    /// 25 MiB of JSON and ~5 MiB stored; one array of its JSON and one of its compression bound
    /// were ~50 MiB at the very end of a backup, its peak.</summary>
    private byte[] EncodeStreamed<T>(T value, ZstdFrameWriter frame, long counted)
    {
        StreamedEncodes++;
        int front = _encKey is null ? 0 : RepositoryCrypto.NonceSize;
        var sink = new CompressingBufferWriter(frame);
        RepositoryJson.SerializeTo(sink, value);
        if (sink.Consumed != counted)
        {
            throw new InvalidOperationException($"The JSON of a {typeof(T).Name} serialized to {sink.Consumed} bytes after counting {counted}.");
        }
        byte[] stored = sink.Finish(front, _encKey is null ? 0 : RepositoryCrypto.TagSize);
        if (_encKey is not null)
        {
            Seal(stored, stored.Length - RepositoryCrypto.SealOverhead);
        }
        return stored;
    }

    /// <summary>Hands the JSON writer a small buffer and compresses it into the frame whenever it
    /// fills; the compressed bytes collect in 1 MiB pieces, copied once into the stored array.</summary>
    private sealed class CompressingBufferWriter(ZstdFrameWriter frame) : IBufferWriter<byte>
    {
        private const int Piece = 1 << 20;
        private byte[] _input = new byte[256 * 1024];
        private int _filled;
        private readonly List<byte[]> _pieces = [new byte[Piece]];
        private int _lastUsed;

        /// <summary>The JSON bytes written so far.</summary>
        public long Consumed { get; private set; }

        public void Advance(int count)
        {
            if (count < 0 || count > _input.Length - _filled)
            {
                throw new InvalidOperationException($"The JSON writer advanced {count} bytes past the {_input.Length - _filled} it was given.");
            }
            _filled += count;
            Consumed += count;
        }

        public Memory<byte> GetMemory(int sizeHint = 0)
        {
            int need = Math.Max(sizeHint, 1);
            if (_input.Length - _filled < need)
            {
                Drain(end: false);
                if (_input.Length < need)
                {
                    _input = new byte[need];
                }
            }
            return _input.AsMemory(_filled);
        }

        public Span<byte> GetSpan(int sizeHint = 0) => GetMemory(sizeHint).Span;

        /// <summary>Ends the frame; returns it in one array with <paramref name="front"/> bytes
        /// before it and <paramref name="back"/> after it (the nonce and tag, filled by the caller).</summary>
        public byte[] Finish(int front, int back)
        {
            Drain(end: true);
            long length = (long)(_pieces.Count - 1) * Piece + _lastUsed;
            byte[] stored = new byte[checked(front + (int)length + back)];
            int at = front;
            for (int k = 0; k < _pieces.Count; k++)
            {
                int n = k == _pieces.Count - 1 ? _lastUsed : Piece;
                _pieces[k].AsSpan(0, n).CopyTo(stored.AsSpan(at));
                at += n;
            }
            return stored;
        }

        private void Drain(bool end)
        {
            ReadOnlySpan<byte> input = _input.AsSpan(0, _filled);
            while (true)
            {
                if (_lastUsed == Piece)
                {
                    _pieces.Add(new byte[Piece]);
                    _lastUsed = 0;
                }
                nuint left = frame.Step(input, _pieces[^1].AsSpan(_lastUsed), end, out int consumed, out int written);
                input = input[consumed..];
                _lastUsed += written;
                if (input.IsEmpty && (!end || left == 0))
                {
                    break;
                }
            }
            _filled = 0;
        }
    }

    /// <summary>Decodes a stored blob to its JSON bytes (hash already checked by the caller). The
    /// zstd frame's declared content size is checked against <paramref name="kind"/>'s limits
    /// (<see cref="BlobLimits"/>) before anything is allocated, so a small hostile object cannot
    /// inflate to gigabytes.</summary>
    public byte[] DecodeBlob(ReadOnlySpan<byte> stored, BlobKind kind)
    {
        ReadOnlySpan<byte> frame = stored;
        if (_encKey is not null)
        {
            byte[] scratch = new byte[Math.Max(0, stored.Length - RepositoryCrypto.SealOverhead)];
            frame = scratch.AsSpan(0, Unseal(stored, scratch));
        }
        return DecompressWhole(frame, DeclaredSize(frame, kind, stored.Length));
    }

    /// <summary>The frame's declared content size, refused when absent or over <paramref name="kind"/>'s
    /// limits (<see cref="BlobLimits"/>): checked before anything is allocated for it.</summary>
    private static long DeclaredSize(ReadOnlySpan<byte> frame, BlobKind kind, int storedLength)
    {
        long size = ZstdFrame.ContentSize(frame);
        if (size < 0)
        {
            throw new InvalidDataException("The zstd frame does not declare its content size.");
        }
        return BlobLimits.Problem(kind, size, storedLength) is { } problem ? throw new InvalidDataException(problem) : size;
    }

    /// <summary>The whole plaintext of a frame of <paramref name="size"/> declared bytes, in one call.</summary>
    private byte[] DecompressWhole(ReadOnlySpan<byte> frame, long size)
    {
        byte[] plain = new byte[size];
        int got = Zstd.Decompress(frame, plain);
        return got == size ? plain : throw new InvalidDataException("The zstd frame's content size does not match its header.");
    }

    /// <summary>The largest zstd window a JSON blob is read with in steps: the writer's levels
    /// use 2-8 MiB for large input. A frame asking for more is decoded whole (<see cref="DecodeBlob"/>).</summary>
    internal const long MaxStreamedWindow = 8L << 20;

    /// <summary>Decodes a stored JSON blob (hash already checked by the caller) and parses it,
    /// with <see cref="DecodeBlob"/>'s checks. From <see cref="StreamedJsonFrom"/> bytes of JSON on,
    /// the plaintext is parsed as it is decompressed, never whole in memory (a 62,000-file
    /// manifest: 25 MiB that a no-change backup, a restore or a listing held only to parse it).
    /// <paramref name="stored"/> is decrypted in place: the caller's bytes are consumed.
    /// Malformed bytes are an <see cref="InvalidDataException"/>, malformed JSON a <see cref="JsonException"/>.</summary>
    public T? DecodeJson<T>(byte[] stored, BlobKind kind)
    {
        Memory<byte> frame = stored;
        if (_encKey is not null)
        {
            // In place: the frame's plaintext over its ciphertext, after the nonce.
            frame = stored.AsMemory(RepositoryCrypto.NonceSize, UnsealInPlace(stored));
        }
        long size = DeclaredSize(frame.Span, kind, stored.Length);
        JsonTypeInfo<T> info = JsonInfo.Of<T>(RepositoryJson.Options);
        if (size >= StreamedJsonFrom && ZstdFrame.WindowSize(frame.Span) is > 0 and <= MaxStreamedWindow
            && ZstdFrameReader.Begin(Zstd) is { } reader)
        {
            StreamedDecodes++;
            using var plain = new ZstdFrameStream(reader, frame, size);
            T? value = JsonSerializer.Deserialize(plain, info);
            // The parser reads to the end of the stream, where the frame's own checks run; make sure.
            return plain.ReadByte() == -1 && plain.Position == size ? value : throw new InvalidDataException("The JSON ends before its zstd frame does.");
        }
        return JsonSerializer.Deserialize(DecompressWhole(frame.Span, size), info);
    }
}

/// <summary>The JSON blobs of the format.</summary>
public enum BlobKind
{
    Manifest,
    Index,
    PackTrailer,
}

/// <summary>How far a stored blob may inflate: what a reader accepts and a writer may write. JSON
/// of random ids compresses about 2:1, so a legitimate index or trailer is never more than a few
/// times its stored size; a manifest repeats a chunk id for every chunk of a file of zeros, so its
/// ratio is bounded only above a floor. A blob over its limit is damaged or hostile (a
/// decompression bomb), refused before its plaintext is allocated.</summary>
public static class BlobLimits
{
    /// <summary>Largest manifest: 1 GiB of JSON (~15 million chunk ids), as before this limit existed.</summary>
    public const long MaxManifest = 1L << 30;
    /// <summary>Manifests up to this size may have any compression ratio.</summary>
    public const long ManifestFloor = 16L << 20;
    /// <summary>Above <see cref="ManifestFloor"/>, the largest plaintext : stored ratio of a manifest.</summary>
    public const int ManifestRatio = 256;
    /// <summary>Largest index object or pack trailer (prune used to write one index object for the whole repository).</summary>
    public const long MaxIndex = 1L << 30;
    /// <summary>Index objects and trailers up to this size may have any ratio; above it at most <see cref="IndexRatio"/>.</summary>
    public const long IndexFloor = 1L << 20;
    public const int IndexRatio = 16;

    /// <summary>Why a blob of <paramref name="kind"/> declaring <paramref name="plain"/> bytes, stored in
    /// <paramref name="stored"/> bytes, is refused; null when it is acceptable.</summary>
    public static string? Problem(BlobKind kind, long plain, long stored)
    {
        (long max, long floor, int ratio, string what) = kind switch
        {
            BlobKind.Manifest => (MaxManifest, ManifestFloor, ManifestRatio, "manifest"),
            BlobKind.Index => (MaxIndex, IndexFloor, IndexRatio, "index object"),
            _ => (MaxIndex, IndexFloor, IndexRatio, "pack trailer"),
        };
        if (plain > max)
        {
            return $"it declares {plain} bytes of {what} JSON, more than the {max} bytes a {what} may have";
        }
        if (plain > floor && plain / Math.Max(1, stored) >= ratio)
        {
            return $"it declares {plain} bytes of {what} JSON in {stored} stored bytes (a ratio of {plain / Math.Max(1, stored)}:1; a {what} above {floor} bytes compresses less than {ratio}:1), which only a decompression bomb does";
        }
        return null;
    }
}

/// <summary>Reads the content size from a zstd frame header (RFC 8878 §3.1.1.1).</summary>
internal static class ZstdFrame
{
    public const uint Magic = 0xFD2FB528;

    /// <summary>The declared content size, or -1 when absent or malformed.</summary>
    public static long ContentSize(ReadOnlySpan<byte> f)
    {
        if (f.Length < 6 || BinaryPrimitives.ReadUInt32LittleEndian(f) != Magic)
        {
            return -1;
        }
        byte fhd = f[4];
        int fcsFlag = fhd >> 6;
        bool single = (fhd & 0x20) != 0;
        int didFlag = fhd & 3;
        int pos = 5 + (single ? 0 : 1) + didFlag switch { 0 => 0, 1 => 1, 2 => 2, _ => 4 };
        int fcsSize = fcsFlag switch { 0 => single ? 1 : 0, 1 => 2, 2 => 4, _ => 8 };
        if (fcsSize == 0 || f.Length < pos + fcsSize)
        {
            return -1;
        }
        return fcsSize switch
        {
            1 => f[pos],
            2 => BinaryPrimitives.ReadUInt16LittleEndian(f[pos..]) + 256,
            4 => BinaryPrimitives.ReadUInt32LittleEndian(f[pos..]),
            _ => (long)Math.Min(BinaryPrimitives.ReadUInt64LittleEndian(f[pos..]), long.MaxValue),
        };
    }

    /// <summary>The window a decoder of this frame keeps (RFC 8878, 3.1.1.1.2): from the window
    /// descriptor, or the content size for a single-segment frame; -1 when malformed.</summary>
    public static long WindowSize(ReadOnlySpan<byte> f)
    {
        if (f.Length < 6 || BinaryPrimitives.ReadUInt32LittleEndian(f) != Magic)
        {
            return -1;
        }
        if ((f[4] & 0x20) != 0)
        {
            return ContentSize(f);
        }
        int exponent = f[5] >> 3, mantissa = f[5] & 7;
        long windowBase = 1L << (10 + exponent);
        return windowBase + windowBase / 8 * mantissa;
    }
}

internal static class RepositoryJson
{
    /// <summary>The repository's JSON: camelCase, nulls left out; metadata from
    /// <see cref="EngineJsonContext"/> (generated at build time: a short CLI run builds no
    /// reflection serializer, and the CLI can run as Native AOT).</summary>
    public static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
        WriteIndented = false,
        TypeInfoResolver = EngineJsonContext.Default,
    };

    public static readonly JsonSerializerOptions Indented = new(Options) { WriteIndented = true };

    public static T? Deserialize<T>(ReadOnlySpan<byte> json) => JsonSerializer.Deserialize(json, JsonInfo.Of<T>(Options));

    public static byte[] Serialize<T>(T value, bool indented = false) => JsonSerializer.SerializeToUtf8Bytes(value, JsonInfo.Of<T>(indented ? Indented : Options));

    /// <summary>What <see cref="Serialize{T}"/> gives (the same bytes), in one array of exactly the
    /// JSON's length: a first pass only counts the bytes, a second writes them into that array.
    /// <c>SerializeToUtf8Bytes</c> grows a buffer from the shared <see cref="ArrayPool{T}"/> by
    /// doubling and returns each to the pool, which keeps them: after a manifest of 62,000 files
    /// (25 MiB of JSON) ~70 MiB stayed reachable in the pool for the rest of the process (a
    /// PowerShell session, an Azure Automation job, the next object of a wildcard run). The second
    /// serialization costs ~1 % of such a backup's CPU.</summary>
    public static byte[] SerializeExact<T>(T value) => SerializeExact(value, Count(value));

    /// <summary><see cref="SerializeExact{T}(T)"/> of a value already <see cref="Count"/>ed at <paramref name="counted"/> bytes.</summary>
    public static byte[] SerializeExact<T>(T value, long counted)
    {
        // Zeroed: a writer that skipped a byte would leave zeros here, never stale heap memory.
        byte[] json = new byte[checked((int)counted)];
        var fill = new FillBufferWriter(json);
        SerializeTo(fill, value);
        return fill.Written == json.Length ? json : throw new InvalidOperationException($"The JSON of a {typeof(T).Name} serialized to {fill.Written} bytes after counting {json.Length}.");
    }

    /// <summary>The length of <paramref name="value"/>'s JSON, from a pass that writes nothing down.</summary>
    public static long Count<T>(T value)
    {
        var counter = new CountingBufferWriter();
        SerializeTo(counter, value);
        return counter.Written;
    }

    /// <summary>Writes <paramref name="value"/>'s JSON (<see cref="Serialize{T}"/>'s bytes) into <paramref name="target"/>.</summary>
    public static void SerializeTo<T>(IBufferWriter<byte> target, T value)
    {
        using var writer = new Utf8JsonWriter(target, WriterOptions);
        JsonSerializer.Serialize(writer, value, JsonInfo.Of<T>(Options));
    }

    /// <summary>The writer options <see cref="JsonSerializer"/> derives from <see cref="Options"/>.</summary>
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = Options.Encoder, Indented = false, MaxDepth = 64, SkipValidation = true };

    /// <summary>Counts what is written into one reused scratch buffer.</summary>
    private sealed class CountingBufferWriter : IBufferWriter<byte>
    {
        private byte[] _scratch = new byte[16 * 1024];

        public long Written { get; private set; }

        public void Advance(int count) => Written += count;

        public Memory<byte> GetMemory(int sizeHint = 0)
        {
            if (sizeHint > _scratch.Length)
            {
                _scratch = new byte[sizeHint];
            }
            return _scratch;
        }

        public Span<byte> GetSpan(int sizeHint = 0) => GetMemory(sizeHint).Span;
    }

    /// <summary>Writes into an array sized beforehand; a request larger than what is left gets a
    /// scratch buffer whose bytes are copied in on <see cref="Advance"/> (the writer asks for more
    /// room than it uses).</summary>
    private sealed class FillBufferWriter(byte[] target) : IBufferWriter<byte>
    {
        private byte[]? _scratch;
        private bool _inScratch;

        public int Written { get; private set; }

        public void Advance(int count)
        {
            if (count < 0 || count > target.Length - Written)
            {
                throw new InvalidOperationException($"The JSON outgrew the {target.Length} bytes it was counted at.");
            }
            if (_inScratch)
            {
                _scratch.AsSpan(0, count).CopyTo(target.AsSpan(Written));
                _inScratch = false;
            }
            Written += count;
        }

        public Memory<byte> GetMemory(int sizeHint = 0)
        {
            int left = target.Length - Written;
            if (left >= Math.Max(sizeHint, 1))
            {
                _inScratch = false;
                return target.AsMemory(Written);
            }
            if (_scratch is null || _scratch.Length < Math.Max(sizeHint, 256))
            {
                _scratch = new byte[Math.Max(sizeHint, 256)];
            }
            _inScratch = true;
            return _scratch;
        }

        public Span<byte> GetSpan(int sizeHint = 0) => GetMemory(sizeHint).Span;
    }
}
