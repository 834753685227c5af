using PSBackup.Engine.Storage;

namespace PSBackup.Engine.Repository;

/// <summary>What kind of storage a repository location names.</summary>
public enum RepositoryKind
{
    Folder,
    S3,
    AzureBlob,
}

/// <summary>A user name and secret given together (a PSCredential, or <c>--storage-credential
/// user:secret</c>): for S3 the access key id and secret access key, for Azure Blob the storage
/// account name and account key.</summary>
public sealed record StorageCredential(string UserName, string Secret)
{
    /// <summary>Never the secret.</summary>
    public override string ToString() => UserName;
}

/// <summary>Where a repository is and how to open it: what <c>-Repository</c> and its companion
/// parameters bind to, in every cmdlet and CLI command that reads or writes a repository.</summary>
public sealed record RepositoryTarget
{
    /// <summary>A local folder, <c>s3://bucket/prefix</c> on any S3-compatible store, or Azure Blob
    /// Storage: <c>az://account/container/prefix</c>, <c>https://account.blob.core.windows.net/container/prefix</c>
    /// or the emulator's <c>http://127.0.0.1:10000/account/container/prefix</c>.</summary>
    public required string Location { get; init; }

    /// <summary>Endpoint URL: of a non-AWS S3 store (path-style addressing is then the default), or
    /// the blob endpoint of an Azure account in another cloud or behind a private endpoint.</summary>
    public string? Endpoint { get; init; }
    public string? Region { get; init; }
    /// <summary>S3 credentials; when absent: AWS_* environment variables, the shared profile, then
    /// the SDK's default chain (SSO, web identity, container and instance roles).</summary>
    public string? AccessKey { get; init; }
    public string? SecretKey { get; init; }
    /// <summary>The session token that goes with temporary S3 credentials.</summary>
    public string? SessionToken { get; init; }
    public string? Profile { get; init; }
    /// <summary>S3 access key + secret, or Azure account name + account key, given as one credential.</summary>
    public StorageCredential? StorageCredential { get; init; }
    /// <summary>Azure Blob: a SAS token.</summary>
    public string? SasToken { get; init; }
    /// <summary>Azure Blob: a storage connection string.</summary>
    public string? ConnectionString { get; init; }

    /// <summary>Opens an encrypted repository; when absent, <c>PSBACKUP_PASSPHRASE</c>.</summary>
    public string? Passphrase { get; init; }
    /// <summary>Opens an encrypted repository with a key file; when absent, <c>PSBACKUP_KEY_FILE</c>.</summary>
    public string? KeyFile { get; init; }
    /// <summary>The key file's content itself (-KeyFile as a SecureString, e.g. from an Azure
    /// Automation credential or variable): its UTF-8 bytes are the key file's bytes.</summary>
    public string? Key { get; init; }

    public bool IsS3 => IsS3Location(Location);

    public RepositoryKind Kind => KindOf(Location);

    /// <summary>True for <c>s3://...</c>.</summary>
    public static bool IsS3Location(string? location) => S3RepositoryLocation.IsS3Location(location);

    /// <summary>s3:// is S3; az://, http:// and https:// are Azure Blob; anything else is a folder path.</summary>
    public static RepositoryKind KindOf(string? location) =>
        IsS3Location(location) ? RepositoryKind.S3 : AzureBlobLocation.IsAzureLocation(location) ? RepositoryKind.AzureBlob : RepositoryKind.Folder;

    /// <summary>True for a location that is not a folder (front ends resolve only folders against the current location).</summary>
    public static bool IsRemoteLocation(string? location) => KindOf(location) != RepositoryKind.Folder;

    /// <summary>An Azure Blob URL carrying a SAS in its query becomes the URL without it and
    /// <see cref="SasToken"/>, so the secret never travels as a location (messages, audit log,
    /// history). Front ends call this on what the user gave.</summary>
    public RepositoryTarget WithSasSplitOff()
    {
        int q = Location.IndexOf('?', StringComparison.Ordinal);
        if (Kind != RepositoryKind.AzureBlob || q < 0)
        {
            return this;
        }
        if (SasToken is not null)
        {
            throw new InvalidInputException("AmbiguousAzureCredentials",
                "The location carries a SAS in its query and -SasToken was given too. Give the SAS once.", AzureBlobLocation.Redact(Location));
        }
        string query = Location[(q + 1)..];
        return this with { Location = Location[..q], SasToken = query.Length == 0 ? null : query };
    }

