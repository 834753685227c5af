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
    # Shipped WAL segments beside the snapshot: a restore's id completion must not offer them.
    $script:Shipped = @(Invoke-WalShip -DataDir $script:DataDir -Namespace users -Repository $script:Repo)

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

    It 'offers only the kind a command restores: snapshots to Restore-StoreSnapshot and Test-Restore, object backups to Restore-ObjectBackup' {
        $script:Shipped.Count | Should -BeGreaterThan 0
        $walIds = @(Get-Backup -Repository $script:Repo -Kind WalSegment).BackupId
        $walIds.Count | Should -BeGreaterThan 0
        foreach ($line in "Restore-StoreSnapshot -Repository '$script:Repo' -Namespace users -BackupId ",
                          "Restore-StoreSnapshot -Repository '$script:Repo' -Namespace users -Snapshot ",
                          "Test-Restore -Repository '$script:Repo' -Namespace users -BackupId ",
                          "Restore-StoreSnapshot -Repository '$script:Repo' -BackupId ") {
            @((Complete $line).CompletionText) | Should -Be @($script:Snapshot.BackupId) -Because $line
        }
        foreach ($line in "Restore-ObjectBackup -Repository '$script:Repo' -DbRoot '$script:DbRoot' -From ",
                          "Restore-ObjectBackup -Repository '$script:Repo' -DbRoot '$script:DbRoot' -BackupId ") {
            @((Complete $line).CompletionText) | Should -Be @($script:Object.BackupId) -Because $line
        }
        # Remove-Backup takes any kind: the segments are offered there.
        $any = @((Complete "Remove-Backup -Repository '$script:Repo' -BackupId ").CompletionText)
        foreach ($id in @($walIds) + $script:Snapshot.BackupId + $script:Object.BackupId) { $any | Should -Contain $id }
    }

    It 'resolves relative paths against the current location (Set-Location), not the process directory' {
        $here = [System.IO.Directory]::GetCurrentDirectory()
        $here | Should -Not -Be $TestDrive
        Push-Location $TestDrive
        try {
            @((Complete 'Get-Backup -Repository ./repo -Namespace ').CompletionText) | Should -Be @('users')
            @((Complete 'Restore-StoreSnapshot -Repository repo -Namespace users -BackupId ').CompletionText) | Should -Be @($script:Snapshot.BackupId)
            @((Complete 'Get-WalSegment -DataDir ./example/unison -Namespace ').CompletionText | Sort-Object -Unique) | Should -Be @('events', 'users')
            @((Complete 'New-ObjectBackup -DbRoot example/shard-db -Dir ').CompletionText) | Should -Be @('acme', 'globex')
            @((Complete 'Restore-ObjectBackup -DbRoot ./example/shard-db -Dir globex -Object inventory -From ').CompletionText) | Should -Be @($script:Local.BackupName)
            Push-Location example
            try {
                @((Complete 'New-ObjectBackup -DbRoot ./shard-db -Dir globex -Object ').CompletionText) | Should -Be @('inventory')
                @((Complete 'Get-Backup -Repository ../repo -Dir ').CompletionText) | Should -Be @('acme')
            }
            finally { Pop-Location }
        }
        finally { Pop-Location }
        [System.IO.Directory]::GetCurrentDirectory() | Should -Be $here
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

    It 'speaks one Kind vocabulary on every output: records, retention items, health alerts' {
        $outputs = [ordered]@{
            'Get-Backup'           = @(Get-Backup -Repository $script:Repo)
            'Remove-ExpiredBackup' = @(Remove-ExpiredBackup -Repository $script:Repo -KeepLast 100 -WhatIf)
            'Get-BackupHealth'     = @(Get-BackupHealth -Repository $script:Repo -MaxAge '00:00:00.001')
        }
        foreach ($name in $outputs.Keys) {
            $all = $outputs[$name]
            $snapshots = @($all | Where-Object Kind -EQ StoreSnapshot)
            $snapshots.Count | Should -BeGreaterThan 0 -Because "$name reports the snapshot"
            @($all | Where-Object Kind -EQ 'store-snapshot').Count | Should -Be $snapshots.Count -Because "$name takes the command line's spelling"
            @($all | Where-Object { $_.Kind -eq 'STORE-SNAPSHOT' }).Count | Should -Be $snapshots.Count
            @($all | Where-Object { 'StoreSnapshot' -eq $_.Kind }).Count | Should -Be $snapshots.Count -Because "$name's Kind prints as StoreSnapshot"
            @($all | Where-Object Kind -In 'StoreSnapshot', 'Object').Count | Should -BeGreaterOrEqual $snapshots.Count
            "$($snapshots[0].Kind)" | Should -Be 'StoreSnapshot'
            ($snapshots[0] | ConvertTo-Json -Depth 1 -WarningAction SilentlyContinue | ConvertFrom-Json).Kind | Should -Be 'StoreSnapshot'
        }
        foreach ($name in 'Get-Backup', 'Remove-ExpiredBackup') {
            $all = $outputs[$name]
            foreach ($pair in @('WalSegment', 'wal-segment'), @('Object', 'object')) {
                $count = @($all | Where-Object Kind -EQ $pair[0]).Count
                $count | Should -BeGreaterThan 0 -Because "$name reports $($pair[0])"
                @($all | Where-Object Kind -EQ $pair[1]).Count | Should -Be $count
            }
        }
        # Retention's own kinds, and its names before the vocabulary was one.
        @($outputs['Remove-ExpiredBackup'] | Where-Object Kind -EQ 'Snapshot').Count | Should -Be @($outputs['Remove-ExpiredBackup'] | Where-Object Kind -EQ StoreSnapshot).Count
        @($outputs['Remove-ExpiredBackup'] | Where-Object Kind -EQ 'ObjectBackup').Count | Should -Be @($outputs['Remove-ExpiredBackup'] | Where-Object Kind -EQ Object).Count
        @($outputs['Remove-ExpiredBackup'] | Where-Object Kind -EQ 'no-such-kind').Count | Should -Be 0
    }

    It 'offers nothing, and never fails, when the source is missing or unreadable' {
        @(Complete "Get-WalSegment -DataDir '$(Join-Path $TestDrive 'nope')' -Namespace ").Count | Should -Be 0
        @(Complete "Restore-StoreSnapshot -Repository '$(Join-Path $TestDrive 'nope')' -Namespace users -BackupId ").Count | Should -Be 0
        @(Complete 'Get-WalSegment -Namespace ').Count | Should -Be 0
    }
}
