using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace PSBackup;

/// <summary>SIGTERM (systemd stop, docker stop, kill) while a PSBackup cmdlet runs is handled like
/// Ctrl+C: every running cmdlet is cancelled, each cleans up what it wrote (temp folders, temp
/// files, its repository lock) and records the outcome <c>cancelled</c> in the audit log, and only
/// then does the process exit (code 143, as for a terminating SIGTERM). Without this the host would
/// exit at once and leave half-written temp copies behind. With no PSBackup cmdlet running the
/// signal keeps its default meaning.</summary>
internal static class TerminationSignal
{
    /// <summary>How long cleanup may take before the process exits anyway (systemd's default stop
    /// timeout is 90 s, after which it sends SIGKILL).</summary>
    private static readonly TimeSpan CleanupLimit = TimeSpan.FromSeconds(60);

    private static readonly ConcurrentDictionary<CancellationTokenSource, byte> Running = new();
    private static readonly object Gate = new();
    private static PosixSignalRegistration? _registration;
    private static bool _tried;

    /// <summary>Registers the handler once per process (where the platform supports SIGTERM).</summary>
    public static void EnsureRegistered()
    {
        lock (Gate)
        {
            if (_tried)
            {
                return;
            }
            _tried = true;
            try
            {
                _registration = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnTerminate);
            }
            catch (Exception e) when (e is PlatformNotSupportedException or IOException)
            {
                // No SIGTERM here: nothing to handle.
            }
        }
    }

    /// <summary>Marks a cmdlet's cancellation source as running until the returned scope is disposed.</summary>
    public static IDisposable Enter(CancellationTokenSource stop)
    {
        Running[stop] = 0;
        return new Scope(stop);
    }

    private static volatile bool _terminating;

    private sealed class Scope(CancellationTokenSource stop) : IDisposable
    {
        public void Dispose()
        {
            Running.TryRemove(stop, out _);
            if (_terminating && Running.IsEmpty)
            {
                // The last cancelled cmdlet has cleaned up: exit now, on its own thread, before the
                // host goes on (it would run the rest of the script or exit with its own code).
                Environment.Exit(143);
            }
        }
    }

    private static void OnTerminate(PosixSignalContext context)
    {
        if (Running.IsEmpty)
        {
            return; // the default: terminate
        }
        context.Cancel = true;
        _terminating = true;
        foreach (CancellationTokenSource stop in Running.Keys)
        {
            try
            {
                stop.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // finished meanwhile
            }
        }
        // Wait for the cancelled cmdlets to unwind (their cleanup runs before they return), then exit
        // as SIGTERM would have.
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (!Running.IsEmpty && waited.Elapsed < CleanupLimit)
        {
            Thread.Sleep(50);
        }
        Environment.Exit(143);
    }
}
