using System.Security.Cryptography;
using System.Text;

namespace PSBackup.Engine.Repository;

/// <summary>Process-wide memo of PBKDF2 wrap keys that have opened a repository, so a long-lived
/// session (a PowerShell runspace or runbook shipping WAL every minute) pays the 600,000-iteration
/// key derivation once instead of on every repository open (docs/design.md, "Performance (issue
/// 6): WAL ship, verify and PITR"). An entry is keyed by (iterations, salt, HMAC-SHA256 of the
/// passphrase under a random per-process secret), holds only a wrap key that unwrapped a key
/// object, and is dropped after <see cref="IdleLifetime"/> without use. The unwrap (AES-GCM, bound
/// to the repository id) still runs on every open, so a wrong passphrase or another repository
/// never gets in through the cache. <c>PSBACKUP_KEY_CACHE=off</c> disables it.</summary>
internal static class WrapKeyCache
{
    public const string Variable = "PSBACKUP_KEY_CACHE";
    internal static readonly TimeSpan IdleLifetime = TimeSpan.FromMinutes(15);
    private const int MaxEntries = 16;

    private sealed class Entry(byte[] wrapKey)
    {
        public byte[] WrapKey { get; } = wrapKey;
        public long LastUsed { get; set; } = Environment.TickCount64;
    }

    private static readonly byte[] Secret = RandomNumberGenerator.GetBytes(32);
    private static readonly Dictionary<string, Entry> Entries = new(StringComparer.Ordinal);

    public static bool Enabled => !string.Equals(Environment.GetEnvironmentVariable(Variable), "off", StringComparison.OrdinalIgnoreCase);

    /// <summary>A copy of the remembered wrap key, or null.</summary>
    public static byte[]? TryGet(string passphrase, string salt, int iterations)
    {
        if (!Enabled)
        {
            return null;
        }
        string key = Key(passphrase, salt, iterations);
        lock (Entries)
        {
            if (!Entries.TryGetValue(key, out Entry? e))
            {
                return null;
            }
            if (Environment.TickCount64 - e.LastUsed > (long)IdleLifetime.TotalMilliseconds)
            {
                Remove(key, e);
                return null;
            }
            e.LastUsed = Environment.TickCount64;
            return e.WrapKey.ToArray();
        }
    }

    /// <summary>Remembers a wrap key that has just unwrapped a key object.</summary>
    /// <summary>Remembers a wrap key; false when the cache is off.</summary>
    public static bool Add(string passphrase, string salt, int iterations, byte[] wrapKey)
    {
        if (!Enabled)
        {
            return false;
        }
        string key = Key(passphrase, salt, iterations);
        lock (Entries)
        {
            long now = Environment.TickCount64;
            foreach (KeyValuePair<string, Entry> stale in Entries.Where(p => now - p.Value.LastUsed > (long)IdleLifetime.TotalMilliseconds || p.Key == key).ToList())
            {
                Remove(stale.Key, stale.Value);
            }
            if (Entries.Count >= MaxEntries)
            {
                KeyValuePair<string, Entry> oldest = Entries.MinBy(p => p.Value.LastUsed);
                Remove(oldest.Key, oldest.Value);
            }
            Entries[key] = new Entry(wrapKey.ToArray());
        }
        return true;
    }

    /// <summary>Forgets every wrap key (tests; a host that wants to drop secrets early).</summary>
    public static void Clear()
    {
        lock (Entries)
        {
            foreach (KeyValuePair<string, Entry> e in Entries.ToList())
            {
                Remove(e.Key, e.Value);
            }
        }
    }

    private static void Remove(string key, Entry e)
    {
        CryptographicOperations.ZeroMemory(e.WrapKey);
        Entries.Remove(key);
    }

    private static string Key(string passphrase, string salt, int iterations) =>
        $"{iterations}:{salt}:{Convert.ToHexString(HMACSHA256.HashData(Secret, Encoding.UTF8.GetBytes(passphrase)))}";
}
