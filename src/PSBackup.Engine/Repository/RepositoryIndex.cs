namespace PSBackup.Engine.Repository;

/// <summary>Whether a pack can be relied on, as far as this process knows.</summary>
internal enum PackState
{
    /// <summary>Listed in storage with the size its index says (or not checked: an index built in memory).</summary>
    Present,
    /// <summary>Not in the storage listing taken after the index was read.</summary>
    Missing,
    /// <summary>Present, but with another size, marked damaged (<c>damaged/&lt;id&gt;</c>) or found damaged while read.</summary>
    Damaged,
}

/// <summary>The in-memory union of the index objects: chunk id -> (pack, frame, place in the frame).
/// A chunk stored in several packs (a re-upload after damage, two hosts writing at once) keeps every
/// location; readers take the first in a usable pack, writers deduplicate only against chunks with a
/// usable location, so a backup never references a chunk whose every copy is missing or damaged.</summary>
internal sealed class RepositoryIndex
{
    internal sealed class PackInfo(string id, long size)
    {
        private volatile PackState _state = PackState.Present;

        public string Id { get; } = id;
        public long Size { get; } = size;
        public string Key => RepositoryLayout.PackKey(Id);
        public PackState State { get => _state; set => _state = value; }
        public bool Usable => _state == PackState.Present;
        /// <summary>Why the pack is not usable (for messages).</summary>
        public string? Problem { get; set; }
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
    /// <summary>Further locations of chunks stored in more than one pack (rare).</summary>
    private readonly Dictionary<ChunkId, List<ChunkLocation>> _more = new();
    private readonly Dictionary<string, PackInfo> _packs = new(StringComparer.Ordinal);
    private readonly object _lock = new();

    public int ChunkCount { get { lock (_lock) { return _chunks.Count; } } }

    /// <summary>True when the chunk has a location in a usable pack.</summary>
    public bool Contains(ChunkId id) => TryGet(id, out _);

    /// <summary>The chunk's first location in a usable pack.</summary>
    public bool TryGet(ChunkId id, out ChunkLocation location)
    {
        lock (_lock)
        {
            if (_chunks.TryGetValue(id, out location))
            {
                if (location.Frame.Pack.Usable)
                {
                    return true;
                }
                if (_more.TryGetValue(id, out List<ChunkLocation>? more))
                {
                    foreach (ChunkLocation l in more)
                    {
                        if (l.Frame.Pack.Usable)
                        {
                            location = l;
                            return true;
                        }
                    }
                }
            }
            location = default;
            return false;
        }
    }

    /// <summary>True when any index entry names the chunk, usable or not.</summary>
    public bool IsIndexed(ChunkId id)
    {
        lock (_lock)
        {
            return _chunks.ContainsKey(id);
        }
    }

    /// <summary>Every location of the chunk, usable packs first (a reader tries them in order).</summary>
    public IReadOnlyList<ChunkLocation> Locations(ChunkId id)
    {
        lock (_lock)
        {
            if (!_chunks.TryGetValue(id, out ChunkLocation first))
            {
                return [];
            }
            var all = new List<ChunkLocation> { first };
            if (_more.TryGetValue(id, out List<ChunkLocation>? more))
            {
                all.AddRange(more);
            }
            return all.OrderBy(l => l.Frame.Pack.Usable ? 0 : 1).ToList();
        }
    }

    public IReadOnlyList<PackInfo> Packs()
    {
        lock (_lock)
        {
            return _packs.Values.ToList();
        }
    }

    public PackInfo? Pack(string id)
    {
        lock (_lock)
        {
            return _packs.GetValueOrDefault(id);
        }
    }

    /// <summary>Adds one validated index pack entry. The first location seen for a chunk stays first;
    /// locations in other packs are kept behind it.</summary>
    public void Add(IndexPack p)
    {
        lock (_lock)
        {
            AddLocked(p);
        }
    }

