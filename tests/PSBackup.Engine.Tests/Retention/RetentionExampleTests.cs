using PSBackup.Engine.Repository;
using PSBackup.Engine.Retention;
using PSBackup.Engine.Storage;
using PSBackup.Engine.Tests.ObjectStore;
using PSBackup.Engine.Tests.Support;
using static PSBackup.Engine.Tests.Repository.RepositoryTestSupport;
using Repo = PSBackup.Engine.Repository.Repository;

namespace PSBackup.Engine.Tests.Retention;

public sealed class RetentionExampleTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static IReadOnlyDictionary<string, IReadOnlyList<string>> Eval(RetentionPolicy p, params (string Id, DateTimeOffset T)[] items) =>
        RetentionEvaluator.Evaluate(items.Select(i => new RetentionCandidate(i.Id, i.T)).ToList(), p);

    [Fact]
    public void DailyKeepsTheNewestOfEachOfTheNMostRecentDaysThatHaveABackup()
    {
        // Three backups on day 1, none on day 2, two on day 3.
        var r = Eval(new RetentionPolicy { KeepDaily = 2 },
            ("d1a", T0.AddHours(1)), ("d1b", T0.AddHours(5)), ("d1c", T0.AddHours(23)),
            ("d3a", T0.AddDays(2).AddHours(2)), ("d3b", T0.AddDays(2).AddHours(9)));
        Assert.Equal(["d1c", "d3b"], r.Keys.Order());
        Assert.Equal(["daily"], r["d3b"]);
    }

    [Fact]
    public void ABucketRuleWithBucketsToSpareAlsoKeepsTheOldest()
    {
        var r = Eval(new RetentionPolicy { KeepDaily = 5 }, ("a", T0.AddHours(1)), ("b", T0.AddHours(2)));
        Assert.Equal(["a", "b"], r.Keys.Order());
        Assert.Equal(["oldest daily"], r["a"]);
    }

    [Fact]
    public void WeeksAreIsoWeeksInUtcAndRulesCombine()
    {
        // 2026-01-04 is a Sunday (ISO week 1), 2026-01-05 a Monday (week 2).
        var r = Eval(new RetentionPolicy { KeepWeekly = 2, KeepLast = 1 },
            ("sat", new DateTimeOffset(2026, 1, 3, 12, 0, 0, TimeSpan.Zero)),
            ("sun", new DateTimeOffset(2026, 1, 4, 23, 0, 0, TimeSpan.FromHours(-2))), // Monday 01:00 UTC
            ("mon", new DateTimeOffset(2026, 1, 5, 12, 0, 0, TimeSpan.Zero)));
        Assert.Equal(["mon", "sat"], r.Keys.Order());
        Assert.Equal(["last", "weekly"], r["mon"]);
    }

    [Fact]
    public void KeepWithinIsRelativeToTheNewestBackupNotToNow()
    {
        var r = Eval(new RetentionPolicy { KeepWithin = TimeSpan.FromDays(2) },
            ("old", T0.AddDays(-30)), ("edge", T0.AddDays(8)), ("in", T0.AddDays(9)), ("newest", T0.AddDays(10)));
        Assert.Equal(["in", "newest"], r.Keys.Order());
        Assert.Equal(["within 2d"], r["in"]);
    }

    [Theory]
    [InlineData("14d", 14 * 24)]
    [InlineData("24h", 24)]
    [InlineData("1d12h", 36)]
    [InlineData("2w", 14 * 24)]
    public void DurationsParse(string text, int hours) => Assert.Equal(TimeSpan.FromHours(hours), Durations.Parse(text));

    [Theory]
    [InlineData("")]
    [InlineData("14")]
    [InlineData("3x")]
    [InlineData("6m")]
    public void BadDurationsAreTypedErrors(string text) =>
        Assert.Equal("InvalidDuration", Assert.Throws<InvalidInputException>(() => Durations.Parse(text)).ErrorId);

    [Fact]
    public async Task NoRuleOrANegativeCountIsRefusedAndNothingIsDeleted()
    {
        using var dir = new TestDirectory();
        string repoDir = Directory.CreateDirectory(System.IO.Path.Combine(dir.Path, "repo")).FullName;
        Repo repo = await Repo.InitializeAsync(new LocalBackend(repoDir), Small());
        await BackupAsync(repo, [("a.bin", Data(10_000, 1))]);
        await BackupAsync(repo, [("a.bin", Data(10_000, 2))]);
        var before = Directory.GetFiles(repoDir, "*", SearchOption.AllDirectories).Order().ToList();
        var target = new RepositoryTarget { Location = repoDir };
        var ctx = new OperationContext { Clock = new FixedClock(DateTimeOffset.UtcNow.AddDays(1)) };
        var e1 = await Assert.ThrowsAsync<InvalidInputException>(() => RetentionOperations.RemoveExpiredAsync(new RemoveExpiredBackupOptions { Repository = target, Policy = new RetentionPolicy() }, ctx));
        Assert.Equal("NoRetentionRule", e1.ErrorId);
        var e2 = await Assert.ThrowsAsync<InvalidInputException>(() => RetentionOperations.RemoveExpiredAsync(new RemoveExpiredBackupOptions { Repository = target, Policy = new RetentionPolicy { KeepDaily = -1 } }, ctx));
        Assert.Equal("InvalidRetentionCount", e2.ErrorId);
        var e3 = await Assert.ThrowsAsync<InvalidInputException>(() => RetentionOperations.RemoveExpiredAsync(new RemoveExpiredBackupOptions { Repository = target, Policy = new RetentionPolicy { KeepLast = 0 } }, ctx));
        Assert.Equal("NoRetentionRule", e3.ErrorId);
        Assert.Equal(before, Directory.GetFiles(repoDir, "*", SearchOption.AllDirectories).Order().ToList());
    }

    [Fact]
    public async Task RepositoryPruneForgetsReclaimsPacksAndLeavesAValidRepositoryThatRestoresByteExact()
    {
        using var dir = new TestDirectory();
        string repoDir = Directory.CreateDirectory(System.IO.Path.Combine(dir.Path, "repo")).FullName;
        Repo repo = await Repo.InitializeAsync(new LocalBackend(repoDir), Small());
        var data = Enumerable.Range(0, 4).Select(i => Data(300_000, 100 + i)).ToList();
        for (int i = 0; i < 4; i++)
        {
            await BackupAsync(repo, [("data/file.bin", data[i])], info: new BackupInfo { Kind = BackupKind.Object, Dir = "tenant", Object = "orders", CreatedAt = T0.AddDays(i) });
        }
        var target = new RepositoryTarget { Location = repoDir };
        var whatIf = new List<string>();
        var ctxWhatIf = new OperationContext { Clock = new FixedClock(DateTimeOffset.UtcNow.AddHours(2)), ShouldProcess = (t, _) => { whatIf.Add(t); return false; } };
        var options = new RemoveExpiredBackupOptions { Repository = target, Policy = new RetentionPolicy { KeepLast = 2 } };
        IReadOnlyList<RetentionItem> preview = await RetentionOperations.RemoveExpiredAsync(options, ctxWhatIf);
        Assert.Equal(2, preview.Count(i => i.Kind == RetentionItemKind.Object && i.Decision == RetentionDecision.Remove && !i.Removed));
        Assert.Equal(4, (await repo.ListBackupsAsync()).Count);
        Assert.NotEmpty(whatIf);

        string audit = System.IO.Path.Combine(dir.Path, "audit.jsonl");
        IReadOnlyList<RetentionItem> result = await RetentionOperations.RemoveExpiredAsync(options, new OperationContext { Clock = new FixedClock(DateTimeOffset.UtcNow.AddHours(2)), AuditLogPath = audit });
        Assert.Equal(2, result.Count(i => i.Kind == RetentionItemKind.Object && i.Removed));
        string line = Assert.Single(File.ReadAllLines(audit)); // the prune is audited like every operation
        Assert.Contains("\"Remove-ExpiredBackup\"", line);
        Assert.Contains(repoDir, line);
        Assert.Contains(result, i => i.Kind == RetentionItemKind.Pack && i.Removed);
        Assert.All(result.Where(i => i.Kind == RetentionItemKind.Object && i.Decision == RetentionDecision.Keep), i => Assert.Equal(["last"], i.Reasons));

        Repo reopened = await Repo.OpenAsync(new LocalBackend(repoDir), RepositoryCredentials.None);
        RepositoryCheckReport check = await reopened.CheckAsync(readData: true);
        Assert.True(check.Ok, string.Join("\n", check.Errors));
        var left = await reopened.ListBackupsAsync();
        Assert.Equal(2, left.Count);
        foreach (BackupSummary s in left)
        {
            RepositoryManifest m = await reopened.ReadManifestAsync(s.Id);
            int i = (int)(m.CreatedAt - T0).TotalDays;
            Assert.True(i >= 2);
            Assert.Equal(data[i], await RestoreBytesAsync(reopened, m, "data/file.bin"));
        }
    }

    [Fact]
    public async Task TheGracePeriodProtectsAFreshUnreferencedPack()
    {
        using var dir = new TestDirectory();
        string repoDir = Directory.CreateDirectory(System.IO.Path.Combine(dir.Path, "repo")).FullName;
        Repo repo = await Repo.InitializeAsync(new LocalBackend(repoDir), Small());
        await BackupAsync(repo, [("a.bin", Data(50_000, 7))]);
        // A concurrent backup's pack, written but not yet indexed or referenced.
        string fresh = new string('a', 64);
        string freshPath = System.IO.Path.Combine(repoDir, "packs", "aa", fresh);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(freshPath)!);
        await File.WriteAllBytesAsync(freshPath, Data(1000, 9));
        var options = new RemoveExpiredBackupOptions { Repository = new RepositoryTarget { Location = repoDir }, Policy = new RetentionPolicy { KeepLast = 1 } };
        IReadOnlyList<RetentionItem> now = await RetentionOperations.RemoveExpiredAsync(options, new OperationContext());
        RetentionItem kept = Assert.Single(now, i => i.Kind == RetentionItemKind.Pack);
        Assert.Equal(RetentionDecision.Keep, kept.Decision);
        Assert.Contains("grace period", kept.Reason, StringComparison.Ordinal);
        Assert.True(File.Exists(freshPath));
        // Once older than the grace period it goes.
        IReadOnlyList<RetentionItem> later = await RetentionOperations.RemoveExpiredAsync(options, new OperationContext { Clock = new FixedClock(DateTimeOffset.UtcNow.AddHours(2)) });
        Assert.Contains(later, i => i.Kind == RetentionItemKind.Pack && i.Id == fresh && i.Removed);
        Assert.False(File.Exists(freshPath));
        Assert.Single(await repo.ListBackupsAsync());
    }
}
