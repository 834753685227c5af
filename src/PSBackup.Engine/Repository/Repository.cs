using System.Buffers;
using System.Security.Cryptography;
using System.Text.Json;
using PSBackup.Engine.Repository.Compression;
using PSBackup.Engine.Storage;

namespace PSBackup.Engine.Repository;

/// <summary>An opened off-host repository (docs/repository-format.md). Create one with
/// <see cref="InitializeAsync"/> or <see cref="OpenAsync"/>; back up with
/// <see cref="BeginBackup"/>; read with <see cref="ListBackupsAsync"/>,
/// <see cref="ReadManifestAsync"/> and <see cref="RestoreAsync"/>; verify with <see cref="CheckAsync"/>.
/// Thread-safe: several writers and readers may use one instance at once. The caller owns the backend.</summary>
public sealed class Repository
{
    private readonly FastCdc _defaultCdc;
    private readonly FastCdc _storeCdc;
    private readonly List<string> _damagedIndexes = new();

    private Repository(IStorageBackend backend, RepositoryConfig config, string configSha256, byte[]? master, IBlockCompressor zstd)
    {
        Backend = backend;
        Config = config;
        ConfigSha256 = configSha256;
        Codec = new BlobCodec(zstd, master?[..32], master?[32..], config.CompressionLevel);
        _defaultCdc = new FastCdc(config.DefaultChunking, config.GearSeed);
        _storeCdc = new FastCdc(config.StoreChunking, config.GearSeed);
    }

    public IStorageBackend Backend { get; }
    public RepositoryConfig Config { get; }
    public bool IsEncrypted => Config.IsEncrypted;
    public string Location => Backend.Location;
    internal string ConfigSha256 { get; }
    internal BlobCodec Codec { get; }
    internal RepositoryIndex Index { get; private set; } = new();
    /// <summary>Index objects that failed their hash or did not parse when the index was loaded.</summary>
    public IReadOnlyList<string> DamagedIndexes { get { lock (_damagedIndexes) { return _damagedIndexes.ToList(); } } }
    /// <summary>How many chunks the loaded index knows.</summary>
    public int IndexedChunkCount => Index.ChunkCount;

    internal FastCdc Chunker(ChunkingProfile p) => p == ChunkingProfile.Store ? _storeCdc : _defaultCdc;

    // ---------------------------------------------------------------- create / open

