using System.Buffers.Binary;
using System.Text;

namespace PSBackup.Bench;

/// <summary>SplitMix64: a small, fast generator whose sequence is fixed by this code alone (not by
/// the .NET version), so a seed gives the same dataset on every machine.</summary>
public sealed class Prng(ulong seed)
{
    private ulong _state = seed;

    /// <summary>A generator for one named thing (a file, a mutation step) under a seed: each file
    /// gets its own stream, so files can be written in any order or in parallel.</summary>
    public static Prng For(long seed, string name, long salt = 0)
    {
        ulong hash = 14695981039346656037UL; // FNV-1a over the UTF-8 name
        foreach (byte b in Encoding.UTF8.GetBytes(name))
        {
            hash = (hash ^ b) * 1099511628211UL;
        }
        return new Prng(hash ^ (ulong)seed * 0x9E3779B97F4A7C15UL ^ (ulong)salt * 0xD1B54A32D192ED03UL);
    }

    public ulong Next()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [0, bound).</summary>
    public int Next(int bound) => (int)(Next() % (ulong)bound);

    /// <summary>Uniform in [min, max).</summary>
    public long Next(long min, long max) => min + (long)(Next() % (ulong)(max - min));

    public void Fill(Span<byte> destination)
    {
        int i = 0;
        for (; i + 8 <= destination.Length; i += 8)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(destination[i..], Next());
        }
        if (i < destination.Length)
        {
            Span<byte> tail = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(tail, Next());
            tail[..(destination.Length - i)].CopyTo(destination[i..]);
        }
    }
}
