using System.Runtime.InteropServices;
using System.Text;

namespace PSBackup.Engine.Snapshots;

/// <summary>The few LMDB 0.9 calls a snapshot needs, bound at run time to the system's LMDB 0.9
/// library (Debian/Ubuntu <c>liblmdb0</c>, Homebrew <c>lmdb</c>, or <c>PSBACKUP_LMDB_LIBRARY</c>).</summary>
/// <remarks>Why not LightningDB's bundled library: LightningDB 0.23/0.24 ship LMDB 1.0.1 (the
/// mdb.master3 line), whose data and lock formats are version 2 (mdb.c <c>MDB_DATA_VERSION</c>,
/// <c>MDB_LOCK_VERSION</c>), while UnisonDB writes LMDB 0.9 (lmdb-go 1.9.3 bundles 0.9.33: data and
/// lock version 1). A 1.0 library refuses a 0.9 environment, and an environment copy made by it
/// would be a format UnisonDB cannot open; its Linux build also needs glibc 2.38. So the binding is
/// ours, loaded by name, version-checked (0.9.x only), and never reachable when no such library
/// exists: the live LMDB snapshot then asks for UnisonDB's own endpoint instead.</remarks>
public static unsafe class Lmdb
{
    public const string LibraryVariable = "PSBACKUP_LMDB_LIBRARY";
    private const uint NoSubDir = 0x4000, ReadOnly = 0x20000, NoTls = 0x200000, NoLock = 0x400000, NoReadAhead = 0x800000;
    private const int NotFound = -30798;
    private const uint Create = 0x40000;

    private static readonly Lazy<Api?> Loaded = new(Load);

    /// <summary>"LMDB 0.9.24" when a usable library is loaded, else null.</summary>
    public static string? Version => Loaded.Value?.Version;

    /// <summary>Why no library is usable (for messages); null when one is.</summary>
    public static string? Unavailable => Loaded.Value is null ? s_why : null;

    private static string? s_why;

    /// <summary>Copies the live environment in <paramref name="envDir"/> (data.mdb + lock.mdb of a
    /// running UnisonDB) into <paramref name="destinationDir"/> (existing, empty) with LMDB's own
    /// <c>mdb_env_copy2</c>: one read transaction of this process, registered in the lock file like
    /// any reader, so the writer in the other process never reuses a page the copy still needs.
    /// The result is <c>destinationDir/data.mdb</c> as of one commit.</summary>
    public static void CopyEnvironment(string envDir, string destinationDir)
    {
        Api api = Require();
        IntPtr env = OpenEnv(api, envDir, ReadOnly | NoTls | NoReadAhead);
        try
        {
            fixed (byte* p = Utf8Z(destinationDir))
            {
                Check(api, api.EnvCopy2(env, p, 0), $"copying the LMDB environment '{envDir}'");
            }
        }
        finally
        {
            api.EnvClose(env);
        }
    }

    /// <summary>Reads <paramref name="key"/> of named database <paramref name="dbName"/> from a
    /// lone data file (an environment copy or UnisonDB's <c>/btree/backup</c> output), opened
    /// read-only without a lock file. Null when the database or key is absent. Also returns each
    /// named database's entry count, which proves every page of its tree root is readable.</summary>
    public static (byte[]? Value, IReadOnlyDictionary<string, long> Entries) ReadFile(string dataFile, string dbName, byte[] key, IEnumerable<string> databases)
    {
        Api api = Require();
        IntPtr env = OpenEnv(api, dataFile, ReadOnly | NoSubDir | NoLock | NoTls);
        IntPtr txn = IntPtr.Zero;
        try
        {
            Check(api, api.TxnBegin(env, IntPtr.Zero, ReadOnly, &txn), $"reading '{dataFile}'");
            var entries = new Dictionary<string, long>(StringComparer.Ordinal);
            foreach (string name in databases.Append(dbName).Distinct(StringComparer.Ordinal))
            {
                uint dbi;
                int rc;
                fixed (byte* p = Utf8Z(name))
                {
                    rc = api.DbiOpen(txn, p, 0, &dbi);
                }
                if (rc == NotFound)
                {
                    continue;
                }
                Check(api, rc, $"opening database '{name}' in '{dataFile}'");
                MdbStat stat;
                Check(api, api.Stat(txn, dbi, &stat), $"reading database '{name}' in '{dataFile}'");
                entries[name] = (long)stat.Entries;
            }
            if (!entries.ContainsKey(dbName))
            {
                return (null, entries);
            }
            uint meta;
            fixed (byte* p = Utf8Z(dbName))
            {
                Check(api, api.DbiOpen(txn, p, 0, &meta), $"opening database '{dbName}' in '{dataFile}'");
            }
            fixed (byte* k = key)
            {
                var kv = new MdbVal { Size = (nuint)key.Length, Data = (IntPtr)k };
                MdbVal value;
                int rc = api.Get(txn, meta, &kv, &value);
                if (rc == NotFound)
                {
                    return (null, entries);
                }
                Check(api, rc, $"reading a key of '{dbName}' in '{dataFile}'");
                return (new ReadOnlySpan<byte>((void*)value.Data, checked((int)value.Size)).ToArray(), entries);
            }
        }
        finally
        {
            if (txn != IntPtr.Zero)
            {
                api.TxnAbort(txn);
            }
            api.EnvClose(env);
        }
    }

