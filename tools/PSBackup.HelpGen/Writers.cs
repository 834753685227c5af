using System.Text;
using System.Xml;
using System.Xml.Linq;

namespace PSBackup.HelpGen;

/// <summary>Syntax lines as PowerShell prints them: <c>[-Name] &lt;String&gt;</c>, <c>[-Force]</c>.</summary>
internal static class Syntax
{
    public static string Line(CmdletHelp c, string set)
    {
        var parts = new List<string> { c.Name };
        foreach ((ParameterHelp p, ParameterSetHelp s) in c.ParametersOf(set))
        {
            string value = p.IsSwitch ? "" : " <" + (p.ValidValues.Count > 0 ? string.Join(" | ", p.ValidValues) : p.TypeName) + ">";
            string name = s.Position is not null ? $"[-{p.Name}]" : $"-{p.Name}";
            string item = p.IsSwitch ? $"-{p.Name}" : name + value;
            parts.Add(s.Mandatory ? item : $"[{item}]");
        }
        parts.Add("[<CommonParameters>]");
        return string.Join(" ", parts);
    }

    public static string SetTitle(CmdletHelp c, string set) =>
        set == ParameterSetHelp.All ? "All parameters" : set + (set == c.DefaultParameterSet ? " (Default)" : "");
}

/// <summary>en-US/PSBackup.dll-Help.xml: PowerShell's MAML command help, as platyPS writes it.</summary>
internal static class MamlWriter
{
    private static readonly XNamespace Msh = "http://msh";
    private static readonly XNamespace Maml = "http://schemas.microsoft.com/maml/2004/10";
    private static readonly XNamespace Command = "http://schemas.microsoft.com/maml/dev/command/2004/10";
    private static readonly XNamespace Dev = "http://schemas.microsoft.com/maml/dev/2004/10";

    public static string Write(IReadOnlyList<CmdletHelp> cmdlets)
    {
        var root = new XElement(Msh + "helpItems", new XAttribute("schema", "maml"),
            cmdlets.OrderBy(c => c.Name, StringComparer.Ordinal).Select(Command_));
        var doc = new XDocument(new XDeclaration("1.0", "utf-8", null), root);
        var sb = new StringBuilder();
        using (var writer = XmlWriter.Create(new StringWriterUtf8(sb), new XmlWriterSettings { Indent = true, IndentChars = "  ", NewLineChars = "\n" }))
        {
            doc.Save(writer);
        }
        return sb.Append('\n').ToString();
    }

    private static XElement Command_(CmdletHelp c) =>
        new(Command + "command",
            new XAttribute(XNamespace.Xmlns + "maml", Maml),
            new XAttribute(XNamespace.Xmlns + "command", Command),
            new XAttribute(XNamespace.Xmlns + "dev", Dev),
            new XElement(Command + "details",
                new XElement(Command + "name", c.Name),
                new XElement(Command + "verb", c.Verb),
                new XElement(Command + "noun", c.Noun),
                Paras(Maml + "description", [HelpText.Synopsis(c)])),
            Paras(Maml + "description", c.Summary.Plain),
            new XElement(Command + "syntax", c.ParameterSets.Select(set =>
                new XElement(Command + "syntaxItem",
                    new XElement(Maml + "name", c.Name),
                    c.ParametersOf(set).Select(x => Parameter(x.Parameter, x.Set, inSyntax: true))))),
            new XElement(Command + "parameters", c.Parameters.Select(p => Parameter(p, Summary(p), inSyntax: false))),
            new XElement(Command + "inputTypes", c.Inputs.Select(i =>
                new XElement(Command + "inputType", TypeElement(i.FullName), Paras(Maml + "description", i.Description)))),
            new XElement(Command + "returnValues", c.Outputs.Select(o =>
                new XElement(Command + "returnValue", TypeElement(o.FullName), Paras(Maml + "description", o.Description)))),
            new XElement(Maml + "alertSet", new XElement(Maml + "alert", HelpText.Notes(c).Select(n => new XElement(Maml + "para", n)))),
            new XElement(Command + "examples", c.Examples.Select((e, i) =>
                new XElement(Command + "example",
                    new XElement(Maml + "title", $"-------------------------- Example {i + 1}: {e.Title} --------------------------"),
                    new XElement(Dev + "code", e.Code),
                    Paras(Dev + "remarks", e.Remarks)))),
            new XElement(Command + "relatedLinks", HelpText.Related(c).Select(r =>
                new XElement(Maml + "navigationLink", new XElement(Maml + "linkText", r), new XElement(Maml + "uri")))));

    /// <summary>A parameter's attributes over all its sets (for the PARAMETERS section).</summary>
    private static ParameterSetHelp Summary(ParameterHelp p) => new(
        string.Join(", ", p.Sets.Select(s => s.Name)),
        p.Sets.Any(s => s.Mandatory) && p.Sets.All(s => s.Mandatory),
        p.Sets.Select(s => s.Position).FirstOrDefault(x => x is not null),
        p.ByValue, p.ByPropertyName);

