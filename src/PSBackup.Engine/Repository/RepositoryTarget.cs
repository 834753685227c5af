using PSBackup.Engine.Storage;

namespace PSBackup.Engine.Repository;

/// <summary>Where a repository is and how to open it: what <c>-Repository</c> and its companion
/// parameters bind to, in every cmdlet and CLI command that reads or writes a repository.</summary>
public sealed record RepositoryTarget
{
    /// <summary>A local folder, or <c>s3://bucket/prefix</c> on any S3-compatible store.</summary>
    public required string Location { get; init; }

    /// <summary>S3 endpoint URL for a non-AWS store (path-style addressing is then the default).</summary>
    public string? Endpoint { get; init; }
    public string? Region { get; init; }
    /// <summary>S3 credentials; when absent: AWS_* environment variables, then the shared profile.</summary>
    public string? AccessKey { get; init; }
    public string? SecretKey { get; init; }
    public string? Profile { get; init; }

    /// <summary>Opens an encrypted repository; when absent, <c>PSBACKUP_PASSPHRASE</c>.</summary>
    public string? Passphrase { get; init; }
    /// <summary>Opens an encrypted repository with a key file; when absent, <c>PSBACKUP_KEY_FILE</c>.</summary>
    public string? KeyFile { get; init; }

    public bool IsS3 => IsS3Location(Location);

    /// <summary>True for <c>s3://...</c>; anything else is a folder path.</summary>
    public static bool IsS3Location(string? location) => S3RepositoryLocation.IsS3Location(location);

    /// <summary>The location as users wrote it, never with secrets.</summary>
    public override string ToString() => Location;
}

/// <summary>Turns a <see cref="RepositoryTarget"/> into a storage backend and an open repository.
/// The one place that knows backends, retries and where credentials come from.</summary>
public static class RepositoryConnector
{
    public const string PassphraseVariable = "PSBACKUP_PASSPHRASE";
    public const string KeyFileVariable = "PSBACKUP_KEY_FILE";

    /// <summary>The backend for a target: a local folder (which must exist unless
    /// <paramref name="createFolder"/>), or S3 behind the retrying wrapper.</summary>
    public static IStorageBackend OpenBackend(RepositoryTarget target, bool createFolder = false)
    {
        ArgumentNullException.ThrowIfNull(target);
        if (string.IsNullOrWhiteSpace(target.Location))
        {
            throw new InvalidInputException("InvalidRepository", "The repository location is empty. Give a folder path or s3://bucket/prefix.", target.Location);
        }
        if (target.IsS3)
        {
            S3BackendOptions options = S3BackendOptions.FromLocation(target.Location) with
            {
                Endpoint = target.Endpoint,
                Region = target.Region,
                AccessKey = target.AccessKey,
                SecretKey = target.SecretKey,
                Profile = target.Profile,
            };
            return LoggingBackend.WrapWhenDebugging(new RetryingBackend(new S3Backend(options.Validate())));
        }
        if (target.Endpoint is not null || target.AccessKey is not null || target.SecretKey is not null || target.Profile is not null)
        {
            throw new InvalidInputException("InvalidRepository",
                $"S3 options were given, but '{SafePath.Printable(target.Location)}' is a folder. Use s3://bucket/prefix for an S3 repository, or drop the S3 options.", target.Location);
        }
        string folder = Path.GetFullPath(target.Location);
        if (createFolder)
        {
            Directory.CreateDirectory(folder);
        }
        return LoggingBackend.WrapWhenDebugging(new LocalBackend(folder));
    }

