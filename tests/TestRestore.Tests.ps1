#Requires -Version 7.4
# Pester 5: Test-Restore (the restore drill) over a local backup root and a repository filled from
# the example database, with the example's replay as the validation.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot '..' 'out' 'PSBackup' 'PSBackup.psd1') -Force -ErrorAction Stop
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')

    $script:Fixture = Join-Path $TestDrive 'example'
    New-ExampleDatabase -Path $script:Fixture -Seed 33
    $script:DataDir = Join-Path $script:Fixture 'unison'
    $script:BackupRoot = Join-Path $script:DataDir 'backups' 'users'

    # A local backup root: one snapshot and the shipped WAL of 'users'.
    $script:Snapshot = New-StoreSnapshot -DataDir $script:DataDir -Namespace users -Path 'snapshots/s1.sqlite'
    $null = Invoke-WalShip -DataDir $script:DataDir -Namespace users -BackupDir 'wal'

    # A repository with the same.
    $script:Repo = Join-Path $TestDrive 'repo'
    $null = Initialize-BackupRepository -Repository $script:Repo -Unencrypted
    $null = New-StoreSnapshot -DataDir $script:DataDir -Namespace users -Repository $script:Repo
    $null = Invoke-WalShip -DataDir $script:DataDir -Namespace users -Repository $script:Repo

    function New-Scratch {
        $path = Join-Path $TestDrive ('scratch-' + [guid]::NewGuid().ToString('N').Substring(0, 6))
        $null = New-Item -ItemType Directory -Path $path
        $path
    }

    function Get-DrillEvent {
        @(Get-ChildItem -LiteralPath (Join-Path $script:BackupRoot 'events') -Filter '*.json' -ErrorAction SilentlyContinue |
            Sort-Object Name | ForEach-Object { Get-Content -LiteralPath $_.FullName -Raw | ConvertFrom-Json })
    }
}

AfterAll {
    Remove-Module PSBackup -Force -ErrorAction SilentlyContinue
}

