using System.Buffers;
using System.Collections.Concurrent;
using System.Globalization;
using System.Threading.Channels;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Wal;

namespace PSBackup.Engine.Restore;

/// <summary>The restore source of a namespace in a repository: store snapshots found by their refs
/// <c>snapshot/&lt;ns&gt;/&lt;UTC&gt;Z</c>, archived segments by theirs, <c>wal/&lt;ns&gt;/&lt;id:D9&gt;</c>.</summary>
/// <remarks>
/// <para>Every manifest a ref points to is read and validated by the repository (hash,
/// decryption, safe paths) and then checked for what it must be: the namespace, the kind, a WAL
/// position (snapshots), the segment facts and exactly one file (segments). What does not fit is
/// left out and named in <see cref="Ignored"/>.</para>
/// <para>A snapshot's <see cref="RestorableSnapshot.Id"/> is its backup id (the manifest id Get-Backup
/// shows). Its <see cref="RestorableSnapshot.CompletedAt"/> is the manifest's completion time, stamped
/// when the backup was committed, after every byte of the copy was stored: everything in the snapshot
/// was written before it, so time targets at or after it may start from it. A manifest without a
/// completion time never serves a time target (its CreatedAt, when the copy began, proves nothing).</para>
/// <para>Segments: the manifest's segment facts (id, sealed, first log index, entry count, created
/// and sealed times as read from the segment header when it was shipped, the observation time of a
/// partial) and the stored file's size and SHA-256, which the restore checks its copy against.</para>
/// <para>Files are streamed out of the repository, which verifies every frame and chunk as it reads
/// and the whole file's SHA-256 at the end; a reader sees end-of-stream only after that check passed,
/// otherwise the read fails with the repository's integrity error.</para>
/// </remarks>
public sealed class RepositoryRestoreSource : IRestoreSource, IDisposable
{
    private const int ManifestParallelism = 8;
    private readonly OpenRepository? _owned;
    private readonly List<string> _ignored = [];
    private readonly ConcurrentDictionary<string, RepositoryManifest> _manifests = new(StringComparer.Ordinal);
    /// <summary>Segment <see cref="ArchivedSegment.Location"/> to manifest id.</summary>
    private readonly ConcurrentDictionary<string, string> _segmentManifests = new(StringComparer.Ordinal);

    /// <summary>A source over an open repository; the caller keeps ownership of it.</summary>
    public RepositoryRestoreSource(Repository.Repository repository, string? @namespace)
        : this(repository, @namespace, null)
    {
    }

    private RepositoryRestoreSource(Repository.Repository repository, string? @namespace, OpenRepository? owned)
    {
        ArgumentNullException.ThrowIfNull(repository);
        Repository = repository;
        Namespace = SafePath.ValidateName(@namespace, "namespace");
        _owned = owned;
    }

    /// <summary>Opens the repository at <paramref name="target"/> (credentials as every repository
    /// cmdlet takes them) and returns a source that closes it when disposed.</summary>
    public static async Task<RepositoryRestoreSource> OpenAsync(RepositoryTarget target, string? @namespace, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(target);
        string ns = SafePath.ValidateName(@namespace, "namespace");
        OpenRepository open = await RepositoryConnector.OpenAsync(target, ct).ConfigureAwait(false);
        return new RepositoryRestoreSource(open.Repository, ns, open);
    }

    public Repository.Repository Repository { get; }
    public string Namespace { get; }
    /// <summary>The repository checks every frame and each file's size and SHA-256 (against the
    /// manifest the listing came from) before a stream ends.</summary>
    public bool VerifiesContent => true;
    public string Description => $"repository '{Repository.Location}'";

    /// <summary>What the last listings left out and why (a manifest of another kind or namespace,
    /// a snapshot without a WAL position, a segment manifest that does not match its ref).</summary>
    public IReadOnlyList<string> Ignored
    {
        get
        {
            lock (_ignored)
            {
                return _ignored.ToList();
            }
        }
    }

