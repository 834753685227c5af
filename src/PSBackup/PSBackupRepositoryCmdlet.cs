using System.Management.Automation;
using System.Runtime.InteropServices;
using System.Security;
using PSBackup.Engine.Repository;

namespace PSBackup;

/// <summary>Base of cmdlets that read or write a repository: the parameters that say how to reach
/// and open it, beside each cmdlet's own <c>-Repository</c>. They belong to the
/// Repository parameter set; cmdlets whose only mode is a repository make it
/// their default set. S3 credentials fall back to the AWS_* environment, the shared profile and the
/// SDK's default chain; Azure ones to AZURE_STORAGE_* and then Entra ID (managed identity); the
/// key to <c>PSBACKUP_PASSPHRASE</c> / <c>PSBACKUP_KEY_FILE</c>.</summary>
public abstract class PSBackupRepositoryCmdlet : PSBackupRepositoryOptionsCmdlet
{
    /// <summary>Endpoint URL: of a non-AWS S3 store (path-style addressing), or an Azure account's
    /// blob endpoint in another cloud or behind a private endpoint.</summary>
    [Parameter(ParameterSetName = RepositorySet)]
    [ValidateNotNullOrEmpty]
    public string? Endpoint { get; set; }

    protected override string? S3EndpointValue => Endpoint;
}

/// <summary>The repository options without the S3 endpoint's name: cmdlets whose <c>-Endpoint</c>
/// is UnisonDB's own HTTP API (New-StoreSnapshot, Invoke-WalShip) take it as <c>-S3Endpoint</c>.</summary>
public abstract class PSBackupRepositoryOptionsCmdlet : PSBackupCmdlet
{
    protected const string RepositorySet = "Repository";

    /// <summary>The S3 endpoint given, whatever the parameter is called.</summary>
    protected abstract string? S3EndpointValue { get; }

    /// <summary>The S3 region of the repository (default: the AWS profile or environment; any value for most non-AWS stores).</summary>
    [Parameter(ParameterSetName = RepositorySet)]
    [ValidateNotNullOrEmpty]
    public string? Region { get; set; }

    /// <summary>The S3 access key id (default: AWS_ACCESS_KEY_ID, then the shared credentials profile).</summary>
    [Parameter(ParameterSetName = RepositorySet)]
    [ValidateNotNullOrEmpty]
    public string? AccessKey { get; set; }

    /// <summary>The S3 secret access key, as a SecureString (default: AWS_SECRET_ACCESS_KEY, then the shared credentials profile).</summary>
    [Parameter(ParameterSetName = RepositorySet)]
    [ValidateNotNull]
    public SecureString? SecretKey { get; set; }

    /// <summary>The session token of temporary S3 credentials (with -AccessKey/-SecretKey or
    /// -StorageCredential); AWS_SESSION_TOKEN otherwise.</summary>
    [Parameter(ParameterSetName = RepositorySet)]
    [ValidateNotNull]
    public SecureString? SessionToken { get; set; }

    /// <summary>A profile of the shared AWS credentials file.</summary>
    [Parameter(ParameterSetName = RepositorySet)]
    [ValidateNotNullOrEmpty]
    public string? Profile { get; set; }

    /// <summary>Storage keys as one credential (Get-Credential, Get-AutomationPSCredential): for
    /// S3 the access key id as user name and the secret access key as password; for Azure Blob
    /// the storage account name and the account key.</summary>
    [Parameter(ParameterSetName = RepositorySet)]
    [ValidateNotNull]
    [Credential]
    public PSCredential? StorageCredential { get; set; }

    /// <summary>Azure Blob: a SAS token for the container (or put it in the https:// location's
    /// query); AZURE_STORAGE_SAS_TOKEN otherwise.</summary>
    [Parameter(ParameterSetName = RepositorySet)]
    [ValidateNotNull]
    public SecureString? SasToken { get; set; }

    /// <summary>Azure Blob: a storage connection string; AZURE_STORAGE_CONNECTION_STRING otherwise.
    /// Without any Azure credential, Entra ID (managed identity, az login, ...) is used.</summary>
    [Parameter(ParameterSetName = RepositorySet)]
    [ValidateNotNull]
    public SecureString? ConnectionString { get; set; }

    /// <summary>The passphrase of an encrypted repository.</summary>
    [Parameter(ParameterSetName = RepositorySet)]
    [ValidateNotNull]
    public SecureString? Passphrase { get; set; }

    /// <summary>The key file of an encrypted repository: its path, or its content as a SecureString
    /// (or a PSCredential, whose password is used), e.g. from Get-AutomationPSCredential in an
    /// Azure Automation runbook. A key file that others can read gets a warning.</summary>
    [Parameter(ParameterSetName = RepositorySet)]
    [ValidateNotNull]
    [KeyFileTransformation]
    public object? KeyFile { get; set; }

