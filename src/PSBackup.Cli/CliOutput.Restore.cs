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
    public static object PlanShape(PointInTimePlan plan) => new
    {
        @namespace = plan.Namespace,
        target = new { time = plan.Target.Time, logIndex = plan.Target.LogIndex },
        snapshot = new
        {
            id = plan.Snapshot.Id,
            emptyStore = plan.Snapshot.EmptyStore,
            createdAt = plan.Snapshot.EmptyStore ? (DateTimeOffset?)null : plan.Snapshot.CreatedAt,
            completedAt = plan.Snapshot.EmptyStore ? null : plan.Snapshot.CompletedAt,
            appliedLogIndex = plan.Snapshot.Wal.AppliedLogIndex,
            store = plan.Snapshot.Store ?? "db",
            checkpoint = plan.Snapshot.Wal.Checkpoint is { } cp ? new { segmentId = cp.SegmentId, offset = cp.Offset, recordsProcessed = cp.RecordsProcessed, logIndex = cp.LogIndex } : null,
            completedLogIndex = plan.Snapshot.Wal.CompletedLogIndex,
            fileCount = plan.Snapshot.Files.Count,
            bytes = plan.Snapshot.Bytes,
            location = plan.Snapshot.Location,
        },
        startLogIndex = plan.StartLogIndex,
        segments = plan.Segments.Select(s => new
        {
            segmentId = s.SegmentId,
            fileName = s.Source.LayoutFileName,
            firstLogIndex = s.FirstLogIndex,
            lastLogIndex = s.LastLogIndex,
            records = s.RecordCount,
            cut = s.Cut,
            @sealed = s.Source.Sealed,
            bytes = s.Source.Bytes,
        }),
        lastLogIndex = plan.LastLogIndex,
        lastRecordTime = plan.LastRecordTime,
        emptyActiveSegmentId = plan.EmptyActiveSegmentId,
        targetPastArchive = plan.TargetPastArchive,
        lastArchivedLogIndex = plan.LastArchivedLogIndex,
        bytes = plan.Bytes,
        notes = plan.Notes,
    };

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
            output.WriteLine(ToJson(new
            {
                @namespace = result.Namespace,
                repository = result.Repository,
                restored = result.Restored,
                snapshot = result.Snapshot,
                restoredPath = result.RestoredPath,
                replacedPath = result.ReplacedPath,
                lastLogIndex = result.LastLogIndex,
                targetPastArchive = result.TargetPastArchive,
                bytes = result.Bytes,
                duration = TimeSpan.FromSeconds(result.Duration),
                plan = PlanShape(result.Plan),
            }));
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
}
