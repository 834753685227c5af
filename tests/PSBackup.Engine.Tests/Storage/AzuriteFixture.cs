using System.Collections.Concurrent;
using System.Text.RegularExpressions;
using Azure.Storage;
using Azure.Storage.Blobs;
using Azure.Storage.Sas;
using PSBackup.Engine.Storage;
using PSBackup.Engine.Tests.Support;

namespace PSBackup.Engine.Tests.Storage;

/// <summary>Test classes that talk to Azurite share one process.</summary>
[CollectionDefinition(Name)]
public sealed class AzuriteCollection : ICollectionFixture<AzuriteFixture>
{
    public const string Name = "Azurite";
}

/// <summary>Azurite (Azure Storage's emulator, from tests/azure) on 127.0.0.1 with a free port and
/// in-memory persistence, started once per test collection and killed (whole process tree) on
/// dispose. <see cref="CreateContainerAsync"/> makes a fresh container; <see cref="OptionsFor"/>
/// and <see cref="CreateBackendAsync"/> give backends on it, authenticated with the emulator's
/// well-known account key.</summary>
public sealed partial class AzuriteFixture : IAsyncLifetime
{
    /// <summary>Azurite's built-in account and its published key.</summary>
    public const string Account = "devstoreaccount1";
    public const string AccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    // Azurite loads many modules before it listens; two at once on a loaded 2-core machine took over a minute.
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(180);
    private NodeServer? _server;
    private int _containers;

    [GeneratedRegex(@"listens on http://127\.0\.0\.1:(\d+)")]
    private static partial Regex Listening();

    /// <summary>http://127.0.0.1:PORT/devstoreaccount1: the account's blob endpoint.</summary>
    public string BlobEndpoint { get; private set; } = "";

    public string ConnectionString =>
        $"DefaultEndpointsProtocol=http;AccountName={Account};AccountKey={AccountKey};BlobEndpoint={BlobEndpoint};";

    public IReadOnlyCollection<string> Log => _server?.Log ?? [];

    public async Task InitializeAsync()
    {
        string workspace = Path.Combine(Path.GetTempPath(), "psbackup-tests", "azurite-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(workspace);
        _server = await NodeServer.StartAsync("Azurite", Path.Combine("tests", "azure"), Path.Combine("azurite", "dist", "src", "blob", "main.js"),
            ["--blobHost", "127.0.0.1", "--blobPort", "0", "--inMemoryPersistence", "--skipApiVersionCheck", "--loose"], Listening(), StartTimeout,
            workingDirectory: workspace).ConfigureAwait(false);
        BlobEndpoint = $"http://127.0.0.1:{_server.Port}/{Account}";
    }

    /// <summary>A raw SDK client for the emulator's account.</summary>
    public BlobServiceClient CreateClient() => new(ConnectionString);

    /// <summary>Creates a new, empty container and returns its name.</summary>
    public async Task<string> CreateContainerAsync(string hint = "test")
    {
        string name = NewContainerName(hint);
        await CreateClient().GetBlobContainerClient(name).CreateAsync().ConfigureAwait(false);
        return name;
    }

    /// <summary>A container name no test has used (the container is not created).</summary>
    public string NewContainerName(string hint = "test")
    {
        string safe = new string(hint.ToLowerInvariant().Where(char.IsAsciiLetterOrDigit).ToArray());
        safe = safe.Length == 0 ? "test" : safe[..Math.Min(safe.Length, 30)];
        return $"{safe}-{Interlocked.Increment(ref _containers)}-{Guid.NewGuid().ToString("N")[..8]}";
    }

    /// <summary>The path-style location of <paramref name="container"/>/<paramref name="prefix"/> on the emulator.</summary>
    public string LocationOf(string container, string prefix = "") =>
        prefix.Length == 0 ? $"{BlobEndpoint}/{container}" : $"{BlobEndpoint}/{container}/{prefix}";

    /// <summary>Backend options for <paramref name="container"/> with the account key, quick SDK retries.</summary>
    public AzureBlobBackendOptions OptionsFor(string container, string prefix = "") =>
        AzureBlobBackendOptions.FromLocation(LocationOf(container, prefix)) with
        {
            AccountKey = AccountKey,
            SdkRetryDelay = TimeSpan.FromMilliseconds(10),
        };

    /// <summary>A backend on a fresh container; <paramref name="configure"/> adjusts the options first.</summary>
    public async Task<AzureBlobBackend> CreateBackendAsync(string prefix = "", Func<AzureBlobBackendOptions, AzureBlobBackendOptions>? configure = null, string hint = "test")
    {
        string container = await CreateContainerAsync(hint).ConfigureAwait(false);
        AzureBlobBackendOptions options = OptionsFor(container, prefix);
        return new AzureBlobBackend(configure is null ? options : configure(options));
    }

    /// <summary>A container SAS signed with the account key, valid from <paramref name="start"/> to <paramref name="expires"/>.</summary>
    public string ContainerSas(string container, DateTimeOffset start, DateTimeOffset expires)
    {
        var builder = new BlobSasBuilder(BlobContainerSasPermissions.All, expires) { BlobContainerName = container, Resource = "c", StartsOn = start };
        return builder.ToSasQueryParameters(new StorageSharedKeyCredential(Account, AccountKey)).ToString();
    }

    public Task DisposeAsync()
    {
        _server?.Dispose();
        return Task.CompletedTask;
    }
}

/// <summary>An HTTP layer under the SDK's pipeline for tests: counts requests and answers chosen
/// ones itself (throttling, server errors) or drops them, before they reach the server.</summary>
public sealed class FaultingHandler() : DelegatingHandler(new SocketsHttpHandler())
{
    private readonly ConcurrentQueue<Func<HttpRequestMessage, HttpResponseMessage?>> _rules = new();
    private int _requests;

    /// <summary>Requests sent so far (answered by a rule or by the server).</summary>
    public int Requests => Volatile.Read(ref _requests);

    /// <summary>The next <paramref name="count"/> requests that <paramref name="match"/> accepts are
    /// answered with <paramref name="status"/> and the storage error <paramref name="errorCode"/>.</summary>
    public FaultingHandler Answer(int count, int status, string errorCode, Func<HttpRequestMessage, bool>? match = null)
    {
        int left = count;
        _rules.Enqueue(request =>
        {
            if ((match is null || match(request)) && Interlocked.Decrement(ref left) >= 0)
            {
                var response = new HttpResponseMessage((System.Net.HttpStatusCode)status)
                {
                    Content = new StringContent($"<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{errorCode}</Code><Message>{errorCode} (injected by the test)</Message></Error>",
                        System.Text.Encoding.UTF8, "application/xml"),
                    RequestMessage = request,
                };
                response.Headers.Add("x-ms-error-code", errorCode);
                if (status == 503 || status == 429)
                {
                    response.Headers.Add("Retry-After", "0");
                }
                return response;
            }
            return null;
        });
        return this;
    }

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _requests);
        foreach (Func<HttpRequestMessage, HttpResponseMessage?> rule in _rules)
        {
            if (rule(request) is { } answer)
            {
                if (request.Content is not null)
                {
                    await request.Content.CopyToAsync(Stream.Null, cancellationToken).ConfigureAwait(false); // the body was sent
                }
                return answer;
            }
        }
        return await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
    }
}
