namespace PSBackup.Engine;

/// <summary>Files and folders only their owner may read: repository objects (keys included), the
/// client state and temp files of restores. On Unix they are created 0600 / 0700 (the mode is given
/// to open/mkdir, so there is no moment at which they are readable by others, whatever the umask);
/// on Windows they inherit the folder's ACL, which is the Windows engineer's to tighten.</summary>
public static class PrivateFiles
{
    public const UnixFileMode FileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    public const UnixFileMode DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary>Creates <paramref name="path"/> and its missing parents; folders it creates are 0700 on Unix.</summary>
    public static void CreateDirectory(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(path);
        }
        else
        {
            Directory.CreateDirectory(path, DirectoryMode);
        }
    }

    /// <summary>Options for a new file (<see cref="System.IO.FileMode.CreateNew"/>, write) created 0600 on Unix.</summary>
    public static FileStreamOptions CreateNew(int bufferSize = 1 << 16, FileOptions options = FileOptions.Asynchronous, UnixFileMode mode = FileMode)
    {
        var o = new FileStreamOptions
        {
            Mode = System.IO.FileMode.CreateNew,
            Access = FileAccess.Write,
            Share = FileShare.None,
            BufferSize = bufferSize,
            Options = options,
        };
        if (!OperatingSystem.IsWindows())
        {
            o.UnixCreateMode = mode;
        }
        return o;
    }
}
