#Requires -Version 7.4
<#
.SYNOPSIS
    Runs every Pester test (tests/*.Tests.ps1, Integration ones included) against the assembled
    module in out/PSBackup, and prints one closing line "pester: N passed, N failed, N skipped".
.DESCRIPTION
    Called by scripts/test.sh and build.ps1 in a fresh pwsh process, so the freshly built
    PSBackup.dll is the one loaded. Exits 0 only when the run passed and ran at least one test.
    The Windows leg (scripts/wine-test.sh) runs it in pwsh.exe under Wine with -Path (its own test
    files), -SummaryPath (the closing line also written to a file: the terminal Wine's pwsh.exe
    needs mixes escape codes into the output) and -NoTestResult (Pester's NUnit report asks WMI
    for Win32_OperatingSystem on Windows, which never answers under Wine).
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)] [string] $PesterPath,
    [string] $ResultPath = (Join-Path $PSScriptRoot '..' 'out' 'TestResults' 'pester.xml'),
    [string[]] $Tag,
    [string[]] $ExcludeTag,
    [string[]] $Path = @(Get-ChildItem -Path (Join-Path $PSScriptRoot '..' 'tests') -Filter '*.Tests.ps1' -File | ForEach-Object FullName),
    [string] $SummaryPath,
    [switch] $NoTestResult
)

$ErrorActionPreference = 'Stop'
try {
    Import-Module $PesterPath -Force
    $c = New-PesterConfiguration
    $c.Run.Path = [string[]] $Path
    $c.Run.PassThru = $true
    $c.Output.Verbosity = 'Normal'
    $c.Output.RenderMode = 'Plaintext'
    $c.TestResult.Enabled = -not $NoTestResult
    $c.TestResult.OutputFormat = 'NUnitXml'
    $c.TestResult.OutputPath = $ResultPath
    # pwsh -File passes "a,b" as one string: split it.
    if ($Tag) { $c.Filter.Tag = [string[]] ($Tag -split ',') }
    if ($ExcludeTag) { $c.Filter.ExcludeTag = [string[]] ($ExcludeTag -split ',') }
    if (-not $NoTestResult) { $null = New-Item -ItemType Directory -Path (Split-Path -Parent $ResultPath) -Force }
}
catch {
    Write-Host "pester: could not set up Pester: $_"
    exit 1
}
# What clients remember about repositories goes to a folder of this run, not the user's.
if (-not $env:PSBACKUP_STATE_PATH) {
    $env:PSBACKUP_STATE_PATH = Join-Path ([System.IO.Path]::GetTempPath()) "psbackup-pester-state-$PID"
}
# The tests run under the default preferences, as when a developer calls Invoke-Pester.
$ErrorActionPreference = 'Continue'
$run = Invoke-Pester -Configuration $c
if (-not $run) {
    Write-Host 'pester: no result (Pester failed before running tests)'
    exit 1
}
$skipped = $run.SkippedCount + $run.NotRunCount
$summary = "pester: {0} passed, {1} failed, {2} skipped" -f $run.PassedCount, ($run.FailedCount + $run.FailedBlocksCount + $run.FailedContainersCount), $skipped
Write-Host $summary
if ($SummaryPath) { Set-Content -LiteralPath $SummaryPath -Value $summary }
if ($run.Result -eq 'Passed' -and $run.PassedCount -gt 0) { exit 0 }
exit 1
