using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.ExceptionServices;
using System.Security.Cryptography;
using System.Threading.Channels;

namespace PSBackup.Engine.Repository;

/// <summary>Writes one backup. Files are added one after another (not concurrently) from streams
/// or paths; each is read once in blocks, and per block the whole-file SHA-256, the chunk cuts
/// and the chunk ids are computed at once (see <see cref="ChunkFileAsync"/>). New chunks are
/// gathered into ~1 MiB frames, which a pool of workers (one per core) compresses and, when the
/// repository is encrypted, seals; an assembler appends the stored frames to a ~16 MiB pack spooled
/// on disk (<see cref="PackSpool"/>), and an uploader stores finished packs. Every stage is joined
/// by a bounded channel and frame buffers are pooled, so memory stays bounded whatever the data size.
/// <para>Write order: packs, then index objects (one per 64 packs and one at the end), then the
/// manifest, then the optional ref. Until the manifest is written the backup does not exist;
/// <see cref="AbortAsync"/> (or disposing without committing) stops the pipeline and references
/// nothing. Packs already uploaded stay as unreferenced garbage that check reports as a warning.</para></summary>
public sealed class BackupWriter : IAsyncDisposable
{
    internal const int IndexFlushPacks = 64;

    private sealed class FrameJob(byte[] buffer)
    {
        public byte[] Buffer { get; } = buffer;
        public int Length { get; set; }
        public List<ChunkEntry> Chunks { get; } = new();
    }

    private sealed record StoredFrame(byte[] Buffer, int Length, string Sha256, int PlainLength, List<ChunkEntry> Chunks);

    private sealed record PackJob(PackSpool Spool, string Id, List<FrameEntry> Frames);

    private enum State { Open, Failed, Committed, Aborted }

    private readonly Repository _repo;
    private BackupInfo _info;
    private readonly DateTimeOffset _createdAt;
    private readonly CancellationTokenSource _cts = new();
    private readonly Channel<FrameJob> _toCompress;
    private readonly Channel<StoredFrame> _toPack;
    private readonly Channel<PackJob> _toUpload;
    private readonly Task[] _compressors;
    private readonly Task _packer;
    private readonly Task _uploader;
    private readonly HashSet<ChunkId> _pending = new();
    private readonly List<RepositoryFile> _files = new();
    /// <summary>Where each added file is in <see cref="_files"/>, by exact name: 'README' and
    /// 'readme' are two files where the source's names are case-sensitive (RemoveFile of one must
    /// never drop the other). The per-file calls (stamp, metadata) are lookups, not scans, so a
    /// 100,000-file backup is not quadratic; it is also what refuses a name given twice (a set of
    /// the names beside it was another ~1.5 MiB at 61,751 files, with its outgrown arrays).</summary>
    private readonly Dictionary<string, int> _fileIndex = new(StringComparer.Ordinal);
    private readonly List<IndexPack> _unindexed = new();
    private readonly int _frameCapacity;
    private readonly TimeProvider _clock;
    private ExceptionDispatchInfo? _failure;
    private FrameJob? _frame;
    private State _state = State.Open;
    private long _newChunks, _newChunkBytes, _packs, _storedBytes;

    /// <summary>WAL segments are compressed at zstd level -1 (zstd's first fast level, or the
    /// repository's level if lower): shipping a sealed segment is on the recovery point's critical
    /// path and compression was its largest cost. On the bench's segments `zstd -b` gives 441 MB/s
    /// at ratio 1.55 for -1, 291 MB/s at 1.63 for level 1 and 203 MB/s at 1.74 for level 3; a ship
    /// went from ~120 to ~95 ms for ~5 % more stored WAL bytes. Object and snapshot data keep the
    /// configured level (the full-backup ratio target is against zstd -3).</summary>
    internal const int WalCompressionLevel = -1;

    private readonly int _level;

    /// <summary>Under <c>-Force</c>: every frame a chunk is deduplicated against is read back and its
    /// SHA-256 checked before the backup references it (once per frame and repository instance); a
    /// frame that fails marks its pack damaged and the chunk is stored again.</summary>
    private readonly bool _verifyExisting;