    private static XElement Parameter(ParameterHelp p, ParameterSetHelp s, bool inSyntax)
    {
        var e = new XElement(Command + "parameter",
            new XAttribute("required", s.Mandatory ? "true" : "false"),
            new XAttribute("variableLength", p.TypeName.EndsWith("[]", StringComparison.Ordinal) ? "true" : "false"),
            new XAttribute("globbing", p.Globbing ? "true" : "false"),
            new XAttribute("pipelineInput", p.PipelineInput),
            new XAttribute("position", s.Position?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "named"),
            new XAttribute("aliases", p.Aliases.Count > 0 ? string.Join(", ", p.Aliases) : "none"),
            new XElement(Maml + "name", p.Name),
            Paras(Maml + "description", p.Description.Plain));
        if (inSyntax && p.ValidValues.Count > 0)
        {
            e.Add(new XElement(Command + "parameterValueGroup", p.ValidValues.Select(v =>
                new XElement(Command + "parameterValue", new XAttribute("required", "false"), new XAttribute(Command + "variableLength", "false"), v))));
        }
        if (!p.IsSwitch)
        {
            e.Add(new XElement(Command + "parameterValue", new XAttribute("required", "true"), new XAttribute("variableLength", "false"), p.TypeName));
        }
        e.Add(TypeElement(p.TypeFullName));
        e.Add(new XElement(Dev + "defaultValue", p.DefaultValue ?? "None"));
        return e;
    }

    private static XElement TypeElement(string fullName) =>
        new(Dev + "type", new XElement(Maml + "name", fullName), new XElement(Maml + "uri"));

    private static XElement Paras(XName name, IEnumerable<string> paragraphs) =>
        new(name, paragraphs.Select(p => new XElement(Maml + "para", p)));

    private sealed class StringWriterUtf8(StringBuilder sb) : StringWriter(sb, System.Globalization.CultureInfo.InvariantCulture)
    {
        public override Encoding Encoding => Encoding.UTF8;
    }
}

/// <summary>Text shared by MAML and markdown, so both say the same.</summary>
internal static class HelpText
{
    public static string Synopsis(CmdletHelp c) => c.Summary.Plain.Count > 0 ? DocComments.FirstSentence(c.Summary.Plain[0]) : "";

    public static string SynopsisMarkdown(CmdletHelp c) => c.Summary.Markdown.Count > 0 ? DocComments.FirstSentence(c.Summary.Markdown[0]) : "";

    public static IEnumerable<string> Notes(CmdletHelp c)
    {
        if (c.SupportsShouldProcess)
        {
            yield return c.ConfirmImpact >= 3
                ? "Supports -WhatIf and -Confirm. ConfirmImpact is High: it asks before it replaces or removes anything unless -Confirm:$false (or $ConfirmPreference = 'None')."
                : "Supports -WhatIf and -Confirm: -WhatIf shows what would be written and writes nothing.";
        }
        if (c.Cli is not null)
        {
            yield return $"The same operation on the command line: psbackup {c.Cli} (each parameter is an option named by kebab-casing it, e.g. -DataDir is --data-dir; --json for scripts).";
        }
        yield return "Errors are ErrorRecords with a stable error id and category (docs/errors.md lists every id with its meaning); -Verbose tells what the operation decided, -Debug adds every storage call.";
    }

    public static IEnumerable<string> Related(CmdletHelp c) =>
        c.Related.Where(r => r != c.Name).Distinct(StringComparer.Ordinal).Append("about_PSBackup").Append("about_PSBackup_Repository").Distinct(StringComparer.Ordinal);
}

