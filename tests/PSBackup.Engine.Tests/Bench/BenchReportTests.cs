using PSBackup.Bench;
using Xunit;

namespace PSBackup.Engine.Tests.Bench;

/// <summary>The bench report's peak-memory verdict covers every row a psbackup process ran in.</summary>
public sealed class BenchReportTests
{
    private static Measurement Row(string scenario, string tool, long rssMiB) =>
        new(scenario, tool, 1, 1.0, rssMiB * 1024, 1 << 30, null, "ok", 1.0);

    [Theory]
    [InlineData(Report.KeyFile)]
    [InlineData(Report.ManagedZstd)]
    [InlineData(Report.Cli)]
    [InlineData(Report.PsBackup)]
    public void A_psbackup_row_over_the_target_fails_the_memory_verdict(string tool)
    {
        string scenario = tool is Report.Cli ? "ship1" : "full";
        var rows = new List<Measurement> { Row("full", Report.PsBackup, 100), Row(scenario, tool, 130), Row("full", Report.Borg, 300) };

        string md = Report.Render(rows);

        Assert.Contains("Peak RSS target (≤ 128 MiB in every PSBackup row): not met; highest 130 MiB", md);
        Assert.Contains($"({tool.Replace("|", "\\|")})", md);
    }

    [Fact]
    public void A_peer_over_the_target_does_not_fail_it()
    {
        var rows = new List<Measurement> { Row("full", Report.PsBackup, 100), Row("full", Report.KeyFile, 120), Row("full", Report.Restic, 300) };

        Assert.Contains("Peak RSS target (≤ 128 MiB in every PSBackup row): met; highest 120 MiB", Report.Render(rows));
    }
}
