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
        $shipped = @(Invoke-WalShip -DataDir $script:DataDir -Namespace users -BackupDir 'wal/archive')

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
        $again = @(Invoke-WalShip -DataDir $script:DataDir -Namespace users -BackupDir 'wal/archive')
        $again.Count | Should -Be $script:Sealed.Count
        $again.AlreadyPresent | Should -Not -Contain $false
    }

    It 'ships only segments after -AfterSegmentId' {
        $after = $script:Sealed[0].SegmentId
        $shipped = @(Invoke-WalShip -DataDir $script:DataDir -Namespace users -BackupDir 'wal/incremental' -AfterSegmentId $after)
        $shipped.Count | Should -Be ($script:Sealed.Count - 1)
        $shipped.SegmentId | Should -Not -Contain $after
    }

    It 'never ships the active segment' {
        $active = @(Get-WalSegment -DataDir $script:DataDir -Namespace users | Where-Object { -not $_.Sealed })
        $active.Count | Should -Be 1
        $shipped = @(Invoke-WalShip -DataDir $script:DataDir -Namespace users -BackupDir 'wal/active-check')
        # Not vacuous: the sealed segments were shipped, only the active one was left out.
        $shipped.Count | Should -Be $script:Sealed.Count
        $shipped.SegmentId | Should -Not -Contain $active[0].SegmentId
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
