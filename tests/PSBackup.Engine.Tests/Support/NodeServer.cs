using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.RegularExpressions;

namespace PSBackup.Engine.Tests.Support;

/// <summary>A storage emulator that runs on Node.js from the repository's tests/&lt;folder&gt;/node_modules
/// (s3rver, Azurite), started on 127.0.0.1 with port 0: its port is read from the line it prints
/// when it listens, every line it prints is kept (<see cref="Log"/>), and dispose kills it with
/// its whole process tree. A server that exits first, or does not listen in time, fails the start
/// with what it printed.</summary>
public sealed class NodeServer : IDisposable
{
    private readonly ConcurrentQueue<string> _log = new();
    private readonly TaskCompletionSource<int> _port = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly string _name;
    private readonly Regex _listening;
    private Process? _process;

    private NodeServer(string name, Regex listening)
    {
        _name = name;
        _listening = listening;
    }

    /// <summary>Every line the server printed.</summary>
    public IReadOnlyCollection<string> Log => _log;

    public int Port { get; private set; }

    /// <summary>The node process (for tests that pause it with SIGSTOP to play a stalled endpoint).</summary>
    public int ProcessId => _process?.Id ?? throw new InvalidOperationException($"{_name} is not running.");

    /// <summary>The repository root: the folder above the test binaries that holds <paramref name="marker"/>.</summary>
    public static string FindRepoRoot(string marker)
    {
        for (DirectoryInfo? dir = new(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, marker)))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException($"{marker} not found above {AppContext.BaseDirectory}.");
    }

    /// <summary>Runs <c>node &lt;package&gt;/node_modules/&lt;script&gt; &lt;arguments&gt;</c> and returns
    /// once the server printed the port it listens on (group 1 of <paramref name="listening"/>).</summary>
    /// <param name="package">The npm folder under the repository root ("tests/s3").</param>
    public static async Task<NodeServer> StartAsync(string name, string package, string script, IEnumerable<string> arguments, Regex listening,
        TimeSpan timeout, string? workingDirectory = null, IReadOnlyDictionary<string, string>? environment = null)
    {
        string root = FindRepoRoot(Path.Combine(package, "package.json"));
        string path = Path.Combine(root, package, "node_modules", script);
        if (!File.Exists(path))
        {
            throw new InvalidOperationException(
                $"{name} is not installed ({path} is missing). Run `npm ci --prefix {package}` in {root} (scripts/test.sh does this).");
        }
        var start = new ProcessStartInfo("node")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Path.Combine(root, package),
        };
        start.ArgumentList.Add(path);
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        foreach ((string key, string value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }
        var server = new NodeServer(name, listening);
        try
        {
            server._process = Process.Start(start) ?? throw new InvalidOperationException("node did not start.");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"Cannot start node for {name} ({e.Message}). Install Node.js 18 or later.", e);
        }
        Process process = server._process;
        process.OutputDataReceived += (_, e) => server.OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => server.OnLine(e.Data);
        process.EnableRaisingEvents = true;
        process.Exited += (_, _) => server._port.TrySetException(new InvalidOperationException(
            $"{name} exited with code {process.ExitCode} before listening:{Environment.NewLine}{string.Join(Environment.NewLine, server._log)}"));
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            server.Port = await server._port.Task.WaitAsync(timeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            server.Dispose();
            throw new TimeoutException($"{name} did not listen within {timeout.TotalSeconds} s:{Environment.NewLine}{string.Join(Environment.NewLine, server._log)}");
        }
        return server;
    }

    private void OnLine(string? line)
    {
        if (line is null)
        {
            return;
        }
        _log.Enqueue(line);
        Match m = _listening.Match(line);
        if (m.Success)
        {
            _port.TrySetResult(int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
        }
    }

    public void Dispose()
    {
        if (_process is not { } process)
        {
            return;
        }
        _process = null;
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
        }
        process.Dispose();
    }
}
