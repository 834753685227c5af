#Requires -Version 7.4
# Pester 5: PSBackup's dependencies load in the module's own AssemblyLoadContext, so a module that
# brought another AWSSDK.Core into the session first (AWS.Tools: AWSSDK.Core 3.x) cannot break it.
# Each case runs in a fresh pwsh, because the session running Pester has PSBackup loaded already.

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $script:Manifest = Join-Path $PSScriptRoot '..' 'out' 'PSBackup' 'PSBackup.psd1'

    # AWSSDK.Core 3.7 from NuGet (scripts/install-pwsh.sh downloads it beside Pester).
    $packages = (& dotnet nuget locals global-packages --list) -replace '^global-packages:\s*', ''
    $script:OldCore = Join-Path $packages.Trim() 'awssdk.core' '3.7.402' 'lib' 'net8.0' 'AWSSDK.Core.dll'
    if (-not (Test-Path -LiteralPath $script:OldCore)) {
        throw "AWSSDK.Core 3.7.402 is not in the NuGet cache ($script:OldCore): run scripts/install-pwsh.sh."
    }

    function Invoke-FreshPwsh {
        <# Runs $Script in a new pwsh (this one's runtime and pwsh.dll) with $Arguments; returns its
           output lines and exit code. #>
        param([Parameter(Mandatory)] [string] $Script, [string[]] $Arguments = @())
        $file = Join-Path $TestDrive ("child-{0}.ps1" -f [guid]::NewGuid().ToString('N'))
        Set-Content -LiteralPath $file -Value $Script
        $output = & ([Environment]::ProcessPath) (Join-Path $PSHOME 'pwsh.dll') -NoProfile -NonInteractive -File $file @Arguments 2>&1
        [pscustomobject]@{ Output = @($output | ForEach-Object { "$_" }); ExitCode = $LASTEXITCODE }
    }
}

