using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;

namespace PSBackup.Engine.Storage;

/// <summary>A repository in a folder: each key is a file under the root (folders for the '/'
/// segments). A put writes a uniquely named temp file next to the target, fsyncs it, renames it
/// over the key and fsyncs the folder, so a crash leaves the old object or the new one, never a
/// torn one; a leftover temp file is invisible to the listing and harmless. A folder cannot
/// hold both an object "a" and objects "a/..." (the second put fails with a non-transient
/// <see cref="StorageIOException"/>); repository key layouts never need both.</summary>
public sealed partial class LocalBackend : IStorageBackend, IStorageLeftovers
{
    private const string What = "storage key";
    private const int BufferSize = 1 << 16;
    private readonly string _root;

    /// <summary>Opens the repository folder <paramref name="root"/>, which must exist (creating
    /// it is the caller's job, so a typo never silently starts an empty repository).</summary>
    public LocalBackend(string root)
    {
        if (string.IsNullOrWhiteSpace(root))
        {
            throw new InvalidInputException("InvalidPath", "The repository location is empty. Give a folder path or an s3:// location.", root);
        }
        _root = Path.GetFullPath(root);
        RequireRoot();
    }

    public string Location => _root;

    /// <summary>Temp files a put writes next to its target; the listing never returns them and
    /// keys of this shape are refused, so a stored object can never be mistaken for one.</summary>
    [GeneratedRegex("^\\.psb-[0-9a-f]{32}\\.tmp$")]
    private static partial Regex TempName();

    public async Task PutAsync(string key, Stream content, long length, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(content);
        string path = Resolve(key);
        ct.ThrowIfCancellationRequested();
        string dir = Path.GetDirectoryName(path)!;
        RequireSpelling(key);
        CreateFolders(dir);
        if (Directory.Exists(path))
        {
            throw new StorageIOException($"Cannot store '{key}' in {_root}: a folder of that name holds other keys.", key, _root, isTransient: false);
        }
        string temp = Path.Combine(dir, $".psb-{Guid.NewGuid():N}.tmp");
        try
        {
            // 0600 on Unix: repository objects (keys included) are the owner's alone.
            await using (FileStream file = CreateTemp(temp, dir))
            {
                await content.CopyToAsync(file, BufferSize, ct).ConfigureAwait(false);
                await file.FlushAsync(ct).ConfigureAwait(false);
                if (length >= 0 && file.Length != length)
                {
                    throw new StorageIOException(
                        $"The content for '{key}' was {file.Length} bytes, not the {length} announced; nothing was stored.", key, _root, isTransient: false);
                }
                file.Flush(flushToDisk: true);
            }
            ct.ThrowIfCancellationRequested();
            // Windows refuses to replace a file another process holds without FileShare.Delete
            // (a scanner): retried there.
            FolderSwap.Retry(() => File.Move(temp, path, overwrite: true), FolderSwap.DefaultAttempts);
        }
        catch
        {
            Durable.TryDelete(temp);
            throw;
        }
        Durable.FsyncDirectory(dir);
    }

    /// <summary>A new, empty staging file in the folder that will hold <paramref name="folderKey"/>'s
    /// objects, for an object written in place and committed by <see cref="CommitStaged"/> (a
    /// repository's packs: assembled on disk instead of in memory, then renamed to their content
    /// address, with no copy). Until then it has a temp name: invisible to the listing, and a
    /// leftover (<see cref="IStorageLeftovers"/>) if the writer dies.</summary>
    internal FileStream CreateStaging(string folderKey)
    {
        string dir = SafePath.Combine(_root, folderKey, What);
        CreateFolders(dir);
        FileStreamOptions options = PrivateFiles.CreateNew(bufferSize: 0, options: FileOptions.None);
        return new FileStream(Path.Combine(dir, $".psb-{Guid.NewGuid():N}.tmp"), options);
    }

