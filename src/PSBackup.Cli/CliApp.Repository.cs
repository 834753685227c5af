using System.CommandLine;
using PSBackup.Engine;
using PSBackup.Engine.Repository;

namespace PSBackup.Cli;

/// <summary>The repository side of the CLI: <c>repo init</c>, and the <c>--repository</c> option
/// (with its S3 and key options) of the commands that can write to a repository.</summary>
public static partial class CliApp
{
    private static Command RepoCommand()
    {
        var repo = new Command("repo", "Create and manage off-host backup repositories.");
        repo.Subcommands.Add(RepoInitCommand());
        return repo;
    }

    private static Command KeyCommand()
    {
        var key = new Command("key", "Key files for encrypted repositories.");
        var command = new Command("new", "Write a new random key file readable only by its owner (mode 0600; an owner-only ACL on Windows) (New-BackupKeyFile).");
        var path = new Option<string>("--path") { Description = "The key file to create; its folder must exist.", Required = true };
        var force = new Option<bool>("--force") { Description = "Replace an existing file (its repositories then need the old key, kept elsewhere)." };
        command.Options.Add(path);
        command.Options.Add(force);
        AddCommon(command, out Option<bool> json, out Option<bool>? whatIf, writes: true);
        command.SetAction((parse, ct) => Run(parse, ct, async io =>
        {
            KeyFileInfo? info = await KeyFiles.NewAsync(new NewKeyFileOptions(FullPath(parse.GetValue(path), "--path")) { Force = parse.GetValue(force) },
                io.Context(parse.GetValue(whatIf!))).ConfigureAwait(false);
            if (info is not null)
            {
                CliOutput.KeyFile(io.Stdout, info, parse.GetValue(json));
            }
        }));
        key.Subcommands.Add(command);
        return key;
    }

    private static Command RepoInitCommand()
    {
        var command = new Command("init", "Create a repository in a folder (created when missing) or at s3://bucket/prefix, encrypted with a passphrase or key file, or --unencrypted (Initialize-BackupRepository).");
        var repository = new Option<string>("--repository") { Description = "A folder, or s3://bucket/prefix.", Required = true };
        command.Options.Add(repository);
        var unencrypted = new Option<bool>("--unencrypted") { Description = "Create it without encryption (required when no passphrase or key file is given)." };
        command.Options.Add(unencrypted);
        var repoOptions = new RepositoryCliOptions(command);
        AddCommon(command, out Option<bool> json, out Option<bool>? whatIf, writes: true);
        command.SetAction((parse, ct) => Run(parse, ct, async io =>
        {
            RepositoryTarget target = repoOptions.Target(parse, RequireLocation(parse.GetValue(repository)))!;
            RepositoryInfo? info = await RepositoryOperations.InitializeAsync(new InitializeRepositoryOptions(target) { Unencrypted = parse.GetValue(unencrypted) }, io.Context(parse.GetValue(whatIf!))).ConfigureAwait(false);
            if (info is not null)
            {
                CliOutput.RepositoryInit(io.Stdout, info, parse.GetValue(json));
            }
        }));
        return command;
    }

    /// <summary>Adds <c>--repository</c> and its companion options to a command that also has a local mode.</summary>
    private static (Option<string> Repository, RepositoryCliOptions Options) AddRepositoryOptions(Command command, string description, string s3EndpointName = "--endpoint")
    {
        var repository = new Option<string>("--repository") { Description = description };
        command.Options.Add(repository);
        return (repository, new RepositoryCliOptions(command, s3EndpointName));
    }

    /// <summary><c>--endpoint</c> (UnisonDB's HTTP API) and <c>--endpoint-timeout</c>.</summary>
    private static (Option<string> Endpoint, Option<int?> Timeout) AddUnisonEndpointOptions(Command command, string description)
    {
        var endpoint = new Option<string>("--endpoint") { Description = description };
        var timeout = new Option<int?>("--endpoint-timeout-seconds") { Description = "How long to wait for the server's reply, in seconds (default 1800)." };
        command.Options.Add(endpoint);
        command.Options.Add(timeout);
        return (endpoint, timeout);
    }

    private static (Uri? Endpoint, TimeSpan? Timeout) UnisonEndpointOf(ParseResult parse, (Option<string> Endpoint, Option<int?> Timeout) options)
    {
        string? text = parse.GetValue(options.Endpoint);
        int? timeout = parse.GetValue(options.Timeout);
        if (timeout is < 1)
        {
            throw new InvalidInputException("InvalidEndpointTimeout", "--endpoint-timeout-seconds must be 1 or more.", timeout.Value.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        if (text is null)
        {
            if (timeout is not null)
            {
                throw new InvalidInputException("EndpointTimeoutWithoutEndpoint", "--endpoint-timeout-seconds only applies with --endpoint.", null);
            }
            return (null, null);
        }
        if (!Uri.TryCreate(text, UriKind.Absolute, out Uri? uri))
        {
            throw new InvalidInputException("InvalidEndpoint", $"--endpoint '{text}' is not an address. Give the server's HTTP API as http://host:port.", text);
        }
        return (uri, timeout is int seconds ? TimeSpan.FromSeconds(seconds) : null);
    }

    /// <summary>The repository target when <c>--repository</c> was given, else null after checking
    /// that no repository-only option was given either.</summary>
    private static RepositoryTarget? RepositoryTargetOf(ParseResult parse, (Option<string> Repository, RepositoryCliOptions Options) repo)
    {
        string? location = parse.GetValue(repo.Repository);
        if (location is null)
        {
            if (repo.Options.FirstGiven(parse) is { } given)
            {
                throw new InvalidInputException("RepositoryOptionWithoutRepository",
                    $"{given} only applies to a repository. Add --repository <folder or s3://bucket/prefix>, or drop {given}.", given);
            }
            return null;
        }
        return repo.Options.Target(parse, RequireLocation(location));
    }

    /// <summary>Local mode needs <paramref name="localOption"/>, repository mode must not have it.</summary>
    private static string? LocalOrRepository(string? localValue, RepositoryTarget? target, string localOption)
    {
        if (target is not null && localValue is not null)
        {
            throw new InvalidInputException("AmbiguousDestination",
                $"Give {localOption} for a local backup or --repository for a repository, not both.", localOption);
        }
        if (target is null && localValue is null)
        {
            throw new InvalidInputException("MissingDestination",
                $"Give {localOption} for a local backup, or --repository <folder or s3://bucket/prefix>.", localOption);
        }
        return localValue;
    }

    private static string RequireLocation(string? location) =>
        string.IsNullOrWhiteSpace(location)
            ? throw new InvalidInputException("InvalidRepository", "--repository is empty. Give a folder path or s3://bucket/prefix.", location)
            : location;
}
