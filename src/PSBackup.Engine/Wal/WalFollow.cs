using System.Buffers.Binary;
using System.Globalization;
using PSBackup.Engine.Events;

namespace PSBackup.Engine.Wal;

/// <summary>How <see cref="WalOperations.FollowAsync"/> runs.</summary>
public sealed record WalFollowOptions
{
    /// <summary>How often the live WAL is polled (directory listing and the newest segment's
    /// 64-byte header); at least 100 ms. 5 s by default.</summary>
    public TimeSpan Interval { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>The longest wait between attempts while shipping fails (storage down, a gap): the
    /// wait doubles from <see cref="Interval"/> up to this, with ±50 % jitter.</summary>
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromMinutes(5);
    /// <summary>A successful pass is written to the operation history at most this often (a
    /// summary of what was shipped since), so a follower shipping every second does not add an
    /// event per second; failures are recorded when a run of them starts.</summary>
    public TimeSpan HistoryEvery { get; init; } = TimeSpan.FromMinutes(10);
}

/// <summary>One line of a follower's state after a poll: how far behind the live WAL the archive is.</summary>
public sealed record WalFollowStatus
{
    public required string Namespace { get; init; }
    public required DateTimeOffset Time { get; init; }
    /// <summary>The live WAL's last log index as its newest segment's header tells (null: unknown).</summary>
    public long? LiveLastLogIndex { get; init; }
    /// <summary>The last log index the archive holds after this pass (null: nothing shipped yet by this follower).</summary>
    public long? ArchivedLastLogIndex { get; init; }
    /// <summary>Records written but not archived yet (0 when the archive is current).</summary>
    public long LagRecords { get; init; }
    /// <summary>How long the oldest unarchived change has been waiting (0 when current).</summary>
    public TimeSpan Lag { get; init; }
    /// <summary>Items this pass shipped (0 for an idle poll).</summary>
    public int Shipped { get; init; }
    /// <summary>The error of a failed pass (the follower waits and tries again).</summary>
    public string? Error { get; init; }
    /// <summary>How long the follower waits before the next attempt after a failure.</summary>
    public TimeSpan? RetryIn { get; init; }
    /// <summary>Where this pass spent its time, phase by phase (null for a pass that shipped nothing new to look at).</summary>
    public WalPassCost? Cost { get; init; }

    public override string ToString() => Error is not null
        ? $"{Namespace}: ship failed ({Error}); retrying in {RetryIn?.TotalSeconds.ToString("0.#", CultureInfo.InvariantCulture)} s"
        : $"{Namespace}: lag {Lag.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture)} s, {LagRecords} record(s); live log index {LiveLastLogIndex?.ToString(CultureInfo.InvariantCulture) ?? "?"}, archived {ArchivedLastLogIndex?.ToString(CultureInfo.InvariantCulture) ?? "?"}; {Shipped} item(s) shipped{(Cost is null ? "" : "; " + Cost)}";
}

/// <summary>The continuous shipper (<c>Invoke-WalShip -Continuous</c>, <c>wal ship --follow</c>):
/// polls the live WAL cheaply and ships partials and newly sealed segments as they appear, until
/// cancelled.</summary>
/// <remarks>
/// <para>A poll lists <c>wal/</c> and reads the newest segment's 64-byte header, which walfs
/// rewrites with every append (entry count, the low 32 bits of WriteOffset, LastModifiedAt;
/// <c>pkg/walfs/segment.go</c> Write) and at seal, plus its length. Only when that differs from
/// what the last successful pass saw does a pass run (the same ship as a one-shot
/// <c>Invoke-WalShip</c>, which validates the active prefix in full). An idle database therefore
/// costs a directory listing and a 64-byte read per interval.</para>
/// <para>AfterSegmentId advances to the newest sealed segment shipped, so a pass validates and
/// hashes only what is new (plus the segment before it), not the whole archive. State is a few
/// numbers: memory stays flat for days.</para>
/// <para>Failures (storage errors, a gap, a segment changing under the read) do not end the
/// follower: it reports them, waits Interval × 2^n (at most MaxBackoff) with ±50 % jitter so many
/// followers do not retry in step, and tries again. Bad input, and a repository that is not there
/// when it starts, end it at once.</para>
/// </remarks>
internal static class WalFollow
{
    /// <summary>What a poll saw: the newest segment, its header bytes and length, the segment count.</summary>
    private readonly record struct Poll(long NewestId, int Count, long Length, UInt128 Header, long? LastLogIndex)
    {
        public bool SameWal(Poll other) => NewestId == other.NewestId && Count == other.Count && Length == other.Length && Header == other.Header;
    }

