#Requires -Version 7.4
# Pester 5: what a scheduled job needs. The shipped job script run as `pwsh -NonInteractive -File`
# exits 0 / 1 / 2 for success / failure / unhealthy; -FailOnCritical, -FailOnError and -Force.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot '..' 'out' 'PSBackup' 'PSBackup.psd1') -Force -ErrorAction Stop
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $env:PSBACKUP_AUDIT_LOG = Join-Path $TestDrive 'audit.jsonl'
    $fixture = Join-Path $TestDrive 'example'
    New-ExampleDatabase -Path $fixture -Seed 21
    $script:DataDir = Join-Path $fixture 'unison'
    $script:Module = Join-Path $PSScriptRoot '..' 'out' 'PSBackup' 'PSBackup.psd1'
    $script:Job = Join-Path $PSScriptRoot '..' 'examples' 'automation' 'windows' 'PSBackupJob.ps1'
    $script:Key = Join-Path $TestDrive 'repo.key'
    [IO.File]::WriteAllBytes($script:Key, [Security.Cryptography.RandomNumberGenerator]::GetBytes(64))
    $script:Repo = Join-Path $TestDrive 'repo'
    $null = Initialize-BackupRepository -Repository $script:Repo -KeyFile $script:Key
    # A fresh pwsh of the same installation (the dotnet-tool shim's host process is dotnet).
    $script:Pwsh = Join-Path $PSHOME ($IsWindows ? 'pwsh.exe' : 'pwsh')
    function Invoke-Job([string[]] $Arguments) {
        $log = Join-Path $TestDrive ("job-{0}.log" -f [guid]::NewGuid().ToString('n'))
        $out = & $script:Pwsh -NoProfile -NonInteractive -File $script:Job -ModulePath $script:Module -LogPath $log @Arguments 2>&1
        [pscustomobject]@{ ExitCode = $LASTEXITCODE; Output = ($out -join "`n"); Log = (Get-Content -LiteralPath $log -Raw -ErrorAction SilentlyContinue) }
    }
}

AfterAll {
    Remove-Item Env:PSBACKUP_AUDIT_LOG -ErrorAction SilentlyContinue
    Remove-Module PSBackup -Force -ErrorAction SilentlyContinue
}

Describe 'The Task Scheduler job script (pwsh -NonInteractive -File)' {
    It 'exits 0 after shipping the WAL and a snapshot into the repository, and logs each step' {
        $run = Invoke-Job @('-DataDir', $script:DataDir, '-Namespace', 'users', '-Repository', $script:Repo, '-KeyFile', $script:Key, '-Snapshot', '-MaxAge', '1d')
        $run.ExitCode | Should -Be 0 -Because $run.Output
        $run.Log | Should -Match 'wal: \d+ segment\(s\) shipped'
        $run.Log | Should -Match 'done: healthy'
        @(Get-Backup -Repository $script:Repo -Namespace users -Kind wal-segment -KeyFile $script:Key).Count | Should -BeGreaterThan 0
    }

    It 'exits 1 when a setup step fails (no repository there), naming the error once' {
        $run = Invoke-Job @('-DataDir', $script:DataDir, '-Namespace', 'users', '-Repository', (Join-Path $TestDrive 'nothing-here'), '-KeyFile', $script:Key)
        $run.ExitCode | Should -Be 1 -Because $run.Output
        ([regex]::Matches($run.Log, 'FAILED: RepositoryNotFound')).Count | Should -Be 1
    }

    It 'exits 1 with a wrong key, and writes nothing' {
        $wrong = Join-Path $TestDrive 'wrong.key'
        [IO.File]::WriteAllBytes($wrong, [Security.Cryptography.RandomNumberGenerator]::GetBytes(64))
        $before = Get-TreeState $script:Repo | Where-Object { $_ -notmatch '^(history|locks)' }
        $run = Invoke-Job @('-DataDir', $script:DataDir, '-Namespace', 'users', '-Repository', $script:Repo, '-KeyFile', $wrong)
        $run.ExitCode | Should -Be 1 -Because $run.Output
        $run.Log | Should -Match 'FAILED: WrongRepositoryKey'
        Get-TreeState $script:Repo | Where-Object { $_ -notmatch '^(history|locks)' } | Should -Be $before
    }

    It 'exits 2 when the backups ran but a Critical alert stands (the newest backup is older than -MaxAge)' {
        # Nothing new to ship: the newest WAL backup stays the first run's, so two seconds later it
        # is older than a one-second -MaxAge.
        Start-Sleep -Seconds 2
        $run = Invoke-Job @('-DataDir', $script:DataDir, '-Namespace', 'users', '-Repository', $script:Repo, '-KeyFile', $script:Key, '-MaxAge', '0.00:00:01')
        $run.ExitCode | Should -Be 2 -Because $run.Output
        $run.Log | Should -Match 'wal: \d+ segment\(s\) shipped'
        $run.Log | Should -Match 'health: Critical BackupTooOld'
        $run.Log | Should -Match 'UNHEALTHY: BackupUnhealthy'
    }
}

