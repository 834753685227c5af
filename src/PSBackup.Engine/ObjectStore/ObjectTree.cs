using System.Runtime.InteropServices;
using System.IO.Enumeration;

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

    private ObjectTree(List<string> directories, List<ListedFile> files, List<ListedStatus?>? statuses)
    {
        Directories = directories;
        // Arrays in path order, the statuses beside the files (Linux only): a sorted dictionary of
        // sizes beside a dictionary of statuses cost ~175 bytes a file (62,105 files: ~11 MB through
        // the whole copy), these ~105, and ~16 where there are no statuses.
        Span<ListedFile> byPath = CollectionsMarshal.AsSpan(files);
        Comparison<ListedFile> ordinal = static (a, b) => string.CompareOrdinal(a.Rel, b.Rel);
        if (statuses is null)
        {
            byPath.Sort(ordinal);
        }
        else
        {
            byPath.Sort(CollectionsMarshal.AsSpan(statuses), ordinal);
        }
        // A name read twice from one folder (POSIX allows it when the folder changes while it is
        // read, e.g. a file renamed over another) is one file, as it was in the sorted dictionary.
        int kept = 0;
        for (int i = 0; i < files.Count; i++)
        {
            if (kept > 0 && string.Equals(files[kept - 1].Rel, files[i].Rel, StringComparison.Ordinal))
            {
                continue;
            }
            files[kept] = files[i];
            if (statuses is not null)
            {
                statuses[kept] = statuses[i];
            }
            kept++;
        }
        files.RemoveRange(kept, files.Count - kept);
        files.TrimExcess();
        Files = files;
        if (statuses is not null)
        {
            statuses.RemoveRange(kept, statuses.Count - kept);
            statuses.TrimExcess();
        }
        Statuses = statuses;
    }

    /// <summary>Folders below the root, parents before children.</summary>
    public IReadOnlyList<string> Directories { get; }

    /// <summary>Regular files in ordinal order of their relative paths.</summary>
    public IReadOnlyList<ListedFile> Files { get; private set; }

    /// <summary>Where <see cref="FileStatus.Available"/> (Linux): each file's status as listed, at
    /// the file's position in <see cref="Files"/> (null for a name a names-only listing did not
    /// examine), so the copy can decide from it without asking the file system again. Null elsewhere.</summary>
    public IReadOnlyList<ListedStatus?>? Statuses { get; private set; }

    /// <summary>Lets go of the files and their statuses once the copy has used them (the folders
    /// stay): the rest of a backup (the later listings, the manifest) need not carry them.</summary>
    public void ReleaseFiles()
    {
        Files = [];
        Statuses = null;
    }

    public long TotalBytes
    {
        get
        {
            long total = 0;
            foreach (ListedFile f in Files)
            {
                total += f.Size;
            }
            return total;
        }
    }

    /// <summary>A file's status as the listing read it, and the wall-clock time just before it was read.</summary>
    internal readonly record struct ListedStatus(FileStatus Status, DateTime ObservedAtUtc);

    /// <summary>A listed regular file: its relative path and the size seen (0 for a name a
    /// names-only listing did not examine).</summary>
    internal readonly record struct ListedFile(string Rel, long Size);

    /// <summary>Lists <paramref name="root"/> without following links. A symbolic link anywhere
    /// (outside artifacts) or a name that cannot travel in a manifest is an
    /// <see cref="InvalidInputException"/> naming it. Folders removed while listing are skipped.</summary>
    public static ObjectTree List(string root, CancellationToken ct) => List(root, null, ct);

    /// <summary><see cref="List(string, CancellationToken)"/>; where the file system is asked one
    /// <c>statx</c> per entry (<see cref="FileStatus.Available"/>), a file whose relative path
    /// <paramref name="examine"/> rejects is listed by name only, unasked (its size reads 0 and its
    /// kind is taken from the directory entry: a link or special file under such a name is not told
    /// apart). The copy's later listings only look for names that appeared or went away.</summary>
    public static ObjectTree List(string root, Func<string, bool>? examine, CancellationToken ct) => List(root, examine, null, ct);

    /// <summary><see cref="List(string, Func{string, bool}?, CancellationToken)"/>, keeping in
    /// <see cref="Files"/> only the files whose relative path <paramref name="keep"/> accepts (every
    /// name is still checked as a listing checks it). The copy's later listings look only for names
    /// that appeared or went away: a listing of every name again held a second and third copy of
    /// every path (62,105 files: ~20 MiB) while the manifest was written.</summary>
    public static ObjectTree List(string root, Func<string, bool>? examine, Func<string, bool>? keep, CancellationToken ct) =>
        FileStatus.Available ? ListByStatus(root, examine, keep, ct) : ListPortable(root, keep, ct);

    private static ObjectTree ListByStatus(string root, Func<string, bool>? examine, Func<string, bool>? keep, CancellationToken ct)
    {
        root = Path.GetFullPath(root); // as the enumeration's own full paths were
        var directories = new List<string>();
        var files = new List<ListedFile>();
        var statuses = new List<ListedStatus?>();
        var pending = new Stack<(string Full, string Rel)>();
        pending.Push((root, ""));
        while (pending.Count > 0)
        {
            ct.ThrowIfCancellationRequested();
            (string current, string currentRel) = pending.Pop();
            List<(string Name, bool IsDirectory)> entries;
            try
            {
                // Names and the directory entry's type (d_type) only: nothing here asks for a stat.
                // The full path is made only where it is used (a file examined, a folder, a message):
                // a names-only listing of 62,105 files made 12 MiB of them for nothing.
                entries = new FileSystemEnumerable<(string, bool)>(current,
                    (ref FileSystemEntry e) => (e.FileName.ToString(), e.IsDirectory), OneLevel).ToList();
            }
            catch (DirectoryNotFoundException) when (!string.Equals(current, root, StringComparison.Ordinal))
            {
                continue;
            }
            foreach ((string name, bool isDirectory) in entries)
            {
                string? full = null;
                if (ObjectLayout.IsTransientArtifact(name))
                {
                    continue;
                }
                string rel = currentRel.Length == 0 ? name : currentRel + "/" + name;
                bool undecodable = name.Contains('\uFFFD', StringComparison.Ordinal);
                FileStatus? status = null;
                DateTime observed = default;
                if (isDirectory || undecodable || examine is null || examine(rel))
                {
                    observed = DateTime.UtcNow;
                    status = FileStatus.Read(full = Path.Join(current, name));
                    if (status is null)
                    {
                        if (undecodable)
                        {
                            throw NotUtf8(current, name);
                        }
                        continue; // removed while listing
                    }
                }
                FileKind kind = status?.Kind ?? FileKind.Regular;
                if (kind == FileKind.SymbolicLink)
                {
                    throw LinkInObject(full!);
                }
                ValidateName(rel, current, name);
                if (kind == FileKind.Directory)
                {
                    directories.Add(rel);
                    pending.Push((full!, rel));
                    continue;
                }
                if (kind != FileKind.Regular)
                {
                    throw SpecialInObject(full!, kind);
                }
                if (keep is not null && !keep(rel))
                {
                    continue;
                }
                files.Add(new ListedFile(rel, status?.Stamp.Size ?? 0));
                statuses.Add(status is { } listed ? new ListedStatus(listed, observed) : null);
            }
        }
        directories.Sort(StringComparer.Ordinal);
        return new ObjectTree(directories, files, statuses);
    }

    private static ObjectTree ListPortable(string root, Func<string, bool>? keep, CancellationToken ct)
    {
        var directories = new List<string>();
        var files = new List<ListedFile>();
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
                    throw NotUtf8(current, entry.Name);
                }
                if (ObjectLayout.IsLink(entry))
                {
                    throw LinkInObject(entry.FullName);
                }
                ValidateName(rel, entry.FullName, null);
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
                    throw SpecialInObject(entry.FullName, kind);
                }
                if (keep is not null && !keep(rel))
                {
                    continue;
                }
                files.Add(new ListedFile(rel, ((FileInfo)entry).Length));
            }
        }
        directories.Sort(StringComparer.Ordinal);
        return new ObjectTree(directories, files, null);
    }

    private static InvalidInputException NotUtf8(string folder, string name) =>
        // .NET decodes a name that is not valid UTF-8 with U+FFFD, a name that then does not exist.
        new("UnsafeNameInObject",
            $"A file or folder in '{SafePath.Printable(folder)}' has a name that is not valid UTF-8 (shown as '{SafePath.Printable(name)}'). A backup manifest cannot carry it; rename it to valid UTF-8, then run again.",
            folder);

    private static InvalidInputException LinkInObject(string path) =>
        new("SymbolicLinkInObject",
            $"'{SafePath.Printable(path)}' is a symbolic link inside the object. PSBackup does not follow links in an object; replace it with the real file or folder, then run again.",
            path);

    private static InvalidInputException SpecialInObject(string path, FileKind kind) =>
        new("SpecialFileInObject",
            $"'{SafePath.Printable(path)}' is {SpecialFiles.Describe(kind)} inside the object. PSBackup backs up regular files only (reading a FIFO or device would block or never end); move it out of the object, then run again.",
            path);

    /// <summary>Refuses a name a manifest cannot carry; the path in the message is
    /// <paramref name="folder"/> joined with <paramref name="name"/> (or <paramref name="folder"/>
    /// alone when <paramref name="name"/> is null).</summary>
    private static void ValidateName(string rel, string folder, string? name)
    {
        try
        {
            SafePath.ValidateRelativePath(rel, "object file");
        }
        catch (InvalidInputException e)
        {
            string path = name is null ? folder : Path.Join(folder, name);
            throw new InvalidInputException("UnsafeNameInObject",
                $"'{SafePath.Printable(path)}' has a name a backup manifest cannot carry ({e.Message}). Rename it, then run again.",
                path);
        }
    }
}
