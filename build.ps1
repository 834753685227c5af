#Requires -Version 7.4
<#
.SYNOPSIS
    Builds PSBackup, assembles the module into out/PSBackup, runs the xunit tests and the Pester tests.

.DESCRIPTION
    1. dotnet build PSBackup.sln (the PSBackup project assembles out/PSBackup/ after its build);
    2. what the tests need and no project references, as scripts/test.sh and .ci/run set it up:
       s3rver, Azurite and the exposition parser from npm (pinned lock files, before the xunit
       tests that start them), and Pester 5.9.1 and AWSSDK.Core 3.7.402 from NuGet (a
       PackageDownload restore, like scripts/nuget-download.sh) when they are not in the cache;
    3. dotnet test on the xunit project;
    4. Invoke-Pester on tests/*.Tests.ps1 in a fresh pwsh process (so the freshly built
       PSBackup.dll is loaded, never a stale copy held by this session), with CI output.
    Exits non-zero when any step fails. A fresh clone needs only the .NET SDK, npm and pwsh.

.PARAMETER Configuration
    The build configuration. Default: Release.

.PARAMETER InstallPester
    Kept for older command lines: Pester 5.9.1 and AWSSDK.Core 3.7.402 are restored from NuGet
    whenever they are missing.

.PARAMETER SkipPester
    Build and run the xunit tests only.

.PARAMETER Tag
    Only run Pester tests with these tags.

.PARAMETER Package
    After the build, zip the assembled module for Azure Automation (Modules > Add a module,
    runtime 7.4) or an offline Install: the PSBackup folder is the zip's root entry, the zip stays
    under Azure Automation's 100 MB module limit, and no tests run. The zip goes to -PackagePath
    (default out/PSBackup-<version>.zip).

.PARAMETER NoBuild
    With -Package: zip the module already assembled in out/PSBackup instead of building first.

.PARAMETER PackagePath
    Where -Package writes the zip.

.PARAMETER ExcludeTag
    Skip Pester tests with these tags (none by default: the Integration tests start their own
    s3rver on 127.0.0.1).

.EXAMPLE
    ./build.ps1 -InstallPester

.EXAMPLE
    ./build.ps1 -Package   # out/PSBackup-<version>.zip for Azure Automation
#>
[CmdletBinding()]
param(
    [ValidateSet('Debug', 'Release')]
    [string] $Configuration = 'Release',

    [switch] $InstallPester,

    [switch] $SkipPester,

    [string[]] $Tag,

    [string[]] $ExcludeTag,

    [switch] $Package,

    [switch] $NoBuild,

    [string] $PackagePath
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

$root = $PSScriptRoot
$solution = Join-Path $root 'PSBackup.sln'
$testProject = Join-Path $root 'tests' 'PSBackup.Engine.Tests'
$moduleManifest = Join-Path $root 'out' 'PSBackup' 'PSBackup.psd1'

function Invoke-Step {
    param([string] $Name, [scriptblock] $Action)
    Write-Host "==> $Name" -ForegroundColor Cyan
    & $Action
    if ($LASTEXITCODE -ne 0) {
        Write-Host "FAILED: $Name (exit code $LASTEXITCODE)" -ForegroundColor Red
        exit $LASTEXITCODE
    }
}

if (-not ($Package -and $NoBuild)) {
    Invoke-Step "dotnet build ($Configuration)" {
        dotnet build $solution --configuration $Configuration --nologo
    }
}

if (-not (Test-Path -LiteralPath $moduleManifest)) {
    Write-Host "FAILED: the build did not assemble the module at $moduleManifest" -ForegroundColor Red
    exit 1
}

if ($Package) {
    # ZipFile writes '/' separators on every OS (Azure Automation's importer needs them) and,
    # with includeBaseDirectory, puts the PSBackup folder at the zip's root.
    $version = (Import-PowerShellDataFile -LiteralPath $moduleManifest).ModuleVersion
    if (-not $PackagePath) { $PackagePath = Join-Path $root 'out' "PSBackup-$version.zip" }
    $PackagePath = [System.IO.Path]::GetFullPath($PackagePath, (Get-Location).ProviderPath)
    $temp = "$PackagePath.$([guid]::NewGuid().ToString('n')).tmp"
    Add-Type -AssemblyName System.IO.Compression.FileSystem
    [System.IO.Compression.ZipFile]::CreateFromDirectory((Split-Path -Parent $moduleManifest), $temp, [System.IO.Compression.CompressionLevel]::Optimal, $true)
    $size = (Get-Item -LiteralPath $temp).Length
    if ($size -ge 100MB) {
        Remove-Item -LiteralPath $temp
        Write-Host "FAILED: the module zip is $([math]::Round($size / 1MB, 1)) MB; Azure Automation takes at most 100 MB." -ForegroundColor Red
        exit 1
    }
    Move-Item -LiteralPath $temp -Destination $PackagePath -Force
    Write-Host ("Packaged PSBackup {0}: {1} ({2:N1} MB)" -f $version, $PackagePath, ($size / 1MB)) -ForegroundColor Green
    exit 0
}

# The S3, Azure and metrics tests (xunit and Pester) need s3rver, Azurite and an exposition parser
# from npm (pinned lock files): installed before the xunit tests, which start them.
foreach ($npmProject in 'tests/s3', 'tests/azure', 'tests/prom') {
    if (-not (Test-Path -LiteralPath (Join-Path $root $npmProject 'node_modules'))) {
        Invoke-Step "npm ci --prefix $npmProject" { npm ci --prefix (Join-Path $root $npmProject) --no-audit --no-fund }
    }
}

# A failing xunit test does not hide the Pester results: both run, and the build fails at the end.
Write-Host '==> dotnet test (xunit)' -ForegroundColor Cyan
dotnet test $testProject --configuration $Configuration --no-build --nologo
$xunitExit = $LASTEXITCODE
if ($xunitExit -ne 0) {
    Write-Host "FAILED: dotnet test (xunit) (exit code $xunitExit); the Pester tests still run." -ForegroundColor Red
}

if ($SkipPester) {
    Write-Host 'Pester tests skipped (-SkipPester).' -ForegroundColor Yellow
    exit $xunitExit
}

# Pester 5.9.1 (the package carries the module under tools/) and AWSSDK.Core 3.7.402 (the AWS.Tools
# generation the module-isolation test loads before PSBackup) come from NuGet, as in
# scripts/install-pwsh.sh: a throwaway project's PackageDownload restore, made outside the
# repository so its Directory.*.props stay out; a package already in the cache is not restored again.
$pesterVersion = '5.9.1'
$downloads = [ordered]@{ Pester = $pesterVersion; 'AWSSDK.Core' = '3.7.402' }
$packages = ((dotnet nuget locals global-packages --list) -replace '^global-packages:\s*', '').Trim().TrimEnd('/', '\')
$pesterPath = Join-Path $packages 'pester' $pesterVersion 'tools' 'Pester.psd1'
$missing = @($downloads.Keys | Where-Object { -not (Test-Path -LiteralPath (Join-Path $packages $_.ToLowerInvariant() $downloads[$_] '.nupkg.metadata')) })
if ($missing) {
    $restore = Join-Path ([System.IO.Path]::GetTempPath()) "psbackup-download-$([guid]::NewGuid().ToString('n'))"
    $null = New-Item -ItemType Directory -Path $restore
    $items = ($missing | ForEach-Object { "    <PackageDownload Include=`"$_`" Version=`"[$($downloads[$_])]`" />" }) -join [Environment]::NewLine
    Set-Content -LiteralPath (Join-Path $restore 'download.csproj') -Value @"
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup><TargetFramework>net10.0</TargetFramework></PropertyGroup>
  <ItemGroup>
$items
  </ItemGroup>
</Project>
"@
    try {
        Invoke-Step "Restore $($missing -join ', ') from NuGet" { dotnet restore (Join-Path $restore 'download.csproj') --nologo -v quiet }
    }
    finally {
        Remove-Item -LiteralPath $restore -Recurse -Force -ErrorAction SilentlyContinue
    }
}
if (-not (Test-Path -LiteralPath $pesterPath)) {
    Write-Host "FAILED: Pester $pesterVersion did not arrive at $pesterPath." -ForegroundColor Red
    exit 1
}

$pwsh = [Environment]::ProcessPath
if (-not $pwsh -or [System.IO.Path]::GetFileNameWithoutExtension($pwsh) -ne 'pwsh') {
    $pwsh = (Get-Command pwsh -CommandType Application -ErrorAction Stop | Select-Object -First 1).Source
}
# A fresh process: a binary module cannot be unloaded, so this session may hold an older PSBackup.dll.
# -OutputFormat Text keeps the output plain text when it is logged to a file.
$pesterArgs = @('-NoProfile', '-NonInteractive', '-OutputFormat', 'Text', '-File', (Join-Path $root 'scripts' 'pester.ps1'), '-PesterPath', $pesterPath)
if ($Tag) { $pesterArgs += @('-Tag', ($Tag -join ',')) }
if ($ExcludeTag) { $pesterArgs += @('-ExcludeTag', ($ExcludeTag -join ',')) }
Invoke-Step 'Invoke-Pester (tests/*.Tests.ps1, fresh pwsh)' { & $pwsh @pesterArgs }
if ($xunitExit -ne 0) {
    Write-Host "FAILED: dotnet test (xunit) (exit code $xunitExit); the Pester tests passed." -ForegroundColor Red
    exit $xunitExit
}

Write-Host 'All builds and tests passed.' -ForegroundColor Green
exit 0
