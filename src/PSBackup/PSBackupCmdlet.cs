using System.Collections.Concurrent;
using System.Diagnostics;
using System.Management.Automation;
using PSBackup.Engine;

namespace PSBackup;

/// <summary>Base of every PSBackup cmdlet. Owns cancellation (a token cancelled in
/// <see cref="StopProcessing"/>) and bridges the async engine: the engine call runs on the thread
/// pool while the pipeline thread pumps a bounded queue, so WriteObject, WriteError, WriteProgress,
/// WriteVerbose, ShouldProcess and script block invocation only ever run on the pipeline thread.
/// Output is awaited (<see cref="WriteObjectAsync"/> completes once the pipeline thread has written
/// the object, i.e. once the downstream commands have processed it), so a slow consumer slows the
/// engine down and a stopped one (<c>Select-Object -First 1</c>, Ctrl+C) stops it at its next write.
/// Engine errors become ErrorRecords in one place (<see cref="ErrorMapping"/>); the engine's log
/// (<see cref="OperationLog"/>) reaches -Verbose and -Debug.</summary>
public abstract class PSBackupCmdlet : PSCmdlet, IDisposable, IOperationLogSink
{
    /// <summary>Work items waiting for the pipeline thread. Output waits for its own item anyway;
    /// the bound makes warnings, verbose and debug messages wait too rather than pile up in memory
    /// while a slow consumer holds the pipeline thread.</summary>
    internal const int QueueCapacity = 64;

    private readonly CancellationTokenSource _stop = new();
    private BlockingCollection<WorkItem>? _queue;
    private int _pipelineThreadId;
    private bool _verbose;
    private bool _debug;
    private bool _disposed;

    /// <summary>Cancelled when the user presses Ctrl+C or the pipeline is stopped.</summary>
    protected CancellationToken CancelToken => _stop.Token;

    /// <summary>Runs on the pipeline thread before <see cref="ProcessRecordAsync"/> for each input
    /// record: resolve paths and check parameters here (failures here are terminating).</summary>
    protected virtual void PrepareRecord()
    {
    }

    /// <summary>Processes one pipeline input record. Runs on the thread pool; use the *Async and
    /// Post* members of this class, which marshal to the pipeline thread.</summary>
    protected abstract Task ProcessRecordAsync();

    /// <summary>Runs once after the last input record, on the thread pool like
    /// <see cref="ProcessRecordAsync"/> (for cmdlets that collect their input first).</summary>
    protected virtual Task EndProcessingAsync() => Task.CompletedTask;

    protected sealed override void ProcessRecord()
    {
        CaptureStreams();
        PrepareRecord();
        RunReportingItemFailures(ProcessRecordAsync);
    }

    /// <summary>Runs on the pipeline thread after <see cref="EndProcessingAsync"/> (and after every
    /// queued write): where a cmdlet decides on a terminating error from what its records said
    /// (-FailOnError, -FailOnCritical), since ThrowTerminatingError belongs to the pipeline thread.</summary>
    protected virtual void EndProcessingOnPipelineThread()
    {
    }

    protected sealed override void EndProcessing()
    {
        CaptureStreams();
        try
        {
            RunReportingItemFailures(EndProcessingAsync);
            EndProcessingOnPipelineThread();
        }
        finally
        {
            CompleteProgress();
        }
    }

    /// <summary>Runs <paramref name="work"/> through the pump; a failure that belongs to the input
    /// item is written as a non-terminating error and the pipeline goes on.</summary>
    private void RunReportingItemFailures(Func<Task> work)
    {
        TerminationSignal.EnsureRegistered();
        using IDisposable running = TerminationSignal.Enter(_stop);
        try
        {
            RunOnThreadPool(work);
        }
        catch (PipelineStoppedException)
        {
            throw;
        }
        catch (Exception e) when (ErrorMapping.IsSetupFailure(e))
        {
            // The repository is missing, locked or the key is wrong: one terminating error for the
            // call, so piped input and wildcards do not repeat it per object.
            CompleteProgress();
            ThrowTerminatingError(ErrorMapping.ToErrorRecord(e));
        }
        catch (Exception e) when (ErrorMapping.IsItemFailure(e))
        {
            WriteError(ErrorMapping.ToErrorRecord(e));
        }
        catch (Exception)
        {
            // Terminating: EndProcessing will not run, so close the progress bars here.
            CompleteProgress();
            throw;
        }
    }

