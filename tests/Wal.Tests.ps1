#Requires -Version 7.4
# Pester 5: Get-WalSegment and Invoke-WalShip against the example namespace store (unison:
# namespaces users and events, each with sealed WAL segments and one active segment).

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot '..' 'out' 'PSBackup' 'PSBackup.psd1') -Force -ErrorAction Stop
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')

    $script:Fixture = Join-Path $TestDrive 'example'
    New-ExampleDatabase -Path $script:Fixture -Seed 11
    $script:DataDir = Join-Path $script:Fixture 'unison'
}

AfterAll {
    Remove-Module PSBackup -Force -ErrorAction SilentlyContinue
}

Describe 'Get-WalSegment' {
    It 'writes one WalSegmentInfo per segment, in id order, the newest active' {
        $segments = @(Get-WalSegment -DataDir $script:DataDir -Namespace users)

        $segments.Count | Should -BeGreaterThan 1
        $segments | Should -BeOfType ([PSBackup.Engine.Wal.WalSegmentInfo])
        $segments.Namespace | Should -Not -Contain 'events'
        @($segments.SegmentId) | Should -Be @($segments.SegmentId | Sort-Object)
        $segments[-1].Sealed | Should -BeFalse
        @($segments[0..($segments.Count - 2)].Sealed) | Should -Not -Contain $false
        $segments.Valid | Should -Not -Contain $false
        $segments[0].Path | Should -Exist
    }

    It 'keeps log indexes contiguous across segments' {
        $segments = @(Get-WalSegment -DataDir $script:DataDir -Namespace users)
        for ($i = 1; $i -lt $segments.Count; $i++) {
            $segments[$i].FirstLogIndex | Should -Be ($segments[$i - 1].FirstLogIndex + $segments[$i - 1].EntryCount)
        }
    }

    It 'returns only the segment named by -SegmentId' {
        $all = @(Get-WalSegment -DataDir $script:DataDir -Namespace users)
        $one = @(Get-WalSegment -DataDir $script:DataDir -Namespace users -SegmentId $all[0].SegmentId)
        $one.Count | Should -Be 1
        $one[0].SegmentId | Should -Be $all[0].SegmentId
    }

    It 'binds -DataDir and -Namespace by property name' {
        $segments = @([pscustomobject]@{ DataDir = $script:DataDir; Namespace = 'events' } | Get-WalSegment)
        $segments.Count | Should -BeGreaterThan 0
        $segments.Namespace | Should -Not -Contain 'users'
    }

    It 'resolves a relative -DataDir against the current PowerShell location' {
        Push-Location -LiteralPath $script:Fixture
        try {
            $segments = @(Get-WalSegment -DataDir 'unison' -Namespace users)
        }
        finally {
            Pop-Location
        }
        $segments.Count | Should -BeGreaterThan 0
    }

    It 'warns about a WAL gap' {
        $copy = Join-Path $TestDrive 'gap'
        Copy-Item -LiteralPath $script:DataDir -Destination $copy -Recurse
        $sealed = @(Get-WalSegment -DataDir $copy -Namespace users | Where-Object Sealed)
        if ($sealed.Count -lt 3) {
            Set-ItResult -Skipped -Because 'the example WAL has fewer than three sealed segments'
            return
        }
        Remove-Item -LiteralPath $sealed[1].Path
        $null = Get-WalSegment -DataDir $copy -Namespace users -WarningVariable warnings -WarningAction SilentlyContinue
        ($warnings -join ' ') | Should -Match 'gap'
    }

    It 'rejects the unsafe namespace <Namespace>' -ForEach @(
        @{ Namespace = '../users' }
        @{ Namespace = 'users/../events' }
        @{ Namespace = '.hidden' }
    ) {
        { Get-WalSegment -DataDir $script:DataDir -Namespace $Namespace -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidName,PSBackup.Commands.GetWalSegmentCommand'
    }

    It 'reports a missing data directory as DirectoryNotFound' {
        $err = { Get-WalSegment -DataDir (Join-Path $TestDrive 'missing') -Namespace users -ErrorAction Stop } |
            Should -Throw -ErrorId 'DirectoryNotFound,PSBackup.Commands.GetWalSegmentCommand' -PassThru
        $err.CategoryInfo.Category | Should -Be ([System.Management.Automation.ErrorCategory]::ObjectNotFound)
    }
}

Describe 'Invoke-WalShip' {
    BeforeAll {
        $script:Sealed = @(Get-WalSegment -DataDir $script:DataDir -Namespace users | Where-Object Sealed)
        $script:ArchiveDir = Join-Path $script:DataDir 'backups' 'users' 'wal' 'archive'
    }

    It 'writes nothing under -WhatIf' {
        $null = Invoke-WalShip -DataDir $script:DataDir -Namespace users -BackupDir 'wal/archive' -WhatIf
        if (Test-Path -LiteralPath $script:ArchiveDir) {
            @(Get-ChildItem -LiteralPath $script:ArchiveDir -File) | Should -BeNullOrEmpty
        }
    }

    It 'copies every sealed segment and writes one ShippedSegment per segment' {
        $shipped = @(Invoke-WalShip -DataDir $script:DataDir -Namespace users -BackupDir 'wal/archive' -SealedOnly)

        $shipped | Should -BeOfType ([PSBackup.Engine.Wal.ShippedSegment])
        @($shipped.SegmentId) | Should -Be @($script:Sealed.SegmentId)
        foreach ($segment in $shipped) {
            $segment.Namespace | Should -Be 'users'
            $segment.Path | Should -Exist
            $segment.Path | Should -BeLike (Join-Path $script:ArchiveDir '*')
            $segment.AlreadyPresent | Should -BeFalse
            (Get-FileHash -LiteralPath $segment.Path -Algorithm SHA256).Hash | Should -Be $segment.Sha256.ToUpperInvariant()
        }
    }

    It 'is idempotent: a re-run reports the segments as already present' {
        $again = @(Invoke-WalShip -DataDir $script:DataDir -Namespace users -BackupDir 'wal/archive' -SealedOnly)
        $again.Count | Should -Be $script:Sealed.Count
        $again.AlreadyPresent | Should -Not -Contain $false
    }

    It 'ships only segments after -AfterSegmentId' {
        $after = $script:Sealed[0].SegmentId
        $shipped = @(Invoke-WalShip -DataDir $script:DataDir -Namespace users -BackupDir 'wal/incremental' -AfterSegmentId $after -SealedOnly)
        $shipped.Count | Should -Be ($script:Sealed.Count - 1)
        $shipped.SegmentId | Should -Not -Contain $after
    }

    It 'with -SealedOnly never ships the active segment' {
        $active = @(Get-WalSegment -DataDir $script:DataDir -Namespace users | Where-Object { -not $_.Sealed })
        $active.Count | Should -Be 1
        $shipped = @(Invoke-WalShip -DataDir $script:DataDir -Namespace users -BackupDir 'wal/active-check' -SealedOnly)
        # Not vacuous: the sealed segments were shipped, only the active one was left out.
        $shipped.Count | Should -Be $script:Sealed.Count
        $shipped.SegmentId | Should -Not -Contain $active[0].SegmentId
    }

    It 'by default also ships the active segment''s valid prefix as a partial under its own name' {
        $active = @(Get-WalSegment -DataDir $script:DataDir -Namespace users | Where-Object { -not $_.Sealed })[0]
        $shipped = @(Invoke-WalShip -DataDir $script:DataDir -Namespace users -BackupDir 'wal/with-partial')
        @($shipped | Where-Object { -not $_.Partial }).SegmentId | Should -Be @($script:Sealed.SegmentId)
        $partial = @($shipped | Where-Object Partial)
        $partial.Count | Should -Be 1
        $partial[0].SegmentId | Should -Be $active.SegmentId
        $partial[0].EntryCount | Should -Be $active.EntryCount
        $partial[0].ObservedAt | Should -Not -BeNullOrEmpty
        (Split-Path -Leaf $partial[0].Path) | Should -Match ('^{0}\.partial-\d{{8}}T\d{{9}}Z$' -f [regex]::Escape($active.FileName))
        # Get-WalSegment of the archive folder never takes the partial for a segment.
        $archive = Join-Path $script:DataDir 'backups' 'users' 'wal' 'with-partial'
        @(Get-ChildItem -LiteralPath $archive -File).Count | Should -Be ($script:Sealed.Count + 1)
        # Shipping again with nothing new: the same partial, already present.
        $again = @(Invoke-WalShip -DataDir $script:DataDir -Namespace users -BackupDir 'wal/with-partial' | Where-Object Partial)
        $again[0].AlreadyPresent | Should -BeTrue
    }

    It 'rejects the backup directory <BackupDir>' -ForEach @(
        @{ BackupDir = '../escape' }
        @{ BackupDir = 'wal/../../escape' }
        @{ BackupDir = '/tmp/absolute' }
        @{ BackupDir = 'C:\absolute' }
    ) {
        { Invoke-WalShip -DataDir $script:DataDir -Namespace users -BackupDir $BackupDir -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidPath,PSBackup.Commands.InvokeWalShipCommand'
        Join-Path $script:DataDir 'backups' 'escape' | Should -Not -Exist
        Join-Path $script:DataDir 'escape' | Should -Not -Exist
    }

    It 'rejects an unsafe namespace' {
        { Invoke-WalShip -DataDir $script:DataDir -Namespace '../users' -BackupDir 'wal/x' -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidName,PSBackup.Commands.InvokeWalShipCommand'
    }

    It 'rejects a negative -AfterSegmentId at binding' {
        { Invoke-WalShip -DataDir $script:DataDir -Namespace users -BackupDir 'wal/x' -AfterSegmentId -1 -ErrorAction Stop } |
            Should -Throw -ErrorId 'ParameterArgumentValidationError,PSBackup.Commands.InvokeWalShipCommand'
    }
}

Describe 'A real UnisonDB WAL (walfs v1 and v2 fixtures written by UnisonDB''s own code)' {
    BeforeAll {
        $script:Oracle = Get-UnisonOracle
    }

    It 'lists the <Fixture> segments with their own log indexes and record times, as UnisonDB replays them' -ForEach @(
        @{ Fixture = 'v1-small'; Version = 1; V2 = $false }
        @{ Fixture = 'v2-small'; Version = 2; V2 = $true }
    ) {
        $data = Join-Path $TestDrive "list-$Fixture"
        Copy-UnisonFixture -Name $Fixture -DataDir $data
        $segments = @(Get-WalSegment -DataDir $data -Namespace users)
        $segments.Count | Should -Be 6
        $segments.FileName | Should -Be @('000000001.seg', '000000002.seg', '000000003.seg', '000000004.seg', '000000005.seg', '000000006.seg')
        $segments.Version | Sort-Object -Unique | Should -Be $Version
        $segments.Valid | Should -Not -Contain $false
        # The oracle's own per-record listing (replay -v) decides the first/last log index and HLC of each segment.
        $oracle = Get-UnisonOracle -V2:$V2
        $lines = & $oracle replay -dir (Join-Path $data 'users' 'wal') -seg-size 1048576 -v | Where-Object { $_ -match '^\s+SegmentID=' }
        foreach ($s in $segments) {
            $mine = @($lines | Where-Object { $_ -match "SegmentID=$($s.SegmentId), " })
            $first = [regex]::Match($mine[0], 'lsn=(\d+) hlc=(\d+)')
            $last = [regex]::Match($mine[-1], 'lsn=(\d+) hlc=(\d+)')
            $s.FirstLogIndex | Should -Be ([long]$first.Groups[1].Value)
            $s.LastLogIndex | Should -Be ([long]$last.Groups[1].Value)
            $s.FirstRecordTime.ToUnixTimeMilliseconds() | Should -Be ([long]$first.Groups[2].Value)
            $s.LastRecordTime.ToUnixTimeMilliseconds() | Should -Be ([long]$last.Groups[2].Value)
        }
    }

    It 'ships the sealed segments locally and to a repository under their own names; a second ship adds nothing' {
        $data = Join-Path $TestDrive 'ship-v1'
        Copy-UnisonFixture -Name 'v1-small' -DataDir $data
        $local = @(Invoke-WalShip -DataDir $data -Namespace users -BackupDir 'wal' -SealedOnly)
        $local.SegmentId | Should -Be @(1, 2, 3, 4, 5)
        ($local.Path | Split-Path -Leaf) | Should -Be @('000000001.seg', '000000002.seg', '000000003.seg', '000000004.seg', '000000005.seg')
        @(Invoke-WalShip -DataDir $data -Namespace users -BackupDir 'wal' -SealedOnly).AlreadyPresent | Should -Not -Contain $false

        $repo = Join-Path $TestDrive 'ship-v1-repo'
        $null = Initialize-BackupRepository -Repository $repo -Unencrypted
        $first = @(Invoke-WalShip -DataDir $data -Namespace users -Repository $repo -SealedOnly)
        @($first | Where-Object { -not $_.AlreadyPresent }).SegmentId | Should -Be @(1, 2, 3, 4, 5)
        $second = @(Invoke-WalShip -DataDir $data -Namespace users -Repository $repo -SealedOnly)
        $second.Count | Should -Be 5
        $second.AlreadyPresent | Should -Not -Contain $false
    }

    It 'reports a flipped sidecar byte with the segment, offset and reason, and never ships it' {
        $data = Join-Path $TestDrive 'flip-sidecar'
        Copy-UnisonFixture -Name 'v1-small' -DataDir $data
        $idx = Join-Path $data 'users' 'wal' '000000003.seg.idx'
        $bytes = [System.IO.File]::ReadAllBytes($idx)
        $bytes[40] = $bytes[40] -bxor 0x10
        [System.IO.File]::WriteAllBytes($idx, $bytes)

        $bad = Get-WalSegment -DataDir $data -Namespace users -SegmentId 3 -WarningAction SilentlyContinue
        $bad.Valid | Should -BeFalse
        $bad.ErrorOffset | Should -Be 32
        $bad.Error | Should -Match "000000003\.seg\.idx' entry 2 at sidecar offset 32"
        { Invoke-WalShip -DataDir $data -Namespace users -BackupDir 'wal' -ErrorAction Stop } |
            Should -Throw -ErrorId 'WalSegmentCorrupt,PSBackup.Commands.InvokeWalShipCommand'
        Join-Path $data 'backups' 'users' 'wal' | Should -Not -Exist
    }

    It 'refuses a WAL folder without any segment, and one mixing .seg and .wal names' {
        $data = Join-Path $TestDrive 'no-segments'
        $wal = New-Item -ItemType Directory -Path (Join-Path $data 'users' 'wal') -Force
        Set-Content -LiteralPath (Join-Path $wal 'segment-1.log') -Value 'x'
        { Get-WalSegment -DataDir $data -Namespace users -ErrorAction Stop } |
            Should -Throw -ErrorId 'WalNoSegments,PSBackup.Commands.GetWalSegmentCommand'
        { Invoke-WalShip -DataDir $data -Namespace users -BackupDir 'wal' -ErrorAction Stop } |
            Should -Throw -ErrorId 'WalNoSegments,PSBackup.Commands.InvokeWalShipCommand'

        $mixed = Join-Path $TestDrive 'mixed'
        Copy-UnisonFixture -Name 'v1-small' -DataDir $mixed
        Copy-Item -LiteralPath (Join-Path $mixed 'users' 'wal' '000000006.seg') -Destination (Join-Path $mixed 'users' 'wal' '000000007.wal')
        { Get-WalSegment -DataDir $mixed -Namespace users -ErrorAction Stop } |
            Should -Throw -ErrorId 'WalMixedNaming,PSBackup.Commands.GetWalSegmentCommand'
    }

    It 'warns with the exact log index when UnisonDB consumed one on a failed append, and still ships' {
        $data = Join-Path $TestDrive 'fail-at'
        $wal = New-Item -ItemType Directory -Path (Join-Path $data 'users' 'wal') -Force
        $null = & $script:Oracle gen -dir $wal -seg-size 262144 -records 120 -sessions 1 -fail-at 30 -seed 9
        $LASTEXITCODE | Should -Be 0
        $null = Get-WalSegment -DataDir $data -Namespace users -WarningVariable warnings -WarningAction SilentlyContinue
        ($warnings -join ' ') | Should -Match 'log index 31 was never written'
        ($warnings -join ' ') | Should -Not -Match 'gap'
        @(Invoke-WalShip -DataDir $data -Namespace users -BackupDir 'wal').Count | Should -BeGreaterThan 0
    }

    It 'makes Get-BackupHealth raise a Critical alert while nothing of the WAL is archived, and for a WAL it cannot archive' {
        $data = Join-Path $TestDrive 'health'
        Copy-UnisonFixture -Name 'v1-small' -DataDir $data
        $alert = @(Get-BackupHealth -DataDir $data | Where-Object { $_.Kind -eq 'wal-segment' })
        $alert.Code | Should -Be 'NoSuccessfulBackup'
        $alert.Severity | Should -Be 'Critical'
        $null = Invoke-WalShip -DataDir $data -Namespace users -BackupDir 'wal'
        @(Get-BackupHealth -DataDir $data | Where-Object { $_.Kind -eq 'wal-segment' }) | Should -BeNullOrEmpty

        Get-ChildItem -LiteralPath (Join-Path $data 'users' 'wal') -Filter '0*' | Rename-Item -NewName { 'x' + $_.Name }
        $none = @(Get-BackupHealth -DataDir $data | Where-Object Code -EQ 'WalNoSegments')
        $none.Severity | Should -Be 'Critical'
        Remove-Item -LiteralPath (Join-Path $data 'users' 'wal') -Recurse
        @(Get-BackupHealth -DataDir $data | Where-Object Code -EQ 'WalDirectoryMissing').Severity | Should -Be 'Critical'
    }

    It '-Continuous ships new records as they are written, writes -Verbose lag lines and stops cleanly when the pipeline is stopped' {
        $data = Join-Path $TestDrive 'follow'
        Copy-UnisonFixture -Name 'v1-small' -DataDir $data
        $module = Join-Path $PSScriptRoot '..' 'out' 'PSBackup' 'PSBackup.psd1'
        $ps = [powershell]::Create()
        $null = $ps.AddScript("Import-Module '$module'; Invoke-WalShip -DataDir '$data' -Namespace users -BackupDir wal -Continuous -Interval 200ms -Verbose")
        $out = [System.Management.Automation.PSDataCollection[psobject]]::new()
        $async = $ps.BeginInvoke([System.Management.Automation.PSDataCollection[psobject]]::new(), $out)
        try {
            Wait-Until { Read-Collection $out | Where-Object { $_.Partial -and $_.LastLogIndex -eq 1005 } } 'the first partial'
            @(Read-Collection $out | Where-Object { -not $_.Partial }).SegmentId | Should -Be @(1, 2, 3, 4, 5)
            # UnisonDB appends three records (the oracle's gen, LSN 1006..1008): they ship as a new partial.
            & (Get-UnisonOracle) gen -dir (Join-Path $data 'users' 'wal') -seg-size 1048576 -records 3 -sessions 1 -start-lsn 1006 -seed 4 | Out-Null
            $LASTEXITCODE | Should -Be 0
            Wait-Until { Read-Collection $out | Where-Object { $_.Partial -and $_.LastLogIndex -eq 1008 } } 'the new records to ship'
            Wait-Until { Read-Collection $ps.Streams.Verbose | Where-Object { $_.Message -match '^users: lag [0-9.]+ s, 0 record\(s\); live log index 1008, archived 1008' } } 'a lag line'
        }
        finally {
            $ps.Stop()   # what Ctrl+C does: StopProcessing cancels the follower
        }
        $async.IsCompleted | Should -BeTrue
        $ps.InvocationStateInfo.State | Should -Be 'Stopped'
        $ps.Streams.Error.Count | Should -Be 0
        # One object per shipped item, each prefix once.
        $partials = @(Read-Collection $out | Where-Object Partial)
        @($partials | Sort-Object LastLogIndex -Unique).Count | Should -Be $partials.Count
        $ps.Dispose()
    }

    It '-Continuous into a repository says in each -Verbose lag line where the pass spent its time, and leaves the repository checking clean' {
        $data = Join-Path $TestDrive 'follow-repo'
        $repo = Join-Path $TestDrive 'follow-repo-store'
        Copy-UnisonFixture -Name 'v1-small' -DataDir $data
        $null = Initialize-BackupRepository -Repository $repo -Unencrypted
        $module = Join-Path $PSScriptRoot '..' 'out' 'PSBackup' 'PSBackup.psd1'
        $ps = [powershell]::Create()
        $null = $ps.AddScript("Import-Module '$module'; Invoke-WalShip -DataDir '$data' -Namespace users -Repository '$repo' -Continuous -Interval 200ms -Verbose")
        $out = [System.Management.Automation.PSDataCollection[psobject]]::new()
        $async = $ps.BeginInvoke([System.Management.Automation.PSDataCollection[psobject]]::new(), $out)
        try {
            Wait-Until { Read-Collection $out | Where-Object { $_.Partial -and $_.LastLogIndex -eq 1005 } } 'the first partial'
            foreach ($round in 1..3) {
                $first = 1005 + 3 * ($round - 1) + 1
                & (Get-UnisonOracle) gen -dir (Join-Path $data 'users' 'wal') -seg-size 1048576 -records 3 -sessions 1 -start-lsn $first -seed (10 + $round) | Out-Null
                $LASTEXITCODE | Should -Be 0
                Wait-Until { Read-Collection $out | Where-Object { $_.Partial -and $_.LastLogIndex -eq ($first + 2) } } "records $first..$($first + 2) to ship"
            }
            # A pass that shipped names its phases: the lock it took, the prefix it validated, the commit.
            Wait-Until { Read-Collection $ps.Streams.Verbose | Where-Object { $_.Message -match '^users: lag [0-9.]+ s, 0 record\(s\); live log index 1014, archived 1014; 1 item\(s\) shipped; pass [0-9.]+ ms: .*\block [0-9.]+.*\bscan [0-9.]+.*\bcommit [0-9.]+.* \(ms\)$' } } 'a lag line with the pass cost'
        }
        finally {
            $ps.Stop()
        }
        $async.IsCompleted | Should -BeTrue
        $ps.Streams.Error.Count | Should -Be 0
        $ps.Dispose()
        $check = Test-BackupRepository -Repository $repo -ReadData
        $check.Passed | Should -BeTrue
        # The older partials were forgotten as each new one was committed: one partial of segment 6 is left.
        @(Get-Backup -Repository $repo -Namespace users | Where-Object { $_.SegmentId -eq 6 }).Count | Should -Be 1
    }

    It 'shows the WAL lag in Export-BackupMetric and alerts on it in Get-BackupHealth -MaxWalLag' {
        $data = Join-Path $TestDrive 'lag'
        Copy-UnisonFixture -Name 'v1-small' -DataDir $data
        $null = Invoke-WalShip -DataDir $data -Namespace users -BackupDir 'wal'
        $text = (Export-BackupMetric -DataDir $data) -join "`n"
        $text | Should -Match '(?m)^backup_wal_lag_records\{namespace="users"\} 0$'
        $text | Should -Match '(?m)^backup_wal_lag_seconds\{namespace="users"\} 0$'
        & (Get-UnisonOracle) gen -dir (Join-Path $data 'users' 'wal') -seg-size 1048576 -records 2 -sessions 1 -start-lsn 1006 -seed 5 | Out-Null
        $LASTEXITCODE | Should -Be 0
        ((Export-BackupMetric -DataDir $data) -join "`n") | Should -Match '(?m)^backup_wal_lag_records\{namespace="users"\} 2$'
        $alert = @(Get-BackupHealth -DataDir $data -MaxWalLag 1ms | Where-Object Code -EQ 'WalLagTooHigh')
        $alert.Count | Should -Be 1
        $alert[0].Severity | Should -Be 'Critical'
        @(Get-BackupHealth -DataDir $data | Where-Object Code -EQ 'WalLagTooHigh') | Should -BeNullOrEmpty   # default 5min
    }

    It '-Continuous on a repository that is not there ends at once with RepositoryNotFound and creates nothing' {
        $data = Join-Path $TestDrive 'follow-missing'
        Copy-UnisonFixture -Name 'v1-small' -DataDir $data
        $repo = Join-Path $TestDrive 'no-such-repo'
        $module = Join-Path $PSScriptRoot '..' 'out' 'PSBackup' 'PSBackup.psd1'
        # In a runspace of its own, so a follower that kept retrying fails the test instead of hanging it.
        $ps = [powershell]::Create()
        $null = $ps.AddScript("Import-Module '$module'; try { Invoke-WalShip -DataDir '$data' -Namespace users -Repository '$repo' -Continuous -Interval 100ms } catch { `$_.FullyQualifiedErrorId }")
        $async = $ps.BeginInvoke()
        try {
            $async.AsyncWaitHandle.WaitOne([TimeSpan]::FromMinutes(2)) | Should -BeTrue -Because 'the follower must not retry a repository that is not there'
            $ps.EndInvoke($async) | Should -Be 'RepositoryNotFound,PSBackup.Commands.InvokeWalShipCommand'
        }
        finally {
            if (-not $async.IsCompleted) { $ps.Stop() }
            $ps.Dispose()
        }
        Test-Path -LiteralPath $repo | Should -BeFalse
        Test-Path -LiteralPath (Join-Path $data 'backups' 'users' 'wal') | Should -BeFalse
    }

    It '-Interval without -Continuous is refused' {
        { Invoke-WalShip -DataDir $TestDrive -Namespace users -BackupDir wal -Interval 1s -ErrorAction Stop } |
            Should -Throw -ErrorId 'IntervalWithoutContinuous,PSBackup.Commands.InvokeWalShipCommand'
    }
}
