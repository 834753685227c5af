using System.Security.Cryptography;
using PSBackup.Engine.Tests.Support;

namespace PSBackup.Engine.Tests.Wal;

/// <summary>The copied UnisonDB fixtures are byte-identical to what UnisonDB's code wrote, and the
/// oracle binaries run here: every test that judges a restore by UnisonDB's reader stands on these.</summary>
public sealed class UnisonFixtureTests
{
    [Fact]
    public void EveryCopiedFixtureFileMatchesTheUpstreamChecksum()
    {
        string sums = Path.Combine(UnisonOracle.FixturesDir, "SHA256SUMS.upstream");
        int checkedFiles = 0;
        foreach (string line in File.ReadAllLines(sums))
        {
            string[] parts = line.Split("  ", 2);
            if (parts.Length != 2 || !parts[1].StartsWith("fixtures/", StringComparison.Ordinal))
            {
                continue;
            }
            string file = Path.Combine(UnisonOracle.FixturesDir, parts[1]["fixtures/".Length..]);
            Assert.True(File.Exists(file), $"fixture file missing: {file}");
            Assert.Equal(parts[0], Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(file))));
            checkedFiles++;
        }
        Assert.Equal(30, checkedFiles);
    }

    [Fact]
    public void TheOracleReplaysTheV1FixtureAndTheV2BinaryRefusesIt()
    {
        using var dir = new TestDirectory();
        UnisonOracle.CopyFixture("v1-small", dir.Path);
        string wal = dir.Combine("users", "wal");

        UnisonOracle.ReplayResult v1 = UnisonOracle.Replay(wal, 1 << 20);
        Assert.True(v1.ExitCode == 0, v1.ToString());
        Assert.Equal((1005L, 1UL, 1005UL, 6U, 207632L), (v1.Count, v1.FirstLsn, v1.LastLsn, v1.LastSegmentId, v1.LastOffset));
        Assert.Equal(6, v1.Segments.Count);
        Assert.Empty(v1.Discontinuities);

        UnisonOracle.ReplayResult v2 = UnisonOracle.Replay(wal, 1 << 20, v2: true);
        Assert.Equal(3, v2.ExitCode);
        Assert.Contains("version 1", v2.Run.Output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("v1-store-bolt", "BOLT")]
    [InlineData("v1-store-lmdb", "LMDB")]
    public void StoreRecoverOfTheFixtureAppliesLsn421To600(string fixture, string engine)
    {
        using var dir = new TestDirectory();
        UnisonOracle.CopyFixture(fixture, dir.Path);
        string db = dir.Combine("users", "unison.db");

        UnisonOracle.StoreInfo before = UnisonOracle.StoreInfoOf(db);
        Assert.True(before.ExitCode == 0, before.ToString());
        Assert.Equal((engine, 420UL, 2U, 222128L, 369), (before.Engine, before.RecordProcessed, before.CheckpointSegment, before.CheckpointOffset, before.NamespaceKeys));

        UnisonOracle.OracleRun recover = UnisonOracle.StoreRecover(dir.Path, "users", engine, 262144);
        Assert.True(recover.ExitCode == 0, recover.ToString());
        UnisonOracle.StoreInfo after = UnisonOracle.StoreInfoOf(db);
        Assert.Equal((600UL, 3U, 194968L, 525), (after.RecordProcessed, after.CheckpointSegment, after.CheckpointOffset, after.NamespaceKeys));
        Assert.Equal("48836988e999a97ba5d7e946531a75f520bfdcbf6f009e661cdae0d2012f4266", after.ContentSha256);
    }
}
