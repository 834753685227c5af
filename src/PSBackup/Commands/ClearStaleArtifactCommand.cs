using System.Management.Automation;
using PSBackup.Engine.ObjectStore;

namespace PSBackup.Commands;

/// <summary>The startup sweep: removes stale <c>.new</c>/<c>.old</c>/<c>.tmp</c> artifacts under a
/// root. With -WhatIf it lists them and removes nothing.</summary>
/// <cli>sweep</cli>
/// <example>
/// <summary>List what the startup sweep would remove</summary>
/// <code>Clear-StaleArtifact -Root ./shard-db -WhatIf</code>
/// Lists every stale .new, .old and .tmp artifact under the database root (what an interrupted rebuild
/// or backup left) and removes nothing.
/// </example>
/// <example>
/// <summary>Sweep a database root before the database starts</summary>
/// <code>Clear-StaleArtifact -Root ./shard-db -Confirm:$false</code>
/// The startup sweep as a service unit or scheduled task runs it: -Confirm:$false because nobody is
/// there to answer. Each removed artifact is written as a StaleArtifact with Removed = True.
/// </example>
[Cmdlet(VerbsCommon.Clear, "StaleArtifact", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High,
    DefaultParameterSetName = DefaultSet)]
[OutputType(typeof(StaleArtifact))]
public sealed class ClearStaleArtifactCommand : PSBackupCmdlet
{
    private const string DefaultSet = "Default";
    private string _root = "";

    /// <summary>The folder to sweep (a database root, an object, a data directory).</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true,
        ParameterSetName = DefaultSet)]
    [Alias("DbRoot", "DataDir")]
    [ValidateNotNullOrEmpty]
    public string Root { get; set; } = "";

    /// <summary>Remove without asking for confirmation (for scheduled jobs: a non-interactive
    /// host cannot answer the ConfirmImpact High prompt). -WhatIf still only lists.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    protected override bool SkipConfirmation => Force.IsPresent;

    protected override void PrepareRecord() => _root = ResolveFileSystemPath(Root, nameof(Root));

    protected override async Task ProcessRecordAsync()
    {
        PostWriteVerbose($"Sweeping stale artifacts under '{_root}'.");
        IReadOnlyList<StaleArtifact> artifacts = await ObjectOperations
            .ClearStaleArtifactsAsync(new ClearStaleArtifactOptions(_root), CreateContext())
            .ConfigureAwait(false);
        foreach (StaleArtifact artifact in artifacts)
        {
            await WriteObjectAsync(artifact).ConfigureAwait(false);
        }
    }
}
