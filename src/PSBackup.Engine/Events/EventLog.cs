using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using PSBackup.Engine.Storage;

namespace PSBackup.Engine.Events;

/// <summary>One event as stored: its unique name, kind, namespace, the UTC time its name carries,
/// and the whole JSON document (readers ignore fields and kinds they do not know).</summary>
public sealed record StoredEvent(string Name, string Kind, string Namespace, DateTimeOffset Time, JsonElement Data)
{
    /// <summary>The document as <typeparamref name="T"/> (e.g. <see cref="RestoreDrillEvent"/>).</summary>
    public T As<T>() => Data.Deserialize(JsonInfo.Of<T>(EventLog.Json))!;

    /// <summary>The kind of an event file that holds no JSON object (not JSON, too large, not a
    /// regular file): listed so health counts it as malformed instead of not seeing it.</summary>
    internal const string UnreadableKind = "(unreadable)";

    internal bool IsUnreadable => Kind == UnreadableKind;
}

/// <summary>A restore drill's outcome, as Test-Restore records it for health checks and metrics.</summary>
public sealed record RestoreDrillEvent
{
    public const string EventKind = "restore-drill";

    public int FormatVersion { get; init; } = 1;
    public string Kind { get; init; } = EventKind;
    public required string Namespace { get; init; }
    public required bool Passed { get; init; }
    /// <summary>The snapshot the drill restored (its id in the source), when it got that far.</summary>
    public string? Snapshot { get; init; }
    /// <summary>The repository's manifest id of that snapshot; null for a local backup root.</summary>
    public string? BackupId { get; init; }
    public required int Segments { get; init; }
    public required long Bytes { get; init; }
    public long? LastLogIndex { get; init; }
    public required double DurationSeconds { get; init; }
    public required IReadOnlyList<string> Errors { get; init; }
    /// <summary>When the drill started.</summary>
    public required DateTimeOffset Time { get; init; }
    public required string Host { get; init; }
}

/// <summary>Where events about a namespace's backups are kept: append-only, uniquely named JSON
/// documents <c>&lt;UTC yyyyMMddTHHmmssfffZ&gt;-&lt;8 hex&gt;.json</c>. Several writers never overwrite each
/// other, and listing one folder/prefix reads them all. The repository keeps them under
/// <c>events/&lt;ns&gt;/</c> (with the WAL-gap events), a local backup root under
/// <c>&lt;dataDir&gt;/backups/&lt;ns&gt;/events/</c>.</summary>
public interface IEventLog
{
    /// <summary>For messages: a folder or repository location.</summary>
    string Location { get; }

    /// <summary>Stores <paramref name="document"/> (any record with <c>kind</c> and <c>namespace</c>)
    /// as a new event of <paramref name="namespace"/> at <paramref name="time"/>; returns its name.</summary>
    Task<string> AppendAsync<T>(string @namespace, DateTimeOffset time, T document, CancellationToken ct);

    /// <summary>Every event of the namespace, oldest first. Documents that are not JSON objects
    /// are skipped (a reader must not fail on a stray file).</summary>
    Task<IReadOnlyList<StoredEvent>> ListAsync(string @namespace, CancellationToken ct);
}

/// <summary>Shared naming and serialization of event documents.</summary>
public static class EventLog
{
    private const string TimeFormat = "yyyyMMdd'T'HHmmssfff'Z'";

    internal static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        WriteIndented = true,
        TypeInfoResolver = EngineJsonContext.Default,
    };

    /// <summary>The event log of a local backup root: <c>&lt;dataDir&gt;/backups/&lt;ns&gt;/events/</c>.</summary>
    public static IEventLog ForDataDir(string dataDir) => new LocalEventLog(Path.Combine(dataDir, "backups"), dataDir);

    /// <summary>A history folder (-HistoryPath, <c>PSBACKUP_HISTORY_PATH</c>) laid out like a local
    /// backup root: <c>&lt;historyPath&gt;/&lt;ns&gt;/events/</c>; local object backups use it.</summary>
    public static IEventLog ForFolder(string historyPath) => new LocalEventLog(historyPath, historyPath);

    /// <summary>The event log of a repository: <c>events/&lt;ns&gt;/</c>.</summary>
    public static IEventLog ForBackend(IStorageBackend backend) => new RepositoryEventLog(backend);

    internal static string NewName(DateTimeOffset time) =>
        $"{time.UtcDateTime.ToString(TimeFormat, CultureInfo.InvariantCulture)}-{Convert.ToHexString(RandomNumberGenerator.GetBytes(4)).ToLowerInvariant()}.json";

    internal static byte[] Serialize<T>(T document) => JsonSerializer.SerializeToUtf8Bytes(document, JsonInfo.Of<T>(Json));

    /// <summary>Parses a stored event; null when the name or content is not an event's.</summary>
    internal static StoredEvent? Parse(string name, string @namespace, byte[]? content)
    {
        if (name.Length < 19 || !name.EndsWith(".json", StringComparison.Ordinal)
            || !DateTime.TryParseExact(name[..19], TimeFormat, CultureInfo.InvariantCulture,
                DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out DateTime time))
        {
            return null;
        }
        var at = new DateTimeOffset(time, TimeSpan.Zero);
        if (content is null)
        {
            return Unreadable(name, @namespace, at);
        }
        try
        {
            using JsonDocument doc = JsonDocument.Parse(content);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                return Unreadable(name, @namespace, at);
            }
            string kind = doc.RootElement.TryGetProperty("kind", out JsonElement k) && k.ValueKind == JsonValueKind.String ? k.GetString()! : "";
            return kind == StoredEvent.UnreadableKind ? Unreadable(name, @namespace, at) : new StoredEvent(name, kind, @namespace, at, doc.RootElement.Clone());
        }
        catch (JsonException)
        {
            return Unreadable(name, @namespace, at);
        }
    }

    private static StoredEvent Unreadable(string name, string @namespace, DateTimeOffset at) =>
        new(name, StoredEvent.UnreadableKind, @namespace, at, default);
}

