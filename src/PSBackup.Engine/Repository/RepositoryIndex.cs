namespace PSBackup.Engine.Repository;

/// <summary>The in-memory union of the index objects: chunk id -> (pack, frame, place in the frame).</summary>
internal sealed class RepositoryIndex
{
    internal sealed class PackInfo(string id, long size)
    {
        public string Id { get; } = id;
        public long Size { get; } = size;
        public string Key => RepositoryLayout.PackKey(Id);
    }

    internal sealed class FrameInfo(PackInfo pack, long offset, int length, byte[] sha256, int plainLength)
    {
        public PackInfo Pack { get; } = pack;
        public long Offset { get; } = offset;
        public int Length { get; } = length;
        public byte[] Sha256 { get; } = sha256;
        public int PlainLength { get; } = plainLength;
    }

    internal readonly record struct ChunkLocation(FrameInfo Frame, int Offset, int Length);

    private readonly Dictionary<ChunkId, ChunkLocation> _chunks = new();
    private readonly Dictionary<string, PackInfo> _packs = new(StringComparer.Ordinal);
    private readonly object _lock = new();

    public int ChunkCount { get { lock (_lock) { return _chunks.Count; } } }

    public bool Contains(ChunkId id)
    {
        lock (_lock)
        {
            return _chunks.ContainsKey(id);
        }
    }

    public bool TryGet(ChunkId id, out ChunkLocation location)
    {
        lock (_lock)
        {
            return _chunks.TryGetValue(id, out location);
        }
    }

    public IReadOnlyList<PackInfo> Packs()
    {
        lock (_lock)
        {
            return _packs.Values.ToList();
        }
    }

    /// <summary>Adds one validated index pack entry. The first location seen for a chunk wins.</summary>
    public void Add(IndexPack p)
    {
        lock (_lock)
        {
            if (!_packs.TryGetValue(p.Id, out PackInfo? pack))
            {
                pack = new PackInfo(p.Id, p.Size);
                _packs.Add(p.Id, pack);
            }
            foreach (FrameEntry f in p.Frames)
            {
                byte[] sha = new byte[32];
                Hex.TryDecode(f.Sha256, sha);
                var frame = new FrameInfo(pack, f.Offset, f.Length, sha, f.PlainLength);
                foreach (ChunkEntry c in f.Chunks)
                {
                    _chunks.TryAdd(c.Id, new ChunkLocation(frame, c.Offset, c.Length));
                }
            }
        }
    }

    /// <summary>Checks an index object's entries as hostile input; returns the first problem or null.</summary>
    public static string? Validate(IndexObject? index)
    {
        if (index?.Packs is null)
        {
            return "it has no pack list";
        }
        if (index.FormatVersion is < 1 or > 1)
        {
            return $"its format version {index.FormatVersion} is not supported";
        }
        foreach (IndexPack? p in index.Packs)
        {
            if (p is null || !Hex.IsSha256Hex(p.Id) || p.Size <= 0 || p.Frames is null)
            {
                return "a pack entry is malformed";
            }
            string? f = ValidateFrames(p.Frames, p.Size);
            if (f is not null)
            {
                return $"pack {p.Id}: {f}";
            }
        }
        return null;
    }

    public static string? ValidateFrames(IReadOnlyList<FrameEntry> frames, long packSize)
    {
        foreach (FrameEntry? f in frames)
        {
            if (f is null || f.Chunks is null || !Hex.IsSha256Hex(f.Sha256) || f.Offset < 0 || f.Length <= 0 || f.Offset + f.Length > packSize
                || f.PlainLength < 0 || f.PlainLength > RepositoryLayout.MaxFramePlain)
            {
                return "a frame entry is malformed or out of the pack's bounds";
            }
            foreach (ChunkEntry? c in f.Chunks)
            {
                if (c is null || c.Offset < 0 || c.Length <= 0 || (long)c.Offset + c.Length > f.PlainLength)
                {
                    return "a chunk entry is malformed or out of its frame's bounds";
                }
            }
        }
        return null;
    }
}

/// <summary>Object names and fixed byte markers of the format (docs/repository-format.md).</summary>
public static class RepositoryLayout
{
    public const string ConfigKey = "config";
    public const string KeysPrefix = "keys/";
    public const string PacksPrefix = "packs/";
    public const string IndexPrefix = "index/";
    public const string SnapshotsPrefix = "snapshots/";
    public const string RefsPrefix = "refs/";
    /// <summary>Magic of the zstd skippable frame that holds a pack trailer.</summary>
    public const uint TrailerSkippableMagic = 0x184D2A5E;
    /// <summary>The last 8 bytes of every pack.</summary>
    public static ReadOnlySpan<byte> PackMagic => "PSBKPK01"u8;
    internal const int MaxFramePlain = 64 * 1024 * 1024;

    public static string PackKey(string id) => $"{PacksPrefix}{id[..2]}/{id}";
    public static string IndexKey(string id) => IndexPrefix + id;
    public static string ManifestKey(string id) => SnapshotsPrefix + id;
    public static string KeyKey(string id) => KeysPrefix + id;
    public static string RefKey(string name, string manifestId) => $"{RefsPrefix}{name}/{manifestId}";
}
