using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace PSBackup.Engine;

/// <summary>What a backup keeps about a file or folder besides its bytes, so a restored object is
/// the object the database had: permission bits (with setuid, setgid, sticky), owner and group, and
/// the last-write time. Unix only for mode and owner (null on Windows, whose ACLs are another
/// matter); the owner is applied only when running as root (anyone else cannot give files away).</summary>
public sealed partial record FileMetadata(int? Mode, long? Uid, long? Gid, long? ModifiedNs)
{
    [LibraryImport("libc", EntryPoint = "lchown", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int LChown(string path, uint uid, uint gid);

    [LibraryImport("libc", EntryPoint = "fchown", SetLastError = true)]
    private static partial int FChown(int fd, uint uid, uint gid);

    /// <summary>The metadata of the entry at <paramref name="path"/> (links not followed), or null when it is gone.</summary>
    public static FileMetadata? Read(string path)
    {
        if (FileStatus.Available)
        {
            return FileStatus.Read(path)?.Metadata;
        }
        FileSystemInfo info = Directory.Exists(path) ? new DirectoryInfo(path) : new FileInfo(path);
        if (!info.Exists)
        {
            return null;
        }
        int? mode = OperatingSystem.IsWindows() ? null : (int)info.UnixFileMode;
        return new FileMetadata(mode, null, null, (info.LastWriteTimeUtc - DateTime.UnixEpoch).Ticks * 100);
    }

    /// <summary><see cref="Read"/>, or null when the status cannot be read: for what a store snapshot
    /// or WAL segment records beside its bytes, which must never fail the backup itself.</summary>
    public static FileMetadata? TryRead(string path)
    {
        try
        {
            return Read(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>This metadata without the time: for a local backup copy, which keeps the source's
    /// mode and owner (a copy of a private file is private) but its own write time.</summary>
    public FileMetadata WithoutTime() => this with { ModifiedNs = null };

    /// <summary><see cref="Apply"/> where the file system allows it: a backup disk that keeps no
    /// modes (FAT, some network shares) leaves the copy as it was created, never fails the backup.</summary>
    public void TryApply(string path)
    {
        try
        {
            Apply(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    /// <summary><see cref="Apply(string)"/> through an open handle of the regular file at
    /// <paramref name="path"/> (the name is for messages, and for Windows): on Unix fchown, fchmod
    /// and futimens (after one fstat for the access time it keeps), with no walk of the path (a
    /// restore gives back the metadata of every file it writes: four calls by name fewer per file).</summary>
    public void Apply(SafeFileHandle handle, string path)
    {
        if (OperatingSystem.IsWindows())
        {
            Apply(path);
            return;
        }
        if (OwnerToGive(out uint uid, out uint gid))
        {
            bool added = false;
            try
            {
                handle.DangerousAddRef(ref added);
                if (FChown((int)handle.DangerousGetHandle(), uid, gid) != 0)
                {
                    throw OwnerRefused(path, uid, gid);
                }
            }
            finally
            {
                if (added)
                {
                    handle.DangerousRelease();
                }
            }
        }
        if (Mode is { } mode)
        {
            File.SetUnixFileMode(handle, (UnixFileMode)(mode & 0xFFF));
        }
        if (TimeOf(ModifiedNs) is { } time)
        {
            File.SetLastWriteTimeUtc(handle, time);
        }
    }

    /// <summary>The recorded owner and group, when both are recorded, fit a uid_t/gid_t, and this
    /// process may give files away (root).</summary>
    private bool OwnerToGive(out uint uid, out uint gid)
    {
        bool give = Uid is >= 0 and <= uint.MaxValue && Gid is >= 0 and <= uint.MaxValue && Environment.IsPrivilegedProcess;
        uid = give ? (uint)Uid!.Value : 0;
        gid = give ? (uint)Gid!.Value : 0;
        return give;
    }

    private static IOException OwnerRefused(string path, uint uid, uint gid) =>
        new($"Cannot give '{path}' to owner {uid}:{gid} (errno {Marshal.GetLastPInvokeError()}).");

    /// <summary>A recorded time as a DateTime, or null when there is none or it is outside what DateTime holds.</summary>
    private static DateTime? TimeOf(long? modifiedNs) =>
        modifiedNs is { } ns && ns / 100 > -DateTime.UnixEpoch.Ticks && ns / 100 < DateTime.MaxValue.Ticks - DateTime.UnixEpoch.Ticks
            ? DateTime.UnixEpoch.AddTicks(ns / 100)
            : null;

    /// <summary>Gives <paramref name="path"/> this metadata: owner and group first (when root; a
    /// chown clears setuid bits), then the mode, then the last-write time. What is null is left.</summary>
    public void Apply(string path)
    {
        if (!OperatingSystem.IsWindows())
        {
            if (OwnerToGive(out uint uid, out uint gid) && LChown(path, uid, gid) != 0)
            {
                throw OwnerRefused(path, uid, gid);
            }
            if (Mode is { } mode)
            {
                File.SetUnixFileMode(path, (UnixFileMode)(mode & 0xFFF));
            }
        }
        if (TimeOf(ModifiedNs) is { } time)
        {
            if (Directory.Exists(path))
            {
                Directory.SetLastWriteTimeUtc(path, time);
            }
            else
            {
                File.SetLastWriteTimeUtc(path, time);
            }
        }
    }
}
