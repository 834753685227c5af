using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;

namespace PSBackup.Engine.Tests.Proofs;

/// <summary>Proofs that time a child process (kill points, peak memory) run alone, after the
/// parallel tests, so other tests' load does not skew what they measure.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SerialProofs
{
    public const string Name = "Serial proofs";
}

/// <summary>The built CLI run as a real child process (<c>dotnet psbackup.dll ...</c>), so a test
/// can kill it, run two at once or measure its memory.</summary>
internal sealed class CliProcess : IDisposable
{
    private readonly Process _process;
    private readonly System.Text.StringBuilder _stdout = new();
    private readonly System.Text.StringBuilder _stderr = new();

    private CliProcess(Process process)
    {
        _process = process;
    }

    public static string CliDll
    {
        get
        {
            string dll = Path.Combine(AppContext.BaseDirectory, "psbackup.dll");
            Assert.True(File.Exists(dll), $"{dll} is missing: the test project references the CLI project, so building it copies the CLI beside the tests.");
            return dll;
        }
    }

    public static CliProcess Start(params string[] args) => Start(null, args);

    /// <summary>Starts the CLI with <paramref name="environment"/> applied on top of this process's
    /// environment (a null value removes the variable).</summary>
    public static CliProcess Start(IReadOnlyDictionary<string, string?>? environment, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(CliDll);
        foreach (string a in args)
        {
            start.ArgumentList.Add(a);
        }
        start.Environment.Remove("PSBACKUP_PASSPHRASE");
        start.Environment.Remove("PSBACKUP_KEY_FILE");
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        foreach (var (name, value) in environment ?? new Dictionary<string, string?>())
        {
            if (value is null)
            {
                start.Environment.Remove(name);
            }
            else
            {
                start.Environment[name] = value;
            }
        }
        var p = new CliProcess(Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start"));
        p._process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (p._stdout) { p._stdout.AppendLine(e.Data); } } };
        p._process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (p._stderr) { p._stderr.AppendLine(e.Data); } } };
        p._process.BeginOutputReadLine();
        p._process.BeginErrorReadLine();
        return p;
    }

    public int Id => _process.Id;
    public bool HasExited => _process.HasExited;
    public string Stdout { get { lock (_stdout) { return _stdout.ToString(); } } }
    public string Stderr { get { lock (_stderr) { return _stderr.ToString(); } } }

    public async Task<int> WaitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            Kill();
            throw new TimeoutException($"psbackup did not finish within {timeout}. stderr: {Stderr}");
        }
        _process.WaitForExit(); // flushes the redirected streams
        return _process.ExitCode;
    }

    /// <summary>Runs to completion and asserts exit 0; returns stdout.</summary>
    public static async Task<string> RunOkAsync(TimeSpan timeout, params string[] args)
    {
        using CliProcess p = Start(args);
        int code = await p.WaitAsync(timeout);
        Assert.True(code == 0, $"psbackup {string.Join(' ', args)} exited {code}: {p.Stderr}");
        return p.Stdout;
    }

    public void Kill()
    {
        try
        {
            _process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // already gone
        }
    }

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }

    /// <summary>The backup id (manifest id) from an object backup's --json output.</summary>
    public static string BackupIdOf(string json)
    {
        using JsonDocument doc = JsonDocument.Parse(json);
        return doc.RootElement.GetProperty("backupId").GetString()!;
    }
}

/// <summary>Large test files written fast: 1 MiB blocks cut from a seeded random pool at
/// seeded offsets, each stamped with its seed and index (so every block and every chunk is
/// unique), three quarters compressible (text runs), one quarter not.</summary>
internal static class BulkData
{
    private const int Block = 1 << 20;

    public static void WriteFile(string path, long bytes, int seed)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var rng = new Random(seed);
        byte[] pool = new byte[4 * Block];
        rng.NextBytes(pool);
        byte[] text = System.Text.Encoding.ASCII.GetBytes(string.Concat(Enumerable.Range(0, 2048).Select(i => $"row {i} tenant acme status=ok; ")));
        byte[] block = new byte[Block];
        using var fs = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        for (long written = 0, index = 0; written < bytes; index++)
        {
            // 16 KiB pieces: one in four a pool slice at a random offset, the others text slices.
            for (int off = 0; off < Block; off += 16 * 1024)
            {
                ReadOnlySpan<byte> src = (off / (16 * 1024)) % 4 == 0
                    ? pool.AsSpan(rng.Next(pool.Length - 16 * 1024), 16 * 1024)
                    : text.AsSpan(rng.Next(text.Length - 16 * 1024), 16 * 1024);
                src.CopyTo(block.AsSpan(off));
                BitConverter.TryWriteBytes(block.AsSpan(off, 8), ((long)seed << 40) ^ (index << 8) ^ off);
            }
            int n = (int)Math.Min(Block, bytes - written);
            fs.Write(block, 0, n);
            written += n;
        }
    }

    public static string Sha256(string path)
    {
        using FileStream fs = File.OpenRead(path);
        return Convert.ToHexString(SHA256.HashData(fs));
    }

    /// <summary>Relative path → SHA-256 of every file under <paramref name="root"/>.</summary>
    public static SortedDictionary<string, string> Tree(string root) =>
        new(Directory.GetFiles(root, "*", SearchOption.AllDirectories)
            .ToDictionary(f => Path.GetRelativePath(root, f).Replace('\\', '/'), Sha256), StringComparer.Ordinal);
}
