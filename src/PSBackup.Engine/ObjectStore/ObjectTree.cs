namespace PSBackup.Engine.ObjectStore;

/// <summary>One listing of an object folder: its folders and regular files (relative '/' paths),
/// transient artifacts left out and never descended into.</summary>
internal sealed class ObjectTree
{
    internal static readonly EnumerationOptions OneLevel = new()
    {
        RecurseSubdirectories = false,
        AttributesToSkip = 0,
        IgnoreInaccessible = false,
        ReturnSpecialDirectories = false,
        MatchType = MatchType.Simple,
    };

    private ObjectTree(List<string> directories, SortedDictionary<string, long> files)
    {
        Directories = directories;
        Files = files;
    }

    /// <summary>Folders below the root, parents before children.</summary>
    public IReadOnlyList<string> Directories { get; }

    /// <summary>Regular files by relative path, with the size seen when listed.</summary>
    public IReadOnlyDictionary<string, long> Files { get; }

    public long TotalBytes => Files.Values.Sum();

    /// <summary>Lists <paramref name="root"/> without following links. A symbolic link anywhere
    /// (outside artifacts) or a name that cannot travel in a manifest is an
    /// <see cref="InvalidInputException"/> naming it. Folders removed while listing are skipped.</summary>
    public static ObjectTree List(string root, CancellationToken ct)
    {
        var directories = new List<string>();
        var files = new SortedDictionary<string, long>(StringComparer.Ordinal);
        var pending = new Stack<string>();
        pending.Push(root);
        while (pending.Count > 0)
        {
            ct.ThrowIfCancellationRequested();
            string current = pending.Pop();
            List<FileSystemInfo> entries;
            try
            {
                entries = new DirectoryInfo(current).EnumerateFileSystemInfos("*", OneLevel).ToList();
            }
            catch (DirectoryNotFoundException) when (!string.Equals(current, root, StringComparison.Ordinal))
            {
                continue;
            }
            foreach (FileSystemInfo entry in entries)
            {
                if (ObjectLayout.IsTransientArtifact(entry.Name))
                {
                    continue;
                }
                string rel = ObjectLayout.Relative(root, entry.FullName);
                if (entry.Name.Contains('\uFFFD', StringComparison.Ordinal) && SpecialFiles.KindOf(entry.FullName) == FileKind.Missing)
                {
                    // .NET decodes a name that is not valid UTF-8 with U+FFFD, a name that then does
                    // not exist (it would otherwise read as a link: its attributes are all ones).
                    throw new InvalidInputException("UnsafeNameInObject",
                        $"A file or folder in '{SafePath.Printable(current)}' has a name that is not valid UTF-8 (shown as '{SafePath.Printable(entry.Name)}'). A backup manifest cannot carry it; rename it to valid UTF-8, then run again.",
                        current);
                }
                if (ObjectLayout.IsLink(entry))
                {
                    throw new InvalidInputException("SymbolicLinkInObject",
                        $"'{SafePath.Printable(entry.FullName)}' is a symbolic link inside the object. PSBackup does not follow links in an object; replace it with the real file or folder, then run again.",
                        entry.FullName);
                }
                try
                {
                    SafePath.ValidateRelativePath(rel, "object file");
                }
                catch (InvalidInputException e)
                {
                    throw new InvalidInputException("UnsafeNameInObject",
                        $"'{SafePath.Printable(entry.FullName)}' has a name a backup manifest cannot carry ({e.Message}). Rename it, then run again.",
                        entry.FullName);
                }
                if (entry is DirectoryInfo)
                {
                    directories.Add(rel);
                    pending.Push(entry.FullName);
                    continue;
                }
                FileKind kind = SpecialFiles.KindOf(entry.FullName);
                if (kind == FileKind.Missing)
                {
                    continue; // removed while listing
                }
                if (kind != FileKind.Regular)
                {
                    throw new InvalidInputException("SpecialFileInObject",
                        $"'{SafePath.Printable(entry.FullName)}' is {SpecialFiles.Describe(kind)} inside the object. PSBackup backs up regular files only (reading a FIFO or device would block or never end); move it out of the object, then run again.",
                        entry.FullName);
                }
                files[rel] = ((FileInfo)entry).Length;
            }
        }
        directories.Sort(StringComparer.Ordinal);
        return new ObjectTree(directories, files);
    }
}
