using Amazon.S3;
using Amazon.S3.Model;
using PSBackup.Engine.Storage;

namespace PSBackup.Engine.Tests.Storage;

/// <summary>The storage contract against the real S3 server (s3rver on 127.0.0.1), with small
/// parts, a small multipart threshold and three keys per listing page so every path runs.</summary>
[Collection(S3ServerCollection.Name)]
public sealed class S3BackendContractTests(S3ServerFixture s3) : StorageContractTests
{
    private S3Backend? _s3;
    private int _sentinels;

    /// <summary>s3rver 3.7.1 lists by walking its folders, so "a/b" comes before "a-b".</summary>
    protected override bool ServerListsInKeyOrder => false;

    protected override int LargeSize => 2 * S3BackendOptions.MinPartSize + 123;

    protected override async Task<IStorageBackend> CreateBackendAsync()
    {
        _s3 = await s3.CreateBackendAsync("repo/one", o => o with
        {
            PartSize = S3BackendOptions.MinPartSize,
            MultipartThreshold = S3BackendOptions.MinPartSize + (1 << 20),
            MaxKeys = 3,
        }, hint: "contract");
        return _s3;
    }

    /// <summary>No multipart upload may outlive a failed put. s3rver 3.7.1 implements neither
    /// ListMultipartUploads (NotImplemented) nor AbortMultipartUpload (405), so there the proof
    /// is the server's own request log: the backend asked to abort the upload it started.</summary>
    protected override async Task AssertNoLeftoversAsync(string key)
    {
        using IAmazonS3 client = s3.CreateClient();
        try
        {
            ListMultipartUploadsResponse uploads = await client.ListMultipartUploadsAsync(
                new ListMultipartUploadsRequest { BucketName = _s3!.Options.Bucket });
            Assert.Empty(uploads.MultipartUploads ?? []);
            return;
        }
        catch (AmazonS3Exception e) when (e.ErrorCode == "NotImplemented")
        {
        }
        // The log shows "<path>?<query> <status>" (s3rver cuts the method off); bucket names end
        // in a unique tag, so the lines of this test's bucket are unambiguous.
        await FlushLogAsync();
        string path = $"{_s3!.Options.Bucket[^8..]}/{_s3.Options.Prefix}/{key}?";
        string[] lines = s3.Log.Where(l => l.Contains(path, StringComparison.Ordinal)).ToArray();
        if (lines.Any(l => l.Contains("?uploads ", StringComparison.Ordinal)))
        {
            Assert.Contains(lines, l => l.Contains("?uploadId=", StringComparison.Ordinal) && !l.Contains("partNumber", StringComparison.Ordinal)
                && !l.Contains(" 200 ", StringComparison.Ordinal));
            Assert.DoesNotContain(lines, l => l.Contains("?uploadId=", StringComparison.Ordinal) && !l.Contains("partNumber", StringComparison.Ordinal)
                && l.Contains(" 200 ", StringComparison.Ordinal)); // never completed
        }
    }

    /// <summary>The number of requests the server has logged, minus the sentinel requests this
    /// method makes to be sure every earlier request has been logged.</summary>
    protected override async Task<string> ObserveIoAsync()
    {
        await FlushLogAsync();
        return (s3.Log.Count - _sentinels).ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    private async Task FlushLogAsync()
    {
        string sentinel = $"zz-sentinel-{Guid.NewGuid():N}";
        _sentinels++;
        using IAmazonS3 client = s3.CreateClient();
        try
        {
            await client.GetObjectMetadataAsync(_s3!.Options.Bucket, sentinel);
        }
        catch (AmazonS3Exception)
        {
        }
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!s3.Log.Any(l => l.Contains(sentinel, StringComparison.Ordinal)))
        {
            Assert.True(DateTime.UtcNow < deadline, "the server did not log the sentinel request");
            await Task.Delay(10);
        }
    }
}
