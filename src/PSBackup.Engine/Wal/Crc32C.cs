using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace PSBackup.Engine.Wal;

/// <summary>CRC-32C (Castagnoli), as walfs uses it: standard ~0 initial value and final inversion.
/// <see cref="BitOperations.Crc32C(uint, ulong)"/> uses the SSE4.2 / ARMv8 CRC instruction when
/// present and a table otherwise.</summary>
public static class Crc32C
{
    /// <summary>The running state before any byte is added.</summary>
    public const uint InitialState = 0xFFFFFFFF;

    /// <summary>The CRC of <paramref name="data"/> in one call.</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => Finish(Update(InitialState, data));

    /// <summary>Adds bytes to a running state (start from <see cref="InitialState"/>). Compiled fully
    /// optimized at once: validating a segment spends most of its time here, and a short-lived
    /// process would otherwise run the whole segment through the unoptimized first tier.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static uint Update(uint state, ReadOnlySpan<byte> data)
    {
        while (data.Length >= 8)
        {
            state = BitOperations.Crc32C(state, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[8..];
        }
        if (data.Length >= 4)
        {
            state = BitOperations.Crc32C(state, BinaryPrimitives.ReadUInt32LittleEndian(data));
            data = data[4..];
        }
        foreach (byte b in data)
        {
            state = BitOperations.Crc32C(state, b);
        }
        return state;
    }

    /// <summary>The CRC value of a running state.</summary>
    public static uint Finish(uint state) => ~state;
}

/// <summary>CRC-32 with the IEEE polynomial (reflected 0xEDB88320), as Go's
/// <c>crc32.ChecksumIEEE</c>: walfs segments written before May 2025 use it.</summary>
public static class Crc32Ieee
{
    private static readonly uint[] Table = BuildTable();

    public static uint Compute(ReadOnlySpan<byte> data) => Finish(Update(Crc32C.InitialState, data));

    public static uint Update(uint state, ReadOnlySpan<byte> data)
    {
        uint[] table = Table;
        foreach (byte b in data)
        {
            state = table[(state ^ b) & 0xFF] ^ (state >> 8);
        }
        return state;
    }

    public static uint Finish(uint state) => ~state;

    private static uint[] BuildTable()
    {
        var table = new uint[256];
        for (uint i = 0; i < 256; i++)
        {
            uint c = i;
            for (int k = 0; k < 8; k++)
            {
                c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
            }
            table[i] = c;
        }
        return table;
    }
}
