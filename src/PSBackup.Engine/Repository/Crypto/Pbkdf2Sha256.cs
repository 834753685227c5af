using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace PSBackup.Engine.Repository;

/// <summary>PBKDF2-HMAC-SHA256 (RFC 8018 §5.2) with one SHA-256 compression per HMAC half per
/// iteration. The passphrase's 600,000 iterations are the whole cost of a short encrypted run's
/// key derivation, and OpenSSL 3's <c>PKCS5_PBKDF2_HMAC</c> (what <see cref="Rfc2898DeriveBytes"/>
/// calls on Linux) copies, allocates and cleanses a digest context per iteration: ~0.25 s here,
/// most of it that overhead (docs/design.md, Performance, "Passphrase key derivation"). The key's inner and outer
/// pad blocks are compressed once; each iteration then compresses exactly one block for the inner
/// hash and one for the outer, through libcrypto's <c>SHA256_Transform</c> (the same assembly,
/// SHA-NI where the CPU has it). Where that function cannot be loaded (Windows, macOS, no
/// libcrypto) it is <see cref="Rfc2898DeriveBytes.Pbkdf2(byte[], byte[], int, HashAlgorithmName, int)"/>;
/// both give the same bytes (tested against it and the RFC 7914 vectors).</summary>
internal static unsafe class Pbkdf2Sha256
{
    private const int BlockSize = 64, DigestSize = 32;
    /// <summary>OpenSSL's SHA256_CTX: h[8], Nl, Nh, data[16], num, md_len (all 32-bit).</summary>
    private const int ContextSize = 112;

    private static readonly delegate* unmanaged<byte*, int> s_init;
    private static readonly delegate* unmanaged<byte*, byte*, void> s_transform;

    static Pbkdf2Sha256()
    {
        if (!OperatingSystem.IsLinux() || !BitConverter.IsLittleEndian)
        {
            return;
        }
        foreach (string name in new[] { "libcrypto.so.3", "libcrypto.so.1.1" })
        {
            if (NativeLibrary.TryLoad(name, out nint lib)
                && NativeLibrary.TryGetExport(lib, "SHA256_Init", out nint init)
                && NativeLibrary.TryGetExport(lib, "SHA256_Transform", out nint transform))
            {
                s_init = (delegate* unmanaged<byte*, int>)init;
                s_transform = (delegate* unmanaged<byte*, byte*, void>)transform;
                return;
            }
        }
    }

    /// <summary>True when the one-compression-per-half path is in use here.</summary>
    public static bool Fast => s_transform != null;

    /// <summary>PBKDF2-HMAC-SHA256 of <paramref name="password"/> and <paramref name="salt"/>.</summary>
    public static byte[] Derive(byte[] password, byte[] salt, int iterations, int length)
    {
        ArgumentNullException.ThrowIfNull(password);
        ArgumentNullException.ThrowIfNull(salt);
        ArgumentOutOfRangeException.ThrowIfLessThan(iterations, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(length, 1);
        if (!Fast)
        {
            return Rfc2898DeriveBytes.Pbkdf2(password, salt, iterations, HashAlgorithmName.SHA256, length);
        }
        byte[] key = password.Length > BlockSize ? SHA256.HashData(password) : password;
        byte* ctx = stackalloc byte[ContextSize];
        uint* inner = stackalloc uint[8];
        uint* outer = stackalloc uint[8];
        byte* pad = stackalloc byte[BlockSize];
        // The states after the key's inner (0x36) and outer (0x5c) pad blocks.
        PadState(key, 0x36, ctx, pad, inner);
        PadState(key, 0x5c, ctx, pad, outer);

        byte[] result = new byte[length];
        byte[] saltBlock = new byte[salt.Length + 4];
        salt.CopyTo(saltBlock, 0);
        // The message of every iteration after the first is one 32-byte digest: after the pad
        // block, one block of digest || 0x80 || zeros || bit length (64 + 32) * 8 = 768.
        byte* block = stackalloc byte[BlockSize];
        new Span<byte>(block, BlockSize).Clear();
        block[DigestSize] = 0x80;
        BinaryPrimitives.WriteUInt64BigEndian(new Span<byte>(block + BlockSize - 8, 8), (BlockSize + DigestSize) * 8);
        byte* t = stackalloc byte[DigestSize];
        try
        {
            for (int blockIndex = 1, offset = 0; offset < length; blockIndex++, offset += DigestSize)
            {
                BinaryPrimitives.WriteInt32BigEndian(saltBlock.AsSpan(salt.Length), blockIndex);
                byte[] u1 = HMACSHA256.HashData(key, saltBlock);
                u1.CopyTo(new Span<byte>(t, DigestSize));
                u1.CopyTo(new Span<byte>(block, DigestSize));
                CryptographicOperations.ZeroMemory(u1);
                for (int i = 1; i < iterations; i++)
                {
                    // inner = SHA256(ipad || U), outer = SHA256(opad || inner) = the next U.
                    Compress(ctx, inner, block);
                    Compress(ctx, outer, block);
                    ulong* x = (ulong*)t, u = (ulong*)block;
                    x[0] ^= u[0];
                    x[1] ^= u[1];
                    x[2] ^= u[2];
                    x[3] ^= u[3];
                }
                new ReadOnlySpan<byte>(t, Math.Min(DigestSize, length - offset)).CopyTo(result.AsSpan(offset));
            }
            return result;
        }
        finally
        {
            new Span<byte>(ctx, ContextSize).Clear();
            new Span<byte>(pad, BlockSize).Clear();
            new Span<byte>(block, BlockSize).Clear();
            new Span<byte>(t, DigestSize).Clear();
            new Span<uint>(inner, 8).Clear();
            new Span<uint>(outer, 8).Clear();
            if (!ReferenceEquals(key, password))
            {
                CryptographicOperations.ZeroMemory(key);
            }
        }
    }

    private static void PadState(byte[] key, byte value, byte* ctx, byte* pad, uint* state)
    {
        for (int i = 0; i < BlockSize; i++)
        {
            pad[i] = (byte)((i < key.Length ? key[i] : 0) ^ value);
        }
        if (s_init(ctx) != 1)
        {
            throw new CryptographicException("SHA256_Init failed.");
        }
        s_transform(ctx, pad);
        new ReadOnlySpan<uint>(ctx, 8).CopyTo(new Span<uint>(state, 8));
    }

    /// <summary>Compresses <paramref name="block"/> from <paramref name="state"/> and writes the
    /// 32-byte digest (big-endian words) over the block's first 32 bytes, keeping its padding.</summary>
    private static void Compress(byte* ctx, uint* state, byte* block)
    {
        uint* h = (uint*)ctx;
        for (int i = 0; i < 8; i++)
        {
            h[i] = state[i];
        }
        s_transform(ctx, block);
        for (int i = 0; i < 8; i++)
        {
            ((uint*)block)[i] = BinaryPrimitives.ReverseEndianness(h[i]);
        }
    }
}
