using System.CommandLine;
using System.Globalization;
using PSBackup.Engine;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Retention;

namespace PSBackup.Cli;

/// <summary><c>psbackup prune</c> (Remove-ExpiredBackup): apply a retention policy to a
/// repository, a namespace's local backup root or a tenant dir's local object backups.</summary>
public static partial class CliApp
{
    private static Command PruneCommand()
    {
        var command = new Command("prune",
            "Remove the backups no retention rule keeps, from a repository (--repository, then reclaim unused packs), a namespace's local backup root (--data-dir --namespace) or a tenant dir's local object backups (--db-root --dir); --what-if lists them (Remove-ExpiredBackup).");
        var repository = new Option<string>("--repository") { Description = "The repository: a folder or s3://bucket/prefix." };
        var dataDir = new Option<string>("--data-dir") { Description = "Prune <data-dir>/backups/<namespace>: store snapshots and shipped WAL segments." };
        var dbRoot = new Option<string>("--db-root") { Description = "Prune the local object backups under <db-root>/<dir>." };
        var ns = new Option<string>("--namespace") { Description = "Required with --data-dir; with --repository, only this namespace." };
        var dir = new Option<string>("--dir") { Description = "Required with --db-root; with --repository, only this tenant dir's object backups." };
        var obj = new Option<string>("--object") { Description = "Only this object's backups." };
        var keepLast = new Option<int?>("--keep-last") { Description = "Keep the N newest backups." };
        var keepHourly = new Option<int?>("--keep-hourly") { Description = "Keep the newest backup of each of the last N hours (UTC) that have one." };
        var keepDaily = new Option<int?>("--keep-daily") { Description = "Keep the newest backup of each of the last N days (UTC) that have one." };
        var keepWeekly = new Option<int?>("--keep-weekly") { Description = "Keep the newest backup of each of the last N ISO weeks that have one." };
        var keepMonthly = new Option<int?>("--keep-monthly") { Description = "Keep the newest backup of each of the last N months that have one." };
        var keepYearly = new Option<int?>("--keep-yearly") { Description = "Keep the newest backup of each of the last N years that have one." };
        var keepWithin = new Option<string>("--keep-within") { Description = "Keep every backup within this duration of the newest one: 14d, 24h, 2w, 1y, 1d12h." };
        var grace = new Option<string>("--pack-grace-period") { Description = "Repository only: unused packs younger than this stay, a running backup may still commit them (default 1h; 0h reclaims all)." };
        foreach (Option o in new Option[] { repository, dataDir, dbRoot, ns, dir, obj, keepLast, keepHourly, keepDaily, keepWeekly, keepMonthly, keepYearly, keepWithin, grace })
        {
            command.Options.Add(o);
        }
        var repo = new RepositoryCliOptions(command);
        command.Options.Add(new Option<bool>("--force") { Description = "Accepted for parity with -Force: the CLI never asks for confirmation." });
        AddCommon(command, out Option<bool> json, out Option<bool>? whatIf, writes: true);
        command.SetAction((parse, ct) => Run(parse, ct, async io =>
        {
            var policy = new RetentionPolicy
            {
                KeepLast = parse.GetValue(keepLast),
                KeepHourly = parse.GetValue(keepHourly),
                KeepDaily = parse.GetValue(keepDaily),
                KeepWeekly = parse.GetValue(keepWeekly),
                KeepMonthly = parse.GetValue(keepMonthly),
                KeepYearly = parse.GetValue(keepYearly),
                KeepWithin = parse.GetValue(keepWithin) is { } w ? Durations.Parse(w) : null,
            };
            policy.Validate();
            string? location = parse.GetValue(repository);
            if (location is null)
            {
                if (repo.FirstGiven(parse) is { } given)
                {
                    throw new InvalidInputException("RepositoryOptionWithoutRepository",
                        $"{given} only applies to a repository. Add --repository <folder or s3://bucket/prefix>, or drop {given}.", given);
                }
                if (parse.GetValue(grace) is not null)
                {
                    throw new InvalidInputException("RepositoryOptionWithoutRepository",
                        "--pack-grace-period only applies to a repository. Add --repository <folder or s3://bucket/prefix>, or drop --pack-grace-period.", "--pack-grace-period");
                }
            }
            string? d = parse.GetValue(dataDir), r = parse.GetValue(dbRoot);
            var options = new RemoveExpiredBackupOptions
            {
                Repository = repo.Target(parse, location),
                DataDir = d is null ? null : FullPath(d, "--data-dir"),
                DbRoot = r is null ? null : FullPath(r, "--db-root"),
                Namespace = parse.GetValue(ns),
                Dir = parse.GetValue(dir),
                Object = parse.GetValue(obj),
                Policy = policy,
                PackGracePeriod = parse.GetValue(grace) is { } g ? Durations.Parse(g) : TimeSpan.FromHours(1),
            };
            IReadOnlyList<RetentionItem> items = await RetentionOperations.RemoveExpiredAsync(options, io.Context(parse.GetValue(whatIf!))).ConfigureAwait(false);
            RetentionOutput.Prune(io.Stdout, items, parse.GetValue(json), parse.GetValue(whatIf!));
        }));
        return command;
    }
}

