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
        $run.Log | Should -Match 'snapshot: snapshot/users/\S+ \([1-9]\d* bytes\)'
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

Describe 'Setup failures are one terminating error per call, not one per object' {
    BeforeAll {
        $script:DbRoot = Join-Path $TestDrive 'example' 'shard-db'
        # acme/customers, acme/orders, globex/inventory: what '-Dir * -Object *' selects.
        $script:Objects = @(Get-ChildItem -LiteralPath $script:DbRoot -Directory | ForEach-Object {
                $dir = $_.Name
                Get-ChildItem -LiteralPath $_.FullName -Directory | ForEach-Object { [pscustomobject]@{ DbRoot = $script:DbRoot; Dir = $dir; Object = $_.Name } }
            })
        $script:Namespaces = @('users', 'events' | ForEach-Object { [pscustomobject]@{ DataDir = $script:DataDir; Namespace = $_ } })

        # A repository held by a prune of another host: a lock object as RepositoryLock writes it
        # (docs/repository-format.md, "Locks"), refreshed just now, so it counts.
        $script:Locked = Join-Path $TestDrive 'locked-repo'
        $null = Initialize-BackupRepository -Repository $script:Locked -KeyFile $script:Key
        $null = New-Item -ItemType Directory -Path (Join-Path $script:Locked 'locks') -Force
        $now = [DateTimeOffset]::UtcNow.ToString('o')
        $lock = @{ formatVersion = 1; operation = 'Remove-ExpiredBackup'; exclusive = $true; host = 'backup-host-2'; pid = 4242; created = $now; refreshed = $now } | ConvertTo-Json
        Set-Content -LiteralPath (Join-Path $script:Locked 'locks' ('{0}' -f [guid]::NewGuid().ToString('n'))) -Value $lock -NoNewline
        $script:WrongKey = Join-Path $TestDrive 'wrong-setup.key'
        [IO.File]::WriteAllBytes($script:WrongKey, [Security.Cryptography.RandomNumberGenerator]::GetBytes(64))

        # What a call wrote, in order, and the terminating error that ended it (if any).
        function Invoke-Call([scriptblock] $Call) {
            $ErrorActionPreference = 'Continue'
            $records = [System.Collections.Generic.List[object]]::new()
            $thrown = $null
            try {
                & $Call 2>&1 | ForEach-Object { $records.Add($_) }
            }
            catch {
                $thrown = $_
            }
            [pscustomobject]@{
                Thrown = $thrown
                Errors = @($records | Where-Object { $_ -is [System.Management.Automation.ErrorRecord] })
                Output = @($records | Where-Object { $_ -isnot [System.Management.Automation.ErrorRecord] })
            }
        }
        # The repository and key options of each setup failure, in $script:SetupOptions.
        function Set-SetupCase([string] $Case) {
            $repository, $keyFile = switch ($Case) {
                'missing' { (Join-Path $TestDrive 'no-such-repo'), $script:Key }
                'locked' { $script:Locked, $script:Key }
                'wrong-key' { $script:Repo, $script:WrongKey }
            }
            $script:SetupOptions = @{
                Repository = $repository
                KeyFile    = $keyFile
            }
        }
        function Get-RepoState([string] $Path) {
            if (Test-Path -LiteralPath $Path) { Get-TreeState $Path | Where-Object { $_ -notmatch '^(history|events)' } }
        }
    }

    BeforeDiscovery {
        $script:Cases = @(
            @{ Case = 'missing'; Id = 'RepositoryNotFound' }
            @{ Case = 'locked'; Id = 'RepositoryLocked' }
            @{ Case = 'wrong-key'; Id = 'WrongRepositoryKey' }
        )
    }

    It 'New-ObjectBackup -Dir * -Object * (<Case> repository): one terminating <Id>, no per-object errors, nothing written' -TestCases $script:Cases {
        Set-SetupCase $Case
        $before = Get-RepoState $script:SetupOptions.Repository
        $script:Objects.Count | Should -BeGreaterThan 2
        $call = Invoke-Call { New-ObjectBackup -DbRoot $script:DbRoot -Dir '*' -Object '*' @SetupOptions }
        $call.Thrown.FullyQualifiedErrorId | Should -Be "$Id,PSBackup.Commands.NewObjectBackupCommand"
        $call.Errors.Count | Should -Be 0
        $call.Output.Count | Should -Be 0
        Get-RepoState $script:SetupOptions.Repository | Should -Be $before
    }

    It 'New-ObjectBackup with every object piped in (<Case> repository): one terminating <Id>' -TestCases $script:Cases {
        Set-SetupCase $Case
        $call = Invoke-Call { $script:Objects | New-ObjectBackup @SetupOptions }
        $call.Thrown.FullyQualifiedErrorId | Should -Be "$Id,PSBackup.Commands.NewObjectBackupCommand"
        $call.Errors.Count | Should -Be 0
        $call.Output.Count | Should -Be 0
    }

    It 'Invoke-WalShip over several namespaces piped in (<Case> repository): one terminating <Id>' -TestCases $script:Cases {
        Set-SetupCase $Case
        $before = Get-RepoState $script:SetupOptions.Repository
        $call = Invoke-Call { $script:Namespaces | Invoke-WalShip @SetupOptions }
        $call.Thrown.FullyQualifiedErrorId | Should -Be "$Id,PSBackup.Commands.InvokeWalShipCommand"
        $call.Errors.Count | Should -Be 0
        $call.Output.Count | Should -Be 0
        Get-RepoState $script:SetupOptions.Repository | Should -Be $before
    }

    It 'New-StoreSnapshot over several namespaces piped in (<Case> repository): one terminating <Id>' -TestCases $script:Cases {
        Set-SetupCase $Case
        $call = Invoke-Call { $script:Namespaces | New-StoreSnapshot @SetupOptions }
        $call.Thrown.FullyQualifiedErrorId | Should -Be "$Id,PSBackup.Commands.NewStoreSnapshotCommand"
        $call.Errors.Count | Should -Be 0
        $call.Output.Count | Should -Be 0
    }

    It 'a failure of one object stays non-terminating: the others are backed up' {
        $db = Join-Path $TestDrive 'db-item'
        Copy-Item -LiteralPath $script:DbRoot -Destination $db -Recurse
        # Matched by '*' but not an object (a folder named like a backup sibling): that object's error.
        Copy-Item -LiteralPath (Join-Path $db 'acme' 'orders') -Destination (Join-Path $db 'acme' 'orders.backup-20250101T000000') -Recurse
        $repo = Join-Path $TestDrive 'item-repo'
        $null = Initialize-BackupRepository -Repository $repo -Unencrypted
        $call = Invoke-Call { New-ObjectBackup -DbRoot $db -Dir '*' -Object '*' -Repository $repo }
        $call.Thrown | Should -BeNullOrEmpty
        $call.Errors.Count | Should -Be 1
        $call.Errors[0].FullyQualifiedErrorId | Should -Be 'ObjectNotSelectable,PSBackup.Commands.NewObjectBackupCommand'
        @($call.Output | ForEach-Object { "$($_.Dir)/$($_.Object)" } | Sort-Object) | Should -Be @($script:Objects | ForEach-Object { "$($_.Dir)/$($_.Object)" } | Sort-Object)
    }

    It 'the job script over two namespaces exits 1 on a locked repository and logs RepositoryLocked once' {
        $run = Invoke-Job @('-DataDir', $script:DataDir, '-Namespace', 'users,events', '-Repository', $script:Locked, '-KeyFile', $script:Key)
        $run.ExitCode | Should -Be 1 -Because $run.Output
        ([regex]::Matches($run.Log, 'FAILED: RepositoryLocked')).Count | Should -Be 1
        $run.Log | Should -Not -Match 'wal: '
    }

    It 'the job script over two namespaces exits 0 when both ship' {
        $repo = Join-Path $TestDrive 'job-two'
        $null = Initialize-BackupRepository -Repository $repo -KeyFile $script:Key
        $run = Invoke-Job @('-DataDir', $script:DataDir, '-Namespace', 'users,events', '-Repository', $repo, '-KeyFile', $script:Key)
        $run.ExitCode | Should -Be 0 -Because $run.Output
        $run.Log | Should -Match 'start: users, events'
        foreach ($ns in 'users', 'events') {
            @(Get-Backup -Repository $repo -Namespace $ns -Kind wal-segment -KeyFile $script:Key).Count | Should -BeGreaterThan 0
        }
    }
}

