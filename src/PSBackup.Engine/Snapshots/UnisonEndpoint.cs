using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace PSBackup.Engine.Snapshots;

/// <summary>UnisonDB's documented backup API (seed 003; internal/services/httpapi/service.go):
/// <c>POST /api/v1/{namespace}/btree/backup {path}</c> → <c>{path, bytes}</c> and
/// <c>POST /api/v1/{namespace}/wal/backup {afterSegmentId, backupDir}</c> → <c>{backups: [{segmentId, path}]}</c>;
/// errors are <c>{error}</c> with 400 (bad body or path), 404 (unknown namespace; for the WAL also
/// "no segment after afterSegmentId") and 500. Paths are relative to <c>&lt;dataDir&gt;/backups/&lt;ns&gt;</c>.</summary>
public sealed class UnisonEndpoint
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromMinutes(30);
    private static readonly JsonSerializerOptions Json = new() { PropertyNameCaseInsensitive = false, TypeInfoResolver = EngineJsonContext.Default };

    private readonly Uri _base;
    private readonly TimeSpan _timeout;

    public UnisonEndpoint(Uri endpoint, TimeSpan? timeout)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        if (!endpoint.IsAbsoluteUri || (endpoint.Scheme != Uri.UriSchemeHttp && endpoint.Scheme != Uri.UriSchemeHttps) || !string.IsNullOrEmpty(endpoint.Query))
        {
            throw new InvalidInputException("InvalidEndpoint",
                $"-Endpoint '{endpoint}' is not an http(s) address of a UnisonDB server. Give it as http://host:port (the server's HTTP API).", endpoint.ToString());
        }
        if (timeout is { } t && t <= TimeSpan.Zero)
        {
            throw new InvalidInputException("InvalidEndpointTimeout", "-EndpointTimeoutSeconds must be positive.", t.ToString());
        }
        _base = endpoint;
        _timeout = timeout ?? DefaultTimeout;
    }

    public Uri Address => _base;

    public sealed record BtreeBackupReply(string Path, long Bytes);

    public sealed record SegmentBackup(long SegmentId, string Path);

    /// <summary><c>POST /btree/backup</c>: the server writes the snapshot to {path}.tmp, fsyncs and renames it.</summary>
    public async Task<BtreeBackupReply> BackupBtreeAsync(string ns, string relativePath, CancellationToken ct)
    {
        string body = JsonSerializer.Serialize(new BtreeRequest(relativePath), JsonInfo.Of<BtreeRequest>(Json));
        (HttpStatusCode status, string text) = await PostAsync(ns, "btree/backup", body, ct).ConfigureAwait(false);
        if (status != HttpStatusCode.OK)
        {
            throw StatusError(ns, "btree/backup", status, text);
        }
        BtreeResponse? reply = Parse<BtreeResponse>(ns, "btree/backup", text);
        if (reply is null || string.IsNullOrEmpty(reply.Path) || reply.Bytes is not long bytes || bytes < 0)
        {
            throw BadReply(ns, "btree/backup", "it lacks \"path\" or a non-negative \"bytes\"", text);
        }
        return new BtreeBackupReply(reply.Path, bytes);
    }

    /// <summary><c>POST /wal/backup</c>: sealed segments with an id above <paramref name="afterSegmentId"/>,
    /// copied by the server into <paramref name="backupDir"/>. A 404 is "nothing new" (an empty list),
    /// as UnisonDB answers it when no segment follows.</summary>
    public async Task<IReadOnlyList<SegmentBackup>> BackupWalAsync(string ns, long afterSegmentId, string backupDir, CancellationToken ct)
    {
        string body = JsonSerializer.Serialize(new WalRequest(afterSegmentId, backupDir), JsonInfo.Of<WalRequest>(Json));
        (HttpStatusCode status, string text) = await PostAsync(ns, "wal/backup", body, ct).ConfigureAwait(false);
        if (status == HttpStatusCode.NotFound && !NamespaceMissing(text))
        {
            return [];
        }
        if (status != HttpStatusCode.OK)
        {
            throw StatusError(ns, "wal/backup", status, text);
        }
        WalResponse? reply = Parse<WalResponse>(ns, "wal/backup", text);
        if (reply?.Backups is null)
        {
            throw BadReply(ns, "wal/backup", "it lacks \"backups\"", text);
        }
        var list = new List<SegmentBackup>();
        foreach (WalEntry? e in reply.Backups)
        {
            if (e is null || e.SegmentId is not long id || id <= 0 || string.IsNullOrEmpty(e.Path))
            {
                throw BadReply(ns, "wal/backup", "an entry lacks a positive \"segmentId\" or a \"path\"", text);
            }
            list.Add(new SegmentBackup(id, e.Path));
        }
        return list.OrderBy(s => s.SegmentId).ToList();
    }

    /// <summary>UnisonDB says "namespace not found" for an unknown namespace (getEngine); any other
    /// 404 of /wal/backup is walfs' ErrSegmentNotFound.</summary>
    private static bool NamespaceMissing(string text) => text.Contains("namespace", StringComparison.OrdinalIgnoreCase);

    private async Task<(HttpStatusCode, string)> PostAsync(string ns, string action, string body, CancellationToken ct)
    {
        var url = new Uri(_base, $"api/v1/{Uri.EscapeDataString(ns)}/{action}");
        using var handler = new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(Math.Min(30, _timeout.TotalSeconds)), UseProxy = false };
        using var client = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(_timeout);
        try
        {
            using var content = new StringContent(body, Encoding.UTF8, "application/json");
            using HttpResponseMessage response = await client.PostAsync(url, content, timeout.Token).ConfigureAwait(false);
            string text = await response.Content.ReadAsStringAsync(timeout.Token).ConfigureAwait(false);
            return (response.StatusCode, text);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new OperationFailedException("EndpointTimeout",
                $"UnisonDB at {_base} did not answer POST {url.AbsolutePath} within {Durations.Format(_timeout)}. Nothing was recorded; check the server's load and log, or raise -EndpointTimeoutSeconds.", url.ToString());
        }
        catch (HttpRequestException e)
        {
            string why = e.InnerException is SocketException se ? se.SocketErrorCode switch
            {
                SocketError.ConnectionRefused => "connection refused: nothing listens there",
                SocketError.HostNotFound or SocketError.NoData => "the host name does not resolve",
                _ => se.Message,
            } : e.Message;
            throw new OperationFailedException("EndpointUnreachable",
                $"Cannot reach UnisonDB at {_base} ({why}). Nothing was recorded; check -Endpoint (http://host:port of the server's HTTP API) and that the server runs.", url.ToString(), e);
        }
    }

    private T? Parse<T>(string ns, string action, string text) where T : class
    {
        try
        {
            return JsonSerializer.Deserialize(text, JsonInfo.Of<T>(Json));
        }
        catch (JsonException)
        {
            throw BadReply(ns, action, "it is not the documented JSON", text);
        }
    }

    private PSBackupException StatusError(string ns, string action, HttpStatusCode status, string text)
    {
        string? serverError = null;
        try
        {
            serverError = JsonSerializer.Deserialize(text, JsonInfo.Of<ErrorResponse>(Json))?.Error;
        }
        catch (JsonException)
        {
        }
        string said = serverError ?? Snippet(text);
        int code = (int)status;
        string where = $"UnisonDB at {_base} answered POST /api/v1/{ns}/{action} with {code.ToString(CultureInfo.InvariantCulture)} ({said})";
        return code switch
        {
            404 => new NotFoundException("EndpointNamespaceNotFound", $"{where}: it serves no namespace '{ns}'. Check -Namespace and -Endpoint.", ns),
            >= 400 and < 500 => new InvalidInputException("EndpointRejected", $"{where}: the request was refused. Check the relative path (no '..', not absolute) and the namespace.", ns),
            _ => new OperationFailedException("EndpointFailed", $"{where}. Nothing was recorded; see the server's log (disk space, permissions under <dataDir>/backups) and run again.", ns),
        };
    }

    private PSBackupException BadReply(string ns, string action, string why, string text) =>
        new OperationFailedException("EndpointBadReply",
            $"UnisonDB at {_base} answered POST /api/v1/{ns}/{action} with a reply PSBackup cannot use: {why} ({Snippet(text)}). Nothing was recorded; check that -Endpoint is a UnisonDB server.", _base.ToString());

    private static string Snippet(string text)
    {
        string t = new(text.Where(c => !char.IsControl(c)).Take(200).ToArray());
        return t.Length == 0 ? "empty body" : "'" + t + "'";
    }

    internal sealed record BtreeRequest([property: JsonPropertyName("path")] string Path);

    internal sealed record WalRequest([property: JsonPropertyName("afterSegmentId")] long AfterSegmentId, [property: JsonPropertyName("backupDir")] string BackupDir);

    internal sealed record BtreeResponse([property: JsonPropertyName("path")] string? Path, [property: JsonPropertyName("bytes")] long? Bytes);

    internal sealed record WalEntry([property: JsonPropertyName("segmentId")] long? SegmentId, [property: JsonPropertyName("path")] string? Path);

    internal sealed record WalResponse([property: JsonPropertyName("backups")] IReadOnlyList<WalEntry?>? Backups);

    internal sealed record ErrorResponse([property: JsonPropertyName("error")] string? Error);
}

