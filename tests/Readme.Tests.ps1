#Requires -Version 7.4
# Pester 5: README.md's examples are run as written, so the front page cannot drift from what the
# program does. A code block preceded by the HTML comment <!-- readme-test --> is runnable:
#   ```bash        the set-up commands: `bash examples/demo.sh` is run (into this test's folder) and
#                  `bash scripts/test.sh` must be the command .ci/run runs (running it here would recurse);
#   ```powershell  run in this session with the module imported, from the folder holding examples/out:
#                  it must not throw or write an error;
#   ```console     every `$ psbackup ...` line is run by bash from the same folder (psbackup being the
#                  CLI just built); what follows it is its sample output, compared where it is
#                  deterministic: the exit code (`$ echo $?` and the number after it; 0 otherwise), a
#                  table's column headers and its number of rows (a `...` line among the rows: rows
#                  left out, so at least as many), a JSON document's shape (every property path),
#                  that a `psbackup:` error line appears on stderr, and any other line with numbers
#                  and paths masked. A powershell block's output that carries a verdict (a Passed
#                  property) must carry a good one: an example that fails is no example.
# The example database has a fixed seed, so row counts and shapes are the program's, not copies.

BeforeDiscovery {
    $readme = Join-Path $PSScriptRoot '..' 'README.md'
    $lines = Get-Content -LiteralPath $readme
    $script:Blocks = [System.Collections.Generic.List[hashtable]]::new()
    for ($i = 0; $i -lt $lines.Count; $i++) {
        if ($lines[$i].Trim() -ne '<!-- readme-test -->') { continue }
        $fence = $lines[$i + 1]
        if ($fence -notmatch '^```(\w+)\s*$') { throw "README.md line $($i + 2): <!-- readme-test --> must be followed by a fenced code block" }
        $kind = $Matches[1]
        $body = [System.Collections.Generic.List[string]]::new()
        $j = $i + 2
        while ($j -lt $lines.Count -and $lines[$j] -notmatch '^```\s*$') { $body.Add($lines[$j]); $j++ }
        $script:Blocks.Add(@{ Kind = $kind; Line = $i + 3; Body = @($body); Name = "$kind block at README.md line $($i + 3)" })
        $i = $j
    }
}

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot '..' 'out' 'PSBackup' 'PSBackup.psd1') -Force -ErrorAction Stop
    $script:Root = (Resolve-Path (Join-Path $PSScriptRoot '..')).Path
    $script:Work = Join-Path $TestDrive 'readme'
    $null = New-Item -ItemType Directory -Path $script:Work
    $configuration = if ($env:CONFIGURATION) { $env:CONFIGURATION } else { 'Release' }
    $script:Cli = Join-Path $script:Root 'src' 'PSBackup.Cli' 'bin' $configuration 'net10.0' 'psbackup.dll'

    function ConvertTo-Mask {
        <# A line with paths, hex ids, numbers and runs of spaces made comparable. #>
        param([string] $Text)
        $t = $Text -replace "[^\s'`"]*/[^\s'`"]*", '<path>'
        $t = $t -replace '[0-9a-f]{12,}', '<hex>'
        $t = $t -replace '\d+(\.\d+)?', '#'
        ($t -replace '\s+', ' ').Trim()
    }

    function Get-JsonShape {
        <# Every property path of a JSON document (array elements as [], objects by property name). #>
        param($Node, [string] $Prefix = '$')
        if ($Node -is [System.Collections.IDictionary]) {
            $Prefix
            foreach ($key in $Node.Keys) { Get-JsonShape -Node $Node[$key] -Prefix "$Prefix.$key" }
        } elseif ($Node -is [System.Collections.IList]) {
            $Prefix + '[]'
            foreach ($item in $Node) { Get-JsonShape -Node $item -Prefix "$Prefix[]" }
        }
    }

    function Invoke-ReadmeCommand {
        <# Runs one README command line with bash from the folder holding examples/out. #>
        param([string] $Command)
        $psi = [System.Diagnostics.ProcessStartInfo]::new('bash')
        $psi.ArgumentList.Add('-c')
        $psi.ArgumentList.Add("set -o pipefail; psbackup() { dotnet '$($script:Cli)' `"`$@`"; }; $Command")
        $psi.WorkingDirectory = $script:Work
        $psi.RedirectStandardOutput = $true
        $psi.RedirectStandardError = $true
        $p = [System.Diagnostics.Process]::Start($psi)
        $stderr = $p.StandardError.ReadToEndAsync()
        $stdout = $p.StandardOutput.ReadToEnd()
        $p.WaitForExit()
        [pscustomobject]@{
            ExitCode = $p.ExitCode
            Stdout   = @($stdout -split '\r?\n' | Select-Object -SkipLast 1)
            Stderr   = @($stderr.Result -split '\r?\n' | Select-Object -SkipLast 1)
        }
    }

    function Test-Row {
        <# A table row has a space at every column gap of the dash line under the headers and reaches its last column. #>
        param([string] $Line, [int[]] $Gaps)
        if ($Line.Trim() -eq '' -or ($Gaps.Count -gt 0 -and $Line.Length -le $Gaps[-1])) { return $false }
        foreach ($g in $Gaps) { if ($Line[$g] -ne ' ') { return $false } }
        $true
    }

    function Assert-SampleOutput {
        <# Compares a command's sample lines from README with what the command really printed. #>
        param([string] $Command, [string[]] $Sample, $Run)
        $what = "README: `$ $Command"
        $all = @($Run.Stdout) + @($Run.Stderr)
        $text = @($Sample | Where-Object { $_.Trim() -ne '' })
        if (-not $text) { return }
        if ($text[0] -match '^\s*[\[{]') {
            $expected = ($Sample -join "`n") | ConvertFrom-Json -AsHashtable
            $actual = ($Run.Stdout -join "`n") | ConvertFrom-Json -AsHashtable
            $expectedShape = @(Get-JsonShape $expected | Sort-Object -Unique)
            $actualShape = @(Get-JsonShape $actual | Sort-Object -Unique)
            ($actualShape -join ', ') | Should -Be ($expectedShape -join ', ') -Because "$what prints JSON of the shape README shows"
            return
        }
        for ($k = 0; $k -lt $text.Count; $k++) {
            $line = $text[$k]
            if ($k + 1 -lt $text.Count -and $text[$k + 1] -match '^-+( +-+)*$') {
                # A table: its headers, then its rows (lines with a space wherever the dashes have one).
                $headers = -split $line
                $gaps = @(0..($text[$k + 1].Length - 1) | Where-Object { $text[$k + 1][$_] -eq ' ' })
                $rows = 0
                $elided = $false
                for ($m = $k + 2; $m -lt $text.Count -and ($text[$m] -eq '...' -or (Test-Row $text[$m] $gaps)); $m++) {
                    if ($text[$m] -eq '...') { $elided = $true } else { $rows++ }
                }
                $at = [array]::FindIndex([string[]] $Run.Stdout, [Predicate[string]] { param($l) ((-split $l) -join ' ') -eq ($headers -join ' ') })
                $at | Should -BeGreaterOrEqual 0 -Because "$what prints a table with the columns $($headers -join ', ') (it printed:`n$($Run.Stdout -join "`n"))"
                $actualGaps = @(0..($Run.Stdout[$at + 1].Length - 1) | Where-Object { $Run.Stdout[$at + 1][$_] -eq ' ' })
                $actualRows = 0
                for ($n = $at + 2; $n -lt $Run.Stdout.Count -and (Test-Row $Run.Stdout[$n] $actualGaps); $n++) { $actualRows++ }
                if ($elided) {
                    $actualRows | Should -BeGreaterThan $rows -Because "$what prints more than the $rows row(s) shown around '...' under the columns $($headers -join ', ') (it printed:`n$($Run.Stdout -join "`n"))"
                } else {
                    $actualRows | Should -Be $rows -Because "$what prints $rows row(s) under the columns $($headers -join ', ') (it printed:`n$($Run.Stdout -join "`n"))"
                }
                $k = $m - 1
                continue
            }
            if ($line -eq '...') { continue }
            if ($line -match '^psbackup: ') {
                ($Run.Stderr | Where-Object { $_ -match '^psbackup: ' }) | Should -Not -BeNullOrEmpty -Because "$what reports its error on stderr"
                continue
            }
            $masked = ConvertTo-Mask $line
            ($all | ForEach-Object { ConvertTo-Mask $_ }) | Should -Contain $masked -Because "$what prints the line '$line' (it printed:`n$($all -join "`n"))"
        }
    }
}

