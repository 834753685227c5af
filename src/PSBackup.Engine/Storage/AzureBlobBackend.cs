using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Text;
using Azure;
using Azure.Core;
using Azure.Core.Pipeline;
using Azure.Identity;
using Azure.Storage;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;

namespace PSBackup.Engine.Storage;

/// <summary>A repository in an Azure Blob Storage container, under a blob name prefix. Small
/// objects go up in one Put Blob; large ones (and non-seekable sources past one block) as staged
/// blocks streamed from the source with at most two pooled block buffers, then one Put Block
/// List: until that commit nothing is visible, so a failed or cancelled put leaves the old blob
/// (or none), and the service discards the uncommitted blocks (after a week, or at the next
/// commit of the key). Reads stream (ranged reads are HTTP ranges); listings page in the
/// service's name order, which is checked. Per-request retries (honouring Retry-After) and
/// timeouts are the SDK's; <see cref="RetryingBackend"/> retries whole operations on top.</summary>
public sealed class AzureBlobBackend : IStorageBackend
{
    private static readonly HashSet<string> TransientCodes = new(StringComparer.Ordinal)
    {
        "ServerBusy", "OperationTimedOut", "InternalError", "IngressOverAccountLimit", "EgressOverAccountLimit",
        "TooManyRequests", "ServiceUnavailable",
    };

    private static readonly CloudService Service = new CloudService("Azure Blob Storage", "BlobNotFound", TransientCodes);

    private static readonly HashSet<string> LeaseCodes = new(StringComparer.Ordinal)
    {
        "LeaseIdMissing", "LeaseIdMismatchWithBlobOperation", "LeaseAlreadyPresent", "LeaseIdMismatchWithLeaseOperation",
        "LeaseNotPresentWithBlobOperation", "LeaseLost", "LeaseIsBreakingAndCannotBeAcquired",
    };

    private readonly BlobContainerClient _container;
    private readonly string _prefix;
    private readonly HttpClient? _httpClient;
    private readonly string? _sas;

    public AzureBlobBackend(AzureBlobBackendOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        Options = options.Validate();
        (AzureAuthKind kind, string? secret) = options.ResolveAuth();
        Auth = kind;
        _sas = kind == AzureAuthKind.Sas ? secret : null;
        var clientOptions = new BlobClientOptions();
        clientOptions.Retry.Mode = RetryMode.Exponential;
        clientOptions.Retry.MaxRetries = options.SdkMaxRetries ?? 3;
        clientOptions.Retry.Delay = options.SdkRetryDelay ?? TimeSpan.FromSeconds(0.8);
        clientOptions.Retry.MaxDelay = TimeSpan.FromSeconds(30);
        clientOptions.Retry.NetworkTimeout = options.Timeout ?? TimeSpan.FromSeconds(100);
        if (options.Handler is not null)
        {
            _httpClient = new HttpClient(options.Handler, disposeHandler: false) { Timeout = System.Threading.Timeout.InfiniteTimeSpan };
            clientOptions.Transport = new HttpClientTransport(_httpClient);
        }
        AzureBlobLocation location = options.Location;
        Uri service = options.Endpoint is not null ? new Uri(options.Endpoint.TrimEnd('/'))
            : location.ServiceUri ?? new Uri($"https://{location.Account}.blob.core.windows.net");
        var containerUri = new Uri($"{service.GetLeftPart(UriPartial.Path).TrimEnd('/')}/{location.Container}");
        _container = kind switch
        {
            AzureAuthKind.ConnectionString => FromConnectionString(secret!, location, clientOptions),
            AzureAuthKind.SharedKey => new BlobContainerClient(containerUri, new StorageSharedKeyCredential(location.Account, secret!), clientOptions),
            AzureAuthKind.Sas => new BlobContainerClient(containerUri, new AzureSasCredential(secret!), clientOptions),
            _ => new BlobContainerClient(RequireHttps(containerUri), options.TokenCredential ?? new DefaultAzureCredential(), clientOptions),
        };
        _prefix = location.Prefix.Length == 0 ? "" : location.Prefix + "/";
        Location = location.ToString();
    }

    public AzureBlobBackendOptions Options { get; }

    /// <summary>How this backend authenticates (never the secret).</summary>
    public AzureAuthKind Auth { get; }

    /// <summary>az://account/container/prefix, or the URL without its SAS.</summary>
    public string Location { get; }

