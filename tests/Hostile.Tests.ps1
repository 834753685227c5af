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
