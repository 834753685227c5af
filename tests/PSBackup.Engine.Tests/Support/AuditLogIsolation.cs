using System.Runtime.CompilerServices;
using PSBackup.Engine.Events;

namespace PSBackup.Engine.Tests.Support;

/// <summary>Every operation appends to the audit log; in the test process that is one temp file
/// (unless the environment already names one), never the user's own log.</summary>
internal static class AuditLogIsolation
{
    [ModuleInitializer]
    internal static void Initialize()
    {
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable(AuditLog.PathVariable)))
        {
            Environment.SetEnvironmentVariable(AuditLog.PathVariable,
                Path.Combine(Path.GetTempPath(), "psbackup-tests", $"audit-{Environment.ProcessId}.jsonl"));
        }
        // What clients remember about repositories (KnownRepositories) stays out of the user's folder too.
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable(PSBackup.Engine.Repository.KnownRepositories.PathVariable)))
        {
            Environment.SetEnvironmentVariable(PSBackup.Engine.Repository.KnownRepositories.PathVariable,
                Path.Combine(Path.GetTempPath(), "psbackup-tests", $"state-{Environment.ProcessId}"));
        }
    }
}
