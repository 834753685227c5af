using System.Collections;
using System.Collections.Concurrent;
using System.Management.Automation;
using System.Management.Automation.Language;
using System.Management.Automation.Runspaces;
using PSBackup.Engine.ObjectStore;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Storage;

namespace PSBackup;

/// <summary>Tab completion for the names a user would otherwise look up (PSResourceGet's
/// <c>ArgumentCompleter</c> is the model): namespaces, tenant dirs, objects and backup ids, read
/// from the data directory, database root or repository already on the command line. A
/// repository is read by its refs only (names: no key, no manifest), cached for a few seconds per
/// location so pressing Tab again does not list it again. A completer never throws: no completion
/// is better than an error while typing.</summary>
public abstract class PSBackupCompleter : IArgumentCompleter
{
    private static readonly TimeSpan CacheLifetime = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan ListTimeout = TimeSpan.FromSeconds(5);
    private static readonly ConcurrentDictionary<string, (DateTime At, object Items)> Cache = new(StringComparer.Ordinal);

    /// <summary>One offered value and its tooltip.</summary>
    protected internal sealed record Candidate(string Value, string ToolTip);

    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
        CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        try
        {
            string word = (wordToComplete ?? "").Trim('\'', '"');
            var pattern = new WildcardPattern(WildcardPattern.Escape(word) + "*", WildcardOptions.IgnoreCase);
            return Candidates(new Bound(fakeBoundParameters, commandName ?? ""))
                .Where(c => pattern.IsMatch(c.Value))
                .DistinctBy(c => c.Value)
                .OrderBy(c => c.Value, StringComparer.OrdinalIgnoreCase)
                .Select(c => new CompletionResult(Quote(c.Value), c.Value, CompletionResultType.ParameterValue, c.ToolTip))
                .ToList();
        }
        catch (Exception)
        {
            return [];
        }
    }

    /// <summary>The values for what is bound so far.</summary>
    protected internal abstract IEnumerable<Candidate> Candidates(Bound bound);

    /// <summary><paramref name="list"/>'s result, cached under <paramref name="key"/> for a few seconds.</summary>
    protected static T Cached<T>(string key, Func<T> list) where T : class
    {
        DateTime now = DateTime.UtcNow;
        if (Cache.TryGetValue(key, out var hit) && now - hit.At < CacheLifetime && hit.Items is T items)
        {
            return items;
        }
        T fresh = list();
        Cache[key] = (now, fresh);
        return fresh;
    }

    /// <summary>The named backups of the repository on the command line (its refs), cached.</summary>
    protected static IReadOnlyList<(BackupRefName Name, string ManifestId)> RepositoryBackups(Bound bound)
    {
        if (bound.Repository() is not { } target)
        {
            return [];
        }
        return Cached("refs|" + target.Location + "|" + target.Endpoint, () =>
        {
            using var timeout = new CancellationTokenSource(ListTimeout);
            using IStorageBackend backend = RepositoryConnector.OpenBackend(target);
            var result = new List<(BackupRefName, string)>();
            foreach (StoredObject o in backend.ListAsync(RepositoryLayout.RefsPrefix, timeout.Token).ToBlockingEnumerable(timeout.Token))
            {
                string rest = o.Key[RepositoryLayout.RefsPrefix.Length..];
                int slash = rest.LastIndexOf('/');
                if (slash > 0 && BackupRefName.Parse(rest[..slash]) is { } name)
                {
                    result.Add((name, rest[(slash + 1)..]));
                }
            }
            return (IReadOnlyList<(BackupRefName, string)>)result;
        });
    }

    /// <summary>Sub-folders of <paramref name="folder"/> that <paramref name="keep"/> accepts, cached.</summary>
    protected static IReadOnlyList<string> Folders(string? folder, Func<string, bool> keep)
    {
        if (folder is null || !Directory.Exists(folder))
        {
            return [];
        }
        return Cached("dirs|" + folder, () => (IReadOnlyList<string>)Directory.EnumerateDirectories(folder).Select(Path.GetFileName).OfType<string>().ToList())
            .Where(keep).ToList();
    }

    private static string Quote(string value) =>
        value.IndexOfAny([' ', '\'', '"', '$', '`', '(', ')', '{', '}', ';', ',', '&', '|', '@', '#', '[', ']']) >= 0
            ? "'" + value.Replace("'", "''", StringComparison.Ordinal) + "'"
            : value;

    /// <summary>The parameters bound so far. Relative paths (and <c>~</c>) resolve against
    /// PowerShell's current location, as the cmdlet itself will resolve them: pwsh never moves the
    /// process directory on Set-Location (PowerShell/PowerShell#3428), so the process directory
    /// would complete the names of some other folder after a <c>cd</c>.</summary>
    protected internal sealed class Bound(IDictionary bound, string command)
    {
        /// <summary>The live data is the source (New-ObjectBackup, New-StoreSnapshot, Invoke-WalShip),
        /// even when a repository is the destination.</summary>
        public bool ReadsLiveData => command.StartsWith("New-", StringComparison.OrdinalIgnoreCase) || command.StartsWith("Invoke-", StringComparison.OrdinalIgnoreCase);

        /// <summary>Names come from the repository on the line (restoring, listing, removing), else
        /// from the live data.</summary>
        public bool FromRepository => !ReadsLiveData && Repository() is not null;

        public string? Get(string name) =>
            bound.Contains(name) && bound[name] is { } v ? (v is PSObject p ? p.BaseObject : v) is var b && b is string s ? s : b?.ToString() : null;

        public string? Folder(string name) => Get(name) is { Length: > 0 } path && !RepositoryTarget.IsS3Location(path)
            ? Resolve(path) : null;

        /// <summary><paramref name="path"/> resolved like a cmdlet's path parameter: through the
        /// session's FileSystem location and home (<c>~</c>), else against the process directory.
        /// A completer runs on the pipeline thread while TabExpansion2 runs, so the runspace's
        /// SessionStateProxy refuses ("a pipeline is already running"); a nested pipeline in the
        /// current runspace is how PowerShell's own completers read session state.</summary>
        public static string Resolve(string path)
        {
            try
            {
                if (Runspace.DefaultRunspace is not null)
                {
                    using var ps = PowerShell.Create(RunspaceMode.CurrentRunspace);
                    ps.AddScript("param($p) $ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath($p)", useLocalScope: true).AddArgument(path);
                    if (ps.Invoke() is [{ BaseObject: string resolved }] && !ps.HadErrors && System.IO.Path.IsPathFullyQualified(resolved))
                    {
                        return resolved;
                    }
                }
            }
            catch (Exception)
            {
                // Not a FileSystem path, a restricted session, or no usable runspace: fall back below.
            }
            return System.IO.Path.GetFullPath(path, Directory.GetCurrentDirectory());
        }

        public RepositoryTarget? Repository()
        {
            string? location = Get("Repository") ?? Get("Source");
            if (string.IsNullOrEmpty(location))
            {
                return null;
            }
            return new RepositoryTarget
            {
                Location = RepositoryTarget.IsS3Location(location) ? location : Resolve(location),
                Endpoint = Get("Endpoint"),
                Region = Get("Region"),
                AccessKey = Get("AccessKey"),
                Profile = Get("Profile"),
            };
        }
    }

    /// <summary>A namespace folder: not the backup root, not a transient artifact, holding a WAL or a store.</summary>
    protected static bool IsNamespaceFolder(string dataDir, string name) =>
        name != "backups" && !ObjectLayout.IsTransientArtifact(name)
        && (Directory.Exists(Path.Combine(dataDir, name, "wal")) || Directory.Exists(Path.Combine(dataDir, name, "db")) || Path.Exists(Path.Combine(dataDir, name, "unison.db")));
}

