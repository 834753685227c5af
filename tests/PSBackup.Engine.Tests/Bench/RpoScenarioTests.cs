using PSBackup.Bench;
using PSBackup.Engine.Tests.Support;

namespace PSBackup.Engine.Tests.Bench;

/// <summary>The RPO bench scenario (psbackup-bench rpo) in miniature: every record the writer
/// appended is shipped, each record's lag is measured, and the repository grows by about the bytes
/// written (partials store only new records). Not a timing test: the numbers come from bench/run.sh --rpo.</summary>
public sealed class RpoScenarioTests : IDisposable
{
    private readonly TestDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task A_short_run_ships_every_record_and_grows_the_repository_by_about_what_was_written()
    {
        RpoResult r = await Rpo.RunAsync(_dir.Combine("rpo"), TimeSpan.FromSeconds(4), rate: 300, interval: TimeSpan.FromMilliseconds(200),
            idle: TimeSpan.FromSeconds(1), s3Location: null, s3Endpoint: null, seed: 5, log: TextWriter.Null);
        Assert.True(r.Records >= 300, r.ToString());
        Assert.Equal(0, r.Unshipped);
        Assert.True(r.LagP99 > 0 && r.LagMax >= r.LagP99, r.ToString());
        Assert.True(r.Growth is > 0.9 and <= 1.3, r.ToString());
        Assert.True(r.Items >= 2, r.ToString());
    }
}
