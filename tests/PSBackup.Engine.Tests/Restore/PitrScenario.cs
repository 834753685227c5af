using System.Collections.Immutable;
using PSBackup.Engine.Restore;
using PSBackup.Engine.Snapshots;
using PSBackup.Engine.Tests.Support;
using PSBackup.Engine.Wal;
using PSBackup.Example;

namespace PSBackup.Engine.Tests.Restore;

/// <summary>A clock a test moves by hand.</summary>
internal sealed class ManualClock(DateTimeOffset now) : TimeProvider
{
    public DateTimeOffset Now { get; set; } = now;
    public override DateTimeOffset GetUtcNow() => Now;
}

/// <summary>One example namespace written record by record with known times and log indexes,
/// three snapshots taken along the way and its sealed segments shipped to two folders of the
/// local backup root. Remembers the full row state after every record. Built once per class.
/// <see cref="RepositoryPitrScenario"/> also takes each snapshot and ships the WAL into a
/// local-folder repository, at the same instants.</summary>
public class PitrScenario : IDisposable
{
    public const string Ns = "users";
    public const long SegmentSize = 16 << 10;
    public static readonly DateTimeOffset Base = new(2026, 3, 1, 0, 0, 0, TimeSpan.Zero);
    private readonly TestDirectory _dir = new();

    public PitrScenario()
        : this(withRepository: false)
    {
    }

    protected PitrScenario(bool withRepository)
    {
        Root = _dir.Path;
        DataDir = _dir.Combine("data");
        if (withRepository)
        {
            Repository = new PSBackup.Engine.Repository.RepositoryTarget { Location = _dir.Combine("repository") };
            Assert.NotNull(PSBackup.Engine.Repository.RepositoryOperations.InitializeAsync(new PSBackup.Engine.Repository.InitializeRepositoryOptions(Repository) { Unencrypted = true }, OperationContext.Default).GetAwaiter().GetResult());
        }
        string nsDir = Path.Combine(DataDir, Ns);
        var random = new Random(4711);
        var clock = new ManualClock(Base);
        var context = new OperationContext { Clock = clock };
        var state = ImmutableSortedDictionary.Create<string, ExampleRow>(StringComparer.Ordinal);
        States.Add(state);
        RecordTimes.Add(Base);
        long timeMs = Base.ToUnixTimeMilliseconds();
        using (var writer = ExampleWriter.Create(nsDir, Base, SegmentSize))
        {
            const int records = 900;
            for (int i = 1; i <= records; i++)
            {
                timeMs += random.Next(200, 4000);
                string key = $"user:{random.Next(120):000}";
                ExampleRecord record = random.Next(8) == 0
                    ? ExampleRecord.Delete(key, timeMs)
                    : ExampleRecord.Put(key, System.Text.Encoding.UTF8.GetBytes($"{{\"i\":{i},\"pad\":\"{new string('x', random.Next(10, 160))}\"}}"), timeMs);
                long index = writer.Append(record);
                Assert.Equal(i, index);
                state = record.Op == ExampleOp.Put
                    ? state.SetItem(key, new ExampleRow(key, Convert.ToHexString(record.Value).ToLowerInvariant(), index, timeMs))
                    : state.Remove(key);
                States.Add(state);
                RecordTimes.Add(record.Timestamp);
                if (i % 25 == 0)
                {
                    writer.ApplyUpTo(writer.LastLogIndex - random.Next(5, 30));
                }
                if (i is 170 or 420 or 650)
                {
                    writer.ApplyUpTo(writer.LastLogIndex - random.Next(5, 20));
                    // The snapshot runs "now": just after this record, before the next one.
                    clock.Now = record.Timestamp.AddMilliseconds(1);
                    StoreSnapshotResult snapshot = SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(DataDir, Ns, $"snapshots/s{i}.sqlite"), context).GetAwaiter().GetResult()!;
                    Assert.Equal(writer.AppliedLogIndex, snapshot.WalPosition.AppliedLogIndex);
                    Snapshots.Add((snapshot.Path, writer.AppliedLogIndex, clock.Now));
                    if (Repository is not null)
                    {
                        StoreSnapshotResult stored = SnapshotOperations.CreateAsync(new NewStoreSnapshotOptions(DataDir, Ns, null) { Repository = Repository }, context).GetAwaiter().GetResult()!;
                        Assert.Equal(writer.AppliedLogIndex, stored.WalPosition.AppliedLogIndex);
                        RepositorySnapshots.Add((stored.BackupId!, writer.AppliedLogIndex, clock.Now));
                    }
                }
                if (i == 500)
                {
                    WalShipResult first = WalOperations.ShipAsync(new InvokeWalShipOptions(DataDir, Ns, "wal/2026-03-01") { SealedOnly = true }, context).GetAwaiter().GetResult();
                    FirstShipLastId = first.Backups.Max(b => b.SegmentId);
                    if (Repository is not null)
                    {
                        WalOperations.ShipAsync(new InvokeWalShipOptions(DataDir, Ns, null) { Repository = Repository, SealedOnly = true }, context).GetAwaiter().GetResult();
                    }
                }
            }
            LastLogIndex = writer.LastLogIndex;
        }
        // Sealed segments only: these scenarios are about sealed archives (partials: PartialShipTests).
        WalOperations.ShipAsync(new InvokeWalShipOptions(DataDir, Ns, "wal/later") { AfterSegmentId = FirstShipLastId, SealedOnly = true }, context).GetAwaiter().GetResult();
        if (Repository is not null)
        {
            WalOperations.ShipAsync(new InvokeWalShipOptions(DataDir, Ns, null) { Repository = Repository, SealedOnly = true }, context).GetAwaiter().GetResult();
        }

