using System.Runtime.InteropServices;

namespace PSBackup.Engine;

/// <summary>Everything an object backup asks the file system about one entry, from one
/// <c>statx</c> (links not followed): what it is, its stamp (<see cref="FileStamp"/>) and its
/// metadata (<see cref="FileMetadata"/>). A no-change backup of Debian's /usr/lib/x86_64-linux-gnu
/// used to ask ten times per file (the listing's lstat and type check, the copy's existence, link,
/// stamp, second stamp and metadata checks, and two more listings): kernel path lookups were 40 % of
/// its time. Linux only (<see cref="Available"/>); elsewhere the callers keep their own reads.
/// <see cref="Links"/> is the entry's number of names (hard links). The metadata is kept as plain
/// fields (an object listing holds one status per file until it is copied: a
/// <see cref="FileMetadata"/> object each was 72 bytes more per file).</summary>
internal readonly partial record struct FileStatus(FileKind Kind, FileStamp Stamp, int Mode, uint Uid, uint Gid, uint Links)
{
    /// <summary>Permission bits, owner, group and last-write time.</summary>
    public FileMetadata Metadata => new(Mode, Uid, Gid, Stamp.ModifiedNs);

    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const uint StatxBasicStats = 0x7ff;
    private const int ENOENT = 2, ENOTDIR = 20;

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int Statx(int dirfd, string path, int flags, uint mask, byte* buffer);

    /// <summary>True where <see cref="Read"/> works (Linux with statx, glibc 2.28 and later):
    /// probed once per process, and the one answer for every statx caller (FileStamp,
    /// FileMetadata, SpecialFiles, the object listing).</summary>
    public static bool Available { get; } = Probe();

    private static bool Probe()
    {
        if (!OperatingSystem.IsLinux())
        {
            return false;
        }
        try
        {
            _ = Read("/");
            return true;
        }
        catch (EntryPointNotFoundException)
        {
            return false;
        }
    }

    /// <summary>The status of the entry at <paramref name="path"/>, or null when nothing is there
    /// (ENOENT, ENOTDIR). Any other failure is an <see cref="IOException"/> naming the path. Only
    /// where <see cref="Available"/>.</summary>
    public static unsafe FileStatus? Read(string path)
    {
        byte* b = stackalloc byte[256];
        if (Statx(AtFdCwd, path, AtSymlinkNoFollow, StatxBasicStats, b) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            return errno is ENOENT or ENOTDIR
                ? null
                : throw new IOException($"Cannot read the file status of '{path}' (errno {errno}).");
        }
        // struct statx (linux/stat.h): nlink 16, uid 20, gid 24, mode (u16) 28, ino 32, size 40, ctime 96,
        // mtime 112 (a 64-bit second and a 32-bit nanosecond each), dev major/minor 136/140: the
        // offsets FileStamp, FileMetadata and SpecialFiles read one by one.
        static long Ns(byte* t) => *(long*)t * 1_000_000_000L + *(uint*)(t + 8);
        ushort mode = *(ushort*)(b + 28);
        long mtime = Ns(b + 112);
        ulong dev = ((ulong)*(uint*)(b + 136) << 32) | *(uint*)(b + 140);
        return new FileStatus(
            SpecialFiles.KindFromMode(mode),
            new FileStamp(*(long*)(b + 40), mtime, Ns(b + 96), dev, *(ulong*)(b + 32)),
            mode & 0xFFF, *(uint*)(b + 20), *(uint*)(b + 24), *(uint*)(b + 16));
    }
}
