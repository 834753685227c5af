#Requires -Version 7.4
# Pester 5: the audit log under concurrent writers in several processes: every line arrives, whole,
# once. Each writer is its own pwsh with the assembled module, appending through the engine's
# AuditLog (what every cmdlet's recorder calls) and through real cmdlet runs.

BeforeAll {
    $script:Manifest = Join-Path $PSScriptRoot '..' 'out' 'PSBackup' 'PSBackup.psd1'
}

Describe 'Audit log with concurrent processes' {
    It 'keeps every line of 4 processes x 2000 appends, none torn or interleaved' {
        $log = Join-Path $TestDrive 'audit.jsonl'
        $empty = Join-Path $TestDrive 'empty-root'
        $null = New-Item -ItemType Directory -Path $empty
        $writer = Join-Path $TestDrive 'writer.ps1'
        Set-Content -LiteralPath $writer -Value @'
param($Manifest, $Log, $Writer, $Count, $Root)
$ErrorActionPreference = 'Stop'
$env:PSBACKUP_AUDIT_LOG = $Log
Import-Module $Manifest
$context = [Runtime.Loader.AssemblyLoadContext]::GetLoadContext((Get-Command Clear-StaleArtifact).ImplementingType.Assembly)
$engine = $context.LoadFromAssemblyName([Reflection.AssemblyName]::new('PSBackup.Engine'))
$auditLog = $engine.GetType('PSBackup.Engine.Events.AuditLog', $true)
$entryType = $engine.GetType('PSBackup.Engine.Events.AuditEntry', $true)
# A long target makes each line several KiB, so a torn or interleaved write could not hide.
$padding = 'x' * 3000
for ($i = 0; $i -lt $Count; $i++) {
    $entry = [Activator]::CreateInstance($entryType)
    $entryType.GetProperty('Time').SetValue($entry, [DateTimeOffset]::UtcNow)
    $entryType.GetProperty('Operation').SetValue($entry, 'stress')
    $entryType.GetProperty('Target').SetValue($entry, "$Writer/$i/$padding")
    $entryType.GetProperty('Outcome').SetValue($entry, 'success')
    $entryType.GetProperty('Bytes').SetValue($entry, [long] $i)
    $auditLog.GetMethod('Append').Invoke($null, @($Log, $entry))
}
# And a few real operations, recorded by the engine's recorder like any cmdlet run.
1..5 | ForEach-Object { $null = Clear-StaleArtifact -Root $Root -Confirm:$false }
'@
        $count = 2000
        $processes = 1..4 | ForEach-Object {
            $arguments = @((Join-Path $PSHOME 'pwsh.dll'), '-NoProfile', '-NonInteractive', '-File', $writer, $script:Manifest, $log, "w$_", $count, $empty) |
                ForEach-Object { '"{0}"' -f $_ }
            Start-Process -FilePath ([Environment]::ProcessPath) -ArgumentList ($arguments -join ' ') -PassThru `
                -RedirectStandardOutput (Join-Path $TestDrive "w$_.out") -RedirectStandardError (Join-Path $TestDrive "w$_.err")
        }
        foreach ($p in $processes) {
            $p.WaitForExit(600000) | Should -BeTrue -Because 'a writer should finish within 10 minutes'
            $p.ExitCode | Should -Be 0 -Because (Get-Content -Raw -LiteralPath (Join-Path $TestDrive "w$($processes.IndexOf($p) + 1).err"))
        }

        $lines = [IO.File]::ReadAllLines($log)
        $lines.Count | Should -Be (4 * ($count + 5))
        $stress = [Collections.Generic.HashSet[string]]::new()
        $operations = 0
        foreach ($line in $lines) {
            $record = $line | ConvertFrom-Json -ErrorAction Stop   # a torn or interleaved line does not parse
            if ($record.operation -eq 'stress') {
                $stress.Add(($record.target -split '/')[0..1] -join '/') | Should -BeTrue -Because "each append arrives once ($($record.target.Substring(0, 12)))"
                $record.target.Length | Should -Be ("w1/$($record.bytes)/".Length + 3000)
            }
            else {
                $record.operation | Should -Be 'Clear-StaleArtifact'
                $operations++
            }
        }
        $stress.Count | Should -Be (4 * $count)
        $operations | Should -Be 20
    }
}
