using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using PSBackup.Engine.Storage;

namespace PSBackup.Engine.Tests.Storage;

/// <summary>Azure-only behaviour against Azurite: the failures an operator meets (missing
/// container, expired SAS, wrong key, throttling, a leased blob) give clear errors and lose
/// nothing; stored bytes are exactly the payload.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class AzureBlobBackendTests(AzuriteFixture azurite)
{
    private static readonly byte[] Old = TestData.Bytes(3000, 41);

    private async Task<(string Container, BlobContainerClient Raw)> ContainerWithOldObjectAsync(string hint)
    {
        string container = await azurite.CreateContainerAsync(hint);
        BlobContainerClient raw = azurite.CreateClient().GetBlobContainerClient(container);
        await raw.GetBlobClient("p/k").UploadAsync(new BinaryData(Old));
        return (container, raw);
    }

    private static async Task<byte[]> RawAsync(BlobContainerClient raw, string name) =>
        (await raw.GetBlobClient(name).DownloadContentAsync()).Value.Content.ToArray();

    [Fact]
    public async Task A_missing_container_is_NotFound_naming_it_on_every_operation_and_creates_nothing()
    {
        string container = azurite.NewContainerName("missing");
        using var backend = new AzureBlobBackend(azurite.OptionsFor(container, "p"));

        var put = await Assert.ThrowsAsync<NotFoundException>(() => backend.PutAsync("k", new MemoryStream([1]), 1, CancellationToken.None));
        var get = await Assert.ThrowsAsync<NotFoundException>(() => backend.GetAsync("k", CancellationToken.None));
        var list = await Assert.ThrowsAsync<NotFoundException>(async () => { await foreach (StoredObject _ in backend.ListAsync("", CancellationToken.None)) { } });

        foreach (NotFoundException e in new[] { put, get, list })
        {
            Assert.Equal("AzureContainerNotFound", e.ErrorId);
            Assert.Contains($"'{container}'", e.Message);
            Assert.Contains("Create it", e.Message);
            Assert.False(StorageRetryPolicy.IsTransient(e, CancellationToken.None));
        }
        Assert.False((await azurite.CreateClient().GetBlobContainerClient(container).ExistsAsync()).Value);
    }

    [Fact]
    public async Task An_expired_SAS_is_a_clear_access_error_not_retried_and_writes_nothing()
    {
        (string container, BlobContainerClient raw) = await ContainerWithOldObjectAsync("expired");
        string sas = azurite.ContainerSas(container, DateTimeOffset.UtcNow.AddHours(-2), DateTimeOffset.UtcNow.AddHours(-1));
        using var backend = new AzureBlobBackend(AzureBlobBackendOptions.FromLocation(azurite.LocationOf(container, "p")) with { SasToken = sas });
        Assert.Equal(AzureAuthKind.Sas, backend.Auth);

        var e = await Assert.ThrowsAsync<OperationFailedException>(() => backend.PutAsync("k", new MemoryStream([1, 2]), 2, CancellationToken.None));

        Assert.Equal("AzureAccessDenied", e.ErrorId);
        Assert.Contains("SAS token has expired", e.Message);
        Assert.DoesNotContain(sas, e.ToString());
        Assert.False(StorageRetryPolicy.IsTransient(e, CancellationToken.None));
        Assert.Equal(Old, await RawAsync(raw, "p/k"));
    }

    [Fact]
    public async Task A_valid_SAS_in_the_location_URL_works_and_is_never_shown()
    {
        string container = await azurite.CreateContainerAsync("sasurl");
        string sas = azurite.ContainerSas(container, DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddHours(1));
        using var backend = new AzureBlobBackend(AzureBlobBackendOptions.FromLocation(azurite.LocationOf(container, "p") + "?" + sas));

        await backend.PutAsync("k", new MemoryStream([7, 8, 9]), 3, CancellationToken.None);

        Assert.Equal(AzureAuthKind.Sas, backend.Auth);
        Assert.Equal([7, 8, 9], await TestData.ReadAllAsync(await backend.GetAsync("k", CancellationToken.None)));
        Assert.DoesNotContain("sig=", backend.Location);
        Assert.Equal(azurite.LocationOf(container, "p"), backend.Location);
    }

    [Fact]
    public async Task A_wrong_account_key_is_a_clear_access_error()
    {
        (string container, BlobContainerClient raw) = await ContainerWithOldObjectAsync("wrongkey");
        using var backend = new AzureBlobBackend(azurite.OptionsFor(container, "p") with { AccountKey = Convert.ToBase64String(new byte[64]) });

        var e = await Assert.ThrowsAsync<OperationFailedException>(() => backend.PutAsync("k", new MemoryStream([1]), 1, CancellationToken.None));

        Assert.Equal("AzureAccessDenied", e.ErrorId);
        Assert.Contains("account key", e.Message);
        Assert.Equal(Old, await RawAsync(raw, "p/k"));
    }

    [Fact]
    public async Task Throttling_replies_are_retried_by_the_SDK_and_the_object_lands_whole()
    {
        var http = new FaultingHandler()
            .Answer(2, 503, "ServerBusy", r => r.Method == HttpMethod.Put)
            .Answer(1, 429, "TooManyRequests", r => r.Method == HttpMethod.Get);
        string container = await azurite.CreateContainerAsync("throttle");
        using var backend = new AzureBlobBackend(azurite.OptionsFor(container, "p") with { Handler = http, BlockSize = 1 << 20, SingleUploadThreshold = 1 << 20 });
        byte[] data = TestData.Bytes((3 << 20) + 5, 3);

        await backend.PutAsync("big", ScriptedStream.Over(data, seekable: false), -1, CancellationToken.None);

        Assert.Equal(TestData.Sha256(data), TestData.Sha256(await TestData.ReadAllAsync(await backend.GetAsync("big", CancellationToken.None))));
        Assert.Equal(TestData.Sha256(data), TestData.Sha256(await RawAsync(azurite.CreateClient().GetBlobContainerClient(container), "p/big")));
    }

    [Fact]
    public async Task Throttling_that_outlasts_every_retry_is_a_transient_error_and_the_old_object_stays()
    {
        (string container, BlobContainerClient raw) = await ContainerWithOldObjectAsync("busy");
        var http = new FaultingHandler().Answer(1000, 503, "ServerBusy", r => r.Method == HttpMethod.Put);
        using var backend = new AzureBlobBackend(azurite.OptionsFor(container, "p") with { Handler = http, SdkMaxRetries = 2 });
        var waits = new List<TimeSpan>();
        using var retrying = new RetryingBackend(backend, new StorageRetryPolicy { MaxAttempts = 3, Delay = (w, _) => { waits.Add(w); return Task.CompletedTask; } });
        byte[] data = TestData.Bytes(5000, 9);

        var e = await Assert.ThrowsAsync<StorageIOException>(() => retrying.PutAsync("k", new MemoryStream(data), data.Length, CancellationToken.None));

        Assert.True(e.IsTransient);
        Assert.Equal(503, e.StatusCode);
        Assert.Equal("ServerBusy", e.ErrorCode);
        Assert.Contains("'k'", e.Message);
        Assert.Equal(2, waits.Count); // three whole attempts, each with the SDK's own retries under it
        Assert.Equal(9, http.Requests);
        Assert.Equal(Old, await RawAsync(raw, "p/k"));
    }

    [Fact]
    public async Task A_throttled_container_creation_is_retried_like_a_put_and_the_container_is_made_once()
    {
        // Init and sync create the container outside the storage contract: it gets the same retries.
        string container = azurite.NewContainerName("busyinit");
        bool IsCreate(HttpRequestMessage r) => r.Method == HttpMethod.Put && r.RequestUri!.Query.Contains("restype=container", StringComparison.Ordinal);
        var http = new FaultingHandler().Answer(4, 503, "ServerBusy", IsCreate);
        using var backend = new AzureBlobBackend(azurite.OptionsFor(container, "p") with { Handler = http, SdkMaxRetries = 1 });
        var waits = new List<TimeSpan>();
        using var retrying = new RetryingBackend(backend, new StorageRetryPolicy { MaxAttempts = 3, Delay = (w, _) => { waits.Add(w); return Task.CompletedTask; } });

        Assert.True(await retrying.RunWithRetriesAsync(backend.CreateContainerIfMissingAsync, "create the container", CancellationToken.None));

        Assert.Equal(2, waits.Count); // two whole attempts (two SDK tries each) were throttled, the third made it
        Assert.True((await azurite.CreateClient().GetBlobContainerClient(container).ExistsAsync()).Value);
        Assert.False(await retrying.RunWithRetriesAsync(backend.CreateContainerIfMissingAsync, "create the container", CancellationToken.None));

        // Throttled for good: a clear transient error naming the step, and no container.
        string other = azurite.NewContainerName("busyinit");
        var always = new FaultingHandler().Answer(1000, 503, "ServerBusy", IsCreate);
        using var busy = new AzureBlobBackend(azurite.OptionsFor(other, "p") with { Handler = always, SdkMaxRetries = 0 });
        using var busyRetrying = new RetryingBackend(busy, new StorageRetryPolicy { MaxAttempts = 3, Delay = (_, _) => Task.CompletedTask });
        var e = await Assert.ThrowsAsync<StorageIOException>(() => busyRetrying.RunWithRetriesAsync(busy.CreateContainerIfMissingAsync, "create the container", CancellationToken.None));
        Assert.True(e.IsTransient);
        Assert.Contains("ServerBusy", e.Message);
        Assert.Equal(3, always.Requests);
        Assert.False((await azurite.CreateClient().GetBlobContainerClient(other).ExistsAsync()).Value);
    }

    [Fact]
    public async Task A_blob_leased_by_another_client_is_a_clear_conflict_and_keeps_its_content()
    {
        (string container, BlobContainerClient raw) = await ContainerWithOldObjectAsync("leased");
        BlobLeaseClient lease = raw.GetBlobClient("p/k").GetBlobLeaseClient();
        await lease.AcquireAsync(TimeSpan.FromSeconds(60));
        using var backend = new AzureBlobBackend(azurite.OptionsFor(container, "p") with { BlockSize = 1 << 20, SingleUploadThreshold = 1 << 20 });
        try
        {
            byte[] large = TestData.Bytes((2 << 20) + 1, 5);
            var small = await Assert.ThrowsAsync<StorageIOException>(() => backend.PutAsync("k", new MemoryStream([1]), 1, CancellationToken.None));
            var blocks = await Assert.ThrowsAsync<StorageIOException>(() => backend.PutAsync("k", ScriptedStream.Over(large, seekable: false), -1, CancellationToken.None));
            var delete = await Assert.ThrowsAsync<StorageIOException>(() => backend.DeleteAsync("k", CancellationToken.None));

            foreach (StorageIOException e in new[] { small, blocks, delete })
            {
                Assert.Contains("leased by another client", e.Message);
                Assert.False(e.IsTransient);
            }
            Assert.Equal(Old, await RawAsync(raw, "p/k"));
            Assert.Equal(Old, await TestData.ReadAllAsync(await backend.GetAsync("k", CancellationToken.None)));
        }
        finally
        {
            await lease.ReleaseAsync();
        }
    }

    [Fact]
    public async Task Stored_bytes_are_the_payload_and_large_objects_are_committed_blocks()
    {
        string container = await azurite.CreateContainerAsync("raw");
        using var backend = new AzureBlobBackend(azurite.OptionsFor(container, "hosts/db1") with { BlockSize = 1 << 20, SingleUploadThreshold = 1 << 20 });
        byte[] small = TestData.Bytes(70_000, 1);
        byte[] large = TestData.Bytes((3 << 20) + 1000, 2);
        await backend.PutAsync("small", new MemoryStream(small), small.Length, CancellationToken.None);
        await backend.PutAsync("large", ScriptedStream.Over(large, seekable: false), -1, CancellationToken.None);

        BlobContainerClient raw = azurite.CreateClient().GetBlobContainerClient(container);
        Assert.Equal(TestData.Sha256(small), TestData.Sha256(await RawAsync(raw, "hosts/db1/small")));
        Assert.Equal(TestData.Sha256(large), TestData.Sha256(await RawAsync(raw, "hosts/db1/large")));
        BlockList blocks = (await raw.GetBlockBlobClient("hosts/db1/large").GetBlockListAsync(BlockListTypes.Committed)).Value;
        Assert.Equal(4, blocks.CommittedBlocks.Count());
        Assert.Empty(blocks.UncommittedBlocks ?? []);
    }

    [Fact]
    public async Task Connection_string_auth_must_name_the_locations_account()
    {
        string container = await azurite.CreateContainerAsync("cs");
        using var backend = new AzureBlobBackend(AzureBlobBackendOptions.FromLocation($"az://{AzuriteFixture.Account}/{container}/p") with { ConnectionString = azurite.ConnectionString });
        await backend.PutAsync("k", new MemoryStream([4]), 1, CancellationToken.None);
        Assert.Equal(AzureAuthKind.ConnectionString, backend.Auth);
        Assert.Equal([4], await TestData.ReadAllAsync(await backend.GetAsync("k", CancellationToken.None)));

        var e = Assert.Throws<InvalidInputException>(() => new AzureBlobBackend(AzureBlobBackendOptions.FromLocation($"az://otheraccount/{container}") with { ConnectionString = azurite.ConnectionString }));
        Assert.Equal("InvalidAzureCredentials", e.ErrorId);
        Assert.Contains("'otheraccount'", e.Message);
    }
}

