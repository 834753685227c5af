namespace PSBackup.Engine.Repository;

/// <summary>What Test-BackupRepository checks.</summary>
public sealed record TestBackupRepositoryOptions(RepositoryTarget Repository)
{
    /// <summary>Also download every pack and verify every frame and chunk (every stored byte).</summary>
    public bool ReadData { get; init; }
}

/// <summary>One problem a check found: which backup and file it affects where known, the stored
/// object, a stable code and a message that names the fix.</summary>
public sealed record RepositoryCheckFinding(string Severity, string Code, string? BackupId, string? File, string? ObjectKey, string Message)
{
    /// <summary>"Error PackMissing: ..." (what Format-List shows for a check result's Errors).</summary>
    public override string ToString() => $"{Severity} {Code}: {Message}";

    internal static RepositoryCheckFinding From(string severity, CheckIssue i) => new(severity, i.Code, i.ManifestId, i.Path, i.ObjectKey, i.Message);
}

/// <summary>The result of Test-BackupRepository. <see cref="Passed"/> when there are no errors;
/// warnings (packs left unreferenced by an interrupted backup) do not fail it.</summary>
public sealed record RepositoryCheckResult
{
    public required string Repository { get; init; }
    public required bool Passed { get; init; }
    public required bool ReadData { get; init; }
    public required IReadOnlyList<RepositoryCheckFinding> Errors { get; init; }
    public required IReadOnlyList<RepositoryCheckFinding> Warnings { get; init; }
    public int ErrorCount => Errors.Count;
    public int WarningCount => Warnings.Count;
    /// <summary>Manifests (backups) found.</summary>
    public required int Backups { get; init; }
    public required int Packs { get; init; }
    public required int Indexes { get; init; }
    public required int Refs { get; init; }
    public required long Chunks { get; init; }
    /// <summary>Bytes stored in packs, index objects and manifests.</summary>
    public required long StoredBytes { get; init; }
    /// <summary>Pack bytes downloaded and verified (0 without ReadData).</summary>
    public required long BytesRead { get; init; }
    /// <summary>Seconds the operation took (a number: ConvertTo-Json writes it as one).</summary>
    public required double Duration { get; init; }
}

/// <summary>Test-BackupRepository: one engine call over <see cref="Repository.CheckAsync"/>.</summary>
public static class RepositoryCheckOperation
{
    /// <summary>Opens the repository (a damaged config or key is an integrity error, a wrong key a
    /// key error) and checks it. Damage inside the repository never throws: it is in the result.</summary>
    public static async Task<RepositoryCheckResult> CheckAsync(TestBackupRepositoryOptions options, OperationContext context)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(context);
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        // No index load at open: the check reads and judges every index object itself, and reading
        // them twice was the single-core start of every check. With read-data, the packs' SHA-256s
        // start on the idle core as soon as the storage is open, beside the key derivation and the
        // index (docs/design.md, "Check").
        PackPrehash? prehash = null;
        OpenRepository? open = null;
        try
        {
            open = await RepositoryConnector.OpenAsync(options.Repository, context.CancellationToken, loadIndex: false,
                backend => prehash = options.ReadData ? PackPrehash.Start(backend, context.CancellationToken) : null).ConfigureAwait(false);
            RepositoryCheckReport report = await open.Repository.CheckAsync(options.ReadData, prehash, context.Progress, context.CancellationToken).ConfigureAwait(false);
            return Result(options, report, start);
        }
        finally
        {
            if (prehash is not null)
            {
                // Stopped and finished before the storage is closed. When the open itself fails, the
                // storage was closed first; a prehash runs only on a folder, whose Dispose frees nothing.
                await prehash.DisposeAsync().ConfigureAwait(false);
            }
            open?.Dispose();
        }
    }

    private static RepositoryCheckResult Result(TestBackupRepositoryOptions options, RepositoryCheckReport report, long start)
    {
        return new RepositoryCheckResult
        {
            Repository = options.Repository.Location,
            Passed = report.Ok,
            ReadData = report.ReadData,
            Errors = report.Errors.Select(i => RepositoryCheckFinding.From("Error", i)).ToList(),
            Warnings = report.Warnings.Select(i => RepositoryCheckFinding.From("Warning", i)).ToList(),
            Backups = report.Manifests,
            Packs = report.Packs,
            Indexes = report.Indexes,
            Refs = report.Refs,
            Chunks = report.Chunks,
            StoredBytes = report.StoredBytes,
            BytesRead = report.BytesRead,
            Duration = Durations.Seconds(System.Diagnostics.Stopwatch.GetElapsedTime(start)),
        };
    }
}
