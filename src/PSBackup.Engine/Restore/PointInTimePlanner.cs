using System.Globalization;

namespace PSBackup.Engine.Restore;

/// <summary>What to restore to: a time (<c>-TargetTime</c>) or an exact record (<c>-TargetLogIndex</c>).
/// Exactly one is set.</summary>
public sealed record RestoreTarget
{
    private RestoreTarget(DateTimeOffset? time, long? logIndex)
    {
        Time = time;
        LogIndex = logIndex;
    }

    public DateTimeOffset? Time { get; }
    public long? LogIndex { get; }

    public static RestoreTarget AtTime(DateTimeOffset time) => new(time.ToUniversalTime(), null);

    public static RestoreTarget AtLogIndex(long logIndex)
    {
        if (logIndex < 1)
        {
            throw new InvalidInputException("InvalidTargetLogIndex",
                $"-TargetLogIndex {logIndex.ToString(CultureInfo.InvariantCulture)} is not a log index; log indexes start at 1.", logIndex.ToString(CultureInfo.InvariantCulture));
        }
        return new(null, logIndex);
    }

    /// <summary>Exactly one of the two, or an InvalidInputException naming both parameters.</summary>
    public static RestoreTarget From(DateTimeOffset? time, long? logIndex) => (time, logIndex) switch
    {
        (not null, null) => AtTime(time.Value),
        (null, not null) => AtLogIndex(logIndex.Value),
        _ => throw new InvalidInputException("InvalidRestoreTarget",
            "Give exactly one of -TargetTime (restore what was durable at that instant) or -TargetLogIndex (restore up to and including that record).", null),
    };

    public override string ToString() => Time is { } t
        ? "time " + t.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture)
        : "log index " + LogIndex!.Value.ToString(CultureInfo.InvariantCulture);
}

/// <summary>One segment of a plan: the archived segment and the last record of it to lay out.</summary>
public sealed record PlannedSegment(ArchivedSegment Source, long LastLogIndex)
{
    public long SegmentId => Source.SegmentId;
    public long FirstLogIndex => Source.FirstLogIndex;
    /// <summary>Records laid out from this segment.</summary>
    public long RecordCount => LastLogIndex - Source.FirstLogIndex + 1;
    /// <summary>Laid out as a shorter, unsealed segment ending at <see cref="LastLogIndex"/>.</summary>
    public bool Cut => LastLogIndex < Source.LastLogIndex;

    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"segment {SegmentId}: log {FirstLogIndex}..{LastLogIndex}{(Cut ? " (cut)" : "")}");
}

/// <summary>A point-in-time restore, decided before anything is fetched: what <c>-WhatIf</c> prints.</summary>
public sealed record PointInTimePlan
{
    public required string Namespace { get; init; }
    public required RestoreTarget Target { get; init; }
    public required RestorableSnapshot Snapshot { get; init; }
    /// <summary>First record replay must apply (the snapshot's applied index + 1); null when the
    /// snapshot records no applied index and the WAL is laid out from the oldest segment present
    /// when it was taken (replay skips what the store already holds).</summary>
    public long? StartLogIndex { get; init; }
    /// <summary>Segments to lay out in <c>wal/</c>, ascending, contiguous.</summary>
    public required IReadOnlyList<PlannedSegment> Segments { get; init; }
    /// <summary>The last record the restored namespace holds once the database has replayed
    /// its WAL: the target log index, or for a time target the last record provably durable at it.</summary>
    public required long LastLogIndex { get; init; }
    /// <summary>The target lies past the last archived record: the plan restores the latest
    /// archived state instead, and <see cref="Notes"/> says so.</summary>
    public required bool TargetPastArchive { get; init; }
    /// <summary>The last log index any archived segment holds (null: none archived).</summary>
    public long? LastArchivedLogIndex { get; init; }
    /// <summary>Why the plan is what it is, for people.</summary>
    public required IReadOnlyList<string> Notes { get; init; }
    /// <summary>The own time (UnisonDB HLC) of the last record restored, when the records carry one.</summary>
    public DateTimeOffset? LastRecordTime { get; init; }
    /// <summary>An empty active segment with this id is laid out after the last planned one: the
    /// target ends exactly at a sealed segment's end, and walfs refuses to write into a sealed
    /// newest segment (<c>pkg/walfs/segment.go</c> Write: ErrSegmentSealed).</summary>
    public long? EmptyActiveSegmentId { get; init; }
    /// <summary>For a time target over records with their own times: the segment whose records
    /// straddle the target. The plan is final only once that segment's records were read
    /// (<see cref="PointInTimePlanner.Plan"/> with a <see cref="TimeCut"/>); null when none.</summary>
    public long? TimeCutSegmentId { get; init; }

    /// <summary>The store's own WAL checkpoint the restore starts from (UnisonDB), else null.</summary>
    public Snapshots.StoreCheckpoint? Checkpoint => Snapshot.Wal.Checkpoint;

    public long SegmentBytes => Segments.Sum(s => s.Source.Bytes);
    public long Bytes => Snapshot.Bytes + SegmentBytes;

    /// <summary>The plan in one line (what Format-List shows for a restore result's Plan): the
    /// same words as the -WhatIf preview.</summary>
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{Namespace} to {Target}: snapshot {Snapshot.Id} + {Segments.Count} WAL segment(s), up to log index {LastLogIndex}{(TargetPastArchive ? " (target past the archive)" : "")}, {Sizes.Format(Bytes)}");
}

/// <summary>What the records of the segment straddling a time target say: the last record at or
/// before the target (its log index and time; null when even the segment's first is later) and
/// the first record after it.</summary>
public sealed record TimeCut(long SegmentId, long? LastLogIndex, DateTimeOffset? LastTime, long? NextLogIndex, DateTimeOffset? NextTime);

