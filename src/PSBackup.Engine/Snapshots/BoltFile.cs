using System.Buffers.Binary;

namespace PSBackup.Engine.Snapshots;

/// <summary>A read-only reader of a bbolt database file (go.etcd.io/bbolt, format version 2), from
/// its documented page layout: there is no .NET bbolt library. Used to verify that a copied file is
/// whole (both meta pages' FNV-64a checksums, the newest valid meta, every page of the tree and the
/// freelist within the file with the right id and flags) and to read one key of a top-level bucket
/// (UnisonDB's WAL checkpoint). The file is read through a stream, never mapped, never written.</summary>
/// <remarks>Layout (internal/common/page.go, meta.go, bucket.go): every page starts with
/// <c>{u64 id, u16 flags, u16 count, u32 overflow}</c>; pages 0 and 1 are meta pages holding
/// <c>{u32 magic 0xED0CDAED, u32 version 2, u32 pageSize, u32 flags, u64 root, u64 sequence,
/// u64 freelist, u64 pgid, u64 txid, u64 checksum}</c>, the checksum being FNV-64a over the 56 bytes
/// before it; the meta with the highest txid that validates is current. Branch elements are
/// <c>{u32 pos, u32 ksize, u64 pgid}</c>, leaf elements <c>{u32 flags, u32 pos, u32 ksize,
/// u32 vsize}</c> with <c>pos</c> relative to the element; a leaf element with flag 1 is a
/// bucket whose value is <c>{u64 root, u64 sequence}</c>, followed by an inline page when root is 0.</remarks>
public sealed class BoltFile : IDisposable
{
    public const uint Magic = 0xED0CDAED;
    public const uint FormatVersion = 2;
    private const int PageHeaderSize = 16;
    private const int MetaOffset = PageHeaderSize;
    private const int MetaChecksumSpan = 56;
    private const ushort BranchFlag = 0x01, LeafFlag = 0x02, MetaFlag = 0x04, FreelistFlag = 0x10;
    private const uint BucketLeafFlag = 0x01;
    private const int ElementSize = 16;
    private const int MaxDepth = 64;

    private readonly Stream _stream;
    private readonly string _path;

    private BoltFile(Stream stream, string path, BoltMeta meta)
    {
        _stream = stream;
        _path = path;
        Meta = meta;
    }

    /// <summary>The current meta page (the valid one with the highest txid).</summary>
    public BoltMeta Meta { get; }

    /// <summary>True when the first 32 bytes look like a bbolt meta page (magic and version at
    /// offset 16), checksum not yet checked. Cheap; for discovery by content.</summary>
    public static bool LooksLikeBolt(ReadOnlySpan<byte> head) =>
        head.Length >= MetaOffset + 8 &&
        BinaryPrimitives.ReadUInt32LittleEndian(head[MetaOffset..]) == Magic &&
        BinaryPrimitives.ReadUInt32LittleEndian(head[(MetaOffset + 4)..]) == FormatVersion &&
        (BinaryPrimitives.ReadUInt16LittleEndian(head[8..]) & MetaFlag) != 0;