        BackupRoot = Path.Combine(DataDir, "backups", Ns);
        foreach (string file in Directory.EnumerateFiles(BackupRoot, "*.wal", SearchOption.AllDirectories))
        {
            WalSegmentInfo info = WalSegmentReader.Inspect(file, Ns);
            Assert.True(info.Valid && info.Sealed);
            Archived.Add(info);
        }
        Archived.Sort((a, b) => a.SegmentId.CompareTo(b.SegmentId));
    }

    public string Root { get; }
    /// <summary>The local-folder repository (null for the plain scenario).</summary>
    public PSBackup.Engine.Repository.RepositoryTarget? Repository { get; }
    /// <summary>(backup id, applied log index, completed at) of the repository snapshots, oldest first.</summary>
    public List<(string BackupId, long Applied, DateTimeOffset CompletedAt)> RepositorySnapshots { get; } = [];
    public string DataDir { get; }
    public string BackupRoot { get; }
    /// <summary>Row state after each log index (index 0: empty).</summary>
    public List<ImmutableSortedDictionary<string, ExampleRow>> States { get; } = [];
    /// <summary>Each record's timestamp by log index.</summary>
    public List<DateTimeOffset> RecordTimes { get; } = [];
    /// <summary>(path, applied log index, completed at), oldest first.</summary>
    public List<(string Path, long Applied, DateTimeOffset CompletedAt)> Snapshots { get; } = [];
    public List<WalSegmentInfo> Archived { get; } = [];
    public long FirstShipLastId { get; }
    public long LastLogIndex { get; }
    public long LastArchivedLogIndex => Archived[^1].LastLogIndex!.Value;

    public string NewTarget(string name) => Path.Combine(Root, "restores", name);

    /// <summary>What a time target must restore to, computed from the scenario, not by the planner:
    /// the newest snapshot completed by T, and every archived segment sealed by T.</summary>
    public long ExpectedIndexAt(DateTimeOffset t)
    {
        long applied = Snapshots.Where(s => s.CompletedAt <= t).Max(s => s.Applied);
        long sealedThrough = Archived.Where(s => s.LastModifiedAt <= t).Select(s => s.LastLogIndex!.Value).DefaultIfEmpty(0).Max();
        return Math.Max(applied, sealedThrough);
    }

    /// <summary>Replays the restored namespace as the database does on start and returns its rows.</summary>
    public static ExampleState ReplayAndRead(string targetDataDir)
    {
        string nsDir = Path.Combine(targetDataDir, Ns);
        ExampleStore.Replay(nsDir);
        return ExampleStore.ReadState(ExampleStore.DbPath(nsDir));
    }

    public void AssertStateAt(long logIndex, ExampleState actual)
    {
        Assert.Equal(logIndex, actual.AppliedLogIndex);
        var expected = States[(int)logIndex].Values.ToList();
        Assert.Equal(expected.Count, actual.Rows.Count);
        Assert.Equal(expected, actual.Rows);
    }

    public void Dispose()
    {
        _dir.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>The scenario with its snapshots and WAL also in a local-folder repository.</summary>
public sealed class RepositoryPitrScenario : PitrScenario
{
    public RepositoryPitrScenario()
        : base(withRepository: true)
    {
    }
}
