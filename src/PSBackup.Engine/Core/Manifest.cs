using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;

namespace PSBackup.Engine;

/// <summary>One file of a local backup: its path relative to the backup, size and SHA-256.</summary>
public sealed record ManifestFile(string Path, long Size, string Sha256)
{
    /// <summary>The source file's mode, owner and time when the backup recorded them (repository
    /// store snapshots since format 2); a restore gives them back. Null: left as created.
    /// Not part of the local manifest's JSON (its format is the seed's; a local copy carries its
    /// metadata itself).</summary>
    [JsonIgnore]
    public FileMetadata? Metadata { get; init; }
}

/// <summary>Where a store snapshot stands in its namespace's WAL when it began (SPEC §2).</summary>
/// <remarks><see cref="AppliedLogIndex"/> is the last record the copy contains (UnisonDB: the log
/// index of the record at its checkpoint). <see cref="Checkpoint"/> is the store's own WAL
/// checkpoint when the store adapter reads one: replay starts by reading (and skipping) the
/// record at that position, so the WAL must be laid out from the checkpoint's segment.
/// <see cref="CompletedLogIndex"/> is the WAL's high-water mark when the copy had finished: the
/// copy holds no record after it, which bounds a snapshot whose adapter knows no applied index.</remarks>
public sealed record WalPosition(
    IReadOnlyList<long> SegmentIds,
    long? HighestLogIndex,
    long? AppliedLogIndex)
{
    public Snapshots.StoreCheckpoint? Checkpoint { get; init; }
    public long? CompletedLogIndex { get; init; }

    /// <summary>"applied 118, durable 120, segments 6-7": what a person reads in a table or list.</summary>
    public override string ToString()
    {
        var parts = new List<string>();
        if (AppliedLogIndex is long a) { parts.Add($"applied {a}"); }
        if (HighestLogIndex is long h) { parts.Add($"durable {h}"); }
        if (SegmentIds is { Count: > 0 } ids)
        {
            long lo = ids.Min(), hi = ids.Max();
            parts.Add(lo == hi ? $"segment {lo}" : ids.Count == hi - lo + 1 ? $"segments {lo}-{hi}" : $"segments {string.Join(",", ids.Order())}");
        }
        if (Checkpoint is not null) { parts.Add($"checkpoint {Checkpoint}"); }
        return parts.Count == 0 ? "no WAL" : string.Join(", ", parts);
    }
}

/// <summary>The JSON manifest written beside every local backup (object backup, store snapshot).
/// Versioned; read back as hostile input.</summary>
public sealed record BackupManifest
{
    public const int CurrentFormatVersion = 1;

    public int FormatVersion { get; init; } = CurrentFormatVersion;
    /// <summary>"object" or "snapshot".</summary>
    public required string Kind { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset? CompletedAt { get; init; }
    /// <summary>Where the backup was taken from (for people; never used as a path).</summary>
    public required string Source { get; init; }
    /// <summary>"Stable" or "Recent" for object backups.</summary>
    public string? Consistency { get; init; }
    public IReadOnlyList<string>? ChangedFiles { get; init; }
    public WalPosition? Wal { get; init; }
    /// <summary>Store snapshots: the store engine (<see cref="Snapshots.StoreEngines"/>: "bolt",
    /// "lmdb", "db"); it decides where a restore lays the files out. Null (older manifests): "db".</summary>
    public string? Store { get; init; }
    public required IReadOnlyList<ManifestFile> Files { get; init; }
    public string Tool { get; init; } = "PSBackup " + typeof(BackupManifest).Assembly.GetName().Version?.ToString(3);
}

/// <summary>Reads, writes and verifies <see cref="BackupManifest"/> files.</summary>
public static partial class ManifestIO
{
    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        TypeInfoResolver = EngineJsonContext.Default,
    };

    [GeneratedRegex("^[0-9a-f]{64}$")]
    private static partial Regex Sha256Pattern();

    /// <summary>Writes the manifest atomically (temp, fsync, rename, fsync dir).</summary>
    public static Task WriteAsync(string path, BackupManifest manifest, CancellationToken ct) =>
        Durable.WriteFileAsync(path, (s, c) => JsonSerializer.SerializeAsync(s, manifest, JsonInfo.Of<BackupManifest>(JsonOptions), c), ct);