    /// <summary>Makes a staging file of <see cref="CreateStaging"/> the object <paramref name="key"/>
    /// as a put would: its bytes fsynced, the file renamed over the key, both folders fsynced. The
    /// stream is closed; on failure the staging file is deleted.</summary>
    internal void CommitStaged(FileStream staging, string key)
    {
        ArgumentNullException.ThrowIfNull(staging);
        string temp = staging.Name;
        try
        {
            string path = Resolve(key);
            string dir = Path.GetDirectoryName(path)!;
            RequireSpelling(key);
            CreateFolders(dir);
            if (Directory.Exists(path))
            {
                throw new StorageIOException($"Cannot store '{key}' in {_root}: a folder of that name holds other keys.", key, _root, isTransient: false);
            }
            staging.Flush(flushToDisk: true);
            staging.Dispose();
            FolderSwap.Retry(() => File.Move(temp, path, overwrite: true), FolderSwap.DefaultAttempts);
            Durable.FsyncDirectory(dir);
            string from = Path.GetDirectoryName(temp)!;
            if (!string.Equals(from, dir, StringComparison.Ordinal))
            {
                Durable.FsyncDirectory(from);
            }
        }
        catch
        {
            staging.Dispose();
            Durable.TryDelete(temp);
            throw;
        }
    }

    public Task<Stream> GetAsync(string key, CancellationToken ct)
    {
        string path = Resolve(key);
        ct.ThrowIfCancellationRequested();
        return Task.FromResult<Stream>(Open(key, path));
    }

