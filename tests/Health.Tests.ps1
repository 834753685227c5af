#Requires -Modules Pester
# Get-BackupHealth and Export-BackupMetric over a local backup root with a recorded history.

BeforeAll {
    $script:ModuleDir = Join-Path $PSScriptRoot '..' 'out' 'PSBackup'
    Import-Module (Join-Path $script:ModuleDir 'PSBackup.psd1') -Force
    $env:PSBACKUP_AUDIT_LOG = Join-Path $TestDrive 'audit.jsonl'
    $script:DataDir = Join-Path $TestDrive 'data'
    $db = New-Item -ItemType Directory -Path (Join-Path $script:DataDir 'users' 'db') -Force
    Set-Content -Path (Join-Path $db.FullName 'data.mdb') -Value ('x' * 4096) -NoNewline
    # One snapshot, then two refused ones (the path is taken): two consecutive failures.
    New-StoreSnapshot -DataDir $script:DataDir -Namespace 'users' -Path 'snapshots/one' | Out-Null
    foreach ($i in 1..2) {
        New-StoreSnapshot -DataDir $script:DataDir -Namespace 'users' -Path 'snapshots/one' -ErrorAction SilentlyContinue | Out-Null
    }
}

AfterAll {
    Remove-Item Env:PSBACKUP_AUDIT_LOG -ErrorAction SilentlyContinue
    Remove-Module PSBackup -Force -ErrorAction SilentlyContinue
}

Describe 'Get-BackupHealth' {
    It 'reports two consecutive failures as a Critical alert' {
        $alerts = @(Get-BackupHealth -DataDir $script:DataDir -Namespace 'users')
        $alerts[0] | Should -BeOfType ([PSBackup.Engine.Events.HealthAlert])
        $failures = @($alerts | Where-Object Code -EQ 'ConsecutiveFailures')
        $failures.Count | Should -Be 1
        $failures[0].Severity | Should -Be 'Critical'
        $failures[0].Kind | Should -Be 'StoreSnapshot'
        $failures[0].Kind -eq 'store-snapshot' | Should -BeTrue
    }

    It 'takes its thresholds as parameters' {
        @(Get-BackupHealth -DataDir $script:DataDir -FailureThreshold 3 | Where-Object Code -EQ 'ConsecutiveFailures').Count | Should -Be 0
    }

    It 'takes -MaxAge and -MaxRestoreTestAge as durations like -KeepWithin' {
        @(Get-BackupHealth -DataDir $script:DataDir -MaxAge '14d' -MaxRestoreTestAge '1y' | Where-Object Code -EQ 'BackupTooOld').Count | Should -Be 0
        @(Get-BackupHealth -DataDir $script:DataDir -MaxAge ([TimeSpan]::FromDays(2)) | Where-Object Code -EQ 'BackupTooOld').Count | Should -Be 0
    }

    It 'refuses a bad duration with the error Remove-ExpiredBackup gives' {
        { Get-BackupHealth -DataDir $script:DataDir -MaxAge '3x' -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidDuration,PSBackup.Commands.GetBackupHealthCommand'
    }

    It 'writes every operation to the audit log' {
        $lines = @(Get-Content $env:PSBACKUP_AUDIT_LOG | ConvertFrom-Json)
        $lines.Count | Should -Be 3
        $lines[0].outcome | Should -Be 'success'
        $lines[1].outcome | Should -Be 'failure'
    }
}

Describe 'Export-BackupMetric' {
    It 'writes the exposition text to -Path' {
        $path = Join-Path $TestDrive 'psbackup.prom'
        $result = Export-BackupMetric -DataDir $script:DataDir -Path $path
        $result | Should -BeOfType ([PSBackup.Engine.Events.MetricExportResult])
        $result.Path | Should -Be $path
        Get-Content $path -Raw | Should -Match 'backup_failure_total\{namespace="users",kind="store-snapshot"\} 2'
    }

    It 'writes nothing under -WhatIf' {
        $path = Join-Path $TestDrive 'whatif.prom'
        Export-BackupMetric -DataDir $script:DataDir -Path $path -WhatIf
        Test-Path $path | Should -BeFalse
    }
}

Describe 'Local object backup history (-HistoryPath)' {
    BeforeAll {
        $script:DbRoot = Join-Path $TestDrive 'db'
        $object = New-Item -ItemType Directory -Path (Join-Path $script:DbRoot 'acme' 'orders') -Force
        Set-Content -Path (Join-Path $object.FullName 'data.bin') -Value ('y' * 2048) -NoNewline
        $script:History = Join-Path $TestDrive 'history'
        $script:Backup = New-ObjectBackup -DbRoot $script:DbRoot -Dir 'acme' -Object 'orders' -HistoryPath $script:History
        foreach ($i in 1..2) {
            Start-Sleep -Seconds 1 # backup names have one-second resolution: fail by the quiesce script, not BackupExists
            New-ObjectBackup -DbRoot $script:DbRoot -Dir 'acme' -Object 'orders' -HistoryPath $script:History `
                -QuiesceScript { throw 'writers did not pause' } -ErrorAction SilentlyContinue | Out-Null
        }
    }

    It 'records local object backups outside the db root' {
        @(Get-ChildItem -LiteralPath (Join-Path $script:History 'acme' 'events') -File).Count | Should -Be 3
        @(Get-ChildItem -LiteralPath $script:DbRoot -Directory -Recurse | Where-Object Name -EQ 'events').Count | Should -Be 0
    }

    It 'alerts on two consecutive failed object backups' {
        $alert = @(Get-BackupHealth -HistoryPath $script:History | Where-Object Code -EQ 'ConsecutiveFailures')
        $alert.Count | Should -Be 1
        $alert[0].Kind | Should -Be 'object'
        $alert[0].Namespace | Should -Be 'acme'
    }

    It 'exports the object backups as metrics: without -Path the exposition text itself' {
        $text = Export-BackupMetric -HistoryPath $script:History
        $text | Should -BeOfType ([string])
        $text | Should -Match 'backup_success_total\{namespace="acme",kind="object"\} 1'
        $text | Should -Match 'backup_failure_total\{namespace="acme",kind="object"\} 2'
        $file = Join-Path $TestDrive 'history.prom'
        $result = Export-BackupMetric -HistoryPath $script:History -Path $file
        $result | Should -BeOfType ([PSBackup.Engine.Events.MetricExportResult])
        Get-Content -LiteralPath $file -Raw | Should -Match 'backup_failure_total\{namespace="acme",kind="object"\} 2'
    }

    It 'records a local object restore too' {
        Restore-ObjectBackup -DbRoot $script:DbRoot -Dir 'acme' -Object 'orders' -From $script:Backup.BackupName -Force -Confirm:$false -HistoryPath $script:History | Out-Null
        Export-BackupMetric -HistoryPath $script:History | Should -Match 'backup_success_total\{namespace="acme",kind="object-restore"\} 1'
    }

    It 'refuses a history folder inside the db root' {
        { New-ObjectBackup -DbRoot $script:DbRoot -Dir 'acme' -Object 'orders' -HistoryPath (Join-Path $script:DbRoot 'history') -ErrorAction Stop } |
            Should -Throw -ErrorId 'HistoryInsideDbRoot,PSBackup.Commands.NewObjectBackupCommand'
    }
}

