using Microsoft.Win32.SafeHandles;
using PSBackup.Engine.Tests.Support;

namespace PSBackup.Engine.Tests.Core;

public class DurableTests
{
    /// <summary>PrivateFiles.CreateOneDirectory (mkdir(2) / CreateDirectoryW, also run under Wine):
    /// the repository folder backend relies on it never creating a parent.</summary>
    [Fact]
    public void Creating_one_folder_never_creates_its_parent()
    {
        using var dir = new TestDirectory();
        string parent = dir.Combine("gone");
        string child = Path.Combine(parent, "child");

        Assert.Throws<DirectoryNotFoundException>(() => PrivateFiles.CreateOneDirectory(child));
        Assert.False(Path.Exists(parent));

        Directory.CreateDirectory(parent);
        Assert.True(PrivateFiles.CreateOneDirectory(child));
        Assert.False(PrivateFiles.CreateOneDirectory(child));
        Assert.True(Directory.Exists(child));
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(PrivateFiles.DirectoryMode, File.GetUnixFileMode(child));
        }
        File.WriteAllBytes(Path.Combine(parent, "file"), [1]);
        Assert.Throws<IOException>(() => PrivateFiles.CreateOneDirectory(Path.Combine(parent, "file")));
    }

    /// <summary>Writeback.StartRange, the early writeback of a restore's pieces and of a pack being
    /// spooled: a regular file's written range starts, a device is refused, and the refusal does not
    /// turn it off for the files after it. Elsewhere than Linux it does nothing and says so.</summary>
    [Fact]
    public void Writeback_of_a_written_range_starts_and_a_device_refused_does_not_turn_it_off()
    {
        using var dir = new TestDirectory();
        using SafeFileHandle file = File.OpenHandle(dir.Combine("f"), FileMode.CreateNew, FileAccess.ReadWrite);
        RandomAccess.Write(file, new byte[256 * 1024], 0);
        if (!OperatingSystem.IsLinux())
        {
            Assert.False(Writeback.StartRange(file, 0, 256 * 1024));
            return;
        }
        Assert.True(Writeback.StartRange(file, 0, 256 * 1024));
        using (SafeFileHandle device = File.OpenHandle("/dev/null", FileMode.Open, FileAccess.ReadWrite))
        {
            Assert.False(Writeback.StartRange(device, 0, 4096));
        }
        RandomAccess.Write(file, new byte[4096], 256 * 1024);
        Assert.True(Writeback.StartRange(file, 256 * 1024, 4096));
        Assert.Equal(256 * 1024 + 4096, RandomAccess.GetLength(file));
    }

    [Fact]
    public async Task WriteFileLeavesNothingWhenTheWriterFails()
    {
        using var dir = new TestDirectory();
        string target = dir.Combine("out.json");

        await Assert.ThrowsAsync<InvalidOperationException>(() => Durable.WriteFileAsync(target, async (s, ct) =>
        {
            await s.WriteAsync(new byte[100], ct);
            throw new InvalidOperationException("boom");
        }, CancellationToken.None));

        Assert.Empty(Directory.EnumerateFileSystemEntries(dir.Path));
    }

    [Fact]
    public async Task WriteFileNeverReplacesAnExistingFile()
    {
        using var dir = new TestDirectory();
        string target = dir.Combine("out.json");
        await File.WriteAllTextAsync(target, "original");

        await Assert.ThrowsAsync<ConflictException>(() => Durable.WriteFileAsync(target, (s, ct) => s.WriteAsync(new byte[] { 1, 2, 3 }, ct).AsTask(), CancellationToken.None));

        Assert.Equal("original", await File.ReadAllTextAsync(target));
        Assert.Single(Directory.EnumerateFileSystemEntries(dir.Path));
    }

    [Fact]
    public async Task WriteFileNeverDeletesATempFileItDidNotCreate()
    {
        using var dir = new TestDirectory();
        string target = dir.Combine("out.json");
        await File.WriteAllTextAsync(target + ".tmp", "another writer's work");

        await Assert.ThrowsAsync<IOException>(() => Durable.WriteFileAsync(target, (s, ct) => s.WriteAsync(new byte[] { 1 }, ct).AsTask(), CancellationToken.None));

        Assert.Equal("another writer's work", await File.ReadAllTextAsync(target + ".tmp"));
        Assert.False(File.Exists(target));
    }

    [Fact]
    public async Task WriteFileCommitsCompleteContent()
    {
        using var dir = new TestDirectory();
        string target = dir.Combine("out.bin");
        byte[] data = Enumerable.Range(0, 300_000).Select(i => (byte)(i * 7)).ToArray();

        await Durable.WriteFileAsync(target, (s, ct) => s.WriteAsync(data, ct).AsTask(), CancellationToken.None);

        Assert.Equal(data, await File.ReadAllBytesAsync(target));
        Assert.False(File.Exists(target + ".tmp"));
    }

    [Fact]
    public void CommitDirectoryRefusesAnExistingTarget()
    {
        using var dir = new TestDirectory();
        Directory.CreateDirectory(dir.Combine("tmp"));
        File.WriteAllText(dir.Combine("tmp", "a"), "new");
        Directory.CreateDirectory(dir.Combine("final"));
        File.WriteAllText(dir.Combine("final", "a"), "old");

        Assert.Throws<ConflictException>(() => Durable.CommitDirectory(dir.Combine("tmp"), dir.Combine("final")));
        Assert.Equal("old", File.ReadAllText(dir.Combine("final", "a")));
    }

    [Fact]
    public async Task CopyHashesWhatItWrites()
    {
        using var dir = new TestDirectory();
        byte[] data = new byte[3 * FileCopy.BufferSize + 17];
        new Random(7).NextBytes(data);
        await File.WriteAllBytesAsync(dir.Combine("src"), data);

        ContentDigest copied = await FileCopy.CopyAsync(dir.Combine("src"), dir.Combine("dst"), CancellationToken.None);

        Assert.Equal(data, await File.ReadAllBytesAsync(dir.Combine("dst")));
        Assert.Equal(data.LongLength, copied.Bytes);
        Assert.Equal(Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(data)).ToLowerInvariant(), copied.Sha256);
    }
}