    public Task<Stream> GetRangeAsync(string key, long offset, long length, CancellationToken ct)
    {
        string path = Resolve(key);
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ct.ThrowIfCancellationRequested();
        FileStream file = Open(key, path);
        try
        {
            if (offset > file.Length || length > file.Length - offset)
            {
                throw new StorageIOException(
                    $"The range {offset}+{length} is past the end of '{key}' ({file.Length} bytes) in {_root}.", key, _root, isTransient: false);
            }
            file.Seek(offset, SeekOrigin.Begin);
            return Task.FromResult<Stream>(new RangeStream(file, length, strict: true, what: $"'{key}'"));
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    public Task<StoredObject?> StatAsync(string key, CancellationToken ct)
    {
        string path = Resolve(key);
        ct.ThrowIfCancellationRequested();
        var info = new FileInfo(path);
        if (!info.Exists)
        {
            RequireRoot();
            return Task.FromResult<StoredObject?>(null);
        }
        return Task.FromResult<StoredObject?>(new StoredObject(key, info.Length, new DateTimeOffset(info.LastWriteTimeUtc, TimeSpan.Zero)));
    }

    public async IAsyncEnumerable<StoredObject> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        StorageKey.ValidatePrefix(prefix);
        // The folder part of the prefix (up to the last '/') is walked; the rest filters names.
        int slash = prefix.LastIndexOf('/');
        string folderPart = slash < 0 ? "" : prefix[..slash];
        string start = folderPart.Length == 0 ? _root : SafePath.Combine(_root, folderPart, "storage prefix");
        RequireRoot();
        if (!Directory.Exists(start))
        {
            yield break;
        }
        string keyBase = folderPart.Length == 0 ? "" : folderPart + "/";
        foreach (StoredObject item in Walk(new DirectoryInfo(start), keyBase, prefix, ct))
        {
            yield return item;
        }
        await Task.CompletedTask.ConfigureAwait(false);
    }

    /// <summary>Depth-first in ordinal key order without collecting the whole tree: within a
    /// folder, a subfolder sorts as "name/" against files, which is exactly where its keys fall.</summary>
    private IEnumerable<StoredObject> Walk(DirectoryInfo dir, string keyBase, string prefix, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var entries = new List<(string SortName, FileSystemInfo Info)>();
        foreach (FileSystemInfo entry in dir.EnumerateFileSystemInfos())
        {
            if (SafePath.IsLink(entry))
            {
                continue; // never follow or report links: they could point outside the root
            }
            if (entry is DirectoryInfo)
            {
                entries.Add((entry.Name + "/", entry));
            }
            else if (!TempName().IsMatch(entry.Name))
            {
                entries.Add((entry.Name, entry));
            }
        }
        entries.Sort((a, b) => string.CompareOrdinal(a.SortName, b.SortName));
        foreach ((string sortName, FileSystemInfo info) in entries)
        {
            string key = keyBase + sortName;
            if (info is DirectoryInfo sub)
            {
                // Descend only where keys can still match the prefix.
                if (key.StartsWith(prefix, StringComparison.Ordinal) || prefix.StartsWith(key, StringComparison.Ordinal))
                {
                    foreach (StoredObject item in Walk(sub, key, prefix, ct))
                    {
                        yield return item;
                    }
                }
            }
            else if (key.StartsWith(prefix, StringComparison.Ordinal))
            {
                var file = (FileInfo)info;
                long size;
                DateTime modified;
                try
                {
                    size = file.Length;
                    modified = file.LastWriteTimeUtc;
                }
                catch (FileNotFoundException)
                {
                    continue; // deleted while listing
                }
                yield return new StoredObject(key, size, new DateTimeOffset(modified, TimeSpan.Zero));
            }
        }
    }

    public Task DeleteAsync(string key, CancellationToken ct)
    {
        string path = Resolve(key);
        ct.ThrowIfCancellationRequested();
        RequireRoot();
        if (!File.Exists(path))
        {
            return Task.CompletedTask;
        }
        try
        {
            File.Delete(path);
        }
        catch (DirectoryNotFoundException)
        {
            return Task.CompletedTask;
        }
        string dir = Path.GetDirectoryName(path)!;
        Durable.FsyncDirectory(dir);
        RemoveEmptyRefFolder(key, dir);
        return Task.CompletedTask;
    }

    /// <summary>A ref is <c>refs/&lt;name&gt;/&lt;manifest id&gt;</c>: one folder per name. Names come and go
    /// (every partial of a WAL segment has its own, forgotten when the next is committed), so the
    /// folder of a deleted ref goes with it when empty; otherwise every listing of the refs would
    /// walk one empty folder per ref ever deleted. A writer putting a ref into the folder at that
    /// moment creates it again (<see cref="CreateTemp"/>).</summary>
    private void RemoveEmptyRefFolder(string key, string dir)
    {
        if (!key.StartsWith(RefsFolderPrefix, StringComparison.Ordinal) || key.IndexOf('/', RefsFolderPrefix.Length) < 0)
        {
            return;
        }
        try
        {
            Directory.Delete(dir, recursive: false); // only when empty
            Durable.FsyncDirectory(Path.GetDirectoryName(dir)!);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // not empty (another ref of the name, a writer's temp file), or already gone
        }
    }

    private const string RefsFolderPrefix = "refs/";

    /// <summary>Creates the temp file of a put; when its folder was removed meanwhile (an empty
    /// ref folder removed by a concurrent delete), creates the folder again and retries.</summary>
    private FileStream CreateTemp(string temp, string dir)
    {
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                return new FileStream(temp, PrivateFiles.CreateNew(BufferSize));
            }
            catch (DirectoryNotFoundException) when (attempt < 3)
            {
                CreateFolders(dir);
            }
        }
    }

    public async IAsyncEnumerable<StoredObject> ListLeftoversAsync([EnumeratorCancellation] CancellationToken ct)
    {
        RequireRoot();
        var pending = new Stack<DirectoryInfo>();
        pending.Push(new DirectoryInfo(_root));
        while (pending.Count > 0)
        {
            ct.ThrowIfCancellationRequested();
            DirectoryInfo dir = pending.Pop();
            List<FileSystemInfo> entries;
            try
            {
                entries = dir.EnumerateFileSystemInfos().ToList();
            }
            catch (DirectoryNotFoundException)
            {
                continue;
            }
            foreach (FileSystemInfo entry in entries)
            {
                if (SafePath.IsLink(entry))
                {
                    continue; // a link, never followed; a deduplicated or tiered temp file is listed
                }
                if (entry is DirectoryInfo sub)
                {
                    pending.Push(sub);
                }
                else if (TempName().IsMatch(entry.Name))
                {
                    string name = Path.GetRelativePath(_root, entry.FullName).Replace(Path.DirectorySeparatorChar, '/');
                    yield return new StoredObject(name, ((FileInfo)entry).Length, new DateTimeOffset(entry.LastWriteTimeUtc, TimeSpan.Zero));
                }
            }
        }
        await Task.CompletedTask.ConfigureAwait(false);
    }

    public Task DeleteLeftoverAsync(string name, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(name);
        string valid = StorageKey.Validate(name);
        if (!TempName().IsMatch(valid[(valid.LastIndexOf('/') + 1)..]))
        {
            throw new InvalidInputException("InvalidPath", $"'{SafePath.Printable(name)}' is not a temp file of this backend; only leftovers are deleted this way.", name);
        }
        ct.ThrowIfCancellationRequested();
        string path = SafePath.Combine(_root, valid, What);
        if (File.Exists(path))
        {
            File.Delete(path);
            Durable.FsyncDirectory(Path.GetDirectoryName(path)!);
        }
        return Task.CompletedTask;
    }

    public void Dispose()
    {
    }

    /// <summary>Validates the key (before any I/O) and maps it to a path inside the root.</summary>
    private string Resolve(string key)
    {
        string valid = StorageKey.Validate(key);
        if (!string.Equals(valid, key, StringComparison.Ordinal))
        {
            throw new InvalidInputException("InvalidPath", $"The storage key '{SafePath.Printable(key)}' ends with '/'. Keys name objects, not folders.", key);
        }
        string name = valid[(valid.LastIndexOf('/') + 1)..];
        if (TempName().IsMatch(name))
        {
            throw new InvalidInputException("InvalidPath", $"The storage key '{SafePath.Printable(key)}' has the form of a temp file name, which the local backend reserves. Use another name.", key);
        }
        return SafePath.Combine(_root, valid, What);
    }

    private FileStream Open(string key, string path)
    {
        try
        {
            if (Directory.Exists(path))
            {
                throw new StorageNotFoundException(key, _root);
            }
            // Only a regular file is an object: a FIFO or device planted under a key would block the
            // open or never end.
            return SpecialFiles.OpenRegular(path, BufferSize);
        }
        catch (InvalidInputException e) when (e.ErrorId == "NotARegularFile")
        {
            throw new StorageIOException($"'{key}' in {_root} is not a regular file, so it is no object of this repository: {e.Message}", key, _root, isTransient: false,
                errorCode: StorageIOException.NotARegularFile);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            RequireRoot();
            throw new StorageNotFoundException(key, _root);
        }
    }

    /// <summary>Creates the missing folders of <paramref name="dir"/> (below the root) one by one
    /// from the root down, never through a link, and makes each creation durable in its parent.
    /// Each is one mkdir that never creates a parent, and the root is never created: when the
    /// repository folder is removed or its disk unmounted while a run writes (a follower between
    /// passes, a history event recorded after the operation), the put fails with
    /// RepositoryNotFound instead of quietly starting a fresh folder where the repository was.</summary>
    private void CreateFolders(string dir)
    {
        RequireRoot();
        if (Directory.Exists(dir))
        {
            return;
        }
        string relative = Path.GetRelativePath(_root, dir);
        string current = _root;
        foreach (string segment in relative.Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries))
        {
            string next = Path.Combine(current, segment);
            if (!Directory.Exists(next))
            {
                SafePath.RejectLinksBelow(_root, current, What);
                bool created;
                try
                {
                    created = PrivateFiles.CreateOneDirectory(next); // 0700 on Unix
                }
                catch (DirectoryNotFoundException)
                {
                    RequireRoot(); // the root went away meanwhile: RepositoryNotFound
                    throw new StorageIOException($"Cannot create folder '{next}' in {_root}: its parent folder was removed meanwhile.", null, _root, isTransient: false);
                }
                catch (IOException) when (File.Exists(next))
                {
                    throw new StorageIOException($"Cannot create folder '{next}' in {_root}: an object of that name exists.", null, _root, isTransient: false);
                }
                if (created)
                {
                    Durable.FsyncDirectory(current);
                }
            }
            current = next;
        }
    }

    /// <summary>On a file system that ignores case (Windows, macOS) two keys differing only in case
    /// would be one file (the second put silently replacing the first) or mix their folders: such a
    /// put is refused, naming the key already there. Repository keys never differ only in case
    /// (hex ids, and names that take their on-disk spelling), so this only stops a foreign writer.</summary>
    private void RequireSpelling(string key)
    {
        if (!SafePath.NamesIgnoreCase)
        {
            return;
        }
        string current = _root;
        foreach (string segment in key.Split('/'))
        {
            string next = Path.Combine(current, segment);
            if (!File.Exists(next) && !Directory.Exists(next))
            {
                return;
            }
            string onDisk = ObjectStore.ObjectLocation.OnDiskName(current, segment);
            if (!string.Equals(onDisk, segment, StringComparison.Ordinal))
            {
                throw new StorageIOException(
                    $"Cannot store '{key}' in {_root}: '{onDisk}' is already there and this file system does not tell names apart by case. Store it in a case-sensitive location (S3, or a folder on a case-sensitive volume).",
                    key, _root, isTransient: false);
            }
            current = next;
        }
    }

    private void RequireRoot()
    {
        if (!Directory.Exists(_root))
        {
            throw new NotFoundException("RepositoryNotFound", $"The repository folder '{_root}' does not exist. Create it with Initialize-BackupRepository (psbackup repo init), or check the path.", _root);
        }
    }
}
