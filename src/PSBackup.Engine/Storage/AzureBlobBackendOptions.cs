using System.Net;
using System.Text.RegularExpressions;

namespace PSBackup.Engine.Storage;

/// <summary>An Azure Blob Storage location: <c>az://account/container/prefix</c>,
/// <c>https://account.blob.core.windows.net/container/prefix</c> (any host whose first label is
/// the account: other clouds, custom endpoints), or the emulator's path style
/// <c>http://127.0.0.1:10000/account/container/prefix</c> (an IP address or localhost as host,
/// the account as first path segment: what the Azure SDK's BlobUriBuilder does for IP hosts).
/// A SAS in the URL's query is taken as the SAS token and never shown.</summary>
public sealed partial record AzureBlobLocation
{
    private const string Example =
        "Use az://account/container/prefix, https://account.blob.core.windows.net/container/prefix, or http://127.0.0.1:10000/account/container/prefix for the Azurite emulator.";

    /// <summary>The storage account name.</summary>
    public required string Account { get; init; }
    public required string Container { get; init; }
    /// <summary>Blob name prefix inside the container ('' for its root), without a trailing '/'.</summary>
    public string Prefix { get; init; } = "";
    /// <summary>The account's blob endpoint, e.g. https://account.blob.core.windows.net or
    /// http://127.0.0.1:10000/devstoreaccount1; null for az:// (the default cloud or -Endpoint).</summary>
    public Uri? ServiceUri { get; init; }
    /// <summary>A SAS token that came in the location's query (without the leading '?').</summary>
    public string? Sas { get; init; }
    /// <summary>True when the location was written az://.</summary>
    public bool IsAzScheme { get; init; }

    [GeneratedRegex("^[a-z0-9]{3,24}$")]
    private static partial Regex AccountPattern();

    [GeneratedRegex("^(?=.{3,63}$)[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]$")]
    private static partial Regex ContainerPattern();

    /// <summary>The location as a user would write it, never with a SAS.</summary>
    public override string ToString()
    {
        string path = Prefix.Length == 0 ? Container : $"{Container}/{Prefix}";
        if (IsAzScheme || ServiceUri is null)
        {
            return $"az://{Account}/{path}";
        }
        return $"{ServiceUri.GetLeftPart(UriPartial.Path).TrimEnd('/')}/{path}";
    }

    /// <summary>True for az:// and http(s):// locations (S3 is s3://, a folder has no scheme).</summary>
    public static bool IsAzureLocation(string? value) =>
        value is not null && (value.StartsWith("az://", StringComparison.OrdinalIgnoreCase)
            || value.StartsWith("https://", StringComparison.OrdinalIgnoreCase)
            || value.StartsWith("http://", StringComparison.OrdinalIgnoreCase));

