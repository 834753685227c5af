using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Tests.Support;
using static PSBackup.Engine.Tests.Repository.RepositoryTestSupport;
using Repo = PSBackup.Engine.Repository.Repository;

namespace PSBackup.Engine.Tests.Repository;

public sealed class RepositoryEncryptionTests
{
    [Fact]
    public async Task WrongPassphraseIsATypedErrorAndWritesNothing()
    {
        using var backend = new MemoryBackend();
        Repo repo = await Repo.InitializeAsync(backend, Small(passphrase: "correct horse"));
        await BackupAsync(repo, [("a", Data(10_000, 1))]);
        var keys = backend.Keys.ToList();
        int puts = backend.Puts;

        var e = await Assert.ThrowsAsync<RepositoryKeyException>(() => Repo.OpenAsync(backend, RepositoryCredentials.FromPassphrase("wrong")));
        Assert.Equal("WrongRepositoryKey", e.ErrorId);
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("passphrase", e.Message);
        var none = await Assert.ThrowsAsync<RepositoryKeyException>(() => Repo.OpenAsync(backend, RepositoryCredentials.None));
        Assert.Contains("encrypted", none.Message);
        Assert.Equal(keys, backend.Keys);
        Assert.Equal(puts, backend.Puts);
        Assert.Equal(0, backend.Deletes);

        Repo ok = await Repo.OpenAsync(backend, RepositoryCredentials.FromPassphrase("correct horse"));
        Assert.True(ok.IsEncrypted);
        string keyJson = Encoding.UTF8.GetString(backend.Read(backend.Single("keys/")));
        Assert.Contains("\"iterations\": 600000", keyJson);
        Assert.Contains("pbkdf2-sha256", keyJson);
    }

    [Fact]
    public async Task APassphraseThatOpenedARepositorySkipsTheKeyDerivationNextTimeButAWrongOneStillFails()
    {
        using var backend = new MemoryBackend();
        await Repo.InitializeAsync(backend, Small(passphrase: "cached horse"));
        KeyObject key = System.Text.Json.JsonSerializer.Deserialize<KeyObject>(backend.Read(backend.Single("keys/")), RepositoryJson.Options)!;
        Assert.Null(WrapKeyCache.TryGet("cached horse", key.Salt, key.Iterations));

        await Repo.OpenAsync(backend, RepositoryCredentials.FromPassphrase("cached horse"));
        byte[]? remembered = WrapKeyCache.TryGet("cached horse", key.Salt, key.Iterations);
        Assert.Equal(Rfc2898DeriveBytes.Pbkdf2("cached horse", Convert.FromBase64String(key.Salt), key.Iterations, HashAlgorithmName.SHA256, 32), remembered);

        // A failed open remembers nothing, and the remembered key never stands in for another passphrase.
        await Assert.ThrowsAsync<RepositoryKeyException>(() => Repo.OpenAsync(backend, RepositoryCredentials.FromPassphrase("cached horse ")));
        Assert.Null(WrapKeyCache.TryGet("cached horse ", key.Salt, key.Iterations));
        Repo again = await Repo.OpenAsync(backend, RepositoryCredentials.FromPassphrase("cached horse"));
        Assert.True(again.IsEncrypted);
    }

