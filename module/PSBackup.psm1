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

# PowerShell resolves a type literal ([PSBackup.Engine.ObjectStore.ObjectBackupResult]) only in its
# shared load context, so the result types of the module's own context get type accelerators under
# their full names: scripts keep writing `-is [PSBackup.Engine....]` and `Should -BeOfType`.
# Only PSBackup's own public types are registered (never a dependency's), and an accelerator of that
# name already present is left alone; Remove-Module takes ours away again.
$accelerators = [psobject].Assembly.GetType('System.Management.Automation.TypeAccelerators')
$loadContext = [Runtime.Loader.AssemblyLoadContext]::GetLoadContext($moduleAssembly)
$registered = [Collections.Generic.List[string]]::new()
foreach ($name in 'PSBackup', 'PSBackup.Engine') {
    $assembly = $loadContext.LoadFromAssemblyName([AssemblyName]::new($name))
    foreach ($type in $assembly.GetExportedTypes()) {
        if (-not $accelerators::Get.ContainsKey($type.FullName)) {
            $accelerators::Add($type.FullName, $type)
            $registered.Add($type.FullName)
        }
    }
}

# Text converts to a backup kind in either spelling (StoreSnapshot, and store-snapshot as the
# manifests and the command line write it): -Kind store-snapshot binds and
# `Where-Object Kind -eq 'store-snapshot'` matches. The enum's own [TypeConverter] names a type of
# the module's load context, which PowerShell cannot resolve from there, so it is registered here.
$engine = $loadContext.LoadFromAssemblyName([AssemblyName]::new('PSBackup.Engine'))
Update-TypeData -TypeName 'PSBackup.Engine.Repository.BackupKind' -TypeConverter $engine.GetType('PSBackup.Engine.Repository.BackupKindTypeConverter', $true) -Force
# The same vocabulary on retention and removal items and on health alerts (their kinds share
# BackupKind's names; the command line's spelling converts too).
Update-TypeData -TypeName 'PSBackup.Engine.Retention.RetentionItemKind' -TypeConverter $engine.GetType('PSBackup.Engine.Retention.RetentionItemKindConverter', $true) -Force
Update-TypeData -TypeName 'PSBackup.Engine.Events.HealthAlertKind' -TypeConverter $engine.GetType('PSBackup.Engine.Events.HealthAlertKindConverter', $true) -Force

$ExecutionContext.SessionState.Module.OnRemove = {
    foreach ($name in $registered) {
        $null = $accelerators::Remove($name)
    }
}.GetNewClosure()