    /// <summary>Parses a location; throws <see cref="InvalidInputException"/> InvalidAzureLocation
    /// naming what is wrong.</summary>
    public static AzureBlobLocation Parse(string? location)
    {
        if (string.IsNullOrWhiteSpace(location))
        {
            throw Bad("The Azure Blob location is empty.", location);
        }
        string shown = Redact(location);
        if (!IsAzureLocation(location))
        {
            throw Bad($"'{shown}' is not an Azure Blob location.", location);
        }
        if (location.Any(char.IsControl) || location.Contains('\\') || location.Any(char.IsWhiteSpace) || location.Contains('#'))
        {
            throw Bad($"The Azure Blob location '{shown}' contains a backslash, a space, '#' or a control character.", location);
        }
        if (location.StartsWith("az://", StringComparison.OrdinalIgnoreCase))
        {
            string rest = location["az://".Length..];
            if (rest.Contains('?'))
            {
                throw Bad($"The az:// location '{shown}' has a query. Give a SAS token with -SasToken (or AZURE_STORAGE_SAS_TOKEN), or use the https:// form with the SAS in its query.", location);
            }
            string[] parts = rest.Split('/', 3);
            string account = parts[0];
            return Build(account, parts.Length > 1 ? parts[1] : "", parts.Length > 2 ? parts[2] : "", null, null, azScheme: true, location);
        }
        if (!Uri.TryCreate(location, UriKind.Absolute, out Uri? uri) || uri.Host.Length == 0)
        {
            throw Bad($"'{shown}' is not a valid URL.", location);
        }
        if (uri.UserInfo.Length > 0)
        {
            throw Bad($"The Azure Blob location '{shown}' carries a user name. Give credentials with -StorageCredential, -SasToken or -ConnectionString instead.", location);
        }
        string? sas = uri.Query.Length > 1 ? uri.Query[1..] : null;
        string pathPart = Uri.UnescapeDataString(uri.AbsolutePath.TrimStart('/'));
        string authority = uri.GetLeftPart(UriPartial.Authority);
        if (IsPathStyleHost(uri.Host))
        {
            string[] parts = pathPart.Split('/', 3);
            string account = parts[0];
            return Build(account, parts.Length > 1 ? parts[1] : "", parts.Length > 2 ? parts[2] : "",
                new Uri($"{authority}/{account}"), sas, azScheme: false, location);
        }
        string hostAccount = uri.Host.Split('.')[0].ToLowerInvariant();
        string[] segments = pathPart.Split('/', 2);
        return Build(hostAccount, segments[0], segments.Length > 1 ? segments[1] : "", new Uri(authority), sas, azScheme: false, location);
    }

    /// <summary>An IP address or localhost: the emulator's path style (account in the path).</summary>
    public static bool IsPathStyleHost(string host) =>
        IPAddress.TryParse(host.Trim('[', ']'), out _) || string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase);

    private static AzureBlobLocation Build(string account, string container, string prefix, Uri? service, string? sas, bool azScheme, string location)
    {
        ValidateAccount(account, location);
        if (container.Length == 0)
        {
            throw Bad($"The Azure Blob location '{Redact(location)}' has no container.", location);
        }
        ValidateContainer(container, location);
        prefix = prefix.TrimEnd('/');
        if (prefix.Length > 0)
        {
            string valid;
            try
            {
                valid = SafePath.ValidateRelativePath(prefix, "Azure blob prefix");
            }
            catch (InvalidInputException e)
            {
                throw Bad(e.Message, location);
            }
            if (valid != prefix)
            {
                throw Bad($"The Azure blob prefix '{SafePath.Printable(prefix)}' is not a plain relative path.", location);
            }
        }
        return new AzureBlobLocation { Account = account, Container = container, Prefix = prefix, ServiceUri = service, Sas = sas, IsAzScheme = azScheme };
    }

    internal static void ValidateAccount(string account, string? target)
    {
        if (!AccountPattern().IsMatch(account))
        {
            throw new InvalidInputException("InvalidAzureLocation",
                $"'{SafePath.Printable(account)}' is not a valid storage account name (3-24 lowercase letters and digits). {Example}", target is null ? null : Redact(target));
        }
    }

    internal static void ValidateContainer(string container, string? target)
    {
        if (!ContainerPattern().IsMatch(container))
        {
            throw new InvalidInputException("InvalidAzureLocation",
                $"'{SafePath.Printable(container)}' is not a valid container name (3-63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit). {Example}",
                target is null ? null : Redact(target));
        }
    }

    /// <summary>The location without its query (a SAS is a secret) or a user name and password.</summary>
    public static string Redact(string location)
    {
        int q = location.IndexOf('?', StringComparison.Ordinal);
        string shown = q < 0 ? location : location[..q] + "?<redacted>";
        int scheme = shown.IndexOf("://", StringComparison.Ordinal);
        if (scheme > 0)
        {
            int hostEnd = shown.IndexOf('/', scheme + 3);
            int at = shown.LastIndexOf('@', hostEnd < 0 ? shown.Length - 1 : hostEnd);
            if (at > scheme)
            {
                shown = shown[..(scheme + 3)] + "<redacted>@" + shown[(at + 1)..];
            }
        }
        return SafePath.Printable(shown);
    }

    private static InvalidInputException Bad(string message, string? location) =>
        new("InvalidAzureLocation", $"{message} {Example}", location is null ? null : Redact(location));
}

