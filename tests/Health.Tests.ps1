#Requires -Modules Pester
# Get-BackupHealth and Export-BackupMetric over a local backup root with a recorded history.

BeforeAll {
    $script:ModuleDir = Join-Path $PSScriptRoot '..' 'out' 'PSBackup'
    Import-Module (Join-Path $script:ModuleDir 'PSBackup.psd1') -Force
}

AfterAll {
    Remove-Module PSBackup -Force -ErrorAction SilentlyContinue
}

Describe 'Get-BackupHealth' {
    It 'reports a namespace with no successful backup as Critical' {
        $dataDir = Join-Path $TestDrive 'data'
        New-Item -ItemType Directory -Path (Join-Path $dataDir 'users' 'db') -Force | Out-Null
        $env:PSBACKUP_AUDIT_LOG = Join-Path $TestDrive 'audit.jsonl'
        try {
            { New-StoreSnapshot -DataDir $dataDir -Namespace 'users' -Path 'snap/one' -ErrorAction Stop } | Should -Throw
        } finally {
            Remove-Item Env:PSBACKUP_AUDIT_LOG
        }
        $alerts = @(Get-BackupHealth -DataDir $dataDir -MaxAge ([timespan]::FromHours(1)))
        $alerts.Count | Should -BeGreaterThan 0
        $alerts[0] | Should -BeOfType ([PSBackup.Engine.Events.HealthAlert])
        $alerts[0].Severity | Should -Be 'Critical'
        (Get-Content (Join-Path $TestDrive 'audit.jsonl') | ConvertFrom-Json).outcome | Should -Be 'failure'
    }
}

Describe 'Export-BackupMetric' {
    It 'writes the exposition text to -Path' {
        $dataDir = Join-Path $TestDrive 'data2'
        New-Item -ItemType Directory -Path (Join-Path $dataDir 'backups') -Force | Out-Null
        $path = Join-Path $TestDrive 'psbackup.prom'
        $result = Export-BackupMetric -DataDir $dataDir -Path $path
        $result | Should -BeOfType ([PSBackup.Engine.Events.MetricExportResult])
        $result.Path | Should -Be $path
        Get-Content $path -Raw | Should -Match '# TYPE backup_success_total counter'
    }
}