    public static async Task RunAsync(InvokeWalShipOptions options, WalFollowOptions follow, Action<ShippedSegment> shipped, Action<WalFollowStatus>? status,
        OperationContext context, Func<InvokeWalShipOptions, OperationContext, WalPassClock?, WalRepositorySession?, Task<WalShipResult>> ship)
    {
        CancellationToken ct = context.CancellationToken;
        string ns = options.Namespace;
        string walDir = WalOperations.RequireWalDirectory(options.DataDir, ns);
        var random = new Random();
        long after = options.AfterSegmentId;
        Poll? done = null;
        DateTimeOffset? waitingSince = null;
        long? archivedLast = null;
        int failures = 0;
        bool reached = false;
        var recorder = new HistoryThrottle(options, follow.HistoryEvery, context);
        var clock = new WalPassClock();
        // Into a repository, what the passes share (the open repository, the index cut down to
        // what the next pass deduplicates against, the refs): see WalRepositorySession.
        await using WalRepositorySession? session = options.Repository is { } target ? new WalRepositorySession(target, ns) : null;
        try
        {
            while (!ct.IsCancellationRequested)
            {
                clock.Restart();
                long tickStart = context.Clock.GetTimestamp();
                Poll now = Read(walDir, ns);
                clock.Lap(WalPassPhase.Poll);
                DateTimeOffset polled = context.UtcNow;
                TimeSpan wait = follow.Interval;
                if (done is not { } d || !d.SameWal(now) || failures > 0)
                {
                    waitingSince ??= polled;
                    try
                    {
                        WalShipResult result = await ship(options with { AfterSegmentId = after }, context, clock, session).ConfigureAwait(false);
                        int count = 0;
                        foreach (ShippedSegment s in result.Backups)
                        {
                            if (!s.Partial)
                            {
                                after = Math.Max(after, s.SegmentId);
                            }
                            if (s.LastLogIndex is long last)
                            {
                                archivedLast = Math.Max(archivedLast ?? last, last);
                            }
                            if (!s.AlreadyPresent)
                            {
                                count++;
                                shipped(s);
                            }
                        }
                        done = now;
                        failures = 0;
                        clock.Skip();
                        reached = true;
                        await recorder.SucceededAsync(result.Backups.Where(b => !b.AlreadyPresent).Sum(b => b.Bytes), count).ConfigureAwait(false);
                        DateTimeOffset finished = context.UtcNow;
                        // Anything the WAL gained while this pass ran is still behind: the next pass ships it.
                        Poll next = Read(walDir, ns);
                        clock.Lap(WalPassPhase.Poll);
                        bool behind = !next.SameWal(now);
                        status?.Invoke(new WalFollowStatus
                        {
                            Namespace = ns,
                            Time = finished,
                            LiveLastLogIndex = next.LastLogIndex,
                            ArchivedLastLogIndex = archivedLast,
                            LagRecords = next.LastLogIndex is long liveLast && archivedLast is long a ? Math.Max(0, liveLast - a) : 0,
                            Lag = count > 0 ? finished - waitingSince.Value : behind ? finished - polled : TimeSpan.Zero,
                            Shipped = count,
                            Cost = clock.Snapshot(),
                        });
                        waitingSince = behind ? polled : null;
                        // Passes start at most once per interval (start to start): a pass that
                        // took longer is followed at once, a shorter one waits out the rest. Back
                        // to back passes would ship more, smaller partials (each re-cut at the
                        // last one's chunk boundaries, and each a pack, an index object and a
                        // manifest) for a lag already bounded by the interval plus one pass.
                        wait = follow.Interval - context.Clock.GetElapsedTime(tickStart);
                        if (wait < TimeSpan.Zero)
                        {
                            wait = TimeSpan.Zero;
                        }
                    }
                    catch (OperationCanceledException) when (ct.IsCancellationRequested)
                    {
                        break;
                    }
                    catch (Exception e) when (IsRetryable(e, reached))
                    {
                        failures++;
                        if (session is not null)
                        {
                            // Start the next attempt from scratch, as a one-shot ship would: the
                            // repository may have moved, been restored or replaced meanwhile.
                            await session.ResetAsync().ConfigureAwait(false);
                        }
                        double factor = Math.Pow(2, Math.Min(failures - 1, 20));
                        double capped = Math.Min(follow.Interval.TotalMilliseconds * factor, follow.MaxBackoff.TotalMilliseconds);
                        wait = TimeSpan.FromMilliseconds(Math.Max(follow.Interval.TotalMilliseconds, capped * (0.5 + random.NextDouble())));
                        if (failures == 1)
                        {
                            await recorder.FailedAsync(e).ConfigureAwait(false);
                        }
                        status?.Invoke(new WalFollowStatus
                        {
                            Namespace = ns,
                            Time = context.UtcNow,
                            LiveLastLogIndex = now.LastLogIndex,
                            ArchivedLastLogIndex = archivedLast,
                            LagRecords = now.LastLogIndex is long liveLast && archivedLast is long a ? Math.Max(0, liveLast - a) : 0,
                            Lag = context.UtcNow - waitingSince!.Value,
                            Error = e is PSBackupException p ? $"{p.ErrorId}: {p.Message}" : e.Message,
                            RetryIn = wait,
                            Cost = clock.Snapshot(),
                        });
                    }
                }
                if (wait > TimeSpan.Zero)
                {
                    try
                    {
                        await Task.Delay(wait, context.Clock, ct).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException)
                    {
                        break;
                    }
                }
            }
        }
        finally
        {
            await recorder.FlushAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Bad input (a wrong name, path or credential) will not get better by waiting: it
    /// ends the follower. So does a repository (or Azure container) that is not there when the
    /// follower starts (<paramref name="reached"/> false): a mistyped location or one never
    /// initialised, which waiting cannot fix and nothing but Initialize-BackupRepository may
    /// create. Once a pass has reached it, a repository that goes missing (a disk unmounted, a
    /// share away) is an outage like any other and is retried. Everything else is retried.</summary>
    private static bool IsRetryable(Exception e, bool reached) =>
        e is not (InvalidInputException or Repository.RepositoryKeyException or ArgumentException or OperationCanceledException or OutOfMemoryException)
        && (reached || e is not NotFoundException { IsSetupFailure: true });

    /// <summary>The poll: list <c>wal/</c>, read the newest segment's header and length. A WAL that
    /// cannot be listed right now (a segment deleted between listing and reading) reads as a change.</summary>
    private static Poll Read(string walDir, string ns)
    {
        try
        {
            WalDirectoryListing listing = WalDirectory.List(walDir);
            if (listing.Segments.Count == 0)
            {
                return new Poll(-1, 0, 0, 0, null);
            }
            (long id, string path) = listing.Segments[^1];
            Span<byte> header = stackalloc byte[WalFormat.HeaderSize];
            long length;
            using (var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.None))
            {
                length = f.Length;
                int n = f.ReadAtLeast(header, header.Length, throwOnEndOfStream: false);
                header[n..].Clear();
            }
            UInt128 digest = Digest(header);
            long? last = null;
            try
            {
                WalHeader h = WalHeader.Decode(header);
                last = h.EntryCount > 0 ? (long)h.FirstLogIndex + (long)h.EntryCount - 1 : null;
            }
            catch (Exception e) when (e is PSBackupException or ArgumentException)
            {
            }
            return new Poll(id, listing.Segments.Count, length, digest, last);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or PSBackupException)
        {
            return new Poll(-2, 0, 0, (UInt128)Environment.TickCount64, null);
        }
    }

    private static UInt128 Digest(ReadOnlySpan<byte> header)
    {
        ulong a = 14695981039346656037UL, b = 1099511628211UL;
        for (int i = 0; i < header.Length; i += 8)
        {
            ulong w = BinaryPrimitives.ReadUInt64LittleEndian(header[i..]);
            a = (a ^ w) * 1099511628211UL;
            b = (b + w) * 6364136223846793005UL + 1442695040888963407UL;
        }
        return new UInt128(a, b);
    }

    /// <summary>Writes the follower's passes to the operation history sparsely: one summary
    /// success per <c>HistoryEvery</c> (bytes shipped since), and a failure when a run of them starts.</summary>
    private sealed class HistoryThrottle(InvokeWalShipOptions options, TimeSpan every, OperationContext context)
    {
        private long _bytes;
        private int _items;
        private DateTimeOffset? _last;

        public async Task SucceededAsync(long bytes, int items)
        {
            _bytes += bytes;
            _items += items;
            if (_items > 0 && (_last is null || context.UtcNow - _last.Value >= every))
            {
                await FlushAsync().ConfigureAwait(false);
            }
        }

        public async Task FlushAsync()
        {
            if (_items == 0)
            {
                return;
            }
            long bytes = _bytes;
            _bytes = 0;
            _items = 0;
            _last = context.UtcNow;
            var quiet = new OperationContext { Clock = context.Clock, AuditLogPath = context.AuditLogPath, CancellationToken = CancellationToken.None };
            await OperationRecorder.RunAsync(Scope(), quiet, _ => Task.FromResult(bytes), b => new OperationOutcome(b)).ConfigureAwait(false);
        }

        public async Task FailedAsync(Exception error)
        {
            var quiet = new OperationContext { Clock = context.Clock, AuditLogPath = context.AuditLogPath, CancellationToken = CancellationToken.None };
            try
            {
                await OperationRecorder.RunAsync<long>(Scope(), quiet, _ => Task.FromException<long>(error), _ => null).ConfigureAwait(false);
            }
            catch (Exception e) when (ReferenceEquals(e, error))
            {
                // recorded; the follower goes on
            }
        }

        private OperationScope Scope() => new()
        {
            Operation = "Invoke-WalShip",
            Category = OperationKinds.WalSegment,
            Namespace = options.Namespace,
            Target = options.Repository?.Location ?? options.BackupDir,
            DataDir = options.DataDir,
            Repository = options.Repository,
        };
    }
}