/// <summary>How an <see cref="AzureBlobBackend"/> authenticates. Exactly one kind is used; see
/// <see cref="AzureBlobBackendOptions.ResolveAuth"/> for the order.</summary>
public enum AzureAuthKind
{
    ConnectionString,
    SharedKey,
    Sas,
    /// <summary>Entra ID through DefaultAzureCredential (managed identity, environment, workload
    /// identity, Azure CLI, ...).</summary>
    EntraId,
}

/// <summary>Where and how an <see cref="AzureBlobBackend"/> stores.</summary>
public sealed record AzureBlobBackendOptions
{
    public const int DefaultBlockSize = 16 << 20;
    public const long DefaultSingleUploadThreshold = 64L << 20;
    /// <summary>Block blobs hold at most 50,000 committed blocks.</summary>
    public const int MaxBlocks = 50_000;
    /// <summary>A block is at most 4000 MiB (service version 2019-12-12 and later).</summary>
    public const long MaxBlockSize = 4000L << 20;

    public required AzureBlobLocation Location { get; init; }

    /// <summary>The account's blob endpoint, overriding the one of the location (az:// maps to
    /// https://account.blob.core.windows.net otherwise): another cloud, a private endpoint, or
    /// the emulator (http://127.0.0.1:10000/devstoreaccount1).</summary>
    public string? Endpoint { get; init; }

    /// <summary>A storage connection string (AccountName/AccountKey, SharedAccessSignature or
    /// UseDevelopmentStorage=true); its BlobEndpoint wins over the location's host.</summary>
    public string? ConnectionString { get; init; }
    /// <summary>The account key (shared key authorization).</summary>
    public string? AccountKey { get; init; }
    /// <summary>The account name that goes with <see cref="AccountKey"/>; must be the location's
    /// account when given (a PSCredential's user name).</summary>
    public string? AccountName { get; init; }
    /// <summary>A SAS token (with or without the leading '?').</summary>
    public string? SasToken { get; init; }

    /// <summary>Objects up to this size go up in one Put Blob; larger ones as staged blocks.</summary>
    public long SingleUploadThreshold { get; init; } = DefaultSingleUploadThreshold;
    /// <summary>Size of each staged block; at most two block buffers are held at once.</summary>
    public int BlockSize { get; init; } = DefaultBlockSize;
    /// <summary>Blobs asked for per listing page (the service caps it at 5000).</summary>
    public int PageSize { get; init; } = 5000;
    /// <summary>Per-request (per try) timeout; null for the SDK's 100 s.</summary>
    public TimeSpan? Timeout { get; init; }
    /// <summary>Retries the SDK does per request (honouring Retry-After) on top of any
    /// <see cref="RetryingBackend"/>; null for 3.</summary>
    public int? SdkMaxRetries { get; init; }
    /// <summary>First SDK retry delay (doubled each time); null for 0.8 s.</summary>
    public TimeSpan? SdkRetryDelay { get; init; }

    /// <summary>For tests: the HTTP handler under the SDK's pipeline (fault injection).</summary>
    internal HttpMessageHandler? Handler { get; init; }
    /// <summary>For tests: replaces DefaultAzureCredential.</summary>
    internal Azure.Core.TokenCredential? TokenCredential { get; init; }

    /// <summary>Builds options from a location string.</summary>
    public static AzureBlobBackendOptions FromLocation(string location) => new() { Location = AzureBlobLocation.Parse(location) };

