#Requires -Version 7.4
<#
.SYNOPSIS
    Builds PSBackup, assembles the module into out/PSBackup, runs the xunit tests and the Pester tests.

.DESCRIPTION
    1. dotnet build PSBackup.sln (the PSBackup project assembles out/PSBackup/ after its build);
    2. dotnet test on the xunit project;
    3. Invoke-Pester on tests/*.Tests.ps1 in a fresh pwsh process (so the freshly built
       PSBackup.dll is loaded, never a stale copy held by this session), with CI output.
    Exits non-zero when any step fails.

.PARAMETER Configuration
    The build configuration. Default: Release.

.PARAMETER InstallPester
    Install Pester 5 from the PowerShell Gallery for the current user when it is missing.
    Without it, a missing Pester fails the build (the Pester tests are part of it).

.PARAMETER SkipPester
    Build and run the xunit tests only.

.PARAMETER Tag
    Only run Pester tests with these tags. ExcludeTag defaults to 'Integration'.

.EXAMPLE
    ./build.ps1 -InstallPester
#>
[CmdletBinding()]
param(
    [ValidateSet('Debug', 'Release')]
    [string] $Configuration = 'Release',

    [switch] $InstallPester,

    [switch] $SkipPester,

    [string[]] $Tag,

    [string[]] $ExcludeTag = @('Integration')
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

$root = $PSScriptRoot
$solution = Join-Path $root 'PSBackup.sln'
$testProject = Join-Path $root 'tests' 'PSBackup.Engine.Tests'
$moduleManifest = Join-Path $root 'out' 'PSBackup' 'PSBackup.psd1'
$minimumPester = [version]'5.5.0'

function Invoke-Step {
    param([string] $Name, [scriptblock] $Action)
    Write-Host "==> $Name" -ForegroundColor Cyan
    & $Action
    if ($LASTEXITCODE -ne 0) {
        Write-Host "FAILED: $Name (exit code $LASTEXITCODE)" -ForegroundColor Red
        exit $LASTEXITCODE
    }
}

Invoke-Step "dotnet build ($Configuration)" {
    dotnet build $solution --configuration $Configuration --nologo
}

if (-not (Test-Path -LiteralPath $moduleManifest)) {
    Write-Host "FAILED: the build did not assemble the module at $moduleManifest" -ForegroundColor Red
    exit 1
}

Invoke-Step 'dotnet test (xunit)' {
    dotnet test $testProject --configuration $Configuration --no-build --nologo
}

if ($SkipPester) {
    Write-Host 'Pester tests skipped (-SkipPester).' -ForegroundColor Yellow
    exit 0
}

$pester = Get-Module -ListAvailable -Name Pester |
    Where-Object { $_.Version -ge $minimumPester } |
    Sort-Object Version -Descending |
    Select-Object -First 1
if (-not $pester) {
    if (-not $InstallPester) {
        Write-Host "FAILED: Pester $minimumPester or later is not installed. Re-run with -InstallPester, or: Install-Module Pester -MinimumVersion $minimumPester -Scope CurrentUser" -ForegroundColor Red
        exit 1
    }
    Write-Host "==> Installing Pester $minimumPester+ for the current user" -ForegroundColor Cyan
    Install-Module -Name Pester -MinimumVersion $minimumPester -Scope CurrentUser -Force -SkipPublisherCheck -Repository PSGallery
    $pester = Get-Module -ListAvailable -Name Pester |
        Where-Object { $_.Version -ge $minimumPester } |
        Sort-Object Version -Descending |
        Select-Object -First 1
}

# The Pester run happens in a fresh process: a binary module cannot be unloaded, so this session
# may hold an older PSBackup.dll. Settings travel as JSON through an environment variable.
$settings = @{
    PesterPath = $pester.Path
    TestPath   = @(Get-ChildItem -Path (Join-Path $root 'tests') -Filter '*.Tests.ps1' -File | ForEach-Object FullName)
    ResultPath = Join-Path $root 'out' 'TestResults' 'pester.xml'
    Tag        = @($Tag | Where-Object { $_ })
    ExcludeTag = @($ExcludeTag | Where-Object { $_ })
}
$env:PSBACKUP_PESTER_SETTINGS = $settings | ConvertTo-Json -Compress

$runner = {
    # Setup fails loudly (exit 1); the tests themselves run under the default preferences, as they
    # do when a developer calls Invoke-Pester, never under a session-wide ErrorAction Stop.
    $configuration = & {
        $ErrorActionPreference = 'Stop'
        try {
            $settings = $env:PSBACKUP_PESTER_SETTINGS | ConvertFrom-Json
            Import-Module $settings.PesterPath -Force
            $c = New-PesterConfiguration
            $c.Run.Path = [string[]] $settings.TestPath
            $c.Run.PassThru = $true
            $c.Output.CIFormat = 'Auto'
            $c.Output.Verbosity = 'Detailed'
            $c.TestResult.Enabled = $true
            $c.TestResult.OutputFormat = 'NUnitXml'
            $c.TestResult.OutputPath = $settings.ResultPath
            if ($settings.Tag) { $c.Filter.Tag = [string[]] $settings.Tag }
            if ($settings.ExcludeTag) { $c.Filter.ExcludeTag = [string[]] $settings.ExcludeTag }
            $null = New-Item -ItemType Directory -Path (Split-Path -Parent $settings.ResultPath) -Force
            , $c # as one object, never enumerated
        }
        catch {
            Write-Host "FAILED: could not set up Pester: $_" -ForegroundColor Red
            exit 1
        }
    }
    # Not Run.Exit: Pester then exits only on failure, so a run that broke before any test
    # would look green. The result object decides the exit code instead.
    $run = Invoke-Pester -Configuration $configuration
    if ($run -and $run.Result -eq 'Passed') { exit 0 }
    Write-Host "FAILED: Pester result '$($run.Result)': $($run.FailedCount) test(s), $($run.FailedBlocksCount) block(s), $($run.FailedContainersCount) file(s) failed" -ForegroundColor Red
    exit 1
}

$pwsh = [Environment]::ProcessPath
if (-not $pwsh -or [System.IO.Path]::GetFileNameWithoutExtension($pwsh) -ne 'pwsh') {
    $pwsh = (Get-Command pwsh -CommandType Application -ErrorAction Stop | Select-Object -First 1).Source
}
$encoded = [Convert]::ToBase64String([System.Text.Encoding]::Unicode.GetBytes($runner.ToString()))
Invoke-Step 'Invoke-Pester (tests/*.Tests.ps1, fresh pwsh)' {
    & $pwsh -NoProfile -NonInteractive -EncodedCommand $encoded
}

Write-Host 'All builds and tests passed.' -ForegroundColor Green
exit 0
