#Requires -Version 7.4
# Pester 5: build.ps1 on a fresh clone reaches Pester. It runs against a copy of build.ps1 whose
# tools (dotnet, npm) are logging stand-ins first on PATH, in a folder with no node_modules
# and an empty NuGet cache: the order of what it runs, and what it restores, is what is checked.
# (The real build, xunit and Pester runs are what scripts/test.sh does; this is the orchestration.)

BeforeAll {
    function New-FakeClone([int] $XunitExit = 0) {
        $clone = Join-Path $TestDrive ("clone-{0}" -f [guid]::NewGuid().ToString('N'))
        $bin = Join-Path $clone 'fake-bin'
        $packages = Join-Path $clone 'nuget-packages'
        $log = Join-Path $clone 'calls.log'
        $null = New-Item -ItemType Directory -Path $bin, $packages, (Join-Path $clone 'out' 'PSBackup'), (Join-Path $clone 'scripts')
        Copy-Item (Join-Path $PSScriptRoot '..' 'build.ps1') $clone
        Set-Content (Join-Path $clone 'out' 'PSBackup' 'PSBackup.psd1') "@{ ModuleVersion = '0.0.1' }"
        foreach ($npm in 's3', 'azure', 'prom') { $null = New-Item -ItemType Directory -Path (Join-Path $clone 'tests' $npm) }
        # dotnet: logs each call; 'nuget locals' names the empty cache; 'restore' downloads every
        # PackageDownload of the project (a .nupkg.metadata, and Pester's module file).
        Set-Content (Join-Path $bin 'dotnet') -Value @"
#!/usr/bin/env bash
echo "dotnet `$*" >> '$log'
case "`$1" in
  nuget) echo 'global-packages: $packages/' ;;
  restore)
    cat "`$2" >> '$log'
    grep -o 'Include="[^"]*" Version="\[[^]]*\]"' "`$2" | while read -r spec; do
      name=`$(echo "`$spec" | sed -E 's/Include="([^"]*)".*/\1/' | tr 'A-Z' 'a-z')
      version=`$(echo "`$spec" | sed -E 's/.*Version="\[([^]]*)\]"/\1/')
      mkdir -p '$packages'/"`$name"/"`$version"/tools
      touch '$packages'/"`$name"/"`$version"/.nupkg.metadata '$packages'/"`$name"/"`$version"/tools/Pester.psd1
    done ;;
  test) exit $XunitExit ;;
esac
exit 0
"@
        Set-Content (Join-Path $bin 'npm') -Value "#!/usr/bin/env bash`necho `"npm `$*`" >> '$log'`nexit 0"
        & chmod +x (Join-Path $bin 'dotnet') (Join-Path $bin 'npm')
        [pscustomobject]@{ Root = $clone; Bin = $bin; Log = $log; Packages = $packages }
    }

    function Invoke-Build($Clone) {
        $saved = $env:PATH
        try {
            $env:PATH = $Clone.Bin + [IO.Path]::PathSeparator + $env:PATH
            # The real pwsh by its full path (its launcher would find the stand-in dotnet).
            $output = & ([Environment]::ProcessPath) (Join-Path $PSHOME 'pwsh.dll') -NoProfile -NonInteractive -File (Join-Path $Clone.Root 'build.ps1') 2>&1
            [pscustomobject]@{ ExitCode = $LASTEXITCODE; Output = ($output | Out-String); Calls = @(Get-Content $Clone.Log) }
        }
        finally {
            $env:PATH = $saved
        }
    }
}

Describe 'build.ps1 on a fresh clone' -Skip:$IsWindows {
    It 'installs the npm test servers before xunit, restores Pester and AWSSDK.Core 3.7.402, and runs Pester' {
        $clone = New-FakeClone
        $run = Invoke-Build $clone
        $run.ExitCode | Should -Be 0 -Because $run.Output
        # The Pester step is a pwsh running scripts/pester.ps1 (pwsh puts its own folder first on
        # PATH, so it is this pwsh, whose launcher calls the stand-in dotnet).
        $steps = @($run.Calls | ForEach-Object {
                if ($_ -match 'scripts[\\/]pester\.ps1') { 'pester' }
                elseif ($_ -match '^(dotnet (build|test|restore)|npm ci) ') { $Matches[1] }
            })
        $steps | Should -Be @('dotnet build', 'npm ci', 'npm ci', 'npm ci', 'dotnet test', 'dotnet restore', 'pester')
        ($run.Calls -join "`n") | Should -Match 'PackageDownload Include="Pester" Version="\[5\.9\.1\]"'
        ($run.Calls -join "`n") | Should -Match 'PackageDownload Include="AWSSDK\.Core" Version="\[3\.7\.402\]"'
        # The version ModuleIsolation.Tests.ps1 loads is the one restored.
        Get-Content (Join-Path $PSScriptRoot 'ModuleIsolation.Tests.ps1') -Raw | Should -Match "'awssdk\.core' '3\.7\.402'"
        $pester = @($run.Calls | Where-Object { $_ -match 'scripts[\\/]pester\.ps1' })
        $pester[0] | Should -Match ([regex]::Escape((Join-Path $clone.Packages 'pester' '5.9.1' 'tools' 'Pester.psd1')))
    }

    It 'still runs Pester when an xunit test fails, and fails the build at the end' {
        $clone = New-FakeClone -XunitExit 3
        $run = Invoke-Build $clone
        $run.ExitCode | Should -Be 3
        @($run.Calls | Where-Object { $_ -match 'scripts[\\/]pester\.ps1' }).Count | Should -Be 1
        $run.Output | Should -Match 'FAILED: dotnet test \(xunit\)'
    }

    It 'does not restore what the NuGet cache already holds' {
        $clone = New-FakeClone
        foreach ($p in @('pester/5.9.1', 'awssdk.core/3.7.402')) {
            $dir = Join-Path $clone.Packages $p
            $null = New-Item -ItemType Directory -Path (Join-Path $dir 'tools') -Force
            $null = New-Item -ItemType File -Path (Join-Path $dir '.nupkg.metadata'), (Join-Path $dir 'tools' 'Pester.psd1')
        }
        $run = Invoke-Build $clone
        $run.ExitCode | Should -Be 0 -Because $run.Output
        @($run.Calls | Where-Object { $_ -like 'dotnet restore*' }).Count | Should -Be 0
    }
}
