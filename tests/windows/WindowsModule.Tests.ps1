#Requires -Version 7.4
# Pester 5, run by scripts/wine-test.sh in PowerShell for Windows (pwsh.exe 7.6.10 under Wine), not
# by scripts/pester.ps1 (it lives below tests/ on purpose): the assembled module (its ALC loader,
# dependencies\, the MAML help) imported from C:\ and driven through Windows paths — drive letters,
# backslashes, a \\?\ path, forward slashes and mixed case. pwsh.exe cannot start Linux programs, so
# the leg prepares the inputs on the Linux side (PSBACKUP_WINTEST_ROOT):
#   example\            the generated example database (shard-db\Acme, spelled so on disk)
#   unison\users\       UnisonDB's v1-store-bolt fixture (unison.db + real .seg WAL)
# and judges the restored WAL with UnisonDB's own reader afterwards (pitr-500\users\wal).
# Under Wine PBKDF2 fails, so the repository is encrypted with a key file (docs/platforms.md).

BeforeAll {
    $script:Root = $env:PSBACKUP_WINTEST_ROOT
    $script:ModulePath = $env:PSBACKUP_WINTEST_MODULE
    if (-not $script:Root -or -not $script:ModulePath) {
        throw 'Run by scripts/wine-test.sh: PSBACKUP_WINTEST_ROOT and PSBACKUP_WINTEST_MODULE name the prepared C:\ folders.'
    }
    Import-Module $script:ModulePath -Force -ErrorAction Stop

    $script:Key = "$script:Root\keys\repo.key"
    $script:Repo = "$script:Root\Repo"
    $script:DbRoot = "$script:Root\example\shard-db"
    $script:UData = "$script:Root\unison"

    function Get-TreeHash {
        <# Relative path and SHA-256 of every file below $Path, sorted: equal lists mean equal bytes. #>
        param([Parameter(Mandatory)] [string] $Path)
        Get-ChildItem -LiteralPath $Path -Recurse -File -Force | Sort-Object FullName | ForEach-Object {
            '{0} {1}' -f [System.IO.Path]::GetRelativePath($Path, $_.FullName), (Get-FileHash -LiteralPath $_.FullName -Algorithm SHA256).Hash
        }
    }

    # Byte copies of what the restores must give back, taken before anything runs.
    $script:Orders = Get-TreeHash "$script:DbRoot\Acme\orders"
    $script:Customers = Get-TreeHash "$script:DbRoot\Acme\customers"
    $script:StoreHash = (Get-FileHash -LiteralPath "$script:UData\users\unison.db" -Algorithm SHA256).Hash
}

AfterAll {
    Remove-Module PSBackup -Force -ErrorAction SilentlyContinue
}

Describe 'PowerShell for Windows loads the module' {
    It 'is pwsh on Windows, and the engine runs in the module''s own load context from C:\' {
        $IsWindows | Should -BeTrue
        [Environment]::OSVersion.Platform | Should -Be 'Win32NT'
        $PSVersionTable.PSEdition | Should -Be 'Core'
        $engine = [PSBackup.Engine.ObjectStore.ObjectBackupResult].Assembly
        [Runtime.Loader.AssemblyLoadContext]::GetLoadContext($engine).Name | Should -Be 'PSBackup'
        $engine.Location | Should -BeLike "$(Split-Path -Parent $script:ModulePath)\dependencies\*"
        (Get-Command -Module PSBackup).Count | Should -BeGreaterOrEqual 16
    }

    It 'shows a cmdlet''s help from its MAML file' {
        $maml = @(Get-ChildItem -LiteralPath (Split-Path -Parent $script:ModulePath) -Recurse -Filter '*-help.xml' -File)
        if ($maml.Count -eq 0) {   # until the generated MAML help is on main
            Set-ItResult -Skipped -Because 'this build ships no MAML help file'
            return
        }
        $help = Get-Help New-ObjectBackup -Full
        $description = ($help.description | Out-String).Trim()
        $description | Should -Not -BeNullOrEmpty
        $description | Should -Match 'object'
        @($help.parameters.parameter.name) | Should -Contain 'Repository'
    }
}

