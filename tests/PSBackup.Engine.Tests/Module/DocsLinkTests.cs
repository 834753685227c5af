using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace PSBackup.Engine.Tests.Module;

/// <summary>README.md is a front door that points into docs/: every relative link in the project's
/// markdown (README, CHANGELOG, docs/, examples/) must name a file or folder that exists, and its
/// #fragment a heading (or an explicit &lt;a id&gt;) of that file, with GitHub's anchor rules. Links
/// to web addresses are not followed (no network in CI).</summary>
public sealed partial class DocsLinkTests
{
    [Fact]
    public void Every_relative_link_in_the_projects_markdown_resolves_to_a_file_and_anchor()
    {
        string root = ModuleParityTests.FindRepoRoot();
        var files = new List<string> { Path.Combine(root, "README.md"), Path.Combine(root, "CHANGELOG.md") };
        foreach (string folder in new[] { "docs", "examples" })
        {
            files.AddRange(Directory.EnumerateFiles(Path.Combine(root, folder), "*.md", SearchOption.AllDirectories)
                .Where(f => !IsBuildOutput(root, f)));
        }

        int links = 0;
        var broken = new List<string>();
        foreach (string file in files)
        {
            foreach (MarkdownLinks.Link link in MarkdownLinks.Find(File.ReadAllText(file)))
            {
                links++;
                if (MarkdownLinks.Check(file, link.Target) is { } problem)
                {
                    broken.Add($"{Path.GetRelativePath(root, file)}:{link.Line}: ({link.Target}) {problem}");
                }
            }
        }

        Assert.True(files.Count >= 25 && links >= 60, $"Only {links} links in {files.Count} files: the scan is broken.");
        Assert.True(broken.Count == 0, $"{broken.Count} broken link(s); fix the target or the heading it names:\n{string.Join("\n", broken)}");
    }

