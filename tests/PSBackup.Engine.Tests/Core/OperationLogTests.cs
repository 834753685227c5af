using PSBackup.Engine.Storage;
using PSBackup.Engine.Tests.Support;

namespace PSBackup.Engine.Tests.Core;

/// <summary>The engine's log (-Verbose/-Debug) and the progress text the module shows.</summary>
public sealed class OperationLogTests
{
    [Fact]
    public async Task Messages_reach_the_sink_of_their_flow_from_parallel_work_and_nowhere_else()
    {
        var sink = new RecordingLogSink(debug: false);
        using (OperationLog.Use(sink))
        {
            await Parallel.ForEachAsync(Enumerable.Range(0, 8), async (i, _) =>
            {
                await Task.Yield();
                OperationLog.Verbose($"item {i}");
                OperationLog.Debug($"debug {i}"); // not enabled: never written
            });
            Assert.False(OperationLog.IsDebug);
        }
        OperationLog.Verbose("outside"); // no sink installed: dropped
        Assert.Equal(Enumerable.Range(0, 8).Select(i => $"item {i}").Order(), sink.Lines.Select(l => l.Message).Order());
        Assert.All(sink.Lines, l => Assert.Equal(OperationLogLevel.Verbose, l.Level));
        Assert.Null(OperationLog.Current);
    }

    [Fact]
    public async Task Storage_calls_are_logged_only_when_someone_reads_debug()
    {
        using var dir = new Support.TestDirectory();
        using (OperationLog.Use(new RecordingLogSink(debug: false)))
        {
            Assert.IsType<LocalBackend>(LoggingBackend.WrapWhenDebugging(new LocalBackend(dir.Path)));
        }
        var sink = new RecordingLogSink(debug: true);
        using (OperationLog.Use(sink))
        {
            using IStorageBackend backend = LoggingBackend.WrapWhenDebugging(new LocalBackend(dir.Path));
            Assert.IsType<LoggingBackend>(backend);
            await backend.PutAsync("a/b", new MemoryStream(new byte[2048]), 2048, CancellationToken.None);
            await using (Stream s = await backend.GetAsync("a/b", CancellationToken.None)) { }
            await foreach (StoredObject _ in backend.ListAsync("a/", CancellationToken.None)) { }
            await Assert.ThrowsAsync<StorageNotFoundException>(() => backend.GetAsync("a/missing", CancellationToken.None));
        }
        string[] lines = sink.Lines.Where(l => l.Level == OperationLogLevel.Debug).Select(l => l.Message).ToArray();
        Assert.Matches(@"^Storage PUT a/b \(2\.0 KiB\) in [\d.]+ ms \[", lines[0]);
        Assert.Matches(@"^Storage GET a/b \(2\.0 KiB\) in ", lines[1]);
        Assert.Matches(@"^Storage LIST a/ \(1 object\(s\)\) in ", lines[2]);
        Assert.Matches(@"^Storage GET a/missing \(failed: StorageNotFoundException: ", lines[3]);
    }

    [Theory]
    [InlineData(ProgressUnit.Bytes, 10L << 20, 40L << 20, 2.0, "Copying (10.0 MiB of 40.0 MiB at 5.0 MiB/s)", 6)]
    [InlineData(ProgressUnit.Bytes, 10L << 20, 40L << 20, 0.2, "Copying (10.0 MiB of 40.0 MiB)", 1)]
    [InlineData(ProgressUnit.Items, 3, 10, 3.0, "Copying (3 of 10)", 7)]
    [InlineData(ProgressUnit.Items, 0, 10, 3.0, "Copying (0 of 10)", -1)]
    [InlineData(ProgressUnit.Bytes, 5L << 20, 0, 1.0, "Copying (5.0 MiB at 5.0 MiB/s)", -1)]
    [InlineData(ProgressUnit.Items, 4, 4, 1.0, "Copying (4 of 4)", 0)]
    public void Progress_shows_amount_rate_and_seconds_left(ProgressUnit unit, long done, long total, double seconds, string status, int remaining)
    {
        var p = new OperationProgress("Backup", "Copying", done, total) { Unit = unit };
        ProgressEstimate e = ProgressEstimate.Of(p, TimeSpan.FromSeconds(seconds));
        Assert.Equal(status, e.Status);
        Assert.Equal(remaining, e.SecondsRemaining);
    }
}
