#Requires -Version 7.4
# Pester 5: pipelines between the cmdlets (records bind by property name into the next one) and
# -WhatIf previews that show, never fail, what would need -Force.

BeforeAll {
    $env:PSBACKUP_AUDIT_LOG = Join-Path $TestDrive 'audit.jsonl'
    Import-Module (Join-Path $PSScriptRoot '..' 'out' 'PSBackup' 'PSBackup.psd1') -Force -ErrorAction Stop
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')

    $script:Fixture = Join-Path $TestDrive 'example'
    New-ExampleDatabase -Path $script:Fixture -Seed 47
    $script:DbRoot = Join-Path $script:Fixture 'shard-db'
    $script:DataDir = Join-Path $script:Fixture 'unison'
    $script:Repo = Join-Path $TestDrive 'repo'
    $null = Initialize-BackupRepository -Repository $script:Repo -Unencrypted
    $null = New-ObjectBackup -DbRoot $script:DbRoot -Dir '*' -Object '*' -Repository $script:Repo
}

AfterAll {
    Remove-Item Env:PSBACKUP_AUDIT_LOG -ErrorAction SilentlyContinue
    Remove-Module PSBackup -Force -ErrorAction SilentlyContinue
}

Describe 'Records bind into the next cmdlet' {
    It 'syncs the repository Get-Backup lists, once however many records name it' {
        $offsite = Join-Path $TestDrive 'offsite'
        $results = @(Get-Backup -Repository $script:Repo | Sync-BackupRepository -Destination $offsite)
        $results.Count | Should -Be 1
        $results[0] | Should -BeOfType ([PSBackup.Engine.Repository.SyncResult])
        $results[0].Copied | Should -BeGreaterThan 0
        @(Get-Backup -Repository $offsite).Count | Should -Be @(Get-Backup -Repository $script:Repo).Count
    }

    It 'applies retention to what piped records name, once per object' {
        $null = New-ObjectBackup -DbRoot $script:DbRoot -Dir acme -Object orders -Repository $script:Repo
        $items = @(Get-Backup -Repository $script:Repo -Dir acme -Object orders | Remove-ExpiredBackup -KeepLast 1 -WhatIf)
        $objects = @($items | Where-Object Kind -EQ 'ObjectBackup')
        $objects.Count | Should -Be 2
        @($objects | Where-Object Decision -EQ 'Keep').Count | Should -Be 1
        $objects.Dir | Sort-Object -Unique | Should -Be 'acme'
        $objects.Object | Sort-Object -Unique | Should -Be 'orders'
    }

    It 'takes the scope of retention from a plain object too' {
        $items = @([pscustomobject]@{ Repository = $script:Repo; Dir = 'globex'; Object = 'inventory' } | Remove-ExpiredBackup -KeepLast 1 -WhatIf)
        @($items | Where-Object Kind -EQ 'ObjectBackup').Object | Sort-Object -Unique | Should -Be 'inventory'
    }

    It 'ships WAL and takes snapshots for objects that name DataDir, Namespace and Repository' {
        $jobs = @(
            [pscustomobject]@{ DataDir = $script:DataDir; Namespace = 'users'; Repository = $script:Repo }
            [pscustomobject]@{ DataDir = $script:DataDir; Namespace = 'events'; Repository = $script:Repo }
        )
        $shipped = @($jobs | Invoke-WalShip)
        ($shipped.Namespace | Sort-Object -Unique) | Should -Be @('events', 'users')
        $snapshots = @($jobs | New-StoreSnapshot)
        $snapshots.Count | Should -Be 2
        $snapshots.Repository | Sort-Object -Unique | Should -Be $script:Repo
        @(Get-Backup -Repository $script:Repo -Kind StoreSnapshot).Count | Should -Be 2
    }
}

Describe '-WhatIf previews a restore that would need -Force' {
    BeforeAll {
        # (TestDrive drops what the previous Describe wrote: this block takes its own snapshot.)
        $null = New-StoreSnapshot -DataDir $script:DataDir -Namespace users -Repository $script:Repo
        $script:Into = Join-Path $TestDrive 'restored'
        $null = Restore-StoreSnapshot -Repository $script:Repo -Namespace users -TargetDataDir $script:Into -Confirm:$false
    }

    It 'previews Restore-StoreSnapshot over a non-empty db/ instead of failing' {
        $before = Get-TreeState -Path $script:Into
        $result = Restore-StoreSnapshot -Repository $script:Repo -Namespace users -TargetDataDir $script:Into -WhatIf
        $result | Should -BeNullOrEmpty
        Get-TreeState -Path $script:Into | Should -Be $before
        { Restore-StoreSnapshot -Repository $script:Repo -Namespace users -TargetDataDir $script:Into -Confirm:$false -ErrorAction Stop } |
            Should -Throw -ErrorId 'RestoreTargetNotEmpty,PSBackup.Commands.RestoreStoreSnapshotCommand'
    }

    It 'previews Restore-PointInTime over a non-empty namespace: the plan says it needs -Force' {
        $plan = Restore-PointInTime -Repository $script:Repo -Namespace users -TargetTime (Get-Date) -TargetDataDir $script:Into -WhatIf -WarningAction SilentlyContinue
        $plan | Should -BeOfType ([PSBackup.Engine.Restore.PointInTimePlan])
        $plan.Notes -join ' ' | Should -Match 'needs -Force'
    }

    It 'previews Restore-ObjectBackup over a live object instead of failing' {
        $before = Get-TreeState -Path (Join-Path $script:DbRoot 'acme' 'orders')
        $result = Restore-ObjectBackup -DbRoot $script:DbRoot -Dir acme -Object orders -Repository $script:Repo -WhatIf
        $result | Should -BeNullOrEmpty
        Get-TreeState -Path (Join-Path $script:DbRoot 'acme' 'orders') | Should -Be $before
    }
}
