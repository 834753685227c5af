using System.Management.Automation;
using System.Runtime.InteropServices;
using System.Security;
using PSBackup.Engine.Repository;

namespace PSBackup;

/// <summary>Base of cmdlets that read or write a repository: the parameters that say how to reach
/// and open it, beside each cmdlet's own <c>-Repository</c>. They belong to the
/// <see cref="RepositorySet"/> parameter set; cmdlets whose only mode is a repository make it
/// their default set. S3 credentials fall back to the AWS_* environment and the shared profile,
/// the key to <c>PSBACKUP_PASSPHRASE</c> / <c>PSBACKUP_KEY_FILE</c>.</summary>
public abstract class PSBackupRepositoryCmdlet : PSBackupCmdlet
{
    protected const string RepositorySet = "Repository";

    /// <summary>S3 endpoint URL of a non-AWS store (path-style addressing).</summary>
    [Parameter(ParameterSetName = RepositorySet)]
    [ValidateNotNullOrEmpty]
    public string? Endpoint { get; set; }

    [Parameter(ParameterSetName = RepositorySet)]
    [ValidateNotNullOrEmpty]
    public string? Region { get; set; }

    [Parameter(ParameterSetName = RepositorySet)]
    [ValidateNotNullOrEmpty]
    public string? AccessKey { get; set; }

    [Parameter(ParameterSetName = RepositorySet)]
    [ValidateNotNull]
    public SecureString? SecretKey { get; set; }

    /// <summary>A profile of the shared AWS credentials file.</summary>
    [Parameter(ParameterSetName = RepositorySet)]
    [ValidateNotNullOrEmpty]
    public string? Profile { get; set; }

    /// <summary>The passphrase of an encrypted repository.</summary>
    [Parameter(ParameterSetName = RepositorySet)]
    [ValidateNotNull]
    public SecureString? Passphrase { get; set; }

    /// <summary>The key file of an encrypted repository.</summary>
    [Parameter(ParameterSetName = RepositorySet)]
    [ValidateNotNullOrEmpty]
    public string? KeyFile { get; set; }

    /// <summary>The engine's target for <paramref name="location"/> with this cmdlet's options; a
    /// folder location is resolved against PowerShell's current location (a failure names
    /// <paramref name="parameterName"/>, e.g. -Source). Null when no location.</summary>
    protected RepositoryTarget? RepositoryTargetFor(string? location, string parameterName = "Repository")
    {
        if (string.IsNullOrEmpty(location))
        {
            return null;
        }
        return new RepositoryTarget
        {
            Location = RepositoryTarget.IsS3Location(location) ? location : ResolveFileSystemPath(location, parameterName),
            Endpoint = Endpoint,
            Region = Region,
            AccessKey = AccessKey,
            SecretKey = Plain(SecretKey),
            Profile = Profile,
            Passphrase = Plain(Passphrase),
            KeyFile = KeyFile is null ? null : ResolveFileSystemPath(KeyFile, nameof(KeyFile)),
        };
    }

    private static string? Plain(SecureString? value)
    {
        if (value is null)
        {
            return null;
        }
        IntPtr bstr = Marshal.SecureStringToBSTR(value);
        try
        {
            return Marshal.PtrToStringBSTR(bstr);
        }
        finally
        {
            Marshal.ZeroFreeBSTR(bstr);
        }
    }
}