    [Fact]
    public async Task ChunkIdsAreKeyedAndNothingIsStoredInTheClear()
    {
        using var backend = new MemoryBackend();
        using var dir = new TestDirectory();
        Repo repo = await Repo.InitializeAsync(backend, Small(keyFile: KeyFile(dir)));
        byte[] secret = Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("SECRET-PAYLOAD-", 200)));
        BackupCommitResult r = await BackupAsync(repo, [("secret.txt", secret)], refName: "wal/ns1/000000001");
        RepositoryManifest m = await repo.ReadManifestAsync(r.ManifestId);
        ChunkId only = Assert.Single(m.Files[0].Chunks);
        Assert.NotEqual(Convert.ToHexString(SHA256.HashData(secret)).ToLowerInvariant(), only.ToString());
        foreach (string key in backend.Keys.Where(k => k != "config" && !k.StartsWith("keys/", StringComparison.Ordinal)))
        {
            string text = Encoding.Latin1.GetString(backend.Read(key));
            Assert.DoesNotContain("SECRET", text);
            Assert.DoesNotContain("secret.txt", text);
            Assert.DoesNotContain(only.ToString(), text);
        }
        Assert.Contains("aes-256-gcm", Encoding.UTF8.GetString(backend.Read("config")));
        Repo reopened = await Repo.OpenAsync(backend, RepositoryCredentials.FromKeyFile(Path.Combine(dir.Path, "repo.key")));
        Assert.Equal(secret, await RestoreBytesAsync(reopened, await reopened.ReadManifestAsync(r.ManifestId), "secret.txt"));
        string otherKey = dir.Combine("other.key");
        File.WriteAllBytes(otherKey, RandomNumberGenerator.GetBytes(64));
        await Assert.ThrowsAsync<RepositoryKeyException>(() => Repo.OpenAsync(backend, RepositoryCredentials.FromKeyFile(otherKey)));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task AFlippedByteInAPackNamesTheBackupAndFile(bool encrypted)
    {
        using var backend = new MemoryBackend();
        using var dir = new TestDirectory();
        Repo repo = await Repo.InitializeAsync(backend, Small(keyFile: encrypted ? KeyFile(dir) : null));
        BackupCommitResult r = await BackupAsync(repo, [("ok.txt", Data(100, 1)), ("data/big.bin", Data(200_000, 2))]);
        string pack = backend.Single("packs/");
        RepositoryManifest m = await repo.ReadManifestAsync(r.ManifestId);
        // Damage the middle of a frame that holds none of ok.txt's chunks: frames enter the pack in
        // the order the parallel compressors finish them, so the pack's middle byte may be any frame.
        RepositoryIndex.FrameInfo FrameOf(ChunkId id) => repo.Index.TryGet(id, out RepositoryIndex.ChunkLocation l) ? l.Frame : throw new InvalidOperationException($"chunk {id} is not indexed");
        var okFrames = m.Files.Single(f => f.Path == "ok.txt").Chunks.Select(FrameOf).ToHashSet();
        RepositoryIndex.FrameInfo damaged = m.Files.Single(f => f.Path == "data/big.bin").Chunks.Select(FrameOf).First(f => !okFrames.Contains(f));
        backend.Flip(pack, damaged.Offset + damaged.Length / 2);

        var e = await Assert.ThrowsAsync<RepositoryIntegrityException>(() => RestoreBytesAsync(repo, m, "data/big.bin"));
        Assert.Equal(r.ManifestId, e.ManifestId);
        Assert.Equal("data/big.bin", e.Path);
        Assert.Contains(r.ManifestId, e.Message);
        Assert.Contains("data/big.bin", e.Message);
        Assert.Equal(ErrorKind.Integrity, e.Kind);

        using var target = new TestDirectory();
        await Assert.ThrowsAsync<RepositoryIntegrityException>(() => repo.RestoreAsync(m, target.Path));
        Assert.False(File.Exists(Path.Combine(target.Path, "data", "big.bin")));
        Assert.Empty(Directory.GetFiles(target.Path, "*.tmp", SearchOption.AllDirectories));

        // The restore that hit the damage marked the pack (damaged/<id>), so even a check that reads
        // no data reports it now, and the next backup stores its chunks again.
        RepositoryCheckReport plain = await repo.CheckAsync(readData: false);
        Assert.Contains(plain.Errors, i => i.Code == "PackDamaged" && i.ObjectKey == pack);
        RepositoryCheckReport deep = await repo.CheckAsync(readData: true);
        Assert.False(deep.Ok);
        Assert.Contains(deep.Errors, i => i.Code == "PackCorrupt");
        Assert.Contains(deep.Errors, i => i.Code == "DataCorrupt" && i.ManifestId == r.ManifestId && i.Path == "data/big.bin");
        Assert.DoesNotContain(deep.Errors, i => i.Path == "ok.txt");
    }

    [Fact]
    public async Task ATruncatedPackIsReportedFrameByFrameWhileStreamed()
    {
        using var backend = new MemoryBackend();
        Repo repo = await Repo.InitializeAsync(backend, Small());
        BackupCommitResult r = await BackupAsync(repo, [("first.bin", Data(100_000, 3)), ("second.bin", Data(100_000, 4))]);
        string pack = backend.Single("packs/");
        IndexPack indexed = Assert.Single((await repo.ReadIndexObjectAsync(backend.Single("index/"), CancellationToken.None)).Packs);
        Assert.True(indexed.Frames.Count >= 2);
        // Cut inside the last frame: the frames before it still verify, the last one and the trailer do not.
        // Frames are compressed in parallel, so which file's chunks the last frame holds is read from the index.
        FrameEntry last = indexed.Frames.MaxBy(f => f.Offset)!;
        var cut = last.Chunks.Select(c => c.Id).ToHashSet();
        RepositoryManifest m = await repo.ReadManifestAsync(r.ManifestId);
        var hit = m.Files.Where(f => f.Chunks.Any(cut.Contains)).Select(f => f.Path).ToList();
        Assert.NotEmpty(hit);
        backend.Write(pack, backend.Read(pack)[..(int)(last.Offset + last.Length / 2)]);

        RepositoryCheckReport deep = await repo.CheckAsync(readData: true);
        Assert.Contains(deep.Errors, i => i.Code == "PackSizeMismatch");
        Assert.Contains(deep.Errors, i => i.Code == "PackCorrupt");
        Assert.Contains(deep.Errors, i => i.Code == "PackTrailerInvalid");
        foreach (string path in hit)
        {
            Assert.Contains(deep.Errors, i => i.Code == "DataCorrupt" && i.Path == path && i.Message.Contains("too short", StringComparison.Ordinal));
        }
        foreach (string path in m.Files.Select(f => f.Path).Except(hit))
        {
            Assert.DoesNotContain(deep.Errors, i => i.Path == path);
        }
        Assert.Equal(last.Offset + last.Length / 2, deep.BytesRead);
    }

    [Fact]
    public async Task DamageOutsideEveryFrameFailsThePackButNoBackup()
    {
        using var backend = new MemoryBackend();
        Repo repo = await Repo.InitializeAsync(backend, Small());
        await BackupAsync(repo, [("first.bin", Data(100_000, 5))]);
        string pack = backend.Single("packs/");
        backend.Flip(pack, backend.Read(pack).Length - 13); // the last byte of the trailer frame

        RepositoryCheckReport deep = await repo.CheckAsync(readData: true);

        Assert.Contains(deep.Errors, i => i.Code == "PackCorrupt");
        Assert.Contains(deep.Errors, i => i.Code == "PackTrailerInvalid");
        Assert.DoesNotContain(deep.Errors, i => i.Code == "DataCorrupt");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task AFlippedByteInAnIndexOrManifestIsReportedWithTheBackup(bool encrypted)
    {
        using var backend = new MemoryBackend();
        using var dir = new TestDirectory();
        string? keyFile = encrypted ? KeyFile(dir) : null;
        Repo repo = await Repo.InitializeAsync(backend, Small(keyFile: keyFile));
        BackupCommitResult r1 = await BackupAsync(repo, [("one.bin", Data(50_000, 1))]);
        var indexesAfterFirst = backend.Keys.Where(k => k.StartsWith("index/", StringComparison.Ordinal)).ToList();
        BackupCommitResult r2 = await BackupAsync(repo, [("two.bin", Data(50_000, 2))]);
        var cred = keyFile is null ? RepositoryCredentials.None : RepositoryCredentials.FromKeyFile(keyFile);

        // Index of the second backup.
        string index2 = backend.Keys.Single(k => k.StartsWith("index/", StringComparison.Ordinal) && !indexesAfterFirst.Contains(k));
        backend.Flip(index2, 10);
        Repo afterIndexFlip = await Repo.OpenAsync(backend, cred);
        Assert.Equal([index2], afterIndexFlip.DamagedIndexes);
        var e = await Assert.ThrowsAsync<RepositoryIntegrityException>(async () =>
            await RestoreBytesAsync(afterIndexFlip, await afterIndexFlip.ReadManifestAsync(r2.ManifestId), "two.bin"));
        Assert.Equal(r2.ManifestId, e.ManifestId);
        Assert.Equal("two.bin", e.Path);
        Assert.Contains(index2, e.Message);
        RepositoryCheckReport check = await afterIndexFlip.CheckAsync(readData: false);
        Assert.Contains(check.Errors, i => i.Code == "IndexCorrupt" && i.ObjectKey == index2);
        Assert.Contains(check.Errors, i => i.Code == "ChunkMissing" && i.ManifestId == r2.ManifestId && i.Path == "two.bin");
        Assert.DoesNotContain(check.Errors, i => i.ManifestId == r1.ManifestId);
        backend.Flip(index2, 10);

        // Manifest of the first backup.
        string manifest1 = "snapshots/" + r1.ManifestId;
        backend.Flip(manifest1, -5);
        Repo afterManifestFlip = await Repo.OpenAsync(backend, cred);
        var me = await Assert.ThrowsAsync<RepositoryIntegrityException>(() => afterManifestFlip.ReadManifestAsync(r1.ManifestId));
        Assert.Equal(r1.ManifestId, me.ManifestId);
        Assert.Equal("ManifestCorrupt", me.ErrorId);
        RepositoryCheckReport check2 = await afterManifestFlip.CheckAsync(readData: true);
        Assert.Contains(check2.Errors, i => i.Code == "ManifestCorrupt" && i.ManifestId == r1.ManifestId);
        Assert.DoesNotContain(check2.Errors, i => i.ManifestId == r2.ManifestId);
    }

    [Fact]
    public async Task AFlippedByteInTheKeyIsAnIntegrityErrorNotAWrongPassphrase()
    {
        using var backend = new MemoryBackend();
        await Repo.InitializeAsync(backend, Small(passphrase: "pw"));
        string key = backend.Single("keys/");
        byte[] original = backend.Read(key);
        int at = Encoding.UTF8.GetString(original).IndexOf("\"wrapped\"", StringComparison.Ordinal) + 14;
        backend.Flip(key, at);
        var e = await Assert.ThrowsAsync<RepositoryIntegrityException>(() => Repo.OpenAsync(backend, RepositoryCredentials.FromPassphrase("pw")));
        Assert.Equal("KeyCorrupt", e.ErrorId);
        Assert.Equal(key, e.ObjectKey);
        backend.Write(key, original);

        // A config altered (e.g. downgraded to "none") is caught by the key binding / key presence.
        byte[] config = backend.Read("config");
        backend.Write("config", Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(config).Replace("\"compressionLevel\": 3", "\"compressionLevel\": 4")));
        var ce = await Assert.ThrowsAsync<RepositoryIntegrityException>(() => Repo.OpenAsync(backend, RepositoryCredentials.FromPassphrase("pw")));
        Assert.Equal("ConfigInvalid", ce.ErrorId);
        backend.Write("config", Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(config).Replace("aes-256-gcm", "none").Replace("hmac-sha256", "sha256")));
        var de = await Assert.ThrowsAsync<RepositoryIntegrityException>(() => Repo.OpenAsync(backend, RepositoryCredentials.None));
        Assert.Equal("ConfigInvalid", de.ErrorId);
        backend.Write("config", config);
        await Repo.OpenAsync(backend, RepositoryCredentials.FromPassphrase("pw"));
    }
}

