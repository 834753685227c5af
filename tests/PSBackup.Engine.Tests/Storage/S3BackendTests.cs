using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using PSBackup.Engine.Storage;
using PSBackup.Engine.Tests.Support;

namespace PSBackup.Engine.Tests.Storage;

/// <summary>S3-only behaviour against the real server: errors, prefixes, stored bytes.</summary>
[Collection(S3ServerCollection.Name)]
public sealed class S3BackendTests(S3ServerFixture s3)
{
    [Fact]
    public async Task Wrong_credentials_are_a_clear_access_error_not_retried()
    {
        string bucket = await s3.CreateBucketAsync("auth");
        using var backend = new S3Backend(s3.OptionsFor(bucket) with { AccessKey = "WRONG", SecretKey = "nope" });

        var e = await Assert.ThrowsAsync<OperationFailedException>(() => backend.PutAsync("k", new MemoryStream([1]), 1, CancellationToken.None));

        Assert.Equal("S3AccessDenied", e.ErrorId);
        Assert.Contains("Check the S3 credentials", e.Message);
        Assert.Contains("InvalidAccessKeyId", e.Message);
        Assert.False(StorageRetryPolicy.IsTransient(e, CancellationToken.None));
    }

    [Fact]
    public async Task A_missing_bucket_is_NotFound_naming_the_bucket()
    {
        using var backend = new S3Backend(s3.OptionsFor("no-such-bucket-here"));

        var e = await Assert.ThrowsAsync<NotFoundException>(() => backend.PutAsync("k", new MemoryStream([1]), 1, CancellationToken.None));

        Assert.Equal("S3BucketNotFound", e.ErrorId);
        Assert.Contains("'no-such-bucket-here'", e.Message);
    }