Describe 'README.md examples' {
    It 'marks runnable blocks for every job (set-up, backup, WAL, snapshot, PITR, drill, health)' -TestCases @(@{ Count = $script:Blocks.Count; All = ($script:Blocks | ForEach-Object { $_.Body }) -join "`n" }) {
        $Count | Should -BeGreaterOrEqual 10
        foreach ($needle in 'bash examples/demo.sh', 'bash scripts/test.sh', 'New-ObjectBackup', 'psbackup object backup',
            'Invoke-WalShip', 'psbackup wal ship', 'New-StoreSnapshot', 'psbackup snapshot create',
            'Restore-PointInTime', 'psbackup pitr', 'Test-Restore', 'psbackup test-restore',
            'Get-BackupHealth', 'psbackup health') {
            $all | Should -Match ([regex]::Escape($needle)) -Because "README shows $needle in a runnable block"
        }
    }

    It 'runs the <Name>' -ForEach $script:Blocks {
        switch ($Kind) {
            'bash' {
                foreach ($line in $Body) {
                    $command = ($line -replace '#.*$', '').Trim()
                    if (-not $command) { continue }
                    if ($command -eq 'bash scripts/test.sh') {
                        # .ci/run runs README's test command; running it here would run this test again.
                        (Get-Content -LiteralPath (Join-Path $script:Root '.ci' 'run')) | Should -Contain $command
                        continue
                    }
                    $command | Should -Be 'bash examples/demo.sh' -Because 'README set-up blocks hold the two set-up commands'
                    $log = & bash (Join-Path $script:Root 'examples' 'demo.sh') (Join-Path $script:Work 'examples' 'out') 2>&1
                    $LASTEXITCODE | Should -Be 0 -Because "bash examples/demo.sh must succeed: $($log -join "`n")"
                }
            }
            'powershell' {
                Push-Location -LiteralPath $script:Work
                try {
                    $Error.Clear()
                    $output = @(& ([scriptblock]::Create($Body -join "`n")) -ErrorAction Stop)
                    $Error.Count | Should -Be 0 -Because "the README block at line $Line writes no error: $($Error -join '; ')"
                    foreach ($o in $output) {
                        if ($o.PSObject.Properties['Passed']) {
                            $o.Passed | Should -BeTrue -Because "the README block at line $Line shows a working example: $($o | Out-String)"
                        }
                    }
                } finally {
                    Pop-Location
                }
            }
            'console' {
                $commands = [System.Collections.Generic.List[hashtable]]::new()
                foreach ($line in $Body) {
                    if ($line -match '^\$ echo \$\?\s*$') { $commands[-1].ExpectExit = $true; continue }
                    if ($line -match '^\$ (.+)$') { $commands.Add(@{ Command = $Matches[1]; Sample = [System.Collections.Generic.List[string]]::new(); ExpectExit = $false }); continue }
                    $commands.Count | Should -BeGreaterThan 0 -Because "a console block starts with a `$ command (line $Line)"
                    $commands[-1].Sample.Add($line)
                }
                foreach ($c in $commands) {
                    $sample = @($c.Sample)
                    $exit = 0
                    if ($c.ExpectExit) {
                        $exit = [int] $sample[-1]
                        $sample = @($sample | Select-Object -SkipLast 1)
                    }
                    $run = Invoke-ReadmeCommand $c.Command
                    $run.ExitCode | Should -Be $exit -Because "README: `$ $($c.Command) exits $exit (stderr: $($run.Stderr -join ' '))"
                    Assert-SampleOutput -Command $c.Command -Sample $sample -Run $run
                }
            }
            default { throw "README.md line $Line`: a runnable block must be bash, powershell or console, not '$Kind'" }
        }
    }
}
