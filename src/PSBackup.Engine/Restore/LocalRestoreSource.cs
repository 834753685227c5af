using PSBackup.Engine.Wal;

namespace PSBackup.Engine.Restore;

/// <summary>The restore source of a namespace's local backup root <c>&lt;dataDir&gt;/backups/&lt;ns&gt;</c>:
/// store snapshots (a file or folder with <c>{path}.manifest.json</c> beside it) and shipped
/// segments (<c>%09d.wal</c>) in any folder below the root.</summary>
/// <remarks>Listing reads manifests and 64-byte segment headers only (an unsealed segment is
/// scanned for its valid prefix); a restore validates every segment it copies in full. Links
/// below the root are never followed, <c>.tmp</c> leftovers are ignored, and anything that
/// cannot be read as a snapshot or segment is left out and named in <see cref="Ignored"/>.</remarks>
public sealed class LocalRestoreSource : IRestoreSource
{
    private const string ManifestSuffix = ".manifest.json";
    private readonly List<string> _ignored = [];

    private LocalRestoreSource(string ns, string backupRoot)
    {
        Namespace = ns;
        BackupRoot = backupRoot;
    }

    public string Namespace { get; }
    public string BackupRoot { get; }
    public string Description => $"backup root '{BackupRoot}'";

    /// <summary>What the last listing left out and why (a corrupt manifest, a snapshot without its
    /// data, an unreadable segment header, a superseded partial).</summary>
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

    /// <summary>The backup root of <paramref name="namespace"/> under <paramref name="dataDir"/>;
    /// it must exist and must not be (or lead through) a link into another namespace's folder.</summary>
    public static LocalRestoreSource Open(string? dataDir, string? @namespace)
    {
        string ns = SafePath.ValidateName(@namespace, "namespace");
        string data = SafePath.RequireDirectory(dataDir, "data directory",
            "Give the database's data directory; its backups are read from <dataDir>/backups/<namespace>.");
        string backups = Path.Combine(data, "backups");
        string root = Path.Combine(backups, ns);
        if (!Directory.Exists(root))
        {
            throw new NotFoundException("BackupRootNotFound",
                $"Namespace '{ns}' has no local backup root '{root}'. Check -DataDir and -Namespace, or create a snapshot with New-StoreSnapshot first.", root);
        }
        SafePath.RejectLinksBelow(backups, root, "namespace backup root");
        return new LocalRestoreSource(ns, root);
    }

    public Task<IReadOnlyList<RestorableSnapshot>> ListSnapshotsAsync(CancellationToken ct) =>
        Task.Run<IReadOnlyList<RestorableSnapshot>>(() =>
        {
            var snapshots = new List<RestorableSnapshot>();
            foreach (string manifestPath in Walk(ct).Where(f => f.EndsWith(ManifestSuffix, StringComparison.Ordinal)))
            {
                string dataPath = manifestPath[..^ManifestSuffix.Length];
                string id = Relative(dataPath);
                BackupManifest manifest;
                try
                {
                    manifest = ManifestIO.Read(manifestPath);
                }
                catch (PSBackupException e)
                {
                    Ignore($"snapshot '{id}': {e.Message}");
                    continue;
                }
                if (!string.Equals(manifest.Kind, "snapshot", StringComparison.Ordinal))
                {
                    continue; // another kind of backup that happens to live here
                }
                bool isFile = File.Exists(dataPath), isDir = Directory.Exists(dataPath);
                if ((!isFile && !isDir) || manifest.Wal is null || manifest.Files.Count == 0 || (isFile && manifest.Files.Count != 1))
                {
                    Ignore($"snapshot '{id}': its manifest has {(manifest.Wal is null ? "no WAL position" : $"{manifest.Files.Count} files")} and its data {(isFile ? "is one file" : isDir ? "is a folder" : "is missing")}");
                    continue;
                }
                snapshots.Add(new RestorableSnapshot
                {
                    Id = id,
                    CreatedAt = manifest.CreatedAt,
                    CompletedAt = manifest.CompletedAt,
                    Wal = manifest.Wal,
                    Store = manifest.Store,
                    // The copies keep the store files' mode and owner (the snapshot made them so): a
                    // restore gives those back, never the time (the copy's own).
                    Files = manifest.Files.Select(f => f with
                    {
                        Metadata = FileMetadata.TryRead(isDir ? SafePath.Combine(dataPath, f.Path, "snapshot file") : dataPath)?.WithoutTime(),
                    }).ToList(),
                    Location = dataPath,
                });
            }
            return snapshots;
        }, ct);

