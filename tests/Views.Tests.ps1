#Requires -Version 7.4
# Pester 5: what people read. Every result type's default table fits an 80-column log with its
# important columns whole (only the last, longest one may be cut); enums users filter on are names
# in ConvertTo-Json; nested values print readably.

BeforeAll {
    $env:PSBACKUP_AUDIT_LOG = Join-Path $TestDrive 'audit.jsonl'
    Import-Module (Join-Path $PSScriptRoot '..' 'out' 'PSBackup' 'PSBackup.psd1') -Force -ErrorAction Stop
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')

    $script:Fixture = Join-Path $TestDrive 'a-rather-long-folder-name-as-on-real-hosts' 'example'
    New-ExampleDatabase -Path $script:Fixture -Seed 43
    $db = Join-Path $script:Fixture 'shard-db'
    $data = Join-Path $script:Fixture 'unison'
    $repo = Join-Path $TestDrive 'a-rather-long-folder-name-as-on-real-hosts' 'repository'
    $into = Join-Path $TestDrive 'a-rather-long-folder-name-as-on-real-hosts' 'restored'
    $null = New-Item -ItemType File -Path (Join-Path $db 'acme' 'orders' 'data' 'stale.tmp') -Force

    # One real object of every type the module writes, as a user would get it.
    $script:Samples = [ordered]@{}
    $script:Samples['RepositoryInfo'] = Initialize-BackupRepository -Repository $repo -Unencrypted
    $script:Samples['ObjectBackupResult'] = New-ObjectBackup -DbRoot $db -Dir acme -Object customers -Repository $repo
    $script:Samples['ObjectRestoreResult'] = Restore-ObjectBackup -DbRoot $db -Dir acme -Object customers -Repository $repo -Force -Confirm:$false
    $script:Samples['StaleArtifact'] = Clear-StaleArtifact -Root $db -WhatIf | Select-Object -First 1
    $script:Samples['WalSegmentInfo'] = Get-WalSegment -DataDir $data -Namespace users | Select-Object -First 1
    $script:Samples['ShippedSegment'] = Invoke-WalShip -DataDir $data -Namespace users -Repository $repo | Select-Object -First 1
    $script:Samples['StoreSnapshotResult'] = New-StoreSnapshot -DataDir $data -Namespace users -Repository $repo
    $script:Samples['BackupRecord'] = Get-Backup -Repository $repo -Kind StoreSnapshot | Select-Object -First 1
    $script:Samples['RetentionItem'] = Remove-ExpiredBackup -Repository $repo -KeepLast 1 -WhatIf | Select-Object -First 1
    $script:Samples['RepositoryCheckResult'] = Test-BackupRepository -Repository $repo
    $script:Samples['SyncResult'] = Sync-BackupRepository -Source $repo -Destination (Join-Path $TestDrive 'a-rather-long-folder-name-as-on-real-hosts' 'offsite')
    $script:Samples['StoreSnapshotRestoreResult'] = Restore-StoreSnapshot -Repository $repo -Namespace users -TargetDataDir $into -Confirm:$false
    $script:Samples['PointInTimePlan'] = Restore-PointInTime -Repository $repo -Namespace users -TargetTime ([DateTimeOffset]::MaxValue) -TargetDataDir $into -WhatIf
    $script:Samples['PointInTimeRestoreResult'] = Restore-PointInTime -Repository $repo -Namespace users -TargetTime ([DateTimeOffset]::MaxValue) -TargetDataDir $into -Force -Confirm:$false
    $script:Samples['RestoreDrillResult'] = Test-Restore -Repository $repo -Namespace users -ScratchPath $TestDrive
    $script:Samples['HealthAlert'] = Get-BackupHealth -Repository $repo -MaxAge '00:00:00.001' | Select-Object -First 1
    $script:Samples['MetricExportResult'] = Export-BackupMetric -Repository $repo -Path (Join-Path $TestDrive 'metrics.prom')
    $script:Samples['KeyFileInfo'] = New-BackupKeyFile -Path (Join-Path $TestDrive 'a-rather-long-folder-name-as-on-real-hosts' 'repository.key')
    $script:Samples['RepairResult'] = Repair-BackupRepository -Repository $repo -Confirm:$false

    function Get-TableLines([object] $InputObject) {
        @(($InputObject | Format-Table | Out-String -Width 80) -split "`r?`n" | Where-Object { $_.Trim() })
    }
}

AfterAll {
    Remove-Item Env:PSBACKUP_AUDIT_LOG -ErrorAction SilentlyContinue
    Remove-Module PSBackup -Force -ErrorAction SilentlyContinue
}

