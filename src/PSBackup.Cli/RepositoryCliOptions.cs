using System.CommandLine;
using PSBackup.Engine;
using PSBackup.Engine.Repository;

namespace PSBackup.Cli;

/// <summary>The CLI twin of PSBackupRepositoryCmdlet: --repository (named per command) and the
/// options that say how to reach and open it. Secrets are better given through the environment
/// (PSBACKUP_PASSPHRASE, AWS_SECRET_ACCESS_KEY, AZURE_STORAGE_CONNECTION_STRING, ...) or
/// --key-file than on a command line. With a <c>prefix</c> ("destination") only the storage
/// options exist, named --destination-endpoint and so on (the other side of a sync).</summary>
internal sealed class RepositoryCliOptions
{
    private readonly Option<string> _endpoint;
    private readonly Option<string> _region;
    private readonly Option<string> _accessKey;
    private readonly Option<string> _secretKey;
    private readonly Option<string> _sessionToken;
    private readonly Option<string> _profile;
    private readonly Option<string> _storageCredential;
    private readonly Option<string> _sasToken;
    private readonly Option<string> _connectionString;
    private readonly Option<string>? _passphrase;
    private readonly Option<string>? _keyFile;
    private readonly Option[] _all;

    /// <summary>Adds the options to <paramref name="command"/>.</summary>
    /// <param name="s3EndpointName">"--endpoint", or "--s3-endpoint" where --endpoint is UnisonDB's API.</param>
    public RepositoryCliOptions(Command command, string s3EndpointName = "--endpoint", string? prefix = null)
    {
        string p = prefix is null ? "--" : $"--{prefix}-";
        _endpoint = new(prefix is null ? s3EndpointName : $"{p}endpoint") { Description = "Endpoint URL: of a non-AWS S3 store (path-style addressing), or an Azure account's blob endpoint." };
        _region = new($"{p}region") { Description = "S3 region." };
        _accessKey = new($"{p}access-key") { Description = "S3 access key (default: AWS_ACCESS_KEY_ID, the shared profile, then the SDK's default chain)." };
        _secretKey = new($"{p}secret-key") { Description = "S3 secret key (prefer AWS_SECRET_ACCESS_KEY)." };
        _sessionToken = new($"{p}session-token") { Description = "S3 session token of temporary credentials (prefer AWS_SESSION_TOKEN)." };
        _profile = new($"{p}profile") { Description = "A profile of the shared AWS credentials file (SSO profiles included)." };
        _storageCredential = new($"{p}storage-credential") { Description = "USER:SECRET: the S3 access key and secret, or the Azure account name and key (prefer the environment)." };
        _sasToken = new($"{p}sas-token") { Description = "Azure Blob SAS token (prefer AZURE_STORAGE_SAS_TOKEN)." };
        _connectionString = new($"{p}connection-string") { Description = "Azure storage connection string (prefer AZURE_STORAGE_CONNECTION_STRING)." };
        var all = new List<Option> { _endpoint, _region, _accessKey, _secretKey, _sessionToken, _profile, _storageCredential, _sasToken, _connectionString };
        if (prefix is null)
        {
            _passphrase = new("--passphrase") { Description = "Passphrase of an encrypted repository (prefer PSBACKUP_PASSPHRASE)." };
            _keyFile = new("--key-file") { Description = "Key file of an encrypted repository (or PSBACKUP_KEY_FILE)." };
            all.Add(_passphrase);
            all.Add(_keyFile);
        }
        _all = all.ToArray();
        foreach (Option option in _all)
        {
            command.Options.Add(option);
        }
    }

    /// <summary>The first of these options given on the command line, or null: they mean nothing
    /// without a repository, so a command in local mode refuses them.</summary>
    public string? FirstGiven(ParseResult parse) => _all.FirstOrDefault(o => parse.GetResult(o) is { Implicit: false })?.Name;

    /// <summary>The engine's target for <paramref name="location"/>, or null when none was given.</summary>
    public RepositoryTarget? Target(ParseResult parse, string? location)
    {
        if (location is null)
        {
            return null;
        }
        if (string.IsNullOrWhiteSpace(location))
        {
            throw new PSBackup.Engine.InvalidInputException("InvalidRepository", "The repository location is empty. Give a folder path, s3://bucket/prefix or az://account/container/prefix.", location);
        }
        string? keyFile = _keyFile is null ? null : parse.GetValue(_keyFile);
        return StorageOptionsOnto(parse, new RepositoryTarget
        {
            Location = RepositoryTarget.IsRemoteLocation(location) ? location : Path.GetFullPath(location),
            Passphrase = _passphrase is null ? null : parse.GetValue(_passphrase),
            KeyFile = keyFile is null ? null : Path.GetFullPath(keyFile),
        }).WithSasSplitOff();
    }

    /// <summary>The storage options of <paramref name="parse"/> applied to <paramref name="target"/>
    /// (the destination side of a sync), keeping its location and key options.</summary>
    public RepositoryTarget StorageOptionsOnto(ParseResult parse, RepositoryTarget target) => target with
    {
        Endpoint = parse.GetValue(_endpoint),
        Region = parse.GetValue(_region),
        AccessKey = parse.GetValue(_accessKey),
        SecretKey = parse.GetValue(_secretKey),
        SessionToken = parse.GetValue(_sessionToken),
        Profile = parse.GetValue(_profile),
        StorageCredential = Credential(parse.GetValue(_storageCredential), _storageCredential.Name),
        SasToken = parse.GetValue(_sasToken),
        ConnectionString = parse.GetValue(_connectionString),
    };

    /// <summary>USER:SECRET (like curl -u); the secret may itself contain ':'.</summary>
    private static StorageCredential? Credential(string? value, string option)
    {
        if (value is null)
        {
            return null;
        }
        int colon = value.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0 || colon == value.Length - 1)
        {
            throw new InvalidInputException("InvalidStorageCredential",
                $"{option} takes USER:SECRET (the S3 access key and secret key, or the Azure account name and account key).", option);
        }
        return new StorageCredential(value[..colon], value[(colon + 1)..]);
    }
}
