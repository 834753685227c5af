#Requires -Version 7.4
# Pester 5: Get-Backup, Test-BackupRepository and Sync-BackupRepository against repositories filled
# from the example databases. Tests against a real S3 server (s3rver from tests/s3, installed by
# `npm ci --prefix tests/s3`) are tagged Integration.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot '..' 'out' 'PSBackup' 'PSBackup.psd1') -Force -ErrorAction Stop
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')

    $script:Fixture = Join-Path $TestDrive 'example'
    New-ExampleDatabase -Path $script:Fixture -Seed 21
    $script:DbRoot = Join-Path $script:Fixture 'shard-db'
    $script:DataDir = Join-Path $script:Fixture 'unison'

    # One repository with an object backup, a store snapshot and the shipped WAL of 'events'.
    $script:Repo = Join-Path $TestDrive 'repos' 'main'
    $null = Initialize-BackupRepository -Repository $script:Repo -Unencrypted
    $script:ObjectBackup = New-ObjectBackup -DbRoot $script:DbRoot -Dir acme -Object orders -Repository $script:Repo
    $script:Snapshot = New-StoreSnapshot -DataDir $script:DataDir -Namespace events -Repository $script:Repo
    $script:Shipped = @(Invoke-WalShip -DataDir $script:DataDir -Namespace events -Repository $script:Repo)
}

AfterAll {
    Remove-Module PSBackup -Force -ErrorAction SilentlyContinue
}

