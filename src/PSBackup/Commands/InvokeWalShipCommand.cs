using System.Management.Automation;
using PSBackup.Engine;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Wal;

namespace PSBackup.Commands;

/// <summary>Copies sealed WAL segments with id greater than -AfterSegmentId into -BackupDir
/// (relative to <c>&lt;dataDir&gt;/backups/&lt;ns&gt;</c>), or with -Repository every sealed segment the
/// repository does not hold yet (no state file); one <see cref="ShippedSegment"/> per segment.</summary>
/// <cli>wal ship</cli>
/// <example>
/// <summary>Archive sealed segments beside the data</summary>
/// <code>Invoke-WalShip -DataDir ./unison -Namespace users -BackupDir wal/archive</code>
/// The seed's POST /wal/backup: every sealed segment is copied (verified) into
/// &lt;DataDir&gt;/backups/users/wal/archive; -AfterSegmentId ships only newer ones. The active segment
/// is never shipped as sealed.
/// </example>
/// <example>
/// <summary>Ship to a repository, with no state file</summary>
/// <code>Invoke-WalShip -DataDir ./unison -Namespace users -Repository ./repo</code>
/// Ships every sealed segment the repository does not hold yet; running it again ships nothing new. A
/// hole in the segment ids is refused as WalGap and recorded for Get-BackupHealth.
/// </example>
/// <example>
/// <summary>Ship every namespace from one job</summary>
/// <code>'users', 'events' | ForEach-Object { Invoke-WalShip -DataDir ./unison -Namespace $_ -Repository ./repo }</code>
/// One call per namespace; a failure of one is an error record and the others still ship.
/// </example>
[Cmdlet(VerbsLifecycle.Invoke, "WalShip", SupportsShouldProcess = true, DefaultParameterSetName = DefaultSet)]
[OutputType(typeof(ShippedSegment))]
public sealed class InvokeWalShipCommand : PSBackupRepositoryOptionsCmdlet
{
    private const string DefaultSet = "Default";
    private string _dataDir = "";

    /// <summary>The database data directory holding one folder per namespace.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string DataDir { get; set; } = "";

    /// <summary>The namespace whose sealed WAL segments are shipped.</summary>
    [Parameter(Mandatory = true, Position = 1, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(NamespaceCompleter))]
    public string Namespace { get; set; } = "";

    /// <summary>Relative to <c>&lt;dataDir&gt;/backups/&lt;ns&gt;</c>, e.g. <c>wal/archive</c>.</summary>
    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true, ParameterSetName = DefaultSet)]
    [ValidateNotNullOrEmpty]
    public string BackupDir { get; set; } = "";

    /// <summary>Only sealed segments with a greater id are shipped; 0 (the default) ships all.</summary>
    [Parameter]
    [ValidateRange(0L, long.MaxValue)]
    public long AfterSegmentId { get; set; }

    /// <summary>Ship to this repository (a folder or s3://bucket/prefix) instead of -BackupDir.</summary>
    [Parameter(Mandatory = true, ValueFromPipelineByPropertyName = true, ParameterSetName = RepositorySet)]
    [ValidateNotNullOrEmpty]
    public string Repository { get; set; } = "";

    /// <summary>UnisonDB's HTTP API (http://host:port): the server copies its sealed segments with
    /// <c>POST /api/v1/{namespace}/wal/backup</c>; PSBackup verifies and archives them.</summary>
    [Parameter]
    [ValidateNotNull]
    public Uri? Endpoint { get; set; }

    /// <summary>How long to wait for the server's reply, in seconds; 1800 (30 minutes) by default.</summary>
    [Parameter]
    [ValidateRange(1, 7 * 24 * 3600)]
    public int? EndpointTimeoutSeconds { get; set; }

    /// <summary>Ship sealed segments only, as the seed's runbook did: no partial of the active
    /// segment. By default the active segment's valid prefix is archived too (a partial:
    /// <c>&lt;segment&gt;.partial-&lt;observed UTC&gt;</c> in -BackupDir, ref
    /// <c>wal/&lt;ns&gt;/&lt;id&gt;.partial-&lt;observed&gt;</c> in a repository), so the recovery point
    /// is the last ship, not the last sealed segment.</summary>
    [Parameter]
    public SwitchParameter SealedOnly { get; set; }

    /// <summary>Keep shipping until stopped (Ctrl+C, SIGTERM, a service stop): poll the live WAL
    /// every -Interval (its listing and the newest segment's header only) and ship partials and
    /// newly sealed segments as they appear. One result per shipped item; -Verbose prints a lag
    /// line per pass. Storage errors are retried with backoff and jitter, never end the run; bad
    /// input, a wrong key and a repository that is not there when it starts end it at once.</summary>
    [Parameter]
    public SwitchParameter Continuous { get; set; }

    /// <summary>With -Continuous: how often the live WAL is polled, written like other durations
    /// ("1s", "5s", "500ms", "1min"); 5s by default, 100ms to 1d.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Interval { get; set; }

    /// <summary>S3 endpoint URL of a non-AWS repository store (path-style addressing).</summary>
    [Parameter(ParameterSetName = RepositorySet)]
    [ValidateNotNullOrEmpty]
    public string? S3Endpoint { get; set; }

    protected override string? S3EndpointValue => S3Endpoint;

    private RepositoryTarget? _repository;
    private TimeSpan? _timeout;

    private TimeSpan? _interval;

    protected override void PrepareRecord()
    {

        _dataDir = ResolveFileSystemPath(DataDir, nameof(DataDir));
        _repository = ParameterSetName == RepositorySet ? RepositoryTargetFor(Repository) : null;
        _timeout = EndpointTimeoutSeconds is int seconds ? TimeSpan.FromSeconds(seconds) : null;
    }

    protected override async Task ProcessRecordAsync()
    {
        var options = new InvokeWalShipOptions(_dataDir, Namespace, _repository is null ? BackupDir : null)
        {
            AfterSegmentId = AfterSegmentId,
            Repository = _repository,
            Endpoint = Endpoint,
            EndpointTimeout = _timeout,
            SealedOnly = SealedOnly.IsPresent,
        };
        if (Interval is not null && !Continuous.IsPresent)
        {
            throw new InvalidInputException("IntervalWithoutContinuous", "-Interval only applies with -Continuous. Add -Continuous, or drop -Interval.", Interval);
        }
        _interval = Interval is null ? null : Durations.Parse(Interval);
        if (Continuous.IsPresent)
        {
            var follow = new WalFollowOptions { Interval = _interval ?? new WalFollowOptions().Interval };
            // Each result is written before the follower goes on (a stopped pipeline stops it).
            await WalOperations.FollowAsync(options, follow, s => WriteObjectAsync(s).GetAwaiter().GetResult(),
                status => { if (status.Error is null) { PostWriteVerbose(status.ToString()); } else { PostWriteWarning(status.ToString()); } },
                CreateContext()).ConfigureAwait(false);
            return;
        }
        WalShipResult result = await WalOperations.ShipAsync(options, CreateContext()).ConfigureAwait(false);
        PostWriteVerbose($"Shipped {result.Backups.Count(b => !b.AlreadyPresent)} segment(s) of '{Namespace}' to '{result.Repository ?? result.BackupDir}'; {result.Backups.Count(b => b.AlreadyPresent)} already there.");
        foreach (ShippedSegment segment in result.Backups)
        {
            await WriteObjectAsync(segment).ConfigureAwait(false);
        }
    }
}
