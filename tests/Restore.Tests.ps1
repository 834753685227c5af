#Requires -Version 7.4
# Pester 5: Restore-StoreSnapshot and Restore-PointInTime against the example database.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot '..' 'out' 'PSBackup' 'PSBackup.psd1') -Force -ErrorAction Stop
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')

    $script:Fixture = Join-Path $TestDrive 'example'
    New-ExampleDatabase -Path $script:Fixture -Seed 13
    $script:DataDir = Join-Path $script:Fixture 'unison'
    $script:Snapshot = New-StoreSnapshot -DataDir $script:DataDir -Namespace users -Path 'snapshots/users-1.snapshot'
    $null = Invoke-WalShip -DataDir $script:DataDir -Namespace users -BackupDir 'wal'
    $script:Repo = Join-Path $TestDrive 'repo'
    $null = Initialize-BackupRepository -Repository $script:Repo -Unencrypted
    $script:RepoSnapshot = New-StoreSnapshot -DataDir $script:DataDir -Namespace users -Repository $script:Repo
    $null = Invoke-WalShip -DataDir $script:DataDir -Namespace users -Repository $script:Repo
}

AfterAll {
    Remove-Module PSBackup -Force -ErrorAction SilentlyContinue
}

Describe 'Restore-StoreSnapshot' {
    It 'restores the newest local snapshot into -TargetDataDir' {
        $into = Join-Path $TestDrive 'snap-local'
        $result = Restore-StoreSnapshot -DataDir $script:DataDir -Namespace users -TargetDataDir $into -Confirm:$false

        $result | Should -BeOfType ([PSBackup.Engine.Restore.StoreSnapshotRestoreResult])
        $result.Snapshot | Should -Be 'snapshots/users-1.snapshot'
        $result.RestoredPath | Should -Be (Join-Path $into 'users' 'db')
        $result.Bytes | Should -BeGreaterThan 0
        $result.ReplacedPath | Should -BeNullOrEmpty
        Join-Path $into 'users' 'db' | Should -Exist
    }

    It 'restores from a repository by -BackupId' {
        $into = Join-Path $TestDrive 'snap-repo'
        $result = Restore-StoreSnapshot -Repository $script:Repo -Namespace users -BackupId $script:RepoSnapshot.BackupId -TargetDataDir $into -Confirm:$false
        $result.BackupId | Should -Be $script:RepoSnapshot.BackupId
        $result.Repository | Should -Be $script:Repo
        $result.WalPosition.AppliedLogIndex | Should -Be $script:RepoSnapshot.WalPosition.AppliedLogIndex
    }

    It 'binds local and repository records from Get-Backup (their null DataDir or Repository is no binding error)' {
        $into = Join-Path $TestDrive 'snap-piped-local'
        $result = Get-Backup -DataDir $script:DataDir -Namespace users -Kind store-snapshot |
            Restore-StoreSnapshot -TargetDataDir $into -Confirm:$false
        $result.Snapshot | Should -Be 'snapshots/users-1.snapshot'
        $result.Repository | Should -BeNullOrEmpty

        $into = Join-Path $TestDrive 'snap-piped-repo'
        $result = Get-Backup -Repository $script:Repo -Namespace users -Kind store-snapshot |
            Restore-StoreSnapshot -TargetDataDir $into -Confirm:$false
        $result.BackupId | Should -Be $script:RepoSnapshot.BackupId
    }

    It 'refuses a non-empty db/ without -Force and keeps it aside with -Force' {
        $into = Join-Path $TestDrive 'snap-force'
        $null = Restore-StoreSnapshot -DataDir $script:DataDir -Namespace users -TargetDataDir $into -Confirm:$false
        { Restore-StoreSnapshot -DataDir $script:DataDir -Namespace users -TargetDataDir $into -Confirm:$false -ErrorAction Stop } |
            Should -Throw -ErrorId 'RestoreTargetNotEmpty,PSBackup.Commands.RestoreStoreSnapshotCommand'
        $result = Restore-StoreSnapshot -DataDir $script:DataDir -Namespace users -TargetDataDir $into -Force -Confirm:$false
        $result.ReplacedPath | Should -Exist
    }

    It 'writes nothing under -WhatIf' {
        $into = Join-Path $TestDrive 'snap-whatif'
        $result = Restore-StoreSnapshot -DataDir $script:DataDir -Namespace users -TargetDataDir $into -WhatIf
        $result | Should -BeNullOrEmpty
        Join-Path $into 'users' 'db' | Should -Not -Exist
    }

    It 'names a missing snapshot' {
        { Restore-StoreSnapshot -DataDir $script:DataDir -Namespace users -Snapshot 'snapshots/nope' -TargetDataDir (Join-Path $TestDrive 'x') -Confirm:$false -ErrorAction Stop } |
            Should -Throw -ErrorId 'SnapshotNotFound,PSBackup.Commands.RestoreStoreSnapshotCommand'
    }
}