/// <summary>Parsing Azure locations and choosing the credential (no server).</summary>
public sealed class AzureBlobOptionsTests
{
    [Theory]
    [InlineData("az://acct/backups", "acct", "backups", "", null)]
    [InlineData("az://acct/backups/hosts/db1/", "acct", "backups", "hosts/db1", null)]
    [InlineData("AZ://acct/backups/x", "acct", "backups", "x", null)]
    [InlineData("https://acct.blob.core.windows.net/backups/hosts/db1", "acct", "backups", "hosts/db1", "https://acct.blob.core.windows.net/")]
    [InlineData("https://acct.blob.core.chinacloudapi.cn/backups", "acct", "backups", "", "https://acct.blob.core.chinacloudapi.cn/")]
    [InlineData("http://127.0.0.1:10000/devstoreaccount1/backups/p", "devstoreaccount1", "backups", "p", "http://127.0.0.1:10000/devstoreaccount1")]
    [InlineData("http://localhost:10000/devstoreaccount1/backups", "devstoreaccount1", "backups", "", "http://localhost:10000/devstoreaccount1")]
    public void Parses_locations(string location, string account, string container, string prefix, string? service)
    {
        AzureBlobLocation parsed = AzureBlobLocation.Parse(location);
        Assert.Equal((account, container, prefix), (parsed.Account, parsed.Container, parsed.Prefix));
        Assert.Equal(service, parsed.ServiceUri?.ToString());
        Assert.Null(parsed.Sas);
    }