    /// <summary>The ref prefix of the namespace's snapshots.</summary>
    public static string SnapshotRefPrefix(string ns) => $"snapshot/{ns}/";

    public async Task<IReadOnlyList<RestorableSnapshot>> ListSnapshotsAsync(CancellationToken ct)
    {
        string prefix = SnapshotRefPrefix(Namespace);
        IReadOnlyList<RepositoryRef> refs = await Repository.ListRefsAsync(prefix, ct).ConfigureAwait(false);
        var snapshots = new ConcurrentBag<RestorableSnapshot>();
        var ids = refs.Select(r => r.ManifestId).Distinct(StringComparer.Ordinal).ToList();
        await Parallel.ForEachAsync(ids, new ParallelOptions { MaxDegreeOfParallelism = ManifestParallelism, CancellationToken = ct }, async (id, c) =>
        {
            if (await ReadManifestAsync(id, c).ConfigureAwait(false) is not { } m)
            {
                return;
            }
            string? why = m.Kind != BackupKind.StoreSnapshot ? $"it is a {BackupKinds.ToName(m.Kind)} backup"
                : !string.Equals(m.Namespace, Namespace, StringComparison.Ordinal) ? $"it belongs to namespace '{m.Namespace}'"
                : m.Wal is null ? "its manifest records no WAL position"
                : m.Files.Count == 0 ? "it holds no files"
                : m.Files.Any(f => !f.Path.StartsWith("db/", StringComparison.Ordinal)) ? "it holds files outside 'db/'"
                : null;
            if (why is not null)
            {
                Ignore($"snapshot backup {id} (ref under '{prefix}'): {why}");
                return;
            }
            snapshots.Add(new RestorableSnapshot
            {
                Id = id,
                CreatedAt = m.CreatedAt,
                CompletedAt = m.CompletedAt,
                Wal = m.Wal!,
                Store = m.Store,
                Files = m.Files.Select(f => new ManifestFile(f.Path["db/".Length..], f.Size, f.Sha256) { Metadata = f.Metadata }).ToList(),
                Location = $"{Repository.Location} backup {id}",
            });
        }).ConfigureAwait(false);
        return snapshots.OrderBy(s => s.CreatedAt).ThenBy(s => s.Id, StringComparer.Ordinal).ToList();
    }

