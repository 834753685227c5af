namespace PSBackup.Engine.Wal;

/// <summary>Engine operations behind Get-WalSegment and Invoke-WalShip.</summary>
public static class WalOperations
{
    /// <summary>Inspects every segment in <c>&lt;dataDir&gt;/&lt;ns&gt;/wal</c>.</summary>
    public static Task<WalDirectoryReport> GetSegmentsAsync(GetWalSegmentOptions options, OperationContext context) =>
        throw new NotImplementedException();

    /// <summary>Copies sealed segments with id &gt; AfterSegmentId into
    /// <c>&lt;dataDir&gt;/backups/&lt;ns&gt;/&lt;BackupDir&gt;</c>, each verified after the copy.</summary>
    public static Task<WalShipResult> ShipAsync(InvokeWalShipOptions options, OperationContext context) =>
        throw new NotImplementedException();
}
