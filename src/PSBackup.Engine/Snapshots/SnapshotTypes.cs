namespace PSBackup.Engine.Snapshots;

public sealed record NewStoreSnapshotOptions(string DataDir, string Namespace, string Path)
{
    /// <summary>Adapters tried, in order, to read the store's applied log index from the
    /// snapshot; null means <see cref="StoreAdapters.Default"/>.</summary>
    public IReadOnlyList<IStoreAdapter>? StoreAdapters { get; init; }
}

/// <summary>The seed's response <c>{path, bytes}</c> plus what PSBackup records.</summary>
public sealed record StoreSnapshotResult
{
    public required string Namespace { get; init; }
    public required string Path { get; init; }
    public required long Bytes { get; init; }
    public required string ManifestPath { get; init; }
    public required int FileCount { get; init; }
    public required WalPosition WalPosition { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public required TimeSpan Duration { get; init; }
}
