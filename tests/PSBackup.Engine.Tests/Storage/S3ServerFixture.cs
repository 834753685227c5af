using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Amazon.S3;
using Amazon.S3.Model;
using PSBackup.Engine.Storage;

namespace PSBackup.Engine.Tests.Storage;

/// <summary>Test classes that talk to the real S3 server share one s3rver process.</summary>
[CollectionDefinition(Name)]
public sealed class S3ServerCollection : ICollectionFixture<S3ServerFixture>
{
    public const string Name = "S3 server";
}

/// <summary>A real S3-compatible server (s3rver, from tests/s3) on 127.0.0.1 with a free port
/// and a temp data folder, started once per test collection and killed (whole process tree) on
/// dispose. Use <see cref="CreateBucketAsync"/> for a fresh bucket, then
/// <see cref="OptionsFor"/> or <see cref="CreateBackendAsync"/>:
/// <code>[Collection(S3ServerCollection.Name)] public sealed class MyTests(S3ServerFixture s3) { ... }</code></summary>
public sealed partial class S3ServerFixture : IAsyncLifetime
{
    /// <summary>s3rver's built-in account.</summary>
    public const string AccessKey = "S3RVER";
    public const string SecretKey = "S3RVER";

    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private readonly ConcurrentQueue<string> _log = new();
    private readonly TaskCompletionSource<int> _port = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Process? _process;
    private int _buckets;

    [GeneratedRegex(@"S3rver listening on 127\.0\.0\.1:(\d+)")]
    private static partial Regex Listening();

    public string Endpoint { get; private set; } = "";

    /// <summary>The server process (for tests that pause it with SIGSTOP to play a stalled endpoint).</summary>
    public int ProcessId => _process?.Id ?? throw new InvalidOperationException("The S3 server is not running.");

    /// <summary>s3rver's data folder (buckets are folders in it).</summary>
    public string DataDirectory { get; } = Path.Combine(Path.GetTempPath(), "psbackup-tests", "s3rver-" + Guid.NewGuid().ToString("N")[..12]);

    /// <summary>Every line the server printed (one per request: method, path, status).</summary>
    public IReadOnlyCollection<string> Log => _log;

