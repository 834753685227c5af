using PSBackup.Engine.Repository;
using PSBackup.Engine.Storage;

namespace PSBackup.Engine.ObjectStore;

/// <summary>One object a wildcard selection named, and how its backup or restore went: a result,
/// a typed failure, or neither (declined by ShouldProcess, -WhatIf).</summary>
public sealed record ObjectOutcome<T>(string Dir, string Object, T? Result, PSBackupException? Error) where T : class;

/// <summary>Expands <c>-Dir</c>/<c>-Object</c> patterns (<c>*</c> and <c>?</c>, as PowerShell's
/// wildcards) to the objects under a database root.</summary>
public static class ObjectSelection
{
    /// <summary>True when <paramref name="name"/> holds a wildcard character.</summary>
    public static bool IsPattern(string? name) => name is not null && name.AsSpan().IndexOfAny('*', '?') >= 0;

    /// <summary>The (dir, object) pairs the patterns match, sorted by dir then object. Exact names
    /// pass through as given (the backup itself checks them). Below the root only real folders
    /// count: links, backup siblings (<c>&lt;obj&gt;.backup-&lt;ts&gt;</c>), replaced objects, transient
    /// artifacts and names PSBackup refuses are never objects. A pattern that matches nothing is
    /// <see cref="NotFoundException"/> (ObjectNotMatched): a scheduled job that backs up nothing
    /// must not look like success.</summary>
    public static IReadOnlyList<(string Dir, string Object)> Expand(string dbRoot, string dir, string obj) => Expand(dbRoot, dir, obj, null);

    /// <summary>As <see cref="Expand(string, string, string)"/>; folders a pattern matched that look like
    /// objects but are not backed up go to <paramref name="skipped"/> with the reason (a folder named
    /// like a backup sibling that has no manifest beside it, a name PSBackup cannot carry), so a
    /// wildcard run reports them instead of leaving them out silently.</summary>
    public static IReadOnlyList<(string Dir, string Object)> Expand(string dbRoot, string dir, string obj, List<(string Dir, string Object, string Why)>? skipped)
    {
        if (!IsPattern(dir) && !IsPattern(obj))
        {
            return [(dir, obj)];
        }
        string root = SafePath.RequireDirectory(dbRoot, "database root", "Pass the folder that holds the tenant dirs ($DB_ROOT).");
        ValidatePattern(dir, "dir");
        ValidatePattern(obj, "object");
        var found = new List<(string, string)>();
        foreach (string d in Matching(root, dir))
        {
            foreach (string o in Matching(Path.Combine(root, d), obj))
            {
                found.Add((d, o));
            }
            if (skipped is not null && IsPattern(obj))
            {
                foreach ((string o, string why) in Unselectable(Path.Combine(root, d), obj))
                {
                    skipped.Add((d, o, why));
                }
            }
        }
        if (found.Count == 0 && (skipped is null || skipped.Count == 0))
        {
            throw new NotFoundException("ObjectNotMatched",
                $"No object under '{root}' matches -Dir '{dir}' -Object '{obj}'. Check the patterns (* matches any run of characters, ? one; names are case-sensitive except on Windows and macOS).", root);
        }
        return found;
    }

    /// <summary>The (dir, object) pairs that have a backup in <paramref name="repository"/> and match
    /// the patterns (its <c>object/&lt;dir&gt;/&lt;obj&gt;/&lt;ts&gt;</c> refs, listed without the key:
    /// ref names are plain), sorted; exact names pass through. The live tree is not consulted: after
    /// a disaster the objects to restore may be gone. No match is ObjectNotMatched; no repository
    /// there, RepositoryNotFound.</summary>
    public static async Task<IReadOnlyList<(string Dir, string Object)>> ExpandBackedUpAsync(RepositoryTarget repository, string dir, string obj, CancellationToken ct)
    {
        if (!IsPattern(dir) && !IsPattern(obj))
        {
            return [(dir, obj)];
        }
        ValidatePattern(dir, "dir");
        ValidatePattern(obj, "object");
        string prefix = RepositoryLayout.RefsPrefix + "object/";
        var found = new SortedSet<(string, string)>(Comparer<(string, string)>.Create((a, b) =>
        {
            int c = string.CompareOrdinal(a.Item1, b.Item1);
            return c != 0 ? c : string.CompareOrdinal(a.Item2, b.Item2);
        }));
        // A location that holds no repository is RepositoryNotFound, not "nothing matches".
        using IStorageBackend backend = await RepositoryConnector.OpenExistingBackendAsync(repository, ct).ConfigureAwait(false);
        await foreach (StoredObject o in backend.ListAsync(prefix, ct).ConfigureAwait(false))
        {
            // object/<dir>/<obj>/<ts>/<manifest id>; anything else (or a hostile name) is not a backup.
            string[] parts = o.Key[prefix.Length..].Split('/');
            if (parts.Length == 4 && IsObjectName(parts[0]) && IsObjectName(parts[1]) && ObjectLayout.IsTimestamp(parts[2])
                && Matches(parts[0], dir, SafePath.NamesIgnoreCase) && Matches(parts[1], obj, SafePath.NamesIgnoreCase))
            {
                found.Add((parts[0], parts[1]));
            }
        }
        if (found.Count == 0)
        {
            throw new NotFoundException("ObjectNotMatched",
                $"No object backed up in {repository.Location} matches -Dir '{dir}' -Object '{obj}'. Check the patterns (* matches any run of characters, ? one; names are case-sensitive except on Windows and macOS), or list the backups with Get-Backup -Kind Object.", repository.Location);
        }
        return [.. found];
    }

