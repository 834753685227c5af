using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using PSBackup.Engine.Snapshots;

namespace PSBackup.Engine.Restore;

/// <summary>What UnisonDB's own start-up recovery made of a restored namespace.</summary>
public sealed record UnisonRecovery(long RecordsRecovered, StoreCheckpoint? Checkpoint, int Keys, string ContentSha256);

/// <summary>Test-Restore's proof for a UnisonDB namespace: UnisonDB's code (the <c>unisondb-walfs</c>
/// oracle, built from its walfs and kvdrivers) runs the engine's start-up recovery
/// (<c>store-recover</c>: read the checkpoint, replay the WAL from it) on a copy of the restored
/// namespace, then reads the store (<c>store-info</c>). The drill passes only when recovery succeeds,
/// the recovered checkpoint is the record the plan ends at, and, when the caller knows it, the
/// recovered content hash is the expected one.</summary>
public static partial class UnisonRecoveryCheck
{
    [GeneratedRegex(@"recovered (\d+) records")]
    private static partial Regex RecoveredRegex();

    [GeneratedRegex(@"checkpoint: RecordProcessed=(\d+) Pos=(\d+):(\d+)")]
    private static partial Regex CheckpointRegex();

    [GeneratedRegex(@"namespace bucket ""[^""]*"": (\d+) keys .*content sha256 ([0-9a-f]{64})")]
    private static partial Regex ContentRegex();

    /// <summary>Copies <paramref name="namespaceDir"/> (a restored <c>&lt;ns&gt;</c> with unison.db and wal/)
    /// into <paramref name="workDir"/>/&lt;ns&gt; and runs <paramref name="oracle"/> over the copy.
    /// Returns the errors found (empty: proven) and what recovery produced.</summary>
    public static async Task<(List<string> Errors, UnisonRecovery? Recovery)> RunAsync(string oracle, string namespaceDir, string ns, string engine,
        long expectedLastLogIndex, string? expectedContentSha256, string workDir, CancellationToken ct)
    {
        var errors = new List<string>();
        string? unisonEngine = StoreEngines.UnisonName(engine);
        if (unisonEngine is null)
        {
            errors.Add($"The restored store is '{engine}', not UnisonDB's unison.db: UnisonDB's recovery cannot check it.");
            return (errors, null);
        }
        string copy = Path.Combine(workDir, ns);
        CopyTree(namespaceDir, copy);
        string walDir = Path.Combine(copy, "wal");
        long segmentSize = Directory.Exists(walDir)
            ? Directory.EnumerateFiles(walDir).Where(f => f.EndsWith(".seg", StringComparison.Ordinal) || f.EndsWith(".wal", StringComparison.Ordinal))
                .Select(f => new FileInfo(f).Length).DefaultIfEmpty(16L << 20).Max()
            : 16L << 20;
        (int code, string output) = await RunAsync(oracle, ct, "store-recover", "-data", workDir, "-ns", ns, "-engine", unisonEngine,
            "-seg-size", segmentSize.ToString(CultureInfo.InvariantCulture)).ConfigureAwait(false);
        if (code != 0)
        {
            errors.Add($"UnisonDB's start-up recovery (store-recover) failed on the restored copy (exit {code}): {Tail(output)}");
            return (errors, null);
        }
        Match recovered = RecoveredRegex().Match(output);
        (int infoCode, string info) = await RunAsync(oracle, ct, "store-info", "-db", Path.Combine(copy, UnisonStore.StoreName)).ConfigureAwait(false);
        Match cp = CheckpointRegex().Match(info);
        Match content = ContentRegex().Match(info);
        if (infoCode != 0 || !content.Success)
        {
            errors.Add($"UnisonDB's driver could not read the recovered store (store-info exit {infoCode}): {Tail(info)}");
            return (errors, null);
        }
        StoreCheckpoint? checkpoint = null;
        if (cp.Success)
        {
            checkpoint = new StoreCheckpoint(long.Parse(cp.Groups[1].Value, CultureInfo.InvariantCulture), long.Parse(cp.Groups[2].Value, CultureInfo.InvariantCulture),
                long.Parse(cp.Groups[3].Value, CultureInfo.InvariantCulture), 0, 0);
            checkpoint = UnisonStore.WithRecord(checkpoint, walDir);
        }
        var result = new UnisonRecovery(recovered.Success ? long.Parse(recovered.Groups[1].Value, CultureInfo.InvariantCulture) : 0,
            checkpoint, int.Parse(content.Groups[1].Value, CultureInfo.InvariantCulture), content.Groups[2].Value);
        if (checkpoint?.LogIndex is not long last)
        {
            if (expectedLastLogIndex > 0)
            {
                errors.Add($"After UnisonDB's recovery the store has no checkpoint at a readable record, so it cannot be shown to end at log index {expectedLastLogIndex}.");
            }
        }
        else if (last != expectedLastLogIndex)
        {
            errors.Add($"UnisonDB's recovery of the restored copy ends at log index {last} ({checkpoint.SegmentId}:{checkpoint.Offset}), not at {expectedLastLogIndex} as planned.");
        }
        if (expectedContentSha256 is not null && !string.Equals(expectedContentSha256, result.ContentSha256, StringComparison.OrdinalIgnoreCase))
        {
            errors.Add($"After UnisonDB's recovery the namespace's content hash is {result.ContentSha256} ({result.Keys} keys), not the expected {expectedContentSha256}.");
        }
        return (errors, result);
    }

    private static async Task<(int, string)> RunAsync(string oracle, CancellationToken ct, params string[] args)
    {
        var start = new ProcessStartInfo(oracle) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in args)
        {
            start.ArgumentList.Add(a);
        }
        using Process p = Process.Start(start) ?? throw new OperationFailedException("OracleFailed", $"'{oracle}' could not be started.", oracle);
        Task<string> stdout = p.StandardOutput.ReadToEndAsync(ct);
        Task<string> stderr = p.StandardError.ReadToEndAsync(ct);
        try
        {
            await p.WaitForExitAsync(ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw;
        }
        return (p.ExitCode, await stdout.ConfigureAwait(false) + await stderr.ConfigureAwait(false));
    }

    private static void CopyTree(string source, string destination)
    {
        Directory.CreateDirectory(destination);
        foreach (string dir in Directory.EnumerateDirectories(source, "*", SearchOption.AllDirectories))
        {
            Directory.CreateDirectory(Path.Combine(destination, Path.GetRelativePath(source, dir)));
        }
        foreach (string file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            File.Copy(file, Path.Combine(destination, Path.GetRelativePath(source, file)));
        }
    }

    private static string Tail(string text)
    {
        string t = text.Trim();
        return t.Length <= 400 ? t : "…" + t[^400..];
    }
}