    public async Task<IReadOnlyList<ArchivedSegment>> ListSegmentsAsync(CancellationToken ct)
    {
        string prefix = WalRepositoryShip.RefPrefix(Namespace);
        var refs = new List<(long SegmentId, int Generation, string ManifestId, string RefName)>();
        foreach (RepositoryRef r in await Repository.ListRefsAsync(prefix, ct).ConfigureAwait(false))
        {
            if (WalRepositoryShip.TryParseRef(r.Name[prefix.Length..], out long id, out int generation))
            {
                refs.Add((id, generation, r.ManifestId, r.Name));
            }
            else if (WalPartialShip.TryParseRef(r.Name[prefix.Length..], out long partialId, out _))
            {
                refs.Add((partialId, PartialGeneration, r.ManifestId, r.Name));
            }
        }
        var found = new ConcurrentBag<ArchivedSegment>();
        await Parallel.ForEachAsync(refs, new ParallelOptions { MaxDegreeOfParallelism = ManifestParallelism, CancellationToken = ct }, async (r, c) =>
        {
            if (await ReadManifestAsync(r.ManifestId, c).ConfigureAwait(false) is not { } m)
            {
                return;
            }
            RepositorySegment? s = m.Segment;
            RepositoryFile? file = m.Files.Count == 1 ? m.Files[0] : null;
            string? why = m.Kind != BackupKind.WalSegment ? $"it is a {BackupKinds.ToName(m.Kind)} backup"
                : !string.Equals(m.Namespace, Namespace, StringComparison.Ordinal) ? $"it belongs to namespace '{m.Namespace}'"
                : s is null ? "its manifest records no segment"
                : s.SegmentId != r.SegmentId ? $"its manifest describes segment {s.SegmentId}"
                : r.Generation == PartialGeneration && s.Sealed ? "its manifest describes a sealed segment under a partial's ref"
                : r.Generation != PartialGeneration && (s.Generation ?? 0) != r.Generation ? $"its manifest describes generation {s.Generation ?? 0}"
                : s.FirstLogIndex < 0 || s.EntryCount < 0 ? "its manifest records a negative log index or count"
                : file is null ? $"it holds {m.Files.Count} files, not one"
                : null;
            if (why is not null)
            {
                Ignore($"segment backup {r.ManifestId} (ref '{r.RefName}'): {why}");
                return;
            }
            string location = $"{Repository.Location} backup {r.ManifestId} ({r.RefName})";
            _segmentManifests[location] = r.ManifestId;
            found.Add(new ArchivedSegment
            {
                SegmentId = s!.SegmentId,
                Sealed = s.Sealed,
                FirstLogIndex = s.FirstLogIndex,
                EntryCount = s.EntryCount,
                CreatedAt = s.CreatedAt ?? m.CreatedAt,
                SealedAt = s.Sealed ? s.LastModifiedAt : null,
                ObservedAt = s.Sealed ? null : s.ObservedAt,
                Bytes = file!.Size,
                LayoutBytes = !s.Sealed && s.SegmentSize is long size && size > file.Size ? size : null,
                Sha256 = file.Sha256,
                Location = location,
                FileName = SegmentName(file.Path, s.SegmentId),
                Version = s.Version ?? 0,
                PayloadFormat = Enum.TryParse(s.PayloadFormat, out Wal.WalPayloadFormat f) ? f : Wal.WalPayloadFormat.Opaque,
                LastLogIndex = s.LastLogIndex is long last && last >= s.FirstLogIndex - 1 ? last : s.FirstLogIndex + s.EntryCount - 1,
                FirstRecordTime = s.FirstRecordTime,
                LastRecordTime = s.LastRecordTime,
                Generation = r.Generation == PartialGeneration ? 0 : r.Generation,
                LiveFrom = s.LiveFrom,
                LogIndexGaps = s.LogIndexGaps?.Where(g => g.After < g.Next).ToList(),
                Metadata = file.Metadata,
            });
        }).ConfigureAwait(false);
        return Deduplicate(found);
    }

    /// <summary>Marks a partial's ref while refs are collected (partials are of generation 0).</summary>
    private const int PartialGeneration = -1;

    /// <summary>The segment's own file name from its stored path ("wal/000000043.seg"); a path
    /// that is not a segment name of this id falls back to "%09d.seg".</summary>
    private static string? SegmentName(string storedPath, long segmentId)
    {
        string name = storedPath[(storedPath.LastIndexOf('/') + 1)..];
        return Wal.WalFormat.TryParseSegmentFileName(name, out long id) && id == segmentId ? name : null;
    }

    public Task<Stream> OpenSnapshotFileAsync(RestorableSnapshot snapshot, ManifestFile file, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        ArgumentNullException.ThrowIfNull(file);
        if (!_manifests.TryGetValue(snapshot.Id, out RepositoryManifest? m))
        {
            throw new InvalidInputException("SnapshotNotListed", $"Snapshot '{snapshot.Id}' was not listed by the {Description}.", snapshot.Id);
        }
        string path = "db/" + file.Path;
        RepositoryFile stored = m.Files.FirstOrDefault(f => string.Equals(f.Path, path, StringComparison.Ordinal))
            ?? throw new NotFoundException("BackupFileMissing", $"Backup {snapshot.Id} in {Repository.Location} holds no file '{path}'.", path);
        return Task.FromResult<Stream>(Produce(m, stored, ct));
    }

