#Requires -Version 7.4
# Pester 5: New-ObjectBackup, Restore-ObjectBackup and Clear-StaleArtifact against the example
# object store (shard-db: tenants acme with customers and orders, globex with inventory).

BeforeAll {
    # Audit lines of these runs go to the test drive, not the user's audit log.
    $env:PSBACKUP_AUDIT_LOG = Join-Path $TestDrive 'audit.jsonl'
    Import-Module (Join-Path $PSScriptRoot '..' 'out' 'PSBackup' 'PSBackup.psd1') -Force -ErrorAction Stop
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')

    $script:Fixture = Join-Path $TestDrive 'example'
    New-ExampleDatabase -Path $script:Fixture -Seed 7
    $script:DbRoot = Join-Path $script:Fixture 'shard-db'

}

AfterAll {
    Remove-Item Env:PSBACKUP_AUDIT_LOG -ErrorAction SilentlyContinue
    Remove-Module PSBackup -Force -ErrorAction SilentlyContinue
}

Describe 'New-ObjectBackup' {
    It 'copies an object to a timestamped sibling with a manifest' {
        $result = New-ObjectBackup -DbRoot $script:DbRoot -Dir acme -Object customers

        $result | Should -BeOfType ([PSBackup.Engine.ObjectStore.ObjectBackupResult])
        $result.Dir | Should -Be 'acme'
        $result.Object | Should -Be 'customers'
        $result.BackupName | Should -Match '^customers\.backup-\d{8}T\d{6}$'
        $result.BackupPath | Should -Be (Join-Path $script:DbRoot 'acme' $result.BackupName)
        $result.BackupPath | Should -Exist
        $result.ManifestPath | Should -Exist
        $result.FileCount | Should -BeGreaterThan 0
        $result.Consistency | Should -Be ([PSBackup.Engine.ObjectStore.BackupConsistency]::Stable)
        # A drop-in replacement: same layout as the live object.
        Join-Path $result.BackupPath 'fields.conf' | Should -Exist
        Join-Path $result.BackupPath 'data' | Should -Exist
    }

    It 'resolves a relative -DbRoot against the current PowerShell location' {
        Push-Location -LiteralPath $script:Fixture
        try {
            $result = New-ObjectBackup -DbRoot 'shard-db' -Dir globex -Object inventory
        }
        finally {
            Pop-Location
        }
        $result.BackupPath | Should -Exist
        [System.IO.Path]::IsPathRooted($result.DbRoot) | Should -BeTrue
        $result.BackupPath.StartsWith($script:DbRoot) | Should -BeTrue
    }

    It 'runs the quiesce and resume script blocks around the copy (a fenced copy)' {
        $events = [System.Collections.Generic.List[string]]::new()
        $result = New-ObjectBackup -DbRoot $script:DbRoot -Dir acme -Object orders `
            -QuiesceScript ({ $events.Add('quiesce') }.GetNewClosure()) `
            -ResumeScript ({ $events.Add('resume') }.GetNewClosure())

        $result.Fenced | Should -BeTrue
        @($events) | Should -Be @('quiesce', 'resume')
    }

    It 'fails with QuiesceScriptFailed and leaves no backup when the quiesce script throws' {
        Start-Sleep -Seconds 1 # globex/inventory was backed up above; in the same second the name is taken (BackupExists)
        $before = @(Get-ChildItem -LiteralPath (Join-Path $script:DbRoot 'globex') -Directory -Filter 'inventory.backup-*').Count
        { New-ObjectBackup -DbRoot $script:DbRoot -Dir globex -Object inventory -QuiesceScript { throw 'writers will not pause' } -ErrorAction Stop } |
            Should -Throw -ErrorId 'QuiesceScriptFailed,PSBackup.Commands.NewObjectBackupCommand'
        @(Get-ChildItem -LiteralPath (Join-Path $script:DbRoot 'globex') -Directory -Filter 'inventory.backup-*').Count | Should -Be $before
    }

    It 'writes nothing under -WhatIf' {
        $before = Get-TreeState $script:DbRoot
        $result = New-ObjectBackup -DbRoot $script:DbRoot -Dir acme -Object customers -WhatIf
        $result | Should -BeNullOrEmpty
        Get-TreeState $script:DbRoot | Should -Be $before
    }

    It 'rejects the unsafe object name <Name>' -ForEach @(
        @{ Name = '../customers' }
        @{ Name = 'a/b' }
        @{ Name = '..' }
    ) {
        { New-ObjectBackup -DbRoot $script:DbRoot -Dir acme -Object $Name -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidName,PSBackup.Commands.NewObjectBackupCommand'
    }

    It 'reports a missing object as ObjectNotFound with the object as target' {
        $err = { New-ObjectBackup -DbRoot $script:DbRoot -Dir acme -Object ghost -ErrorAction Stop } | Should -Throw -PassThru
        $err.CategoryInfo.Category | Should -Be ([System.Management.Automation.ErrorCategory]::ObjectNotFound)
        $err.FullyQualifiedErrorId | Should -BeLike '*,PSBackup.Commands.NewObjectBackupCommand'
        $err.Exception.Message | Should -Match 'ghost'
    }

    It 'reports a per-item failure as a non-terminating error and carries on' {
        $items = @(
            [pscustomobject]@{ DbRoot = $script:DbRoot; Dir = 'acme'; Object = '../bad' }
            [pscustomobject]@{ DbRoot = $script:DbRoot; Dir = 'globex'; Object = 'inventory' }
        )
        Start-Sleep -Seconds 1 # a new timestamped name for globex/inventory
        $results = $items | New-ObjectBackup -ErrorVariable failures -ErrorAction SilentlyContinue
        @($results).Count | Should -Be 1
        $results.Object | Should -Be 'inventory'
        @($failures).Count | Should -Be 1
        $failures[0].FullyQualifiedErrorId | Should -Be 'InvalidName,PSBackup.Commands.NewObjectBackupCommand'
    }

    It 'backs up every object that -Dir * -Object * selects, one backup each, in one call' {
        $repo = Join-Path $TestDrive 'wildcard-repo'
        Initialize-BackupRepository -Repository $repo -Unencrypted | Out-Null

        $results = New-ObjectBackup -DbRoot $script:DbRoot -Dir '*' -Object '*' -Repository $repo

        @($results | ForEach-Object { "$($_.Dir)/$($_.Object)" }) | Should -Be @('acme/customers', 'acme/orders', 'globex/inventory')
        @(Get-Backup -Repository $repo -Kind object).Count | Should -Be 3
    }

    It 'reports a pattern that selects no object as ObjectNotMatched' {
        $err = { New-ObjectBackup -DbRoot $script:DbRoot -Dir '*' -Object 'zz*' -ErrorAction Stop } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -Be 'ObjectNotMatched,PSBackup.Commands.NewObjectBackupCommand'
        $err.CategoryInfo.Category | Should -Be ([System.Management.Automation.ErrorCategory]::ObjectNotFound)
    }
}

Describe 'Restore-ObjectBackup' {
    It 'restores what New-ObjectBackup returns, bound by property name' {
        Start-Sleep -Seconds 1
        $restored = New-ObjectBackup -DbRoot $script:DbRoot -Dir acme -Object orders |
            Restore-ObjectBackup -Force -Confirm:$false

        $restored | Should -BeOfType ([PSBackup.Engine.ObjectStore.ObjectRestoreResult])
        $restored.Dir | Should -Be 'acme'
        $restored.Object | Should -Be 'orders'
        $restored.BackupName | Should -Match '^orders\.backup-'
        $restored.RestoredPath | Should -Be (Join-Path $script:DbRoot 'acme' 'orders')
        Join-Path $restored.RestoredPath 'fields.conf' | Should -Exist
        # The replaced live object is kept aside, never deleted.
        $restored.ReplacedPath | Should -Not -BeNullOrEmpty
        $restored.ReplacedPath | Should -Exist
    }

    It 'refuses to replace a non-empty live object without -Force' {
        Start-Sleep -Seconds 1
        $backup = New-ObjectBackup -DbRoot $script:DbRoot -Dir acme -Object customers
        $before = Get-TreeState (Join-Path $script:DbRoot 'acme' 'customers')

        $err = { Restore-ObjectBackup -DbRoot $script:DbRoot -Dir acme -Object customers -From $backup.BackupName -Confirm:$false -ErrorAction Stop } |
            Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike '*,PSBackup.Commands.RestoreObjectBackupCommand'
        $err.CategoryInfo.Category | Should -Be ([System.Management.Automation.ErrorCategory]::ResourceExists)
        Get-TreeState (Join-Path $script:DbRoot 'acme' 'customers') | Should -Be $before
    }

    It 'changes nothing under -WhatIf' {
        Start-Sleep -Seconds 1
        $backup = New-ObjectBackup -DbRoot $script:DbRoot -Dir acme -Object customers
        $before = Get-TreeState (Join-Path $script:DbRoot 'acme')
        $result = $backup | Restore-ObjectBackup -Force -WhatIf
        $result | Should -BeNullOrEmpty
        Get-TreeState (Join-Path $script:DbRoot 'acme') | Should -Be $before
    }

    It 'accepts -BackupName as an alias of -From' {
        Start-Sleep -Seconds 1
        $backup = New-ObjectBackup -DbRoot $script:DbRoot -Dir globex -Object inventory
        $restored = Restore-ObjectBackup -DbRoot $script:DbRoot -Dir globex -Object inventory -BackupName $backup.BackupName -Force -Confirm:$false
        $restored.BackupName | Should -Be $backup.BackupName
    }

    It 'verifies the backup against its manifest and refuses a corrupt one' {
        Start-Sleep -Seconds 1
        $backup = New-ObjectBackup -DbRoot $script:DbRoot -Dir acme -Object orders
        $victim = Get-ChildItem -LiteralPath $backup.BackupPath -Recurse -File | Where-Object Length -GT 0 | Select-Object -First 1
        $bytes = [System.IO.File]::ReadAllBytes($victim.FullName)
        $bytes[0] = $bytes[0] -bxor 0xFF
        [System.IO.File]::WriteAllBytes($victim.FullName, $bytes)
        $before = Get-TreeState (Join-Path $script:DbRoot 'acme' 'orders')

        { $backup | Restore-ObjectBackup -Force -Confirm:$false -ErrorAction Stop } |
            Should -Throw -ErrorId 'BackupFileCorrupt,PSBackup.Commands.RestoreObjectBackupCommand'
        Get-TreeState (Join-Path $script:DbRoot 'acme' 'orders') | Should -Be $before
    }

    Context 'from a repository' {
        BeforeAll {
            $script:ObjRepo = Join-Path $TestDrive 'object-repo'
            Initialize-BackupRepository -Repository $script:ObjRepo -Unencrypted | Out-Null
        }

        It 'restores the newest backup of the object piped from Get-Backup, byte-exact, in the repository history' {
            $first = New-ObjectBackup -DbRoot $script:DbRoot -Dir globex -Object inventory -Repository $script:ObjRepo
            $expected = Get-TreeState (Join-Path $script:DbRoot 'globex' 'inventory')
            Set-Content -LiteralPath (Join-Path $script:DbRoot 'globex' 'inventory' 'fields.conf') -Value 'changed after the backup'

            $restored = Get-Backup -Repository $script:ObjRepo -Kind object -Dir globex -Object inventory |
                Select-Object -First 1 |
                Restore-ObjectBackup -DbRoot $script:DbRoot -Force -Confirm:$false

            $restored | Should -BeOfType ([PSBackup.Engine.ObjectStore.ObjectRestoreResult])
            $restored.BackupId | Should -Be $first.BackupId
            $restored.Repository | Should -Be $script:ObjRepo
            $restored.ReplacedPath | Should -Exist
            Get-TreeState (Join-Path $script:DbRoot 'globex' 'inventory') | Should -Be $expected
        }

        It 'restores what New-ObjectBackup -Repository returns, bound by property name' {
            Start-Sleep -Seconds 1
            $backup = New-ObjectBackup -DbRoot $script:DbRoot -Dir acme -Object orders -Repository $script:ObjRepo
            $restored = $backup | Restore-ObjectBackup -Force -Confirm:$false
            $restored.BackupId | Should -Be $backup.BackupId
            $restored.BackupName | Should -Be $backup.BackupName
        }

        It 'restores every object -Dir * -Object * selects, newest backup each, into an empty root' {
            $repo = Join-Path $TestDrive 'dr-repo'
            Initialize-BackupRepository -Repository $repo -Unencrypted | Out-Null
            New-ObjectBackup -DbRoot $script:DbRoot -Dir '*' -Object '*' -Repository $repo | Out-Null
            $expected = Get-TreeState (Join-Path $script:DbRoot 'acme' 'orders')
            $empty = Join-Path $TestDrive 'dr-root'
            New-Item -ItemType Directory -Path $empty | Out-Null

            $restored = Restore-ObjectBackup -DbRoot $empty -Dir '*' -Object '*' -Repository $repo -Confirm:$false

            @($restored | ForEach-Object { "$($_.Dir)/$($_.Object)" }) | Should -Be @('acme/customers', 'acme/orders', 'globex/inventory')
            Get-TreeState (Join-Path $empty 'acme' 'orders') | Should -Be $expected
        }

        It 'restores an object of many small files and one spanning packs byte-exact, and refuses a damaged pack before anything is swapped in' {
            $repo = Join-Path $TestDrive 'bulk-repo'
            Initialize-BackupRepository -Repository $repo -Unencrypted | Out-Null
            $root = Join-Path $TestDrive 'bulk-root'
            $object = Join-Path $root 'bulk' 'items'
            $rng = [System.Random]::new(17)
            foreach ($i in 0..199) {
                $folder = Join-Path $object 'files' ($i % 7)
                New-Item -ItemType Directory -Force -Path $folder | Out-Null
                $bytes = [byte[]]::new($rng.Next(0, 6000)); $rng.NextBytes($bytes)
                [System.IO.File]::WriteAllBytes((Join-Path $folder "f$i"), $bytes)
            }
            New-Item -ItemType Directory -Force -Path (Join-Path $object 'data') | Out-Null
            $big = [byte[]]::new(20MB + 11); $rng.NextBytes($big)
            [System.IO.File]::WriteAllBytes((Join-Path $object 'data' 'big.bin'), $big)
            $expected = Get-TreeState $object
            $null = New-ObjectBackup -DbRoot $root -Dir bulk -Object items -Repository $repo
            Set-Content -LiteralPath (Join-Path $object 'data' 'big.bin') -Value 'changed after the backup'

            $restored = Restore-ObjectBackup -DbRoot $root -Dir bulk -Object items -Repository $repo -Force -Confirm:$false
            $restored.FileCount | Should -Be 201
            Get-TreeState $object | Should -Be $expected

            # A flipped byte in the middle of the largest pack: refused, the live object untouched.
            $pack = Get-ChildItem -LiteralPath (Join-Path $repo 'packs') -Recurse -File | Sort-Object Length -Descending | Select-Object -First 1
            $stored = [System.IO.File]::ReadAllBytes($pack.FullName)
            $stored[[int]($stored.Length / 2)] = $stored[[int]($stored.Length / 2)] -bxor 0x20
            [System.IO.File]::WriteAllBytes($pack.FullName, $stored)
            Set-Content -LiteralPath (Join-Path $object 'fields.conf') -Value 'live after the restore'
            $live = Get-TreeState $object
            { Restore-ObjectBackup -DbRoot $root -Dir bulk -Object items -Repository $repo -Force -Confirm:$false -ErrorAction Stop } |
                Should -Throw -ErrorId 'FrameCorrupt,PSBackup.Commands.RestoreObjectBackupCommand'
            Get-TreeState $object | Should -Be $live
            @(Get-ChildItem -LiteralPath (Join-Path $root 'bulk') -Filter '*.tmp') | Should -HaveCount 0
        }

        It 'restores folders and files whose names differ only in case (Debian''s perl tree has Sys and sys)' -Skip:($IsWindows -or $IsMacOS) {
            $repo = Join-Path $TestDrive 'case-repo'
            Initialize-BackupRepository -Repository $repo -Unencrypted | Out-Null
            $root = Join-Path $TestDrive 'case-root'
            $object = Join-Path $root 'cases' 'perl'
            foreach ($rel in 'Sys/Hostname.pm', 'sys/wait.ph', 'docs/README', 'docs/readme') {
                New-Item -ItemType Directory -Force -Path (Split-Path (Join-Path $object $rel)) | Out-Null
                Set-Content -LiteralPath (Join-Path $object $rel) -Value "content of $rel"
            }
            $expected = Get-TreeState $object
            $backup = New-ObjectBackup -DbRoot $root -Dir cases -Object perl -Repository $repo
            $backup.FileCount | Should -Be 4
            Remove-Item -LiteralPath $object -Recurse -Force

            $null = Restore-ObjectBackup -DbRoot $root -Dir cases -Object perl -Repository $repo -Confirm:$false
            Get-TreeState $object | Should -Be $expected
            @(Get-Backup -Repository $repo -Kind object) | Should -HaveCount 1
        }

        It 'refuses wildcards without -Repository as WildcardNeedsRepository' {
            $err = { Restore-ObjectBackup -DbRoot $script:DbRoot -Dir acme -Object '*' -From latest -Confirm:$false -ErrorAction Stop } | Should -Throw -PassThru
            $err.FullyQualifiedErrorId | Should -Be 'WildcardNeedsRepository,PSBackup.Commands.RestoreObjectBackupCommand'
        }

        It 'changes nothing under -WhatIf' {
            $before = Get-TreeState (Join-Path $script:DbRoot 'acme')
            $result = Restore-ObjectBackup -DbRoot $script:DbRoot -Dir acme -Object orders -Repository $script:ObjRepo -Force -WhatIf
            $result | Should -BeNullOrEmpty
            Get-TreeState (Join-Path $script:DbRoot 'acme') | Should -Be $before
        }

        It 'refuses another object''s backup and -From without -BackupId' {
            $other = Get-Backup -Repository $script:ObjRepo -Kind object -Dir globex -Object inventory | Select-Object -First 1
            { Restore-ObjectBackup -DbRoot $script:DbRoot -Dir acme -Object orders -Repository $script:ObjRepo -BackupId $other.BackupId -Force -Confirm:$false -ErrorAction Stop } |
                Should -Throw -ErrorId 'BackupOfOtherObject,PSBackup.Commands.RestoreObjectBackupCommand'
            { Restore-ObjectBackup -DbRoot $script:DbRoot -Dir acme -Object orders -Repository $script:ObjRepo -From latest -Force -Confirm:$false -ErrorAction Stop } |
                Should -Throw -ErrorId 'FromWithRepository,PSBackup.Commands.RestoreObjectBackupCommand'
        }
    }

    It 'rejects an unsafe backup name' {
        { Restore-ObjectBackup -DbRoot $script:DbRoot -Dir acme -Object orders -From '../../etc' -Force -Confirm:$false -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidBackupName,PSBackup.Commands.RestoreObjectBackupCommand'
    }
}

Describe 'Clear-StaleArtifact' {
    BeforeEach {
        $script:SweepRoot = Join-Path $TestDrive ('sweep-' + [guid]::NewGuid().ToString('N').Substring(0, 8))
        $data = New-Item -ItemType Directory -Path (Join-Path $script:SweepRoot 'acme' 'orders' 'data') -Force
        Set-Content -LiteralPath (Join-Path $data.FullName '001.bin') -Value 'live'
        Set-Content -LiteralPath (Join-Path $data.FullName '001.bin.new') -Value 'half-built'
        Set-Content -LiteralPath (Join-Path $data.FullName '002.bin.old') -Value 'replaced'
        Set-Content -LiteralPath (Join-Path $script:SweepRoot 'acme' 'orders' 'fields.conf.tmp') -Value 'temp'
    }

    It 'lists but removes nothing under -WhatIf' {
        $before = Get-TreeState $script:SweepRoot
        Clear-StaleArtifact -Root $script:SweepRoot -WhatIf | Out-Null
        Get-TreeState $script:SweepRoot | Should -Be $before
    }

    It 'removes .new, .old and .tmp artifacts and keeps live files' {
        $removed = Clear-StaleArtifact -Root $script:SweepRoot -Confirm:$false

        $removed | Should -BeOfType ([PSBackup.Engine.ObjectStore.StaleArtifact])
        @($removed).Count | Should -Be 3
        $removed.Removed | Should -Not -Contain $false
        Join-Path $script:SweepRoot 'acme' 'orders' 'data' '001.bin' | Should -Exist
        Join-Path $script:SweepRoot 'acme' 'orders' 'data' '001.bin.new' | Should -Not -Exist
        Join-Path $script:SweepRoot 'acme' 'orders' 'data' '002.bin.old' | Should -Not -Exist
        Join-Path $script:SweepRoot 'acme' 'orders' 'fields.conf.tmp' | Should -Not -Exist
    }

    It 'resolves a relative -Root against the PowerShell location, not the process directory' {
        Push-Location -LiteralPath $script:SweepRoot
        try {
            $removed = Clear-StaleArtifact -Root 'acme' -Confirm:$false
        }
        finally {
            Pop-Location
        }
        @($removed).Count | Should -Be 3
        Join-Path $script:SweepRoot 'acme' 'orders' 'data' '001.bin.new' | Should -Not -Exist
    }

    It 'reports a missing root as DirectoryNotFound' {
        { Clear-StaleArtifact -Root (Join-Path $TestDrive 'nope') -Confirm:$false -ErrorAction Stop } |
            Should -Throw -ErrorId 'DirectoryNotFound,PSBackup.Commands.ClearStaleArtifactCommand'
    }
}
