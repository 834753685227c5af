#Requires -Version 7.4
# Pester 5: repositories in Azure Blob Storage through the cmdlets, against Azurite on 127.0.0.1:
# init (creating the container), WAL shipping, listing, a full check, sync both ways with each
# side's own credentials, and the errors an operator meets.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot '..' 'out' 'PSBackup' 'PSBackup.psd1') -Force -ErrorAction Stop
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
    $env:PSBACKUP_AUDIT_LOG = Join-Path $TestDrive 'audit.jsonl'
    $script:Azurite = Start-TestAzurite -WorkPath (Join-Path $TestDrive 'azurite')
    $fixture = Join-Path $TestDrive 'example'
    New-ExampleDatabase -Path $fixture -Seed 15
    $script:DataDir = Join-Path $fixture 'unison'
    $script:Pass = ConvertTo-SecureString 'azure pester passphrase' -AsPlainText -Force
    $script:Repo = "$($script:Azurite.BlobEndpoint)/backups/hosts/db1"
    $script:Az = @{ StorageCredential = $script:Azurite.Credential; Passphrase = $script:Pass }
}

AfterAll {
    Stop-TestAzurite $script:Azurite
    Remove-Item Env:PSBACKUP_AUDIT_LOG -ErrorAction SilentlyContinue
    Remove-Module PSBackup -Force -ErrorAction SilentlyContinue
}

Describe 'An Azure Blob repository' -Tag 'Integration' {
    It 'is created with its container, takes WAL segments, lists them and checks clean' {
        $info = Initialize-BackupRepository -Repository $script:Repo @script:Az
        $info.Encrypted | Should -BeTrue
        $info.Repository | Should -Be $script:Repo

        $shipped = @(Invoke-WalShip -DataDir $script:DataDir -Namespace users -Repository $script:Repo @script:Az)
        $shipped.Count | Should -BeGreaterThan 0
        $listed = @(Get-Backup -Repository $script:Repo -Namespace users -Kind wal-segment @script:Az)
        @($listed.SegmentId | Sort-Object) | Should -Be @($shipped.SegmentId | Sort-Object)
        $check = Test-BackupRepository -Repository $script:Repo -ReadData @script:Az
        $check.Passed | Should -BeTrue
    }

    It 'syncs to a folder and on to another container, each side with its own credentials' {
        $folder = Join-Path $TestDrive 'offsite'
        $down = Sync-BackupRepository -Source $script:Repo -Destination $folder -StorageCredential $script:Azurite.Credential
        $down.Copied | Should -BeGreaterThan 0
        $up = Sync-BackupRepository -Source $folder -Destination "$($script:Azurite.BlobEndpoint)/copy" `
            -DestinationConnectionString (ConvertTo-SecureString $script:Azurite.ConnectionString -AsPlainText -Force) -WhatIf:$false -Confirm:$false -ErrorAction Stop
        $up.Copied | Should -Be $down.Copied
        (Test-BackupRepository -Repository "$($script:Azurite.BlobEndpoint)/copy" -ReadData -StorageCredential $script:Azurite.Credential -Passphrase $script:Pass).Passed | Should -BeTrue
    }

    It 'names a missing container and a wrong account key, writing nothing' {
        { Get-Backup -Repository "$($script:Azurite.BlobEndpoint)/no-such-container" @script:Az -ErrorAction Stop } |
            Should -Throw -ErrorId 'AzureContainerNotFound,PSBackup.Commands.GetBackupCommand'
        $wrong = [pscredential]::new('devstoreaccount1', (ConvertTo-SecureString ([Convert]::ToBase64String([byte[]]::new(64))) -AsPlainText -Force))
        { Get-Backup -Repository $script:Repo -StorageCredential $wrong -Passphrase $script:Pass -ErrorAction Stop } |
            Should -Throw -ErrorId 'AzureAccessDenied,PSBackup.Commands.GetBackupCommand'
    }

    It 'refuses S3-only options on an Azure location' {
        { Get-Backup -Repository $script:Repo @script:Az -Region 'eu-west-1' -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidRepository,PSBackup.Commands.GetBackupCommand'
    }
}
