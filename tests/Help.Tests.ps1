#Requires -Version 7.4
# Pester 5: the module's help as Get-Help shows it (en-US/PSBackup.dll-Help.xml, generated at build
# time from the cmdlets' doc comments by tools/PSBackup.HelpGen, and the about_ topics): every cmdlet
# and parameter is described, and every example of every cmdlet runs, against the example data in
# a fresh copy of a prepared folder ($TestDrive), as a user would paste it.

BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot '..' 'out' 'PSBackup' 'PSBackup.psd1') -Force -ErrorAction Stop
    $script:Commands = @(Get-Command -Module PSBackup | Sort-Object Name | ForEach-Object { @{ Name = $_.Name } })
    $script:Examples = @(foreach ($command in Get-Command -Module PSBackup | Sort-Object Name) {
            $i = 0
            foreach ($example in @((Get-Help -Name $command.Name -Full).examples.example)) {
                $i++
                @{ Command = $command.Name; Index = $i; Title = ($example.title -replace '^-+\s*Example \d+:\s*|\s*-+$', ''); Code = ($example.code -join "`n") }
            }
        })
}

BeforeAll {
    $env:PSBACKUP_AUDIT_LOG = Join-Path $TestDrive 'audit.jsonl'
    Remove-Item Env:PSBACKUP_PASSPHRASE, Env:PSBACKUP_KEY_FILE, Env:PSBACKUP_HISTORY_PATH -ErrorAction SilentlyContinue
    Import-Module (Join-Path $PSScriptRoot '..' 'out' 'PSBackup' 'PSBackup.psd1') -Force -ErrorAction Stop
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
}

AfterAll {
    Remove-Item Env:PSBACKUP_AUDIT_LOG -ErrorAction SilentlyContinue
    Remove-Module PSBackup -Force -ErrorAction SilentlyContinue
}

Describe 'Help of <Name>' -ForEach $script:Commands {
    BeforeAll {
        $script:Help = Get-Help -Name $Name -Full
        $script:Syntax = (Get-Command -Name $Name -Module PSBackup -Syntax).Trim()
    }

    It 'has a synopsis and a description (not just its syntax)' {
        $script:Help.Synopsis | Should -Not -BeNullOrEmpty
        $script:Help.Synopsis.Trim() | Should -Not -Be $script:Syntax
        $script:Help.Synopsis | Should -Not -Match "^$([regex]::Escape($Name))\s"
        ($script:Help.description.Text -join ' ') | Should -Not -BeNullOrEmpty
    }

    It 'describes every parameter' {
        $common = [System.Management.Automation.Cmdlet]::CommonParameters + [System.Management.Automation.Cmdlet]::OptionalCommonParameters
        $names = (Get-Command -Name $Name -Module PSBackup).Parameters.Keys | Where-Object { $_ -notin $common -or $_ -in 'WhatIf', 'Confirm' }
        foreach ($parameter in $names) {
            $help = Get-Help -Name $Name -Parameter $parameter
            ($help.description.Text -join ' ') | Should -Not -BeNullOrEmpty -Because "-$parameter of $Name needs a description"
        }
    }

    It 'names its inputs and outputs' {
        @($script:Help.inputTypes.inputType).Count | Should -BeGreaterThan 0
        @($script:Help.returnValues.returnValue).Count | Should -BeGreaterThan 0
        @($script:Help.returnValues.returnValue.type.name) | Should -Contain ((Get-Command -Name $Name -Module PSBackup).OutputType[0].Type.FullName)
    }

    It 'has at least two examples, each with a title, code and an explanation' {
        $examples = @($script:Help.examples.example)
        $examples.Count | Should -BeGreaterOrEqual 2
        foreach ($example in $examples) {
            $example.title | Should -Match '\w'
            $example.code | Should -Match $Name -Because 'an example shows the cmdlet'
            ($example.remarks.Text -join ' ') | Should -Not -BeNullOrEmpty
        }
    }
}

Describe 'About topics' {
    It 'ships <_>' -ForEach 'about_PSBackup', 'about_PSBackup_Repository' {
        $topic = Get-Help -Name $_ | Out-String
        $topic | Should -Match "TOPIC\s+$_"
        $topic | Should -Match 'LONG DESCRIPTION'
    }
}

Describe 'Help examples' {
    BeforeAll {
        # The folder every example starts from: the example database with a local object backup, a
        # local snapshot and shipped WAL, a history folder, and a repository holding object backups,
        # snapshots and WAL of both namespaces.
        $script:Template = Join-Path $TestDrive 'template'
        New-ExampleDatabase -Path $script:Template -Seed 53
        Push-Location -LiteralPath $script:Template
        try {
            $null = Initialize-BackupRepository -Repository ./repo -Unencrypted
            $null = New-ObjectBackup -DbRoot ./shard-db -Dir '*' -Object '*' -Repository ./repo
            $null = New-ObjectBackup -DbRoot ./shard-db -Dir acme -Object orders -Repository ./repo
            $null = New-ObjectBackup -DbRoot ./shard-db -Dir acme -Object orders
            $null = New-ObjectBackup -DbRoot ./shard-db -Dir acme -Object customers -HistoryPath ./history
            $null = New-StoreSnapshot -DataDir ./unison -Namespace users -Path 'snapshots/users-1.snapshot'
            $null = Invoke-WalShip -DataDir ./unison -Namespace users -BackupDir wal
            foreach ($ns in 'users', 'events') {
                $null = New-StoreSnapshot -DataDir ./unison -Namespace $ns -Repository ./repo
                $null = Invoke-WalShip -DataDir ./unison -Namespace $ns -Repository ./repo
            }
        }
        finally {
            Pop-Location
        }
    }

    It 'runs example <Index> of <Command>: <Title>' -ForEach $script:Examples {
        $work = Join-Path $TestDrive "run-$Command-$Index"
        Copy-Item -LiteralPath $script:Template -Destination $work -Recurse
        Push-Location -LiteralPath $work
        try {
            # As a user pastes it: any error fails the example; prompts are answered yes.
            $ErrorActionPreference = 'Stop'
            $ConfirmPreference = 'None'
            $null = & ([scriptblock]::Create($Code)) 3>$null 6>$null
        }
        finally {
            Pop-Location
            Remove-Item -LiteralPath $work -Recurse -Force -ErrorAction SilentlyContinue
        }
    }
}
