using System.Management.Automation;
using System.Security;
using PSBackup.Engine.Repository;

namespace PSBackup.Commands;

/// <summary>Copies a repository (or a plain local backup root) to another location (folder, S3 or
/// Azure Blob, in any pairing), only what is missing there, verifying each object before it is
/// stored. -WhatIf lists what would be copied. The storage options (-Endpoint, ...) apply to both
/// sides unless -Destination* options are given, which then describe the destination alone (each
/// side ignores options of another kind of storage); the key options belong to the source.</summary>
/// <cli>sync</cli>
/// <example>
/// <summary>Copy a repository offsite</summary>
/// <code>Sync-BackupRepository -Source ./repo -Destination ./offsite</code>
/// Copies what the destination lacks, verifying each object before it is stored, in the order that
/// keeps the destination valid if interrupted. Usually the destination is s3://bucket/prefix with
/// -Endpoint and credentials, or az://account/container/prefix.
/// </example>
/// <example>
/// <summary>Sync the repository Get-Backup lists</summary>
/// <code>Get-Backup -Repository ./repo | Sync-BackupRepository -Destination ./offsite -WhatIf</code>
/// The records' Repository binds -Source; the repository is synced once however many records name it.
/// -WhatIf lists what would be copied.
/// </example>
/// <example>
/// <summary>Copy a plain local backup root</summary>
/// <code>Sync-BackupRepository -Source ./unison/backups/users -Destination ./offsite-users</code>
/// A folder without a repository config is copied file by file, manifests last, skipping transient
/// artifacts.
/// </example>
[Cmdlet(VerbsData.Sync, "BackupRepository", SupportsShouldProcess = true, DefaultParameterSetName = RepositorySet)]
[OutputType(typeof(SyncResult))]
public sealed class SyncBackupRepositoryCommand : PSBackupRepositoryCmdlet
{
    private RepositoryTarget? _source;
    private RepositoryTarget? _destination;
    private readonly HashSet<string> _synced = new(StringComparer.Ordinal);
    private bool _repeat;

    /// <summary>A repository (folder, s3://bucket/prefix or az://account/container/prefix), or a local backup
    /// folder. Binds a piped record's Repository property, so Get-Backup's output syncs its repository (once per
    /// pipeline, however many records name it).</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true, ParameterSetName = RepositorySet)]
    [Alias("Repository")]
    [ValidateNotNullOrEmpty]
    public string Source { get; set; } = "";

    /// <summary>A folder, s3://bucket/prefix or az://account/container/prefix: empty, or an earlier copy of the source.</summary>
    [Parameter(Mandatory = true, Position = 1, ParameterSetName = RepositorySet)]
    [ValidateNotNullOrEmpty]
    public string Destination { get; set; } = "";

    /// <summary>The destination's endpoint (S3-compatible store, or Azure blob endpoint). Any
    /// -Destination* storage option makes the plain ones (-Endpoint, ...) apply to the source only.</summary>
    [Parameter(ParameterSetName = RepositorySet)]
    [ValidateNotNullOrEmpty]
    public string? DestinationEndpoint { get; set; }

    /// <summary>The destination's S3 region.</summary>
    [Parameter(ParameterSetName = RepositorySet)]
    [ValidateNotNullOrEmpty]
    public string? DestinationRegion { get; set; }

    /// <summary>The destination's S3 access key.</summary>
    [Parameter(ParameterSetName = RepositorySet)]
    [ValidateNotNullOrEmpty]
    public string? DestinationAccessKey { get; set; }

    /// <summary>The destination's S3 secret key.</summary>
    [Parameter(ParameterSetName = RepositorySet)]
    [ValidateNotNull]
    public SecureString? DestinationSecretKey { get; set; }

    /// <summary>The destination's S3 session token.</summary>
    [Parameter(ParameterSetName = RepositorySet)]
    [ValidateNotNull]
    public SecureString? DestinationSessionToken { get; set; }

    /// <summary>The destination's AWS profile.</summary>
    [Parameter(ParameterSetName = RepositorySet)]
    [ValidateNotNullOrEmpty]
    public string? DestinationProfile { get; set; }

    /// <summary>The destination's storage keys as one credential (S3 access key + secret, or Azure account + key).</summary>
    [Parameter(ParameterSetName = RepositorySet)]
    [ValidateNotNull]
    [Credential]
    public PSCredential? DestinationStorageCredential { get; set; }

    /// <summary>The destination's Azure SAS token.</summary>
    [Parameter(ParameterSetName = RepositorySet)]
    [ValidateNotNull]
    public SecureString? DestinationSasToken { get; set; }

    /// <summary>The destination's Azure storage connection string.</summary>
    [Parameter(ParameterSetName = RepositorySet)]
    [ValidateNotNull]
    public SecureString? DestinationConnectionString { get; set; }

    protected override void PrepareRecord()
    {
        _source = RepositoryTargetFor(Source, nameof(Source));
        _destination = RepositoryTargetFor(Destination, nameof(Destination));
        bool ownOptions = DestinationEndpoint is not null || DestinationRegion is not null || DestinationAccessKey is not null || DestinationSecretKey is not null
            || DestinationSessionToken is not null || DestinationProfile is not null || DestinationStorageCredential is not null || DestinationSasToken is not null
            || DestinationConnectionString is not null;
        if (ownOptions)
        {
            _destination = _destination! with
            {
                Endpoint = DestinationEndpoint,
                Region = DestinationRegion,
                AccessKey = DestinationAccessKey,
                SecretKey = Plain(DestinationSecretKey),
                SessionToken = Plain(DestinationSessionToken),
                Profile = DestinationProfile,
                StorageCredential = CredentialOf(DestinationStorageCredential),
                SasToken = Plain(DestinationSasToken),
                ConnectionString = Plain(DestinationConnectionString),
            };
        }
        // Get-Backup writes one record per backup: the first one of a source syncs it, the rest repeat it.
        _repeat = !_synced.Add(_source!.Location + "\n" + _destination!.Location);
    }

    protected override async Task ProcessRecordAsync()
    {
        if (_repeat)
        {
            return;
        }
        SyncResult result = await RepositorySync.SyncAsync(new SyncBackupRepositoryOptions(_source!, _destination!), CreateContext()).ConfigureAwait(false);
        await WriteObjectAsync(result).ConfigureAwait(false);
        if (result.DamagedSkipped.Count > 0)
        {
            // Everything else was copied; the damaged backups were not (a non-terminating error, so $? says so).
            foreach (string damaged in result.DamagedSkipped)
            {
                PostWriteWarning(damaged);
            }
            await WriteErrorAsync(ErrorMapping.ToErrorRecord(RepositorySync.DamagedError(result))).ConfigureAwait(false);
        }
    }
}