    public Task<Stream> OpenSegmentAsync(ArchivedSegment segment, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(segment);
        if (!_segmentManifests.TryGetValue(segment.Location, out string? id) || !_manifests.TryGetValue(id, out RepositoryManifest? m))
        {
            throw new InvalidInputException("SegmentNotListed", $"Segment {segment.SegmentId} ('{segment.Location}') was not listed by the {Description}.", segment.Location);
        }
        return Task.FromResult<Stream>(Produce(m, m.Files[0], ct));
    }

    public void Dispose() => _owned?.Dispose();

    /// <summary>The manifest, or null when it is damaged (left out and named in <see cref="Ignored"/>:
    /// one damaged backup must not stop a restore from the others).</summary>
    private async Task<RepositoryManifest?> ReadManifestAsync(string id, CancellationToken ct)
    {
        if (_manifests.TryGetValue(id, out RepositoryManifest? cached))
        {
            return cached;
        }
        RepositoryManifest m;
        try
        {
            m = await Repository.ReadManifestAsync(id, ct).ConfigureAwait(false);
        }
        catch (RepositoryIntegrityException e) when (e.ErrorId != "ManifestTooNew")
        {
            Ignore($"backup {id}: its manifest is damaged ({e.Message})");
            return null;
        }
        return _manifests.GetOrAdd(id, m);
    }

    private ChannelStream Produce(RepositoryManifest manifest, RepositoryFile file, CancellationToken ct) =>
        new((sink, c) => Repository.RestoreFileAsync(manifest, file, sink, c), ct);

    private void Ignore(string why)
    {
        lock (_ignored)
        {
            _ignored.Add(why);
        }
    }

    /// <summary>Copies of one sealed id (shipped twice) must be the same bytes: a disagreement is an
    /// integrity error, never a silent pick; identical copies count once. Unsealed partials stay,
    /// each with its own observation time.</summary>
    private List<ArchivedSegment> Deduplicate(IEnumerable<ArchivedSegment> found)
    {
        var result = new List<ArchivedSegment>();
        foreach (IGrouping<(long Id, int Generation), ArchivedSegment> group in found.GroupBy(s => (s.SegmentId, s.Generation)).OrderBy(g => g.Key))
        {
            var sealedCopies = group.Where(s => s.Sealed).OrderBy(s => s.Location, StringComparer.Ordinal).ToList();
            if (sealedCopies.Count > 0)
            {
                ArchivedSegment first = sealedCopies[0];
                ArchivedSegment? other = sealedCopies.FirstOrDefault(s => !string.Equals(s.Sha256, first.Sha256, StringComparison.Ordinal) || s.FirstLogIndex != first.FirstLogIndex || s.EntryCount != first.EntryCount);
                if (other is not null)
                {
                    throw new IntegrityException("WalSegmentConflict",
                        $"Segment {group.Key.Id} (generation {group.Key.Generation}) of namespace '{Namespace}' is archived twice in {Repository.Location} with different content: '{first.Location}' (log indexes {first.FirstLogIndex}..{first.LastLogIndex}, SHA-256 {first.Sha256}) and '{other.Location}' (log indexes {other.FirstLogIndex}..{other.LastLogIndex}, SHA-256 {other.Sha256}). Find out which is right before restoring; nothing was written.",
                        other.Location);
                }
                result.Add(first);
            }
            result.AddRange(group.Where(s => !s.Sealed).OrderBy(s => s.Location, StringComparer.Ordinal));
        }
        return result;
    }

    /// <summary>A read-only stream fed by a producer writing into a bounded channel. The reader sees
    /// the producer's failure as the read's exception, and end-of-stream only after the producer
    /// finished without one. Disposing the reader cancels the producer. Writes are copied into
    /// pooled buffers that the reader returns once consumed; at most <see cref="Depth"/> wait in
    /// the channel, so a stream holds a few decoded frames whatever the file size.</summary>
    private sealed class ChannelStream : Stream
    {
        private const int Depth = 2;
        private readonly Channel<Piece> _channel = Channel.CreateBounded<Piece>(new BoundedChannelOptions(Depth) { SingleReader = true, SingleWriter = true });
        private readonly CancellationTokenSource _cts;
        private readonly Task _producer;
        private Piece _current = new([], 0);
        private int _offset;
        private bool _ended;

