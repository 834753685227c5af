using System.Buffers;
using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;
using PSBackup.Engine.Storage;

namespace PSBackup.Engine.Repository;

/// <summary>Writes every file of one manifest with bounded parallel workers, each pack read once.
/// <para>Plan: every chunk of every file is located in the index first (a chunk with no copy fails
/// the restore before any file exists). The frames needed are grouped by pack and read in pack
/// order with ranged reads, adjacent frames coalesced up to <see cref="MaxRead"/> bytes; reads are
/// ordered by the first file position that needs them, so files complete front to back and few are
/// open at once.</para>
/// <para>Workers (<see cref="Workers"/>) take reads in that order: the stored bytes of each frame are
/// checked against the index SHA-256 before decoding (and authenticated by AES-GCM when encrypted),
/// decoded, and written with positioned writes into every file and offset that holds its chunks.
/// A frame that fails is never written: its pack is marked and each of its chunks is taken from
/// another copy, or the restore fails.</para>
/// <para>Each file's SHA-256 is computed in file order while pieces arrive out of order: the worker
/// whose piece starts where the hash stands hashes it from memory and then every piece already
/// written behind it, read back from the file (the page cache); pieces ahead wait as (offset,
/// length) only, so memory does not grow with files or their order. When a file's hash reaches its
/// size, size and SHA-256 are compared with the manifest.</para>
/// <para>A verified file is sealed by one of <see cref="Closers"/> closer threads while the workers go
/// on: its recorded mode, owner and time are given back, it is fsynced and closed, and a temp name
/// is renamed to the file's name. Fsync per file, a few at once, measured faster here than
/// sync_file_range writeback plus one fsync pass or syncfs at the end; each piece's writeback is
/// started as it is written, so that fsync mostly finds the pages on their way (docs/design.md,
/// Restore, "Parallel restore"). Memory: per worker one read (at most <see cref="MaxRead"/>, or one frame)
/// and one decoded frame.</para></summary>
internal sealed class ParallelRestore
{
    /// <summary>The largest ranged read adjacent frames are coalesced into (one frame may be larger).</summary>
    internal const int MaxRead = 2 << 20;

    /// <summary>Pieces at least this long have their writeback started as soon as they are written
    /// (<see cref="Writeback.StartRange"/>), so the disk writes while the workers decode and a file's
    /// fsync waits for little; smaller ones (small files, mostly) are left to their fsync, which follows soon.</summary>
    private const int WritebackPiece = 64 * 1024;

    /// <summary>Files kept open between pieces; beyond this a piece opens and closes its file.</summary>
    private const int MaxOpenFiles = 128;

    /// <summary>Twice the cores: while some workers wait for storage or the disk, others decode.</summary>
    internal static int Workers => Math.Clamp(2 * Environment.ProcessorCount, 2, 16);

    /// <summary>Verified files being sealed (metadata, fsync, close, rename) at once.</summary>
    internal const int Closers = 4;

    private readonly Repository _repo;
    private readonly RepositoryManifest _manifest;
    private readonly FrameSource _source;
    private readonly FileState[] _files;
    private readonly Action<int> _sealed;
    private readonly Action<int>? _written;
    private readonly System.Threading.Channels.Channel<FileState> _closing =
        System.Threading.Channels.Channel.CreateBounded<FileState>(new System.Threading.Channels.BoundedChannelOptions(2 * Closers) { SingleWriter = false, SingleReader = false });
    private int _open;

    /// <summary>Where one piece of a decoded frame goes: a file, an offset in it, and the bytes of
    /// the frame's plaintext (consecutive chunks of one file merged).</summary>
    private readonly record struct Target(int File, long FileOffset, int PlainOffset, int Length);

    /// <summary>A frame to read and the pieces it supplies.</summary>
    private sealed class FrameJob(RepositoryIndex.FrameInfo frame)
    {
        public RepositoryIndex.FrameInfo Frame { get; } = frame;
        public List<Target> Targets { get; } = new();
        /// <summary>The chunk behind each target piece, for taking it from another copy.</summary>
        public List<(ChunkId Id, int File, long FileOffset, int PlainOffset, int Length)> Chunks { get; } = new();
    }