    /// <summary>Checks every value and returns this; messages name the option and the fix.</summary>
    public AzureBlobBackendOptions Validate()
    {
        ArgumentNullException.ThrowIfNull(Location);
        if (Endpoint is not null && (!Uri.TryCreate(Endpoint, UriKind.Absolute, out Uri? uri) || (uri.Scheme != "http" && uri.Scheme != "https") || uri.Query.Length > 0))
        {
            throw new InvalidInputException("InvalidAzureEndpoint",
                $"The Azure Blob endpoint '{AzureBlobLocation.Redact(Endpoint)}' is not an http(s) URL without a query. Give one such as https://account.blob.core.windows.net or http://127.0.0.1:10000/devstoreaccount1.", AzureBlobLocation.Redact(Endpoint));
        }
        if (AccountName is not null && !string.Equals(AccountName, Location.Account, StringComparison.Ordinal))
        {
            throw new InvalidInputException("InvalidAzureCredentials",
                $"The credential is for the storage account '{SafePath.Printable(AccountName)}', but the location names the account '{Location.Account}'. Give the key of '{Location.Account}'.", Location.ToString());
        }
        if (BlockSize < 1 << 20)
        {
            throw new InvalidInputException("InvalidAzureBlockSize", $"The Azure block size {BlockSize} is below 1 MiB. Give 1 MiB or more (a block holds at most 4000 MiB).");
        }
        if (SingleUploadThreshold < BlockSize)
        {
            throw new InvalidInputException("InvalidAzureBlockSize",
                $"The single-upload threshold {SingleUploadThreshold} is below the block size {BlockSize}. Give a threshold of at least one block.");
        }
        if (PageSize is < 1 or > 5000)
        {
            throw new InvalidInputException("InvalidAzurePageSize", $"The listing page size {PageSize} is out of range. Give 1 to 5000.");
        }
        return this;
    }

    /// <summary>The standard environment variables of the Azure tools (az CLI, AzCopy).</summary>
    public const string ConnectionStringVariable = "AZURE_STORAGE_CONNECTION_STRING";
    public const string AccountKeyVariable = "AZURE_STORAGE_KEY";
    public const string AccountVariable = "AZURE_STORAGE_ACCOUNT";
    public const string SasTokenVariable = "AZURE_STORAGE_SAS_TOKEN";

    /// <summary>Which authentication this backend uses, and with what: parameters first (at most
    /// one of connection string, SAS token, account key), then a SAS in the location's URL, then
    /// AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_SAS_TOKEN, AZURE_STORAGE_KEY (for the
    /// account in AZURE_STORAGE_ACCOUNT, or any account when that is unset), and finally Entra ID
    /// (DefaultAzureCredential: managed identity in Azure Automation, AZURE_CLIENT_ID/..., workload
    /// identity, az login). <paramref name="environment"/> replaces the process environment in tests.</summary>
    public (AzureAuthKind Kind, string? Secret) ResolveAuth(Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        var given = new List<(AzureAuthKind, string)>();
        if (!string.IsNullOrEmpty(ConnectionString))
        {
            given.Add((AzureAuthKind.ConnectionString, ConnectionString));
        }
        if (!string.IsNullOrEmpty(SasToken))
        {
            given.Add((AzureAuthKind.Sas, SasToken.TrimStart('?')));
        }
        if (!string.IsNullOrEmpty(AccountKey))
        {
            given.Add((AzureAuthKind.SharedKey, AccountKey));
        }
        if (given.Count > 1)
        {
            throw new InvalidInputException("AmbiguousAzureCredentials",
                "More than one Azure credential was given (a connection string, a SAS token, an account key). Give one of them.", Location.ToString());
        }
        if (given.Count == 1)
        {
            return given[0];
        }
        if (!string.IsNullOrEmpty(Location.Sas))
        {
            return (AzureAuthKind.Sas, Location.Sas);
        }
        if (environment(ConnectionStringVariable) is { Length: > 0 } cs)
        {
            return (AzureAuthKind.ConnectionString, cs);
        }
        if (environment(SasTokenVariable) is { Length: > 0 } sas)
        {
            return (AzureAuthKind.Sas, sas.TrimStart('?'));
        }
        if (environment(AccountKeyVariable) is { Length: > 0 } key
            && (environment(AccountVariable) is not { Length: > 0 } account || string.Equals(account, Location.Account, StringComparison.Ordinal)))
        {
            return (AzureAuthKind.SharedKey, key);
        }
        return (AzureAuthKind.EntraId, null);
    }
}