Describe 'A key-file repository on Windows paths' {
    It 'New-BackupKeyFile writes an owner-only key file, and never replaces it without -Force' {
        $null = New-Item -ItemType Directory -Path "$script:Root\keys" -Force
        if (-not (Get-Command New-BackupKeyFile -ErrorAction SilentlyContinue)) {   # until New-BackupKeyFile is on main
            [IO.File]::WriteAllBytes($script:Key, [Security.Cryptography.RandomNumberGenerator]::GetBytes(64))
            Set-ItResult -Skipped -Because 'this build has no New-BackupKeyFile'
            return
        }
        $info = New-BackupKeyFile -Path $script:Key
        $script:Key | Should -Exist
        $info.Permissions | Should -Be 'owner only (ACL)'
        $before = Get-FileHash -LiteralPath $script:Key
        { New-BackupKeyFile -Path $script:Key -ErrorAction Stop } | Should -Throw -ErrorId 'KeyFileExists,PSBackup.Commands.NewBackupKeyFileCommand'
        (Get-FileHash -LiteralPath $script:Key).Hash | Should -Be $before.Hash
    }

    It 'Initialize-BackupRepository -KeyFile creates it at C:\...\Repo' {
        $null = Initialize-BackupRepository -Repository $script:Repo -KeyFile $script:Key
        Get-ChildItem -LiteralPath $script:Repo | Should -Not -BeNullOrEmpty
    }

    It 'New-ObjectBackup -Dir ACME backs up the folder spelled Acme into \\?\C:\...\Repo' {
        $result = New-ObjectBackup -DbRoot $script:DbRoot -Dir ACME -Object orders -Repository "\\?\$script:Repo" -KeyFile $script:Key
        $result | Should -Not -BeNullOrEmpty
        $result.Dir | Should -BeExactly 'Acme'
    }

    It 'New-ObjectBackup without -Repository writes a local backup beside the object (mixed-case path)' {
        $db = $script:DbRoot.ToUpperInvariant().Replace('\SHARD-DB', '\Shard-Db')
        $result = New-ObjectBackup -DbRoot $db -Dir acme -Object CUSTOMERS
        $result | Should -Not -BeNullOrEmpty
        @(Get-Backup -DbRoot $script:DbRoot -Dir Acme -Object customers).Count | Should -Be 1
    }

    It 'Invoke-WalShip ships every sealed .seg and the active one''s prefix of a real UnisonDB WAL into the repository (forward slashes)' {
        $segments = @(Get-WalSegment -DataDir $script:UData -Namespace users)
        $sealed = @($segments | Where-Object Sealed)
        $sealed.Count | Should -BeGreaterThan 1
        $shipped = @(Invoke-WalShip -DataDir $script:UData.Replace('\', '/') -Namespace users -Repository $script:Repo.Replace('\', '/') -KeyFile $script:Key)
        @($shipped | Where-Object { -not $_.Partial }).Count | Should -Be $sealed.Count
        @($shipped | Where-Object Partial).Count | Should -Be 1
        @($shipped | Where-Object AlreadyPresent).Count | Should -Be 0
        # Shipping again (backslashes, upper case) finds every sealed segment already archived and
        # adds no partial: the active segment did not grow.
        $again = @(Invoke-WalShip -DataDir $script:UData.ToUpperInvariant() -Namespace users -Repository $script:Repo -KeyFile $script:Key)
        @($again | Where-Object { -not $_.AlreadyPresent }).Count | Should -Be 0
    }

    It 'New-StoreSnapshot of the bbolt store into the repository records its checkpoint' {
        $snap = New-StoreSnapshot -DataDir $script:UData -Namespace users -Repository $script:Repo -KeyFile $script:Key
        $snap.Checkpoint.LogIndex | Should -Be 420
    }

    It 'Get-Backup through a mixed-case path pipes records with their times' {
        $start = [DateTimeOffset]::UtcNow.AddHours(-1)
        $all = @(Get-Backup -Repository $script:Repo.ToLowerInvariant().Replace('\repo', '\REPO') -KeyFile $script:Key)
        # A sealed segment's time is its header's seal time (the fixture's, hours old); every
        # other record was written by this run.
        $sealedTimes = @{}
        Get-WalSegment -DataDir $script:UData -Namespace users | Where-Object Sealed | ForEach-Object { $sealedTimes[$_.SegmentId] = $_.LastModifiedAt }
        $segs = @($all | Where-Object { "$($_.Kind)" -eq 'WalSegment' -and $sealedTimes.ContainsKey($_.SegmentId) -and $_.CompletedAt })
        $segs.Count | Should -Be $sealedTimes.Count
        foreach ($s in $segs) { $s.Time | Should -Be $sealedTimes[$s.SegmentId] }
        $recent = @($all | Where-Object { $_ -notin $segs } | Where-Object { $_.Time -gt $start } | Sort-Object Time)
        $recent.Count | Should -Be ($all.Count - $segs.Count)
        $recent.Count | Should -BeGreaterOrEqual 3
        $recent[0].Time | Should -BeOfType ([DateTimeOffset])
        $recent[-1].Time | Should -BeLessOrEqual ([DateTimeOffset]::UtcNow)
        $kinds = @($all | Group-Object { "$($_.Kind)" } | ForEach-Object Name)
        $kinds.Count | Should -BeGreaterOrEqual 3
        # Times survive formatting and JSON as on any host.
        ($all | Format-Table -AutoSize | Out-String) | Should -Match 'Acme|orders'
        $json = $all | Select-Object BackupId, Time | ConvertTo-Json | ConvertFrom-Json
        @($json).Count | Should -Be $all.Count
    }

    It 'Test-BackupRepository -ReadData -FailOnError reads every pack (managed zstd, no libzstd.dll)' {
        $fail = if ((Get-Command Test-BackupRepository).Parameters.ContainsKey('FailOnError')) { @{ FailOnError = $true } } else { @{} }   # until -FailOnError is on main
        $result = Test-BackupRepository -Repository $script:Repo -KeyFile $script:Key -ReadData @fail -ErrorAction Stop
        $result.Passed | Should -BeTrue
        $result.ReadData | Should -BeTrue
        $result.ErrorCount | Should -Be 0
        $result.Backups | Should -BeGreaterOrEqual 4
        $result.BytesRead | Should -BeGreaterThan 0
    }
}

Describe 'Restores on Windows paths, compared byte for byte with the source' {
    It 'Restore-ObjectBackup -Force puts the object back from the repository over a damaged copy' {
        Set-Content -LiteralPath "$script:DbRoot\Acme\orders\fields.conf" -Value 'damaged'
        $null = Restore-ObjectBackup -DbRoot $script:DbRoot -Dir acme -Object ORDERS -Repository $script:Repo -KeyFile $script:Key -Force -Confirm:$false
        Get-TreeHash "$script:DbRoot\Acme\orders" | Should -Be $script:Orders
    }

    It 'Restore-ObjectBackup -From latest -Force puts the local backup back' {
        Remove-Item -LiteralPath "$script:DbRoot\Acme\customers\fields.conf"
        $null = Restore-ObjectBackup -DbRoot $script:DbRoot -Dir ACME -Object customers -From latest -Force -Confirm:$false
        Get-TreeHash "$script:DbRoot\Acme\customers" | Should -Be $script:Customers
    }

    It 'Restore-PointInTime -TargetLogIndex 500 restores the store and the WAL up to 500 into C:\...\pitr-500' {
        # 500 lies in the active segment: only its shipped prefix (a partial) holds it.
        $into = "$script:Root\pitr-500"
        $result = Restore-PointInTime -Repository $script:Repo -KeyFile $script:Key -Namespace users -TargetLogIndex 500 -TargetDataDir $into -Confirm:$false
        $result.LastLogIndex | Should -Be 500
        (Get-FileHash -LiteralPath "$into\users\unison.db" -Algorithm SHA256).Hash | Should -Be $script:StoreHash
        # UnisonDB's own reader judges the WAL after this run (scripts/wine-test.sh).
        @(Get-ChildItem -LiteralPath "$into\users\wal" -Filter '*.seg').Count | Should -BeGreaterThan 0
    }

    It 'Restore-PointInTime to a time past the archive gives back every shipped segment byte for byte' {
        $into = "$script:Root\pitr-end"
        $result = Restore-PointInTime -Repository $script:Repo -KeyFile $script:Key -Namespace users -TargetTime ([DateTime]::new(2999, 1, 1, 0, 0, 0, [DateTimeKind]::Utc)) -TargetDataDir $into -Confirm:$false
        $result.LastLogIndex | Should -Be 600
        (Get-FileHash -LiteralPath "$into\users\unison.db" -Algorithm SHA256).Hash | Should -Be $script:StoreHash
        # Replay starts at the store's checkpoint segment (2): it and every segment after it come
        # back as the source holds them (the active one's shipped prefix, zero-filled to its size).
        $segments = @(Get-WalSegment -DataDir $script:UData -Namespace users | Where-Object SegmentId -GE 2)
        $segments.Count | Should -BeGreaterThan 1
        foreach ($segment in $segments) {
            $name = Split-Path -Leaf $segment.Path
            (Get-FileHash -LiteralPath "$into\users\wal\$name").Hash | Should -Be (Get-FileHash -LiteralPath $segment.Path).Hash -Because "$name was shipped"
        }
    }
}

Describe 'Names Windows cannot hold' {
    It 'New-ObjectBackup -Object <Name> is refused with <ErrorId> and writes nothing' -ForEach @(
        @{ Name = 'CON'; ErrorId = 'InvalidName' }
        @{ Name = 'a:b'; ErrorId = 'InvalidName' }
        @{ Name = 'lpt1.db'; ErrorId = 'InvalidName' }
        @{ Name = 'orders.'; ErrorId = 'InvalidName' }
    ) {
        $before = Get-TreeHash $script:Root
        { New-ObjectBackup -DbRoot $script:DbRoot -Dir Acme -Object $Name -Repository $script:Repo -KeyFile $script:Key -ErrorAction Stop } |
            Should -Throw -ErrorId "$ErrorId,PSBackup.Commands.NewObjectBackupCommand"
        Get-TreeHash $script:Root | Should -Be $before
    }
}
