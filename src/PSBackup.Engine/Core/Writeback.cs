using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace PSBackup.Engine;

/// <summary>Writes a file's dirty page-cache pages back to disk without changing it (Linux
/// <c>sync_file_range</c>), so that every page of the file is clean afterwards. Why that matters
/// (docs/design.md, "Object backups: what Stable and Recent mean"): writeback clears each page's
/// dirty bit and write-protects it in every shared memory map (<c>clear_page_dirty_for_io</c> →
/// <c>folio_mkclean</c>), so the next write through a map faults and moves the file's times
/// (<c>page_mkwrite</c> → <c>file_update_time</c>), exactly as a <c>write()</c> does. After a
/// flush, a file's stamp therefore proves its content up to the file system's clock granularity
/// (<see cref="FileStamp.ClockWindow"/>) instead of the writeback expiry (35 s). Not durability:
/// no device cache flush, no metadata. Windows and macOS: not available (false), the racy window
/// stays the full one there.</summary>
internal static class Writeback
{
    private const uint WaitBefore = 1, Write = 2, WaitAfter = 4;

    [DllImport("libc", EntryPoint = "sync_file_range", SetLastError = true)]
    private static extern int SyncFileRange(int fd, long offset, long nbytes, uint flags);

    private static volatile bool s_available = OperatingSystem.IsLinux();

    /// <summary>True where <see cref="Flush"/> can clean a file's pages and <see cref="StartRange"/>
    /// start a writeback (Linux, until the kernel refuses the call as unknown).</summary>
    public static bool Available => s_available;

    /// <summary>Writes back every dirty page of <paramref name="path"/> and waits for it. False
    /// when that cannot be done here (not Linux, the call is refused, the file is gone or cannot
    /// be opened): the caller then treats the file as it would without a flush.</summary>
    public static bool Flush(string path) => Run(path, WaitBefore | Write | WaitAfter);

    /// <summary>Starts writeback of <paramref name="path"/>'s dirty pages without waiting, so a
    /// later <see cref="Flush"/> finds them written or in flight.</summary>
    public static void Start(string path) => Run(path, Write);

    /// <summary>Linux: asks the kernel to start writing <paramref name="count"/> bytes of
    /// <paramref name="handle"/> from <paramref name="offset"/> back to the disk (SYNC_FILE_RANGE_WRITE:
    /// start, do not wait), so a later fsync waits only for what was written after. Durability is
    /// unchanged: the fsync still decides it. False when refused (a pipe, say); off for the process
    /// where the kernel or file system has no such call. Not Linux: false.</summary>
    public static bool StartRange(SafeFileHandle handle, long offset, long count) =>
        s_available && Call(handle, offset, count, Write);

    private static bool Run(string path, uint flags)
    {
        if (!s_available)
        {
            return false;
        }
        try
        {
            using SafeFileHandle handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            return Call(handle, 0, 0, flags);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>sync_file_range on an open handle; a kernel, file system or libc without it turns
    /// <see cref="Available"/> off for the process.</summary>
    private static bool Call(SafeFileHandle handle, long offset, long count, uint flags)
    {
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            if (SyncFileRange((int)handle.DangerousGetHandle(), offset, count, flags) == 0)
            {
                return true;
            }
            if (Marshal.GetLastPInvokeError() is 38 /* ENOSYS */ or 95 /* EOPNOTSUPP */)
            {
                s_available = false;
            }
            return false;
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            s_available = false;
            return false;
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }
}
