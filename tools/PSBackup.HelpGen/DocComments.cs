using System.Text;
using System.Text.RegularExpressions;
using System.Xml.Linq;

namespace PSBackup.HelpGen;

/// <summary>One member's doc comment, rendered for help.</summary>
internal sealed record XmlDocMember(DocText Summary, IReadOnlyList<ExampleHelp> Examples, IReadOnlyList<string> SeeAlso, string? Value, string? Cli);

/// <summary>The compiler's XML documentation file (GenerateDocumentationFile), read as help.
/// Conventions: a class's &lt;summary&gt; is the cmdlet's description, its first sentence the synopsis;
/// &lt;example&gt; (a &lt;summary&gt; title, a &lt;code&gt; block, then remarks) is one example; &lt;seealso
/// cref&gt; a related link; &lt;cli&gt; the psbackup command. A parameter property's &lt;summary&gt; is its
/// description and &lt;value&gt; its default. &lt;remarks&gt; are notes for developers and stay out of help.</summary>
internal sealed partial class DocComments
{
    private readonly Dictionary<string, XElement> _members = new(StringComparer.Ordinal);
    private readonly Func<string, string?> _cmdletNameOf;

    public DocComments(string? path, Func<string, string?> cmdletNameOf)
    {
        _cmdletNameOf = cmdletNameOf;
        if (path is null || !File.Exists(path))
        {
            return;
        }
        foreach (XElement m in XDocument.Load(path).Descendants("member"))
        {
            if (m.Attribute("name")?.Value is { } name)
            {
                _members[name] = m;
            }
        }
    }

    public XmlDocMember? Member(string id)
    {
        if (!_members.TryGetValue(id, out XElement? m))
        {
            return null;
        }
        DocText summary = m.Element("summary") is { } s ? Render(s) : DocText.Empty;
        var examples = m.Elements("example").Select(Example).ToList();
        var seeAlso = m.Elements("seealso").Select(e => e.Attribute("cref")?.Value is { } cref ? Short(cref) : e.Value.Trim())
            .Where(x => x.Length > 0).ToList();
        string? value = m.Element("value") is { } v ? string.Join(" ", Render(v).Plain) : null;
        string? cli = m.Element("cli")?.Value.Trim();
        return new XmlDocMember(summary, examples, seeAlso, string.IsNullOrWhiteSpace(value) ? null : value, string.IsNullOrWhiteSpace(cli) ? null : cli);
    }

    private ExampleHelp Example(XElement e)
    {
        string title = e.Element("summary") is { } t ? string.Join(" ", Render(t).Plain) : "";
        string code = Dedent(e.Element("code")?.Value ?? "");
        var remarks = new XElement("remarks", e.Nodes().Where(n => n is not XElement x || (x.Name != "summary" && x.Name != "code")));
        DocText r = Render(remarks);
        return new ExampleHelp(title, code, r.Plain, r.Markdown);
    }

    /// <summary>Code as written in the comment, without the common indentation or blank edges.</summary>
    internal static string Dedent(string code)
    {
        var lines = code.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n').ToList();
        while (lines.Count > 0 && lines[0].Trim().Length == 0) { lines.RemoveAt(0); }
        while (lines.Count > 0 && lines[^1].Trim().Length == 0) { lines.RemoveAt(lines.Count - 1); }
        // The first line often starts right after <code> (no indentation of its own); the others
        // carry the comment's indentation: remove what they share.
        bool firstInline = code.Length > 0 && code[0] != '\n' && code[0] != '\r' && code[0] != ' ';
        var rest = firstInline ? lines.Skip(1) : lines;
        int indent = rest.Where(l => l.Trim().Length > 0).Select(l => l.Length - l.TrimStart(' ').Length).DefaultIfEmpty(0).Min();
        return string.Join("\n", lines.Select((l, i) => i == 0 && firstInline ? l.TrimEnd() : l.Length >= indent ? l[indent..].TrimEnd() : l.TrimEnd()));
    }

