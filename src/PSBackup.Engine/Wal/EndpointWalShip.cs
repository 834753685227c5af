using System.Globalization;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Snapshots;

namespace PSBackup.Engine.Wal;

/// <summary>Invoke-WalShip -Endpoint: UnisonDB copies its sealed segments itself
/// (<c>POST /api/v1/{namespace}/wal/backup</c>, seed 003) into a temp folder of the backup root
/// (<c>endpoint-ship-&lt;rand&gt;.tmp</c> locally, <c>repository-ship-&lt;rand&gt;.tmp</c> for a
/// repository), PSBackup reads every returned file with the walfs v1/v2 reader (a whole, sealed
/// segment of the id the server named) and only then archives them: locally moved into
/// <c>-BackupDir</c> when all passed and continue the archive, with <c>-Repository</c> shipped from
/// there like local ones. The temp folder is always removed. <c>afterSegmentId</c> comes from what
/// the destination already holds (no state file).</summary>
internal static class EndpointWalShip
{
    public static async Task<WalShipResult> RunAsync(InvokeWalShipOptions options, string ns, OperationContext context)
    {
        CancellationToken ct = context.CancellationToken;
        var endpoint = new UnisonEndpoint(options.Endpoint!, options.EndpointTimeout);
        string dataDir = SafePath.RequireDirectory(options.DataDir, "data directory", "Give the database's data directory (the folder holding one folder per namespace).");
        string backupsRoot = Path.Combine(dataDir, "backups");
        string nsRoot = Path.Combine(backupsRoot, ns);

        if (options.Repository is { } target)
        {
            long archived = await HighestArchivedAsync(target, ns, ct).ConfigureAwait(false);
            long after = Math.Max(options.AfterSegmentId, archived);
            string tempRel = $"repository-ship-{Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(6)).ToLowerInvariant()}.tmp";
            string tempDir = Path.Combine(nsRoot, tempRel);
            if (!context.ShouldProcess($"{target.Location} (wal/{ns}/)", $"Ask UnisonDB at {endpoint.Address} for sealed segments after {after} and archive them"))
            {
                return new WalShipResult(ns, null, []) { Repository = target.Location };
            }
            try
            {
                IReadOnlyList<UnisonEndpoint.SegmentBackup> copies = await endpoint.BackupWalAsync(ns, after, tempRel, ct).ConfigureAwait(false);
                if (copies.Count == 0)
                {
                    return new WalShipResult(ns, null, []) { Repository = target.Location };
                }
                foreach (UnisonEndpoint.SegmentBackup copy in copies)
                {
                    _ = Verify(copy, tempDir, ns, endpoint);
                }
                return await WalRepositoryShip.RunAsync(options with { AfterSegmentId = after }, ns, tempDir, target, context).ConfigureAwait(false);
            }
            finally
            {
                Durable.TryDelete(tempDir);
            }
        }

        string destDir = SafePath.Combine(nsRoot, options.BackupDir ?? "", "backup dir");
        SafePath.RejectLinksBelow(backupsRoot, nsRoot, "namespace backup root");
        // What -BackupDir already holds is never asked for again: UnisonDB's copy replaces a file of
        // the same name (walog.go copySegmentFile removes dstPath), and an archive is never overwritten.
        long afterLocal = Math.Max(options.AfterSegmentId, HighestIn(destDir));
        if (!context.ShouldProcess(destDir, $"Ask UnisonDB at {endpoint.Address} for sealed segments after {afterLocal} and archive them here"))
        {
            return new WalShipResult(ns, destDir, []);
        }
        // The server copies into a temp folder of the backup root; only segments that all passed
        // the walfs reader, continue the archive and conflict with nothing are moved into -BackupDir.
        string stageRel = $"endpoint-ship-{Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(6)).ToLowerInvariant()}.tmp";
        string stageDir = Path.Combine(nsRoot, stageRel);
        try
        {
            IReadOnlyList<UnisonEndpoint.SegmentBackup> produced = await endpoint.BackupWalAsync(ns, afterLocal, stageRel, ct).ConfigureAwait(false);
            if (produced.Count == 0)
            {
                return new WalShipResult(ns, destDir, []);
            }
            var verified = new List<WalSegmentInfo>(produced.Count);
            var failures = new List<string>();
            foreach (UnisonEndpoint.SegmentBackup copy in produced.OrderBy(c => c.SegmentId))
            {
                ct.ThrowIfCancellationRequested();
                try
                {
                    verified.Add(Verify(copy, stageDir, ns, endpoint));
                    context.Report(WalOperations.ShipActivity, $"Verified segment {copy.SegmentId}", verified.Count, produced.Count, stageDir);
                }
                catch (IntegrityException e)
                {
                    failures.Add(e.Message);
                }
            }
            if (failures.Count > 0)
            {
                throw new IntegrityException("EndpointSegmentInvalid",
                    $"{failures.Count} of the {produced.Count} segments UnisonDB copied failed verification, so none was archived in '{destDir}': {string.Join(" ", failures)} Ship again; if it fails again, check the server's WAL with Get-WalSegment.", destDir);
            }
            CheckChain(destDir, afterLocal, verified, ns, endpoint);

            // Destinations already there: identical is fine, different is refused before anything moves.
            var present = new Dictionary<long, ContentDigest>();
            foreach (WalSegmentInfo s in verified)
            {
                string dest = Path.Combine(destDir, s.FileName);
                if (Directory.Exists(dest))
                {
                    throw new ConflictException("WalSegmentConflict", $"'{dest}' is a folder where segment {s.SegmentId} would be archived. Move it away, then ship again.", dest);
                }
                if (!File.Exists(dest))
                {
                    continue;
                }
                SafePath.RejectLinksBelow(nsRoot, dest, "archived segment");
                ContentDigest existing = await FileCopy.HashAsync(dest, ct).ConfigureAwait(false);
                ContentDigest copied = await FileCopy.HashAsync(s.Path, ct).ConfigureAwait(false);
                if (existing != copied)
                {
                    throw new ConflictException("WalSegmentConflict",
                        $"'{dest}' already exists with different content (SHA-256 {existing.Sha256}) than segment {s.SegmentId} as UnisonDB copied it now (SHA-256 {copied.Sha256}). PSBackup never overwrites an archived segment and archived none of this run; investigate, move it away, then ship again.", dest);
                }
                present[s.SegmentId] = existing;
            }

            var shipped = new List<ShippedSegment>(verified.Count);
            Directory.CreateDirectory(destDir);
            SafePath.RejectLinksBelow(nsRoot, destDir, "backup dir");
            foreach (WalSegmentInfo s in verified)
            {
                string dest = Path.Combine(destDir, s.FileName);
                if (present.TryGetValue(s.SegmentId, out ContentDigest already))
                {
                    shipped.Add(new ShippedSegment(ns, s.SegmentId, dest, already.Bytes, already.Sha256, AlreadyPresent: true));
                    continue;
                }
                ContentDigest digest = await FileCopy.HashAsync(s.Path, ct).ConfigureAwait(false);
                // The server's copy is made durable here before it takes the archive's name.
                using (var staged = new FileStream(s.Path, FileMode.Open, FileAccess.ReadWrite, FileShare.Read))
                {
                    staged.Flush(flushToDisk: true);
                }
                Durable.CommitFile(s.Path, dest);
                shipped.Add(new ShippedSegment(ns, s.SegmentId, dest, digest.Bytes, digest.Sha256, AlreadyPresent: false));
                context.Report(WalOperations.ShipActivity, $"Archived segment {s.SegmentId}", shipped.Count, verified.Count, dest);
            }
            return new WalShipResult(ns, destDir, shipped);
        }
        finally
        {
            Durable.TryDelete(stageDir);
        }
    }

