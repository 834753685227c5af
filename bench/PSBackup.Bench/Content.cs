using System.Buffers;
using System.Buffers.Binary;
using System.Buffers.Text;
using System.Text;

namespace PSBackup.Bench;

/// <summary>Semi-compressible database-like bytes: 16 KiB blocks, each one of three kinds picked
/// by the generator: random bytes (encrypted or already compressed payloads: incompressible),
/// pipe-separated record text over a small vocabulary (compresses several times), or fixed-width
/// binary records with small integers (compresses about twice). The mix lands zstd -3 at about
/// 2× overall, the range a real store of mixed tables shows.</summary>
public static class Content
{
    public const int BlockSize = 16 * 1024;

    /// <summary>Per mille of blocks of each kind: random, then text; the rest are binary records.</summary>
    private const int RandomPerMille = 250;
    private const int TextPerMille = 450;

    private static readonly byte[][] Words = BuildWords();
    private static readonly byte[][] Statuses = [.. new[] { "active", "archived", "pending", "blocked", "deleted" }.Select(Encoding.ASCII.GetBytes)];

    /// <summary>Fills <paramref name="destination"/> block by block; <paramref name="recordId"/>
    /// numbers the records written and is advanced, so consecutive calls continue a sequence.</summary>
    public static void Fill(Span<byte> destination, Prng prng, string table, ref long recordId)
    {
        byte[] tableBytes = Encoding.ASCII.GetBytes(table);
        for (int offset = 0; offset < destination.Length; offset += BlockSize)
        {
            Span<byte> block = destination.Slice(offset, Math.Min(BlockSize, destination.Length - offset));
            int kind = prng.Next(1000);
            if (kind < RandomPerMille)
            {
                prng.Fill(block);
            }
            else if (kind < RandomPerMille + TextPerMille)
            {
                FillText(block, prng, tableBytes, ref recordId);
            }
            else
            {
                FillBinary(block, prng, ref recordId);
            }
        }
    }

    /// <summary>Lines like <c>orders|id=000123|name=kuvo-relam|status=active|amount=512.07|ts=1767225600123|note=...</c>.</summary>
    private static void FillText(Span<byte> block, Prng prng, byte[] table, ref long recordId)
    {
        Span<byte> line = stackalloc byte[512];
        int at = 0;
        while (at < block.Length)
        {
            int n = 0;
            Put(line, ref n, table);
            Put(line, ref n, "|id="u8);
            Utf8Formatter.TryFormat(recordId++, line[n..], out int written, new StandardFormat('D', 8));
            n += written;
            Put(line, ref n, "|name="u8);
            Put(line, ref n, Words[prng.Next(Words.Length)]);
            line[n++] = (byte)'-';
            Put(line, ref n, Words[prng.Next(Words.Length)]);
            Put(line, ref n, "|status="u8);
            Put(line, ref n, Statuses[prng.Next(Statuses.Length)]);
            Put(line, ref n, "|amount="u8);
            Utf8Formatter.TryFormat(prng.Next(100_000), line[n..], out written);
            n += written;
            line[n++] = (byte)'.';
            Utf8Formatter.TryFormat(prng.Next(100), line[n..], out written, new StandardFormat('D', 2));
            n += written;
            Put(line, ref n, "|ts="u8);
            Utf8Formatter.TryFormat(1_767_225_600_000L + recordId * 37 + prng.Next(1000), line[n..], out written);
            n += written;
            Put(line, ref n, "|note="u8);
            int words = prng.Next(12);
            for (int i = 0; i < words; i++)
            {
                Put(line, ref n, Words[prng.Next(Words.Length)]);
                line[n++] = (byte)' ';
            }
            line[n++] = (byte)'\n';
            int take = Math.Min(n, block.Length - at);
            line[..take].CopyTo(block[at..]);
            at += take;
        }
    }

    /// <summary>32-byte rows: id, a small category, a timestamp delta, a counter, 8 random bytes, 4 zero bytes.</summary>
    private static void FillBinary(Span<byte> block, Prng prng, ref long recordId)
    {
        Span<byte> row = stackalloc byte[32];
        for (int at = 0; at < block.Length; at += row.Length)
        {
            row.Clear();
            BinaryPrimitives.WriteInt64LittleEndian(row, recordId++);
            BinaryPrimitives.WriteUInt32LittleEndian(row[8..], (uint)prng.Next(64));
            BinaryPrimitives.WriteUInt32LittleEndian(row[12..], (uint)prng.Next(5000));
            BinaryPrimitives.WriteUInt32LittleEndian(row[16..], (uint)(recordId % 1000));
            prng.Fill(row.Slice(20, 8));
            int take = Math.Min(row.Length, block.Length - at);
            row[..take].CopyTo(block[at..]);
        }
    }

    private static void Put(Span<byte> line, ref int n, ReadOnlySpan<byte> text)
    {
        text.CopyTo(line[n..]);
        n += text.Length;
    }

    /// <summary>512 pronounceable words from a fixed seed: the same vocabulary for every dataset.</summary>
    private static byte[][] BuildWords()
    {
        const string consonants = "bcdfghjklmnprstvz";
        const string vowels = "aeiou";
        var prng = new Prng(0xB5AD4ECEDA1CE2A9UL);
        var words = new byte[512][];
        for (int i = 0; i < words.Length; i++)
        {
            int syllables = 2 + prng.Next(2);
            var word = new StringBuilder();
            for (int s = 0; s < syllables; s++)
            {
                word.Append(consonants[prng.Next(consonants.Length)]).Append(vowels[prng.Next(vowels.Length)]);
            }
            words[i] = Encoding.ASCII.GetBytes(word.ToString());
        }
        return words;
    }
}
