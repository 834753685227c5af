# Shared helpers for the Pester tests: dot-source inside BeforeAll,
#   . (Join-Path $PSScriptRoot 'TestHelpers.ps1')
# so the functions are visible in every It of the file.

function New-ExampleDatabase {
    <# Generates the bundled example database (shard-db + unison) into $Path from $Seed. -Store
       sqlite (the default here): the SQLite adapter's layout (<ns>/db/store.sqlite, <ns>/wal/*.wal)
       these tests were written against; unison: exactly UnisonDB's data directory (<ns>/wal/*.seg,
       <ns>/unison.db LMDB with a checkpoint), as the demo generates it. #>
    param(
        [Parameter(Mandatory)] [string] $Path,
        [Parameter(Mandatory)] [int] $Seed,
        [ValidateSet('sqlite', 'unison')] [string] $Store = 'sqlite'
    )
    $generator = Join-Path $PSScriptRoot '..' 'examples' 'PSBackup.Example'
    $output = & dotnet run --project $generator -- generate --out $Path --seed $Seed --store $Store 2>&1
    if ($LASTEXITCODE -ne 0) {
        throw "psbackup-example generate failed ($LASTEXITCODE): $($output -join [Environment]::NewLine)"
    }
}

function Get-TreeState {
    <# Relative path, length and hash of every file: equal states mean nothing was written. #>
    param([Parameter(Mandatory)] [string] $Path)
    Get-ChildItem -LiteralPath $Path -Recurse -File -Force | Sort-Object FullName | ForEach-Object {
        '{0} {1} {2}' -f [System.IO.Path]::GetRelativePath($Path, $_.FullName), $_.Length, (Get-FileHash -LiteralPath $_.FullName -Algorithm SHA256).Hash
    }
}

function Wait-ServerLine {
    <# Polls a test server's log until a line matches $Pattern (returns its first group) or the
       process exits or $Seconds pass (returns $null). #>
    param([System.Diagnostics.Process] $Process, [string] $Log, [string] $Pattern, [int] $Seconds)
    $deadline = [DateTime]::UtcNow.AddSeconds($Seconds)
    while ([DateTime]::UtcNow -lt $deadline) {
        $line = Get-Content -LiteralPath $Log -ErrorAction SilentlyContinue | Select-String $Pattern | Select-Object -First 1
        if ($line) { return $line.Matches[0].Groups[1].Value }
        if ($Process.HasExited) { return $null }
        Start-Sleep -Milliseconds 200
    }
    $null
}

