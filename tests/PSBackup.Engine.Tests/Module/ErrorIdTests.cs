using System.Text.RegularExpressions;

namespace PSBackup.Engine.Tests.Module;

/// <summary>docs/errors.md is the canonical list of error ids: every id the source can raise is
/// listed there with its kind, and every listed id is raised somewhere.</summary>
public sealed partial class ErrorIdTests
{
    private static readonly Dictionary<string, string> KindOfType = new(StringComparer.Ordinal)
    {
        ["InvalidInputException"] = "InvalidArgument",
        ["NotFoundException"] = "NotFound",
        ["IntegrityException"] = "Integrity",
        ["RepositoryIntegrityException"] = "Integrity",
        ["ConflictException"] = "Conflict",
        ["OperationFailedException"] = "Failed",
    };

    [Fact]
    public void Every_error_id_the_source_raises_is_listed_with_its_kind_and_every_listed_id_is_raised()
    {
        string root = ModuleParityTests.FindRepoRoot();
        var raised = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        var literals = new HashSet<string>(StringComparer.Ordinal);
        foreach (string file in Directory.EnumerateFiles(Path.Combine(root, "src"), "*.cs", SearchOption.AllDirectories)
                     .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)))
        {
            string text = File.ReadAllText(file);
            foreach (Match m in Literal().Matches(text))
            {
                literals.Add(m.Groups[1].Value);
            }
            foreach (Match m in Raise().Matches(text))
            {
                string kind = m.Groups["kind"].Success ? m.Groups["kind"].Value : KindOfType.GetValueOrDefault(m.Groups["type"].Value, "?");
                Add(raised, m.Groups["id"].Value, kind);
            }
            foreach (Match m in TargetTyped().Matches(text))
            {
                Add(raised, m.Groups["id"].Value, "?");
            }
            foreach (Match m in Mapped().Matches(text))
            {
                Add(raised, m.Groups["id"].Value, "?");
            }
        }
        Assert.True(raised.Count > 100, $"Only {raised.Count} error ids found in src/: the scanner is broken.");

        string doc = File.ReadAllText(Path.Combine(root, "docs", "errors.md"));
        var listed = Row().Matches(doc).ToDictionary(m => m.Groups["id"].Value, m => m.Groups["kind"].Value, StringComparer.Ordinal);
        string[] missing = raised.Keys.Where(id => !listed.ContainsKey(id)).Order(StringComparer.Ordinal).ToArray();
        Assert.True(missing.Length == 0, $"docs/errors.md does not list the error id(s) {string.Join(", ", missing)}: add a row (id, kind, exit code, meaning).");
        string[] stale = listed.Keys.Where(id => !literals.Contains(id)).Order(StringComparer.Ordinal).ToArray();
        Assert.True(stale.Length == 0, $"docs/errors.md lists id(s) no source raises: {string.Join(", ", stale)}.");
        foreach ((string id, HashSet<string> kinds) in raised)
        {
            var known = kinds.Where(k => k != "?").ToHashSet();
            Assert.True(known.Count == 0 || known.Contains(listed[id]), $"docs/errors.md gives '{id}' the kind {listed[id]}; the source raises it as {string.Join("/", known)}.");
        }
    }

    private static void Add(Dictionary<string, HashSet<string>> ids, string id, string kind)
    {
        if (!ids.TryGetValue(id, out HashSet<string>? kinds))
        {
            ids[id] = kinds = [];
        }
        kinds.Add(kind);
    }

    /// <summary><c>new ConflictException("Id", ...)</c>, <c>PSBackupException(ErrorKind.X, "Id", ...)</c>, <c>IntegrityException("WalGap", ...)</c>.</summary>
    [GeneratedRegex(@"(?<type>\w+Exception)\(\s*(?:ErrorKind\.(?<kind>\w+),\s*)?""(?<id>[A-Z][A-Za-z0-9]+)""\s*,")]
    private static partial Regex Raise();

    /// <summary>A target-typed <c>new("Id", $"message ...")</c>.</summary>
    [GeneratedRegex(@"new\(\s*""(?<id>[A-Z][A-Za-z0-9]+)""\s*,\s*\$?""")]
    private static partial Regex TargetTyped();

    /// <summary>ErrorMapping's ids for exceptions that are not the engine's: <c>new ErrorRecord(e, "Id", ...)</c>.</summary>
    [GeneratedRegex(@"ErrorRecord\(\w+,\s*""(?<id>[A-Z][A-Za-z0-9]+)""")]
    private static partial Regex Mapped();

    [GeneratedRegex(@"""([A-Z][A-Za-z0-9]+)""")]
    private static partial Regex Literal();

    [GeneratedRegex(@"(?m)^\| `(?<id>[A-Za-z0-9]+)` \| (?<kind>\w+) \|")]
    private static partial Regex Row();
}
