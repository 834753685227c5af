using System.Net;
using System.Text.RegularExpressions;

namespace PSBackup.Engine.Storage;

/// <summary>Where and how an <see cref="S3Backend"/> stores: any S3-compatible service.</summary>
public sealed record S3BackendOptions
{
    public const long DefaultMultipartThreshold = 64L << 20;
    public const int DefaultPartSize = 16 << 20;
    /// <summary>S3's smallest allowed part (all but the last).</summary>
    public const int MinPartSize = 5 << 20;

    /// <summary>The bucket (validated by the S3 naming rules).</summary>
    public required string Bucket { get; init; }

    /// <summary>Key prefix inside the bucket ('' for the bucket root), without a trailing '/'.
    /// Keys are stored as <c>{Prefix}/{key}</c>.</summary>
    public string Prefix { get; init; } = "";

    /// <summary>Service URL of an S3-compatible store (e.g. http://127.0.0.1:9000); null for AWS.</summary>
    public string? Endpoint { get; init; }

    /// <summary>Signing region; defaults to us-east-1 (which S3-compatible stores accept).</summary>
    public string? Region { get; init; }

    /// <summary>Path-style addressing (http://host/bucket/key). Null means: on when an
    /// <see cref="Endpoint"/> is given (most S3-compatible stores need it), off for AWS.</summary>
    public bool? ForcePathStyle { get; init; }

    /// <summary>Explicit credentials; when both are null the environment
    /// (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN) is used, then
    /// <see cref="Profile"/> (or AWS_PROFILE, or "default") from the shared credentials file.</summary>
    public string? AccessKey { get; init; }
    public string? SecretKey { get; init; }
    public string? SessionToken { get; init; }

    /// <summary>Named profile in the shared credentials file.</summary>
    public string? Profile { get; init; }

    /// <summary>Shared credentials file to read profiles from; null for the SDK's default
    /// (~/.aws/credentials, or AWS_SHARED_CREDENTIALS_FILE).</summary>
    public string? CredentialsFile { get; init; }

    /// <summary>Objects larger than this go up as a multipart upload (a non-seekable source
    /// goes multipart as soon as it exceeds one part, so memory stays bounded).</summary>
    public long MultipartThreshold { get; init; } = DefaultMultipartThreshold;

    /// <summary>Size of each multipart part; at most two part buffers are held at once.</summary>
    public int PartSize { get; init; } = DefaultPartSize;

    /// <summary>Keys asked for per listing page (S3 caps it at 1000).</summary>
    public int MaxKeys { get; init; } = 1000;

    /// <summary>Per-request timeout; null for the SDK's default.</summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>Retries the SDK does itself on top of any <see cref="RetryingBackend"/>; null
    /// for the SDK's default. Set 0 when a RetryingBackend owns the retry policy.</summary>
    public int? SdkMaxErrorRetry { get; init; }

    /// <summary>Builds options from an <c>s3://bucket/prefix</c> location.</summary>
    public static S3BackendOptions FromLocation(string location)
    {
        S3RepositoryLocation parsed = S3RepositoryLocation.Parse(location);
        return new S3BackendOptions { Bucket = parsed.Bucket, Prefix = parsed.Prefix };
    }

    /// <summary>Checks every value and returns this; the messages name the option and the fix.</summary>
    public S3BackendOptions Validate()
    {
        S3RepositoryLocation.ValidateBucket(Bucket, Bucket);
        if (Prefix.Length > 0)
        {
            S3RepositoryLocation.ValidatePrefix(Prefix, Prefix);
        }
        if (Endpoint is not null && (!Uri.TryCreate(Endpoint, UriKind.Absolute, out Uri? uri) || (uri.Scheme != "http" && uri.Scheme != "https")))
        {
            throw new InvalidInputException("InvalidS3Endpoint",
                $"The S3 endpoint '{SafePath.Printable(Endpoint)}' is not an http(s) URL. Give one such as http://127.0.0.1:9000.", Endpoint);
        }
        if ((AccessKey is null) != (SecretKey is null))
        {
            throw new InvalidInputException("InvalidS3Credentials",
                "Give both the S3 access key and the secret key, or neither (to use the environment or a profile).");
        }
        if (PartSize < MinPartSize)
        {
            throw new InvalidInputException("InvalidS3PartSize", $"The S3 part size {PartSize} is below S3's minimum of {MinPartSize} bytes (5 MiB).");
        }
        if (MultipartThreshold < PartSize)
        {
            throw new InvalidInputException("InvalidS3PartSize",
                $"The multipart threshold {MultipartThreshold} is below the part size {PartSize}. Give a threshold of at least one part.");
        }
        if (MaxKeys is < 1 or > 1000)
        {
            throw new InvalidInputException("InvalidS3MaxKeys", $"MaxKeys {MaxKeys} is out of range. Give 1 to 1000.");
        }
        return this;
    }
}

