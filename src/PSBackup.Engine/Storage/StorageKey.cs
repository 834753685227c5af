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
}
