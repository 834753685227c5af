using System.Management.Automation;
using PSBackup.Engine.ObjectStore;

namespace PSBackup.Commands;

/// <summary>Verifies an object backup against its manifest and swaps it in atomically, keeping
/// the replaced live object aside.</summary>
[Cmdlet(VerbsData.Restore, "ObjectBackup", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High,
    DefaultParameterSetName = DefaultSet)]
[OutputType(typeof(ObjectRestoreResult))]
public sealed class RestoreObjectBackupCommand : PSBackupCmdlet
{
    private const string DefaultSet = "Default";
    private string _dbRoot = "";

    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true, ParameterSetName = DefaultSet)]
    [ValidateNotNullOrEmpty]
    public string DbRoot { get; set; } = "";

    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true, ParameterSetName = DefaultSet)]
    [ValidateNotNullOrEmpty]
    public string Dir { get; set; } = "";

    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true, ParameterSetName = DefaultSet)]
    [ValidateNotNullOrEmpty]
    public string Object { get; set; } = "";

    /// <summary>The backup folder name (<c>&lt;obj&gt;.backup-yyyyMMddTHHmmss</c>), a sibling of the object.</summary>
    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true, ParameterSetName = DefaultSet)]
    [Alias("BackupName")]
    [ValidateNotNullOrEmpty]
    public string From { get; set; } = "";

    /// <summary>Replace a live object that is not empty (it is kept aside, never deleted).</summary>
    [Parameter(ParameterSetName = DefaultSet)]
    public SwitchParameter Force { get; set; }

    /// <summary>Record the outcome in this history folder (outside $DB_ROOT; default: PSBACKUP_HISTORY_PATH).</summary>
    [Parameter(ParameterSetName = DefaultSet)]
    [ValidateNotNullOrEmpty]
    public string? HistoryPath { get; set; }

    private string? _historyPath;

    protected override void PrepareRecord()
    {
        _dbRoot = ResolveFileSystemPath(DbRoot, nameof(DbRoot));
        _historyPath = HistoryPath is null ? null : GetUnresolvedProviderPathFromPSPath(HistoryPath);
    }

    protected override async Task ProcessRecordAsync()
    {
        var options = new RestoreObjectBackupOptions(_dbRoot, Dir, Object, From) { Force = Force.IsPresent, HistoryPath = _historyPath };
        PostWriteVerbose($"Restoring '{Dir}/{Object}' under '{_dbRoot}' from '{From}'.");
        ObjectRestoreResult? result = await ObjectOperations.RestoreAsync(options, CreateContext()).ConfigureAwait(false);
        if (result is not null)
        {
            PostWriteObject(result);
        }
    }
}