public sealed class RepositoryCrashAndConcurrencyTests
{
    [Fact]
    public async Task AnExceptionHalfWayLeavesAValidRepositoryAndTheNextBackupCompletes()
    {
        using var backend = new MemoryBackend();
        Repo repo = await Repo.InitializeAsync(backend, Small());
        BackupCommitResult first = await BackupAsync(repo, [("a", Data(300_000, 1))]);
        byte[] big = Data(3_000_000, 2);
        await using (BackupWriter w = repo.BeginBackup(new BackupInfo { Kind = BackupKind.Object, Dir = "t", Object = "o" }))
        {
            await w.AddFileAsync("small", new MemoryStream(Data(5000, 3)));
            await Assert.ThrowsAsync<IOException>(() => w.AddFileAsync("big", new InterruptingStream(big, 1_500_000)));
            await Assert.ThrowsAsync<InvalidOperationException>(() => w.CommitAsync());
        }
        Assert.Single(await repo.ListBackupsAsync());
        Repo reopened = await Repo.OpenAsync(backend, RepositoryCredentials.None);
        RepositoryCheckReport check = await reopened.CheckAsync(readData: true);
        Assert.True(check.Ok, string.Join("\n", check.Errors));
        Assert.All(check.Warnings, w => Assert.Equal("PackUnreferenced", w.Code));

        BackupCommitResult next = await BackupAsync(reopened, [("small", Data(5000, 3)), ("big", big)]);
        Assert.Equal(big, await RestoreBytesAsync(reopened, await reopened.ReadManifestAsync(next.ManifestId), "big"));
        Assert.Equal(2, (await reopened.ListBackupsAsync()).Count);
        Assert.True((await reopened.CheckAsync(readData: true)).Ok);
        Assert.Equal(Data(300_000, 1), await RestoreBytesAsync(reopened, await reopened.ReadManifestAsync(first.ManifestId), "a"));
    }

