#Requires -Version 7.4
# Pester 5: what the module does with hostile and damaged repositories and inputs (issue 12):
# encryption downgrades, damaged packs and manifests, repair, special files, long names.

BeforeAll {
    $env:PSBACKUP_AUDIT_LOG = Join-Path $TestDrive 'audit.jsonl'
    $env:PSBACKUP_STATE_PATH = Join-Path $TestDrive 'state'
    Import-Module (Join-Path $PSScriptRoot '..' 'out' 'PSBackup' 'PSBackup.psd1') -Force -ErrorAction Stop
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')

    $script:Fixture = Join-Path $TestDrive 'example'
    New-ExampleDatabase -Path $script:Fixture -Seed 31
    $script:DbRoot = Join-Path $script:Fixture 'shard-db'
    $script:DataDir = Join-Path $script:Fixture 'unison'
}

AfterAll {
    Remove-Item Env:PSBACKUP_AUDIT_LOG, Env:PSBACKUP_STATE_PATH, Env:PSBACKUP_PASSPHRASE -ErrorAction SilentlyContinue
    Remove-Module PSBackup -Force -ErrorAction SilentlyContinue
}

Describe 'Encryption downgrade' {
    It 'refuses an empty PSBACKUP_PASSPHRASE instead of creating an unencrypted repository' {
        $path = Join-Path $TestDrive 'empty-pass'
        $env:PSBACKUP_PASSPHRASE = ''
        try {
            { Initialize-BackupRepository -Repository $path -ErrorAction Stop } |
                Should -Throw -ErrorId 'EmptyPassphrase,PSBackup.Commands.InitializeBackupRepositoryCommand'
        }
        finally {
            Remove-Item Env:PSBACKUP_PASSPHRASE -ErrorAction SilentlyContinue
        }
        $path | Should -Not -Exist
    }

    It 'writes nothing into a repository whose keys were deleted and whose config says unencrypted' {
        $path = Join-Path $TestDrive 'downgraded'
        $pass = ConvertTo-SecureString 'pester downgrade' -AsPlainText -Force
        $null = Initialize-BackupRepository -Repository $path -Passphrase $pass
        $null = New-ObjectBackup -DbRoot $script:DbRoot -Dir acme -Object orders -Repository $path -Passphrase $pass
        Remove-Item -LiteralPath (Join-Path $path 'keys') -Recurse -Force
        $config = Get-Content -LiteralPath (Join-Path $path 'config') -Raw | ConvertFrom-Json
        $config.encryption = 'none'
        $config.chunkIdAlgorithm = 'sha256'
        $config | ConvertTo-Json -Depth 5 | Set-Content -LiteralPath (Join-Path $path 'config')
        # The refusals are recorded in the repository's operation history (events/, plain JSON by
        # design); nothing else may change.
        $before = Get-TreeState $path | Where-Object { $_ -notlike 'events*' }

        { New-ObjectBackup -DbRoot $script:DbRoot -Dir acme -Object orders -Repository $path -Passphrase $pass -Force -ErrorAction Stop } |
            Should -Throw -ErrorId 'EncryptionDowngrade,PSBackup.Commands.NewObjectBackupCommand'
        { New-ObjectBackup -DbRoot $script:DbRoot -Dir acme -Object orders -Repository $path -Force -ErrorAction Stop } |
            Should -Throw -ErrorId 'EncryptionDowngrade,PSBackup.Commands.NewObjectBackupCommand'
        Get-TreeState $path | Where-Object { $_ -notlike 'events*' } | Should -Be $before
    }

    It 'refuses a passphrase for a repository that was never encrypted' {
        $path = Join-Path $TestDrive 'plain'
        $null = Initialize-BackupRepository -Repository $path -Unencrypted
        { Get-Backup -Repository $path -Passphrase (ConvertTo-SecureString 'x' -AsPlainText -Force) -ErrorAction Stop } |
            Should -Throw -ErrorId 'RepositoryNotEncrypted,PSBackup.Commands.GetBackupCommand'
    }
}