/// <summary>An <c>s3://bucket/prefix</c> location.</summary>
public sealed partial record S3RepositoryLocation(string Bucket, string Prefix)
{
    private const string Example = "Use s3://bucket or s3://bucket/prefix, for example s3://backups/hosts/db1.";

    [GeneratedRegex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]
    private static partial Regex BucketPattern();

    public override string ToString() => Prefix.Length == 0 ? $"s3://{Bucket}" : $"s3://{Bucket}/{Prefix}";

    /// <summary>True when <paramref name="value"/> looks like an S3 location (starts with s3://).</summary>
    public static bool IsS3Location(string? value) => value is not null && value.StartsWith("s3://", StringComparison.OrdinalIgnoreCase);

    /// <summary>Parses <c>s3://bucket[/prefix][/]</c>; throws <see cref="InvalidInputException"/>
    /// naming what is wrong.</summary>
    public static S3RepositoryLocation Parse(string? location)
    {
        if (string.IsNullOrWhiteSpace(location))
        {
            throw new InvalidInputException("InvalidS3Location", $"The S3 location is empty. {Example}", location);
        }
        string shown = SafePath.Printable(location);
        if (!IsS3Location(location))
        {
            throw new InvalidInputException("InvalidS3Location", $"'{shown}' is not an S3 location. {Example}", location);
        }
        string rest = location["s3://".Length..];
        if (rest.IndexOfAny(['?', '#']) >= 0 || rest.Any(char.IsControl) || rest.Contains('\\') || rest.Any(char.IsWhiteSpace))
        {
            throw new InvalidInputException("InvalidS3Location",
                $"The S3 location '{shown}' contains '?', '#', a backslash, a space or a control character. {Example}", location);
        }
        int slash = rest.IndexOf('/');
        string bucket = slash < 0 ? rest : rest[..slash];
        string prefix = slash < 0 ? "" : rest[(slash + 1)..].TrimEnd('/');
        if (bucket.Length == 0)
        {
            throw new InvalidInputException("InvalidS3Location", $"The S3 location '{shown}' has no bucket name. {Example}", location);
        }
        ValidateBucket(bucket, location);
        if (prefix.Length > 0)
        {
            ValidatePrefix(prefix, location);
        }
        return new S3RepositoryLocation(bucket, prefix);
    }

    internal static void ValidateBucket(string? bucket, string? target)
    {
        if (string.IsNullOrEmpty(bucket) || !BucketPattern().IsMatch(bucket) || bucket.Contains("..") || IPAddress.TryParse(bucket, out _))
        {
            throw new InvalidInputException("InvalidS3Bucket",
                $"'{SafePath.Printable(bucket ?? "")}' is not a valid S3 bucket name. Use 3-63 lowercase letters, digits, '.' or '-', starting and ending with a letter or digit, as in s3://my-backups/prefix.",
                target);
        }
    }

    internal static void ValidatePrefix(string prefix, string target)
    {
        string valid;
        try
        {
            valid = SafePath.ValidateRelativePath(prefix, "S3 prefix");
        }
        catch (InvalidInputException e)
        {
            throw new InvalidInputException("InvalidS3Location", $"{e.Message} {Example}", target);
        }
        if (valid != prefix)
        {
            throw new InvalidInputException("InvalidS3Location", $"The S3 prefix '{SafePath.Printable(prefix)}' ends with '/'. Give it without the trailing '/'.", target);
        }
    }
}