    [Fact]
    public async Task CancellationHalfWayLeavesAValidRepositoryAndTheNextBackupCompletes()
    {
        using var backend = new MemoryBackend();
        Repo repo = await Repo.InitializeAsync(backend, Small());
        byte[] big = Data(4_000_000, 7);
        using var cts = new CancellationTokenSource();
        BackupWriter w = repo.BeginBackup(new BackupInfo { Kind = BackupKind.StoreSnapshot, Namespace = "ns1" });
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => w.AddFileAsync("db/data.mdb", new InterruptingStream(big, 2_000_000, cts), ChunkingProfile.Store, cts.Token));
        await w.AbortAsync();
        await w.DisposeAsync();
        Assert.DoesNotContain(backend.Keys, k => k.StartsWith("snapshots/", StringComparison.Ordinal));
        RepositoryCheckReport check = await (await Repo.OpenAsync(backend, RepositoryCredentials.None)).CheckAsync(readData: true);
        Assert.True(check.Ok, string.Join("\n", check.Errors));

        BackupCommitResult r = await BackupAsync(repo, [("db/data.mdb", big)], BackupKind.StoreSnapshot, ChunkingProfile.Store);
        Assert.Equal(big, await RestoreBytesAsync(repo, await repo.ReadManifestAsync(r.ManifestId), "db/data.mdb"));
    }

    [Fact]
    public async Task TwoWritersOnOneBackendAtOnceBothProduceValidBackups()
    {
        using var backend = new MemoryBackend();
        await Repo.InitializeAsync(backend, Small(keyFile: null));
        Repo hostA = await Repo.OpenAsync(backend, RepositoryCredentials.None);
        Repo hostB = await Repo.OpenAsync(backend, RepositoryCredentials.None);
        byte[] shared = Data(1_500_000, 11);
        byte[] onlyA = Data(800_000, 12);
        byte[] onlyB = Data(800_000, 13);
        using var gate = new SemaphoreSlim(0, 2);
        async Task<BackupCommitResult> Run(Repo repo, string host, byte[] own)
        {
            await using BackupWriter w = repo.BeginBackup(new BackupInfo { Kind = BackupKind.Object, Dir = "t", Object = host, Host = host });
            await w.AddFileAsync("shared.bin", new MemoryStream(shared));
            gate.Release();
            await gate.WaitAsync();
            await w.AddFileAsync("own.bin", new MemoryStream(own));
            return await w.CommitAsync();
        }
        BackupCommitResult[] results = await Task.WhenAll(Task.Run(() => Run(hostA, "hostA", onlyA)), Task.Run(() => Run(hostB, "hostB", onlyB)));
        Repo reader = await Repo.OpenAsync(backend, RepositoryCredentials.None);
        Assert.Equal(2, (await reader.ListBackupsAsync()).Count);
        RepositoryManifest a = await reader.ReadManifestAsync(results[0].ManifestId);
        RepositoryManifest b = await reader.ReadManifestAsync(results[1].ManifestId);
        Assert.Equal(onlyA, await RestoreBytesAsync(reader, a, "own.bin"));
        Assert.Equal(onlyB, await RestoreBytesAsync(reader, b, "own.bin"));
        Assert.Equal(shared, await RestoreBytesAsync(reader, a, "shared.bin"));
        Assert.Equal(shared, await RestoreBytesAsync(reader, b, "shared.bin"));
        RepositoryCheckReport check = await reader.CheckAsync(readData: true);
        Assert.True(check.Ok, string.Join("\n", check.Errors));
        Assert.True(check.Indexes >= 2);
    }
}