Describe 'Get-Backup' {
    It 'lists a repository newest first as typed records that carry Repository, BackupId and Namespace' {
        $all = @(Get-Backup -Repository $script:Repo)

        $all[0] | Should -BeOfType ([PSBackup.Engine.Repository.BackupRecord])
        $all.Count | Should -Be (2 + $script:Shipped.Count)
        $all.BackupId | Should -Contain $script:ObjectBackup.BackupId
        $all | ForEach-Object { $_.Repository | Should -Be $script:Repo; $_.BackupId | Should -Match '^[0-9a-f]{64}$' }
        $times = $all.Time
        ($times | Sort-Object -Descending) -join ',' | Should -Be ($times -join ',')
    }

    It 'filters by -Namespace, -Kind and time' {
        $events = @(Get-Backup -Repository $script:Repo -Namespace events)
        $events.Namespace | Sort-Object -Unique | Should -Be 'events'
        $segments = @(Get-Backup -Repository $script:Repo -Kind wal-segment)
        $segments.Count | Should -Be $script:Shipped.Count
        $segments | ForEach-Object { $_.SegmentId | Should -BeGreaterThan 0 }
        @(Get-Backup -Repository $script:Repo -Kind object).Object | Should -Be 'orders'
        @(Get-Backup -Repository $script:Repo -After (Get-Date).AddDays(1)).Count | Should -Be 0
        # Backups taken now; a segment's Time is its seal stamp (what PITR compares), which the
        # example writer dates 2026-01-01, so only the kinds taken now are excluded here.
        @(Get-Backup -Repository $script:Repo -Before (Get-Date).AddDays(-1) -Kind object).Count | Should -Be 0
        @(Get-Backup -Repository $script:Repo -Before (Get-Date).AddDays(-1) -Kind store-snapshot).Count | Should -Be 0
        $segments | Where-Object Sealed | ForEach-Object { $_.Time | Should -Be $_.CompletedAt }
        # A partial (the active segment's prefix) is never completed: its Time is when it was observed.
        $segments | Where-Object { -not $_.Sealed } | ForEach-Object { $_.CompletedAt | Should -BeNullOrEmpty }
    }

    It 'binds Repository by property name from a piped object' {
        $records = @([pscustomobject]@{ Repository = $script:Repo; Namespace = 'events' } | Get-Backup)
        $records.Count | Should -Be (1 + $script:Shipped.Count)
    }

    It 'lists local object backups, an unfinished one as incomplete' {
        $local = New-ObjectBackup -DbRoot $script:DbRoot -Dir globex -Object inventory
        $partial = Join-Path $script:DbRoot 'globex' 'inventory.backup-20000101T000000'
        $null = New-Item -ItemType Directory -Path $partial
        Set-Content -LiteralPath (Join-Path $partial 'fields.conf') -Value 'x'

        $list = @(Get-Backup -DbRoot $script:DbRoot -Dir globex -Object inventory)
        ($list | Where-Object BackupName -EQ $local.BackupName).Complete | Should -BeTrue
        ($list | Where-Object BackupName -EQ 'inventory.backup-20000101T000000').Complete | Should -BeFalse
        $list[0].DbRoot | Should -Be $script:DbRoot
    }

    It 'lists a namespace''s local snapshots and shipped segments' {
        $null = New-StoreSnapshot -DataDir $script:DataDir -Namespace users -Path 'snapshots/users-pester.db'
        $null = Invoke-WalShip -DataDir $script:DataDir -Namespace users -BackupDir 'wal/archive'
        $list = @(Get-Backup -DataDir $script:DataDir -Namespace users)
        ($list | Where-Object Kind -EQ 'StoreSnapshot').BackupId | Should -Be 'snapshots/users-pester.db'
        @($list | Where-Object Kind -EQ 'WalSegment').Count | Should -BeGreaterThan 0
        @(Get-Backup -DataDir $script:DataDir -Namespace users -Kind store-snapshot).Count | Should -Be 1
    }

    It 'does not mix the local and repository parameter sets' {
        { Get-Backup -DataDir $script:DataDir -Namespace events -Dir acme -ErrorAction Stop } |
            Should -Throw -ErrorId 'AmbiguousParameterSet,PSBackup.Commands.GetBackupCommand'
    }

    It 'rejects an unsafe namespace name' {
        { Get-Backup -Repository $script:Repo -Namespace '../etc' -ErrorAction Stop } | Should -Throw -ErrorId 'InvalidName,PSBackup.Commands.GetBackupCommand'
    }

    It 'says a missing repository is not found' {
        { Get-Backup -Repository (Join-Path $TestDrive 'no-such-repo') -ErrorAction Stop } | Should -Throw -ErrorId 'RepositoryNotFound,PSBackup.Commands.GetBackupCommand'
    }

    It 'refuses an empty time range' {
        { Get-Backup -Repository $script:Repo -After (Get-Date) -Before (Get-Date).AddDays(-1) -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidTimeRange,PSBackup.Commands.GetBackupCommand'
    }
}

Describe 'Test-BackupRepository' {
    It 'passes a sound repository and reads every byte with -ReadData' {
        $report = Test-BackupRepository -Repository $script:Repo -ReadData

        $report | Should -BeOfType ([PSBackup.Engine.Repository.RepositoryCheckResult])
        $report.Passed | Should -BeTrue
        $report.ErrorCount | Should -Be 0
        $report.BytesRead | Should -BeGreaterThan 0
        $report.Backups | Should -Be (2 + $script:Shipped.Count)
    }

    It 'does not fail on a wrong passphrase silently: it is a clear error' {
        $enc = Join-Path $TestDrive 'repos' 'encrypted'
        $pass = ConvertTo-SecureString 'right passphrase' -AsPlainText -Force
        $null = Initialize-BackupRepository -Repository $enc -Passphrase $pass
        $wrong = ConvertTo-SecureString 'wrong' -AsPlainText -Force
        { Test-BackupRepository -Repository $enc -Passphrase $wrong -ErrorAction Stop } |
            Should -Throw -ErrorId 'WrongRepositoryKey,PSBackup.Commands.TestBackupRepositoryCommand'
        (Test-BackupRepository -Repository $enc -Passphrase $pass).Passed | Should -BeTrue
    }

    It 'names the backup and file of a flipped pack byte' {
        $copy = Join-Path $TestDrive 'repos' 'damaged'
        $null = Sync-BackupRepository -Source $script:Repo -Destination $copy
        $pack = Get-ChildItem -LiteralPath (Join-Path $copy 'packs') -Recurse -File | Sort-Object Length -Descending | Select-Object -First 1
        $bytes = [System.IO.File]::ReadAllBytes($pack.FullName)
        $bytes[100] = $bytes[100] -bxor 0x5A
        [System.IO.File]::WriteAllBytes($pack.FullName, $bytes)

        (Test-BackupRepository -Repository $copy).Passed | Should -BeTrue   # structure alone cannot see it
        $report = Test-BackupRepository -Repository $copy -ReadData -WarningAction SilentlyContinue
        $report.Passed | Should -BeFalse
        $report.Errors.Code | Should -Contain 'PackCorrupt'
        $data = @($report.Errors | Where-Object { $_.Code -eq 'DataCorrupt' -and $_.BackupId })
        $data.Count | Should -BeGreaterThan 0
        $data[0].File | Should -Not -BeNullOrEmpty
        (Get-Backup -Repository $copy).BackupId | Should -Contain $data[0].BackupId
    }
}

Describe 'Sync-BackupRepository' {
    It 'copies a repository, then only what is missing' {
        $dest = Join-Path $TestDrive 'repos' 'offsite'
        $first = Sync-BackupRepository -Source $script:Repo -Destination $dest

        $first | Should -BeOfType ([PSBackup.Engine.Repository.SyncResult])
        $first.Mode | Should -Be 'Repository'
        $first.Copied | Should -BeGreaterThan 0
        (Test-BackupRepository -Repository $dest -ReadData).Passed | Should -BeTrue
        ((Get-Backup -Repository $dest).BackupId | Sort-Object) -join ',' | Should -Be (((Get-Backup -Repository $script:Repo).BackupId | Sort-Object) -join ',')

        $again = Sync-BackupRepository -Source $script:Repo -Destination $dest
        $again.Copied | Should -Be 0
        $again.Skipped | Should -Be $first.Copied
    }

    It 'writes nothing with -WhatIf' {
        $dest = Join-Path $TestDrive 'repos' 'whatif'
        $result = Sync-BackupRepository -Source $script:Repo -Destination $dest -WhatIf
        $result.Copied | Should -Be 0
        $result.Declined | Should -BeGreaterThan 0
        $dest | Should -Not -Exist
    }

    It 'refuses a destination holding a different repository and leaves it unchanged' {
        $other = Join-Path $TestDrive 'repos' 'other'
        $null = Initialize-BackupRepository -Repository $other -Unencrypted
        $before = Get-TreeState $other
        { Sync-BackupRepository -Source $script:Repo -Destination $other -ErrorAction Stop } |
            Should -Throw -ErrorId 'DifferentRepository,PSBackup.Commands.SyncBackupRepositoryCommand'
        (Get-TreeState $other) -join "`n" | Should -Be ($before -join "`n")
    }

    It 'copies a plain local backup root without transient artifacts' {
        $root = Join-Path $script:DataDir 'backups'
        $null = Invoke-WalShip -DataDir $script:DataDir -Namespace events -BackupDir 'wal/plain'
        Set-Content -LiteralPath (Join-Path $root 'events' 'wal' 'plain' '000000099.wal.new') -Value 'half'
        $dest = Join-Path $TestDrive 'offsite-plain'

        $result = Sync-BackupRepository -Source $root -Destination $dest
        $result.Mode | Should -Be 'Folder'
        $result.Copied | Should -BeGreaterThan 0
        $result.Ignored | Should -BeGreaterThan 0
        Join-Path $dest 'events' 'wal' 'plain' '000000099.wal.new' | Should -Not -Exist
        (Sync-BackupRepository -Source $root -Destination $dest).Copied | Should -Be 0
    }
}

Describe 'Maintenance against an S3 repository' -Tag 'Integration' {
    BeforeAll {
        $script:Bucket = 'pester-maintenance'
        $script:S3Server = Start-TestS3Server -Bucket $script:Bucket -WorkPath $TestDrive
        $script:S3 = @{
            Endpoint  = $script:S3Server.Endpoint
            AccessKey = 'S3RVER'
            SecretKey = (ConvertTo-SecureString 'S3RVER' -AsPlainText -Force)
        }
        $script:S3Repo = "s3://$($script:Bucket)/offsite"
    }

    AfterAll {
        Stop-TestS3Server -Server $script:S3Server
    }

    It 'syncs the local repository to S3, then lists and checks it there' {
        $result = Sync-BackupRepository -Source $script:Repo -Destination $script:S3Repo @script:S3
        $result.Copied | Should -BeGreaterThan 0

        ((Get-Backup -Repository $script:S3Repo @script:S3).BackupId | Sort-Object) -join ',' | Should -Be (((Get-Backup -Repository $script:Repo).BackupId | Sort-Object) -join ',')
        (Test-BackupRepository -Repository $script:S3Repo -ReadData @script:S3).Passed | Should -BeTrue
        (Sync-BackupRepository -Source $script:Repo -Destination $script:S3Repo @script:S3).Copied | Should -Be 0
    }

    It 'refuses to sync another repository onto the S3 copy' {
        $other = Join-Path $TestDrive 'repos' 'other-s3-source'
        $null = Initialize-BackupRepository -Repository $other -Unencrypted
        { Sync-BackupRepository -Source $other -Destination $script:S3Repo @script:S3 -ErrorAction Stop } |
            Should -Throw -ErrorId 'DifferentRepository,PSBackup.Commands.SyncBackupRepositoryCommand'
    }
}
