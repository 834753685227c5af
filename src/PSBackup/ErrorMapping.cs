using System.Management.Automation;
using PSBackup.Engine;

namespace PSBackup;

/// <summary>The one place engine failures become PowerShell ErrorRecords. The error id is the
/// engine's stable <see cref="PSBackupException.ErrorId"/>; PowerShell appends the cmdlet's type
/// name, so scripts and Pester see e.g. <c>InvalidName,PSBackup.Commands.NewObjectBackupCommand</c>.</summary>
public static class ErrorMapping
{
    public static ErrorCategory ToCategory(ErrorKind kind) => kind switch
    {
        ErrorKind.InvalidArgument => ErrorCategory.InvalidArgument,
        ErrorKind.NotFound => ErrorCategory.ObjectNotFound,
        ErrorKind.Integrity => ErrorCategory.InvalidData,
        ErrorKind.Conflict => ErrorCategory.ResourceExists,
        ErrorKind.Failed => ErrorCategory.WriteError,
        _ => ErrorCategory.NotSpecified,
    };

    /// <summary>Failures that belong to one input item: reported with WriteError so the pipeline
    /// goes on. Setup failures (<see cref="IsSetupFailure"/>) are not: they are the call's. Anything
    /// else (a bug) is left to PowerShell.</summary>
    public static bool IsItemFailure(Exception e) =>
        (e is PSBackupException or IOException or UnauthorizedAccessException or NotImplementedException) && !IsSetupFailure(e);

    /// <summary>The repository could not be opened or locked (missing, locked by another process,
    /// wrong key): every other input item would fail the same way, so the cmdlet throws one
    /// terminating error and stops instead of writing one error per object or namespace.</summary>
    public static bool IsSetupFailure(Exception e) => e is PSBackupException { IsSetupFailure: true };

    public static ErrorRecord ToErrorRecord(Exception exception)
    {
        // PowerShell qualifies the id with the writing cmdlet's type name itself.
        return exception switch
        {
            PSBackupException e => new ErrorRecord(e, e.ErrorId, ToCategory(e.Kind), e.Target),
            UnauthorizedAccessException e => new ErrorRecord(e, "AccessDenied", ErrorCategory.PermissionDenied, null),
            FileNotFoundException e => new ErrorRecord(e, "FileNotFound", ErrorCategory.ObjectNotFound, e.FileName),
            DirectoryNotFoundException e => new ErrorRecord(e, "DirectoryNotFound", ErrorCategory.ObjectNotFound, null),
            IOException e => new ErrorRecord(e, "IOError", ErrorCategory.WriteError, null),
            NotImplementedException e => new ErrorRecord(e, "NotImplemented", ErrorCategory.NotImplemented, null),
            _ => new ErrorRecord(exception, exception.GetType().Name, ErrorCategory.NotSpecified, null),
        };
    }
}
