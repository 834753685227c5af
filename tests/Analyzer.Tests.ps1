#Requires -Version 7.4
# Pester 5: the PSScriptAnalyzer rules that matter for this module, checked directly (the analyzer
# is not on the package mirror): approved verbs and singular nouns (PSUseApprovedVerbs,
# PSUseSingularNouns), ShouldProcess where state changes (PSUseShouldProcessForStateChangingFunctions,
# with ConfirmImpact High for restores and removals), no aliases exported (PSAvoidUsingCmdletAliases
# for a module's surface), no plain-text secrets (PSAvoidUsingPlainTextForPassword,
# PSAvoidUsingConvertToSecureStringWithPlainText, PSAvoidUsingUsernameAndPasswordParams) outside tests.

BeforeDiscovery {
    $root = Join-Path $PSScriptRoot '..'
    Import-Module (Join-Path $root 'out' 'PSBackup' 'PSBackup.psd1') -Force -ErrorAction Stop
    $script:Commands = @(Get-Command -Module PSBackup | ForEach-Object { @{ Name = $_.Name } })
    # Every PowerShell file that is not a test: the module's own, build and example scripts.
    $script:Scripts = @(Get-ChildItem -Path $root -Recurse -File -Include '*.ps1', '*.psm1', '*.psd1' |
            Where-Object { $_.FullName -notmatch '[\\/](tests|out|node_modules|bin|obj|\.tools)[\\/]' } |
            ForEach-Object { @{ Path = $_.FullName; Name = [System.IO.Path]::GetRelativePath($root, $_.FullName) } })
}

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot '..' 'out' 'PSBackup' 'PSBackup.psd1') -Force -ErrorAction Stop
    $script:Approved = @(Get-Verb).Verb
    # Verbs whose cmdlets change state and so must support -WhatIf/-Confirm.
    $script:Changing = 'New', 'Set', 'Remove', 'Clear', 'Restore', 'Initialize', 'Invoke', 'Sync', 'Export', 'Add', 'Update',
        'Reset', 'Rename', 'Move', 'Copy', 'Start', 'Stop', 'Install', 'Uninstall', 'Register', 'Unregister', 'Write', 'Repair'
    $script:SecretName = '(?i)(password|passphrase|secret|credential|token|apikey)'
}

AfterAll {
    Remove-Module PSBackup -Force -ErrorAction SilentlyContinue
}

Describe 'PSScriptAnalyzer rules for <Name>' -ForEach $script:Commands {
    BeforeAll {
        $script:Command = Get-Command -Name $Name -Module PSBackup
        $script:Attribute = $script:Command.ImplementingType.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $false)[0]
    }

    It 'uses an approved verb and a singular noun' {
        $script:Command.Verb | Should -BeIn $script:Approved
        $script:Command.Noun | Should -Not -Match '[^s]s$' -Because 'nouns are singular (PSUseSingularNouns)'
    }

    It 'supports ShouldProcess when its verb changes state' {
        if ($script:Command.Verb -in $script:Changing -or $Name -eq 'Test-Restore') {
            $script:Attribute.SupportsShouldProcess | Should -BeTrue
            $script:Command.Parameters.Keys | Should -Contain 'WhatIf'
        }
        if ($script:Command.Verb -in 'Remove', 'Restore', 'Clear') {
            $script:Attribute.ConfirmImpact | Should -Be ([System.Management.Automation.ConfirmImpact]::High)
        }
        if ($script:Command.Verb -in 'Get', 'Find') {
            $script:Attribute.SupportsShouldProcess | Should -BeFalse -Because 'reading changes nothing'
        }
    }

    It 'takes no secret as plain text' {
        foreach ($parameter in $script:Command.Parameters.Values | Where-Object Name -Match $script:SecretName) {
            $parameter.ParameterType | Should -BeIn ([securestring], [pscredential]) -Because "-$($parameter.Name) is a secret (PSAvoidUsingPlainTextForPassword)"
        }
        $script:Command.Parameters.Keys | Should -Not -Contain 'Username' -Because 'credentials come as a PSCredential (PSAvoidUsingUsernameAndPasswordParams)'
    }

    It 'declares no alias' {
        @($script:Command.ImplementingType.GetCustomAttributes([System.Management.Automation.AliasAttribute], $false)).Count | Should -Be 0
    }
}

Describe 'The module surface' {
    It 'exports no alias, function or variable' {
        $module = Get-Module PSBackup
        $module.ExportedAliases.Count | Should -Be 0
        $module.ExportedFunctions.Count | Should -Be 0
        $module.ExportedVariables.Count | Should -Be 0
        $manifest = Import-PowerShellDataFile -LiteralPath (Join-Path $PSScriptRoot '..' 'out' 'PSBackup' 'PSBackup.psd1')
        @($manifest.AliasesToExport).Count | Should -Be 0
        $manifest.CmdletsToExport | Should -Not -Contain '*'
    }
}

Describe 'Scripts outside the tests: <Name>' -ForEach $script:Scripts {
    It 'keeps no secret in plain text' {
        $tokens = $null
        $errors = $null
        $ast = [System.Management.Automation.Language.Parser]::ParseFile($Path, [ref] $tokens, [ref] $errors)
        $errors | Should -BeNullOrEmpty
        # PSAvoidUsingConvertToSecureStringWithPlainText
        $plain = $ast.FindAll({ param($n) $n -is [System.Management.Automation.Language.CommandAst] -and
                $n.GetCommandName() -eq 'ConvertTo-SecureString' -and ($n.CommandElements | Where-Object { "$_" -like '-AsPlainText*' }) }, $true)
        @($plain).Count | Should -Be 0
        # PSAvoidUsingPlainTextForPassword: script parameters named like secrets are [securestring]/[pscredential].
        $parameters = $ast.FindAll({ param($n) $n -is [System.Management.Automation.Language.ParameterAst] }, $true) |
            Where-Object { $_.Name.VariablePath.UserPath -match $script:SecretName }
        foreach ($p in $parameters) {
            $p.StaticType | Should -BeIn ([securestring], [pscredential]) -Because "$($p.Name) in $Name is a secret"
        }
    }
}
