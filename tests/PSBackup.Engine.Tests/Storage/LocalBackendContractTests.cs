using PSBackup.Engine.Storage;
using PSBackup.Engine.Tests.Support;

namespace PSBackup.Engine.Tests.Storage;

/// <summary>The storage contract against a folder.</summary>
public sealed class LocalBackendContractTests : StorageContractTests, IDisposable
{
    private readonly TestDirectory _dir = new();

    protected override int LargeSize => (6 << 20) + 123;

    protected override bool KeysIgnoreCase => SafePath.NamesIgnoreCase;

    protected override Task<IStorageBackend> CreateBackendAsync() => Task.FromResult<IStorageBackend>(new LocalBackend(_dir.Path));

    protected override Task AssertNoLeftoversAsync(string key)
    {
        string[] temps = Directory.GetFiles(_dir.Path, "*.tmp", SearchOption.AllDirectories);
        Assert.True(temps.Length == 0, $"temp files left: {string.Join(", ", temps)}");
        return Task.CompletedTask;
    }

    protected override Task<string> ObserveIoAsync() =>
        Task.FromResult(string.Join("\n", TreeState.Capture(_dir.Path).Entries.Select(e => $"{e.Key}={e.Value}")));

    public void Dispose() => _dir.Dispose();
}