public sealed class RepositoryHostileManifestTests
{
    [Theory]
    [InlineData("../escape")]
    [InlineData("/etc/passwd")]
    [InlineData("a/../../b")]
    [InlineData("C:/Windows/x")]
    [InlineData("a\\b")]
    [InlineData("a//b")]
    [InlineData("dup")]
    [InlineData("dir")]
    public async Task HostilePathsAreRejectedOnReadCheckAndRestore(string path)
    {
        using var backend = new MemoryBackend();
        Repo repo = await Repo.InitializeAsync(backend, Small());
        BackupCommitResult r = await BackupAsync(repo, [("dup", Data(100, 1)), ("dir/x", Data(100, 2))]);
        RepositoryManifest good = await repo.ReadManifestAsync(r.ManifestId);
        var hostile = good with { Files = [.. good.Files, good.Files[0] with { Path = path }] };
        byte[] blob = repo.Codec.EncodeJson(hostile);
        string id = Convert.ToHexString(SHA256.HashData(blob)).ToLowerInvariant();
        backend.Write("snapshots/" + id, blob);

        var e = await Assert.ThrowsAsync<RepositoryIntegrityException>(() => repo.ReadManifestAsync(id));
        Assert.Equal("ManifestInvalid", e.ErrorId);
        Assert.Equal(id, e.ManifestId);
        RepositoryCheckReport check = await repo.CheckAsync(readData: false);
        Assert.Contains(check.Errors, i => i.Code == "ManifestInvalid" && i.ManifestId == id);

        using var dir = new TestDirectory();
        string target = dir.Combine("restore");
        hostile.Id = id;
        await Assert.ThrowsAnyAsync<PSBackupException>(() => repo.RestoreAsync(hostile, target));
        Assert.False(Directory.Exists(target));
        Assert.False(File.Exists(dir.Combine("escape")));
    }
}

public sealed class RepositoryRefTests
{
    [Fact]
    public async Task WalShippingCanListHeldSegmentsReShipIdempotentlyAndDetectDifferentContent()
    {
        using var backend = new MemoryBackend();
        Repo repo = await Repo.InitializeAsync(backend, Small());
        byte[] seg1 = Data(300_000, 1), seg2 = Data(300_000, 2);

        // The ship algorithm a WAL shipper uses (no state file): list refs, skip what is held with
        // the same content, refuse what is held with different content, ship the rest.
        async Task<string> Ship(long segmentId, byte[] content)
        {
            string name = $"wal/ns1/{segmentId:D9}";
            string sha = Convert.ToHexString(SHA256.HashData(content)).ToLowerInvariant();
            foreach (RepositoryRef held in await repo.FindRefAsync(name))
            {
                RepositoryManifest m = await repo.ReadManifestAsync(held.ManifestId);
                if (m.Files[0].Sha256 == sha)
                {
                    return "present";
                }
                throw new ConflictException("SegmentContentDiffers", $"Segment {segmentId} is archived with different content.");
            }
            await BackupAsync(repo, [($"{segmentId:D9}.wal", content)], refName: name, info: new BackupInfo
            {
                Kind = BackupKind.WalSegment,
                Namespace = "ns1",
                Segment = new RepositorySegment { SegmentId = segmentId, FirstLogIndex = 1, EntryCount = 10, Sealed = true },
            });
            return "shipped";
        }

        Assert.Equal("shipped", await Ship(1, seg1));
        Assert.Equal("shipped", await Ship(2, seg2));
        int puts = backend.Puts;
        Assert.Equal("present", await Ship(1, seg1));
        Assert.Equal(puts, backend.Puts);
        await Assert.ThrowsAsync<ConflictException>(() => Ship(2, seg1));
        var held = await repo.ListRefsAsync("wal/ns1/");
        Assert.Equal(["wal/ns1/000000001", "wal/ns1/000000002"], held.Select(h => h.Name));
        var segs = await repo.ListBackupsAsync(BackupKind.WalSegment, "ns1");
        Assert.Equal([2L, 1L], segs.Select(s => s.SegmentId!.Value));
        Assert.Empty(await repo.FindRefAsync("wal/ns1/00000000"));
        await Assert.ThrowsAsync<InvalidInputException>(() => repo.FindRefAsync("../x"));

        backend.Write("refs/wal/ns1/000000003/" + new string('a', 64), []);
        RepositoryCheckReport check = await repo.CheckAsync(readData: false);
        Assert.Contains(check.Errors, i => i.Code == "RefDangling");
    }
}

