using System.Security.Cryptography;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Repository.Compression;
using Xunit;

namespace PSBackup.Engine.Tests.Repository;

/// <summary>Stored JSON (manifests, index objects, pack trailers) is written into an array sized by
/// a counting pass (<see cref="RepositoryJson.SerializeExact{T}"/>); it must be exactly the JSON the
/// serializer writes in one go, whatever the size and the characters, and decode back.</summary>
public sealed class RepositoryJsonTests
{
    private static RepositoryManifest Manifest(int files, int seed)
    {
        var rnd = new Random(seed);
        // Names the writer escapes (quotes, backslashes, control characters, non-ASCII, emoji, HTML
        // characters) and lengths that end the JSON anywhere in the serializer's write sizes.
        string[] parts = ["a", "data", "é", "日本", "q\"uote", "back\\slash", "tab\tx", "😀", "\u0001", "<&>", "+"];
        var list = new List<RepositoryFile>(files);
        for (int i = 0; i < files; i++)
        {
            string name = string.Join('/', Enumerable.Range(0, 1 + rnd.Next(4)).Select(_ => parts[rnd.Next(parts.Length)] + rnd.Next(1000)));
            ChunkId[] chunks = Enumerable.Range(0, rnd.Next(0, 4)).Select(_ => new ChunkId(RandomNumberGenerator.GetBytes(32))).ToArray();
            list.Add(new RepositoryFile($"{name}/{i}", rnd.NextInt64(0, 1L << 40), Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32)), chunks)
            {
                Stamp = rnd.Next(2) == 0 ? null : new RepositoryFileStamp(rnd.NextInt64(), rnd.NextInt64(), (ulong)rnd.NextInt64(), (ulong)rnd.NextInt64()),
                Mode = 420,
                Uid = rnd.Next(70000),
                Gid = 0,
                ModifiedNs = rnd.NextInt64(),
            });
        }
        return new RepositoryManifest
        {
            Kind = BackupKind.Object,
            Dir = "d",
            Object = "o",
            Host = "h",
            CreatedAt = DateTimeOffset.UnixEpoch.AddSeconds(seed),
            Files = list,
        };
    }

    [Theory]
    [InlineData(0, 1)]
    [InlineData(1, 2)]
    [InlineData(7, 3)]
    [InlineData(300, 4)]
    [InlineData(20000, 5)]
    public void Writes_the_bytes_the_serializer_writes_in_one_go(int files, int seed)
    {
        RepositoryManifest m = Manifest(files, seed);
        byte[] exact = RepositoryJson.SerializeExact(m);
        Assert.Equal(RepositoryJson.Serialize(m), exact);
        RepositoryManifest back = RepositoryJson.Deserialize<RepositoryManifest>(exact)!;
        Assert.Equal(m.Files.Select(f => (f.Path, f.Size, f.Sha256, f.Stamp)), back.Files.Select(f => (f.Path, f.Size, f.Sha256, f.Stamp)));
        Assert.Equal(m.Files.SelectMany(f => f.Chunks), back.Files.SelectMany(f => f.Chunks));
    }

    [Fact]
    public void Writes_the_bytes_the_serializer_writes_when_long_escaped_names_outgrow_what_is_left()
    {
        // Files without stamp or metadata end in long strings, and '<' escapes to six bytes: the
        // writer then asks for more room than the counted array has left after a partial fill,
        // several times in a row, at every length of the name.
        var rnd = new Random(21);
        for (int round = 0; round < 120; round++)
        {
            var files = new List<RepositoryFile>();
            int count = 1 + rnd.Next(6);
            for (int i = 0; i < count; i++)
            {
                string name = new string('<', rnd.Next(1, round < 60 ? 400 : 20000)) + i;
                files.Add(new RepositoryFile(name, i, new string('a', 64), []));
            }
            var m = new RepositoryManifest { Kind = BackupKind.Object, Dir = "d", Object = "o", Host = new string('&', rnd.Next(0, 300)), CreatedAt = DateTimeOffset.UnixEpoch, Files = files };
            Assert.Equal(RepositoryJson.Serialize(m), RepositoryJson.SerializeExact(m));
        }
    }

    [Fact]
    public void An_encoded_manifest_decodes_to_its_json_encrypted_or_not()
    {
        RepositoryManifest m = Manifest(500, 9);
        byte[] json = RepositoryJson.Serialize(m);
        foreach (byte[]? key in new[] { null, RandomNumberGenerator.GetBytes(32) })
        {
            var codec = new BlobCodec(ZstdCodecs.Default, key, key, 3);
            byte[] stored = codec.EncodeJson(m, out int plainLength);
            Assert.Equal(json.Length, plainLength);
            Assert.Equal(json, codec.DecodeBlob(stored, BlobKind.Manifest));
        }
    }

    [Theory]
    [MemberData(nameof(Codecs))]
    public void A_frame_decoded_in_place_gives_what_a_decode_into_scratch_gives_and_refuses_a_changed_byte(string codecName)
    {
        byte[] plain = RandomNumberGenerator.GetBytes(300_000);
        plain.AsSpan(0, 200_000).Clear(); // compressible in part
        foreach (byte[]? key in new[] { null, RandomNumberGenerator.GetBytes(32) })
        {
            var codec = new BlobCodec(Codec(codecName), key, key, 3);
            byte[] stored = new byte[codec.MaxStoredLength(plain.Length)];
            stored = stored[..codec.Encode(plain, stored)];

            byte[] viaScratch = new byte[plain.Length];
            Assert.Equal(plain.Length, codec.Decode(stored, viaScratch, new byte[stored.Length]));
            byte[] inPlace = new byte[plain.Length];
            byte[] copy = (byte[])stored.Clone();
            Assert.Equal(plain.Length, codec.DecodeInPlace(copy, inPlace));
            Assert.Equal(plain, inPlace);
            Assert.Equal(plain, viaScratch);

            if (key is not null)
            {
                // Sealed: any changed byte fails the tag (an unsealed frame's bytes are proven by
                // the frame's SHA-256 before it is decoded, FrameSource.Decode).
                byte[] changed = (byte[])stored.Clone();
                changed[changed.Length / 2] ^= 1;
                Assert.Throws<InvalidDataException>(() => codec.DecodeInPlace(changed, new byte[plain.Length]));
                // Shorter than a nonce and a tag: refused as bad data, like any other damage.
                foreach (int length in new[] { 0, 1, 11, 12, 27 })
                {
                    Assert.Throws<InvalidDataException>(() => codec.DecodeInPlace(stored.AsSpan(0, length).ToArray(), new byte[plain.Length]));
                    Assert.Throws<InvalidDataException>(() => codec.DecodeJson<RepositoryManifest>(stored.AsSpan(0, length).ToArray(), BlobKind.Manifest));
                }
            }
        }
    }

    /// <summary>Both codecs of this machine: libzstd where it loads, and the managed port.</summary>
    public static TheoryData<string> Codecs() => new(CodecNames());

    private static string[] CodecNames() => ZstdCompressor.TryLoad() is null ? ["managed"] : ["native", "managed"];

    private static IBlockCompressor Codec(string name) => name == "native" ? ZstdCompressor.Instance : ManagedZstdCompressor.Instance;

    private static void AssertSameFiles(RepositoryManifest expected, RepositoryManifest? actual)
    {
        Assert.NotNull(actual);
        Assert.Equal(expected.Files.Select(f => (f.Path, f.Size, f.Sha256, f.Stamp, f.Mode, f.Uid, f.ModifiedNs)),
            actual.Files.Select(f => (f.Path, f.Size, f.Sha256, f.Stamp, f.Mode, f.Uid, f.ModifiedNs)));
        Assert.Equal(expected.Files.SelectMany(f => f.Chunks), actual.Files.SelectMany(f => f.Chunks));
    }

    /// <summary>JSON from 1 MiB on is compressed while it is serialized and parsed while it is
    /// decompressed: the stored blob is one standard frame declaring its size, which the one-call
    /// decoder reads too, and a blob compressed in one call (older writers) parses in steps.</summary>
    [Theory]
    [MemberData(nameof(Codecs))]
    public void A_large_blob_is_written_and_parsed_in_steps_and_reads_back_either_way(string codecName)
    {
        RepositoryManifest m = Manifest(20000, 11);
        byte[] json = RepositoryJson.Serialize(m);
        Assert.True(json.Length >= BlobCodec.StreamedJsonFrom, $"{json.Length} bytes is below the streamed size");
        foreach (byte[]? key in new[] { null, RandomNumberGenerator.GetBytes(32) })
        {
            var codec = new BlobCodec(Codec(codecName), key, key, 3);
            int streamedBefore = BlobCodec.StreamedEncodes;
            byte[] stored = codec.EncodeJson(m, out int plainLength);
            Assert.Equal(streamedBefore + 1, BlobCodec.StreamedEncodes);
            Assert.Equal(json.Length, plainLength);
            Assert.True(stored.Length < json.Length / 2, $"stored {stored.Length} of {json.Length}");

            // Every codec reads it, in one call or in steps, and the frame declares its size.
            foreach (string other in CodecNames())
            {
                var reader = new BlobCodec(Codec(other), key, key, 3);
                Assert.Equal(json, reader.DecodeBlob(stored, BlobKind.Manifest));
                int before = BlobCodec.StreamedDecodes;
                AssertSameFiles(m, reader.DecodeJson<RepositoryManifest>(stored.ToArray(), BlobKind.Manifest));
                Assert.Equal(before + 1, BlobCodec.StreamedDecodes);
            }

            // A blob compressed in one call parses in steps.
            byte[] oneCall = new byte[codec.MaxStoredLength(json.Length)];
            int n = codec.Encode(json, oneCall);
            int decodes = BlobCodec.StreamedDecodes;
            AssertSameFiles(m, codec.DecodeJson<RepositoryManifest>(oneCall[..n], BlobKind.Manifest));
            Assert.Equal(decodes + 1, BlobCodec.StreamedDecodes);
        }

        // Small JSON stays on the one-call path both ways.
        RepositoryManifest small = Manifest(20, 13);
        var plainCodec = new BlobCodec(Codec(codecName), null, null, 3);
        (int encodes, int reads) = (BlobCodec.StreamedEncodes, BlobCodec.StreamedDecodes);
        AssertSameFiles(small, plainCodec.DecodeJson<RepositoryManifest>(plainCodec.EncodeJson(small, out _), BlobKind.Manifest));
        Assert.Equal((encodes, reads), (BlobCodec.StreamedEncodes, BlobCodec.StreamedDecodes));
    }

    /// <summary>A frame asking for a window over 8 MiB (no writer of ours makes one; a hostile or
    /// foreign one can) is decoded in one call, as before streaming: a stream never holds more.</summary>
    [Theory]
    [MemberData(nameof(Codecs))]
    public void A_large_blob_with_a_window_over_8_MiB_is_decoded_in_one_call(string codecName)
    {
        RepositoryManifest m = Manifest(20000, 14);
        var codec = new BlobCodec(Codec(codecName), null, null, 3);
        byte[] stored = codec.EncodeJson(m, out _);
        Assert.Equal(0, stored[4] & 0x20); // not single-segment: the window descriptor follows
        Assert.InRange(ZstdFrame.WindowSize(stored), 1, BlobCodec.MaxStreamedWindow);
        stored[5] = 14 << 3; // 2^(10 + 14) = 16 MiB: larger than any reference the frame makes, so still valid
        Assert.Equal(16L << 20, ZstdFrame.WindowSize(stored));

        int before = BlobCodec.StreamedDecodes;
        AssertSameFiles(m, codec.DecodeJson<RepositoryManifest>(stored, BlobKind.Manifest));
        Assert.Equal(before, BlobCodec.StreamedDecodes);
    }

    /// <summary>The frame stream's own checks, whatever the decoder says: more plaintext than the
    /// header declares, a frame that ends short of it, bytes after the frame's end, and a decoder that
    /// makes no progress are each refused.</summary>
    [Fact]
    public void The_frame_stream_refuses_too_much_too_little_trailing_bytes_and_no_progress()
    {
        static int ReadAll(ZstdFrameStream s)
        {
            var buffer = new byte[64];
            int total = 0, n;
            while ((n = s.Read(buffer)) > 0)
            {
                total += n;
            }
            return total;
        }

        // (consumed, written, left) per step, over a 10-byte input.
        Assert.Equal(10, ReadAll(new ZstdFrameStream(new ScriptedReader((4, 6, 1), (6, 4, 0)), new byte[10], 10)));
        InvalidDataException tooMuch = Assert.Throws<InvalidDataException>(() => ReadAll(new ZstdFrameStream(new ScriptedReader((4, 6, 1), (6, 5, 0)), new byte[10], 10)));
        Assert.Contains("more than", tooMuch.Message);
        InvalidDataException short_ = Assert.Throws<InvalidDataException>(() => ReadAll(new ZstdFrameStream(new ScriptedReader((4, 6, 1), (6, 3, 0)), new byte[10], 10)));
        Assert.Contains("does not match", short_.Message);
        InvalidDataException trailing = Assert.Throws<InvalidDataException>(() => ReadAll(new ZstdFrameStream(new ScriptedReader((4, 6, 1), (5, 4, 0)), new byte[10], 10)));
        Assert.Contains("follow", trailing.Message);
        InvalidDataException stuck = Assert.Throws<InvalidDataException>(() => ReadAll(new ZstdFrameStream(new ScriptedReader((4, 6, 1), (0, 0, 1)), new byte[10], 10)));
        Assert.Contains("does not decode", stuck.Message);
        InvalidDataException cut = Assert.Throws<InvalidDataException>(() => ReadAll(new ZstdFrameStream(new ScriptedReader((10, 6, 1), (0, 0, 1)), new byte[10], 10)));
        Assert.Contains("cut short", cut.Message);
    }

    /// <summary>A decoder that answers each step from a script: consumes, writes (zeros), and returns what is left.</summary>
    private sealed class ScriptedReader(params (int Consumed, int Written, int Left)[] steps) : ZstdFrameReader
    {
        private int _next;

        public override nuint Step(ReadOnlySpan<byte> input, Span<byte> output, out int consumed, out int written)
        {
            (int c, int w, int left) = steps[_next++];
            consumed = Math.Min(c, input.Length);
            written = Math.Min(w, output.Length);
            output[..written].Clear();
            return (nuint)left;
        }

        public override void Dispose()
        {
        }
    }

    /// <summary>A large frame parsed in steps is as hostile as any stored byte: cut short, followed
    /// by other bytes, declaring another size than it holds, or its JSON ending early, it is refused.</summary>
    [Theory]
    [MemberData(nameof(Codecs))]
    public void A_large_blob_cut_short_padded_or_declaring_another_size_is_refused(string codecName)
    {
        RepositoryManifest m = Manifest(20000, 12);
        var codec = new BlobCodec(Codec(codecName), null, null, 3);
        byte[] stored = codec.EncodeJson(m, out int plainLength);
        Assert.Equal(plainLength, ZstdFrame.ContentSize(stored));

        Assert.Throws<InvalidDataException>(() => codec.DecodeJson<RepositoryManifest>(stored[..^1], BlobKind.Manifest));
        Assert.Throws<InvalidDataException>(() => codec.DecodeJson<RepositoryManifest>(stored[..(stored.Length / 2)], BlobKind.Manifest));
        Assert.Throws<InvalidDataException>(() => codec.DecodeJson<RepositoryManifest>([.. stored, 0], BlobKind.Manifest));
        Assert.Throws<InvalidDataException>(() => codec.DecodeJson<RepositoryManifest>([.. stored, .. stored], BlobKind.Manifest));
        foreach (int delta in new[] { -1, 1 })
        {
            byte[] lying = stored.ToArray();
            WithContentSize(lying, plainLength + delta);
            Assert.Equal(plainLength + delta, ZstdFrame.ContentSize(lying));
            Assert.Throws<InvalidDataException>(() => codec.DecodeJson<RepositoryManifest>(lying, BlobKind.Manifest));
        }

        // Valid JSON followed by more JSON inside the frame: the parser refuses it.
        byte[] json = RepositoryJson.Serialize(m);
        byte[] doubled = [.. json, .. json];
        byte[] frame = new byte[codec.MaxStoredLength(doubled.Length)];
        int n = codec.Encode(doubled, frame);
        Assert.ThrowsAny<System.Text.Json.JsonException>(() => codec.DecodeJson<RepositoryManifest>(frame[..n], BlobKind.Manifest));

        // Encrypted: a flipped byte fails the tag before anything is parsed.
        var sealedCodec = new BlobCodec(Codec(codecName), RandomNumberGenerator.GetBytes(32), RandomNumberGenerator.GetBytes(32), 3);
        byte[] sealedBlob = sealedCodec.EncodeJson(m, out _);
        sealedBlob[sealedBlob.Length / 2] ^= 1;
        Assert.Throws<InvalidDataException>(() => sealedCodec.DecodeJson<RepositoryManifest>(sealedBlob, BlobKind.Manifest));
    }

    /// <summary>Rewrites the frame header's content size field (RFC 8878, 3.1.1.1.4) in place.</summary>
    private static void WithContentSize(byte[] frame, long size)
    {
        byte fhd = frame[4];
        bool single = (fhd & 0x20) != 0;
        int pos = 5 + (single ? 0 : 1) + (fhd & 3) switch { 0 => 0, 1 => 1, 2 => 2, _ => 4 };
        switch (fhd >> 6)
        {
            case 2:
                System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(frame.AsSpan(pos), checked((uint)size));
                break;
            case 3:
                System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(frame.AsSpan(pos), (ulong)size);
                break;
            default:
                throw new InvalidOperationException($"A {size}-byte frame with a content size field of flag {fhd >> 6}.");
        }
    }
}
