#Requires -Version 7.4
# Pester 5: Remove-Backup (psbackup remove): named backups of a repository, a namespace's local
# backup root and a tenant dir's local object backups; piped from Get-Backup; chain-aware.

BeforeAll {
    $env:PSBACKUP_AUDIT_LOG = Join-Path $TestDrive 'audit.jsonl'
    Import-Module (Join-Path $PSScriptRoot '..' 'out' 'PSBackup' 'PSBackup.psd1') -Force -ErrorAction Stop
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')

    $script:Fixture = Join-Path $TestDrive 'example'
    New-ExampleDatabase -Path $script:Fixture -Seed 37
    $script:DbRoot = Join-Path $script:Fixture 'shard-db'
    $script:DataDir = Join-Path $script:Fixture 'unison'

    $script:Repo = Join-Path $TestDrive 'repos' 'remove'
    $null = Initialize-BackupRepository -Repository $script:Repo -Unencrypted
    $script:Orders = @(foreach ($i in 1..3) { New-ObjectBackup -DbRoot $script:DbRoot -Dir acme -Object orders -Repository $script:Repo })
    $script:Snapshot = New-StoreSnapshot -DataDir $script:DataDir -Namespace users -Repository $script:Repo
    $script:Segments = @(Invoke-WalShip -DataDir $script:DataDir -Namespace users -Repository $script:Repo)
}

AfterAll {
    Remove-Item Env:PSBACKUP_AUDIT_LOG -ErrorAction SilentlyContinue
    Remove-Module PSBackup -Force -ErrorAction SilentlyContinue
}

