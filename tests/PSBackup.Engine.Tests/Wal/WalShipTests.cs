using System.Security.Cryptography;
using PSBackup.Engine.Tests.Support;
using PSBackup.Engine.Wal;
using static PSBackup.Engine.Tests.Wal.WalTestData;

namespace PSBackup.Engine.Tests.Wal;

public sealed class WalShipTests : IDisposable
{
    private readonly TestDirectory _dir = new();
    private readonly string _data;
    private readonly string _wal;

    public WalShipTests()
    {
        _data = _dir.Combine("data");
        // 1..4 sealed, 5 active.
        _wal = CreateNamespace(_data, "users", (4, true), (3, true), (5, true), (2, true), (2, false));
    }

    public void Dispose() => _dir.Dispose();

    private string Archive => Path.Combine(_data, "backups", "users", "wal", "archive");
    private string Source(long id) => Path.Combine(_wal, WalFormat.SegmentFileName(id));
    private string Dest(long id) => Path.Combine(Archive, WalFormat.SegmentFileName(id));

    private Task<WalShipResult> Ship(long after = 0, string backupDir = "wal/archive", OperationContext? context = null) =>
        WalOperations.ShipAsync(new InvokeWalShipOptions(_data, "users", backupDir) { AfterSegmentId = after, SealedOnly = true }, context ?? OperationContext.Default);