/// <summary>-Namespace: the namespaces of -DataDir (its folders with a WAL or store, and its local
/// backup roots) or of -Repository (its snapshot and WAL refs).</summary>
public sealed class NamespaceCompleter : PSBackupCompleter
{
    protected internal override IEnumerable<Candidate> Candidates(Bound bound)
    {
        if (!bound.FromRepository && bound.Folder("DataDir") is { } dataDir)
        {
            foreach (string ns in Folders(dataDir, n => IsNamespaceFolder(dataDir, n)))
            {
                yield return new Candidate(ns, $"namespace '{ns}' in {dataDir}");
            }
            foreach (string ns in Folders(Path.Combine(dataDir, "backups"), n => !ObjectLayout.IsTransientArtifact(n)))
            {
                yield return new Candidate(ns, $"namespace '{ns}' (local backups in {Path.Combine(dataDir, "backups", ns)})");
            }
        }
        foreach (var group in (bound.ReadsLiveData ? [] : RepositoryBackups(bound)).Where(b => b.Name.Namespace is not null).GroupBy(b => b.Name.Namespace!))
        {
            yield return new Candidate(group.Key, $"namespace '{group.Key}': {group.Count()} backup(s) in the repository");
        }
    }
}

/// <summary>-Dir: the tenant dirs a repository holds object backups of when -Repository is given
/// (restoring from it), else those of -DbRoot.</summary>
public sealed class DirCompleter : PSBackupCompleter
{
    protected internal override IEnumerable<Candidate> Candidates(Bound bound)
    {
        if (!bound.FromRepository && bound.Folder("DbRoot") is { } dbRoot)
        {
            foreach (string dir in Folders(dbRoot, n => !ObjectLayout.IsTransientArtifact(n) && n != "backups"))
            {
                yield return new Candidate(dir, $"tenant dir '{dir}' under {dbRoot}");
            }
        }
        foreach (var group in (bound.ReadsLiveData ? [] : RepositoryBackups(bound)).Where(b => b.Name.Dir is not null).GroupBy(b => b.Name.Dir!))
        {
            yield return new Candidate(group.Key, $"tenant dir '{group.Key}': {group.Count()} object backup(s) in the repository");
        }
    }
}