    /// <summary>Creates a repository on an empty backend location. Refuses one that already has a
    /// <c>config</c> (ConflictException RepositoryExists). Writes the key (when encrypted) before
    /// the config, so an interrupted init leaves no repository and can simply be re-run.</summary>
    public static async Task<Repository> InitializeAsync(IStorageBackend backend, RepositoryInitOptions options, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Passphrase is not null && (options.KeyFile is not null || options.Key is not null))
        {
            throw new InvalidInputException("ConflictingCredentials", "Give either a passphrase or a key file, not both.");
        }
        if (options.FrameSize is < 64 * 1024 or > 16 * 1024 * 1024)
        {
            throw new InvalidInputException("InvalidFrameSize", "The frame size must be between 64 KiB and 16 MiB.");
        }
        if (options.PackSize is < 256 * 1024 or > 256 * 1024 * 1024)
        {
            throw new InvalidInputException("InvalidPackSize", "The pack size must be between 256 KiB and 256 MiB.");
        }
        if (options.CompressionLevel is < 1 or > 19)
        {
            throw new InvalidInputException("InvalidCompressionLevel", "The zstd level must be between 1 and 19.");
        }
        (options.DefaultChunking ?? ChunkingParameters.Default).Validate();
        (options.StoreChunking ?? ChunkingParameters.StoreDefault).Validate();
        if (options.Key is not null)
        {
            RepositoryCrypto.CheckKey(options.Key, "the key given");
        }
        else if (options.KeyFile is not null)
        {
            RepositoryCrypto.ReadKeyFile(options.KeyFile);
        }
        IBlockCompressor zstd = ZstdCodecs.Default;
        if (await backend.StatAsync(RepositoryLayout.ConfigKey, ct).ConfigureAwait(false) is not null)
        {
            throw new ConflictException("RepositoryExists",
                $"A repository already exists at {backend.Location}. Open it instead, or choose an empty location.", backend.Location);
        }
        bool encrypted = options.Passphrase is not null || options.KeyFile is not null || options.Key is not null;
        DateTimeOffset now = DateTimeOffset.UtcNow;
        var config = new RepositoryConfig
        {
            Id = Hex.Encode(RandomNumberGenerator.GetBytes(32)),
            CreatedAt = now,
            Encryption = encrypted ? RepositoryConfig.EncryptionAes256Gcm : RepositoryConfig.EncryptionNone,
            ChunkIdAlgorithm = encrypted ? "hmac-sha256" : "sha256",
            CompressionLevel = options.CompressionLevel,
            DefaultChunking = options.DefaultChunking ?? ChunkingParameters.Default,
            StoreChunking = options.StoreChunking ?? ChunkingParameters.StoreDefault,
            FrameSize = options.FrameSize,
            PackSize = options.PackSize,
        };
        byte[] configBytes = RepositoryJson.Serialize(config, indented: true);
        string configSha = Hex.Encode(SHA256.HashData(configBytes));
        byte[]? master = null;
        if (encrypted)
        {
            master = RandomNumberGenerator.GetBytes(64);
            KeyObject key = RepositoryCrypto.CreateKey(options, config.Id, configSha, master, now);
            byte[] keyBytes = RepositoryJson.Serialize(key, indented: true);
            await PutBytesAsync(backend, RepositoryLayout.KeyKey(Hex.Encode(SHA256.HashData(keyBytes))), keyBytes, ct).ConfigureAwait(false);
        }
        await PutBytesAsync(backend, RepositoryLayout.ConfigKey, configBytes, ct).ConfigureAwait(false);
        if (encrypted)
        {
            KnownRepositories.RememberEncrypted(config.Id, backend.Location);
        }
        return new Repository(backend, config, configSha, master, zstd);
    }

    /// <summary>Opens a repository: reads the config, unwraps the master keys when encrypted
    /// (wrong passphrase or key file: <see cref="RepositoryKeyException"/>; damaged key or config:
    /// <see cref="RepositoryIntegrityException"/>) and loads the index (unless
    /// <paramref name="loadIndex"/> is false: a writer loads it once it holds its lock). Writes nothing.</summary>
    public static async Task<Repository> OpenAsync(IStorageBackend backend, RepositoryCredentials credentials, CancellationToken ct = default, bool loadIndex = true)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(credentials);
        (RepositoryConfig config, string configSha, List<(string Key, KeyObject? Key2, string? Problem)> keys) = await ReadConfigAndKeysAsync(backend, ct).ConfigureAwait(false);
        byte[]? master = null;
        if (config.IsEncrypted)
        {
            master = UnwrapMaster(backend.Location, config, configSha, keys, credentials);
        }
        else if (keys.Count > 0)
        {
            throw new RepositoryIntegrityException("ConfigInvalid",
                $"The config at {backend.Location} says the repository is not encrypted, but it holds key objects ({keys[0].Key}). The config is damaged or was altered; restore it from a copy.",
                RepositoryLayout.ConfigKey);
        }
        else if (KnownRepositories.WasEncrypted(config.Id))
        {
            throw new RepositoryIntegrityException("EncryptionDowngrade",
                $"The repository at {backend.Location} (id {config.Id}) was encrypted when this user last opened it, but its config now says it is not and it holds no key. Someone who can write the storage replaced the config and removed the keys; nothing was written. Do not use it: restore 'config' and 'keys/' from a copy of the repository.",
                RepositoryLayout.ConfigKey);
        }
        else if (!credentials.IsNone)
        {
            string what = credentials.Passphrase is not null ? "passphrase" : "key file";
            throw new RepositoryIntegrityException("RepositoryNotEncrypted",
                $"A {what} was given (a parameter, {RepositoryConnector.PassphraseVariable} or {RepositoryConnector.KeyFileVariable}), but the repository at {backend.Location} is not encrypted, so nothing was read or written. If it was created unencrypted, give no {what}; if it was encrypted, someone who can write the storage replaced its config and keys: restore them from a copy.",
                RepositoryLayout.ConfigKey);
        }
        if (master is not null)
        {
            KnownRepositories.RememberEncrypted(config.Id, backend.Location);
        }
        var repo = new Repository(backend, config, configSha, master, ZstdCodecs.Default);
        if (loadIndex)
        {
            await repo.ReloadIndexAsync(ct).ConfigureAwait(false);
        }
        return repo;
    }

    /// <summary>RepositoryNotFound for a location that holds no repository (no <c>config</c> object).</summary>
    internal static NotFoundException NoRepositoryAt(string location) => new("RepositoryNotFound",
        $"There is no repository at {location} (no 'config' object). Create one with Initialize-BackupRepository / 'psbackup repo init'.", location);

    internal static RepositoryConfig ParseConfig(byte[] bytes, string where)
    {
        RepositoryConfig? c;
        try
        {
            c = RepositoryJson.Deserialize<RepositoryConfig>(bytes);
        }
        catch (JsonException e)
        {
            throw new RepositoryIntegrityException("ConfigInvalid", $"The config of the repository at {where} does not parse ({e.Message}). It is damaged; restore it from a copy.", RepositoryLayout.ConfigKey, inner: e);
        }
        if (c is null)
        {
            throw new RepositoryIntegrityException("ConfigInvalid", $"The config of the repository at {where} is empty.", RepositoryLayout.ConfigKey);
        }
        if (c.FormatVersion > RepositoryConfig.CurrentFormatVersion)
        {
            throw new OperationFailedException("RepositoryTooNew", $"The repository at {where} has format version {c.FormatVersion}; this PSBackup reads up to {RepositoryConfig.CurrentFormatVersion}. Use a newer PSBackup.", where);
        }
        bool ok = c.FormatVersion >= 1 && Hex.IsSha256Hex(c.Id) && c.Compression == "zstd"
            && ((c.Encryption == RepositoryConfig.EncryptionNone && c.ChunkIdAlgorithm == "sha256")
                || (c.Encryption == RepositoryConfig.EncryptionAes256Gcm && c.ChunkIdAlgorithm == "hmac-sha256"))
            && c.CompressionLevel is >= 1 and <= 19 && c.FrameSize is >= 64 * 1024 and <= 16 * 1024 * 1024
            && c.PackSize is >= 256 * 1024 and <= 256 * 1024 * 1024 && c.DefaultChunking is not null && c.StoreChunking is not null;
        if (ok)
        {
            try
            {
                c.DefaultChunking!.Validate();
                c.StoreChunking!.Validate();
            }
            catch (InvalidInputException)
            {
                ok = false;
            }
        }
        return ok ? c : throw new RepositoryIntegrityException("ConfigInvalid", $"The config of the repository at {where} has invalid or unknown values. It is damaged; restore it from a copy.", RepositoryLayout.ConfigKey);
    }

    /// <summary>What an open reads before it can decide anything: the config (parsed, and the SHA-256
    /// of its bytes that key objects are bound to) and every key object.</summary>
    private static async Task<(RepositoryConfig Config, string ConfigSha, List<(string Key, KeyObject? Key2, string? Problem)> Keys)> ReadConfigAndKeysAsync(IStorageBackend backend, CancellationToken ct)
    {
        byte[] configBytes;
        try
        {
            configBytes = await GetBytesAsync(backend, RepositoryLayout.ConfigKey, ct).ConfigureAwait(false);
        }
        catch (StorageNotFoundException)
        {
            throw NoRepositoryAt(backend.Location);
        }
        RepositoryConfig config = ParseConfig(configBytes, backend.Location);
        return (config, Hex.Encode(SHA256.HashData(configBytes)), await ReadKeysAsync(backend, ct).ConfigureAwait(false));
    }

    /// <summary>The key step of <see cref="OpenAsync"/> alone: reads the config and the key objects and
    /// unwraps the master key with <paramref name="credentials"/>, which keeps a passphrase's derived
    /// wrap key in the session's key cache (<see cref="WrapKeyCache"/>). Throws what the open would
    /// throw for a wrong or missing key; writes nothing and remembers nothing else.</summary>
    internal static async Task UnlockAsync(IStorageBackend backend, RepositoryCredentials credentials, CancellationToken ct)
    {
        (RepositoryConfig config, string configSha, List<(string Key, KeyObject? Key2, string? Problem)> keys) = await ReadConfigAndKeysAsync(backend, ct).ConfigureAwait(false);
        if (config.IsEncrypted)
        {
            UnwrapMaster(backend.Location, config, configSha, keys, credentials);
        }
    }

    internal static async Task<List<(string, KeyObject?, string?)>> ReadKeysAsync(IStorageBackend backend, CancellationToken ct)
    {
        var result = new List<(string, KeyObject?, string?)>();
        await foreach (StoredObject o in backend.ListAsync(RepositoryLayout.KeysPrefix, ct).ConfigureAwait(false))
        {
            byte[] bytes = await GetBytesAsync(backend, o.Key, ct).ConfigureAwait(false);
            string name = o.Key[RepositoryLayout.KeysPrefix.Length..];
            if (Hex.Encode(SHA256.HashData(bytes)) != name)
            {
                result.Add((o.Key, null, "its SHA-256 does not match its name"));
                continue;
            }
            try
            {
                KeyObject? k = RepositoryJson.Deserialize<KeyObject>(bytes);
                result.Add(k is not null && k.Checksum == k.ComputeChecksum() ? (o.Key, k, null) : (o.Key, null, "its checksum does not verify"));
            }
            catch (Exception e) when (e is JsonException or FormatException)
            {
                result.Add((o.Key, null, "it does not parse"));
            }
        }
        return result;
    }

    private static byte[] UnwrapMaster(string where, RepositoryConfig config, string configSha, List<(string Key, KeyObject? Obj, string? Problem)> keys, RepositoryCredentials cred)
    {
        var damaged = keys.Where(k => k.Obj is null).ToList();
        var sound = keys.Where(k => k.Obj is not null).ToList();
        if (sound.Count == 0)
        {
            if (damaged.Count > 0)
            {
                throw new RepositoryIntegrityException("KeyCorrupt",
                    $"The repository at {where} is encrypted but its key object {damaged[0].Key} is damaged ({damaged[0].Problem}). Restore the key object from a copy of the repository.", damaged[0].Key);
            }
            throw new RepositoryIntegrityException("KeyMissing", $"The repository at {where} is encrypted but holds no key object. Restore 'keys/' from a copy of the repository.", RepositoryLayout.KeysPrefix);
        }
        var bound = sound.Where(k => k.Obj!.ConfigSha256 == configSha).ToList();
        if (bound.Count == 0)
        {
            throw new RepositoryIntegrityException("ConfigInvalid",
                $"The config of the repository at {where} does not match any key object (it changed after the keys were made). The config is damaged or altered; restore it from a copy.", RepositoryLayout.ConfigKey);
        }
        if (cred.IsNone)
        {
            throw new RepositoryKeyException($"The repository at {where} is encrypted. Give its passphrase (-Passphrase, or the PSBACKUP_PASSPHRASE environment variable) or its key file (-KeyFile, or PSBACKUP_KEY_FILE).", where);
        }
        RepositoryKeyException? last = null;
        foreach (var (_, k, _) in bound)
        {
            byte[]? master;
            try
            {
                master = RepositoryCrypto.Unwrap(k!, cred, config.Id, where);
            }
            catch (RepositoryKeyException e)
            {
                last = e;
                continue;
            }
            if (master is not null)
            {
                return master;
            }
        }
        string what = cred.Passphrase is not null ? "passphrase" : "key file";
        throw last is not null && bound.All(k => k.Obj!.Kdf != (cred.Passphrase is not null ? RepositoryCrypto.KdfPbkdf2 : RepositoryCrypto.KdfKeyFile))
            ? last
            : new RepositoryKeyException($"The {what} does not open the repository at {where}. Check the {what} (the key unwrap failed authentication; nothing was written) and try again.", where);
    }

    /// <summary>Re-reads every index object (e.g. to see what other hosts have written since open).
    /// Damaged index objects are skipped and listed in <see cref="DamagedIndexes"/>.</summary>
    public async Task ReloadIndexAsync(CancellationToken ct = default)
    {
        var index = new RepositoryIndex();
        var damaged = new List<string>();
        var keys = new List<string>();
        await foreach (StoredObject o in Backend.ListAsync(RepositoryLayout.IndexPrefix, ct).ConfigureAwait(false))
        {
            keys.Add(o.Key);
        }
        await Parallel.ForEachAsync(keys, new ParallelOptions { MaxDegreeOfParallelism = 4, CancellationToken = ct }, async (key, c) =>
        {
            try
            {
                IndexObject idx = await ReadIndexObjectAsync(key, c).ConfigureAwait(false);
                index.AddAll(idx.Packs);
            }
            catch (RepositoryIntegrityException)
            {
                lock (damaged)
                {
                    damaged.Add(key);
                }
            }
        }).ConfigureAwait(false);
        // The existence check behind every backup: packs are listed after the index was read (an
        // index object is written after its packs, so every pack it names is in this listing unless
        // it is gone), and packs marked damaged are left out. One listing per 1000 packs on S3.
        await CheckPacksAsync(index, ct).ConfigureAwait(false);
        Index = index;
        lock (_damagedIndexes)
        {
            _damagedIndexes.Clear();
            _damagedIndexes.AddRange(damaged.Order(StringComparer.Ordinal));
        }
        lock (_sentinels)
        {
            _sentinels[0] = keys.Count > 0 ? keys[0] : null;
            _sentinels[1] = keys.Count > 1 ? keys[^1] : null;
        }
    }

    /// <summary>Two index objects this instance knows to exist (the first and last listed at the
    /// last load, then the newest it wrote): see <see cref="IndexStillCurrentAsync"/>.</summary>
    private readonly string?[] _sentinels = new string?[2];

    /// <summary>Records an index object this instance wrote.</summary>
    internal void IndexWritten(string key)
    {
        lock (_sentinels)
        {
            if (_sentinels[1] is not null && _sentinels[1] != key)
            {
                _sentinels[0] = _sentinels[1];
            }
            _sentinels[1] = key;
        }
    }

    /// <summary>False when a prune or repair replaced the index since it was loaded: both write new
    /// index objects and delete the ones they replace (prune every other one), so of two distinct
    /// objects known to exist at least one is gone afterwards. Two stats, whatever the repository's size.</summary>
    internal async Task<bool> IndexStillCurrentAsync(CancellationToken ct)
    {
        string?[] keys;
        lock (_sentinels)
        {
            keys = [.. _sentinels];
        }
        foreach (string key in keys.OfType<string>().Distinct(StringComparer.Ordinal))
        {
            if (await Backend.StatAsync(key, ct).ConfigureAwait(false) is null)
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>Applies the damaged-pack markers (<c>damaged/</c>, usually empty) to the index held,
    /// without reading the index again.</summary>
    internal async Task RefreshDamagedMarksAsync(CancellationToken ct)
    {
        await foreach (StoredObject o in Backend.ListAsync(RepositoryLayout.DamagedPrefix, ct).ConfigureAwait(false))
        {
            string id = o.Key[RepositoryLayout.DamagedPrefix.Length..];
            if (Index.Pack(id) is { } p && p.State == PackState.Present)
            {
                p.State = PackState.Damaged;
                p.Problem = $"pack {id} was found damaged (marked {o.Key})";
            }
        }
    }

    /// <summary>Cuts the index held in memory down to the locations of <paramref name="chunks"/>
    /// (a long-running writer that deduplicates against nothing else: the continuous WAL shipper).
    /// Chunks outside it are then stored again if met, never referenced unseen.</summary>
    internal void KeepOnlyInIndex(IEnumerable<ChunkId> chunks) => Index = Index.Subset(chunks);

    private async Task CheckPacksAsync(RepositoryIndex index, CancellationToken ct)
    {
        var listed = new Dictionary<string, long>(StringComparer.Ordinal);
        await foreach (StoredObject o in Backend.ListAsync(RepositoryLayout.PacksPrefix, ct).ConfigureAwait(false))
        {
            listed[o.Key[(o.Key.LastIndexOf('/') + 1)..]] = o.Size;
        }
        var marked = new HashSet<string>(StringComparer.Ordinal);
        await foreach (StoredObject o in Backend.ListAsync(RepositoryLayout.DamagedPrefix, ct).ConfigureAwait(false))
        {
            marked.Add(o.Key[RepositoryLayout.DamagedPrefix.Length..]);
        }
        foreach (RepositoryIndex.PackInfo p in index.Packs())
        {
            if (!listed.TryGetValue(p.Id, out long size))
            {
                p.State = PackState.Missing;
                p.Problem = $"pack {p.Id} is missing";
            }
            else if (size != p.Size)
            {
                p.State = PackState.Damaged;
                p.Problem = $"pack {p.Id} has {size} bytes, its index says {p.Size}";
            }
            else if (marked.Contains(p.Id))
            {
                p.State = PackState.Damaged;
                p.Problem = $"pack {p.Id} was found damaged (marked {RepositoryLayout.DamagedKey(p.Id)})";
            }
        }
    }

    /// <summary>Packs the index names that are missing or damaged: their chunks are not deduplicated
    /// against (the next backup stores them again) and readers try other copies first.</summary>
    public IReadOnlyList<(string PackId, string Problem)> UnusablePacks =>
        Index.Packs().Where(p => !p.Usable).Select(p => (p.Id, p.Problem ?? $"pack {p.Id} is not usable")).OrderBy(p => p.Id, StringComparer.Ordinal).ToList();

    /// <summary>Records that a pack's bytes failed a check: in this process at once, and as the plain
    /// marker <c>damaged/&lt;packId&gt;</c> so every later writer stores its chunks again and every reader
    /// tries other copies first. Idempotent. Readers call it best effort (a read-only credential must
    /// not turn a detected corruption into another error).</summary>
    public async Task MarkDamagedAsync(string packId, string reason, CancellationToken ct = default, bool bestEffort = false)
    {
        if (!Hex.IsSha256Hex(packId))
        {
            return;
        }
        if (Index.Pack(packId) is { } p && p.State != PackState.Missing)
        {
            p.State = PackState.Damaged;
            p.Problem = reason;
        }
        byte[] bytes = RepositoryJson.Serialize(new DamagedPackMarker
        {
            Pack = packId,
            Reason = reason,
            DetectedAt = DateTimeOffset.UtcNow,
            Host = Environment.MachineName,
        }, indented: true);
        try
        {
            await PutBytesAsync(Backend, RepositoryLayout.DamagedKey(packId), bytes, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (bestEffort && e is IOException or UnauthorizedAccessException or PSBackupException)
        {
            // The in-memory mark still steers this process; check will mark it again.
        }
    }

    internal async Task<IndexObject> ReadIndexObjectAsync(string key, CancellationToken ct)
    {
        IndexObject? idx;
        try
        {
            idx = await ReadJsonBlobAsync<IndexObject>(key, key[RepositoryLayout.IndexPrefix.Length..], "IndexCorrupt", null, BlobKind.Index, ct).ConfigureAwait(false);
        }
        catch (JsonException e)
        {
            throw new RepositoryIntegrityException("IndexCorrupt", $"The index object {key} does not parse: {e.Message}", key, inner: e);
        }
        string? problem = RepositoryIndex.Validate(idx);
        return problem is null ? idx! : throw new RepositoryIntegrityException("IndexCorrupt", $"The index object {key} is invalid: {problem}.", key);
    }

    /// <summary>Reads a content-addressed JSON blob, checks its SHA-256 against <paramref name="expectedSha"/>
    /// before decoding, and parses it (<see cref="BlobCodec.DecodeJson{T}"/>: a large blob is parsed
    /// as it is decompressed). Bytes that do not decode are <paramref name="errorId"/>; JSON that
    /// does not parse is left to the caller (<see cref="JsonException"/>).</summary>
    internal async Task<T?> ReadJsonBlobAsync<T>(string key, string expectedSha, string errorId, string? manifestId, BlobKind kind, CancellationToken ct)
    {
        byte[] stored = await GetBytesAsync(Backend, key, ct, kind == BlobKind.Manifest ? BlobLimits.MaxManifest : BlobLimits.MaxIndex).ConfigureAwait(false);
        if (Hex.Encode(SHA256.HashData(stored)) != expectedSha)
        {
            throw new RepositoryIntegrityException(errorId, $"The object {key} is damaged: its SHA-256 does not match its name.", key, manifestId);
        }
        try
        {
            return Codec.DecodeJson<T>(stored, kind);
        }
        catch (InvalidDataException e)
        {
            throw new RepositoryIntegrityException(errorId, $"The object {key} does not decode ({e.Message}).", key, manifestId, inner: e);
        }
    }

    // ---------------------------------------------------------------- backups

    /// <summary>Starts one backup. Add files, then <see cref="BackupWriter.CommitAsync"/>; dispose
    /// or <see cref="BackupWriter.AbortAsync"/> without committing and the backup does not exist.
    /// <paramref name="clock"/> stamps the manifest's CompletedAt at commit (the operation's clock,
    /// so it agrees with CreatedAt; the system clock when null).
    /// <paramref name="verifyExisting"/> (object backups under -Force): every stored frame the backup
    /// deduplicates against is read back and checked first (see <see cref="VerifyFrameAsync"/>).</summary>
    public BackupWriter BeginBackup(BackupInfo info, TimeProvider? clock = null, bool verifyExisting = false)
    {
        ArgumentNullException.ThrowIfNull(info);
        ValidateNames(info.Namespace, info.Dir, info.Object);
        return new BackupWriter(this, info, clock ?? TimeProvider.System, verifyExisting);
    }

    private readonly System.Collections.Concurrent.ConcurrentDictionary<RepositoryIndex.FrameInfo, bool> _verifiedFrames = new();

    internal bool IsVerified(RepositoryIndex.FrameInfo frame) => _verifiedFrames.ContainsKey(frame);

    /// <summary>Reads one stored frame back and checks its SHA-256 (the bytes written are the bytes
    /// stored). On failure the pack is taken out of use: missing in this process, damaged also as the
    /// marker <c>damaged/&lt;id&gt;</c>. Storage that does not answer throws (that proves nothing).</summary>
    internal async Task<bool> VerifyFrameAsync(RepositoryIndex.FrameInfo frame, CancellationToken ct)
    {
        if (_verifiedFrames.ContainsKey(frame))
        {
            return true;
        }
        string? problem = null;
        try
        {
            byte[] stored = await GetRangeRentedAsync(frame.Pack.Key, frame.Offset, frame.Length, ct).ConfigureAwait(false);
            try
            {
                Span<byte> h = stackalloc byte[32];
                SHA256.HashData(stored.AsSpan(0, frame.Length), h);
                if (!h.SequenceEqual(frame.Sha256))
                {
                    problem = $"the frame at offset {frame.Offset} of pack {frame.Pack.Id} fails its SHA-256";
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(stored);
            }
        }
        catch (StorageNotFoundException)
        {
            frame.Pack.State = PackState.Missing;
            frame.Pack.Problem = $"pack {frame.Pack.Id} is missing";
            return false;
        }
        catch (Exception e) when (e is EndOfStreamException or StorageIOException { IsTransient: false })
        {
            problem = $"pack {frame.Pack.Id} is shorter than its index says ({e.Message})";
        }
        if (problem is not null)
        {
            await MarkDamagedAsync(frame.Pack.Id, problem, ct).ConfigureAwait(false);
            return false;
        }
        _verifiedFrames.TryAdd(frame, true);
        return true;
    }

    private static void ValidateNames(string? ns, string? dir, string? obj)
    {
        if (ns is not null) { SafePath.ValidateName(ns, "namespace"); }
        if (dir is not null) { SafePath.ValidateName(dir, "dir"); }
        if (obj is not null) { SafePath.ValidateName(obj, "object"); }
    }

    /// <summary>Summaries of every backup, newest first, optionally filtered. A manifest that
    /// fails its hash or validation is an integrity error naming it.</summary>
    public async Task<IReadOnlyList<BackupSummary>> ListBackupsAsync(BackupKind? kind = null, string? ns = null, CancellationToken ct = default)
    {
        var ids = new List<string>();
        await foreach (StoredObject o in Backend.ListAsync(RepositoryLayout.SnapshotsPrefix, ct).ConfigureAwait(false))
        {
            ids.Add(o.Key[RepositoryLayout.SnapshotsPrefix.Length..]);
        }
        var result = new List<BackupSummary>();
        await Parallel.ForEachAsync(ids, new ParallelOptions { MaxDegreeOfParallelism = 4, CancellationToken = ct }, async (id, c) =>
        {
            RepositoryManifest m = await ReadManifestAsync(id, c).ConfigureAwait(false);
            if ((kind is null || m.Kind == kind) && (ns is null || m.Namespace == ns))
            {
                var s = new BackupSummary(m.Id, m.Kind, m.Namespace, m.Dir, m.Object, m.Host, m.CreatedAt, m.TotalBytes, m.Files.Count, m.Segment?.SegmentId);
                lock (result)
                {
                    result.Add(s);
                }
            }
        }).ConfigureAwait(false);
        return result.OrderByDescending(s => s.CreatedAt).ThenBy(s => s.Id, StringComparer.Ordinal).ToList();
    }

    /// <summary>Reads and validates one manifest (hash, decryption, JSON, safe paths, names).</summary>
    public async Task<RepositoryManifest> ReadManifestAsync(string id, CancellationToken ct = default)
    {
        if (!Hex.IsSha256Hex(id))
        {
            throw new InvalidInputException("InvalidBackupId", $"'{id}' is not a backup id (64 lowercase hex digits). Get ids from Get-Backup.", id);
        }
        string key = RepositoryLayout.ManifestKey(id);
        RepositoryManifest? m;
        try
        {
            m = await ReadJsonBlobAsync<RepositoryManifest>(key, id, "ManifestCorrupt", id, BlobKind.Manifest, ct).ConfigureAwait(false);
        }
        catch (StorageNotFoundException)
        {
            throw new NotFoundException("BackupNotFound", $"Backup {id} does not exist in {Location}. List backups with Get-Backup.", id);
        }
        catch (JsonException e)
        {
            throw ManifestUnparsed(id, e);
        }
        m = CheckManifest(m, id);
        m.Id = id;
        return m;
    }

    private static RepositoryIntegrityException ManifestUnparsed(string id, JsonException e) =>
        new("ManifestInvalid", $"Backup {id}: the manifest does not parse ({e.Message}).", RepositoryLayout.ManifestKey(id), id, inner: e);

    internal static RepositoryManifest ParseManifest(byte[] json, string id)
    {
        RepositoryManifest? m;
        try
        {
            m = RepositoryJson.Deserialize<RepositoryManifest>(json);
        }
        catch (JsonException e)
        {
            throw ManifestUnparsed(id, e);
        }
        return CheckManifest(m, id);
    }

    private static RepositoryManifest CheckManifest(RepositoryManifest? m, string id)
    {
        if (m is null)
        {
            throw new RepositoryIntegrityException("ManifestInvalid", $"Backup {id}: the manifest is empty.", RepositoryLayout.ManifestKey(id), id);
        }
        ValidateManifest(m, id);
        return m;
    }

    /// <summary>The largest chunk any chunking profile may cut (<see cref="ChunkingParameters"/>).</summary>
    internal const long MaxChunkSize = 8 * 1024 * 1024;

    /// <summary>Validates a manifest read from storage as hostile input (SafePath rules for every
    /// file path and name, no duplicates, no file under another file, sane sizes and hashes).</summary>
    internal static void ValidateManifest(RepositoryManifest m, string id)
    {
        string key = RepositoryLayout.ManifestKey(id);
        void Fail(string what, string? path = null) =>
            throw new RepositoryIntegrityException("ManifestInvalid", $"Backup {id}: {what}. The manifest is damaged or hostile; it will not be restored.", key, id, path);
        if (m.FormatVersion > RepositoryManifest.CurrentFormatVersion)
        {
            // Not damage: a newer writer. Nothing may treat it as damaged (prune never removes it).
            throw new RepositoryIntegrityException("ManifestTooNew",
                $"Backup {id} has manifest format version {m.FormatVersion}; this PSBackup reads 1..{RepositoryManifest.CurrentFormatVersion}. Use a newer PSBackup.", key, id);
        }
        if (m.FormatVersion < 1)
        {
            Fail($"manifest format version {m.FormatVersion} is not supported (this PSBackup reads 1..{RepositoryManifest.CurrentFormatVersion})");
        }
        if (string.IsNullOrEmpty(m.Host) || m.Files is null)
        {
            Fail("the host or the file list is missing");
        }
        try
        {
            ValidateNames(m.Namespace, m.Dir, m.Object);
        }
        catch (InvalidInputException e)
        {
            Fail(e.Message);
        }
        if (m.Segment is { } seg && (seg.SegmentId < 0 || seg.FirstLogIndex < 0 || seg.EntryCount < 0 || seg.FirstLogIndex > long.MaxValue - seg.EntryCount))
        {
            Fail("the segment facts are negative or overflow");
        }
        if (m.Wal is { } wal && (wal.SegmentIds is null || wal.SegmentIds.Any(i => i < 0) || wal.HighestLogIndex < 0 || wal.AppliedLogIndex < 0
            || wal.HighestLogIndex == long.MaxValue || wal.AppliedLogIndex == long.MaxValue))
        {
            Fail("the WAL position is missing ids, negative or out of range");
        }
        // Exact names: 'Sys' and 'sys' are two folders on Linux (Debian's perl tree has both), so a
        // manifest holding both is sound. Where the restore target ignores case, Repository.RestoreAsync
        // refuses such names before writing (CaseCollision).
        var seen = new HashSet<string>(StringComparer.Ordinal);
        long total = 0;
        foreach (RepositoryFile? f in m.Files!)
        {
            if (f is null)
            {
                Fail("a file entry is null");
                continue;
            }
            try
            {
                string p = SafePath.ValidateRelativePath(f.Path, "manifest path");
                if (p != f.Path)
                {
                    Fail($"the path '{f.Path}' is not in canonical form", f.Path);
                }
            }
            catch (InvalidInputException e)
            {
                Fail(e.Message, f.Path);
            }
            if (!seen.Add(f.Path))
            {
                Fail($"the path '{f.Path}' appears twice", f.Path);
            }
            // Held as bytes exactly when it is 64 lowercase hex digits (no string made per file).
            if (f.Size < 0 || !f.TryGetSha256(out _) || f.Chunks is null || (f.Size == 0) != (f.Chunks.Count == 0))
            {
                Fail($"the entry for '{f.Path}' has an invalid size, hash or chunk list", f.Path);
            }
            // Every chunk holds 1 byte to 8 MiB (the largest chunk any profile allows), so a size the
            // chunk list cannot hold is a lie that would overflow totals and progress.
            if (f.Chunks!.Count > f.Size || f.Size / MaxChunkSize > f.Chunks.Count || total > long.MaxValue - f.Size)
            {
                Fail($"the entry for '{f.Path}' claims {f.Size} bytes in {f.Chunks.Count} chunks, which no backup can hold", f.Path);
            }
            total += f.Size;
        }
        static bool SaneMetadata(int? mode, long? uid, long? gid) => mode is null or (>= 0 and <= 0xFFF) && uid is null or >= 0 && gid is null or >= 0;
        foreach (RepositoryFile f in m.Files!)
        {
            if (!SaneMetadata(f.Mode, f.Uid, f.Gid))
            {
                Fail($"the entry for '{f.Path}' has an invalid mode or owner", f.Path);
            }
        }
        if (m.Root is { } root && (root.Path != "" || !SaneMetadata(root.Mode, root.Uid, root.Gid)))
        {
            Fail("the root folder entry is invalid");
        }
        var folders = new HashSet<string>(StringComparer.Ordinal);
        foreach (RepositoryDirectory? d in m.Directories ?? [])
        {
            if (d is null)
            {
                Fail("a folder entry is null");
                continue;
            }
            try
            {
                if (SafePath.ValidateRelativePath(d.Path, "manifest folder") != d.Path)
                {
                    Fail($"the folder '{d.Path}' is not in canonical form", d.Path);
                }
            }
            catch (InvalidInputException e)
            {
                Fail(e.Message, d.Path);
            }
            if (!folders.Add(d.Path) || seen.Contains(d.Path))
            {
                Fail($"the folder '{d.Path}' appears twice or is also a file", d.Path);
            }
            if (!SaneMetadata(d.Mode, d.Uid, d.Gid))
            {
                Fail($"the folder '{d.Path}' has an invalid mode or owner", d.Path);
            }
        }
        foreach (string p in seen)
        {
            int slash = p.LastIndexOf('/');
            while (slash > 0)
            {
                if (seen.Contains(p[..slash]))
                {
                    Fail($"'{p[..slash]}' is both a file and a folder", p);
                }
                slash = p.LastIndexOf('/', slash - 1);
            }
        }
    }

    /// <summary>Why <paramref name="m"/> cannot be restored from this repository as it stands (a chunk
    /// with no copy in a usable pack), or null. From the loaded index and pack listing; reads nothing.</summary>
    public string? RestoreProblem(RepositoryManifest m)
    {
        ArgumentNullException.ThrowIfNull(m);
        foreach (RepositoryFile f in m.Files)
        {
            foreach (ChunkId c in f.Chunks)
            {
                if (Index.TryGet(c, out _))
                {
                    continue;
                }
                IReadOnlyList<RepositoryIndex.ChunkLocation> all = Index.Locations(c);
                string why = all.Count == 0 ? $"chunk {c} is in no readable index" : all[0].Frame.Pack.Problem ?? $"pack {all[0].Frame.Pack.Id} is not usable";
                return $"file '{f.Path}': {why}";
            }
        }
        return null;
    }

    // ---------------------------------------------------------------- refs

    /// <summary>Every ref whose name starts with <paramref name="prefix"/> (e.g. <c>wal/ns1/</c>), in name order.
    /// Listing a prefix is how WAL shipping learns which segments the repository holds.</summary>
    public async Task<IReadOnlyList<RepositoryRef>> ListRefsAsync(string prefix, CancellationToken ct = default)
    {
        var result = new List<RepositoryRef>();
        await foreach (StoredObject o in Backend.ListAsync(RepositoryLayout.RefsPrefix + prefix, ct).ConfigureAwait(false))
        {
            string rest = o.Key[RepositoryLayout.RefsPrefix.Length..];
            int slash = rest.LastIndexOf('/');
            if (slash > 0 && Hex.IsSha256Hex(rest[(slash + 1)..]))
            {
                result.Add(new RepositoryRef(rest[..slash], rest[(slash + 1)..]));
            }
        }
        return result;
    }

    /// <summary>The refs carrying exactly <paramref name="name"/> (usually one; more when two
    /// writers committed the same name, e.g. a segment shipped twice).</summary>
    public async Task<IReadOnlyList<RepositoryRef>> FindRefAsync(string name, CancellationToken ct = default)
    {
        string n = ValidateRefName(name);
        return (await ListRefsAsync(n + "/", ct).ConfigureAwait(false)).Where(r => r.Name == n).ToList();
    }

    internal static string ValidateRefName(string name)
    {
        string n = SafePath.ValidateRelativePath(name, "ref name");
        return n;
    }

    // ---------------------------------------------------------------- restore

    /// <summary>Restores every file of <paramref name="manifest"/> under <paramref name="targetFolder"/>
    /// with parallel workers, each pack read once (<see cref="ParallelRestore"/>). Every frame's
    /// stored bytes are checked before decoding and each file's size and SHA-256 against the manifest
    /// before it is sealed (metadata given back, fsynced, closed) under its name. Files are written
    /// under short random temp names and renamed once sealed, unless <paramref name="freshFolder"/>:
    /// the caller made the target and nothing else writes there (a restore's temp folder swapped in
    /// afterwards), so files are written under their own names. Existing files are refused
    /// (ConflictException) unless <paramref name="overwrite"/>; the check happens before anything is
    /// written (in a fresh folder, which is empty, each file's exclusive create is the check). On
    /// failure or cancellation no unsealed file is left behind.</summary>
    public async Task<RestoreResult> RestoreAsync(RepositoryManifest manifest, string targetFolder, bool overwrite = false,
        IProgress<OperationProgress>? progress = null, CancellationToken ct = default, bool freshFolder = false)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        ValidateManifest(manifest, manifest.Id);
        string root = Path.GetFullPath(targetFolder);
        // A fresh folder is empty and the caller's alone: no name below it can exist or be a link
        // yet, so the per-file walk for links and the existence checks (~17,000 failed stats and
        // ~40 ms on one core for 4,632 files, before any data moved) are left out. A file that
        // appeared there anyway still stops the restore: each is created exclusively (O_EXCL).
        IReadOnlyList<string> targets;
        // The folders the files go in (each made once, below); a set, not a list per file.
        HashSet<string>? folders = new(StringComparer.Ordinal);
        if (freshFolder)
        {
            // Each file's full name is made again where it is needed, not held for the whole
            // restore: 62,105 of them were ~14 MB for the restore's length. Every path is checked
            // here first, before anything is written.
            foreach (RepositoryFile f in manifest.Files)
            {
                folders.Add(Path.GetDirectoryName(SafePath.JoinUnderFreshRoot(root, f.Path, "restored file"))!);
            }
            IReadOnlyList<RepositoryFile> files = manifest.Files;
            targets = new ComputedList(files.Count, i => SafePath.JoinUnderFreshRoot(root, files[i].Path, "restored file"));
        }
        else
        {
            targets = manifest.Files.Select(f => SafePath.Combine(root, f.Path, "restored file")).ToList();
            folders.UnionWith(targets.Select(t => Path.GetDirectoryName(t)!));
        }
        if (!overwrite && !freshFolder)
        {
            foreach (string t in targets)
            {
                if (File.Exists(t) || Directory.Exists(t))
                {
                    throw new ConflictException("RestoreTargetExists", $"'{t}' already exists. Restore into an empty folder, or allow overwriting (-Force).", t);
                }
            }
        }
        Directory.CreateDirectory(root);
        RequireDistinctNames(manifest, () => SafePath.FolderIgnoresCase(root));
        foreach (string folder in folders)
        {
            Directory.CreateDirectory(folder);
        }
        folders = null; // not carried through the restore (an async method keeps its locals)
        IReadOnlyList<string> paths = targets;
        if (!freshFolder)
        {
            // Temp names are short and random in the target's own folder: never longer than a name the
            // folder allows (a 255-byte name plus ".tmp" is not), never a name the manifest restores
            // (a backup holding both "x" and "x.tmp" once crossed their bytes), never an existing file.
            var taken = new HashSet<string>(targets, StringComparer.Ordinal);
            string TempFor(string target)
            {
                string dir = Path.GetDirectoryName(target)!;
                while (true)
                {
                    string t = Path.Combine(dir, $".psb-{Convert.ToHexString(RandomNumberGenerator.GetBytes(8)).ToLowerInvariant()}.tmp");
                    if (taken.Add(t) && !File.Exists(t) && !Directory.Exists(t))
                    {
                        return t;
                    }
                }
            }
            paths = targets.Select(TempFor).ToList();
        }
        long total = manifest.TotalBytes, written = 0;
        var reporting = new object();
        // Bytes written so far (a large file's progress shows while it is written, a few times a
        // second), and a report as each file is sealed.
        var throttle = new ProgressThrottle();
        await ParallelRestore.RunAsync(this, manifest, paths, targets, i =>
        {
            RepositoryFile f = manifest.Files[i];
            lock (reporting)
            {
                progress?.Report(new OperationProgress("Restore", $"Restored {f.Path}", Math.Min(Interlocked.Read(ref written), total), total, f.Path) { Unit = ProgressUnit.Bytes });
            }
        }, ct, written: progress is null ? null : n =>
        {
            if (throttle.Due(Interlocked.Add(ref written, n)))
            {
                lock (reporting)
                {
                    // Read under the lock, like the sealed reports: what is reported never goes back.
                    progress.Report(new OperationProgress("Restore", "Restoring", Math.Min(Interlocked.Read(ref written), total), total) { Unit = ProgressUnit.Bytes });
                }
            }
        }).ConfigureAwait(false);
        RestoreFolders(manifest, root);
        return new RestoreResult(manifest.Id, root, manifest.Files.Count, total);
    }

    /// <summary>A read-only list whose items are made when read (and not kept).</summary>
    private sealed class ComputedList(int count, Func<int, string> at) : IReadOnlyList<string>
    {
        public int Count => count;
        public string this[int index] => (uint)index < (uint)count ? at(index) : throw new ArgumentOutOfRangeException(nameof(index));
        public IEnumerator<string> GetEnumerator()
        {
            for (int i = 0; i < count; i++)
            {
                yield return at(i);
            }
        }
        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }

    /// <summary>A backup made on Linux may hold 'a/B' and 'a/b'; where the target folder's names ignore
    /// case (Windows, macOS, a casefolded Linux folder), one would overwrite the other. Refused before
    /// any file is written. The target is asked (<paramref name="targetIgnoresCase"/>) only when the
    /// manifest holds such names, not assumed from the OS: a case-sensitive folder on Windows takes them.</summary>
    internal static void RequireDistinctNames(RepositoryManifest manifest, Func<bool> targetIgnoresCase)
    {
        if (SafePath.FindCaseCollision(manifest.Files.Select(f => f.Path), (manifest.Directories ?? []).Select(d => d.Path)) is var (first, second)
            && targetIgnoresCase())
        {
            throw new ConflictException("RestoreNameCollision",
                $"Backup {manifest.Id} holds '{SafePath.Printable(first)}' and '{SafePath.Printable(second)}', which differ only in case: this file system takes them as one name, so one would overwrite the other. Nothing was restored; restore it on a case-sensitive file system (Linux), or into a folder made case-sensitive (Windows: fsutil file setCaseSensitiveInfo <folder> enable).",
                second);
        }
    }

    /// <summary>Creates the backup's folders (empty ones too) and gives them and the root their
    /// recorded mode, owner and last-write time, deepest first (a folder's time changes as entries
    /// are made in it).</summary>
    private static void RestoreFolders(RepositoryManifest manifest, string root)
    {
        var folders = (manifest.Directories ?? []).Select(d => (Full: SafePath.Combine(root, d.Path, "restored folder"), Dir: d)).ToList();
        foreach ((string full, _) in folders)
        {
            Directory.CreateDirectory(full);
        }
        foreach ((string full, RepositoryDirectory d) in folders.OrderByDescending(f => f.Dir.Path.Count(c => c == '/')).ThenByDescending(f => f.Dir.Path, StringComparer.Ordinal))
        {
            d.Metadata.Apply(full);
        }
        manifest.Root?.Metadata.Apply(root);
    }

    /// <summary>Streams one file of a backup into <paramref name="destination"/>, verifying every
    /// frame and chunk as it goes and the whole-file SHA-256 at the end (an integrity error after
    /// the last byte means the destination holds bad data: discard it).</summary>
    public Task RestoreFileAsync(RepositoryManifest manifest, RepositoryFile file, Stream destination, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(destination);
        return new ManifestReader(this, manifest).ReadAsync([file],
            (_, _) => ValueTask.FromResult(destination),
            (_, s, c) => new ValueTask(s.FlushAsync(c)), ct);
    }

    // ---------------------------------------------------------------- check

    /// <summary>Checks the repository; see <see cref="RepositoryChecker"/>. Never throws for
    /// damage: every problem lands in the report.</summary>
    public Task<RepositoryCheckReport> CheckAsync(bool readData, IProgress<OperationProgress>? progress = null, CancellationToken ct = default) =>
        CheckAsync(readData, prehash: null, progress, ct);

    /// <summary>As <see cref="CheckAsync(bool, IProgress{OperationProgress}?, CancellationToken)"/>,
    /// taking the pack hashes <paramref name="prehash"/> took while the repository was opened.</summary>
    internal Task<RepositoryCheckReport> CheckAsync(bool readData, PackPrehash? prehash, IProgress<OperationProgress>? progress, CancellationToken ct) =>
        new RepositoryChecker(this, prehash).RunAsync(readData, progress, ct);

    // ---------------------------------------------------------------- storage helpers

    internal static async Task PutBytesAsync(IStorageBackend backend, string key, byte[] bytes, CancellationToken ct)
    {
        using var ms = new MemoryStream(bytes, writable: false);
        await backend.PutAsync(key, ms, bytes.Length, ct).ConfigureAwait(false);
    }

    /// <summary>Largest small plain object: config, key, lock, event, damage marker.</summary>
    internal const long MaxSmallObject = 1L << 20;

    /// <summary>Reads a whole object of at most <paramref name="maxBytes"/> (a larger one is damaged or
    /// hostile: an integrity error, read no further than the limit).</summary>
    internal static async Task<byte[]> GetBytesAsync(IStorageBackend backend, string key, CancellationToken ct, long maxBytes = MaxSmallObject)
    {
        Stream s;
        try
        {
            s = await backend.GetAsync(key, ct).ConfigureAwait(false);
        }
        catch (StorageIOException e) when (e.ErrorCode == StorageIOException.NotARegularFile)
        {
            // A FIFO or device under an object's name holds none of its bytes: the object is damaged
            // (a listing shows it, prune and repair delete it), like one whose bytes do not match.
            throw new RepositoryIntegrityException("ObjectNotRegular",
                $"The object {key} in {backend.Location} is damaged: it is not a regular file (a FIFO, device or socket was put in its place). It is not read.", key, inner: e);
        }
        await using Stream disposeS = s;
        if (s.CanSeek && s.Length <= maxBytes)
        {
            // A file of known length (the local backend): one array of exactly its size, where a
            // growing MemoryStream and its copy held ~3x a 5 MiB manifest. A file cut short while
            // it is read gives fewer bytes, which the callers' checks (SHA-256 of a
            // content-addressed object, parsing) refuse as any other damage.
            byte[] exact = new byte[s.Length];
            int got = await s.ReadAtLeastAsync(exact, exact.Length, throwOnEndOfStream: false, ct).ConfigureAwait(false);
            return got == exact.Length ? exact : exact[..got];
        }
        using var ms = new MemoryStream();
        byte[] buffer = ArrayPool<byte>.Shared.Rent(81920);
        try
        {
            int n;
            while ((n = await s.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
            {
                if (ms.Length + n > maxBytes)
                {
                    throw new RepositoryIntegrityException("ObjectTooLarge",
                        $"The object {key} in {backend.Location} is larger than the {maxBytes} bytes such an object may have. It is damaged or was planted; it is not read.", key);
                }
                ms.Write(buffer, 0, n);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        return ms.ToArray();
    }

    /// <summary>Reads exactly <paramref name="into"/>'s length of bytes at <paramref name="offset"/> into it.</summary>
    internal async Task ReadRangeAsync(string key, long offset, Memory<byte> into, CancellationToken ct)
    {
        await using Stream s = await Backend.GetRangeAsync(key, offset, into.Length, ct).ConfigureAwait(false);
        await s.ReadExactlyAsync(into, ct).ConfigureAwait(false);
    }

    /// <summary>Reads exactly <paramref name="length"/> bytes at <paramref name="offset"/> into a rented buffer.</summary>
    internal async Task<byte[]> GetRangeRentedAsync(string key, long offset, int length, CancellationToken ct)
    {
        byte[] buf = ArrayPool<byte>.Shared.Rent(Math.Max(length, 1));
        try
        {
            await using Stream s = await Backend.GetRangeAsync(key, offset, length, ct).ConfigureAwait(false);
            await s.ReadExactlyAsync(buf.AsMemory(0, length), ct).ConfigureAwait(false);
            return buf;
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buf);
            throw;
        }
    }
}
