using System.Management.Automation;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Snapshots;

namespace PSBackup.Commands;

/// <summary>A consistent snapshot of a namespace's B-tree store to -Path (relative to
/// <c>&lt;dataDir&gt;/backups/&lt;ns&gt;</c>), written as <c>{path}.tmp</c>, fsynced and renamed; with
/// -Repository, stored in a repository (deduplicated against earlier snapshots) under the ref
/// <c>snapshot/&lt;ns&gt;/&lt;UTC time&gt;</c>.</summary>
/// <cli>snapshot create</cli>
/// <example>
/// <summary>Snapshot the store beside the data</summary>
/// <code>New-StoreSnapshot -DataDir ./unison -Namespace users -Path "snapshots/users-$(Get-Date -Format yyyyMMddTHHmmss).snapshot"</code>
/// The seed's POST /btree/backup: a consistent copy written as &lt;path&gt;.tmp, fsynced and renamed,
/// with a manifest recording the WAL position it covers (WalPosition).
/// </example>
/// <example>
/// <summary>Snapshot into a repository</summary>
/// <code>New-StoreSnapshot -DataDir ./unison -Namespace users -Repository ./repo</code>
/// Stored deduplicated against earlier snapshots (a store that changed a few pages adds only those),
/// under the ref snapshot/users/&lt;UTC time&gt;; Get-Backup lists it and Restore-PointInTime starts
/// from it.
/// </example>
[Cmdlet(VerbsCommon.New, "StoreSnapshot", SupportsShouldProcess = true, DefaultParameterSetName = DefaultSet)]
[OutputType(typeof(StoreSnapshotResult))]
public sealed class NewStoreSnapshotCommand : PSBackupRepositoryOptionsCmdlet
{
    private const string DefaultSet = "Default";
    private string _dataDir = "";

    /// <summary>The database data directory holding one folder per namespace.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string DataDir { get; set; } = "";

    /// <summary>The namespace whose store is snapshotted.</summary>
    [Parameter(Mandatory = true, Position = 1, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(NamespaceCompleter))]
    public string Namespace { get; set; } = "";

    /// <summary>Relative to <c>&lt;dataDir&gt;/backups/&lt;ns&gt;</c>, e.g. <c>snapshots/users-20250108.snapshot</c>.</summary>
    [Parameter(Mandatory = true, Position = 2, ParameterSetName = DefaultSet)]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = "";

    /// <summary>Store the snapshot in this repository (a folder or s3://bucket/prefix) instead of -Path.</summary>
    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true, ParameterSetName = RepositorySet)]
    [ValidateNotNullOrEmpty]
    public string Repository { get; set; } = "";

    /// <summary>UnisonDB's HTTP API (http://host:port): the server makes the snapshot with its own
    /// <c>POST /api/v1/{namespace}/btree/backup</c>; the way to snapshot a bbolt store while it runs.</summary>
    [Parameter]
    [ValidateNotNull]
    public Uri? Endpoint { get; set; }

    /// <summary>How long to wait for the server's reply, in seconds; 1800 (30 minutes) by default.</summary>
    [Parameter]
    [ValidateRange(1, 7 * 24 * 3600)]
    public int? EndpointTimeoutSeconds { get; set; }

    /// <summary>S3 endpoint URL of a non-AWS repository store (path-style addressing).</summary>
    [Parameter(ParameterSetName = RepositorySet)]
    [ValidateNotNullOrEmpty]
    public string? S3Endpoint { get; set; }

    protected override string? S3EndpointValue => S3Endpoint;

    private RepositoryTarget? _repository;
    private TimeSpan? _timeout;

    protected override void PrepareRecord()
    {
        _dataDir = ResolveFileSystemPath(DataDir, nameof(DataDir));
        _repository = ParameterSetName == RepositorySet ? RepositoryTargetFor(Repository) : null;
        _timeout = EndpointTimeoutSeconds is int seconds ? TimeSpan.FromSeconds(seconds) : null;
    }

    protected override async Task ProcessRecordAsync()
    {
        var options = new NewStoreSnapshotOptions(_dataDir, Namespace, _repository is null ? Path : null) { Repository = _repository, Endpoint = Endpoint, EndpointTimeout = _timeout };
        StoreSnapshotResult? result = await SnapshotOperations.CreateAsync(options, CreateContext()).ConfigureAwait(false);
        if (result is not null)
        {
            await WriteObjectAsync(result).ConfigureAwait(false);
        }
    }
}