    private static BlobContainerClient FromConnectionString(string connectionString, AzureBlobLocation location, BlobClientOptions clientOptions)
    {
        BlobContainerClient client;
        try
        {
            client = new BlobContainerClient(connectionString, location.Container, clientOptions);
        }
        catch (Exception e) when (e is FormatException or ArgumentException or InvalidOperationException)
        {
            throw new InvalidInputException("InvalidAzureCredentials",
                $"The Azure storage connection string does not parse ({e.Message.Split('\n')[0]}). Copy it again from the storage account's 'Access keys' page.", location.ToString());
        }
        if (!string.Equals(client.AccountName, location.Account, StringComparison.Ordinal))
        {
            throw new InvalidInputException("InvalidAzureCredentials",
                $"The connection string is for the storage account '{client.AccountName}', but the location names '{location.Account}'. Give the connection string of '{location.Account}'.", location.ToString());
        }
        return client;
    }

    private Uri RequireHttps(Uri uri) => uri.Scheme == Uri.UriSchemeHttps ? uri : throw new InvalidInputException("AzureCredentialsMissing",
        $"No Azure Storage credential was given for {Options.Location} and Entra ID tokens are only sent over https. Give -ConnectionString, -SasToken or -StorageCredential " +
        $"(or set {AzureBlobBackendOptions.ConnectionStringVariable}, {AzureBlobBackendOptions.SasTokenVariable} or {AzureBlobBackendOptions.AccountKeyVariable}).", Options.Location.ToString());

    /// <summary>Creates the container when it does not exist (repository init). True when it was
    /// created. A credential that may not create containers (a container SAS) fails with
    /// AzureAccessDenied.</summary>
    public async Task<bool> CreateContainerIfMissingAsync(CancellationToken ct)
    {
        try
        {
            return (await _container.CreateIfNotExistsAsync(PublicAccessType.None, cancellationToken: ct).ConfigureAwait(false))?.Value is not null;
        }
        catch (Exception e)
        {
            throw Map(e, "create the container of", null, ct);
        }
    }

    private BlockBlobClient Blob(string key) => _container.GetBlockBlobClient(_prefix + StorageKey.ValidateObjectKey(key));

    /// <summary>One Put Blob up to the single-upload threshold, staged blocks above it
    /// (<see cref="UploadSource.PutAsync"/>).</summary>
    public Task PutAsync(string key, Stream content, long length, CancellationToken ct)
    {
        BlockBlobClient blob = Blob(key);
        return UploadSource.PutAsync(Location, key, content, length, Options.SingleUploadThreshold, Options.BlockSize,
            (body, _) => PutSingleAsync(key, blob, body, ct),
            first => PutBlocksAsync(key, blob, content, first, length, ct), ct);
    }

    private async Task PutSingleAsync(string key, BlockBlobClient blob, Stream body, CancellationToken ct)
    {
        try
        {
            await blob.UploadAsync(body, new BlobUploadOptions(), ct).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            CloudFailure.ThrowSourceFault(body);
            throw Map(e, "store", key, ct);
        }
    }

