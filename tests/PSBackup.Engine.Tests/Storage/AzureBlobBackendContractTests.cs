using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using PSBackup.Engine.Storage;

namespace PSBackup.Engine.Tests.Storage;

/// <summary>The storage contract against Azurite on 127.0.0.1, with 1 MiB blocks, a threshold just
/// above one block and three names per listing page, so single puts, staged blocks and paging all
/// run. I/O is observed as the requests the backend's own HTTP layer sent.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class AzureBlobBackendContractTests(AzuriteFixture azurite) : StorageContractTests
{
    private const int Block = 1 << 20;
    private readonly FaultingHandler _http = new();
    private string _container = "";

    protected override int LargeSize => 2 * Block + 123;

    protected override async Task<IStorageBackend> CreateBackendAsync()
    {
        _container = await azurite.CreateContainerAsync("contract");
        return new AzureBlobBackend(azurite.OptionsFor(_container, "repo/one") with
        {
            BlockSize = Block,
            SingleUploadThreshold = Block + (Block / 2),
            PageSize = 3,
            Handler = _http,
        });
    }

    /// <summary>A failed put leaves no committed blob. Its staged blocks cannot be deleted through
    /// the API (the service discards them after a week, or at the next commit of the name), but
    /// they stay invisible: the listing of committed blobs has no such name.</summary>
    protected override async Task AssertNoLeftoversAsync(string key)
    {
        BlobContainerClient container = azurite.CreateClient().GetBlobContainerClient(_container);
        var names = new List<string>();
        await foreach (BlobItem item in container.GetBlobsAsync(BlobTraits.None, BlobStates.None, "repo/one/", CancellationToken.None))
        {
            names.Add(item.Name);
        }
        Assert.DoesNotContain("repo/one/" + key, names);
    }

    protected override Task<string> ObserveIoAsync() =>
        Task.FromResult(_http.Requests.ToString(System.Globalization.CultureInfo.InvariantCulture));
}