Describe 'Remove-Backup from a repository' {
    It 'previews with -WhatIf and removes nothing' {
        $before = Get-TreeState -Path $script:Repo
        $items = @(Remove-Backup -Repository $script:Repo -BackupId $script:Orders[0].BackupId -WhatIf)
        $items.Count | Should -Be 1
        $items[0] | Should -BeOfType ([PSBackup.Engine.Retention.RetentionItem])
        $items[0].Removed | Should -BeFalse
        $items[0].Decision | Should -Be 'Remove'
        Get-TreeState -Path $script:Repo | Should -Be $before
    }

    It 'removes the backups piped from Get-Backup, in one step, and the repository checks clean' {
        $keep = Get-Backup -Repository $script:Repo -Dir acme -Object orders | Select-Object -First 1
        $items = @(Get-Backup -Repository $script:Repo -Dir acme -Object orders | Select-Object -Skip 1 | Remove-Backup -Confirm:$false)
        @($items | Where-Object Kind -EQ 'ObjectBackup').Count | Should -Be 2
        $items | Where-Object Kind -EQ 'ObjectBackup' | ForEach-Object { $_.Removed | Should -BeTrue }
        @(Get-Backup -Repository $script:Repo -Dir acme -Object orders).BackupId | Should -Be @($keep.BackupId)
        (Test-BackupRepository -Repository $script:Repo -ReadData).Passed | Should -BeTrue
    }

    It 'reclaims the packs only the removed backup used' {
        $backup = New-ObjectBackup -DbRoot $script:DbRoot -Dir globex -Object inventory -Repository $script:Repo
        $packsBefore = @(Get-ChildItem -LiteralPath (Join-Path $script:Repo 'packs') -Recurse -File).Count
        $items = @(Remove-Backup -Repository $script:Repo -BackupId $backup.BackupId -PackGracePeriod 0h -Confirm:$false)
        $packs = @($items | Where-Object Kind -EQ 'Pack')
        $packs.Count | Should -BeGreaterThan 0
        $packs | ForEach-Object { $_.Removed | Should -BeTrue }
        @(Get-ChildItem -LiteralPath (Join-Path $script:Repo 'packs') -Recurse -File).Count | Should -Be ($packsBefore - $packs.Count)
        (Test-BackupRepository -Repository $script:Repo -ReadData).Passed | Should -BeTrue
        # What acme/orders still uses stayed.
        @(Get-Backup -Repository $script:Repo -Dir acme -Object orders).Count | Should -Be 1
    }

    It 'refuses to remove the last snapshot of a namespace without -Force, and writes nothing' {
        $before = Get-TreeState -Path $script:Repo
        { Remove-Backup -Repository $script:Repo -BackupId $script:Snapshot.BackupId -Confirm:$false -ErrorAction Stop } |
            Should -Throw -ErrorId 'PitrChainBreak,PSBackup.Commands.RemoveBackupCommand'
        Get-TreeState -Path $script:Repo | Should -Be $before
    }

    It 'previews a chain-breaking removal under -WhatIf without error, saying it needs -Force' {
        $items = @(Remove-Backup -Repository $script:Repo -BackupId $script:Snapshot.BackupId -WhatIf -WarningVariable warned -WarningAction SilentlyContinue)
        $items[0].Removed | Should -BeFalse
        $items[0].Reason | Should -Match 'needs -Force'
        "$warned" | Should -Match 'point-in-time chain'
    }

    It 'removes WAL segments no snapshot needs for point-in-time restore' {
        # The snapshot's replay starts after its applied index: segments ending before it are history.
        $start = $script:Snapshot.WalPosition.AppliedLogIndex + 1
        $old = @(Get-Backup -Repository $script:Repo -Namespace users -Kind WalSegment | Where-Object { $_.FirstLogIndex + $_.EntryCount - 1 -lt $start })
        $old.Count | Should -BeGreaterThan 0
        $items = @($old | Remove-Backup -Confirm:$false)
        @($items | Where-Object Kind -EQ 'WalSegment' | Where-Object Removed).Count | Should -Be $old.Count
        $plan = Restore-PointInTime -Repository $script:Repo -Namespace users -TargetLogIndex $script:Snapshot.WalPosition.AppliedLogIndex `
            -TargetDataDir (Join-Path $TestDrive 'pitr') -WhatIf
        $plan.Snapshot.Id | Should -Be $script:Snapshot.BackupId
    }

    It 'removes the last snapshot with -Force' {
        $items = @(Remove-Backup -Repository $script:Repo -BackupId $script:Snapshot.BackupId -Force -Confirm:$false -WarningAction SilentlyContinue)
        $items[0].Removed | Should -BeTrue
        $items[0].Reason | Should -Match '-Force'
        @(Get-Backup -Repository $script:Repo -Kind StoreSnapshot).Count | Should -Be 0
    }

    It 'names backups the repository does not hold, and refuses what is not an id' {
        { Remove-Backup -Repository $script:Repo -BackupId ('0' * 64) -Confirm:$false -ErrorAction Stop } |
            Should -Throw -ErrorId 'BackupNotFound,PSBackup.Commands.RemoveBackupCommand'
        { Remove-Backup -Repository $script:Repo -BackupId 'latest' -Confirm:$false -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidBackupId,PSBackup.Commands.RemoveBackupCommand'
    }

    It 'has ConfirmImpact High and binds BackupId and Repository by property name' {
        $command = Get-Command Remove-Backup
        $command.ImplementingType.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $false)[0].ConfirmImpact |
            Should -Be ([System.Management.Automation.ConfirmImpact]::High)
        foreach ($name in 'BackupId', 'Repository', 'DataDir', 'Namespace', 'DbRoot', 'Dir') {
            $command.Parameters[$name].Attributes.Where({ $_ -is [System.Management.Automation.ParameterAttribute] }).ValueFromPipelineByPropertyName |
                Should -Contain $true
        }
    }
}

Describe 'Remove-Backup of local backups' {
    It 'removes a local object backup folder piped from Get-Backup, manifest included' {
        $local = New-ObjectBackup -DbRoot $script:DbRoot -Dir acme -Object customers
        $items = @(Get-Backup -DbRoot $script:DbRoot -Dir acme -Object customers | Remove-Backup -Confirm:$false)
        $items.Count | Should -Be 1
        $items[0].Removed | Should -BeTrue
        $local.BackupPath | Should -Not -Exist
        $local.ManifestPath | Should -Not -Exist
    }

    It 'removes one of two local snapshots of a namespace, and refuses the last one' {
        $a = New-StoreSnapshot -DataDir $script:DataDir -Namespace events -Path 'snapshots/a.snapshot'
        $b = New-StoreSnapshot -DataDir $script:DataDir -Namespace events -Path 'snapshots/b.snapshot'
        $items = @(Remove-Backup -DataDir $script:DataDir -Namespace events -BackupId 'snapshots/a.snapshot' -Confirm:$false)
        $items[0].Removed | Should -BeTrue
        $a.Path | Should -Not -Exist
        { Remove-Backup -DataDir $script:DataDir -Namespace events -BackupId 'snapshots/b.snapshot' -Confirm:$false -ErrorAction Stop } |
            Should -Throw -ErrorId 'PitrChainBreak,PSBackup.Commands.RemoveBackupCommand'
        $b.Path | Should -Exist
    }

    It 'refuses a source that is ambiguous or missing' {
        { Remove-Backup -BackupId x -Confirm:$false -ErrorAction Stop } |
            Should -Throw -ErrorId 'AmbiguousBackupSource,PSBackup.Commands.RemoveBackupCommand'
        { Remove-Backup -DbRoot $script:DbRoot -Dir acme -BackupId 'orders.backup-20000101T000000' -Confirm:$false -ErrorAction Stop } |
            Should -Throw -ErrorId 'BackupNotFound,PSBackup.Commands.RemoveBackupCommand'
        { Remove-Backup -DbRoot $script:DbRoot -Dir acme -BackupId 'x' -PackGracePeriod 1h -Confirm:$false -ErrorAction Stop } |
            Should -Throw -ErrorId 'RepositoryOptionWithoutRepository,PSBackup.Commands.RemoveBackupCommand'
    }
}
