using PSBackup.Engine;

namespace PSBackup.Cli;

/// <summary>The CLI's exit codes, mapped from failures in this one place.</summary>
public static class ExitCodes
{
    public const int Success = 0;
    public const int Failed = 1;
    /// <summary>Bad input: an invalid name, path or value, or a command line that does not parse.</summary>
    public const int InvalidArgument = 2;
    public const int NotFound = 3;
    public const int Integrity = 4;
    public const int Conflict = 5;
    /// <summary><c>psbackup health</c> found at least one Critical alert (for schedulers).</summary>
    public const int Unhealthy = 6;
    /// <summary>Cancelled by Ctrl+C or SIGTERM (128 + SIGINT, as shells report it).</summary>
    public const int Cancelled = 130;

    public static int For(ErrorKind kind) => kind switch
    {
        ErrorKind.InvalidArgument => InvalidArgument,
        ErrorKind.NotFound => NotFound,
        ErrorKind.Integrity => Integrity,
        ErrorKind.Conflict => Conflict,
        _ => Failed,
    };

    public static int For(Exception exception) => exception switch
    {
        PSBackupException e => For(e.Kind),
        UnhealthyException => Unhealthy,
        OperationCanceledException => Cancelled,
        _ => Failed,
    };
}

/// <summary>Thrown by <c>psbackup health</c> after printing its alerts when any is Critical.</summary>
public sealed class UnhealthyException(string message) : Exception(message);
