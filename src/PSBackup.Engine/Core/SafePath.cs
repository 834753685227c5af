using System.Text.RegularExpressions;

namespace PSBackup.Engine;

/// <summary>The path and name rules of SPEC §4, in one place. Every path segment and name that
/// reaches the file system from a user, a manifest or a repository passes through here.</summary>
public static partial class SafePath
{
    [GeneratedRegex("^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")]
    private static partial Regex NamePattern();

    [GeneratedRegex("^[A-Za-z]:")]
    private static partial Regex DriveQualified();

    /// <summary>Validates a namespace, tenant dir or object name: 1-128 of letters, digits,
    /// '.', '_', '-', not starting with '.' or '-'. Returns the name.</summary>
    public static string ValidateName(string? value, string what)
    {
        if (string.IsNullOrEmpty(value))
        {
            throw new InvalidInputException("InvalidName", $"The {what} name is empty. Give a name of letters, digits, '.', '_' or '-'.", value);
        }
        if (!NamePattern().IsMatch(value) || value.EndsWith('.'))
        {
            throw new InvalidInputException("InvalidName",
                $"The {what} name '{Printable(value)}' is not allowed. Use 1-128 letters, digits, '.', '_' or '-', starting with a letter, digit or '_' and not ending with '.'.",
                value);
        }
        return value;
    }

    /// <summary>Validates a relative path given by a user or read from a manifest: no absolute,
    /// rooted, drive-qualified or UNC form, no backslash, no '.' or '..' or empty segment, no
    /// control characters. Returns it with '/' separators and no trailing slash.</summary>
    public static string ValidateRelativePath(string? value, string what)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            throw new InvalidInputException("InvalidPath", $"The {what} is empty. Give a relative path such as 'wal/archive'.", value);
        }
        string shown = Printable(value);
        if (value.Any(char.IsControl))
        {
            throw new InvalidInputException("InvalidPath", $"The {what} '{shown}' contains control characters. Give a plain relative path.", value);
        }
        if (value.Contains('\\'))
        {
            throw new InvalidInputException("InvalidPath", $"The {what} '{shown}' contains a backslash. Use '/' to separate folders in a relative path.", value);
        }
        if (value.StartsWith('/') || DriveQualified().IsMatch(value) || Path.IsPathRooted(value))
        {
            throw new InvalidInputException("InvalidPath", $"The {what} '{shown}' is absolute. Give a path relative to the backup root, such as 'wal/archive'.", value);
        }
        string trimmed = value.TrimEnd('/');
        foreach (string segment in trimmed.Split('/'))
        {
            if (segment.Length == 0)
            {
                throw new InvalidInputException("InvalidPath", $"The {what} '{shown}' has an empty segment ('//'). Remove the doubled '/'.", value);
            }
            if (segment is "." or "..")
            {
                throw new InvalidInputException("InvalidPath", $"The {what} '{shown}' contains '{segment}'. Paths may not climb out of or refer to the current folder; give a plain relative path.", value);
            }
        }
        return trimmed;
    }

    /// <summary>Joins a validated relative path under <paramref name="root"/> and proves the
    /// result stays inside it, with no existing component below the root being a symbolic link.</summary>
    public static string Combine(string root, string relative, string what)
    {
        string rel = ValidateRelativePath(relative, what);
        string fullRoot = Path.GetFullPath(root);
        string full = Path.GetFullPath(Path.Combine(fullRoot, rel));
        string rootWithSep = Path.EndsInDirectorySeparator(fullRoot) ? fullRoot : fullRoot + Path.DirectorySeparatorChar;
        if (!full.StartsWith(rootWithSep, StringComparison.Ordinal))
        {
            throw new InvalidInputException("InvalidPath", $"The {what} '{Printable(relative)}' resolves outside '{fullRoot}'. Give a path inside it.", relative);
        }
        RejectLinksBelow(fullRoot, full, what);
        return full;
    }

    /// <summary>Throws if any existing component strictly below <paramref name="root"/> on the way
    /// to <paramref name="path"/> (inclusive) is a symbolic link or junction.</summary>
    public static void RejectLinksBelow(string root, string path, string what)
    {
        string fullRoot = Path.TrimEndingDirectorySeparator(Path.GetFullPath(root));
        string current = fullRoot;
        string rest = Path.GetFullPath(path)[fullRoot.Length..].TrimStart(Path.DirectorySeparatorChar);
        if (rest.Length == 0)
        {
            return;
        }
        foreach (string segment in rest.Split(Path.DirectorySeparatorChar))
        {
            current = Path.Combine(current, segment);
            var info = new FileInfo(current);
            if (!info.Exists && !Directory.Exists(current))
            {
                return;
            }
            // A folder another thread created since info was read: info still holds "missing"
            // (Attributes -1, which has the reparse-point bit), so read it again.
            info.Refresh();
            if (info.LinkTarget is not null || (info.Attributes & FileAttributes.ReparsePoint) != 0)
            {
                throw new InvalidInputException("SymbolicLink",
                    $"The {what} path '{current}' is a symbolic link. PSBackup does not follow links below a root; replace it with a real folder.", current);
            }
        }
    }

    /// <summary>Fails with NotFound unless <paramref name="path"/> is an existing directory.</summary>
    public static string RequireDirectory(string? path, string what, string hint)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            throw new InvalidInputException("InvalidPath", $"The {what} is empty. {hint}", path);
        }
        string full = Path.GetFullPath(path);
        if (!Directory.Exists(full))
        {
            throw new NotFoundException("DirectoryNotFound", $"The {what} '{full}' does not exist. {hint}", full);
        }
        return full;
    }

    /// <summary>A value safe to echo in a one-line message.</summary>
    public static string Printable(string value) =>
        new(value.Select(c => char.IsControl(c) ? '?' : c).Take(200).ToArray());
}