        private readonly record struct Piece(byte[] Buffer, int Length);

        public ChannelStream(Func<Stream, CancellationToken, Task> produce, CancellationToken ct)
        {
            _cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
            CancellationToken token = _cts.Token;
            _producer = Task.Run(async () =>
            {
                try
                {
                    await produce(new Sink(_channel.Writer, token), token).ConfigureAwait(false);
                    _channel.Writer.TryComplete();
                }
                catch (Exception e)
                {
                    _channel.Writer.TryComplete(e);
                }
            }, CancellationToken.None);
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (buffer.IsEmpty)
            {
                return 0;
            }
            while (_offset >= _current.Length)
            {
                if (_ended)
                {
                    return 0;
                }
                ReleaseCurrent();
                // Throws the producer's exception when it failed.
                if (!await _channel.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    _ended = true;
                    return 0;
                }
                if (_channel.Reader.TryRead(out Piece next))
                {
                    _current = next;
                    _offset = 0;
                }
            }
            int n = Math.Min(buffer.Length, _current.Length - _offset);
            _current.Buffer.AsMemory(_offset, n).CopyTo(buffer);
            _offset += n;
            return n;
        }

        private void ReleaseCurrent()
        {
            if (_current.Buffer.Length > 0)
            {
                ArrayPool<byte>.Shared.Return(_current.Buffer);
            }
            _current = new([], 0);
            _offset = 0;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _cts.Cancel();
                _channel.Writer.TryComplete();
                ReleaseCurrent();
                _ = _producer.ContinueWith(_ =>
                {
                    while (_channel.Reader.TryRead(out Piece left))
                    {
                        ArrayPool<byte>.Shared.Return(left.Buffer);
                    }
                    _cts.Dispose();
                }, TaskScheduler.Default);
            }
            base.Dispose(disposing);
        }

        /// <summary>The producer's end: each write is copied into the channel, waiting while it is full.</summary>
        private sealed class Sink(ChannelWriter<Piece> writer, CancellationToken token) : Stream
        {
            public override bool CanRead => false;
            public override bool CanSeek => false;
            public override bool CanWrite => true;
            public override long Length => throw new NotSupportedException();
            public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

            public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

            public override void Write(ReadOnlySpan<byte> buffer)
            {
                if (!buffer.IsEmpty)
                {
                    Piece piece = Copy(buffer);
                    try
                    {
                        writer.WriteAsync(piece, token).AsTask().GetAwaiter().GetResult();
                    }
                    catch
                    {
                        ArrayPool<byte>.Shared.Return(piece.Buffer);
                        throw;
                    }
                }
            }

            public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
                WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

            public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
            {
                if (!buffer.IsEmpty)
                {
                    using var linked = CancellationTokenSource.CreateLinkedTokenSource(token, cancellationToken);
                    Piece piece = Copy(buffer.Span);
                    try
                    {
                        await writer.WriteAsync(piece, linked.Token).ConfigureAwait(false);
                    }
                    catch
                    {
                        ArrayPool<byte>.Shared.Return(piece.Buffer);
                        throw;
                    }
                }
            }

            private static Piece Copy(ReadOnlySpan<byte> bytes)
            {
                byte[] buffer = ArrayPool<byte>.Shared.Rent(bytes.Length);
                bytes.CopyTo(buffer);
                return new Piece(buffer, bytes.Length);
            }

            public override void Flush()
            {
            }

            public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;
            public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
            public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
            public override void SetLength(long value) => throw new NotSupportedException();
        }
    }
}