    [Fact]
    public void A_SAS_in_the_URL_is_taken_and_never_shown()
    {
        AzureBlobLocation parsed = AzureBlobLocation.Parse("https://acct.blob.core.windows.net/backups/p?sv=2024-11-04&sig=SECRET%3D");
        Assert.Equal("sv=2024-11-04&sig=SECRET%3D", parsed.Sas);
        Assert.Equal("https://acct.blob.core.windows.net/backups/p", parsed.ToString());
        Assert.DoesNotContain("SECRET", AzureBlobLocation.Redact("https://acct.blob.core.windows.net/backups/p?sig=SECRET"));
    }

    [Theory]
    [InlineData("az://", "not a valid storage account name")]
    [InlineData("az://acct", "has no container")]
    [InlineData("az://Acct/backups", "not a valid storage account name")]
    [InlineData("az://a/backups", "not a valid storage account name")]
    [InlineData("az://acct/Backups", "not a valid container name")]
    [InlineData("az://acct/ab", "not a valid container name")]
    [InlineData("az://acct/a--b", "not a valid container name")]
    [InlineData("az://acct/backups/../x", "'..'")]
    [InlineData("az://acct/backups/a//b", "empty segment")]
    [InlineData("az://acct/backups?sig=x", "has a query")]
    [InlineData("https://user:pw@acct.blob.core.windows.net/backups", "user name")]
    [InlineData("az://acct/back ups", "a space")]
    public void Rejects_bad_locations_with_a_clear_message(string location, string expected)
    {
        var e = Assert.Throws<InvalidInputException>(() => AzureBlobLocation.Parse(location));
        Assert.Equal("InvalidAzureLocation", e.ErrorId);
        Assert.Contains(expected, e.Message);
        Assert.Contains("az://account/container/prefix", e.Message);
        Assert.DoesNotContain("pw@", e.Message);
    }