function Start-TestS3Server {
    <# Starts s3rver (tests/s3, `npm ci --prefix tests/s3`) on 127.0.0.1 with $Bucket, data under
       $WorkPath. Returns the process and the endpoint; s3rver's keys are S3RVER / S3RVER. #>
    param(
        [Parameter(Mandatory)] [string] $Bucket,
        [Parameter(Mandatory)] [string] $WorkPath
    )
    $s3rver = Join-Path $PSScriptRoot 's3' 'node_modules' 's3rver' 'bin' 's3rver.js'
    if (-not (Test-Path -LiteralPath $s3rver)) {
        throw "s3rver is not installed: run 'npm ci --prefix tests/s3' first."
    }
    $data = Join-Path $WorkPath 's3rver'
    $null = New-Item -ItemType Directory -Path $data -Force
    $log = Join-Path $WorkPath 's3rver.log'
    $errLog = Join-Path $WorkPath 's3rver.err'
    # Start-Process joins -ArgumentList with single spaces and quotes nothing, so a checkout or
    # temp path with a space would split: quote every argument and pass one command line.
    $arguments = @($s3rver, '-d', $data, '-a', '127.0.0.1', '-p', '0', '--no-vhost-buckets', '--configure-bucket', $Bucket) |
        ForEach-Object { '"{0}"' -f $_ }
    $node = (Get-Command -Name node -CommandType Application -ErrorAction Stop | Select-Object -First 1).Source
    # s3rver 3.7.1 encrypts listing continuation tokens with a cipher Node 17+ only offers through
    # the legacy OpenSSL provider; the child inherits it, and this session gets its own value back.
    $previousNodeOptions = $env:NODE_OPTIONS
    $env:NODE_OPTIONS = '--openssl-legacy-provider'
    try {
        $process = Start-Process -FilePath $node -ArgumentList ($arguments -join ' ') -PassThru `
            -RedirectStandardOutput $log -RedirectStandardError $errLog
    }
    finally {
        $env:NODE_OPTIONS = $previousNodeOptions
    }
    $endpoint = Wait-ServerLine -Process $process -Log $log -Pattern 'listening on (127\.0\.0\.1:\d+)' -Seconds 30
    if ($endpoint) { $endpoint = "http://$endpoint" }
    if (-not $endpoint) {
        throw "s3rver did not start: $(Get-Content -LiteralPath $log -Raw -ErrorAction SilentlyContinue) $(Get-Content -LiteralPath $errLog -Raw -ErrorAction SilentlyContinue)"
    }
    [pscustomobject]@{
        Process  = $process
        Endpoint = $endpoint
    }
}

function Stop-TestS3Server {
    <# Stops a server from Start-TestS3Server and waits, so Pester can clear TestDrive (Windows
       cannot delete the open data folder). #>
    param([object] $Server)
    if ($Server -and $Server.Process -and -not $Server.Process.HasExited) {
        Stop-Process -Id $Server.Process.Id -Force
        $null = $Server.Process.WaitForExit(10000)
    }
}

function Start-TestAzurite {
    <# Starts Azurite's blob service (tests/azure, `npm ci --prefix tests/azure`) on 127.0.0.1 with
       a free port and in-memory persistence; logs under $WorkPath. Returns the process, the
       account's blob endpoint (http://127.0.0.1:PORT/devstoreaccount1), its connection string and
       a PSCredential of the emulator's well-known account name and key. #>
    param([Parameter(Mandatory)] [string] $WorkPath)
    $main = Join-Path $PSScriptRoot 'azure' 'node_modules' 'azurite' 'dist' 'src' 'blob' 'main.js'
    if (-not (Test-Path -LiteralPath $main)) {
        throw "Azurite is not installed: run 'npm ci --prefix tests/azure' first."
    }
    $null = New-Item -ItemType Directory -Path $WorkPath -Force
    $log = Join-Path $WorkPath 'azurite.log'
    $errLog = Join-Path $WorkPath 'azurite.err'
    $arguments = @($main, '--blobHost', '127.0.0.1', '--blobPort', '0', '--inMemoryPersistence', '--skipApiVersionCheck', '--loose') |
        ForEach-Object { '"{0}"' -f $_ }
    $node = (Get-Command -Name node -CommandType Application -ErrorAction Stop | Select-Object -First 1).Source
    $process = Start-Process -FilePath $node -ArgumentList ($arguments -join ' ') -PassThru -WorkingDirectory $WorkPath `
        -RedirectStandardOutput $log -RedirectStandardError $errLog
    # Azurite loads many modules before it listens: allow two minutes on a loaded machine.
    $endpoint = Wait-ServerLine -Process $process -Log $log -Pattern 'listens on (http://127\.0\.0\.1:\d+)' -Seconds 120
    if ($endpoint) { $endpoint = "$endpoint/devstoreaccount1" }
    if (-not $endpoint) {
        if (-not $process.HasExited) { Stop-Process -Id $process.Id -Force -ErrorAction SilentlyContinue }
        throw "Azurite did not start: $(Get-Content -LiteralPath $log -Raw -ErrorAction SilentlyContinue) $(Get-Content -LiteralPath $errLog -Raw -ErrorAction SilentlyContinue)"
    }
    $key = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
    [pscustomobject]@{
        Process          = $process
        BlobEndpoint     = $endpoint
        ConnectionString = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$key;BlobEndpoint=$endpoint;"
        Credential       = [pscredential]::new('devstoreaccount1', (ConvertTo-SecureString $key -AsPlainText -Force))
    }
}

function Stop-TestAzurite {
    <# Stops a server from Start-TestAzurite and waits for it. #>
    param([object] $Server)
    if ($Server -and $Server.Process -and -not $Server.Process.HasExited) {
        Stop-Process -Id $Server.Process.Id -Force
        $null = $Server.Process.WaitForExit(10000)
    }
}

function Get-UnisonOracle {
    <# The UnisonDB oracle binary (unisondb-walfs, or -V2 for unisondb-walfs-v2) from
       $env:PSBACKUP_UNISONDB_BIN or shared/unisondb/bin beside the checkout or a folder above it.
       Fails (never skips) when it is missing: UnisonDB's own code judges every restore. #>
    param([switch] $V2)
    $name = if ($V2) { 'unisondb-walfs-v2' } else { 'unisondb-walfs' }
    $dirs = @()
    if ($env:PSBACKUP_UNISONDB_BIN) { $dirs += $env:PSBACKUP_UNISONDB_BIN }
    $d = Get-Item -LiteralPath (Join-Path $PSScriptRoot '..')
    while ($d) {
        $dirs += Join-Path $d.FullName 'shared' 'unisondb' 'bin'
        if ($d.Parent) { $dirs += Join-Path $d.Parent.FullName 'shared' 'unisondb' 'bin' }
        $d = $d.Parent
    }
    foreach ($dir in $dirs) {
        $candidate = Join-Path $dir $name
        if (Test-Path -LiteralPath $candidate -PathType Leaf) { return $candidate }
    }
    throw "The UnisonDB oracle '$name' was not found (shared/unisondb/bin beside the checkout); set PSBACKUP_UNISONDB_BIN."
}

function Copy-UnisonFixture {
    <# Copies tests/fixtures/unisondb/<Name> (v1-small, v2-small, v1-store-bolt, v1-store-lmdb) into
       $DataDir, giving $DataDir/users/... . #>
    param([Parameter(Mandatory)] [string] $Name, [Parameter(Mandatory)] [string] $DataDir)
    $source = Join-Path $PSScriptRoot 'fixtures' 'unisondb' $Name
    $null = New-Item -ItemType Directory -Path $DataDir -Force
    Copy-Item -Path (Join-Path $source '*') -Destination $DataDir -Recurse -Force
}

function New-TestWal {
    <# Writes a WAL of many small sealed walfs v2 segments (and one active) for namespace $Namespace
       under $DataDir with UnisonDB's own writer (the v2 oracle's gen), named %09d.wal as the seed
       archives them. About 37 segments for the default 1500 records. #>
    param(
        [Parameter(Mandatory)] [string] $DataDir,
        [string] $Namespace = 'users',
        [int] $Records = 1500
    )
    $wal = Join-Path $DataDir $Namespace 'wal'
    $null = New-Item -ItemType Directory -Path $wal -Force
    $output = & (Get-UnisonOracle -V2) gen -dir $wal -ext .wal -seg-size 307200 -records $Records -sessions 1 2>&1
    if ($LASTEXITCODE -ne 0) {
        throw "unisondb-walfs-v2 gen failed ($LASTEXITCODE): $($output -join [Environment]::NewLine)"
    }
}