    /// <summary>This target without the storage options that do not apply to its kind (a sync
    /// gives one set of options for two sides of different kinds).</summary>
    public RepositoryTarget WithoutForeignStorageOptions() => Kind switch
    {
        RepositoryKind.Folder => this with { Endpoint = null, Region = null, AccessKey = null, SecretKey = null, SessionToken = null, Profile = null, StorageCredential = null, SasToken = null, ConnectionString = null },
        RepositoryKind.S3 => this with { SasToken = null, ConnectionString = null },
        _ => this with { Region = null, AccessKey = null, SecretKey = null, SessionToken = null, Profile = null },
    };

    /// <summary>The storage options given (by parameter name), for messages.</summary>
    internal IEnumerable<string> GivenStorageOptions()
    {
        var given = new (string Name, bool Set)[]
        {
            ("-Endpoint", Endpoint is not null), ("-Region", Region is not null), ("-AccessKey", AccessKey is not null), ("-SecretKey", SecretKey is not null),
            ("-SessionToken", SessionToken is not null), ("-Profile", Profile is not null), ("-StorageCredential", StorageCredential is not null),
            ("-SasToken", SasToken is not null), ("-ConnectionString", ConnectionString is not null),
        };
        return given.Where(g => g.Set).Select(g => g.Name);
    }

    /// <summary>The location as users wrote it, never with secrets (a SAS in a URL is cut off).</summary>
    public override string ToString() => Kind == RepositoryKind.AzureBlob ? AzureBlobLocation.Redact(Location) : Location;
}

/// <summary>Turns a <see cref="RepositoryTarget"/> into a storage backend and an open repository.
/// The one place that knows backends, retries and where credentials come from.</summary>
public static class RepositoryConnector
{
    public const string PassphraseVariable = "PSBACKUP_PASSPHRASE";
    public const string KeyFileVariable = "PSBACKUP_KEY_FILE";

    /// <summary>The backend for a target: a local folder (which must exist unless
    /// <paramref name="createFolder"/>), or S3 or Azure Blob behind the retrying wrapper. Options
    /// of another kind of storage are refused, naming the option.</summary>
    public static IStorageBackend OpenBackend(RepositoryTarget target, bool createFolder = false)
    {
        ArgumentNullException.ThrowIfNull(target);
        if (string.IsNullOrWhiteSpace(target.Location))
        {
            throw new InvalidInputException("InvalidRepository", "The repository location is empty. Give a folder path, s3://bucket/prefix or az://account/container/prefix.", target.Location);
        }
        if (target.IsS3)
        {
            RefuseOptions(target, "an S3 repository", (target.SasToken, "-SasToken"), (target.ConnectionString, "-ConnectionString"));
            if (target.StorageCredential is not null && (target.AccessKey is not null || target.SecretKey is not null))
            {
                throw new InvalidInputException("InvalidS3Credentials", "Give the S3 keys either as -StorageCredential or as -AccessKey/-SecretKey, not both.", target.Location);
            }
            S3BackendOptions options = S3BackendOptions.FromLocation(target.Location) with
            {
                Endpoint = target.Endpoint,
                Region = target.Region,
                AccessKey = target.StorageCredential?.UserName ?? target.AccessKey,
                SecretKey = target.StorageCredential?.Secret ?? target.SecretKey,
                SessionToken = target.SessionToken,
                Profile = target.Profile,
            };
            // The retrying wrapper owns retries and timeouts (per request, per idle transfer); the
            // SDK does not retry on top of it, and its own timeout is the same per-request bound.
            StorageRetryPolicy policy = StorageRetryPolicy.FromEnvironment();
            return LoggingBackend.WrapWhenDebugging(new RetryingBackend(new S3Backend((options with { SdkMaxErrorRetry = 0, Timeout = policy.RequestTimeout + policy.IdleTimeout }).Validate()), policy));
        }
        if (target.Kind == RepositoryKind.AzureBlob)
        {
            RefuseOptions(target, "an Azure Blob repository", (target.Region, "-Region"), (target.AccessKey, "-AccessKey"), (target.SecretKey, "-SecretKey"),
                (target.SessionToken, "-SessionToken"), (target.Profile, "-Profile"));
            AzureBlobBackendOptions options = AzureBlobBackendOptions.FromLocation(target.Location) with
            {
                Endpoint = target.Endpoint,
                ConnectionString = target.ConnectionString,
                SasToken = target.SasToken,
                AccountName = target.StorageCredential?.UserName,
                AccountKey = target.StorageCredential?.Secret,
            };
            return LoggingBackend.WrapWhenDebugging(new RetryingBackend(new AzureBlobBackend(options.Validate())));
        }
        if (target.GivenStorageOptions().FirstOrDefault() is { } option)
        {
            throw new InvalidInputException("InvalidRepository",
                $"{option} was given, but '{SafePath.Printable(target.Location)}' is a folder. Use s3://bucket/prefix or az://account/container/prefix for a repository in object storage, or drop the storage options.", target.Location);
        }
        string folder = Path.GetFullPath(target.Location);
        if (createFolder)
        {
            PrivateFiles.CreateDirectory(folder); // a new repository folder is 0700 on Unix
        }
        return LoggingBackend.WrapWhenDebugging(new LocalBackend(folder));
    }

