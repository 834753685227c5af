namespace PSBackup.Engine;

/// <summary>What kind of failure a user-facing error is; the CLI maps it to an exit code and
/// PowerShell to an ErrorCategory, in one place each.</summary>
public enum ErrorKind
{
    /// <summary>The caller passed something unusable (a bad path, name or value).</summary>
    InvalidArgument,
    /// <summary>A thing the caller named does not exist.</summary>
    NotFound,
    /// <summary>Stored or live bytes failed a check (checksum, structure, continuity).</summary>
    Integrity,
    /// <summary>The operation would overwrite or replace something it must not touch.</summary>
    Conflict,
    /// <summary>The operation could not complete for another reason (I/O, unstable source).</summary>
    Failed,
}

/// <summary>Base of every error a user can cause or must act on. The message names the problem
/// and the fix; <see cref="ErrorId"/> is stable for scripts and Pester's -ErrorId.</summary>
public partial class PSBackupException : Exception
{
    public PSBackupException(ErrorKind kind, string errorId, string message, string? target = null, Exception? inner = null)
        : base(Tidy(message), inner)
    {
        Kind = kind;
        ErrorId = errorId;
        Target = target;
    }

    /// <summary>One period where a message built from another message got two ("… relative path..
    /// The manifest …"): exactly two periods ending a sentence (before a space or the end) become
    /// one; an ellipsis and a quoted '..' are left alone.</summary>
    internal static string Tidy(string message) =>
        message is null ? message! : DoublePeriod().Replace(message, ".");

    [System.Text.RegularExpressions.GeneratedRegex(@"(?<![.'/\\])\.\.(?=\s|$)")]
    private static partial System.Text.RegularExpressions.Regex DoublePeriod();

    public ErrorKind Kind { get; }
    public string ErrorId { get; }
    /// <summary>The path, name or id the error is about, if any.</summary>
    public string? Target { get; }

    /// <summary>True when the failure is the call's, not one input item's: the repository could
    /// not be reached, opened or locked (missing, locked by another process, wrong key, bad
    /// credentials, damaged config). Every other item of the call would fail the same way, so the
    /// cmdlets make it one terminating error and the CLI one message, instead of one error per
    /// object or namespace. Set where the repository is opened (<see cref="Repository.RepositoryConnector"/>).</summary>
    public bool IsSetupFailure { get; private set; }

    /// <summary>Marks this as a setup failure; returns false, so it can sit in an exception
    /// filter (<c>catch (PSBackupException e) when (e.MarkSetupFailure())</c>) that never catches
    /// and so leaves the stack and the exception as they were.</summary>
    public bool MarkSetupFailure()
    {
        IsSetupFailure = true;
        return false;
    }
}

public sealed class InvalidInputException(string errorId, string message, string? target = null)
    : PSBackupException(ErrorKind.InvalidArgument, errorId, message, target);

public sealed class NotFoundException(string errorId, string message, string? target = null)
    : PSBackupException(ErrorKind.NotFound, errorId, message, target);

public class IntegrityException(string errorId, string message, string? target = null, Exception? inner = null)
    : PSBackupException(ErrorKind.Integrity, errorId, message, target, inner);

public sealed class ConflictException(string errorId, string message, string? target = null)
    : PSBackupException(ErrorKind.Conflict, errorId, message, target);

public sealed class OperationFailedException(string errorId, string message, string? target = null, Exception? inner = null)
    : PSBackupException(ErrorKind.Failed, errorId, message, target, inner);

/// <summary>A hole in a WAL: segment ids or log indexes that should be there and are not.</summary>
public sealed class WalGapException(string message, string target, IReadOnlyList<long> missingSegmentIds)
    : IntegrityException("WalGap", message, target)
{
    public IReadOnlyList<long> MissingSegmentIds { get; } = missingSegmentIds;
}
