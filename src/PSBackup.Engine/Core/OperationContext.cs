namespace PSBackup.Engine;

/// <summary>What <see cref="OperationProgress.Completed"/> and <see cref="OperationProgress.Total"/> count.</summary>
public enum ProgressUnit
{
    /// <summary>Files, segments, objects: shown as "3 of 10".</summary>
    Items,
    /// <summary>Bytes: shown with sizes and a transfer rate.</summary>
    Bytes,
}

/// <summary>One step of progress on a long operation.</summary>
public sealed record OperationProgress(string Activity, string Status, long Completed, long Total, string? CurrentItem = null)
{
    /// <summary>What Completed and Total count; the front ends derive a rate and the time left from it.</summary>
    public ProgressUnit Unit { get; init; }

    public int PercentComplete => Total <= 0 ? -1 : (int)Math.Clamp(Completed * 100 / Total, 0, 100);
}

/// <summary>What every engine operation gets besides its options: the ShouldProcess stand-in
/// (cmdlets pass this.ShouldProcess, the CLI its --what-if logic), progress, cancellation and a
/// clock. The engine never sees a cmdlet.</summary>
public sealed class OperationContext
{
    /// <summary>Asked once per target before anything is written or deleted: (target, action).</summary>
    public Func<string, string, bool> ShouldProcess { get; init; } = static (_, _) => true;
    public IProgress<OperationProgress>? Progress { get; init; }
    public CancellationToken CancellationToken { get; init; }
    public TimeProvider Clock { get; init; } = TimeProvider.System;
    /// <summary>The audit log file (JSON Lines); null: <c>PSBACKUP_AUDIT_LOG</c>, else the default
    /// (see <see cref="Events.AuditLog"/>); <c>off</c> disables it.</summary>
    public string? AuditLogPath { get; init; }
    /// <summary>-WhatIf / --what-if: nothing may be written, not even the operation's history or audit line.</summary>
    public bool WhatIf { get; init; }

    public static OperationContext Default { get; } = new();

    public DateTimeOffset UtcNow => Clock.GetUtcNow();

    public void Report(string activity, string status, long completed, long total, string? item = null) =>
        Progress?.Report(new OperationProgress(activity, status, completed, total, item));

    /// <summary>Progress counted in bytes (copies, uploads, restores, verification).</summary>
    public void ReportBytes(string activity, string status, long completedBytes, long totalBytes, string? item = null) =>
        Progress?.Report(new OperationProgress(activity, status, completedBytes, totalBytes, item) { Unit = ProgressUnit.Bytes });
}

/// <summary>How one progress report reads for a person: the engine's status with the amount done,
/// the total and (bytes, after half a second) the rate since the activity began; and the seconds
/// left at that rate (-1 when unknown). The module's progress records and any other front end
/// share it.</summary>
public readonly record struct ProgressEstimate(string Status, int SecondsRemaining, double Rate)
{
    /// <summary>Below this much elapsed time a rate is noise and is not shown (it still estimates).</summary>
    public static readonly TimeSpan MinimumForRateText = TimeSpan.FromMilliseconds(500);

    public static ProgressEstimate Of(OperationProgress value, TimeSpan elapsed)
    {
        ArgumentNullException.ThrowIfNull(value);
        string status = string.IsNullOrWhiteSpace(value.Status) ? value.Activity : value.Status;
        double rate = elapsed > TimeSpan.Zero && value.Completed > 0 ? value.Completed / elapsed.TotalSeconds : 0;
        int remaining = value.Total > 0 && rate > 0
            ? (int)Math.Min(int.MaxValue, Math.Ceiling(Math.Max(0, value.Total - value.Completed) / rate))
            : -1;
        string amount = value.Unit == ProgressUnit.Bytes
            ? value.Total > 0 ? $"{Sizes.Format(value.Completed)} of {Sizes.Format(value.Total)}" : Sizes.Format(value.Completed)
            : value.Total > 0 ? $"{value.Completed} of {value.Total}" : "";
        if (rate > 0 && value.Unit == ProgressUnit.Bytes && elapsed >= MinimumForRateText)
        {
            amount += $" at {Sizes.FormatRate(rate)}";
        }
        return new ProgressEstimate(amount.Length == 0 ? status : $"{status} ({amount})", remaining, rate);
    }
}

/// <summary>Lets a byte loop (a copy, a chunking read, a restore's writes) report progress within a
/// large file without flooding: <see cref="Due"/> is true at most about four times a second, and
/// also whenever another <see cref="ByteStep"/> bytes went by since the last report (so a large file
/// shows its progress even where time stands still for the reader, and a test can count on it).
/// Thread-safe.</summary>
public sealed class ProgressThrottle
{
    public static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(250);
    public const long ByteStep = 32L << 20;

    private readonly long _intervalTicks = (long)(Interval.TotalSeconds * System.Diagnostics.Stopwatch.Frequency);
    private readonly object _gate = new();
    private long _nextTimestamp = System.Diagnostics.Stopwatch.GetTimestamp() + (long)(Interval.TotalSeconds * System.Diagnostics.Stopwatch.Frequency);
    private long _lastPosition;

    /// <summary>True when a report of <paramref name="position"/> (bytes done so far) is due now.</summary>
    public bool Due(long position)
    {
        long now = System.Diagnostics.Stopwatch.GetTimestamp();
        lock (_gate)
        {
            if (now < _nextTimestamp && position - _lastPosition < ByteStep)
            {
                return false;
            }
            _nextTimestamp = now + _intervalTicks;
            _lastPosition = position;
            return true;
        }
    }
}
