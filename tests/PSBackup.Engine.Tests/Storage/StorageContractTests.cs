using PSBackup.Engine.Storage;

namespace PSBackup.Engine.Tests.Storage;

/// <summary>The storage contract, run against every backend (kopia's blobtesting.VerifyStorage):
/// each concrete subclass supplies a fresh, empty backend per test. Every byte is compared end to
/// end by SHA-256, because a server that stores framing or drops bytes fails silently otherwise.</summary>
public abstract class StorageContractTests : IAsyncLifetime
{
    private IStorageBackend? _backend;

    protected IStorageBackend Backend => _backend ?? throw new InvalidOperationException("not initialized");

    /// <summary>A fresh, empty backend.</summary>
    protected abstract Task<IStorageBackend> CreateBackendAsync();

    /// <summary>A size that takes the backend's large-object path (S3: over the multipart threshold).</summary>
    protected abstract int LargeSize { get; }

    /// <summary>Fails if a failed or cancelled put of <paramref name="key"/> left anything behind
    /// (temp files, pending multipart uploads).</summary>
    protected abstract Task AssertNoLeftoversAsync(string key);

    /// <summary>An opaque picture of the I/O the backend has done so far; equal before and after
    /// means the calls in between did none.</summary>
    protected abstract Task<string> ObserveIoAsync();

    public async Task InitializeAsync() => _backend = await CreateBackendAsync();

    public Task DisposeAsync()
    {
        _backend?.Dispose();
        return Task.CompletedTask;
    }

