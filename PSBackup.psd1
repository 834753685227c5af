#
# Source manifest of the PSBackup module. The build (src/PSBackup/PSBackup.csproj, target
# AssemblePSBackupModule) copies it into out/PSBackup/ with ModuleVersion set from
# Directory.Build.props; import the assembled module, never this file.
#
@{
    RootModule           = 'PSBackup.psm1'
    ModuleVersion        = '0.0.0'
    GUID                 = '6f0b7c1e-5a3d-4f47-9d2e-2b8f3c4a9e61'
    Author               = 'PSBackup contributors'
    CompanyName          = 'PSBackup contributors'
    Copyright            = '(c) PSBackup contributors. All rights reserved.'
    Description          = 'Backup, WAL archiving and point-in-time restore for file-based databases: verified, pipeline-friendly cmdlets over the PSBackup engine.'
    PowerShellVersion    = '7.4'
    CompatiblePSEditions = @('Core')
    FormatsToProcess     = @('PSBackup.Format.ps1xml')
    CmdletsToExport      = @(
        'New-ObjectBackup'
        'New-BackupKeyFile'
        'Restore-ObjectBackup'
        'Clear-StaleArtifact'
        'Get-WalSegment'
        'Invoke-WalShip'
        'New-StoreSnapshot'
        'Initialize-BackupRepository'
        'Get-Backup'
        'Test-BackupRepository'
        'Repair-BackupRepository'
        'Sync-BackupRepository'
        'Restore-StoreSnapshot'
        'Restore-PointInTime'
        'Test-Restore'
        'Remove-ExpiredBackup'
        'Remove-Backup'
        'Get-BackupHealth'
        'Export-BackupMetric'
    )
    FunctionsToExport    = @()
    VariablesToExport    = @()
    AliasesToExport      = @()
    PrivateData          = @{
        PSData = @{
            # Platform tags name only what is tested: Linux on every CI run, Windows under Wine (the
            # CLI, chosen test classes and the module in pwsh.exe, scripts/wine-test.sh). macOS builds ship but are untested,
            # so there is no MacOS tag (docs/platforms.md says exactly what runs where).
            Tags         = @('Backup', 'Restore', 'WAL', 'PITR', 'SQLite', 'Database', 'PSEdition_Core', 'Windows', 'Linux')
            ReleaseNotes = 'Tested: Linux x64 (all tests, both zstd codecs); Windows x64 under Wine 8 (CLI scenarios, the module in PowerShell for Windows, chosen test classes). Untested: real Windows, Azure Automation sandboxes, macOS. See docs/platforms.md.'
        }
    }
}
