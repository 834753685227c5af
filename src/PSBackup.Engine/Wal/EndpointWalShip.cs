using System.Globalization;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Snapshots;

namespace PSBackup.Engine.Wal;

/// <summary>Invoke-WalShip -Endpoint: UnisonDB copies its sealed segments itself
/// (<c>POST /api/v1/{namespace}/wal/backup</c>, seed 003) and PSBackup verifies every returned file
/// (a whole, sealed segment of the id the server named) and archives it: locally the server's copy
/// in <c>-BackupDir</c> is the archive; with <c>-Repository</c> the server copies into a temp folder
/// under the backup root and the segments are shipped from there like local ones, then the folder
/// is removed. <c>afterSegmentId</c> comes from what the destination already holds (no state file).</summary>
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
        long afterLocal = options.AfterSegmentId > 0 ? options.AfterSegmentId : HighestIn(destDir);
        if (!context.ShouldProcess(destDir, $"Ask UnisonDB at {endpoint.Address} to copy sealed segments after {afterLocal} here"))
        {
            return new WalShipResult(ns, destDir, []);
        }
        string relative = Path.GetRelativePath(nsRoot, destDir).Replace(Path.DirectorySeparatorChar, '/');
        IReadOnlyList<UnisonEndpoint.SegmentBackup> produced = await endpoint.BackupWalAsync(ns, afterLocal, relative, ct).ConfigureAwait(false);
        var shipped = new List<ShippedSegment>(produced.Count);
        var failures = new List<string>();
        foreach (UnisonEndpoint.SegmentBackup copy in produced)
        {
            ct.ThrowIfCancellationRequested();
            try
            {
                string path = Verify(copy, destDir, ns, endpoint);
                ContentDigest digest = await FileCopy.HashAsync(path, ct).ConfigureAwait(false);
                shipped.Add(new ShippedSegment(ns, copy.SegmentId, path, digest.Bytes, digest.Sha256, AlreadyPresent: false));
                context.Report(WalOperations.ShipActivity, $"Verified segment {copy.SegmentId}", shipped.Count, produced.Count, path);
            }
            catch (IntegrityException e)
            {
                failures.Add(e.Message);
            }
        }
        if (failures.Count > 0)
        {
            throw new IntegrityException("EndpointSegmentInvalid",
                $"{failures.Count} of the {produced.Count} segments UnisonDB copied failed verification and were removed from '{destDir}': {string.Join(" ", failures)} Ship again.", destDir);
        }
        return new WalShipResult(ns, destDir, shipped);
    }

    /// <summary>The server's copy must be in <paramref name="dir"/> under the name it gave, carry the
    /// id it named and be a whole sealed segment; a copy that is not is removed (never half-archived).</summary>
    private static string Verify(UnisonEndpoint.SegmentBackup copy, string dir, string ns, UnisonEndpoint endpoint)
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
                $"Segment {copy.SegmentId} as copied by UnisonDB ('{local}') is {(info.Valid ? "not sealed" : "damaged: " + info.Error)}.", local);
        }
        return local;
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
