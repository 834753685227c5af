namespace PSBackup.Engine.ObjectStore;

/// <summary>Engine operations behind New-ObjectBackup, Restore-ObjectBackup and Clear-StaleArtifact.</summary>
public static class ObjectOperations
{
    /// <summary>Null when ShouldProcess declined (-WhatIf).</summary>
    public static Task<ObjectBackupResult?> BackupAsync(NewObjectBackupOptions options, OperationContext context) =>
        throw new NotImplementedException();

    /// <summary>Null when ShouldProcess declined (-WhatIf).</summary>
    public static Task<ObjectRestoreResult?> RestoreAsync(RestoreObjectBackupOptions options, OperationContext context) =>
        throw new NotImplementedException();

    public static Task<IReadOnlyList<StaleArtifact>> ClearStaleArtifactsAsync(ClearStaleArtifactOptions options, OperationContext context) =>
        throw new NotImplementedException();
}
