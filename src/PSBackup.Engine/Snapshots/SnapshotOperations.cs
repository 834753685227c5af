namespace PSBackup.Engine.Snapshots;

/// <summary>Engine operation behind New-StoreSnapshot.</summary>
public static class SnapshotOperations
{
    /// <summary>Null when ShouldProcess declined (-WhatIf).</summary>
    public static Task<StoreSnapshotResult?> CreateAsync(NewStoreSnapshotOptions options, OperationContext context) =>
        throw new NotImplementedException();
}
