#Requires -Version 7.4
# Pester 5: the shipped automation, run as written. The Azure Automation runbook's body with
# Get-AutomationVariable / Get-AutomationPSCredential stubbed, against Azurite; the module zip of
# build.ps1 -Package imported in a fresh pwsh; the systemd units checked by systemd-analyze.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot '..' 'out' 'PSBackup' 'PSBackup.psd1') -Force -ErrorAction Stop
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $env:PSBACKUP_AUDIT_LOG = Join-Path $TestDrive 'audit.jsonl'
    $script:Root = (Resolve-Path (Join-Path $PSScriptRoot '..')).Path
    $script:Pwsh = Join-Path $PSHOME ($IsWindows ? 'pwsh.exe' : 'pwsh')
}

AfterAll {
    Remove-Item Env:PSBACKUP_AUDIT_LOG -ErrorAction SilentlyContinue
    Remove-Module PSBackup -Force -ErrorAction SilentlyContinue
}

Describe 'The Azure Automation runbook' -Tag 'Integration' {
    BeforeAll {
        $script:Azurite = Start-TestAzurite -WorkPath (Join-Path $TestDrive 'azurite')
        $fixture = Join-Path $TestDrive 'example'
        New-ExampleDatabase -Path $fixture -Seed 33
        $script:Variables = @{
            PSBackupDataDir    = Join-Path $fixture 'unison'
            PSBackupNamespace  = 'users'
            PSBackupRepository = "$($script:Azurite.BlobEndpoint)/backups/runbook"
        }
        $script:Passphrase = ConvertTo-SecureString 'runbook passphrase' -AsPlainText -Force
        # The managed identity's place: Azurite speaks http, where Entra ID tokens are not sent,
        # so the storage credential comes from the standard variable the identity would replace.
        $env:AZURE_STORAGE_CONNECTION_STRING = $script:Azurite.ConnectionString
        $null = Initialize-BackupRepository -Repository $script:Variables.PSBackupRepository -Passphrase $script:Passphrase
        # The stubs live in the global scope the runbook calls them from, with their data.
        $global:AutomationVariables = $script:Variables
        $global:AutomationPassphrase = $script:Passphrase
        function global:Get-AutomationVariable([string] $Name) { $global:AutomationVariables[$Name] }
        function global:Get-AutomationPSCredential([string] $Name) {
            switch ($Name) {
                'PSBackupPassphrase' { [pscredential]::new('psbackup', $global:AutomationPassphrase) }
                'PSBackupKey' { [pscredential]::new('psbackup', $global:AutomationKey) }
                default { $null }
            }
        }
        $script:Runbook = Join-Path $script:Root 'examples' 'automation' 'azure' 'Backup-UnisonNamespace.ps1'
        # As in Azure Automation, the runbook imports PSBackup by name from the module path.
        $script:ModulePath = $env:PSModulePath
        $env:PSModulePath = (Join-Path $script:Root 'out') + [IO.Path]::PathSeparator + $env:PSModulePath
    }

    AfterAll {
        Remove-Item Env:AZURE_STORAGE_CONNECTION_STRING -ErrorAction SilentlyContinue
        $env:PSModulePath = $script:ModulePath
        Remove-Item Function:global:Get-AutomationVariable, Function:global:Get-AutomationPSCredential -ErrorAction SilentlyContinue
        Remove-Variable -Scope Global -Name AutomationVariables, AutomationPassphrase, AutomationKey -ErrorAction SilentlyContinue
        Stop-TestAzurite $script:Azurite
    }

    It 'ships the WAL and a snapshot to Blob Storage, then reports healthy' {
        $output = & $script:Runbook -Snapshot
        $output | Should -Contain 'healthy'
        ($output -join "`n") | Should -Match '\d+ segment\(s\) shipped'
        $stored = @(Get-Backup -Repository $script:Variables.PSBackupRepository -Namespace users -Passphrase $script:Passphrase)
        @($stored | Where-Object Kind -eq 'WalSegment').Count | Should -BeGreaterThan 0
        @($stored | Where-Object Kind -eq 'StoreSnapshot').Count | Should -Be 1
    }

    It 'fails the job (throws) when health is Critical' {
        Start-Sleep -Seconds 2
        $failure = { & $script:Runbook -MaxAge '0.00:00:01' } | Should -Throw -PassThru
        $failure.FullyQualifiedErrorId | Should -Be 'BackupUnhealthy,PSBackup.Commands.GetBackupHealthCommand'
    }

    It 'takes a key file''s text from an Automation credential (-KeyName -KeyFileText), and fails on a credential that is not there' {
        $keyPath = Join-Path $TestDrive 'runbook.key'
        $null = New-BackupKeyFile -Path $keyPath
        $global:AutomationKey = ConvertTo-SecureString (Get-Content -LiteralPath $keyPath -Raw) -AsPlainText -Force
        $repository = "$($script:Azurite.BlobEndpoint)/backups/runbook-key"
        $null = Initialize-BackupRepository -Repository $repository -KeyFile $keyPath
        $previous = $global:AutomationVariables.PSBackupRepository
        $global:AutomationVariables.PSBackupRepository = $repository
        try {
            $output = & $script:Runbook -KeyName 'PSBackupKey' -KeyFileText
            $output | Should -Contain 'healthy'
            @(Get-Backup -Repository $repository -Namespace users -KeyFile $keyPath).Count | Should -BeGreaterThan 0
            { & $script:Runbook -KeyName 'NoSuchCredential' } | Should -Throw "*'NoSuchCredential' does not exist*"
        }
        finally {
            $global:AutomationVariables.PSBackupRepository = $previous
        }
    }

    It 'fails the job when the passphrase is wrong' {
        $global:AutomationPassphrase = ConvertTo-SecureString 'not the passphrase' -AsPlainText -Force
        $failure = { & $script:Runbook } | Should -Throw -PassThru
        $failure.FullyQualifiedErrorId | Should -Be 'WrongRepositoryKey,PSBackup.Commands.InvokeWalShipCommand'
    }
}

