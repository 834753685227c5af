using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using Amazon;
using Amazon.Runtime;
using Amazon.Runtime.CredentialManagement;
using Amazon.Runtime.Credentials;
using Amazon.S3;
using Amazon.S3.Model;

namespace PSBackup.Engine.Storage;

/// <summary>A repository in an S3 bucket (AWS or any S3-compatible store), under a key prefix.
/// Small objects go up in one PUT, large ones as a multipart upload streamed from the source in
/// parts (at most two pooled part buffers), aborted on failure or cancellation. Checksums are
/// calculated only when an operation requires them and chunked uploads are off: several
/// S3-compatible servers store the SDK's aws-chunked framing as object bytes otherwise.</summary>
public sealed class S3Backend : IStorageBackend
{
    private static readonly HashSet<string> AuthErrors = new(StringComparer.Ordinal)
    {
        "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken",
        "TokenRefreshRequired", "AuthorizationHeaderMalformed", "InvalidSecurity", "AccountProblem",
    };

    private static readonly HashSet<string> TransientErrors = new(StringComparer.Ordinal)
    {
        "SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "InternalError", "ServiceUnavailable",
        "RequestLimitExceeded", "TooManyRequestsException", "RequestTimeTooSkewed", "OperationAborted",
    };

    private readonly IAmazonS3 _client;
    private readonly bool _ownsClient;
    private readonly string _keyPrefix;

    /// <summary>Connects with the options' credentials (explicit keys, else the named profile,
    /// else the environment, else AWS_PROFILE or "default" from the shared credentials file).</summary>
    public S3Backend(S3BackendOptions options)
        : this(options, new AmazonS3Client(ResolveCredentials(options), CreateConfig(options)), ownsClient: true)
    {
    }

