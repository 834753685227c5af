using System.Globalization;
using PSBackup.Engine.Restore;

namespace PSBackup.Cli;

/// <summary>Output of <c>snapshot restore</c> and <c>pitr</c>: the same columns as the module's views.</summary>
internal static partial class CliOutput
{
    public static void SnapshotRestore(TextWriter output, StoreSnapshotRestoreResult result, bool json)
    {
        if (json)
        {
            output.WriteLine(ToJson(result));
            return;
        }
        var table = new TableWriter().Column("Namespace").Column("Snapshot").Column("Files", rightAlign: true).Column("Size", rightAlign: true)
            .Column("RestoredPath").Column("ReplacedPath");
        table.Row(result.Namespace, result.Snapshot, result.FileCount.ToString(CultureInfo.InvariantCulture), TableWriter.Size(result.Bytes),
            result.RestoredPath, result.ReplacedPath ?? "");
        table.WriteTo(output);
    }

    /// <summary>The plan as JSON: what <c>pitr --what-if --json</c> prints, and <c>plan</c> of the result.</summary>
    public static PlanJson PlanShape(PointInTimePlan plan) => new(
        plan.Namespace,
        new PlanTargetJson(plan.Target.Time, plan.Target.LogIndex),
        new PlanSnapshotJson(
            plan.Snapshot.Id,
            plan.Snapshot.EmptyStore,
            plan.Snapshot.EmptyStore ? null : plan.Snapshot.CreatedAt,
            plan.Snapshot.EmptyStore ? null : plan.Snapshot.CompletedAt,
            plan.Snapshot.Wal.AppliedLogIndex,
            plan.Snapshot.Store ?? "db",
            plan.Snapshot.Wal.Checkpoint is { } cp ? new PlanCheckpointJson(cp.SegmentId, cp.Offset, cp.RecordsProcessed, cp.LogIndex) : null,
            plan.Snapshot.Wal.CompletedLogIndex,
            plan.Snapshot.Files.Count,
            plan.Snapshot.Bytes,
            plan.Snapshot.Location),
        plan.StartLogIndex,
        [.. plan.Segments.Select(s => new PlanSegmentJson(s.SegmentId, s.Source.LayoutFileName, s.FirstLogIndex, s.LastLogIndex, s.RecordCount, s.Cut,
            s.Source.Sealed, s.Source.Bytes))],
        plan.LastLogIndex,
        plan.LastRecordTime,
        plan.EmptyActiveSegmentId,
        plan.TargetPastArchive,
        plan.LastArchivedLogIndex,
        plan.Bytes,
        plan.Notes);

    public static void Plan(TextWriter output, PointInTimePlan plan, bool json)
    {
        if (json)
        {
            output.WriteLine(ToJson(PlanShape(plan)));
            return;
        }
        var head = new TableWriter().Column("Namespace").Column("Target").Column("Snapshot").Column("LastLogIndex", rightAlign: true)
            .Column("LastRecordTime").Column("PastArchive").Column("Size", rightAlign: true);
        head.Row(plan.Namespace, plan.Target.ToString(), plan.Snapshot.Id, plan.LastLogIndex.ToString(CultureInfo.InvariantCulture),
            plan.LastRecordTime is { } lrt ? lrt.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture) : "",
            plan.TargetPastArchive ? "True" : "False", TableWriter.Size(plan.Bytes));
        head.WriteTo(output);
        output.WriteLine();
        if (plan.Snapshot.Wal.Checkpoint is { } checkpoint)
        {
            output.WriteLine($"Checkpoint {checkpoint} -> target log index {plan.LastLogIndex.ToString(CultureInfo.InvariantCulture)}: replay reads the checkpoint record and applies what follows.");
        }
        if (plan.Segments.Count == 0)
        {
            output.WriteLine("No WAL segments: the snapshot holds the target.");
        }
        else
        {
            var segments = new TableWriter().Column("SegmentId", rightAlign: true).Column("Name").Column("FirstLogIndex", rightAlign: true)
                .Column("LastLogIndex", rightAlign: true).Column("Cut");
            foreach (PlannedSegment s in plan.Segments)
            {
                segments.Row(s.SegmentId.ToString(CultureInfo.InvariantCulture), s.Source.LayoutFileName, s.FirstLogIndex.ToString(CultureInfo.InvariantCulture),
                    s.LastLogIndex.ToString(CultureInfo.InvariantCulture), s.Cut ? "cut" : "");
            }
            segments.WriteTo(output);
        }

        foreach (string note in plan.Notes)
        {
            output.WriteLine($"Note: {note}");
        }
    }

    public static void PointInTime(TextWriter output, PointInTimeRestoreResult result, bool json)
    {
        if (json)
        {
            output.WriteLine(ToJson(new PointInTimeJson(result.Namespace, result.Repository, result.Restored, result.Snapshot, result.RestoredPath,
                result.ReplacedPath, result.LastLogIndex, result.TargetPastArchive, result.Bytes, TimeSpan.FromSeconds(result.Duration), PlanShape(result.Plan))));
            return;
        }
        var table = new TableWriter().Column("Namespace").Column("Snapshot").Column("LastLogIndex", rightAlign: true).Column("PastArchive")
            .Column("Size", rightAlign: true).Column("RestoredPath");
        table.Row(result.Namespace, result.Snapshot, result.LastLogIndex.ToString(CultureInfo.InvariantCulture), result.TargetPastArchive ? "True" : "False",
            TableWriter.Size(result.Bytes), result.RestoredPath);
        table.WriteTo(output);
        if (result.ReplacedPath is not null)
        {
            output.WriteLine($"The previous namespace folder is kept at {result.ReplacedPath}.");
        }
        foreach (string note in result.Plan.Notes)
        {
            output.WriteLine($"Note: {note}");
        }
    }

    // ---- JSON shapes (CliJsonContext); the property order is the JSON's order ----------------

    internal sealed record PlanJson(string Namespace, PlanTargetJson Target, PlanSnapshotJson Snapshot, long? StartLogIndex,
        IReadOnlyList<PlanSegmentJson> Segments, long LastLogIndex, DateTimeOffset? LastRecordTime, long? EmptyActiveSegmentId,
        bool TargetPastArchive, long? LastArchivedLogIndex, long Bytes, IReadOnlyList<string> Notes);

    internal sealed record PlanTargetJson(DateTimeOffset? Time, long? LogIndex);

    /// <summary>An empty store's snapshot has no times (null, not the placeholder it carries).</summary>
    internal sealed record PlanSnapshotJson(string Id, bool EmptyStore, DateTimeOffset? CreatedAt, DateTimeOffset? CompletedAt, long? AppliedLogIndex,
        string Store, PlanCheckpointJson? Checkpoint, long? CompletedLogIndex, int FileCount, long Bytes, string Location);

    internal sealed record PlanCheckpointJson(long SegmentId, long Offset, long RecordsProcessed, long? LogIndex);

    /// <summary>A planned segment; <c>records</c> is how many of its records replay.</summary>
    internal sealed record PlanSegmentJson(long SegmentId, string FileName, long FirstLogIndex, long LastLogIndex, long Records, bool Cut, bool Sealed, long Bytes);

    /// <summary><c>pitr --json</c>: the result, then its plan.</summary>
    internal sealed record PointInTimeJson(string Namespace, string? Repository, bool Restored, string Snapshot, string RestoredPath, string? ReplacedPath,
        long LastLogIndex, bool TargetPastArchive, long Bytes, TimeSpan Duration, PlanJson Plan);
}
