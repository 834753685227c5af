using System.Text.Json;

namespace PSBackup.Engine.Repository;

/// <summary>What this user's clients have seen of repositories, kept outside every repository (whoever
/// can write the storage must not be able to change it): for each repository id opened encrypted,
/// one file <c>&lt;state&gt;/repositories/&lt;id&gt;.json</c>. A repository with that id whose config later
/// says "not encrypted" was downgraded by someone who could write the storage (keys deleted, config
/// replaced), and is refused instead of receiving plaintext. The folder is
/// <c>PSBACKUP_STATE_PATH</c>, else <c>&lt;user data folder&gt;/PSBackup/state</c>; <c>off</c> disables
/// it. Reading and writing it never fails an operation.</summary>
public static class KnownRepositories
{
    public const string PathVariable = "PSBACKUP_STATE_PATH";

    internal sealed record Entry(int FormatVersion, string Id, bool Encrypted, string Location, DateTimeOffset FirstSeen);

    /// <summary>The state folder, or null when disabled.</summary>
    public static string? Folder()
    {
        string? configured = Environment.GetEnvironmentVariable(PathVariable);
        if (!string.IsNullOrWhiteSpace(configured))
        {
            return string.Equals(configured.Trim(), "off", StringComparison.OrdinalIgnoreCase) ? null : Path.GetFullPath(configured);
        }
        string data = Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.DoNotVerify);
        return string.IsNullOrEmpty(data) ? null : Path.Combine(data, "PSBackup", "state");
    }

    private static string? EntryPath(string id) =>
        Hex.IsSha256Hex(id) && Folder() is { } folder ? Path.Combine(folder, "repositories", id + ".json") : null;

    /// <summary>True when a client of this user opened the repository <paramref name="id"/> encrypted before.</summary>
    public static bool WasEncrypted(string id)
    {
        string? path = EntryPath(id);
        if (path is null)
        {
            return false;
        }
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists || info.Length > 64 * 1024)
            {
                return false;
            }
            Entry? e = RepositoryJson.Deserialize<Entry>(File.ReadAllBytes(path));
            return e is { Encrypted: true } && e.Id == id;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
        {
            return false;
        }
    }

    /// <summary>Remembers that repository <paramref name="id"/> is encrypted (once; best effort).</summary>
    public static void RememberEncrypted(string id, string location)
    {
        string? path = EntryPath(id);
        if (path is null || File.Exists(path))
        {
            return;
        }
        try
        {
            string dir = Path.GetDirectoryName(path)!;
            PrivateFiles.CreateDirectory(dir);
            byte[] bytes = RepositoryJson.Serialize(new Entry(1, id, true, location, DateTimeOffset.UtcNow), indented: true);
            Durable.WriteFileAsync(path, (s, c) => s.WriteAsync(bytes, c).AsTask(), CancellationToken.None, unixMode: PrivateFiles.FileMode).GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or PSBackupException)
        {
            // A second client wrote it first, or the state folder is not writable: nothing to do.
        }
    }
}
