#Requires -Version 7.4
# Pester 5: how the cmdlets behave in a pipeline: awaited writes (a slow consumer holds the engine
# back, a stopped one stops it), the engine's narrative on -Verbose and storage calls on -Debug,
# and progress records (a new one per update, bytes, rate, SecondsRemaining, completed at the end).

BeforeAll {
    $env:PSBACKUP_AUDIT_LOG = Join-Path $TestDrive 'audit.jsonl'
    $script:Manifest = Join-Path $PSScriptRoot '..' 'out' 'PSBackup' 'PSBackup.psd1'
    Import-Module $script:Manifest -Force -ErrorAction Stop
    . (Join-Path $PSScriptRoot 'TestHelpers.ps1')

    # A large WAL archive: ~37 segments of one namespace, each its own backup (manifest) in the repository.
    $script:WalData = Join-Path $TestDrive 'wal-data'
    New-TestWal -DataDir $script:WalData -Namespace users
    $script:Repo = Join-Path $TestDrive 'repos' 'large'
    $null = Initialize-BackupRepository -Repository $script:Repo -Unencrypted
    $script:Shipped = @(Invoke-WalShip -DataDir $script:WalData -Namespace users -Repository $script:Repo)

    $script:Fixture = Join-Path $TestDrive 'example'
    New-ExampleDatabase -Path $script:Fixture -Seed 31
    $script:DbRoot = Join-Path $script:Fixture 'shard-db'
}

AfterAll {
    Remove-Item Env:PSBACKUP_AUDIT_LOG -ErrorAction SilentlyContinue
    Remove-Module PSBackup -Force -ErrorAction SilentlyContinue
}

Describe 'Awaited pipeline writes' {
    It 'has a repository with many backups to list' {
        $script:Shipped.Count | Should -BeGreaterThan 25
        @(Get-Backup -Repository $script:Repo).Count | Should -Be $script:Shipped.Count
    }

    It 'holds the engine back to the consumer: at most a few manifests are read ahead of what the consumer took' {
        # Each manifest read is a debug record written from the engine's thread; output is awaited.
        # Were writes fire-and-forget, every read would be queued before the first record arrived.
        $reads = 0
        $taken = 0
        $aheadMost = 0
        Get-Backup -Repository $script:Repo -Debug 5>&1 | ForEach-Object {
            if ($_ -is [System.Management.Automation.DebugRecord]) {
                if ($_.Message -like 'Storage GET snapshots/*') { $reads++ }
            }
            else {
                $taken++
                $aheadMost = [math]::Max($aheadMost, $reads - $taken)
            }
        }
        $taken | Should -Be $script:Shipped.Count
        $reads | Should -Be $script:Shipped.Count
        $aheadMost | Should -BeLessOrEqual 3
    }

    It 'streams newest first, in the same order as the full listing' {
        $all = @(Get-Backup -Repository $script:Repo)
        $first = Get-Backup -Repository $script:Repo | Select-Object -First 1
        $first.BackupId | Should -Be $all[0].BackupId
        $first.SegmentId | Should -Be ($script:Shipped.SegmentId | Measure-Object -Maximum).Maximum
        for ($i = 1; $i -lt $all.Count; $i++) {
            $all[$i].Time | Should -BeLessOrEqual $all[$i - 1].Time
        }
    }

    It 'stops on a downstream terminating error without writing more' {
        $seen = [System.Collections.Generic.List[object]]::new()
        { Get-Backup -Repository $script:Repo | ForEach-Object { $seen.Add($_); if ($seen.Count -eq 2) { throw 'consumer failed' } } } |
            Should -Throw '*consumer failed*'
        $seen.Count | Should -Be 2
    }
}