    /// <summary>One ranged read of a pack: frames in offset order.</summary>
    private sealed record ReadJob(RepositoryIndex.PackInfo Pack, long Offset, int Length, List<FrameJob> Frames, long Order);

    /// <summary>A worker's own buffers, grown to the largest read and frame it met and reused: the
    /// shared ArrayPool keeps a cached array per thread, and blocking writes and fsyncs bring many
    /// pool threads, which held ~80 MiB of cached 1-4 MiB arrays in a 2 GiB restore.</summary>
    private sealed class Buffers
    {
        private byte[] _stored = [], _plain = [], _readBack = [];

        public byte[] Stored(int n) => Ensure(ref _stored, n);
        public byte[] Plain(int n) => Ensure(ref _plain, n);
        public byte[] ReadBack => Ensure(ref _readBack, 256 * 1024);

        private static byte[] Ensure(ref byte[] buffer, int n) =>
            buffer.Length >= n ? buffer : buffer = GC.AllocateUninitializedArray<byte>(Math.Max(n, 1));
    }

    private sealed class FileState(int index, RepositoryFile file, IReadOnlyList<string> paths, IReadOnlyList<string> finals)
    {
        /// <summary>What guards the fields below: the state itself (a lock object and a dictionary
        /// per file were ~100 bytes each of every file a restore holds).</summary>
        public object Lock => this;
        public int Index { get; } = index;
        public RepositoryFile File { get; } = file;
        /// <summary>Where the bytes are written: the final name, or a temp name renamed to it once sealed.</summary>
        /// <remarks>From the caller's list, kept while the file is written and let go once it is
        /// sealed: a restore into a fresh folder makes its names as they are read rather than
        /// holding one per file for the whole restore.</remarks>
        public string Path => _path ??= paths[Index];
        public string Final => ReferenceEquals(paths, finals) ? Path : finals[Index];
        private string? _path;

        /// <summary>Sealed: the name is made again should a message need it.</summary>
        public void ForgetPath() => _path = null;
        /// <summary>Open while the file is being written (unbuffered; pieces go through its handle).</summary>
        public FileStream? Stream;
        public SafeFileHandle? Handle;
        public bool Created;
        /// <summary>Sealed under its final name (nothing to remove on failure).</summary>
        public volatile bool Sealed;
        public IncrementalHash? Hash;
        public long HashedUpTo;
        public bool Hashing;
        /// <summary>Pieces written ahead of the hash: offset to length (made at the first such piece).</summary>
        public Dictionary<long, int>? Ahead;
    }

    private ParallelRestore(Repository repo, RepositoryManifest manifest, IReadOnlyList<string> paths, IReadOnlyList<string> finals, Action<int> @sealed, Action<int>? written)
    {
        _written = written;
        _repo = repo;
        _manifest = manifest;
        _source = new FrameSource(repo, manifest);
        _files = manifest.Files.Select((f, i) => new FileState(i, f, paths, finals)).ToArray();
        _sealed = @sealed;
    }

    /// <summary>Writes every file of <paramref name="manifest"/> to <paramref name="paths"/> (same
    /// order; each created new, 0600 on Unix until its recorded mode is given back; parent folders
    /// must exist) and, once verified and fsynced, renames it to <paramref name="finals"/> where that
    /// differs (replacing what is there). <paramref name="sealed"/> runs once per file after that
    /// (on a closer task); <paramref name="written"/>, when given, after each piece written, with its
    /// length (on the worker that wrote it: progress within a large file). On failure or cancellation every file not yet sealed is removed; no task
    /// runs after this returns or throws.</summary>
    /// <remarks>Tests: <paramref name="workers"/> replaces <see cref="Workers"/>, and
    /// <paramref name="reverse"/> reads the packs in the opposite order, which must give the same files.</remarks>
    public static async Task RunAsync(Repository repo, RepositoryManifest manifest, IReadOnlyList<string> paths, IReadOnlyList<string> finals,
        Action<int> @sealed, CancellationToken ct, int? workers = null, bool reverse = false, Action<int>? written = null)
    {
        var restore = new ParallelRestore(repo, manifest, paths, finals, @sealed, written);
        List<ReadJob> reads = restore.Plan();
        if (reverse)
        {
            reads.Reverse();
        }
        await restore.ExecuteAsync(reads, workers ?? Workers, ct).ConfigureAwait(false);
    }

