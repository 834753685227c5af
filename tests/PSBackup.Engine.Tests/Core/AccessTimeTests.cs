using PSBackup.Engine.ObjectStore;
using PSBackup.Engine.Tests.ObjectStore;
using PSBackup.Engine.Tests.Support;

namespace PSBackup.Engine.Tests.Core;

/// <summary>Reading a source file does not write its access time (O_NOATIME, as restic reads):
/// under relatime the first read of a file whose access time is older than its change wrote the
/// inode of every file of a freshly copied, restored or written tree.</summary>
public sealed class AccessTimeTests
{
    private static readonly DateTime Old = new(2020, 1, 1, 0, 0, 0, DateTimeKind.Utc);

    /// <summary>A plain read of a file with an old access time must move it, or nothing here can fail.</summary>
    private static void RequireAccessTimes(TestDirectory dir)
    {
        string control = dir.Combine("control.bin");
        File.WriteAllBytes(control, new byte[4096]);
        File.SetLastAccessTimeUtc(control, Old);
        File.ReadAllBytes(control);
        Assert.True(File.GetLastAccessTimeUtc(control) > Old,
            $"the file system of {dir.Path} keeps no access times (noatime): mount it relatime or strictatime for this test to prove anything");
    }

    [Fact]
    public void Opening_a_source_file_leaves_its_access_time_as_it_was()
    {
        if (!OperatingSystem.IsLinux())
        {
            return; // O_NOATIME is Linux's; Windows updates access times lazily, if at all
        }
        using var dir = new TestDirectory();
        RequireAccessTimes(dir);
        string file = dir.Combine("read.bin");
        File.WriteAllBytes(file, new byte[4096]);
        File.SetLastAccessTimeUtc(file, Old);

        using (FileStream s = SpecialFiles.OpenRegular(file))
        {
            s.ReadExactly(new byte[4096]);
        }

        Assert.Equal(Old, File.GetLastAccessTimeUtc(file));
    }

    [Fact]
    public async Task An_object_backup_leaves_the_access_times_of_the_files_it_reads()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }
        using var dir = new TestDirectory();
        RequireAccessTimes(dir);
        using var obj = new ObjectFixture();
        string[] files = Directory.GetFiles(obj.ObjectPath, "*", SearchOption.AllDirectories);
        foreach (string f in files)
        {
            File.SetLastAccessTimeUtc(f, Old);
        }

        Assert.NotNull(await ObjectOperations.BackupAsync(obj.SettledBackupOptions(), OperationContext.Default));

        Assert.All(files, f => Assert.Equal(Old, File.GetLastAccessTimeUtc(f)));
    }
}
