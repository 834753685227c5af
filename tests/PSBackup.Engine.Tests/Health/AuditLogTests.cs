using System.Text;
using System.Text.Json;
using PSBackup.Engine.Events;
using PSBackup.Engine.Tests.Support;

namespace PSBackup.Engine.Tests.Health;

/// <summary>The audit log's append: whole lines, each once, whoever else writes. The
/// several-process case is tests/AuditLog.Tests.ps1 (4 pwsh writers).</summary>
public sealed class AuditLogTests
{
    private static AuditEntry Entry(string target, long bytes) => new()
    {
        Time = DateTimeOffset.UtcNow,
        Operation = "test",
        Target = target,
        Outcome = "success",
        Bytes = bytes,
    };

    [Fact]
    public void Threads_appending_at_once_leave_every_line_whole()
    {
        using var dir = new TestDirectory();
        string log = dir.Combine("audit.jsonl");
        string padding = new('x', 2000);
        Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, t =>
        {
            for (int i = 0; i < 200; i++)
            {
                AuditLog.Append(log, Entry($"t{t}/{i}/{padding}", i));
            }
        });
        string[] lines = File.ReadAllLines(log);
        Assert.Equal(1600, lines.Length);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (string line in lines)
        {
            using JsonDocument d = JsonDocument.Parse(line);
            string target = d.RootElement.GetProperty("target").GetString()!;
            Assert.True(seen.Add(target[..target.LastIndexOf('/')]));
        }
    }

    [Fact]
    public void A_line_torn_by_a_crash_is_closed_before_the_next_one()
    {
        using var dir = new TestDirectory();
        string log = dir.Combine("audit.jsonl");
        File.WriteAllText(log, "{\"time\":\"2026-01-01T00:00:00Z\",\"operation\":\"New-Obj");
        AuditLog.Append(log, Entry("after", 1));
        string[] lines = File.ReadAllLines(log);
        Assert.Equal(2, lines.Length);
        using JsonDocument d = JsonDocument.Parse(lines[1]);
        Assert.Equal("after", d.RootElement.GetProperty("target").GetString());
    }

    /// <summary>Another process's append holds the file (flock on Unix, a sharing mode on
    /// Windows); this one waits for it instead of writing over it, and gives up only after the wait.</summary>
    [Fact]
    public void An_append_waits_while_another_writer_holds_the_log_and_gives_up_only_after_the_wait()
    {
        using var dir = new TestDirectory();
        string log = dir.Combine("audit.jsonl");
        FileShare held = OperatingSystem.IsWindows() ? FileShare.Read | FileShare.Delete : FileShare.None;
        using (new FileStream(log, FileMode.OpenOrCreate, FileAccess.ReadWrite, held))
        {
            long start = Environment.TickCount64;
            Assert.ThrowsAny<IOException>(() => AuditLog.AppendLine(log, "{\"a\":0}\n"u8, TimeSpan.FromMilliseconds(300)));
            Assert.InRange(Environment.TickCount64 - start, 250, 20_000);
        }
        var holder = new FileStream(log, FileMode.OpenOrCreate, FileAccess.ReadWrite, held);
        Task release = Task.Run(async () =>
        {
            await Task.Delay(400);
            await holder.DisposeAsync();
        });
        AuditLog.AppendLine(log, Encoding.UTF8.GetBytes("{\"a\":1}\n"), TimeSpan.FromSeconds(30));
        Assert.True(release.IsCompleted);
        Assert.Equal(["{\"a\":1}"], File.ReadAllLines(log));
    }
}
