using PSBackup.Engine.Storage;
using PSBackup.Engine.Tests.Repository;
using PSBackup.Engine.Tests.Support;

namespace PSBackup.Engine.Tests.Storage;

/// <summary>The storage contract against the in-memory backend the repository tests use, so what
/// they prove holds for a backend that keeps the contract.</summary>
public sealed class MemoryBackendContractTests : StorageContractTests
{
    private MemoryBackend? _memory;

    protected override int LargeSize => (3 << 20) + 123;

    protected override Task<IStorageBackend> CreateBackendAsync() => Task.FromResult<IStorageBackend>(_memory = new MemoryBackend());

    protected override Task AssertNoLeftoversAsync(string key) => Task.CompletedTask;

    protected override Task<string> ObserveIoAsync() =>
        Task.FromResult($"{_memory!.Puts}/{_memory.Deletes}/{string.Join(",", _memory.Keys)}");
}

/// <summary>A folder, and the wrappers over a real folder: the contract holds through them.</summary>
public abstract class FolderBackedContractTests : StorageContractTests, IDisposable
{
    private readonly TestDirectory _dir = new();

    protected string Root => _dir.Path;

    protected override int LargeSize => (6 << 20) + 123;

    /// <summary>A folder's keys are its file names: case-insensitive where the file system is.</summary>
    protected override bool KeysIgnoreCase => SafePath.NamesIgnoreCase;

    protected abstract IStorageBackend Wrap(LocalBackend folder);

    protected override Task<IStorageBackend> CreateBackendAsync() => Task.FromResult(Wrap(new LocalBackend(_dir.Path)));

    protected override Task AssertNoLeftoversAsync(string key)
    {
        string[] temps = Directory.GetFiles(_dir.Path, "*.tmp", SearchOption.AllDirectories);
        Assert.True(temps.Length == 0, $"temp files left: {string.Join(", ", temps)}");
        return Task.CompletedTask;
    }

    protected override Task<string> ObserveIoAsync() =>
        Task.FromResult(string.Join("\n", TreeState.Capture(_dir.Path).Entries.Select(e => $"{e.Key}={e.Value}")));

    public void Dispose() => _dir.Dispose();

    /// <summary>A retry policy that never sleeps.</summary>
    protected static StorageRetryPolicy NoWait() => new() { Delay = (_, _) => Task.CompletedTask, NextJitter = () => 0 };
}

/// <summary><see cref="FaultInjectingBackend"/> with no rule set is the folder backend.</summary>
public sealed class FaultInjectingBackendContractTests : FolderBackedContractTests
{
    protected override IStorageBackend Wrap(LocalBackend folder) => new FaultInjectingBackend(folder);
}

/// <summary><see cref="RetryingBackend"/> over a healthy folder.</summary>
public sealed class RetryingBackendContractTests : FolderBackedContractTests
{
    protected override IStorageBackend Wrap(LocalBackend folder) => new RetryingBackend(folder, NoWait());
}

/// <summary><see cref="RetryingBackend"/> over a folder whose every other read, stat, listing and
/// delete fails with a transient network error first: the retries make the contract hold anyway.
/// (Puts are left alone: a non-seekable put is rightly not retried.)</summary>
public sealed class RetryingOverFaultyBackendContractTests : FolderBackedContractTests
{
    protected override IStorageBackend Wrap(LocalBackend folder)
    {
        var faults = new FaultInjectingBackend(folder);
        foreach (StorageOperation op in new[] { StorageOperation.Get, StorageOperation.GetRange, StorageOperation.Stat, StorageOperation.List, StorageOperation.Delete })
        {
            for (int n = 1; n <= 400; n += 2)
            {
                faults.FailCall(op, n, () => new IOException("connection reset (injected)"));
            }
        }
        return new RetryingBackend(faults, NoWait());
    }
}