/// <summary>Manifest file entries are read and written by a hand-written converter
/// (RepositoryFileJsonConverter): the format document's JSON must read field by field, what it
/// writes must read back the same, and a value of the wrong type is a manifest that does not parse.</summary>
public sealed class ManifestFileJsonTests
{
    private const string IdA = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    private const string IdB = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";
    private const string Sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    /// <summary>A valid manifest whose file list is <paramref name="files"/> (JSON text).</summary>
    private static byte[] ManifestWith(string files)
    {
        var m = new RepositoryManifest { Kind = BackupKind.Object, Dir = "d", Object = "o", Host = "h", CreatedAt = DateTimeOffset.UnixEpoch, Files = [] };
        string json = Encoding.UTF8.GetString(RepositoryJson.Serialize(m));
        Assert.Contains("\"files\":[]", json);
        return Encoding.UTF8.GetBytes(json.Replace("\"files\":[]", "\"files\":" + files));
    }

    [Fact]
    public void The_format_documents_file_entry_reads_every_field_skips_unknown_ones_and_writes_back_the_same()
    {
        // docs/repository-format.md's entry, with properties a later version might add.
        string entry = "{\"path\":\"db/data.mdb\",\"size\":12345678,\"sha256\":\"" + Sha + "\",\"chunks\":[\"" + IdA + "\",\"" + IdB + "\"],"
            + "\"future\":{\"nested\":[1,{\"x\":null}]},"
            + "\"stamp\":{\"modifiedNs\":1767225600123456789,\"changedNs\":1767225600123456790,\"device\":18446744073709551615,\"inode\":131075,\"later\":[]},"
            + "\"mode\":384,\"uid\":1001,\"gid\":1002,\"modifiedNs\":1767225600123456788,\"tags\":[\"a\"]}";
        RepositoryManifest m = Repo.ParseManifest(ManifestWith("[" + entry + "]"), new string('a', 64));

        RepositoryFile f = Assert.Single(m.Files);
        Assert.Equal(("db/data.mdb", 12345678L, Sha), (f.Path, f.Size, f.Sha256));
        Assert.Equal([IdA, IdB], f.Chunks.Select(c => c.ToString()));
        Assert.Equal(new RepositoryFileStamp(1767225600123456789, 1767225600123456790, ulong.MaxValue, 131075), f.Stamp);
        Assert.Equal(new FileMetadata(384, 1001, 1002, 1767225600123456788), f.Metadata);

        string written = Encoding.UTF8.GetString(RepositoryJson.Serialize(m));
        Assert.Contains("{\"path\":\"db/data.mdb\",\"size\":12345678,\"sha256\":\"" + Sha + "\",\"chunks\":[\"" + IdA + "\",\"" + IdB + "\"],"
            + "\"stamp\":{\"modifiedNs\":1767225600123456789,\"changedNs\":1767225600123456790,\"device\":18446744073709551615,\"inode\":131075},"
            + "\"mode\":384,\"uid\":1001,\"gid\":1002,\"modifiedNs\":1767225600123456788}", written);
        RepositoryFile again = Assert.Single(Repo.ParseManifest(Encoding.UTF8.GetBytes(written), new string('b', 64)).Files);
        Assert.Equal((f.Path, f.Size, f.Sha256, f.Stamp, f.Metadata), (again.Path, again.Size, again.Sha256, again.Stamp, again.Metadata));
        Assert.Equal(f.Chunks, again.Chunks);
    }

    [Fact]
    public void Absent_and_null_optional_fields_stay_absent_and_an_escaped_chunk_id_reads_as_the_plain_one()
    {
        string escaped = "\\u0030" + IdA[1..]; // "0" written as \u0030
        string entry = "{\"path\":\"x\",\"size\":5,\"sha256\":\"" + Sha + "\",\"chunks\":[\"" + escaped + "\"],\"stamp\":null,\"mode\":null}";
        RepositoryFile f = Assert.Single(Repo.ParseManifest(ManifestWith("[" + entry + "]"), new string('a', 64)).Files);

        Assert.Equal(IdA, Assert.Single(f.Chunks).ToString());
        Assert.Null(f.Stamp);
        Assert.Null(f.Metadata);
        string written = Encoding.UTF8.GetString(RepositoryJson.Serialize(f));
        Assert.Equal("{\"path\":\"x\",\"size\":5,\"sha256\":\"" + Sha + "\",\"chunks\":[\"" + IdA + "\"]}", written);
    }