function Start-UnisonTestServer {
    <# An HTTP server on 127.0.0.1 implementing UnisonDB's backup API contract (seed 003) over
       $DataDir: the xunit suite's UnisonTestServer, loaded from the test assembly the build made.
       Stop it with $server.DisposeAsync().AsTask().Wait(). #>
    param([Parameter(Mandatory)] [string] $DataDir, [string] $Namespace = 'users')
    if (-not ('PSBackup.Engine.Tests.Snapshots.UnisonTestServer' -as [type])) {
        $config = if ($env:CONFIGURATION) { $env:CONFIGURATION } else { 'Release' }
        $dll = Join-Path $PSScriptRoot 'PSBackup.Engine.Tests' 'bin' $config 'net10.0' 'PSBackup.Engine.Tests.dll'
        if (-not (Test-Path -LiteralPath $dll)) { throw "The test assembly '$dll' is not built; run scripts/test.sh (or dotnet build -c $config)." }
        Add-Type -LiteralPath $dll
    }
    [PSBackup.Engine.Tests.Snapshots.UnisonTestServer]::new($DataDir, $Namespace, $null)
}

# A PSDataCollection's enumerator waits for the collection to close: read it by index.
function Read-Collection($c) { for ($i = 0; $i -lt $c.Count; $i++) { $c[$i] } }

# Polls a condition (50 ms apart, at most 2 minutes) and fails naming what it waited for.
function Wait-Until([scriptblock] $Condition, [string] $What) {
    $deadline = [DateTime]::UtcNow.AddMinutes(2)
    while (-not (& $Condition)) {
        if ([DateTime]::UtcNow -gt $deadline) { throw "timed out waiting for $What" }
        Start-Sleep -Milliseconds 50
    }
}
