using System.Management.Automation;
using PSBackup.Engine.Repository;

namespace PSBackup.Commands;

/// <summary>Checks a repository's structure and references; with -ReadData every stored byte.
/// Returns one report; Passed is false when it found errors (each names the backup and file).</summary>
/// <cli>check</cli>
/// <example>
/// <summary>Check a repository's structure</summary>
/// <code>Test-BackupRepository -Repository ./repo</code>
/// Reads every manifest, index and ref and checks that they agree; Passed is False when it found
/// errors, each also written as a warning.
/// </example>
/// <example>
/// <summary>Verify every stored byte</summary>
/// <code>$report = Test-BackupRepository -Repository ./repo -ReadData
/// $report.Errors | Format-Table Code, BackupId, File</code>
/// Downloads every pack and checks every frame and chunk; each error names the backup and file it
/// affects.
/// </example>
[Cmdlet(VerbsDiagnostic.Test, "BackupRepository", DefaultParameterSetName = RepositorySet)]
[OutputType(typeof(RepositoryCheckResult))]
public sealed class TestBackupRepositoryCommand : PSBackupRepositoryCmdlet
{
    private RepositoryTarget? _repository;

    /// <summary>The repository: a folder or s3://bucket/prefix.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true, ParameterSetName = RepositorySet)]
    [ValidateNotNullOrEmpty]
    public string Repository { get; set; } = "";

    /// <summary>Download every pack and verify every frame and chunk.</summary>
    [Parameter(ParameterSetName = RepositorySet)]
    public SwitchParameter ReadData { get; set; }

    /// <summary>After writing the report, fail (a terminating error, RepositoryCheckFailed) when
    /// the check found errors, so a scheduled job's exit code says so.</summary>
    [Parameter(ParameterSetName = RepositorySet)]
    public SwitchParameter FailOnError { get; set; }

    private readonly List<string> _failed = [];

    protected override void PrepareRecord() => _repository = RepositoryTargetFor(Repository);

    protected override async Task ProcessRecordAsync()
    {
        RepositoryCheckResult result = await RepositoryCheckOperation.CheckAsync(
            new TestBackupRepositoryOptions(_repository!) { ReadData = ReadData.IsPresent }, CreateContext()).ConfigureAwait(false);
        foreach (RepositoryCheckFinding finding in result.Errors)
        {
            PostWriteWarning($"{finding.Code}: {finding.Message}");
        }
        foreach (RepositoryCheckFinding finding in result.Warnings)
        {
            PostWriteVerbose($"{finding.Code}: {finding.Message}");
        }
        await WriteObjectAsync(result).ConfigureAwait(false);
        if (!result.Passed)
        {
            lock (_failed)
            {
                _failed.Add($"{result.Repository} ({result.ErrorCount} error(s))");
            }
        }
    }

    protected override void EndProcessingOnPipelineThread()
    {
        if (FailOnError && _failed.Count > 0)
        {
            ThrowTerminatingError(ErrorMapping.ToErrorRecord(new Engine.IntegrityException("RepositoryCheckFailed",
                $"The repository check failed: {string.Join(", ", _failed)}; the warnings above name each damaged backup and file. Repair or restore from a copy (Sync-BackupRepository).")));
        }
    }
}