    [Fact]
    public async Task Prefixes_isolate_repositories_in_one_bucket()
    {
        string bucket = await s3.CreateBucketAsync("prefix");
        using var one = new S3Backend(s3.OptionsFor(bucket, "hosts/one"));
        using var two = new S3Backend(s3.OptionsFor(bucket, "hosts/one2"));
        await one.PutAsync("x", new MemoryStream([1]), 1, CancellationToken.None);
        await two.PutAsync("y", new MemoryStream([2]), 1, CancellationToken.None);

        Assert.Equal(["x"], await Keys(one));
        Assert.Equal(["y"], await Keys(two));
        Assert.Null(await one.StatAsync("y", CancellationToken.None));
        Assert.Equal("s3://" + bucket + "/hosts/one", one.Location);
        using IAmazonS3 client = s3.CreateClient();
        ListObjectsV2Response raw = await client.ListObjectsV2Async(new ListObjectsV2Request { BucketName = bucket });
        Assert.Equal(["hosts/one/x", "hosts/one2/y"], raw.S3Objects.Select(o => o.Key).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Stored_bytes_are_the_payload_without_chunk_framing()
    {
        // Read back with a raw client, not the backend: what the server keeps is exactly the data.
        string bucket = await s3.CreateBucketAsync("raw");
        using var backend = new S3Backend(s3.OptionsFor(bucket) with { PartSize = S3BackendOptions.MinPartSize, MultipartThreshold = S3BackendOptions.MinPartSize });
        byte[] small = TestData.Bytes(70_000, 1);
        byte[] large = TestData.Bytes(S3BackendOptions.MinPartSize + 1000, 2);
        await backend.PutAsync("small", new MemoryStream(small), small.Length, CancellationToken.None);
        await backend.PutAsync("large", ScriptedStream.Over(large, seekable: false), -1, CancellationToken.None);

        using IAmazonS3 client = s3.CreateClient();
        foreach ((string key, byte[] data) in new[] { ("small", small), ("large", large) })
        {
            using GetObjectResponse response = await client.GetObjectAsync(bucket, key);
            Assert.Equal(TestData.Sha256(data), TestData.Sha256(await TestData.ReadAllAsync(response.ResponseStream)));
        }
        Assert.Equal(TestData.Sha256(large), TestData.Sha256(File.ReadAllBytes(Path.Combine(s3.DataDirectory, bucket, "large._S3rver_object"))));
    }

    private static async Task<List<string>> Keys(IStorageBackend backend)
    {
        var keys = new List<string>();
        await foreach (StoredObject o in backend.ListAsync("", CancellationToken.None))
        {
            keys.Add(o.Key);
        }
        return keys;
    }
}

/// <summary>Parsing s3:// locations, option checks and credential resolution (no server).</summary>
public sealed class S3OptionsTests : IDisposable
{
    private readonly TestDirectory _dir = new();

    [Theory]
    [InlineData("s3://backups", "backups", "")]
    [InlineData("s3://backups/", "backups", "")]
    [InlineData("s3://backups/hosts/db1", "backups", "hosts/db1")]
    [InlineData("s3://backups/hosts/db1/", "backups", "hosts/db1")]
    [InlineData("S3://my.bucket-1/x", "my.bucket-1", "x")]
    public void Parses_locations(string location, string bucket, string prefix)
    {
        S3RepositoryLocation parsed = S3RepositoryLocation.Parse(location);
        Assert.Equal(bucket, parsed.Bucket);
        Assert.Equal(prefix, parsed.Prefix);
        S3BackendOptions options = S3BackendOptions.FromLocation(location);
        Assert.Equal((bucket, prefix), (options.Bucket, options.Prefix));
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("https://backups/x", "not an S3 location")]
    [InlineData("s3://", "no bucket")]
    [InlineData("s3:///x", "no bucket")]
    [InlineData("s3://Backups/x", "not a valid S3 bucket name")]
    [InlineData("s3://ab", "not a valid S3 bucket name")]
    [InlineData("s3://a_b/x", "not a valid S3 bucket name")]
    [InlineData("s3://192.168.1.1/x", "not a valid S3 bucket name")]
    [InlineData("s3://b..c/x", "not a valid S3 bucket name")]
    [InlineData("s3://backups/../x", "'..'")]
    [InlineData("s3://backups/a//b", "empty segment")]
    [InlineData("s3://backups/x?versionId=1", "'?'")]
    [InlineData("s3://backups/a b", "a space")]
    public void Rejects_bad_locations_with_a_clear_message(string location, string expected)
    {
        var e = Assert.ThrowsAny<InvalidInputException>(() => S3RepositoryLocation.Parse(location));
        Assert.Contains(expected, e.Message);
        Assert.Contains("s3://", e.Message);
        Assert.StartsWith("Invalid", e.ErrorId);
    }

    [Fact]
    public void Rejects_bad_options()
    {
        S3BackendOptions ok = new() { Bucket = "backups", Endpoint = "http://127.0.0.1:9000" };
        Assert.Same(ok, ok.Validate());
        Assert.Throws<InvalidInputException>(() => (ok with { PartSize = 1 << 20 }).Validate());
        Assert.Throws<InvalidInputException>(() => (ok with { MultipartThreshold = S3BackendOptions.MinPartSize - 1, PartSize = S3BackendOptions.MinPartSize }).Validate());
        Assert.Throws<InvalidInputException>(() => (ok with { MaxKeys = 0 }).Validate());
        Assert.Throws<InvalidInputException>(() => (ok with { Endpoint = "ftp://x" }).Validate());
        Assert.Throws<InvalidInputException>(() => (ok with { AccessKey = "only-key" }).Validate());
        Assert.Throws<InvalidInputException>(() => (ok with { Prefix = "a/" }).Validate());
    }

    [Fact]
    public void Path_style_defaults_on_with_an_endpoint_and_checksums_only_when_required()
    {
        var config = S3Backend.CreateConfig(new S3BackendOptions { Bucket = "backups", Endpoint = "http://127.0.0.1:9000" });
        Assert.True(config.ForcePathStyle);
        Assert.Equal(RequestChecksumCalculation.WHEN_REQUIRED, config.RequestChecksumCalculation);
        Assert.Equal(ResponseChecksumValidation.WHEN_REQUIRED, config.ResponseChecksumValidation);
        Assert.Equal("us-east-1", config.AuthenticationRegion);
        Assert.False(S3Backend.CreateConfig(new S3BackendOptions { Bucket = "backups", Endpoint = "http://h:1", ForcePathStyle = false }).ForcePathStyle);
        Assert.False(S3Backend.CreateConfig(new S3BackendOptions { Bucket = "backups", Region = "eu-west-1" }).ForcePathStyle);
    }

    [Fact]
    public async Task Credentials_come_from_options_then_environment_then_profile()
    {
        string file = _dir.Combine("credentials");
        File.WriteAllText(file, "[default]\naws_access_key_id = FILEKEY\naws_secret_access_key = FILESECRET\n\n[other]\naws_access_key_id = OTHERKEY\naws_secret_access_key = OTHERSECRET\n");
        var env = new Dictionary<string, string> { ["AWS_ACCESS_KEY_ID"] = "ENVKEY", ["AWS_SECRET_ACCESS_KEY"] = "ENVSECRET", ["AWS_SESSION_TOKEN"] = "ENVTOKEN" };
        var options = new S3BackendOptions { Bucket = "backups", CredentialsFile = file };

        Assert.Equal("OPTKEY", await KeyOf(S3Backend.ResolveCredentials(options with { AccessKey = "OPTKEY", SecretKey = "s" }, env.GetValueOrDefault)));
        ImmutableCredentials fromEnv = await S3Backend.ResolveCredentials(options, env.GetValueOrDefault).GetCredentialsAsync();
        Assert.Equal(("ENVKEY", "ENVTOKEN"), (fromEnv.AccessKey, fromEnv.Token));
        Assert.Equal("OTHERKEY", await KeyOf(S3Backend.ResolveCredentials(options with { Profile = "other" }, env.GetValueOrDefault)));
        Assert.Equal("FILEKEY", await KeyOf(S3Backend.ResolveCredentials(options, _ => null)));
        Assert.Equal("OTHERKEY", await KeyOf(S3Backend.ResolveCredentials(options, n => n == "AWS_PROFILE" ? "other" : null)));
        var e = Assert.Throws<InvalidInputException>(() => S3Backend.ResolveCredentials(options with { Profile = "missing" }, _ => null));
        Assert.Equal("S3CredentialsMissing", e.ErrorId);
        Assert.Contains("AWS_ACCESS_KEY_ID", e.Message);

        static async Task<string> KeyOf(AWSCredentials c) => (await c.GetCredentialsAsync()).AccessKey;
    }

    [Fact]
    public async Task Session_tokens_web_identity_and_the_default_chain_follow_the_AWS_tools_order()
    {
        string file = _dir.Combine("credentials-without-default");
        File.WriteAllText(file, "[other]\naws_access_key_id = OTHERKEY\naws_secret_access_key = OTHERSECRET\n");
        var options = new S3BackendOptions { Bucket = "backups", CredentialsFile = file };
        var chainKey = new BasicAWSCredentials("CHAINKEY", "CHAINSECRET");
        int chainCalls = 0;
        AWSCredentials? Chain()
        {
            chainCalls++;
            return chainKey;
        }

        ImmutableCredentials session = await S3Backend.ResolveCredentials(options with { AccessKey = "K", SecretKey = "S", SessionToken = "TOKEN" }, _ => null, Chain).GetCredentialsAsync();
        Assert.Equal(("K", "TOKEN"), (session.AccessKey, session.Token));
        var webIdentity = new Dictionary<string, string> { ["AWS_WEB_IDENTITY_TOKEN_FILE"] = _dir.Combine("token"), ["AWS_ROLE_ARN"] = "arn:aws:iam::123456789012:role/backup" };
        Assert.IsType<AssumeRoleWithWebIdentityCredentials>(S3Backend.ResolveCredentials(options, webIdentity.GetValueOrDefault, Chain));
        Assert.Same(chainKey, S3Backend.ResolveCredentials(options, _ => null, Chain));
        Assert.Equal(1, chainCalls);
        var none = Assert.Throws<InvalidInputException>(() => S3Backend.ResolveCredentials(options, _ => null, () => null));
        Assert.Equal("S3CredentialsMissing", none.ErrorId);
        Assert.Contains("-StorageCredential", none.Message);
        // A profile named explicitly must exist: the chain is not asked instead.
        Assert.Throws<InvalidInputException>(() => S3Backend.ResolveCredentials(options with { Profile = "missing" }, _ => null, Chain));
        Assert.Equal(1, chainCalls);
    }

    public void Dispose() => _dir.Dispose();
}
