#Requires -Version 7.4
# Pester 5: the Windows path rules as the cmdlets apply them on every OS: a backslash typed in a
# relative path is a folder separator, names Windows cannot hold are refused before anything is
# written, and result types keep their type literals although the module runs in its own load
# context. (The Windows code paths themselves run under Wine: scripts/wine-test.sh.)

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot '..' 'out' 'PSBackup' 'PSBackup.psd1') -Force -ErrorAction Stop
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')

    $script:Fixture = Join-Path $TestDrive 'example'
    New-ExampleDatabase -Path $script:Fixture -Seed 17
    $script:DataDir = Join-Path $script:Fixture 'unison'
    $script:BackupRoot = Join-Path $script:DataDir 'backups' 'users'
}

AfterAll {
    Remove-Module PSBackup -Force -ErrorAction SilentlyContinue
}

Describe 'Relative paths typed with backslashes' {
    It 'New-StoreSnapshot -Path snapshots\users.db writes snapshots/users.db' {
        $result = New-StoreSnapshot -DataDir $script:DataDir -Namespace users -Path 'snapshots\users.db'
        $result | Should -BeOfType ([PSBackup.Engine.Snapshots.StoreSnapshotResult])
        Join-Path $script:BackupRoot 'snapshots' 'users.db' | Should -Exist
    }

    It 'Invoke-WalShip -BackupDir wal\archive ships into wal/archive' {
        $shipped = @(Invoke-WalShip -DataDir $script:DataDir -Namespace users -BackupDir 'wal\archive')
        $shipped.Count | Should -BeGreaterThan 0
        $shipped[0] | Should -BeOfType ([PSBackup.Engine.Wal.ShippedSegment])
        @(Get-ChildItem -LiteralPath (Join-Path $script:BackupRoot 'wal' 'archive') -Filter '*.wal').Count | Should -Be @($shipped | Where-Object { -not $_.Partial }).Count
        @(Get-ChildItem -LiteralPath (Join-Path $script:BackupRoot 'wal' 'archive') -Filter '*.partial-*').Count | Should -Be @($shipped | Where-Object Partial).Count
    }

    It 'Restore-StoreSnapshot -Snapshot snapshots\users.db names the snapshot written above' {
        $target = Join-Path $TestDrive 'restored-data'
        $null = New-Item -ItemType Directory -Path $target
        $result = Restore-StoreSnapshot -DataDir $script:DataDir -Namespace users -Snapshot 'snapshots\users.db' -TargetDataDir $target -Confirm:$false
        $result.Snapshot | Should -Be 'snapshots/users.db'
    }
}

Describe 'Names Windows cannot hold' {
    It 'refuses <Path> before anything is written' -ForEach @(
        @{ Path = 'snapshots\con.db' }
        @{ Path = 'nul' }
        @{ Path = 'snap:stream' }
        @{ Path = 'snapshots\trailing.' }
        @{ Path = 'a|b' }
        @{ Path = '\\?\C:\x' }
        @{ Path = 'C:\x' }
    ) {
        $before = Get-TreeState $script:DataDir
        { New-StoreSnapshot -DataDir $script:DataDir -Namespace users -Path $Path -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidPath,PSBackup.Commands.NewStoreSnapshotCommand'
        Get-TreeState $script:DataDir | Should -Be $before
    }
}

Describe 'Type literals of the isolated module' {
    It 'resolves the result types by their full names and removes them with the module' {
        [PSBackup.Engine.ObjectStore.ObjectBackupResult].Assembly.GetName().Name | Should -Be 'PSBackup.Engine'
        [Runtime.Loader.AssemblyLoadContext]::GetLoadContext([PSBackup.Engine.ObjectStore.ObjectBackupResult].Assembly).Name | Should -Be 'PSBackup'
        $accelerators = [psobject].Assembly.GetType('System.Management.Automation.TypeAccelerators')
        $accelerators::Get.ContainsKey('PSBackup.Engine.Wal.WalSegmentInfo') | Should -BeTrue
        Remove-Module PSBackup -Force
        $accelerators::Get.ContainsKey('PSBackup.Engine.Wal.WalSegmentInfo') | Should -BeFalse
        Import-Module (Join-Path $PSScriptRoot '..' 'out' 'PSBackup' 'PSBackup.psd1') -Force -ErrorAction Stop
        $accelerators::Get.ContainsKey('PSBackup.Engine.Wal.WalSegmentInfo') | Should -BeTrue
    }
}
