using System.Globalization;
using PSBackup.Engine.Repository;

namespace PSBackup.Engine.Wal;

/// <summary>The active segment's valid prefix as the shipper saw it: the validating scan's result
/// and when it ended (every record of the prefix was in the live WAL by then).</summary>
internal sealed record ActivePrefix(WalSegmentInfo Info, DateTimeOffset ObservedAt);

/// <summary>Partials: the valid prefix of the active (newest, unsealed) segment, archived so the
/// recovery point does not wait for the segment to fill (SPEC §2 "RPO"). Only records whose frame
/// and CRC check out are archived, cut at a record boundary; a torn tail never is.</summary>
internal static class WalPartialShip
{
    /// <summary>The newest segment of <paramref name="walDir"/> when it is active, holds at least
    /// one valid record and has an id above <paramref name="afterSegmentId"/>, validated in full
    /// (every record's CRC up to the first invalid one); else null.</summary>
    public static ActivePrefix? FindActive(string walDir, string ns, long afterSegmentId, OperationContext context)
    {
        WalDirectoryListing listing = WalDirectory.List(walDir);
        if (listing.Segments.Count == 0)
        {
            return null;
        }
        (long id, string path) = listing.Segments[^1];
        if (id <= afterSegmentId)
        {
            return null;
        }
        // A sealed header (its CRC checked) is never active, whatever its records: the full read
        // below would return null for it too, after parsing every record (10 ms for 16 MiB, on every
        // run whose newest segment is sealed, as in catch-up and right after a rotation).
        if (HeaderSealed(path, ns, id))
        {
            return null;
        }
        WalSegmentInfo? info = InspectSettled(path, ns, id, context.CancellationToken);
        if (info is null)
        {
            return null; // removed since the listing, or not initialised yet: nothing active to archive now
        }
        DateTimeOffset observed = context.UtcNow;
        // Damage first: a damaged header reads as no records, and a segment that cannot be read
        // must never pass for an empty one (nothing archived, nothing said).
        if (!info.Valid && !info.Sealed)
        {
            throw Corrupt(id, path, info);
        }
        if (info.Sealed || info.EntryCount == 0)
        {
            return null;
        }
        return new ActivePrefix(info, observed);
    }

    /// <summary>The newest segment's bytes are still being written. walfs rewrites the header field
    /// by field and its CRC last (<c>pkg/walfs/segment.go:797-804</c>), and copies a record before
    /// counting it, so one read can catch a header between its fields and its CRC, or a record
    /// half copied with the next already behind it. What such a read reports as damage is read
    /// again (at most four times, 10-250 ms apart); only damage that every read sees is damage.
    /// A header of zeros is a segment walfs created but has not initialised yet (null).</summary>
    internal static WalSegmentInfo? InspectSettled(string path, string ns, long id, CancellationToken ct)
    {
        int[] waits = [10, 50, 250];
        for (int attempt = 0; ; attempt++)
        {
            WalSegmentInfo info;
            try
            {
                info = WalSegmentReader.Inspect(path, ns, id);
            }
            catch (NotFoundException)
            {
                return null;
            }
            if (info.Valid || info.Sealed)
            {
                return info;
            }
            if (info.Error is { } e && e.StartsWith("Bad magic 0x00000000 ", StringComparison.Ordinal) && info.ErrorOffset == 0 && HeaderIsZero(path))
            {
                return null;
            }
            if (attempt == waits.Length || info.Error?.StartsWith(WalSegmentReader.UnreadablePrefix, StringComparison.Ordinal) == true)
            {
                return info;
            }
            ct.WaitHandle.WaitOne(waits[attempt]);
            ct.ThrowIfCancellationRequested();
        }
    }

    /// <summary>The segment's header is readable (magic, version, CRC) and says sealed. A missing
    /// file or an unreadable header is not sealed here: the full read decides.</summary>
    internal static bool HeaderSealed(string path, string ns, long id)
    {
        try
        {
            return WalSegmentReader.Inspect(path, ns, id, headerOnly: true).Sealed;
        }
        catch (NotFoundException)
        {
            return false;
        }
    }

