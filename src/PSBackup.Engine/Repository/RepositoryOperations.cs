using PSBackup.Engine.Events;
using PSBackup.Engine.Storage;

namespace PSBackup.Engine.Repository;

/// <summary>What Initialize-BackupRepository creates: where, and how it is protected. A repository
/// is encrypted with the target's passphrase or key file; one without encryption must be asked
/// for with <see cref="Unencrypted"/> (anyone who can read the storage can then read the backups).</summary>
public sealed record InitializeRepositoryOptions(RepositoryTarget Repository)
{
    /// <summary>Create the repository without encryption (-Unencrypted / --unencrypted).</summary>
    public bool Unencrypted { get; init; }
}

/// <summary>A repository as Initialize-BackupRepository reports it.</summary>
public sealed record RepositoryInfo
{
    /// <summary>The location as given: a folder path or <c>s3://bucket/prefix</c>.</summary>
    public required string Repository { get; init; }
    /// <summary>The random id in the repository's config.</summary>
    public required string RepositoryId { get; init; }
    public required bool Encrypted { get; init; }
    /// <summary>"none", or "passphrase" / "key-file" for an encrypted repository.</summary>
    public required string KeyKind { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public required int FormatVersion { get; init; }
    public required string Compression { get; init; }
    public required int CompressionLevel { get; init; }
}

/// <summary>Engine operations on repositories as a whole.</summary>
public static class RepositoryOperations
{
    /// <summary>Creates a repository at <c>options.Repository</c>: a local folder (created when
    /// missing), <c>s3://bucket/prefix</c> or an Azure Blob container (az://account/container/prefix); encrypted with the passphrase or key file given
    /// (or set in <c>PSBACKUP_PASSPHRASE</c> / <c>PSBACKUP_KEY_FILE</c>), unencrypted only with
    /// <see cref="InitializeRepositoryOptions.Unencrypted"/> (neither is EncryptionNotChosen, both
    /// ConflictingEncryption). An existing repository is refused (ConflictException
    /// RepositoryExists) with nothing written. Null when ShouldProcess declined (-WhatIf).</summary>
    public static Task<RepositoryInfo?> InitializeAsync(InitializeRepositoryOptions options, OperationContext context) =>
        OperationRecorder.RunAsync(new OperationScope { Operation = "Initialize-BackupRepository", Category = "repository", Target = options?.Repository?.Location, History = false },
            context, c => InitializeCoreAsync(options!, c), r => r is null ? null : new OperationOutcome(0));

    private static async Task<RepositoryInfo?> InitializeCoreAsync(InitializeRepositoryOptions options, OperationContext context)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(context);
        CancellationToken ct = context.CancellationToken;
        RepositoryTarget target = options.Repository ?? throw new InvalidInputException("InvalidRepository", "No repository was given. Give a folder path or s3://bucket/prefix.");
        RepositoryCredentials credentials = RepositoryConnector.Credentials(target);
        if (credentials.Passphrase is { Length: 0 })
        {
            throw new InvalidInputException("EmptyPassphrase", "The passphrase is empty. Give a non-empty passphrase, or -Unencrypted (and no passphrase) for an unencrypted repository.");
        }
        if (credentials.IsNone && !options.Unencrypted)
        {
            throw new InvalidInputException("EncryptionNotChosen",
                $"No key was given for the new repository at {target}. Give -Passphrase or -KeyFile (or set {RepositoryConnector.PassphraseVariable} / {RepositoryConnector.KeyFileVariable}) " +
                "to encrypt it, or -Unencrypted to store the backups readable by anyone who can read the storage.", target.Location);
        }
        if (!credentials.IsNone && options.Unencrypted)
        {
            throw new InvalidInputException("ConflictingEncryption",
                $"-Unencrypted was given together with a {(credentials.Passphrase is not null ? "passphrase" : "key file")} (a parameter, or {RepositoryConnector.PassphraseVariable} / {RepositoryConnector.KeyFileVariable} in the environment). " +
                "Drop -Unencrypted to create an encrypted repository, or drop the key (unset the variable) for an unencrypted one.", target.Location);
        }
        if (credentials.HasKeyFile)
        {
            credentials.ReadKey(); // a missing or short key file fails before anything is written
        }

