using System.Reflection;
using System.Text.RegularExpressions;

namespace PSBackup.Engine.Tests.Module;

/// <summary>Static checks of the Pester tests against the module's binding metadata, for what pwsh
/// would otherwise only report at review time: every PSBackup call in tests/*.Tests.ps1 names
/// parameters the cmdlet has, in one common parameter set (or in none, exactly when the test
/// expects AmbiguousParameterSet), with every mandatory parameter of the set PowerShell picks; and
/// Module.Tests.ps1 lists every cmdlet, ShouldProcess cmdlet and output type.</summary>
public sealed partial class ModuleParityTests
{
    private static readonly string[] CommonSwitches = ["Verbose", "vb", "Debug", "db", "WhatIf", "wi", "Confirm", "cf"];

    [Fact]
    public void Module_Tests_list_every_cmdlet_ShouldProcess_cmdlet_and_output_type()
    {
        string text = File.ReadAllText(Path.Combine(_repoRoot, "tests", "Module.Tests.ps1"));
        Match list = Regex.Match(text, @"\$script:Cmdlets\s*=\s*@\(([^)]*)\)");
        Assert.True(list.Success, "Module.Tests.ps1 has no $script:Cmdlets = @(...) list.");
        string[] listed = Regex.Matches(list.Groups[1].Value, "'([^']+)'").Select(m => m.Groups[1].Value).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(_cmdletInfos.Select(c => c.Name).Order(StringComparer.Ordinal), listed);

        HashSet<string> whatIf = ForEachValues(text, "supports -WhatIf and -Confirm", "Name");
        foreach (CmdletInfo cmdlet in _cmdletInfos.Where(c => c.SupportsShouldProcess))
        {
            Assert.True(whatIf.Contains(cmdlet.Name), $"Module.Tests.ps1 '<Name> supports -WhatIf and -Confirm' does not list {cmdlet.Name}.");
        }
        HashSet<string> compiled = ForEachValues(text, "is a compiled cmdlet in PSBackup.Commands", "Name");
        Assert.Equal(_cmdletInfos.Select(c => c.Name).Order(StringComparer.Ordinal), compiled.Order(StringComparer.Ordinal));
        HashSet<string> views = ForEachValues(text, "has a table view for", "TypeName");
        foreach (Type output in _cmdletInfos.SelectMany(OutputTypes).Where(t => t.Namespace?.StartsWith("PSBackup", StringComparison.Ordinal) == true).DistinctBy(t => t.FullName))
        {
            Assert.True(views.Contains(output.FullName!), $"Module.Tests.ps1 'has a table view for <TypeName>' does not list {output.FullName}.");
        }
    }

