using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Storage;
using PSBackup.Engine.Repository.Compression;
using static PSBackup.Engine.Tests.Repository.RepositoryTestSupport;
using Repo = PSBackup.Engine.Repository.Repository;

namespace PSBackup.Engine.Tests.Hostile;

/// <summary>The hostile repository corpus (issue 12): forged and damaged repositories, each built
/// fresh by <see cref="Build"/> from a sound one (three object backups of two objects, a store
/// snapshot and four WAL segments, with their refs), then altered the way an attacker with write
/// access to the storage, or bad luck, would. Every test run exercises every case
/// (<see cref="HostileCorpusTests"/>).</summary>
internal static class HostileCorpus
{
    public static readonly string[] Cases =
    [
        "sound",
        "bad-manifest",          // one flipped byte in one old manifest
        "overflowing-sizes",     // a manifest (valid hash) whose file sizes overflow a long
        "manifest-bomb",         // 32 KB stored, declares 1 GiB of manifest JSON
        "index-bomb",            // an index object that declares 1 GiB
        "hostile-paths",         // a manifest (valid hash) restoring to ../../outside
        "crossing-temp-names",   // a manifest holding both x and x.tmp
        "dangling-ref",          // a ref to a manifest that does not exist
        "mismatched-ref",        // an object ref naming another object's backup
        "missing-wal-ref",       // WAL refs 1..4 with 2's deleted: a gap PITR would hit
        "missing-pack",          // a pack deleted
        "damaged-pack",          // a byte flipped inside a frame
        "lost-index",            // every index object deleted
        "temp-pack-leftover",    // a 17 MB half-written temp pack of a killed run
        "downgraded-config",     // keys deleted, config says "encryption: none"
        "malformed-event",       // an operation event with a missing field
        "huge-config",           // config replaced by 64 MiB of JSON
        "fifo-pack",             // a pack replaced by a FIFO of the same name (reading it would block)
        "fifo-manifest",         // one old manifest replaced by a FIFO of the same name
        "fifo-index",            // an index object replaced by a FIFO of the same name
        "fifo-lock",             // a FIFO planted as locks/<32 hex>
        "fifo-event",            // a FIFO planted as an event of namespace ns1
        "stray-index",           // files in index/ that are no index name (notes, a foreign temp name)
    ];

    /// <summary>What was built: the repository folder, the passphrase (downgraded case), and the
    /// manifest ids of the sound backups (the forged ones are not among them).</summary>
    public sealed record Built(string Location, string? Passphrase, IReadOnlyList<string> Sound, string? Damaged);

