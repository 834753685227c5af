using System.Globalization;
using System.Text.RegularExpressions;

namespace PSBackup.Engine.ObjectStore;

/// <summary>Names and paths of the shard-db object layout (SPEC §1): tenant dirs, objects, their
/// timestamped backup siblings and manifests, and the transient artifacts of atomic rebuilds.</summary>
public static partial class ObjectLayout
{
    /// <summary>The UTC timestamp format of backup folder names.</summary>
    public const string TimestampFormat = "yyyyMMddTHHmmss";

    /// <summary>Infix between the object name and the timestamp of a backup folder.</summary>
    public const string BackupInfix = ".backup-";

    /// <summary>Infix of the folder a restore moves the replaced live object to.</summary>
    public const string ReplacedInfix = ".replaced-";

    /// <summary>Suffix of the manifest written beside a backup folder.</summary>
    public const string ManifestSuffix = ".manifest.json";

    private static readonly string[] ArtifactSuffixes = [".new", ".old", ".tmp"];

    [GeneratedRegex(@"^[0-9]{8}T[0-9]{6}$", RegexOptions.CultureInvariant)]
    private static partial Regex TimestampPattern();

    [GeneratedRegex(@"^(?<obj>.+)\.backup-(?<ts>[0-9]{8}T[0-9]{6})$", RegexOptions.CultureInvariant)]
    private static partial Regex BackupNamePattern();

    /// <summary>True for a name ending with <c>.new</c>, <c>.old</c> or <c>.tmp</c>: a transient
    /// artifact of an atomic rebuild, never backed up and removed by the startup sweep.
    /// <c>x.newer</c>, <c>file.tmpl</c> or a bare <c>old</c> are not artifacts.</summary>
    public static bool IsTransientArtifact(string name)
    {
        foreach (string suffix in ArtifactSuffixes)
        {
            if (name.Length > suffix.Length && name.EndsWith(suffix, StringComparison.Ordinal))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>Formats a UTC instant the way backup folder names carry it.</summary>
    public static string FormatTimestamp(DateTimeOffset instant) =>
        instant.UtcDateTime.ToString(TimestampFormat, CultureInfo.InvariantCulture);

    /// <summary><c>&lt;obj&gt;.backup-&lt;ts&gt;</c>.</summary>
    public static string BackupName(string obj, string timestamp) => obj + BackupInfix + timestamp;

    /// <summary>The manifest file name beside a backup folder.</summary>
    public static string ManifestName(string backupName) => backupName + ManifestSuffix;

    /// <summary>Validates a tenant dir or object name; object names that the startup sweep would
    /// delete (<c>.new</c>/<c>.old</c>/<c>.tmp</c>) are refused too.</summary>
    internal static string ValidateName(string? value, string what)
    {
        string name = SafePath.ValidateName(value, what);
        if (IsTransientArtifact(name))
        {
            throw new InvalidInputException("InvalidName",
                $"The {what} name '{name}' ends with .new, .old or .tmp, which marks a transient artifact that the startup sweep deletes. Give the real {what} name.",
                name);
        }
        return name;
    }

    /// <summary>True when <paramref name="timestamp"/> is a valid <c>yyyyMMddTHHmmss</c> instant.</summary>
    internal static bool IsTimestamp(string timestamp) =>
        TimestampPattern().IsMatch(timestamp)
        && DateTime.TryParseExact(timestamp, TimestampFormat, CultureInfo.InvariantCulture, DateTimeStyles.None, out _);

    /// <summary>Splits <c>&lt;obj&gt;.backup-&lt;ts&gt;</c>; false for any other name.</summary>
    public static bool TryParseBackupName(string name, out string obj, out string timestamp)
    {
        Match m = BackupNamePattern().Match(name);
        if (m.Success && IsTimestamp(m.Groups["ts"].Value))
        {
            obj = m.Groups["obj"].Value;
            timestamp = m.Groups["ts"].Value;
            return true;
        }
        obj = "";
        timestamp = "";
        return false;
    }

    /// <summary>Infix of the temp folder a restore copies into before its swap.</summary>
    public const string RestoreTempInfix = ".restore-";

    /// <summary>How old a backup or restore temp copy must be before it counts as left by a killed
    /// run: a running copy touches its folder as it writes, and no single-object copy stays an hour
    /// without creating an entry.</summary>
    public static readonly TimeSpan LeftoverTempAge = TimeSpan.FromHours(1);

    /// <summary>The temp copies a killed object backup (<c>&lt;obj&gt;.backup-&lt;ts&gt;.&lt;hex&gt;.tmp</c>)
    /// or restore (<c>&lt;obj&gt;.restore-&lt;ts&gt;-&lt;hex&gt;.tmp</c>) left in the tenant dir
    /// <paramref name="dirPath"/>: folders (never links) last written before <paramref name="olderThanUtc"/>,
    /// of <paramref name="obj"/> only when given, <paramref name="except"/> left out (a run's own
    /// temp). Sorted full paths; none when the dir does not exist. The next backup of the object
    /// and Get-BackupHealth -DbRoot report them; Clear-StaleArtifact removes them.</summary>
    internal static IReadOnlyList<string> LeftoverTemps(string dirPath, string? obj, DateTime olderThanUtc, string? except = null)
    {
        var found = new List<string>();
        var dir = new DirectoryInfo(dirPath);
        if (!dir.Exists)
        {
            return found;
        }
        foreach (DirectoryInfo d in dir.EnumerateDirectories((obj ?? "") + "*.tmp"))
        {
            string name = d.Name;
            bool named = obj is null
                ? name.Contains(BackupInfix, StringComparison.Ordinal) || name.Contains(RestoreTempInfix, StringComparison.Ordinal)
                : name.StartsWith(obj + BackupInfix, StringComparison.Ordinal) || name.StartsWith(obj + RestoreTempInfix, StringComparison.Ordinal);
            if (named && name.EndsWith(".tmp", StringComparison.Ordinal) && !string.Equals(d.FullName, except, StringComparison.Ordinal)
                && !IsLink(d) && d.LastWriteTimeUtc < olderThanUtc)
            {
                found.Add(d.FullName);
            }
        }
        return found.Order(StringComparer.Ordinal).ToList();
    }

    /// <summary>True when the file system entry is a symbolic link, junction or other link-like
    /// reparse point (<see cref="SafePath.IsLink(FileSystemInfo)"/>: a deduplicated or cloud file is
    /// not one).</summary>
    internal static bool IsLink(FileSystemInfo info) => SafePath.IsLink(info);

    /// <summary>Relative '/' path of <paramref name="path"/> under <paramref name="root"/>.</summary>
    internal static string Relative(string root, string path) =>
        Path.GetRelativePath(root, path).Replace(Path.DirectorySeparatorChar, '/');
}