/// <summary>docs/cmdlets/&lt;Name&gt;.md, the same help as the MAML for readers of the repository.</summary>
internal static class MarkdownWriter
{
    public static string Write(CmdletHelp c, IReadOnlySet<string> cmdletNames)
    {
        var md = new StringBuilder();
        md.Append("<!-- Generated from the doc comments of src/PSBackup/Commands/").Append(c.TypeName[(c.TypeName.LastIndexOf('.') + 1)..])
          .Append(".cs by tools/PSBackup.HelpGen (the module's Get-Help reads the same text). Edit the source, not this file. -->\n");
        md.Append("# ").Append(c.Name).Append("\n\n## SYNOPSIS\n\n").Append(HelpText.SynopsisMarkdown(c)).Append("\n\n## SYNTAX\n\n");
        foreach (string set in c.ParameterSets)
        {
            md.Append("### ").Append(Syntax.SetTitle(c, set)).Append("\n\n```\n").Append(Syntax.Line(c, set)).Append("\n```\n\n");
        }
        md.Append("## DESCRIPTION\n\n");
        foreach (string p in c.Summary.Markdown)
        {
            md.Append(p).Append("\n\n");
        }
        md.Append("## EXAMPLES\n\n");
        int n = 0;
        foreach (ExampleHelp e in c.Examples)
        {
            md.Append("### Example ").Append(++n).Append(": ").Append(e.Title).Append("\n\n```powershell\n").Append(e.Code).Append("\n```\n\n");
            foreach (string r in e.RemarksMarkdown)
            {
                md.Append(r).Append("\n\n");
            }
        }
        md.Append("## PARAMETERS\n\n");
        foreach (ParameterHelp p in c.Parameters)
        {
            md.Append("### -").Append(p.Name).Append("\n\n");
            foreach (string d in p.Description.Markdown)
            {
                md.Append(d).Append("\n\n");
            }
            md.Append("| | |\n|---|---|\n");
            Row(md, "Type", p.TypeName);
            if (p.ValidValues.Count > 0)
            {
                Row(md, "Accepted values", string.Join(", ", p.ValidValues));
            }
            Row(md, "Parameter sets", string.Join(", ", p.Sets.Select(s => s.Name == ParameterSetHelp.All ? "(All)" : s.Name)));
            Row(md, "Aliases", p.Aliases.Count > 0 ? string.Join(", ", p.Aliases) : "None");
            Row(md, "Required", p.Sets.Any(s => s.Mandatory) ? string.Join(", ", p.Sets.Select(s => $"{(s.Mandatory ? "True" : "False")}{(p.Sets.Count > 1 ? $" ({(s.Name == ParameterSetHelp.All ? "All" : s.Name)})" : "")}")) : "False");
            Row(md, "Position", p.Sets.Select(s => s.Position).FirstOrDefault(x => x is not null)?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "Named");
            Row(md, "Default value", p.DefaultValue ?? "None");
            Row(md, "Accept pipeline input", p.PipelineInput);
            Row(md, "Accept wildcard characters", p.Globbing ? "True" : "False");
            md.Append('\n');
        }
        md.Append("### CommonParameters\n\nThis cmdlet supports the common parameters: -Debug, -ErrorAction, -ErrorVariable, -InformationAction, -InformationVariable, -OutBuffer, -OutVariable, -PipelineVariable, -ProgressAction, -Verbose, -WarningAction and -WarningVariable (about_CommonParameters). -Verbose tells what the operation does (repository opened, lock, key cache, files read and reused, bytes stored); -Debug adds every storage call.\n\n");
        md.Append("## INPUTS\n\n");
        foreach (TypeHelp i in c.Inputs)
        {
            md.Append("### ").Append(i.FullName).Append("\n\n").Append(string.Join("\n\n", i.Description)).Append("\n\n");
        }
        md.Append("## OUTPUTS\n\n");
        foreach (TypeHelp o in c.Outputs)
        {
            md.Append("### ").Append(o.FullName).Append("\n\n").Append(string.Join("\n\n", o.Description)).Append("\n\n");
        }
        md.Append("## NOTES\n\n");
        foreach (string note in HelpText.Notes(c))
        {
            md.Append(note).Append("\n\n");
        }
        md.Append("## RELATED LINKS\n\n");
        foreach (string r in HelpText.Related(c))
        {
            md.Append("- ").Append(cmdletNames.Contains(r) ? $"[{r}]({r}.md)" : r.StartsWith("about_", StringComparison.Ordinal) ? $"[{r}](../../module/en-US/{r}.help.txt)" : r).Append('\n');
        }
        return md.ToString();
    }

    /// <summary>docs/cmdlets/README.md: every cmdlet and its synopsis.</summary>
    public static string Index(IReadOnlyList<CmdletHelp> cmdlets)
    {
        var md = new StringBuilder();
        md.Append("<!-- Generated by tools/PSBackup.HelpGen from the cmdlets' doc comments. -->\n");
        md.Append("# PSBackup cmdlet reference\n\nOne page per cmdlet, generated from the same source as `Get-Help` (the cmdlets' doc comments), so the two never disagree. ");
        md.Append("Concepts and the repository: `Get-Help about_PSBackup`, `Get-Help about_PSBackup_Repository`.\n\n| Cmdlet | CLI | Synopsis |\n|---|---|---|\n");
        foreach (CmdletHelp c in cmdlets.OrderBy(c => c.Noun, StringComparer.Ordinal).ThenBy(c => c.Verb, StringComparer.Ordinal))
        {
            md.Append("| [").Append(c.Name).Append("](").Append(c.Name).Append(".md) | ").Append(c.Cli is null ? "" : $"`psbackup {c.Cli}`").Append(" | ")
              .Append(HelpText.SynopsisMarkdown(c).Replace("|", "\\|", StringComparison.Ordinal)).Append(" |\n");
        }
        return md.ToString();
    }

    private static void Row(StringBuilder md, string name, string value) =>
        md.Append("| ").Append(name).Append(" | ").Append(value.Replace("|", "\\|", StringComparison.Ordinal)).Append(" |\n");
}