        // Everything that can be checked without writing is checked first: the location, S3
        // options on a folder, and an existing repository (a folder is only read when it exists).
        string location = target.Kind == RepositoryKind.Folder ? ValidateFolder(target.Location) : target.ToString();
        // The codec is chosen before anything is created: a bad PSBACKUP_ZSTD leaves no folder behind.
        _ = Compression.ZstdCodecs.Default;
        try
        {
            using IStorageBackend probe = RepositoryConnector.OpenBackend(target);
            if (await probe.StatAsync(RepositoryLayout.ConfigKey, ct).ConfigureAwait(false) is not null)
            {
                throw new ConflictException("RepositoryExists",
                    $"A repository already exists at {probe.Location}. Use it as it is (-Repository), or choose an empty location.", probe.Location);
            }
            // A folder or prefix that already holds other things is not a repository's place: its
            // files would be mixed with packs, and a later prune or sync would trip over them. Only
            // what an interrupted init leaves (key objects) may be there.
            string? other = await FirstForeignAsync(probe, location, target.IsS3, ct).ConfigureAwait(false);
            if (other is not null)
            {
                throw new ConflictException("LocationNotEmpty",
                    $"{probe.Location} is not empty ('{SafePath.Printable(other)}') and holds no repository. Create the repository in an empty or new folder (or prefix), or move what is there away first.", probe.Location);
            }
        }
        catch (NotFoundException) when (target.Kind == RepositoryKind.Folder && !Directory.Exists(location))
        {
            // A missing folder: created below, once ShouldProcess agrees.
        }
        catch (NotFoundException e) when (e.ErrorId == "AzureContainerNotFound")
        {
            // A missing Azure container: created below, once ShouldProcess agrees (restic's init
            // does the same); an S3 bucket is not, as bucket creation carries region and policy choices.
        }

        if (!context.ShouldProcess(location, credentials.IsNone ? "Create repository" : "Create encrypted repository"))
        {
            return null;
        }
        using IStorageBackend backend = RepositoryConnector.OpenBackend(target, createFolder: true);
        if (backend is RetryingBackend { Inner: AzureBlobBackend azure } retrying)
        {
            await retrying.RunWithRetriesAsync(azure.CreateContainerIfMissingAsync, "create the container", ct).ConfigureAwait(false);
        }
        var init = new RepositoryInitOptions { Passphrase = credentials.Passphrase, KeyFile = credentials.KeyFile, Key = credentials.Key };
        Repository repo = await Repository.InitializeAsync(backend, init, ct).ConfigureAwait(false);
        context.Report("Initialize-BackupRepository", "Repository created", 1, 1, location);
        return new RepositoryInfo
        {
            Repository = location,
            RepositoryId = repo.Config.Id,
            Encrypted = repo.IsEncrypted,
            KeyKind = credentials.Passphrase is not null ? "passphrase" : credentials.HasKeyFile ? "key-file" : "none",
            CreatedAt = repo.Config.CreatedAt,
            FormatVersion = repo.Config.FormatVersion,
            Compression = repo.Config.Compression,
            CompressionLevel = repo.Config.CompressionLevel,
        };
    }

    /// <summary>The first entry of a location that an interrupted init would not have left, or null.</summary>
    private static async Task<string?> FirstForeignAsync(IStorageBackend probe, string location, bool s3, CancellationToken ct)
    {
        if (!s3)
        {
            if (!Directory.Exists(location))
            {
                return null;
            }
            foreach (string entry in Directory.EnumerateFileSystemEntries(location))
            {
                string name = Path.GetFileName(entry);
                if (name != "keys" || !Directory.Exists(entry))
                {
                    return name;
                }
            }
            return null;
        }
        await foreach (StoredObject o in probe.ListAsync("", ct).ConfigureAwait(false))
        {
            if (!o.Key.StartsWith(RepositoryLayout.KeysPrefix, StringComparison.Ordinal))
            {
                return o.Key;
            }
        }
        return null;
    }

    /// <summary>A folder location must be an absolute path (front ends resolve relative ones) and
    /// must not be a file.</summary>
    private static string ValidateFolder(string location)
    {
        if (string.IsNullOrWhiteSpace(location) || location.Any(char.IsControl))
        {
            throw new InvalidInputException("InvalidRepository", $"'{SafePath.Printable(location ?? "")}' is not a usable repository location. Give a folder path or s3://bucket/prefix.", location);
        }
        if (location.Contains("://", StringComparison.Ordinal))
        {
            throw new InvalidInputException("InvalidRepository", $"'{SafePath.Printable(location)}' is not a folder, s3:// or Azure Blob location. Give a folder path, s3://bucket/prefix or az://account/container/prefix.", location);
        }
        if (File.Exists(location))
        {
            throw new InvalidInputException("InvalidRepository", $"'{SafePath.Printable(location)}' is a file. Give a folder (it is created when missing) or s3://bucket/prefix.", location);
        }
        return location;
    }
}
