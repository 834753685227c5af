using System.Diagnostics;
using PSBackup.Engine;

namespace PSBackup.Cli;

/// <summary>Runs a user's hook command (--quiesce-command, --resume-command) through the system
/// shell: <c>/bin/sh -c</c> on Unix, <c>cmd /c</c> on Windows. Its output goes to stderr so stdout
/// stays clean for --json; a non-zero exit is a failure.</summary>
internal static class ShellCommand
{
    public static Task RunAsync(string command, string what, TextWriter log, CancellationToken cancellationToken) =>
        RunAsync(command, what, what == "quiesce" ? "QuiesceCommandFailed" : "ResumeCommandFailed", log, null, null, cancellationToken);

    /// <summary>Runs <paramref name="command"/> with <paramref name="argument"/> as its first
    /// positional argument (<c>$1</c> under /bin/sh; appended, quoted, under cmd) and the given
    /// environment variables; a failure is an OperationFailedException with <paramref name="errorId"/>.</summary>
    public static async Task RunAsync(string command, string what, string errorId, TextWriter log,
        string? argument, IReadOnlyDictionary<string, string>? environment, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo
        {
            FileName = OperatingSystem.IsWindows() ? "cmd.exe" : "/bin/sh",
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(OperatingSystem.IsWindows() ? "/c" : "-c");
        if (argument is null)
        {
            start.ArgumentList.Add(command);
        }
        else if (OperatingSystem.IsWindows())
        {
            start.ArgumentList.Add($"{command} \"{argument}\"");
        }
        else
        {
            start.ArgumentList.Add(command);
            start.ArgumentList.Add("psbackup-" + what); // $0
            start.ArgumentList.Add(argument);           // $1
        }
        foreach ((string name, string value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }
        using var process = new Process { StartInfo = start };
        var outputLock = new object();
        void Forward(object sender, DataReceivedEventArgs e)
        {
            if (e.Data is not null)
            {
                lock (outputLock)
                {
                    log.WriteLine(e.Data);
                }
            }
        }
        process.OutputDataReceived += Forward;
        process.ErrorDataReceived += Forward;
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new OperationFailedException(errorId, $"The {what} command could not be started: {e.Message}", command);
        }
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            try
            {
                process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // already exited
            }
            throw;
        }
        process.WaitForExit(); // drain redirected output
        if (process.ExitCode != 0)
        {
            throw new OperationFailedException(errorId,
                $"The {what} command exited with code {process.ExitCode}: {command}", command);
        }
    }
}