    [Theory]
    [InlineData("\"mode\":420", 420, null, null, null)]
    [InlineData("\"uid\":0,\"gid\":null", null, 0L, null, null)]
    [InlineData("\"gid\":7,\"modifiedNs\":5", null, null, 7L, 5L)]
    public void Partly_recorded_metadata_reads_and_writes_back_field_by_field(string fields, int? mode, long? uid, long? gid, long? modifiedNs)
    {
        // Each of the four is held apart with its own "present" mark: a value of 0 is recorded, a
        // null or absent one is not, and one field never stands in for another.
        string entry = "{\"path\":\"x\",\"size\":5,\"sha256\":\"" + Sha + "\",\"chunks\":[\"" + IdA + "\"]," + fields + "}";
        RepositoryFile f = Assert.Single(Repo.ParseManifest(ManifestWith("[" + entry + "]"), new string('a', 64)).Files);

        Assert.Equal((mode, uid, gid, modifiedNs), (f.Mode, f.Uid, f.Gid, f.ModifiedNs));
        Assert.Equal(new FileMetadata(mode, uid, gid, modifiedNs), f.Metadata);
        string written = Encoding.UTF8.GetString(RepositoryJson.Serialize(f));
        RepositoryFile again = Assert.Single(Repo.ParseManifest(ManifestWith("[" + written + "]"), new string('b', 64)).Files);
        Assert.Equal((mode, uid, gid, modifiedNs), (again.Mode, again.Uid, again.Gid, again.ModifiedNs));
        Assert.Equal(f, again with { Chunks = f.Chunks }); // records compare the chunk list by reference
    }

    [Fact]
    public void Stamp_and_metadata_fields_take_part_in_equality_and_with_changes_only_what_it_names()
    {
        var plain = new RepositoryFile("x", 5, Sha, [ChunkId.Parse(IdA)]);
        var zero = new RepositoryFileStamp(0, 0, 0, 0);
        RepositoryFile stamped = plain with { Stamp = zero };
        Assert.Equal(zero, stamped.Stamp); // an all-zero stamp is a stamp, not none
        Assert.NotEqual(plain, stamped);
        Assert.Equal(plain, stamped with { Stamp = null });
        Assert.Equal(plain.GetHashCode(), (stamped with { Stamp = null }).GetHashCode());
        Assert.True(stamped.StampIs(zero));
        Assert.True(stamped.StampIs(new FileStamp(123, 0, 0, 0, 0)));
        Assert.False(plain.StampIs(new FileStamp(0, 0, 0, 0, 0)));
        Assert.True(plain.StampIs((RepositoryFileStamp?)null));

        RepositoryFile full = stamped.WithMetadata(new FileMetadata(384, 1, 2, 3));
        Assert.Equal(zero, full.Stamp);
        RepositoryFile partly = full.WithMetadata(new FileMetadata(384, null, 2, null));
        Assert.Equal((384, (long?)null, 2L, (long?)null), (partly.Mode, partly.Uid, partly.Gid, partly.ModifiedNs));
        Assert.Equal(zero, partly.Stamp);
        Assert.NotEqual(full, full with { Uid = 9 });
        Assert.NotEqual(full, full with { ModifiedNs = null });
        Assert.Equal(full, full with { Uid = 9 } with { Uid = 1 });
        Assert.Equal(plain, partly with { Stamp = null, Mode = null, Gid = null });
    }

    [Fact]
    public void A_null_sha256_is_not_equal_to_any_text_given()
    {
        ChunkId[] chunks = [ChunkId.Parse(IdA)];
        var absent = new RepositoryFile("x", 5, null!, chunks);
        Assert.Null(absent.Sha256);
        Assert.Equal(absent, new RepositoryFile("x", 5, null!, chunks));
        Assert.NotEqual(absent, new RepositoryFile("x", 5, "\0", chunks));
        Assert.NotEqual(absent, new RepositoryFile("x", 5, "", chunks));
    }

    [Theory]
    [InlineData("0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef")]
    [InlineData("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde")]
    [InlineData("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0")]
    [InlineData("")]
    [InlineData(null)]
    public void A_file_sha256_not_in_the_usual_form_reads_back_as_given_writes_back_as_given_and_is_refused(string? sha)
    {
        // The usual form is held as its 32 bytes; anything else must stay exactly what was given
        // (never normalized into a hash that would then pass), and validation refuses it.
        var f = new RepositoryFile("x", 5, sha!, [ChunkId.Parse(IdA)]);
        Assert.Equal(sha, f.Sha256);
        Assert.False(f.TryGetSha256(out _));
        string written = Encoding.UTF8.GetString(RepositoryJson.Serialize(f));
        Assert.Equal(sha is null ? "{\"path\":\"x\",\"size\":5,\"chunks\":[\"" + IdA + "\"]}" : "{\"path\":\"x\",\"size\":5,\"sha256\":\"" + sha + "\",\"chunks\":[\"" + IdA + "\"]}", written);

        var e = Assert.Throws<RepositoryIntegrityException>(() => Repo.ParseManifest(ManifestWith("[" + written + "]"), new string('a', 64)));
        Assert.Equal("ManifestInvalid", e.ErrorId);
    }

