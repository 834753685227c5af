using System.Text.RegularExpressions;

namespace PSBackup.Engine;

/// <summary>The path and name rules of SPEC §4, in one place. Every path segment and name that
/// reaches the file system from a user, a manifest or a repository passes through here.</summary>
public static partial class SafePath
{
    [GeneratedRegex("^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")]
    private static partial Regex NamePattern();

    /// <summary>DOS device names, which Windows resolves to a device in any folder and with any
    /// extension (<c>nul.txt</c> is NUL): a file or folder of that name cannot exist there.</summary>
    [GeneratedRegex(@"^(CON|PRN|AUX|NUL|CONIN\$|CONOUT\$|COM[0-9\u00B9\u00B2\u00B3]|LPT[0-9\u00B9\u00B2\u00B3])(\..*)?$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex WindowsDeviceName();

    /// <summary>Characters Windows refuses in a name (besides the separators and control characters);
    /// ':' would name an alternate data stream of the file before it.</summary>
    private static readonly char[] WindowsInvalidChars = ['<', '>', ':', '"', '|', '?', '*'];

    /// <summary>Whether the platform's file systems treat names case-insensitively by default
    /// (Windows' NTFS, macOS' APFS): there wildcards match ignoring case and names take their
    /// on-disk spelling.</summary>
    public static bool NamesIgnoreCase => OperatingSystem.IsWindows() || OperatingSystem.IsMacOS();

    /// <summary>Whether Windows' name rules apply (they do on Windows; tests pass them explicitly,
    /// so the rules are proven on every OS).</summary>
    public static bool WindowsRules => OperatingSystem.IsWindows();

    /// <summary>Why <paramref name="segment"/> (one name, no separators) cannot exist on Windows,
    /// or null when it can: a reserved device name, a character Windows refuses, or a trailing dot
    /// or space (Windows strips them, so 'a.' would silently be 'a').</summary>
    public static string? WindowsNameProblem(string segment)
    {
        if (WindowsDeviceName().IsMatch(segment.TrimEnd(' ')))
        {
            return $"'{Printable(segment)}' is a Windows device name (CON, PRN, AUX, NUL, COM1-9, LPT1-9, with any extension)";
        }
        int bad = segment.IndexOfAny(WindowsInvalidChars);
        if (bad >= 0)
        {
            return segment[bad] == ':'
                ? $"'{Printable(segment)}' contains ':', which Windows reads as an alternate data stream"
                : $"'{Printable(segment)}' contains '{segment[bad]}', which Windows does not allow in a name";
        }
        if (segment.EndsWith('.') || segment.EndsWith(' '))
        {
            return $"'{Printable(segment)}' ends with a dot or a space, which Windows strips";
        }
        return null;
    }

    /// <summary>A relative path as a user types it (-Path, -BackupDir, -Snapshot): '\' is a folder
    /// separator on every platform (PowerShell users write <c>snapshots\users.db</c>), and Windows'
    /// name rules apply on every platform, so a backup root made on Linux restores on Windows.
    /// Names read from disk or from a manifest never go through here: there a backslash is a
    /// character, and refused.</summary>
    public static string ValidateUserPath(string? value, string what) =>
        ValidateRelativePath(value?.Replace('\\', '/'), what, windows: true);

    /// <summary>Validates a namespace, tenant dir or object name: 1-128 of letters, digits,
    /// '.', '_', '-', not starting with '.' or '-'. Returns the name.</summary>
    public static string ValidateName(string? value, string what) => ValidateName(value, what, WindowsRules);

    /// <summary><see cref="ValidateName(string?, string)"/> with Windows' rules on or off.</summary>
    public static string ValidateName(string? value, string what, bool windows)
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
        if (windows && WindowsNameProblem(value) is { } problem)
        {
            throw new InvalidInputException("InvalidName", $"The {what} name {problem}. Choose another name.", value);
        }
        return value;
    }

    /// <summary>Validates a relative path read from a manifest, a listing or (after
    /// <see cref="ValidateUserPath"/>) a user: no absolute, rooted, drive-qualified or UNC form, no
    /// backslash, no '.' or '..' or empty segment, no control characters, and on Windows no segment
    /// Windows cannot hold. Returns it with '/' separators and no trailing slash.</summary>
    public static string ValidateRelativePath(string? value, string what) => ValidateRelativePath(value, what, WindowsRules);

    /// <summary><see cref="ValidateRelativePath(string?, string)"/> with Windows' name rules on or
    /// off for each segment (<see cref="WindowsNameProblem"/>).</summary>
    public static string ValidateRelativePath(string? value, string what, bool windows)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            throw new InvalidInputException("InvalidPath", $"The {what} is empty. Give a relative path such as 'wal/archive'.", value);
        }
        // Runs for every file of every listing and manifest: the message text is built only on the
        // way out (it was 15 % of a no-change backup's CPU when built for every path).
        if (ContainsControl(value))
        {
            throw new InvalidInputException("InvalidPath", $"The {what} '{Printable(value)}' contains control characters. Give a plain relative path.", value);
        }
        if (value.Contains('\\'))
        {
            throw new InvalidInputException("InvalidPath", $"The {what} '{Printable(value)}' contains a backslash. Use '/' to separate folders in a relative path.", value);
        }
        // A drive letter and a colon (^[A-Za-z]:), tested by hand: this runs for every path of every manifest.
        bool driveQualified = value.Length >= 2 && char.IsAsciiLetter(value[0]) && value[1] == ':';
        if (driveQualified && value.Length > 2 && value[2] != '/')
        {
            // 'x:y.txt' is a legal name on Linux but names drive X: on Windows (relative to that
            // drive's current folder): refused everywhere, so a backup restores on every platform.
            throw new InvalidInputException("InvalidPath", $"The {what} '{Printable(value)}' starts with '{value[..2]}', which Windows reads as drive {char.ToUpperInvariant(value[0])}: (a colon is not allowed in a name there). Rename it so a backup restores on every platform.", value);
        }
        if (value.StartsWith('/') || driveQualified || Path.IsPathRooted(value))
        {
            throw new InvalidInputException("InvalidPath", $"The {what} '{Printable(value)}' is absolute. Give a path relative to the backup root, such as 'wal/archive'.", value);
        }
        string trimmed = value.TrimEnd('/');
        // Segment by segment over spans (String.Split allocated an array and a string per segment:
        // 6 % of a no-change backup's CPU, for the listing's and the parent manifest's paths).
        ReadOnlySpan<char> rest = trimmed;
        while (true)
        {
            int slash = rest.IndexOf('/');
            ReadOnlySpan<char> segment = slash < 0 ? rest : rest[..slash];
            if (segment.Length == 0)
            {
                throw new InvalidInputException("InvalidPath", $"The {what} '{Printable(value)}' has an empty segment ('//'). Remove the doubled '/'.", value);
            }
            if (segment is "." or "..")
            {
                throw new InvalidInputException("InvalidPath", $"The {what} '{Printable(value)}' contains '{segment}'. Paths may not climb out of or refer to the current folder; give a plain relative path.", value);
            }
            if (windows && WindowsNameProblem(segment.ToString()) is { } problem)
            {
                throw new InvalidInputException("InvalidPath", $"The {what} '{Printable(value)}' cannot be used on Windows: {problem}. Rename it.", value);
            }
            if (slash < 0)
            {
                break;
            }
            rest = rest[(slash + 1)..];
        }
        return trimmed;
    }

    /// <summary>Joins a validated relative path under <paramref name="root"/> and proves the
    /// result stays inside it, with no existing component below the root being a symbolic link.</summary>
    public static string Combine(string root, string relative, string what)
    {
        string rel = ValidateRelativePath(relative, what);
        string fullRoot = Path.GetFullPath(root);
        string full = JoinValidated(fullRoot, rel, relative, what);
        RejectLinksBelow(fullRoot, full, what);
        return full;
    }

    /// <summary><see cref="Combine"/> without its walk for links, under a root the caller just made
    /// and still holds empty (a restore's fresh temp folder): nothing below it exists yet, so the
    /// walk could only stop at the first missing name. Still refuses every path that is not
    /// relative or leaves the root. <paramref name="fullRoot"/> is already full.</summary>
    public static string JoinUnderFreshRoot(string fullRoot, string relative, string what) =>
        JoinValidated(fullRoot, ValidateRelativePath(relative, what), relative, what);

    private static string JoinValidated(string fullRoot, string rel, string relative, string what)
    {
        // Joined with the platform's separator: an extended-length root (\\?\C:\...) is taken
        // verbatim by Windows, so a '/' left inside it would be part of a name ("Invalid name").
        string full = Path.GetFullPath(Path.Combine(fullRoot, rel.Replace('/', Path.DirectorySeparatorChar)));
        string rootWithSep = Path.EndsInDirectorySeparator(fullRoot) ? fullRoot : fullRoot + Path.DirectorySeparatorChar;
        if (!full.StartsWith(rootWithSep, StringComparison.Ordinal))
        {
            throw new InvalidInputException("InvalidPath", $"The {what} '{Printable(relative)}' resolves outside '{fullRoot}'. Give a path inside it.", relative);
        }
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
            // A folder another writer created after FileInfo cached "missing" reads as attributes -1
            // (every flag, ReparsePoint included): read them again.
            info.Refresh();
            if (IsLink(info))
            {
                throw new InvalidInputException("SymbolicLink",
                    $"The {what} path '{current}' is a symbolic link. PSBackup does not follow links below a root; replace it with a real folder.", current);
            }
        }
    }

    /// <summary>True for what redirects to another path: a symbolic link, a junction or another
    /// name-surrogate reparse point. False for a regular file or folder, including a reparse point
    /// that only changes how the data is stored: Windows Server Data Deduplication
    /// (IO_REPARSE_TAG_DEDUP), OneDrive/cloud files (IO_REPARSE_TAG_CLOUD_*), Azure File Sync
    /// tiering (IO_REPARSE_TAG_STORAGE_SYNC), WOF compression. Those are ordinary files to every
    /// program, so backups read them and listings list them. On Windows the tag is read
    /// (<c>FILE_ATTRIBUTE_TAG_INFO</c>); the name-surrogate bit (winnt.h
    /// <c>IsReparseTagNameSurrogate</c>, 0x20000000) decides.</summary>
    public static bool IsLink(FileSystemInfo info)
    {
        ArgumentNullException.ThrowIfNull(info);
        FileAttributes attributes = info.Attributes;
        if ((int)attributes == -1 || (attributes & FileAttributes.ReparsePoint) == 0)
        {
            // Only a reparse point can be a link (.NET reports a symbolic link as one on Unix too), so
            // readlink(2) is asked only then: it was a syscall and a path walk for every entry of
            // every object walk (9 % of a 5,425-file no-change backup's CPU).
            return false;
        }
        return IsLink(attributes, info.LinkTarget, () => OperatingSystem.IsWindows() ? WindowsFiles.ReparseTag(info.FullName) : null);
    }

    /// <summary>The rule of <see cref="IsLink(FileSystemInfo)"/> on given facts (tests feed it Windows
    /// tags on any OS). A reparse point whose tag cannot be read counts as a link: never followed.</summary>
    internal static bool IsLink(FileAttributes attributes, string? linkTarget, Func<uint?> reparseTag)
    {
        if (linkTarget is not null)
        {
            return true;
        }
        if ((int)attributes == -1 || (attributes & FileAttributes.ReparsePoint) == 0)
        {
            return false; // missing (attributes -1) or no reparse point
        }
        return reparseTag() is not { } tag || (tag & NameSurrogateBit) != 0;
    }

    /// <summary>The files below <paramref name="root"/> whose name matches <paramref name="pattern"/>
    /// (a simple expression: <c>*</c>, <c>?</c>), in every folder but through no link
    /// (<see cref="IsLink(FileSystemInfo)"/>: a deduplicated, cloud or tiered file or folder is walked
    /// like any other, a symbolic link or junction is not). Folders that cannot be read are skipped.</summary>
    public static IEnumerable<string> FilesBelowWithoutLinks(string root, string pattern)
    {
        var pending = new Stack<DirectoryInfo>();
        pending.Push(new DirectoryInfo(root));
        while (pending.Count > 0)
        {
            DirectoryInfo dir = pending.Pop();
            List<FileSystemInfo> entries;
            try
            {
                entries = dir.EnumerateFileSystemInfos().ToList();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.SecurityException)
            {
                continue;
            }
            foreach (FileSystemInfo entry in entries)
            {
                if (IsLink(entry))
                {
                    continue;
                }
                if (entry is DirectoryInfo sub)
                {
                    pending.Push(sub);
                }
                else if (System.IO.Enumeration.FileSystemName.MatchesSimpleExpression(pattern, entry.Name, ignoreCase: false))
                {
                    yield return entry.FullName;
                }
            }
        }
    }

    /// <summary>True for Windows' ERROR_SHARING_VIOLATION (32) and ERROR_LOCK_VIOLATION (33): another
    /// process holds the file open without sharing it (or a range locked), which says nothing about
    /// the disk or the file's permissions.</summary>
    internal static bool IsSharingViolation(Exception e) =>
        OperatingSystem.IsWindows() && e is IOException && (e.HResult == unchecked((int)0x80070020) || e.HResult == unchecked((int)0x80070021));

    /// <summary>winnt.h: reparse tags with this bit name another file or folder.</summary>
    internal const uint NameSurrogateBit = 0x20000000;

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

    /// <summary>Two '/'-separated relative paths of one tree that a case-insensitive file system takes
    /// as one name where that loses data: two files ('a/B' and 'a/b'), or a file and a folder (the
    /// folder given, or one a file lies in). Two folders that differ only in case are not a collision:
    /// their entries merge into one folder, as tar and restic restore them there. Null when none.</summary>
    public static (string First, string Second)? FindCaseCollision(IEnumerable<string> files, IEnumerable<string> folders)
    {
        var fileNames = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var folderNames = new List<string>(folders);
        foreach (string f in files)
        {
            if (!fileNames.TryAdd(f, f) && !string.Equals(fileNames[f], f, StringComparison.Ordinal))
            {
                return (fileNames[f], f);
            }
            for (int slash = f.LastIndexOf('/'); slash > 0; slash = f.LastIndexOf('/', slash - 1))
            {
                folderNames.Add(f[..slash]);
            }
        }
        foreach (string d in folderNames)
        {
            if (fileNames.TryGetValue(d, out string? file))
            {
                return (file, d);
            }
        }
        return null;
    }

    /// <summary>Whether names in <paramref name="folder"/> (an existing folder we may write in) ignore
    /// case: a short-lived lowercase temp file is created and looked up by its uppercase name.</summary>
    public static bool FolderIgnoresCase(string folder)
    {
        string name = $".psb-case-{Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(6)).ToLowerInvariant()}.tmp";
        string probe = Path.Combine(folder, name);
        using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose))
        {
            return File.Exists(Path.Combine(folder, name.ToUpperInvariant()));
        }
    }

    /// <summary>A value safe to echo in a one-line message.</summary>
    public static string Printable(string value)
    {
        int n = Math.Min(value.Length, 200);
        return string.Create(n, value, static (span, v) =>
        {
            for (int i = 0; i < span.Length; i++)
            {
                span[i] = char.IsControl(v[i]) ? '?' : v[i];
            }
        });
    }

    private static bool ContainsControl(string value)
    {
        foreach (char c in value)
        {
            if (char.IsControl(c))
            {
                return true;
            }
        }
        return false;
    }
}