    private int SizeOf(string kind) => kind switch
    {
        "empty" => 0,
        "small" => 1000,
        "multiMiB" => (3 << 20) + 17,
        "large" => LargeSize,
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    public static TheoryData<string, bool, bool> RoundTripCases()
    {
        var data = new TheoryData<string, bool, bool>();
        foreach (string kind in new[] { "empty", "small", "multiMiB", "large" })
        {
            data.Add(kind, true, true);    // seekable, length given
            data.Add(kind, false, true);   // non-seekable, length given
            data.Add(kind, false, false);  // non-seekable, length unknown (-1)
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(RoundTripCases))]
    public async Task Round_trip_keeps_every_byte(string kind, bool seekable, bool lengthKnown)
    {
        byte[] data = TestData.Bytes(SizeOf(kind), seed: kind.Length);
        string key = $"data/{kind}/object.bin";

        await Backend.PutAsync(key, ScriptedStream.Over(data, seekable), lengthKnown ? data.Length : -1, CancellationToken.None);

        byte[] back = await TestData.ReadAllAsync(await Backend.GetAsync(key, CancellationToken.None));
        Assert.Equal(data.Length, back.Length);
        Assert.Equal(TestData.Sha256(data), TestData.Sha256(back));
        StoredObject? stat = await Backend.StatAsync(key, CancellationToken.None);
        Assert.NotNull(stat);
        Assert.Equal(key, stat.Key);
        Assert.Equal(data.Length, stat.Size);
    }

    [Fact]
    public async Task Put_reads_from_the_callers_position()
    {
        byte[] data = TestData.Bytes(5000);
        var source = new MemoryStream(data);
        source.Position = 1000;

        await Backend.PutAsync("offset.bin", source, 4000, CancellationToken.None);

        byte[] back = await TestData.ReadAllAsync(await Backend.GetAsync("offset.bin", CancellationToken.None));
        Assert.Equal(data[1000..], back);
    }

    [Fact]
    public async Task Overwrite_replaces_the_object()
    {
        byte[] first = TestData.Bytes(70_000, 1);
        byte[] second = TestData.Bytes(10, 2);
        await Backend.PutAsync("k", new MemoryStream(first), first.Length, CancellationToken.None);
        await Backend.PutAsync("k", new MemoryStream(second), second.Length, CancellationToken.None);

        Assert.Equal(second, await TestData.ReadAllAsync(await Backend.GetAsync("k", CancellationToken.None)));
        Assert.Equal(10, (await Backend.StatAsync("k", CancellationToken.None))!.Size);
        Assert.Equal(["k"], await KeysAsync(""));
    }

    [Fact]
    public async Task Missing_object_is_typed_not_found()
    {
        var get = await Assert.ThrowsAsync<StorageNotFoundException>(() => Backend.GetAsync("no/such/key", CancellationToken.None));
        Assert.Equal("no/such/key", get.Key);
        var range = await Assert.ThrowsAsync<StorageNotFoundException>(() => Backend.GetRangeAsync("no/such/key", 0, 10, CancellationToken.None));
        Assert.Equal("no/such/key", range.Key);
        Assert.Null(await Backend.StatAsync("no/such/key", CancellationToken.None));
    }

    [Theory]
    [InlineData(0, 10)]          // start
    [InlineData(1000, 5000)]     // middle
    [InlineData(99_900, 100)]    // to the end
    [InlineData(0, 100_000)]     // whole
    [InlineData(500, 0)]         // empty
    [InlineData(100_000, 0)]     // empty at the end
    public async Task Range_reads_exactly_the_range(long offset, long length)
    {
        byte[] data = TestData.Bytes(100_000, 7);
        await Backend.PutAsync("r.bin", new MemoryStream(data), data.Length, CancellationToken.None);

        byte[] back = await TestData.ReadAllAsync(await Backend.GetRangeAsync("r.bin", offset, length, CancellationToken.None));

        Assert.Equal(data.AsSpan((int)offset, (int)length).ToArray(), back);
    }

    [Theory]
    [InlineData(99_990, 11)]
    [InlineData(100_000, 1)]
    [InlineData(200_000, 5)]
    public async Task Range_past_the_end_is_an_IOException(long offset, long length)
    {
        byte[] data = TestData.Bytes(100_000, 7);
        await Backend.PutAsync("r.bin", new MemoryStream(data), data.Length, CancellationToken.None);

        await Assert.ThrowsAnyAsync<IOException>(async () =>
            await TestData.ReadAllAsync(await Backend.GetRangeAsync("r.bin", offset, length, CancellationToken.None)));
    }

    [Fact]
    public async Task Range_of_a_large_object_streams_the_right_bytes()
    {
        byte[] data = TestData.Bytes(LargeSize, 11);
        await Backend.PutAsync("big", new MemoryStream(data), data.Length, CancellationToken.None);
        long offset = data.Length / 2 - 3;

        byte[] back = await TestData.ReadAllAsync(await Backend.GetRangeAsync("big", offset, 1 << 20, CancellationToken.None));

        Assert.Equal(TestData.Sha256(data.AsSpan((int)offset, 1 << 20).ToArray()), TestData.Sha256(back));
    }

    /// <summary>False for a server known to list some keys out of byte order (s3rver walks its
    /// folders); such a backend must then refuse the listing, never return it silently wrong.</summary>
    protected virtual bool ServerListsInKeyOrder => true;

    /// <summary>True for a backend on a file system that does not tell names apart by case (the
    /// folder backend on Windows and macOS): there a key differing only in case from a stored one
    /// is refused, never silently merged with it.</summary>
    protected virtual bool KeysIgnoreCase => false;

    [Fact]
    public async Task List_filters_by_prefix_in_ordinal_order_across_pages()
    {
        string[] keys = ["c", "a/b", "a0", "A", "ab", "b/x/y", "b/x0", "_u", "a/a", "Z", "b/x1/z", "a/c/d/e", "B0"];
        if (KeysIgnoreCase)
        {
            keys = keys.Where(k => k != "A").ToArray();
        }
        foreach (string key in keys)
        {
            await Backend.PutAsync(key, new MemoryStream([1, 2, 3]), 3, CancellationToken.None);
        }
        if (KeysIgnoreCase)
        {
            StorageIOException e = await Assert.ThrowsAsync<StorageIOException>(() => Backend.PutAsync("A", new MemoryStream([9]), 1, CancellationToken.None));
            Assert.False(e.IsTransient);
            await Assert.ThrowsAsync<StorageIOException>(() => Backend.PutAsync("A0", new MemoryStream([9]), 1, CancellationToken.None));
        }
        var expected = keys.Order(StringComparer.Ordinal).ToList();

        List<StoredObject> all = await ListAsync("");
        Assert.Equal(expected, all.Select(o => o.Key));
        Assert.All(all, o => Assert.Equal(3, o.Size));
        Assert.Equal(["a/a", "a/b", "a/c/d/e", "a0", "ab"], await KeysAsync("a"));
        Assert.Equal(["a/a", "a/b", "a/c/d/e"], await KeysAsync("a/"));
        Assert.Equal(["a/c/d/e"], await KeysAsync("a/c"));
        Assert.Equal(["b/x/y", "b/x0", "b/x1/z"], await KeysAsync("b/x"));
        Assert.Empty(await KeysAsync("zzz"));
        Assert.Empty(await KeysAsync("q/"));
    }

    [Fact]
    public async Task List_orders_keys_with_characters_below_the_slash()
    {
        // '-' and '.' sort before '/', so "a-b" and "a.c" come before "a/b" although a folder
        // walk meets the folder "a" first.
        string[] keys = ["a/b", "a.c", "a-b", "a", "a0", "a!x", "a/a", "b"];
        foreach (string key in keys.Where(k => k != "a"))
        {
            await Backend.PutAsync(key, new MemoryStream([1]), 1, CancellationToken.None);
        }
        var expected = keys.Where(k => k != "a").Order(StringComparer.Ordinal).ToList();

        if (ServerListsInKeyOrder)
        {
            Assert.Equal(expected, await KeysAsync(""));
            Assert.Equal(expected.Where(k => k.StartsWith('a')), await KeysAsync("a"));
        }
        else
        {
            await Assert.ThrowsAsync<StorageIOException>(() => KeysAsync(""));
        }
    }

    [Fact]
    public async Task Delete_is_idempotent()
    {
        await Backend.DeleteAsync("never/was", CancellationToken.None);
        await Backend.PutAsync("d", new MemoryStream([9]), 1, CancellationToken.None);

        await Backend.DeleteAsync("d", CancellationToken.None);
        await Backend.DeleteAsync("d", CancellationToken.None);

        Assert.Null(await Backend.StatAsync("d", CancellationToken.None));
        Assert.Empty(await KeysAsync(""));
    }

    [Theory]
    [InlineData("../x")]
    [InlineData("a/../../x")]
    [InlineData("/abs")]
    [InlineData("a\\b")]
    [InlineData("a//b")]
    [InlineData("")]
    [InlineData("./a")]
    [InlineData("a/")]
    [InlineData("a\u0001b")]
    [InlineData("C:/x")]
    public async Task Hostile_keys_are_rejected_before_any_io(string key)
    {
        string before = await ObserveIoAsync();

        await Assert.ThrowsAsync<InvalidInputException>(() => Backend.PutAsync(key, new MemoryStream([1]), 1, CancellationToken.None));
        await Assert.ThrowsAsync<InvalidInputException>(() => Backend.GetAsync(key, CancellationToken.None));
        await Assert.ThrowsAsync<InvalidInputException>(() => Backend.GetRangeAsync(key, 0, 1, CancellationToken.None));
        await Assert.ThrowsAsync<InvalidInputException>(() => Backend.StatAsync(key, CancellationToken.None));
        await Assert.ThrowsAsync<InvalidInputException>(() => Backend.DeleteAsync(key, CancellationToken.None));

        Assert.Equal(before, await ObserveIoAsync());
    }

    [Theory]
    [InlineData("../")]
    [InlineData("/abs")]
    [InlineData("a\\b")]
    [InlineData("a//b")]
    public async Task Hostile_prefixes_are_rejected(string prefix)
    {
        await Assert.ThrowsAsync<InvalidInputException>(() => ListAsync(prefix));
    }

    [Fact]
    public async Task Concurrent_puts_of_distinct_keys_all_land()
    {
        var objects = Enumerable.Range(0, 16).Select(i => (Key: $"c/{i:D2}", Data: TestData.Bytes(50_000 + i * 1000, i))).ToList();

        await Task.WhenAll(objects.Select(o => Task.Run(() => Backend.PutAsync(o.Key, new MemoryStream(o.Data), o.Data.Length, CancellationToken.None))));

        Assert.Equal(objects.Select(o => o.Key), await KeysAsync("c/"));
        foreach (var (key, data) in objects)
        {
            Assert.Equal(TestData.Sha256(data), TestData.Sha256(await TestData.ReadAllAsync(await Backend.GetAsync(key, CancellationToken.None))));
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Cancelling_a_large_put_leaves_no_object(bool seekable)
    {
        byte[] data = TestData.Bytes(LargeSize, 3);
        using var cts = new CancellationTokenSource();
        var source = ScriptedStream.Over(data, seekable, triggerAt: LargeSize * 2L / 3, trigger: cts.Cancel);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Backend.PutAsync("cancel/big", source, data.Length, cts.Token));

        Assert.Null(await Backend.StatAsync("cancel/big", CancellationToken.None));
        Assert.Empty(await KeysAsync("cancel/"));
        await AssertNoLeftoversAsync("cancel/big");
    }

    [Theory]
    [InlineData("small", false)]
    [InlineData("small", true)]
    [InlineData("multiMiB", true)]
    [InlineData("large", false)]
    [InlineData("large", true)]
    public async Task A_source_that_fails_half_way_leaves_no_object(string kind, bool seekable)
    {
        byte[] data = TestData.Bytes(SizeOf(kind), 5);
        var source = ScriptedStream.Over(data, seekable, triggerAt: data.Length / 2, trigger: () => throw new IOException("disk read failed (test)"));

        var e = await Assert.ThrowsAnyAsync<IOException>(() => Backend.PutAsync("fail/obj", source, data.Length, CancellationToken.None));

        Assert.Contains("disk read failed (test)", e.Message);
        Assert.Null(await Backend.StatAsync("fail/obj", CancellationToken.None));
        Assert.Empty(await KeysAsync("fail/"));
        await AssertNoLeftoversAsync("fail/obj");
    }

    [Fact]
    public async Task A_failed_overwrite_keeps_the_old_object_or_none_never_a_torn_one()
    {
        byte[] old = TestData.Bytes(2000, 1);
        await Backend.PutAsync("keep", new MemoryStream(old), old.Length, CancellationToken.None);
        byte[] data = TestData.Bytes(1000, 2);
        var source = ScriptedStream.Over(data, seekable: false, triggerAt: 500, trigger: () => throw new IOException("source gone (test)"));

        await Assert.ThrowsAnyAsync<IOException>(() => Backend.PutAsync("keep", source, data.Length, CancellationToken.None));

        Assert.Equal(old, await TestData.ReadAllAsync(await Backend.GetAsync("keep", CancellationToken.None)));
    }

    [Fact]
    public async Task A_length_that_does_not_match_the_content_stores_nothing()
    {
        byte[] data = TestData.Bytes(1000);
        await Assert.ThrowsAnyAsync<Exception>(() => Backend.PutAsync("len", ScriptedStream.Over(data, seekable: false), 999, CancellationToken.None));
        Assert.Null(await Backend.StatAsync("len", CancellationToken.None));
    }

    protected async Task<List<StoredObject>> ListAsync(string prefix)
    {
        var items = new List<StoredObject>();
        await foreach (StoredObject item in Backend.ListAsync(prefix, CancellationToken.None))
        {
            items.Add(item);
        }
        return items;
    }

    protected async Task<List<string>> KeysAsync(string prefix) => (await ListAsync(prefix)).Select(o => o.Key).ToList();
}