    [Fact]
    public void A_file_sha256_in_the_usual_form_is_the_same_however_it_was_given_and_an_escaped_one_reads_as_the_plain_one()
    {
        ChunkId[] chunks = [ChunkId.Parse(IdA)];
        var given = new RepositoryFile("x", 5, Sha, chunks);
        RepositoryFile fromBytes = RepositoryFile.FromDigest("x", 5, ChunkId.Parse(Sha), chunks);
        Assert.Equal(given, fromBytes);
        Assert.Equal(given.GetHashCode(), fromBytes.GetHashCode());
        Assert.True(given.TryGetSha256(out ChunkId held));
        Assert.Equal(Sha, held.ToString());
        Assert.NotEqual(given, given with { Sha256 = IdA });
        Assert.Equal(IdA, (given with { Sha256 = IdA }).Sha256);
        Assert.Equal("X", (given with { Sha256 = "X" }).Sha256);

        string escaped = "\\u00" + ((int)Sha[0]).ToString("x2") + Sha[1..]; // the first digit escaped
        string entry = "{\"path\":\"x\",\"size\":5,\"sha256\":\"" + escaped + "\",\"chunks\":[\"" + IdA + "\"]}";
        RepositoryFile read = Assert.Single(Repo.ParseManifest(ManifestWith("[" + entry + "]"), new string('a', 64)).Files);
        Assert.Equal(Sha, read.Sha256);
        Assert.True(read.TryGetSha256(out _));
    }

    [Theory]
    [InlineData("\"size\":\"5\"")]
    [InlineData("\"size\":5.5")]
    [InlineData("\"size\":null")]
    [InlineData("\"size\":99999999999999999999")]
    [InlineData("\"path\":7")]
    [InlineData("\"sha256\":[]")]
    [InlineData("\"chunks\":\"" + IdA + "\"")]
    [InlineData("\"chunks\":[\"" + IdA + "0\"]")]
    [InlineData("\"chunks\":[\"zz" + Sha + "\"]")]
    [InlineData("\"chunks\":[7]")]
    [InlineData("\"stamp\":5")]
    [InlineData("\"stamp\":{\"inode\":-1}")]
    [InlineData("\"stamp\":{\"modifiedNs\":\"1\"}")]
    [InlineData("\"mode\":\"rw\"")]
    [InlineData("\"mode\":4294967296")]
    [InlineData("\"uid\":1e3")]
    [InlineData("\"gid\":true")]
    public void A_file_entry_value_of_the_wrong_type_is_a_manifest_that_does_not_parse(string field)
    {
        string entry = "{\"path\":\"x\",\"size\":5,\"sha256\":\"" + Sha + "\",\"chunks\":[\"" + IdA + "\"]," + field + "}";

        var e = Assert.Throws<RepositoryIntegrityException>(() => Repo.ParseManifest(ManifestWith("[" + entry + "]"), new string('a', 64)));
        Assert.Equal("ManifestInvalid", e.ErrorId);
        Assert.Contains("does not parse", e.Message);
    }
}

/// <summary>The hex helpers every manifest and index read goes through (by table and vectorized).</summary>
public sealed class HexTests
{
    [Fact]
    public void Every_char_decodes_as_a_hex_digit_of_either_case_or_not_at_all()
    {
        for (int c = 0; c <= char.MaxValue; c++)
        {
            int expected = c is >= '0' and <= '9' ? c - '0' : c is >= 'a' and <= 'f' ? c - 'a' + 10 : c is >= 'A' and <= 'F' ? c - 'A' + 10 : -1;
            Assert.Equal(expected, Hex.Nibble((char)c));
        }
    }

    [Fact]
    public void Only_64_lowercase_hex_digits_are_a_sha256()
    {
        string good = string.Concat(Enumerable.Repeat("0123456789abcdef", 4));
        Assert.True(Hex.IsSha256Hex(good));
        Assert.False(Hex.IsSha256Hex(null));
        Assert.False(Hex.IsSha256Hex(good[..63]));
        Assert.False(Hex.IsSha256Hex(good + "0"));
        for (int i = 0; i < 64; i++)
        {
            foreach (char bad in "gA:/ \u0660\uff10")
            {
                Assert.False(Hex.IsSha256Hex(good[..i] + bad + good[(i + 1)..]), $"'{bad}' at {i}");
            }
        }
    }
}

/// <summary>Pack keys as check, repair, sync and the check's prehash read them from a listing.</summary>
public sealed class PackKeyTests
{
    private static readonly string Id = new string('a', 2) + new string('0', 62);

    [Fact]
    public void A_pack_key_gives_back_the_id_it_was_made_from()
    {
        string id = Hex.Encode(System.Security.Cryptography.SHA256.HashData("pack"u8));
        Assert.Equal(id, RepositoryLayout.PackIdOf(RepositoryLayout.PackKey(id)));
    }

    [Theory]
    [InlineData("packs/bb/aa00000000000000000000000000000000000000000000000000000000000000")] // wrong folder
    [InlineData("packs/aa00000000000000000000000000000000000000000000000000000000000000")] // no folder
    [InlineData("packs/aa/aa00000000000000000000000000000000000000000000000000000000000000.tmp")]
    [InlineData("packs/aa/AA00000000000000000000000000000000000000000000000000000000000000")] // upper case
    [InlineData("packs/aa/aa0000000000000000000000000000000000000000000000000000000000000")] // 63 digits
    [InlineData("index/aa/aa00000000000000000000000000000000000000000000000000000000000000")] // not under packs/
    [InlineData("packs/")]
    public void Anything_else_is_no_pack(string key)
    {
        Assert.Equal(Id, RepositoryLayout.PackIdOf(RepositoryLayout.PackKey(Id)));
        Assert.Null(RepositoryLayout.PackIdOf(key));
    }
}