    public Task<IReadOnlyList<ArchivedSegment>> ListSegmentsAsync(CancellationToken ct) =>
        Task.Run<IReadOnlyList<ArchivedSegment>>(() =>
        {
            var found = new List<ArchivedSegment>();
            foreach (string path in Walk(ct))
            {
                string file = Path.GetFileName(path);
                if (WalFormat.TryParsePartialFileName(file, out long partialId, out string segmentName, out DateTimeOffset observed))
                {
                    // A partial: the valid prefix of the then-active segment, observed at the time its name carries.
                    if (Describe(path, partialId) is { Sealed: false } prefix)
                    {
                        found.Add(prefix with { FileName = segmentName, ObservedAt = observed });
                    }
                    continue;
                }
                if (!WalFormat.TryParseArchivedFileName(file, out long id, out string name, out int generation))
                {
                    continue;
                }
                ArchivedSegment? segment = Describe(path, id);
                if (segment is not null)
                {
                    found.Add(segment with { FileName = name, Generation = generation });
                }
            }
            return WithLiveFrom(Deduplicate(found));
        }, ct);

    public Task<Stream> OpenSnapshotFileAsync(RestorableSnapshot snapshot, ManifestFile file, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        ArgumentNullException.ThrowIfNull(file);
        string dataPath = SafePath.Combine(BackupRoot, snapshot.Id, "snapshot path");
        string path = Directory.Exists(dataPath) ? SafePath.Combine(dataPath, file.Path, "snapshot file") : dataPath;
        return Task.FromResult<Stream>(OpenOrNotFound(path, $"snapshot '{snapshot.Id}' file '{file.Path}'"));
    }

    public Task<Stream> OpenSegmentAsync(ArchivedSegment segment, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(segment);
        string path = Path.GetFullPath(segment.Location);
        SafePath.RejectLinksBelow(BackupRoot, path, "archived segment");
        if (!path.StartsWith(Path.TrimEndingDirectorySeparator(BackupRoot) + Path.DirectorySeparatorChar, StringComparison.Ordinal))
        {
            throw new InvalidInputException("InvalidPath", $"Segment '{path}' is not inside {Description}.", path);
        }
        return Task.FromResult<Stream>(OpenOrNotFound(path, $"archived segment {segment.SegmentId}"));
    }

