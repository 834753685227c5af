using System.Runtime.InteropServices;

namespace PSBackup.Engine;

/// <summary>Files and folders only their owner may read: repository objects (keys included), the
/// client state and temp files of restores. On Unix they are created 0600 / 0700 (the mode is given
/// to open/mkdir, so there is no moment at which they are readable by others, whatever the umask);
/// on Windows they inherit the folder's ACL, which is the Windows engineer's to tighten.</summary>
public static partial class PrivateFiles
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

    /// <summary>Creates the one folder <paramref name="path"/>, never a missing parent (mkdir(2);
    /// CreateDirectoryW on Windows), 0700 on Unix. True when it was created, false when a folder
    /// was already there. A missing parent is <see cref="DirectoryNotFoundException"/>: a store
    /// whose root was removed or unmounted meanwhile must fail, not get a fresh empty root
    /// (<see cref="Directory.CreateDirectory(string)"/> would quietly create it).</summary>
    public static bool CreateOneDirectory(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        path = Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
        bool windows = OperatingSystem.IsWindows();
        if (windows ? CreateDirectoryW(LongPath(path), 0) != 0 : mkdir(path, (uint)DirectoryMode) == 0)
        {
            return true;
        }
        int error = Marshal.GetLastPInvokeError();
        if (windows ? error == ErrorAlreadyExists : error == Eexist)
        {
            return Directory.Exists(path) ? false : throw new IOException($"Cannot create the folder '{path}': a file of that name exists.");
        }
        if (windows ? error is ErrorPathNotFound or ErrorFileNotFound : error is Enoent or Enotdir)
        {
            throw new DirectoryNotFoundException($"Cannot create the folder '{path}': its parent folder does not exist.");
        }
        throw new IOException($"Cannot create the folder '{path}' (error {error}: {Marshal.GetPInvokeErrorMessage(error)}).");
    }

    /// <summary>Win32 calls take a path up to MAX_PATH unless it is in the \\?\ form.</summary>
    private static string LongPath(string path) =>
        path.Length < 248 || path.StartsWith(@"\\?\", StringComparison.Ordinal) ? path
        : path.StartsWith(@"\\", StringComparison.Ordinal) ? @"\\?\UNC\" + path[2..]
        : @"\\?\" + path;

    private const int Enoent = 2;
    private const int Enotdir = 20;
    private const int Eexist = 17; // the same on Linux and macOS
    private const int ErrorFileNotFound = 2;
    private const int ErrorPathNotFound = 3;
    private const int ErrorAlreadyExists = 183;

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int mkdir(string path, uint mode);

    [LibraryImport("kernel32.dll", EntryPoint = "CreateDirectoryW", SetLastError = true, StringMarshalling = StringMarshalling.Utf16)]
    private static partial int CreateDirectoryW(string path, nint securityAttributes);

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
