#Requires -Version 7.4
# Pester 5: Initialize-BackupRepository and the -Repository parameter sets of New-ObjectBackup,
# New-StoreSnapshot and Invoke-WalShip, against the example databases. Tests against a real S3
# server (s3rver from tests/s3, installed by `npm ci --prefix tests/s3`) are tagged Integration.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot '..' 'out' 'PSBackup' 'PSBackup.psd1') -Force -ErrorAction Stop

    $script:Fixture = Join-Path $TestDrive 'example'
    $generator = Join-Path $PSScriptRoot '..' 'examples' 'PSBackup.Example'
    $output = & dotnet run --project $generator -- generate --out $script:Fixture --seed 13 2>&1
    if ($LASTEXITCODE -ne 0) {
        throw "psbackup-example generate failed ($LASTEXITCODE): $($output -join [Environment]::NewLine)"
    }
    $script:DbRoot = Join-Path $script:Fixture 'shard-db'
    $script:DataDir = Join-Path $script:Fixture 'unison'

    function Get-TreeState([string] $Path) {
        # Relative path, length and hash of every file: equal states mean nothing was written.
        Get-ChildItem -LiteralPath $Path -Recurse -File -Force | Sort-Object FullName | ForEach-Object {
            '{0} {1} {2}' -f [System.IO.Path]::GetRelativePath($Path, $_.FullName), $_.Length, (Get-FileHash -LiteralPath $_.FullName -Algorithm SHA256).Hash
        }
    }
}

AfterAll {
    Remove-Module PSBackup -Force -ErrorAction SilentlyContinue
}

