using PSBackup.Engine.Repository;
using PSBackup.Engine.Storage;
using PSBackup.Engine.Tests.Repository;
using Repo = PSBackup.Engine.Repository.Repository;

namespace PSBackup.Engine.Tests.Maintenance;

/// <summary>Builds small repositories with one backup of each kind, and lists backends for before/after comparisons.</summary>
internal static class MaintenanceTestSupport
{
    public static readonly DateTimeOffset T0 = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

    /// <summary>A repository at <paramref name="backend"/> holding an object backup (tenant/orders, begun
    /// T0, completed a minute later), a store snapshot of ns1 (T0+1h, completed T0+1h1m) and WAL segment 7
    /// of ns1 (sealed T0+2h), with a ref. Returns the manifest ids.</summary>
    public static async Task<(string Object, string Snapshot, string Segment)> PopulateAsync(IStorageBackend backend, string? passphrase = null)
    {
        Repo repo = await Repo.InitializeAsync(backend, RepositoryTestSupport.Small(passphrase));
        BackupCommitResult o = await RepositoryTestSupport.BackupAsync(repo,
            [("data/000.bin", RepositoryTestSupport.Data(300_000, 1)), ("fields.conf", "a:int\n"u8.ToArray())],
            info: new BackupInfo { Kind = BackupKind.Object, Dir = "tenant", Object = "orders", CreatedAt = T0, Consistency = "Stable" },
            clock: new ObjectStore.FixedClock(T0.AddMinutes(1)));
        BackupCommitResult s = await RepositoryTestSupport.BackupAsync(repo, [("db/data.db", RepositoryTestSupport.Data(200_000, 2))],
            profile: ChunkingProfile.Store,
            info: new BackupInfo { Kind = BackupKind.StoreSnapshot, Namespace = "ns1", CreatedAt = T0.AddHours(1), Wal = new WalPosition([6, 7], 120, 118) },
            clock: new ObjectStore.FixedClock(T0.AddHours(1).AddMinutes(1)));
        BackupCommitResult w = await RepositoryTestSupport.BackupAsync(repo, [("wal/000000007.wal", RepositoryTestSupport.Data(70_000, 3))],
            refName: "wal/ns1/000000007",
            info: new BackupInfo
            {
                Kind = BackupKind.WalSegment, Namespace = "ns1", CreatedAt = T0.AddHours(2),
                Segment = new RepositorySegment { SegmentId = 7, FirstLogIndex = 101, EntryCount = 20, Sealed = true, CreatedAt = T0.AddHours(1).AddMinutes(30), LastModifiedAt = T0.AddHours(2) },
            },
            clock: new ObjectStore.FixedClock(T0.AddHours(2).AddSeconds(5)));
        return (o.ManifestId, s.ManifestId, w.ManifestId);
    }

    /// <summary>Every object of a backend with its size and SHA-256: equal listings mean nothing changed.</summary>
    public static async Task<SortedDictionary<string, string>> ListingAsync(IStorageBackend backend)
    {
        var result = new SortedDictionary<string, string>(StringComparer.Ordinal);
        await foreach (StoredObject o in backend.ListAsync("", CancellationToken.None))
        {
            await using Stream s = await backend.GetAsync(o.Key, CancellationToken.None);
            result[o.Key] = $"{o.Size}:{Convert.ToHexString(await System.Security.Cryptography.SHA256.HashDataAsync(s))}";
        }
        return result;
    }

    /// <summary>Flips one byte of a file in place.</summary>
    public static void FlipByte(string path, long offset)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        fs.Position = offset;
        int b = fs.ReadByte();
        fs.Position = offset;
        fs.WriteByte((byte)(b ^ 0x5A));
    }
}