    private static void RefuseOptions(RepositoryTarget target, string what, params (string? Value, string Name)[] options)
    {
        foreach ((string? value, string name) in options)
        {
            if (value is not null)
            {
                throw new InvalidInputException("InvalidRepository",
                    $"{name} does not apply to {what} ('{AzureBlobLocation.Redact(target.Location)}'). Drop it.", AzureBlobLocation.Redact(target.Location));
            }
        }
    }

    /// <summary>The credentials to open the repository: explicit parameters first, then the
    /// environment. Giving both a passphrase and a key file is an error.</summary>
    public static RepositoryCredentials Credentials(RepositoryTarget target, Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        string? passphrase = target.Passphrase;
        string? keyFile = target.KeyFile;
        if (target.Key is not null)
        {
            if (passphrase is not null || keyFile is not null)
            {
                throw new InvalidInputException("AmbiguousRepositoryKey", "A key was given together with a passphrase or a key file path. Give one of them.");
            }
            return RepositoryCredentials.FromKey(System.Text.Encoding.UTF8.GetBytes(target.Key));
        }
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
        if (keyFile is not null && !string.IsNullOrWhiteSpace(keyFile) && !File.Exists(keyFile))
        {
            throw new NotFoundException("KeyFileNotFound",
                $"The key file '{SafePath.Printable(keyFile)}' does not exist. Give the path of the repository's key file (-KeyFile, or {KeyFileVariable}).", keyFile);
        }
        return passphrase is not null ? RepositoryCredentials.FromPassphrase(passphrase)
            : keyFile is not null ? RepositoryCredentials.FromKeyFile(keyFile)
            : RepositoryCredentials.None;
    }

    /// <summary>The backend of a repository that must be there, for readers that need no key (ref
    /// listings): a location without a repository's <c>config</c> is RepositoryNotFound, a setup
    /// failure like every failure of <see cref="OpenAsync"/>, never an empty listing.</summary>
    public static async Task<IStorageBackend> OpenExistingBackendAsync(RepositoryTarget target, CancellationToken ct)
    {
        try
        {
            IStorageBackend backend = OpenBackend(target);
            try
            {
                if (await backend.StatAsync(RepositoryLayout.ConfigKey, ct).ConfigureAwait(false) is null)
                {
                    throw Repository.NoRepositoryAt(backend.Location);
                }
                return backend;
            }
            catch
            {
                backend.Dispose();
                throw;
            }
        }
        catch (PSBackupException e) when (e.MarkSetupFailure())
        {
            throw; // not reached: the filter only marks
        }
    }

    /// <summary>Opens the repository at <paramref name="target"/>; dispose the result to release
    /// the backend. Every typed failure here is a setup failure (<see cref="PSBackupException.IsSetupFailure"/>). <paramref name="loadIndex"/> false skips reading the index objects, for readers
    /// of manifests and refs only (listing backups).</summary>
    public static async Task<OpenRepository> OpenAsync(RepositoryTarget target, CancellationToken ct, bool loadIndex = true) =>
        await OpenAsync(target, ct, loadIndex, backendOpened: null).ConfigureAwait(false);

    /// <summary>As <see cref="OpenAsync(RepositoryTarget, CancellationToken, bool)"/>;
    /// <paramref name="backendOpened"/> runs once the storage is open, before the key is derived
    /// (work that needs no key can start beside the derivation).</summary>
    internal static async Task<OpenRepository> OpenAsync(RepositoryTarget target, CancellationToken ct, bool loadIndex, Action<IStorageBackend>? backendOpened)
    {
        try
        {
            return await OpenCoreAsync(target, ct, loadIndex, backendOpened).ConfigureAwait(false);
        }
        catch (PSBackupException e) when (e.MarkSetupFailure())
        {
            throw; // not reached: the filter only marks
        }
    }