    private static FileStream OpenOrNotFound(string path, string what)
    {
        try
        {
            return FileCopy.OpenRead(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new NotFoundException("BackupFileMissing", $"The {what} '{path}' disappeared after it was listed (retention?). Run the restore again.", path);
        }
    }

    private string Relative(string path) => Path.GetRelativePath(BackupRoot, path).Replace(Path.DirectorySeparatorChar, '/');

    private void Ignore(string why)
    {
        lock (_ignored)
        {
            _ignored.Add(why);
        }
    }

    /// <summary>Every regular file below the root, never through a link and never inside or named
    /// like a <c>.tmp</c> leftover, in ordinal order.</summary>
    private List<string> Walk(CancellationToken ct)
    {
        var pending = new Stack<string>();
        pending.Push(BackupRoot);
        var files = new List<string>();
        while (pending.Count > 0)
        {
            ct.ThrowIfCancellationRequested();
            string dir = pending.Pop();
            foreach (FileSystemInfo entry in new DirectoryInfo(dir).EnumerateFileSystemInfos())
            {
                if (SafePath.IsLink(entry) || entry.Name.EndsWith(".tmp", StringComparison.Ordinal))
                {
                    continue;
                }
                if (entry is DirectoryInfo)
                {
                    pending.Push(entry.FullName);
                }
                else
                {
                    files.Add(entry.FullName);
                }
            }
        }
        files.Sort(StringComparer.Ordinal);
        return files;
    }

    /// <summary>A segment from its header and a walk over its record frames (first and last log
    /// index and record time; no CRCs: the restore validates every segment it copies in full);
    /// null, noted in <see cref="Ignored"/>, when it cannot be read as one.</summary>
    private ArchivedSegment? Describe(string path, long id)
    {
        try
        {
            WalSegmentInfo info = WalSegmentReader.Summarize(path, Namespace, id);
            if (info.Version == 0 || (info.Error is not null && !info.TornTail))
            {
                Ignore($"segment '{Relative(path)}': {info.Error ?? "not a walfs segment"}");
                return null;
            }
            return new ArchivedSegment
            {
                SegmentId = id,
                Sealed = info.Sealed,
                FirstLogIndex = info.FirstLogIndex,
                EntryCount = info.EntryCount,
                LastLogIndex = info.LastLogIndex ?? info.FirstLogIndex - 1,
                CreatedAt = info.CreatedAt,
                SealedAt = info.Sealed ? info.LastModifiedAt : null,
                Bytes = info.Bytes,
                Location = info.Path,
                FileName = info.FileName,
                Version = info.Version,
                PayloadFormat = info.PayloadFormat,
                FirstRecordTime = info.FirstRecordTime,
                LastRecordTime = info.LastRecordTime,
                LogIndexGaps = info.PayloadFormat == Wal.WalPayloadFormat.Opaque ? null : info.LogIndexGaps,
                Metadata = FileMetadata.TryRead(path)?.WithoutTime(), // the archived copy's mode and owner (the live segment's)
            };
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotFoundException)
        {
            Ignore($"segment '{Relative(path)}': {e.Message}");
            return null;
        }
    }

    /// <summary>A generation ≥ 1 (a raft rewrite) became live with its first record written after
    /// the previous generation's last record, else at its seal; read from its records.</summary>
    private static List<ArchivedSegment> WithLiveFrom(List<ArchivedSegment> segments)
    {
        var byKey = segments.Where(s => s.Sealed).GroupBy(s => (s.SegmentId, s.Generation)).ToDictionary(g => g.Key, g => g.First());
        return segments.Select(s =>
        {
            if (s.Generation == 0)
            {
                return s;
            }
            DateTimeOffset? before = byKey.TryGetValue((s.SegmentId, s.Generation - 1), out ArchivedSegment? previous) ? previous.LastRecordTime : null;
            DateTimeOffset? from = s.SealedAt;
            if (before is { } b)
            {
                from = WalSegmentReader.ReadRecords(s.Location).Select(r => r.Time).FirstOrDefault(t => t > b) ?? from;
            }
            return s with { LiveFrom = from };
        }).ToList();
    }

    /// <summary>One entry per id: copies of a sealed segment must agree (a disagreement is an
    /// integrity error, never a silent pick); a sealed copy supersedes unsealed ones (partials);
    /// without one every unsealed copy is kept, each with its own observation time.</summary>
    private List<ArchivedSegment> Deduplicate(List<ArchivedSegment> found)
    {
        var result = new List<ArchivedSegment>();
        foreach (IGrouping<(long Id, int Generation), ArchivedSegment> group in found.GroupBy(s => (s.SegmentId, s.Generation)).OrderBy(g => g.Key))
        {
            var copies = group.ToList();
            var sealedCopies = copies.Where(s => s.Sealed).ToList();
            if (sealedCopies.Count > 0)
            {
                ArchivedSegment first = sealedCopies[0];
                ArchivedSegment? other = sealedCopies.FirstOrDefault(s => s.FirstLogIndex != first.FirstLogIndex || s.EntryCount != first.EntryCount);
                if (other is not null)
                {
                    throw new IntegrityException("WalSegmentConflict",
                        $"Segment {group.Key.Id} (generation {group.Key.Generation}) is archived twice with different content: '{first.Location}' holds log indexes {first.FirstLogIndex}..{first.LastLogIndex}, '{other.Location}' holds {other.FirstLogIndex}..{other.LastLogIndex}. Find out which is right and move the other out of {Description}, then run again.",
                        other.Location);
                }
                // Partials (named as such) a sealed copy supersedes are expected, not worth a note.
                foreach (ArchivedSegment s in copies.Where(s => !s.Sealed && s.ObservedAt is null))
                {
                    Ignore($"segment '{Relative(s.Location)}': an unsealed copy, superseded by the sealed '{Relative(first.Location)}'");
                }
                result.Add(first);
            }
            else
            {
                // Every prefix stays: each proves its records durable by its own observation time.
                result.AddRange(copies.OrderBy(s => s.EntryCount));
            }
        }
        return result;
    }
}
