namespace PSBackup.Engine.Storage;

/// <summary>Rules for storage keys: relative, '/'-separated, no empty/'.'/'..' segments, no
/// backslash or control characters (the same rules as user paths, so a hostile key read from a
/// listing can never address a file outside a local repository).</summary>
public static class StorageKey
{
    public static string Validate(string key) => SafePath.ValidateRelativePath(key, "storage key");
}