Describe 'Test-Restore' {
    It 'passes on a good local backup, hands the restored namespace folder to the validation and cleans up' {
        $scratch = New-Scratch
        $before = (Get-DrillEvent).Count
        $result = Test-Restore -DataDir $script:DataDir -Namespace users -ScratchPath $scratch -ValidationScript {
            param($Path)
            if (-not (Test-Path -LiteralPath (Join-Path $Path 'db' 'store.sqlite'))) { throw "no store in $Path" }
            if (-not (Test-Path -LiteralPath (Join-Path $Path 'wal'))) { throw "no wal in $Path" }
            $true
        }
        $result | Should -BeOfType ([PSBackup.Engine.Restore.RestoreDrillResult])
        $result.Passed | Should -BeTrue
        $result.Namespace | Should -Be 'users'
        $result.Snapshot | Should -Be 'snapshots/s1.sqlite'
        $result.LastLogIndex | Should -BeGreaterThan 0
        $result.Bytes | Should -BeGreaterThan 0
        $result.Errors | Should -BeNullOrEmpty
        $result.ValidationPassed | Should -BeTrue
        $result.RestoredPath | Should -BeNullOrEmpty
        @(Get-ChildItem -LiteralPath $scratch -Force) | Should -HaveCount 0
        $events = Get-DrillEvent
        $events.Count | Should -Be ($before + 1)
        $events[-1].kind | Should -Be 'restore-drill'
        $events[-1].passed | Should -BeTrue
    }

    It 'returns Passed = $false with the validation''s message when the validation throws, and records it' {
        $scratch = New-Scratch
        $result = Test-Restore -DataDir $script:DataDir -Namespace users -ScratchPath $scratch -ValidationScript { throw 'row count is 0' } -WarningAction SilentlyContinue
        $result.Passed | Should -BeFalse
        $result.Errors[0] | Should -Match 'row count is 0'
        $result.ValidationPassed | Should -BeFalse
        @(Get-ChildItem -LiteralPath $scratch -Force) | Should -HaveCount 0
        (Get-DrillEvent)[-1].passed | Should -BeFalse
    }

    It 'fails when the validation outputs $false' {
        $result = Test-Restore -DataDir $script:DataDir -Namespace users -ScratchPath (New-Scratch) -ValidationScript { $false } -WarningAction SilentlyContinue
        $result.Passed | Should -BeFalse
        $result.Errors[0] | Should -Match 'returned \$false'
    }

    It 'keeps the restored copy with -Keep and reports its path' {
        $scratch = New-Scratch
        $result = Test-Restore -DataDir $script:DataDir -Namespace users -ScratchPath $scratch -Keep
        $result.Passed | Should -BeTrue
        $result.RestoredPath | Should -BeLike "$scratch*"
        Join-Path $result.RestoredPath 'db' 'store.sqlite' | Should -Exist
    }

    It 'binds Repository, Namespace and BackupId from Get-Backup' {
        $result = Get-Backup -Repository $script:Repo -Namespace users -Kind store-snapshot |
            Select-Object -First 1 | Test-Restore -ScratchPath (New-Scratch)
        $result.Passed | Should -BeTrue
        $result.Repository | Should -Be $script:Repo
        $result.BackupId | Should -Match '^[0-9a-f]{64}$'
        @(Get-ChildItem -LiteralPath (Join-Path $script:Repo 'events' 'users') -Filter '*.json') | Should -Not -BeNullOrEmpty
    }

    It 'reports a damaged snapshot as a failed drill naming the file' {
        $copy = Join-Path $TestDrive 'damaged'
        $null = New-Item -ItemType Directory -Path (Join-Path $copy 'backups')
        Copy-Item -LiteralPath $script:BackupRoot -Destination (Join-Path $copy 'backups') -Recurse
        $file = Join-Path $copy 'backups' 'users' 'snapshots' 's1.sqlite'
        $bytes = [System.IO.File]::ReadAllBytes($file)
        $bytes[[int]($bytes.Length / 2)] = $bytes[[int]($bytes.Length / 2)] -bxor 0xFF
        [System.IO.File]::WriteAllBytes($file, $bytes)

        $result = Test-Restore -DataDir $copy -Namespace users -ScratchPath (New-Scratch) -WarningAction SilentlyContinue
        $result.Passed | Should -BeFalse
        $result.Errors[0] | Should -Match 's1\.sqlite'
    }

    It 'refuses an unknown snapshot with a typed error and writes nothing' {
        $scratch = New-Scratch
        $before = (Get-DrillEvent).Count
        { Test-Restore -DataDir $script:DataDir -Namespace users -Snapshot 'snapshots/nope.sqlite' -ScratchPath $scratch -ErrorAction Stop } |
            Should -Throw -ErrorId 'SnapshotNotFound,PSBackup.Commands.TestRestoreCommand'
        (Get-DrillEvent).Count | Should -Be $before
        @(Get-ChildItem -LiteralPath $scratch -Force) | Should -HaveCount 0
    }

    It 'restores and records nothing under -WhatIf' {
        $scratch = New-Scratch
        $before = (Get-DrillEvent).Count
        Test-Restore -DataDir $script:DataDir -Namespace users -ScratchPath $scratch -WhatIf | Should -BeNullOrEmpty
        (Get-DrillEvent).Count | Should -Be $before
        @(Get-ChildItem -LiteralPath $scratch -Force) | Should -HaveCount 0
    }
}

