using System.Reflection;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace PSBackup.Engine.Tests.Support;

/// <summary>The test assembly's own entry point: an in-process xunit v2 runner for chosen test
/// classes, which is what the Windows leg runs under Wine (scripts/wine-test.sh), where vstest's
/// testhost does not. <c>dotnet test</c> never calls it (vstest loads the assembly itself).
/// <para><c>PSBackup.Engine.Tests.exe --class &lt;full class name&gt; [--class ...]</c> prints one line
/// per test and a closing <c>wine-xunit: N passed, N failed, N skipped</c>; exit 0 only when nothing
/// failed and something ran. Tests run one at a time (Wine's thread suspension is fragile under
/// load, WINE.md).</para></summary>
public static class InProcessRunner
{
    public static int Main(string[] args)
    {
        var classes = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < args.Length - 1; i++)
        {
            if (args[i] == "--class")
            {
                classes.Add(args[++i]);
            }
        }
        if (classes.Count == 0)
        {
            Console.Error.WriteLine("usage: PSBackup.Engine.Tests --class <full test class name> [--class ...]");
            return 2;
        }
        Assembly assembly = typeof(InProcessRunner).Assembly;
        var sink = new Sink();
        using var framework = new XunitTestFramework(sink);
        using ITestFrameworkDiscoverer discoverer = framework.GetDiscoverer(Reflector.Wrap(assembly));
        discoverer.Find(includeSourceInformation: false, sink, new Options());
        sink.DiscoveryDone.WaitOne();
        List<ITestCase> chosen = sink.Discovered.Where(c => classes.Contains(c.TestMethod.TestClass.Class.Name)).ToList();
        foreach (string missing in classes.Where(c => !chosen.Any(t => t.TestMethod.TestClass.Class.Name == c)))
        {
            Console.WriteLine($"[FAIL] {missing}: no such test class (or it has no tests)");
            sink.Failed++;
        }
        using ITestFrameworkExecutor executor = framework.GetExecutor(assembly.GetName());
        executor.RunTests(chosen, sink, new Options());
        sink.RunDone.WaitOne();
        Console.WriteLine($"wine-xunit: {sink.Passed} passed, {sink.Failed} failed, {sink.Skipped} skipped");
        return sink.Failed == 0 && sink.Passed > 0 ? 0 : 1;
    }

    private sealed class Sink : LongLivedMarshalByRefObject, IMessageSink
    {
        public List<ITestCase> Discovered { get; } = new();
        public ManualResetEvent DiscoveryDone { get; } = new(false);
        public ManualResetEvent RunDone { get; } = new(false);
        public int Passed;
        public int Failed;
        public int Skipped;

        public bool OnMessage(IMessageSinkMessage message)
        {
            switch (message)
            {
                case ITestCaseDiscoveryMessage found:
                    Discovered.Add(found.TestCase);
                    break;
                case IDiscoveryCompleteMessage:
                    DiscoveryDone.Set();
                    break;
                case ITestPassed passed:
                    Passed++;
                    Console.WriteLine($"[PASS] {passed.Test.DisplayName} ({passed.ExecutionTime:0.00} s)");
                    break;
                case ITestFailed failed:
                    Failed++;
                    Console.WriteLine($"[FAIL] {failed.Test.DisplayName}: {string.Join(" | ", failed.ExceptionTypes.Zip(failed.Messages, (t, m) => $"{t}: {m}"))}");
                    Console.WriteLine(string.Join(Environment.NewLine, failed.StackTraces.Where(s => s is not null)));
                    break;
                case ITestSkipped skipped:
                    Skipped++;
                    Console.WriteLine($"[SKIP] {skipped.Test.DisplayName}: {skipped.Reason}");
                    break;
                case ITestOutput output:
                    Console.Write(output.Output);
                    break;
                case IErrorMessage error:
                    Failed++;
                    Console.WriteLine($"[FAIL] {string.Join(" | ", error.ExceptionTypes.Zip(error.Messages, (t, m) => $"{t}: {m}"))}");
                    break;
                case ITestAssemblyFinished:
                    RunDone.Set();
                    break;
            }
            return true;
        }
    }

    /// <summary>Discovery and execution options: defaults, except one test at a time.</summary>
    private sealed class Options : ITestFrameworkDiscoveryOptions, ITestFrameworkExecutionOptions
    {
        private readonly Dictionary<string, object?> _values = new()
        {
            ["xunit.execution.DisableParallelization"] = true,
            ["xunit.execution.MaxParallelThreads"] = 1,
        };

        public TValue GetValue<TValue>(string name) => _values.TryGetValue(name, out object? v) && v is TValue t ? t : default!;

        public void SetValue<TValue>(string name, TValue value) => _values[name] = value;
    }
}
