namespace PSBackup.Engine.ObjectStore;

/// <summary>A validated <c>$DbRoot/&lt;dir&gt;/&lt;obj&gt;</c>: names checked, the root and (unless
/// <c>requireDir</c> is false) the tenant dir exist, and no component below the root is a symbolic
/// link. On a case-insensitive file system (Windows, macOS) the names take the spelling of the
/// folders on disk, so <c>-Dir ACME</c> and <c>-Dir acme</c> are one object with one history.</summary>
internal sealed record ObjectLocation(string DbRoot, string Dir, string Object, string DirPath, string ObjectPath)
{
    public static ObjectLocation Resolve(string? dbRoot, string? dir, string? obj, bool requireDir = true)
    {
        string dirName = ObjectLayout.ValidateName(dir, "dir");
        string objName = ObjectLayout.ValidateName(obj, "object");
        string root = SafePath.RequireDirectory(dbRoot, "database root",
            "Pass the folder that holds the tenant dirs ($DB_ROOT).");
        dirName = OnDiskName(root, dirName);
        string dirPath = SafePath.Combine(root, dirName, "dir");
        if (requireDir && !Directory.Exists(dirPath))
        {
            throw new NotFoundException("DirNotFound",
                $"The dir '{dirName}' does not exist under '{root}'. Check -Dir.", dirPath);
        }
        objName = OnDiskName(dirPath, objName);
        string objectPath = SafePath.Combine(root, dirName + "/" + objName, "object");
        return new ObjectLocation(root, dirName, objName, dirPath, objectPath);
    }

    /// <summary>The spelling under which <paramref name="name"/> exists in <paramref name="parent"/>:
    /// the name itself when an entry of exactly that name exists or none does; on a file system that
    /// resolves names case-insensitively, the one entry it resolves to.</summary>
    internal static string OnDiskName(string parent, string name)
    {
        if (!Directory.Exists(parent))
        {
            return name;
        }
        var sameIgnoringCase = new DirectoryInfo(parent)
            .EnumerateFileSystemInfos(name, new EnumerationOptions { MatchCasing = MatchCasing.CaseInsensitive, MatchType = MatchType.Simple, AttributesToSkip = 0, IgnoreInaccessible = true })
            .Select(e => e.Name)
            .ToList();
        bool resolves = Directory.Exists(Path.Combine(parent, name)) || File.Exists(Path.Combine(parent, name));
        return PickOnDiskName(name, sameIgnoringCase, resolves);
    }

    /// <summary>The rule of <see cref="OnDiskName"/> on given facts (tests feed it a case-insensitive
    /// file system's answers on any OS): an exact match wins; otherwise, when the requested name
    /// opens something, that is the single entry equal to it ignoring case.</summary>
    internal static string PickOnDiskName(string requested, IReadOnlyList<string> sameIgnoringCase, bool requestedResolves)
    {
        if (sameIgnoringCase.Contains(requested, StringComparer.Ordinal) || !requestedResolves)
        {
            return requested;
        }
        List<string> matches = sameIgnoringCase.Where(n => string.Equals(n, requested, StringComparison.OrdinalIgnoreCase)).ToList();
        return matches.Count == 1 ? matches[0] : requested;
    }
}