    [Fact]
    public void The_checker_finds_a_missing_file_a_missing_anchor_and_accepts_GitHub_anchors()
    {
        string dir = Path.Combine(Path.GetTempPath(), "psbackup-links-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path.Combine(dir, "sub"));
        try
        {
            string other = Path.Combine(dir, "sub", "other.md");
            File.WriteAllText(other, """
                # Repair-BackupRepository — `psbackup repair`
                ## What -TargetTime restores (UTC)
                ## Notes
                ## Notes
                <a id="custom-id"></a>
                ```
                # not a heading
                ```
                """);
            string page = Path.Combine(dir, "page.md");
            File.WriteAllText(page, """
                # Page
                See [repair](sub/other.md#repair-backuprepository--psbackup-repair), [time](sub/other.md#what--targettime-restores-utc),
                [second notes](sub/other.md#notes-1), [custom](sub/other.md#custom-id), [self](#page), [folder](sub/),
                [web](https://example.com/x.md), `[code](missing.md)` and [titled](sub/other.md "a title").
                [gone](missing.md) [no anchor](sub/other.md#not-a-heading) [fenced heading](sub/other.md#not-a-heading-either)
                [ref]: sub/missing-too.md
                ```
                [inside a fence](missing-in-fence.md)
                ```
                """);

            var links = MarkdownLinks.Find(File.ReadAllText(page)).ToList();
            var problems = links.Where(l => MarkdownLinks.Check(page, l.Target) is not null).Select(l => l.Target).ToList();
            Assert.Equal(new[] { "missing.md", "sub/other.md#not-a-heading", "sub/other.md#not-a-heading-either", "sub/missing-too.md" }, problems);
            Assert.DoesNotContain(links, l => l.Target.Contains("in-fence", StringComparison.Ordinal) || l.Target == "missing.md" && l.Line == 4);
            Assert.Contains(links, l => l.Target == "sub/other.md" && l.Line == 4);
            Assert.Equal(new[] { "not-a-heading" }, MarkdownLinks.Anchors("# Not a heading\n").ToArray());
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static bool IsBuildOutput(string root, string file)
    {
        string relative = Path.GetRelativePath(root, file).Replace('\\', '/');
        return relative.Split('/').Any(part => part is "bin" or "obj" or "out" or "node_modules");
    }
}

/// <summary>The links of a markdown file and whether each resolves, by the rules GitHub renders
/// them with: inline links and images outside code, reference definitions, anchors slugged from
/// headings (lower case; letters, digits, '-', '_' and spaces kept; spaces become '-'; repeats get
/// -1, -2...).</summary>
internal static partial class MarkdownLinks
{
    internal sealed record Link(string Target, int Line);

    internal static IEnumerable<Link> Find(string markdown)
    {
        string[] lines = markdown.Split('\n');
        bool fenced = false;
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i];
            if (Fence().IsMatch(line))
            {
                fenced = !fenced;
                continue;
            }
            if (fenced)
            {
                continue;
            }
            string text = CodeSpan().Replace(line, "");
            foreach (Match m in InlineLink().Matches(text))
            {
                yield return new Link(Clean(m.Groups[1].Value), i + 1);
            }
            if (ReferenceDefinition().Match(text) is { Success: true } definition)
            {
                yield return new Link(Clean(definition.Groups[1].Value), i + 1);
            }
        }
    }

    /// <summary>Null when the link resolves, otherwise what is wrong with it.</summary>
    internal static string? Check(string fromFile, string target)
    {
        if (Scheme().IsMatch(target))
        {
            return null;
        }
        int hash = target.IndexOf('#', StringComparison.Ordinal);
        string pathPart = hash < 0 ? target : target[..hash];
        string? anchor = hash < 0 ? null : Uri.UnescapeDataString(target[(hash + 1)..]);
        string file = pathPart.Length == 0
            ? fromFile
            : Path.GetFullPath(Path.Combine(Path.GetDirectoryName(fromFile)!, Uri.UnescapeDataString(pathPart)));
        if (!File.Exists(file) && !Directory.Exists(file))
        {
            return "no such file or folder";
        }
        if (anchor is null || anchor.Length == 0)
        {
            return null;
        }
        if (!file.EndsWith(".md", StringComparison.OrdinalIgnoreCase) || !File.Exists(file))
        {
            return "an anchor into something that is not a markdown file";
        }
        return Anchors(File.ReadAllText(file)).Contains(anchor, StringComparer.Ordinal) ? null : $"no heading or <a id> '{anchor}' in {Path.GetFileName(file)}";
    }

    /// <summary>The anchors GitHub gives a markdown file: one per heading outside code fences, plus explicit ids.</summary>
    internal static IEnumerable<string> Anchors(string markdown)
    {
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        bool fenced = false;
        foreach (string line in markdown.Split('\n'))
        {
            if (Fence().IsMatch(line))
            {
                fenced = !fenced;
                continue;
            }
            if (fenced)
            {
                continue;
            }
            foreach (Match id in ExplicitId().Matches(line))
            {
                yield return id.Groups[1].Value;
            }
            if (Heading().Match(line) is not { Success: true } heading)
            {
                continue;
            }
            string slug = Slug(heading.Groups[1].Value);
            if (seen.TryGetValue(slug, out int count))
            {
                seen[slug] = count + 1;
                yield return $"{slug}-{count}";
            }
            else
            {
                seen[slug] = 1;
                yield return slug;
            }
        }
    }

    private static string Slug(string heading)
    {
        // The rendered text: link text without its target, code spans and emphasis without their markers.
        string text = InlineLinkWithText().Replace(heading.Trim().TrimEnd('#').Trim(), "$1");
        var slug = new StringBuilder();
        foreach (char c in text.ToLowerInvariant())
        {
            UnicodeCategory category = char.GetUnicodeCategory(c);
            if (c is '-' or ' ' or '_' || char.IsLetterOrDigit(c)
                || category is UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark)
            {
                slug.Append(c == ' ' ? '-' : c);
            }
        }
        return slug.ToString();
    }

    private static string Clean(string target)
    {
        string t = target.Trim();
        if (t.StartsWith('<') && t.EndsWith('>'))
        {
            t = t[1..^1];
        }
        int title = t.IndexOf(" \"", StringComparison.Ordinal);
        return title < 0 ? t : t[..title];
    }

    [GeneratedRegex(@"^\s{0,3}(```|~~~)")]
    private static partial Regex Fence();

    [GeneratedRegex(@"`[^`]*`")]
    private static partial Regex CodeSpan();

    [GeneratedRegex(@"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^()\s]+(?: ""[^""]*"")?)\)")]
    private static partial Regex InlineLink();

    [GeneratedRegex(@"\[([^\]]*)\]\([^)]*\)")]
    private static partial Regex InlineLinkWithText();

    [GeneratedRegex(@"^\s{0,3}\[[^\]]+\]:\s+(\S+)")]
    private static partial Regex ReferenceDefinition();

    [GeneratedRegex(@"^\s{0,3}#{1,6}\s+(.*)$")]
    private static partial Regex Heading();

    [GeneratedRegex(@"<a\s+(?:id|name)=""([^""]+)""")]
    private static partial Regex ExplicitId();

    [GeneratedRegex(@"^[a-zA-Z][a-zA-Z0-9+.-]*:")]
    private static partial Regex Scheme();
}