    /// <summary>Reads and validates a manifest: known version, safe relative paths, sane sizes
    /// and hashes, no duplicates. Anything else is an integrity error naming the file.</summary>
    public static BackupManifest Read(string path)
    {
        if (!File.Exists(path))
        {
            throw new NotFoundException("ManifestNotFound", $"The manifest '{path}' does not exist; the backup is incomplete or not a PSBackup backup.", path);
        }
        BackupManifest? manifest;
        try
        {
            using var stream = SpecialFiles.OpenRegular(path, 1 << 16, FileOptions.None);
            manifest = JsonSerializer.Deserialize(stream, JsonInfo.Of<BackupManifest>(JsonOptions));
        }
        catch (JsonException e)
        {
            throw new IntegrityException("ManifestCorrupt", $"The manifest '{path}' is not valid JSON ({e.Message}); the backup cannot be trusted.", path, e);
        }
        if (manifest is null || manifest.Files is null)
        {
            throw new IntegrityException("ManifestCorrupt", $"The manifest '{path}' is empty or has no file list; the backup cannot be trusted.", path);
        }
        if (manifest.FormatVersion != BackupManifest.CurrentFormatVersion)
        {
            throw new IntegrityException("ManifestVersion", $"The manifest '{path}' has format version {manifest.FormatVersion}; this PSBackup reads version {BackupManifest.CurrentFormatVersion}. Use a matching PSBackup version.", path);
        }
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (ManifestFile file in manifest.Files)
        {
            string rel;
            try
            {
                rel = SafePath.ValidateRelativePath(file?.Path, "manifest entry");
            }
            catch (InvalidInputException e)
            {
                throw new IntegrityException("ManifestCorrupt", $"The manifest '{path}' lists an unsafe path: {e.Message}", path, e);
            }
            if (file!.Size < 0 || file.Sha256 is null || !Sha256Pattern().IsMatch(file.Sha256) || !seen.Add(rel))
            {
                throw new IntegrityException("ManifestCorrupt", $"The manifest '{path}' has an invalid entry for '{SafePath.Printable(rel)}' (size, hash or duplicate); the backup cannot be trusted.", path);
            }
        }
        return manifest;
    }

    /// <summary>Checks a backup tree (or single file) against its manifest: every listed file
    /// present with the right size and SHA-256, nothing extra. Throws an
    /// <see cref="IntegrityException"/> naming the backup and the first bad file.</summary>
    public static async Task VerifyAsync(string backupPath, BackupManifest manifest, OperationContext context, string activity)
    {
        var expected = manifest.Files.ToDictionary(f => f.Path, StringComparer.Ordinal);
        bool isDirectory = Directory.Exists(backupPath);
        if (isDirectory)
        {
            foreach (string file in Directory.EnumerateFileSystemEntries(backupPath, "*", SearchOption.AllDirectories))
            {
                if (Directory.Exists(file) && new FileInfo(file).LinkTarget is null)
                {
                    continue;
                }
                string rel = Path.GetRelativePath(backupPath, file).Replace(Path.DirectorySeparatorChar, '/');
                if (!expected.ContainsKey(rel))
                {
                    throw new IntegrityException("BackupFileUnexpected", $"Backup '{backupPath}' contains '{rel}', which its manifest does not list. The backup was altered; do not restore it.", file);
                }
            }
        }
        long total = manifest.Files.Sum(f => f.Size);
        long done = 0;
        foreach (ManifestFile entry in manifest.Files)
        {
            context.CancellationToken.ThrowIfCancellationRequested();
            string file = isDirectory ? SafePath.Combine(backupPath, entry.Path, "manifest entry") : backupPath;
            if (!File.Exists(file))
            {
                throw new IntegrityException("BackupFileMissing", $"Backup '{backupPath}' is missing '{entry.Path}', which its manifest lists. The backup is incomplete; do not restore it.", file);
            }
            ContentDigest digest = await FileCopy.HashAsync(file, context.CancellationToken).ConfigureAwait(false);
            if (digest.Bytes != entry.Size || !string.Equals(digest.Sha256, entry.Sha256, StringComparison.Ordinal))
            {
                throw new IntegrityException("BackupFileCorrupt",
                    $"Backup '{backupPath}' file '{entry.Path}' does not match its manifest (expected {entry.Size} bytes, SHA-256 {entry.Sha256[..12]}…; found {digest.Bytes} bytes, {digest.Sha256[..12]}…). The backup is damaged; do not restore it.",
                    file);
            }
            done += entry.Size;
            context.ReportBytes(activity, $"Verified {entry.Path}", done, total, entry.Path);
        }
    }
}
