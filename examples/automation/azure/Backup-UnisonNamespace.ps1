#Requires -Version 7.4
#Requires -Modules PSBackup
<#
.SYNOPSIS
    Azure Automation runbook (PowerShell 7.4): ships a UnisonDB namespace's WAL (and, when asked, a
    store snapshot) into an Azure Blob Storage repository with the Automation account's managed
    identity, then checks the backups' health. The job fails when any step fails or health is
    Critical, so the job history and alerts on failed jobs say so.

.DESCRIPTION
    Runs on a Hybrid Runbook Worker (the machine that holds the data directory). Set up once:
      * import the module zip from `./build.ps1 -Package` (Modules > Add a module, runtime 7.4);
      * Automation variables: PSBackupDataDir (e.g. /var/unison/data), PSBackupNamespace (users),
        PSBackupRepository (az://account/container/prefix);
      * an Automation credential PSBackupPassphrase whose password is the repository passphrase
        (or, for a repository made with a key file, a credential whose password is the key file's
        text from New-BackupKeyFile: run with -KeyName <its name> -KeyFileText);
      * the Automation account's managed identity (system-assigned, or user-assigned with
        AZURE_CLIENT_ID set on the worker) with 'Storage Blob Data Contributor' on the container.
    No storage secret is stored anywhere: the identity's token is fetched on each run.
    The repository must exist (Initialize-BackupRepository, once, by an operator).

.PARAMETER Snapshot
    Also take a store snapshot (schedule a daily run with it, the WAL every 15 minutes without).

.PARAMETER KeyName
    The Automation credential that holds the repository's key (default PSBackupPassphrase).

.PARAMETER KeyFileText
    The credential's password is a key file's text (New-BackupKeyFile), not a passphrase.
#>
param(
    [switch] $Snapshot,
    [string] $MaxAge = '24h',
    [string] $KeyName = 'PSBackupPassphrase',
    [switch] $KeyFileText
)

$ErrorActionPreference = 'Stop'
Import-Module PSBackup

$dataDir = Get-AutomationVariable -Name 'PSBackupDataDir'
$namespace = Get-AutomationVariable -Name 'PSBackupNamespace'
$repository = Get-AutomationVariable -Name 'PSBackupRepository'
$stored = Get-AutomationPSCredential -Name $KeyName
if (-not $stored) {
    throw "The Automation credential '$KeyName' does not exist. Create it (Shared Resources > Credentials) with the repository's passphrase or key file text as its password."
}
$key = if ($KeyFileText) { @{ KeyFile = $stored.Password } } else { @{ Passphrase = $stored.Password } }

Write-Output "Shipping the WAL of '$namespace' to $repository"
$shipped = @(Invoke-WalShip -DataDir $dataDir -Namespace $namespace -Repository $repository @key)
Write-Output ("{0} segment(s) shipped, {1} new" -f $shipped.Count, @($shipped | Where-Object { -not $_.AlreadyPresent }).Count)
if ($Snapshot) {
    $snap = New-StoreSnapshot -DataDir $dataDir -Namespace $namespace -Repository $repository @key
    Write-Output "Snapshot $($snap.Path) stored as $($snap.BackupId)"
}

# Each alert goes to the job's output; a Critical one fails the job.
Get-BackupHealth -Repository $repository -Namespace $namespace -MaxAge $MaxAge -FailOnCritical @key |
    ForEach-Object { Write-Output "health: $($_.Severity) $($_.Code): $($_.Message)" }
Write-Output 'healthy'
