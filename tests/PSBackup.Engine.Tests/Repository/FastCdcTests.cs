using PSBackup.Engine.Repository;
using Xunit;

namespace PSBackup.Engine.Tests.Repository;

/// <summary>The chunker's cut points are part of every repository's deduplication: a writer that cut
/// the same bytes elsewhere would store them again. The unrolled <see cref="FastCdc.NextCut"/> must
/// cut exactly where FastCDC's definition does, written here as the plain per-byte loop.</summary>
public sealed class FastCdcTests
{
    /// <summary>FastCDC with normalized chunking (level 2), byte by byte: skip the minimum, test the
    /// gear hash against the stricter mask up to the average size, the looser one up to the maximum.</summary>
    private static int ReferenceCut(ReadOnlySpan<byte> data, ChunkingParameters p, ulong[] gear) => ReferenceCut(data, p, gear, out _);

    /// <param name="byHash">True when the gear hash cut (not the end of the input or the maximum).</param>
    private static int ReferenceCut(ReadOnlySpan<byte> data, ChunkingParameters p, ulong[] gear, out bool byHash)
    {
        byHash = false;
        if (data.Length <= p.MinSize)
        {
            return data.Length;
        }
        int n = Math.Min(data.Length, p.MaxSize);
        int bits = (int)Math.Round(Math.Log2(p.AvgSize));
        ulong strict = ~0UL << (64 - (bits + 2));
        ulong loose = bits - 2 <= 0 ? 0 : ~0UL << (64 - (bits - 2));
        ulong h = 0;
        for (int i = p.MinSize; i < n; i++)
        {
            h = (h << 1) + gear[data[i]];
            if ((h & (i < p.AvgSize ? strict : loose)) == 0)
            {
                byHash = true;
                return i + 1;
            }
        }
        return n;
    }

    public static TheoryData<int, int, int> Parameters => new()
    {
        { 64, 128, 256 },
        { 100, 256, 1000 },
        { 67, 128, 301 },
        { 2 * 1024, 8 * 1024, 32 * 1024 },
        { 64 * 1024, 256 * 1024, 1024 * 1024 },
    };

    [Theory]
    [MemberData(nameof(Parameters))]
    public void Cuts_where_the_per_byte_definition_cuts_on_random_and_repetitive_data(int min, int avg, int max)
    {
        var p = new ChunkingParameters(min, avg, max);
        var cdc = new FastCdc(p, RepositoryConfig.DefaultGearSeed);
        ulong[] gear = FastCdc.GearTable(RepositoryConfig.DefaultGearSeed);
        var rnd = new Random(min ^ max);
        var residues = new HashSet<int>();
        bool strictCut = false, looseCut = false, maxCut = false;
        for (int round = 0; round < 60; round++)
        {
            // Random bytes cut anywhere; long runs of one byte rarely cut and reach the maximum.
            byte[] data = new byte[rnd.Next(0, 3 * max)];
            rnd.NextBytes(data);
            if (round % 4 == 2)
            {
                data.AsSpan(data.Length / 3).Fill((byte)round);
            }
            for (int pos = 0; pos < data.Length;)
            {
                // Every input length from 0 to past the maximum, not just whole buffers.
                int len = round % 2 == 0 ? data.Length - pos : Math.Min(data.Length - pos, rnd.Next(0, max + 8));
                ReadOnlySpan<byte> span = data.AsSpan(pos, len);
                int expected = ReferenceCut(span, p, gear, out bool byHash);
                Assert.Equal(expected, cdc.NextCut(span));
                if (byHash)
                {
                    residues.Add((expected - min) % 4);
                    strictCut |= expected <= avg;
                    looseCut |= expected > avg;
                }
                maxCut |= !byHash && expected == max && len > max;
                pos += Math.Max(1, expected);
            }
        }
        // The data above reached every branch: cuts at each offset modulo the unrolling, under both
        // masks, and chunks ended by the maximum.
        Assert.True(residues.Count == 4, $"cut offsets modulo 4: {string.Join(",", residues)}");
        Assert.True(strictCut && looseCut && maxCut, $"strict {strictCut}, loose {looseCut}, max {maxCut}");
    }

    public static TheoryData<int, int, int> SmallParameters => new()
    {
        // (avg - min) % 4 of 0, 1, 2 and 3: the strict mask's last bytes fall in the unrolled loop's
        // remainder in every alignment; max - avg likewise for the loose mask.
        { 64, 128, 256 },
        { 65, 128, 259 },
        { 66, 128, 261 },
        { 67, 128, 263 },
    };

    [Theory]
    [MemberData(nameof(SmallParameters))]
    public void Cuts_where_the_per_byte_definition_cuts_for_every_length_from_every_start(int min, int avg, int max)
    {
        var p = new ChunkingParameters(min, avg, max);
        var cdc = new FastCdc(p, RepositoryConfig.DefaultGearSeed);
        ulong[] gear = FastCdc.GearTable(RepositoryConfig.DefaultGearSeed);
        byte[] data = new byte[4 * max];
        new Random(min).NextBytes(data);
        int atAverage = 0, strictRemainder = 0, looseRemainder = 0;
        for (int start = 0; start < 3 * max; start++)
        {
            for (int len = 0; len <= max + 4 && start + len <= data.Length; len++)
            {
                ReadOnlySpan<byte> span = data.AsSpan(start, len);
                int expected = ReferenceCut(span, p, gear, out bool byHash);
                Assert.Equal(expected, cdc.NextCut(span));
                if (!byHash)
                {
                    continue; // the span or its maximum ended the chunk
                }
                int n = Math.Min(len, max), strictEnd = Math.Min(avg, n);
                atAverage += expected == avg ? 1 : 0;
                int i = expected - 1; // the byte whose hash cut
                strictRemainder += i < strictEnd && i >= strictEnd - (strictEnd - min) % 4 ? 1 : 0;
                looseRemainder += i >= avg && i >= n - (n - avg) % 4 ? 1 : 0;
            }
        }
        // What the data reached: a cut on the last byte under the strict mask, and cuts in the
        // remainder of the unrolled loop under each mask (not for a mask whose range is a multiple of 4).
        Assert.True(atAverage > 0, "no cut at the average size");
        Assert.True((avg - min) % 4 == 0 || strictRemainder > 0, "no strict cut in the unrolled loop's remainder");
        Assert.True(looseRemainder > 0, "no loose cut in the unrolled loop's remainder");
    }
}