    /// <summary>Opens (creating when missing) the LMDB environment in the existing folder
    /// <paramref name="envDir"/> for writing, as UnisonDB's LMDB driver does (pkg/kvdrivers/lmdb.go
    /// NewLmdb: two named databases, the given map size, no read-ahead). For laying out stores in
    /// UnisonDB's shape (the example database); never for a store another process has open.</summary>
    public static Writer OpenWriter(string envDir, long mapSize)
    {
        Api api = Require();
        IntPtr env;
        Check(api, api.EnvCreate(&env), "creating an LMDB environment handle");
        try
        {
            Check(api, api.EnvSetMaxDbs(env, 2), "configuring an LMDB environment");
            Check(api, api.EnvSetMapSize(env, checked((nuint)mapSize)), "configuring an LMDB environment");
            fixed (byte* p = Utf8Z(envDir))
            {
                Check(api, api.EnvOpen(env, p, NoReadAhead, Convert.ToUInt32("644", 8)), $"opening '{envDir}'");
            }
            return new Writer(api, env, envDir);
        }
        catch
        {
            api.EnvClose(env);
            throw;
        }
    }

    /// <summary>One change of <see cref="Writer.Commit"/>: <see cref="Value"/> stored at
    /// <see cref="Key"/> of the named database <see cref="Database"/>, or the key deleted when
    /// <see cref="Value"/> is null (a missing key is no error, as in UnisonDB's BatchDeleteKV).</summary>
    public readonly record struct Change(string Database, byte[] Key, byte[]? Value);

    /// <summary>An LMDB environment open for writing (<see cref="OpenWriter"/>).</summary>
    public sealed class Writer : IDisposable
    {
        private readonly Api _api;
        private readonly string _path;
        private IntPtr _env;

        internal Writer(Api api, IntPtr env, string path)
        {
            _api = api;
            _env = env;
            _path = path;
        }

        /// <summary>Applies <paramref name="changes"/> in one write transaction, creating each named
        /// database they touch, and each of <paramref name="databases"/>, when missing; durable when
        /// this returns (LMDB syncs on commit).</summary>
        public void Commit(IEnumerable<Change> changes, IEnumerable<string>? databases = null)
        {
            ObjectDisposedException.ThrowIf(_env == IntPtr.Zero, this);
            IntPtr begun;
            Check(_api, _api.TxnBegin(_env, IntPtr.Zero, 0, &begun), $"starting a write transaction in '{_path}'");
            IntPtr txn = begun;
            try
            {
                var dbis = new Dictionary<string, uint>(StringComparer.Ordinal);
                uint Open(string database)
                {
                    if (!dbis.TryGetValue(database, out uint dbi))
                    {
                        fixed (byte* name = Utf8Z(database))
                        {
                            Check(_api, _api.DbiOpen(txn, name, Create, &dbi), $"opening database '{database}' in '{_path}'");
                        }
                        dbis[database] = dbi;
                    }
                    return dbi;
                }
                foreach (string database in databases ?? [])
                {
                    _ = Open(database);
                }
                foreach (Change c in changes)
                {
                    uint dbi = Open(c.Database);
                    fixed (byte* k = c.Key)
                    fixed (byte* v = c.Value)
                    {
                        var key = new MdbVal { Size = (nuint)c.Key.Length, Data = (IntPtr)k };
                        if (c.Value is null)
                        {
                            int rc = _api.Del(txn, dbi, &key, null);
                            if (rc != NotFound)
                            {
                                Check(_api, rc, $"deleting a key of '{c.Database}' in '{_path}'");
                            }
                        }
                        else
                        {
                            var value = new MdbVal { Size = (nuint)c.Value.Length, Data = (IntPtr)v };
                            Check(_api, _api.Put(txn, dbi, &key, &value, 0), $"writing a key of '{c.Database}' in '{_path}'");
                        }
                    }
                }
            }
            catch
            {
                _api.TxnAbort(txn);
                throw;
            }
            Check(_api, _api.TxnCommit(txn), $"committing a write transaction in '{_path}'");
        }