/// <summary>New-StoreSnapshot -Endpoint: the snapshot is made by UnisonDB itself, then verified
/// here as a whole store, its checkpoint read, and recorded locally or stored in a repository.</summary>
internal static class EndpointSnapshot
{
    public static async Task<StoreSnapshotResult?> CreateAsync(NewStoreSnapshotOptions options, string ns, string dataDir, string nsDir, string backupRoot, OperationContext context)
    {
        CancellationToken ct = context.CancellationToken;
        var endpoint = new UnisonEndpoint(options.Endpoint!, options.EndpointTimeout);
        string relative;
        string finalPath;
        string? manifestPath = null;
        if (options.Repository is null)
        {
            relative = SafePath.ValidateRelativePath(options.Path ?? "", "snapshot path");
            finalPath = SafePath.Combine(backupRoot, relative, "snapshot path");
            manifestPath = finalPath + ".manifest.json";
            if (File.Exists(finalPath) || Directory.Exists(finalPath) || File.Exists(manifestPath))
            {
                // UnisonDB replaces an existing file at the path: refuse before asking it.
                throw new ConflictException("SnapshotExists",
                    $"A snapshot already exists at '{finalPath}'. Choose another -Path, or remove the old snapshot and its manifest first.", finalPath);
            }
        }
        else
        {
            // A .tmp name: UnisonDB writes {path}.tmp and renames it to {path}; either name is
            // removed by the startup sweep if this run dies before deleting it.
            relative = $"repository-snapshot-{Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(6)).ToLowerInvariant()}.tmp";
            finalPath = Path.Combine(backupRoot, relative);
        }
        Repository.OpenRepository? open = options.Repository is null ? null
            : await Repository.RepositoryConnector.OpenForWriteAsync(options.Repository, Repository.RepositoryLockMode.Shared, SnapshotOperations.Activity, context).ConfigureAwait(false);
        try
        {
            DateTimeOffset createdAt = context.UtcNow;
            string refName = SnapshotOperations.RefName(ns, createdAt);
            string what = open is null ? finalPath : $"{open.Repository.Location} ({refName})";
            if (!context.ShouldProcess(what, $"Create store snapshot through UnisonDB at {endpoint.Address}"))
            {
                return null;
            }
            long started = context.Clock.GetTimestamp();
            WalPosition walAtStart = SnapshotOperations.ReadWalPosition(nsDir, ns);
            context.Report(SnapshotOperations.Activity, $"Asking {endpoint.Address} for a B-tree backup", 0, 0, relative);
            try
            {
                UnisonEndpoint.BtreeBackupReply reply = await endpoint.BackupBtreeAsync(ns, relative, ct).ConfigureAwait(false);
                if (!File.Exists(finalPath))
                {
                    throw new OperationFailedException("EndpointOutputMissing",
                        $"UnisonDB at {endpoint.Address} reported the snapshot at '{reply.Path}', but '{finalPath}' does not exist here. -DataDir must be the server's data directory as this host sees it (same host or shared storage).", finalPath);
                }
                long length = new FileInfo(finalPath).Length;
                if (length != reply.Bytes)
                {
                    throw new IntegrityException("EndpointOutputTorn",
                        $"UnisonDB reported {reply.Bytes} bytes for the snapshot, but '{finalPath}' holds {length}. It was changed after the server wrote it; take the snapshot again.", finalPath);
                }
                string engine = UnisonStore.EngineOfFile(finalPath)
                    ?? throw new IntegrityException("StoreUnreadable", $"The snapshot UnisonDB wrote to '{finalPath}' is neither a bbolt file nor an LMDB data file. Take the snapshot again.", finalPath);
                WalPosition position = UnisonCopy.Describe(ns, nsDir, engine, finalPath, walAtStart);
                ContentDigest digest = await FileCopy.HashAsync(finalPath, ct).ConfigureAwait(false);
                var entry = new ManifestFile(engine == StoreEngines.Bolt ? UnisonStore.StoreName : "data.mdb", digest.Bytes, digest.Sha256);
                if (open is not null)
                {
                    return await SnapshotOperations.StoreInRepositoryAsync(open, options.Repository!, ns, engine, refName, createdAt, [entry], true, finalPath, position, backupRoot, started, context).ConfigureAwait(false);
                }
                DateTimeOffset completedAt = context.UtcNow;
                var manifest = new BackupManifest
                {
                    Kind = "snapshot",
                    CreatedAt = createdAt,
                    CompletedAt = completedAt,
                    Source = endpoint.Address + $"api/v1/{ns}/btree/backup",
                    Wal = position,
                    Store = engine,
                    Files = [entry],
                };
                await ManifestIO.WriteAsync(manifestPath!, manifest, ct).ConfigureAwait(false);
                context.Report(SnapshotOperations.Activity, "Snapshot complete", digest.Bytes, digest.Bytes);
                return new StoreSnapshotResult
                {
                    Namespace = ns,
                    Path = finalPath,
                    Bytes = digest.Bytes,
                    ManifestPath = manifestPath,
                    FileCount = 1,
                    WalPosition = position,
                    Store = engine,
                    CreatedAt = createdAt,
                    CompletedAt = completedAt,
                    Duration = Durations.Seconds(context.Clock.GetElapsedTime(started)),
                };
            }
            catch
            {
                // A snapshot that was not verified and recorded is not left under its final name
                // (nothing was there before the server was asked: checked above).
                Durable.TryDelete(finalPath);
                Durable.TryDelete(finalPath + ".tmp");
                throw;
            }
            finally
            {
                if (open is not null)
                {
                    Durable.TryDelete(finalPath);
                    Durable.TryDelete(finalPath + ".tmp");
                }
            }
        }
        finally
        {
            if (open is not null)
            {
                await open.DisposeAsync().ConfigureAwait(false);
            }
        }
    }
}