    [Fact]
    public void Pester_calls_bind_to_one_parameter_set_with_its_mandatory_parameters()
    {
        int calls = 0;
        foreach (string file in Directory.GetFiles(Path.Combine(_repoRoot, "tests"), "*.Tests.ps1"))
        {
            string text = File.ReadAllText(file);
            bool[] code = CodeMask(text);
            Dictionary<string, string[]> splats = Regex.Matches(text, @"\$script:(\w+)\s*=\s*@\{(.*?)\n\s*\}", RegexOptions.Singleline)
                .ToDictionary(m => m.Groups[1].Value, m => Regex.Matches(m.Groups[2].Value, @"(?m)^\s*(\w+)\s*=").Select(k => k.Groups[1].Value).ToArray(), StringComparer.OrdinalIgnoreCase);
            foreach (Match m in CmdletCall().Matches(text))
            {
                if (!code[m.Index] || !StartsCommand(text, m.Index))
                {
                    continue;
                }
                string where = $"{Path.GetFileName(file)}:{text[..m.Index].Count(c => c == '\n') + 1} {m.Value}";
                CmdletInfo? found = _cmdletInfos.SingleOrDefault(c => c.Name == m.Value);
                Assert.True(found is not null, $"{where}: the module has no cmdlet {m.Value}.");
                CmdletInfo cmdlet = found!;
                (List<(string Name, bool HasValue)> named, int positional, List<string> splatted, int end) = ReadArguments(cmdlet, text, m.Index + m.Length);
                bool piped = PrecedingCode(text, m.Index).Char == '|';
                foreach (string splat in splatted)
                {
                    Assert.True(splats.TryGetValue(splat, out string[]? keys), $"{where}: @{splat} is not a $script:{splat} = @{{...}} hashtable of the file.");
                    named.AddRange(keys!.Select(k => (k, true)));
                }
                calls++;

                // Resolve each name as PowerShell does: exact name or alias, else a unique prefix.
                var sets = new HashSet<string>(SetsOf(cmdlet), StringComparer.Ordinal);
                var bound = new List<PropertyInfo>();
                foreach ((string name, bool _) in named)
                {
                    if (CommonParameterNames.Contains(name, StringComparer.OrdinalIgnoreCase))
                    {
                        bool shouldProcess = name is "WhatIf" or "wi" or "Confirm" or "cf";
                        Assert.True(!shouldProcess || cmdlet.SupportsShouldProcess, $"{where}: -{name}, but {cmdlet.Name} does not support ShouldProcess.");
                        continue;
                    }
                    PropertyInfo? parameter = cmdlet.Parameters.FirstOrDefault(p => Aliases(p).Prepend(p.Name).Contains(name, StringComparer.OrdinalIgnoreCase));
                    if (parameter is null)
                    {
                        PropertyInfo[] prefixed = cmdlet.Parameters.Where(p => Aliases(p).Prepend(p.Name).Any(n => n.StartsWith(name, StringComparison.OrdinalIgnoreCase))).ToArray();
                        Assert.True(prefixed.Length == 1, $"{where}: -{name} is {(prefixed.Length == 0 ? "not a parameter" : "an ambiguous prefix")} of {cmdlet.Name}.");
                        parameter = prefixed[0];
                    }
                    bound.Add(parameter);
                    sets.IntersectWith(SetsOfParameter(cmdlet, parameter));
                }

                bool expectsAmbiguous = Regex.IsMatch(text[end..], @"^\s*\}\s*\|\s*Should\s+-Throw\s+-ErrorId\s+'AmbiguousParameterSet,");
                if (expectsAmbiguous)
                {
                    Assert.True(sets.Count == 0, $"{where}: the test expects AmbiguousParameterSet, but -{string.Join(" -", bound.Select(p => p.Name))} share the set(s) {string.Join(", ", sets)}.");
                    continue;
                }
                Assert.True(sets.Count > 0, $"{where}: -{string.Join(" -", bound.Select(p => p.Name))} share no parameter set: pwsh throws AmbiguousParameterSet.");
                if (piped || positional > 0)
                {
                    continue; // pipeline input or positional arguments may supply the mandatory parameters
                }
                string[] satisfied = sets.Where(s => MandatoryIn(cmdlet, s).All(bound.Contains)).ToArray();
                string? chosen = sets.Contains(cmdlet.DefaultParameterSetName!) ? cmdlet.DefaultParameterSetName
                    : sets.Count == 1 ? sets.Single()
                    : satisfied.Length == 1 ? satisfied[0] : null;
                Assert.True(chosen is not null, $"{where}: the sets {string.Join(", ", sets)} remain and the default is not among them: pwsh throws AmbiguousParameterSet.");
                string[] missing = MandatoryIn(cmdlet, chosen!).Where(p => !bound.Contains(p)).Select(p => "-" + p.Name).ToArray();
                Assert.True(missing.Length == 0, $"{where}: binds to set '{chosen}', whose mandatory {string.Join(", ", missing)} is not given: pwsh would prompt (MissingMandatoryParameter when non-interactive).");
            }
        }
        Assert.True(calls > 50, $"Only {calls} PSBackup calls were found in the Pester tests; the scanner is broken.");
    }

