using System.Management.Automation;
using PSBackup.Engine;
using PSBackup.Engine.Repository;

namespace PSBackup.Commands;

/// <summary>Repairs a repository (restic's repair index + repair packs): verifies the packs known to
/// be damaged (every pack with -ReadData), stores their intact chunks again, stores what is still
/// missing from -SourcePath, rebuilds the index from the sound packs, removes damaged packs, dangling
/// refs and stale temp files, and writes refs that backups lost. Writes one
/// <see cref="RepairResult"/>; a backup file that is still not restorable is a non-terminating error.</summary>
/// <cli>repair</cli>
/// <example>
/// <summary>Repair what check found</summary>
/// <code>Repair-BackupRepository -Repository ./repo</code>
/// Verifies the packs that check, a restore or a forced backup marked damaged, salvages their intact
/// chunks, rebuilds the index and removes dangling refs and stale temp files. Asks first (ConfirmImpact
/// High); -WhatIf shows what it would do.
/// </example>
/// <example>
/// <summary>Verify every pack and store lost data again from the live source</summary>
/// <code>Repair-BackupRepository -Repository ./repo -ReadData -SourcePath ./shard-db/acme/orders</code>
/// Reads every pack (not only those marked damaged); a chunk no sound pack holds is stored again from
/// the given folders when they still hold it. A file that stays unrestorable is reported as an error.
/// </example>
[Cmdlet(VerbsDiagnostic.Repair, "BackupRepository", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High,
    DefaultParameterSetName = RepositorySet)]
[OutputType(typeof(RepairResult))]
public sealed class RepairBackupRepositoryCommand : PSBackupRepositoryCmdlet
{
    private RepositoryTarget? _repository;
    private string[]? _sources;

    /// <summary>The repository: a folder or s3://bucket/prefix.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true, ParameterSetName = RepositorySet)]
    [ValidateNotNullOrEmpty]
    public string Repository { get; set; } = "";

    /// <summary>Folders or files that still hold the original data (the live object, the namespace's
    /// wal folder, the store): chunks the repository lacks are stored again from them.</summary>
    [Parameter(ParameterSetName = RepositorySet)]
    [ValidateNotNullOrEmpty]
    public string[]? SourcePath { get; set; }

    /// <summary>Verify every pack, not only the ones known to be damaged.</summary>
    [Parameter(ParameterSetName = RepositorySet)]
    public SwitchParameter ReadData { get; set; }

    protected override void PrepareRecord()
    {
        _repository = RepositoryTargetFor(Repository);
        _sources = SourcePath?.Select(p => ResolveFileSystemPath(p, nameof(SourcePath))).ToArray();
    }

    protected override async Task ProcessRecordAsync()
    {
        RepairResult result = await RepositoryRepair.RepairAsync(
            new RepairBackupRepositoryOptions(_repository!) { SourcePath = _sources, ReadData = ReadData.IsPresent }, CreateContext()).ConfigureAwait(false);
        await WriteObjectAsync(result).ConfigureAwait(false);
        if (result.Applied && !result.Repaired)
        {
            foreach (UnrepairedFile f in result.Unrepaired)
            {
                PostWriteWarning(f.Message);
            }
            foreach (string m in result.DamagedManifests)
            {
                PostWriteWarning(m);
            }
            await WriteErrorAsync(ErrorMapping.ToErrorRecord(RepositoryRepair.IncompleteError(result))).ConfigureAwait(false);
        }
    }
}
