namespace PSBackup.Engine;

/// <summary>What the file system says about a file without reading it: size, last-write time,
/// change time and identity: on Linux from statx (device, inode), on Windows from
/// GetFileInformationByHandleEx (ChangeTime, volume serial, file id; <see cref="WindowsFiles"/>).
/// A write changes the size or the times; a rename over the path changes the identity. Where the
/// platform does not expose change time and identity (macOS here) they are 0 and compare equal,
/// leaving size and last-write time. <see cref="WriterOpen"/> (Windows) says another handle holds
/// the file with write access: NTFS may not move its times until that handle closes, and a writer
/// through a memory map may not move them at all, so such a stamp never counts as settled.</summary>
public readonly record struct FileStamp(long Size, long ModifiedNs, long ChangedNs, ulong Device, ulong Inode, bool WriterOpen = false)
{
    /// <summary>How close to "now" a last-write (or change) time must be for the stamp to prove
    /// nothing about later writes (git's "racily clean"): a write in the same tick of a coarse
    /// file-system clock leaves the times unchanged, and a write through a shared memory map updates
    /// them only when a clean page is first dirtied, so a page dirtied before the copy may be
    /// written again without a new time until the kernel writes it back. The window is the larger
    /// of 2 s (FAT/SMB/HFS+ clocks) and, on Linux, the writeback expiry plus the flusher interval
    /// (35 s by default).</summary>
    public static TimeSpan RacyWindow { get; } = ComputeRacyWindow();

    /// <summary>The part of <see cref="RacyWindow"/> that no flush removes: a write in the same
    /// tick of a coarse file-system clock (FAT 2 s, SMB/HFS+ 1 s) leaves the times unchanged. A
    /// file whose dirty pages were written back just before it is read (<see cref="Writeback"/>)
    /// is proven by a stamp this old.</summary>
    public static TimeSpan ClockWindow { get; } = TimeSpan.FromSeconds(2);

    /// <summary>True when the times are older than <paramref name="racyWindow"/> before <paramref name="nowUtc"/>
    /// (the real wall clock, which stamps the file system), so any write after <paramref name="nowUtc"/>
    /// would give a different stamp.</summary>
    public bool IsSettledAt(DateTime nowUtc, TimeSpan racyWindow)
    {
        long limit = (nowUtc - DateTime.UnixEpoch - racyWindow).Ticks * 100;
        return !WriterOpen && ModifiedNs < limit && ChangedNs < limit;
    }

    /// <summary>The stamp of the file at <paramref name="path"/> (links are not followed), or null
    /// when nothing is there.</summary>
    public static FileStamp? Read(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            return WindowsFiles.ReadStamp(path);
        }
        if (FileStatus.Available)
        {
            return FileStatus.Read(path)?.Stamp;
        }
        var fi = new FileInfo(path);
        if (!fi.Exists)
        {
            return null;
        }
        return new FileStamp(fi.Length, (fi.LastWriteTimeUtc - DateTime.UnixEpoch).Ticks * 100, 0, 0, 0);
    }

    private static TimeSpan ComputeRacyWindow()
    {
        var window = TimeSpan.FromSeconds(2);
        if (OperatingSystem.IsLinux())
        {
            long expire = ReadCentiseconds("/proc/sys/vm/dirty_expire_centisecs", 3000);
            long flush = ReadCentiseconds("/proc/sys/vm/dirty_writeback_centisecs", 500);
            window = TimeSpan.FromMilliseconds(Math.Max(window.TotalMilliseconds, (expire + flush) * 10));
        }
        return window;
    }

    private static long ReadCentiseconds(string path, long fallback)
    {
        try
        {
            return long.TryParse(File.ReadAllText(path).Trim(), out long v) && v > 0 ? v : fallback;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return fallback;
        }
    }
}
