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
        ProcessStartInfo start = CreateStartInfo(command, what, argument, OperatingSystem.IsWindows(), Environment.GetEnvironmentVariable("ComSpec"));
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

    /// <summary>How the command is started. Unix: <c>/bin/sh -c &lt;command&gt; psbackup-&lt;what&gt; &lt;argument&gt;</c>
    /// (so <c>$1</c>), every piece its own argv entry. Windows: cmd.exe does not parse the C runtime's
    /// quoting that <see cref="ProcessStartInfo.ArgumentList"/> produces (an inner <c>"</c> would
    /// arrive as <c>\"</c> and break <c>"C:\Program Files\tool.exe" "x"</c>), so the command line is
    /// given verbatim: <c>/d /s /c "&lt;command&gt; "&lt;argument&gt;""</c>. <c>/s</c> makes cmd strip exactly
    /// the outer pair of quotes and run the rest as typed, <c>/d</c> skips AutoRun (node's
    /// child_process does the same for <c>shell: true</c>). The argument (a path, which cannot
    /// contain <c>"</c> on Windows) is appended in quotes, so it is <c>%1</c>-like for the command.</summary>
    internal static ProcessStartInfo CreateStartInfo(string command, string what, string? argument, bool windows, string? comSpec)
    {
        var start = new ProcessStartInfo
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (windows)
        {
            if (argument is not null && argument.Contains('"'))
            {
                throw new InvalidInputException("InvalidPath", $"The path '{SafePath.Printable(argument)}' contains a double quote, which cmd.exe cannot pass to the {what} command.", argument);
            }
            start.FileName = string.IsNullOrWhiteSpace(comSpec) ? "cmd.exe" : comSpec;
            string line = argument is null ? command : $"{command} \"{argument}\"";
            start.Arguments = $"/d /s /c \"{line}\"";
            return start;
        }
        start.FileName = "/bin/sh";
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(command);
        if (argument is not null)
        {
            start.ArgumentList.Add("psbackup-" + what); // $0
            start.ArgumentList.Add(argument);           // $1
        }
        return start;
    }
}
