namespace PSBackup.Engine.Repository;

/// <summary>The passphrase or key file does not open any key of the repository (the key unwrap's
/// AES-GCM tag did not verify). Nothing has been written.</summary>
public sealed class RepositoryKeyException(string message, string? target = null)
    : PSBackupException(ErrorKind.InvalidArgument, "WrongRepositoryKey", message, target);

/// <summary>Stored repository bytes failed a check. Names the object and, where the damage
/// reaches a backup, the manifest id and the file path inside it.</summary>
public sealed class RepositoryIntegrityException(string errorId, string message, string? objectKey = null,
    string? manifestId = null, string? path = null, Exception? inner = null)
    : IntegrityException(errorId, message, path ?? manifestId ?? objectKey, inner)
{
    /// <summary>The storage key of the damaged object (pack, index, manifest, key, config).</summary>
    public string? ObjectKey { get; } = objectKey;
    /// <summary>The backup affected, when known.</summary>
    public string? ManifestId { get; } = manifestId;
    /// <summary>The file inside the backup affected, when known.</summary>
    public string? Path { get; } = path;
}
