#Requires -Version 7.4
# Pester 5: argument completion as a user gets it (TabExpansion2 on a command line): namespaces,
# tenant dirs, objects and backup ids from what is already on the line, and one spelling per -Kind.

BeforeAll {
    $env:PSBACKUP_AUDIT_LOG = Join-Path $TestDrive 'audit.jsonl'
    Import-Module (Join-Path $PSScriptRoot '..' 'out' 'PSBackup' 'PSBackup.psd1') -Force -ErrorAction Stop
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')

    $script:Fixture = Join-Path $TestDrive 'example'
    New-ExampleDatabase -Path $script:Fixture -Seed 41
    $script:DbRoot = Join-Path $script:Fixture 'shard-db'
    $script:DataDir = Join-Path $script:Fixture 'unison'
    $script:Repo = Join-Path $TestDrive 'repo'
    $null = Initialize-BackupRepository -Repository $script:Repo -Unencrypted
    $script:Object = New-ObjectBackup -DbRoot $script:DbRoot -Dir acme -Object orders -Repository $script:Repo
    $script:Snapshot = New-StoreSnapshot -DataDir $script:DataDir -Namespace users -Repository $script:Repo
    $script:Local = New-ObjectBackup -DbRoot $script:DbRoot -Dir globex -Object inventory
    $null = New-StoreSnapshot -DataDir $script:DataDir -Namespace events -Path 'snapshots/events-1.snapshot'

    function Complete([string] $Line) {
        # The cursor at the end of the line, as when Tab is pressed there.
        @((TabExpansion2 -inputScript $Line -cursorColumn $Line.Length).CompletionMatches)
    }
}

AfterAll {
    Remove-Item Env:PSBACKUP_AUDIT_LOG -ErrorAction SilentlyContinue
    Remove-Module PSBackup -Force -ErrorAction SilentlyContinue
}

Describe 'Argument completion' {
    It 'completes -Namespace from -DataDir' {
        $matches = Complete "Get-WalSegment -DataDir '$script:DataDir' -Namespace "
        @($matches.CompletionText | Sort-Object -Unique) | Should -Be @('events', 'users')
        $matches[0].ResultType | Should -Be 'ParameterValue'
        (Complete "Invoke-WalShip -DataDir '$script:DataDir' -Namespace us").CompletionText | Should -Be 'users'
    }

    It 'completes -Namespace from -Repository' {
        @((Complete "Restore-PointInTime -Repository '$script:Repo' -Namespace ").CompletionText) | Should -Be @('users')
    }

    It 'completes -Dir and -Object from -DbRoot, leaving backup folders out' {
        @((Complete "New-ObjectBackup -DbRoot '$script:DbRoot' -Dir ").CompletionText) | Should -Be @('acme', 'globex')
        @((Complete "New-ObjectBackup -DbRoot '$script:DbRoot' -Dir globex -Object ").CompletionText) | Should -Be @('inventory')
        @((Complete "New-ObjectBackup -DbRoot '$script:DbRoot' -Dir acme -Object c").CompletionText) | Should -Be @('customers')
        # Backing up into a repository still reads the live tree.
        @((Complete "New-ObjectBackup -DbRoot '$script:DbRoot' -Repository '$script:Repo' -Dir ").CompletionText) | Should -Be @('acme', 'globex')
        @((Complete "Invoke-WalShip -DataDir '$script:DataDir' -Repository '$script:Repo' -Namespace ").CompletionText) | Should -Be @('events', 'users')
    }

    It 'completes -Dir and -Object from the objects a repository holds' {
        @((Complete "Restore-ObjectBackup -Repository '$script:Repo' -DbRoot '$script:DbRoot' -Dir ").CompletionText) | Should -Be @('acme')
        @((Complete "Restore-ObjectBackup -Repository '$script:Repo' -DbRoot '$script:DbRoot' -Dir acme -Object ").CompletionText) | Should -Contain 'orders'
    }

    It 'completes -BackupId from the repository, narrowed by what is bound, with a tooltip' {
        $ids = Complete "Restore-StoreSnapshot -Repository '$script:Repo' -Namespace users -BackupId "
        @($ids.CompletionText) | Should -Be @($script:Snapshot.BackupId)
        $ids[0].ToolTip | Should -Match 'store-snapshot of users'
        @((Complete "Restore-ObjectBackup -Repository '$script:Repo' -Dir acme -Object orders -BackupId ").CompletionText) | Should -Be @($script:Object.BackupId)
        @((Complete "Remove-Backup -Repository '$script:Repo' -BackupId $($script:Object.BackupId.Substring(0, 6))").CompletionText) | Should -Be @($script:Object.BackupId)
    }

    It 'completes local backups: -From from -DbRoot/-Dir, -Snapshot from the backup root' {
        @((Complete "Restore-ObjectBackup -DbRoot '$script:DbRoot' -Dir globex -Object inventory -From ").CompletionText) | Should -Be @($script:Local.BackupName)
        @((Complete "Restore-StoreSnapshot -DataDir '$script:DataDir' -Namespace events -Snapshot ").CompletionText) | Should -Be @('snapshots/events-1.snapshot')
    }

    It 'offers one spelling per -Kind and takes the command line''s too' {
        @((Complete 'Get-Backup -Kind ').CompletionText) | Should -Be @('Object', 'StoreSnapshot', 'WalSegment')
        (Get-Backup -Repository $script:Repo -Kind store-snapshot).BackupId | Should -Be $script:Snapshot.BackupId
        (Get-Backup -Repository $script:Repo -Kind StoreSnapshot).BackupId | Should -Be $script:Snapshot.BackupId
        { Get-Backup -Repository $script:Repo -Kind snapshot -ErrorAction Stop } | Should -Throw -ErrorId 'CannotConvertArgumentNoMessage,PSBackup.Commands.GetBackupCommand'
    }

    It 'filters records by either spelling of a kind' {
        $all = @(Get-Backup -Repository $script:Repo)
        @($all | Where-Object Kind -EQ 'store-snapshot').BackupId | Should -Be @($script:Snapshot.BackupId)
        @($all | Where-Object Kind -EQ 'StoreSnapshot').BackupId | Should -Be @($script:Snapshot.BackupId)
        @($all | Where-Object { $_.Kind -eq 'object' }).BackupId | Should -Be @($script:Object.BackupId)
    }

    It 'offers nothing, and never fails, when the source is missing or unreadable' {
        @(Complete "Get-WalSegment -DataDir '$(Join-Path $TestDrive 'nope')' -Namespace ").Count | Should -Be 0
        @(Complete "Restore-StoreSnapshot -Repository '$(Join-Path $TestDrive 'nope')' -Namespace users -BackupId ").Count | Should -Be 0
        @(Complete 'Get-WalSegment -Namespace ').Count | Should -Be 0
    }
}