        public void Dispose()
        {
            if (_env != IntPtr.Zero)
            {
                _api.EnvClose(_env);
                _env = IntPtr.Zero;
            }
        }
    }

    private static IntPtr OpenEnv(Api api, string path, uint flags)
    {
        IntPtr env;
        Check(api, api.EnvCreate(&env), "creating an LMDB environment handle");
        try
        {
            Check(api, api.EnvSetMaxDbs(env, 8), "configuring an LMDB environment");
            int rc;
            fixed (byte* p = Utf8Z(path))
            {
                rc = api.EnvOpen(env, p, flags, 0);
            }
            if (rc != 0)
            {
                throw new IntegrityException("StoreUnreadable",
                    $"LMDB cannot open '{path}': {api.Error(rc)}. It is not an LMDB 0.9 store (or it is damaged); check the path, or take the snapshot through -Endpoint.", path);
            }
            return env;
        }
        catch
        {
            api.EnvClose(env);
            throw;
        }
    }

    private static byte[] Utf8Z(string s) => Encoding.UTF8.GetBytes(s + "\0");

    private static void Check(Api api, int rc, string what)
    {
        if (rc != 0)
        {
            throw new OperationFailedException("LmdbFailed", $"LMDB failed {what}: {api.Error(rc)} (code {rc}).", null);
        }
    }

    private static Api Require() => Loaded.Value ?? throw new OperationFailedException("LmdbLibraryMissing",
        $"No LMDB 0.9 library is available to this process ({s_why}), so a live LMDB store cannot be copied consistently. Install LMDB 0.9 (Debian/Ubuntu: apt-get install liblmdb0; macOS: brew install lmdb) or set {LibraryVariable} to its path, or take the snapshot through UnisonDB's own backup API with -Endpoint.",
        null);

    private static Api? Load()
    {
        var tried = new List<string>();
        foreach (string candidate in Candidates())
        {
            if (!NativeLibrary.TryLoad(candidate, out IntPtr handle))
            {
                tried.Add(candidate);
                continue;
            }
            try
            {
                var api = new Api(handle);
                int major, minor, patch;
                api.VersionCall(&major, &minor, &patch);
                if (major != 0 || minor != 9)
                {
                    tried.Add($"{candidate} is LMDB {major}.{minor}.{patch}, whose file format UnisonDB (LMDB 0.9) cannot read");
                    NativeLibrary.Free(handle);
                    continue;
                }
                api.Version = $"LMDB {major}.{minor}.{patch}";
                return api;
            }
            catch (EntryPointNotFoundException)
            {
                tried.Add($"{candidate} lacks LMDB functions");
                NativeLibrary.Free(handle);
            }
        }
        s_why = "tried " + string.Join(", ", tried);
        return null;
    }

