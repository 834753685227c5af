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
}