/// <summary>The target precedes every snapshot that could serve it: nothing older exists to
/// replay forward from.</summary>
public sealed class TargetBeforeFirstSnapshotException(string message, string target)
    : PSBackupException(ErrorKind.NotFound, "TargetBeforeFirstSnapshot", message, target);

/// <summary>Plans a point-in-time restore from listings alone: pure, no I/O.</summary>
/// <remarks>
/// <para>Snapshot: for a log-index target, the one with the highest applied index at or below
/// it (a snapshot without an applied index may contain any record and never serves one); for
/// a time target, the newest one completed at or before T (everything in its copy was written
/// before it completed).</para>
/// <para>WAL: from the segment holding applied + 1 (or the oldest segment present when the
/// snapshot began, when no applied index is known) to the target; ids and log indexes must be
/// contiguous over that range, else a <see cref="WalGapException"/> naming what is missing.</para>
/// <para>Time targets count a record only when it is provably durable at T: every record of a
/// segment sealed at or before T (the header's seal stamp), and of the segment open at T the
/// records of a prefix the shipper observed at or before T. A local archive of sealed segments
/// has no observations, so a segment sealed after T contributes nothing. The plan's last log
/// index is the larger of that and the snapshot's applied index.</para>
/// </remarks>
public static class PointInTimePlanner
{
    public static PointInTimePlan Plan(
        string @namespace,
        RestoreTarget target,
        IReadOnlyList<RestorableSnapshot> snapshots,
        IReadOnlyList<ArchivedSegment> segments,
        TimeCut? timeCut = null)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(snapshots);
        ArgumentNullException.ThrowIfNull(segments);
        IReadOnlyList<ArchivedSegment> live = LiveGenerations(segments, target.Time ?? DateTimeOffset.MaxValue, out string? generationNote);
        var byId = live.GroupBy(s => s.SegmentId).ToDictionary(g => g.Key, g => (IReadOnlyList<ArchivedSegment>)g.ToList());
        var complete = byId.ToDictionary(p => p.Key, p => Best(p.Value));
        long? lastArchived = complete.Count == 0 ? null : complete.Values.Max(s => s.LastLogIndex);
        var notes = new List<string>();
        if (generationNote is not null)
        {
            notes.Add(generationNote);
        }
        if (snapshots.Count == 0)
        {
            snapshots = [EmptyStoreBase(@namespace, complete, notes)];
        }

