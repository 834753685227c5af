using System.Management.Automation;
using PSBackup.Engine.Repository;

namespace PSBackup.Commands;

/// <summary>Creates a backup repository in a folder (created when missing) or at
/// <c>s3://bucket/prefix</c>; encrypted with -Passphrase or -KeyFile, unencrypted only with
/// -Unencrypted. An existing repository is refused and left untouched.</summary>
[Cmdlet(VerbsData.Initialize, "BackupRepository", SupportsShouldProcess = true, DefaultParameterSetName = RepositorySet)]
[OutputType(typeof(RepositoryInfo))]
public sealed class InitializeBackupRepositoryCommand : PSBackupRepositoryCmdlet
{
    private RepositoryTarget? _target;

    /// <summary>A folder (relative paths resolve against the current location) or s3://bucket/prefix.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true, ParameterSetName = RepositorySet)]
    [ValidateNotNullOrEmpty]
    public string Repository { get; set; } = "";

    /// <summary>Create the repository without encryption: anyone who can read the storage can read
    /// the backups. Required when no -Passphrase or -KeyFile (nor PSBACKUP_PASSPHRASE /
    /// PSBACKUP_KEY_FILE) is given, refused when one is.</summary>
    [Parameter(ParameterSetName = RepositorySet)]
    public SwitchParameter Unencrypted { get; set; }

    protected override void PrepareRecord() => _target = RepositoryTargetFor(Repository);

    protected override async Task ProcessRecordAsync()
    {
        RepositoryInfo? info = await RepositoryOperations.InitializeAsync(new InitializeRepositoryOptions(_target!) { Unencrypted = Unencrypted.IsPresent }, CreateContext()).ConfigureAwait(false);
        if (info is not null)
        {
            PostWriteVerbose($"Created {(info.Encrypted ? "an encrypted" : "an unencrypted")} repository at {info.Repository} (id {info.RepositoryId}).");
            await WriteObjectAsync(info).ConfigureAwait(false);
        }
    }
}