    [Fact]
    public void Credentials_come_from_parameters_then_the_URL_then_the_environment_then_Entra_ID()
    {
        AzureBlobBackendOptions o = AzureBlobBackendOptions.FromLocation("az://acct/backups");
        var env = new Dictionary<string, string>
        {
            ["AZURE_STORAGE_CONNECTION_STRING"] = "cs-env",
            ["AZURE_STORAGE_SAS_TOKEN"] = "?sas-env",
            ["AZURE_STORAGE_KEY"] = "key-env",
        };
        Assert.Equal((AzureAuthKind.SharedKey, "k"), (o with { AccountKey = "k" }).ResolveAuth(env.GetValueOrDefault));
        Assert.Equal((AzureAuthKind.Sas, "sv=1"), (o with { SasToken = "?sv=1" }).ResolveAuth(env.GetValueOrDefault));
        Assert.Equal((AzureAuthKind.ConnectionString, "cs"), (o with { ConnectionString = "cs" }).ResolveAuth(env.GetValueOrDefault));
        Assert.Equal((AzureAuthKind.Sas, "sig=u"), AzureBlobBackendOptions.FromLocation("https://acct.blob.core.windows.net/backups?sig=u").ResolveAuth(env.GetValueOrDefault));
        Assert.Equal((AzureAuthKind.ConnectionString, "cs-env"), o.ResolveAuth(env.GetValueOrDefault));
        env.Remove("AZURE_STORAGE_CONNECTION_STRING");
        Assert.Equal((AzureAuthKind.Sas, "sas-env"), o.ResolveAuth(env.GetValueOrDefault));
        env.Remove("AZURE_STORAGE_SAS_TOKEN");
        Assert.Equal((AzureAuthKind.SharedKey, "key-env"), o.ResolveAuth(env.GetValueOrDefault));
        env["AZURE_STORAGE_ACCOUNT"] = "otheraccount";
        Assert.Equal((AzureAuthKind.EntraId, null), o.ResolveAuth(env.GetValueOrDefault));
        Assert.Equal((AzureAuthKind.EntraId, null), o.ResolveAuth(_ => null));
        var both = Assert.Throws<InvalidInputException>(() => (o with { AccountKey = "k", SasToken = "s" }).ResolveAuth(_ => null));
        Assert.Equal("AmbiguousAzureCredentials", both.ErrorId);
    }

    [Fact]
    public void Entra_ID_over_http_is_refused_before_any_request()
    {
        var e = Assert.Throws<InvalidInputException>(() => new AzureBlobBackend(AzureBlobBackendOptions.FromLocation("http://127.0.0.1:1/devstoreaccount1/backups")));
        Assert.Equal("AzureCredentialsMissing", e.ErrorId);
        Assert.Contains("-SasToken", e.Message);
    }

    [Fact]
    public void Rejects_bad_options()
    {
        AzureBlobBackendOptions ok = AzureBlobBackendOptions.FromLocation("az://acct/backups");
        Assert.Same(ok, ok.Validate());
        Assert.Throws<InvalidInputException>(() => (ok with { BlockSize = 1000 }).Validate());
        Assert.Throws<InvalidInputException>(() => (ok with { SingleUploadThreshold = 1 << 20, BlockSize = 2 << 20 }).Validate());
        Assert.Throws<InvalidInputException>(() => (ok with { PageSize = 0 }).Validate());
        Assert.Throws<InvalidInputException>(() => (ok with { Endpoint = "ftp://x" }).Validate());
        Assert.Throws<InvalidInputException>(() => (ok with { AccountName = "other", AccountKey = "k" }).Validate());
    }
}
