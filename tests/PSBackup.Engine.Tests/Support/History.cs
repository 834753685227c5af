using System.Text.Json;
using PSBackup.Engine.Events;

namespace PSBackup.Engine.Tests.Support;

/// <summary>Every operation records an <see cref="OperationEvent"/> in its history (also a refusal
/// that writes nothing else). Tests that prove "nothing was written" or count the drill's and WAL
/// gap's own events look past those records with these helpers.</summary>
internal static class History
{
    public static bool IsOperationEvent(byte[] content)
    {
        try
        {
            using JsonDocument doc = JsonDocument.Parse(content);
            return doc.RootElement.ValueKind == JsonValueKind.Object
                && doc.RootElement.TryGetProperty("kind", out JsonElement k) && k.ValueKind == JsonValueKind.String
                && k.GetString() == OperationEvent.EventKind;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>True for an operation event file below an <c>events</c> folder (a local history
    /// <c>.../events/&lt;name&gt;.json</c>, or a folder repository's <c>events/&lt;ns&gt;/&lt;name&gt;.json</c>).</summary>
    public static bool IsOperationEventFile(string path) =>
        File.Exists(path) && path.Split(Path.DirectorySeparatorChar).Contains("events")
        && SpecialFiles.KindOf(path) == FileKind.Regular // a planted FIFO is never opened: that would block
        && IsOperationEvent(File.ReadAllBytes(path));

    /// <summary>True for a folder that holds operation event files and no other file (e.g. the
    /// <c>backups/&lt;ns&gt;/events</c> a refused operation created to record its refusal).</summary>
    public static bool OnlyHoldsOperationEvents(string folder)
    {
        string[] files = Directory.GetFiles(folder, "*", SearchOption.AllDirectories);
        return files.Length > 0 && files.All(IsOperationEventFile);
    }

    /// <summary>The event files of a folder other than operation events (none when it is missing).</summary>
    public static string[] OtherEventFiles(string folder) =>
        Directory.Exists(folder) ? Directory.GetFiles(folder).Where(f => !IsOperationEventFile(f)).ToArray() : [];

    /// <summary>The events of a log other than operation events.</summary>
    public static IReadOnlyList<StoredEvent> OtherEvents(IReadOnlyList<StoredEvent> events) =>
        events.Where(e => e.Kind != OperationEvent.EventKind).ToList();
}
