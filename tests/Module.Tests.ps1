#Requires -Version 7.4
# Pester 5: the assembled module (out/PSBackup) as PowerShell sees it.

BeforeAll {
    $script:ModuleDir = Join-Path $PSScriptRoot '..' 'out' 'PSBackup'
    Import-Module (Join-Path $script:ModuleDir 'PSBackup.psd1') -Force -ErrorAction Stop
    $script:Cmdlets = @(
        'Clear-StaleArtifact'
        'Get-Backup'
        'Get-WalSegment'
        'Initialize-BackupRepository'
        'Invoke-WalShip'
        'New-BackupKeyFile'
        'New-ObjectBackup'
        'New-StoreSnapshot'
        'Remove-ExpiredBackup'
        'Remove-Backup'
        'Restore-ObjectBackup'
        'Restore-PointInTime'
        'Restore-StoreSnapshot'
        'Sync-BackupRepository'
        'Test-BackupRepository'
        'Repair-BackupRepository'
        'Test-Restore'
        'Get-BackupHealth'
        'Export-BackupMetric'
    )
}

AfterAll {
    Remove-Module PSBackup -Force -ErrorAction SilentlyContinue
}

Describe 'PSBackup module' {
    It 'has a valid manifest that needs PowerShell 7.4 Core' {
        $manifest = Test-ModuleManifest -Path (Join-Path $script:ModuleDir 'PSBackup.psd1') -ErrorAction Stop
        $manifest.PowerShellVersion | Should -Be ([version]'7.4')
        $manifest.CompatiblePSEditions | Should -Be @('Core')
        $manifest.Version | Should -BeGreaterThan ([version]'0.0.0')
    }

    It 'exports exactly its cmdlets and nothing else' {
        $module = Get-Module PSBackup
        @($module.ExportedCmdlets.Keys | Sort-Object) | Should -Be @($script:Cmdlets | Sort-Object)
        $module.ExportedFunctions.Count | Should -Be 0
        $module.ExportedAliases.Count | Should -Be 0
        $module.ExportedVariables.Count | Should -Be 0
    }

    It '<Name> is a compiled cmdlet in PSBackup.Commands' -ForEach @(
        @{ Name = 'Clear-StaleArtifact' }
        @{ Name = 'Get-Backup' }
        @{ Name = 'Get-WalSegment' }
        @{ Name = 'Initialize-BackupRepository' }
        @{ Name = 'Invoke-WalShip' }
        @{ Name = 'New-BackupKeyFile' }
        @{ Name = 'New-ObjectBackup' }
        @{ Name = 'New-StoreSnapshot' }
        @{ Name = 'Remove-ExpiredBackup' }
        @{ Name = 'Remove-Backup' }
        @{ Name = 'Restore-ObjectBackup' }
        @{ Name = 'Restore-PointInTime' }
        @{ Name = 'Restore-StoreSnapshot' }
        @{ Name = 'Sync-BackupRepository' }
        @{ Name = 'Test-BackupRepository' }
        @{ Name = 'Repair-BackupRepository' }
        @{ Name = 'Test-Restore' }
        @{ Name = 'Get-BackupHealth' }
        @{ Name = 'Export-BackupMetric' }
    ) {
        $command = Get-Command -Name $Name -Module PSBackup -ErrorAction Stop
        $command.CommandType | Should -Be 'Cmdlet'
        $command.ImplementingType.FullName | Should -Be ("PSBackup.Commands.{0}Command" -f ($Name -replace '-', ''))
        $command.OutputType.Count | Should -BeGreaterThan 0
    }

    It '<Name> supports -WhatIf and -Confirm' -ForEach @(
        @{ Name = 'Clear-StaleArtifact' }
        @{ Name = 'Initialize-BackupRepository' }
        @{ Name = 'Invoke-WalShip' }
        @{ Name = 'New-BackupKeyFile' }
        @{ Name = 'New-ObjectBackup' }
        @{ Name = 'New-StoreSnapshot' }
        @{ Name = 'Remove-ExpiredBackup' }
        @{ Name = 'Remove-Backup' }
        @{ Name = 'Restore-ObjectBackup' }
        @{ Name = 'Restore-PointInTime' }
        @{ Name = 'Restore-StoreSnapshot' }
        @{ Name = 'Sync-BackupRepository' }
        @{ Name = 'Repair-BackupRepository' }
        @{ Name = 'Test-Restore' }
        @{ Name = 'Export-BackupMetric' }
    ) {
        $parameters = (Get-Command -Name $Name -Module PSBackup).Parameters
        $parameters.Keys | Should -Contain 'WhatIf'
        $parameters.Keys | Should -Contain 'Confirm'
    }

    It '<Name> only reads, so it has no -WhatIf' -ForEach @(
        @{ Name = 'Get-WalSegment' }
        @{ Name = 'Get-Backup' }
        @{ Name = 'Test-BackupRepository' }
        @{ Name = 'Get-BackupHealth' }
    ) {
        (Get-Command -Name $Name -Module PSBackup).Parameters.Keys | Should -Not -Contain 'WhatIf'
    }

    It '<Name> has ConfirmImpact High' -ForEach @(
        @{ Name = 'Restore-ObjectBackup' }
        @{ Name = 'Restore-PointInTime' }
        @{ Name = 'Restore-StoreSnapshot' }
        @{ Name = 'Clear-StaleArtifact' }
        @{ Name = 'Remove-ExpiredBackup' }
        @{ Name = 'Remove-Backup' }
        @{ Name = 'Repair-BackupRepository' }
    ) {
        $type = (Get-Command -Name $Name -Module PSBackup).ImplementingType
        $attribute = $type.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $false)[0]
        $attribute.ConfirmImpact | Should -Be ([System.Management.Automation.ConfirmImpact]::High)
    }

    It 'has the parameters of SPEC 2' -ForEach @(
        @{ Name = 'New-ObjectBackup'; Parameters = 'DbRoot', 'Dir', 'Object', 'QuiesceScript', 'ResumeScript', 'HistoryPath' }
        @{ Name = 'Restore-ObjectBackup'; Parameters = 'DbRoot', 'Dir', 'Object', 'From', 'Repository', 'BackupId', 'Force', 'Passphrase', 'KeyFile', 'HistoryPath' }
        @{ Name = 'Clear-StaleArtifact'; Parameters = 'Root' }
        @{ Name = 'Get-WalSegment'; Parameters = 'DataDir', 'Namespace', 'SegmentId' }
        @{ Name = 'Invoke-WalShip'; Parameters = 'DataDir', 'Namespace', 'BackupDir', 'AfterSegmentId' }
        @{ Name = 'New-StoreSnapshot'; Parameters = 'DataDir', 'Namespace', 'Path' }
        @{ Name = 'Initialize-BackupRepository'; Parameters = 'Repository', 'Endpoint', 'Region', 'AccessKey', 'SecretKey', 'Profile', 'Passphrase', 'KeyFile' }
        @{ Name = 'Get-Backup'; Parameters = 'Repository', 'DataDir', 'DbRoot', 'Namespace', 'Dir', 'Object', 'Kind', 'After', 'Before', 'Passphrase' }
        @{ Name = 'Test-BackupRepository'; Parameters = 'Repository', 'ReadData', 'Endpoint', 'Passphrase', 'KeyFile' }
        @{ Name = 'Repair-BackupRepository'; Parameters = 'Repository', 'SourcePath', 'ReadData', 'Endpoint', 'Passphrase', 'KeyFile' }
        @{ Name = 'Sync-BackupRepository'; Parameters = 'Source', 'Destination', 'Endpoint', 'Passphrase', 'KeyFile' }
        @{ Name = 'Restore-StoreSnapshot'; Parameters = 'DataDir', 'Namespace', 'Snapshot', 'Repository', 'BackupId', 'TargetDataDir', 'Force' }
        @{ Name = 'Restore-PointInTime'; Parameters = 'DataDir', 'Namespace', 'Repository', 'TargetTime', 'TargetLogIndex', 'TargetDataDir', 'Force' }
        @{ Name = 'Test-Restore'; Parameters = 'DataDir', 'Namespace', 'Repository', 'BackupId', 'Snapshot', 'TargetTime', 'TargetLogIndex', 'ScratchPath', 'Keep', 'ValidationScript' }
        @{ Name = 'Remove-Backup'; Parameters = 'Repository', 'DataDir', 'Namespace', 'DbRoot', 'Dir', 'BackupId', 'Force', 'Passphrase' }
        @{ Name = 'Remove-ExpiredBackup'; Parameters = 'Repository', 'DataDir', 'DbRoot', 'Namespace', 'Dir', 'Object', 'KeepLast', 'KeepHourly', 'KeepDaily', 'KeepWeekly', 'KeepMonthly', 'KeepYearly', 'KeepWithin', 'PackGracePeriod', 'Passphrase' }
        @{ Name = 'Get-BackupHealth'; Parameters = 'Repository', 'DataDir', 'HistoryPath', 'Namespace', 'MaxAge', 'SizeChangeThreshold', 'FailureThreshold', 'MaxRestoreTestAge' }
        @{ Name = 'Export-BackupMetric'; Parameters = 'Repository', 'DataDir', 'HistoryPath', 'Namespace', 'Path' }
    ) {
        $keys = (Get-Command -Name $Name -Module PSBackup).Parameters.Keys
        foreach ($parameter in $Parameters) {
            $keys | Should -Contain $parameter
        }
    }

    It 'takes script blocks for the quiesce hooks' {
        $parameters = (Get-Command New-ObjectBackup).Parameters
        $parameters['QuiesceScript'].ParameterType | Should -Be ([scriptblock])
        $parameters['ResumeScript'].ParameterType | Should -Be ([scriptblock])
    }

    It 'lets -From bind from a BackupName property' {
        $from = (Get-Command Restore-ObjectBackup).Parameters['From']
        $from.Aliases | Should -Contain 'BackupName'
        $from.Attributes.Where({ $_ -is [System.Management.Automation.ParameterAttribute] }).ValueFromPipelineByPropertyName | Should -Contain $true
    }

    It 'has a table view for <TypeName>' -ForEach @(
        @{ TypeName = 'PSBackup.Engine.ObjectStore.ObjectBackupResult' }
        @{ TypeName = 'PSBackup.Engine.ObjectStore.ObjectRestoreResult' }
        @{ TypeName = 'PSBackup.Engine.ObjectStore.StaleArtifact' }
        @{ TypeName = 'PSBackup.Engine.Repository.KeyFileInfo' }
        @{ TypeName = 'PSBackup.Engine.Wal.WalSegmentInfo' }
        @{ TypeName = 'PSBackup.Engine.Wal.ShippedSegment' }
        @{ TypeName = 'PSBackup.Engine.Snapshots.StoreSnapshotResult' }
        @{ TypeName = 'PSBackup.Engine.Repository.RepositoryInfo' }
        @{ TypeName = 'PSBackup.Engine.Repository.BackupRecord' }
        @{ TypeName = 'PSBackup.Engine.Repository.RepositoryCheckResult' }
        @{ TypeName = 'PSBackup.Engine.Repository.RepairResult' }
        @{ TypeName = 'PSBackup.Engine.Repository.SyncResult' }
        @{ TypeName = 'PSBackup.Engine.Restore.StoreSnapshotRestoreResult' }
        @{ TypeName = 'PSBackup.Engine.Restore.PointInTimeRestoreResult' }
        @{ TypeName = 'PSBackup.Engine.Restore.PointInTimePlan' }
        @{ TypeName = 'PSBackup.Engine.Restore.RestoreDrillResult' }
        @{ TypeName = 'PSBackup.Engine.Retention.RetentionItem' }
        @{ TypeName = 'PSBackup.Engine.Events.HealthAlert' }
        @{ TypeName = 'PSBackup.Engine.Events.MetricExportResult' }
    ) {
        $format = Get-FormatData -TypeName $TypeName
        $format | Should -Not -BeNullOrEmpty
        $table = $format.FormatViewDefinition | Where-Object { $_.Control -is [System.Management.Automation.TableControl] }
        $table | Should -Not -BeNullOrEmpty
        $table.Control.Headers.Count | Should -BeIn (4..6)
    }

    It '<Name> has a Repository parameter set beside its default local one' -ForEach @(
        @{ Name = 'New-ObjectBackup' }
        @{ Name = 'New-StoreSnapshot' }
        @{ Name = 'Invoke-WalShip' }
    ) {
        $command = Get-Command -Name $Name -Module PSBackup
        $command.DefaultParameterSet | Should -Be 'Default'
        $command.ParameterSets.Name | Should -Contain 'Repository'
        $repositorySet = $command.ParameterSets | Where-Object Name -EQ 'Repository'
        ($repositorySet.Parameters | Where-Object Name -EQ 'Repository').IsMandatory | Should -BeTrue
        $repositorySet.Parameters.Name | Should -Contain 'Passphrase'
        $repositorySet.Parameters.Name | Should -Contain 'Endpoint'
    }

    It 'does not ship System.Management.Automation.dll and ships the native SQLite library for this platform' {
        Join-Path $script:ModuleDir 'System.Management.Automation.dll' | Should -Not -Exist
        Join-Path $script:ModuleDir 'dependencies' 'System.Management.Automation.dll' | Should -Not -Exist
        $os = if ($IsWindows) { 'win' } elseif ($IsMacOS) { 'osx' } else { 'linux' }
        $arch = [System.Runtime.InteropServices.RuntimeInformation]::ProcessArchitecture.ToString().ToLowerInvariant()
        $native = Join-Path $script:ModuleDir 'dependencies' 'runtimes' "$os-$arch" 'native'
        @(Get-ChildItem -LiteralPath $native -File -Filter '*e_sqlite3*') | Should -Not -BeNullOrEmpty
    }
}