/// <summary>Events as files of <c>&lt;root&gt;/&lt;ns&gt;/events/</c> (root: a data dir's <c>backups</c>
/// or a history folder), each written atomically (<see cref="Durable.WriteFileAsync"/>: <c>.tmp</c>,
/// fsync, rename without replacing); no link below <paramref name="linkBase"/> is followed.</summary>
internal sealed class LocalEventLog(string root, string linkBase) : IEventLog
{
    /// <summary>Events are small JSON documents; anything larger is not one.</summary>
    internal const int MaxEventBytes = 1 << 20;

    public string Location => root;

    private string Folder(string ns) => Path.Combine(root, SafePath.ValidateName(ns, "namespace"), "events");

    public async Task<string> AppendAsync<T>(string @namespace, DateTimeOffset time, T document, CancellationToken ct)
    {
        string folder = Folder(@namespace);
        SafePath.RejectLinksBelow(linkBase, folder, "event folder");
        Directory.CreateDirectory(folder);
        byte[] bytes = EventLog.Serialize(document);
        string name = EventLog.NewName(time);
        await Durable.WriteFileAsync(Path.Combine(folder, name), (s, c) => s.WriteAsync(bytes, c).AsTask(), ct).ConfigureAwait(false);
        return name;
    }

    public async Task<IReadOnlyList<StoredEvent>> ListAsync(string @namespace, CancellationToken ct)
    {
        string folder = Folder(@namespace);
        var events = new List<StoredEvent>();
        if (!Directory.Exists(folder))
        {
            return events;
        }
        foreach (string file in Directory.EnumerateFiles(folder, "*.json"))
        {
            byte[]? content = null;
            try
            {
                // Only regular files of a sane size are events: a FIFO or a huge stray file is never
                // read, and counts as a malformed event (null content).
                await using FileStream stream = SpecialFiles.OpenRegular(file);
                if (stream.Length <= MaxEventBytes)
                {
                    content = new byte[stream.Length];
                    await stream.ReadExactlyAsync(content, ct).ConfigureAwait(false);
                }
            }
            catch (Exception ex) when (ex is FileNotFoundException or EndOfStreamException)
            {
                continue; // removed or cut while listed
            }
            catch (InvalidInputException)
            {
                content = null;
            }
            if (EventLog.Parse(Path.GetFileName(file), @namespace, content) is { } e)
            {
                events.Add(e);
            }
        }
        return events.OrderBy(e => e.Name, StringComparer.Ordinal).ToList();
    }
}

/// <summary>Events as plain JSON objects <c>events/&lt;ns&gt;/&lt;name&gt;</c> of a repository (never compressed
/// or encrypted; see docs/repository-format.md).</summary>
internal sealed class RepositoryEventLog(IStorageBackend backend) : IEventLog
{
    public string Location => backend.Location;

    private static string Prefix(string ns) => $"events/{SafePath.ValidateName(ns, "namespace")}/";

    public async Task<string> AppendAsync<T>(string @namespace, DateTimeOffset time, T document, CancellationToken ct)
    {
        string name = EventLog.NewName(time);
        byte[] bytes = EventLog.Serialize(document);
        using var ms = new MemoryStream(bytes, writable: false);
        await backend.PutAsync(Prefix(@namespace) + name, ms, bytes.Length, ct).ConfigureAwait(false);
        return name;
    }

    public async Task<IReadOnlyList<StoredEvent>> ListAsync(string @namespace, CancellationToken ct)
    {
        string prefix = Prefix(@namespace);
        var events = new List<StoredEvent>();
        await foreach (StoredObject o in backend.ListAsync(prefix, ct).ConfigureAwait(false))
        {
            string name = o.Key[prefix.Length..];
            if (name.Contains('/', StringComparison.Ordinal) || !name.EndsWith(".json", StringComparison.Ordinal))
            {
                continue;
            }
            byte[]? content;
            try
            {
                content = await Repository.Repository.GetBytesAsync(backend, o.Key, ct, LocalEventLog.MaxEventBytes).ConfigureAwait(false);
            }
            catch (StorageNotFoundException)
            {
                continue; // deleted meanwhile
            }
            catch (Repository.RepositoryIntegrityException)
            {
                content = null; // too large to be an event, or not a regular file: malformed
            }
            if (EventLog.Parse(name, @namespace, content) is { } e)
            {
                events.Add(e);
            }
        }
        return events.OrderBy(e => e.Name, StringComparer.Ordinal).ToList();
    }

}
