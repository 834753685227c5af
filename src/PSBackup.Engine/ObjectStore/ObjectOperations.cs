namespace PSBackup.Engine.ObjectStore;

/// <summary>Engine operations behind New-ObjectBackup, Restore-ObjectBackup and Clear-StaleArtifact.</summary>
public static class ObjectOperations
{
    /// <summary>Copies <c>$DbRoot/&lt;Dir&gt;/&lt;Object&gt;</c> to the sibling
    /// <c>&lt;Object&gt;.backup-&lt;UTC yyyyMMddTHHmmss&gt;</c> plus its manifest. Null when ShouldProcess
    /// declined (-WhatIf).</summary>
    public static Task<ObjectBackupResult?> BackupAsync(NewObjectBackupOptions options, OperationContext context) =>
        ObjectBackup.RunAsync(options, context);

    /// <summary>Verifies a backup and swaps it in for the live object, keeping the replaced object
    /// aside. Null when ShouldProcess declined (-WhatIf).</summary>
    public static Task<ObjectRestoreResult?> RestoreAsync(RestoreObjectBackupOptions options, OperationContext context) =>
        ObjectRestore.RunAsync(options, context);

    /// <summary>Finds (and, where ShouldProcess allows, removes) stale .new/.old/.tmp artifacts
    /// under a root. Every artifact found is returned, removed or not.</summary>
    public static Task<IReadOnlyList<StaleArtifact>> ClearStaleArtifactsAsync(ClearStaleArtifactOptions options, OperationContext context) =>
        StaleArtifactSweep.RunAsync(options, context);
}
