using System.Management.Automation;
using PSBackup.Engine.Repository;

namespace PSBackup.Commands;

/// <summary>Creates a backup repository in a folder (created when missing) or at
/// <c>s3://bucket/prefix</c>; encrypted with -Passphrase or -KeyFile, unencrypted only with
/// -Unencrypted. An existing repository is refused and left untouched.</summary>
/// <cli>repo init</cli>
/// <example>
/// <summary>Create an unencrypted repository in a folder</summary>
/// <code>Initialize-BackupRepository -Repository ./new-repo -Unencrypted</code>
/// The folder is created when missing. Choosing no encryption is explicit: without -Unencrypted and
/// without a key the command refuses.
/// </example>
/// <example>
/// <summary>Create a repository encrypted with a key file</summary>
/// <code>[System.IO.File]::WriteAllBytes("$PWD/repo.key", [System.Security.Cryptography.RandomNumberGenerator]::GetBytes(64))
/// Initialize-BackupRepository -Repository ./secure-repo -KeyFile ./repo.key</code>
/// A key file needs at least 32 random bytes; keep it outside the repository. Every later command that
/// opens the repository takes -KeyFile (or $env:PSBACKUP_KEY_FILE); -Passphrase works the same with a
/// SecureString.
/// </example>
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
