namespace PSBackup.Engine.ObjectStore;

/// <summary>Clear-StaleArtifact: shard-db's startup sweep. Finds every file or folder under a root
/// whose name ends with .new, .old or .tmp (without following links or descending into an
/// artifact) and removes each one ShouldProcess allows.</summary>
internal static class StaleArtifactSweep
{
    private const string Activity = "Clear-StaleArtifact";

    public static Task<IReadOnlyList<StaleArtifact>> RunAsync(ClearStaleArtifactOptions options, OperationContext context)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(context);
        CancellationToken ct = context.CancellationToken;
        string root = SafePath.RequireDirectory(options.Root, "sweep root", "Pass -Root an existing folder, such as the database root.");

        List<FileSystemInfo> found = Find(root, ct);
        var results = new List<StaleArtifact>(found.Count);
        for (int i = 0; i < found.Count; i++)
        {
            ct.ThrowIfCancellationRequested();
            FileSystemInfo artifact = found[i];
            bool link = ObjectLayout.IsLink(artifact);
            bool isDirectory = artifact is DirectoryInfo && !link;
            long bytes = isDirectory ? TreeBytes((DirectoryInfo)artifact) : link ? 0 : ((FileInfo)artifact).Length;
            context.Report(Activity, $"Found {artifact.FullName}", i, found.Count, artifact.FullName);
            if (!context.ShouldProcess(artifact.FullName, "Remove stale artifact"))
            {
                results.Add(new StaleArtifact(artifact.FullName, isDirectory, bytes, Removed: false));
                continue;
            }
            string? error = Remove(artifact, isDirectory, link);
            results.Add(new StaleArtifact(artifact.FullName, isDirectory, bytes, Removed: error is null) { Error = error });
        }
        context.Report(Activity, $"Swept {found.Count} artifacts", found.Count, found.Count);
        return Task.FromResult<IReadOnlyList<StaleArtifact>>(results);
    }

    /// <summary>Artifacts below <paramref name="root"/> in ordinal path order. Links are never
    /// followed (a link named like an artifact is itself an artifact), artifacts never entered.</summary>
    private static List<FileSystemInfo> Find(string root, CancellationToken ct)
    {
        var found = new List<FileSystemInfo>();
        var pending = new Stack<DirectoryInfo>();
        pending.Push(new DirectoryInfo(root));
        while (pending.Count > 0)
        {
            ct.ThrowIfCancellationRequested();
            DirectoryInfo current = pending.Pop();
            IEnumerable<FileSystemInfo> entries;
            try
            {
                entries = current.EnumerateFileSystemInfos("*", ObjectTree.OneLevel).ToList();
            }
            catch (DirectoryNotFoundException) when (current.FullName != root)
            {
                continue; // removed while we walked
            }
            foreach (FileSystemInfo entry in entries)
            {
                if (ObjectLayout.IsTransientArtifact(entry.Name))
                {
                    found.Add(entry);
                }
                else if (entry is DirectoryInfo dir && !ObjectLayout.IsLink(dir))
                {
                    pending.Push(dir);
                }
            }
        }
        found.Sort((a, b) => string.CompareOrdinal(a.FullName, b.FullName));
        return found;
    }

    private static long TreeBytes(DirectoryInfo dir)
    {
        long total = 0;
        var pending = new Stack<DirectoryInfo>();
        pending.Push(dir);
        while (pending.Count > 0)
        {
            DirectoryInfo current = pending.Pop();
            try
            {
                foreach (FileSystemInfo entry in current.EnumerateFileSystemInfos("*", ObjectTree.OneLevel))
                {
                    if (ObjectLayout.IsLink(entry))
                    {
                        continue;
                    }
                    if (entry is DirectoryInfo sub)
                    {
                        pending.Push(sub);
                    }
                    else
                    {
                        total += ((FileInfo)entry).Length;
                    }
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // A folder that vanished or cannot be read adds nothing; removal reports the problem.
            }
        }
        return total;
    }

    /// <summary>Removes one artifact (a link itself, never its target); null on success, else why not.</summary>
    private static string? Remove(FileSystemInfo artifact, bool isDirectory, bool link)
    {
        try
        {
            if (isDirectory)
            {
                Directory.Delete(artifact.FullName, recursive: true);
            }
            else if (link && artifact is DirectoryInfo)
            {
                Directory.Delete(artifact.FullName, recursive: false); // removes the link only
            }
            else
            {
                File.Delete(artifact.FullName);
            }
            return null;
        }
        catch (DirectoryNotFoundException)
        {
            return null; // already gone (another sweep or the database itself)
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"{e.Message} Check permissions and that nothing holds it open, then run again.";
        }
    }
}
