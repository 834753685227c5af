using System.Runtime.ExceptionServices;
using PSBackup.Engine.Events;

namespace PSBackup.Engine.Wal;

/// <summary>Engine operations behind Get-WalSegment and Invoke-WalShip.</summary>
public static class WalOperations
{
    internal const string ShipActivity = "Ship WAL segments";

    /// <summary>Inspects every segment in <c>&lt;dataDir&gt;/&lt;ns&gt;/wal</c>. With
    /// <see cref="GetWalSegmentOptions.SegmentId"/>, the report holds only that segment (continuity
    /// is still checked over the whole directory).</summary>
    public static Task<WalDirectoryReport> GetSegmentsAsync(GetWalSegmentOptions options, OperationContext context)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(context);
        string ns = SafePath.ValidateName(options.Namespace, "namespace");
        if (options.SegmentId is < 0)
        {
            throw new InvalidInputException("InvalidSegmentId", $"The segment id {options.SegmentId} is negative. Give a segment id of 0 or more.", options.SegmentId.ToString());
        }
        string walDir = RequireWalDirectory(options.DataDir, ns);
        return Task.Run(() =>
        {
            WalDirectoryReport report = WalDirectory.Scan(walDir, ns, context.CancellationToken,
                (done, total, s) => context.Report("Inspect WAL segments", $"Segment {s.SegmentId}", done, total, s.Path));
            RequireSegments(report.WalDirectory, report.Segments.Count, report.OtherFiles);
            if (options.SegmentId is long wanted)
            {
                WalSegmentInfo? one = report.Segments.FirstOrDefault(s => s.SegmentId == wanted);
                if (one is null)
                {
                    string name = WalFormat.SegmentFileName(wanted, report.Naming ?? WalFormat.SegExtension);
                    throw new NotFoundException("WalSegmentNotFound",
                        $"Segment {wanted} ({name}) is not in '{walDir}'. Run Get-WalSegment without -SegmentId to list the segments present.",
                        Path.Combine(walDir, name));
                }
                report = report with { Segments = [one] };
            }
            return report;
        }, context.CancellationToken);
    }

    /// <summary>Copies sealed segments with id &gt; AfterSegmentId into
    /// <c>&lt;dataDir&gt;/backups/&lt;ns&gt;/&lt;BackupDir&gt;</c>, each verified after the copy; with
    /// <see cref="InvokeWalShipOptions.Repository"/>, ships every sealed segment the repository
    /// does not hold yet (see <see cref="WalRepositoryShip"/>).</summary>
    /// <remarks>Everything is checked before anything is written: the input, every selected
    /// segment's validity, id and log-index continuity, and every destination that already exists
    /// (same content: reported AlreadyPresent; different: refused, never overwritten). Each copy
    /// goes to <c>{dest}.tmp</c>, is verified (structure, sealed, log range, SHA-256) and renamed.
    /// The result's BackupDir is the full destination directory.</remarks>
    public static Task<WalShipResult> ShipAsync(InvokeWalShipOptions options, OperationContext context) =>
        OperationRecorder.RunAsync(new OperationScope { Operation = "Invoke-WalShip", Category = OperationKinds.WalSegment, Namespace = options?.Namespace, Target = options?.Repository?.Location ?? options?.BackupDir, DataDir = options?.DataDir, Repository = options?.Repository },
            context, c => ShipCoreAsync(options!, c, null, null), r => new OperationOutcome(r.Backups.Where(b => !b.AlreadyPresent).Sum(b => b.Bytes)));

    /// <summary>Ships continuously until <see cref="OperationContext.CancellationToken"/> is
    /// cancelled (Ctrl+C, SIGTERM, a service stop): polls the live WAL every
    /// <see cref="WalFollowOptions.Interval"/> and ships partials and newly sealed segments as they
    /// appear (<see cref="WalFollow"/>). <paramref name="shipped"/> gets every item shipped (not
    /// those already archived), <paramref name="status"/> a lag line after every pass and every
    /// failure. Returns normally when cancelled; only bad input ends it with an exception.</summary>
    public static async Task FollowAsync(InvokeWalShipOptions options, WalFollowOptions follow, Action<ShippedSegment> shipped, Action<WalFollowStatus>? status, OperationContext context)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(follow);
        ArgumentNullException.ThrowIfNull(shipped);
        ArgumentNullException.ThrowIfNull(context);
        SafePath.ValidateName(options.Namespace, "namespace");
        if (follow.Interval < TimeSpan.FromMilliseconds(100) || follow.Interval > TimeSpan.FromDays(1))
        {
            throw new InvalidInputException("InvalidInterval",
                $"The interval {follow.Interval} is out of range: give 100ms to 1d (e.g. 1s, 5s, 1min). Shorter polls cost CPU for nothing; a longer one is a cron job.", follow.Interval.ToString());
        }
        if (options.Endpoint is not null)
        {
            throw new InvalidInputException("FollowNeedsLocalWal",
                "Continuous shipping polls the live WAL on this host, so it cannot go through -Endpoint (the server copies sealed segments only). Run it where the data directory is, without -Endpoint.", options.Endpoint.ToString());
        }
        if (options.SealedOnly)
        {
            throw new InvalidInputException("FollowNeedsPartials",
                "Continuous shipping exists to archive the active segment as it grows; -SealedOnly would archive nothing until a segment seals. Drop -SealedOnly, or ship sealed segments from cron instead.", null);
        }
        if (options.AfterSegmentId < 0)
        {
            throw new InvalidInputException("InvalidSegmentId",
                $"AfterSegmentId {options.AfterSegmentId} is negative. Give 0 to ship every sealed segment, or the last segment id already shipped.", options.AfterSegmentId.ToString());
        }
        RequireWalDirectory(options.DataDir, options.Namespace);
        await WalFollow.RunAsync(options, follow, shipped, status, context, ShipCoreAsync).ConfigureAwait(false);
    }

    private static async Task<WalShipResult> ShipCoreAsync(InvokeWalShipOptions options, OperationContext context, WalPassClock? clock, WalRepositorySession? session)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(context);
        CancellationToken ct = context.CancellationToken;

        // 1. Input, before anything is read or written.
        string ns = SafePath.ValidateName(options.Namespace, "namespace");
        if (options.AfterSegmentId < 0)
        {
            throw new InvalidInputException("InvalidSegmentId",
                $"AfterSegmentId {options.AfterSegmentId} is negative. Give 0 to ship every sealed segment, or the last segment id already shipped.",
                options.AfterSegmentId.ToString());
        }
        if (options.DataDir is null)
        {
            throw new InvalidInputException("InvalidPath", "The data directory is empty. Give the database's data directory.", null);
        }
        if (options.Endpoint is not null)
        {
            return await EndpointWalShip.RunAsync(options, ns, context).ConfigureAwait(false);
        }
        if (options.Repository is { } target)
        {
            return await WalRepositoryShip.RunAsync(options, ns, RequireWalDirectory(options.DataDir, ns), target, context, clock,
                session is not null && ReferenceEquals(session.Target, target) ? session : null).ConfigureAwait(false);
        }
        string dataDir = Path.GetFullPath(options.DataDir);
        string backupsRoot = Path.Combine(dataDir, "backups");
        string nsRoot = Path.Combine(backupsRoot, ns);
        string destDir = SafePath.Combine(nsRoot, SafePath.ValidateUserPath(options.BackupDir, "backup dir"), "backup dir");
        // backups/<ns> itself must not lead into another namespace's (or anyone's) folder.
        SafePath.RejectLinksBelow(backupsRoot, nsRoot, "namespace backup root");
        string walDir = RequireWalDirectory(options.DataDir, ns);

        // 2. What to ship: every segment after AfterSegmentId except an active newest one. Only
        // those and the one before them are validated, so shipping stays cheap on a long WAL.
        long after = WalPartialShip.AfterUnsealedPartials(nsRoot, options.AfterSegmentId);
        List<WalSegmentInfo> selected = await Task.Run(() => Select(walDir, ns, after, ct), ct).ConfigureAwait(false);

        // 3. Destinations already there: identical is fine (idempotent re-run), different is refused.
        var present = new Dictionary<long, ContentDigest>();
        var destinations = new Dictionary<long, string>();
        foreach (WalSegmentInfo s in selected)
        {
            ct.ThrowIfCancellationRequested();
            string dest = Path.Combine(destDir, s.FileName);
            if (Directory.Exists(dest))
            {
                throw new ConflictException("WalSegmentConflict",
                    $"'{dest}' is a folder where segment {s.SegmentId} would be archived. Move it away, then ship again.", dest);
            }
            if (!File.Exists(dest) && new FileInfo(dest).LinkTarget is null)
            {
                continue;
            }
            SafePath.RejectLinksBelow(nsRoot, dest, "archived segment");
            ContentDigest source = await FileCopy.HashAsync(s.Path, ct).ConfigureAwait(false);
            ContentDigest existing = await FileCopy.HashAsync(dest, ct).ConfigureAwait(false);
            if (source != existing && s.Mode == "raft")
            {
                // UnisonDB in raft mode rewrote the sealed segment (log truncation): archive it as
                // the next generation beside the older ones, which stay for PITR before the rewrite.
                for (int g = 1; ; g++)
                {
                    string generationPath = Path.Combine(destDir, WalFormat.GenerationFileName(s.FileName, g));
                    if (!File.Exists(generationPath))
                    {
                        destinations[s.SegmentId] = generationPath;
                        break;
                    }
                    ContentDigest archived = await FileCopy.HashAsync(generationPath, ct).ConfigureAwait(false);
                    if (archived == source)
                    {
                        destinations[s.SegmentId] = generationPath;
                        present[s.SegmentId] = archived;
                        break;
                    }
                }
                continue;
            }
            if (source != existing)
            {
                throw new ConflictException("WalSegmentConflict",
                    $"'{dest}' already exists with different content (SHA-256 {existing.Sha256}, {existing.Bytes} bytes) than segment {s.SegmentId} (SHA-256 {source.Sha256}, {source.Bytes} bytes). PSBackup never overwrites an archived segment; investigate, move it away, then ship again.",
                    dest);
            }
            present[s.SegmentId] = existing;
        }

        // 4. Copy, verify, commit; one ShouldProcess per segment.
        var shipped = new List<ShippedSegment>(selected.Count);
        bool dirReady = false;
        for (int i = 0; i < selected.Count; i++)
        {
            ct.ThrowIfCancellationRequested();
            WalSegmentInfo s = selected[i];
            string dest = destinations.GetValueOrDefault(s.SegmentId) ?? Path.Combine(destDir, s.FileName);
            if (present.TryGetValue(s.SegmentId, out ContentDigest already))
            {
                WalPartialShip.RemoveSupersededLocal(destDir, s.FileName);
                shipped.Add(new ShippedSegment(ns, s.SegmentId, dest, already.Bytes, already.Sha256, AlreadyPresent: true) { EntryCount = s.EntryCount, LastLogIndex = s.LastLogIndex, LastRecordTime = s.LastRecordTime });
                context.Report(ShipActivity, $"Segment {s.SegmentId} already archived", i + 1, selected.Count, dest);
                continue;
            }
            if (!context.ShouldProcess(dest, destinations.ContainsKey(s.SegmentId) ? $"Ship WAL segment {s.SegmentId} (rewritten by raft log truncation) as a new generation" : $"Ship WAL segment {s.SegmentId}"))
            {
                continue;
            }
            if (!dirReady)
            {
                CreateDirectoryDurably(destDir);
                SafePath.RejectLinksBelow(nsRoot, destDir, "backup dir");
                dirReady = true;
            }
            context.Report(ShipActivity, $"Copying segment {s.SegmentId}", i, selected.Count, dest);
            ContentDigest digest = await CopyVerifiedAsync(s, dest, ns, ct).ConfigureAwait(false);
            WalPartialShip.RemoveSupersededLocal(destDir, s.FileName);
            shipped.Add(new ShippedSegment(ns, s.SegmentId, dest, digest.Bytes, digest.Sha256, AlreadyPresent: false) { EntryCount = s.EntryCount, LastLogIndex = s.LastLogIndex, LastRecordTime = s.LastRecordTime });
            context.Report(ShipActivity, $"Shipped segment {s.SegmentId}", i + 1, selected.Count, dest);
        }

        // 5. The active segment's valid prefix (a partial), after the sealed segments before it.
        if (!options.SealedOnly && WalPartialShip.FindActive(walDir, ns, after, context) is { } active)
        {
            void Ready()
            {
                if (!dirReady)
                {
                    CreateDirectoryDurably(destDir);
                    SafePath.RejectLinksBelow(nsRoot, destDir, "backup dir");
                    dirReady = true;
                }
            }
            if (await WalPartialShip.ShipToFolderAsync(destDir, ns, active, context, Ready).ConfigureAwait(false) is { } partial)
            {
                shipped.Add(partial);
            }
        }
        return new WalShipResult(ns, destDir, shipped);
    }

    internal static string RequireWalDirectory(string? dataDirectory, string ns)
    {
        string dataDir = SafePath.RequireDirectory(dataDirectory, "data directory", "Give the database's data directory (the folder holding one folder per namespace).");
        string nsDir = Path.Combine(dataDir, ns);
        string walDir = Path.Combine(nsDir, "wal");
        if (!Directory.Exists(walDir))
        {
            throw new NotFoundException("WalDirectoryNotFound", Directory.Exists(nsDir)
                ? $"Namespace folder '{nsDir}' has no WAL directory '{walDir}'. UnisonDB keeps the namespace's segments in <dataDir>/<namespace>/wal; check -DataDir and -Namespace, or whether the database's WAL lives elsewhere."
                : $"Namespace '{ns}' has no folder in '{dataDir}' (looked for '{walDir}'). Check -Namespace and -DataDir: segments are expected in <dataDir>/<namespace>/wal.",
                walDir);
        }
        return walDir;
    }

    /// <summary>A WAL folder holding files but no segment under either naming is refused: its WAL
    /// is somewhere else or named in a way nothing would archive, and "nothing to ship" would be
    /// silent loss.</summary>
    internal static void RequireSegments(string walDir, int segmentCount, IReadOnlyList<string> otherFiles)
    {
        if (segmentCount == 0 && otherFiles.Count > 0)
        {
            throw new IntegrityException("WalNoSegments",
                $"The WAL directory '{walDir}' holds {otherFiles.Count} file(s) ({string.Join(", ", otherFiles.Take(5))}{(otherFiles.Count > 5 ? ", ..." : "")}) but no WAL segment: segments are named %09d.seg (UnisonDB) or %09d.wal (the seed's archives). Nothing can be archived from it; check that -DataDir and -Namespace point at the database's WAL, or rename the segments.",
                walDir);
        }
    }

    /// <summary>The segments to ship, in id order, after proving they are valid and continuous.
    /// Segments in <paramref name="headerOnly"/> (already archived: the caller compares their
    /// SHA-256 with the archived copy, validated when it was shipped) have only their header read,
    /// and so has the one at or before <paramref name="afterSegmentId"/>: it is not shipped, only
    /// the chain's anchor, and its header carries what continuity needs (first index, count).</summary>
    internal static List<WalSegmentInfo> Select(string walDir, string ns, long afterSegmentId, CancellationToken ct, IReadOnlySet<long>? headerOnly = null)
    {
        WalDirectoryListing listing = WalDirectory.List(walDir);
        RequireSegments(listing.WalDirectory, listing.Segments.Count, listing.OtherFiles);
        List<(long Id, string Path)> files = [.. listing.Segments];
        int firstAfter = files.FindIndex(f => f.Id > afterSegmentId);
        int from = firstAfter < 0 ? files.Count : Math.Max(0, firstAfter - 1);
        // Validation reads every byte and is CPU-bound (CRC-32C per record): one segment per core.
        var slots = new WalSegmentInfo?[files.Count - from];
        try
        {
            Parallel.For(0, slots.Length, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount, CancellationToken = ct }, i =>
            {
                try
                {
                    (long id, string path) = files[from + i];
                    slots[i] = WalSegmentReader.Inspect(path, ns, id, id <= afterSegmentId || headerOnly?.Contains(id) == true);
                }
                catch (NotFoundException)
                {
                    // removed between listing and reading: the id checks below see the hole
                }
            });
        }
        catch (AggregateException e)
        {
            ExceptionDispatchInfo.Throw(e.InnerExceptions[0]);
        }
        var inspected = slots.OfType<WalSegmentInfo>().ToList();
        long newestId = inspected.Count > 0 ? inspected[^1].SegmentId : -1;

        var candidates = inspected.Where(s => s.SegmentId > afterSegmentId).ToList();
        // The newest segment is active unless sealed; it is never shipped as sealed.
        if (candidates.Count > 0 && candidates[^1].SegmentId == newestId && !candidates[^1].Sealed)
        {
            candidates.RemoveAt(candidates.Count - 1);
        }

        // The chain checked for gaps starts at the newest sound segment at or before AfterSegmentId
        // (what a previous run shipped), so a hole right after it is caught too.
        WalSegmentInfo? previous = inspected.LastOrDefault(s => s.SegmentId <= afterSegmentId);
        var chain = new List<WalSegmentInfo>(candidates.Count + 1);
        if (previous is { Valid: true, Sealed: true } && candidates.Count > 0)
        {
            chain.Add(previous);
        }
        chain.AddRange(candidates);

        // Missing ids first: there is nothing to look at for them.
        var missing = new List<long>();
        for (int i = 1; i < chain.Count; i++)
        {
            for (long id = Math.Max(chain[i - 1].SegmentId, afterSegmentId) + 1; id < chain[i].SegmentId; id++)
            {
                missing.Add(id);
            }
        }
        if (missing.Count > 0)
        {
            throw new WalGapException(
                $"WAL gap in '{walDir}': segment{(missing.Count == 1 ? "" : "s")} {string.Join(", ", missing)} {(missing.Count == 1 ? "is" : "are")} missing between {chain[0].SegmentId} and {chain[^1].SegmentId}. Nothing was shipped: an archive with a hole cannot restore past it. Recover the missing segments, or ship only up to the gap.",
                walDir, missing);
        }

        foreach (WalSegmentInfo s in candidates)
        {
            if (!s.Valid && s.Error?.StartsWith(WalSegmentReader.UnreadablePrefix, StringComparison.Ordinal) == true)
            {
                throw new OperationFailedException("WalSegmentUnreadable",
                    $"Segment {s.SegmentId} ({s.Path}) {s.Error["The segment ".Length..]}. Nothing was shipped; make it readable by this user (it is not known to be damaged), then ship again.",
                    s.Path);
            }
            if (!s.Valid)
            {
                throw new IntegrityException("WalSegmentCorrupt",
                    $"Segment {s.SegmentId} ({s.Path}) failed validation at offset {s.ErrorOffset}: {s.Error}. Nothing was shipped; a corrupt segment is never archived.",
                    s.Path);
            }
            if (!s.Sealed)
            {
                throw new IntegrityException("WalSegmentNotSealed",
                    $"Segment {s.SegmentId} ({s.Path}) is not sealed but newer segments exist (newest is {newestId}), so it can never be completed. Nothing was shipped; check the database's WAL.",
                    s.Path);
            }
        }

        bool HeaderOnly(WalSegmentInfo x) => x.SegmentId <= afterSegmentId || headerOnly?.Contains(x.SegmentId) == true;
        for (int i = 1; i < chain.Count; i++)
        {
            WalSegmentInfo p = chain[i - 1], s = chain[i];
            if ((p.EntryCount == 0 && p.FirstLogIndex == 0) || (s.EntryCount == 0 && s.FirstLogIndex == 0))
            {
                continue; // an empty segment walfs has not assigned a first log index yet
            }
            // A segment read header-only (already archived, or the anchor) knows only its header's
            // count, not its payloads: UnisonDB may have skipped a log index inside it, so its last
            // index is a lower bound. Two such neighbours were checked when they were shipped.
            bool pPartial = HeaderOnly(p), sPartial = HeaderOnly(s);
            if (pPartial && sPartial)
            {
                continue;
            }
            long prevLast = p.LastLogIndex ?? p.FirstLogIndex - 1;
            WalPayloadFormat prevFormat = pPartial ? s.PayloadFormat : p.PayloadFormat;
            WalPayloadFormat nextFormat = sPartial ? p.PayloadFormat : s.PayloadFormat;
            string? seam = WalDirectory.DescribeSeam(p.SegmentId, p.FirstLogIndex, prevLast, prevFormat, s.SegmentId, s.FirstLogIndex, nextFormat, out bool skipped);
            if (seam is not null && !skipped)
            {
                throw new WalGapException($"WAL gap in '{walDir}': {seam} Nothing was shipped.", walDir, []);
            }
        }
        return candidates;
    }

    private static async Task<ContentDigest> CopyVerifiedAsync(WalSegmentInfo source, string dest, string ns, CancellationToken ct)
    {
        string temp = dest + ".tmp";
        Durable.TryDelete(temp); // a leftover of an interrupted run
        try
        {
            ContentDigest copied = await FileCopy.CopyAsync(source.Path, temp, ct).ConfigureAwait(false);
            // The copy is read back once and parsed record by record (every record's CRC-32C,
            // header, footer, index): that proves it a whole, valid segment holding the same log
            // range. A second SHA-256 pass over it would read the same page-cache bytes again.
            WalSegmentInfo check = WalSegmentReader.Inspect(temp, ns, source.SegmentId);
            if (!check.Valid || !check.Sealed || check.FirstLogIndex != source.FirstLogIndex || check.EntryCount != source.EntryCount)
            {
                string why = !check.Valid ? $"{check.Error} (offset {check.ErrorOffset})"
                    : !check.Sealed ? "it is not sealed"
                    : $"it holds log indexes from {check.FirstLogIndex} ({check.EntryCount} records), not from {source.FirstLogIndex} ({source.EntryCount} records)";
                throw new IntegrityException("WalShipVerifyFailed",
                    $"The copy of segment {source.SegmentId} failed verification: {why}. The segment changed while it was copied or the backup disk is faulty; nothing was archived.",
                    dest);
            }
            // A copy of a private segment is private (before: 0644): the live segment's mode and owner.
            FileMetadata.TryRead(source.Path)?.WithoutTime().TryApply(temp);
            Durable.CommitFile(temp, dest);
            return copied;
        }
        catch (Exception ex)
        {
            Durable.TryDelete(temp);
            if (ex is IOException or UnauthorizedAccessException)
            {
                throw new OperationFailedException("WalShipFailed",
                    $"Shipping segment {source.SegmentId} to '{dest}' failed: {ex.Message} Nothing was left under the final name; fix the cause and ship again.",
                    dest, ex);
            }
            throw;
        }
    }

    /// <summary>Creates a folder and any missing parents, syncing each parent that gained an entry.</summary>
    private static void CreateDirectoryDurably(string directory)
    {
        var created = new Stack<string>();
        for (string? d = directory; d is not null && !Directory.Exists(d); d = Path.GetDirectoryName(d))
        {
            created.Push(d);
        }
        Directory.CreateDirectory(directory);
        foreach (string d in created)
        {
            Durable.FsyncDirectory(Path.GetDirectoryName(d)!);
        }
    }
}