    /// <summary>Stages <paramref name="first"/> (a full block) and the rest of the source as
    /// blocks (<see cref="UploadSource.PumpPartsAsync"/>: two buffers, owned), then commits the
    /// block list.</summary>
    private async Task PutBlocksAsync(string key, BlockBlobClient blob, Stream content, byte[] first, long length, CancellationToken ct)
    {
        int blockSize = Options.BlockSize;
        // One id shape per upload: every id of a blob must have the same length.
        string upload = Guid.NewGuid().ToString("N")[..16];
        var ids = new List<string>();
        long total = await UploadSource.PumpPartsAsync(content, first, blockSize, AzureBlobBackendOptions.MaxBlocks,
            (number, buffer, count) =>
            {
                string id = Convert.ToBase64String(Encoding.ASCII.GetBytes($"psb-{upload}-{number:D6}"));
                ids.Add(id);
                return StageAsync(key, blob, id, buffer, count, number, ct);
            },
            () => new StorageIOException($"'{key}' needs more than {AzureBlobBackendOptions.MaxBlocks} blocks of {blockSize} bytes. Raise the block size.", key, Location, isTransient: false),
            ct).ConfigureAwait(false);
        UploadSource.CheckLength(Location, key, total, length);
        ct.ThrowIfCancellationRequested();
        try
        {
            // Not cancellable once sent: the blob then exists whole (the new one) or not at all.
            await blob.CommitBlockListAsync(ids, new CommitBlockListOptions(), CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            throw Map(e, "commit the blocks of", key, ct);
        }
    }

    private async Task StageAsync(string key, BlockBlobClient blob, string id, byte[] buffer, int count, int number, CancellationToken ct)
    {
        using var body = new MemoryStream(buffer, 0, count, writable: false);
        try
        {
            await blob.StageBlockAsync(id, body, new BlockBlobStageBlockOptions(), ct).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            throw Map(e, $"upload block {number} of", key, ct);
        }
    }

    public async Task<Stream> GetAsync(string key, CancellationToken ct)
    {
        BlockBlobClient blob = Blob(key);
        BlobDownloadStreamingResult result;
        try
        {
            result = (await blob.DownloadStreamingAsync(new BlobDownloadOptions(), ct).ConfigureAwait(false)).Value;
        }
        catch (Exception e)
        {
            throw Map(e, "read", key, ct);
        }
        return new RangeStream(result.Content, result.Details.ContentLength, result, strict: true, what: $"The blob '{key}'");
    }

    public async Task<Stream> GetRangeAsync(string key, long offset, long length, CancellationToken ct)
    {
        BlockBlobClient blob = Blob(key);
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        if (length == 0)
        {
            return await CloudFailure.EmptyRangeAsync(this, key, offset, ct).ConfigureAwait(false);
        }
        BlobDownloadStreamingResult result;
        try
        {
            result = (await blob.DownloadStreamingAsync(new BlobDownloadOptions { Range = new HttpRange(offset, length) }, ct).ConfigureAwait(false)).Value;
        }
        catch (RequestFailedException e) when (e.Status == (int)HttpStatusCode.RequestedRangeNotSatisfiable || e.ErrorCode == "InvalidRange")
        {
            throw PastEnd(key, offset, length, e);
        }
        catch (Exception e)
        {
            throw Map(e, "read", key, ct);
        }
        if (result.Details.ContentLength != length)
        {
            result.Dispose();
            throw PastEnd(key, offset, length, null);
        }
        return new RangeStream(result.Content, length, result, strict: true, what: $"The blob '{key}'");
    }

    private StorageIOException PastEnd(string key, long offset, long length, Exception? inner) => CloudFailure.PastEnd(Location, key, offset, length, inner);

    public async Task<StoredObject?> StatAsync(string key, CancellationToken ct)
    {
        BlockBlobClient blob = Blob(key);
        try
        {
            BlobProperties p = (await blob.GetPropertiesAsync(cancellationToken: ct).ConfigureAwait(false)).Value;
            return new StoredObject(key, p.ContentLength, p.LastModified);
        }
        catch (Exception e)
        {
            Exception mapped = Map(e, "stat", key, ct);
            if (mapped is StorageNotFoundException)
            {
                return null;
            }
            throw mapped;
        }
    }

    public async IAsyncEnumerable<StoredObject> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken ct)
    {
        StorageKey.ValidatePrefix(prefix);
        IAsyncEnumerator<Page<BlobItem>> pages = _container
            .GetBlobsAsync(BlobTraits.None, BlobStates.None, _prefix + prefix, ct)
            .AsPages(pageSizeHint: Options.PageSize)
            .GetAsyncEnumerator(ct);
        string? previous = null;
        try
        {
            while (true)
            {
                Page<BlobItem> page;
                try
                {
                    if (!await pages.MoveNextAsync().ConfigureAwait(false))
                    {
                        yield break;
                    }
                    page = pages.Current;
                }
                catch (Exception e)
                {
                    throw Map(e, "list", null, ct);
                }
                foreach (BlobItem item in page.Values)
                {
                    if (!item.Name.StartsWith(_prefix, StringComparison.Ordinal))
                    {
                        continue;
                    }
                    CloudFailure.CheckListOrder(Service, Location, item.Name, previous);
                    previous = item.Name;
                    string key = item.Name[_prefix.Length..];
                    if (!StorageKey.IsValid(key))
                    {
                        continue;
                    }
                    yield return new StoredObject(key, item.Properties.ContentLength ?? 0, item.Properties.LastModified);
                }
            }
        }
        finally
        {
            await pages.DisposeAsync().ConfigureAwait(false);
        }
    }

    public async Task DeleteAsync(string key, CancellationToken ct)
    {
        BlockBlobClient blob = Blob(key);
        try
        {
            await blob.DeleteIfExistsAsync(DeleteSnapshotsOption.IncludeSnapshots, cancellationToken: ct).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            Exception mapped = Map(e, "delete", key, ct);
            if (mapped is not StorageNotFoundException)
            {
                throw mapped;
            }
        }
    }

    public void Dispose() => _httpClient?.Dispose();

