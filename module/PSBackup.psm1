# PSBackup's root module: loads PSBackup.Loader.dll into PowerShell's shared load context, which
# loads the cmdlets and every dependency (AWSSDK, SQLite, zstd, ...) from dependencies/ into the
# module's own AssemblyLoadContext, so a module imported before or after (AWS.Tools with
# AWSSDK.Core 3.x, Az with another Azure.Core) can never decide which copy PSBackup runs on.
# Modelled on jborean93/PowerShell-OpenAuthenticode's module/OpenAuthenticode.psm1.

using namespace System.IO
using namespace System.Management.Automation
using namespace System.Reflection

$importModule = Get-Command -Name Import-Module -Module Microsoft.PowerShell.Core
$loaderType = 'PSBackup.Loader.LoadContext'

$isReload = $true
if (-not ($loaderType -as [type])) {
    $isReload = $false
    Add-Type -Path ([Path]::Combine($PSScriptRoot, 'PSBackup.Loader.dll'))
}

$moduleAssembly = ($loaderType -as [type])::Initialize()
$innerModule = & $importModule -Assembly $moduleAssembly -PassThru:$isReload

if ($innerModule) {
    # On a re-import pwsh reuses the cached binary module and does not export its cmdlets into
    # this module's scope again (PowerShell/PowerShell#20710): add them by hand, as
    # OpenAuthenticode does.
    $addExportedCmdlet = [PSModuleInfo].GetMethod('AddExportedCmdlet', [BindingFlags]'Instance, NonPublic')
    foreach ($cmdlet in $innerModule.ExportedCmdlets.Values) {
        $addExportedCmdlet.Invoke($ExecutionContext.SessionState.Module, @(, $cmdlet))
    }
}