    /// <summary>Opens <paramref name="path"/> for reading (shared) and validates its meta pages.
    /// A file that is not a whole bbolt file is an <see cref="IntegrityException"/> naming why.</summary>
    public static BoltFile Open(string path)
    {
        FileStream stream = new(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.RandomAccess);
        try
        {
            return new BoltFile(stream, path, ReadMeta(stream, path));
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>Over an already-open stream (the caller keeps it open while reading).</summary>
    public static BoltFile Open(Stream stream, string name) => new(stream, name, ReadMeta(stream, name));

    public void Dispose() => _stream.Dispose();

    private static BoltMeta ReadMeta(Stream stream, string path)
    {
        long length = stream.Length;
        if (length < 4096)
        {
            throw Torn(path, $"it is {length} bytes, shorter than two meta pages");
        }
        byte[] first = new byte[PageHeaderSize + 64];
        ReadAt(stream, 0, first);
        BoltMeta? meta0 = DecodeMeta(first, 0, out string? why0);
        // The page size comes from a valid meta 0; else from meta 1 at the usual sizes (bbolt's
        // getPageSizeFromSecondMeta tries the same).
        int pageSize = meta0?.PageSize ?? 0;
        BoltMeta? meta1 = null;
        string? why1 = null;
        foreach (int candidate in pageSize != 0 ? [pageSize] : new[] { 4096, 8192, 16384, 32768, 65536, 1024, 2048 })
        {
            if ((long)candidate * 2 > length)
            {
                continue;
            }
            byte[] second = new byte[PageHeaderSize + 64];
            ReadAt(stream, candidate, second);
            meta1 = DecodeMeta(second, 1, out why1);
            if (meta1 is not null && meta1.PageSize == candidate)
            {
                break;
            }
            meta1 = null;
        }
        BoltMeta? current = (meta0, meta1) switch
        {
            (null, null) => null,
            (not null, null) => meta0,
            (null, not null) => meta1,
            _ => meta0!.TxId >= meta1!.TxId ? meta0 : meta1,
        };
        if (current is null)
        {
            throw Torn(path, $"neither meta page is valid (page 0: {why0}; page 1: {why1 ?? "not found"})");
        }
        if (current.PageSize < 512 || (current.PageSize & (current.PageSize - 1)) != 0)
        {
            throw Torn(path, $"its meta page gives page size {current.PageSize}");
        }
        if ((long)current.HighWaterPage * current.PageSize > length)
        {
            throw Torn(path, $"its meta page (txid {current.TxId}) says {current.HighWaterPage} pages of {current.PageSize} bytes, but the file has only {length} bytes");
        }
        return current;
    }

    private static BoltMeta? DecodeMeta(ReadOnlySpan<byte> page, long expectedId, out string? why)
    {
        ReadOnlySpan<byte> m = page[MetaOffset..];
        ulong id = BinaryPrimitives.ReadUInt64LittleEndian(page);
        ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(page[8..]);
        uint magic = BinaryPrimitives.ReadUInt32LittleEndian(m);
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(m[4..]);
        ulong checksum = BinaryPrimitives.ReadUInt64LittleEndian(m[MetaChecksumSpan..]);
        why = magic != Magic ? $"magic {magic:x8}, not {Magic:x8}"
            : version != FormatVersion ? $"format version {version}, not {FormatVersion}"
            : flags != MetaFlag ? $"page flags {flags:x}, not a meta page"
            : id != (ulong)expectedId ? $"page id {id}, not {expectedId}"
            : checksum != Fnv64a(m[..MetaChecksumSpan]) ? "its FNV-64a checksum does not match"
            : null;
        if (why is not null)
        {
            return null;
        }
        return new BoltMeta(
            (int)BinaryPrimitives.ReadUInt32LittleEndian(m[8..]),
            BinaryPrimitives.ReadUInt32LittleEndian(m[12..]),
            BinaryPrimitives.ReadInt64LittleEndian(m[16..]),
            BinaryPrimitives.ReadInt64LittleEndian(m[32..]),
            BinaryPrimitives.ReadInt64LittleEndian(m[40..]),
            BinaryPrimitives.ReadInt64LittleEndian(m[48..]));
    }

    /// <summary>FNV-1a, 64 bit (Go's hash/fnv New64a).</summary>
    public static ulong Fnv64a(ReadOnlySpan<byte> data)
    {
        ulong hash = 14695981039346656037UL;
        foreach (byte b in data)
        {
            hash ^= b;
            hash *= 1099511628211UL;
        }
        return hash;
    }

    /// <summary>The value of <paramref name="key"/> in top-level bucket <paramref name="bucket"/>;
    /// null when the bucket or the key is absent.</summary>
    public byte[]? Get(ReadOnlySpan<byte> bucket, ReadOnlySpan<byte> key)
    {
        byte[]? bucketValue = Find(Meta.RootPage, null, bucket, expectBucket: true, 0);
        if (bucketValue is null)
        {
            return null;
        }
        (long root, byte[]? inline) = BucketRoot(bucketValue);
        return Find(root, inline, key, expectBucket: false, 0);
    }

    /// <summary>Names of the top-level buckets, in key order.</summary>
    public IReadOnlyList<byte[]> BucketNames()
    {
        var names = new List<byte[]>();
        Walk(Meta.RootPage, null, 0, (k, v, flags) =>
        {
            if ((flags & BucketLeafFlag) != 0)
            {
                names.Add(k.ToArray());
            }
        }, checkPages: false);
        return names;
    }

    /// <summary>Walks every page reachable from the current meta (all buckets, nested and
    /// inline) and the freelist: each page must lie inside the file and below the meta's page
    /// high-water mark, carry its own id and the flags its parent implies, and hold elements
    /// that fit the page. Returns the number of keys in the top-level buckets, by bucket name.
    /// A torn or inconsistent file is an <see cref="IntegrityException"/>.</summary>
    public IReadOnlyDictionary<string, long> Verify()
    {
        if (Meta.FreelistPage != -1 && Meta.FreelistPage != 0)
        {
            byte[] freelist = ReadPage(Meta.FreelistPage, out _);
            ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(freelist.AsSpan(8));
            if (flags != FreelistFlag)
            {
                throw Torn(_path, $"page {Meta.FreelistPage}, named as the freelist by the meta page, has flags {flags:x}");
            }
        }
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        Walk(Meta.RootPage, null, 0, (k, v, flags) =>
        {
            if ((flags & BucketLeafFlag) == 0)
            {
                return;
            }
            (long root, byte[]? inline) = BucketRoot(v.ToArray());
            long n = 0;
            CountKeys(root, inline, 1, ref n);
            counts[System.Text.Encoding.UTF8.GetString(k)] = n;
        }, checkPages: true);
        return counts;
    }

    private void CountKeys(long root, byte[]? inline, int depth, ref long n)
    {
        long count = 0;
        Walk(root, inline, depth, (k, v, flags) =>
        {
            if ((flags & BucketLeafFlag) != 0)
            {
                (long r, byte[]? i) = BucketRoot(v.ToArray());
                long nested = 0;
                CountKeys(r, i, depth + 1, ref nested);
            }
            else
            {
                count++;
            }
        }, checkPages: true);
        n += count;
    }

    private delegate void LeafVisitor(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, uint flags);

    private void Walk(long pageId, byte[]? inline, int depth, LeafVisitor visit, bool checkPages)
    {
        if (depth > MaxDepth)
        {
            throw Torn(_path, "the bucket nesting or tree depth exceeds 64");
        }
        byte[] page = inline ?? ReadPage(pageId, out _);
        ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(page.AsSpan(8));
        int count = BinaryPrimitives.ReadUInt16LittleEndian(page.AsSpan(10));
        if (flags == LeafFlag)
        {
            for (int i = 0; i < count; i++)
            {
                (uint f, ReadOnlyMemory<byte> k, ReadOnlyMemory<byte> v) = LeafElement(page, i, pageId);
                visit(k.Span, v.Span, f);
            }
        }
        else if (flags == BranchFlag && inline is null)
        {
            for (int i = 0; i < count; i++)
            {
                (long child, _) = BranchElement(page, i, pageId);
                Walk(child, null, depth + 1, visit, checkPages);
            }
        }
        else
        {
            throw Torn(_path, $"page {pageId} has flags {flags:x} where a {(inline is null ? "branch or leaf" : "leaf")} page belongs");
        }
    }

    private byte[]? Find(long pageId, byte[]? inline, ReadOnlySpan<byte> key, bool expectBucket, int depth)
    {
        if (depth > MaxDepth)
        {
            throw Torn(_path, "the tree is deeper than 64 levels");
        }
        byte[] page = inline ?? ReadPage(pageId, out _);
        ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(page.AsSpan(8));
        int count = BinaryPrimitives.ReadUInt16LittleEndian(page.AsSpan(10));
        if (flags == LeafFlag)
        {
            for (int i = 0; i < count; i++)
            {
                (uint f, ReadOnlyMemory<byte> k, ReadOnlyMemory<byte> v) = LeafElement(page, i, pageId);
                int c = k.Span.SequenceCompareTo(key);
                if (c == 0)
                {
                    return ((f & BucketLeafFlag) != 0) == expectBucket ? v.ToArray() : null;
                }
                if (c > 0)
                {
                    return null;
                }
            }
            return null;
        }
        if (flags != BranchFlag || inline is not null)
        {
            throw Torn(_path, $"page {pageId} has flags {flags:x} where a branch or leaf page belongs");
        }
        // The last element whose key is <= the wanted key (bbolt's cursor.searchBranch).
        long child = -1;
        for (int i = 0; i < count; i++)
        {
            (long p, ReadOnlyMemory<byte> k) = BranchElement(page, i, pageId);
            if (i > 0 && k.Span.SequenceCompareTo(key) > 0)
            {
                break;
            }
            child = p;
        }
        return child < 0 ? null : Find(child, null, key, expectBucket, depth + 1);
    }

    private (uint Flags, ReadOnlyMemory<byte> Key, ReadOnlyMemory<byte> Value) LeafElement(byte[] page, int i, long pageId)
    {
        int at = PageHeaderSize + i * ElementSize;
        if (at + ElementSize > page.Length)
        {
            throw Torn(_path, $"leaf page {pageId} element {i} lies outside the page");
        }
        uint flags = BinaryPrimitives.ReadUInt32LittleEndian(page.AsSpan(at));
        long pos = BinaryPrimitives.ReadUInt32LittleEndian(page.AsSpan(at + 4));
        long ksize = BinaryPrimitives.ReadUInt32LittleEndian(page.AsSpan(at + 8));
        long vsize = BinaryPrimitives.ReadUInt32LittleEndian(page.AsSpan(at + 12));
        long start = at + pos;
        if (start + ksize + vsize > page.Length)
        {
            throw Torn(_path, $"leaf page {pageId} element {i} points past the end of the page");
        }
        return (flags, page.AsMemory((int)start, (int)ksize), page.AsMemory((int)(start + ksize), (int)vsize));
    }

    private (long Child, ReadOnlyMemory<byte> Key) BranchElement(byte[] page, int i, long pageId)
    {
        int at = PageHeaderSize + i * ElementSize;
        if (at + ElementSize > page.Length)
        {
            throw Torn(_path, $"branch page {pageId} element {i} lies outside the page");
        }
        long pos = BinaryPrimitives.ReadUInt32LittleEndian(page.AsSpan(at));
        long ksize = BinaryPrimitives.ReadUInt32LittleEndian(page.AsSpan(at + 4));
        long child = BinaryPrimitives.ReadInt64LittleEndian(page.AsSpan(at + 8));
        if (at + pos + ksize > page.Length)
        {
            throw Torn(_path, $"branch page {pageId} element {i} points past the end of the page");
        }
        return (child, page.AsMemory((int)(at + pos), (int)ksize));
    }

    private (long Root, byte[]? Inline) BucketRoot(byte[] value)
    {
        if (value.Length < 16)
        {
            throw Torn(_path, $"a bucket header is {value.Length} bytes, not 16");
        }
        long root = BinaryPrimitives.ReadInt64LittleEndian(value);
        if (root != 0)
        {
            return (root, null);
        }
        if (value.Length < 16 + PageHeaderSize)
        {
            throw Torn(_path, "an inline bucket holds no page");
        }
        return (0, value[16..]);
    }

    /// <summary>Reads page <paramref name="id"/> with its overflow pages; it must lie inside the
    /// meta's high-water mark and carry its own id.</summary>
    private byte[] ReadPage(long id, out int overflow)
    {
        if (id < 2 || id >= Meta.HighWaterPage)
        {
            throw Torn(_path, $"a page reference ({id}) lies outside the {Meta.HighWaterPage} pages the meta page (txid {Meta.TxId}) allows");
        }
        byte[] header = new byte[PageHeaderSize];
        ReadAt(_stream, id * Meta.PageSize, header);
        long storedId = BinaryPrimitives.ReadInt64LittleEndian(header);
        overflow = (int)BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(12));
        if (storedId != id)
        {
            throw Torn(_path, $"page {id} carries id {storedId}: the file was written while it was copied, or is damaged");
        }
        if (id + overflow >= Meta.HighWaterPage)
        {
            throw Torn(_path, $"page {id} with {overflow} overflow pages runs past the {Meta.HighWaterPage} pages the meta page allows");
        }
        byte[] page = new byte[(long)(overflow + 1) * Meta.PageSize];
        ReadAt(_stream, id * Meta.PageSize, page);
        return page;
    }

    private static void ReadAt(Stream stream, long offset, byte[] buffer)
    {
        if (offset + buffer.Length > stream.Length)
        {
            throw new IntegrityException("StoreTorn", $"A read at offset {offset} of {buffer.Length} bytes runs past the end of the bbolt file ({stream.Length} bytes).");
        }
        stream.Position = offset;
        stream.ReadExactly(buffer);
    }

    private static IntegrityException Torn(string path, string why) =>
        new("StoreTorn", $"'{path}' is not a whole bbolt file: {why}. It was copied while being written, or is damaged; take the snapshot again (through -Endpoint while the server runs).", path);
}

/// <summary>A bbolt meta page, decoded.</summary>
public sealed record BoltMeta(int PageSize, uint Flags, long RootPage, long FreelistPage, long HighWaterPage, long TxId);