Describe 'build.ps1 -Package' {
    It 'zips the module folder at the root, under Azure Automation''s size limit, and the unzipped module imports in a fresh pwsh' {
        $zip = Join-Path $TestDrive 'PSBackup.zip'
        & $script:Pwsh -NoProfile -NonInteractive -File (Join-Path $script:Root 'build.ps1') -Package -NoBuild -PackagePath $zip | Out-Null
        $LASTEXITCODE | Should -Be 0
        (Get-Item -LiteralPath $zip).Length | Should -BeLessThan 100MB
        Add-Type -AssemblyName System.IO.Compression.FileSystem
        $archive = [IO.Compression.ZipFile]::OpenRead($zip)
        try {
            $names = @($archive.Entries.FullName)
        }
        finally {
            $archive.Dispose()
        }
        $names | Should -Contain 'PSBackup/PSBackup.psd1'
        $names | Should -Contain 'PSBackup/PSBackup.Loader.dll'
        $names | Should -Contain 'PSBackup/dependencies/PSBackup.dll'
        $names | Should -Contain 'PSBackup/dependencies/PSBackup.Engine.dll'
        @($names | Where-Object { $_ -notlike 'PSBackup/*' }).Count | Should -Be 0
        @($names | Where-Object { $_ -like '*\*' }).Count | Should -Be 0
        $unzipped = Join-Path $TestDrive 'modules'
        Expand-Archive -LiteralPath $zip -DestinationPath $unzipped
        $out = & $script:Pwsh -NoProfile -NonInteractive -Command "`$env:PSModulePath = '$unzipped'; Import-Module PSBackup -ErrorAction Stop; (Get-Command -Module PSBackup).Count; (Get-Module PSBackup).ModuleBase"
        $LASTEXITCODE | Should -Be 0
        [int] $out[0] | Should -Be @(Get-Command -Module PSBackup).Count
        $out[1] | Should -Be (Join-Path $unzipped 'PSBackup')
    }
}

Describe 'The Linux and Windows schedules' {
    It 'has systemd units that systemd-analyze verify accepts' -Skip:(-not (Get-Command systemd-analyze -ErrorAction SilentlyContinue)) {
        $units = Join-Path $TestDrive 'units'
        $null = New-Item -ItemType Directory -Path $units
        # verify checks that ExecStart's program exists: point it at the psbackup just built.
        $psbackup = Join-Path $script:Root 'src' 'PSBackup.Cli' 'bin' 'Release' 'net10.0' 'psbackup'
        $psbackup | Should -Exist
        foreach ($file in Get-ChildItem -LiteralPath (Join-Path $script:Root 'examples' 'automation' 'linux') -Include '*.service', '*.timer' -Recurse) {
            (Get-Content -LiteralPath $file.FullName -Raw).Replace('/usr/local/bin/psbackup', $psbackup) | Set-Content -LiteralPath (Join-Path $units $file.Name)
        }
        # The continuous shipper is a template unit: verified as an instance of it.
        (Get-Content -LiteralPath (Join-Path $script:Root 'examples' 'automation' 'psbackup-wal-follow@.service') -Raw).Replace('/usr/local/bin/psbackup', $psbackup) |
            Set-Content -LiteralPath (Join-Path $units 'psbackup-wal-follow@users.service')
        $names = @(Get-ChildItem -LiteralPath $units).FullName
        $names.Count | Should -Be 5
        $out = & systemd-analyze verify --man=no --generators=no @names 2>&1
        $LASTEXITCODE | Should -Be 0 -Because ($out -join "`n")
        ($out -join "`n") | Should -BeNullOrEmpty
    }

    It 'has cron lines that run the same psbackup commands as the units, one for each seed script' {
        $cron = Get-Content -LiteralPath (Join-Path $script:Root 'examples' 'automation' 'linux' 'unison-backup.cron') | Where-Object { $_ -match '^[\d*]' }
        $cron.Count | Should -Be 3
        $cron[0] | Should -Match 'psbackup snapshot create .* && /usr/local/bin/psbackup wal ship'
        $cron[1] | Should -Match '^\*/15 .*psbackup wal ship .* && /usr/local/bin/psbackup health'
        $cron[2] | Should -Match 'psbackup metrics .*--path /var/lib/node_exporter/textfile_collector/psbackup.prom'
    }

    It 'has a Task Scheduler registration script that parses and runs the tested job script' {
        $script = Join-Path $script:Root 'examples' 'automation' 'windows' 'Register-PSBackupTask.ps1'
        $errors = $null
        $null = [System.Management.Automation.Language.Parser]::ParseFile($script, [ref] $null, [ref] $errors)
        $errors | Should -BeNullOrEmpty
        Get-Content -LiteralPath $script -Raw | Should -Match "Join-Path \`$PSScriptRoot 'PSBackupJob.ps1'"
        Join-Path $script:Root 'examples' 'automation' 'windows' 'PSBackupJob.ps1' | Should -Exist
    }
}