    /// <summary>Turns an SDK failure into the contract's errors: not found (a missing container is
    /// its own NotFoundException), access denied and unavailable credentials (PSBackupExceptions
    /// naming the fix), or a <see cref="StorageIOException"/> saying whether retrying can help.
    /// Cancellation by <paramref name="ct"/> passes through.</summary>
    internal Exception Map(Exception e, string action, string? key, CancellationToken ct)
    {
        if (e is OperationCanceledException && ct.IsCancellationRequested)
        {
            return e;
        }
        if (e is AggregateException aggregate && aggregate.InnerExceptions.Count > 0)
        {
            // The SDK's "retry failed after N tries": the last attempt's failure says why.
            return Map(aggregate.InnerExceptions[^1], action, key, ct);
        }
        if (e is AuthenticationFailedException or CredentialUnavailableException)
        {
            return new OperationFailedException("AzureCredentialUnavailable",
                $"No Entra ID token could be had to {CloudFailure.What(action, key, Location)}: {FirstLine(e.Message)} Give -ConnectionString, -SasToken or -StorageCredential, " +
                "or enable the managed identity of this Automation account / VM (and grant it 'Storage Blob Data Contributor' on the container).", Location, e);
        }
        RequestFailedException? r = e as RequestFailedException;
        return CloudFailure.Map(Service, Location, e, action, key, ct,
            r is null ? null : new ServiceAnswer(r.Status, r.ErrorCode ?? "", FirstLine(r.Message)),
            (a, what) =>
            {
                if (a.Code == "ContainerNotFound")
                {
                    return new NotFoundException("AzureContainerNotFound",
                        $"The container '{Options.Location.Container}' does not exist in the storage account '{Options.Location.Account}'. Create it (az storage container create --name {Options.Location.Container}) or check the location.",
                        Location);
                }
                if (a.Status is 401 or 403)
                {
                    string hint = Auth switch
                    {
                        AzureAuthKind.Sas when SasWindowProblem() is { } window => window,
                        AzureAuthKind.Sas when r!.Message.Contains("time frame", StringComparison.OrdinalIgnoreCase) || r.Message.Contains("expired", StringComparison.OrdinalIgnoreCase)
                            => "The SAS token has expired or is not valid yet (its se= and st= times): make a new one.",
                        AzureAuthKind.Sas => "Check the SAS token: it must be for this account and container, unexpired, with read, add, create, write, delete and list permissions.",
                        AzureAuthKind.EntraId => "Grant the identity the 'Storage Blob Data Contributor' role on the container (role assignments take a few minutes to apply).",
                        _ => "Check the account key or connection string (it may have been rotated).",
                    };
                    return new OperationFailedException("AzureAccessDenied",
                        $"Azure Blob Storage refused access ({(a.Code.Length > 0 ? a.Code : a.Status.ToString(System.Globalization.CultureInfo.InvariantCulture))}) when trying to {what}. {hint}",
                        Location, e);
                }
                if (LeaseCodes.Contains(a.Code))
                {
                    return new StorageIOException(
                        $"Cannot {what}: the blob is leased by another client ({a.Code}), so it was not changed. Wait until that client releases it, or break the lease (az storage blob lease break) if its holder is gone.",
                        key, Location, isTransient: false, e, a.Status, a.Code);
                }
                return null;
            });
    }

    /// <summary>When the SAS this backend uses is outside its validity window (se=, st=) by the
    /// local clock: what to tell the operator; null otherwise.</summary>
    private string? SasWindowProblem()
    {
        if (_sas is null)
        {
            return null;
        }
        DateTimeOffset now = DateTimeOffset.UtcNow;
        if (SasTime("se") is { } expiry && expiry <= now)
        {
            return $"The SAS token has expired (se={expiry:u}): make a new one.";
        }
        if (SasTime("st") is { } start && start > now)
        {
            return $"The SAS token is not valid yet (st={start:u}; this machine's clock says {now:u}): wait, or check the clock.";
        }
        return null;

        DateTimeOffset? SasTime(string field)
        {
            foreach (string pair in _sas.Split('&'))
            {
                int eq = pair.IndexOf('=', StringComparison.Ordinal);
                if (eq > 0 && pair[..eq] == field && DateTimeOffset.TryParse(Uri.UnescapeDataString(pair[(eq + 1)..]),
                        System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out DateTimeOffset t))
                {
                    return t;
                }
            }
            return null;
        }
    }

    private static string FirstLine(string message)
    {
        string line = message.Split('\n', 2)[0].Trim();
        return line.EndsWith('.') ? line : line + ".";
    }

}