Describe 'Damaged repositories' {
    BeforeAll {
        function New-DamagedRepository {
            param([string] $Name)
            $path = Join-Path $TestDrive $Name
            $null = Initialize-BackupRepository -Repository $path -Unencrypted
            $first = New-ObjectBackup -DbRoot $script:DbRoot -Dir acme -Object orders -Repository $path
            $second = New-ObjectBackup -DbRoot $script:DbRoot -Dir acme -Object customers -Repository $path
            [pscustomobject]@{ Path = $path; First = $first; Second = $second }
        }
        function Invoke-FlipByte {
            param([string] $File, [int] $Offset)
            $bytes = [System.IO.File]::ReadAllBytes($File)
            $bytes[[Math]::Min($Offset, $bytes.Length - 1)] = $bytes[[Math]::Min($Offset, $bytes.Length - 1)] -bxor 0x5A
            [System.IO.File]::WriteAllBytes($File, $bytes)
        }
    }

    It 'lists the other backups and reports a damaged manifest as a non-terminating error' {
        $r = New-DamagedRepository -Name 'bad-manifest'
        Invoke-FlipByte -File (Join-Path $r.Path 'snapshots' $r.First.BackupId) -Offset 40

        $records = @(Get-Backup -Repository $r.Path -ErrorVariable damaged -ErrorAction SilentlyContinue)
        $records.BackupId | Should -Be @($r.Second.BackupId)
        $damaged.Count | Should -Be 1
        $damaged[0].FullyQualifiedErrorId | Should -Be 'ManifestCorrupt,PSBackup.Commands.GetBackupCommand'

        $items = @(Remove-ExpiredBackup -Repository $r.Path -KeepLast 5 -Confirm:$false)
        ($items | Where-Object Kind -eq 'DamagedBackup').Removed | Should -Be @($true)
        @(Get-Backup -Repository $r.Path -ErrorAction Stop).Count | Should -Be 1
    }

    It 'marks a damaged pack, alerts, and Repair-BackupRepository salvages what it can and names what it cannot' {
        $r = New-DamagedRepository -Name 'bad-pack'
        $pack = Get-ChildItem -LiteralPath (Join-Path $r.Path 'packs') -Recurse -File | Select-Object -First 1
        Invoke-FlipByte -File $pack.FullName -Offset 100

        $check = Test-BackupRepository -Repository $r.Path -ReadData -WarningAction SilentlyContinue
        $check.Passed | Should -BeFalse
        Join-Path $r.Path 'damaged' $pack.Name | Should -Exist
        (Get-BackupHealth -Repository $r.Path | Where-Object Code -eq 'BackupDamaged').Severity | Should -Contain 'Critical'

        $plan = Repair-BackupRepository -Repository $r.Path -WhatIf
        $plan.Applied | Should -BeFalse
        Join-Path $r.Path 'damaged' $pack.Name | Should -Exist

        $result = Repair-BackupRepository -Repository $r.Path -Confirm:$false -ErrorVariable incomplete -ErrorAction SilentlyContinue -WarningAction SilentlyContinue
        $result | Should -BeOfType ([PSBackup.Engine.Repository.RepairResult])
        $result.DamagedPacks | Should -Contain $pack.Name
        $pack.FullName | Should -Not -Exist
        if (-not $result.Repaired) {
            $incomplete[0].FullyQualifiedErrorId | Should -Be 'RepairIncomplete,PSBackup.Commands.RepairBackupRepositoryCommand'
            $fixed = Repair-BackupRepository -Repository $r.Path -SourcePath (Join-Path $script:DbRoot 'acme') -Confirm:$false
            $fixed.Repaired | Should -BeTrue
        }
        (Test-BackupRepository -Repository $r.Path -ReadData).Passed | Should -BeTrue
    }

    It 'syncs everything but a damaged manifest and says so' {
        $r = New-DamagedRepository -Name 'sync-source'
        Invoke-FlipByte -File (Join-Path $r.Path 'snapshots' $r.First.BackupId) -Offset 40
        $copy = Join-Path $TestDrive 'sync-copy'

        $result = Sync-BackupRepository -Source $r.Path -Destination $copy -Confirm:$false -ErrorVariable skipped -ErrorAction SilentlyContinue -WarningAction SilentlyContinue
        # The damaged manifest and the ref naming it: both left behind, both naming the backup.
        $result.DamagedSkipped.Count | Should -BeGreaterThan 0
        $result.DamagedSkipped | ForEach-Object { $_ | Should -Match $r.First.BackupId }
        $skipped[0].FullyQualifiedErrorId | Should -Be 'SyncSkippedDamaged,PSBackup.Commands.SyncBackupRepositoryCommand'
        Join-Path $copy 'snapshots' $r.First.BackupId | Should -Not -Exist
        Join-Path $copy 'snapshots' $r.Second.BackupId | Should -Exist
    }
}

Describe 'Hostile inputs' {
    It 'refuses a FIFO inside an object by path instead of blocking on it' {
        $root = Join-Path $TestDrive 'fifo-db'
        $object = Join-Path $root 'acme' 'piped'
        $null = New-Item -ItemType Directory -Path $object -Force
        Set-Content -LiteralPath (Join-Path $object 'fields.conf') -Value 'a:int'
        & mkfifo (Join-Path $object 'pipe')
        { New-ObjectBackup -DbRoot $root -Dir acme -Object piped -ErrorAction Stop } |
            Should -Throw -ErrorId 'SpecialFileInObject,PSBackup.Commands.NewObjectBackupCommand'
    }

    It 'refuses to create a repository in a folder that holds other things' {
        $path = Join-Path $TestDrive 'busy-folder'
        $null = New-Item -ItemType Directory -Path $path
        Set-Content -LiteralPath (Join-Path $path 'notes.txt') -Value 'mine'
        { Initialize-BackupRepository -Repository $path -Unencrypted -ErrorAction Stop } |
            Should -Throw -ErrorId 'LocationNotEmpty,PSBackup.Commands.InitializeBackupRepositoryCommand'
        @(Get-ChildItem -LiteralPath $path).Name | Should -Be @('notes.txt')
    }

    It 'gives a restored object back its empty folders and modes' {
        $root = Join-Path $TestDrive 'modes-db'
        $object = Join-Path $root 'acme' 'private'
        $null = New-Item -ItemType Directory -Path (Join-Path $object 'empty' 'deeper') -Force
        $secret = Join-Path $object 'secret.bin'
        Set-Content -LiteralPath $secret -Value 'only mine'
        [System.IO.File]::SetUnixFileMode($secret, [System.IO.UnixFileMode]'UserRead, UserWrite')
        $repo = Join-Path $TestDrive 'modes-repo'
        $null = Initialize-BackupRepository -Repository $repo -Unencrypted
        $backup = New-ObjectBackup -DbRoot $root -Dir acme -Object private -Repository $repo
        Remove-Item -LiteralPath $object -Recurse -Force

        $null = Restore-ObjectBackup -DbRoot $root -Dir acme -Object private -Repository $repo -BackupId $backup.BackupId -Confirm:$false
        Join-Path $object 'empty' 'deeper' | Should -Exist
        [System.IO.File]::GetUnixFileMode($secret) | Should -Be ([System.IO.UnixFileMode]'UserRead, UserWrite')
    }
}
