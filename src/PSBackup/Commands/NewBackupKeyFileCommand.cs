using System.Management.Automation;
using PSBackup.Engine.Repository;

namespace PSBackup.Commands;

/// <summary>Writes a new random key file for an encrypted repository, readable only by its owner
/// (mode 0600 on Linux and macOS; an ACL granting only the current user on Windows). The key is
/// 88 characters of base64 text without a line break, so it can also be kept in a secret store
/// (an Azure Automation credential or variable) and given to -KeyFile as a SecureString. An
/// existing file is never replaced without -Force.</summary>
/// <cli>key new</cli>
/// <example>
/// <summary>Create a key file</summary>
/// <code>New-BackupKeyFile -Path ./repo.key</code>
/// Writes 64 random bytes as base64 text, readable only by the current user. Keep a copy somewhere
/// safe: without it the repository cannot be read.
/// </example>
/// <example>
/// <summary>An encrypted repository opened with a key file</summary>
/// <code>New-BackupKeyFile -Path ./offsite.key
/// Initialize-BackupRepository -Repository ./offsite -KeyFile ./offsite.key
/// New-ObjectBackup -DbRoot ./shard-db -Dir acme -Object orders -Repository ./offsite -KeyFile ./offsite.key</code>
/// Every command that opens the repository takes the same -KeyFile (or PSBACKUP_KEY_FILE).
/// </example>
[Cmdlet(VerbsCommon.New, "BackupKeyFile", SupportsShouldProcess = true, DefaultParameterSetName = DefaultSet)]
[OutputType(typeof(KeyFileInfo))]
public sealed class NewBackupKeyFileCommand : PSBackupCmdlet
{
    private const string DefaultSet = "Default";
    private string _path = "";

    /// <summary>The key file to create (relative paths resolve against the current location); its folder must exist.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true, ParameterSetName = DefaultSet)]
    [Alias("KeyFile")]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = "";

    /// <summary>Replace an existing file. Its repositories then need the old key: keep a copy first.</summary>
    [Parameter(ParameterSetName = DefaultSet)]
    public SwitchParameter Force { get; set; }

    protected override void PrepareRecord() => _path = ResolveFileSystemPath(Path, nameof(Path));

    protected override async Task ProcessRecordAsync()
    {
        KeyFileInfo? info = await KeyFiles.NewAsync(new NewKeyFileOptions(_path) { Force = Force.IsPresent }, CreateContext()).ConfigureAwait(false);
        if (info is not null)
        {
            await WriteObjectAsync(info).ConfigureAwait(false);
        }
    }
}
