using PSBackup.Engine.Repository;

namespace PSBackup.Engine.Wal;

/// <summary>How far a namespace's archive is behind its live WAL (issue 16 "lag is visible").</summary>
/// <param name="LiveLastLogIndex">The live WAL's last valid record (null: no record).</param>
/// <param name="ArchivedLastLogIndex">The last record the archive holds, sealed or in a partial (null: nothing archived).</param>
/// <param name="Records">Log indexes written but not archived (0: current).</param>
/// <param name="Lag">The age of the oldest unarchived record (0: current): its own time (UnisonDB
/// HLC) where the payload carries one, else the time since the archive was last known current (the
/// newest partial's observation or sealed segment's seal), an upper bound.</param>
public sealed record WalLagInfo(long? LiveLastLogIndex, long? ArchivedLastLogIndex, long Records, TimeSpan Lag);

/// <summary>Measures <see cref="WalLagInfo"/> from the live <c>wal/</c> and the archive's newest
/// segment or partial: a directory listing, one archived segment (or manifest) and the live
/// segments from the newest back to the first unarchived record, walked frame by frame without CRCs.</summary>
public static class WalLag
{
    /// <summary>The archive's newest state: its last record and when it was known current.</summary>
    private readonly record struct ArchiveEnd(long? LastLogIndex, DateTimeOffset? AsOf);

    /// <summary>Lag against the local backup root <paramref name="backupRoot"/> (<c>&lt;dataDir&gt;/backups/&lt;ns&gt;</c>, any folder below it).</summary>
    public static WalLagInfo? MeasureLocal(string walDir, string ns, string backupRoot, DateTimeOffset now) =>
        Measure(walDir, ns, LocalEnd(backupRoot, ns), now);

    /// <summary>Lag against a repository's WAL refs of <paramref name="ns"/>.</summary>
    public static async Task<WalLagInfo?> MeasureRepositoryAsync(string walDir, string ns, Repository.Repository repo, DateTimeOffset now, CancellationToken ct)
    {
        string prefix = WalRepositoryShip.RefPrefix(ns);
        long best = -1;
        string? manifest = null;
        DateTimeOffset? observed = null;
        bool bestSealed = false;
        foreach (RepositoryRef r in await repo.ListRefsAsync(prefix, ct).ConfigureAwait(false))
        {
            string rest = r.Name[prefix.Length..];
            if (WalRepositoryShip.TryParseRef(rest, out long id, out _))
            {
                if (id > best || (id == best && !bestSealed))
                {
                    (best, manifest, bestSealed, observed) = (id, r.ManifestId, true, null);
                }
            }
            else if (WalPartialShip.TryParseRef(rest, out long pid, out DateTimeOffset at) && (pid > best || (pid == best && !bestSealed && (observed is null || at > observed))))
            {
                (best, manifest, bestSealed, observed) = (pid, r.ManifestId, false, at);
            }
        }
        ArchiveEnd end = default;
        if (manifest is not null)
        {
            RepositoryManifest m = await repo.ReadManifestAsync(manifest, ct).ConfigureAwait(false);
            if (m.Segment is { } s)
            {
                end = new ArchiveEnd(s.LastLogIndex ?? s.FirstLogIndex + s.EntryCount - 1, s.Sealed ? s.LastModifiedAt : s.ObservedAt ?? observed);
            }
        }
        return Measure(walDir, ns, end, now);
    }

    private static ArchiveEnd LocalEnd(string backupRoot, string ns)
    {
        if (!Directory.Exists(backupRoot))
        {
            return default;
        }
        long best = -1;
        string? path = null;
        DateTimeOffset? observed = null;
        bool bestSealed = false;
        foreach (string file in SafePath.FilesBelowWithoutLinks(backupRoot, "0*"))
        {
            string name = Path.GetFileName(file);
            if (WalFormat.TryParsePartialFileName(name, out long pid, out _, out DateTimeOffset at))
            {
                if (pid > best || (pid == best && !bestSealed && (observed is null || at > observed)))
                {
                    (best, path, bestSealed, observed) = (pid, file, false, at);
                }
            }
            else if (WalFormat.TryParseArchivedFileName(name, out long id, out _, out _) && (id > best || (id == best && !bestSealed)))
            {
                (best, path, bestSealed, observed) = (id, file, true, null);
            }
        }
        if (path is null)
        {
            return default;
        }
        try
        {
            WalSegmentInfo info = WalSegmentReader.Summarize(path, ns, best);
            return new ArchiveEnd(info.LastLogIndex ?? info.FirstLogIndex - 1, bestSealed ? info.LastModifiedAt : observed);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or PSBackupException)
        {
            return default;
        }
    }

    private static WalLagInfo? Measure(string walDir, string ns, ArchiveEnd archive, DateTimeOffset now)
    {
        if (!Directory.Exists(walDir))
        {
            return null;
        }
        WalDirectoryListing listing = WalDirectory.List(walDir);
        long? liveLast = null;
        DateTimeOffset? oldestUnarchived = null;
        DateTimeOffset? created = null; // the oldest examined segment's creation: its records are younger
        // From the newest segment back to the one holding the first unarchived record.
        for (int i = listing.Segments.Count - 1; i >= 0; i--)
        {
            (long id, string path) = listing.Segments[i];
            WalSegmentInfo info;
            try
            {
                info = WalSegmentReader.Summarize(path, ns, id);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotFoundException)
            {
                continue;
            }
            if (info.EntryCount == 0)
            {
                continue;
            }
            created = info.CreatedAt;
            liveLast ??= info.LastLogIndex ?? info.FirstLogIndex + info.EntryCount - 1;
            long archivedLast = archive.LastLogIndex ?? long.MinValue;
            if ((info.LastLogIndex ?? info.FirstLogIndex + info.EntryCount - 1) <= archivedLast)
            {
                break;
            }
            if (info.PayloadFormat != WalPayloadFormat.Opaque)
            {
                foreach (WalRecord r in WalSegmentReader.ReadRecords(path))
                {
                    if (r.LogIndex > archivedLast && r.Time is { } t)
                    {
                        oldestUnarchived = oldestUnarchived is { } o && o < t ? o : t;
                        break;
                    }
                }
            }
            if (info.FirstLogIndex <= archivedLast + 1)
            {
                break;
            }
        }
        long records = liveLast is long l ? Math.Max(0, l - (archive.LastLogIndex ?? 0)) : 0;
        TimeSpan lag = TimeSpan.Zero;
        if (records > 0)
        {
            DateTimeOffset? since = oldestUnarchived ?? archive.AsOf ?? created;
            lag = since is { } s && now > s ? now - s : TimeSpan.Zero;
        }
        return new WalLagInfo(liveLast, archive.LastLogIndex, records, lag);
    }
}