Describe 'Table views in an 80-column log' {
    It 'has a real sample of every type the cmdlets write' {
        $declared = Get-Command -Module PSBackup | ForEach-Object { $_.OutputType.Type } |
            Where-Object { $_.Namespace -like 'PSBackup*' } | ForEach-Object Name | Sort-Object -Unique
        @($script:Samples.Keys | Sort-Object) | Should -Be @($declared)
        foreach ($key in $script:Samples.Keys) {
            $script:Samples[$key] | Should -Not -BeNullOrEmpty -Because "$key needs a sample"
            $script:Samples[$key].GetType().Name | Should -Be $key
        }
    }

    It 'shows every column of the <_> view within 80 columns, only the last one cut' -ForEach @(
        'RepositoryInfo', 'ObjectBackupResult', 'ObjectRestoreResult', 'StaleArtifact', 'WalSegmentInfo', 'ShippedSegment',
        'StoreSnapshotResult', 'BackupRecord', 'RetentionItem', 'RepositoryCheckResult', 'SyncResult', 'StoreSnapshotRestoreResult',
        'PointInTimePlan', 'PointInTimeRestoreResult', 'RestoreDrillResult', 'HealthAlert', 'MetricExportResult', 'KeyFileInfo', 'RepairResult'
    ) {
        $sample = $script:Samples[$_]
        $labels = @((Get-FormatData -TypeName $sample.GetType().FullName).FormatViewDefinition.Control.Headers.Label)
        $lines = Get-TableLines $sample
        $lines | ForEach-Object { $_.Length | Should -BeLessOrEqual 80 }
        $header = $lines[0]
        $position = 0
        foreach ($label in $labels) {
            $at = $header.IndexOf($label, $position)
            $at | Should -BeGreaterOrEqual 0 -Because "column '$label' must be on an 80-column line: $header"
            $position = $at + $label.Length
        }
        # Every column but the last and the ids (64 hex digits, cut on purpose: the object has them)
        # shows its value whole: no ellipsis.
        $starts = @($labels | ForEach-Object { $header.IndexOf($_) })
        $lines.Count | Should -BeGreaterOrEqual 3
        foreach ($row in $lines[2..($lines.Count - 1)]) {
            for ($i = 0; $i -lt $labels.Count - 1; $i++) {
                if ($labels[$i] -in 'Backup', 'BackupId', 'Snapshot', 'Id') { continue }
                $from = [Math]::Min($starts[$i], $row.Length)
                $to = [Math]::Min($starts[$i + 1], $row.Length)
                $row.Substring($from, $to - $from) | Should -Not -Match '…' -Because "column '$($labels[$i])' is shown whole: $row"
            }
        }
    }

    It 'leads the backup list with time, kind, what and size, and the id last' {
        $header = (Get-TableLines $script:Samples['BackupRecord'])[0]
        $header | Should -Match '^Time\s+Kind\s+Of\s+Files\s+Size\s+BackupId$'
    }

    It 'keeps one line per retention item and per health alert (no wrapping ids and reasons), saying what each item is of' {
        $items = @(Remove-ExpiredBackup -Repository (Split-Path $script:Samples['RepositoryInfo'].Repository -Parent | Join-Path -ChildPath 'repository') -KeepLast 1 -WhatIf)
        $items.Count | Should -BeGreaterThan 2
        $lines = Get-TableLines $items
        $lines.Count | Should -Be ($items.Count + 2)
        $lines[0] | Should -Match '^Decision\s+Removed\s+Kind\s+Of\s+Id\s+Reason$'
        $snapshotRow = $lines | Where-Object { $_ -match '\bStoreSnapshot\b' } | Select-Object -First 1
        $snapshotRow | Should -Match '\busers\b'
        $segmentRow = $lines | Where-Object { $_ -match '\bWalSegment\b' } | Select-Object -First 1
        $segmentRow | Should -Match 'users #\d+'
    }

    It 'shows the useful end of names and paths, an object backup''s consistency, and short ids' {
        $b = $script:Samples['ObjectBackupResult']
        (Get-TableLines $b)[2] | Should -Match ([regex]::Escape($b.BackupId.Substring(0, 12)) + '$')
        $pitr = $script:Samples['PointInTimeRestoreResult']
        $row = (Get-TableLines $pitr)[2]
        $row | Should -Match '/users$' -Because 'the restored namespace folder is the end of the path'
        $objects = @(Get-Backup -Repository (Split-Path $script:Samples['RepositoryInfo'].Repository -Parent | Join-Path -ChildPath 'repository') -Kind Object)
        (Get-TableLines $objects)[2] | Should -Match 'Object (Stable|Recent)\s+acme/customers'
        $local = @(Get-Backup -DataDir (Join-Path $script:Fixture 'unison') -Namespace users)
        if ($local.Count -gt 0) { (Get-TableLines $local)[2] | Should -Not -Match 'wal/archive' }
    }

    It 'prints nested plans, snapshots, segments and check findings readably' {
        $plan = $script:Samples['PointInTimePlan']
        "$plan" | Should -Match '^users to time .*: snapshot \S+ \+ \d+ WAL segment\(s\), up to log index \d+'
        "$($plan.Snapshot)" | Should -Match '^\S+ \(\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ, applied \d+'
        if ($plan.Segments.Count) { "$($plan.Segments[0])" | Should -Match '^segment \d+: log \d+\.\.\d+' }
        $list = $script:Samples['PointInTimeRestoreResult'] | Format-List * | Out-String -Width 200
        $list | Should -Not -Match 'System\.Collections|List`1|PSBackup\.Engine\.'
        $finding = [PSBackup.Engine.Repository.RepositoryCheckFinding]::new('Error', 'PackMissing', $null, $null, 'data/ab/abcd', 'Pack abcd is missing.')
        "$finding" | Should -Be 'Error PackMissing: Pack abcd is missing.'
    }

    It 'shows declined removals as not removed' {
        $lines = Get-TableLines $script:Samples['RetentionItem']
        $lines[0] | Should -Match 'Removed'
        $lines[2] | Should -Match '\bFalse\b'
    }
}

