namespace PSBackup.Engine.Snapshots;

public sealed record NewStoreSnapshotOptions(string DataDir, string Namespace, string? Path)
{
    /// <summary>Store the snapshot in this repository (then <see cref="Path"/> is not used).</summary>
    public Repository.RepositoryTarget? Repository { get; init; }

    /// <summary>Adapters tried, in order, to read the store's applied log index from the
    /// snapshot; null means <see cref="StoreAdapters.Default"/>.</summary>
    public IReadOnlyList<IStoreAdapter>? StoreAdapters { get; init; }

    /// <summary>UnisonDB's HTTP address (<c>http://host:8080</c>): the snapshot is made by the
    /// server's own <c>POST /api/v1/{namespace}/btree/backup</c> into the namespace's backup root,
    /// then verified and recorded (or stored in <see cref="Repository"/>).</summary>
    public Uri? Endpoint { get; init; }

    /// <summary>How long to wait for the endpoint's reply; null means 30 minutes.</summary>
    public TimeSpan? EndpointTimeout { get; init; }
}

/// <summary>The seed's response <c>{path, bytes}</c> plus what PSBackup records.</summary>
public sealed record StoreSnapshotResult
{
    public required string Namespace { get; init; }
    /// <summary>The snapshot file or folder; in a repository, its ref <c>snapshot/&lt;ns&gt;/&lt;UTC yyyyMMddTHHmmssZ&gt;</c>.</summary>
    public required string Path { get; init; }
    public required long Bytes { get; init; }
    /// <summary>The local manifest file; null when stored in a repository.</summary>
    public string? ManifestPath { get; init; }
    /// <summary>The repository the snapshot was stored in; null for a local snapshot.</summary>
    public string? Repository { get; init; }
    /// <summary>The snapshot's manifest id in the repository; null for a local snapshot.</summary>
    public string? BackupId { get; init; }
    /// <summary>Bytes this snapshot added to the repository; null for a local snapshot.</summary>
    public long? StoredBytes { get; init; }
    public required int FileCount { get; init; }
    public required WalPosition WalPosition { get; init; }
    /// <summary>The store engine snapshotted: "bolt", "lmdb" (UnisonDB's unison.db) or "db" (files of db/).</summary>
    public string? Store { get; init; }
    /// <summary>The store's WAL checkpoint recorded with the snapshot (UnisonDB), else null.</summary>
    public StoreCheckpoint? Checkpoint => WalPosition.Checkpoint;
    /// <summary>When the snapshot began (its WAL position is read first).</summary>
    public required DateTimeOffset CreatedAt { get; init; }
    /// <summary>When the snapshot was complete: the completedAt its manifest records.</summary>
    public required DateTimeOffset CompletedAt { get; init; }
    /// <summary>The instant the snapshot stands for, the same as Get-Backup's Time for it
    /// (<see cref="CompletedAt"/>): <c>Restore-PointInTime -TargetTime $s.Time</c> restores up to it.</summary>
    public DateTimeOffset Time => CompletedAt;
    /// <summary>Seconds the operation took (a number: ConvertTo-Json writes it as one).</summary>
    public required double Duration { get; init; }
}
