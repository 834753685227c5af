namespace PSBackup.Engine;

/// <summary>How detailed a log message is: <see cref="Verbose"/> is the narrative an operator
/// reads with -Verbose / --verbose (parent reused, files read, bytes stored, lock, key cache);
/// <see cref="Debug"/> is every storage call (-Debug).</summary>
public enum OperationLogLevel
{
    Verbose,
    Debug,
}

/// <summary>Where a front end wants the engine's log: the cmdlet base writes to WriteVerbose /
/// WriteDebug on the pipeline thread, the CLI to stderr.</summary>
public interface IOperationLogSink
{
    /// <summary>False when nobody reads that level: the engine then skips building the message.</summary>
    bool IsEnabled(OperationLogLevel level);

    /// <summary>Called from any thread.</summary>
    void Write(OperationLogLevel level, string message);
}

/// <summary>The engine's log: messages go to the sink the front end installed for the current
/// asynchronous flow (<see cref="Use"/>), and nowhere when there is none. Ambient like
/// <c>System.Diagnostics.Activity.Current</c> rather than a parameter, because the narrative is
/// written deep inside shared code (repository open, locks, the key cache, storage backends) that
/// no operation passes its <see cref="OperationContext"/> to; it flows into Task.Run and
/// Parallel.ForEachAsync with the execution context.</summary>
public static class OperationLog
{
    private static readonly AsyncLocal<IOperationLogSink?> CurrentSink = new();

    /// <summary>The sink of the current flow, or null.</summary>
    public static IOperationLogSink? Current => CurrentSink.Value;

    /// <summary>Installs <paramref name="sink"/> for the current flow until the result is disposed.</summary>
    public static IDisposable Use(IOperationLogSink? sink)
    {
        IOperationLogSink? previous = CurrentSink.Value;
        CurrentSink.Value = sink;
        return new Restore(previous);
    }

    public static bool IsVerbose => CurrentSink.Value?.IsEnabled(OperationLogLevel.Verbose) == true;

    public static bool IsDebug => CurrentSink.Value?.IsEnabled(OperationLogLevel.Debug) == true;

    /// <summary>A narrative line for -Verbose.</summary>
    public static void Verbose(string message) => Write(OperationLogLevel.Verbose, message);

    /// <summary>A storage-level line for -Debug.</summary>
    public static void Debug(string message) => Write(OperationLogLevel.Debug, message);

    private static void Write(OperationLogLevel level, string message)
    {
        IOperationLogSink? sink = CurrentSink.Value;
        if (sink is not null && sink.IsEnabled(level))
        {
            try
            {
                sink.Write(level, message);
            }
            catch (Exception e) when (e is InvalidOperationException or ObjectDisposedException)
            {
                // The front end has finished (a late message from a background task): nobody reads it.
            }
        }
    }

    private sealed class Restore(IOperationLogSink? previous) : IDisposable
    {
        public void Dispose() => CurrentSink.Value = previous;
    }
}