Describe 'Module dependency isolation' -Tag 'Integration' {
    BeforeAll {
        $script:Bucket = 'pester-isolation'
        $script:S3Server = Start-TestS3Server -Bucket $script:Bucket -WorkPath $TestDrive
        $script:DbRoot = Join-Path $TestDrive 'db'
        $object = Join-Path $script:DbRoot 'acme' 'orders'
        $null = New-Item -ItemType Directory -Path (Join-Path $object 'data') -Force
        $script:Payload = [byte[]]::new(200000)
        [Random]::new(7).NextBytes($script:Payload)
        [IO.File]::WriteAllBytes((Join-Path $object 'data' '000.bin'), $script:Payload)
        Set-Content -LiteralPath (Join-Path $object 'fields.conf') -Value 'id:int'
    }

    AfterAll {
        Stop-TestS3Server -Server $script:S3Server
    }

    It 'backs up to S3 and restores with AWSSDK.Core 3.7 loaded into the session first' {
        $child = @'
param($OldCore, $Manifest, $Endpoint, $Bucket, $DbRoot, $Restored)
$ErrorActionPreference = 'Stop'
# What AWS.Tools does on import: AWSSDK.Core 3.x into PowerShell's shared load context.
$old = [Reflection.Assembly]::LoadFrom($OldCore)
"old=$($old.GetName().Version)"
Import-Module $Manifest
$script:S3 = @{
    Endpoint  = $Endpoint
    AccessKey = 'S3RVER'
    SecretKey = (ConvertTo-SecureString 'S3RVER' -AsPlainText -Force)
}
$repo = "s3://$Bucket/isolated"
$null = Initialize-BackupRepository -Repository $repo -Unencrypted @script:S3
$backup = New-ObjectBackup -DbRoot $DbRoot -Dir acme -Object orders -Repository $repo @script:S3
"backup=$($backup.BackupId)"
$listed = @(Get-Backup -Repository $repo @script:S3)
"listed=$($listed.Count)"
$check = Test-BackupRepository -Repository $repo -ReadData @script:S3
"check=$($check.Passed)"
$null = Restore-ObjectBackup -DbRoot $Restored -Dir acme -Object orders -Repository $repo @script:S3 -Confirm:$false
# Both generations are loaded, each in its own context.
[AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { $_.GetName().Name -eq 'AWSSDK.Core' } | ForEach-Object {
    "core=$($_.GetName().Version)@$([Runtime.Loader.AssemblyLoadContext]::GetLoadContext($_).Name)"
}
'@
        $restored = Join-Path $TestDrive 'restored'
        $null = New-Item -ItemType Directory -Path (Join-Path $restored 'acme') -Force
        $run = Invoke-FreshPwsh -Script $child -Arguments @($script:OldCore, $script:Manifest, $script:S3Server.Endpoint, $script:Bucket, $script:DbRoot, $restored)
        $text = $run.Output -join [Environment]::NewLine
        $run.ExitCode | Should -Be 0 -Because $text
        $run.Output | Should -Contain 'old=3.3.0.0'
        $run.Output | Should -Contain 'listed=1'
        $run.Output | Should -Contain 'check=True'
        $run.Output | Should -Contain 'core=3.3.0.0@Default'
        $run.Output | Should -Contain 'core=4.0.0.0@PSBackup'
        [IO.File]::ReadAllBytes((Join-Path $restored 'acme' 'orders' 'data' '000.bin')) | Should -Be $script:Payload
    }

    It 'leaves the session''s own AWSSDK.Core to other modules: PSBackup answers no shared-context load' {
        $child = @'
param($OldCore, $Manifest, $Endpoint, $Bucket)
$ErrorActionPreference = 'Stop'
Import-Module $Manifest
# Something that loads the engine and the AWS SDK: a listing of an empty S3 prefix (RepositoryNotFound).
try { $null = Get-Backup -Repository "s3://$Bucket/none" -Endpoint $Endpoint -AccessKey S3RVER -SecretKey (ConvertTo-SecureString 'S3RVER' -AsPlainText -Force) -ErrorAction Stop } catch { "probe=$($_.FullyQualifiedErrorId)" }
# A module imported after PSBackup still gets its own AWSSDK.Core 3.x in the shared context.
$old = [Reflection.Assembly]::LoadFrom($OldCore)
"old=$($old.GetName().Version)@$([Runtime.Loader.AssemblyLoadContext]::GetLoadContext($old).Name)"
# PSBackup's assemblies are all in its own context; only the loader is shared.
[AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { $_.GetName().Name -like 'PSBackup*' } | ForEach-Object {
    "$($_.GetName().Name)@$([Runtime.Loader.AssemblyLoadContext]::GetLoadContext($_).Name)"
}
'@
        $run = Invoke-FreshPwsh -Script $child -Arguments @($script:OldCore, $script:Manifest, $script:S3Server.Endpoint, $script:Bucket)
        $run.ExitCode | Should -Be 0 -Because ($run.Output -join [Environment]::NewLine)
        $run.Output | Should -Contain 'old=3.3.0.0@Default'
        $run.Output | Should -Contain 'PSBackup.Loader@Default'
        $run.Output | Should -Contain 'probe=RepositoryNotFound,PSBackup.Commands.GetBackupCommand'
        $run.Output | Should -Contain 'PSBackup@PSBackup'
        $run.Output | Should -Contain 'PSBackup.Engine@PSBackup'
        @($run.Output | Where-Object { $_ -like 'PSBackup*@Default' }) | Should -Be @('PSBackup.Loader@Default')
    }
}

Describe 'Module import' {
    It 'refuses PSBackup.dll imported directly into the shared context, naming the fix' {
        $dll = Join-Path (Split-Path -Parent $script:Manifest) 'dependencies' 'PSBackup.dll'
        $run = Invoke-FreshPwsh -Script 'param($Dll) $ErrorActionPreference = "Stop"; try { Import-Module $Dll; "imported" } catch { "error=$($_.Exception.Message)" }' -Arguments @($dll)
        ($run.Output -join ' ') | Should -Match 'error=.*Import-Module .*PSBackup\.psd1'
    }

    It 'imports again with -Force in one session and still exports every cmdlet' {
        $run = Invoke-FreshPwsh -Script 'param($Manifest) $ErrorActionPreference = "Stop"; Import-Module $Manifest; Import-Module $Manifest -Force; (Get-Module PSBackup).ExportedCmdlets.Count; (Get-Command Get-Backup -Module PSBackup).Name' -Arguments @($script:Manifest)
        $run.ExitCode | Should -Be 0 -Because ($run.Output -join [Environment]::NewLine)
        $run.Output | Should -Contain ([string] @((Import-PowerShellDataFile -LiteralPath $script:Manifest).CmdletsToExport).Count)
        $run.Output | Should -Contain 'Get-Backup'
    }
}

Describe 'Repository cmdlets without libzstd' {
    BeforeAll {
        # The system libzstd, hidden from a child pwsh by a private mount namespace (needs root).
        $script:LibZstd = @('/usr/lib/x86_64-linux-gnu/libzstd.so.1', '/usr/lib/aarch64-linux-gnu/libzstd.so.1') |
            Where-Object { Test-Path -LiteralPath $_ } | ForEach-Object { (Get-Item -LiteralPath $_).ResolveLinkTarget($true).FullName } | Select-Object -First 1
        $script:CanHide = $false
        if ($IsLinux -and $script:LibZstd -and (Test-Path -LiteralPath '/usr/bin/unshare')) {
            & /usr/bin/unshare -m --propagation private /bin/true 2>$null
            $script:CanHide = $LASTEXITCODE -eq 0
        }
    }

    It 'initializes, backs up, lists, checks and restores with the managed codec' {
        if (-not $script:CanHide) {
            Set-ItResult -Skipped -Because 'hiding libzstd needs Linux, root and unshare'
            return
        }
        $db = Join-Path $TestDrive 'nozstd-db'
        $null = New-Item -ItemType Directory -Path (Join-Path $db 'acme' 'orders' 'data') -Force
        $payload = [byte[]]::new(150000)
        [Random]::new(11).NextBytes($payload)
        [IO.File]::WriteAllBytes((Join-Path $db 'acme' 'orders' 'data' '000.bin'), $payload)
        $repo = Join-Path $TestDrive 'nozstd-repo'
        $child = Join-Path $TestDrive 'nozstd.ps1'
        Set-Content -LiteralPath $child -Value @'
param($Manifest, $Db, $Repo)
$ErrorActionPreference = 'Stop'
Import-Module $Manifest
$null = Initialize-BackupRepository -Repository $Repo -Unencrypted
$backup = New-ObjectBackup -DbRoot $Db -Dir acme -Object orders -Repository $Repo
"listed=$(@(Get-Backup -Repository $Repo).Count)"
"check=$((Test-BackupRepository -Repository $Repo -ReadData).Passed)"
Remove-Item -LiteralPath (Join-Path $Db 'acme' 'orders') -Recurse -Force
$null = Restore-ObjectBackup -DbRoot $Db -Dir acme -Object orders -Repository $Repo -Confirm:$false
"codec=" + [Runtime.Loader.AssemblyLoadContext]::GetLoadContext((Get-Command Get-Backup).ImplementingType.Assembly).Assemblies.Where({ $_.GetName().Name -eq 'PSBackup.Engine' })[0].GetType('PSBackup.Engine.Repository.Compression.ZstdCodecs')::Default.Name
'@
        $command = "mount --bind /dev/null '$script:LibZstd' && exec '$([Environment]::ProcessPath)' '$(Join-Path $PSHOME 'pwsh.dll')' -NoProfile -NonInteractive -File '$child' '$script:Manifest' '$db' '$repo'"
        $env:PSBACKUP_ZSTD = $null
        $output = @(& /usr/bin/unshare -m --propagation private /bin/sh -c $command 2>&1 | ForEach-Object { "$_" })
        $LASTEXITCODE | Should -Be 0 -Because ($output -join [Environment]::NewLine)
        $output | Should -Contain 'listed=1'
        $output | Should -Contain 'check=True'
        ($output -match '^codec=ZstdSharp .*\(managed\)$').Count | Should -Be 1 -Because ($output -join [Environment]::NewLine)
        [IO.File]::ReadAllBytes((Join-Path $db 'acme' 'orders' 'data' '000.bin')) | Should -Be $payload
        # And what the managed codec wrote, this session (libzstd) reads.
        Import-Module $script:Manifest -Force
        (Test-BackupRepository -Repository $repo -ReadData).Passed | Should -BeTrue
    }
}
