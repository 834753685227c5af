namespace PSBackup.Engine;

/// <summary>One step of progress on a long operation.</summary>
public sealed record OperationProgress(string Activity, string Status, long Completed, long Total, string? CurrentItem = null)
{
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
}
