using System.Management.Automation;
using PSBackup.Engine.Repository;

namespace PSBackup;

/// <summary>Base of the cmdlets that read an operation history (Get-BackupHealth,
/// Export-BackupMetric): a repository's (the default set), a data directory's local backup root
/// (-DataDir), or the history folder local object backups record into (-HistoryPath). Exactly
/// one of the three, by parameter set; resolved once per record into <see cref="SourceRepository"/>,
/// <see cref="SourceDataDir"/> and <see cref="SourceHistoryPath"/>.</summary>
public abstract class PSBackupHistoryCmdlet : PSBackupRepositoryCmdlet
{
    protected const string DataDirSet = "DataDir";
    protected const string HistorySet = "History";

    /// <summary>Read the history and backups of this repository: a folder or s3://bucket/prefix.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true, ParameterSetName = RepositorySet)]
    [ValidateNotNullOrEmpty]
    public string Repository { get; set; } = "";

    /// <summary>Read the history and backups of the local backup roots under &lt;DataDir&gt;/backups (one per namespace).</summary>
    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true, ParameterSetName = DataDirSet)]
    [ValidateNotNullOrEmpty]
    public string DataDir { get; set; } = "";

    /// <summary>Read the history folder local object backups record into (New-ObjectBackup -HistoryPath).</summary>
    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true, ParameterSetName = HistorySet)]
    [ValidateNotNullOrEmpty]
    public string HistoryPath { get; set; } = "";

    /// <summary>Only these namespaces (default: every namespace with backups or history).</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(NamespaceCompleter))]
    public string[]? Namespace { get; set; }

    /// <summary>With -Repository: the data directory of the live database, so the WAL lag (how far
    /// the repository's archive is behind the live WAL) is measured too. -DataDir measures it
    /// against the local backup root without this.</summary>
    [Parameter(ParameterSetName = RepositorySet)]
    [ValidateNotNullOrEmpty]
    public string? LiveDataDir { get; set; }

    protected RepositoryTarget? SourceRepository { get; private set; }
    /// <summary>The resolved -LiveDataDir (null without it).</summary>
    protected string? SourceLiveDataDir { get; private set; }
    protected string? SourceDataDir { get; private set; }
    protected string? SourceHistoryPath { get; private set; }

    protected override void PrepareRecord()
    {
        SourceRepository = ParameterSetName == RepositorySet ? RepositoryTargetFor(Repository) : null;
        SourceDataDir = ParameterSetName == DataDirSet ? ResolveFileSystemPath(DataDir, nameof(DataDir)) : null;
        SourceHistoryPath = ParameterSetName == HistorySet ? ResolveFileSystemPath(HistoryPath, nameof(HistoryPath)) : null;
        SourceLiveDataDir = LiveDataDir is null ? null : ResolveFileSystemPath(LiveDataDir, nameof(LiveDataDir));
    }
}
