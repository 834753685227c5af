using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace PSBackup.Engine.Tests.Snapshots;

/// <summary>An HTTP server on 127.0.0.1 implementing exactly UnisonDB's documented backup contract
/// (seed 003; internal/services/httpapi/service.go handleBackupBTree / handleBackupSegmentsAfter,
/// dbkernel/engine_public.go BackupBtree / resolveBackupFile / cleanBackupRelativePath):
/// <list type="bullet">
/// <item><c>POST /api/v1/{ns}/btree/backup {"path"}</c>: 404 <c>{"error"}</c> for an unknown
/// namespace, 400 for a body that is not JSON or an empty path, 500 for an absolute path or one
/// with <c>..</c>; else the store is written to <c>{root}/{path}.tmp</c>, fsynced, renamed over
/// <c>{path}</c>, and the reply is <c>{"path": root/path, "bytes": n}</c>.</item>
/// <item><c>POST /api/v1/{ns}/wal/backup {"afterSegmentId","backupDir"}</c>: 400 for an empty
/// backupDir, 404 when no sealed segment has a greater id, else the sealed segments are copied
/// under their own names and listed as <c>{"backups":[{"segmentId","path"}]}</c> in id order.</item>
/// </list>
/// The store and WAL it hands out come from a data directory laid out like UnisonDB's (the shared
/// fixtures). <see cref="Fault"/> makes it misbehave for error tests.</summary>
public sealed class UnisonTestServer : IAsyncDisposable
{
    public enum Faults { None, MalformedJson, ServerError, Hang, WrongBytes }

    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly string _dataDir;
    private readonly string _ns;
    private readonly Func<string, Task>? _produceStore;

    /// <param name="dataDir">The server's data directory (<c>dataDir/ns/{unison.db,wal}</c>, backups under <c>dataDir/backups/ns</c>).</param>
    /// <param name="produceStore">Writes the B-tree snapshot to the given path (default: copies <c>ns/unison.db</c> if it is a file).</param>
    public UnisonTestServer(string dataDir, string ns, Func<string, Task>? produceStore = null)
    {
        _dataDir = dataDir;
        _ns = ns;
        _produceStore = produceStore;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        Endpoint = new Uri($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/");
        _loop = Task.Run(LoopAsync);
    }

    public Uri Endpoint { get; }
    public Faults Fault { get; set; }
    /// <summary>The copy of this segment id handed out by <c>/wal/backup</c> gets one byte flipped
    /// inside its first record (a disk or transfer fault the server does not notice).</summary>
    public long? CorruptSegmentId { get; set; }
    public List<string> Requests { get; } = [];

    private string BackupRoot => Path.Combine(_dataDir, "backups", _ns);

    private async Task LoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            _ = Task.Run(() => ServeAsync(client));
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        using (client)
        {
            NetworkStream stream = client.GetStream();
            (string method, string target, string body) = await ReadRequestAsync(stream);
            lock (Requests)
            {
                Requests.Add($"{method} {target} {body}");
            }
            if (Fault == Faults.Hang)
            {
                try
                {
                    await Task.Delay(Timeout.Infinite, _stop.Token);
                }
                catch (OperationCanceledException)
                {
                }
                return;
            }
            (int status, string reply) = await HandleAsync(method, target, body);
            if (Fault == Faults.MalformedJson && status == 200)
            {
                reply = "{\"path\": \"oops\", \"bytes\": ";
            }
            if (Fault == Faults.ServerError)
            {
                (status, reply) = (500, Error("failed to backup btree: no space left on device"));
            }
            byte[] payload = Encoding.UTF8.GetBytes(reply);
            string head = $"HTTP/1.1 {status} {(status == 200 ? "OK" : "Error")}\r\nContent-Type: application/json\r\nContent-Length: {payload.Length}\r\nConnection: close\r\n\r\n";
            await stream.WriteAsync(Encoding.ASCII.GetBytes(head));
            await stream.WriteAsync(payload);
        }
    }