Describe 'Awaited pipeline writes against S3' -Tag 'Integration' {
    BeforeAll {
        $script:Bucket = 'pester-pipeline'
        $script:S3Server = Start-TestS3Server -Bucket $script:Bucket -WorkPath (Join-Path $TestDrive 's3')
        $script:S3 = @{
            Endpoint  = $script:S3Server.Endpoint
            AccessKey = 'S3RVER'
            SecretKey = (ConvertTo-SecureString 'S3RVER' -AsPlainText -Force)
        }
        $script:S3Repo = "s3://$($script:Bucket)/large"
        $null = Initialize-BackupRepository -Repository $script:S3Repo @script:S3 -Unencrypted
        # -Endpoint of Invoke-WalShip is UnisonDB's API; the S3 store's endpoint is -S3Endpoint there.
        $script:S3Shipped = @(Invoke-WalShip -DataDir $script:WalData -Namespace users -Repository $script:S3Repo -S3Endpoint $script:S3.Endpoint -AccessKey S3RVER -SecretKey $script:S3.SecretKey)
        $script:S3Shipped.Count | Should -BeGreaterThan 25
        $script:S3Log = Join-Path $TestDrive 's3' 's3rver.log'

        function Get-ManifestReads {
            <# The manifest reads s3rver served while $Action ran. s3rver logs every response (the
               line names the key, "large/snapshots/<id> 200"); a request made after $Action returned
               is logged after everything it sent, so the lines between two such markers are its own. #>
            param([scriptblock] $Action)
            $start = Send-Marker
            & $Action
            $end = Send-Marker
            $lines = @(Get-Content -LiteralPath $script:S3Log)
            $from = [array]::FindIndex($lines, [Predicate[string]] { param($l) $l.Contains($start) })
            $to = [array]::FindIndex($lines, [Predicate[string]] { param($l) $l.Contains($end) })
            $from | Should -BeGreaterOrEqual 0
            $to | Should -BeGreaterThan $from
            # Every response to a manifest GET, whatever its status (a read cancelled mid-way too).
            @($lines[$from..$to] -match 'large/snapshots/[0-9a-f]{64} ').Count
        }

        function Send-Marker {
            $marker = "marker-$([guid]::NewGuid().ToString('n'))"
            $null = Invoke-WebRequest -Uri "$($script:S3Server.Endpoint)/$($script:Bucket)/$marker" -SkipHttpErrorCheck
            foreach ($i in 1..200) {
                if ((Get-Content -LiteralPath $script:S3Log -Raw).Contains($marker)) { return $marker }
                Start-Sleep -Milliseconds 50
            }
            throw "s3rver never logged the request for $marker"
        }
    }

    AfterAll {
        Stop-TestS3Server -Server $script:S3Server
    }

    It 'reads every manifest for a full listing' {
        $reads = Get-ManifestReads { $script:All = @(Get-Backup -Repository $script:S3Repo @script:S3) }
        $script:All.Count | Should -Be $script:S3Shipped.Count
        $reads | Should -Be $script:S3Shipped.Count
    }

    It 'stops reading promptly when Select-Object -First 1 has its record' {
        $reads = Get-ManifestReads { $script:First = Get-Backup -Repository $script:S3Repo @script:S3 | Select-Object -First 1 }
        $script:First.SegmentId | Should -Be ($script:S3Shipped.SegmentId | Measure-Object -Maximum).Maximum
        $reads | Should -BeGreaterThan 0
        # The first record, the one read ahead and at most one more in flight: never the whole archive.
        $reads | Should -BeLessOrEqual 4
    }
}

Describe 'Verbose narrative and Debug storage calls' {
    BeforeAll {
        $script:KeyRepo = Join-Path $TestDrive 'repos' 'verbose'
        $script:Key = @{ Passphrase = (ConvertTo-SecureString 'verbose passphrase' -AsPlainText -Force) }
        $null = Initialize-BackupRepository -Repository $script:KeyRepo @script:Key
        $null = New-ObjectBackup -DbRoot $script:DbRoot -Dir acme -Object orders -Repository $script:KeyRepo @script:Key
    }

    It 'tells on -Verbose what the CLI tells: lock, key cache, parent, files read and reused, bytes stored' {
        $verbose = @(New-ObjectBackup -DbRoot $script:DbRoot -Dir acme -Object orders -Repository $script:KeyRepo @script:Key -Verbose 4>&1 |
                Where-Object { $_ -is [System.Management.Automation.VerboseRecord] } | ForEach-Object Message)
        $verbose -match '^Took a shared lock on ' | Should -Not -BeNullOrEmpty
        $verbose -match '^Key cache: reused the passphrase key' | Should -Not -BeNullOrEmpty
        $verbose -match '^Parent backup [0-9a-f]{64} of ''acme/orders''' | Should -Not -BeNullOrEmpty
        $verbose -match '^Committed backup [0-9a-f]{64} of ''acme/orders'': \d+ file\(s\), .*; read \d+, reused \d+ unread .*; .* new data stored\.$' |
            Should -Not -BeNullOrEmpty
    }

    It 'writes nothing to the verbose stream without -Verbose' {
        $records = @(New-ObjectBackup -DbRoot $script:DbRoot -Dir acme -Object customers -Repository $script:KeyRepo @script:Key 4>&1 |
                Where-Object { $_ -is [System.Management.Automation.VerboseRecord] })
        $records.Count | Should -Be 0
    }

    It 'writes every storage call to -Debug' {
        $debug = @(New-ObjectBackup -DbRoot $script:DbRoot -Dir globex -Object inventory -Repository $script:KeyRepo @script:Key -Debug 5>&1 |
                Where-Object { $_ -is [System.Management.Automation.DebugRecord] } | ForEach-Object Message)
        $debug -match '^Storage GET config ' | Should -Not -BeNullOrEmpty
        $debug -match '^Storage PUT snapshots/[0-9a-f]{64} \(.*\) in [\d.]+ ms' | Should -Not -BeNullOrEmpty
        $debug -match '^Storage PUT refs/object/globex/inventory/' | Should -Not -BeNullOrEmpty
        $debug -match '^Storage LIST ' | Should -Not -BeNullOrEmpty
    }
}