    /// <summary>Folder names under <paramref name="parent"/> that match <paramref name="pattern"/>,
    /// sorted ordinally; an exact name is returned when that folder exists.</summary>
    private static IEnumerable<string> Matching(string parent, string pattern)
    {
        if (!IsPattern(pattern))
        {
            return Directory.Exists(Path.Combine(parent, pattern)) ? [ObjectLocation.OnDiskName(parent, pattern)] : [];
        }
        return new DirectoryInfo(parent).EnumerateDirectories()
            .Where(d => !ObjectLayout.IsLink(d) && IsObjectName(d.Name) && Matches(d.Name, pattern, SafePath.NamesIgnoreCase))
            .Select(d => d.Name)
            .Order(StringComparer.Ordinal);
    }

    /// <summary>Folders matching <paramref name="pattern"/> that could be live objects but are not
    /// selected: named like a backup sibling with no manifest beside it (a real local backup has one),
    /// or with a name a manifest cannot carry. Hidden names, transient artifacts and replaced objects
    /// are PSBackup's own and never reported.</summary>
    private static IEnumerable<(string Name, string Why)> Unselectable(string parent, string pattern)
    {
        foreach (DirectoryInfo d in new DirectoryInfo(parent).EnumerateDirectories().OrderBy(d => d.Name, StringComparer.Ordinal))
        {
            string name = d.Name;
            if (ObjectLayout.IsLink(d) || !Matches(name, pattern) || name.StartsWith('.') || ObjectLayout.IsTransientArtifact(name)
                || name.Contains(ObjectLayout.ReplacedInfix, StringComparison.Ordinal) || IsObjectName(name))
            {
                continue;
            }
            if (ObjectLayout.TryParseBackupName(name, out _, out _))
            {
                if (!File.Exists(Path.Combine(parent, ObjectLayout.ManifestName(name))))
                {
                    yield return (name, $"it is named like a backup of another object ('<object>{ObjectLayout.BackupInfix}<timestamp>') but has no manifest beside it, so it is either an incomplete backup or an object whose name PSBackup reserves. It was not backed up: rename it if it is an object, or remove it if it is an interrupted backup");
                }
                continue;
            }
            yield return (name, "its name cannot be carried by a backup (use 1-128 letters, digits, '.', '_' or '-'). It was not backed up: rename it");
        }
    }

    private static bool IsObjectName(string name)
    {
        try
        {
            ObjectLayout.ValidateName(name, "object");
        }
        catch (InvalidInputException)
        {
            return false;
        }
        return !ObjectLayout.TryParseBackupName(name, out _, out _) && !name.Contains(ObjectLayout.ReplacedInfix, StringComparison.Ordinal);
    }

    /// <summary>A pattern is a name whose characters may also be <c>*</c> or <c>?</c>: the name rule
    /// with the wildcards replaced still holds, so a pattern cannot reach outside its folder.</summary>
    private static void ValidatePattern(string pattern, string what)
    {
        if (!IsPattern(pattern))
        {
            return;
        }
        try
        {
            SafePath.ValidateName(pattern.Replace('*', 'x').Replace('?', 'x'), what);
        }
        catch (InvalidInputException)
        {
            throw new InvalidInputException("InvalidPattern",
                $"The {what} pattern '{SafePath.Printable(pattern)}' is not allowed. Use letters, digits, '.', '_', '-' and the wildcards * and ?, starting with a letter, digit, '_' or a wildcard.", pattern);
        }
    }

    /// <summary>Glob match of <c>*</c> (any run, also empty) and <c>?</c> (one character), ordinal.</summary>
    internal static bool Matches(string name, string pattern) => Matches(name, pattern, ignoreCase: false);

    /// <summary>The glob match, ignoring case where names do (Windows, macOS: <c>acm*</c> selects
    /// <c>ACME</c>, as PowerShell's own wildcards do there).</summary>
    internal static bool Matches(string name, string pattern, bool ignoreCase)
    {
        int n = 0, p = 0, star = -1, mark = 0;
        while (n < name.Length)
        {
            if (p < pattern.Length && (pattern[p] == '?' || pattern[p] == name[n] || (ignoreCase && pattern[p] != '*' && char.ToUpperInvariant(pattern[p]) == char.ToUpperInvariant(name[n]))))
            {
                n++;
                p++;
            }
            else if (p < pattern.Length && pattern[p] == '*')
            {
                star = p++;
                mark = n;
            }
            else if (star >= 0)
            {
                p = star + 1;
                n = ++mark;
            }
            else
            {
                return false;
            }
        }
        while (p < pattern.Length && pattern[p] == '*')
        {
            p++;
        }
        return p == pattern.Length;
    }
}