Describe 'Restore-PointInTime' {
    It 'emits the plan under -WhatIf and writes nothing' {
        $into = Join-Path $TestDrive 'pitr-whatif'
        $applied = $script:Snapshot.WalPosition.AppliedLogIndex
        $plan = Restore-PointInTime -DataDir $script:DataDir -Namespace users -TargetLogIndex $applied -TargetDataDir $into -WhatIf
        $plan | Should -BeOfType ([PSBackup.Engine.Restore.PointInTimePlan])
        $plan.LastLogIndex | Should -Be $applied
        $plan.Snapshot.Id | Should -Be 'snapshots/users-1.snapshot'
        $into | Should -Not -Exist
    }

    It 'restores to a log index from the local backup root' {
        $into = Join-Path $TestDrive 'pitr-local'
        $applied = $script:Snapshot.WalPosition.AppliedLogIndex
        $result = Restore-PointInTime -DataDir $script:DataDir -Namespace users -TargetLogIndex $applied -TargetDataDir $into -Confirm:$false
        $result | Should -BeOfType ([PSBackup.Engine.Restore.PointInTimeRestoreResult])
        $result.Restored | Should -BeTrue
        $result.LastLogIndex | Should -Be $applied
        Join-Path $into 'users' 'db' | Should -Exist
        Join-Path $into 'users' 'wal' | Should -Exist
    }

    It 'restores the latest from a repository with a warning when the target is past the last shipped record' {
        $into = Join-Path $TestDrive 'pitr-repo'
        $result = Restore-PointInTime -Repository $script:Repo -Namespace users -TargetLogIndex 999999 -TargetDataDir $into -Confirm:$false -WarningVariable warnings -WarningAction SilentlyContinue
        $result.TargetPastArchive | Should -BeTrue
        $result.Repository | Should -Be $script:Repo
        ($warnings -join ' ') | Should -BeLike '*past the last shipped record*'
    }

    It 'needs exactly one of -TargetTime and -TargetLogIndex' {
        { Restore-PointInTime -DataDir $script:DataDir -Namespace users -TargetDataDir (Join-Path $TestDrive 'x') -Confirm:$false -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidRestoreTarget,PSBackup.Commands.RestorePointInTimeCommand'
        { Restore-PointInTime -DataDir $script:DataDir -Namespace users -TargetLogIndex 5 -TargetTime ([datetime]::UtcNow) -TargetDataDir (Join-Path $TestDrive 'x') -Confirm:$false -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidRestoreTarget,PSBackup.Commands.RestorePointInTimeCommand'
    }

    It 'refuses a target before the first snapshot and writes nothing' {
        $into = Join-Path $TestDrive 'pitr-early'
        { Restore-PointInTime -DataDir $script:DataDir -Namespace users -TargetLogIndex 3 -TargetDataDir $into -Confirm:$false -ErrorAction Stop } |
            Should -Throw -ErrorId 'TargetBeforeFirstSnapshot,PSBackup.Commands.RestorePointInTimeCommand'
        { Restore-PointInTime -DataDir $script:DataDir -Namespace users -TargetTime ([datetime]'2000-01-01') -TargetDataDir $into -Confirm:$false -ErrorAction Stop } |
            Should -Throw -ErrorId 'TargetBeforeFirstSnapshot,PSBackup.Commands.RestorePointInTimeCommand'
        $into | Should -Not -Exist
    }
}

Describe 'Restore-PointInTime of a real UnisonDB WAL (judged by UnisonDB''s own reader)' {
    BeforeAll {
        $script:Oracle = Get-UnisonOracle
        # The v1 store fixture: checkpoint 2:222128 = LSN 420; HLC of LSN n = 1767225600000 + (n-1)*1000.
        $script:UData = Join-Path $TestDrive 'unison-store'
        Copy-UnisonFixture -Name 'v1-store-bolt' -DataDir $script:UData
        $null = Invoke-WalShip -DataDir $script:UData -Namespace users -BackupDir 'wal'
        $partial = New-Item -ItemType Directory -Path (Join-Path $script:UData 'backups' 'users' 'partial') -Force
        Copy-Item -LiteralPath (Join-Path $script:UData 'users' 'wal' '000000003.seg') -Destination $partial
        # A snapshot as the store adapter records it: the store file and the checkpoint position.
        $snapDir = New-Item -ItemType Directory -Path (Join-Path $script:UData 'backups' 'users' 'snapshots') -Force
        $file = Join-Path $snapDir 's420'
        [System.IO.File]::WriteAllBytes($file, [byte[]](1, 2, 3))
        $sha = (Get-FileHash -LiteralPath $file -Algorithm SHA256).Hash.ToLowerInvariant()
        $completed = [DateTimeOffset]::FromUnixTimeMilliseconds(1767225600000 + 419 * 1000 + 1).ToString('o')
        @{
            formatVersion = 1; kind = 'snapshot'; createdAt = $completed; completedAt = $completed; source = 'test'
            wal = @{ segmentIds = @(1, 2, 3); highestLogIndex = 600; appliedLogIndex = 420; checkpoint = @{ recordsProcessed = 420; segmentId = 2; offset = 222128; raftIndex = 0; raftTerm = 0; logIndex = 420 } }
            files = @(@{ path = 'unison.db'; size = 3; sha256 = $sha })
        } | ConvertTo-Json -Depth 5 | Set-Content -LiteralPath "$file.manifest.json"
    }

    It 'restores to log index <Target>: UnisonDB replays exactly 421..<Target> from the checkpoint' -ForEach @(
        @{ Target = 500 }
        @{ Target = 439 }
    ) {
        $into = Join-Path $TestDrive "unison-index-$Target"
        $result = Restore-PointInTime -DataDir $script:UData -Namespace users -TargetLogIndex $Target -TargetDataDir $into -Confirm:$false
        $result.LastLogIndex | Should -Be $Target
        $out = & $script:Oracle replay -dir (Join-Path $into 'users' 'wal') -seg-size 262144 -from 2:222128
        $LASTEXITCODE | Should -Be 0
        ($out | Select-Object -Last 1) | Should -Match "replayed $($Target - 420) records, lsn 421\.\.$Target,"
        # The WAL stays writable: the next record is accepted (an empty active segment follows a sealed end).
        $null = & $script:Oracle append -dir (Join-Path $into 'users' 'wal') -seg-size 262144 -lsn ($Target + 1)
        $LASTEXITCODE | Should -Be 0
    }

    It 'restores to a time: every record whose own HLC is at or before it, and the plan names the record it stops at' {
        $into = Join-Path $TestDrive 'unison-time'
        $t = [DateTimeOffset]::FromUnixTimeMilliseconds(1767225600000 + 549 * 1000 + 700)   # 0.7 s after LSN 550
        $plan = Restore-PointInTime -DataDir $script:UData -Namespace users -TargetTime $t.UtcDateTime -TargetDataDir $into -WhatIf
        $plan.LastLogIndex | Should -Be 550
        $plan.LastRecordTime.ToUnixTimeMilliseconds() | Should -Be (1767225600000 + 549 * 1000)
        ($plan.Notes -join ' ') | Should -Match 'log index 551'
        $result = Restore-PointInTime -DataDir $script:UData -Namespace users -TargetTime $t.UtcDateTime -TargetDataDir $into -Confirm:$false
        $out = & $script:Oracle replay -dir (Join-Path $into 'users' 'wal') -seg-size 262144 -from 2:222128
        ($out | Select-Object -Last 1) | Should -Match 'replayed 130 records, lsn 421\.\.550,'
    }
}

Describe 'Restore-PointInTime of a WAL-only UnisonDB namespace (no unison.db, no snapshot)' {
    BeforeAll {
        $script:Oracle = Get-UnisonOracle
        $script:Oracle2 = Get-UnisonOracle -V2
    }

    It 'restores <Fixture> by log index and by time from an empty store: wal/ alone, replayed 1..target by UnisonDB' -ForEach @(
        @{ Fixture = 'v1-small'; V2 = $false }
        @{ Fixture = 'v2-small'; V2 = $true }
    ) {
        $data = Join-Path $TestDrive "walonly-$Fixture"
        Copy-UnisonFixture -Name $Fixture -DataDir $data
        $repo = Join-Path $TestDrive "walonly-repo-$Fixture"
        $null = Initialize-BackupRepository -Repository $repo -Unencrypted
        $null = Invoke-WalShip -DataDir $data -Namespace users -Repository $repo
        $reader = if ($V2) { $script:Oracle2 } else { $script:Oracle }

        $plan = Restore-PointInTime -Repository $repo -Namespace users -TargetLogIndex 700 -TargetDataDir (Join-Path $TestDrive "walonly-never-$Fixture") -WhatIf
        $plan.Snapshot.EmptyStore | Should -BeTrue
        ($plan.Notes -join ' ') | Should -Match 'empty store'

        $into = Join-Path $TestDrive "walonly-index-$Fixture"
        $result = Restore-PointInTime -Repository $repo -Namespace users -TargetLogIndex 700 -TargetDataDir $into -Confirm:$false
        $result.LastLogIndex | Should -Be 700
        @(Get-ChildItem -LiteralPath (Join-Path $into 'users')).Name | Should -Be @('wal')
        $out = & $reader replay -dir (Join-Path $into 'users' 'wal') -seg-size 1048576 -from 0:0
        $LASTEXITCODE | Should -Be 0
        ($out | Select-Object -Last 1) | Should -Match 'replayed 700 records, lsn 1\.\.700,'

        # By time: the oracle's own listing names the HLC of LSN 650; every record at or before it is restored.
        $records = & $reader replay -dir (Join-Path $data 'users' 'wal') -seg-size 1048576 -v | Select-String 'lsn=(\d+) hlc=(\d+)' | ForEach-Object { [pscustomobject]@{ Lsn = [long]$_.Matches[0].Groups[1].Value; Hlc = [long]$_.Matches[0].Groups[2].Value } }
        $hlc = ($records | Where-Object Lsn -EQ 650).Hlc
        $expected = ($records | Where-Object Hlc -LE $hlc | Measure-Object Lsn -Maximum).Maximum
        $byTime = Join-Path $TestDrive "walonly-time-$Fixture"
        $t = Restore-PointInTime -Repository $repo -Namespace users -TargetTime ([DateTimeOffset]::FromUnixTimeMilliseconds($hlc)) -TargetDataDir $byTime -Confirm:$false
        $t.LastLogIndex | Should -Be $expected
        $out = & $reader replay -dir (Join-Path $byTime 'users' 'wal') -seg-size 1048576 -from 0:0
        ($out | Select-Object -Last 1) | Should -Match "replayed $expected records, lsn 1\.\.$expected,"

        # Test-Restore proves it with UnisonDB's recovery, which creates the empty store itself.
        $drill = Test-Restore -Repository $repo -Namespace users -TargetLogIndex 900 -UnisonOracle $script:Oracle
        $drill.Passed | Should -BeTrue
        $drill.LastLogIndex | Should -Be 900
    }
}

Describe 'Time values piped between cmdlets' {
    It 'takes a snapshot record''s Time as -TargetTime: exactly that snapshot, no TargetBeforeFirstSnapshot' {
        $snap = Get-Backup -Repository $script:Repo -Namespace users -Kind store-snapshot | Select-Object -First 1
        $snap.Time | Should -BeOfType ([DateTimeOffset])
        $snap.CompletedAt | Should -Be $snap.Time
        $snap.CreatedAt | Should -BeLessOrEqual $snap.Time
        $plan = Restore-PointInTime -Repository $script:Repo -Namespace users -TargetTime $snap.Time -TargetDataDir (Join-Path $TestDrive 'pitr-time') -WhatIf
        $plan | Should -BeOfType ([PSBackup.Engine.Restore.PointInTimePlan])
        $plan.Snapshot.Id | Should -Be $snap.BackupId
    }

    It 'gives New-StoreSnapshot and New-ObjectBackup results the Time Get-Backup and retention report, so -TargetTime $s.Time binds' {
        # Repository and local snapshots: CompletedAt (the manifest's) is the Time, as in Get-Backup.
        foreach ($pair in @(
                @{ Result = $script:RepoSnapshot; Listed = @(Get-Backup -Repository $script:Repo -Namespace users -Kind store-snapshot) },
                @{ Result = $script:Snapshot; Listed = @(Get-Backup -DataDir $script:DataDir -Namespace users -Kind store-snapshot) })) {
            $s = $pair.Result
            $s.CompletedAt | Should -BeOfType ([DateTimeOffset])
            $s.Time | Should -Be $s.CompletedAt
            $s.CreatedAt | Should -BeLessOrEqual $s.CompletedAt
            $listed = @($pair.Listed | Where-Object { $_.BackupId -eq $s.BackupId -or ($s.BackupId -eq $null -and $_.Path -eq $s.Path) })
            $listed.Count | Should -Be 1
            $listed[0].Time | Should -Be $s.Time
            $listed[0].CompletedAt | Should -Be $s.CompletedAt
        }
        $plan = Restore-PointInTime -Repository $script:Repo -Namespace users -TargetTime $script:RepoSnapshot.Time -TargetDataDir (Join-Path $TestDrive 'pitr-new') -WhatIf
        $plan.Snapshot.Id | Should -Be $script:RepoSnapshot.BackupId
        # The snapshot's retention item reports the same Time (not its start).
        $kept = @(Remove-ExpiredBackup -Repository $script:Repo -Namespace users -KeepLast 10 -WhatIf | Where-Object BackupId -EQ $script:RepoSnapshot.BackupId)
        $kept.Count | Should -Be 1
        $kept[0].Time | Should -Be $script:RepoSnapshot.Time
        $local = @(Remove-ExpiredBackup -DataDir $script:DataDir -Namespace users -KeepLast 10 -WhatIf | Where-Object Path -EQ $script:Snapshot.Path)
        $local.Count | Should -Be 1
        $local[0].Time | Should -Be $script:Snapshot.Time

        # Object backups, repository and local.
        $dbRoot = Join-Path $script:Fixture 'shard-db'
        $o = New-ObjectBackup -DbRoot $dbRoot -Dir acme -Object orders -Repository $script:Repo
        $o.Time | Should -Be $o.CompletedAt
        $o.StartedAt | Should -BeLessOrEqual $o.CompletedAt
        $rec = @(Get-Backup -Repository $script:Repo -Kind object | Where-Object BackupId -EQ $o.BackupId)
        $rec[0].Time | Should -Be $o.Time
        @(Get-Backup -Repository $script:Repo -Kind object -After $o.Time).BackupId | Should -Contain $o.BackupId
        @(Remove-ExpiredBackup -Repository $script:Repo -Dir acme -KeepLast 10 -WhatIf | Where-Object BackupId -EQ $o.BackupId)[0].Time | Should -Be $o.Time
        @(Remove-Backup -Repository $script:Repo -BackupId $o.BackupId -WhatIf -WarningAction SilentlyContinue)[0].Time | Should -Be $o.Time
        $l = New-ObjectBackup -DbRoot $dbRoot -Dir acme -Object orders
        $l.Time | Should -Be $l.CompletedAt
        @(Get-Backup -DbRoot $dbRoot -Dir acme -Object orders | Where-Object BackupName -EQ $l.BackupName)[0].Time | Should -Be $l.Time
        @(Remove-ExpiredBackup -DbRoot $dbRoot -Dir acme -Object orders -KeepLast 10 -WhatIf | Where-Object Id -EQ $l.BackupName)[0].Time | Should -Be $l.Time
    }

    It 'refuses a snapshot''s start time, which is before it completed' {
        $snap = Get-Backup -Repository $script:Repo -Namespace users -Kind store-snapshot | Select-Object -First 1
        { Restore-PointInTime -Repository $script:Repo -Namespace users -TargetTime $snap.CreatedAt.AddTicks(-1) -TargetDataDir (Join-Path $TestDrive 'pitr-early') -WhatIf -ErrorAction Stop } |
            Should -Throw -ErrorId 'TargetBeforeFirstSnapshot,PSBackup.Commands.RestorePointInTimeCommand'
    }

    It 'takes record times as -Before and -After, inclusive' {
        $all = @(Get-Backup -Repository $script:Repo -Namespace users)
        $oldest = $all[-1]
        @(Get-Backup -Repository $script:Repo -Namespace users -Before $oldest.Time).BackupId | Should -Contain $oldest.BackupId
        @(Get-Backup -Repository $script:Repo -Namespace users -After $all[0].Time).BackupId | Should -Be @($all | Where-Object Time -EQ $all[0].Time).BackupId
    }

    It 'still takes a DateTime (local when unspecified, as Get-Date) and text' {
        $snap = Get-Backup -Repository $script:Repo -Namespace users -Kind store-snapshot | Select-Object -First 1
        $local = $snap.Time.LocalDateTime
        $local.Kind | Should -Be 'Local'
        (Restore-PointInTime -Repository $script:Repo -Namespace users -TargetTime $local -TargetDataDir (Join-Path $TestDrive 'pitr-dt') -WhatIf).Snapshot.Id |
            Should -Be $snap.BackupId
        $text = $snap.Time.ToString('o')
        @(Get-Backup -Repository $script:Repo -Namespace users -After $text -Kind store-snapshot).Count | Should -BeGreaterThan 0
        @(Get-Backup -Repository $script:Repo -Namespace users -Before ([datetime]::MinValue)).Count | Should -Be 0
        { Get-Backup -Repository $script:Repo -After 'not a time' -ErrorAction Stop } |
            Should -Throw -ErrorId 'ParameterArgumentTransformationError,PSBackup.Commands.GetBackupCommand'
    }

    It 'types the time parameters as DateTimeOffset' {
        (Get-Command Get-Backup).Parameters['After'].ParameterType | Should -Be ([Nullable[DateTimeOffset]])
        (Get-Command Restore-PointInTime).Parameters['TargetTime'].ParameterType | Should -Be ([Nullable[DateTimeOffset]])
        (Get-Command Test-Restore).Parameters['TargetTime'].ParameterType | Should -Be ([Nullable[DateTimeOffset]])
    }
}
