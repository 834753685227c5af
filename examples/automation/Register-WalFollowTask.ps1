#Requires -Version 7.4
<#
.SYNOPSIS
    Registers a Windows scheduled task that runs Invoke-WalShip -Continuous for one namespace at
    start-up (issue 16: continuous WAL shipping), restarting it if it ever ends.
.DESCRIPTION
    The task runs pwsh as the given account at boot, imports PSBackup and ships the namespace's
    WAL (partials of the active segment and sealed segments) to -Repository every -Interval until
    the task is stopped. Stopping the task (Stop-ScheduledTask, a shutdown) ends pwsh; whatever was
    in flight is left uncommitted (temp names, manifests before refs) and the next start goes on.
    The repository passphrase is read by PSBackup from PSBACKUP_PASSPHRASE or PSBACKUP_KEY_FILE in
    the account's environment; it is never put on the command line.
.EXAMPLE
    ./Register-WalFollowTask.ps1 -DataDir D:\unisondb -Namespace users -Repository s3://backups/unisondb -Interval 5s -User 'NT SERVICE\UnisonDB'
#>
[CmdletBinding(SupportsShouldProcess)]
param(
    [Parameter(Mandatory)] [string] $DataDir,
    [Parameter(Mandatory)] [string] $Namespace,
    [Parameter(Mandatory)] [string] $Repository,
    [string] $Interval = '5s',
    [string] $User = 'SYSTEM',
    [string] $TaskName = "PSBackup WAL follow ($Namespace)",
    # Where Start-Transcript keeps the log of shipped items and warnings (lag lines need -Verbose).
    [string] $LogDir = (Join-Path $env:ProgramData 'PSBackup\logs')
)

$ErrorActionPreference = 'Stop'
$pwsh = (Get-Command pwsh).Source
$log = Join-Path $LogDir "wal-follow-$Namespace.log"
$command = "Import-Module PSBackup; Start-Transcript -Path '$log' -Append | Out-Null; " +
    "Invoke-WalShip -DataDir '$DataDir' -Namespace '$Namespace' -Repository '$Repository' -Continuous -Interval '$Interval' -Verbose"
$action = New-ScheduledTaskAction -Execute $pwsh -Argument "-NoProfile -NonInteractive -Command `"$command`""
$trigger = New-ScheduledTaskTrigger -AtStartup
# No time limit (it runs for days), restart every minute if it ends, never two at once.
$settings = New-ScheduledTaskSettingsSet -ExecutionTimeLimit ([TimeSpan]::Zero) -RestartCount 999 -RestartInterval (New-TimeSpan -Minutes 1) `
    -MultipleInstances IgnoreNew -StartWhenAvailable -AllowStartIfOnBatteries -DontStopIfGoingOnBatteries
$principal = New-ScheduledTaskPrincipal -UserId $User -LogonType ServiceAccount -RunLevel Limited

if ($PSCmdlet.ShouldProcess($TaskName, 'Register scheduled task')) {
    $null = New-Item -ItemType Directory -Path $LogDir -Force
    Register-ScheduledTask -TaskName $TaskName -Action $action -Trigger $trigger -Settings $settings -Principal $principal -Force |
        Select-Object TaskName, State
    Start-ScheduledTask -TaskName $TaskName
}
