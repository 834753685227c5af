using PSBackup.Engine.Storage;

namespace PSBackup.Engine.Tests.Storage;

/// <summary>The storage contract against a folder.</summary>
public sealed class LocalBackendContractTests : FolderBackedContractTests
{
    protected override IStorageBackend Wrap(LocalBackend folder) => folder;
}