    internal BackupWriter(Repository repo, BackupInfo info, TimeProvider clock, bool verifyExisting = false)
    {
        _verifyExisting = verifyExisting;
        _repo = repo;
        _info = info;
        _clock = clock;
        _createdAt = info.CreatedAt == default ? clock.GetUtcNow() : info.CreatedAt;
        int workers = Math.Max(1, Environment.ProcessorCount);
        _level = Math.Min(repo.Config.CompressionLevel, info.Kind == BackupKind.WalSegment ? WalCompressionLevel : int.MaxValue);
        _frameCapacity = repo.Config.FrameSize + Math.Max(repo.Config.DefaultChunking.MaxSize, repo.Config.StoreChunking.MaxSize);
        // One frame waits for a compressor and one stored frame for the assembler: every frame in
        // flight is a 2 MiB block (and its stored bytes another), so deeper queues held more blocks
        // without more throughput (a queue of one per core: the library tree's full backup took
        // the same time and CPU, and a 5 % incremental of 61,538 small files peaked ~7 MiB higher
        // with the pool's four free blocks per size; docs/design.md, "Many small files", sixth round).
        _toCompress = Channel.CreateBounded<FrameJob>(new BoundedChannelOptions(1) { SingleWriter = true });
        _toPack = Channel.CreateBounded<StoredFrame>(new BoundedChannelOptions(1) { SingleReader = true });
        _toUpload = Channel.CreateBounded<PackJob>(new BoundedChannelOptions(1) { SingleReader = true, SingleWriter = true });
        _compressors = Enumerable.Range(0, workers).Select(_ => Task.Run(CompressLoop)).ToArray();
        _packer = Task.Run(PackLoop);
        _uploader = Task.Run(UploadLoop);
    }

    /// <summary>The files added so far.</summary>
    public IReadOnlyList<RepositoryFile> Files => _files;

    /// <summary>Adds a file read from <paramref name="content"/> (read to its end, not disposed)
    /// under the relative <paramref name="path"/>. Returns its manifest entry. If this throws, the
    /// writer is unusable: abort or dispose it.</summary>
    public Task<RepositoryFile> AddFileAsync(string path, Stream content, ChunkingProfile profile = ChunkingProfile.Default, CancellationToken ct = default) =>
        AddChunkedAsync(path, content, profile, null, ct);

    /// <summary>Adds a walfs segment (or the valid prefix of an active one) read from
    /// <paramref name="content"/>: the default profile, except that the 64-byte segment header is a
    /// chunk of its own and a chunk is also cut at each of <paramref name="splits"/> (absolute
    /// offsets, ascending: the chunk boundaries of the newest partial of the same segment).</summary>
    /// <remarks>walfs rewrites the header with every append, so without its own chunk it would
    /// change the first record chunk of every partial and of the sealed segment. The records are cut
    /// by content alone from offset 64 on, so the sealed segment and every partial of it share every
    /// chunk up to a partial's last content-defined cut. What follows that cut differs from ship to
    /// ship (and from the sealed segment); cut at the previous partial's chunk boundaries, every
    /// chunk of it is cut again exactly, so a partial (and the sealed segment) stores only the bytes
    /// appended since (docs/design.md, "WAL: partial segments").</remarks>
    public Task<RepositoryFile> AddWalSegmentAsync(string path, Stream content, IReadOnlyList<long>? splits = null, CancellationToken ct = default) =>
        AddChunkedAsync(path, content, ChunkingProfile.Default, new WalCuts(Wal.WalFormat.HeaderSize, splits ?? [], FixedSize: true), ct);

    /// <summary>Adds a file cut exactly at <paramref name="cuts"/> (absolute offsets, ascending), and
    /// by content after the last one. Repair uses it to cut a source file where a backup's file was
    /// cut (the chunk lengths are known from the index), whatever profile, header cut or partial
    /// splits made those cuts: the same bytes then give the same chunk ids.</summary>
    internal Task<RepositoryFile> AddFileCutAtAsync(string path, Stream content, IReadOnlyList<long> cuts, CancellationToken ct = default)
    {
        // The chunker with the larger maximum, so a whole chunk of either profile is in the buffer.
        ChunkingProfile widest = _repo.Chunker(ChunkingProfile.Store).Max >= _repo.Chunker(ChunkingProfile.Default).Max ? ChunkingProfile.Store : ChunkingProfile.Default;
        return AddChunkedAsync(path, content, widest, new WalCuts(0, cuts, Exact: true), ct);
    }

    /// <summary>Where a WAL file is cut besides its content: after the header, and at the splits;
    /// <paramref name="Exact"/>: at every split, the content deciding only after the last.
    /// <paramref name="FixedSize"/>: between splits, chunks of the profile's maximum size instead of
    /// content-defined cuts. A WAL only ever grows at its end, so fixed cuts from the header (or the
    /// last split) give a longer prefix of the same segment the same chunks, which is all the
    /// deduplication a WAL has; FastCDC's rolling hash was ~8 ms of CPU per 16 MiB segment, and
    /// chunks four times the average size keep four times fewer index entries per segment.</summary>
    private sealed record WalCuts(long HeaderEnd, IReadOnlyList<long> Splits, bool Exact = false, bool FixedSize = false);

