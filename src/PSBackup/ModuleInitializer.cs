using System.Management.Automation;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Runtime.Loader;

namespace PSBackup;

/// <summary>Makes the module's dependencies resolvable inside pwsh.
/// <para>PowerShell loads PSBackup.dll with <c>Assembly.LoadFrom</c> into the default load
/// context, whose deps.json (pwsh's) knows nothing of our packages. Managed dependencies next to
/// PSBackup.dll are found by LoadFrom's own resolver; the handler here is the fallback for loads
/// that do not come from a LoadFrom'd assembly (e.g. Microsoft.Data.Sqlite's
/// <c>Assembly.Load("SQLitePCLRaw.batteries_v2")</c>).</para>
/// <para>Native: SQLitePCLRaw 3.x's provider (<c>SQLitePCLRaw.provider.e_sqlite3</c>) P/Invokes
/// the library "e_sqlite3", shipped as <c>runtimes/&lt;rid&gt;/native/{lib}e_sqlite3.{so,dylib,dll}</c>.
/// Neither the runtime's default probing nor PowerShell's own fallback
/// (<c>&lt;assemblyDir&gt;/&lt;rid&gt;/e_sqlite3.so</c>, no <c>runtimes/</c>, no <c>lib</c>
/// prefix) finds it, so <see cref="AssemblyLoadContext.ResolvingUnmanagedDll"/> does.</para>
/// Both handlers only answer for files that exist in the module folder. PowerShell may call
/// OnImport more than once for one import and again on every re-import, so registration is
/// idempotent; Remove-Module unregisters them.</summary>
public sealed class ModuleInitializer : IModuleAssemblyInitializer, IModuleAssemblyCleanup
{
    private static readonly object Gate = new();
    private static bool _registered;

    private static readonly string ModuleDirectory =
        System.IO.Path.GetDirectoryName(typeof(ModuleInitializer).Assembly.Location) is { Length: > 0 } dir
            ? dir
            : AppContext.BaseDirectory;

    public void OnImport() => Register();

    public void OnRemove(PSModuleInfo psModuleInfo) => Unregister();

    internal static void Register()
    {
        lock (Gate)
        {
            if (_registered)
            {
                return;
            }
            AssemblyLoadContext.Default.Resolving += ResolveManaged;
            AssemblyLoadContext.Default.ResolvingUnmanagedDll += ResolveNative;
            _registered = true;
        }
    }

    internal static void Unregister()
    {
        lock (Gate)
        {
            if (!_registered)
            {
                return;
            }
            AssemblyLoadContext.Default.Resolving -= ResolveManaged;
            AssemblyLoadContext.Default.ResolvingUnmanagedDll -= ResolveNative;
            _registered = false;
        }
    }

    private static Assembly? ResolveManaged(AssemblyLoadContext context, AssemblyName name)
    {
        // Satellite (resource) assemblies are not shipped; never answer for them.
        if (string.IsNullOrEmpty(name.Name) || !string.IsNullOrEmpty(name.CultureName))
        {
            return null;
        }
        string candidate = System.IO.Path.Combine(ModuleDirectory, name.Name + ".dll");
        if (!File.Exists(candidate))
        {
            return null;
        }
        try
        {
            // Only a file at least as new as the reference: a lower version would fail later
            // with a confusing FileLoadException somewhere else.
            AssemblyName found = AssemblyName.GetAssemblyName(candidate);
            if (name.Version is not null && found.Version is not null && found.Version < name.Version)
            {
                return null;
            }
            return context.LoadFromAssemblyPath(candidate);
        }
        catch (Exception e) when (e is IOException or BadImageFormatException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static IntPtr ResolveNative(Assembly requestingAssembly, string libraryName)
    {
        string? path = FindNativeLibrary(ModuleDirectory, libraryName);
        return path is not null && NativeLibrary.TryLoad(path, out IntPtr handle) ? handle : IntPtr.Zero;
    }

    /// <summary>The file for a DllImport name such as "e_sqlite3" under
    /// <c>&lt;moduleDir&gt;/runtimes/&lt;rid&gt;/native/</c>, trying the running RID first; null when the module does not ship it.</summary>
    public static string? FindNativeLibrary(string moduleDirectory, string libraryName)
    {
        if (string.IsNullOrEmpty(libraryName) || libraryName.IndexOfAny(['/', '\\']) >= 0)
        {
            return null; // a path, not a library name: not ours to answer
        }
        foreach (string rid in CandidateRids())
        {
            string nativeDir = System.IO.Path.Combine(moduleDirectory, "runtimes", rid, "native");
            foreach (string file in CandidateFileNames(libraryName))
            {
                string candidate = System.IO.Path.Combine(nativeDir, file);
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }
        return null;
    }

    private static IEnumerable<string> CandidateRids()
    {
        string os = OperatingSystem.IsWindows() ? "win" : OperatingSystem.IsMacOS() ? "osx" : "linux";
        string arch = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => "x64",
            Architecture.Arm64 => "arm64",
            Architecture.X86 => "x86",
            Architecture.Arm => "arm",
            var other => other.ToString().ToLowerInvariant(),
        };
        string portable = $"{os}-{arch}";
        string running = RuntimeInformation.RuntimeIdentifier;
        // The running RID first only when it is a portable one of this OS (pwsh reports e.g.
        // linux-x64, win-x64, osx-arm64); a distro or musl RID falls back to the portable one.
        if (!string.Equals(running, portable, StringComparison.OrdinalIgnoreCase) &&
            running.StartsWith(os + "-", StringComparison.OrdinalIgnoreCase))
        {
            yield return running;
        }
        yield return portable;
    }

    private static IEnumerable<string> CandidateFileNames(string libraryName)
    {
        string extension = System.IO.Path.GetExtension(libraryName);
        if (extension is ".dll" or ".so" or ".dylib")
        {
            yield return libraryName;
            if (!OperatingSystem.IsWindows() && !libraryName.StartsWith("lib", StringComparison.Ordinal))
            {
                yield return "lib" + libraryName;
            }
            yield break;
        }
        if (OperatingSystem.IsWindows())
        {
            yield return libraryName + ".dll";
        }
        else if (OperatingSystem.IsMacOS())
        {
            yield return "lib" + libraryName + ".dylib";
            yield return libraryName + ".dylib";
        }
        else
        {
            yield return "lib" + libraryName + ".so";
            yield return libraryName + ".so";
        }
    }
}
