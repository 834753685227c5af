using System.Management.Automation;
using PSBackup.Engine;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Retention;

namespace PSBackup.Commands;

/// <summary>Applies a retention policy (restic's <c>forget</c> rules) to a repository (default),
/// a namespace's local snapshots and WAL (-DataDir with -Namespace) or a tenant dir's local object
/// backups (-DbRoot with -Dir), removes what no rule keeps and, in a repository, reclaims the packs
/// no remaining backup uses. Writes one <see cref="RetentionItem"/> per backup, segment or pack,
/// kept or removed, with the rules that decided; -WhatIf lists what would go.</summary>
[Cmdlet(VerbsCommon.Remove, "ExpiredBackup", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High,
    DefaultParameterSetName = RepositorySet)]
[OutputType(typeof(RetentionItem))]
public sealed class RemoveExpiredBackupCommand : PSBackupRepositoryCmdlet
{
    private const string DataDirSet = "DataDir";
    private const string DbRootSet = "DbRoot";
    private RemoveExpiredBackupOptions? _options;

    /// <summary>The repository: a folder or s3://bucket/prefix.</summary>
    [Parameter(Mandatory = true, Position = 0, ParameterSetName = RepositorySet)]
    [ValidateNotNullOrEmpty]
    public string Repository { get; set; } = "";

    /// <summary>A data directory: prune &lt;DataDir&gt;/backups/&lt;Namespace&gt; (snapshots and shipped WAL).</summary>
    [Parameter(Mandatory = true, ParameterSetName = DataDirSet)]
    [ValidateNotNullOrEmpty]
    public string DataDir { get; set; } = "";

    /// <summary>An object store root: prune the local object backups of -Dir.</summary>
    [Parameter(Mandatory = true, ParameterSetName = DbRootSet)]
    [ValidateNotNullOrEmpty]
    public string DbRoot { get; set; } = "";

    /// <summary>Required with -DataDir; with -Repository, only this namespace's snapshots and WAL.</summary>
    [Parameter(ParameterSetName = RepositorySet)]
    [Parameter(Mandatory = true, ParameterSetName = DataDirSet)]
    [ValidateNotNullOrEmpty]
    public string? Namespace { get; set; }

    /// <summary>Required with -DbRoot; with -Repository, only this tenant dir's object backups.</summary>
    [Parameter(ParameterSetName = RepositorySet)]
    [Parameter(Mandatory = true, ParameterSetName = DbRootSet)]
    [ValidateNotNullOrEmpty]
    public string? Dir { get; set; }

    /// <summary>Only this object's backups.</summary>
    [Parameter(ParameterSetName = RepositorySet)]
    [Parameter(ParameterSetName = DbRootSet)]
    [ValidateNotNullOrEmpty]
    public string? Object { get; set; }

    /// <summary>Keep the N newest backups.</summary>
    [Parameter]
    [ValidateRange(0, int.MaxValue)]
    public int? KeepLast { get; set; }

    /// <summary>Keep the newest backup of each of the N most recent hours (UTC) that have one.</summary>
    [Parameter]
    [ValidateRange(0, int.MaxValue)]
    public int? KeepHourly { get; set; }

    /// <summary>Keep the newest backup of each of the N most recent days (UTC) that have one.</summary>
    [Parameter]
    [ValidateRange(0, int.MaxValue)]
    public int? KeepDaily { get; set; }

    /// <summary>Keep the newest backup of each of the N most recent ISO weeks that have one.</summary>
    [Parameter]
    [ValidateRange(0, int.MaxValue)]
    public int? KeepWeekly { get; set; }

    /// <summary>Keep the newest backup of each of the N most recent months that have one.</summary>
    [Parameter]
    [ValidateRange(0, int.MaxValue)]
    public int? KeepMonthly { get; set; }

    /// <summary>Keep the newest backup of each of the N most recent years that have one.</summary>
    [Parameter]
    [ValidateRange(0, int.MaxValue)]
    public int? KeepYearly { get; set; }

    /// <summary>Keep every backup within this duration of the newest one: 14d, 24h, 2w, 1y, 1d12h
    /// or a TimeSpan such as 1.12:00:00.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? KeepWithin { get; set; }

    /// <summary>Repository only: unreferenced packs younger than this stay (a running backup may
    /// still commit them). Default 1h; 0h reclaims every unreferenced pack.</summary>
    [Parameter(ParameterSetName = RepositorySet)]
    [ValidateNotNullOrEmpty]
    public string? PackGracePeriod { get; set; }

    protected override void PrepareRecord()
    {
        try
        {
            var policy = new RetentionPolicy
            {
                KeepLast = KeepLast,
                KeepHourly = KeepHourly,
                KeepDaily = KeepDaily,
                KeepWeekly = KeepWeekly,
                KeepMonthly = KeepMonthly,
                KeepYearly = KeepYearly,
                KeepWithin = KeepWithin is null ? null : Durations.Parse(KeepWithin),
            };
            policy.Validate();
            RepositoryTarget? repository = ParameterSetName == RepositorySet ? RepositoryTargetFor(Repository) : null;
            _options = new RemoveExpiredBackupOptions
            {
                Repository = repository,
                DataDir = ParameterSetName == DataDirSet ? ResolveFileSystemPath(DataDir, nameof(DataDir)) : null,
                DbRoot = ParameterSetName == DbRootSet ? ResolveFileSystemPath(DbRoot, nameof(DbRoot)) : null,
                Namespace = Namespace,
                Dir = Dir,
                Object = Object,
                Policy = policy,
                PackGracePeriod = PackGracePeriod is null ? TimeSpan.FromHours(1) : Durations.Parse(PackGracePeriod),
            };
        }
        catch (InvalidInputException e)
        {
            // A bad policy is a setup failure: nothing is read or removed.
            ThrowTerminatingError(ErrorMapping.ToErrorRecord(e));
        }
    }

    protected override async Task ProcessRecordAsync()
    {
        foreach (RetentionItem item in await RetentionOperations.RemoveExpiredAsync(_options!, CreateContext()).ConfigureAwait(false))
        {
            await WriteObjectAsync(item).ConfigureAwait(false);
        }
    }
}
