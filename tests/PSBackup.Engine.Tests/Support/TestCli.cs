using System.Diagnostics;
using System.Runtime.InteropServices;
using PSBackup.Cli;

namespace PSBackup.Engine.Tests.Support;

/// <summary>How the CLI tests run <c>psbackup</c>: in-process through <see cref="CliApp.RunAsync"/>
/// (the default), or, when <c>PSBACKUP_TEST_CLI</c> names an executable, as that program in a child
/// process with the same arguments, environment and working folder. scripts/test.sh sets it to the
/// Native AOT build (what bench/run.sh and docs/performance.md install), so the same assertions
/// prove the published binary, where a type without build-time JSON metadata or a trimmed member
/// fails only at run time. A cancelled token sends SIGINT, as Ctrl+C does (exit 130, like an
/// in-process cancellation).</summary>
internal static class TestCli
{
    public const string Variable = "PSBACKUP_TEST_CLI";

    /// <summary>The executable under test, or null for in-process runs.</summary>
    public static string? Executable => Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } path ? path : null;

    /// <remarks>A token cancelled before the call runs in-process either way: it tests how the CLI
    /// treats a cancelled token, which has no process equivalent (a signal sent before the child
    /// installs its handlers kills it without a word).</remarks>
    public static Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr, CancellationToken cancellationToken = default) =>
        Executable is { } exe && !cancellationToken.IsCancellationRequested
            ? RunChildAsync(exe, args, stdout, stderr, cancellationToken)
            : CliApp.RunAsync(args, stdout, stderr, cancellationToken);

    private static async Task<int> RunChildAsync(string exe, string[] args, TextWriter stdout, TextWriter stderr, CancellationToken ct)
    {
        var start = new ProcessStartInfo(exe)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in args)
        {
            start.ArgumentList.Add(a);
        }
        using Process p = Process.Start(start) ?? throw new InvalidOperationException($"{exe} did not start");
        p.StandardInput.Close();
        Task<string> output = p.StandardOutput.ReadToEndAsync(CancellationToken.None);
        Task<string> error = p.StandardError.ReadToEndAsync(CancellationToken.None);
        using (ct.Register(() => Terminate(p)))
        {
            await p.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
        }
        await stdout.WriteAsync(await output.ConfigureAwait(false)).ConfigureAwait(false);
        await stderr.WriteAsync(await error.ConfigureAwait(false)).ConfigureAwait(false);
        return p.ExitCode;
    }

    private static void Terminate(Process p)
    {
        try
        {
            if (OperatingSystem.IsWindows())
            {
                p.Kill();
            }
            else
            {
                _ = kill(p.Id, 2); // SIGINT
            }
        }
        catch (InvalidOperationException)
        {
            // Already exited.
        }
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);
}