    /// <summary>Pipeline thread: remembers it, and whether -Verbose / -Debug output is wanted (the
    /// switches, else the preference variables), so the engine only builds messages someone reads.</summary>
    private void CaptureStreams()
    {
        _pipelineThreadId = Environment.CurrentManagedThreadId;
        _verbose = Wants("Verbose", "VerbosePreference");
        _debug = Wants("Debug", "DebugPreference");
    }

    private bool Wants(string parameter, string preferenceVariable)
    {
        if (MyInvocation.BoundParameters.TryGetValue(parameter, out object? value))
        {
            return value is SwitchParameter s ? s.IsPresent : LanguagePrimitives.IsTrue(value);
        }
        object? preference = GetVariableValue(preferenceVariable);
        if (preference is PSObject wrapped)
        {
            preference = wrapped.BaseObject;
        }
        return preference switch
        {
            ActionPreference p => p is not (ActionPreference.SilentlyContinue or ActionPreference.Ignore),
            string text => Enum.TryParse(text, ignoreCase: true, out ActionPreference p) && p is not (ActionPreference.SilentlyContinue or ActionPreference.Ignore),
            _ => false,
        };
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

    /// <summary>True when the cmdlet's -Force says "do not ask": ShouldProcess then answers yes
    /// without prompting, so a job in a non-interactive host never meets a ConfirmImpact High
    /// prompt. -WhatIf (switch or preference) and an explicit -Confirm still win.</summary>
    protected virtual bool SkipConfirmation => false;

    private bool ConfirmWithoutAsking() =>
        SkipConfirmation && !IsWhatIf() && !MyInvocation.BoundParameters.ContainsKey("Confirm");

    /// <summary>Builds the engine's context: ShouldProcess and progress bridged to the pipeline
    /// thread, cancellation from StopProcessing.</summary>
    protected OperationContext CreateContext() => new()
    {
        ShouldProcess = (target, action) => ConfirmWithoutAsking() || ShouldProcessAsync(target, action).GetAwaiter().GetResult(),
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

    /// <summary>Writes <paramref name="value"/> to the pipeline and completes once the pipeline
    /// thread has written it: the downstream commands have taken it (back-pressure). Cancelled
    /// when the pipeline stops (a downstream <c>Select-Object -First</c>, Ctrl+C), which the
    /// engine sees as cancellation and stops on.</summary>
    protected Task WriteObjectAsync(object? value) => WriteOnPipelineThread(() => WriteObject(value));

    /// <summary>Writes a non-terminating error and completes once it is written.</summary>
    protected Task WriteErrorAsync(ErrorRecord record) => WriteOnPipelineThread(() => WriteError(record));

    /// <summary>A write whose every failure is the pipeline's (a downstream stop, or a downstream
    /// command's terminating error thrown through WriteObject): it stops the engine and surfaces
    /// after the engine unwound; the awaiting engine code sees cancellation.</summary>
    private Task WriteOnPipelineThread(Action write)
    {
        if (Environment.CurrentManagedThreadId == _pipelineThreadId)
        {
            write();
            return Task.CompletedTask;
        }
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Post(() =>
        {
            write();
            done.TrySetResult();
        }, onDiscard: () => done.TrySetCanceled());
        return done.Task;
    }

    /// <summary>Writes each selected object's result (after <paramref name="before"/>), and each typed
    /// failure as a non-terminating error, so one failed object does not stop the others. A
    /// declined item (-WhatIf) writes nothing.</summary>
    protected async Task WriteEachAsync<T>(IAsyncEnumerable<Engine.ObjectStore.ObjectOutcome<T>> outcomes, Action<T>? before = null) where T : class
    {
        await foreach (Engine.ObjectStore.ObjectOutcome<T> outcome in outcomes.WithCancellation(CancelToken).ConfigureAwait(false))
        {
            if (outcome.Error is { IsSetupFailure: true } setup)
            {
                // The call's failure, not this object's: terminating (RunReportingItemFailures).
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(setup);
            }
            if (outcome.Error is not null)
            {
                await WriteErrorAsync(ErrorMapping.ToErrorRecord(outcome.Error)).ConfigureAwait(false);
            }
            else if (outcome.Result is { } result)
            {
                before?.Invoke(result);
                await WriteObjectAsync(result).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Queues a verbose message (not awaited; the bounded queue holds the caller back
    /// when the pipeline thread is busy). Only when -Verbose (or $VerbosePreference) asks for it:
    /// PowerShell treats -Debug alone as "inquire" for verbose messages, which would prompt (and
    /// fail in a non-interactive session) for every line.</summary>
    protected void PostWriteVerbose(string message)
    {
        if (_verbose)
        {
            Post(() => WriteVerbose(message));
        }
    }

    protected void PostWriteWarning(string message) => Post(() => WriteWarning(message));

    protected Task<bool> ShouldProcessAsync(string target, string action) => InvokeOnPipelineThread(() => ShouldProcess(target, action));

    /// <summary>Runs <paramref name="func"/> on the pipeline thread and returns its result to the
    /// caller's thread (exceptions included; cancelled when the pipeline stopped before it ran).</summary>
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
            T result;
            try
            {
                result = func();
            }
            catch (Exception e) when (e is not PipelineStoppedException)
            {
                done.TrySetException(e);
                return;
            }
            done.TrySetResult(result);
        }, onDiscard: () => done.TrySetCanceled());
        return done.Task;
    }

    /// <summary>Runs a script block on the pipeline thread (its runspace lives there) and returns
    /// its output.</summary>
    protected Task<System.Collections.ObjectModel.Collection<PSObject>> InvokeScriptAsync(ScriptBlock script) =>
        InvokeOnPipelineThread(() => script.Invoke());

    // ---- the engine's log ------------------------------------------------------------------------

    bool IOperationLogSink.IsEnabled(OperationLogLevel level) => level == OperationLogLevel.Verbose ? _verbose : _debug;

    void IOperationLogSink.Write(OperationLogLevel level, string message)
    {
        if (level == OperationLogLevel.Verbose)
        {
            PostWriteVerbose(message);
        }
        else if (_debug)
        {
            Post(() => WriteDebug(message));
        }
    }

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
        using var queue = new BlockingCollection<WorkItem>(QueueCapacity);
        _queue = queue;
        Task task = Task.Run(async () =>
        {
            try
            {
                using (OperationLog.Use(this))
                {
                    await work().ConfigureAwait(false);
                }
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
                // E.g. PipelineStoppedException from WriteObject (a downstream Select-Object -First
                // stops upstream commands this way), or a terminating error raised by a script
                // block: release the waiting writer, stop the engine and surface this after it has
                // unwound.
                pipelineFailure = e;
                CancelQuietly();
                item.Discard?.Invoke();
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

    /// <summary>Engine progress to the pipeline thread. Reports arriving while an earlier one of the
    /// same activity still waits in the queue replace it (the newest state is what matters), so
    /// progress never floods the queue; each one written is a new ProgressRecord.</summary>
    private sealed class ProgressBridge(PSBackupCmdlet cmdlet) : IProgress<OperationProgress>
    {
        private readonly Dictionary<string, OperationProgress> _pending = new(StringComparer.Ordinal);

        public void Report(OperationProgress value)
        {
            lock (_pending)
            {
                bool queued = _pending.ContainsKey(value.Activity);
                _pending[value.Activity] = value;
                if (queued)
                {
                    return;
                }
            }
            cmdlet.Post(() => cmdlet.WriteActivityProgress(Take(value.Activity)), onDiscard: () => Take(value.Activity));
        }

        private OperationProgress Take(string activity)
        {
            lock (_pending)
            {
                _pending.Remove(activity, out OperationProgress? latest);
                return latest!;
            }
        }
    }

    /// <summary>Per activity: its record id, when it began and the last status shown.</summary>
    private sealed class ActivityState(int id, long startTimestamp)
    {
        public int Id { get; } = id;
        public long StartTimestamp { get; } = startTimestamp;
        public string Status { get; set; } = "";
    }

    private readonly Dictionary<string, ActivityState> _activities = new(StringComparer.Ordinal);

    private void WriteActivityProgress(OperationProgress value)
    {
        if (!_activities.TryGetValue(value.Activity, out ActivityState? state))
        {
            state = new ActivityState(_activities.Count + 1, Stopwatch.GetTimestamp());
            _activities.Add(value.Activity, state);
        }
        ProgressEstimate view = ProgressEstimate.Of(value, Stopwatch.GetElapsedTime(state.StartTimestamp));
        state.Status = view.Status;
        WriteProgress(new ProgressRecord(state.Id, value.Activity, view.Status)
        {
            CurrentOperation = value.CurrentItem,
            PercentComplete = value.PercentComplete,
            SecondsRemaining = view.SecondsRemaining,
            RecordType = ProgressRecordType.Processing,
        });
    }

    private void CompleteProgress()
    {
        try
        {
            foreach ((string activity, ActivityState state) in _activities)
            {
                WriteProgress(new ProgressRecord(state.Id, activity, string.IsNullOrEmpty(state.Status) ? activity : state.Status)
                {
                    RecordType = ProgressRecordType.Completed,
                    PercentComplete = 100,
                });
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
