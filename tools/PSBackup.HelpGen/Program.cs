using System.Text;
using PSBackup.HelpGen;

// psbackup-helpgen --assembly <PSBackup.dll> --docs <PSBackup.xml> --engine-docs <PSBackup.Engine.xml>
//                  --sma <System.Management.Automation reference> --maml <out file> --markdown <out dir>
// Exit 0: written (files rewritten only when their content changed). Exit 1: a cmdlet or parameter
// lacks help; each gap is printed as an MSBuild error naming the source to fix.
var options = new Dictionary<string, string>(StringComparer.Ordinal);
for (int i = 0; i + 1 < args.Length; i += 2)
{
    options[args[i]] = args[i + 1];
}
foreach (string required in new[] { "--assembly", "--docs", "--sma", "--maml", "--markdown" })
{
    if (!options.ContainsKey(required))
    {
        Console.Error.WriteLine($"psbackup-helpgen: {required} is required.");
        return 2;
    }
}

var cmdletNames = new Dictionary<string, string>(StringComparer.Ordinal);
string? CmdletNameOf(string cref) => cmdletNames.TryGetValue(cref.StartsWith("T:", StringComparison.Ordinal) ? cref[2..] : cref, out string? n) ? n : null;
var docs = new DocComments(options["--docs"], CmdletNameOf);
var engineDocs = new DocComments(options.GetValueOrDefault("--engine-docs"), CmdletNameOf);
List<CmdletHelp> cmdlets = CmdletReader.Read(options["--assembly"], options["--sma"], docs, engineDocs);
foreach (CmdletHelp c in cmdlets)
{
    cmdletNames[c.TypeName] = c.Name;
}
// Re-read now that cmdlet class names map to cmdlet names (links in the text).
cmdlets = CmdletReader.Read(options["--assembly"], options["--sma"], docs, engineDocs);

var problems = new List<string>();
foreach (CmdletHelp c in cmdlets)
{
    string file = $"src/PSBackup/Commands/{c.TypeName[(c.TypeName.LastIndexOf('.') + 1)..]}.cs";
    if (c.Summary.IsEmpty)
    {
        problems.Add($"{file}: error PSH001: {c.Name} has no description: give class {c.TypeName} a /// <summary> (its first sentence is the synopsis).");
    }
    if (c.Examples.Count < 2)
    {
        problems.Add($"{file}: error PSH002: {c.Name} has {c.Examples.Count} example(s); give it at least two /// <example><summary>title</summary><code>...</code>explanation</example> (tests/Help.Tests.ps1 runs each against the example data).");
    }
    foreach (ExampleHelp e in c.Examples.Where(e => e.Code.Trim().Length == 0 || e.Title.Trim().Length == 0))
    {
        problems.Add($"{file}: error PSH003: an example of {c.Name} lacks its <summary> title or its <code>.");
    }
    foreach (ParameterHelp p in c.Parameters.Where(p => p.Description.IsEmpty))
    {
        string declaring = p.DeclaringType.Length == 0 ? file : $"src/PSBackup/{(p.DeclaringType.Contains(".Commands.", StringComparison.Ordinal) ? "Commands/" : "")}{p.DeclaringType[(p.DeclaringType.LastIndexOf('.') + 1)..]}.cs";
        problems.Add($"{declaring}: error PSH004: {c.Name} -{p.Name} has no description: give the property {p.DeclaringType}.{p.Name} a /// <summary>.");
    }
    if (c.Outputs.Count == 0)
    {
        problems.Add($"{file}: error PSH005: {c.Name} declares no [OutputType].");
    }
    if (c.Cli is null)
    {
        problems.Add($"{file}: error PSH006: {c.Name} does not name its psbackup command: add /// <cli>noun verb</cli> to the class.");
    }
}
if (problems.Count > 0)
{
    foreach (string p in problems)
    {
        Console.Error.WriteLine(p);
    }
    Console.Error.WriteLine($"psbackup-helpgen: {problems.Count} help gap(s); every cmdlet and parameter needs help (see docs/design.md, \"Help\").");
    return 1;
}

int written = 0;
written += WriteIfChanged(options["--maml"], MamlWriter.Write(cmdlets)) ? 1 : 0;
string markdownDir = options["--markdown"];
Directory.CreateDirectory(markdownDir);
var names = cmdlets.Select(c => c.Name).ToHashSet(StringComparer.Ordinal);
var expected = new HashSet<string>(StringComparer.Ordinal) { "README.md" };
written += WriteIfChanged(Path.Combine(markdownDir, "README.md"), MarkdownWriter.Index(cmdlets)) ? 1 : 0;
foreach (CmdletHelp c in cmdlets)
{
    expected.Add(c.Name + ".md");
    written += WriteIfChanged(Path.Combine(markdownDir, c.Name + ".md"), MarkdownWriter.Write(c, names)) ? 1 : 0;
}
foreach (string stale in Directory.GetFiles(markdownDir, "*.md").Where(f => !expected.Contains(Path.GetFileName(f))))
{
    File.Delete(stale); // a removed or renamed cmdlet's page
    written++;
}
Console.WriteLine($"psbackup-helpgen: help for {cmdlets.Count} cmdlets ({cmdlets.Sum(c => c.Examples.Count)} examples); {written} file(s) updated.");
return 0;

static bool WriteIfChanged(string path, string content)
{
    if (File.Exists(path) && File.ReadAllText(path, Encoding.UTF8) == content)
    {
        return false;
    }
    Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
    string temp = path + ".tmp";
    File.WriteAllText(temp, content, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
    File.Move(temp, path, overwrite: true);
    return true;
}