    /// <summary>Uses an existing client (configured with <see cref="CreateConfig"/> or
    /// equivalent checksum settings); disposes it with the backend when <paramref name="ownsClient"/>.</summary>
    public S3Backend(S3BackendOptions options, IAmazonS3 client, bool ownsClient)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(client);
        Options = options.Validate();
        _client = client;
        _ownsClient = ownsClient;
        _keyPrefix = options.Prefix.Length == 0 ? "" : options.Prefix + "/";
        Location = new S3RepositoryLocation(options.Bucket, options.Prefix).ToString();
    }

    public S3BackendOptions Options { get; }

    /// <summary>s3://bucket/prefix.</summary>
    public string Location { get; }

    /// <summary>The SDK configuration for <paramref name="options"/>: endpoint, path style,
    /// region, and checksums only when required.</summary>
    public static AmazonS3Config CreateConfig(S3BackendOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var config = new AmazonS3Config
        {
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
        };
        string region = string.IsNullOrEmpty(options.Region) ? "us-east-1" : options.Region;
        if (options.Endpoint is not null)
        {
            config.ServiceURL = options.Endpoint;
            config.AuthenticationRegion = region;
            config.ForcePathStyle = options.ForcePathStyle ?? true;
        }
        else
        {
            config.RegionEndpoint = RegionEndpoint.GetBySystemName(region);
            config.ForcePathStyle = options.ForcePathStyle ?? false;
        }
        if (options.Timeout is { } timeout)
        {
            config.Timeout = timeout;
        }
        if (options.SdkMaxErrorRetry is { } retries)
        {
            config.MaxErrorRetry = retries;
        }
        return config;
    }

    /// <summary>Finds credentials like the AWS tools: explicit access/secret key (and session
    /// token); else the explicitly named <see cref="S3BackendOptions.Profile"/>; else
    /// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN; else web identity
    /// (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN: EKS IRSA, CI OIDC); else AWS_PROFILE (or
    /// "default") from the shared files, SSO profiles included; else the SDK's default chain
    /// (container credentials, the EC2 instance role). <paramref name="environment"/> replaces the
    /// process environment in tests; <paramref name="defaultChain"/> the SDK's last resort.</summary>
    public static AWSCredentials ResolveCredentials(S3BackendOptions options, Func<string, string?>? environment = null, Func<AWSCredentials?>? defaultChain = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        environment ??= Environment.GetEnvironmentVariable;
        if (options.AccessKey is not null && options.SecretKey is not null)
        {
            return Make(options.AccessKey, options.SecretKey, options.SessionToken);
        }
        if (options.Profile is null && environment("AWS_ACCESS_KEY_ID") is { Length: > 0 } envKey
            && environment("AWS_SECRET_ACCESS_KEY") is { Length: > 0 } envSecret)
        {
            return Make(envKey, envSecret, environment("AWS_SESSION_TOKEN"));
        }
        if (options.Profile is null && environment("AWS_WEB_IDENTITY_TOKEN_FILE") is { Length: > 0 } tokenFile
            && environment("AWS_ROLE_ARN") is { Length: > 0 } roleArn)
        {
            return new AssumeRoleWithWebIdentityCredentials(tokenFile, roleArn, environment("AWS_ROLE_SESSION_NAME") is { Length: > 0 } session ? session : "psbackup");
        }
        string profile = options.Profile ?? (environment("AWS_PROFILE") is { Length: > 0 } p ? p : "default");
        string? file = options.CredentialsFile ?? (environment("AWS_SHARED_CREDENTIALS_FILE") is { Length: > 0 } f ? f : null);
        var chain = file is null ? new CredentialProfileStoreChain() : new CredentialProfileStoreChain(file);
        if (chain.TryGetAWSCredentials(profile, out AWSCredentials? credentials) && credentials is not null)
        {
            return credentials;
        }
        if (options.Profile is null)
        {
            // Container credentials (ECS, EKS pod identity) and the EC2 instance role.
            AWSCredentials? fromChain;
            try
            {
                fromChain = defaultChain is not null ? defaultChain() : DefaultAWSCredentialsIdentityResolver.GetCredentials();
            }
            catch (AmazonClientException)
            {
                fromChain = null;
            }
            if (fromChain is not null)
            {
                return fromChain;
            }
        }
        throw new InvalidInputException("S3CredentialsMissing",
            $"No S3 credentials found. Give -StorageCredential or an access key and secret key (with -SessionToken for temporary ones), set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, " +
            $"add a profile '{profile}' to the shared credentials file ({file ?? "~/.aws/credentials"}), or run where an instance or container role applies.", profile);

        static AWSCredentials Make(string key, string secret, string? token) =>
            string.IsNullOrEmpty(token) ? new BasicAWSCredentials(key, secret) : new SessionAWSCredentials(key, secret, token);
    }

    /// <summary>One PUT up to the multipart threshold (the SDK reads a seekable source to sign the
    /// payload and again to send it, through a view that starts at the caller's position), a
    /// multipart upload above it (<see cref="UploadSource.PutAsync"/>).</summary>
    public Task PutAsync(string key, Stream content, long length, CancellationToken ct)
    {
        string objectKey = ObjectKey(key);
        return UploadSource.PutAsync(Location, key, content, length, Options.MultipartThreshold, Options.PartSize,
            (body, size) => PutSingleAsync(key, objectKey, body, size, ct),
            first => PutMultipartAsync(key, objectKey, content, first, length, ct), ct);
    }

    private async Task PutSingleAsync(string key, string objectKey, Stream body, long length, CancellationToken ct)
    {
        var request = new PutObjectRequest
        {
            BucketName = Options.Bucket,
            Key = objectKey,
            InputStream = body,
            AutoCloseStream = false,
            AutoResetStreamPosition = true,
            UseChunkEncoding = false,
        };
        request.Headers.ContentLength = length;
        try
        {
            await _client.PutObjectAsync(request, ct).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            CloudFailure.ThrowSourceFault(body);
            throw Map(e, "store", key, ct);
        }
    }

    /// <summary>Uploads <paramref name="first"/> (a full part) and the rest of the source as
    /// parts (<see cref="UploadSource.PumpPartsAsync"/>: two buffers, owned), then completes the
    /// upload; any failure aborts it.</summary>
    private async Task PutMultipartAsync(string key, string objectKey, Stream content, byte[] first, long length, CancellationToken ct)
    {
        int partSize = Options.PartSize;
        string? uploadId = null;
        try
        {
            try
            {
                uploadId = (await _client.InitiateMultipartUploadAsync(
                    new InitiateMultipartUploadRequest { BucketName = Options.Bucket, Key = objectKey }, ct).ConfigureAwait(false)).UploadId;
            }
            catch (Exception e)
            {
                ArrayPool<byte>.Shared.Return(first);
                throw Map(e, "start a multipart upload of", key, ct);
            }
            var parts = new List<PartETag>();
            long total = await UploadSource.PumpPartsAsync(content, first, partSize, 10_000,
                async (number, buffer, count) => parts.Add(await UploadPartAsync(key, objectKey, uploadId, number, buffer, count, ct).ConfigureAwait(false)),
                () => new StorageIOException($"'{key}' needs more than 10000 parts of {partSize} bytes. Raise the part size.", key, Location, isTransient: false),
                ct).ConfigureAwait(false);
            UploadSource.CheckLength(Location, key, total, length);
            ct.ThrowIfCancellationRequested();
            try
            {
                // Not cancellable once sent: the object then either exists whole or not at all.
                await _client.CompleteMultipartUploadAsync(new CompleteMultipartUploadRequest
                {
                    BucketName = Options.Bucket,
                    Key = objectKey,
                    UploadId = uploadId,
                    PartETags = parts,
                }, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                throw Map(e, "complete the multipart upload of", key, ct);
            }
            uploadId = null;
        }
        catch
        {
            if (uploadId is not null)
            {
                await AbortAsync(objectKey, uploadId).ConfigureAwait(false);
            }
            throw;
        }
    }

    private async Task<PartETag> UploadPartAsync(string key, string objectKey, string uploadId, int partNumber, byte[] buffer, int count, CancellationToken ct)
    {
        using var body = new MemoryStream(buffer, 0, count, writable: false);
        try
        {
            UploadPartResponse response = await _client.UploadPartAsync(new UploadPartRequest
            {
                BucketName = Options.Bucket,
                Key = objectKey,
                UploadId = uploadId,
                PartNumber = partNumber,
                PartSize = count,
                InputStream = body,
                UseChunkEncoding = false,
            }, ct).ConfigureAwait(false);
            return new PartETag(partNumber, response.ETag);
        }
        catch (Exception e)
        {
            throw Map(e, $"upload part {partNumber} of", key, ct);
        }
    }

    /// <summary>Best effort: a failed abort must not hide the failure that caused it (the
    /// bucket's lifecycle rule for incomplete uploads is the backstop).</summary>
    private async Task AbortAsync(string objectKey, string uploadId)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await _client.AbortMultipartUploadAsync(new AbortMultipartUploadRequest
            {
                BucketName = Options.Bucket,
                Key = objectKey,
                UploadId = uploadId,
            }, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // ignored: see summary
        }
    }

    public async Task<Stream> GetAsync(string key, CancellationToken ct)
    {
        string objectKey = ObjectKey(key);
        GetObjectResponse response;
        try
        {
            response = await _client.GetObjectAsync(new GetObjectRequest { BucketName = Options.Bucket, Key = objectKey }, ct).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            throw Map(e, "read", key, ct);
        }
        return new RangeStream(response.ResponseStream, response.ContentLength, response, strict: true, what: $"The S3 object '{key}'");
    }

    public async Task<Stream> GetRangeAsync(string key, long offset, long length, CancellationToken ct)
    {
        string objectKey = ObjectKey(key);
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        if (length == 0)
        {
            return await CloudFailure.EmptyRangeAsync(this, key, offset, ct).ConfigureAwait(false);
        }
        GetObjectResponse response;
        try
        {
            response = await _client.GetObjectAsync(new GetObjectRequest
            {
                BucketName = Options.Bucket,
                Key = objectKey,
                ByteRange = new ByteRange(offset, offset + length - 1), // explicit range only
            }, ct).ConfigureAwait(false);
        }
        catch (AmazonServiceException e) when (e.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable || e.ErrorCode == "InvalidRange")
        {
            throw PastEnd(key, offset, length, e);
        }
        catch (Exception e)
        {
            throw Map(e, "read", key, ct);
        }
        bool partial = response.HttpStatusCode == HttpStatusCode.PartialContent || (offset == 0 && response.HttpStatusCode == HttpStatusCode.OK);
        if (!partial || response.ContentLength != length)
        {
            response.Dispose();
            throw PastEnd(key, offset, length, null);
        }
        return new RangeStream(response.ResponseStream, length, response, strict: true, what: $"The S3 object '{key}'");
    }

    private StorageIOException PastEnd(string key, long offset, long length, Exception? inner) => CloudFailure.PastEnd(Location, key, offset, length, inner);

    public async Task<StoredObject?> StatAsync(string key, CancellationToken ct)
    {
        string objectKey = ObjectKey(key);
        try
        {
            GetObjectMetadataResponse response = await _client.GetObjectMetadataAsync(
                new GetObjectMetadataRequest { BucketName = Options.Bucket, Key = objectKey }, ct).ConfigureAwait(false);
            return new StoredObject(key, response.ContentLength, ToOffset(response.LastModified));
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
        string? token = null;
        string? previous = null;
        do
        {
            ListObjectsV2Response page;
            try
            {
                page = await _client.ListObjectsV2Async(new ListObjectsV2Request
                {
                    BucketName = Options.Bucket,
                    Prefix = _keyPrefix + prefix,
                    MaxKeys = Options.MaxKeys,
                    ContinuationToken = token,
                }, ct).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                throw Map(e, "list", null, ct);
            }
            foreach (S3Object item in page.S3Objects ?? [])
            {
                if (item.Key is null || !item.Key.StartsWith(_keyPrefix, StringComparison.Ordinal))
                {
                    continue;
                }
                // s3rver 3.7.1 walks its folders and misplaces keys with characters below '/', such
                // as "a-b" against "a/b": refused, not trusted.
                CloudFailure.CheckListOrder(Service, Location, item.Key, previous);
                previous = item.Key;
                string key = item.Key[_keyPrefix.Length..];
                if (!StorageKey.IsValid(key))
                {
                    continue; // folder markers ("dir/") and names this backend could never address
                }
                yield return new StoredObject(key, item.Size ?? 0, ToOffset(item.LastModified));
            }
            token = page.IsTruncated == true ? page.NextContinuationToken : null;
        }
        while (!string.IsNullOrEmpty(token));
    }

    public async Task DeleteAsync(string key, CancellationToken ct)
    {
        string objectKey = ObjectKey(key);
        try
        {
            await _client.DeleteObjectAsync(new DeleteObjectRequest { BucketName = Options.Bucket, Key = objectKey }, ct).ConfigureAwait(false);
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

    public void Dispose()
    {
        if (_ownsClient)
        {
            _client.Dispose();
        }
    }

    private string ObjectKey(string key) => _keyPrefix + StorageKey.ValidateObjectKey(key);

    private static DateTimeOffset? ToOffset(DateTime? value) =>
        value is { } v ? new DateTimeOffset(v.Kind == DateTimeKind.Unspecified ? DateTime.SpecifyKind(v, DateTimeKind.Utc) : v.ToUniversalTime()) : null;

    /// <summary>Turns an SDK failure into the contract's errors: not found, access denied (a
    /// PSBackupException naming the fix), or a <see cref="StorageIOException"/> with the key
    /// and whether retrying can help. Cancellation by <paramref name="ct"/> passes through.</summary>
    private static readonly CloudService Service = new CloudService("S3", "NoSuchKey", TransientErrors);

    internal Exception Map(Exception e, string action, string? key, CancellationToken ct)
    {
        AmazonServiceException? service = e as AmazonServiceException;
        Exception mapped = CloudFailure.Map(Service, Location, e, action, key, ct,
            service is null ? null : new ServiceAnswer((int)service.StatusCode, service.ErrorCode ?? "", service.Message),
            (a, what) =>
            {
                if (a.Code == "NoSuchBucket")
                {
                    string where = Options.Endpoint is null ? "" : $" at {Options.Endpoint}";
                    return new NotFoundException("S3BucketNotFound",
                        $"The S3 bucket '{Options.Bucket}' does not exist{where}. Create it or check the location.", Location);
                }
                if (a.Status is 401 or 403 || AuthErrors.Contains(a.Code))
                {
                    return new OperationFailedException("S3AccessDenied",
                        $"S3 refused access ({(a.Code.Length > 0 ? a.Code : a.Status.ToString(System.Globalization.CultureInfo.InvariantCulture))}) when trying to {what}. " +
                        "Check the S3 credentials (access key, secret key, session token or profile) and the bucket's permissions.",
                        Location, e);
                }
                return null;
            });
        // Any other failure inside the SDK (a bad response, a signing problem) is not worth retrying.
        return ReferenceEquals(mapped, e) && e is AmazonClientException
            ? new StorageIOException($"Cannot {CloudFailure.What(action, key, Location)}: {e.Message}", key, Location, isTransient: false, e)
            : mapped;
    }

}