/// <summary>The prune table and JSON.</summary>
internal static class RetentionOutput
{
    public static void Prune(TextWriter output, IReadOnlyList<RetentionItem> items, bool json, bool whatIf)
    {
        if (json)
        {
            output.WriteLine(CliOutput.ToJson(new PruneJson(
                whatIf,
                items.Count(i => i.Decision == RetentionDecision.Keep),
                items.Count(i => i.Removed),
                items.Where(i => i.Removed).Sum(i => i.Bytes),
                [.. items.Select(i => new PruneItemJson(i.Decision, i.Removed, JsonKindName(i.Kind), i.Id, i.Repository, i.BackupId, i.Namespace,
                    i.Dir, i.Object, i.SegmentId, i.Time, i.Bytes, i.Reasons, i.Path))])));
            return;
        }
        if (items.Count == 0)
        {
            output.WriteLine("No backups.");
            return;
        }
        var table = new TableWriter().Column("Decision").Column("Kind").Column("Id").Column("Time").Column("Size", rightAlign: true).Column("Reasons");
        foreach (RetentionItem i in items)
        {
            string decision = i.Decision == RetentionDecision.Keep ? "Keep" : i.Removed ? "Removed" : whatIf ? "Remove (what-if)" : "Remove (declined)";
            table.Row(decision, KindName(i.Kind), i.Id,
                i.Time is { } t ? t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture) : "",
                TableWriter.Size(i.Bytes), i.Reason);
        }
        table.WriteTo(output);
        int removed = items.Count(i => i.Removed);
        int planned = items.Count(i => i.Decision == RetentionDecision.Remove);
        long bytes = items.Where(i => whatIf ? i.Decision == RetentionDecision.Remove : i.Removed).Sum(i => i.Bytes);
        output.WriteLine(whatIf
            ? $"What if: {planned} of {items.Count} would be removed ({TableWriter.Size(bytes)}); nothing was removed."
            : $"{removed} of {items.Count} removed ({TableWriter.Size(bytes)}), {items.Count(i => i.Decision == RetentionDecision.Keep)} kept.");
    }

    /// <summary>The kind as prune's JSON has always written it (docs/guide.md: "objectBackup",
    /// "snapshot", ...): the module's enum names changed to Get-Backup's vocabulary, the JSON did not.</summary>
    private static string JsonKindName(RetentionItemKind kind) => kind switch
    {
        RetentionItemKind.StoreSnapshot => "snapshot",
        RetentionItemKind.Object => "objectBackup",
        RetentionItemKind.WalSegment => "walSegment",
        RetentionItemKind.DamagedBackup => "damagedBackup",
        RetentionItemKind.TempFile => "tempFile",
        _ => "pack",
    };

    private static string KindName(RetentionItemKind kind) => kind switch
    {
        RetentionItemKind.StoreSnapshot => "store-snapshot",
        RetentionItemKind.WalSegment => "wal-segment",
        RetentionItemKind.Object => "object",
        RetentionItemKind.DamagedBackup => "damaged",
        RetentionItemKind.TempFile => "temp",
        _ => "pack",
    };

    /// <summary><c>prune --json</c> (CliJsonContext).</summary>
    internal sealed record PruneJson(bool WhatIf, int Kept, int Removed, long RemovedBytes, IReadOnlyList<PruneItemJson> Items);

    /// <summary>One backup's decision; the kind in prune's own vocabulary (<see cref="JsonKindName"/>).</summary>
    internal sealed record PruneItemJson(RetentionDecision Decision, bool Removed, string Kind, string Id, string? Repository, string? BackupId,
        string? Namespace, string? Dir, string? Object, long? SegmentId, DateTimeOffset? Time, long Bytes, IReadOnlyList<string> Reasons, string? Path);
}
