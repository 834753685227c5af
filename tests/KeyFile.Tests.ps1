#Requires -Version 7.4
# Pester 5: New-BackupKeyFile and -KeyFile's two forms (a path, or the key as a SecureString from
# a secret store such as an Azure Automation credential), and the warning for a readable key file.

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot '..' 'out' 'PSBackup' 'PSBackup.psd1') -Force -ErrorAction Stop
    $env:PSBACKUP_AUDIT_LOG = Join-Path $TestDrive 'audit.jsonl'
}

AfterAll {
    Remove-Item Env:PSBACKUP_AUDIT_LOG -ErrorAction SilentlyContinue
    Remove-Module PSBackup -Force -ErrorAction SilentlyContinue
}

Describe 'New-BackupKeyFile' {
    It 'writes an owner-only key file and never replaces one without -Force' {
        $path = Join-Path $TestDrive 'repo.key'
        $info = New-BackupKeyFile -Path $path
        $info | Should -BeOfType ([PSBackup.Engine.Repository.KeyFileInfo])
        (Get-Item -LiteralPath $path).Length | Should -Be 88
        if (-not $IsWindows) {
            (Get-Item -LiteralPath $path).UnixFileMode | Should -Be ([IO.UnixFileMode]'UserRead, UserWrite')
        }
        $before = Get-FileHash -LiteralPath $path
        { New-BackupKeyFile -Path $path -ErrorAction Stop } | Should -Throw -ErrorId 'KeyFileExists,PSBackup.Commands.NewBackupKeyFileCommand'
        New-BackupKeyFile -Path $path -Force -WhatIf | Should -BeNullOrEmpty
        (Get-FileHash -LiteralPath $path).Hash | Should -Be $before.Hash
    }

    It 'opens a repository with the key as a SecureString (or a PSCredential) as well as with the file' {
        $path = Join-Path $TestDrive 'k2.key'
        $null = New-BackupKeyFile -Path $path
        $repo = Join-Path $TestDrive 'repo'
        (Initialize-BackupRepository -Repository $repo -KeyFile $path).KeyKind | Should -Be 'key-file'
        $secure = ConvertTo-SecureString (Get-Content -LiteralPath $path -Raw) -AsPlainText -Force
        (Test-BackupRepository -Repository $repo -KeyFile $secure).Passed | Should -BeTrue
        $credential = [pscredential]::new('psbackup-key', $secure)
        (Test-BackupRepository -Repository $repo -KeyFile $credential).Passed | Should -BeTrue
        $wrong = ConvertTo-SecureString ('x' * 88) -AsPlainText -Force
        { Test-BackupRepository -Repository $repo -KeyFile $wrong -ErrorAction Stop } |
            Should -Throw -ErrorId 'WrongRepositoryKey,PSBackup.Commands.TestBackupRepositoryCommand'
    }

    It 'warns when others can read the key file' -Skip:$IsWindows {
        $path = Join-Path $TestDrive 'k3.key'
        $null = New-BackupKeyFile -Path $path
        $repo = Join-Path $TestDrive 'repo3'
        $null = Initialize-BackupRepository -Repository $repo -KeyFile $path -WarningVariable quiet
        $quiet | Should -BeNullOrEmpty
        (Get-Item -LiteralPath $path).UnixFileMode = 'UserRead, UserWrite, GroupRead, OtherRead'
        $null = Test-BackupRepository -Repository $repo -KeyFile $path -WarningVariable loose -WarningAction SilentlyContinue
        "$loose" | Should -Match 'chmod 600'
    }
}