    private static IEnumerable<string> Candidates()
    {
        string? configured = Environment.GetEnvironmentVariable(LibraryVariable);
        if (!string.IsNullOrWhiteSpace(configured))
        {
            yield return configured;
            yield break;
        }
        if (OperatingSystem.IsWindows())
        {
            yield return "lmdb.dll";
            yield return "liblmdb.dll";
        }
        else if (OperatingSystem.IsMacOS())
        {
            yield return "liblmdb.dylib";
            yield return "/opt/homebrew/lib/liblmdb.dylib";
            yield return "/usr/local/lib/liblmdb.dylib";
        }
        else
        {
            yield return "liblmdb.so.0";
            yield return "liblmdb.so";
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct MdbVal
    {
        public nuint Size;
        public IntPtr Data;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct MdbStat
    {
        public uint PageSize;
        public uint Depth;
        public nuint BranchPages;
        public nuint LeafPages;
        public nuint OverflowPages;
        public nuint Entries;
    }

    internal sealed class Api(IntPtr h)
    {
        public string Version = "";
        public readonly delegate* unmanaged<int*, int*, int*, IntPtr> VersionCall = (delegate* unmanaged<int*, int*, int*, IntPtr>)NativeLibrary.GetExport(h, "mdb_version");
        public readonly delegate* unmanaged<int, IntPtr> StrError = (delegate* unmanaged<int, IntPtr>)NativeLibrary.GetExport(h, "mdb_strerror");
        public readonly delegate* unmanaged<IntPtr*, int> EnvCreate = (delegate* unmanaged<IntPtr*, int>)NativeLibrary.GetExport(h, "mdb_env_create");
        public readonly delegate* unmanaged<IntPtr, uint, int> EnvSetMaxDbs = (delegate* unmanaged<IntPtr, uint, int>)NativeLibrary.GetExport(h, "mdb_env_set_maxdbs");
        public readonly delegate* unmanaged<IntPtr, byte*, uint, uint, int> EnvOpen = (delegate* unmanaged<IntPtr, byte*, uint, uint, int>)NativeLibrary.GetExport(h, "mdb_env_open");
        public readonly delegate* unmanaged<IntPtr, void> EnvClose = (delegate* unmanaged<IntPtr, void>)NativeLibrary.GetExport(h, "mdb_env_close");
        public readonly delegate* unmanaged<IntPtr, byte*, uint, int> EnvCopy2 = (delegate* unmanaged<IntPtr, byte*, uint, int>)NativeLibrary.GetExport(h, "mdb_env_copy2");
        public readonly delegate* unmanaged<IntPtr, IntPtr, uint, IntPtr*, int> TxnBegin = (delegate* unmanaged<IntPtr, IntPtr, uint, IntPtr*, int>)NativeLibrary.GetExport(h, "mdb_txn_begin");
        public readonly delegate* unmanaged<IntPtr, void> TxnAbort = (delegate* unmanaged<IntPtr, void>)NativeLibrary.GetExport(h, "mdb_txn_abort");
        public readonly delegate* unmanaged<IntPtr, byte*, uint, uint*, int> DbiOpen = (delegate* unmanaged<IntPtr, byte*, uint, uint*, int>)NativeLibrary.GetExport(h, "mdb_dbi_open");
        public readonly delegate* unmanaged<IntPtr, uint, MdbVal*, MdbVal*, int> Get = (delegate* unmanaged<IntPtr, uint, MdbVal*, MdbVal*, int>)NativeLibrary.GetExport(h, "mdb_get");
        public readonly delegate* unmanaged<IntPtr, nuint, int> EnvSetMapSize = (delegate* unmanaged<IntPtr, nuint, int>)NativeLibrary.GetExport(h, "mdb_env_set_mapsize");
        public readonly delegate* unmanaged<IntPtr, int> TxnCommit = (delegate* unmanaged<IntPtr, int>)NativeLibrary.GetExport(h, "mdb_txn_commit");
        public readonly delegate* unmanaged<IntPtr, uint, MdbVal*, MdbVal*, uint, int> Put = (delegate* unmanaged<IntPtr, uint, MdbVal*, MdbVal*, uint, int>)NativeLibrary.GetExport(h, "mdb_put");
        public readonly delegate* unmanaged<IntPtr, uint, MdbVal*, MdbVal*, int> Del = (delegate* unmanaged<IntPtr, uint, MdbVal*, MdbVal*, int>)NativeLibrary.GetExport(h, "mdb_del");
        public readonly delegate* unmanaged<IntPtr, uint, MdbStat*, int> Stat = (delegate* unmanaged<IntPtr, uint, MdbStat*, int>)NativeLibrary.GetExport(h, "mdb_stat");

        public string Error(int rc) => Marshal.PtrToStringUTF8(StrError(rc)) ?? $"error {rc}";
    }
}
