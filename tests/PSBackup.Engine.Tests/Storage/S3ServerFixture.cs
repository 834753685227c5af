using System.Net.Sockets;
using System.Text.RegularExpressions;
using Amazon.S3;
using Amazon.S3.Model;
using PSBackup.Engine.Storage;
using PSBackup.Engine.Tests.Support;

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
    private NodeServer? _server;
    private int _buckets;

    [GeneratedRegex(@"S3rver listening on 127\.0\.0\.1:(\d+)")]
    private static partial Regex Listening();

    public string Endpoint { get; private set; } = "";

    /// <summary>The server process (for tests that pause it with SIGSTOP to play a stalled endpoint).</summary>
    public int ProcessId => _server?.ProcessId ?? throw new InvalidOperationException("The S3 server is not running.");

    /// <summary>s3rver's data folder (buckets are folders in it).</summary>
    public string DataDirectory { get; } = Path.Combine(Path.GetTempPath(), "psbackup-tests", "s3rver-" + Guid.NewGuid().ToString("N")[..12]);

    /// <summary>Every line the server printed (one per request: method, path, status).</summary>
    public IReadOnlyCollection<string> Log => _server?.Log ?? [];

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(DataDirectory);
        // s3rver 3.7.1 encrypts listing continuation tokens with a cipher Node 17+ only offers
        // through the legacy OpenSSL provider; without it every paged listing fails.
        _server = await NodeServer.StartAsync("s3rver", Path.Combine("tests", "s3"), Path.Combine("s3rver", "bin", "s3rver.js"),
            ["-d", DataDirectory, "-a", "127.0.0.1", "-p", "0", "--no-vhost-buckets"], Listening(), StartTimeout,
            environment: new Dictionary<string, string> { ["NODE_OPTIONS"] = "--openssl-legacy-provider" }).ConfigureAwait(false);
        Endpoint = $"http://127.0.0.1:{_server.Port}";
        using var timeout = new CancellationTokenSource(StartTimeout);
        await WaitUntilAnsweringAsync(_server.Port, timeout.Token).ConfigureAwait(false);
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
            File.WriteAllLines(logFile, Log);
        }
        _server?.Dispose();
        try
        {
            Directory.Delete(DataDirectory, recursive: true);
        }
        catch (IOException)
        {
        }
        return Task.CompletedTask;
    }

    internal static string FindRepoRoot() => NodeServer.FindRepoRoot(Path.Combine("tests", "s3", "package.json"));
}
