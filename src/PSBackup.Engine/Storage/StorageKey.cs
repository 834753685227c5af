namespace PSBackup.Engine.Storage;

/// <summary>Rules for storage keys: relative, '/'-separated, no empty/'.'/'..' segments, no
/// backslash or control characters (the same rules as user paths, so a hostile key read from a
/// listing can never address a file outside a local repository).</summary>
public static class StorageKey
{
    public static string Validate(string key) => SafePath.ValidateRelativePath(key, "storage key");

    /// <summary>Validates a listing prefix: empty (everything) or the start of a key. Its
    /// complete segments (those before the last '/') obey the key rules; the last, partial
    /// segment may be any text without '/', '\' or control characters.</summary>
    public static string ValidatePrefix(string prefix)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        if (prefix.Length == 0)
        {
            return prefix;
        }
        if (prefix.Contains('\\') || prefix.Any(char.IsControl))
        {
            throw new InvalidInputException("InvalidPath",
                $"The storage prefix '{SafePath.Printable(prefix)}' contains a backslash or control character. Use '/'-separated key names.", prefix);
        }
        int slash = prefix.LastIndexOf('/');
        if (slash == 0 || (slash > 0 && SafePath.ValidateRelativePath(prefix[..slash], "storage prefix") != prefix[..slash]))
        {
            throw new InvalidInputException("InvalidPath",
                $"The storage prefix '{SafePath.Printable(prefix)}' is absolute or has an empty segment. Give the start of a relative key such as 'data/'.", prefix);
        }
        return prefix;
    }

    /// <summary>A key that names an object (not a folder): the key rules, and no trailing '/'.</summary>
    public static string ValidateObjectKey(string key) => Validate(key) switch
    {
        var valid when valid == key => valid,
        _ => throw new InvalidInputException("InvalidPath", $"The storage key '{SafePath.Printable(key)}' ends with '/'. Keys name objects, not folders.", key),
    };

    /// <summary>True when a name read from a listing is a key this contract can address (object
    /// stores may hold folder markers "dir/" and names no key rule allows).</summary>
    public static bool IsValid(string key)
    {
        try
        {
            return Validate(key) == key;
        }
        catch (InvalidInputException)
        {
            return false;
        }
    }

    /// <summary>UTF-8 byte order: the order S3 and Azure Blob list names in.</summary>
    public static int CompareUtf8(string a, string b) =>
        System.Text.Encoding.UTF8.GetBytes(a).AsSpan().SequenceCompareTo(System.Text.Encoding.UTF8.GetBytes(b));
}
