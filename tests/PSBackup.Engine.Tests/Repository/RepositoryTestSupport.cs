using PSBackup.Engine.Tests.Support;
using PSBackup.Engine.Repository;
using Repo = PSBackup.Engine.Repository.Repository;

namespace PSBackup.Engine.Tests.Repository;

internal static class RepositoryTestSupport
{
    /// <summary>Small frames and packs so modest test data spans many of each.</summary>
    public static RepositoryInitOptions Small(string? passphrase = null, string? keyFile = null) => new()
    {
        Passphrase = passphrase,
        KeyFile = keyFile,
        FrameSize = 64 * 1024,
        PackSize = 256 * 1024,
        DefaultChunking = new ChunkingParameters(4 * 1024, 16 * 1024, 64 * 1024),
    };

    /// <summary>Deterministic semi-compressible bytes: random runs mixed with repeated text.</summary>
    public static byte[] Data(int length, int seed)
    {
        var rng = new Random(seed);
        byte[] b = new byte[length];
        int i = 0;
        while (i < length)
        {
            int run = Math.Min(length - i, rng.Next(16, 512));
            if (rng.Next(2) == 0)
            {
                rng.NextBytes(b.AsSpan(i, run));
            }
            else
            {
                for (int k = 0; k < run; k++)
                {
                    b[i + k] = (byte)("the quick brown fox "[k % 20]);
                }
            }
            i += run;
        }
        return b;
    }

    public static async Task<BackupCommitResult> BackupAsync(Repo repo, IEnumerable<(string Path, byte[] Data)> files, BackupKind kind = BackupKind.Object,
        ChunkingProfile profile = ChunkingProfile.Default, string? refName = null, BackupInfo? info = null, TimeProvider? clock = null)
    {
        await using BackupWriter w = repo.BeginBackup(info ?? new BackupInfo { Kind = kind, Dir = "tenant", Object = "orders" }, clock);
        foreach (var (path, data) in files)
        {
            await w.AddFileAsync(path, new MemoryStream(data, writable: false), profile);
        }
        return await w.CommitAsync(refName);
    }

    public static async Task<byte[]> RestoreBytesAsync(Repo repo, RepositoryManifest m, string path)
    {
        var ms = new MemoryStream();
        await repo.RestoreFileAsync(m, m.Files.Single(f => f.Path == path), ms);
        return ms.ToArray();
    }

    public static string KeyFile(TestDirectory dir)
    {
        string p = Path.Combine(dir.Path, "repo.key");
        File.WriteAllBytes(p, System.Security.Cryptography.RandomNumberGenerator.GetBytes(64));
        return p;
    }
}

/// <summary>A stream that throws (or cancels a token) after a number of bytes, to interrupt a backup half-way.</summary>
internal sealed class InterruptingStream(byte[] data, long failAfter, CancellationTokenSource? cancel = null) : Stream
{
    private long _pos;
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => data.Length;
    public override long Position { get => _pos; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override int Read(byte[] buffer, int offset, int count)
    {
        if (_pos >= failAfter)
        {
            if (cancel is null)
            {
                throw new IOException("simulated read failure half-way");
            }
            cancel.Cancel();
            cancel.Token.ThrowIfCancellationRequested();
        }
        int n = (int)Math.Min(Math.Min(count, data.Length - _pos), Math.Max(1, failAfter - _pos));
        Array.Copy(data, _pos, buffer, offset, n);
        _pos += n;
        return n;
    }
}
