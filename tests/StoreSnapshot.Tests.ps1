#Requires -Version 7.4
# Pester 5: New-StoreSnapshot against the example namespace store (unison/<ns>/db/store.sqlite).

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot '..' 'out' 'PSBackup' 'PSBackup.psd1') -Force -ErrorAction Stop
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')

    $script:Fixture = Join-Path $TestDrive 'example'
    New-ExampleDatabase -Path $script:Fixture -Seed 13
    $script:DataDir = Join-Path $script:Fixture 'unison'
}

AfterAll {
    Remove-Module PSBackup -Force -ErrorAction SilentlyContinue
}

Describe 'New-StoreSnapshot' {
    It 'writes a snapshot under backups/<ns> and returns a StoreSnapshotResult' {
        $result = New-StoreSnapshot -DataDir $script:DataDir -Namespace users -Path 'snapshots/users-1.snapshot'

        $result | Should -BeOfType ([PSBackup.Engine.Snapshots.StoreSnapshotResult])
        $result.Namespace | Should -Be 'users'
        $result.Path | Should -BeLike (Join-Path $script:DataDir 'backups' 'users' 'snapshots' '*')
        $result.Path | Should -Exist
        $result.Bytes | Should -BeGreaterThan 0
        $result.ManifestPath | Should -Exist
        $result.WalPosition | Should -Not -BeNullOrEmpty
        $result.WalPosition.SegmentIds.Count | Should -BeGreaterThan 0
        # Written as {path}.tmp then renamed: no temporary file is left behind.
        "$($result.Path).tmp" | Should -Not -Exist
    }

    It 'copies the SQLite store with the native library the module ships' {
        $result = New-StoreSnapshot -DataDir $script:DataDir -Namespace events -Path 'snapshots/events-1.snapshot'
        $files = if (Test-Path -LiteralPath $result.Path -PathType Leaf) { Get-Item -LiteralPath $result.Path } else { Get-ChildItem -LiteralPath $result.Path -Recurse -File -Filter '*.sqlite' }
        $files | Should -Not -BeNullOrEmpty
        $header = [System.Text.Encoding]::ASCII.GetString([System.IO.File]::ReadAllBytes(@($files)[0].FullName), 0, 15)
        $header | Should -Be 'SQLite format 3'
    }

    It 'binds -DataDir and -Namespace by property name' {
        $result = [pscustomobject]@{ DataDir = $script:DataDir; Namespace = 'users' } |
            New-StoreSnapshot -Path 'snapshots/users-piped.snapshot'
        $result.Path | Should -Exist
    }

    It 'writes nothing under -WhatIf' {
        $result = New-StoreSnapshot -DataDir $script:DataDir -Namespace users -Path 'snapshots/whatif.snapshot' -WhatIf
        $result | Should -BeNullOrEmpty
        Join-Path $script:DataDir 'backups' 'users' 'snapshots' 'whatif.snapshot' | Should -Not -Exist
        Join-Path $script:DataDir 'backups' 'users' 'snapshots' 'whatif.snapshot.tmp' | Should -Not -Exist
    }

    It 'refuses to overwrite an existing snapshot' {
        $null = New-StoreSnapshot -DataDir $script:DataDir -Namespace users -Path 'snapshots/once.snapshot'
        # SnapshotOperations.RequireFree: ConflictException('SnapshotExists') -> ResourceExists.
        $err = { New-StoreSnapshot -DataDir $script:DataDir -Namespace users -Path 'snapshots/once.snapshot' -ErrorAction Stop } |
            Should -Throw -ErrorId 'SnapshotExists,PSBackup.Commands.NewStoreSnapshotCommand' -PassThru
        $err.CategoryInfo.Category | Should -Be ([System.Management.Automation.ErrorCategory]::ResourceExists)
    }

    It 'rejects the path <Path>' -ForEach @(
        @{ Path = '../escape.snapshot' }
        @{ Path = '/tmp/absolute.snapshot' }
        @{ Path = 'snapshots/../../escape.snapshot' }
    ) {
        { New-StoreSnapshot -DataDir $script:DataDir -Namespace users -Path $Path -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidPath,PSBackup.Commands.NewStoreSnapshotCommand'
        Join-Path $script:DataDir 'backups' 'escape.snapshot' | Should -Not -Exist
    }

    It 'reports a missing data directory as DirectoryNotFound' {
        { New-StoreSnapshot -DataDir (Join-Path $TestDrive 'missing') -Namespace users -Path 's.snapshot' -ErrorAction Stop } |
            Should -Throw -ErrorId 'DirectoryNotFound,PSBackup.Commands.NewStoreSnapshotCommand'
    }
}

Describe 'New-StoreSnapshot on UnisonDB stores (unison.db)' {
    BeforeAll {
        $script:Oracle = Get-UnisonOracle
    }

    It 'snapshots a <Engine> store with its checkpoint, and Restore-StoreSnapshot lays it out as UnisonDB opens it' -ForEach @(
        @{ Fixture = 'v1-store-bolt'; Engine = 'bolt' }
        @{ Fixture = 'v1-store-lmdb'; Engine = 'lmdb' }
    ) {
        $data = Join-Path $TestDrive "u-$Engine"
        Copy-UnisonFixture -Name $Fixture -DataDir $data
        $snap = New-StoreSnapshot -DataDir $data -Namespace users -Path "snapshots/$Engine.db"
        $snap.Store | Should -Be $Engine
        $snap.Checkpoint.SegmentId | Should -Be 2
        $snap.Checkpoint.Offset | Should -Be 222128
        $snap.Checkpoint.LogIndex | Should -Be 420
        $snap.WalPosition.AppliedLogIndex | Should -Be 420

        $target = Join-Path $TestDrive "r-$Engine"
        $restored = Restore-StoreSnapshot -DataDir $data -Namespace users -TargetDataDir $target -Confirm:$false
        $restored.RestoredPath | Should -Be (Join-Path $target 'users' 'unison.db')
        if ($Engine -eq 'lmdb') {
            @(Get-ChildItem -LiteralPath $restored.RestoredPath -File).Name | Should -Be @('data.mdb')
        }
        $info = & $script:Oracle store-info -db $restored.RestoredPath
        $LASTEXITCODE | Should -Be 0
        ($info -join "`n") | Should -Match 'content sha256 cc0223e5d261bc7258d66ba39331b66f7f46695c3901d8870995a3f75cd953c8'
    }

    It 'Restore-StoreSnapshot into a fresh target lays out the archived WAL at the checkpoint, so UnisonDB starts from it; without it, warns' {
        $data = Join-Path $TestDrive 'u-walout'
        Copy-UnisonFixture -Name 'v1-store-lmdb' -DataDir $data
        $null = New-StoreSnapshot -DataDir $data -Namespace users -Path 'snapshots/s.db'

        $alone = Join-Path $TestDrive 'u-walout-alone'
        $r = Restore-StoreSnapshot -DataDir $data -Namespace users -TargetDataDir $alone -Confirm:$false -WarningVariable warned -WarningAction SilentlyContinue
        $r.WalPath | Should -BeNullOrEmpty
        ($warned -join ' ') | Should -Match 'cannot start from this store alone.*segment 2.*Restore-PointInTime'

        $null = Invoke-WalShip -DataDir $data -Namespace users -BackupDir 'wal'
        $target = Join-Path $TestDrive 'u-walout-target'
        $r = Restore-StoreSnapshot -DataDir $data -Namespace users -TargetDataDir $target -Confirm:$false -WarningVariable none
        $none | Should -BeNullOrEmpty
        $r.WalPath | Should -Be (Join-Path $target 'users' 'wal')
        Join-Path $r.WalPath '000000002.seg' | Should -Exist
        # UnisonDB's start-up recovery reads the checkpoint record (420) and finds nothing after it.
        $out = & $script:Oracle store-recover -data $target -ns users -engine LMDB -seg-size 262144
        $LASTEXITCODE | Should -Be 0
        ($out -join "`n") | Should -Match 'checkpoint: RecordProcessed=420 Pos=2:222128'
        $info = & $script:Oracle store-info -db (Join-Path $target 'users' 'unison.db')
        ($info -join "`n") | Should -Match 'content sha256 cc0223e5d261bc7258d66ba39331b66f7f46695c3901d8870995a3f75cd953c8'
    }

    It 'refuses a bbolt store a running server holds, naming -Endpoint, and writes no snapshot' {
        $data = Join-Path $TestDrive 'u-held'
        Copy-UnisonFixture -Name 'v1-store-bolt' -DataDir $data
        $file = Join-Path $data 'users' 'unison.db'
        # flock(1) takes bbolt's exclusive flock(2) on a descriptor the shell hands to sleep: one process holds it.
        $holder = Start-Process -FilePath bash -ArgumentList @('-c', '"exec 9<\"$0\"; flock -x 9; exec sleep 120"', "`"$file`"") -PassThru
        try {
            $deadline = [DateTime]::UtcNow.AddSeconds(30)
            do { & flock -n -s $file true; $held = $LASTEXITCODE -ne 0 } until ($held -or [DateTime]::UtcNow -gt $deadline)
            { New-StoreSnapshot -DataDir $data -Namespace users -Path 'snapshots/held.db' -ErrorAction Stop } |
                Should -Throw -ErrorId 'StoreInUse,PSBackup.Commands.NewStoreSnapshotCommand'
            Join-Path $data 'backups' 'users' 'snapshots' 'held.db' | Should -Not -Exist
        }
        finally {
            Stop-Process -Id $holder.Id -Force -ErrorAction SilentlyContinue
            $null = $holder.WaitForExit(10000)
        }
    }

    It 'reports an unreachable -Endpoint as a clear error and writes nothing' {
        $data = Join-Path $TestDrive 'u-endpoint'
        Copy-UnisonFixture -Name 'v1-store-bolt' -DataDir $data
        $listener = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
        $listener.Start(); $port = $listener.LocalEndpoint.Port; $listener.Stop()
        { New-StoreSnapshot -DataDir $data -Namespace users -Path 's/users.db' -Endpoint "http://127.0.0.1:$port" -EndpointTimeoutSeconds 10 -ErrorAction Stop } |
            Should -Throw -ErrorId 'EndpointUnreachable,PSBackup.Commands.NewStoreSnapshotCommand'
        Join-Path $data 'backups' 'users' 's' 'users.db' | Should -Not -Exist
    }
}

Describe 'Invoke-WalShip -Endpoint (UnisonDB copies its sealed segments)' {
    BeforeAll {
        $script:Oracle = Get-UnisonOracle
    }

    It 'archives only segments the walfs reader accepts: a flipped byte archives nothing, then all, then nothing new' {
        $data = Join-Path $TestDrive 'ship-endpoint'
        Copy-UnisonFixture -Name 'v1-small' -DataDir $data
        $archive = Join-Path $data 'backups' 'users' 'wal'
        $server = Start-UnisonTestServer -DataDir $data
        try {
            $server.CorruptSegmentId = 2
            { Invoke-WalShip -DataDir $data -Namespace users -BackupDir wal -Endpoint $server.Endpoint -ErrorAction Stop } |
                Should -Throw -ErrorId 'EndpointSegmentInvalid,PSBackup.Commands.InvokeWalShipCommand'
            @(Get-ChildItem -LiteralPath $archive -ErrorAction SilentlyContinue).Count | Should -Be 0
            @(Get-ChildItem -LiteralPath (Join-Path $data 'backups' 'users') -Directory -Filter '*.tmp').Count | Should -Be 0

            $server.CorruptSegmentId = $null
            $shipped = @(Invoke-WalShip -DataDir $data -Namespace users -BackupDir wal -Endpoint $server.Endpoint)
            @($shipped.SegmentId) | Should -Be @(1, 2, 3, 4, 5)
            foreach ($s in $shipped) {
                (Get-FileHash -LiteralPath $s.Path).Hash | Should -Be (Get-FileHash -LiteralPath (Join-Path $data 'users' 'wal' ('{0:D9}.seg' -f $s.SegmentId))).Hash
            }

            @(Invoke-WalShip -DataDir $data -Namespace users -BackupDir wal -Endpoint $server.Endpoint).Count | Should -Be 0
            $server.Requests[-1] | Should -Match '"afterSegmentId":5'
        }
        finally {
            $server.DisposeAsync().AsTask().Wait()
        }

        # UnisonDB's own reader replays the archive (on a copy: walfs creates its next segment in a folder it opens).
        $judged = Join-Path $TestDrive 'ship-endpoint-judged'
        Copy-Item -LiteralPath $archive -Destination $judged -Recurse
        $replay = & $script:Oracle replay -dir $judged -seg-size 1048576
        $LASTEXITCODE | Should -Be 0
        ($replay -join "`n") | Should -Match 'replayed 978 records, lsn 1\.\.978,'
    }
}

Describe 'The example database in UnisonDB''s layout (psbackup-example --store unison)' {
    BeforeAll {
        $script:Oracle = Get-UnisonOracle
        $script:UExample = Join-Path $TestDrive 'uexample'
        New-ExampleDatabase -Path $script:UExample -Seed 17 -Store unison
        $script:UExampleData = Join-Path $script:UExample 'unison'
    }

    It 'is snapshotted live as an LMDB store with its checkpoint, and a drill of it passes UnisonDB''s recovery' {
        Join-Path $script:UExampleData 'users' 'unison.db' 'data.mdb' | Should -Exist
        Join-Path $script:UExampleData 'users' 'pid.lock' | Should -Exist
        $snap = New-StoreSnapshot -DataDir $script:UExampleData -Namespace users -Path 'snapshots/users.db'
        $snap.Store | Should -Be 'lmdb'
        $snap.Checkpoint.LogIndex | Should -BeGreaterThan 0
        $segments = @(Get-WalSegment -DataDir $script:UExampleData -Namespace users)
        $segments[-1].Sealed | Should -BeFalse
        $snap.Checkpoint.LogIndex | Should -BeLessThan ($segments[-1].FirstLogIndex + $segments[-1].EntryCount - 1)
        # Every sealed segment and the active one's valid prefix (a partial).
        $shipped = @(Invoke-WalShip -DataDir $script:UExampleData -Namespace users -BackupDir 'wal')
        $shipped.Count | Should -Be $segments.Count
        $shipped[-1].Partial | Should -BeTrue

        # The last shipped record is the drill's target; UnisonDB's recovery must end exactly there.
        $result = Test-Restore -DataDir $script:UExampleData -Namespace users -UnisonOracle $script:Oracle -ScratchPath $TestDrive
        $result.Passed | Should -BeTrue -Because ($result.Errors -join "`n")
        $result.LastLogIndex | Should -Be ($segments[-1].FirstLogIndex + $segments[-1].EntryCount - 1)
        $result.UnisonRecovery.Checkpoint.LogIndex | Should -Be $result.LastLogIndex
    }
}
