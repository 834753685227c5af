namespace PSBackup.Engine;

/// <summary>Puts a finished, fsynced temp folder (or file: bbolt's unison.db) in the place of a live
/// one, keeping the live one
/// aside as <c>&lt;live&gt;.replaced-&lt;stamp&gt;</c>: the one swap Restore-ObjectBackup,
/// Restore-StoreSnapshot and Restore-PointInTime share.
/// <para>Windows refuses to rename a folder while a file inside is open (an antivirus or indexer
/// scanning the fresh copy, the database still running) with an UnauthorizedAccessException or a
/// sharing-violation IOException, often only for a moment. Every rename here therefore treats both
/// exception types alike, retries a few times with backoff on Windows (where they are commonly
/// transient), and if the new folder cannot take the live name, moves the live folder back, so a
/// failed restore never leaves the live path empty. The renames go through <see cref="IFolderMover"/>
/// so tests can inject the Windows failures on any OS.</para></summary>
internal static class FolderSwap
{
    /// <summary>Moves a folder (Directory.Move in production).</summary>
    internal interface IFolderMover
    {
        void Move(string from, string to);
    }

    private sealed class DirectoryMover : IFolderMover
    {
        public void Move(string from, string to)
        {
            if (File.Exists(from))
            {
                File.Move(from, to, overwrite: false); // a single-file store (bbolt's unison.db)
            }
            else
            {
                Directory.Move(from, to);
            }
        }
    }

    internal static readonly IFolderMover System = new DirectoryMover();

    /// <summary>Attempts per rename: several on Windows, where the failures above are usually a
    /// scanner's brief open handle; one elsewhere, where a failed rename does not heal.</summary>
    internal static int DefaultAttempts => OperatingSystem.IsWindows() ? 6 : 1;

    /// <summary>The swap of an already fsynced temp folder. <paramref name="deleteEmptyLive"/> says what to do with an empty live folder:
    /// delete it (nothing to keep) or move it aside like a full one. Returns where the replaced
    /// folder went, or null. Throws ReplaceFailed (the live folder untouched or put back, named in
    /// the message) or RestoreTargetTaken when something else took the live name meanwhile.</summary>
    public static string? Replace(string tempPath, string livePath, string stamp, string what, bool deleteEmptyLive,
        IFolderMover? mover = null, int? attempts = null)
    {
        mover ??= System;
        int tries = attempts ?? DefaultAttempts;
        string parent = Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(livePath)))!;
        string? replaced = null;
        if (Directory.Exists(livePath) || File.Exists(livePath))
        {
            if (deleteEmptyLive && Directory.Exists(livePath) && !Directory.EnumerateFileSystemEntries(livePath).Any())
            {
                Directory.Delete(livePath); // empty: nothing to keep
            }
            else
            {
                replaced = FreeReplacedPath(livePath, stamp);
                try
                {
                    Retry(() => mover.Move(livePath, replaced), tries);
                }
                catch (Exception e) when (IsRenameFailure(e))
                {
                    throw new OperationFailedException("ReplaceFailed",
                        $"Cannot move the {what} '{livePath}' aside to '{replaced}' ({e.Message}). Nothing was replaced; stop whatever holds files in it open (the database, an editor, a scanner), then run again.", livePath, e);
                }
            }
        }
        if (Directory.Exists(livePath) || File.Exists(livePath))
        {
            string undo = PutBack(replaced, livePath, mover, tries);
            throw new ConflictException("RestoreTargetTaken",
                $"'{livePath}' was recreated while the restore swapped it.{undo} Make sure nothing recreates it during a restore (stop the database), then run again.", livePath);
        }
        try
        {
            Retry(() => mover.Move(tempPath, livePath), tries);
        }
        catch (Exception e) when (IsRenameFailure(e))
        {
            string undo = PutBack(replaced, livePath, mover, tries);
            if (Directory.Exists(livePath) && replaced is null)
            {
                throw new ConflictException("RestoreTargetTaken",
                    $"Cannot rename the restored copy to '{livePath}' ({e.Message}): something else created it meanwhile. Make sure nothing recreates it during a restore (stop the database), then run again.", livePath);
            }
            throw new OperationFailedException("ReplaceFailed",
                $"Cannot rename the restored copy to '{livePath}' ({e.Message}).{undo} Stop whatever holds files in either folder open (the database, a scanner), then run again.", livePath, e);
        }
        Durable.FsyncDirectory(parent);
        return replaced;
    }

    /// <summary>Moves the kept live folder back to its name; the sentence to add to the error.</summary>
    private static string PutBack(string? replaced, string livePath, IFolderMover mover, int tries)
    {
        if (replaced is null)
        {
            return "";
        }
        try
        {
            Retry(() => mover.Move(replaced, livePath), Math.Max(tries, 3));
            return $" The previous folder was put back unchanged at '{livePath}'.";
        }
        catch (Exception back) when (IsRenameFailure(back))
        {
            return $" Moving the previous folder back also failed ({back.Message}); it is kept, unchanged, at '{replaced}': rename it to '{livePath}' by hand.";
        }
    }

    internal static bool IsRenameFailure(Exception e) => e is IOException or UnauthorizedAccessException;

    /// <summary>Runs <paramref name="rename"/> up to <paramref name="attempts"/> times, waiting 50, 100,
    /// 200 ... ms between tries; rethrows the last failure.</summary>
    internal static void Retry(Action rename, int attempts)
    {
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                rename();
                return;
            }
            catch (Exception e) when (IsRenameFailure(e) && attempt < attempts && e is not DirectoryNotFoundException)
            {
                Thread.Sleep(50 << Math.Min(attempt - 1, 4));
            }
        }
    }

    /// <summary>The first free <c>&lt;live&gt;.replaced-&lt;stamp&gt;[-n]</c>.</summary>
    internal static string FreeReplacedPath(string livePath, string stamp)
    {
        string basePath = Path.TrimEndingDirectorySeparator(livePath) + ".replaced-" + stamp;
        for (int n = 1; n < 1000; n++)
        {
            string candidate = n == 1 ? basePath : $"{basePath}-{n}";
            if (!Directory.Exists(candidate) && !File.Exists(candidate) && new FileInfo(candidate).LinkTarget is null)
            {
                return candidate;
            }
        }
        throw new ConflictException("ReplacedExists", $"Too many '{basePath}*' folders already exist. Remove old replaced copies, then run again.", basePath);
    }
}