Describe 'Progress records' {
    It 'writes a new record per update with bytes and SecondsRemaining, completed at the end' {
        $ps = [powershell]::Create()
        try {
            $null = $ps.AddScript('$ProgressPreference = ''Continue''').AddStatement().
                AddCommand('Import-Module').AddParameter('Name', $script:Manifest).AddStatement().
                AddCommand('New-ObjectBackup').AddParameter('DbRoot', $script:DbRoot).AddParameter('Dir', 'acme').AddParameter('Object', 'customers')
            $null = $ps.Invoke()
            $ps.HadErrors | Should -BeFalse
            $records = @($ps.Streams.Progress | Where-Object Activity -EQ 'New-ObjectBackup')
        }
        finally {
            $ps.Dispose()
        }
        $records.Count | Should -BeGreaterThan 1
        # Distinct objects: a captured stream shows each state, not N copies of the last one.
        @($records | ForEach-Object { [System.Runtime.CompilerServices.RuntimeHelpers]::GetHashCode($_) } | Sort-Object -Unique).Count |
            Should -Be $records.Count
        $processing = @($records | Where-Object RecordType -EQ 'Processing')
        $processing | Where-Object StatusDescription -Match '\d+(\.\d)? (B|KiB|MiB) of \d+(\.\d)? (B|KiB|MiB)' | Should -Not -BeNullOrEmpty
        $processing | Where-Object SecondsRemaining -GE 0 | Should -Not -BeNullOrEmpty
        $records[-1].RecordType | Should -Be 'Completed'
        @($records | Where-Object RecordType -EQ 'Completed').Count | Should -Be 1
    }

    It 'reports bytes within one large file while it is backed up and restored, with SecondsRemaining' {
        # shard-db objects are a few large data files: progress must move inside a file, not only between files.
        $root = Join-Path $TestDrive 'big-db'
        $file = Join-Path $root 'big' 'blob' 'data' '001.bin'
        $null = New-Item -ItemType Directory -Path (Split-Path $file) -Force
        $bytes = [byte[]]::new(80MB)
        [Random]::new(7).NextBytes($bytes)
        [IO.File]::WriteAllBytes($file, $bytes)
        $bytes = $null
        $repo = Join-Path $TestDrive 'repos' 'big'
        $null = Initialize-BackupRepository -Repository $repo -Unencrypted

        function Get-ProgressOf([string] $Command, [hashtable] $Parameters) {
            $ps = [powershell]::Create()
            try {
                $null = $ps.AddScript('$ProgressPreference = ''Continue''').AddStatement().
                    AddCommand('Import-Module').AddParameter('Name', $script:Manifest).AddStatement().
                    AddCommand($Command).AddParameters($Parameters)
                $null = $ps.Invoke()
                $ps.HadErrors | Should -BeFalse -Because ($ps.Streams.Error | Out-String)
                @($ps.Streams.Progress | Where-Object Activity -EQ $Command)
            }
            finally {
                $ps.Dispose()
            }
        }

        foreach ($run in @(
                @{ Command = 'New-ObjectBackup'; Parameters = @{ DbRoot = $root; Dir = 'big'; Object = 'blob' }; Status = 'Copying data/001.bin' },
                @{ Command = 'New-ObjectBackup'; Parameters = @{ DbRoot = $root; Dir = 'big'; Object = 'blob'; Repository = $repo }; Status = 'Copying data/001.bin' },
                @{ Command = 'Restore-ObjectBackup'; Parameters = @{ DbRoot = $root; Dir = 'big'; Object = 'blob'; Repository = $repo; Force = $true; Confirm = $false }; Status = 'Restoring' })) {
            $records = Get-ProgressOf $run.Command $run.Parameters
            $within = @($records | Where-Object { $_.RecordType -eq 'Processing' -and $_.StatusDescription -like "$($run.Status)*" -and $_.PercentComplete -gt 0 -and $_.PercentComplete -lt 100 })
            $within.Count | Should -BeGreaterThan 0 -Because "$($run.Command) $($run.Parameters.Keys -join ',') reports inside the 80 MiB file: $(($records | ForEach-Object { '{0} {1}%' -f $_.StatusDescription, $_.PercentComplete }) -join '; ')"
            $within | Where-Object SecondsRemaining -GE 0 | Should -Not -BeNullOrEmpty
            $within[0].StatusDescription | Should -Match '\d+(\.\d)? MiB of 80\.0 MiB'
        }
    }
}