    /// <summary>The returned segments must continue the archive: ids contiguous from the highest
    /// archived one (UnisonDB's cleanup may have deleted segments the archive never got: a WAL gap,
    /// never a silent hole), log indexes continuous across each seam (a consumed index between
    /// decoded segments is UnisonDB's, not a gap).</summary>
    private static void CheckChain(string destDir, long afterId, List<WalSegmentInfo> segments, string ns, UnisonEndpoint endpoint)
    {
        WalSegmentInfo? anchor = null;
        if (afterId > 0)
        {
            string name9 = afterId.ToString("D9", CultureInfo.InvariantCulture);
            string? path = new[] { name9 + WalFormat.SegExtension, name9 + WalFormat.WalExtension }.Select(n => Path.Combine(destDir, n)).FirstOrDefault(File.Exists);
            anchor = path is null ? null : WalSegmentReader.Inspect(path, ns, afterId, headerOnly: true);
        }
        var missing = new List<long>();
        long expectedId = afterId > 0 ? afterId + 1 : segments[0].SegmentId;
        foreach (WalSegmentInfo s in segments)
        {
            for (long id = expectedId; id < s.SegmentId; id++)
            {
                missing.Add(id);
            }
            expectedId = s.SegmentId + 1;
        }
        if (missing.Count > 0)
        {
            throw new WalGapException(
                $"WAL gap: UnisonDB at {endpoint.Address} returned segment{(segments.Count == 1 ? "" : "s")} {string.Join(", ", segments.Select(s => s.SegmentId))} after {afterId}, so segment{(missing.Count == 1 ? "" : "s")} {string.Join(", ", missing)} {(missing.Count == 1 ? "is" : "are")} missing (deleted by the server's WAL cleanup before they were archived?). Nothing was archived: an archive with a hole cannot restore past it. Recover the missing segments, or start a new archive after a new snapshot.",
                destDir, missing);
        }
        WalSegmentInfo? previous = anchor is { Valid: true } ? anchor : null;
        foreach (WalSegmentInfo s in segments)
        {
            if (previous is not null && !(previous.EntryCount == 0 && previous.FirstLogIndex == 0) && !(s.EntryCount == 0 && s.FirstLogIndex == 0))
            {
                bool anchorHeaderOnly = ReferenceEquals(previous, anchor);
                long prevLast = previous.LastLogIndex ?? previous.FirstLogIndex - 1;
                string? seam = WalDirectory.DescribeSeam(previous.SegmentId, previous.FirstLogIndex, prevLast,
                    anchorHeaderOnly ? s.PayloadFormat : previous.PayloadFormat, s.SegmentId, s.FirstLogIndex, s.PayloadFormat, out bool skipped);
                // A header-only anchor knows only its header's count: a consumed index inside it
                // makes its last index a lower bound, so only an overlap is certain there.
                if (seam is not null && !skipped && !(anchorHeaderOnly && s.FirstLogIndex > prevLast))
                {
                    throw new WalGapException($"WAL gap between the archive in '{destDir}' and what UnisonDB at {endpoint.Address} returned: {seam} Nothing was archived.", destDir, []);
                }
            }
            previous = s;
        }
    }

