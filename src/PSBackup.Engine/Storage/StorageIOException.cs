namespace PSBackup.Engine.Storage;

/// <summary>A storage operation failed for a reason other than a missing object or bad
/// credentials: a network fault, a server error, a range past the end. <see cref="IsTransient"/>
/// tells <see cref="RetryingBackend"/> whether trying again can help (server 5xx, throttling,
/// timeouts, dropped connections) or not (a 4xx the request itself caused).</summary>
public sealed class StorageIOException : IOException
{
    public StorageIOException(string message, string? key, string location, bool isTransient, Exception? inner = null,
        int? statusCode = null, string? errorCode = null)
        : base(message, inner)
    {
        Key = key;
        Location = location;
        IsTransient = isTransient;
        StatusCode = statusCode;
        ErrorCode = errorCode;
    }

    /// <summary>The key the operation was about (null for a listing).</summary>
    public string? Key { get; }

    /// <summary>The backend's location (folder or s3://bucket/prefix).</summary>
    public string Location { get; }

    /// <summary>True when repeating the same request may succeed.</summary>
    public bool IsTransient { get; }

    /// <summary>The HTTP status the server answered with, when there was an answer.</summary>
    public int? StatusCode { get; }

    /// <summary><see cref="ErrorCode"/> of an object that exists but is no regular file (a FIFO,
    /// device or socket planted under a key of a local repository): it holds no bytes of the
    /// repository, so readers take it as a damaged object of its kind, never as a storage fault.</summary>
    public const string NotARegularFile = "NotARegularFile";

    /// <summary>The server's error code (S3: SlowDown, InternalError, InvalidRange, ...).</summary>
    public string? ErrorCode { get; }
}