Describe 'Switches for unattended runs' {
    It 'Get-BackupHealth -FailOnCritical writes the alerts, then throws BackupUnhealthy; without Critical alerts it is quiet' {
        # (TestDrive drops what the first Describe wrote: ship again, then let the backup age past one second.)
        $null = Invoke-WalShip -DataDir $script:DataDir -Namespace users -Repository $script:Repo -KeyFile $script:Key
        Start-Sleep -Seconds 2
        $alerts = @(Get-BackupHealth -Repository $script:Repo -Namespace users -MaxAge '0.00:00:01' -KeyFile $script:Key)
        @($alerts | Where-Object Severity -eq 'Critical').Count | Should -BeGreaterThan 0
        $script:written = @()
        { Get-BackupHealth -Repository $script:Repo -Namespace users -MaxAge '0.00:00:01' -KeyFile $script:Key -FailOnCritical -ErrorAction Stop | ForEach-Object { $script:written += $_ } } |
            Should -Throw -ErrorId 'BackupUnhealthy,PSBackup.Commands.GetBackupHealthCommand'
        @($script:written).Count | Should -Be $alerts.Count
        { Get-BackupHealth -Repository $script:Repo -Namespace users -MaxAge 1d -KeyFile $script:Key -FailOnCritical -ErrorAction Stop } | Should -Not -Throw
    }

    It 'Test-BackupRepository -FailOnError throws RepositoryCheckFailed on a damaged repository, not on a sound one' {
        $repo = Join-Path $TestDrive 'repo-check'
        $null = Initialize-BackupRepository -Repository $repo -Unencrypted
        $null = Invoke-WalShip -DataDir $script:DataDir -Namespace users -Repository $repo
        (Test-BackupRepository -Repository $repo -ReadData -FailOnError).Passed | Should -BeTrue
        $pack = Get-ChildItem -LiteralPath (Join-Path $repo 'packs') -Recurse -File | Select-Object -First 1
        $bytes = [IO.File]::ReadAllBytes($pack.FullName); $bytes[100] = $bytes[100] -bxor 0xFF; [IO.File]::WriteAllBytes($pack.FullName, $bytes)
        { Test-BackupRepository -Repository $repo -ReadData -FailOnError -WarningAction SilentlyContinue -ErrorAction Stop } |
            Should -Throw -ErrorId 'RepositoryCheckFailed,PSBackup.Commands.TestBackupRepositoryCommand'
    }

    It 'Clear-StaleArtifact -Force removes without a prompt in a non-interactive host; -WhatIf still only lists' {
        $root = Join-Path $TestDrive 'sweep'
        $null = New-Item -ItemType Directory -Path (Join-Path $root 'acme' 'orders' 'data') -Force
        Set-Content -LiteralPath (Join-Path $root 'acme' 'orders' 'data' '000.bin.new') -Value 'x'
        $file = Join-Path $root 'acme' 'orders' 'data' '000.bin.new'
        $script = "Import-Module '$($script:Module)'; `$ErrorActionPreference = 'Stop'; Clear-StaleArtifact -Root '$root' -WhatIf | Out-Null; if (-not (Test-Path '$file')) { exit 3 }; " +
            "try { Clear-StaleArtifact -Root '$root' | Out-Null; exit 4 } catch { if (`$_.Exception.Message -notmatch 'NonInteractive') { exit 5 } }; Clear-StaleArtifact -Root '$root' -Force | Out-Null; exit 0"
        $out = & $script:Pwsh -NoProfile -NonInteractive -Command $script 2>&1
        $LASTEXITCODE | Should -Be 0 -Because ($out -join "`n")
        Join-Path $root 'acme' 'orders' 'data' '000.bin.new' | Should -Not -Exist
    }
}
