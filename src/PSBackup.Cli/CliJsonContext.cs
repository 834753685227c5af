using System.Text.Json;
using System.Text.Json.Serialization;
using PSBackup.Engine.ObjectStore;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Restore;
using PSBackup.Engine.Snapshots;
using PSBackup.Engine.Wal;

namespace PSBackup.Cli;

/// <summary>Build-time metadata of every JSON shape the CLI writes (<c>--json</c>, the JSON lines
/// of <c>wal ship --follow</c>). A Native AOT publish has no reflection-based serializer, and
/// <see cref="CliOutput.Json"/> resolves through this context only, so a type missing here throws
/// in every test run as well, not just in the published binary. The options match
/// <see cref="CliOutput.Json"/> (which adds the enum converters, one per enum).</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, WriteIndented = true)]
// object backup / restore: the one result, or a list when objects were named by wildcard.
[JsonSerializable(typeof(ObjectBackupResult))]
[JsonSerializable(typeof(IReadOnlyList<ObjectBackupResult>))]
[JsonSerializable(typeof(ObjectRestoreResult))]
[JsonSerializable(typeof(IReadOnlyList<ObjectRestoreResult>))]
[JsonSerializable(typeof(CliOutput.SweepJson))]
// wal
[JsonSerializable(typeof(CliOutput.WalListJson))]
[JsonSerializable(typeof(CliOutput.SeedShipResponse))]
[JsonSerializable(typeof(ShippedSegment))]
// snapshot, repo, key
[JsonSerializable(typeof(CliOutput.RepositorySnapshotJson))]
[JsonSerializable(typeof(CliOutput.LocalSnapshotJson))]
[JsonSerializable(typeof(RepositoryInfo))]
[JsonSerializable(typeof(KeyFileInfo))]
// snapshot restore, pitr
[JsonSerializable(typeof(StoreSnapshotRestoreResult))]
[JsonSerializable(typeof(CliOutput.PlanJson))]
[JsonSerializable(typeof(CliOutput.PointInTimeJson))]
// list, check, repair, sync, prune
[JsonSerializable(typeof(MaintenanceOutput.ListJson))]
[JsonSerializable(typeof(RepositoryCheckResult))]
[JsonSerializable(typeof(RepairResult))]
[JsonSerializable(typeof(SyncResult))]
[JsonSerializable(typeof(RetentionOutput.PruneJson))]
// test-restore, health, metrics
[JsonSerializable(typeof(DrillOutput.DrillJson))]
[JsonSerializable(typeof(CliApp.HealthJson))]
[JsonSerializable(typeof(CliApp.MetricsJson))]
internal sealed partial class CliJsonContext : JsonSerializerContext;
