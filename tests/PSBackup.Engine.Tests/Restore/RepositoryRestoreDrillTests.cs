using PSBackup.Engine.Events;
using PSBackup.Engine.Restore;
using PSBackup.Engine.Storage;
using PSBackup.Engine.Tests.Support;
using PSBackup.Example;

namespace PSBackup.Engine.Tests.Restore;

/// <summary>Test-Restore -Repository: the drill over the scenario's repository (through
/// RepositoryRestoreSource), recorded as an object under <c>events/&lt;ns&gt;/</c>.</summary>
public sealed class RepositoryRestoreDrillTests(RepositoryPitrScenario scenario) : IClassFixture<RepositoryPitrScenario>, IDisposable
{
    private const string Ns = PitrScenario.Ns;
    private readonly TestDirectory _scratch = new();

    public void Dispose() => _scratch.Dispose();

    private async Task<StoredEvent> EventNamed(string name)
    {
        using var backend = new LocalBackend(scenario.Repository!.Location);
        IReadOnlyList<StoredEvent> events = await EventLog.ForBackend(backend).ListAsync(Ns, CancellationToken.None);
        return Assert.Single(events, e => e.Name == name);
    }

    [Fact]
    public async Task Latest_drill_from_a_repository_passes_replays_and_is_recorded_in_the_repository()
    {
        ExampleState? replayed = null;
        RestoreDrillResult result = (await RestoreDrill.RunAsync(new TestRestoreOptions(Ns)
        {
            Repository = scenario.Repository,
            ScratchPath = _scratch.Path,
            Validation = (nsDir, _) =>
            {
                ExampleStore.Replay(nsDir);
                replayed = ExampleStore.ReadState(ExampleStore.DbPath(nsDir));
                return Task.CompletedTask;
            },
        }, OperationContext.Default))!;

        Assert.True(result.Passed, string.Join("; ", result.Errors));
        Assert.Equal(scenario.RepositorySnapshots[^1].BackupId, result.BackupId);
        Assert.Equal(result.BackupId, result.Snapshot);
        Assert.Equal(scenario.Repository!.Location, result.Repository);
        Assert.Null(result.DataDir);
        Assert.Equal(scenario.LastArchivedLogIndex, result.LastLogIndex);
        scenario.AssertStateAt(scenario.LastArchivedLogIndex, replayed!);
        Assert.Empty(Directory.EnumerateFileSystemEntries(_scratch.Path));

        StoredEvent stored = await EventNamed(result.EventName!);
        Assert.Equal(RestoreDrillEvent.EventKind, stored.Kind);
        RestoreDrillEvent e = stored.As<RestoreDrillEvent>();
        Assert.True(e.Passed);
        Assert.Equal(result.BackupId, e.BackupId);
        Assert.True(File.Exists(Path.Combine(scenario.Repository.Location, "events", Ns, result.EventName!)));
    }

    [Fact]
    public async Task A_given_backup_id_with_a_failing_validation_is_a_recorded_failure()
    {
        string backupId = scenario.RepositorySnapshots[0].BackupId;
        RestoreDrillResult result = (await RestoreDrill.RunAsync(new TestRestoreOptions(Ns)
        {
            Repository = scenario.Repository,
            Snapshot = backupId,
            ScratchPath = _scratch.Path,
            Validation = (_, _) => throw new InvalidOperationException("checksum table mismatch"),
        }, OperationContext.Default))!;

        Assert.False(result.Passed);
        Assert.Equal(backupId, result.BackupId);
        Assert.Equal(ErrorKind.Failed, result.FailureKind);
        RestoreDrillEvent e = (await EventNamed(result.EventName!)).As<RestoreDrillEvent>();
        Assert.False(e.Passed);
        Assert.Equal(backupId, e.BackupId);
        Assert.Contains("checksum table mismatch", Assert.Single(e.Errors));
    }

    [Fact]
    public async Task An_unknown_backup_id_is_bad_input_and_records_nothing()
    {
        using var backend = new LocalBackend(scenario.Repository!.Location);
        int before = (await EventLog.ForBackend(backend).ListAsync(Ns, CancellationToken.None)).Count(e => e.Kind == RestoreDrillEvent.EventKind && e.As<RestoreDrillEvent>().Snapshot == new string('0', 64));
        await Assert.ThrowsAsync<NotFoundException>(() => RestoreDrill.RunAsync(
            new TestRestoreOptions(Ns) { Repository = scenario.Repository, Snapshot = new string('0', 64), ScratchPath = _scratch.Path }, OperationContext.Default));
        Assert.Equal(0, before);
        Assert.DoesNotContain(await EventLog.ForBackend(backend).ListAsync(Ns, CancellationToken.None),
            e => e.Kind == RestoreDrillEvent.EventKind && e.As<RestoreDrillEvent>().Snapshot == new string('0', 64));
        Assert.Empty(Directory.EnumerateFileSystemEntries(_scratch.Path));
    }
}