Describe 'Test-Restore of a UnisonDB namespace (UnisonDB''s own recovery as the proof)' {
    BeforeAll {
        $script:Oracle = Get-UnisonOracle
        # The v1 LMDB store fixture: checkpoint LSN 420 in segment 2, segments 1..2 sealed (LSN 1..439),
        # the active 3 holds 440..600; written by store-gen with these parameters (shared/unisondb/README.md).
        $script:UData = Join-Path $TestDrive 'unison-lmdb'
        Copy-UnisonFixture -Name 'v1-store-lmdb' -DataDir $script:UData
        $null = New-StoreSnapshot -DataDir $script:UData -Namespace users -Path 'snapshots/users.db'
        $null = Invoke-WalShip -DataDir $script:UData -Namespace users -BackupDir 'wal'
        $script:URepo = Join-Path $TestDrive 'unison-repo'
        $null = Initialize-BackupRepository -Repository $script:URepo -Unencrypted
        $null = New-StoreSnapshot -DataDir $script:UData -Namespace users -Repository $script:URepo
        $null = Invoke-WalShip -DataDir $script:UData -Namespace users -Repository $script:URepo

        function Get-ExpectedHash([int] $Lsn) {
            # The content of a store that applied exactly LSN 1..$Lsn, as UnisonDB's driver hashes it.
            $dir = Join-Path $TestDrive "expected-$Lsn"
            $null = & $script:Oracle store-gen -data $dir -ns users -engine LMDB -seg-size 262144 -records 600 -checkpoint-lsn $Lsn `
                -flush-every 100 -seed 7 -hlc-start 1767225600000 -hlc-step 1000
            if ($LASTEXITCODE -ne 0) { throw "store-gen failed ($LASTEXITCODE)" }
            $info = & $script:Oracle store-info -db (Join-Path $dir 'users' 'unison.db')
            if (($info -join "`n") -notmatch 'content sha256 ([0-9a-f]{64})') { throw "store-info printed no hash: $info" }
            $Matches[1]
        }
    }

    It 'passes from <Source> to log index 430 when UnisonDB recovers exactly LSN 421..430 and the validation sees unison.db' -ForEach @(
        @{ Source = 'the local backup root' }
        @{ Source = 'the repository' }
    ) {
        $scratch = Join-Path $TestDrive ('uscratch-' + [guid]::NewGuid().ToString('N').Substring(0, 6))
        $null = New-Item -ItemType Directory -Path $scratch
        $expected = Get-ExpectedHash 430
        $validation = {
            param($Path)
            Test-Path -LiteralPath (Join-Path $Path 'unison.db' 'data.mdb')
        }
        $result = if ($Source -eq 'the repository') {
            Test-Restore -Repository $script:URepo -Namespace users -TargetLogIndex 430 -ScratchPath $scratch -UnisonOracle $script:Oracle -ExpectedContentHash $expected -ValidationScript $validation
        }
        else {
            Test-Restore -DataDir $script:UData -Namespace users -TargetLogIndex 430 -ScratchPath $scratch -UnisonOracle $script:Oracle -ExpectedContentHash $expected -ValidationScript $validation
        }
        $result.Passed | Should -BeTrue -Because ($result.Errors -join "`n")
        $result.LastLogIndex | Should -Be 430
        $result.UnisonRecovery.RecordsRecovered | Should -Be 10
        $result.UnisonRecovery.Checkpoint.LogIndex | Should -Be 430
        $result.UnisonRecovery.ContentSha256 | Should -Be $expected
        $result.ValidationPassed | Should -BeTrue
        @(Get-ChildItem -LiteralPath $scratch -Force) | Should -HaveCount 0
    }

    It 'fails as an integrity problem when the recovered content is not the expected one' {
        $result = Test-Restore -Repository $script:URepo -Namespace users -TargetLogIndex 430 -UnisonOracle $script:Oracle `
            -ExpectedContentHash (Get-ExpectedHash 431) -ScratchPath $TestDrive -WarningAction SilentlyContinue
        $result.Passed | Should -BeFalse
        $result.FailureKind | Should -Be 'Integrity'
        ($result.Errors -join ' ') | Should -Match 'content hash'
    }

    It 'refuses -ExpectedContentHash without -UnisonOracle and writes nothing' {
        { Test-Restore -DataDir $script:UData -Namespace users -ExpectedContentHash ('0' * 64) -ScratchPath $TestDrive -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidContentHash,PSBackup.Commands.TestRestoreCommand'
    }
}