    private static async Task<OpenRepository> OpenCoreAsync(RepositoryTarget target, CancellationToken ct, bool loadIndex, Action<IStorageBackend>? backendOpened)
    {
        RepositoryCredentials credentials = Credentials(target);
        IStorageBackend backend = OpenBackend(target);
        try
        {
            backendOpened?.Invoke(backend);
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

    /// <summary>Derives the passphrase's wrap key for <paramref name="target"/> into the session's
    /// key cache (<see cref="WrapKeyCache"/>), so that an open which follows skips PBKDF2. Meant to
    /// run on another core while the caller does work that needs no key (an object backup lists
    /// the object's files meanwhile): the 600,000 iterations were ~20 % of a no-change backup's CPU,
    /// and one core stood idle while they ran. Reads the config and the key objects, writes nothing;
    /// only a key that unwraps (the passphrase is right) is kept. Never throws: whatever is wrong
    /// (no repository, a bad key object, a wrong passphrase, cancellation) is for the open to report,
    /// and without a passphrase or with the cache off it does nothing.</summary>
    internal static async Task PrewarmKeyAsync(RepositoryTarget target, CancellationToken ct)
    {
        try
        {
            RepositoryCredentials credentials = Credentials(target);
            if (credentials.Passphrase is null || !WrapKeyCache.Enabled)
            {
                return;
            }
            using IStorageBackend backend = OpenBackend(target);
            await Repository.UnlockAsync(backend, credentials, ct).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // the open reports it
        }
    }

    /// <summary>A look into the repository ahead of its open, on another core: opens it for reading
    /// (no lock, no index; the key comes from the session's cache that <see cref="PrewarmKeyAsync"/>
    /// filled) and runs <paramref name="read"/>. What it returns is a hint: the caller checks it
    /// against what it reads under its lock. Never throws; (null, null) when anything fails, when
    /// the key would be derived a second time (a passphrase with the cache off), or on cancellation.
    /// Also returns the repository's id, so the hint is never taken for another repository's.</summary>
    internal static async Task<(T? Value, string? RepositoryId)> PeekAsync<T>(RepositoryTarget target, Func<Repository, CancellationToken, Task<T?>> read, CancellationToken ct)
        where T : class
    {
        try
        {
            RepositoryCredentials credentials = Credentials(target);
            if (credentials.Passphrase is not null && !WrapKeyCache.Enabled)
            {
                return (null, null);
            }
            using IStorageBackend backend = OpenBackend(target);
            Repository repository = await Repository.OpenAsync(backend, credentials, ct, loadIndex: false).ConfigureAwait(false);
            return (await read(repository, ct).ConfigureAwait(false), repository.Config.Id);
        }
        catch (Exception)
        {
            return (null, null); // the open reports what is wrong
        }
    }

    /// <summary>Opens the repository for writing: after the config and key checks (a wrong key or
    /// a folder that holds no repository writes nothing) it takes a <paramref name="mode"/> lock
    /// (<see cref="RepositoryLock"/>), then loads the index, so a writer never reuses a pack that a
    /// prune finishing just before deleted. No lock under -WhatIf. Every typed failure here (missing,
    /// wrong key, locked) is a setup failure (<see cref="PSBackupException.IsSetupFailure"/>). Dispose (await using) releases it.</summary>
    public static Task<OpenRepository> OpenForWriteAsync(RepositoryTarget target, RepositoryLockMode mode, string operation, OperationContext context) =>
        OpenForWriteAsync(target, mode, operation, context, null);

    /// <summary><see cref="OpenForWriteAsync(RepositoryTarget, RepositoryLockMode, string, OperationContext)"/>,
    /// charging opening, locking and loading the index to <paramref name="clock"/>'s phases.</summary>
    internal static async Task<OpenRepository> OpenForWriteAsync(RepositoryTarget target, RepositoryLockMode mode, string operation, OperationContext context, Wal.WalPassClock? clock)
    {
        ArgumentNullException.ThrowIfNull(context);
        try
        {
            return await OpenForWriteCoreAsync(target, mode, operation, context, clock).ConfigureAwait(false);
        }
        catch (PSBackupException e) when (e.MarkSetupFailure())
        {
            throw; // not reached: the filter only marks
        }
    }

    private static async Task<OpenRepository> OpenForWriteCoreAsync(RepositoryTarget target, RepositoryLockMode mode, string operation, OperationContext context, Wal.WalPassClock? clock)
    {
        CancellationToken ct = context.CancellationToken;
        RepositoryCredentials credentials = Credentials(target);
        IStorageBackend backend = OpenBackend(target);
        RepositoryLock? held = null;
        try
        {
            Repository repository = await Repository.OpenAsync(backend, credentials, ct, loadIndex: false).ConfigureAwait(false);
            clock?.Lap(Wal.WalPassPhase.Open);
            if (!context.WhatIf)
            {
                held = await RepositoryLock.AcquireAsync(backend, mode, operation, context.Clock, ct).ConfigureAwait(false);
                OperationLog.Verbose($"Took {(mode == RepositoryLockMode.Exclusive ? "an exclusive" : "a shared")} lock on {backend.Location} ({held.Key}).");
            }
            else
            {
                OperationLog.Verbose($"-WhatIf: no lock taken on {backend.Location}.");
            }
            clock?.Lap(Wal.WalPassPhase.Lock);
            await repository.ReloadIndexAsync(ct).ConfigureAwait(false);
            clock?.Lap(Wal.WalPassPhase.Index);
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
