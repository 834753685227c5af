using System.Management.Automation;
using System.Runtime.Loader;

namespace PSBackup;

/// <summary>Checks, on import, that the cmdlets run inside the module's own AssemblyLoadContext.
/// <para>The module is imported through PSBackup.psd1 → PSBackup.psm1, which loads
/// PSBackup.Loader.dll into PowerShell's shared context and this assembly, with every dependency
/// and native library, from <c>dependencies/</c> into the loader's context
/// (src/PSBackup.Loader/LoadContext.cs). That context resolves managed and native dependencies;
/// nothing is hooked on the shared context, so no other module is ever handed our copies.</para>
/// <para>Importing <c>dependencies/PSBackup.dll</c> directly would load it into the shared context,
/// where another module's AWSSDK.Core or Azure.Core may already sit and SQLite's native library is
/// not found: that is refused with the fix, rather than failing later inside an S3 call.</para></summary>
public sealed class ModuleInitializer : IModuleAssemblyInitializer, IModuleAssemblyCleanup
{
    public void OnImport()
    {
        AssemblyLoadContext? context = AssemblyLoadContext.GetLoadContext(typeof(ModuleInitializer).Assembly);
        if (context is null || ReferenceEquals(context, AssemblyLoadContext.Default))
        {
            throw new InvalidOperationException(
                "PSBackup.dll was imported directly into PowerShell's shared load context. Import the module instead: Import-Module <folder>/PSBackup.psd1 (or Import-Module PSBackup), which loads PSBackup and its dependencies in their own load context.");
        }
    }

    public void OnRemove(PSModuleInfo psModuleInfo)
    {
        // The load context cannot be unloaded (PowerShell keeps binary modules loaded); a
        // re-import reuses it (LoadContext.Initialize).
    }
}