Describe 'Get-BackupHealth -DbRoot: temp copies a killed object backup left' {
    It 'warns with LeftoverTemp naming the paths and Clear-StaleArtifact; -FailOnCritical does not fail on it; the sweep clears it' {
        $db = Join-Path $TestDrive 'db-health'
        Copy-Item -LiteralPath $script:DbRoot -Destination $db -Recurse
        $history = Join-Path $TestDrive 'history'
        # A recorded backup of another object, so the history folder exists (orders' own first
        # backup comes below: two backups of one object within a second would collide).
        $null = New-ObjectBackup -DbRoot $db -Dir acme -Object customers -HistoryPath $history -ErrorAction Stop
        # Named exactly as the engine names a backup's temp copy: <object>.backup-<UTC ts>.<8 hex>.tmp.
        $left = Join-Path $db 'acme' 'orders.backup-20250101T000000.0a1b2c3d.tmp'
        Copy-Item -LiteralPath (Join-Path $db 'acme' 'orders') -Destination $left -Recurse
        (Get-Item -LiteralPath $left).LastWriteTimeUtc = [DateTime]::UtcNow.AddHours(-2)

        $alerts = @(Get-BackupHealth -HistoryPath $history -DbRoot $db -MaxAge 1d)
        $alert = @($alerts | Where-Object Code -eq 'LeftoverTemp')
        $alert.Count | Should -Be 1
        $alert[0].Severity | Should -Be 'Warning'
        $alert[0].Namespace | Should -Be 'acme'
        $alert[0].Message | Should -BeLike "*$left*"
        $alert[0].Message | Should -BeLike '*Clear-StaleArtifact*'
        { Get-BackupHealth -HistoryPath $history -DbRoot $db -MaxAge 1d -FailOnCritical -ErrorAction Stop } | Should -Not -Throw
        @(Get-BackupHealth -HistoryPath $history -DbRoot $db -MaxAge 1d -Namespace globex | Where-Object Code -eq 'LeftoverTemp').Count | Should -Be 0
        # The next backup of the object reports it too.
        $warnings = @()
        $null = New-ObjectBackup -DbRoot $db -Dir acme -Object orders -HistoryPath $history -WarningVariable warnings -WarningAction SilentlyContinue -ErrorAction Stop
        ($warnings -join "`n") | Should -BeLike "*$left*Clear-StaleArtifact*"

        $null = Clear-StaleArtifact -Root $db -Force
        $left | Should -Not -Exist
        @(Get-BackupHealth -HistoryPath $history -DbRoot $db -MaxAge 1d | Where-Object Code -eq 'LeftoverTemp').Count | Should -Be 0
    }

    It 'refuses a -DbRoot that does not exist' {
        { Get-BackupHealth -HistoryPath (Join-Path $TestDrive 'history') -DbRoot (Join-Path $TestDrive 'nope') -ErrorAction Stop } |
            Should -Throw -ErrorId 'DirectoryNotFound,PSBackup.Commands.GetBackupHealthCommand'
    }
}
