using PSBackup.Engine.ObjectStore;
using PSBackup.Engine.Tests.Support;

namespace PSBackup.Engine.Tests.ObjectStore;

/// <summary>Backups taken while a real writer thread rewrites and grows the object's files.</summary>
public sealed class ConcurrentBackupTests
{
    private static readonly DateTimeOffset T0 = new(2026, 4, 18, 9, 0, 0, TimeSpan.Zero);

    private static OperationContext Context(FixedClock clock, IProgress<OperationProgress>? progress = null, CancellationToken ct = default) =>
        new() { Clock = clock, Progress = progress, CancellationToken = ct };

    /// <summary>What a backup claims must hold: the manifest matches the copied bytes, no artifact
    /// was copied, and every copied file either equals a version its source really had or is
    /// listed as changed (which only a Recent backup may do). Returns how many copied files
    /// matched no version.</summary>
    private static async Task<int> AssertHonestAsync(ObjectBackupResult result, ShardWriter writer, FixedClock clock)
    {
        BackupManifest manifest = ManifestIO.Read(result.ManifestPath!);
        await ManifestIO.VerifyAsync(result.BackupPath!, manifest, Context(clock), "verify");
        Assert.Equal(result.Consistency.ToString(), manifest.Consistency);
        Assert.Equal(result.ChangedFiles, manifest.ChangedFiles);
        Assert.Equal(result.Consistency == BackupConsistency.Stable, result.ChangedFiles.Count == 0);
        Assert.Equal(manifest.Files.Count, result.FileCount);
        Assert.DoesNotContain(ObjectFixture.Snapshot(result.BackupPath!, skipArtifacts: false).Keys,
            k => k.Split('/').Any(ObjectLayout.IsTransientArtifact));

        int torn = 0;
        foreach (ManifestFile file in manifest.Files)
        {
            if (writer.IsVersion(file.Path, file.Sha256))
            {
                continue;
            }
            torn++;
            Assert.True(result.Consistency == BackupConsistency.Recent,
                $"{result.BackupName} says Stable but '{file.Path}' equals no version its source ever had");
            Assert.Contains(file.Path, result.ChangedFiles);
        }
        return torn;
    }

    [Fact]
    public async Task Backups_under_a_live_writer_never_claim_more_than_they_copied()
    {
        using var fx = new ObjectFixture();
        using var writer = new ShardWriter(fx.ObjectPath);
        var clock = new FixedClock(T0);
        writer.Start();
        writer.WaitForWritesBeyond(10);

        long writesBefore = writer.Writes;
        var results = new List<ObjectBackupResult>();
        for (int i = 0; i < 12; i++)
        {
            clock.Now = T0.AddSeconds(i);
            // Run the backup off the test thread too, so both really run at once.
            ObjectBackupResult? result = await Task.Run(() => ObjectOperations.BackupAsync(fx.BackupOptions(), Context(clock)));
            Assert.NotNull(result);
            results.Add(result);
        }
        long writesDuring = writer.Writes - writesBefore;
        writer.Stop();

        Assert.True(writesDuring > 0, "the writer never wrote while the backups ran");
        foreach (ObjectBackupResult result in results)
        {
            await AssertHonestAsync(result, writer, clock);
            Assert.False(result.Fenced);
        }
        Assert.Empty(Directory.EnumerateFileSystemEntries(fx.DirPath, "*.tmp"));

        // Writer stopped: a Stable copy identical to the source, folders included.
        clock.Now = T0.AddMinutes(1);
        ObjectBackupResult? quiet = await ObjectOperations.BackupAsync(fx.BackupOptions(), Context(clock));
        Assert.NotNull(quiet);
        Assert.Equal(BackupConsistency.Stable, quiet.Consistency);
        Assert.Empty(quiet.ChangedFiles);
        Assert.Equal(ObjectFixture.Snapshot(fx.ObjectPath), ObjectFixture.Snapshot(quiet.BackupPath!, skipArtifacts: false));
        Assert.Equal(0, await AssertHonestAsync(quiet, writer, clock));
    }

    [Fact]
    public async Task Quiesce_hooks_that_pause_the_writer_give_a_fenced_stable_copy_of_that_instant()
    {
        using var fx = new ObjectFixture();
        using var writer = new ShardWriter(fx.ObjectPath);
        var clock = new FixedClock(T0);
        writer.Start();
        writer.WaitForWritesBeyond(10);

        SortedDictionary<string, string>? atPause = null;
        long writesAtResume = -1;
        var options = fx.BackupOptions() with
        {
            Quiesce = _ =>
            {
                writer.Pause();
                atPause = ObjectFixture.Snapshot(fx.ObjectPath);
                return Task.CompletedTask;
            },
            Resume = _ =>
            {
                writesAtResume = writer.Writes;
                writer.Resume();
                return Task.CompletedTask;
            },
        };

        ObjectBackupResult? result = await Task.Run(() => ObjectOperations.BackupAsync(options, Context(clock)));

        Assert.NotNull(result);
        Assert.True(result.Fenced);
        Assert.Equal(BackupConsistency.Stable, result.Consistency);
        Assert.Equal(atPause, ObjectFixture.Snapshot(result.BackupPath!));
        Assert.Equal((1, 1), (writer.Pauses, writer.Resumes));
        writer.WaitForWritesBeyond(writesAtResume); // really resumed
        writer.Stop();
        await AssertHonestAsync(result, writer, clock);
    }

    [Fact]
    public async Task Resume_runs_even_when_a_fenced_backup_is_cancelled_and_the_writer_goes_on()
    {
        using var fx = new ObjectFixture();
        using var writer = new ShardWriter(fx.ObjectPath);
        var clock = new FixedClock(T0);
        writer.Start();
        writer.WaitForWritesBeyond(10);
        using var cts = new CancellationTokenSource();
        var progress = new SyncProgress(p =>
        {
            if (p.Status.StartsWith("Copied ", StringComparison.Ordinal))
            {
                cts.Cancel();
            }
        });
        long writesAtResume = -1;
        var options = fx.BackupOptions() with
        {
            Quiesce = _ => { writer.Pause(); return Task.CompletedTask; },
            Resume = _ => { writesAtResume = writer.Writes; writer.Resume(); return Task.CompletedTask; },
        };

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Task.Run(() => ObjectOperations.BackupAsync(options, Context(clock, progress, cts.Token))));

        Assert.Equal((1, 1), (writer.Pauses, writer.Resumes));
        writer.WaitForWritesBeyond(writesAtResume);
        writer.Stop();
        Assert.DoesNotContain(Directory.EnumerateFileSystemEntries(fx.DirPath), p => Path.GetFileName(p).StartsWith("users.backup-", StringComparison.Ordinal));
        Assert.Equal([fx.ObjectPath], Directory.EnumerateFileSystemEntries(fx.DirPath));
    }
}
