using System.Management.Automation;
using PSBackup.Engine;
using PSBackup.Engine.Repository;

namespace PSBackup.Commands;

/// <summary>Repairs a repository (restic's repair index + repair packs): verifies the packs known to
/// be damaged (every pack with -ReadData), stores their intact chunks again, stores what is still
/// missing from -SourcePath, rebuilds the index from the sound packs, removes damaged packs, dangling
/// refs and stale temp files, and writes refs that backups lost. Writes one
/// <see cref="RepairResult"/>; a backup file that is still not restorable is a non-terminating error.</summary>
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
        PostWriteObject(result);
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
            PostWriteError(ErrorMapping.ToErrorRecord(RepositoryRepair.IncompleteError(result)));
        }
    }
}
