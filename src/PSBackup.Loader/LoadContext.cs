using System.Reflection;
using System.Runtime.InteropServices;
using System.Runtime.Loader;

namespace PSBackup.Loader;

/// <summary>The module's own AssemblyLoadContext (jborean93/PowerShell-OpenAuthenticode's
/// <c>OpenAuthenticode.Loader/LoadContext.cs</c>, with PSResourceGet's <c>dependencies/</c> folder).
/// <para>PowerShell loads every module into one shared context, so a module imported earlier with
/// another AWSSDK.Core (AWS.Tools: 3.x) or Azure.Core would otherwise decide which copy PSBackup
/// gets, and every S3 call would fail. Here the cmdlet assembly and everything it needs are loaded
/// from <c>&lt;module&gt;/dependencies/</c> into this context: an assembly whose file is in that
/// folder always comes from there, whatever the shared context already holds; anything else
/// (System.Management.Automation, the framework) falls through to the shared context. The context
/// answers only its own loads (it has no hook on the shared context), so other modules never get
/// our copies either.</para>
/// <para>Native libraries (e_sqlite3) come from <c>dependencies/runtimes/&lt;rid&gt;/native/</c>
/// through <see cref="LoadUnmanagedDll"/>; a name not shipped there (libzstd) falls back to the
/// system search.</para></summary>
public sealed class LoadContext : AssemblyLoadContext
{
    /// <summary>The folder beside the loader that holds the module's assemblies.</summary>
    public const string DependencyFolder = "dependencies";

    /// <summary>The cmdlet assembly in <see cref="DependencyFolder"/>.</summary>
    public const string ModuleAssembly = "PSBackup";

    private static readonly object Sync = new();
    private static LoadContext? _instance;

    private readonly Assembly _loader = typeof(LoadContext).Assembly;
    private readonly AssemblyName _loaderName = typeof(LoadContext).Assembly.GetName();

    private LoadContext(string dependencyDirectory)
        : base("PSBackup", isCollectible: false)
    {
        DependencyDirectory = dependencyDirectory;
    }

    /// <summary>Where the module's assemblies and runtimes/ are.</summary>
    public string DependencyDirectory { get; }

    /// <summary>The one context of this process (PowerShell cannot unload a binary module, so a
    /// re-import reuses it) and its cmdlet assembly, for <c>Import-Module -Assembly</c>.</summary>
    public static Assembly Initialize()
    {
        lock (Sync)
        {
            if (_instance is null)
            {
                string loaderDirectory = Path.GetDirectoryName(typeof(LoadContext).Assembly.Location) is { Length: > 0 } d ? d : AppContext.BaseDirectory;
                _instance = new LoadContext(Path.Combine(loaderDirectory, DependencyFolder));
            }
            return _instance.LoadFromAssemblyName(new AssemblyName(ModuleAssembly));
        }
    }

    protected override Assembly? Load(AssemblyName assemblyName)
    {
        // The loader itself is shared, so the module sees the same LoadContext type as the psm1.
        if (AssemblyName.ReferenceMatchesDefinition(_loaderName, assemblyName))
        {
            return _loader;
        }
        if (string.IsNullOrEmpty(assemblyName.Name) || !string.IsNullOrEmpty(assemblyName.CultureName))
        {
            return null; // no satellite assemblies are shipped
        }
        string candidate = Path.Combine(DependencyDirectory, assemblyName.Name + ".dll");
        return File.Exists(candidate) ? LoadFromAssemblyPath(candidate) : null;
    }

    protected override IntPtr LoadUnmanagedDll(string unmanagedDllName)
    {
        string? path = FindNativeLibrary(DependencyDirectory, unmanagedDllName);
        return path is null ? IntPtr.Zero : LoadUnmanagedDllFromPath(path);
    }

    /// <summary>The file for a DllImport name such as "e_sqlite3" under
    /// <c>&lt;dir&gt;/runtimes/&lt;rid&gt;/native/</c>, the running RID first; null when not shipped.</summary>
    public static string? FindNativeLibrary(string directory, string libraryName)
    {
        if (string.IsNullOrEmpty(libraryName) || libraryName.IndexOfAny(['/', '\\']) >= 0)
        {
            return null; // a path, not a library name: not ours to answer
        }
        foreach (string rid in CandidateRids())
        {
            string nativeDir = Path.Combine(directory, "runtimes", rid, "native");
            foreach (string file in CandidateFileNames(libraryName))
            {
                string candidate = Path.Combine(nativeDir, file);
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
        // The running RID first only when it is a more specific RID of this OS (a distro or musl
        // RID falls back to the portable one).
        if (!string.Equals(running, portable, StringComparison.OrdinalIgnoreCase) &&
            running.StartsWith(os + "-", StringComparison.OrdinalIgnoreCase))
        {
            yield return running;
        }
        yield return portable;
    }

    private static IEnumerable<string> CandidateFileNames(string libraryName)
    {
        string extension = Path.GetExtension(libraryName);
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
