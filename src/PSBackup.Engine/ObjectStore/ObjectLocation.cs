namespace PSBackup.Engine.ObjectStore;

/// <summary>A validated <c>$DbRoot/&lt;dir&gt;/&lt;obj&gt;</c>: names checked, the root and (unless
/// <c>requireDir</c> is false) the tenant dir exist, and no component below the root is a symbolic link.</summary>
internal sealed record ObjectLocation(string DbRoot, string Dir, string Object, string DirPath, string ObjectPath)
{
    public static ObjectLocation Resolve(string? dbRoot, string? dir, string? obj, bool requireDir = true)
    {
        string dirName = ObjectLayout.ValidateName(dir, "dir");
        string objName = ObjectLayout.ValidateName(obj, "object");
        string root = SafePath.RequireDirectory(dbRoot, "database root",
            "Pass the folder that holds the tenant dirs ($DB_ROOT).");
        string dirPath = SafePath.Combine(root, dirName, "dir");
        if (requireDir && !Directory.Exists(dirPath))
        {
            throw new NotFoundException("DirNotFound",
                $"The dir '{dirName}' does not exist under '{root}'. Check -Dir (names are case-sensitive).", dirPath);
        }
        string objectPath = SafePath.Combine(root, dirName + "/" + objName, "object");
        return new ObjectLocation(root, dirName, objName, dirPath, objectPath);
    }
}