    public async Task InitializeAsync()
    {
        string root = FindRepoRoot();
        string script = Path.Combine(root, "tests", "s3", "node_modules", "s3rver", "bin", "s3rver.js");
        if (!File.Exists(script))
        {
            throw new InvalidOperationException(
                $"The S3 test server is not installed ({script} is missing). Run `npm ci --prefix tests/s3` in {root} (scripts/test.sh does this).");
        }
        Directory.CreateDirectory(DataDirectory);
        var start = new ProcessStartInfo("node")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.Combine(root, "tests", "s3"),
        };
        foreach (string arg in new[] { script, "-d", DataDirectory, "-a", "127.0.0.1", "-p", "0", "--no-vhost-buckets" })
        {
            start.ArgumentList.Add(arg);
        }
        // s3rver 3.7.1 encrypts listing continuation tokens with a cipher Node 17+ only offers
        // through the legacy OpenSSL provider; without it every paged listing fails.
        start.Environment["NODE_OPTIONS"] = "--openssl-legacy-provider";
        try
        {
            _process = Process.Start(start) ?? throw new InvalidOperationException("node did not start.");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"Cannot start node for the S3 test server ({e.Message}). Install Node.js 18 or later.", e);
        }
        _process.OutputDataReceived += (_, e) => OnLine(e.Data);
        _process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        _process.EnableRaisingEvents = true;
        _process.Exited += (_, _) => _port.TrySetException(new InvalidOperationException(
            $"s3rver exited with code {_process.ExitCode} before listening:{Environment.NewLine}{string.Join(Environment.NewLine, _log)}"));
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        using var timeout = new CancellationTokenSource(StartTimeout);
        int port = await _port.Task.WaitAsync(timeout.Token).ConfigureAwait(false);
        Endpoint = $"http://127.0.0.1:{port}";
        await WaitUntilAnsweringAsync(port, timeout.Token).ConfigureAwait(false);
    }

    private void OnLine(string? line)
    {
        if (line is null)
        {
            return;
        }
        _log.Enqueue(line);
        Match m = Listening().Match(line);
        if (m.Success)
        {
            _port.TrySetResult(int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
        }
    }

    /// <summary>Polls with a real S3 request until the server answers (bounded by the token).</summary>
    private async Task WaitUntilAnsweringAsync(int port, CancellationToken ct)
    {
        using IAmazonS3 client = CreateClient();
        for (int delay = 20; ; delay = Math.Min(delay * 2, 500))
        {
            try
            {
                await client.ListBucketsAsync(ct).ConfigureAwait(false);
                return;
            }
            catch (Exception e) when (!ct.IsCancellationRequested && e is HttpRequestException or SocketException or IOException or Amazon.Runtime.AmazonClientException)
            {
                await Task.Delay(delay, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                throw new TimeoutException($"s3rver on port {port} did not answer within {StartTimeout.TotalSeconds} s.");
            }
        }
    }

    /// <summary>A raw SDK client for the server, configured like the backend's.</summary>
    public IAmazonS3 CreateClient() =>
        new AmazonS3Client(AccessKey, SecretKey, S3Backend.CreateConfig(new S3BackendOptions { Bucket = "probe", Endpoint = Endpoint }));

    /// <summary>Creates a new, empty bucket and returns its name.</summary>
    public async Task<string> CreateBucketAsync(string hint = "test")
    {
        string safeHint = new string(hint.ToLowerInvariant().Where(c => char.IsAsciiLetterOrDigit(c)).ToArray());
        safeHint = safeHint.Length == 0 ? "test" : safeHint[..Math.Min(safeHint.Length, 30)];
        string bucket = $"{safeHint}-{Interlocked.Increment(ref _buckets)}-{Guid.NewGuid().ToString("N")[..8]}";
        using IAmazonS3 client = CreateClient();
        await client.PutBucketAsync(new PutBucketRequest { BucketName = bucket }).ConfigureAwait(false);
        return bucket;
    }

    /// <summary>Backend options for <paramref name="bucket"/> on this server with its credentials.</summary>
    public S3BackendOptions OptionsFor(string bucket, string prefix = "") => new()
    {
        Bucket = bucket,
        Prefix = prefix,
        Endpoint = Endpoint,
        AccessKey = AccessKey,
        SecretKey = SecretKey,
    };

    /// <summary>A backend on a fresh bucket; <paramref name="configure"/> adjusts the options
    /// (small part sizes, page sizes) before it is built.</summary>
    public async Task<S3Backend> CreateBackendAsync(string prefix = "", Func<S3BackendOptions, S3BackendOptions>? configure = null, string hint = "test")
    {
        string bucket = await CreateBucketAsync(hint).ConfigureAwait(false);
        S3BackendOptions options = OptionsFor(bucket, prefix);
        return new S3Backend(configure is null ? options : configure(options));
    }

    public Task DisposeAsync()
    {
        // PSBACKUP_S3_LOG=<file> keeps the server's request log for debugging.
        if (Environment.GetEnvironmentVariable("PSBACKUP_S3_LOG") is { Length: > 0 } logFile)
        {
            File.WriteAllLines(logFile, _log);
        }
        if (_process is { } process)
        {
            try
            {
                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                    process.WaitForExit(10_000);
                }
            }
            catch (InvalidOperationException)
            {
            }
            process.Dispose();
        }
        try
        {
            Directory.Delete(DataDirectory, recursive: true);
        }
        catch (IOException)
        {
        }
        return Task.CompletedTask;
    }

    internal static string FindRepoRoot()
    {
        for (DirectoryInfo? dir = new(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "tests", "s3", "package.json")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException($"tests/s3/package.json not found above {AppContext.BaseDirectory}.");
    }
}
