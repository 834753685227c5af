using System.Diagnostics;
using System.Globalization;

namespace PSBackup.Bench;

/// <summary>UnisonDB's own WAL and store code (<c>unisondb-walfs</c>, built from
/// github.com/ankur-anand/unisondb <c>pkg/walfs</c> and <c>pkg/kvdrivers</c>; see
/// shared/unisondb/README.md): the benchmark's namespace is written by it, so the WAL rows measure
/// the real producer's walfs v1 <c>.seg</c> segments, <c>.seg.idx</c> sidecars and bbolt
/// <c>unison.db</c>, and the tests judge restores with it.</summary>
public static class UnisonWalfs
{
    /// <summary>Environment variable naming the folder of the binaries.</summary>
    public const string BinVariable = "PSBACKUP_UNISONDB_BIN";

    public const string V1 = "unisondb-walfs";

    /// <summary>The folder holding the binaries: <see cref="BinVariable"/>, else
    /// <c>shared/unisondb/bin</c> in <paramref name="start"/> or the nearest folder above it that
    /// has one (a checkout's sibling <c>../shared</c> is its parent's <c>shared</c>).</summary>
    public static string BinDir(string start)
    {
        string? fromEnv = Environment.GetEnvironmentVariable(BinVariable);
        if (!string.IsNullOrEmpty(fromEnv))
        {
            return Directory.Exists(fromEnv) ? fromEnv
                : throw new InvalidOperationException($"{BinVariable}='{fromEnv}' is not a folder.");
        }
        for (DirectoryInfo? d = new(Path.GetFullPath(start)); d is not null; d = d.Parent)
        {
            string candidate = Path.Combine(d.FullName, "shared", "unisondb", "bin");
            if (File.Exists(Path.Combine(candidate, V1)))
            {
                return candidate;
            }
        }
        throw new InvalidOperationException(
            $"The UnisonDB binaries were not found (looked for shared/unisondb/bin/{V1} beside '{start}' and its parents). Set {BinVariable}.");
    }

    /// <summary>Runs <c>unisondb-walfs</c> with <paramref name="args"/>; a non-zero exit is an
    /// exception carrying its output.</summary>
    public static string Run(params string[] args)
    {
        (int exit, string stdout, string stderr) = Start(Path.Combine(BinDir(AppContext.BaseDirectory), V1), args, TimeSpan.FromMinutes(30));
        return exit == 0 ? stdout
            : throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture, $"{V1} {string.Join(' ', args)} exited with {exit}: {stderr}{stdout}"));
    }

    /// <summary>Runs <paramref name="path"/> with <paramref name="args"/> and returns its exit code and
    /// output; one that outlives <paramref name="timeout"/> is killed and a <see cref="TimeoutException"/>.</summary>
    public static (int ExitCode, string Stdout, string Stderr) Start(string path, IEnumerable<string> args, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(path)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in args)
        {
            start.ArgumentList.Add(a);
        }
        using Process p = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {path}.");
        Task<string> stdout = p.StandardOutput.ReadToEndAsync();
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{path} {string.Join(' ', start.ArgumentList)} did not finish in {timeout.TotalMinutes:0} minutes.");
        }
        p.WaitForExit();
        return (p.ExitCode, stdout.Result, stderr.Result);
    }
}
