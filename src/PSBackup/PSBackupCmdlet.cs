using System.Collections.Concurrent;
using System.Management.Automation;
using PSBackup.Engine;

namespace PSBackup;

/// <summary>Base of every PSBackup cmdlet. Owns cancellation (a token cancelled in
/// <see cref="StopProcessing"/>) and bridges the async engine: the engine call runs on the thread
/// pool while the pipeline thread pumps a queue, so WriteObject, WriteError, WriteProgress,
/// WriteVerbose, ShouldProcess and script block invocation only ever run on the pipeline thread.
/// Engine errors become ErrorRecords in one place (<see cref="ErrorMapping"/>).</summary>
public abstract class PSBackupCmdlet : PSCmdlet, IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private BlockingCollection<WorkItem>? _queue;
    private int _pipelineThreadId;
    private bool _disposed;

    /// <summary>Cancelled when the user presses Ctrl+C or the pipeline is stopped.</summary>
    protected CancellationToken CancelToken => _stop.Token;

    /// <summary>Runs on the pipeline thread before <see cref="ProcessRecordAsync"/> for each input
    /// record: resolve paths and check parameters here (failures here are terminating).</summary>
    protected virtual void PrepareRecord()
    {
    }

    /// <summary>Processes one pipeline input record. Runs on the thread pool; use the Post* and
    /// *Async members of this class, which marshal to the pipeline thread.</summary>
    protected abstract Task ProcessRecordAsync();

    protected sealed override void ProcessRecord()
    {
        _pipelineThreadId = Environment.CurrentManagedThreadId;
        PrepareRecord();
        try
        {
            RunOnThreadPool(ProcessRecordAsync);
        }
        catch (PipelineStoppedException)
        {
            throw;
        }
        catch (Exception e) when (ErrorMapping.IsItemFailure(e))
        {
            // A failure on this input item: report it and let the pipeline continue with the next.
            WriteError(ErrorMapping.ToErrorRecord(e));
        }
        catch (Exception)
        {
            // Terminating: EndProcessing will not run, so close the progress bars here.
            CompleteProgress();
            throw;
        }
    }

    /// <summary>Ctrl+C or a downstream stop: runs on another thread, possibly after Dispose.</summary>
    protected sealed override void StopProcessing() => CancelQuietly();

    private void CancelQuietly()
    {
        try
        {
            _stop.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The cmdlet has already finished.
        }
    }

    /// <summary>Builds the engine's context: ShouldProcess and progress bridged to the pipeline
    /// thread, cancellation from StopProcessing.</summary>
    protected OperationContext CreateContext() => new()
    {
        ShouldProcess = (target, action) => ShouldProcessAsync(target, action).GetAwaiter().GetResult(),
        Progress = new ProgressBridge(this),
        CancellationToken = CancelToken,
        WhatIf = MyInvocation.BoundParameters.TryGetValue("WhatIf", out object? w) && w is SwitchParameter { IsPresent: true },
    };

    /// <summary>Resolves a path given by the user against PowerShell's current location (never the
    /// process working directory); it must be a FileSystem path. Failing to do so is a setup
    /// failure, so it terminates the cmdlet.</summary>
    protected string ResolveFileSystemPath(string path, string parameterName)
    {
        string resolved;
        ProviderInfo provider;
        try
        {
            resolved = SessionState.Path.GetUnresolvedProviderPathFromPSPath(path, out provider, out _);
        }
        catch (Exception e) when (e is ItemNotFoundException or System.Management.Automation.DriveNotFoundException or ProviderNotFoundException or NotSupportedException or ArgumentException)
        {
            ThrowTerminatingError(ErrorMapping.ToErrorRecord(
                new InvalidInputException("InvalidPath", $"-{parameterName} '{path}' cannot be resolved: {e.Message}", path)));
            throw; // not reached
        }
        if (!string.Equals(provider.Name, "FileSystem", StringComparison.OrdinalIgnoreCase))
        {
            ThrowTerminatingError(ErrorMapping.ToErrorRecord(
                new InvalidInputException("InvalidPath", $"-{parameterName} '{path}' is a {provider.Name} path. Give a file system path.", path)));
        }
        return resolved;
    }

    /// <summary>A time parameter (-TargetTime, -After, -Before) as an instant: a local or unspecified time (Get-Date, '2025-01-08')
    /// is local; a value whose UTC instant falls outside DateTimeOffset's range
    /// ([datetime]::MinValue east of UTC, MaxValue west of it) is clamped instead of failing with
    /// ArgumentOutOfRangeException.</summary>
    protected static DateTimeOffset InstantOf(DateTime value)
    {
        if (value.Kind == DateTimeKind.Utc)
        {
            return new DateTimeOffset(value);
        }
        TimeSpan offset = TimeZoneInfo.Local.GetUtcOffset(value);
        if (offset > TimeSpan.Zero && value < DateTime.MinValue + offset)
        {
            return DateTimeOffset.MinValue;
        }
        if (offset < TimeSpan.Zero && value > DateTime.MaxValue + offset)
        {
            return DateTimeOffset.MaxValue;
        }
        return new DateTimeOffset(value, offset);
    }

    /// <summary>True when this call runs under -WhatIf (the switch, or $WhatIfPreference when the
    /// switch is not given); -WhatIf:$false is not.</summary>
    protected bool IsWhatIf()
    {
        if (MyInvocation.BoundParameters.TryGetValue("WhatIf", out object? value))
        {
            return value is SwitchParameter s ? s.IsPresent : LanguagePrimitives.IsTrue(value);
        }
        return LanguagePrimitives.IsTrue(SessionState.PSVariable.GetValue("WhatIfPreference"));
    }

    // ---- members safe to call from the engine's thread ---------------------------------------

    protected void PostWriteObject(object? value) => Post(() => WriteObject(value));

    /// <summary>Writes each selected object's result (after <paramref name="before"/>), and each typed
    /// failure as a non-terminating error, so one failed object does not stop the others. A
    /// declined item (-WhatIf) writes nothing.</summary>
    protected async Task WriteEachAsync<T>(IAsyncEnumerable<Engine.ObjectStore.ObjectOutcome<T>> outcomes, Action<T>? before = null) where T : class
    {
        await foreach (Engine.ObjectStore.ObjectOutcome<T> outcome in outcomes.ConfigureAwait(false))
        {
            if (outcome.Error is not null)
            {
                PostWriteError(ErrorMapping.ToErrorRecord(outcome.Error));
            }
            else if (outcome.Result is { } result)
            {
                before?.Invoke(result);
                PostWriteObject(result);
            }
        }
    }

    protected void PostWriteVerbose(string message) => Post(() => WriteVerbose(message));

    protected void PostWriteError(ErrorRecord record) => Post(() => WriteError(record));

    protected void PostWriteWarning(string message) => Post(() => WriteWarning(message));

    protected Task<bool> ShouldProcessAsync(string target, string action) => InvokeOnPipelineThread(() => ShouldProcess(target, action));

    /// <summary>Runs <paramref name="func"/> on the pipeline thread and returns its result to the
    /// caller's thread (exceptions included).</summary>
    protected Task<T> InvokeOnPipelineThread<T>(Func<T> func)
    {
        if (Environment.CurrentManagedThreadId == _pipelineThreadId)
        {
            // Already on the pipeline thread (called outside an engine call): run it directly.
            try
            {
                return Task.FromResult(func());
            }
            catch (Exception e)
            {
                return Task.FromException<T>(e);
            }
        }
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        Post(() =>
        {
            try
            {
                done.SetResult(func());
            }
            catch (Exception e)
            {
                done.SetException(e);
                if (e is PipelineStoppedException)
                {
                    throw; // the pump stops the engine and surfaces this
                }
            }
        }, onDiscard: () => done.TrySetCanceled());
        return done.Task;
    }

    /// <summary>Runs a script block on the pipeline thread (its runspace lives there) and returns
    /// its output.</summary>
    protected Task<System.Collections.ObjectModel.Collection<PSObject>> InvokeScriptAsync(ScriptBlock script) =>
        InvokeOnPipelineThread(() => script.Invoke());

    // ---- the pump ------------------------------------------------------------------------------

    private void Post(Action action, Action? onDiscard = null)
    {
        BlockingCollection<WorkItem>? queue = _queue;
        if (queue is null)
        {
            onDiscard?.Invoke();
            return;
        }
        try
        {
            queue.Add(new WorkItem(action, onDiscard));
        }
        catch (Exception e) when (e is InvalidOperationException or ObjectDisposedException)
        {
            // The pump has finished (the operation already failed): nothing can be delivered.
            onDiscard?.Invoke();
        }
    }

    private void RunOnThreadPool(Func<Task> work)
    {
        using var queue = new BlockingCollection<WorkItem>();
        _queue = queue;
        Task task = Task.Run(async () =>
        {
            try
            {
                await work().ConfigureAwait(false);
            }
            finally
            {
                queue.CompleteAdding();
            }
        });

        Exception? pipelineFailure = null;
        foreach (WorkItem item in queue.GetConsumingEnumerable())
        {
            if (pipelineFailure is not null)
            {
                // Drain: the engine is being cancelled; release anyone waiting for an answer.
                item.Discard?.Invoke();
                continue;
            }
            try
            {
                item.Run();
            }
            catch (Exception e)
            {
                // E.g. PipelineStoppedException from WriteObject, or a terminating error raised by
                // a script block: stop the engine and surface this after it has unwound.
                pipelineFailure = e;
                CancelQuietly();
            }
        }
        _queue = null;

        try
        {
            task.GetAwaiter().GetResult();
        }
        catch (Exception) when (pipelineFailure is not null)
        {
            // The pipeline-side failure is the cause; the engine's exception is its consequence.
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            // Stopped by the user (Ctrl+C): the stop propagates as PowerShell's own stop signal,
            // never wrapped in an ErrorRecord.
            throw new PipelineStoppedException();
        }
        if (pipelineFailure is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(pipelineFailure).Throw();
        }
    }

    /// <summary>Work for the pipeline thread, and what to do instead if it can no longer run.</summary>
    private readonly record struct WorkItem(Action Run, Action? Discard);

    // ---- progress -------------------------------------------------------------------------------

    /// <summary>One reused ProgressRecord per activity; completed when the cmdlet finishes.</summary>
    private sealed class ProgressBridge(PSBackupCmdlet cmdlet) : IProgress<OperationProgress>
    {
        public void Report(OperationProgress value) => cmdlet.Post(() => cmdlet.WriteActivityProgress(value));
    }

    private readonly Dictionary<string, ProgressRecord> _activities = new(StringComparer.Ordinal);

    private void WriteActivityProgress(OperationProgress value)
    {
        if (!_activities.TryGetValue(value.Activity, out ProgressRecord? record))
        {
            record = new ProgressRecord(_activities.Count + 1, value.Activity, string.IsNullOrEmpty(value.Status) ? value.Activity : value.Status);
            _activities.Add(value.Activity, record);
        }
        if (!string.IsNullOrEmpty(value.Status))
        {
            record.StatusDescription = value.Status;
        }
        record.CurrentOperation = value.CurrentItem;
        record.PercentComplete = value.PercentComplete;
        record.RecordType = ProgressRecordType.Processing;
        WriteProgress(record);
    }

    protected override void EndProcessing() => CompleteProgress();

    private void CompleteProgress()
    {
        try
        {
            foreach (ProgressRecord record in _activities.Values)
            {
                record.RecordType = ProgressRecordType.Completed;
                record.PercentComplete = 100;
                WriteProgress(record);
            }
        }
        catch (PipelineStoppedException)
        {
            // Stopping: PowerShell clears the progress display itself.
        }
        finally
        {
            _activities.Clear();
        }
    }

    public void Dispose()
    {
        if (!_disposed)
        {
            _disposed = true;
            _stop.Dispose();
        }
        GC.SuppressFinalize(this);
    }
}