    private static bool HeaderIsZero(string path)
    {
        try
        {
            using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            byte[] header = new byte[WalFormat.HeaderSize];
            int read = f.ReadAtLeast(header, header.Length, throwOnEndOfStream: false);
            return header.AsSpan(0, read).IndexOfAnyExcept((byte)0) < 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>In raft mode the only way the active segment can carry an id archived sealed is log
    /// truncation (walfs <c>TruncateTo</c> unseals it, or <c>WALog.Truncate</c> deletes it and the id is
    /// created again: <c>pkg/walfs/segment.go:1338-1412</c>, <c>walog.go:759-820</c>). When its records
    /// are not a prefix of the archived copy (another first record, or records later than the
    /// archived copy's last), they are a new history that a partial cannot archive yet (partials of
    /// a rewritten id are not supported): WalActiveRewritten (exit 5) says so instead of skipping them
    /// silently. The sealed segments were shipped before; once the segment is sealed again it ships
    /// as a new generation.</summary>
    internal static void RequireNotRewritten(WalSegmentInfo active, long archivedFirst, DateTimeOffset? archivedFirstTime, long? archivedLast, DateTimeOffset? archivedLastTime, string archivedAt)
    {
        if (active.Mode != "raft" || active.EntryCount == 0)
        {
            return;
        }
        bool prefix = active.FirstLogIndex == archivedFirst && active.FirstRecordTime == archivedFirstTime &&
            active.LastLogIndex <= archivedLast && (active.LastRecordTime is null || archivedLastTime is null || active.LastRecordTime <= archivedLastTime);
        if (prefix)
        {
            return;
        }
        throw new ConflictException("WalActiveRewritten",
            $"The active segment {active.SegmentId} ({active.Path}) was rewritten by raft log truncation: it holds log indexes {active.FirstLogIndex}..{active.LastLogIndex}, not a prefix of segment {active.SegmentId} as archived in {archivedAt} (log indexes {archivedFirst}..{archivedLast}). A partial of a rewritten segment id is not archived (not supported yet), so these records exist only in the live WAL until the segment is sealed; its sealed copy then ships as a new generation. The sealed segments before it were shipped.",
            active.Path);
    }

    /// <summary>WalSegmentCorrupt (exit 4) for the active segment: its id, file, offset and reason.</summary>
    internal static IntegrityException Corrupt(long id, string path, WalSegmentInfo info) =>
        new("WalSegmentCorrupt",
            $"The active segment {id} ({path}) is damaged at offset {info.ErrorOffset}: {info.Error}. No partial was archived (the sealed segments before it were shipped as usual). Check the database's WAL: copy the segment aside and, once the database is stopped, repair or remove it; Get-WalSegment shows the segment's state.",
            path);

    /// <summary>The result line of a partial.</summary>
    public static ShippedSegment Result(string ns, ActivePrefix active, string path, ContentDigest digest, bool alreadyPresent) =>
        new(ns, active.Info.SegmentId, path, digest.Bytes, digest.Sha256, alreadyPresent)
        {
            Partial = true,
            ObservedAt = active.ObservedAt,
            EntryCount = active.Info.EntryCount,
            LastLogIndex = active.Info.LastLogIndex,
            LastRecordTime = active.Info.LastRecordTime,
        };

    private static string Describe(WalSegmentInfo s) =>
        $"partial of active WAL segment {s.SegmentId} ({s.EntryCount} record{(s.EntryCount == 1 ? "" : "s")}, log index {s.FirstLogIndex}..{s.LastLogIndex})";

    // ---------------------------------------------------------------- local backup dir

    /// <summary>Archives the prefix as <c>&lt;segment name&gt;.partial-&lt;observed&gt;</c> in
    /// <paramref name="destDir"/>: a walfs active segment of the live file's size (header, the valid
    /// records, zero fill), written to a temp name, fsynced, verified and renamed; older partials of
    /// the segment are then removed (the new one holds everything they held). The same prefix
    /// already archived is reported AlreadyPresent. Null when ShouldProcess declined.</summary>
    public static async Task<ShippedSegment?> ShipToFolderAsync(string destDir, string ns, ActivePrefix active, OperationContext context, Action ensureDirectory)
    {
        CancellationToken ct = context.CancellationToken;
        WalSegmentInfo s = active.Info;
        List<(string Path, DateTimeOffset ObservedAt)> existing = LocalPartials(destDir, s.FileName);
        if (File.Exists(Path.Combine(destDir, s.FileName)))
        {
            // Archived sealed under the same name already: nothing partial to add, unless raft log
            // truncation rewrote the id (its newest generation is what the active one must continue).
            string newest = Path.Combine(destDir, s.FileName);
            for (int g = 1; File.Exists(Path.Combine(destDir, WalFormat.GenerationFileName(s.FileName, g))); g++)
            {
                newest = Path.Combine(destDir, WalFormat.GenerationFileName(s.FileName, g));
            }
            if (TrySummarize(newest, ns, s.SegmentId) is { } held)
            {
                RequireNotRewritten(s, held.FirstLogIndex, held.FirstRecordTime, held.LastLogIndex, held.LastRecordTime, $"'{newest}'");
            }
            return null;
        }
        if (existing.Count > 0)
        {
            (string newestPath, DateTimeOffset _) = existing[^1];
            WalSegmentInfo? held = TrySummarize(newestPath, ns, s.SegmentId);
            if (held is { Sealed: false } && held.CreatedAt == s.CreatedAt && held.FirstLogIndex == s.FirstLogIndex &&
                held.EntryCount == s.EntryCount && held.ValidBytes == s.ValidBytes)
            {
                ContentDigest same = await FileCopy.HashAsync(newestPath, ct).ConfigureAwait(false);
                return Result(ns, active with { ObservedAt = existing[^1].ObservedAt }, newestPath, same, alreadyPresent: true);
            }
        }
        string dest = Path.Combine(destDir, WalFormat.PartialFileName(s.FileName, active.ObservedAt));
        if (!context.ShouldProcess(dest, "Ship " + Describe(s)))
        {
            return null;
        }
        ensureDirectory();
        string temp = dest + ".tmp";
        Durable.TryDelete(temp);
        ContentDigest digest;
        try
        {
            await using (WalPrefixStream prefix = WalPrefixStream.Open(s))
            await using (var output = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.Asynchronous))
            {
                digest = await FileCopy.CopyAsync(prefix, output, ct).ConfigureAwait(false);
                // The rest of the preallocated segment, as walfs leaves it: zeros (sparse where the file system can).
                output.SetLength(Math.Max(s.Bytes, s.ValidBytes));
                output.Flush(flushToDisk: true);
            }
            WalSegmentInfo check = WalSegmentReader.Inspect(temp, ns, s.SegmentId);
            if (!check.Valid || check.Sealed || check.TornTail || check.FirstLogIndex != s.FirstLogIndex || check.EntryCount != s.EntryCount)
            {
                throw new IntegrityException("WalShipVerifyFailed",
                    $"The partial copy of segment {s.SegmentId} failed verification ({check.Error ?? $"{check.EntryCount} records from {check.FirstLogIndex}, sealed={check.Sealed}"}); nothing was archived. Check the backup disk, then ship again.",
                    dest);
            }
            FileMetadata.TryRead(s.Path)?.WithoutTime().TryApply(temp); // private like the live segment
            Durable.CommitFile(temp, dest);
        }
        catch (Exception ex)
        {
            Durable.TryDelete(temp);
            if (ex is IOException or UnauthorizedAccessException)
            {
                throw new OperationFailedException("WalShipFailed",
                    $"Shipping the partial of segment {s.SegmentId} to '{dest}' failed: {ex.Message} Nothing was left under the final name; fix the cause and ship again.",
                    dest, ex);
            }
            throw;
        }
        foreach ((string older, DateTimeOffset _) in existing)
        {
            Durable.TryDelete(older);
        }
        return Result(ns, active, dest, new ContentDigest(new FileInfo(dest).Length, digest.Sha256), alreadyPresent: false);
    }

    /// <summary>Partials of <paramref name="segmentFileName"/> in <paramref name="dir"/>, oldest first.</summary>
    public static List<(string Path, DateTimeOffset ObservedAt)> LocalPartials(string dir, string segmentFileName)
    {
        var found = new List<(string, DateTimeOffset)>();
        if (!Directory.Exists(dir))
        {
            return found;
        }
        foreach (string path in Directory.EnumerateFiles(dir, segmentFileName + WalFormat.PartialMarker + "*"))
        {
            if (WalFormat.TryParsePartialFileName(Path.GetFileName(path), out _, out string name, out DateTimeOffset observed) &&
                string.Equals(name, segmentFileName, StringComparison.Ordinal))
            {
                found.Add((path, observed));
            }
        }
        found.Sort((a, b) => a.Item2.CompareTo(b.Item2));
        return found;
    }

    /// <summary>-AfterSegmentId as a ship applies it: a script that passes the last shipped id (the
    /// seed's <c>.backups[-1].segmentId</c>) may pass the id of a partial, whose sealed segment is
    /// not archived yet; that sealed segment is shipped anyway, so it is never skipped. Lowered to
    /// just below the oldest segment at or below <paramref name="afterSegmentId"/> that the
    /// namespace's backup root <paramref name="nsRoot"/> holds only as partials (any folder below
    /// it, since a script may ship into a new folder each day; links are not followed).</summary>
    public static long AfterUnsealedPartials(string nsRoot, long afterSegmentId)
    {
        if (afterSegmentId <= 0 || !Directory.Exists(nsRoot))
        {
            return afterSegmentId;
        }
        var partial = new HashSet<long>();
        var whole = new HashSet<long>();
        foreach (string path in SafePath.FilesBelowWithoutLinks(nsRoot, "0*"))
        {
            string name = Path.GetFileName(path);
            if (WalFormat.TryParsePartialFileName(name, out long id, out _, out _))
            {
                partial.Add(id);
            }
            else if (WalFormat.TryParseArchivedFileName(name, out long sealedId, out _, out _))
            {
                whole.Add(sealedId);
            }
        }
        long after = afterSegmentId;
        foreach (long id in partial.Where(id => id <= afterSegmentId && !whole.Contains(id)))
        {
            after = Math.Min(after, id - 1);
        }
        return after;
    }

    /// <summary>Removes the partials of a segment once its sealed copy is archived beside them: the
    /// sealed segment holds every record they hold (SPEC §2: it supersedes them).</summary>
    public static void RemoveSupersededLocal(string dir, string segmentFileName)
    {
        foreach ((string path, DateTimeOffset _) in LocalPartials(dir, segmentFileName))
        {
            Durable.TryDelete(path);
        }
    }

    private static WalSegmentInfo? TrySummarize(string path, string ns, long id)
    {
        try
        {
            return WalSegmentReader.Summarize(path, ns, id);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotFoundException)
        {
            return null;
        }
    }

    // ---------------------------------------------------------------- repository

    /// <summary><c>wal/&lt;ns&gt;/&lt;id:D9&gt;_partial-&lt;observed&gt;</c>.</summary>
    public static string RefName(string ns, long segmentId, DateTimeOffset observedAt) =>
        WalRepositoryShip.RefName(ns, segmentId) + RefMarker + WalFormat.FormatPartialTime(observedAt);

    /// <summary>Between the segment id and the observation time in a partial's ref. Not the local
    /// name's ".partial-": a ref is a key prefix, and "000000012.x" sorts before "000000012/" while a
    /// store that lists by walking folders (s3rver) returns "000000012/" first, which the S3
    /// backend's key-order check rightly refuses; '_' sorts after '/', so both orders agree.</summary>
    public const string RefMarker = "_partial-";

    /// <summary>Parses the part of a WAL ref after <c>wal/&lt;ns&gt;/</c> as a partial's: "000000012_partial-20260102T030405123Z".</summary>
    public static bool TryParseRef(string rest, out long segmentId, out DateTimeOffset observedAt)
    {
        segmentId = 0;
        observedAt = default;
        if (rest.Length != 9 + RefMarker.Length + 19 || !rest[..9].All(char.IsAsciiDigit) ||
            !rest.AsSpan(9).StartsWith(RefMarker, StringComparison.Ordinal) ||
            !WalFormat.TryParsePartialTime(rest[(9 + RefMarker.Length)..], out observedAt))
        {
            return false;
        }
        segmentId = long.Parse(rest.AsSpan(0, 9), NumberStyles.None, CultureInfo.InvariantCulture);
        return true;
    }

    /// <summary>The chunk boundaries (absolute offsets, ascending) of a stored partial, from the
    /// index's chunk lengths; empty when a chunk is not indexed (then nothing is split).</summary>
    public static IReadOnlyList<long> ChunkBoundaries(Repository.Repository repo, RepositoryFile file)
    {
        var boundaries = new List<long>(file.Chunks.Count);
        long at = 0;
        foreach (ChunkId id in file.Chunks)
        {
            if (!repo.Index.TryGet(id, out RepositoryIndex.ChunkLocation location))
            {
                return [];
            }
            at += location.Length;
            boundaries.Add(at);
        }
        return at == file.Size ? boundaries : [];
    }

    /// <summary>Forgets the partials of segment <paramref name="segmentId"/> other than the one just
    /// committed, <paramref name="keep"/> (ref first, then manifest, as retention forgets a backup): with
    /// record times in the payloads (UnisonDB) the newest partial answers every restore an older
    /// one could, so a quiet database shipping every second does not pile up a backup per ship.
    /// Their chunks stay: the newest partial holds them; what only they held is reclaimed by the
    /// next prune. A failure here is left for the next ship.</summary>
    private static async Task ForgetOlderPartialsAsync(Repository.Repository repo, WalRepositorySession? session, string ns, long segmentId, string keep, DateTimeOffset now, CancellationToken ct)
    {
        string prefix = WalRepositoryShip.RefPrefix(ns);
        try
        {
            foreach (RepositoryRef r in await WalRepositoryShip.ListRefsAsync(repo, session, WalRepositoryShip.RefName(ns, segmentId) + RefMarker, now, ct).ConfigureAwait(false))
            {
                if (TryParseRef(r.Name[prefix.Length..], out long id, out _) && id == segmentId && !string.Equals(r.ManifestId, keep, StringComparison.Ordinal))
                {
                    await repo.Backend.DeleteAsync(RepositoryLayout.RefKey(r.Name, r.ManifestId), ct).ConfigureAwait(false);
                    session?.Removed(r.Name, r.ManifestId);
                    await repo.Backend.DeleteAsync(RepositoryLayout.ManifestKey(r.ManifestId), ct).ConfigureAwait(false);
                }
            }
        }
        catch (Exception e) when (e is IOException or PSBackupException)
        {
            // the next ship tries again
        }
    }

    /// <summary>At most this many of a partial's chunk boundaries are reused as forced cuts (the
    /// newest); older forced cuts then merge back into content-defined chunks and are stored once
    /// more, so a manifest stays small on a quiet database that ships a record at a time.</summary>
    public const int MaxSplits = 64;

    /// <summary>Where to cut the next partial (or the sealed segment) of the segment <paramref name="file"/>
    /// is a partial of, so its chunks are cut again exactly: its chunk boundaries, the newest
    /// <see cref="MaxSplits"/>.</summary>
    public static IReadOnlyList<long> Splits(Repository.Repository repo, RepositoryFile file)
    {
        IReadOnlyList<long> boundaries = ChunkBoundaries(repo, file);
        return boundaries.Count <= MaxSplits ? boundaries : boundaries.Skip(boundaries.Count - MaxSplits).ToList();
    }

    /// <summary>Archives the prefix in the repository as its own backup (ref
    /// <see cref="RefName(string, long, DateTimeOffset)"/>), deduplicated against the previous
    /// partial of the same segment. Null when ShouldProcess declined.</summary>
    public static async Task<ShippedSegment?> ShipToRepositoryAsync(Repository.Repository repo, string location, string ns, ActivePrefix active,
        RepositoryManifest? previous, OperationContext context, WalPassClock? clock = null, WalRepositorySession? session = null)
    {
        CancellationToken ct = context.CancellationToken;
        WalSegmentInfo s = active.Info;
        if (previous is { Segment: { } p, Files.Count: 1 } && p.CreatedAt == s.CreatedAt && p.FirstLogIndex == s.FirstLogIndex &&
            p.EntryCount == s.EntryCount && previous.Files[0].Size == s.ValidBytes && p.LastLogIndex == s.LastLogIndex)
        {
            RepositoryFile held = previous.Files[0];
            DateTimeOffset observed = p.ObservedAt ?? previous.CreatedAt;
            return Result(ns, active with { ObservedAt = observed }, RefName(ns, s.SegmentId, observed), new ContentDigest(held.Size, held.Sha256), alreadyPresent: true) with
            {
                Repository = location,
                BackupId = previous.Id,
            };
        }
        string refName = RefName(ns, s.SegmentId, active.ObservedAt);
        if (!context.ShouldProcess($"{location} ({refName})", "Ship " + Describe(s)))
        {
            return null;
        }
        IReadOnlyList<long> splits = [];
        if (previous is { Segment: { } ps, Files.Count: 1 } && ps.CreatedAt == s.CreatedAt && ps.FirstLogIndex == s.FirstLogIndex && previous.Files[0].Size <= s.ValidBytes)
        {
            splits = Splits(repo, previous.Files[0]);
        }
        await using BackupWriter writer = repo.BeginBackup(WalRepositoryShip.SegmentBackupInfo(ns, s, context.UtcNow,
            segment => segment with { Sealed = false, ObservedAt = active.ObservedAt, SegmentSize = s.Bytes }), context.Clock);
        RepositoryFile f;
        await using (WalPrefixStream prefix = WalPrefixStream.Open(s))
        {
            f = await writer.AddWalSegmentAsync("wal/" + s.FileName, prefix, splits, ct).ConfigureAwait(false);
        }
        if (FileMetadata.TryRead(s.Path) is { } metadata)
        {
            writer.SetMetadata("wal/" + s.FileName, metadata.WithoutTime()); // the live segment's time moves on
        }
        clock?.Lap(WalPassPhase.Store);
        BackupCommitResult commit = await writer.CommitAsync(refName, ct).ConfigureAwait(false);
        clock?.Lap(WalPassPhase.Commit);
        if (session is not null)
        {
            session.Added(refName, commit.ManifestId);
            session.PartialCommitted(s.SegmentId, writer.Committed!);
        }
        if (s.PayloadFormat != WalPayloadFormat.Opaque)
        {
            await ForgetOlderPartialsAsync(repo, session, ns, s.SegmentId, commit.ManifestId, context.UtcNow, ct).ConfigureAwait(false);
        }
        clock?.Lap(WalPassPhase.Forget);
        return Result(ns, active, refName, new ContentDigest(f.Size, f.Sha256), alreadyPresent: false) with
        {
            Repository = location,
            BackupId = commit.ManifestId,
            StoredBytes = commit.StoredBytes,
        };
    }
}
