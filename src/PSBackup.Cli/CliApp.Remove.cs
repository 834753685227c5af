using System.CommandLine;
using PSBackup.Engine;
using PSBackup.Engine.Retention;

namespace PSBackup.Cli;

/// <summary><c>psbackup remove</c> (Remove-Backup): named backups of a repository, a namespace's
/// local backup root or a tenant dir's local object backups, refusing to break a PITR chain
/// without --force.</summary>
public static partial class CliApp
{
    private static Command RemoveCommand()
    {
        var command = new Command("remove",
            "Remove named backups (--backup-id, repeatable, as 'psbackup list' shows them) from a repository (then reclaim the packs only they used), a namespace's local backup root (--data-dir --namespace) or a tenant dir's local object backups (--db-root --dir); refuses to break a point-in-time chain without --force (Remove-Backup).");
        var repository = new Option<string>("--repository") { Description = "The repository: a folder or s3://bucket/prefix." };
        var dataDir = new Option<string>("--data-dir") { Description = "Remove snapshots or shipped segments from <data-dir>/backups/<namespace>." };
        var ns = new Option<string>("--namespace") { Description = "With --data-dir: the namespace." };
        var dbRoot = new Option<string>("--db-root") { Description = "Remove local object backups under <db-root>/<dir>." };
        var dir = new Option<string>("--dir") { Description = "With --db-root: the tenant dir." };
        var ids = new Option<string[]>("--backup-id") { Description = "A backup to remove, as 'psbackup list' names it; repeat for several.", Required = true, AllowMultipleArgumentsPerToken = true };
        var force = new Option<bool>("--force") { Description = "Remove even when it breaks a point-in-time chain." };
        var grace = new Option<string>("--pack-grace-period") { Description = "Repository only: packs the removed backups used stay when younger than this (default 1h; 0h reclaims at once)." };
        foreach (Option o in new Option[] { repository, dataDir, ns, dbRoot, dir, ids, force, grace })
        {
            command.Options.Add(o);
        }
        var repo = new RepositoryCliOptions(command);
        AddCommon(command, out Option<bool> json, out Option<bool>? whatIf, writes: true);
        command.SetAction((parse, ct) => Run(parse, ct, async io =>
        {
            string? location = parse.GetValue(repository);
            if (location is null && (repo.FirstGiven(parse) ?? (parse.GetValue(grace) is null ? null : "--pack-grace-period")) is { } given)
            {
                throw new InvalidInputException("RepositoryOptionWithoutRepository",
                    $"{given} only applies to a repository. Add --repository <folder or s3://bucket/prefix>, or drop {given}.", given);
            }
            string? d = parse.GetValue(dataDir), r = parse.GetValue(dbRoot);
            var options = new RemoveBackupOptions
            {
                Repository = repo.Target(parse, location),
                DataDir = d is null ? null : FullPath(d, "--data-dir"),
                Namespace = parse.GetValue(ns),
                DbRoot = r is null ? null : FullPath(r, "--db-root"),
                Dir = parse.GetValue(dir),
                BackupIds = parse.GetValue(ids) ?? [],
                Force = parse.GetValue(force),
                PackGracePeriod = parse.GetValue(grace) is { } g ? Durations.Parse(g) : TimeSpan.FromHours(1),
            };
            IReadOnlyList<RetentionItem> items = await BackupRemoval.RemoveAsync(options, io.Context(parse.GetValue(whatIf!))).ConfigureAwait(false);
            RetentionOutput.Prune(io.Stdout, items, parse.GetValue(json), parse.GetValue(whatIf!));
        }));
        return command;
    }
}
