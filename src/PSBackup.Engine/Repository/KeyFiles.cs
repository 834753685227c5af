using System.Runtime.Versioning;
using System.Security.AccessControl;
using System.Security.Cryptography;
using System.Security.Principal;
using PSBackup.Engine.Events;

namespace PSBackup.Engine.Repository;

/// <summary>What New-BackupKeyFile creates.</summary>
public sealed record NewKeyFileOptions(string Path)
{
    /// <summary>Replace an existing file (its repositories then need the old key, kept elsewhere).</summary>
    public bool Force { get; init; }
}

/// <summary>A key file as New-BackupKeyFile reports it; never its content.</summary>
public sealed record KeyFileInfo
{
    public required string Path { get; init; }
    /// <summary>Bytes in the file (the key material: base64 text of 64 random bytes).</summary>
    public required int Bytes { get; init; }
    /// <summary>The first 16 hex digits of the SHA-256 of the key, to tell key files apart without showing them.</summary>
    public required string Fingerprint { get; init; }
    /// <summary>"0600" on Unix; "owner only (ACL)" on Windows.</summary>
    public required string Permissions { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
}

/// <summary>Key files for unattended jobs: made with owner-only access, and checked when used.
/// A key file is 64 random bytes written as base64 text (88 characters, no line break), so the
/// same key also fits a text secret store (an Azure Automation credential or variable) and is
/// given back as -KeyFile's SecureString form byte for byte.</summary>
public static class KeyFiles
{
    /// <summary>Writes a new key file: a temp name created owner-only (mode 0600 on Unix; on
    /// Windows an ACL granting only the current user, inheritance removed), fsynced, then renamed
    /// into place. An existing file is refused without Force (KeyFileExists). Null when
    /// ShouldProcess declined.</summary>
    public static Task<KeyFileInfo?> NewAsync(NewKeyFileOptions options, OperationContext context) =>
        OperationRecorder.RunAsync(new OperationScope { Operation = "New-BackupKeyFile", Category = "repository", Target = options?.Path, History = false },
            context, _ => Task.FromResult(NewCore(options!, context)), r => r is null ? null : new OperationOutcome(0));

    private static KeyFileInfo? NewCore(NewKeyFileOptions options, OperationContext context)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(context);
        if (string.IsNullOrWhiteSpace(options.Path) || options.Path.Any(char.IsControl))
        {
            throw new InvalidInputException("InvalidPath", "The key file path is empty or has control characters. Give a file path such as /etc/psbackup/repo.key.", options.Path);
        }
        string path = System.IO.Path.GetFullPath(options.Path);
        if (Directory.Exists(path))
        {
            throw new InvalidInputException("InvalidPath", $"'{path}' is a folder. Give the path of the key file to create.", path);
        }
        if (File.Exists(path) && !options.Force)
        {
            throw new ConflictException("KeyFileExists",
                $"The key file '{path}' already exists; replacing it would lock its repositories out. Keep it, choose another path, or give -Force (--force) after saving the old key elsewhere.", path);
        }
        string dir = System.IO.Path.GetDirectoryName(path)!;
        if (!Directory.Exists(dir))
        {
            throw new NotFoundException("KeyFileFolderMissing", $"The folder '{dir}' does not exist. Create it (owner-only, e.g. mkdir -m 700) first.", dir);
        }
        if (!context.ShouldProcess(path, "Create key file"))
        {
            return null;
        }
        byte[] key = RandomNumberGenerator.GetBytes(64);
        byte[] text = System.Text.Encoding.ASCII.GetBytes(Convert.ToBase64String(key));
        string temp = System.IO.Path.Combine(dir, $".psb-{Guid.NewGuid():N}.tmp");
        try
        {
            using (FileStream file = CreateOwnerOnly(temp))
            {
                file.Write(text);
                file.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: options.Force);
        }
        catch (IOException e) when (!options.Force && File.Exists(path))
        {
            throw new ConflictException("KeyFileExists", $"The key file '{path}' was created by someone else meanwhile ({e.Message}). Nothing was replaced.", path);
        }
        finally
        {
            Durable.TryDelete(temp);
        }
        Durable.FsyncDirectory(dir);
        return new KeyFileInfo
        {
            Path = path,
            Bytes = text.Length,
            Fingerprint = Hex.Encode(SHA256.HashData(text))[..16],
            Permissions = OperatingSystem.IsWindows() ? "owner only (ACL)" : "0600",
            CreatedAt = context.UtcNow,
        };
    }

    private static FileStream CreateOwnerOnly(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            return CreateWithOwnerAcl(path);
        }
        return new FileStream(path, PrivateFiles.CreateNew(bufferSize: 4096, options: FileOptions.None));
    }

    [SupportedOSPlatform("windows")]
    private static FileStream CreateWithOwnerAcl(string path)
    {
        var security = new FileSecurity();
        security.SetAccessRuleProtection(isProtected: true, preserveInheritance: false);
        SecurityIdentifier user = WindowsIdentity.GetCurrent().User!;
        security.SetOwner(user);
        security.AddAccessRule(new FileSystemAccessRule(user, FileSystemRights.FullControl, AccessControlType.Allow));
        return new FileInfo(path).Create(FileMode.CreateNew, FileSystemRights.Write | FileSystemRights.ReadData | FileSystemRights.Synchronize, FileShare.None, 4096, FileOptions.None, security);
    }

    /// <summary>Why a key file is readable by others (group or world on Unix; Everyone, Users or
    /// Authenticated Users on Windows), as a warning with the fix; null when it is not, or when
    /// its permissions cannot be read.</summary>
    public static string? PermissionWarning(string path)
    {
        try
        {
            if (!File.Exists(path))
            {
                return null;
            }
            if (OperatingSystem.IsWindows())
            {
                return WindowsWarning(path);
            }
            UnixFileMode mode = File.GetUnixFileMode(path);
            const UnixFileMode others = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite;
            if ((mode & others) == 0)
            {
                return null;
            }
            return $"The key file '{path}' can be read by {((mode & (UnixFileMode.OtherRead | UnixFileMode.OtherWrite)) != 0 ? "every user" : "its group")} " +
                $"(mode {Convert.ToString((int)mode & 0x1FF, 8).PadLeft(4, '0')}): whoever reads it can decrypt the backups. Run 'chmod 600 {path}'.";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException)
        {
            return null;
        }
    }

    [SupportedOSPlatform("windows")]
    private static string? WindowsWarning(string path)
    {
        var broad = new[] { WellKnownSidType.WorldSid, WellKnownSidType.BuiltinUsersSid, WellKnownSidType.AuthenticatedUserSid }
            .Select(t => new SecurityIdentifier(t, null)).ToHashSet();
        AuthorizationRuleCollection rules = new FileInfo(path).GetAccessControl().GetAccessRules(true, true, typeof(SecurityIdentifier));
        foreach (FileSystemAccessRule rule in rules)
        {
            if (rule.AccessControlType == AccessControlType.Allow && broad.Contains((SecurityIdentifier)rule.IdentityReference)
                && (rule.FileSystemRights & FileSystemRights.ReadData) != 0)
            {
                return $"The key file '{path}' can be read by {rule.IdentityReference.Translate(typeof(NTAccount))}: whoever reads it can decrypt the backups. " +
                    "Remove inherited access (icacls <file> /inheritance:r /grant:r \"%USERNAME%:F\") or make a new one with New-BackupKeyFile.";
            }
        }
        return null;
    }
}
