#Requires -Version 7.4
<#
.SYNOPSIS
    The scheduled PSBackup job (Task Scheduler, or any `pwsh -NonInteractive -File` host): ships a
    namespace's WAL into a repository, takes a store snapshot when asked, and checks health.

.DESCRIPTION
    Follows the template every unattended PSBackup script should follow:
      * $ErrorActionPreference = 'Stop', so any error (a failed segment, a locked repository, a
        wrong key) ends the job instead of being printed and forgotten; a setup failure (repository
        missing, locked, wrong key) is one terminating error for the whole call anyway, however
        many namespaces or objects are piped in, so the log names it once;
      * nothing prompts: -Force on cmdlets with ConfirmImpact High, keys from a key file or the
        environment, never Read-Host;
      * one try/catch that logs the error and turns it into the exit code.

    Exit codes (what Task Scheduler's "Last Run Result" shows):
      0  success and healthy
      1  a backup step failed (the log has the error record)
      2  the backups ran but health has a Critical alert (Get-BackupHealth -FailOnCritical)
    Every run appends its lines to -LogPath (default: %ProgramData%\PSBackup\job.log, or
    /var/log/psbackup/job.log), and the operations also land in PSBackup's audit log and the
    repository's history that Get-BackupHealth reads.

.EXAMPLE
    pwsh -NoProfile -NonInteractive -File PSBackupJob.ps1 -DataDir D:\unison\data -Namespace users `
        -Repository \\backup01\psbackup\db1 -KeyFile C:\ProgramData\PSBackup\repo.key
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)] [string] $DataDir,
    # One namespace, or several ('users,events'; a comma list, since pwsh -File passes one string).
    [Parameter(Mandatory)] [string[]] $Namespace,
    [Parameter(Mandatory)] [string] $Repository,
    # A key file (New-BackupKeyFile); otherwise PSBACKUP_KEY_FILE / PSBACKUP_PASSPHRASE from the environment.
    [string] $KeyFile,
    # Also take a store snapshot this run (e.g. the daily run).
    [switch] $Snapshot,
    # Health: alert when the newest backup is older than this.
    [string] $MaxAge = '24h',
    [string] $LogPath,
    # Where PSBackup is, when it is not installed in a module path.
    [string] $ModulePath = 'PSBackup'
)

$ErrorActionPreference = 'Stop'
if (-not $LogPath) {
    $base = if ($IsWindows) { Join-Path $env:ProgramData 'PSBackup' } else { '/var/log/psbackup' }
    $LogPath = Join-Path $base 'job.log'
}
$null = New-Item -ItemType Directory -Path (Split-Path -Parent $LogPath) -Force
function Write-JobLog([string] $Message) {
    $line = '{0:yyyy-MM-ddTHH:mm:ssZ} {1}' -f [DateTime]::UtcNow, $Message
    Add-Content -LiteralPath $LogPath -Value $line
    Write-Output $line
}

$keys = @{}
if ($KeyFile) { $keys.KeyFile = $KeyFile }
$names = @($Namespace | ForEach-Object { $_ -split ',' } | ForEach-Object Trim | Where-Object { $_ })
# One input record per namespace: the cmdlets bind DataDir and Namespace from the pipeline.
$targets = $names | ForEach-Object { [pscustomobject]@{ DataDir = $DataDir; Namespace = $_ } }
try {
    Import-Module $ModulePath
    Write-JobLog "start: $($names -join ', ') -> $Repository"
    $shipped = @($targets | Invoke-WalShip -Repository $Repository @keys)
    Write-JobLog "wal: $($shipped.Count) segment(s) shipped"
    if ($Snapshot) {
        $targets | New-StoreSnapshot -Repository $Repository @keys | ForEach-Object {
            Write-JobLog "snapshot: $($_.Path) ($($_.Bytes) bytes)"
        }
    }
}
catch {
    Write-JobLog "FAILED: $($_.FullyQualifiedErrorId): $($_.Exception.Message)"
    exit 1
}
try {
    # Each alert is logged as it is written; -FailOnCritical then throws when one is Critical.
    Get-BackupHealth -Repository $Repository -Namespace $names -MaxAge $MaxAge -FailOnCritical @keys |
        ForEach-Object { Write-JobLog "health: $($_.Severity) $($_.Code): $($_.Message)" }
    Write-JobLog 'done: healthy'
    exit 0
}
catch {
    Write-JobLog "UNHEALTHY: $($_.FullyQualifiedErrorId): $($_.Exception.Message)"
    exit 2
}