    /// <summary>The credentials to open the repository: explicit parameters first, then the
    /// environment. Giving both a passphrase and a key file is an error.</summary>
    public static RepositoryCredentials Credentials(RepositoryTarget target, Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        string? passphrase = target.Passphrase;
        string? keyFile = target.KeyFile;
        bool fromEnvironment = passphrase is null && keyFile is null;
        if (fromEnvironment)
        {
            passphrase = environment(PassphraseVariable);
            keyFile = environment(KeyFileVariable);
        }
        // An empty passphrase (or key file path) is a mistake, never "no encryption": a variable set
        // to "" by a template or a lost secret would otherwise create or open a repository in the clear.
        if (passphrase is { Length: 0 })
        {
            throw new InvalidInputException("EmptyPassphrase", fromEnvironment
                ? $"{PassphraseVariable} is set but empty. Set it to the repository's passphrase, or unset it (Remove-Item Env:{PassphraseVariable}; unset {PassphraseVariable}) for an unencrypted repository."
                : "The passphrase is empty. Give the repository's passphrase, or none for an unencrypted repository.");
        }
        if (keyFile is not null && string.IsNullOrWhiteSpace(keyFile))
        {
            throw new InvalidInputException("EmptyKeyFile", fromEnvironment
                ? $"{KeyFileVariable} is set but empty. Set it to the key file's path, or unset it."
                : "The key file path is empty. Give the key file's path, or none for an unencrypted repository.");
        }
        if (passphrase is not null && keyFile is not null)
        {
            throw new InvalidInputException("AmbiguousRepositoryKey",
                $"Both a passphrase and a key file were given (parameters or {PassphraseVariable}/{KeyFileVariable}). Give one of them.");
        }
        return passphrase is not null ? RepositoryCredentials.FromPassphrase(passphrase)
            : keyFile is not null ? RepositoryCredentials.FromKeyFile(keyFile)
            : RepositoryCredentials.None;
    }

    /// <summary>Opens the repository at <paramref name="target"/>; dispose the result to release
    /// the backend. <paramref name="loadIndex"/> false skips reading the index objects, for readers
    /// of manifests and refs only (listing backups).</summary>
    public static async Task<OpenRepository> OpenAsync(RepositoryTarget target, CancellationToken ct, bool loadIndex = true)
    {
        RepositoryCredentials credentials = Credentials(target);
        IStorageBackend backend = OpenBackend(target);
        try
        {
            Repository repository = await Repository.OpenAsync(backend, credentials, ct, loadIndex).ConfigureAwait(false);
            LogOpened(repository);
            return new OpenRepository(backend, repository);
        }
        catch
        {
            backend.Dispose();
            throw;
        }
    }

    /// <summary>Opens the repository for writing: after the config and key checks (a wrong key or
    /// a folder that holds no repository writes nothing) it takes a <paramref name="mode"/> lock
    /// (<see cref="RepositoryLock"/>), then loads the index, so a writer never reuses a pack that a
    /// prune finishing just before deleted. No lock under -WhatIf. Dispose (await using) releases it.</summary>
    public static async Task<OpenRepository> OpenForWriteAsync(RepositoryTarget target, RepositoryLockMode mode, string operation, OperationContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        CancellationToken ct = context.CancellationToken;
        RepositoryCredentials credentials = Credentials(target);
        IStorageBackend backend = OpenBackend(target);
        RepositoryLock? held = null;
        try
        {
            Repository repository = await Repository.OpenAsync(backend, credentials, ct, loadIndex: false).ConfigureAwait(false);
            if (!context.WhatIf)
            {
                held = await RepositoryLock.AcquireAsync(backend, mode, operation, context.Clock, ct).ConfigureAwait(false);
                OperationLog.Verbose($"Took {(mode == RepositoryLockMode.Exclusive ? "an exclusive" : "a shared")} lock on {backend.Location} ({held.Key}).");
            }
            else
            {
                OperationLog.Verbose($"-WhatIf: no lock taken on {backend.Location}.");
            }
            await repository.ReloadIndexAsync(ct).ConfigureAwait(false);
            LogOpened(repository);
            return new OpenRepository(backend, repository, held);
        }
        catch
        {
            if (held is not null)
            {
                await held.DisposeAsync().ConfigureAwait(false);
            }
            backend.Dispose();
            throw;
        }
    }

    private static void LogOpened(Repository repository)
    {
        if (OperationLog.IsVerbose)
        {
            OperationLog.Verbose($"Opened repository {repository.Location} (id {repository.Config.Id}, {(repository.IsEncrypted ? "encrypted" : "unencrypted")}, format {repository.Config.FormatVersion}).");
        }
    }
}

/// <summary>An open repository, the backend it owns and, when opened for writing, its lock.
/// Dispose asynchronously (<c>await using</c>) to release the lock without blocking.</summary>
public sealed class OpenRepository(IStorageBackend backend, Repository repository, RepositoryLock? held = null) : IDisposable, IAsyncDisposable
{
    public Repository Repository { get; } = repository;
    public IStorageBackend Backend { get; } = backend;
    /// <summary>The lock this writer holds; null for readers and under -WhatIf.</summary>
    public RepositoryLock? Lock { get; } = held;

    public async ValueTask DisposeAsync()
    {
        if (Lock is not null)
        {
            await Lock.DisposeAsync().ConfigureAwait(false);
        }
        Backend.Dispose();
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();
}
