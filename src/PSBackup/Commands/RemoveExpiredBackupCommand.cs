using System.Management.Automation;
using PSBackup.Engine;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Retention;

namespace PSBackup.Commands;

/// <summary>Applies a retention policy (restic's <c>forget</c> rules) to a repository (default),
/// a namespace's local snapshots and WAL (-DataDir with -Namespace) or a tenant dir's local object
/// backups (-DbRoot with -Dir), removes what no rule keeps and, in a repository, reclaims the packs
/// no remaining backup uses. Writes one <see cref="RetentionItem"/> per backup, segment or pack,
/// kept or removed, with the rules that decided; -WhatIf lists what would go.
/// <para>Takes its scope from the pipeline by property name too (Repository, DataDir, DbRoot,
/// Namespace, Dir, Object): piping Get-Backup's records applies the policy once to each namespace or
/// object they name, after the last record arrived.</para></summary>
/// <cli>prune</cli>
/// <example>
/// <summary>Preview a retention policy</summary>
/// <code>Remove-ExpiredBackup -Repository ./repo -KeepDaily 7 -KeepWeekly 4 -WhatIf</code>
/// Lists every backup, segment and pack with its decision and the rules that kept it; nothing is
/// removed. The newest snapshot and the WAL a kept snapshot needs for point-in-time restore always
/// stay.
/// </example>
/// <example>
/// <summary>Keep a tenant dir's last two local backups</summary>
/// <code>Remove-ExpiredBackup -DbRoot ./shard-db -Dir acme -KeepLast 2 -Confirm:$false</code>
/// Per object: the two newest backup folders of each object under acme stay.
/// </example>
/// <example>
/// <summary>Apply a policy to what Get-Backup lists</summary>
/// <code>Get-Backup -Repository ./repo -Dir acme | Remove-ExpiredBackup -KeepWithin 30d -Confirm:$false</code>
/// The records name the scope (repository, tenant dir and object); the policy runs once per object they
/// name.
/// </example>
[Cmdlet(VerbsCommon.Remove, "ExpiredBackup", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High,
    DefaultParameterSetName = DefaultSet)]
[OutputType(typeof(RetentionItem))]
public sealed class RemoveExpiredBackupCommand : PSBackupRepositoryCmdlet
{
    private const string DefaultSet = "Default";
    private readonly Dictionary<string, RemoveExpiredBackupOptions> _scopes = new(StringComparer.Ordinal);

    /// <summary>The repository: a folder or s3://bucket/prefix.</summary>
    /// <remarks>The source parameters are in every set, optional and without null validation:
    /// Get-Backup's records carry all of them and some are null; exactly one is checked per record.</remarks>
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    public string? Repository { get; set; }

    /// <summary>A data directory: prune &lt;DataDir&gt;/backups/&lt;Namespace&gt; (snapshots and shipped WAL).</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? DataDir { get; set; }

    /// <summary>An object store root: prune the local object backups of -Dir.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? DbRoot { get; set; }

    /// <summary>Required with -DataDir; with -Repository, only this namespace's snapshots and WAL.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(NamespaceCompleter))]
    public string? Namespace { get; set; }

    /// <summary>Required with -DbRoot; with -Repository, only this tenant dir's object backups.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(DirCompleter))]
    public string? Dir { get; set; }

    /// <summary>Only this object's backups.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(ObjectCompleter))]
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
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? PackGracePeriod { get; set; }

    /// <summary>Remove without asking for confirmation (for scheduled jobs: a non-interactive
    /// host cannot answer the ConfirmImpact High prompt). -WhatIf still only lists.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    protected override bool SkipConfirmation => Force.IsPresent;

    protected override void PrepareRecord()
    {
        bool repository = !string.IsNullOrEmpty(Repository), dataDir = !string.IsNullOrEmpty(DataDir), dbRoot = !string.IsNullOrEmpty(DbRoot);
        RequireRepositoryForOptions(Repository);
        if ((repository ? 1 : 0) + (dataDir ? 1 : 0) + (dbRoot ? 1 : 0) != 1)
        {
            ThrowTerminatingError(ErrorMapping.ToErrorRecord(new InvalidInputException("AmbiguousBackupSource",
                "Say what to prune: -Repository (a repository), -DataDir with -Namespace (a namespace's local snapshots and WAL), or -DbRoot with -Dir (local object backups); exactly one of them, or pipe Get-Backup's records. Nothing was removed.", null)));
        }
        if ((dbRoot && !string.IsNullOrEmpty(Namespace)) || (dataDir && (!string.IsNullOrEmpty(Dir) || !string.IsNullOrEmpty(Object))))
        {
            ThrowTerminatingError(ErrorMapping.ToErrorRecord(new InvalidInputException("ScopeMismatch", dbRoot
                ? "-Namespace applies to -Repository or -DataDir; local object backups (-DbRoot) are scoped by -Dir and -Object. Nothing was removed."
                : "-Dir and -Object apply to -Repository or -DbRoot; a data directory's backups (-DataDir) are scoped by -Namespace. Nothing was removed.", null)));
        }
        if (!repository && PackGracePeriod is not null)
        {
            ThrowTerminatingError(ErrorMapping.ToErrorRecord(new InvalidInputException("RepositoryOptionWithoutRepository",
                "-PackGracePeriod only applies to a repository. Give -Repository, or drop -PackGracePeriod. Nothing was removed.", null)));
        }
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
            var options = new RemoveExpiredBackupOptions
            {
                Repository = repository ? RepositoryTargetFor(Repository) : null,
                DataDir = dataDir ? ResolveFileSystemPath(DataDir!, nameof(DataDir)) : null,
                DbRoot = dbRoot ? ResolveFileSystemPath(DbRoot!, nameof(DbRoot)) : null,
                Namespace = string.IsNullOrEmpty(Namespace) ? null : Namespace,
                Dir = string.IsNullOrEmpty(Dir) ? null : Dir,
                Object = string.IsNullOrEmpty(Object) ? null : Object,
                Policy = policy,
                PackGracePeriod = PackGracePeriod is null ? TimeSpan.FromHours(1) : Durations.Parse(PackGracePeriod),
            };
            // One run per scope, however many piped records name it.
            _scopes.TryAdd($"{options.Repository?.Location}|{options.DataDir}|{options.DbRoot}|{options.Namespace}|{options.Dir}|{options.Object}", options);
        }
        catch (InvalidInputException e)
        {
            // A bad policy is a setup failure: nothing is read or removed.
            ThrowTerminatingError(ErrorMapping.ToErrorRecord(e));
        }
    }

    /// <summary>Collecting only: the policy runs once all input arrived.</summary>
    protected override Task ProcessRecordAsync() => Task.CompletedTask;

    protected override async Task EndProcessingAsync()
    {
        foreach (RemoveExpiredBackupOptions options in _scopes.Values)
        {
            foreach (RetentionItem item in await RetentionOperations.RemoveExpiredAsync(options, CreateContext()).ConfigureAwait(false))
            {
                await WriteObjectAsync(item).ConfigureAwait(false);
            }
        }
    }
}