Describe 'Values in JSON and lists' {
    It 'writes the enums users filter on as names in ConvertTo-Json' {
        ($script:Samples['BackupRecord'] | ConvertTo-Json -Depth 1 -WarningAction SilentlyContinue | ConvertFrom-Json).Kind | Should -Be 'StoreSnapshot'
        ($script:Samples['ObjectBackupResult'] | ConvertTo-Json -Depth 1 -WarningAction SilentlyContinue | ConvertFrom-Json).Consistency | Should -BeIn 'Stable', 'Recent'
        $item = $script:Samples['RetentionItem'] | ConvertTo-Json -Depth 1 -WarningAction SilentlyContinue | ConvertFrom-Json
        $item.Decision | Should -BeIn 'Keep', 'Remove'
        $item.Kind | Should -BeIn 'StoreSnapshot', 'WalSegment', 'Object', 'Pack'
        ($script:Samples['HealthAlert'] | ConvertTo-Json -Depth 1 -WarningAction SilentlyContinue | ConvertFrom-Json).Severity | Should -BeIn 'Warning', 'Critical'
    }

    It 'writes every Duration as seconds, a number, in ConvertTo-Json (not a TimeSpan''s 15 fields)' {
        $timed = @($script:Samples.Keys | Where-Object { $script:Samples[$_].PSObject.Properties['Duration'] })
        $timed.Count | Should -BeGreaterOrEqual 8
        foreach ($key in $timed) {
            $sample = $script:Samples[$key]
            $sample.Duration | Should -BeOfType ([double]) -Because "$key.Duration is seconds"
            $back = $sample | ConvertTo-Json -Depth 1 -WarningAction SilentlyContinue | ConvertFrom-Json
            $back.Duration | Should -BeOfType ([double]) -Because "$key's JSON Duration is a number"
            $back.Duration | Should -Be $sample.Duration
        }
        foreach ($key in $script:Samples.Keys) {
            $script:Samples[$key] | ConvertTo-Json -Depth 4 -WarningAction SilentlyContinue |
                Should -Not -Match '"(Ticks|TotalMilliseconds)"' -Because "$key has no TimeSpan expanded in its JSON"
        }
    }

    It 'prints a WAL position as words, not as a type name' {
        $wal = $script:Samples['StoreSnapshotResult'].WalPosition
        "$wal" | Should -Match '^applied \d+, durable \d+, segments? \d+'
        ($script:Samples['BackupRecord'] | Format-List -Property Wal | Out-String) | Should -Match 'Wal : applied \d+'
    }

    It 'shows a drill''s duration in seconds' {
        (Get-TableLines $script:Samples['RestoreDrillResult'])[2] | Should -Match '\d+\.\d s'
    }

    It 'writes the metrics text itself without -Path' {
        $text = Export-BackupMetric -Repository (Split-Path $script:Samples['RepositoryInfo'].Repository -Parent | Join-Path -ChildPath 'repository')
        $text | Should -BeOfType ([string])
        $text | Should -Match '(?m)^# TYPE backup_success_total counter$'
    }
}