    // ---- helpers ----------------------------------------------------------------------------------

    private static HashSet<string> ForEachValues(string text, string itTitle, string key)
    {
        int at = text.IndexOf(itTitle, StringComparison.Ordinal);
        Assert.True(at >= 0, $"Module.Tests.ps1 has no It '...{itTitle}...'.");
        int open = text.IndexOf("-ForEach @(", at, StringComparison.Ordinal);
        int close = text.IndexOf("\n    ) {", open, StringComparison.Ordinal);
        Assert.True(open >= 0 && close > open, $"Module.Tests.ps1 It '...{itTitle}...' has no -ForEach @(...) list.");
        return Regex.Matches(text[open..close], key + @"\s*=\s*'([^']+)'").Select(m => m.Groups[1].Value).ToHashSet(StringComparer.Ordinal);
    }

    private static IEnumerable<string> SetsOf(CmdletInfo cmdlet)
    {
        string[] named = cmdlet.Parameters.SelectMany(ParameterAttributes).Select(a => a.Set).Where(s => s != AllParameterSets).Distinct().ToArray();
        // PowerShell maps the default set even when no parameter names it (its parameters are
        // those in all sets).
        return named.Length == 0 ? [AllParameterSets]
            : named.Contains(cmdlet.DefaultParameterSetName) || string.IsNullOrEmpty(cmdlet.DefaultParameterSetName) ? named
            : [.. named, cmdlet.DefaultParameterSetName];
    }

    private static IEnumerable<string> SetsOfParameter(CmdletInfo cmdlet, PropertyInfo parameter)
    {
        string[] sets = ParameterAttributes(parameter).Select(a => a.Set).ToArray();
        return sets.Contains(AllParameterSets) ? SetsOf(cmdlet) : sets;
    }

    private static IEnumerable<PropertyInfo> MandatoryIn(CmdletInfo cmdlet, string set) =>
        cmdlet.Parameters.Where(p => ParameterAttributes(p).Any(a => a.Mandatory && (a.Set == set || a.Set == AllParameterSets)));

    /// <summary>True for each character of PowerShell code: false inside strings and comments.</summary>
    private static bool[] CodeMask(string s)
    {
        var code = new bool[s.Length];
        for (int i = 0; i < s.Length;)
        {
            int end = SkipStringOrComment(s, i);
            if (end == i)
            {
                code[i++] = true;
            }
            else
            {
                i = end;
            }
        }
        return code;
    }

    /// <summary>The index after a string or comment starting at <paramref name="i"/>, or i.</summary>
    private static int SkipStringOrComment(string s, int i)
    {
        if (s[i] == '#')
        {
            int eol = s.IndexOf('\n', i);
            return eol < 0 ? s.Length : eol;
        }
        if (s[i] == '<' && i + 1 < s.Length && s[i + 1] == '#')
        {
            int close = s.IndexOf("#>", i + 2, StringComparison.Ordinal);
            return close < 0 ? s.Length : close + 2;
        }
        if (s[i] == '\'')
        {
            for (int j = i + 1; j < s.Length; j++)
            {
                if (s[j] == '\'')
                {
                    if (j + 1 < s.Length && s[j + 1] == '\'')
                    {
                        j++;
                        continue;
                    }
                    return j + 1;
                }
            }
            return s.Length;
        }
        if (s[i] == '"')
        {
            for (int j = i + 1; j < s.Length; j++)
            {
                if (s[j] == '`')
                {
                    j++;
                }
                else if (s[j] == '"')
                {
                    return j + 1;
                }
            }
            return s.Length;
        }
        return i;
    }