    /// <summary>The server's copy must be in <paramref name="dir"/> under the name it gave, carry the
    /// id it named and be a whole sealed segment by the walfs v1/v2 reader (every record's CRC, the
    /// header, a v2 footer, only zeros after the records); a copy that is not is removed.</summary>
    private static WalSegmentInfo Verify(UnisonEndpoint.SegmentBackup copy, string dir, string ns, UnisonEndpoint endpoint)
    {
        string name = copy.Path.Replace('\\', '/');
        name = name[(name.LastIndexOf('/') + 1)..];
        string expected9 = copy.SegmentId.ToString("D9", CultureInfo.InvariantCulture);
        if (name != expected9 + ".seg" && name != expected9 + ".wal")
        {
            throw new IntegrityException("EndpointSegmentInvalid",
                $"UnisonDB at {endpoint.Address} named segment {copy.SegmentId} '{SafePath.Printable(copy.Path)}', not {expected9}.seg.", copy.Path);
        }
        string local = Path.Combine(dir, name);
        if (!File.Exists(local))
        {
            throw new OperationFailedException("EndpointOutputMissing",
                $"UnisonDB at {endpoint.Address} reported segment {copy.SegmentId} at '{SafePath.Printable(copy.Path)}', but '{local}' does not exist here. -DataDir must be the server's data directory as this host sees it.", local);
        }
        WalSegmentInfo info = WalSegmentReader.Inspect(local, ns, copy.SegmentId);
        if (!info.Valid || !info.Sealed)
        {
            Durable.TryDelete(local);
            throw new IntegrityException("EndpointSegmentInvalid",
                $"Segment {copy.SegmentId} as copied by UnisonDB is {(info.Valid ? "not sealed" : $"damaged: {info.Error} (offset {info.ErrorOffset})")}.", local);
        }
        return info;
    }

    private static long HighestIn(string dir)
    {
        if (!Directory.Exists(dir))
        {
            return 0;
        }
        long highest = 0;
        foreach (string file in Directory.EnumerateFiles(dir))
        {
            string n = Path.GetFileName(file);
            if (n.Length == 13 && (n.EndsWith(".seg", StringComparison.Ordinal) || n.EndsWith(".wal", StringComparison.Ordinal)) &&
                long.TryParse(n.AsSpan(0, 9), NumberStyles.None, CultureInfo.InvariantCulture, out long id))
            {
                highest = Math.Max(highest, id);
            }
        }
        return highest;
    }

    private static async Task<long> HighestArchivedAsync(RepositoryTarget target, string ns, CancellationToken ct)
    {
        using OpenRepository open = await RepositoryConnector.OpenAsync(target, ct).ConfigureAwait(false);
        string prefix = WalRepositoryShip.RefPrefix(ns);
        long highest = 0;
        foreach (RepositoryRef r in await open.Repository.ListRefsAsync(prefix, ct).ConfigureAwait(false))
        {
            string rest = r.Name[prefix.Length..];
            if (rest.Length == 9 && long.TryParse(rest, NumberStyles.None, CultureInfo.InvariantCulture, out long id))
            {
                highest = Math.Max(highest, id);
            }
        }
        return highest;
    }
}
