using System.Management.Automation;
using PSBackup.Engine.ObjectStore;

namespace PSBackup.Commands;

/// <summary>The startup sweep: removes stale <c>.new</c>/<c>.old</c>/<c>.tmp</c> artifacts under a
/// root. With -WhatIf it lists them and removes nothing.</summary>
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
