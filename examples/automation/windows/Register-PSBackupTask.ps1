#Requires -Version 7.4
#Requires -RunAsAdministrator
<#
.SYNOPSIS
    Registers the PSBackup job (PSBackupJob.ps1 beside this script) with Windows Task Scheduler,
    running as a service account whether or not anyone is logged on.

.DESCRIPTION
    The task runs
        pwsh.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -File PSBackupJob.ps1 ...
    every -Interval (default 15 minutes) and, with -SnapshotAt, once a day with -Snapshot.
    Give -Account as a group Managed Service Account ('DOMAIN\svc-psbackup$', no password stored)
    or 'NT AUTHORITY\SYSTEM'; any other account is asked for its password (stored by Task
    Scheduler). The account needs read access to the data directory, write access to the
    repository and the log folder, and read access to the key file (New-BackupKeyFile, made by
    that account or with its ACL granted to it).

    Exit codes the task reports as "Last Run Result" (see PSBackupJob.ps1):
      0  success and healthy        1  a backup step failed        2  unhealthy (Critical alert)
    A task that is still running when the next run is due is not started twice
    (MultipleInstances IgnoreNew). Each run appends to the job log (-LogPath, default
    %ProgramData%\PSBackup\job.log); the PSBackup audit log and the repository's history hold
    every operation; Get-BackupHealth / Export-BackupMetric read them.

.EXAMPLE
    .\Register-PSBackupTask.ps1 -DataDir D:\unison\data -Namespace users -Repository \\backup01\psbackup\db1 `
        -KeyFile C:\ProgramData\PSBackup\repo.key -Account 'CONTOSO\svc-psbackup$' -SnapshotAt 01:30
#>
[CmdletBinding(SupportsShouldProcess)]
param(
    [Parameter(Mandatory)] [string] $DataDir,
    [Parameter(Mandatory)] [string] $Namespace,
    [Parameter(Mandatory)] [string] $Repository,
    [string] $KeyFile,
    [string] $Account = 'NT AUTHORITY\SYSTEM',
    [timespan] $Interval = '00:15:00',
    [Nullable[datetime]] $SnapshotAt,
    [string] $TaskName = "PSBackup $Namespace",
    [string] $LogPath = (Join-Path $env:ProgramData 'PSBackup' 'job.log')
)

$ErrorActionPreference = 'Stop'
if (-not (Get-Command Register-ScheduledTask -ErrorAction SilentlyContinue)) {
    throw 'Register-ScheduledTask is not available: run this on Windows (the ScheduledTasks module).'
}
$job = Join-Path $PSScriptRoot 'PSBackupJob.ps1'
$pwsh = (Get-Command pwsh.exe).Source
function New-JobAction([switch] $Snapshot) {
    $arguments = @('-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-File', "`"$job`"",
        '-DataDir', "`"$DataDir`"", '-Namespace', $Namespace, '-Repository', "`"$Repository`"", '-LogPath', "`"$LogPath`"")
    if ($KeyFile) { $arguments += @('-KeyFile', "`"$KeyFile`"") }
    if ($Snapshot) { $arguments += '-Snapshot' }
    New-ScheduledTaskAction -Execute $pwsh -Argument ($arguments -join ' ') -WorkingDirectory $PSScriptRoot
}

$settings = New-ScheduledTaskSettingsSet -MultipleInstances IgnoreNew -StartWhenAvailable -ExecutionTimeLimit (New-TimeSpan -Hours 4)
$principal = if ($Account -match '\$$') {
    New-ScheduledTaskPrincipal -UserId $Account -LogonType Password -RunLevel Limited   # gMSA: no password stored
}
elseif ($Account -in 'NT AUTHORITY\SYSTEM', 'SYSTEM') {
    New-ScheduledTaskPrincipal -UserId 'SYSTEM' -LogonType ServiceAccount -RunLevel Highest
}
else {
    $null
}
$trigger = New-ScheduledTaskTrigger -Once -At (Get-Date).Date -RepetitionInterval $Interval
$tasks = @(@{ Name = $TaskName; Action = (New-JobAction); Trigger = $trigger })
if ($SnapshotAt) {
    $tasks += @{ Name = "$TaskName (snapshot)"; Action = (New-JobAction -Snapshot); Trigger = (New-ScheduledTaskTrigger -Daily -At $SnapshotAt) }
}
foreach ($t in $tasks) {
    if ($PSCmdlet.ShouldProcess($t.Name, "Register scheduled task running as $Account")) {
        if ($principal) {
            Register-ScheduledTask -TaskName $t.Name -Action $t.Action -Trigger $t.Trigger -Settings $settings -Principal $principal -Force
        }
        else {
            $credential = Get-Credential -UserName $Account -Message "Password of $Account for the task '$($t.Name)'"
            Register-ScheduledTask -TaskName $t.Name -Action $t.Action -Trigger $t.Trigger -Settings $settings `
                -User $Account -Password $credential.GetNetworkCredential().Password -RunLevel Limited -Force
        }
    }
}