    private async Task<(int, string)> HandleAsync(string method, string target, string body)
    {
        string[] parts = target.Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (method != "POST" || parts.Length != 5 || parts[0] != "api" || parts[1] != "v1")
        {
            return (405, Error("method not allowed"));
        }
        if (Uri.UnescapeDataString(parts[2]) != _ns)
        {
            return (404, Error($"namespace not found: {Uri.UnescapeDataString(parts[2])}"));
        }
        JsonElement json;
        try
        {
            json = JsonDocument.Parse(body).RootElement;
        }
        catch (JsonException e)
        {
            return (400, Error("invalid request body: " + e.Message));
        }
        string action = parts[3] + "/" + parts[4];
        if (action == "btree/backup")
        {
            string path = json.TryGetProperty("path", out JsonElement p) && p.ValueKind == JsonValueKind.String ? p.GetString()! : "";
            if (path.Trim().Length == 0)
            {
                return (400, Error("path cannot be empty"));
            }
            string? bad = Clean(path.Trim(), allowRoot: false, out string clean);
            if (bad is not null)
            {
                return (500, Error("failed to backup btree: " + bad));
            }
            string resolved = Path.Combine(BackupRoot, clean);
            Directory.CreateDirectory(Path.GetDirectoryName(resolved)!);
            string tmp = resolved + ".tmp";
            if (_produceStore is not null)
            {
                await _produceStore(tmp);
            }
            else
            {
                File.Copy(Path.Combine(_dataDir, _ns, "unison.db"), tmp, overwrite: true);
            }
            using (var f = new FileStream(tmp, FileMode.Open, FileAccess.ReadWrite))
            {
                f.Flush(flushToDisk: true);
            }
            File.Delete(resolved);
            File.Move(tmp, resolved);
            long bytes = new FileInfo(resolved).Length + (Fault == Faults.WrongBytes ? 1 : 0);
            return (200, JsonSerializer.Serialize(new { path = Path.Combine(BackupRoot, path), bytes }));
        }
        if (action == "wal/backup")
        {
            long after = json.TryGetProperty("afterSegmentId", out JsonElement a) && a.ValueKind == JsonValueKind.Number ? a.GetInt64() : 0;
            string dir = json.TryGetProperty("backupDir", out JsonElement d) && d.ValueKind == JsonValueKind.String ? d.GetString()! : "";
            if (dir.Trim().Length == 0)
            {
                return (400, Error("backupDir cannot be empty"));
            }
            string? bad = Clean(dir.Trim(), allowRoot: true, out string clean);
            if (bad is not null)
            {
                return (500, Error("failed to backup WAL segments: " + bad));
            }
            string destination = Path.Combine(BackupRoot, clean);
            Directory.CreateDirectory(destination);
            var sealedSegments = Directory.EnumerateFiles(Path.Combine(_dataDir, _ns, "wal"), "*.seg")
                .Select(f => (Id: long.Parse(Path.GetFileNameWithoutExtension(f)), Path: f))
                .Where(s => s.Id > after && IsSealed(s.Path))
                .OrderBy(s => s.Id)
                .ToList();
            if (sealedSegments.Count == 0)
            {
                return (404, Error($"segment not found: no segments after {after}"));
            }
            var backups = new List<object>();
            foreach ((long id, string path) in sealedSegments)
            {
                string dst = Path.Combine(destination, Path.GetFileName(path));
                File.Copy(path, dst, overwrite: true);
                if (CorruptSegmentId == id)
                {
                    using var f = new FileStream(dst, FileMode.Open, FileAccess.ReadWrite);
                    f.Position = 64 + 8 + 20;
                    int b = f.ReadByte();
                    f.Position = 64 + 8 + 20;
                    f.WriteByte((byte)(b ^ 0x01));
                }
                backups.Add(new { segmentId = id, path = dst });
            }
            return (200, JsonSerializer.Serialize(new { backups }));
        }
        return (404, Error("not found"));
    }

    private static bool IsSealed(string segment)
    {
        byte[] header = new byte[64];
        using FileStream f = File.OpenRead(segment);
        f.ReadExactly(header);
        return (BitConverter.ToUInt32(header, 40) & 2) != 0;
    }

    /// <summary>cleanBackupRelativePath: absolute or '..' refused, '.' refused for a file.</summary>
    private static string? Clean(string rel, bool allowRoot, out string clean)
    {
        clean = rel;
        if (Path.IsPathRooted(rel))
        {
            return "backup path must be relative";
        }
        clean = Path.GetRelativePath(".", rel);
        if (clean == "." && !allowRoot)
        {
            return "backup file path cannot reference backup root directly";
        }
        return clean.Split('/', '\\').Any(p => p == "..") ? "backup path cannot traverse outside backup root" : null;
    }

    private static string Error(string message) => JsonSerializer.Serialize(new { error = message });

    private static async Task<(string, string, string)> ReadRequestAsync(NetworkStream stream)
    {
        var buffer = new MemoryStream();
        byte[] chunk = new byte[8192];
        int headerEnd = -1;
        while (headerEnd < 0)
        {
            int n = await stream.ReadAsync(chunk);
            if (n == 0)
            {
                break;
            }
            buffer.Write(chunk, 0, n);
            headerEnd = IndexOf(buffer.GetBuffer().AsSpan(0, (int)buffer.Length), "\r\n\r\n"u8);
        }
        string head = Encoding.ASCII.GetString(buffer.GetBuffer(), 0, Math.Max(0, headerEnd));
        string[] lines = head.Split("\r\n");
        string[] first = lines[0].Split(' ');
        int length = lines.Skip(1).Select(l => l.Split(':', 2)).Where(kv => kv.Length == 2 && kv[0].Trim().Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
            .Select(kv => int.Parse(kv[1].Trim())).FirstOrDefault();
        while (buffer.Length < headerEnd + 4 + length)
        {
            int n = await stream.ReadAsync(chunk);
            if (n == 0)
            {
                break;
            }
            buffer.Write(chunk, 0, n);
        }
        string body = Encoding.UTF8.GetString(buffer.GetBuffer(), headerEnd + 4, length);
        return (first[0], first.Length > 1 ? first[1] : "/", body);
    }

    private static int IndexOf(ReadOnlySpan<byte> data, ReadOnlySpan<byte> what) => data.IndexOf(what);

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        try
        {
            await _loop;
        }
        catch (Exception)
        {
        }
        _stop.Dispose();
    }
}