    /// <summary>Locates every chunk and groups the frames into ordered ranged reads.</summary>
    private List<ReadJob> Plan()
    {
        // FrameInfo and PackInfo compare by reference: one object per index entry.
        var frames = new Dictionary<RepositoryIndex.FrameInfo, FrameJob>();
        var firstUse = new Dictionary<RepositoryIndex.FrameInfo, long>();
        long order = 0;
        for (int fi = 0; fi < _files.Length; fi++)
        {
            RepositoryFile f = _files[fi].File;
            long at = 0;
            foreach (ChunkId id in f.Chunks)
            {
                RepositoryIndex.ChunkLocation loc = _source.Locate(id, f);
                if (!frames.TryGetValue(loc.Frame, out FrameJob? job))
                {
                    frames[loc.Frame] = job = new FrameJob(loc.Frame);
                    firstUse[loc.Frame] = order;
                }
                order++;
                job.Chunks.Add((id, fi, at, loc.Offset, loc.Length));
                // Consecutive chunks of one file that follow each other in the frame: one piece.
                if (job.Targets.Count > 0 && job.Targets[^1] is var last && last.File == fi
                    && last.FileOffset + last.Length == at && last.PlainOffset + last.Length == loc.Offset)
                {
                    job.Targets[^1] = last with { Length = last.Length + loc.Length };
                }
                else
                {
                    job.Targets.Add(new Target(fi, at, loc.Offset, loc.Length));
                }
                at += loc.Length;
            }
            if (at != f.Size)
            {
                throw new RepositoryIntegrityException("FileMismatch",
                    $"Backup {_manifest.Id}, file '{f.Path}': its chunks hold {at} bytes, the manifest says {f.Size}. Do not use this backup's copy of the file.",
                    RepositoryLayout.ManifestKey(_manifest.Id), _manifest.Id, f.Path);
            }
        }
        var reads = new List<ReadJob>();
        foreach (IGrouping<RepositoryIndex.PackInfo, FrameJob> pack in frames.Values.GroupBy(j => j.Frame.Pack))
        {
            List<FrameJob> current = new();
            long start = 0, end = 0;
            foreach (FrameJob job in pack.OrderBy(j => j.Frame.Offset))
            {
                RepositoryIndex.FrameInfo fr = job.Frame;
                // Frames that follow each other in the pack share one read, up to MaxRead bytes.
                if (current.Count > 0 && (fr.Offset != end || fr.Offset + fr.Length - start > MaxRead))
                {
                    reads.Add(new ReadJob(pack.Key, start, (int)(end - start), current, current.Min(j => firstUse[j.Frame])));
                    current = new();
                }
                if (current.Count == 0)
                {
                    start = fr.Offset;
                }
                current.Add(job);
                end = fr.Offset + fr.Length;
            }
            if (current.Count > 0)
            {
                reads.Add(new ReadJob(pack.Key, start, (int)(end - start), current, current.Min(j => firstUse[j.Frame])));
            }
        }
        reads.Sort((a, b) => a.Order.CompareTo(b.Order));
        return reads;
    }

