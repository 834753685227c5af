using System.Text.RegularExpressions;
using PSBackup.Cli;
using SclCommand = System.CommandLine.Command;

namespace PSBackup.Engine.Tests.Module;

/// <summary>docs/cli.md is the CLI's reference for scripts: it lists every command the CLI has (and
/// none it lacks), every exit code ExitCodes defines, and every PSBACKUP_ environment variable the
/// source reads.</summary>
public sealed partial class CliDocsTests
{
    private static string Doc() => File.ReadAllText(Path.Combine(ModuleParityTests.FindRepoRoot(), "docs", "cli.md"));

    private static IEnumerable<string> Leaves(SclCommand command, string prefix)
    {
        foreach (SclCommand sub in command.Subcommands)
        {
            string path = prefix.Length == 0 ? sub.Name : $"{prefix} {sub.Name}";
            if (sub.Subcommands.Count == 0)
            {
                yield return path;
            }
            else
            {
                foreach (string leaf in Leaves(sub, path))
                {
                    yield return leaf;
                }
            }
        }
    }

    [Fact]
    public void The_commands_table_lists_exactly_the_commands_the_CLI_has()
    {
        var commands = Leaves(CliApp.BuildRootCommand(), "").ToHashSet(StringComparer.Ordinal);
        Assert.True(commands.Count >= 19, $"Only {commands.Count} commands found: the walk is broken.");
        var listed = CommandRow().Matches(Doc()).Select(m => m.Groups[1].Value).ToHashSet(StringComparer.Ordinal);
        Assert.True(commands.SetEquals(listed),
            $"docs/cli.md's command table differs from the CLI: missing {string.Join(", ", commands.Except(listed))}; not in the CLI {string.Join(", ", listed.Except(commands))}.");
        var jsonRows = JsonRow().Matches(Doc()).Select(m => m.Groups[1].Value).ToHashSet(StringComparer.Ordinal);
        var withJson = commands.Where(c => c is not "repo init" and not "key new" and not "metrics" and not "remove").ToHashSet(StringComparer.Ordinal);
        Assert.True(withJson.IsSubsetOf(jsonRows), $"docs/cli.md gives no JSON document for {string.Join(", ", withJson.Except(jsonRows))}.");
    }

    [Fact]
    public void Every_exit_code_and_environment_variable_is_documented()
    {
        string doc = Doc();
        var codes = typeof(ExitCodes).GetFields().Where(f => f.IsLiteral).Select(f => (int)f.GetRawConstantValue()!).ToHashSet();
        var listed = ExitRow().Matches(doc).Select(m => int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)).ToHashSet();
        Assert.True(codes.SetEquals(listed), $"docs/cli.md's exit codes ({string.Join(", ", listed.Order())}) differ from ExitCodes ({string.Join(", ", codes.Order())}).");

        string root = ModuleParityTests.FindRepoRoot();
        var variables = Directory.EnumerateFiles(Path.Combine(root, "src"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .SelectMany(f => Variable().Matches(File.ReadAllText(f)).Select(m => m.Value))
            .ToHashSet(StringComparer.Ordinal);
        Assert.True(variables.Count >= 5, "Too few PSBACKUP_ variables found in src/: the scanner is broken.");
        string[] missing = variables.Where(v => !doc.Contains($"`{v}`", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToArray();
        Assert.True(missing.Length == 0, $"docs/cli.md's Environment table does not name {string.Join(", ", missing)}.");
    }

    [GeneratedRegex(@"^\| `([a-z -]+)` \| \[", RegexOptions.Multiline)]
    private static partial Regex CommandRow();

    [GeneratedRegex(@"^\| `([a-z -]+)` \| [^|\n]*`\{", RegexOptions.Multiline)]
    private static partial Regex JsonRow();

    [GeneratedRegex(@"^\| +(\d+) \|", RegexOptions.Multiline)]
    private static partial Regex ExitRow();

    [GeneratedRegex(@"PSBACKUP_[A-Z_]*[A-Z]")]
    private static partial Regex Variable();
}