/// <summary>-Object: the objects a repository holds backups of (of -Dir when given) when -Repository
/// is given, else those of -DbRoot/-Dir (not their backup folders).</summary>
public sealed class ObjectCompleter : PSBackupCompleter
{
    protected internal override IEnumerable<Candidate> Candidates(Bound bound)
    {
        string? dir = bound.Get("Dir");
        if (!bound.FromRepository && bound.Folder("DbRoot") is { } dbRoot && dir is { Length: > 0 } && !dir.Contains('*', StringComparison.Ordinal))
        {
            string tenant = Path.Combine(dbRoot, dir);
            foreach (string obj in Folders(tenant, n => !ObjectLayout.IsTransientArtifact(n) && !ObjectLayout.TryParseBackupName(n, out _, out _)))
            {
                yield return new Candidate(obj, $"object '{dir}/{obj}'");
            }
        }
        foreach (var group in (bound.ReadsLiveData ? [] : RepositoryBackups(bound)).Where(b => b.Name.Object is not null && (dir is null || b.Name.Dir == dir)).GroupBy(b => b.Name.Object!))
        {
            yield return new Candidate(group.Key, $"object '{group.First().Name.Dir}/{group.Key}': {group.Count()} backup(s) in the repository");
        }
    }
}

/// <summary>-BackupId of Remove-Backup: the backups of the repository (newest first by name,
/// narrowed by -Namespace, -Dir, -Object, -Kind when bound), of the local backup root
/// (&lt;DataDir&gt;/backups/&lt;Namespace&gt;: snapshot paths) or of -DbRoot/-Dir (object backup folders).
/// The restoring commands use a subclass that offers only the kind they restore.</summary>
public class BackupIdCompleter : PSBackupCompleter
{
    /// <summary>The one kind the command takes (a store snapshot for Restore-StoreSnapshot and
    /// Test-Restore, an object backup for Restore-ObjectBackup); null: any.</summary>
    protected virtual BackupKind? Restores => null;

    protected internal override IEnumerable<Candidate> Candidates(Bound bound)
    {
        string? ns = bound.Get("Namespace"), dir = bound.Get("Dir"), obj = bound.Get("Object"), kind = bound.Get("Kind");
        BackupKind? wanted = Restores ?? (kind is null ? null : BackupKinds.TryParse(kind));
        foreach (var (name, id) in RepositoryBackups(bound)
                     .Where(b => (ns is null || b.Name.Namespace == ns) && (dir is null || b.Name.Dir == dir) && (obj is null || b.Name.Object == obj)
                                 && (wanted is null || b.Name.Kind == wanted))
                     .OrderByDescending(b => b.Name.SortKey, StringComparer.Ordinal))
        {
            yield return new Candidate(id, name.ToString());
        }
        if (wanted is null or BackupKind.StoreSnapshot && bound.Folder("DataDir") is { } dataDir && ns is { Length: > 0 })
        {
            string root = Path.Combine(dataDir, "backups", ns);
            if (Directory.Exists(root))
            {
                foreach (string manifest in Cached("snapshots|" + root, () => (IReadOnlyList<string>)Directory.EnumerateFiles(root, "*" + ObjectLayout.ManifestSuffix, SearchOption.AllDirectories).ToList()))
                {
                    string rel = Path.GetRelativePath(root, manifest[..^ObjectLayout.ManifestSuffix.Length]).Replace('\\', '/');
                    yield return new Candidate(rel, $"local snapshot of '{ns}' ({File.GetLastWriteTimeUtc(manifest):u})");
                }
            }
        }
        if (wanted is null or BackupKind.Object && bound.Folder("DbRoot") is { } dbRoot && dir is { Length: > 0 })
        {
            foreach (string folder in Folders(Path.Combine(dbRoot, dir), n => ObjectLayout.TryParseBackupName(n, out string o, out _) && (obj is null || o == obj)).OrderByDescending(n => n, StringComparer.Ordinal))
            {
                yield return new Candidate(folder, $"local object backup in {Path.Combine(dbRoot, dir)}");
            }
        }
    }
}

/// <summary>-BackupId and -Snapshot of Restore-StoreSnapshot and Test-Restore: store snapshots only
/// (a WAL segment or an object backup there fails the restore).</summary>
public sealed class StoreSnapshotIdCompleter : BackupIdCompleter
{
    protected override BackupKind? Restores => BackupKind.StoreSnapshot;
}

/// <summary>-BackupId and -From of Restore-ObjectBackup: object backups only.</summary>
public sealed class ObjectBackupIdCompleter : BackupIdCompleter
{
    protected override BackupKind? Restores => BackupKind.Object;
}