        PointInTimePlan plan = target.LogIndex is long index
            ? PlanLogIndex(@namespace, target, index, snapshots, complete, lastArchived, notes)
            : UsesRecordTimes(complete)
                ? PlanRecordTime(@namespace, target, target.Time!.Value, snapshots, complete, lastArchived, notes, timeCut)
                : PlanTime(@namespace, target, target.Time!.Value, snapshots, byId, complete, lastArchived, notes);
        return WithLayoutEnd(WithDiscontinuities(plan));
    }

    /// <summary>Log indexes UnisonDB consumed (a failed append) inside the restored segments, from
    /// the first record replay applies to the last laid out, become notes with the exact indexes
    /// (or, where the source does not record them, their number); the discontinuities between
    /// segments are noted by <see cref="Chain"/>.</summary>
    private static PointInTimePlan WithDiscontinuities(PointInTimePlan plan)
    {
        var notes = new List<string>();
        long from = plan.StartLogIndex ?? (plan.Segments.Count > 0 ? plan.Segments[0].FirstLogIndex : 0);
        foreach (PlannedSegment p in plan.Segments)
        {
            ArchivedSegment s = p.Source;
            if (s.PayloadFormat == Wal.WalPayloadFormat.Opaque || s.EntryCount == 0)
            {
                continue;
            }
            if (s.LogIndexGaps is { } gaps)
            {
                foreach (Wal.WalLogIndexGap g in gaps.Where(g => g.Next <= p.LastLogIndex && g.Next > from))
                {
                    notes.Add($"Log index discontinuity in segment {s.SegmentId} at offset {g.Offset}: log index {g.Next} follows {g.After}; {Wal.WalDirectory.FormatRange(g.After + 1, g.Next - 1)} never written (UnisonDB consumes a log index when an append fails); no record is missing.");
                }
            }
            else if (s.LastLogIndex - s.FirstLogIndex + 1 > s.EntryCount && p.LastLogIndex >= from)
            {
                long missing = s.LastLogIndex - s.FirstLogIndex + 1 - s.EntryCount;
                notes.Add($"Segment {s.SegmentId} holds {s.EntryCount} records for log indexes {s.FirstLogIndex}..{s.LastLogIndex}: {missing} log index{(missing == 1 ? " was" : "es were")} never written inside it (UnisonDB consumes a log index when an append fails); this archive does not record which. No record is missing.");
            }
        }
        return notes.Count == 0 ? plan : plan with { Notes = [.. plan.Notes, .. notes] };
    }

    /// <summary>With no snapshot at all, a UnisonDB namespace restores from nothing but its WAL: the
    /// engine, finding no <c>unison.db</c>, creates an empty store whose checkpoint is 0:0 and
    /// replays every segment from the first (what <c>store-recover</c> on a WAL-only directory does),
    /// so the archive must hold the WAL from its first segment, id 1 (walfs numbers segments from 1),
    /// with UnisonDB payloads (a record's own log index and time; another writer's WAL may not
    /// rebuild a store from empty). Otherwise NoSnapshot, saying which condition failed.</summary>
    private static RestorableSnapshot EmptyStoreBase(string ns, Dictionary<long, ArchivedSegment> complete, List<string> notes)
    {
        string? why = null;
        ArchivedSegment? first = complete.Count == 0 ? null : complete[complete.Keys.Min()];
        if (first is null)
        {
            why = "and no archived WAL either";
        }
        else if (first.SegmentId != 1)
        {
            why = $"and its archived WAL starts at segment {first.SegmentId} (log index {first.FirstLogIndex}), not at the WAL's first segment (1), so it cannot be replayed into an empty store";
        }
        else if (complete.Values.FirstOrDefault(s => s.EntryCount > 0 && s.PayloadFormat == Wal.WalPayloadFormat.Opaque) is { } opaque)
        {
            why = $"and its archived WAL is not UnisonDB's (segment {opaque.SegmentId}'s records carry no log index and time of their own), so nothing says it rebuilds a store from empty";
        }
        if (why is not null)
        {
            throw new NotFoundException("NoSnapshot",
                $"Namespace '{ns}' has no complete store snapshot to restore from, {why}. Create one with New-StoreSnapshot; point-in-time restore replays the WAL forward from a snapshot (or, for a UnisonDB WAL archived from segment 1, from an empty store).", ns);
        }
        long applied = Math.Max(0, first!.FirstLogIndex - 1);
        notes.Add($"No store snapshot: the restore starts from an empty store and lays out only wal/ (no unison.db), from segment 1 (log index {first.FirstLogIndex}); UnisonDB creates the store at start-up and replays the WAL from 0:0.");
        return new RestorableSnapshot
        {
            Id = RestorableSnapshot.EmptyStoreId,
            CreatedAt = DateTimeOffset.MinValue,
            CompletedAt = DateTimeOffset.MinValue,
            Wal = new WalPosition([1], applied, applied),
            Store = Snapshots.StoreEngines.None,
            Files = [],
            Location = "the archived WAL from segment 1",
            EmptyStore = true,
        };
    }

    /// <summary>Raft log truncation rewrites a sealed segment id and deletes the later ones: the
    /// archive then holds generations of an id. The history live at <paramref name="t"/> takes, id
    /// by id, the newest generation that was live by then (<see cref="ArchivedSegment.LiveFrom"/> at
    /// or before t); once a rewritten generation is taken, older generations of later ids whose
    /// records all predate its rewrite were deleted by that truncation and are left out.</summary>
    private static IReadOnlyList<ArchivedSegment> LiveGenerations(IReadOnlyList<ArchivedSegment> segments, DateTimeOffset t, out string? note)
    {
        note = null;
        if (!segments.Any(s => s.Generation > 0))
        {
            return segments;
        }
        var result = new List<ArchivedSegment>();
        var chosen = new List<string>();
        DateTimeOffset floor = DateTimeOffset.MinValue;
        foreach (IGrouping<long, ArchivedSegment> id in segments.GroupBy(s => s.SegmentId).OrderBy(g => g.Key))
        {
            var candidates = id
                .Where(s => (s.LiveFrom ?? DateTimeOffset.MinValue) <= t)
                .Where(s => s.Generation > 0 ? (s.LiveFrom ?? DateTimeOffset.MaxValue) >= floor : (s.LastRecordTime ?? s.SealedAt ?? s.CreatedAt) >= floor)
                .ToList();
            if (candidates.Count == 0)
            {
                continue;
            }
            int generation = candidates.Max(s => s.Generation);
            var copies = candidates.Where(s => s.Generation == generation).ToList();
            result.AddRange(copies);
            if (id.Any(s => s.Generation != generation))
            {
                chosen.Add($"{id.Key}: generation {generation}");
            }
            if (generation > 0 && copies[0].LiveFrom is { } from && from > floor)
            {
                floor = from;
            }
        }
        if (chosen.Count > 0)
        {
            note = $"Raft log truncation rewrote archived segments; the history live at the target uses segment {string.Join(", ", chosen)}.";
        }
        return result;
    }

    /// <summary>Every archived segment with records carries its records' own times (UnisonDB
    /// payloads): a time target is then cut at the exact record.</summary>
    private static bool UsesRecordTimes(Dictionary<long, ArchivedSegment> complete) =>
        complete.Values.Any(s => s.EntryCount > 0) && complete.Values.Where(s => s.EntryCount > 0).All(s => s.HasRecordTimes);

    /// <summary>When the layout ends with a whole sealed segment, an empty active segment follows
    /// it (same naming), so the database can keep writing after the restore.</summary>
    private static PointInTimePlan WithLayoutEnd(PointInTimePlan plan)
    {
        if (plan.Segments.Count == 0 || plan.TimeCutSegmentId is not null)
        {
            return plan;
        }
        PlannedSegment last = plan.Segments[^1];
        // UnisonDB's segments only (walfs v1, or payloads UnisonDB wrote): another writer of the
        // format (the example database) rotates by itself when it reopens its WAL.
        if (last.Cut || !last.Source.Sealed || (last.Source.Version != 1 && last.Source.PayloadFormat == Wal.WalPayloadFormat.Opaque))
        {
            return plan;
        }
        long id = last.SegmentId + 1;
        return plan with
        {
            EmptyActiveSegmentId = id,
            Notes = [.. plan.Notes, $"The target ends at the end of sealed segment {last.SegmentId}; an empty active segment {id} is laid out after it, since walfs does not write into a sealed newest segment."],
        };
    }

    /// <summary>The snapshot a time target starts from: the newest whose records all lie at or
    /// before <paramref name="t"/> (ties: the one that applied more); none is
    /// TargetBeforeFirstSnapshot, naming the oldest.</summary>
    private static RestorableSnapshot SnapshotForTime(string ns, string shown, DateTimeOffset t, IReadOnlyList<RestorableSnapshot> snapshots)
    {
        var eligible = snapshots.Where(s => HoldsNothingAfter(s) is { } c && c <= t).ToList();
        if (eligible.Count == 0)
        {
            RestorableSnapshot? first = snapshots.Where(s => HoldsNothingAfter(s) is not null).MinBy(HoldsNothingAfter);
            throw new TargetBeforeFirstSnapshotException(first is null
                ? $"No snapshot of namespace '{ns}' records when it completed, so none can serve a time target. Restore to a log index (-TargetLogIndex) instead."
                : $"The target {shown} is before the first snapshot of namespace '{ns}': the oldest, '{first.Id}', holds records up to {Format(HoldsNothingAfter(first)!.Value)}. Choose a target at or after that time.",
                Format(t));
        }
        return eligible.OrderByDescending(HoldsNothingAfter).ThenByDescending(s => s.Wal.AppliedLogIndex ?? -1).First();
    }

    /// <summary>A time target over records that carry their own time: every record whose time is
    /// at or before T, in log order, up to the first that is later (UnisonDB's HLC is the record's
    /// own clock, so no shipping observation is needed). The segment straddling T is named in
    /// <see cref="PointInTimePlan.TimeCutSegmentId"/> until a <see cref="TimeCut"/> of it is given.</summary>
    private static PointInTimePlan PlanRecordTime(string ns, RestoreTarget target, DateTimeOffset t, IReadOnlyList<RestorableSnapshot> snapshots,
        Dictionary<long, ArchivedSegment> complete, long? lastArchived, List<string> notes, TimeCut? timeCut)
    {
        string shown = target.ToString();
        RestorableSnapshot snapshot = SnapshotForTime(ns, shown, t, snapshots);
        long? applied = snapshot.Wal.AppliedLogIndex;
        long start = StartOf(snapshot, complete, notes);
        long? firstId = FirstSegmentOf(snapshot, start, complete);

        long durable = start - 1;
        DateTimeOffset? lastTime = null;
        string? why = null;
        long? pending = null;
        bool reachedEnd = false;
        for (long id = firstId ?? long.MaxValue; firstId is not null; id++)
        {
            if (!complete.TryGetValue(id, out ArchivedSegment? seg))
            {
                reachedEnd = !complete.Keys.Any(k => k > id);
                if (!reachedEnd)
                {
                    why = $"segment {id} is not archived";
                }
                break;
            }
            if (seg.EntryCount == 0 || seg.LastLogIndex < start)
            {
                continue;
            }
            if (seg.LastRecordTime <= t)
            {
                durable = Math.Max(durable, seg.LastLogIndex);
                lastTime = seg.LastRecordTime;
                continue;
            }
            if (seg.FirstRecordTime > t)
            {
                why = $"the next record, log index {seg.FirstLogIndex} (the first of segment {id}), was written at {Format(seg.FirstRecordTime!.Value)}, after the target";
                break;
            }
            if (timeCut is { } cut && cut.SegmentId == id)
            {
                if (cut.LastLogIndex is long l && l > durable)
                {
                    durable = l;
                    lastTime = cut.LastTime;
                }
                why = cut.NextLogIndex is long n
                    ? $"the next record, log index {n} in segment {id}, was written at {(cut.NextTime is { } nt ? Format(nt) : "an unknown time")}, after the target"
                    : null;
            }
            else
            {
                pending = id;
                durable = Math.Max(durable, seg.LastLogIndex); // provisional, until the segment is read
            }
            break;
        }
        if (firstId is null)
        {
            reachedEnd = true;
        }

        long effective = Math.Max(durable, applied ?? durable);
        bool past = pending is null && reachedEnd && lastArchived is not null && effective >= lastArchived;
        if (past)
        {
            notes.Add($"The target {shown} is past the last archived record ({lastArchived}{(lastTime is { } lt ? $", written at {Format(lt)}" : "")}); restoring to the latest state the backups hold. Records written after it were not shipped.");
        }
        else if (pending is null)
        {
            notes.Add($"Restoring every record written at or before the target: up to log index {effective}{(lastTime is { } lt2 && effective == durable ? $" (written at {Format(lt2)})" : "")}{(why is not null ? $"; {why}" : "")}.");
        }
        if (applied is long ap && ap > durable)
        {
            notes.Add($"Snapshot '{snapshot.Id}' (holding records up to {Format(HoldsNothingAfter(snapshot)!.Value)}) already holds records up to {ap}, later than the last record written at or before the target; all of them were written by then.");
        }
        List<PlannedSegment> chain = Chain(ns, snapshot, start, effective, complete, firstId, notes);
        return new PointInTimePlan
        {
            Namespace = ns,
            Target = target,
            Snapshot = snapshot,
            StartLogIndex = applied is null ? null : start,
            Segments = chain,
            LastLogIndex = effective,
            LastRecordTime = effective == durable ? lastTime : null,
            TargetPastArchive = past,
            LastArchivedLogIndex = lastArchived,
            Notes = notes,
            TimeCutSegmentId = pending,
        };
    }

    /// <summary>The first log index replay applies: the snapshot's applied index + 1, or the first
    /// record of the oldest segment the snapshot saw (replay skips what the store already holds).</summary>
    private static long StartOf(RestorableSnapshot snapshot, Dictionary<long, ArchivedSegment> complete, List<string> notes)
    {
        if (snapshot.Wal.AppliedLogIndex is long a)
        {
            return a + 1;
        }
        long? oldest = snapshot.Wal.SegmentIds.Count > 0 ? snapshot.Wal.SegmentIds.Min() : complete.Keys.Count > 0 ? complete.Keys.Min() : null;
        if (oldest is long id && !complete.ContainsKey(id))
        {
            throw new WalGapException(
                $"Snapshot '{snapshot.Id}' records no applied log index, so replay must start at the oldest segment present when it was taken, {id}, which is not archived in the source. Restore from another snapshot or recover segment {id}.",
                snapshot.Id, [id]);
        }
        notes.Add($"Snapshot '{snapshot.Id}' records no applied log index; the WAL is laid out from segment {oldest?.ToString(CultureInfo.InvariantCulture) ?? "(none)"} and replay skips what the store already holds.");
        return oldest is long o ? complete[o].FirstLogIndex : (snapshot.Wal.HighestLogIndex ?? 0) + 1;
    }

    /// <summary>The id of the first segment to lay out: the snapshot's checkpoint segment when it
    /// records one (UnisonDB opens its reader there, so it must be present even when every record
    /// in it is already applied), else the segment holding <paramref name="start"/>; null when
    /// nothing archived holds it.</summary>
    private static long? FirstSegmentOf(RestorableSnapshot snapshot, long start, Dictionary<long, ArchivedSegment> complete)
    {
        if (snapshot.Wal.Checkpoint is { } cp)
        {
            return cp.SegmentId;
        }
        return complete.Values.Where(s => s.EntryCount > 0 && s.FirstLogIndex <= start && start <= s.LastLogIndex).MinBy(s => s.SegmentId)?.SegmentId
            ?? complete.Values.Where(s => s.EntryCount > 0 && s.FirstLogIndex > start).MinBy(s => s.SegmentId)?.SegmentId;
    }

    private static PointInTimePlan PlanLogIndex(string ns, RestoreTarget target, long wanted, IReadOnlyList<RestorableSnapshot> snapshots,
        Dictionary<long, ArchivedSegment> complete, long? lastArchived, List<string> notes)
    {
        long maxApplied = snapshots.Max(s => s.Wal.AppliedLogIndex ?? 0);
        long end = Math.Max(lastArchived ?? 0, maxApplied);
        bool past = wanted > end;
        long effective = past ? end : wanted;
        // A snapshot serves a log-index target when it provably holds nothing after it: its applied
        // index is at or below the target, or, when its store records none, the WAL's high-water
        // mark when its copy had finished is (the copy cannot hold a record the WAL did not).
        var eligible = snapshots.Where(s => Bound(s) is long b && b <= effective).ToList();
        if (eligible.Count == 0)
        {
            var known = snapshots.Where(s => Bound(s) is not null).OrderBy(s => Bound(s)).ToList();
            throw new TargetBeforeFirstSnapshotException(known.Count == 0
                ? $"No snapshot of namespace '{ns}' records an applied log index or the WAL's end when it finished, so none can be proven to hold nothing after log index {wanted}. Restore to a time (-TargetTime) instead, or take a new snapshot."
                : $"Log index {wanted} is before the first snapshot of namespace '{ns}': the oldest, '{known[0].Id}', may already contain records up to log index {Bound(known[0])}. A restore cannot remove records; choose a target at or after {Bound(known[0])}.",
                wanted.ToString(CultureInfo.InvariantCulture));
        }
        RestorableSnapshot snapshot = eligible
            .OrderByDescending(s => s.Wal.AppliedLogIndex is not null)
            .ThenByDescending(s => Bound(s))
            .ThenByDescending(s => s.CompletedAt ?? s.CreatedAt)
            .First();
        if (past)
        {
            notes.Add($"Log index {wanted} is past the last archived record ({end}); restoring to the latest archived record, {end}. Records after it were never shipped.");
        }
        long start;
        long? startIndex;
        if (snapshot.Wal.AppliedLogIndex is long applied)
        {
            start = applied + 1;
            startIndex = start;
            if (!snapshot.EmptyStore)
            {
                notes.Add(snapshot.Wal.Checkpoint is { } cp
                ? $"Snapshot '{snapshot.Id}' holds records up to log index {applied} (its checkpoint, {cp.SegmentId}:{cp.Offset}); replay starts at {applied + 1}."
                : $"Snapshot '{snapshot.Id}' holds records up to log index {applied}; replay starts at {applied + 1}.");
            }
        }
        else
        {
            start = OldestStart(ns, snapshot, complete);
            startIndex = null;
            notes.Add($"Snapshot '{snapshot.Id}' records no applied log index, but holds no record after {snapshot.Wal.CompletedLogIndex} (the WAL's end when its copy finished); the WAL is laid out from log index {start} and replay skips what the store already holds.");
        }
        List<PlannedSegment> chain = Chain(ns, snapshot, start, effective, complete, snapshot.Wal.Checkpoint?.SegmentId, notes);
        effective = StopAtWrittenRecord(chain, effective, past, notes);
        return new PointInTimePlan
        {
            Namespace = ns,
            Target = target,
            Snapshot = snapshot,
            StartLogIndex = startIndex,
            Segments = chain,
            LastLogIndex = effective,
            TargetPastArchive = past,
            LastArchivedLogIndex = lastArchived,
            Notes = notes,
        };
    }

    /// <summary>A log-index target UnisonDB consumed (never written) ends the restore at the record
    /// before it, and the plan says so: inside a segment (its recorded discontinuities; the cut
    /// there keeps the records before the target) or between two segments (the chain ends with the
    /// earlier one).</summary>
    private static long StopAtWrittenRecord(List<PlannedSegment> chain, long effective, bool past, List<string> notes)
    {
        if (past || chain.Count == 0 || chain[^1].Source.PayloadFormat == Wal.WalPayloadFormat.Opaque)
        {
            return effective;
        }
        PlannedSegment last = chain[^1];
        long stop = effective;
        if (last.LastLogIndex < effective)
        {
            stop = last.LastLogIndex; // the next segment starts after the target
        }
        else if (last.Source.LogIndexGaps?.FirstOrDefault(g => g.After < effective && effective < g.Next) is { } g)
        {
            stop = g.After;
            chain[^1] = last with { LastLogIndex = g.After };
        }
        if (stop != effective)
        {
            notes.Add($"Log index {effective} was never written (UnisonDB consumes a log index when an append fails); the restore ends at log index {stop}, the last record before it.");
        }
        return stop;
    }

    /// <summary>The last log index a snapshot can hold: its applied index, else the WAL's end when its copy finished.</summary>
    private static long? Bound(RestorableSnapshot s) => s.Wal.AppliedLogIndex ?? s.Wal.CompletedLogIndex;

    /// <summary>The latest instant a snapshot may hold a record from: when its copy completed, or,
    /// for a store with a WAL checkpoint (UnisonDB), the checkpoint record's own time (HLC), since
    /// the store holds exactly the records up to it and record times rise with the log index; a
    /// UnisonDB store with no checkpoint has applied no record at all.</summary>
    private static DateTimeOffset? HoldsNothingAfter(RestorableSnapshot s)
    {
        if (s.EmptyStore)
        {
            return DateTimeOffset.MinValue;
        }
        if (s.Wal.Checkpoint is { Hlc: long hlc } && hlc > 0 && s.Wal.AppliedLogIndex is not null)
        {
            DateTimeOffset data = DateTimeOffset.FromUnixTimeMilliseconds(Math.Min(hlc, DateTimeOffset.MaxValue.ToUnixTimeMilliseconds()));
            return s.CompletedAt is { } c && c < data ? c : data;
        }
        if (s.Wal.Checkpoint is null && s.Wal.AppliedLogIndex == 0 && s.Store is Snapshots.StoreEngines.Bolt or Snapshots.StoreEngines.Lmdb)
        {
            return DateTimeOffset.MinValue;
        }
        return s.CompletedAt;
    }

    /// <summary>First record of the oldest segment present when the snapshot began (it must be archived).</summary>
    private static long OldestStart(string ns, RestorableSnapshot snapshot, Dictionary<long, ArchivedSegment> complete)
    {
        long? oldest = snapshot.Wal.SegmentIds.Count > 0 ? snapshot.Wal.SegmentIds.Min() : complete.Keys.Count > 0 ? complete.Keys.Min() : null;
        if (oldest is long id && !complete.ContainsKey(id))
        {
            throw new WalGapException(
                $"Snapshot '{snapshot.Id}' records no applied log index, so replay must start at the oldest segment present when it was taken, {id}, which is not archived in the source. Restore from another snapshot or recover segment {id}.",
                snapshot.Id, [id]);
        }
        return oldest is long o ? complete[o].FirstLogIndex : (snapshot.Wal.HighestLogIndex ?? 0) + 1;
    }

    private static PointInTimePlan PlanTime(string ns, RestoreTarget target, DateTimeOffset t, IReadOnlyList<RestorableSnapshot> snapshots,
        Dictionary<long, IReadOnlyList<ArchivedSegment>> byId, Dictionary<long, ArchivedSegment> complete, long? lastArchived, List<string> notes)
    {
        string shown = target.ToString();
        RestorableSnapshot snapshot = SnapshotForTime(ns, shown, t, snapshots);
        long? applied = snapshot.Wal.AppliedLogIndex;

        // Where the WAL starts: applied + 1, or the first record of the oldest segment the
        // snapshot saw (replay skips what the store already holds).
        long start;
        if (applied is long a)
        {
            start = a + 1;
        }
        else
        {
            long? oldest = snapshot.Wal.SegmentIds.Count > 0 ? snapshot.Wal.SegmentIds.Min() : complete.Keys.Count > 0 ? complete.Keys.Min() : null;
            if (oldest is long id && !complete.ContainsKey(id))
            {
                throw new WalGapException(
                    $"Snapshot '{snapshot.Id}' records no applied log index, so replay must start at the oldest segment present when it was taken, {id}, which is not archived in the source. Restore from another snapshot or recover segment {id}.",
                    snapshot.Id, [id]);
            }
            start = oldest is long o ? complete[o].FirstLogIndex : (snapshot.Wal.HighestLogIndex ?? 0) + 1;
            notes.Add($"Snapshot '{snapshot.Id}' records no applied log index; the WAL is laid out from segment {oldest?.ToString(CultureInfo.InvariantCulture) ?? "(none)"} and replay skips what the store already holds.");
        }

        // The last record provably durable at T: walk the segments from the one holding start.
        long durable = start - 1;
        ArchivedSegment? at = complete.Values.Where(s => s.FirstLogIndex <= start && start <= s.LastLogIndex).MinBy(s => s.SegmentId);
        string? stopReason = null;
        bool reachedEnd = false;
        if (at is null)
        {
            reachedEnd = lastArchived is null || lastArchived < start;
        }
        for (long id = at?.SegmentId ?? -1; at is not null; id++)
        {
            if (!byId.TryGetValue(id, out IReadOnlyList<ArchivedSegment>? copies))
            {
                reachedEnd = !complete.Keys.Any(k => k > id);
                break;
            }
            ArchivedSegment full = complete[id];
            if (full.FirstLogIndex != durable + 1 && id != at.SegmentId)
            {
                break; // a log-index discontinuity; Chain reports it if the target lies past it
            }
            // The most this id proves durable at T.
            long before = durable;
            long best = durable;
            foreach (ArchivedSegment s in copies)
            {
                DateTimeOffset? proof = s.Sealed ? s.SealedAt : s.ObservedAt;
                if (proof is { } p && p <= t && s.FirstLogIndex <= durable + 1)
                {
                    best = Math.Max(best, s.LastLogIndex);
                }
            }
            durable = best;
            if (!(full.Sealed && full.SealedAt is { } sealedAt && sealedAt <= t && best >= full.LastLogIndex))
            {
                stopReason = full.Sealed
                    ? $"segment {id} was sealed at {(full.SealedAt is { } sa ? Format(sa) : "an unrecorded time")}, after the target, and no prefix of it was observed by then, so none of its records is provably durable at the target"
                    : $"segment {id} is an unsealed copy{(full.ObservedAt is { } ob ? $" observed at {Format(ob)}" : " with no observation time")}";
                if (best > before)
                {
                    stopReason = $"of segment {id}, records up to {best} were observed by the target";
                }
                break;
            }
        }

        // Evidence of records durable at T past where the walk stopped: a later segment sealed by
        // T, or one created by T (walfs seals a segment before it creates the next). Then the
        // walk stopped at a hole, and the target lies across a WAL gap.
        long effective = Math.Max(durable, applied ?? durable);
        long needed = complete.Values
            .Select(s => s.Sealed && s.SealedAt is { } sa && sa <= t ? s.LastLogIndex : s.CreatedAt <= t ? s.FirstLogIndex - 1 : long.MinValue)
            .DefaultIfEmpty(long.MinValue)
            .Max();
        if (needed > effective)
        {
            Chain(ns, snapshot, start, needed, complete); // names the missing ids or log indexes
            throw new WalGapException(
                $"Cannot restore namespace '{ns}' to {shown}: archived segments show records up to log index {needed} were durable by then, but only records up to {effective} can be laid out from snapshot '{snapshot.Id}'. Nothing was written. Recover the missing segments into the backup root, or choose an earlier target.",
                snapshot.Id, []);
        }

        bool past = reachedEnd && lastArchived is not null && effective >= lastArchived;
        if (past)
        {
            ArchivedSegment last = complete.Values.MaxBy(s => s.LastLogIndex)!;
            notes.Add($"The target {shown} is past the last archived record ({lastArchived}, in segment {last.SegmentId}{(last.SealedAt is { } lsa ? $" sealed at {Format(lsa)}" : "")}); restoring to the latest state the backups hold, log index {effective}. Records written after it were not shipped.");
        }
        else if (stopReason is not null)
        {
            notes.Add($"Restoring up to log index {effective}, the last record provably durable at the target: {stopReason}.");
        }
        if (applied is long ap && ap > durable)
        {
            notes.Add($"Snapshot '{snapshot.Id}' (holding records up to {Format(HoldsNothingAfter(snapshot)!.Value)}) already holds records up to {ap}, later than the archived WAL proves durable at the target; all of them were written by then.");
        }
        List<PlannedSegment> chain = Chain(ns, snapshot, start, effective, complete, snapshot.Wal.Checkpoint?.SegmentId, notes);
        return new PointInTimePlan
        {
            Namespace = ns,
            Target = target,
            Snapshot = snapshot,
            StartLogIndex = applied is null ? null : start,
            Segments = chain,
            LastLogIndex = effective,
            TargetPastArchive = past,
            LastArchivedLogIndex = lastArchived,
            Notes = notes,
        };
    }

    /// <summary>The segments holding <paramref name="start"/>..<paramref name="last"/>, ids and log
    /// indexes contiguous. When <paramref name="start"/> &gt; <paramref name="last"/> (the snapshot
    /// holds the target itself) the segment holding <paramref name="last"/>, cut there, when it
    /// is archived: the database's log then resumes right after the target.</summary>
    /// <remarks>With <paramref name="firstSegmentId"/> (a snapshot's checkpoint segment) the chain
    /// starts at that segment, which must be archived, even when all its records are applied.
    /// Forward log-index jumps between segments whose payloads carry their own index are
    /// UnisonDB's consumed indexes: noted in <paramref name="notes"/>, not a gap.</remarks>
    private static List<PlannedSegment> Chain(string ns, RestorableSnapshot snapshot, long start, long last,
        Dictionary<long, ArchivedSegment> complete, long? firstSegmentId = null, List<string>? notes = null)
    {
        // A store with a WAL checkpoint (UnisonDB) starts replay by reading the record at the
        // checkpoint and skipping it: that record's segment must be laid out too, even when the
        // next record is the first of the following segment.
        if (snapshot.Wal.Checkpoint?.LogIndex is long checkpointRecord && checkpointRecord >= 1 && checkpointRecord < start && checkpointRecord <= last)
        {
            start = checkpointRecord;
        }
        var chain = new List<PlannedSegment>();
        ArchivedSegment? checkpointSegment = null;
        if (firstSegmentId is long cpId && snapshot.Wal.Checkpoint is not null)
        {
            if (!complete.TryGetValue(cpId, out checkpointSegment))
            {
                throw Gap(ns, snapshot, start, last, [cpId],
                    $"segment {cpId}, which holds the store's checkpoint record ({cpId}:{snapshot.Wal.Checkpoint.Offset}) where the database starts its replay, is not archived");
            }
            if (snapshot.Wal.Checkpoint.LogIndex is long cpIndex && checkpointSegment.EntryCount > 0 &&
                (cpIndex < checkpointSegment.FirstLogIndex || cpIndex > checkpointSegment.LastLogIndex))
            {
                throw new IntegrityException("CheckpointNotInSegment",
                    $"Snapshot '{snapshot.Id}' says the store's checkpoint record, log index {cpIndex}, is at {cpId}:{snapshot.Wal.Checkpoint.Offset}, but archived segment {cpId} holds log indexes {checkpointSegment.FirstLogIndex}..{checkpointSegment.LastLogIndex}. The snapshot and the archived WAL do not belong together; nothing was written.",
                    snapshot.Id);
            }
        }
        if (start > last)
        {
            ArchivedSegment? holding = checkpointSegment is not null && checkpointSegment.LastLogIndex >= last ? checkpointSegment
                : complete.Values.Where(s => s.EntryCount > 0 && s.FirstLogIndex <= last && last <= s.LastLogIndex).MinBy(s => s.SegmentId);
            if (holding is not null && last >= 1)
            {
                chain.Add(new PlannedSegment(holding, last));
            }
            return chain;
        }
        ArchivedSegment? first = checkpointSegment ?? complete.Values.Where(s => s.EntryCount > 0 && s.FirstLogIndex <= start && start <= s.LastLogIndex).MinBy(s => s.SegmentId);
        if (first is null && notes is not null)
        {
            // start may be an index UnisonDB consumed: the next decoded segment then begins after it.
            ArchivedSegment? nextDecoded = complete.Values.Where(s => s.EntryCount > 0 && s.FirstLogIndex > start && s.PayloadFormat != Wal.WalPayloadFormat.Opaque).MinBy(s => s.SegmentId);
            ArchivedSegment? before = nextDecoded is null ? null : complete.GetValueOrDefault(nextDecoded.SegmentId - 1);
            if (nextDecoded is not null && before is not null && before.LastLogIndex < start && before.PayloadFormat != Wal.WalPayloadFormat.Opaque)
            {
                first = nextDecoded;
            }
        }
        if (first is null)
        {
            // Which ids should hold the record: between the newest archived segment below it and
            // the oldest above it; below everything archived, the ids the snapshot saw.
            ArchivedSegment? below = complete.Values.Where(s => s.LastLogIndex < start).MaxBy(s => s.SegmentId);
            ArchivedSegment? above = complete.Values.Where(s => s.FirstLogIndex > start).MinBy(s => s.SegmentId);
            var missing = new List<long>();
            if (below is not null && above is not null)
            {
                for (long id = below.SegmentId + 1; id < above.SegmentId; id++)
                {
                    missing.Add(id);
                }
            }
            else if (above is not null)
            {
                missing.AddRange(snapshot.Wal.SegmentIds.Where(id => id < above.SegmentId && !complete.ContainsKey(id)).Order());
            }
            throw Gap(ns, snapshot, start, last, missing,
                $"log index {start}, the first record after snapshot '{snapshot.Id}', is in no archived segment{(above is not null ? $" (the next archived segment, {above.SegmentId}, starts at {above.FirstLogIndex})" : "")}");
        }
        long next = start;
        ArchivedSegment current = first;
        while (true)
        {
            long upTo = Math.Min(current.LastLogIndex, last);
            chain.Add(new PlannedSegment(current, upTo));
            if (upTo >= last)
            {
                return chain;
            }
            next = Math.Max(upTo, current.LastLogIndex) + 1;
            long nextId = current.SegmentId + 1;
            if (!complete.TryGetValue(nextId, out ArchivedSegment? following))
            {
                ArchivedSegment? after = complete.Values.Where(s => s.SegmentId > nextId).MinBy(s => s.SegmentId);
                var missing = new List<long>();
                for (long id = nextId; id < (after?.SegmentId ?? nextId + 1); id++)
                {
                    missing.Add(id);
                }
                throw Gap(ns, snapshot, start, last, missing,
                    after is null
                        ? $"segment {nextId} (log index {next} on) is not archived"
                        : $"segment{(missing.Count == 1 ? "" : "s")} {string.Join(", ", missing)} {(missing.Count == 1 ? "is" : "are")} not archived (log indexes {next}..{after.FirstLogIndex - 1})");
            }
            if (following.FirstLogIndex > last && following.FirstLogIndex > next && notes is not null &&
                current.PayloadFormat != Wal.WalPayloadFormat.Opaque && following.PayloadFormat != Wal.WalPayloadFormat.Opaque)
            {
                return chain; // the target is an index consumed between the two: it ends with this segment
            }
            if (following.FirstLogIndex > next && notes is not null &&
                current.PayloadFormat != Wal.WalPayloadFormat.Opaque && following.PayloadFormat != Wal.WalPayloadFormat.Opaque)
            {
                notes.Add($"Log index discontinuity between segments {current.SegmentId} and {nextId}: {Wal.WalDirectory.FormatRange(next, following.FirstLogIndex - 1)} never written (UnisonDB consumes a log index when an append fails); no record is missing.");
            }
            else if (following.FirstLogIndex != next)
            {
                string what = !current.Sealed
                    ? $"segment {current.SegmentId} is archived only as an unsealed prefix ending at log index {current.LastLogIndex}, and segment {nextId} starts at {following.FirstLogIndex}"
                    : following.FirstLogIndex > next
                        ? $"segment {nextId} starts at log index {following.FirstLogIndex} but segment {current.SegmentId} ends at {current.LastLogIndex}: log indexes {next}..{following.FirstLogIndex - 1} are missing"
                        : $"segment {nextId} starts at log index {following.FirstLogIndex}, overlapping segment {current.SegmentId}, which ends at {current.LastLogIndex}";
                throw Gap(ns, snapshot, start, last, [], what);
            }
            current = following;
        }
    }

    private static WalGapException Gap(string ns, RestorableSnapshot snapshot, long start, long last, IReadOnlyList<long> missing, string what) =>
        new($"Cannot restore namespace '{ns}' to log index {last} from snapshot '{snapshot.Id}': the archived WAL has a gap between {start} and {last}: {what}. Nothing was written. Recover the missing segments into the backup root, or choose a target before the gap.",
            snapshot.Id, missing);

    /// <summary>Of several copies of one id, the one holding the most: a sealed one if any.</summary>
    private static ArchivedSegment Best(IReadOnlyList<ArchivedSegment> copies) =>
        copies.OrderByDescending(s => s.Sealed).ThenByDescending(s => s.EntryCount).First();

    private static string Format(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture);
}
