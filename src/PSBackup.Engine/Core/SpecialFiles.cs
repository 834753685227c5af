using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace PSBackup.Engine;

/// <summary>What a directory entry is, without following a link.</summary>
public enum FileKind
{
    Missing,
    Regular,
    Directory,
    SymbolicLink,
    Fifo,
    CharacterDevice,
    BlockDevice,
    Socket,
    Other,
}

/// <summary>Only regular files are ever opened for reading data. Opening a FIFO blocks until a writer
/// appears (and its reads never end), a character device like <c>/dev/zero</c> never ends, and
/// <c>/dev/null</c> reads as an empty file: none of them is data to back up. On Linux a file is opened
/// with O_NONBLOCK and O_NOFOLLOW and its type checked on the opened handle (statx on the descriptor),
/// so a file swapped for a FIFO between a listing and the open is refused too, never waited on. Other
/// platforms check the type first (Windows has no FIFOs or device files in a folder).</summary>
public static partial class SpecialFiles
{
    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const int AtEmptyPath = 0x1000;
    private const uint StatxType = 0x1;
    private const int ORdOnly = 0, ONonBlock = 0x800, OCloExec = 0x80000;
    private const int ELoop = 40, ENxio = 6, ENoent = 2, ENotDir = 20, EAcces = 13, EPerm = 1;

    private static int ONoFollow => RuntimeInformation.ProcessArchitecture is Architecture.Arm64 or Architecture.Arm ? 0x8000 : 0x20000;

    /// <summary>O_NOATIME (asm-generic 01000000; the same on x86-64, arm64 and arm).</summary>
    private const int ONoAtime = 0x40000;

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int Statx(int dirfd, string path, int flags, uint mask, byte* buffer);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);

    /// <summary>The kind of the entry at <paramref name="path"/> (links not followed).</summary>
    public static FileKind KindOf(string path)
    {
        if (FileStatus.Available)
        {
            return KindLinux(AtFdCwd, path, AtSymlinkNoFollow);
        }
        var info = new FileInfo(path);
        if (info.LinkTarget is not null)
        {
            return FileKind.SymbolicLink;
        }
        if (Directory.Exists(path))
        {
            return FileKind.Directory;
        }
        return info.Exists ? FileKind.Regular : FileKind.Missing;
    }

    public static bool IsRegularFile(string path) => KindOf(path) == FileKind.Regular;

    /// <summary>What a message calls <paramref name="kind"/>.</summary>
    public static string Describe(FileKind kind) => kind switch
    {
        FileKind.Fifo => "a FIFO (named pipe)",
        FileKind.CharacterDevice => "a character device",
        FileKind.BlockDevice => "a block device",
        FileKind.Socket => "a socket",
        FileKind.SymbolicLink => "a symbolic link",
        FileKind.Directory => "a folder",
        FileKind.Missing => "missing",
        _ => "not a regular file",
    };

    /// <summary>The typed refusal of a special file (bad input: it names the file and what it is).</summary>
    public static InvalidInputException NotRegular(string path, FileKind kind) =>
        new("NotARegularFile",
            $"'{SafePath.Printable(path)}' is {Describe(kind)}, not a regular file; PSBackup reads only regular files (a FIFO or device would block or never end). Move it out of the folder, then run again.",
            path);

    /// <summary>Opens a regular file for reading; anything else is refused with <see cref="NotRegular"/>
    /// without blocking. A missing file is a <see cref="FileNotFoundException"/>, as File.Open's.</summary>
    public static SafeFileHandle OpenRegularHandle(string path, FileOptions options = FileOptions.None)
    {
        if (!FileStatus.Available)
        {
            FileKind kind = KindOf(path);
            if (kind is not FileKind.Regular and not FileKind.Missing)
            {
                throw NotRegular(path, kind);
            }
            return File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, options);
        }
        // O_NOATIME, as restic reads (restic PR 2816): under relatime the first read of a file
        // whose access time is older than its last change writes the inode's access time, so a
        // backup of a freshly copied, restored or written tree dirtied every inode it read on the
        // database's volume. The kernel refuses it (EPERM) on another user's file without
        // CAP_FOWNER: that file is opened again without it.
        int fd = Open(path, ORdOnly | ONonBlock | OCloExec | ONoFollow | ONoAtime);
        if (fd < 0 && Marshal.GetLastPInvokeError() == EPerm)
        {
            fd = Open(path, ORdOnly | ONonBlock | OCloExec | ONoFollow);
        }
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw errno switch
            {
                ENoent or ENotDir => new FileNotFoundException($"Could not find file '{path}'.", path),
                ELoop => NotRegular(path, FileKind.SymbolicLink),
                ENxio => NotRegular(path, KindOf(path)), // a socket, or a FIFO opened for writing
                EAcces or EPerm => new UnauthorizedAccessException($"Access to the path '{path}' is denied."),
                _ => new IOException($"Cannot open '{path}' (errno {errno})."),
            };
        }
        FileKind opened;
        try
        {
            opened = KindLinux(fd, "", AtEmptyPath);
        }
        catch
        {
            Close(fd);
            throw;
        }
        if (opened != FileKind.Regular)
        {
            Close(fd);
            throw NotRegular(path, opened);
        }
        return new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>A read stream over <see cref="OpenRegularHandle"/>.</summary>
    public static FileStream OpenRegular(string path, int bufferSize = 1, FileOptions options = FileOptions.Asynchronous | FileOptions.SequentialScan)
    {
        SafeFileHandle handle = OpenRegularHandle(path, options);
        try
        {
            return new FileStream(handle, FileAccess.Read, bufferSize, isAsync: !OperatingSystem.IsWindows() ? false : (options & FileOptions.Asynchronous) != 0);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>struct statx: stx_mode (u16) at offset 28.</summary>
    private static unsafe FileKind KindLinux(int dirfd, string path, int flags)
    {
        byte* b = stackalloc byte[256];
        if (Statx(dirfd, path, flags, StatxType, b) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            return errno is ENoent or ENotDir ? FileKind.Missing : throw new IOException($"Cannot read the file status of '{path}' (errno {errno}).");
        }
        return KindFromMode(*(ushort*)(b + 28));
    }

    /// <summary>The kind a statx/stat mode's file-type bits say.</summary>
    internal static FileKind KindFromMode(int mode)
    {
        return (mode & 0xF000) switch
        {
            0x8000 => FileKind.Regular,
            0x4000 => FileKind.Directory,
            0xA000 => FileKind.SymbolicLink,
            0x1000 => FileKind.Fifo,
            0x2000 => FileKind.CharacterDevice,
            0x6000 => FileKind.BlockDevice,
            0xC000 => FileKind.Socket,
            _ => FileKind.Other,
        };
    }
}
