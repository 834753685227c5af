using System.Text;
using PSBackup.Engine.Wal;

namespace PSBackup.Engine.Tests.Wal;

public sealed class Crc32CTests
{
    [Fact]
    public void StandardCheckValue()
    {
        Assert.Equal(0xE3069283u, Crc32C.Compute(Encoding.ASCII.GetBytes("123456789")));
    }

    [Fact]
    public void EmptyInputIsZero()
    {
        Assert.Equal(0u, Crc32C.Compute([]));
    }

    [Fact]
    public void MatchesBitwiseReferenceForEveryLengthAndSplit()
    {
        var random = new Random(7);
        for (int length = 0; length < 70; length++)
        {
            byte[] data = new byte[length];
            random.NextBytes(data);
            uint expected = Reference(data);
            Assert.Equal(expected, Crc32C.Compute(data));
            int split = length == 0 ? 0 : random.Next(length);
            uint state = Crc32C.Update(Crc32C.Update(Crc32C.InitialState, data.AsSpan(0, split)), data.AsSpan(split));
            Assert.Equal(expected, Crc32C.Finish(state));
        }
    }

    /// <summary>Reflected Castagnoli polynomial, one bit at a time.</summary>
    private static uint Reference(byte[] data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++)
            {
                crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F63B78 : crc >> 1;
            }
        }
        return ~crc;
    }
}
