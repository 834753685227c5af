#Requires -Version 7.4
# Pester 5: Initialize-BackupRepository and the -Repository parameter sets of New-ObjectBackup,
# New-StoreSnapshot and Invoke-WalShip, against the example databases. Tests against a real S3
# server (s3rver from tests/s3, installed by `npm ci --prefix tests/s3`) are tagged Integration.

BeforeAll {
    # Audit lines of these runs go to the test drive, not the user's audit log.
    $env:PSBACKUP_AUDIT_LOG = Join-Path $TestDrive 'audit.jsonl'
    Import-Module (Join-Path $PSScriptRoot '..' 'out' 'PSBackup' 'PSBackup.psd1') -Force -ErrorAction Stop
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')

    $script:Fixture = Join-Path $TestDrive 'example'
    New-ExampleDatabase -Path $script:Fixture -Seed 13
    $script:DbRoot = Join-Path $script:Fixture 'shard-db'
    $script:DataDir = Join-Path $script:Fixture 'unison'

}

AfterAll {
    Remove-Item Env:PSBACKUP_AUDIT_LOG -ErrorAction SilentlyContinue
    Remove-Module PSBackup -Force -ErrorAction SilentlyContinue
}

Describe 'Initialize-BackupRepository' {
    It 'creates a missing folder and returns a RepositoryInfo' {
        $path = Join-Path $TestDrive 'repos' 'plain'
        $info = Initialize-BackupRepository -Repository $path -Unencrypted

        $info | Should -BeOfType ([PSBackup.Engine.Repository.RepositoryInfo])
        $info.Repository | Should -Be $path
        $info.RepositoryId | Should -Match '^[0-9a-f]{64}$'
        $info.Encrypted | Should -BeFalse
        Join-Path $path 'config' | Should -Exist
    }

    It 'resolves a relative -Repository against the current PowerShell location' {
        Push-Location $TestDrive
        try {
            $info = Initialize-BackupRepository -Repository 'relative-repo' -Unencrypted
            $info.Repository | Should -Be (Join-Path $TestDrive 'relative-repo')
        }
        finally {
            Pop-Location
        }
    }

    It 'creates nothing under -WhatIf' {
        $path = Join-Path $TestDrive 'repos' 'whatif'
        Initialize-BackupRepository -Repository $path -Unencrypted -WhatIf | Should -BeNullOrEmpty
        $path | Should -Not -Exist
    }

    It 'refuses an existing repository and changes nothing' {
        $path = Join-Path $TestDrive 'repos' 'twice'
        $null = Initialize-BackupRepository -Repository $path -Unencrypted
        $before = Get-TreeState $path

        { Initialize-BackupRepository -Repository $path -Unencrypted -ErrorAction Stop } |
            Should -Throw -ErrorId 'RepositoryExists,PSBackup.Commands.InitializeBackupRepositoryCommand'
        Get-TreeState $path | Should -Be $before
    }

    It 'encrypts with -Passphrase' {
        $path = Join-Path $TestDrive 'repos' 'secret'
        $info = Initialize-BackupRepository -Repository $path -Passphrase (ConvertTo-SecureString 'pester passphrase' -AsPlainText -Force)
        $info.Encrypted | Should -BeTrue
        $info.KeyKind | Should -Be 'passphrase'
        @(Get-ChildItem -LiteralPath (Join-Path $path 'keys') -File).Count | Should -Be 1
    }

    It 'refuses to choose encryption for the operator: no key needs -Unencrypted, a key refuses it' {
        $path = Join-Path $TestDrive 'repos' 'undecided'
        { Initialize-BackupRepository -Repository $path -ErrorAction Stop } |
            Should -Throw -ErrorId 'EncryptionNotChosen,PSBackup.Commands.InitializeBackupRepositoryCommand'
        $pass = ConvertTo-SecureString 'pester passphrase' -AsPlainText -Force
        { Initialize-BackupRepository -Repository $path -Unencrypted -Passphrase $pass -ErrorAction Stop } |
            Should -Throw -ErrorId 'ConflictingEncryption,PSBackup.Commands.InitializeBackupRepositoryCommand'
        $env:PSBACKUP_PASSPHRASE = 'from the environment'
        try {
            { Initialize-BackupRepository -Repository $path -Unencrypted -ErrorAction Stop } |
                Should -Throw -ErrorId 'ConflictingEncryption,PSBackup.Commands.InitializeBackupRepositoryCommand'
            (Initialize-BackupRepository -Repository $path).Encrypted | Should -BeTrue
        }
        finally {
            Remove-Item Env:PSBACKUP_PASSPHRASE -ErrorAction SilentlyContinue
        }
    }

    It 'refuses S3 options on a folder' {
        $path = Join-Path $TestDrive 'repos' 'not-s3'
        { Initialize-BackupRepository -Repository $path -Unencrypted -Endpoint 'http://127.0.0.1:9' -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidRepository,PSBackup.Commands.InitializeBackupRepositoryCommand'
        $path | Should -Not -Exist
    }
}

Describe 'Backing up to a folder repository' {
    BeforeAll {
        $script:Repo = Join-Path $TestDrive 'repos' 'main'
        $null = Initialize-BackupRepository -Repository $script:Repo -Unencrypted
    }

    It 'New-ObjectBackup -Repository stores the object and leaves no sibling folder' {
        $siblings = @(Get-ChildItem -LiteralPath (Join-Path $script:DbRoot 'acme') -Directory).Name
        $result = New-ObjectBackup -DbRoot $script:DbRoot -Dir acme -Object orders -Repository $script:Repo

        $result | Should -BeOfType ([PSBackup.Engine.ObjectStore.ObjectBackupResult])
        $result.Repository | Should -Be $script:Repo
        $result.BackupId | Should -Match '^[0-9a-f]{64}$'
        $result.BackupPath | Should -BeNullOrEmpty
        $result.Consistency | Should -Be 'Stable'
        $result.StoredBytes | Should -BeGreaterThan 0
        @(Get-ChildItem -LiteralPath (Join-Path $script:DbRoot 'acme') -Directory).Name | Should -Be $siblings
    }

    It 'a second object backup of an unchanged object stores little' {
        $first = New-ObjectBackup -DbRoot $script:DbRoot -Dir globex -Object inventory -Repository $script:Repo
        $second = New-ObjectBackup -DbRoot $script:DbRoot -Dir globex -Object inventory -Repository $script:Repo
        $second.StoredBytes | Should -BeLessThan ($first.StoredBytes / 10)
        $second.ParentId | Should -Be $first.BackupId
    }

    It 'New-ObjectBackup -Force reads every file, reusing none from the parent' {
        $forced = New-ObjectBackup -DbRoot $script:DbRoot -Dir globex -Object inventory -Repository $script:Repo -Force

        $forced.ParentId | Should -BeNullOrEmpty
        $forced.FilesReused | Should -Be 0
        $forced.FilesRead | Should -Be $forced.FileCount
    }

    It 'New-StoreSnapshot -Repository needs no -Path and records the WAL position' {
        $result = New-StoreSnapshot -DataDir $script:DataDir -Namespace users -Repository $script:Repo

        $result | Should -BeOfType ([PSBackup.Engine.Snapshots.StoreSnapshotResult])
        $result.Path | Should -BeLike 'snapshot/users/*'
        $result.BackupId | Should -Match '^[0-9a-f]{64}$'
        $result.ManifestPath | Should -BeNullOrEmpty
        $result.WalPosition.SegmentIds.Count | Should -BeGreaterThan 0
        @(Get-ChildItem -LiteralPath (Join-Path $script:DataDir 'backups' 'users') -Filter '*.tmp' -Force) | Should -BeNullOrEmpty
    }

    It 'New-StoreSnapshot refuses -Path together with -Repository at binding' {
        { New-StoreSnapshot -DataDir $script:DataDir -Namespace users -Path 'snap' -Repository $script:Repo -ErrorAction Stop } |
            Should -Throw -ErrorId 'AmbiguousParameterSet,PSBackup.Commands.NewStoreSnapshotCommand'
    }

    It 'Invoke-WalShip -Repository ships every sealed segment once, then nothing' {
        $sealed = @(Get-WalSegment -DataDir $script:DataDir -Namespace users | Where-Object Sealed)

        $shipped = @(Invoke-WalShip -DataDir $script:DataDir -Namespace users -Repository $script:Repo -SealedOnly)
        $again = @(Invoke-WalShip -DataDir $script:DataDir -Namespace users -Repository $script:Repo -SealedOnly)

        $shipped | Should -BeOfType ([PSBackup.Engine.Wal.ShippedSegment])
        @($shipped.SegmentId) | Should -Be @($sealed.SegmentId)
        $shipped.AlreadyPresent | Should -Not -Contain $true
        foreach ($segment in $shipped) {
            $segment.Path | Should -Be ('wal/users/{0:D9}' -f $segment.SegmentId)
            $segment.Repository | Should -Be $script:Repo
        }
        @($again.SegmentId) | Should -Be @($sealed.SegmentId)
        $again.AlreadyPresent | Should -Not -Contain $false
        @($again.BackupId) | Should -Be @($shipped.BackupId)
    }

    It 'writes nothing to the repository under -WhatIf' {
        $before = Get-TreeState $script:Repo
        New-ObjectBackup -DbRoot $script:DbRoot -Dir acme -Object customers -Repository $script:Repo -WhatIf | Should -BeNullOrEmpty
        Invoke-WalShip -DataDir $script:DataDir -Namespace events -Repository $script:Repo -WhatIf | Should -BeNullOrEmpty
        Get-TreeState $script:Repo | Should -Be $before
    }

    It 'rejects an unsafe namespace before anything is written' {
        $before = Get-TreeState $script:Repo
        { Invoke-WalShip -DataDir $script:DataDir -Namespace '../users' -Repository $script:Repo -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidName,PSBackup.Commands.InvokeWalShipCommand'
        Get-TreeState $script:Repo | Should -Be $before
    }

    It 'reports a folder that holds no repository as RepositoryNotFound' {
        $empty = Join-Path $TestDrive 'repos' 'empty'
        $null = New-Item -ItemType Directory -Path $empty
        { New-ObjectBackup -DbRoot $script:DbRoot -Dir acme -Object orders -Repository $empty -ErrorAction Stop } |
            Should -Throw -ErrorId 'RepositoryNotFound,PSBackup.Commands.NewObjectBackupCommand'
    }
}

Describe 'An encrypted repository' {
    BeforeAll {
        $script:Secret = Join-Path $TestDrive 'repos' 'encrypted'
        $null = Initialize-BackupRepository -Repository $script:Secret -Passphrase (ConvertTo-SecureString 'the right one' -AsPlainText -Force)
    }

    It 'refuses a wrong passphrase with WrongRepositoryKey, never echoing it, and writes nothing' {
        $before = Get-TreeState $script:Secret
        $wrong = ConvertTo-SecureString 'not-the-right-one' -AsPlainText -Force

        $err = { New-ObjectBackup -DbRoot $script:DbRoot -Dir acme -Object orders -Repository $script:Secret -Passphrase $wrong -ErrorAction Stop } |
            Should -Throw -ErrorId 'WrongRepositoryKey,PSBackup.Commands.NewObjectBackupCommand' -PassThru
        $err.CategoryInfo.Category | Should -Be ([System.Management.Automation.ErrorCategory]::InvalidArgument)
        $err.Exception.Message | Should -Not -Match 'not-the-right-one'
        $err.Exception.Message | Should -Not -Match 'the right one'
        Get-TreeState $script:Secret | Should -Be $before
    }

    It 'asks for the key when none is given' {
        $env:PSBACKUP_PASSPHRASE = $null
        { Invoke-WalShip -DataDir $script:DataDir -Namespace users -Repository $script:Secret -ErrorAction Stop } |
            Should -Throw -ErrorId 'WrongRepositoryKey,PSBackup.Commands.InvokeWalShipCommand'
    }

    It 'backs up with the right passphrase' {
        $result = New-ObjectBackup -DbRoot $script:DbRoot -Dir acme -Object orders -Repository $script:Secret -Passphrase (ConvertTo-SecureString 'the right one' -AsPlainText -Force)
        $result.BackupId | Should -Match '^[0-9a-f]{64}$'
    }
}

Describe 'An S3 repository' -Tag 'Integration' {
    BeforeAll {
        $script:Bucket = 'pester-repo'
        $script:S3Server = Start-TestS3Server -Bucket $script:Bucket -WorkPath $TestDrive
        $script:S3 = @{
            Endpoint  = $script:S3Server.Endpoint
            AccessKey = 'S3RVER'
            SecretKey = (ConvertTo-SecureString 'S3RVER' -AsPlainText -Force)
        }
        # On New-StoreSnapshot and Invoke-WalShip -Endpoint is UnisonDB's HTTP API; S3's is -S3Endpoint.
        $script:S3Store = @{
            S3Endpoint = $script:S3Server.Endpoint
            AccessKey  = 'S3RVER'
            SecretKey  = (ConvertTo-SecureString 'S3RVER' -AsPlainText -Force)
        }
        $script:S3Repo = "s3://$($script:Bucket)/psbackup"
    }

    AfterAll {
        Stop-TestS3Server -Server $script:S3Server
    }

    It 'initializes once and refuses a second init' {
        $info = Initialize-BackupRepository -Repository $script:S3Repo -Unencrypted @script:S3
        $info.Repository | Should -Be $script:S3Repo
        { Initialize-BackupRepository -Repository $script:S3Repo -Unencrypted @script:S3 -ErrorAction Stop } |
            Should -Throw -ErrorId 'RepositoryExists,PSBackup.Commands.InitializeBackupRepositoryCommand'
    }

    It 'takes the keys as one PSCredential like the AWS tools, and refuses it beside -AccessKey' {
        $credential = [pscredential]::new('S3RVER', (ConvertTo-SecureString 'S3RVER' -AsPlainText -Force))
        @(Get-Backup -Repository $script:S3Repo -Endpoint $script:S3Server.Endpoint -StorageCredential $credential).Count | Should -BeGreaterOrEqual 0
        { Get-Backup -Repository $script:S3Repo -Endpoint $script:S3Server.Endpoint -StorageCredential $credential -AccessKey 'S3RVER' -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidS3Credentials,PSBackup.Commands.GetBackupCommand'
        $wrong = [pscredential]::new('WRONGKEY', (ConvertTo-SecureString 'S3RVER' -AsPlainText -Force))
        { Get-Backup -Repository $script:S3Repo -Endpoint $script:S3Server.Endpoint -StorageCredential $wrong -SessionToken (ConvertTo-SecureString 't' -AsPlainText -Force) -ErrorAction Stop } |
            Should -Throw -ErrorId 'S3AccessDenied,PSBackup.Commands.GetBackupCommand'
    }

    It 'takes an object backup, a snapshot and the WAL' {
        $object = New-ObjectBackup -DbRoot $script:DbRoot -Dir acme -Object orders -Repository $script:S3Repo @script:S3
        $snapshot = New-StoreSnapshot -DataDir $script:DataDir -Namespace events -Repository $script:S3Repo @script:S3Store
        $wal = @(Invoke-WalShip -DataDir $script:DataDir -Namespace events -Repository $script:S3Repo @script:S3Store)
        $again = @(Invoke-WalShip -DataDir $script:DataDir -Namespace events -Repository $script:S3Repo @script:S3Store)

        $object.BackupId | Should -Match '^[0-9a-f]{64}$'
        $snapshot.Path | Should -BeLike 'snapshot/events/*'
        $wal.Count | Should -BeGreaterThan 0
        $wal.AlreadyPresent | Should -Not -Contain $true
        $again.AlreadyPresent | Should -Not -Contain $false
    }
}