    private async Task<RepositoryFile> AddChunkedAsync(string path, Stream content, ChunkingProfile profile, WalCuts? walCuts, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(content);
        EnsureOpen();
        string p = SafePath.ValidateRelativePath(path, "file path");
        RefuseAdded(p);
        _state = State.Failed;
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, _cts.Token);
        try
        {
            RepositoryFile f = await ChunkFileAsync(p, content, _repo.Chunker(profile), walCuts, linked.Token).ConfigureAwait(false);
            AddEntry(f);
            _state = State.Open;
            return f;
        }
        catch (Exception e) when (_failure is not null && e is OperationCanceledException or ChannelClosedException)
        {
            _failure.Throw();
            throw;
        }
    }

    /// <summary>The manifest as committed (with its id); null until <see cref="CommitAsync"/> succeeded.</summary>
    internal RepositoryManifest? Committed { get; private set; }

    /// <summary>The header the manifest will carry.</summary>
    public BackupInfo Info => _info;

    /// <summary>Replaces the header before commit, for facts known only after the files were read
    /// (an object backup's consistency). Kind and names cannot change.</summary>
    public void UpdateInfo(BackupInfo info)
    {
        ArgumentNullException.ThrowIfNull(info);
        EnsureOpen();
        if (info.Kind != _info.Kind || info.Namespace != _info.Namespace || info.Dir != _info.Dir || info.Object != _info.Object)
        {
            throw new InvalidOperationException("A backup's kind and names are fixed when it begins.");
        }
        _info = info;
    }

    /// <summary>Takes a file added earlier out of the backup, so it can be added again (an object
    /// backup re-reads a file that changed while it was stored). Its chunks may stay stored,
    /// unreferenced by this backup's manifest. False when the path was not added.</summary>
    public bool RemoveFile(string path)
    {
        EnsureOpen();
        int i = IndexOf(path);
        if (i < 0)
        {
            return false;
        }
        _files.RemoveAt(i);
        _fileIndex.Clear(); // rare (a file that changed while it was read): the positions moved
        for (int k = 0; k < _files.Count; k++)
        {
            _fileIndex[_files[k].Path] = k;
        }
        return true;
    }

    /// <summary>Adds a file of an earlier backup as it is, without reading it: its chunk list is
    /// referenced again. False (nothing added) when one of its chunks is no longer in the index
    /// (pruned since); the caller then reads the file.</summary>
    public bool TryReuseFile(RepositoryFile file) => TryReuseFile(file, keepStamp: false);

    /// <summary><see cref="TryReuseFile(RepositoryFile)"/>; with <paramref name="keepStamp"/> the
    /// entry keeps the file's stamp (the caller proves and sets that very stamp next), so a
    /// no-change backup adds the parent's own entry instead of two copies of it per file.</summary>
    internal bool TryReuseFile(RepositoryFile file, bool keepStamp)
    {
        ArgumentNullException.ThrowIfNull(file);
        EnsureOpen();
        string p = SafePath.ValidateRelativePath(file.Path, "file path");
        RefuseAdded(p);
        foreach (ChunkId id in file.Chunks)
        {
            if (!_repo.Index.Contains(id))
            {
                return false;
            }
        }
        AddEntry(keepStamp && string.Equals(p, file.Path, StringComparison.Ordinal) ? file : file with { Path = p, Stamp = null });
        return true;
    }

    /// <summary>Adds <paramref name="path"/> with the content of <paramref name="same"/>, a file added
    /// earlier in this backup, without reading it: another name of the same inode whose stamp proves
    /// it unchanged since (a hard link). Its chunks are this backup's own (still being stored) or
    /// indexed. False (nothing added) when one of them is neither.</summary>
    internal bool TryAddSameContent(string path, RepositoryFile same)
    {
        ArgumentNullException.ThrowIfNull(same);
        EnsureOpen();
        string p = SafePath.ValidateRelativePath(path, "file path");
        RefuseAdded(p);
        foreach (ChunkId id in same.Chunks)
        {
            if (!_pending.Contains(id) && !_repo.Index.Contains(id))
            {
                return false;
            }
        }
        AddEntry(same with { Path = p, Stamp = null });
        return true;
    }

    /// <summary>The added file entry of <paramref name="path"/>, or null.</summary>
    internal RepositoryFile? Find(string path) => IndexOf(path) is >= 0 and var i ? _files[i] : null;

    private int IndexOf(string path) => _fileIndex.TryGetValue(path, out int i) ? i : -1;

    /// <summary>Refuses a name already added (each way of adding a file checks it first).</summary>
    private void RefuseAdded(string p)
    {
        if (_fileIndex.ContainsKey(p))
        {
            throw new InvalidInputException("DuplicatePath", $"The file '{p}' was already added to this backup. Give each file once.", p);
        }
    }

    private void AddEntry(RepositoryFile f)
    {
        _fileIndex[f.Path] = _files.Count;
        _files.Add(f);
    }

    /// <summary>Records the source stamp that proves the added file <paramref name="path"/> (see
    /// <see cref="RepositoryFile.Stamp"/>). False when the path was not added.</summary>
    public bool SetStamp(string path, RepositoryFileStamp stamp)
    {
        EnsureOpen();
        int i = IndexOf(path);
        if (i < 0)
        {
            return false;
        }
        if (!_files[i].StampIs(stamp))
        {
            _files[i] = _files[i] with { Stamp = stamp };
        }
        return true;
    }

    /// <summary>Records the source file's mode, owner and last-write time (restores give them back).
    /// False when the path was not added.</summary>
    public bool SetMetadata(string path, FileMetadata metadata)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        EnsureOpen();
        int i = IndexOf(path);
        if (i < 0)
        {
            return false;
        }
        RepositoryFile f = _files[i];
        if (f.Mode != metadata.Mode || f.Uid != metadata.Uid || f.Gid != metadata.Gid || f.ModifiedNs != metadata.ModifiedNs)
        {
            _files[i] = f.WithMetadata(metadata);
        }
        return true;
    }

    /// <summary>Adds the file at <paramref name="sourcePath"/> under the relative <paramref name="path"/>;
    /// <paramref name="onBytes"/> gets the bytes read so far as the file is read (progress within a
    /// large file).</summary>
    public async Task<RepositoryFile> AddFileFromPathAsync(string path, string sourcePath, ChunkingProfile profile = ChunkingProfile.Default, CancellationToken ct = default, Action<long>? onBytes = null)
    {
        await using FileStream fs = SpecialFiles.OpenRegular(sourcePath);
        if (onBytes is null)
        {
            return await AddFileAsync(path, fs, profile, ct).ConfigureAwait(false);
        }
        await using var counted = new CountingReadStream(fs, onBytes);
        return await AddFileAsync(path, counted, profile, ct).ConfigureAwait(false);
    }

    /// <summary>Blocks below this are hashed on the reading thread, not on the pool.</summary>
    internal const int InlineHashBytes = 1024 * 1024;

    /// <summary>True for a regular file's stream (or one counting its bytes): a seekable
    /// <see cref="FileStream"/> without an asynchronous handle runs <c>ReadAsync</c> as the same
    /// blocking read on a pool thread, so reading it here blocks no longer and saves the switches.
    /// A file opened for asynchronous I/O (Windows), an unseekable one (a pipe or FIFO, whose reads
    /// wait for a writer) and any other stream (a download) are read asynchronously.</summary>
    private static bool ReadsLocalFile(Stream content) => (content is CountingReadStream counting ? counting.Inner : content) is FileStream { IsAsync: false, CanSeek: true };

    /// <summary>Reads the file in blocks of at least 4 MiB. Per block, three pieces of per-byte work
    /// run at once: the whole-file SHA-256 of the bytes just read on a pool thread, while this
    /// thread cuts the block into chunks and the chunk ids are then hashed across the cores; only
    /// staging (dedup and the copy of new chunks into a frame) is in file order.
    /// <para>A block under <see cref="InlineHashBytes"/> (every small file) is hashed on this thread,
    /// and a local file is read with blocking reads (<see cref="ReadsLocalFile"/>): handing either to
    /// the pool costs two thread switches, more than the work for a file of a few KiB, and a tree
    /// of many small files paid them on every file.</para></summary>
    private async Task<RepositoryFile> ChunkFileAsync(string path, Stream content, FastCdc cdc, WalCuts? walCuts, CancellationToken ct)
    {
        long bufferBase = 0; // the file offset of buf[0]
        int size = Math.Max(4 * 1024 * 1024, 2 * cdc.Max);
        byte[] buf = BlockPool.Shared.Rent(size);
        using var fileHash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var chunks = new List<ChunkId>();
        var cuts = new List<(int Offset, int Length)>();
        bool blocking = ReadsLocalFile(content);
        Task hashing = Task.CompletedTask;
        long total = 0;
        int start = 0, end = 0;
        bool eof = false;
        try
        {
            while (true)
            {
                if (!eof && end - start < cdc.Max)
                {
                    await hashing.ConfigureAwait(false); // the bytes are about to move
                    if (start > 0)
                    {
                        Buffer.BlockCopy(buf, start, buf, 0, end - start);
                        end -= start;
                        bufferBase += start;
                        start = 0;
                    }
                    int from = end;
                    while (end < size)
                    {
                        int n;
                        if (blocking)
                        {
                            ct.ThrowIfCancellationRequested();
                            n = content.Read(buf, end, size - end);
                        }
                        else
                        {
                            n = await content.ReadAsync(buf.AsMemory(end, size - end), ct).ConfigureAwait(false);
                        }
                        if (n == 0)
                        {
                            eof = true;
                            break;
                        }
                        end += n;
                    }
                    total += end - from;
                    int count = end - from;
                    if (count < InlineHashBytes)
                    {
                        fileHash.AppendData(buf, from, count);
                    }
                    else
                    {
                        hashing = Task.Run(() => fileHash.AppendData(buf, from, count), ct);
                    }
                }
                if (end == start)
                {
                    break;
                }
                cuts.Clear();
                int pos = start;
                while (pos < end && (eof || end - pos >= cdc.Max))
                {
                    int cut = walCuts is null ? cdc.NextCut(buf.AsSpan(pos, end - pos)) : WalCut(walCuts, cdc, buf, pos, end, bufferBase);
                    cuts.Add((pos, cut));
                    pos += cut;
                }
                ChunkId[] ids = ComputeIds(buf, cuts);
                if (_verifyExisting)
                {
                    await VerifyExistingAsync(ids, ct).ConfigureAwait(false);
                }
                for (int i = 0; i < ids.Length; i++)
                {
                    if (Stage(buf, cuts[i].Offset, cuts[i].Length, ids[i], chunks))
                    {
                        await SubmitFrameAsync(ct).ConfigureAwait(false);
                    }
                }
                start = pos;
            }
            await hashing.ConfigureAwait(false);
        }
        finally
        {
            // A failed read or stage may leave the hash running over the buffer: let it finish first.
            await hashing.ContinueWith(_ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default).ConfigureAwait(false);
            BlockPool.Shared.Return(buf);
        }
        // An exact array: a list grown by doubling kept room for four ids (144 bytes) behind a file
        // of one chunk, for every file of the backup until its manifest is written.
        return RepositoryFile.FromDigest(path, total, new ChunkId(fileHash.GetHashAndReset()), chunks.ToArray());
    }

    /// <summary>Proves the stored frame of every chunk in <paramref name="ids"/> that would be
    /// deduplicated: reads it back and checks its SHA-256. A frame that fails (or whose pack is gone)
    /// takes its pack out of use, so the chunk's next copy is checked, or the chunk is stored again.</summary>
    private async Task VerifyExistingAsync(ChunkId[] ids, CancellationToken ct)
    {
        while (true)
        {
            var frames = new HashSet<RepositoryIndex.FrameInfo>();
            foreach (ChunkId id in ids)
            {
                if (!_pending.Contains(id) && _repo.Index.TryGet(id, out RepositoryIndex.ChunkLocation loc) && !_repo.IsVerified(loc.Frame))
                {
                    frames.Add(loc.Frame);
                }
            }
            if (frames.Count == 0)
            {
                return;
            }
            await Parallel.ForEachAsync(frames, new ParallelOptions { MaxDegreeOfParallelism = 4, CancellationToken = ct },
                async (f, c) => await _repo.VerifyFrameAsync(f, c).ConfigureAwait(false)).ConfigureAwait(false);
        }
    }

    /// <summary>The next cut of a WAL file (<see cref="AddWalSegmentAsync"/>): the end of the header,
    /// else the content-defined cut or the first split before it.</summary>
    private static int WalCut(WalCuts walCuts, FastCdc cdc, byte[] buf, int pos, int end, long bufferBase)
    {
        long at = bufferBase + pos;
        if (at < walCuts.HeaderEnd)
        {
            return (int)Math.Min(walCuts.HeaderEnd - at, end - pos);
        }
        IReadOnlyList<long> splits = walCuts.Splits;
        // The first split after this chunk's start (splits ascend).
        int lo = 0, hi = splits.Count;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (splits[mid] <= at)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }
        if (walCuts.Exact && lo < splits.Count)
        {
            return (int)Math.Min(splits[lo] - at, end - pos);
        }
        int cut = walCuts.FixedSize ? Math.Min(cdc.Max, end - pos) : cdc.NextCut(buf.AsSpan(pos, end - pos));
        return lo < splits.Count && splits[lo] < at + cut ? (int)(splits[lo] - at) : cut;
    }

    /// <summary>The ids of the chunks cut from one block, hashed in parallel (one range per core).</summary>
    private ChunkId[] ComputeIds(byte[] buf, List<(int Offset, int Length)> cuts)
    {
        var ids = new ChunkId[cuts.Count];
        BlobCodec codec = _repo.Codec;
        int ranges = Math.Min(cuts.Count, Environment.ProcessorCount);
        if (ranges <= 1)
        {
            for (int i = 0; i < ids.Length; i++)
            {
                ids[i] = codec.ComputeId(buf.AsSpan(cuts[i].Offset, cuts[i].Length));
            }
            return ids;
        }
        Parallel.For(0, ranges, r =>
        {
            for (int i = r; i < ids.Length; i += ranges)
            {
                ids[i] = codec.ComputeId(buf.AsSpan(cuts[i].Offset, cuts[i].Length));
            }
        });
        return ids;
    }

    /// <summary>Repair: only chunks this accepts are stored (the ones the repository lacks); the others
    /// are cut and hashed but not kept. Null: every new chunk is stored.</summary>
    internal Func<ChunkId, bool>? StoreOnly { get; init; }

    /// <summary>Records one chunk; when it is new, copies it into the open frame. True when the frame is full.</summary>
    private bool Stage(byte[] buf, int offset, int length, ChunkId id, List<ChunkId> chunks)
    {
        chunks.Add(id);
        if (_repo.Index.Contains(id) || (StoreOnly is { } only && !only(id)) || !_pending.Add(id))
        {
            return false;
        }
        _frame ??= new FrameJob(BlockPool.Shared.Rent(_frameCapacity));
        Buffer.BlockCopy(buf, offset, _frame.Buffer, _frame.Length, length);
        _frame.Chunks.Add(new ChunkEntry(id, _frame.Length, length));
        _frame.Length += length;
        _newChunks++;
        _newChunkBytes += length;
        return _frame.Length >= _repo.Config.FrameSize;
    }

    private async Task SubmitFrameAsync(CancellationToken ct)
    {
        if (_frame is { Length: > 0 } f)
        {
            _frame = null;
            await _toCompress.Writer.WriteAsync(f, ct).ConfigureAwait(false);
        }
    }

    private async Task CompressLoop()
    {
        try
        {
            BlobCodec codec = _repo.Codec;
            await foreach (FrameJob job in _toCompress.Reader.ReadAllAsync(_cts.Token).ConfigureAwait(false))
            {
                byte[] output = BlockPool.Shared.Rent(codec.MaxStoredLength(job.Length));
                int n;
                try
                {
                    n = codec.Encode(job.Buffer.AsSpan(0, job.Length), output, _level);
                }
                finally
                {
                    BlockPool.Shared.Return(job.Buffer);
                }
                string sha = Hex.Encode(SHA256.HashData(output.AsSpan(0, n)));
                await _toPack.Writer.WriteAsync(new StoredFrame(output, n, sha, job.Length, job.Chunks), _cts.Token).ConfigureAwait(false);
            }
        }
        catch (Exception e)
        {
            Fail(e);
        }
    }

    private async Task PackLoop()
    {
        PackSpool? pack = null;
        var frames = new List<FrameEntry>();
        try
        {
            await foreach (StoredFrame f in _toPack.Reader.ReadAllAsync(_cts.Token).ConfigureAwait(false))
            {
                try
                {
                    pack ??= PackSpool.Create(_repo.Backend);
                    frames.Add(new FrameEntry(pack.Length, f.Length, f.Sha256, f.PlainLength, f.Chunks));
                    pack.Append(f.Buffer.AsSpan(0, f.Length));
                }
                finally
                {
                    BlockPool.Shared.Return(f.Buffer);
                }
                if (pack.Length >= _repo.Config.PackSize)
                {
                    PackSpool full = pack;
                    pack = null;
                    await FinishPackAsync(full, frames).ConfigureAwait(false);
                    frames = new List<FrameEntry>();
                }
            }
            if (pack is not null && frames.Count > 0)
            {
                PackSpool last = pack;
                pack = null;
                await FinishPackAsync(last, frames).ConfigureAwait(false);
            }
            _toUpload.Writer.TryComplete();
        }
        catch (Exception e)
        {
            Fail(e);
            _toUpload.Writer.TryComplete(e);
        }
        finally
        {
            pack?.Dispose();
        }
    }

    /// <summary>Appends the trailer (a zstd skippable frame holding the frame list) and hands the
    /// pack, now named by its SHA-256, to the uploader (which owns it from then on).</summary>
    private async Task FinishPackAsync(PackSpool pack, List<FrameEntry> frames)
    {
        string id;
        try
        {
            byte[] trailer = _repo.Codec.EncodeJson(new PackTrailer(1, frames));
            byte[] tail = new byte[8 + trailer.Length + 12];
            Span<byte> p = tail;
            BinaryPrimitives.WriteUInt32LittleEndian(p, RepositoryLayout.TrailerSkippableMagic);
            BinaryPrimitives.WriteUInt32LittleEndian(p[4..], (uint)(trailer.Length + 12));
            trailer.CopyTo(p[8..]);
            BinaryPrimitives.WriteUInt32LittleEndian(p[(8 + trailer.Length)..], (uint)trailer.Length);
            RepositoryLayout.PackMagic.CopyTo(p[(12 + trailer.Length)..]);
            pack.Append(tail);
            id = pack.FinishId();
        }
        catch
        {
            pack.Dispose();
            throw;
        }
        if (!_toUpload.Writer.TryWrite(new PackJob(pack, id, frames)))
        {
            try
            {
                await _toUpload.Writer.WriteAsync(new PackJob(pack, id, frames), _cts.Token).ConfigureAwait(false);
            }
            catch
            {
                pack.Dispose();
                throw;
            }
        }
    }

    private async Task UploadLoop()
    {
        try
        {
            await foreach (PackJob job in _toUpload.Reader.ReadAllAsync(_cts.Token).ConfigureAwait(false))
            {
                using (PackSpool spool = job.Spool)
                {
                    string id = job.Id;
                    long length = spool.Length;
                    await spool.CommitAsync(RepositoryLayout.PackKey(id), _cts.Token).ConfigureAwait(false);
                    Interlocked.Increment(ref _packs);
                    Interlocked.Add(ref _storedBytes, length);
                    if (_repo.Index.Pack(id) is { Usable: false } known)
                    {
                        // The same bytes again under the same content address: the pack is whole now.
                        known.State = PackState.Present;
                        known.Problem = null;
                        try
                        {
                            await _repo.Backend.DeleteAsync(RepositoryLayout.DamagedKey(id), _cts.Token).ConfigureAwait(false);
                        }
                        catch (IOException)
                        {
                            // A stale marker only costs a re-upload next time.
                        }
                    }
                    _unindexed.Add(new IndexPack(id, length, job.Frames));
                }
                if (_unindexed.Count >= IndexFlushPacks)
                {
                    await FlushIndexAsync(_cts.Token).ConfigureAwait(false);
                }
            }
        }
        catch (Exception e)
        {
            Fail(e);
        }
    }

    /// <summary>Writes the packs uploaded since the last flush as one index object, then makes them
    /// visible to this process's later writers.</summary>
    private async Task FlushIndexAsync(CancellationToken ct)
    {
        if (_unindexed.Count == 0)
        {
            return;
        }
        byte[] blob = _repo.Codec.EncodeJson(new IndexObject(1, _unindexed));
        string id = Hex.Encode(SHA256.HashData(blob));
        await Repository.PutBytesAsync(_repo.Backend, RepositoryLayout.IndexKey(id), blob, ct).ConfigureAwait(false);
        _repo.IndexWritten(RepositoryLayout.IndexKey(id));
        Interlocked.Add(ref _storedBytes, blob.Length);
        _repo.Index.AddAll(_unindexed);
        _unindexed.Clear();
    }

    private void Fail(Exception e)
    {
        if (e is OperationCanceledException && _cts.IsCancellationRequested && _failure is null && _state == State.Aborted)
        {
            return;
        }
        Interlocked.CompareExchange(ref _failure, ExceptionDispatchInfo.Capture(e), null);
        _cts.Cancel();
        _toCompress.Writer.TryComplete(e);
        _toPack.Writer.TryComplete(e);
        _toUpload.Writer.TryComplete(e);
    }

    private void EnsureOpen()
    {
        if (_state != State.Open)
        {
            throw new InvalidOperationException(_state switch
            {
                State.Committed => "This backup is already committed.",
                State.Aborted => "This backup was aborted.",
                _ => "An earlier step of this backup failed; abort it and start a new one.",
            });
        }
    }

    /// <summary>Repair: stores one chunk whose plaintext is known to be right (its id was recomputed),
    /// unless the repository already has a usable copy.</summary>
    internal async Task AddChunkAsync(ChunkId id, byte[] plain, int offset, int length, CancellationToken ct)
    {
        EnsureOpen();
        _state = State.Failed;
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, _cts.Token);
        try
        {
            if (Stage(plain, offset, length, id, []))
            {
                await SubmitFrameAsync(linked.Token).ConfigureAwait(false);
            }
            _state = State.Open;
        }
        catch (Exception e) when (_failure is not null && e is OperationCanceledException or ChannelClosedException)
        {
            _failure.Throw();
            throw;
        }
    }

    /// <summary>Repair: flushes the last frame and pack and indexes them; no manifest is written.
    /// Returns the packs and bytes stored.</summary>
    internal async Task<(long Packs, long StoredBytes, long Chunks)> CommitChunksAsync(CancellationToken ct)
    {
        EnsureOpen();
        _state = State.Failed;
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, _cts.Token);
        try
        {
            await FinishDataAsync(linked.Token).ConfigureAwait(false);
            _state = State.Committed;
            return (_packs, _storedBytes, _newChunks);
        }
        catch (Exception e) when (_failure is not null && e is OperationCanceledException or ChannelClosedException)
        {
            _failure.Throw();
            throw;
        }
    }

    /// <summary>The last frame and pack stored and indexed.</summary>
    private async Task FinishDataAsync(CancellationToken ct)
    {
        await SubmitFrameAsync(ct).ConfigureAwait(false);
        _toCompress.Writer.TryComplete();
        await Task.WhenAll(_compressors).ConfigureAwait(false);
        _failure?.Throw();
        _toPack.Writer.TryComplete();
        await _packer.ConfigureAwait(false);
        await _uploader.ConfigureAwait(false);
        _failure?.Throw();
        await FlushIndexAsync(ct).ConfigureAwait(false);
        // Every new chunk is in the repository's index now: the set that deduplicated them within
        // this backup (~3 MiB for 62,105 chunks) need not stay through the manifest, the peak.
        _pending.Clear();
        _pending.TrimExcess();
    }

    /// <summary>Finishes the backup: flushes the last frame and pack, writes the index object, then
    /// the manifest, then (when <paramref name="refName"/> is given, e.g. <c>wal/ns1/000000043</c>)
    /// the ref <c>refs/&lt;refName&gt;/&lt;manifestId&gt;</c>. Returns the manifest id and what was stored.</summary>
    public async Task<BackupCommitResult> CommitAsync(string? refName = null, CancellationToken ct = default)
    {
        EnsureOpen();
        string? name = refName is null ? null : Repository.ValidateRefName(refName);
        _state = State.Failed;
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, _cts.Token);
        try
        {
            await FinishDataAsync(linked.Token).ConfigureAwait(false);
            var manifest = new RepositoryManifest
            {
                Kind = _info.Kind,
                Namespace = _info.Namespace,
                Dir = _info.Dir,
                Object = _info.Object,
                Host = _info.Host,
                CreatedAt = _createdAt,
                CompletedAt = _clock.GetUtcNow(),
                Tool = "PSBackup " + typeof(BackupWriter).Assembly.GetName().Version?.ToString(3),
                Consistency = _info.Consistency,
                ChangedFiles = _info.ChangedFiles,
                Wal = _info.Wal,
                Store = _info.Store,
                Segment = _info.Segment,
                Properties = _info.Properties,
                Root = _info.Root,
                Directories = _info.Directories,
                Files = _files.ToList(),
            };
            byte[] blob = _repo.Codec.EncodeJson(manifest, out int plainLength);
            if (BlobLimits.Problem(BlobKind.Manifest, plainLength, blob.Length) is { } tooLarge)
            {
                // A reader would refuse it: fail now, never commit a backup that cannot be read back.
                throw new OperationFailedException("ManifestTooLarge",
                    $"This backup's manifest cannot be stored: {tooLarge}. Split the backup (fewer or smaller files per backup); nothing was committed.");
            }
            string id = Hex.Encode(SHA256.HashData(blob));
            await Repository.PutBytesAsync(_repo.Backend, RepositoryLayout.ManifestKey(id), blob, linked.Token).ConfigureAwait(false);
            long stored = _storedBytes + blob.Length;
            if (name is not null)
            {
                await Repository.PutBytesAsync(_repo.Backend, RepositoryLayout.RefKey(name, id), [], linked.Token).ConfigureAwait(false);
            }
            _state = State.Committed;
            Committed = manifest with { Id = id };
            return new BackupCommitResult(id, _files.Count, _files.Sum(f => f.Size), _newChunks, _newChunkBytes, _packs, stored);
        }
        catch (Exception e) when (_failure is not null && e is OperationCanceledException or ChannelClosedException)
        {
            _failure.Throw();
            throw;
        }
    }

    /// <summary>Stops the pipeline; nothing of this backup is referenced by a manifest.</summary>
    public async Task AbortAsync()
    {
        if (_state is State.Committed or State.Aborted)
        {
            return;
        }
        _state = State.Aborted;
        _cts.Cancel();
        _toCompress.Writer.TryComplete();
        _toPack.Writer.TryComplete();
        _toUpload.Writer.TryComplete();
        try
        {
            await Task.WhenAll(_compressors.Append(_packer).Append(_uploader)).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // Loops catch their own exceptions; nothing to report on abort.
        }
        // Finished packs the uploader never took: their spools are deleted, never stored.
        while (_toUpload.Reader.TryRead(out PackJob? left))
        {
            left.Spool.Dispose();
        }
        if (_frame is not null)
        {
            BlockPool.Shared.Return(_frame.Buffer);
            _frame = null;
        }
    }

    /// <summary>Aborts unless committed.</summary>
    public async ValueTask DisposeAsync()
    {
        await AbortAsync().ConfigureAwait(false);
        _cts.Dispose();
    }
}
