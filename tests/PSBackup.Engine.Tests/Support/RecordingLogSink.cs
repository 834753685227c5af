using System.Collections.Concurrent;

namespace PSBackup.Engine.Tests.Support;

/// <summary>An engine log sink that keeps every line it is given (from any thread): Verbose always,
/// Debug when asked.</summary>
internal sealed class RecordingLogSink(bool debug = false) : IOperationLogSink
{
    public ConcurrentQueue<(OperationLogLevel Level, string Message)> Lines { get; } = new();

    public bool IsEnabled(OperationLogLevel level) => level == OperationLogLevel.Verbose || debug;

    public void Write(OperationLogLevel level, string message) => Lines.Enqueue((level, message));
}
