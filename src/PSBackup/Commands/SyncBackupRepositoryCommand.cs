using System.Management.Automation;
using PSBackup.Engine.Repository;

namespace PSBackup.Commands;

/// <summary>Copies a repository (or a plain local backup root) to another location, only what is
/// missing there, verifying each object before it is stored. -WhatIf lists what would be copied.
/// The S3 options (-Endpoint, ...) apply to whichever side is s3://; the key options to the source.</summary>
/// <cli>sync</cli>
/// <example>
/// <summary>Copy a repository offsite</summary>
/// <code>Sync-BackupRepository -Source ./repo -Destination ./offsite</code>
/// Copies what the destination lacks, verifying each object before it is stored, in the order that
/// keeps the destination valid if interrupted. Usually the destination is s3://bucket/prefix with
/// -S3Endpoint or -Endpoint and credentials.
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

    /// <summary>A repository (folder or s3://bucket/prefix), or a local backup folder. Binds a
    /// piped record's Repository property, so Get-Backup's output syncs its repository (once per
    /// pipeline, however many records name it).</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true, ParameterSetName = RepositorySet)]
    [Alias("Repository")]
    [ValidateNotNullOrEmpty]
    public string Source { get; set; } = "";

    /// <summary>A folder or s3://bucket/prefix: empty, or an earlier copy of the source.</summary>
    [Parameter(Mandatory = true, Position = 1, ParameterSetName = RepositorySet)]
    [ValidateNotNullOrEmpty]
    public string Destination { get; set; } = "";

    protected override void PrepareRecord()
    {
        _source = RepositoryTargetFor(Source, nameof(Source));
        _destination = RepositoryTargetFor(Destination, nameof(Destination));
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
    }
}
