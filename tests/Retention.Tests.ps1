#Requires -Version 7.4
# Pester 5: Remove-ExpiredBackup (psbackup prune) on a repository, a tenant dir's local object
# backups and a namespace's local backup root, filled from the example databases.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot '..' 'out' 'PSBackup' 'PSBackup.psd1') -Force -ErrorAction Stop
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')

    $script:Fixture = Join-Path $TestDrive 'example'
    New-ExampleDatabase -Path $script:Fixture -Seed 31
    $script:DbRoot = Join-Path $script:Fixture 'shard-db'
    $script:DataDir = Join-Path $script:Fixture 'unison'

    # A repository with three object backups of acme/orders, oldest first.
    $script:Repo = Join-Path $TestDrive 'repos' 'retention'
    $null = Initialize-BackupRepository -Repository $script:Repo -Unencrypted
    $script:Backups = foreach ($i in 1..3) {
        New-ObjectBackup -DbRoot $script:DbRoot -Dir acme -Object orders -Repository $script:Repo
        Start-Sleep -Milliseconds 50
    }
}

AfterAll {
    Remove-Module PSBackup -Force -ErrorAction SilentlyContinue
}

Describe 'Remove-ExpiredBackup' {
    It 'refuses a policy without a rule and touches nothing' {
        $before = Get-TreeState -Path $script:Repo

        { Remove-ExpiredBackup -Repository $script:Repo -Confirm:$false -ErrorAction Stop } |
            Should -Throw -ErrorId 'NoRetentionRule,PSBackup.Commands.RemoveExpiredBackupCommand'
        { Remove-ExpiredBackup -Repository $script:Repo -KeepLast 0 -Confirm:$false -ErrorAction Stop } |
            Should -Throw -ErrorId 'NoRetentionRule,PSBackup.Commands.RemoveExpiredBackupCommand'
        { Remove-ExpiredBackup -Repository $script:Repo -KeepWithin '3m' -Confirm:$false -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidDuration,PSBackup.Commands.RemoveExpiredBackupCommand'

        Get-TreeState -Path $script:Repo | Should -Be $before
    }

    It 'lists with -WhatIf what would go and writes nothing' {
        $before = Get-TreeState -Path $script:Repo

        $items = @(Remove-ExpiredBackup -Repository $script:Repo -KeepLast 1 -PackGracePeriod 0h -WhatIf)

        $items[0] | Should -BeOfType ([PSBackup.Engine.Retention.RetentionItem])
        $objects = @($items | Where-Object Kind -EQ 'ObjectBackup')
        $objects.Count | Should -Be 3
        ($objects | Where-Object Decision -EQ 'Keep').BackupId | Should -Be $script:Backups[2].BackupId
        @($objects | Where-Object Decision -EQ 'Remove').Count | Should -Be 2
        $items.Removed | Should -Not -Contain $true
        Get-TreeState -Path $script:Repo | Should -Be $before
        @(Get-Backup -Repository $script:Repo -Kind object).Count | Should -Be 3
    }

    It 'keeps exactly the -KeepLast newest backups of a repository, which then checks clean' {
        $items = @(Remove-ExpiredBackup -Repository $script:Repo -KeepLast 2 -PackGracePeriod 0h -Confirm:$false)

        $removed = @($items | Where-Object { $_.Kind -eq 'ObjectBackup' -and $_.Removed })
        $removed.BackupId | Should -Be $script:Backups[0].BackupId
        ($items | Where-Object { $_.Kind -eq 'ObjectBackup' -and $_.Decision -eq 'Keep' }).Reason | ForEach-Object { $_ | Should -Match 'last' }
        $left = @(Get-Backup -Repository $script:Repo -Kind object).BackupId | Sort-Object
        $left | Should -Be (@($script:Backups[1].BackupId, $script:Backups[2].BackupId) | Sort-Object)
        (Test-BackupRepository -Repository $script:Repo -ReadData).Passed | Should -BeTrue
    }

    It 'limits a repository prune to one -Dir' {
        $null = New-ObjectBackup -DbRoot $script:DbRoot -Dir globex -Object inventory -Repository $script:Repo
        Start-Sleep -Milliseconds 50
        $null = New-ObjectBackup -DbRoot $script:DbRoot -Dir globex -Object inventory -Repository $script:Repo

        $items = @(Remove-ExpiredBackup -Repository $script:Repo -Dir globex -KeepLast 1 -Confirm:$false)

        @($items | Where-Object Kind -EQ 'ObjectBackup').Dir | Sort-Object -Unique | Should -Be 'globex'
        @($items | Where-Object { $_.Kind -eq 'ObjectBackup' -and $_.Removed }).Count | Should -Be 1
        @(Get-Backup -Repository $script:Repo -Dir acme -Kind object).Count | Should -Be 2
        @(Get-Backup -Repository $script:Repo -Dir globex -Kind object).Count | Should -Be 1
    }

    It 'prunes a tenant dir''s local object backups with -DbRoot and -Dir' {
        $local = foreach ($i in 1..2) {
            New-ObjectBackup -DbRoot $script:DbRoot -Dir acme -Object customers
            Start-Sleep -Milliseconds 1100 # local backup folders are named to the second
        }

        $items = @(Remove-ExpiredBackup -DbRoot $script:DbRoot -Dir acme -Object customers -KeepLast 1 -Confirm:$false)

        @($items | Where-Object Removed).Count | Should -Be 1
        Join-Path $script:DbRoot 'acme' $local[0].BackupName | Should -Not -Exist
        Join-Path $script:DbRoot 'acme' $local[1].BackupName | Should -Exist
    }

    It 'lists a namespace''s local snapshots with -DataDir and -Namespace under -WhatIf' {
        $null = New-StoreSnapshot -DataDir $script:DataDir -Namespace users -Path 'snapshots/users-old.db'
        Start-Sleep -Milliseconds 50
        $null = New-StoreSnapshot -DataDir $script:DataDir -Namespace users -Path 'snapshots/users-new.db'
        $backups = Join-Path $script:DataDir 'backups' 'users'
        $before = Get-TreeState -Path $backups

        $items = @(Remove-ExpiredBackup -DataDir $script:DataDir -Namespace users -KeepLast 1 -WhatIf)

        $snapshots = @($items | Where-Object Kind -EQ 'Snapshot')
        ($snapshots | Where-Object Decision -EQ 'Keep').Id | Should -Contain 'snapshots/users-new.db'
        ($snapshots | Where-Object Decision -EQ 'Remove').Id | Should -Contain 'snapshots/users-old.db'
        $items.Removed | Should -Not -Contain $true
        Get-TreeState -Path $backups | Should -Be $before
    }

    It 'does not mix a local object scope with a namespace, nor two sources' {
        { Remove-ExpiredBackup -DbRoot $script:DbRoot -Dir acme -Namespace users -KeepLast 1 -ErrorAction Stop } |
            Should -Throw -ErrorId 'ScopeMismatch,PSBackup.Commands.RemoveExpiredBackupCommand'
        { Remove-ExpiredBackup -DbRoot $script:DbRoot -DataDir $script:DataDir -Dir acme -KeepLast 1 -ErrorAction Stop } |
            Should -Throw -ErrorId 'AmbiguousBackupSource,PSBackup.Commands.RemoveExpiredBackupCommand'
    }
}
