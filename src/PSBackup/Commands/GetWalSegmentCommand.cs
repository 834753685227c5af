using System.Management.Automation;
using PSBackup.Engine.Wal;

namespace PSBackup.Commands;

/// <summary>Inspects a namespace's WAL: one <see cref="WalSegmentInfo"/> per segment.</summary>
/// <cli>wal list</cli>
/// <example>
/// <summary>Inspect a namespace's WAL</summary>
/// <code>Get-WalSegment -DataDir ./unison -Namespace users</code>
/// One WalSegmentInfo per segment, in id order: sealed or active, first log index, entry count and
/// whether it is valid. A gap in the segment ids is a warning naming the missing ids.
/// </example>
/// <example>
/// <summary>Find damaged segments</summary>
/// <code>Get-WalSegment -DataDir ./unison -Namespace users | Where-Object { -not $_.Valid -or $_.TornTail }</code>
/// A sealed segment with any fault is not Valid (Error says why and ErrorOffset where); an active one
/// ending in a torn record has TornTail set, which is normal after a crash.
/// </example>
/// <example>
/// <summary>Measure the WAL on disk</summary>
/// <code>Get-WalSegment -DataDir ./unison -Namespace users | Measure-Object -Property Bytes -Sum</code>
/// Segments are preallocated, so Bytes is their file size; ValidBytes is how much holds records.
/// </example>
[Cmdlet(VerbsCommon.Get, "WalSegment", DefaultParameterSetName = DefaultSet)]
[OutputType(typeof(WalSegmentInfo))]
public sealed class GetWalSegmentCommand : PSBackupCmdlet
{
    private const string DefaultSet = "Default";
    private string _dataDir = "";

    /// <summary>The database data directory holding one folder per namespace.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true, ParameterSetName = DefaultSet)]
    [ValidateNotNullOrEmpty]
    public string DataDir { get; set; } = "";

    /// <summary>The namespace whose WAL (&lt;DataDir&gt;/&lt;Namespace&gt;/wal) is inspected.</summary>
    [Parameter(Mandatory = true, Position = 1, ValueFromPipelineByPropertyName = true, ParameterSetName = DefaultSet)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(NamespaceCompleter))]
    public string Namespace { get; set; } = "";

    /// <summary>Only this segment.</summary>
    [Parameter(ParameterSetName = DefaultSet)]
    [ValidateRange(0L, long.MaxValue)]
    public long? SegmentId { get; set; }

    protected override void PrepareRecord() => _dataDir = ResolveFileSystemPath(DataDir, nameof(DataDir));

    protected override async Task ProcessRecordAsync()
    {
        var options = new GetWalSegmentOptions(_dataDir, Namespace) { SegmentId = SegmentId };
        WalDirectoryReport report = await WalOperations.GetSegmentsAsync(options, CreateContext()).ConfigureAwait(false);
        if (report.HasGap)
        {
            string missing = report.MissingSegmentIds.Count > 0
                ? $" Missing segment ids: {string.Join(", ", report.MissingSegmentIds)}."
                : "";
            string continuity = report.ContinuityErrors.Count > 0 ? " " + string.Join(" ", report.ContinuityErrors) : "";
            PostWriteWarning($"The WAL of namespace '{Namespace}' has a gap.{missing}{continuity}");
        }
        foreach (string warning in report.Warnings)
        {
            PostWriteWarning(warning);
        }
        if (report.OtherFiles.Count > 0)
        {
            PostWriteWarning($"The WAL directory '{report.WalDirectory}' also holds {report.OtherFiles.Count} file(s) that are neither segments nor .seg.idx sidecars, and are not archived: {string.Join(", ", report.OtherFiles)}.");
        }
        foreach (WalSegmentInfo segment in report.Segments)
        {
            if (!segment.Valid)
            {
                PostWriteVerbose($"Segment {segment.SegmentId} is not valid: {segment.Error}");
            }
            await WriteObjectAsync(segment).ConfigureAwait(false);
        }
    }
}
