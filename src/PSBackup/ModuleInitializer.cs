using System.Management.Automation;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Runtime.Loader;

namespace PSBackup;

/// <summary>Makes the module's dependencies resolvable inside pwsh. PowerShell loads PSBackup.dll
/// into the default load context, whose deps.json (pwsh's) knows nothing of our packages: managed
/// dependencies are looked up next to PSBackup.dll, and the native SQLite library that
/// SQLitePCLRaw imports as "e_sqlite3" from <c>runtimes/&lt;rid&gt;/native/</c> of the module folder.
/// Both handlers only answer for files that exist in the module folder, and are removed on
/// Remove-Module.</summary>
public sealed class ModuleInitializer : IModuleAssemblyInitializer, IModuleAssemblyCleanup
{
    private static readonly string ModuleDirectory =
        System.IO.Path.GetDirectoryName(typeof(ModuleInitializer).Assembly.Location) ?? AppContext.BaseDirectory;

    public void OnImport()
    {
        AssemblyLoadContext.Default.Resolving += ResolveManaged;
        AssemblyLoadContext.Default.ResolvingUnmanagedDll += ResolveNative;
    }

    public void OnRemove(PSModuleInfo psModuleInfo)
    {
        AssemblyLoadContext.Default.Resolving -= ResolveManaged;
        AssemblyLoadContext.Default.ResolvingUnmanagedDll -= ResolveNative;
    }

    private static Assembly? ResolveManaged(AssemblyLoadContext context, AssemblyName name)
    {
        if (name.Name is null)
        {
            return null;
        }
        string candidate = System.IO.Path.Combine(ModuleDirectory, name.Name + ".dll");
        return File.Exists(candidate) ? context.LoadFromAssemblyPath(candidate) : null;
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
        yield return RuntimeInformation.RuntimeIdentifier;
        string os = OperatingSystem.IsWindows() ? "win" : OperatingSystem.IsMacOS() ? "osx" : "linux";
        string arch = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => "x64",
            Architecture.Arm64 => "arm64",
            Architecture.X86 => "x86",
            Architecture.Arm => "arm",
            var other => other.ToString().ToLowerInvariant(),
        };
        yield return $"{os}-{arch}";
    }

    private static IEnumerable<string> CandidateFileNames(string libraryName)
    {
        string extension = System.IO.Path.GetExtension(libraryName);
        if (extension is ".dll" or ".so" or ".dylib")
        {
            yield return libraryName;
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