    /// <summary><see cref="Add(IndexPack)"/> for every pack of an index object, with room made for
    /// their chunks once: a backup's final flush of 62,105 new chunks grew the table through every
    /// doubling, ~8 MiB of arrays at the very end of the backup, where its memory peaks.</summary>
    public void AddAll(IReadOnlyList<IndexPack> packs)
    {
        lock (_lock)
        {
            long chunks = 0; // not yet in the table (a repair re-stores indexed chunks)
            foreach (IndexPack p in packs)
            {
                foreach (FrameEntry f in p.Frames)
                {
                    foreach (ChunkEntry c in f.Chunks)
                    {
                        chunks += _chunks.ContainsKey(c.Id) ? 0 : 1;
                    }
                }
            }
            // Room for all of them, but never less than a doubling: a repository of many index
            // objects (each adding a few) still grows the table a doubling at a time.
            int room = _chunks.EnsureCapacity(0);
            long need = _chunks.Count + chunks;
            if (need > room)
            {
                _chunks.EnsureCapacity((int)Math.Min(Array.MaxLength / 2, Math.Max(need, 2L * room)));
            }
            foreach (IndexPack p in packs)
            {
                AddLocked(p);
            }
        }
    }

    private void AddLocked(IndexPack p)
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
                var loc = new ChunkLocation(frame, c.Offset, c.Length);
                if (_chunks.TryAdd(c.Id, loc))
                {
                    continue;
                }
                if (ReferenceEquals(_chunks[c.Id].Frame.Pack, pack))
                {
                    continue;
                }
                if (!_more.TryGetValue(c.Id, out List<ChunkLocation>? more))
                {
                    _more[c.Id] = more = new List<ChunkLocation>(1);
                }
                if (!more.Any(m => ReferenceEquals(m.Frame.Pack, pack)))
                {
                    more.Add(loc);
                }
            }
        }
    }

    /// <summary>A new index holding only the locations of <paramref name="keep"/> (the pack and frame
    /// records are shared, so pack states carry over).</summary>
    public RepositoryIndex Subset(IEnumerable<ChunkId> keep)
    {
        var subset = new RepositoryIndex();
        lock (_lock)
        {
            foreach (ChunkId id in keep)
            {
                if (!_chunks.TryGetValue(id, out ChunkLocation first) || subset._chunks.ContainsKey(id))
                {
                    continue;
                }
                subset._chunks[id] = first;
                subset._packs.TryAdd(first.Frame.Pack.Id, first.Frame.Pack);
                if (_more.TryGetValue(id, out List<ChunkLocation>? more))
                {
                    subset._more[id] = [.. more];
                    foreach (ChunkLocation l in more)
                    {
                        subset._packs.TryAdd(l.Frame.Pack.Id, l.Frame.Pack);
                    }
                }
            }
        }
        return subset;
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
    /// <summary>Markers of packs found damaged (<c>damaged/&lt;packId&gt;</c>): writers re-store their chunks.</summary>
    public const string DamagedPrefix = "damaged/";
    /// <summary>Magic of the zstd skippable frame that holds a pack trailer.</summary>
    public const uint TrailerSkippableMagic = 0x184D2A5E;
    /// <summary>The last 8 bytes of every pack.</summary>
    public static ReadOnlySpan<byte> PackMagic => "PSBKPK01"u8;
    internal const int MaxFramePlain = 64 * 1024 * 1024;

    public static string PackKey(string id) => $"{PacksPrefix}{id[..2]}/{id}";

    /// <summary>The pack id a listed key names (<see cref="PackKey"/>'s inverse: <c>packs/ab/ab…</c>
    /// with 64 lowercase hex digits under the folder of their first two), or null for anything else.</summary>
    public static string? PackIdOf(string key)
    {
        if (!key.StartsWith(PacksPrefix, StringComparison.Ordinal))
        {
            return null;
        }
        string rest = key[PacksPrefix.Length..];
        return rest.Length == 67 && rest[2] == '/' && Hex.IsSha256Hex(rest[3..]) && rest[..2] == rest[3..5] ? rest[3..] : null;
    }
    public static string IndexKey(string id) => IndexPrefix + id;
    public static string ManifestKey(string id) => SnapshotsPrefix + id;
    public static string KeyKey(string id) => KeysPrefix + id;
    public static string RefKey(string name, string manifestId) => $"{RefsPrefix}{name}/{manifestId}";
    public static string DamagedKey(string packId) => DamagedPrefix + packId;
}
