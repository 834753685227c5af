using System.Management.Automation;
using PSBackup.Engine.Repository;

namespace PSBackup.Commands;

/// <summary>Lists what a repository holds (default), a namespace's local backups (-DataDir with
/// -Namespace) or a tenant dir's local object backups (-DbRoot with -Dir), newest first.</summary>
/// <cli>list</cli>
/// <example>
/// <summary>List a repository, newest first</summary>
/// <code>Get-Backup -Repository ./repo</code>
/// Object backups, store snapshots and WAL segments with their time (when each backup is restorable as
/// of), kind, size and id. The listing streams: piping it into Select-Object -First n reads only what
/// it needs.
/// </example>
/// <example>
/// <summary>A namespace's newest snapshot</summary>
/// <code>Get-Backup -Repository ./repo -Namespace users -Kind StoreSnapshot | Select-Object -First 1</code>
/// -Kind takes Object, StoreSnapshot or WalSegment (or store-snapshot, as the command line writes it).
/// The record pipes into Restore-StoreSnapshot, Restore-PointInTime, Test-Restore and Remove-Backup.
/// </example>
/// <example>
/// <summary>This week's local object backups</summary>
/// <code>Get-Backup -DbRoot ./shard-db -Dir acme -After (Get-Date).AddDays(-7)</code>
/// Local object backup folders of the tenant dir; one without its manifest (an interrupted backup) is
/// listed with Complete = False.
/// </example>
[Cmdlet(VerbsCommon.Get, "Backup", DefaultParameterSetName = RepositorySet)]
[OutputType(typeof(BackupRecord))]
public sealed class GetBackupCommand : PSBackupRepositoryCmdlet
{
    private const string DataDirSet = "DataDir";
    private const string DbRootSet = "DbRoot";
    private RepositoryTarget? _repository;
    private string? _dataDir;
    private string? _dbRoot;

    /// <summary>The repository: a folder or s3://bucket/prefix.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true, ParameterSetName = RepositorySet)]
    [ValidateNotNullOrEmpty]
    public string Repository { get; set; } = "";

    /// <summary>A data directory: list &lt;DataDir&gt;/backups/&lt;Namespace&gt; (snapshots and shipped segments).</summary>
    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true, ParameterSetName = DataDirSet)]
    [ValidateNotNullOrEmpty]
    public string DataDir { get; set; } = "";

    /// <summary>An object store root: list the object backups of -Dir.</summary>
    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true, ParameterSetName = DbRootSet)]
    [ValidateNotNullOrEmpty]
    public string DbRoot { get; set; } = "";

    /// <summary>Only backups of this namespace (store snapshots and WAL segments); required with -DataDir.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true, ParameterSetName = RepositorySet)]
    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true, ParameterSetName = DataDirSet)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(NamespaceCompleter))]
    public string? Namespace { get; set; }

    /// <summary>Only object backups of this tenant dir; required with -DbRoot.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true, ParameterSetName = RepositorySet)]
    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true, ParameterSetName = DbRootSet)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(DirCompleter))]
    public string? Dir { get; set; }

    /// <summary>Only backups of this object.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true, ParameterSetName = RepositorySet)]
    [Parameter(ValueFromPipelineByPropertyName = true, ParameterSetName = DbRootSet)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(ObjectCompleter))]
    public string? Object { get; set; }

    /// <summary>Only backups of this kind: Object, StoreSnapshot or WalSegment (the command line's
    /// object, store-snapshot and wal-segment are accepted too).</summary>
    [Parameter(ParameterSetName = RepositorySet)]
    [Parameter(ParameterSetName = DataDirSet)]
    public BackupKind? Kind { get; set; }

    /// <summary>Only backups taken at or after this time.</summary>
    [Parameter]
    [InstantTransformation]
    public DateTimeOffset? After { get; set; }

    /// <summary>Only backups taken at or before this time.</summary>
    [Parameter]
    [InstantTransformation]
    public DateTimeOffset? Before { get; set; }

    protected override void PrepareRecord()
    {
        _repository = ParameterSetName == RepositorySet ? RepositoryTargetFor(Repository) : null;
        _dataDir = ParameterSetName == DataDirSet ? ResolveFileSystemPath(DataDir, nameof(DataDir)) : null;
        _dbRoot = ParameterSetName == DbRootSet ? ResolveFileSystemPath(DbRoot, nameof(DbRoot)) : null;
    }

    protected override async Task ProcessRecordAsync()
    {
        var options = new GetBackupOptions
        {
            Repository = _repository,
            DataDir = _dataDir,
            DbRoot = _dbRoot,
            Namespace = Namespace,
            Dir = Dir,
            Object = Object,
            Kind = Kind,
            After = After,
            Before = Before,
        };
        // Streamed and awaited: a downstream Select-Object -First n stops the manifest reads.
        var damagedManifests = new List<DamagedBackup>();
        await foreach (BackupRecord record in BackupCatalog.ListEachAsync(options, CreateContext(), damagedManifests).WithCancellation(CancelToken).ConfigureAwait(false))
        {
            if (record.Problem is not null)
            {
                PostWriteWarning($"Backup {record.BackupId} cannot be restored as it stands: {record.Problem}. Run Repair-BackupRepository.");
            }
            await WriteObjectAsync(record).ConfigureAwait(false);
        }
        // A damaged manifest is not a backup: a non-terminating error each, after the others.
        List<DamagedBackup> damagedList;
        lock (damagedManifests)
        {
            damagedList = damagedManifests.OrderBy(d => d.BackupId, StringComparer.Ordinal).ToList();
        }
        foreach (DamagedBackup damaged in damagedList)
        {
            await WriteErrorAsync(ErrorMapping.ToErrorRecord(damaged.ToException())).ConfigureAwait(false);
        }
    }
}
