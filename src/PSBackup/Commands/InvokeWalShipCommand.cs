using System.Management.Automation;
using PSBackup.Engine.Wal;

namespace PSBackup.Commands;

/// <summary>Copies sealed WAL segments with id greater than -AfterSegmentId into -BackupDir
/// (relative to <c>&lt;dataDir&gt;/backups/&lt;ns&gt;</c>); one <see cref="ShippedSegment"/> per segment.</summary>
[Cmdlet(VerbsLifecycle.Invoke, "WalShip", SupportsShouldProcess = true, DefaultParameterSetName = DefaultSet)]
[OutputType(typeof(ShippedSegment))]
public sealed class InvokeWalShipCommand : PSBackupCmdlet
{
    private const string DefaultSet = "Default";
    private string _dataDir = "";

    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true, ParameterSetName = DefaultSet)]
    [ValidateNotNullOrEmpty]
    public string DataDir { get; set; } = "";

    [Parameter(Mandatory = true, Position = 1, ValueFromPipelineByPropertyName = true, ParameterSetName = DefaultSet)]
    [ValidateNotNullOrEmpty]
    public string Namespace { get; set; } = "";

    /// <summary>Relative to <c>&lt;dataDir&gt;/backups/&lt;ns&gt;</c>, e.g. <c>wal/archive</c>.</summary>
    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true, ParameterSetName = DefaultSet)]
    [ValidateNotNullOrEmpty]
    public string BackupDir { get; set; } = "";

    /// <summary>Only sealed segments with a greater id are shipped; 0 (the default) ships all.</summary>
    [Parameter(ParameterSetName = DefaultSet)]
    [ValidateRange(0L, long.MaxValue)]
    public long AfterSegmentId { get; set; }

    protected override void PrepareRecord() => _dataDir = ResolveFileSystemPath(DataDir, nameof(DataDir));

    protected override async Task ProcessRecordAsync()
    {
        var options = new InvokeWalShipOptions(_dataDir, Namespace, BackupDir) { AfterSegmentId = AfterSegmentId };
        WalShipResult result = await WalOperations.ShipAsync(options, CreateContext()).ConfigureAwait(false);
        PostWriteVerbose($"Shipped {result.Backups.Count} segment(s) of '{Namespace}' to '{result.BackupDir}'.");
        foreach (ShippedSegment segment in result.Backups)
        {
            PostWriteObject(segment);
        }
    }
}
