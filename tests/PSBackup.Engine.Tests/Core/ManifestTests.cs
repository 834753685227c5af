using System.Security.Cryptography;
using PSBackup.Engine.Tests.Support;

namespace PSBackup.Engine.Tests.Core;

public class ManifestTests
{
    private static string Sha(byte[] data) => Convert.ToHexString(SHA256.HashData(data)).ToLowerInvariant();

    private static async Task<(string Backup, BackupManifest Manifest)> MakeBackupAsync(TestDirectory dir)
    {
        string backup = dir.Combine("obj.backup-20260101T000000");
        Directory.CreateDirectory(Path.Combine(backup, "data"));
        byte[] a = [1, 2, 3, 4];
        byte[] b = [9, 9];
        await File.WriteAllBytesAsync(Path.Combine(backup, "data", "000.bin"), a);
        await File.WriteAllBytesAsync(Path.Combine(backup, "fields.conf"), b);
        var manifest = new BackupManifest
        {
            Kind = "object",
            CreatedAt = DateTimeOffset.UnixEpoch,
            Source = "test",
            Files = [new ManifestFile("data/000.bin", a.Length, Sha(a)), new ManifestFile("fields.conf", b.Length, Sha(b))],
        };
        return (backup, manifest);
    }

    [Fact]
    public async Task RoundTripsAndVerifies()
    {
        using var dir = new TestDirectory();
        var (backup, manifest) = await MakeBackupAsync(dir);
        string path = backup + ".manifest.json";
        await ManifestIO.WriteAsync(path, manifest, CancellationToken.None);

        BackupManifest read = ManifestIO.Read(path);

        Assert.Equal(manifest.Files, read.Files);
        await ManifestIO.VerifyAsync(backup, read, OperationContext.Default, "verify");
    }

    [Fact]
    public async Task VerifyNamesTheFileWithAFlippedBit()
    {
        using var dir = new TestDirectory();
        var (backup, manifest) = await MakeBackupAsync(dir);
        string victim = Path.Combine(backup, "data", "000.bin");
        byte[] bytes = await File.ReadAllBytesAsync(victim);
        bytes[2] ^= 0x10;
        await File.WriteAllBytesAsync(victim, bytes);

        var e = await Assert.ThrowsAsync<IntegrityException>(() => ManifestIO.VerifyAsync(backup, manifest, OperationContext.Default, "verify"));
        Assert.Equal("BackupFileCorrupt", e.ErrorId);
        Assert.Contains("data/000.bin", e.Message);
        Assert.Contains(backup, e.Message);
    }

    [Fact]
    public async Task VerifyRejectsFilesTheManifestDoesNotList()
    {
        using var dir = new TestDirectory();
        var (backup, manifest) = await MakeBackupAsync(dir);
        await File.WriteAllTextAsync(Path.Combine(backup, "data", "planted.bin"), "x");

        var e = await Assert.ThrowsAsync<IntegrityException>(() => ManifestIO.VerifyAsync(backup, manifest, OperationContext.Default, "verify"));
        Assert.Equal("BackupFileUnexpected", e.ErrorId);
    }

    [Fact]
    public async Task VerifyRejectsAMissingFile()
    {
        using var dir = new TestDirectory();
        var (backup, manifest) = await MakeBackupAsync(dir);
        File.Delete(Path.Combine(backup, "fields.conf"));

        var e = await Assert.ThrowsAsync<IntegrityException>(() => ManifestIO.VerifyAsync(backup, manifest, OperationContext.Default, "verify"));
        Assert.Equal("BackupFileMissing", e.ErrorId);
    }

    [Theory]
    [InlineData("{\"formatVersion\":1,\"kind\":\"object\",\"createdAt\":\"2026-01-01T00:00:00Z\",\"source\":\"s\",\"files\":[{\"path\":\"../../etc/passwd\",\"size\":1,\"sha256\":\"0000000000000000000000000000000000000000000000000000000000000000\"}]}")]
    [InlineData("{\"formatVersion\":1,\"kind\":\"object\",\"createdAt\":\"2026-01-01T00:00:00Z\",\"source\":\"s\",\"files\":[{\"path\":\"/etc/passwd\",\"size\":1,\"sha256\":\"0000000000000000000000000000000000000000000000000000000000000000\"}]}")]
    [InlineData("{\"formatVersion\":1,\"kind\":\"object\",\"createdAt\":\"2026-01-01T00:00:00Z\",\"source\":\"s\",\"files\":[{\"path\":\"a\",\"size\":-1,\"sha256\":\"0000000000000000000000000000000000000000000000000000000000000000\"}]}")]
    [InlineData("{\"formatVersion\":1,\"kind\":\"object\",\"createdAt\":\"2026-01-01T00:00:00Z\",\"source\":\"s\",\"files\":[{\"path\":\"a\",\"size\":1,\"sha256\":\"xyz\"}]}")]
    [InlineData("{\"formatVersion\":1,\"kind\":\"object\",\"createdAt\":\"2026-01-01T00:00:00Z\",\"source\":\"s\",\"files\":[{\"path\":\"a\",\"size\":1,\"sha256\":\"0000000000000000000000000000000000000000000000000000000000000000\"},{\"path\":\"a\",\"size\":1,\"sha256\":\"0000000000000000000000000000000000000000000000000000000000000000\"}]}")]
    [InlineData("{\"formatVersion\":99,\"kind\":\"object\",\"createdAt\":\"2026-01-01T00:00:00Z\",\"source\":\"s\",\"files\":[]}")]
    [InlineData("{\"formatVersion\":1,\"kind\":\"object\",\"createdAt\":\"2026-01-01T00:00:00Z\",\"source\":\"s\"")]
    [InlineData("null")]
    public async Task ReadTreatsHostileManifestsAsIntegrityErrors(string json)
    {
        using var dir = new TestDirectory();
        string path = dir.Combine("m.json");
        await File.WriteAllTextAsync(path, json);

        var e = await Assert.ThrowsAnyAsync<PSBackupException>(() => Task.Run(() => ManifestIO.Read(path)));
        Assert.Equal(ErrorKind.Integrity, e.Kind);
    }

    [Fact]
    public void ReadReportsAMissingManifestAsNotFound()
    {
        using var dir = new TestDirectory();
        Assert.Throws<NotFoundException>(() => ManifestIO.Read(dir.Combine("none.json")));
    }
}
