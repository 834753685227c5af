using PSBackup.Engine.Events;

namespace PSBackup.Engine.ObjectStore;

/// <summary>Engine operations behind New-ObjectBackup, Restore-ObjectBackup and Clear-StaleArtifact.</summary>
public static class ObjectOperations
{
    /// <summary>Copies <c>$DbRoot/&lt;Dir&gt;/&lt;Object&gt;</c> to the sibling
    /// <c>&lt;Object&gt;.backup-&lt;UTC yyyyMMddTHHmmss&gt;</c> plus its manifest. Null when ShouldProcess
    /// declined (-WhatIf).</summary>
    public static Task<ObjectBackupResult?> BackupAsync(NewObjectBackupOptions options, OperationContext context) =>
        OperationRecorder.RunAsync(new OperationScope { Operation = "New-ObjectBackup", Category = OperationKinds.Object, Namespace = options?.Dir, Target = $"{options?.Dir}/{options?.Object}", Repository = options?.Repository },
            context, c => ObjectBackup.RunAsync(options!, c), r => r is null ? null : new OperationOutcome(r.Bytes));

    /// <summary>Verifies a backup (a sibling folder, or one in <see cref="RestoreObjectBackupOptions.Repository"/>)
    /// and swaps it in for the live object, keeping the replaced object aside. Null when
    /// ShouldProcess declined (-WhatIf). A repository restore is recorded in that repository's
    /// history (the tenant dir as namespace); a local one only in the audit log.</summary>
    public static Task<ObjectRestoreResult?> RestoreAsync(RestoreObjectBackupOptions options, OperationContext context) =>
        OperationRecorder.RunAsync(new OperationScope { Operation = "Restore-ObjectBackup", Category = OperationKinds.ObjectRestore, Namespace = options?.Dir, Target = $"{options?.Dir}/{options?.Object}", Repository = options?.Repository, History = options?.Repository is not null },
            context, c => ObjectRestore.RunAsync(options!, c), r => r is null ? null : new OperationOutcome(r.Bytes));

    /// <summary>Finds (and, where ShouldProcess allows, removes) stale .new/.old/.tmp artifacts
    /// under a root. Every artifact found is returned, removed or not.</summary>
    public static Task<IReadOnlyList<StaleArtifact>> ClearStaleArtifactsAsync(ClearStaleArtifactOptions options, OperationContext context) =>
        OperationRecorder.RunAsync(new OperationScope { Operation = "Clear-StaleArtifact", Category = "sweep", Target = options?.Root, History = false },
            context, c => StaleArtifactSweep.RunAsync(options!, c), r => new OperationOutcome(r.Where(a => a.Removed).Sum(a => a.Bytes), r.All(a => a.Error is null), r.Any(a => a.Error is not null) ? "SweepIncomplete" : null, r.FirstOrDefault(a => a.Error is not null)?.Error));
}
