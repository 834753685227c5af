using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace PSBackup.Example;

/// <summary>Writes the object-store half of the example (seed 000, shard-db layout):
/// <c>&lt;root&gt;/&lt;tenant&gt;/&lt;object&gt;/{data,indexes,metadata,files}</c> and <c>fields.conf</c>.
/// Deterministic for a given <see cref="Random"/>.</summary>
public static class ShardDbGenerator
{
    /// <summary>(tenant, object, the two indexed fields, an attachment name).</summary>
    public static readonly IReadOnlyList<(string Tenant, string Object, string[] IndexedFields, string Attachment)> Objects =
    [
        ("acme", "customers", ["id", "email"], "logo.png"),
        ("acme", "orders", ["id", "customer_id"], "invoice-template.txt"),
        ("globex", "inventory", ["sku", "warehouse"], "locations.csv"),
    ];

    public static void Generate(string root, Random random)
    {
        foreach (var (tenant, obj, fields, attachment) in Objects)
        {
            string dir = Path.Combine(root, tenant, obj);
            GenerateObject(dir, obj, fields, attachment, random);
        }
    }

    private static void GenerateObject(string dir, string obj, string[] fields, string attachment, Random random)
    {
        int shards = random.Next(3, 6);
        long records = 0;
        for (int shard = 0; shard < shards; shard++)
        {
            int firstRecord = (int)records;
            byte[] data = ShardData(obj, firstRecord, random.Next(40, 90) * 1024, random, out int count);
            records += count;
            Write(Path.Combine(dir, "data", $"{shard:000}.bin"), data);
            foreach (string field in fields)
            {
                Write(Path.Combine(dir, "indexes", field, $"{shard:000}.idx"), IndexData(field, firstRecord, count, random));
            }
        }
        Write(Path.Combine(dir, "metadata", "counts"), Text($"records={records}\nshards={shards}\n"));
        Write(Path.Combine(dir, "metadata", "sequences", fields[0]), Text($"next={records + 1}\n"));
        Write(Path.Combine(dir, "files", attachment), attachment.EndsWith(".png", StringComparison.Ordinal)
            ? RandomBytes(random, 6 * 1024)
            : Text(string.Concat(Enumerable.Range(0, 80).Select(i => $"{obj},{i},row-{random.Next(100000)}\n"))));
        var conf = new StringBuilder();
        conf.Append("# name:type:indexed\n");
        foreach (string field in fields)
        {
            conf.Append(CultureInfo.InvariantCulture, $"{field}:string:yes\n");
        }
        conf.Append("payload:bytes:no\nupdated_at:timestamp:no\n");
        Write(Path.Combine(dir, "fields.conf"), Text(conf.ToString()));
    }

    /// <summary>Semi-compressible shard content: 4 KiB blocks, some random bytes, most repetitive
    /// record text, roughly what zstd -3 shrinks to a third.</summary>
    private static byte[] ShardData(string obj, int firstRecord, int size, Random random, out int count)
    {
        var buffer = new byte[size];
        count = 0;
        for (int offset = 0; offset < size; offset += 4096)
        {
            Span<byte> block = buffer.AsSpan(offset, Math.Min(4096, size - offset));
            if (random.Next(10) < 3)
            {
                random.NextBytes(block);
                continue;
            }
            var text = new StringBuilder();
            while (text.Length < block.Length)
            {
                int id = firstRecord + count++;
                text.Append(CultureInfo.InvariantCulture, $"{obj}|id={id:000000}|name={obj}-{id % 97}|status={(id % 3 == 0 ? "active" : "archived")}|n={random.Next(1000)}\n");
            }
            Encoding.ASCII.GetBytes(text.ToString().AsSpan(0, block.Length), block);
        }
        return buffer;
    }

    /// <summary>A sorted index: [u32 count] then count × {u64 key hash, u32 record}.</summary>
    private static byte[] IndexData(string field, int firstRecord, int count, Random random)
    {
        var entries = Enumerable.Range(firstRecord, count)
            .Select(r => (Key: (ulong)random.NextInt64() ^ (ulong)field.Length, Record: (uint)r))
            .OrderBy(e => e.Key)
            .ToList();
        var data = new byte[4 + entries.Count * 12];
        BinaryPrimitives.WriteUInt32LittleEndian(data, (uint)entries.Count);
        for (int i = 0; i < entries.Count; i++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(4 + i * 12), entries[i].Key);
            BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(12 + i * 12), entries[i].Record);
        }
        return data;
    }

    private static byte[] RandomBytes(Random random, int length)
    {
        var bytes = new byte[length];
        random.NextBytes(bytes);
        return bytes;
    }

    private static byte[] Text(string text) => Encoding.UTF8.GetBytes(text);

    private static void Write(string path, byte[] content)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, content);
    }
}
