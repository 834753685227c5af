using System.Management.Automation;
using PSBackup.Engine;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Retention;

namespace PSBackup.Commands;

/// <summary>Removes named backups: from a repository (with the packs only they used), from a
/// namespace's local backup root, or a tenant dir's local object backups. Refuses to break a
/// point-in-time chain (a WAL segment a snapshot's replay needs, the snapshot a span of WAL starts
/// from, the last snapshot of a namespace) unless -Force; -WhatIf shows what would go and says
/// when it would need -Force.
/// <para>Takes Get-Backup's records from the pipeline; all records of one source are removed
/// together after the last one arrived (one lock, one chain check, one pack reclaim), so removing
/// a snapshot together with the WAL only it needed is one consistent step.</para></summary>
/// <cli>remove</cli>
/// <example>
/// <summary>Remove an object's older backups</summary>
/// <code>Get-Backup -Repository ./repo -Dir acme -Object orders | Select-Object -Skip 1 | Remove-Backup -Confirm:$false</code>
/// Get-Backup lists newest first, so Select-Object -Skip 1 passes the older ones on; the packs only
/// they used are reclaimed once no remaining backup uses them (after -PackGracePeriod).
/// </example>
/// <example>
/// <summary>Preview removing a snapshot</summary>
/// <code>$oldest = Get-Backup -Repository ./repo -Kind StoreSnapshot | Select-Object -Last 1
/// Remove-Backup -Repository ./repo -BackupId $oldest.BackupId -WhatIf</code>
/// Nothing is removed. When the removal would make part of a point-in-time range unrestorable (here:
/// the last snapshot of its namespace), the preview says it needs -Force instead of failing.
/// </example>
/// <example>
/// <summary>Remove a local object backup folder</summary>
/// <code>Get-Backup -DbRoot ./shard-db -Dir acme -Object orders | Select-Object -Last 1 | Remove-Backup -Confirm:$false</code>
/// The manifest goes first, then the folder, so an interrupted removal leaves a folder Get-Backup shows
/// as incomplete, never one that looks whole.
/// </example>
[Cmdlet(VerbsCommon.Remove, "Backup", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, DefaultParameterSetName = DefaultSet)]
[OutputType(typeof(RetentionItem))]
public sealed class RemoveBackupCommand : PSBackupRepositoryCmdlet
{
    private const string DefaultSet = "Default";
    private readonly Dictionary<string, Batch> _batches = new(StringComparer.Ordinal);

    /// <summary>The repository (a folder or s3://bucket/prefix) holding the backups.</summary>
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    public string? Repository { get; set; }

    /// <summary>A data directory: remove snapshots or shipped WAL segments of -Namespace from its
    /// local backup root (&lt;DataDir&gt;/backups/&lt;Namespace&gt;).</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? DataDir { get; set; }

    /// <summary>With -DataDir: the namespace whose local backups are removed.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(NamespaceCompleter))]
    public string? Namespace { get; set; }

    /// <summary>An object store root: remove local object backups of -Dir.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    public string? DbRoot { get; set; }

    /// <summary>With -DbRoot: the tenant dir whose local object backups are removed.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(DirCompleter))]
    public string? Dir { get; set; }

    /// <summary>The backups, as Get-Backup names them: the manifest id in a repository, the
    /// snapshot's or segment's path under the namespace's backup root, the object backup's folder name.</summary>
    [Parameter(Mandatory = true, Position = 1, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(BackupIdCompleter))]
    public string[] BackupId { get; set; } = [];

    /// <summary>Remove even when it breaks a point-in-time chain (some log indexes restorable now
    /// would not be any more).</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    /// <summary>Repository only: packs the removed backups used stay when younger than this (a
    /// running backup may still commit a manifest that uses them). Default 1h; 0h reclaims at once.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? PackGracePeriod { get; set; }

    /// <summary>Per source (and namespace or tenant dir): the options and the ids collected.</summary>
    private sealed record Batch(RemoveBackupOptions Options, List<string> Ids);

    protected override void PrepareRecord()
    {
        bool repository = !string.IsNullOrEmpty(Repository), dataDir = !string.IsNullOrEmpty(DataDir), dbRoot = !string.IsNullOrEmpty(DbRoot);
        RequireRepositoryForOptions(Repository);
        if ((repository ? 1 : 0) + (dataDir ? 1 : 0) + (dbRoot ? 1 : 0) != 1)
        {
            ThrowTerminatingError(ErrorMapping.ToErrorRecord(new InvalidInputException("AmbiguousBackupSource",
                "Say where the backups are: -Repository, -DataDir with -Namespace, or -DbRoot with -Dir (exactly one), or pipe Get-Backup's records. Nothing was removed.", null)));
        }
        if (!repository && PackGracePeriod is not null)
        {
            ThrowTerminatingError(ErrorMapping.ToErrorRecord(new InvalidInputException("RepositoryOptionWithoutRepository",
                "-PackGracePeriod only applies to a repository. Give -Repository, or drop -PackGracePeriod. Nothing was removed.", null)));
        }
        TimeSpan grace = TimeSpan.FromHours(1);
        try
        {
            grace = PackGracePeriod is null ? grace : Durations.Parse(PackGracePeriod);
        }
        catch (InvalidInputException e)
        {
            ThrowTerminatingError(ErrorMapping.ToErrorRecord(e));
        }
        RemoveBackupOptions options = repository
            ? new RemoveBackupOptions { Repository = RepositoryTargetFor(Repository), BackupIds = [] }
            : dataDir
                ? new RemoveBackupOptions { DataDir = ResolveFileSystemPath(DataDir!, nameof(DataDir)), Namespace = Namespace, BackupIds = [] }
                : new RemoveBackupOptions { DbRoot = ResolveFileSystemPath(DbRoot!, nameof(DbRoot)), Dir = Dir, BackupIds = [] };
        string key = $"{options.Repository?.Location}|{options.DataDir}|{options.Namespace}|{options.DbRoot}|{options.Dir}";
        if (!_batches.TryGetValue(key, out Batch? batch))
        {
            _batches[key] = batch = new Batch(options with { Force = Force.IsPresent, PackGracePeriod = grace }, []);
        }
        batch.Ids.AddRange(BackupId);
    }

    /// <summary>Collecting only: the removal runs once all input arrived.</summary>
    protected override Task ProcessRecordAsync() => Task.CompletedTask;

    protected override async Task EndProcessingAsync()
    {
        foreach (Batch batch in _batches.Values)
        {
            IReadOnlyList<RetentionItem> items = await BackupRemoval.RemoveAsync(batch.Options with { BackupIds = batch.Ids }, CreateContext()).ConfigureAwait(false);
            foreach (RetentionItem item in items)
            {
                if (!item.Removed && item.Kind != RetentionItemKind.Pack && item.Reason.Contains("needs -Force", StringComparison.Ordinal))
                {
                    PostWriteWarning($"Removing {item.Id} {item.Reason[(item.Reason.IndexOf("breaks", StringComparison.Ordinal))..]}.");
                }
                await WriteObjectAsync(item).ConfigureAwait(false);
            }
        }
    }
}
