using System.Security.Cryptography;
using PSBackup.Engine.ObjectStore;

namespace PSBackup.Engine.Tests.ObjectStore;

/// <summary>A shard-db style database root with one tenant dir and one object, built in the test.</summary>
public sealed class ObjectFixture : IDisposable
{
    public const string Dir = "tenant1";
    public const string Object = "users";

    private readonly Support.TestDirectory _root = new();

    public ObjectFixture(bool populate = true)
    {
        Directory.CreateDirectory(DirPath);
        if (populate)
        {
            Populate(ObjectPath, seed: 1);
        }
    }

    public string DbRoot => _root.Path;
    public string DirPath => Path.Combine(DbRoot, Dir);
    public string ObjectPath => Path.Combine(DirPath, Object);

    /// <summary>data/NNN.bin, indexes/&lt;field&gt;/NNN.idx, metadata/counts, metadata/sequences/x,
    /// files/&lt;name&gt;, fields.conf, and an empty index folder.</summary>
    public static void Populate(string objectPath, int seed)
    {
        for (int i = 0; i < 3; i++)
        {
            Write(objectPath, $"data/{i:D3}.bin", Bytes($"data{i}:{seed}", 20_000 + i * 1000));
        }
        Write(objectPath, "indexes/email/000.idx", Bytes($"email0:{seed}", 4096));
        Write(objectPath, "indexes/email/001.idx", Bytes($"email1:{seed}", 512));
        Write(objectPath, "indexes/age/000.idx", Bytes($"age0:{seed}", 2048));
        Directory.CreateDirectory(Path.Combine(objectPath, "indexes/unused"));
        Write(objectPath, "metadata/counts", System.Text.Encoding.UTF8.GetBytes($"rows={seed * 1000}\n"));
        Write(objectPath, "metadata/sequences/id", System.Text.Encoding.UTF8.GetBytes($"{seed * 77}\n"));
        Write(objectPath, "files/avatar.png", Bytes($"avatar:{seed}", 3000));
        Write(objectPath, "fields.conf", System.Text.Encoding.UTF8.GetBytes($"email:string\nage:int\n# seed {seed}\n"));
    }

    public static void Write(string root, string rel, byte[] content)
    {
        string path = Path.Combine(root, rel);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, content);
    }

    /// <summary>Deterministic pseudo-random bytes for a key.</summary>
    public static byte[] Bytes(string key, int length)
    {
        var buffer = new byte[length];
        new Random(BitConverter.ToInt32(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(key)))).NextBytes(buffer);
        return buffer;
    }

    public static string Sha256(byte[] content) => Convert.ToHexString(SHA256.HashData(content)).ToLowerInvariant();

    /// <summary>Relative '/' path → SHA-256 (or "&lt;dir&gt;") of every entry, artifacts left out.</summary>
    public static SortedDictionary<string, string> Snapshot(string root, bool skipArtifacts = true)
    {
        var result = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var kv in Support.TreeState.Capture(root).Entries)
        {
            string rel = kv.Key.Replace(Path.DirectorySeparatorChar, '/');
            if (skipArtifacts && rel.Split('/').Any(ObjectLayout.IsTransientArtifact))
            {
                continue;
            }
            result[rel] = kv.Value;
        }
        return result;
    }

    public NewObjectBackupOptions BackupOptions() => new(DbRoot, Dir, Object);

    /// <summary>Sets every file's last-write time an hour back and shortens the racy window to
    /// nothing, so each stamp counts as settled: copies are proven by stamps alone (no re-read)
    /// and repository backups record the stamps their next backup compares with.</summary>
    public NewObjectBackupOptions SettledBackupOptions()
    {
        DateTime old = DateTime.UtcNow.AddHours(-1);
        foreach (string f in Directory.EnumerateFiles(ObjectPath, "*", SearchOption.AllDirectories))
        {
            File.SetLastWriteTimeUtc(f, old);
        }
        return BackupOptions() with { RacyWindow = TimeSpan.Zero };
    }

    public RestoreObjectBackupOptions RestoreOptions(string from, bool force = false) => new(DbRoot, Dir, Object, from) { Force = force };

    public void Dispose() => _root.Dispose();
}

/// <summary>A clock stopped at one instant, settable by the test.</summary>
public sealed class FixedClock(DateTimeOffset now) : TimeProvider
{
    public DateTimeOffset Now { get; set; } = now;

    public override DateTimeOffset GetUtcNow() => Now;
}

/// <summary>Reports progress synchronously on the caller's thread (Progress&lt;T&gt; posts, which
/// would make "cancel after the first file" racy).</summary>
public sealed class SyncProgress(Action<OperationProgress> onReport) : IProgress<OperationProgress>
{
    public void Report(OperationProgress value) => onReport(value);
}
