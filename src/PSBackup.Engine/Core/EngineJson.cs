using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using PSBackup.Engine.Events;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Snapshots;
using PSBackup.Engine.Wal;

namespace PSBackup.Engine;

/// <summary>Build-time JSON metadata for every document the engine reads or writes: repository
/// objects, local manifests, events, the audit log, UnisonDB's backup API. Each set of options
/// (<see cref="RepositoryJson"/>, <see cref="ManifestIO.JsonOptions"/>, <see cref="EventLog"/> …)
/// resolves through this context only, with no reflection fallback, so the CLI runs as Native AOT
/// (where reflection-based serialization does not exist) and a type missing here fails every test
/// that touches it instead of only the AOT binary (docs/design.md, Performance, "Native AOT CLI").
/// The naming and null handling come from each options object at run time.</summary>
[JsonSerializable(typeof(RepositoryManifest))]
[JsonSerializable(typeof(RepositoryConfig))]
[JsonSerializable(typeof(KeyObject))]
[JsonSerializable(typeof(PackTrailer))]
[JsonSerializable(typeof(IndexObject))]
[JsonSerializable(typeof(RepositoryLockInfo))]
[JsonSerializable(typeof(DamagedPackMarker))]
[JsonSerializable(typeof(KnownRepositories.Entry))]
[JsonSerializable(typeof(BackupManifest))]
[JsonSerializable(typeof(OperationEvent))]
[JsonSerializable(typeof(RestoreDrillEvent))]
[JsonSerializable(typeof(WalGapEvent))]
[JsonSerializable(typeof(AuditEntry))]
[JsonSerializable(typeof(UnisonEndpoint.BtreeRequest))]
[JsonSerializable(typeof(UnisonEndpoint.WalRequest))]
[JsonSerializable(typeof(UnisonEndpoint.BtreeResponse))]
[JsonSerializable(typeof(UnisonEndpoint.WalResponse))]
[JsonSerializable(typeof(UnisonEndpoint.ErrorResponse))]
internal sealed partial class EngineJsonContext : JsonSerializerContext;

internal static class JsonInfo
{
    /// <summary>The metadata of <typeparamref name="T"/> under <paramref name="options"/> (whose
    /// resolver is <see cref="EngineJsonContext"/>): what the serializer's AOT-safe overloads take.
    /// A type not registered there throws <see cref="NotSupportedException"/>.</summary>
    public static JsonTypeInfo<T> Of<T>(JsonSerializerOptions options) => (JsonTypeInfo<T>)options.GetTypeInfo(typeof(T));
}
