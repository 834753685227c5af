using System.CommandLine;
using PSBackup.Engine.Repository;

namespace PSBackup.Cli;

/// <summary>The CLI twin of PSBackupRepositoryCmdlet: --repository (named per command) and the
/// options that say how to reach and open it. Secrets are better given through the environment
/// (PSBACKUP_PASSPHRASE, AWS_SECRET_ACCESS_KEY) or --key-file than on a command line.</summary>
internal sealed class RepositoryCliOptions
{
    private readonly Option<string> _endpoint;
    private readonly Option<string> _region = new("--region") { Description = "S3 region." };
    private readonly Option<string> _accessKey = new("--access-key") { Description = "S3 access key (default: AWS_ACCESS_KEY_ID, then the shared profile)." };
    private readonly Option<string> _secretKey = new("--secret-key") { Description = "S3 secret key (prefer AWS_SECRET_ACCESS_KEY)." };
    private readonly Option<string> _profile = new("--profile") { Description = "A profile of the shared AWS credentials file." };
    private readonly Option<string> _passphrase = new("--passphrase") { Description = "Passphrase of an encrypted repository (prefer PSBACKUP_PASSPHRASE)." };
    private readonly Option<string> _keyFile = new("--key-file") { Description = "Key file of an encrypted repository (or PSBACKUP_KEY_FILE)." };

    /// <summary>Adds the options to <paramref name="command"/>.</summary>
    /// <param name="s3EndpointName">"--endpoint", or "--s3-endpoint" where --endpoint is UnisonDB's API.</param>
    public RepositoryCliOptions(Command command, string s3EndpointName = "--endpoint")
    {
        _endpoint = new(s3EndpointName) { Description = "S3 endpoint URL of a non-AWS store (path-style addressing)." };
        foreach (Option option in new Option[] { _endpoint, _region, _accessKey, _secretKey, _profile, _passphrase, _keyFile })
        {
            command.Options.Add(option);
        }
    }

    /// <summary>The first of these options given on the command line, or null: they mean nothing
    /// without a repository, so a command in local mode refuses them.</summary>
    public string? FirstGiven(ParseResult parse) =>
        new Option[] { _endpoint, _region, _accessKey, _secretKey, _profile, _passphrase, _keyFile }
            .FirstOrDefault(o => parse.GetResult(o) is { Implicit: false })?.Name;

    /// <summary>The engine's target for <paramref name="location"/>, or null when none was given.</summary>
    public RepositoryTarget? Target(ParseResult parse, string? location)
    {
        if (string.IsNullOrEmpty(location))
        {
            return null;
        }
        string? keyFile = parse.GetValue(_keyFile);
        return new RepositoryTarget
        {
            Location = RepositoryTarget.IsS3Location(location) ? location : Path.GetFullPath(location),
            Endpoint = parse.GetValue(_endpoint),
            Region = parse.GetValue(_region),
            AccessKey = parse.GetValue(_accessKey),
            SecretKey = parse.GetValue(_secretKey),
            Profile = parse.GetValue(_profile),
            Passphrase = parse.GetValue(_passphrase),
            KeyFile = keyFile is null ? null : Path.GetFullPath(keyFile),
        };
    }
}
