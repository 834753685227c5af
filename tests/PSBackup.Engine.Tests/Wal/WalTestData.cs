using System.Buffers.Binary;
using PSBackup.Engine.Wal;

namespace PSBackup.Engine.Tests.Wal;

/// <summary>Builds segments and namespace layouts for the WAL tests.</summary>
internal static class WalTestData
{
    public const long SmallSegment = 64 << 10;
    public static readonly DateTimeOffset Created = new(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);
    public static readonly DateTimeOffset SealedAt = new(2026, 1, 2, 4, 0, 0, TimeSpan.Zero);

    /// <summary>Deterministic payloads: sizes from <paramref name="seed"/>, including empty ones.</summary>
    public static List<byte[]> Payloads(int count, int seed, int maxSize = 700)
    {
        var random = new Random(seed);
        var list = new List<byte[]>(count);
        for (int i = 0; i < count; i++)
        {
            int size = i % 7 == 3 ? 0 : random.Next(0, maxSize);
            byte[] data = new byte[size];
            random.NextBytes(data);
            list.Add(data);
        }
        return list;
    }

    /// <summary>Writes a segment file with these payloads; sealed when <paramref name="seal"/>.</summary>
    public static string WriteSegment(string path, long firstLogIndex, IReadOnlyList<byte[]> payloads, bool seal, long size = SmallSegment, bool sync = true)
    {
        using WalSegmentWriter writer = WalSegmentWriter.Create(path, firstLogIndex, Created, size);
        foreach (byte[] p in payloads)
        {
            writer.Append(p);
        }
        if (seal)
        {
            writer.Seal(SealedAt);
        }
        else if (sync)
        {
            writer.Sync();
        }
        return path;
    }

    /// <summary>A data dir with <c>&lt;ns&gt;/wal</c> holding segments 1..n: each (records, sealed);
    /// log indexes continuous from 1. Returns the wal dir.</summary>
    public static string CreateNamespace(string dataDir, string ns, params (int Records, bool Sealed)[] segments)
    {
        string wal = Path.Combine(dataDir, ns, "wal");
        Directory.CreateDirectory(wal);
        long logIndex = 1;
        for (int i = 0; i < segments.Length; i++)
        {
            long id = i + 1;
            WriteSegment(Path.Combine(wal, WalFormat.SegmentFileName(id)), logIndex, Payloads(segments[i].Records, (int)id * 31), segments[i].Sealed);
            logIndex += segments[i].Records;
        }
        return wal;
    }

    public static void FlipBit(string path, long offset, int bit = 0)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        fs.Position = offset;
        int b = fs.ReadByte();
        fs.Position = offset;
        fs.WriteByte((byte)(b ^ (1 << bit)));
    }

    public static void WriteBytes(string path, long offset, ReadOnlySpan<byte> bytes)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        fs.Position = offset;
        fs.Write(bytes);
    }

    public static void WriteUInt32(string path, long offset, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        WriteBytes(path, offset, b);
    }

    public static void WriteUInt64(string path, long offset, ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, value);
        WriteBytes(path, offset, b);
    }

    public static uint ReadUInt32(string path, long offset) => BinaryPrimitives.ReadUInt32LittleEndian(Read(path, offset, 4));
    public static ulong ReadUInt64(string path, long offset) => BinaryPrimitives.ReadUInt64LittleEndian(Read(path, offset, 8));

    public static byte[] Read(string path, long offset, int count)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read);
        fs.Position = offset;
        byte[] b = new byte[count];
        fs.ReadExactly(b);
        return b;
    }

    /// <summary>Recomputes a header's CRC after a test edits it, so only the edited field is wrong.</summary>
    public static void FixHeaderCrc(string path)
    {
        byte[] header = Read(path, 0, 56);
        WriteUInt32(path, 56, Crc32C.Compute(header));
    }

    /// <summary>Offsets of every record, walking lengths from the header (independent of the reader).</summary>
    public static List<long> RecordOffsets(IReadOnlyList<byte[]> payloads)
    {
        var offsets = new List<long>();
        long offset = 64;
        foreach (byte[] p in payloads)
        {
            offsets.Add(offset);
            offset += (8 + p.Length + 8 + 7) / 8 * 8;
        }
        offsets.Add(offset); // end
        return offsets;
    }

    /// <summary>A progress sink that runs the callback synchronously on the reporting thread.</summary>
    public sealed class SyncProgress(Action<OperationProgress> onReport) : IProgress<OperationProgress>
    {
        public void Report(OperationProgress value) => onReport(value);
    }
}