    /// <summary>The code character before <paramref name="i"/> across white space, and whether a
    /// line break lies between (a line ending in '|' pipes into the next one).</summary>
    private static (char Char, bool NewLine) PrecedingCode(string s, int i)
    {
        bool newLine = false;
        for (int j = i - 1; j >= 0; j--)
        {
            if (s[j] == '\n')
            {
                newLine = true;
            }
            else if (s[j] is not (' ' or '\t' or '\r'))
            {
                return (s[j], newLine);
            }
        }
        return ('\n', true);
    }

    /// <summary>A cmdlet name in command position: at the start of a line or statement, after a
    /// pipe, an opening bracket or an assignment (not an argument such as Get-Command's).</summary>
    private static bool StartsCommand(string s, int i) => PrecedingCode(s, i) is { NewLine: true } or { Char: '{' or '(' or '|' or '=' or ';' };

    /// <summary>The arguments of a command starting at <paramref name="i"/>, up to the end of its
    /// pipeline element: named parameters, the count of positional arguments, splats, and where
    /// the element ends.</summary>
    private static (List<(string Name, bool HasValue)> Named, int Positional, List<string> Splats, int End) ReadArguments(CmdletInfo cmdlet, string s, int i)
    {
        var tokens = new List<string>();
        while (true)
        {
            while (i < s.Length && (s[i] is ' ' or '\t' or '\r' || (s[i] == '`' && i + 1 < s.Length && s[i + 1] is '\n' or '\r')))
            {
                i += s[i] == '`' ? 2 : 1;
            }
            if (i >= s.Length || s[i] is '\n' or '|' or ';' or '}' or ')' or ']' or '#')
            {
                break;
            }
            int start = i;
            i = SkipToken(s, i);
            tokens.Add(s[start..i]);
        }
        var named = new List<(string, bool)>();
        var splats = new List<string>();
        int positional = 0;
        for (int t = 0; t < tokens.Count; t++)
        {
            string token = tokens[t];
            if (token.Length > 1 && token[0] == '-' && char.IsLetter(token[1]))
            {
                int colon = token.IndexOf(':', StringComparison.Ordinal);
                string name = colon < 0 ? token[1..] : token[1..colon];
                bool isSwitch = CommonSwitches.Contains(name, StringComparer.OrdinalIgnoreCase)
                    || cmdlet.Parameters.Any(p => Aliases(p).Prepend(p.Name).Any(n => n.StartsWith(name, StringComparison.OrdinalIgnoreCase))
                        && p.PropertyType.FullName == "System.Management.Automation.SwitchParameter");
                named.Add((name, colon >= 0 || !isSwitch));
                if (colon < 0 && !isSwitch)
                {
                    t++; // its value
                }
            }
            else if (token.StartsWith('@') && token.Length > 1 && token[1] != '(' && token[1] != '{')
            {
                splats.Add(token[1..].Replace("script:", "", StringComparison.OrdinalIgnoreCase));
            }
            else
            {
                positional++;
            }
        }
        return (named, positional, splats, i);
    }

    /// <summary>The end of one argument token: strings, bracketed groups and member access stay in it.</summary>
    private static int SkipToken(string s, int i)
    {
        while (i < s.Length && s[i] is not (' ' or '\t' or '\r' or '\n' or '|' or ';' or '}' or ')' or ']'))
        {
            int after = SkipStringOrComment(s, i);
            if (after != i && s[i] != '#')
            {
                i = after;
                continue;
            }
            if (s[i] is '(' or '{' or '[')
            {
                i = SkipBalanced(s, i);
                continue;
            }
            i++;
        }
        return i;
    }

    private static int SkipBalanced(string s, int i)
    {
        int depth = 0;
        while (i < s.Length)
        {
            int after = SkipStringOrComment(s, i);
            if (after != i)
            {
                i = after;
                continue;
            }
            depth += s[i] is '(' or '{' or '[' ? 1 : s[i] is ')' or '}' or ']' ? -1 : 0;
            i++;
            if (depth == 0)
            {
                return i;
            }
        }
        return i;
    }
}