    /// <summary>Paragraphs of an element: &lt;para&gt; and &lt;code&gt; start new ones, list items are
    /// "- " paragraphs, inline tags become their text (markdown: &lt;c&gt; as code).</summary>
    internal DocText Render(XElement element)
    {
        var plain = new List<string>();
        var markdown = new List<string>();
        var p = new StringBuilder();
        var m = new StringBuilder();

        void Flush()
        {
            string a = Normalize(p.ToString());
            string b = Normalize(m.ToString());
            if (a.Length > 0)
            {
                plain.Add(a);
                markdown.Add(b);
            }
            p.Clear();
            m.Clear();
        }

        void Walk(XNode node)
        {
            switch (node)
            {
                case XText text:
                    p.Append(text.Value);
                    m.Append(EscapeMarkdown(text.Value));
                    break;
                case XElement x when x.Name == "para":
                    Flush();
                    foreach (XNode child in x.Nodes()) { Walk(child); }
                    Flush();
                    break;
                case XElement x when x.Name == "code":
                    Flush();
                    string code = Dedent(x.Value);
                    plain.Add(code);
                    markdown.Add("```powershell\n" + code + "\n```");
                    break;
                case XElement x when x.Name == "list":
                    Flush();
                    foreach (XElement item in x.Elements("item"))
                    {
                        p.Append("- ");
                        m.Append("- ");
                        foreach (XNode child in (item.Element("description") ?? item).Nodes()) { Walk(child); }
                        Flush();
                    }
                    break;
                case XElement x when x.Name == "c":
                    p.Append(x.Value);
                    m.Append('`').Append(x.Value).Append('`');
                    break;
                case XElement x when x.Name == "see" || x.Name == "seealso":
                    string shown = x.Attribute("cref")?.Value is { } cref ? Short(cref)
                        : x.Attribute("langword")?.Value is { } word ? word
                        : x.Attribute("href")?.Value ?? "";
                    if (x.Value.Trim().Length > 0)
                    {
                        shown = x.Value.Trim();
                    }
                    p.Append(shown);
                    m.Append(x.Attribute("cref")?.Value is { } c2 && _cmdletNameOf(c2) is { } cmd ? $"[{shown}]({cmd}.md)" : shown);
                    break;
                case XElement x when x.Name == "paramref" || x.Name == "typeparamref":
                    string n = x.Attribute("name")?.Value ?? "";
                    p.Append(n);
                    m.Append(n);
                    break;
                case XElement x:
                    foreach (XNode child in x.Nodes()) { Walk(child); }
                    break;
            }
        }

        foreach (XNode node in element.Nodes())
        {
            Walk(node);
        }
        Flush();
        return new DocText(plain, markdown);
    }

    /// <summary>A cref as a reader names it: a cmdlet class as its cmdlet name, a type or member by
    /// its own name.</summary>
    private string Short(string cref)
    {
        if (_cmdletNameOf(cref) is { } cmdlet)
        {
            return cmdlet;
        }
        string name = cref.Length > 2 && cref[1] == ':' ? cref[2..] : cref;
        int paren = name.IndexOf('(', StringComparison.Ordinal);
        if (paren >= 0)
        {
            name = name[..paren];
        }
        return name[(name.LastIndexOf('.') + 1)..];
    }

    private static string Normalize(string s) => Whitespace().Replace(s, " ").Trim();

    private static string EscapeMarkdown(string s) => s.Replace("<", "&lt;", StringComparison.Ordinal).Replace(">", "&gt;", StringComparison.Ordinal);

    /// <summary>The first sentence: up to the first '.', '!' or '?' followed by white space or the
    /// end, not inside "e.g." or "i.e.".</summary>
    public static string FirstSentence(string paragraph)
    {
        string masked = paragraph.Replace("e.g.", "e#g#", StringComparison.Ordinal).Replace("i.e.", "i#e#", StringComparison.Ordinal);
        Match end = SentenceEnd().Match(masked);
        return end.Success ? paragraph[..(end.Index + 1)] : paragraph;
    }

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();

    [GeneratedRegex(@"[.!?](?=\s|$)")]
    private static partial Regex SentenceEnd();
}
