using System.ComponentModel;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using Microsoft.Win32.SafeHandles;

namespace PSBackup.Engine;

/// <summary>What Windows says about a file, through a handle opened for attributes only (so no
/// sharing mode of another process can refuse it) with <c>GetFileInformationByHandleEx</c>:
/// size, last-write and change time (<c>FILE_BASIC_INFO.ChangeTime</c> moves on every data or
/// metadata change, unlike last-write time, which NTFS may only settle when the writer closes its
/// handle), the file id and volume serial number (<c>FILE_ID_INFO</c>; <c>BY_HANDLE_FILE_INFORMATION</c>
/// where the file system has no 128-bit ids), and the reparse tag. Only called on Windows: the
/// libc paths of <see cref="FileStamp"/> and <see cref="Durable"/> are never reached there.</summary>
[SupportedOSPlatform("windows")]
internal static unsafe partial class WindowsFiles
{
    private const uint FileReadAttributes = 0x80;
    private const uint GenericRead = 0x80000000;
    private const uint ShareRead = 1, ShareWrite = 2, ShareDelete = 4;
    private const uint OpenExisting = 3;
    private const uint FlagBackupSemantics = 0x02000000, FlagOpenReparsePoint = 0x00200000;
    private const int ErrorFileNotFound = 2, ErrorPathNotFound = 3, ErrorSharingViolation = 32, ErrorLockViolation = 33;
    private const int FileBasicInfoClass = 0, FileStandardInfoClass = 1, FileAttributeTagInfoClass = 9, FileIdInfoClass = 18;
    private const long UnixEpochFileTime = 116444736000000000L;

    [LibraryImport("kernel32.dll", EntryPoint = "CreateFileW", SetLastError = true, StringMarshalling = StringMarshalling.Utf16)]
    private static partial SafeFileHandle CreateFile(string name, uint access, uint share, nint security, uint disposition, uint flags, nint template);

    [LibraryImport("kernel32.dll", SetLastError = true)]
    [return: MarshalAs(UnmanagedType.Bool)]
    private static partial bool GetFileInformationByHandleEx(SafeFileHandle handle, int infoClass, void* buffer, uint size);

    [LibraryImport("kernel32.dll", SetLastError = true)]
    [return: MarshalAs(UnmanagedType.Bool)]
    private static partial bool GetFileInformationByHandle(SafeFileHandle handle, void* info);

    /// <summary>The stamp of the file at <paramref name="path"/> (a reparse point is described
    /// itself, not followed), or null when nothing is there.</summary>
    public static FileStamp? ReadStamp(string path)
    {
        using SafeFileHandle? h = OpenForAttributes(path);
        if (h is null)
        {
            return null;
        }
        // FILE_BASIC_INFO: CreationTime, LastAccessTime, LastWriteTime, ChangeTime (FILETIME as
        // LARGE_INTEGER), FileAttributes; FILE_STANDARD_INFO: AllocationSize, EndOfFile, ...
        long* basic = stackalloc long[5];
        long* standard = stackalloc long[3];
        if (!GetFileInformationByHandleEx(h, FileBasicInfoClass, basic, 40) || !GetFileInformationByHandleEx(h, FileStandardInfoClass, standard, 24))
        {
            throw Failure("read the file information of", path);
        }
        (ulong volume, ulong id) = Identity(h, path);
        return new FileStamp(standard[1], ToUnixNs(basic[2]), ToUnixNs(basic[3]), volume, id, WriterOpen: HasOpenWriter(path));
    }

    /// <summary>The reparse tag of <paramref name="path"/>, or null when it is no reparse point (or gone).</summary>
    public static uint? ReparseTag(string path)
    {
        using SafeFileHandle? h = OpenForAttributes(path);
        if (h is null)
        {
            return null;
        }
        uint* tagInfo = stackalloc uint[2]; // FILE_ATTRIBUTE_TAG_INFO: FileAttributes, ReparseTag
        if (!GetFileInformationByHandleEx(h, FileAttributeTagInfoClass, tagInfo, 8))
        {
            throw Failure("read the reparse tag of", path);
        }
        return (tagInfo[0] & (uint)FileAttributes.ReparsePoint) != 0 ? tagInfo[1] : null;
    }

    /// <summary>True when another handle holds the file with write access (or exclusively): an
    /// open for reading that denies writers fails with a sharing violation exactly then. A section
    /// (memory map) created with write access counts, as its file object keeps that access.</summary>
    public static bool HasOpenWriter(string path)
    {
        using SafeFileHandle h = CreateFile(Extended(path), GenericRead, ShareRead | ShareDelete, 0, OpenExisting, FlagBackupSemantics | FlagOpenReparsePoint, 0);
        if (!h.IsInvalid)
        {
            return false;
        }
        int error = Marshal.GetLastPInvokeError();
        return error is ErrorSharingViolation or ErrorLockViolation;
    }

    private static SafeFileHandle? OpenForAttributes(string path)
    {
        SafeFileHandle h = CreateFile(Extended(path), FileReadAttributes, ShareRead | ShareWrite | ShareDelete, 0, OpenExisting, FlagBackupSemantics | FlagOpenReparsePoint, 0);
        if (!h.IsInvalid)
        {
            return h;
        }
        int error = Marshal.GetLastPInvokeError();
        h.Dispose();
        return error is ErrorFileNotFound or ErrorPathNotFound ? null : throw Failure("open", path, error);
    }

    /// <summary>Volume serial and file id. A 128-bit id (ReFS) is folded into 64 bits by XOR of its
    /// halves; NTFS ids fit in the low half, so they are kept exactly.</summary>
    private static (ulong Volume, ulong Id) Identity(SafeFileHandle h, string path)
    {
        ulong* idInfo = stackalloc ulong[3]; // FILE_ID_INFO: VolumeSerialNumber, FileId (16 bytes)
        if (GetFileInformationByHandleEx(h, FileIdInfoClass, idInfo, 24))
        {
            return (idInfo[0], idInfo[1] ^ idInfo[2]);
        }
        // BY_HANDLE_FILE_INFORMATION (52 bytes): dwVolumeSerialNumber at 28, nFileIndexHigh at 44, nFileIndexLow at 48.
        byte* info = stackalloc byte[52];
        if (!GetFileInformationByHandle(h, info))
        {
            throw Failure("read the identity of", path);
        }
        return (*(uint*)(info + 28), ((ulong)*(uint*)(info + 44) << 32) | *(uint*)(info + 48));
    }

    private static long ToUnixNs(long fileTime) => (fileTime - UnixEpochFileTime) * 100;

    /// <summary>A path CreateFileW takes beyond 260 characters: <c>\\?\C:\...</c> or <c>\\?\UNC\server\share\...</c>.</summary>
    internal static string Extended(string path)
    {
        string full = Path.GetFullPath(path);
        if (full.StartsWith(@"\\?\", StringComparison.Ordinal) || full.StartsWith(@"\\.\", StringComparison.Ordinal) || full.Length < 250)
        {
            return full;
        }
        return full.StartsWith(@"\\", StringComparison.Ordinal) ? @"\\?\UNC\" + full[2..] : @"\\?\" + full;
    }

    private static IOException Failure(string what, string path, int? error = null)
    {
        int code = error ?? Marshal.GetLastPInvokeError();
        return new IOException($"Cannot {what} '{path}': {new Win32Exception(code).Message} (Windows error {code}).", code);
    }
}