    /// <summary>The engine's target for <paramref name="location"/> with this cmdlet's options; a
    /// folder location is resolved against PowerShell's current location (a failure names
    /// <paramref name="parameterName"/>, e.g. -Source). Null when no location.</summary>
    protected RepositoryTarget? RepositoryTargetFor(string? location, string parameterName = "Repository")
    {
        if (string.IsNullOrEmpty(location))
        {
            return null;
        }
        var target = new RepositoryTarget
        {
            Location = RepositoryTarget.IsRemoteLocation(location) ? location : ResolveFileSystemPath(location, parameterName),
            Endpoint = S3EndpointValue,
            Region = Region,
            AccessKey = AccessKey,
            SecretKey = Plain(SecretKey),
            SessionToken = Plain(SessionToken),
            Profile = Profile,
            StorageCredential = CredentialOf(StorageCredential),
            SasToken = Plain(SasToken),
            ConnectionString = Plain(ConnectionString),
            Passphrase = Plain(Passphrase),
            KeyFile = KeyFile is string path ? ResolveFileSystemPath(path, nameof(KeyFile)) : null,
            Key = KeyFile is SecureString key ? Plain(key) : null,
        };
        string? keyFile = target.KeyFile ?? (target.Passphrase is null && target.Key is null ? Environment.GetEnvironmentVariable(RepositoryConnector.KeyFileVariable) : null);
        if (!string.IsNullOrEmpty(keyFile) && KeyFiles.PermissionWarning(keyFile) is { } warning)
        {
            WriteWarning(warning);
        }
        try
        {
            return target.WithSasSplitOff();
        }
        catch (Engine.InvalidInputException e)
        {
            ThrowTerminatingError(ErrorMapping.ToErrorRecord(e));
            throw; // not reached
        }
    }

    /// <summary>A PSCredential as the engine's user name + secret.</summary>
    protected static StorageCredential? CredentialOf(PSCredential? credential) =>
        credential is null || credential == PSCredential.Empty ? null : new StorageCredential(credential.UserName, Plain(credential.Password)!);

    /// <summary>For cmdlets that read either a local backup root (-DataDir) or a repository
    /// (-Repository) and take both by property name from Get-Backup's records, where one of them
    /// is null: checks per record that there is a source. <paramref name="dataDirIsSource"/>
    /// false means -DataDir may come with -Repository (it is then only where to restore).
    /// Empty counts as not given. Failures are terminating (bad input).</summary>
    protected void RequireSource(string? dataDir, string? repository, bool dataDirIsSource)
    {
        bool hasDataDir = !string.IsNullOrEmpty(dataDir);
        bool hasRepository = !string.IsNullOrEmpty(repository);
        RequireRepositoryForOptions(repository);
        if (!hasDataDir && !hasRepository)
        {
            ThrowTerminatingError(ErrorMapping.ToErrorRecord(new Engine.InvalidInputException("SourceRequired",
                "Give -DataDir (the local backup root <DataDir>/backups/<Namespace>) or -Repository (a folder or s3://bucket/prefix), or pipe a record from Get-Backup.", null)));
        }
        if (dataDirIsSource && hasDataDir && hasRepository)
        {
            ThrowTerminatingError(ErrorMapping.ToErrorRecord(new Engine.InvalidInputException("AmbiguousSource",
                $"Give one of -DataDir '{dataDir}' (a local backup root) and -Repository '{repository}', not both.", null)));
        }
    }

    /// <summary>The repository set's options mean nothing without -Repository (empty counts as
    /// not given): a terminating bad-input error.</summary>
    protected void RequireRepositoryForOptions(string? repository)
    {
        if (string.IsNullOrEmpty(repository) && ParameterSetName == RepositorySet)
        {
            ThrowTerminatingError(ErrorMapping.ToErrorRecord(new Engine.InvalidInputException("RepositoryRequired",
                $"{(this is PSBackupRepositoryCmdlet ? "-Endpoint" : "-S3Endpoint")}, -Region, -AccessKey, -SecretKey, -SessionToken, -Profile, -StorageCredential, -SasToken, -ConnectionString, -Passphrase and -KeyFile say how to open a repository: give -Repository too.", null)));
        }
    }

    protected static string? Plain(SecureString? value)
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

/// <summary>Lets -KeyFile take a path (string, FileInfo) or the key itself (SecureString, or a
/// PSCredential's password).</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class KeyFileTransformationAttribute : ArgumentTransformationAttribute
{
    public override object? Transform(EngineIntrinsics engineIntrinsics, object? inputData)
    {
        object? value = inputData is PSObject pso ? pso.BaseObject : inputData;
        return value switch
        {
            null => null,
            string s => s,
            SecureString key => key,
            PSCredential credential => credential.Password,
            FileSystemInfo file => file.FullName,
            _ => throw new ArgumentTransformationMetadataException(
                $"-KeyFile takes a path or the key as a SecureString (or a PSCredential), not a {value.GetType().Name}."),
        };
    }
}