Describe 'Initialize-BackupRepository' {
    It 'creates a missing folder and returns a RepositoryInfo' {
        $path = Join-Path $TestDrive 'repos' 'plain'
        $info = Initialize-BackupRepository -Repository $path

        $info | Should -BeOfType ([PSBackup.Engine.Repository.RepositoryInfo])
        $info.Repository | Should -Be $path
        $info.RepositoryId | Should -Match '^[0-9a-f]{64}$'
        $info.Encrypted | Should -BeFalse
        Join-Path $path 'config' | Should -Exist
    }

    It 'resolves a relative -Repository against the current PowerShell location' {
        Push-Location $TestDrive
        try {
            $info = Initialize-BackupRepository -Repository 'relative-repo'
            $info.Repository | Should -Be (Join-Path $TestDrive 'relative-repo')
        }
        finally {
            Pop-Location
        }
    }

    It 'creates nothing under -WhatIf' {
        $path = Join-Path $TestDrive 'repos' 'whatif'
        Initialize-BackupRepository -Repository $path -WhatIf | Should -BeNullOrEmpty
        $path | Should -Not -Exist
    }

    It 'refuses an existing repository and changes nothing' {
        $path = Join-Path $TestDrive 'repos' 'twice'
        $null = Initialize-BackupRepository -Repository $path
        $before = Get-TreeState $path

        { Initialize-BackupRepository -Repository $path -ErrorAction Stop } |
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

    It 'refuses S3 options on a folder' {
        $path = Join-Path $TestDrive 'repos' 'not-s3'
        { Initialize-BackupRepository -Repository $path -Endpoint 'http://127.0.0.1:9' -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidRepository,PSBackup.Commands.InitializeBackupRepositoryCommand'
        $path | Should -Not -Exist
    }
}

Describe 'Backing up to a folder repository' {
    BeforeAll {
        $script:Repo = Join-Path $TestDrive 'repos' 'main'
        $null = Initialize-BackupRepository -Repository $script:Repo
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

        $shipped = @(Invoke-WalShip -DataDir $script:DataDir -Namespace users -Repository $script:Repo)
        $again = @(Invoke-WalShip -DataDir $script:DataDir -Namespace users -Repository $script:Repo)

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
        $s3rver = Join-Path $PSScriptRoot 's3' 'node_modules' 's3rver' 'bin' 's3rver.js'
        if (-not (Test-Path -LiteralPath $s3rver)) {
            throw "s3rver is not installed: run 'npm ci --prefix tests/s3' first."
        }
        $script:Bucket = 'pester-repo'
        $s3Data = Join-Path $TestDrive 's3rver'
        $null = New-Item -ItemType Directory -Path $s3Data
        $log = Join-Path $TestDrive 's3rver.log'
        $errLog = Join-Path $TestDrive 's3rver.err'
        # Start-Process joins -ArgumentList with single spaces and quotes nothing, so a checkout or
        # temp path with a space would split: quote every argument and pass one command line.
        $arguments = @($s3rver, '-d', $s3Data, '-a', '127.0.0.1', '-p', '0', '--no-vhost-buckets', '--configure-bucket', $script:Bucket) |
            ForEach-Object { '"{0}"' -f $_ }
        $node = (Get-Command -Name node -CommandType Application -ErrorAction Stop | Select-Object -First 1).Source
        # s3rver 3.7.1 encrypts listing continuation tokens with a cipher Node 17+ only offers through
        # the legacy OpenSSL provider (as tests/PSBackup.Engine.Tests' S3ServerFixture does); the
        # child inherits it, and this session gets its own value back.
        $previousNodeOptions = $env:NODE_OPTIONS
        $env:NODE_OPTIONS = '--openssl-legacy-provider'
        try {
            $script:S3Process = Start-Process -FilePath $node -ArgumentList ($arguments -join ' ') -PassThru `
                -RedirectStandardOutput $log -RedirectStandardError $errLog
        }
        finally {
            $env:NODE_OPTIONS = $previousNodeOptions
        }
        $script:Endpoint = $null
        foreach ($i in 1..150) {
            $line = Get-Content -LiteralPath $log -ErrorAction SilentlyContinue | Select-String 'listening on 127\.0\.0\.1:(\d+)' | Select-Object -First 1
            if ($line) {
                $script:Endpoint = 'http://127.0.0.1:{0}' -f $line.Matches[0].Groups[1].Value
                break
            }
            if ($script:S3Process.HasExited) {
                break
            }
            Start-Sleep -Milliseconds 200
        }
        if (-not $script:Endpoint) {
            throw "s3rver did not start: $(Get-Content -LiteralPath $log -Raw -ErrorAction SilentlyContinue) $(Get-Content -LiteralPath $errLog -Raw -ErrorAction SilentlyContinue)"
        }
        $script:S3 = @{
            Endpoint  = $script:Endpoint
            AccessKey = 'S3RVER'
            SecretKey = (ConvertTo-SecureString 'S3RVER' -AsPlainText -Force)
        }
        $script:S3Repo = "s3://$($script:Bucket)/psbackup"
    }

    AfterAll {
        if ($script:S3Process -and -not $script:S3Process.HasExited) {
            Stop-Process -Id $script:S3Process.Id -Force
            # Gone before Pester clears TestDrive (Windows cannot delete the open data folder).
            $null = $script:S3Process.WaitForExit(10000)
        }
    }

    It 'initializes once and refuses a second init' {
        $info = Initialize-BackupRepository -Repository $script:S3Repo @script:S3
        $info.Repository | Should -Be $script:S3Repo
        { Initialize-BackupRepository -Repository $script:S3Repo @script:S3 -ErrorAction Stop } |
            Should -Throw -ErrorId 'RepositoryExists,PSBackup.Commands.InitializeBackupRepositoryCommand'
    }

    It 'takes an object backup, a snapshot and the WAL' {
        $object = New-ObjectBackup -DbRoot $script:DbRoot -Dir acme -Object orders -Repository $script:S3Repo @script:S3
        $snapshot = New-StoreSnapshot -DataDir $script:DataDir -Namespace events -Repository $script:S3Repo @script:S3
        $wal = @(Invoke-WalShip -DataDir $script:DataDir -Namespace events -Repository $script:S3Repo @script:S3)
        $again = @(Invoke-WalShip -DataDir $script:DataDir -Namespace events -Repository $script:S3Repo @script:S3)

        $object.BackupId | Should -Match '^[0-9a-f]{64}$'
        $snapshot.Path | Should -BeLike 'snapshot/events/*'
        $wal.Count | Should -BeGreaterThan 0
        $wal.AlreadyPresent | Should -Not -Contain $true
        $again.AlreadyPresent | Should -Not -Contain $false
    }
}
