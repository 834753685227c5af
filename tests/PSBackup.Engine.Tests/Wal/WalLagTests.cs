using System.Globalization;
using System.Text.RegularExpressions;
using PSBackup.Engine.Events;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Tests.ObjectStore;
using PSBackup.Engine.Tests.Support;
using PSBackup.Engine.Wal;

namespace PSBackup.Engine.Tests.Wal;

/// <summary>Lag is visible (issue 16): backup_wal_lag_seconds/records in Export-BackupMetric and the
/// WalLagTooHigh health alert, against a local backup root (-DataDir) and a repository with the live
/// data directory beside it (-LiveDataDir), on a real UnisonDB WAL whose records carry their HLC.</summary>
public sealed class WalLagTests : IDisposable
{
    private readonly TestDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static string Wal(string data) => Path.Combine(data, "users", "wal");

    private static double Sample(string text, string family)
    {
        Match m = Regex.Match(text, "^" + family + "\\{namespace=\"users\"\\} (\\S+)$", RegexOptions.Multiline);
        Assert.True(m.Success, $"{family} missing:\n{text}");
        return double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Lag_is_zero_when_the_archive_is_current_and_the_unarchived_records_age_and_count_otherwise(bool repository)
    {
        string data = _dir.Combine("data");
        UnisonOracle.CopyFixture("v1-small", data);
        RepositoryTarget? repo = null;
        if (repository)
        {
            repo = new RepositoryTarget { Location = _dir.Combine("repo") };
            await RepositoryOperations.InitializeAsync(new InitializeRepositoryOptions(repo) { Unencrypted = true }, OperationContext.Default);
        }
        var ship = new InvokeWalShipOptions(data, "users", repository ? null : "wal") { Repository = repo };
        await WalOperations.ShipAsync(ship, OperationContext.Default);
        MetricExportOptions metrics = repository
            ? new MetricExportOptions { Repository = repo, LiveDataDir = data }
            : new MetricExportOptions { DataDir = data };
        string current = (await BackupHealth.ExportMetricsAsync(metrics, OperationContext.Default))!.Text;
        Assert.Equal(0, Sample(current, "backup_wal_lag_seconds"));
        Assert.Equal(0, Sample(current, "backup_wal_lag_records"));

        // UnisonDB appends 4 records (gen stamps each with its HLC, now); nothing ships them.
        UnisonOracle.OracleRun gen = UnisonOracle.Run(UnisonOracle.V1, "gen", "-dir", Wal(data), "-seg-size", "1048576", "-records", "4", "-sessions", "1", "-start-lsn", "1006", "-seed", "8");
        Assert.True(gen.ExitCode == 0, gen.ToString());
        UnisonOracle.ReplayResult live = UnisonOracle.Replay(Wal(data), 1 << 20, verbose: true);
        DateTimeOffset firstUnarchived = DateTimeOffset.FromUnixTimeMilliseconds((long)live.Records.First(r => r.Lsn == 1006).Hlc);
        var later = new OperationContext { Clock = new FixedClock(firstUnarchived.AddMinutes(7)) };
        string behind = (await BackupHealth.ExportMetricsAsync(metrics, later))!.Text;
        Assert.Equal(4, Sample(behind, "backup_wal_lag_records"));
        Assert.Equal(420, Sample(behind, "backup_wal_lag_seconds"), precision: 3);

        BackupHealthOptions health = repository
            ? new BackupHealthOptions { Repository = repo, LiveDataDir = data }
            : new BackupHealthOptions { DataDir = data };
        HealthAlert alert = Assert.Single(await BackupHealth.GetAlertsAsync(health, later), a => a.Code == "WalLagTooHigh");
        Assert.Equal(HealthSeverity.Critical, alert.Severity);
        Assert.Contains("4 record(s) behind", alert.Message);
        Assert.DoesNotContain(await BackupHealth.GetAlertsAsync(health with { MaxWalLag = TimeSpan.FromMinutes(10) }, later), a => a.Code == "WalLagTooHigh");

        // Shipped again: current, no alert.
        await WalOperations.ShipAsync(ship, OperationContext.Default);
        Assert.Equal(0, Sample((await BackupHealth.ExportMetricsAsync(metrics, later))!.Text, "backup_wal_lag_records"));
        Assert.DoesNotContain(await BackupHealth.GetAlertsAsync(health, later), a => a.Code == "WalLagTooHigh");
    }
}