    private static string Sha(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path))).ToLowerInvariant();

    private void AssertNoTempFiles() =>
        Assert.Empty(Directory.EnumerateFiles(_data, "*.tmp", SearchOption.AllDirectories));

    [Fact]
    public async Task ShipsOnlySealedSegmentsAfterTheGivenId()
    {
        WalShipResult result = await Ship(after: 2);

        Assert.Equal("users", result.Namespace);
        Assert.Equal(Archive, result.BackupDir);
        Assert.Equal([3L, 4L], result.Backups.Select(b => b.SegmentId));
        foreach (ShippedSegment b in result.Backups)
        {
            Assert.Equal(Dest(b.SegmentId), b.Path);
            Assert.False(b.AlreadyPresent);
            Assert.Equal(File.ReadAllBytes(Source(b.SegmentId)), File.ReadAllBytes(b.Path));
            Assert.Equal(Sha(Source(b.SegmentId)), b.Sha256);
            Assert.Equal(SmallSegment, b.Bytes);
        }
        Assert.Equal(["000000003.wal", "000000004.wal"], Directory.GetFiles(Archive).Select(Path.GetFileName).Order());
        AssertNoTempFiles();
    }

    [Fact]
    public async Task TheActiveSegmentIsNeverShipped()
    {
        WalShipResult all = await Ship();
        Assert.Equal([1L, 2L, 3L, 4L], all.Backups.Select(b => b.SegmentId));
        Assert.False(File.Exists(Dest(5)));

        TreeState before = TreeState.Capture(_data);
        WalShipResult none = await Ship(after: 4, backupDir: "wal/other");
        Assert.Empty(none.Backups);
        before.AssertUnchanged(_data); // not even the folder is created
    }

    [Fact]
    public async Task ReRunReportsAlreadyPresentAndChangesNothing()
    {
        WalShipResult first = await Ship();
        TreeState before = TreeState.Capture(_data);

        WalShipResult second = await Ship();

        before.AssertUnchanged(_data);
        Assert.Equal(first.Backups.Select(b => b.SegmentId), second.Backups.Select(b => b.SegmentId));
        Assert.All(second.Backups, b => Assert.True(b.AlreadyPresent));
        Assert.Equal(first.Backups.Select(b => b.Sha256), second.Backups.Select(b => b.Sha256));
    }

    [Fact]
    public async Task DifferentExistingContentIsRefusedAndLeftUntouched()
    {
        Directory.CreateDirectory(Archive);
        File.WriteAllText(Dest(3), "someone else's segment");
        TreeState before = TreeState.Capture(_data);

        var ex = await Assert.ThrowsAsync<ConflictException>(() => Ship());

        Assert.Contains("000000003.wal", ex.Message);
        Assert.Contains("never overwrites", ex.Message);
        before.AssertUnchanged(_data); // segments 1, 2, 4 were not shipped either
    }

    [Fact]
    public async Task MissingSegmentIsAWalGapAndNothingIsWritten()
    {
        File.Delete(Source(2));
        File.Delete(Source(3));
        TreeState before = TreeState.Capture(_data);

        var ex = await Assert.ThrowsAsync<WalGapException>(() => Ship());

        Assert.Equal([2L, 3L], ex.MissingSegmentIds);
        Assert.Contains("2, 3", ex.Message);
        Assert.Equal(ErrorKind.Integrity, ex.Kind);
        before.AssertUnchanged(_data);
    }

    [Fact]
    public async Task MissingSegmentRightAfterTheLastShippedOneIsAGap()
    {
        File.Delete(Source(3));
        TreeState before = TreeState.Capture(_data);

        var ex = await Assert.ThrowsAsync<WalGapException>(() => Ship(after: 2));

        Assert.Equal([3L], ex.MissingSegmentIds);
        before.AssertUnchanged(_data);
    }

    [Fact]
    public async Task LogIndexGapIsAWalGapAndNothingIsWritten()
    {
        File.Delete(Source(3));
        WriteSegment(Source(3), 100, Payloads(5, 3), seal: true); // should start at 8
        TreeState before = TreeState.Capture(_data);

        var ex = await Assert.ThrowsAsync<WalGapException>(() => Ship());

        Assert.Contains("log index 100", ex.Message);
        Assert.Contains("should start at 8", ex.Message);
        before.AssertUnchanged(_data);
    }

    [Fact]
    public async Task BitFlipInASealedSegmentIsRefused()
    {
        FlipBit(Source(3), 64 + 8 + 2, 3);
        TreeState before = TreeState.Capture(_data);

        var ex = await Assert.ThrowsAsync<IntegrityException>(() => Ship());

        Assert.Contains("Segment 3", ex.Message);
        Assert.Contains("offset 64", ex.Message);
        before.AssertUnchanged(_data);
    }

    [Fact]
    public async Task SegmentsAlreadyShippedAreNotRevalidated()
    {
        FlipBit(Source(1), 64 + 8 + 2, 3); // damage found later by Get-WalSegment, not by this ship
        WalShipResult result = await Ship(after: 2);
        Assert.Equal([3L, 4L], result.Backups.Select(b => b.SegmentId));
    }

    [Fact]
    public async Task UnsealedSegmentBeforeTheNewestIsRefused()
    {
        File.Delete(Source(3));
        WriteSegment(Source(3), 8, Payloads(5, 3), seal: false);
        TreeState before = TreeState.Capture(_data);

        var ex = await Assert.ThrowsAsync<IntegrityException>(() => Ship());

        Assert.Contains("Segment 3", ex.Message);
        Assert.Contains("not sealed", ex.Message);
        before.AssertUnchanged(_data);
    }

    [Theory]
    [InlineData("..")]
    [InlineData("a/../b")]
    [InlineData("/abs")]
    [InlineData("C:\\x")]
    [InlineData("C:x")]
    [InlineData("\\\\server\\share")]
    [InlineData("")]
    [InlineData("a//b")]
    [InlineData("./a")]
    [InlineData("nul")]
    [InlineData("a/con.txt")]
    [InlineData("a:stream")]
    [InlineData("a/b.")]
    [InlineData("a/b ")]
    [InlineData("a|b")]
    [InlineData("a?")]
    [InlineData(@"\\?\C:\x")]
    public async Task BadBackupDirIsRejectedBeforeAnythingIsWritten(string backupDir)
    {
        TreeState before = TreeState.Capture(_data);
        await Assert.ThrowsAsync<InvalidInputException>(() => Ship(backupDir: backupDir));
        before.AssertUnchanged(_data);
    }

    [Theory]
    [InlineData("..")]
    [InlineData("a/b")]
    [InlineData("")]
    [InlineData("/abs")]
    public async Task BadNamespaceIsRejectedBeforeAnythingIsWritten(string ns)
    {
        TreeState before = TreeState.Capture(_data);
        await Assert.ThrowsAsync<InvalidInputException>(() =>
            WalOperations.ShipAsync(new InvokeWalShipOptions(_data, ns, "wal"), OperationContext.Default));
        before.AssertUnchanged(_data);
    }

    [Fact]
    public async Task NegativeAfterSegmentIdIsRejected()
    {
        TreeState before = TreeState.Capture(_data);
        await Assert.ThrowsAsync<InvalidInputException>(() => Ship(after: -1));
        before.AssertUnchanged(_data);
    }

    [Fact]
    public async Task MissingWalDirectoryIsNotFound()
    {
        await Assert.ThrowsAsync<NotFoundException>(() =>
            WalOperations.ShipAsync(new InvokeWalShipOptions(_data, "orders", "wal"), OperationContext.Default));
        Assert.False(Directory.Exists(Path.Combine(_data, "backups", "orders")));
    }

    [Fact]
    public async Task SymlinkInsideTheNamespaceBackupRootIsRefused()
    {
        string outside = _dir.Combine("outside");
        Directory.CreateDirectory(outside);
        string nsRoot = Path.Combine(_data, "backups", "users");
        Directory.CreateDirectory(nsRoot);
        Directory.CreateSymbolicLink(Path.Combine(nsRoot, "wal"), outside);
        TreeState before = TreeState.Capture(_data);
        TreeState outsideBefore = TreeState.Capture(outside);

        var ex = await Assert.ThrowsAsync<InvalidInputException>(() => Ship(backupDir: "wal/archive"));

        Assert.Equal("SymbolicLink", ex.ErrorId);
        before.AssertUnchanged(_data);
        outsideBefore.AssertUnchanged(outside);
    }

    [Fact]
    public async Task NamespaceBackupRootThatIsASymlinkIsRefused()
    {
        string other = Path.Combine(_data, "backups", "orders");
        Directory.CreateDirectory(other);
        Directory.CreateSymbolicLink(Path.Combine(_data, "backups", "users"), other);
        TreeState before = TreeState.Capture(other);

        await Assert.ThrowsAsync<InvalidInputException>(() => Ship(backupDir: "wal"));

        before.AssertUnchanged(other);
    }

    [Fact]
    public async Task DeclinedShouldProcessWritesNothing()
    {
        var asked = new List<(string Target, string Action)>();
        var context = new OperationContext { ShouldProcess = (t, a) => { asked.Add((t, a)); return false; } };
        TreeState before = TreeState.Capture(_data);

        WalShipResult result = await Ship(context: context);

        Assert.Empty(result.Backups);
        Assert.Equal([Dest(1), Dest(2), Dest(3), Dest(4)], asked.Select(a => a.Target));
        Assert.Equal("Ship WAL segment 1", asked[0].Action);
        before.AssertUnchanged(_data);
    }

    [Fact]
    public async Task CancelledAfterTheFirstSegmentLeavesOnlyCompleteFiles()
    {
        using var cts = new CancellationTokenSource();
        var context = new OperationContext
        {
            CancellationToken = cts.Token,
            Progress = new SyncProgress(p =>
            {
                if (p.Status.StartsWith("Shipped", StringComparison.Ordinal))
                {
                    cts.Cancel();
                }
            }),
        };

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Ship(context: context));

        Assert.Equal(["000000001.wal"], Directory.GetFiles(Archive).Select(Path.GetFileName));
        Assert.Equal(File.ReadAllBytes(Source(1)), File.ReadAllBytes(Dest(1)));
        AssertNoTempFiles();

        // The next run completes the job and keeps the first segment.
        WalShipResult next = await Ship();
        Assert.Equal([true, false, false, false], next.Backups.Select(b => b.AlreadyPresent));
    }

    [Fact]
    public async Task CancelledDuringACopyLeavesNoTempAndNoFinalFile()
    {
        using var cts = new CancellationTokenSource();
        var context = new OperationContext
        {
            CancellationToken = cts.Token,
            Progress = new SyncProgress(p =>
            {
                if (p.Status == "Copying segment 2")
                {
                    cts.Cancel();
                }
            }),
        };

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Ship(context: context));

        Assert.True(File.Exists(Dest(1)));
        Assert.False(File.Exists(Dest(2)));
        AssertNoTempFiles();
    }

    [Fact]
    public async Task LeftoverTempFromACrashIsReplaced()
    {
        Directory.CreateDirectory(Archive);
        File.WriteAllText(Dest(1) + ".tmp", "half a segment");

        WalShipResult result = await Ship();

        Assert.Equal(4, result.Backups.Count);
        Assert.Equal(File.ReadAllBytes(Source(1)), File.ReadAllBytes(Dest(1)));
        AssertNoTempFiles();
    }

    [Fact]
    public async Task ProgressCountsEverySegment()
    {
        var reports = new List<OperationProgress>();
        await Ship(context: new OperationContext { Progress = new SyncProgress(reports.Add) });
        OperationProgress last = reports[^1];
        Assert.Equal(4, last.Total);
        Assert.Equal(4, last.Completed);
        Assert.Equal(Dest(4), last.CurrentItem);
    }
}