    public static async Task<Built> Build(string kase, string root)
    {
        string location = Path.Combine(root, "repo-" + kase);
        Directory.CreateDirectory(location);
        string? passphrase = kase == "downgraded-config" ? "corpus passphrase" : null;
        var ids = new List<string>();
        Repo repo;
        using (var backend = new LocalBackend(location))
        {
            repo = await Repo.InitializeAsync(backend, Small(passphrase: passphrase));
            BackupInfo Obj(string obj, int minute) => new() { Kind = BackupKind.Object, Dir = "tenant", Object = obj, CreatedAt = new DateTimeOffset(2026, 1, 1, 0, minute, 0, TimeSpan.Zero) };
            ids.Add((await BackupAsync(repo, [("data/a.bin", Data(90_000, 1)), ("fields.conf", Data(300, 2))], info: Obj("orders", 1), refName: "object/tenant/orders/20260101T000100")).ManifestId);
            ids.Add((await BackupAsync(repo, [("data/a.bin", Data(90_000, 3)), ("fields.conf", Data(300, 2))], info: Obj("orders", 2), refName: "object/tenant/orders/20260101T000200")).ManifestId);
            ids.Add((await BackupAsync(repo, [("data/b.bin", Data(60_000, 4))], info: Obj("users", 3), refName: "object/tenant/users/20260101T000300")).ManifestId);
            ids.Add((await BackupAsync(repo, [("db/data.db", Data(40_000, 5))], BackupKind.StoreSnapshot, ChunkingProfile.Store, "snapshot/ns1/20260101T000400Z", new BackupInfo
            {
                Kind = BackupKind.StoreSnapshot, Namespace = "ns1", CreatedAt = new DateTimeOffset(2026, 1, 1, 0, 4, 0, TimeSpan.Zero),
                Wal = new WalPosition([1], 10, 0),
            })).ManifestId);
            for (int s = 1; s <= 4; s++)
            {
                ids.Add((await BackupAsync(repo, [($"wal/{s:D9}.wal", Data(20_000, 10 + s))], refName: $"wal/ns1/{s:D9}", info: new BackupInfo
                {
                    Kind = BackupKind.WalSegment, Namespace = "ns1", CreatedAt = new DateTimeOffset(2026, 1, 1, 0, 10 + s, 0, TimeSpan.Zero),
                    Segment = new RepositorySegment { SegmentId = s, FirstLogIndex = 1 + (s - 1) * 10, EntryCount = 10, Sealed = true },
                })).ManifestId);
            }
        }
        string? damaged = null;
        switch (kase)
        {
            case "sound":
                break;
            case "bad-manifest":
                damaged = ids[0];
                Flip(Path.Combine(location, "snapshots", damaged), 40);
                ids.RemoveAt(0);
                break;
            case "overflowing-sizes":
                damaged = await Forge(repo, location, m =>
                {
                    var files = m["files"]!.AsArray();
                    files[0]!["size"] = long.MaxValue;
                    files.Add(JsonNode.Parse(files[0]!.ToJsonString())!);
                    files[^1]!["path"] = "data/second.bin";
                });
                break;
            case "manifest-bomb":
                damaged = Store(location, "snapshots", Bomb(1L << 30));
                Store(location, $"refs/object/tenant/orders/20260101T000500", damaged, empty: true);
                break;
            case "index-bomb":
                Store(location, "index", Bomb(1L << 30));
                break;
            case "hostile-paths":
                damaged = await Forge(repo, location, m => m["files"]![0]!["path"] = "../../outside/evil.bin");
                break;
            case "crossing-temp-names":
                using (var backend = new LocalBackend(location))
                {
                    Repo r = await Repo.OpenAsync(backend, RepositoryCredentials.None);
                    ids.Add((await BackupAsync(r, [("d/x", Data(30_000, 20)), ("d/x.tmp", Data(25_000, 21))], info: new BackupInfo
                    {
                        Kind = BackupKind.Object, Dir = "tenant", Object = "crossing", CreatedAt = new DateTimeOffset(2026, 1, 1, 0, 6, 0, TimeSpan.Zero),
                    }, refName: "object/tenant/crossing/20260101T000600")).ManifestId);
                }
                break;
            case "dangling-ref":
                Store(location, "refs/object/tenant/orders/20260101T000700", new string('a', 64), empty: true);
                break;
            case "mismatched-ref":
                Store(location, "refs/object/tenant/orders/20260101T000800", ids[2], empty: true); // a users backup
                break;
            case "missing-wal-ref":
                File.Delete(Directory.GetFiles(Path.Combine(location, "refs", "wal", "ns1", "000000002")).Single());
                break;
            case "missing-pack":
                File.Delete(Packs(location)[0]);
                break;
            case "damaged-pack":
                Flip(Packs(location)[0], 100);
                break;
            case "lost-index":
                foreach (string f in Directory.GetFiles(Path.Combine(location, "index")))
                {
                    File.Delete(f);
                }
                break;
            case "temp-pack-leftover":
                string packDir = Path.GetDirectoryName(Packs(location)[0])!;
                string temp = Path.Combine(packDir, $".psb-{Guid.NewGuid():N}.tmp");
                File.WriteAllBytes(temp, RandomNumberGenerator.GetBytes(17 << 20));
                File.SetLastWriteTimeUtc(temp, DateTime.UtcNow.AddDays(-2));
                break;
            case "downgraded-config":
                EncryptionDowngradeTests.Downgrade(location);
                break;
            case "malformed-event":
                Directory.CreateDirectory(Path.Combine(location, "events", "ns1"));
                File.WriteAllText(Path.Combine(location, "events", "ns1", "20260101T000000000Z-0badbad0.json"), "{\"formatVersion\":1,\"kind\":\"operation\",\"namespace\":\"ns1\"}");
                File.WriteAllText(Path.Combine(location, "events", "ns1", "20260101T000001000Z-0badbad1.json"), "{\"formatVersion\":1,\"kind\":\"operation\",\"namespace\":\"ns1\",\"operation\":\"x\",\"category\":7,\"success\":\"yes\"}");
                break;
            case "huge-config":
                var big = new StringBuilder("{\"formatVersion\":1,\"pad\":\"");
                big.Append('x', 64 << 20).Append("\"}");
                File.WriteAllText(Path.Combine(location, "config"), big.ToString());
                break;
            case "fifo-pack":
                MakeFifo(Packs(location)[0]);
                break;
            case "fifo-manifest":
                damaged = ids[0];
                MakeFifo(Path.Combine(location, "snapshots", damaged));
                ids.RemoveAt(0);
                break;
            case "fifo-index":
                MakeFifo(Directory.GetFiles(Path.Combine(location, "index")).Order(StringComparer.Ordinal).First());
                break;
            case "fifo-lock":
                Directory.CreateDirectory(Path.Combine(location, "locks"));
                MakeFifo(Path.Combine(location, "locks", "0123456789abcdef0123456789abcdef"));
                break;
            case "fifo-event":
                Directory.CreateDirectory(Path.Combine(location, "events", "ns1"));
                MakeFifo(Path.Combine(location, "events", "ns1", "20260101T000000000Z-0badbad0.json"));
                break;
            case "stray-index":
                File.WriteAllText(Path.Combine(location, "index", "notes.txt"), "an operator's note");
                File.WriteAllText(Path.Combine(location, "index", ".psb-0123456789abcdef.tmp"), "{}");
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(kase));
        }
        return new Built(location, passphrase, ids, damaged);
    }

    /// <summary>Replaces <paramref name="path"/> (when it exists) by a FIFO of the same name: opening
    /// it for reading would block until a writer comes.</summary>
    public static void MakeFifo(string path)
    {
        File.Delete(path);
        using var mkfifo = System.Diagnostics.Process.Start("mkfifo", [path])!;
        mkfifo.WaitForExit();
        Assert.Equal(0, mkfifo.ExitCode);
    }

    public static string[] Packs(string location) =>
        Directory.GetFiles(Path.Combine(location, "packs"), "*", SearchOption.AllDirectories).Where(p => !Path.GetFileName(p).StartsWith('.')).Order(StringComparer.Ordinal).ToArray();

    private static void Flip(string path, long offset)
    {
        byte[] b = File.ReadAllBytes(path);
        b[Math.Min(offset, b.Length - 1)] ^= 0x55;
        File.WriteAllBytes(path, b);
    }

    /// <summary>Stores <paramref name="bytes"/> under its content address in <paramref name="folder"/>; returns the id.</summary>
    private static string Store(string location, string folder, byte[] bytes)
    {
        string id = Convert.ToHexString(SHA256.HashData(bytes)).ToLowerInvariant();
        Directory.CreateDirectory(Path.Combine(location, folder));
        File.WriteAllBytes(Path.Combine(location, folder, id), bytes);
        return id;
    }

    private static void Store(string location, string refName, string manifestId, bool empty)
    {
        _ = empty;
        string dir = Path.Combine(location, refName);
        Directory.CreateDirectory(dir);
        File.WriteAllBytes(Path.Combine(dir, manifestId), []);
    }

    /// <summary>A manifest of the first sound backup, edited as JSON and stored as a valid blob
    /// (correct hash and encoding): what someone who can write the storage forges.</summary>
    private static async Task<string> Forge(Repo repo, string location, Action<JsonNode> edit)
    {
        string firstId = Directory.GetFiles(Path.Combine(location, "snapshots")).Select(Path.GetFileName).Order(StringComparer.Ordinal).First()!;
        byte[] stored = File.ReadAllBytes(Path.Combine(location, "snapshots", firstId));
        JsonNode m = JsonNode.Parse(Decompress(stored))!;
        edit(m);
        byte[] json = Encoding.UTF8.GetBytes(m.ToJsonString());
        byte[] frame = new byte[ZstdCompressor.Instance.MaxCompressedLength(json.Length)];
        int n = ZstdCompressor.Instance.Compress(json, frame, 3);
        string id = Store(location, "snapshots", frame[..n]);
        Store(location, "refs/object/tenant/orders/20260101T000900", id, empty: true);
        await Task.CompletedTask;
        _ = repo;
        return id;
    }

    private static byte[] Decompress(byte[] frame)
    {
        long size = BinaryPrimitives.ReadInt64LittleEndian(frame.AsSpan(5)); // not used for small frames
        _ = size;
        byte[] plain = new byte[4 << 20];
        int n = ZstdCompressor.Instance.Decompress(frame, plain);
        return plain[..n];
    }

    /// <summary>Stores a manifest bomb under its valid content address; returns its id.</summary>
    public static string StoreBomb(string location, long size) => Store(location, "snapshots", Bomb(size));

    /// <summary>A valid zstd frame declaring <paramref name="size"/> bytes, made of RLE blocks of
    /// spaces (4 bytes per 128 KiB): a 1 GiB bomb in 32 KB.</summary>
    public static byte[] Bomb(long size)
    {
        const int block = 128 * 1024;
        int blocks = (int)((size + block - 1) / block);
        var ms = new MemoryStream();
        Span<byte> header = stackalloc byte[13];
        BinaryPrimitives.WriteUInt32LittleEndian(header, 0xFD2FB528);
        header[4] = 0xE0; // 8-byte content size, single segment, no checksum, no dictionary
        BinaryPrimitives.WriteInt64LittleEndian(header[5..], size);
        ms.Write(header);
        long left = size;
        for (int i = 0; i < blocks; i++)
        {
            int n = (int)Math.Min(block, left);
            left -= n;
            uint h = (uint)(i == blocks - 1 ? 1 : 0) | (1u << 1) | ((uint)n << 3); // last, RLE, size
            ms.WriteByte((byte)h);
            ms.WriteByte((byte)(h >> 8));
            ms.WriteByte((byte)(h >> 16));
            ms.WriteByte((byte)' ');
        }
        return ms.ToArray();
    }
}