    private async Task ExecuteAsync(List<ReadJob> reads, int workerCount, CancellationToken ct)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        // Closers are threads of their own: sealing blocks in fsync (a large file's for a good part of
        // a second), and on the thread pool (as many threads as cores to begin with) that left the
        // cores idle with decoding work queued until the pool added threads.
        var closers = new Task[Closers];
        for (int c = 0; c < closers.Length; c++)
        {
            closers[c] = Task.Factory.StartNew(() =>
            {
                try
                {
                    System.Threading.Channels.ChannelReader<FileState> reader = _closing.Reader;
                    while (reader.WaitToReadAsync(cts.Token).AsTask().GetAwaiter().GetResult())
                    {
                        while (reader.TryRead(out FileState? f))
                        {
                            cts.Token.ThrowIfCancellationRequested();
                            Seal(f);
                        }
                    }
                }
                catch
                {
                    cts.Cancel();
                    throw;
                }
            }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }
        Task[] workers = [];
        try
        {
            // Empty files need no frame: created and verified up front.
            foreach (FileState f in _files)
            {
                if (f.File.Size == 0)
                {
                    cts.Token.ThrowIfCancellationRequested();
                    lock (f.Lock)
                    {
                        Keep(f, Create(f.Path));
                        f.Created = true;
                        Interlocked.Increment(ref _open);
                    }
                    await _closing.Writer.WriteAsync(Verified(f, SHA256.HashData([])), cts.Token).ConfigureAwait(false);
                }
            }
            int next = -1;
            workers = new Task[Math.Min(workerCount, Math.Max(1, reads.Count))];
            for (int w = 0; w < workers.Length; w++)
            {
                workers[w] = Run(async token =>
                {
                    var buffers = new Buffers();
                    int i;
                    while ((i = Interlocked.Increment(ref next)) < reads.Count)
                    {
                        token.ThrowIfCancellationRequested();
                        await ReadAsync(reads[i], buffers, token).ConfigureAwait(false);
                    }
                }, cts);
            }
            await Task.WhenAll(workers).ConfigureAwait(false);
            _closing.Writer.TryComplete();
            await Task.WhenAll(closers).ConfigureAwait(false);
            foreach (FileState f in _files)
            {
                if (!f.Sealed)
                {
                    // Every piece was planned and written, so every hash reached its end; a bug guard.
                    throw new RepositoryIntegrityException("FileMismatch",
                        $"Backup {_manifest.Id}, file '{f.File.Path}': the restore did not write all of its {f.File.Size} bytes. Do not use this file.",
                        RepositoryLayout.ManifestKey(_manifest.Id), _manifest.Id, f.File.Path);
                }
            }
        }
        catch (Exception e)
        {
            cts.Cancel();
            _closing.Writer.TryComplete();
            Task all = Task.WhenAll(workers.Concat(closers));
            try
            {
                await all.ConfigureAwait(false);
            }
            catch (Exception)
            {
                // Reported below: the first failure that is not a cancellation it caused.
            }
            Exception? first = all.Exception?.InnerExceptions.FirstOrDefault(x => x is not OperationCanceledException);
            if (first is not null && e is OperationCanceledException && !ct.IsCancellationRequested)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(first).Throw();
            }
            throw;
        }
        finally
        {
            foreach (FileState f in _files)
            {
                f.Stream?.Dispose();
                f.Stream = null;
                f.Handle = null;
                f.Hash?.Dispose();
                if (f.Created && !f.Sealed)
                {
                    try
                    {
                        File.Delete(f.Path);
                    }
                    catch (Exception x) when (x is IOException or UnauthorizedAccessException)
                    {
                    }
                }
            }
        }
    }

    /// <summary>Runs a worker or closer; its failure cancels the others.</summary>
    private static Task Run(Func<CancellationToken, Task> body, CancellationTokenSource cts) =>
        Task.Run(async () =>
        {
            try
            {
                await body(cts.Token).ConfigureAwait(false);
            }
            catch
            {
                cts.Cancel();
                throw;
            }
        }, CancellationToken.None);

    /// <summary>One ranged read: each frame verified, decoded and written; a failed frame taken
    /// from other copies chunk by chunk.</summary>
    private async Task ReadAsync(ReadJob read, Buffers buffers, CancellationToken ct)
    {
        byte[] stored = buffers.Stored(read.Length);
        RepositoryIntegrityException? readFailure = await _source.ReadAsync(read.Pack, read.Offset, stored.AsMemory(0, read.Length), PathOf(read.Frames[0]), ct).ConfigureAwait(false);
        byte[] plain = buffers.Plain(read.Frames.Max(f => f.Frame.PlainLength));
        foreach (FrameJob job in read.Frames)
        {
            ct.ThrowIfCancellationRequested();
            RepositoryIntegrityException? failure = readFailure
                ?? _source.Decode(stored.AsSpan((int)(job.Frame.Offset - read.Offset), job.Frame.Length), job.Frame, plain, PathOf(job));
            if (failure is null)
            {
                foreach (Target t in job.Targets)
                {
                    if (Write(_files[t.File], t.FileOffset, plain.AsSpan(t.PlainOffset, t.Length), buffers) is { } done)
                    {
                        await _closing.Writer.WriteAsync(done, ct).ConfigureAwait(false);
                    }
                }
            }
            else
            {
                await FromOtherCopiesAsync(job, failure, buffers, ct).ConfigureAwait(false);
            }
        }
    }

    /// <summary>The first file a frame's chunks belong to, for messages.</summary>
    private string PathOf(FrameJob job) => _files[job.Chunks[0].File].File.Path;

    /// <summary>A frame that could not be used: its pack is taken out of use and each of its chunks
    /// is taken from another copy and written, once every one has a sound copy; with no copy of some
    /// chunk, the frame's failure is the restore's.</summary>
    private async Task FromOtherCopiesAsync(FrameJob job, RepositoryIntegrityException failure, Buffers buffers, CancellationToken ct)
    {
        await _source.NoteFailureAsync(job.Frame.Pack, failure, ct).ConfigureAwait(false);
        var decoded = new Dictionary<RepositoryIndex.FrameInfo, byte[]>();
        try
        {
            List<(byte[] Plain, int Offset)> copies = await _source.OtherCopiesAsync(job.Frame.Pack,
                job.Chunks.Select(c => (c.Id, c.Length, _files[c.File].File.Path)), decoded, ct).ConfigureAwait(false) ?? throw failure;
            for (int k = 0; k < job.Chunks.Count; k++)
            {
                var c = job.Chunks[k];
                if (Write(_files[c.File], c.FileOffset, copies[k].Plain.AsSpan(copies[k].Offset, c.Length), buffers) is { } done)
                {
                    await _closing.Writer.WriteAsync(done, ct).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            foreach (byte[] b in decoded.Values)
            {
                ArrayPool<byte>.Shared.Return(b);
            }
        }
    }

    // ------------------------------------------------------------------ files

    /// <summary>A new file, 0600 on Unix until its recorded mode is given back (never readable by
    /// others on the way), unbuffered: pieces are positioned writes through its handle.</summary>
    private static FileStream Create(string path)
    {
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.ReadWrite, Share = FileShare.ReadWrite, BufferSize = 0 };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = PrivateFiles.FileMode;
        }
        return new FileStream(path, options);
    }

    private static FileStream Reopen(string path) => new(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, bufferSize: 0);

    /// <summary>Keeps <paramref name="stream"/> as the file's open stream (the caller holds the lock).</summary>
    private static void Keep(FileState f, FileStream stream)
    {
        f.Stream = stream;
        f.Handle = stream.SafeFileHandle;
    }

    /// <summary>Writes one verified piece at its offset, then brings the file's hash forward; the
    /// file when this piece completed and verified it.</summary>
    private FileState? Write(FileState f, long offset, ReadOnlySpan<byte> data, Buffers buffers)
    {
        FileStream? transient = null;
        SafeFileHandle handle;
        lock (f.Lock)
        {
            if (f.Handle is null)
            {
                FileStream stream = f.Created ? Reopen(f.Path) : Create(f.Path);
                f.Created = true;
                if (Interlocked.Increment(ref _open) <= MaxOpenFiles)
                {
                    Keep(f, stream);
                }
                else
                {
                    Interlocked.Decrement(ref _open);
                    transient = stream;
                }
            }
            // The handle stays open while this piece is written: only the file's last piece can
            // complete it, and a piece counts only after it is written.
            handle = f.Handle ?? transient!.SafeFileHandle;
        }
        try
        {
            RandomAccess.Write(handle, data, offset);
            if (data.Length >= WritebackPiece)
            {
                Writeback.StartRange(handle, offset, data.Length);
            }
        }
        finally
        {
            transient?.Dispose();
        }
        _written?.Invoke(data.Length);
        return Advance(f, offset, data, buffers);
    }

    /// <summary>The in-order hash: the piece at the hash's position is hashed from memory, then every
    /// piece written ahead that now follows on is read back and hashed; a piece ahead of the hash is
    /// only noted. One worker at a time hashes a file. The file when its hash reached its size and
    /// matched the manifest.</summary>
    private FileState? Advance(FileState f, long offset, ReadOnlySpan<byte> data, Buffers buffers)
    {
        IncrementalHash hash;
        lock (f.Lock)
        {
            if (f.Hashing || offset != f.HashedUpTo)
            {
                (f.Ahead ??= new()).Add(offset, data.Length);
                return null;
            }
            f.Hashing = true;
            hash = f.Hash ??= IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        }
        hash.AppendData(data);
        long at = offset + data.Length;
        while (true)
        {
            int length;
            lock (f.Lock)
            {
                f.HashedUpTo = at;
                if (f.Ahead is null || !f.Ahead.Remove(at, out length))
                {
                    f.Hashing = false;
                    break;
                }
            }
            byte[] buffer = buffers.ReadBack;
            for (int done = 0; done < length;)
            {
                int n = ReadBack(f, at + done, buffer.AsSpan(0, Math.Min(buffer.Length, length - done)));
                hash.AppendData(buffer, 0, n);
                done += n;
            }
            at += length;
        }
        return at == f.File.Size ? Verified(f, hash.GetHashAndReset()) : null;
    }

    /// <summary>Reads written bytes back for the hash.</summary>
    private static int ReadBack(FileState f, long offset, Span<byte> into)
    {
        SafeFileHandle? transient = null;
        SafeFileHandle handle;
        lock (f.Lock)
        {
            handle = f.Handle ?? (transient = File.OpenHandle(f.Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite));
        }
        try
        {
            int total = 0;
            while (total < into.Length)
            {
                int n = RandomAccess.Read(handle, into[total..], offset + total);
                if (n <= 0)
                {
                    throw new EndOfStreamException($"'{f.Path}' is shorter than the bytes written to it: something else changed it during the restore.");
                }
                total += n;
            }
            return total;
        }
        finally
        {
            transient?.Dispose();
        }
    }

    /// <summary>The file's hash reached its size: size and hash must be the manifest's.</summary>
    private FileState Verified(FileState f, byte[] sha)
    {
        long length;
        lock (f.Lock)
        {
            length = f.Handle is { } h ? RandomAccess.GetLength(h) : new FileInfo(f.Path).Length;
            f.Hash?.Dispose();
            f.Hash = null;
        }
        if (length != f.File.Size || !f.File.Sha256Is(sha))
        {
            throw new RepositoryIntegrityException("FileMismatch",
                $"Backup {_manifest.Id}, file '{f.File.Path}': the restored bytes ({length} bytes, SHA-256 {Hex.Encode(sha)}) do not match the manifest ({f.File.Size} bytes, {f.File.Sha256}). Do not use this file.",
                RepositoryLayout.ManifestKey(_manifest.Id), _manifest.Id, f.File.Path);
        }
        return f;
    }

    /// <summary>On a closer: the recorded mode, owner and time are given back (before the fsync, so
    /// they are durable with the bytes), the file is fsynced and closed, and a temp name renamed to
    /// the final one.</summary>
    private void Seal(FileState f)
    {
        string path = f.Path, final = f.Final;
        FileStream stream;
        SafeFileHandle handle;
        lock (f.Lock)
        {
            stream = f.Stream ?? Reopen(path);
            // The handle kept beside the stream: FileStream.SafeFileHandle would seek the file to
            // the stream's position first, one lseek per file.
            handle = f.Handle ?? stream.SafeFileHandle;
            if (f.Stream is not null)
            {
                Interlocked.Decrement(ref _open);
            }
            f.Stream = null;
            f.Handle = null;
        }
        // fsync on Unix, FlushFileBuffers on Windows.
        using (stream)
        {
            _manifest.Files[f.Index].Metadata?.Apply(handle, path);
            stream.Flush(flushToDisk: true);
        }
        if (!string.Equals(path, final, StringComparison.Ordinal))
        {
            File.Move(path, final, overwrite: true);
            // The name now holds exactly the verified bytes (nothing else renamed onto it).
            if (new FileInfo(final).Length != f.File.Size)
            {
                throw new RepositoryIntegrityException("RestoreSwapCrossed",
                    $"Backup {_manifest.Id}, file '{f.File.Path}': after the rename '{final}' does not hold the {f.File.Size} verified bytes; something else wrote to the target during the restore. Restore into an empty folder.",
                    RepositoryLayout.ManifestKey(_manifest.Id), _manifest.Id, f.File.Path);
            }
        }
        f.Sealed = true;
        f.ForgetPath();
        _sealed(f.Index);
    }
}
