using System.Reflection;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;
using System.Text.RegularExpressions;
using System.Xml.Linq;

namespace PSBackup.Engine.Tests.Module;

/// <summary>Static checks of what pwsh 7.4 does with the assembled module that no xunit run can
/// execute: parameter binding metadata, the managed and native dependency closure, the manifest
/// as PowerShell data and the format file's schema, and the error ids the Pester tests expect.</summary>
public sealed partial class ModuleParityTests
{
    /// <summary>PowerShell 7.4's common and ShouldProcess parameters with their aliases
    /// (ProgressAction/proga are new in 7.4).</summary>
    private static readonly string[] CommonParameterNames =
    [
        "Verbose", "vb", "Debug", "db", "ErrorAction", "ea", "WarningAction", "wa", "InformationAction", "infa",
        "ProgressAction", "proga", "ErrorVariable", "ev", "WarningVariable", "wv", "InformationVariable", "iv",
        "OutVariable", "ov", "OutBuffer", "ob", "PipelineVariable", "pv", "WhatIf", "wi", "Confirm", "cf",
    ];

    private const string AllParameterSets = "__AllParameterSets";

    [Fact]
    public void Parameter_names_and_aliases_are_unique_and_never_a_common_parameter()
    {
        foreach (CmdletInfo cmdlet in _cmdletInfos)
        {
            var seen = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            foreach (string common in CommonParameterNames)
            {
                seen[common] = "the common parameter";
            }
            foreach (PropertyInfo parameter in cmdlet.Parameters)
            {
                foreach (string name in Aliases(parameter).Prepend(parameter.Name))
                {
                    Assert.False(seen.TryGetValue(name, out string? owner),
                        $"{cmdlet.Name}: '-{name}' of -{parameter.Name} collides with {owner}; PowerShell refuses the cmdlet's metadata at first use.");
                    seen[name] = "-" + parameter.Name;
                }
            }
        }
    }

    [Fact]
    public void Parameter_sets_have_a_default_and_distinct_positions()
    {
        foreach (CmdletInfo cmdlet in _cmdletInfos)
        {
            var attributes = cmdlet.Parameters
                .SelectMany(p => ParameterAttributes(p).Select(a => (Parameter: p, Set: a.Set, a.Position, a.Mandatory, a.ByValue)))
                .ToList();
            HashSet<string> sets = attributes.Select(a => a.Set).Where(s => s != AllParameterSets).ToHashSet(StringComparer.Ordinal);
            if (sets.Count > 0)
            {
                // PowerShell adds the default set to its map even when no parameter names it
                // (MergedCommandParameterMetadata.GenerateParameterSetMappingFromMetadata): the
                // parameters in all sets make it up, e.g. Restore-PointInTime's local mode.
                Assert.False(string.IsNullOrEmpty(cmdlet.DefaultParameterSetName), $"{cmdlet.Name} has parameter sets but no default set.");
                if (!sets.Contains(cmdlet.DefaultParameterSetName!))
                {
                    sets.Add(cmdlet.DefaultParameterSetName!);
                }
            }
            foreach (string set in sets.DefaultIfEmpty(AllParameterSets))
            {
                var inSet = attributes.Where(a => a.Set == set || a.Set == AllParameterSets).ToList();
                var positions = inSet.Where(a => a.Position >= 0).GroupBy(a => a.Position).Where(g => g.Count() > 1).ToList();
                Assert.True(positions.Count == 0,
                    $"{cmdlet.Name} set '{set}': position {positions.FirstOrDefault()?.Key} is taken by {string.Join(", ", positions.SelectMany(g => g).Select(a => "-" + a.Parameter.Name))}.");
                Assert.True(inSet.Count(a => a.ByValue) <= 1,
                    $"{cmdlet.Name} set '{set}': more than one parameter takes the pipeline by value.");
            }
        }
    }

    [Fact]
    public void Validation_attributes_suit_their_parameter_types()
    {
        foreach (CmdletInfo cmdlet in _cmdletInfos)
        {
            foreach (PropertyInfo parameter in cmdlet.Parameters)
            {
                Type type = parameter.PropertyType;
                bool nullable = type.IsGenericType && type.GetGenericTypeDefinition().FullName == "System.Nullable`1";
                Type element = nullable ? type.GetGenericArguments()[0] : type;
                foreach (CustomAttributeData a in parameter.GetCustomAttributesData())
                {
                    switch (a.AttributeType.FullName)
                    {
                        case "System.Management.Automation.ValidateNotNullOrEmptyAttribute":
                        case "System.Management.Automation.ValidateNotNullAttribute":
                            Assert.False(element.IsValueType && !nullable,
                                $"{cmdlet.Name} -{parameter.Name}: {a.AttributeType.Name} on the value type {type.Name} never applies.");
                            break;
                        case "System.Management.Automation.ValidateRangeAttribute":
                            Assert.True(element.IsPrimitive || element.FullName == "System.Decimal",
                                $"{cmdlet.Name} -{parameter.Name}: ValidateRange on non-numeric {type.Name}.");
                            break;
                    }
                }
                if (element.FullName == "System.Management.Automation.SwitchParameter")
                {
                    Assert.All(ParameterAttributes(parameter), p => Assert.False(p.Mandatory, $"{cmdlet.Name} -{parameter.Name}: a mandatory switch."));
                }
            }
        }
    }

    /// <summary>STYLE: result objects carry the properties the next cmdlet binds by name, so
    /// <c>New-ObjectBackup ... | Restore-ObjectBackup</c> just works.</summary>
    [Theory]
    [InlineData("New-ObjectBackup", "Restore-ObjectBackup")]
    [InlineData("New-ObjectBackup", "Clear-StaleArtifact")]
    [InlineData("Get-Backup", "Test-Restore")]
    [InlineData("Get-Backup", "Restore-StoreSnapshot")]
    [InlineData("Get-Backup", "Restore-PointInTime")]
    [InlineData("Get-Backup", "Restore-ObjectBackup")]
    [InlineData("Get-Backup", "Remove-Backup")]
    [InlineData("Get-Backup", "Remove-ExpiredBackup")]
    public void Results_bind_by_property_name_into_the_next_cmdlet(string from, string to)
    {
        CmdletInfo producer = _cmdletInfos.Single(c => c.Name == from);
        CmdletInfo consumer = _cmdletInfos.Single(c => c.Name == to);
        foreach (Type output in OutputTypes(producer))
        {
            HashSet<string> properties = output.GetProperties().Select(p => p.Name).ToHashSet(StringComparer.OrdinalIgnoreCase);
            foreach (PropertyInfo parameter in consumer.Parameters.Where(p => ParameterAttributes(p).Any(a => a.Mandatory)))
            {
                Assert.True(ParameterAttributes(parameter).Any(a => a.ByPropertyName),
                    $"{to} -{parameter.Name} is mandatory but does not take ValueFromPipelineByPropertyName.");
                Assert.True(Aliases(parameter).Prepend(parameter.Name).Any(properties.Contains),
                    $"{from} outputs {output.Name}, which has no property (or alias) for {to} -{parameter.Name}.");
            }
        }
    }

    /// <summary>Get-Backup's store-snapshot (object) records always carry these; every other
    /// property is null for a local record, a repository record, or both.</summary>
    private static readonly string[] StoreSnapshotRecordAlwaysSet =
        ["BackupId", "Kind", "Namespace", "Time", "Bytes", "FileCount", "Complete", "Wal"];
    private static readonly string[] ObjectRecordAlwaysSet =
        ["BackupId", "Kind", "Dir", "Object", "Time", "Bytes", "FileCount", "Complete"];

    /// <summary>PowerShell binds a property by name even when its value is null: a null into a
    /// mandatory or [ValidateNotNull(OrEmpty)] parameter fails the record ("Cannot bind argument
    /// to parameter ... because it is null"), and a null bound into a parameter of one set latches
    /// the call on to that set. So a parameter fed from a BackupRecord property that may be null
    /// must be optional, in every set and without null validation (the cmdlet checks the value).</summary>
    [Theory]
    [InlineData("Test-Restore")]
    [InlineData("Restore-StoreSnapshot")]
    [InlineData("Restore-PointInTime")]
    [InlineData("Restore-ObjectBackup")]
    [InlineData("Remove-Backup")]
    [InlineData("Remove-ExpiredBackup")]
    public void Parameters_fed_from_a_nullable_BackupRecord_property_tolerate_null(string consumer)
    {
        string[] alwaysSet = consumer == "Restore-ObjectBackup" ? ObjectRecordAlwaysSet : StoreSnapshotRecordAlwaysSet;
        Type record = _engine.GetType("PSBackup.Engine.Repository.BackupRecord", throwOnError: true)!;
        HashSet<string> properties = record.GetProperties().Select(p => p.Name).ToHashSet(StringComparer.OrdinalIgnoreCase);
        CmdletInfo cmdlet = _cmdletInfos.Single(c => c.Name == consumer);
        foreach (PropertyInfo parameter in cmdlet.Parameters.Where(p => ParameterAttributes(p).Any(a => a.ByPropertyName)))
        {
            string? property = Aliases(parameter).Prepend(parameter.Name).FirstOrDefault(properties.Contains);
            if (property is null || alwaysSet.Contains(property, StringComparer.OrdinalIgnoreCase))
            {
                continue;
            }
            Assert.All(ParameterAttributes(parameter), a =>
            {
                Assert.False(a.Mandatory, $"{consumer} -{parameter.Name} is mandatory but BackupRecord.{property} may be null.");
                Assert.True(a.Set == AllParameterSets, $"{consumer} -{parameter.Name} is in set '{a.Set}' only: a null BackupRecord.{property} would latch the call on to it.");
            });
            string[] nullChecks = parameter.GetCustomAttributesData().Select(a => a.AttributeType.Name)
                .Where(n => n is "ValidateNotNullAttribute" or "ValidateNotNullOrEmptyAttribute" or "ValidateNotNullOrWhiteSpaceAttribute").ToArray();
            Assert.True(nullChecks.Length == 0, $"{consumer} -{parameter.Name} has {string.Join(", ", nullChecks)} but BackupRecord.{property} may be null.");
        }
    }

    /// <summary>pwsh 7.4 runs on .NET 8 and resolves the module's dependencies next to
    /// PSBackup.dll: every reference must be shipped in the module folder or be a framework
    /// assembly .NET 8 has (a 9.0/10.0 framework reference fails with FileLoadException), and
    /// System.Management.Automation must come from pwsh.</summary>
    [Fact]
    public void The_managed_dependency_closure_loads_on_NET_8()
    {
        var shipped = Directory.GetFiles(_dependencyDir, "*.dll")
            .ToDictionary(f => Path.GetFileNameWithoutExtension(f), ReadAssemblyVersion, StringComparer.OrdinalIgnoreCase);
        var pending = new Queue<string>(["PSBackup"]);
        var visited = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        while (pending.Count > 0)
        {
            string name = pending.Dequeue();
            if (!visited.Add(name))
            {
                continue;
            }
            foreach ((string reference, Version version) in ReadReferences(Path.Combine(_dependencyDir, name + ".dll")))
            {
                if (shipped.TryGetValue(reference, out Version? have))
                {
                    Assert.True(have >= version, $"{name}.dll references {reference} {version}; the module ships {have}.");
                    pending.Enqueue(reference);
                }
                else if (reference == "Newtonsoft.Json")
                {
                    // pwsh ships and loads it (ConvertTo-Json); the engine only carries its [JsonConverter] attribute.
                    Assert.True(version.Major <= 13, $"{name}.dll references Newtonsoft.Json {version}, newer than pwsh 7.4 ships.");
                }
                else if (reference == "System.Management.Automation")
                {
                    Assert.True(version.Major <= 7, $"{name}.dll references System.Management.Automation {version}, newer than pwsh 7.4 provides.");
                }
                else
                {
                    Assert.True(reference is "netstandard" or "mscorlib" || reference.StartsWith("System", StringComparison.Ordinal) || reference.StartsWith("Microsoft.Win32", StringComparison.Ordinal),
                        $"{name}.dll references {reference} {version}, which is neither shipped in the module nor part of .NET.");
                    Assert.True(reference is "netstandard" or "mscorlib" || version.Major <= 8,
                        $"{name}.dll references the framework assembly {reference} {version}; pwsh 7.4 runs on .NET 8 and cannot load it.");
                }
            }
        }
        Assert.Contains("Microsoft.Data.Sqlite", visited);
    }

    /// <summary>The module's load context answers the provider's DllImport by name: the name SQLitePCLRaw's
    /// provider imports must be the one the module ships under runtimes/&lt;rid&gt;/native, with
    /// the file names the resolver probes.</summary>
    [Fact]
    public void The_native_resolver_matches_the_provider_DllImport_name_and_the_shipped_files()
    {
        string provider = Path.Combine(_dependencyDir, "SQLitePCLRaw.provider.e_sqlite3.dll");
        string[] imports = ReadModuleReferences(provider);
        Assert.Contains("e_sqlite3", imports);
        foreach (string rid in ModuleRids)
        {
            string file = rid.StartsWith("win", StringComparison.Ordinal) ? "e_sqlite3.dll"
                : rid.StartsWith("osx", StringComparison.Ordinal) ? "libe_sqlite3.dylib"
                : "libe_sqlite3.so";
            Assert.True(File.Exists(Path.Combine(_dependencyDir, "runtimes", rid, "native", file)),
                $"runtimes/{rid}/native/{file} is missing: the resolver would not find e_sqlite3 there.");
        }
        string source = File.ReadAllText(Path.Combine(_repoRoot, "src", "PSBackup.Loader", "LoadContext.cs"));
        Assert.Contains("override IntPtr LoadUnmanagedDll", source);
        Assert.Contains("\"runtimes\"", source);
        Assert.Contains("\"native\"", source);
    }

    /// <summary>Import-PowerShellDataFile and Import-Module accept only the restricted data
    /// language: hashtables, arrays, single-quoted strings, numbers, $true/$false/$null, comments.</summary>
    [Theory]
    [InlineData("PSBackup.psd1", false)]
    [InlineData("out/PSBackup/PSBackup.psd1", true)]
    public void The_manifest_is_restricted_data_that_PowerShell_imports(string relative, bool assembled)
    {
        string text = File.ReadAllText(Path.Combine(_repoRoot, relative));
        Dictionary<string, object> manifest = PsData.ParseHashtable(text);
        string[] required = ["RootModule", "ModuleVersion", "GUID", "PowerShellVersion", "CompatiblePSEditions", "CmdletsToExport", "FormatsToProcess"];
        foreach (string key in required)
        {
            Assert.True(manifest.ContainsKey(key), $"{relative} has no {key}.");
        }
        Assert.True(Guid.TryParse((string)manifest["GUID"], out _), $"{relative}: GUID is not a GUID.");
        Assert.True(Version.TryParse((string)manifest["ModuleVersion"], out Version? version), $"{relative}: ModuleVersion is not a version.");
        Assert.Equal("7.4", manifest["PowerShellVersion"]);
        Assert.Equal(new object[] { "Core" }, (object[])manifest["CompatiblePSEditions"]);
        Assert.All(new[] { "FunctionsToExport", "VariablesToExport", "AliasesToExport" },
            key => Assert.Empty(Assert.IsType<object[]>(manifest[key])));
        if (assembled)
        {
            Assert.True(version > new Version(0, 0, 0), "The assembled manifest still has version 0.0.0.");
            Assert.True(File.Exists(Path.Combine(_moduleDir, (string)manifest["RootModule"])), "RootModule is not in the module folder.");
            foreach (string format in ((object[])manifest["FormatsToProcess"]).Cast<string>())
            {
                Assert.True(File.Exists(Path.Combine(_moduleDir, format)), $"FormatsToProcess names {format}, which is not in the module folder.");
            }
        }
        var privateData = Assert.IsType<Dictionary<string, object>>(manifest["PrivateData"]);
        var psData = Assert.IsType<Dictionary<string, object>>(privateData["PSData"]);
        Assert.Contains("PSEdition_Core", ((object[])psData["Tags"]).Cast<string>());
    }

    /// <summary>The format file against the shape of PowerShell's format schema for table views:
    /// View = Name, ViewSelectedBy/TypeName, TableControl; headers of Label?/Width?/Alignment? in
    /// that order; each column item exactly one PropertyName or ScriptBlock.</summary>
    [Fact]
    public void The_format_file_follows_the_table_view_schema()
    {
        XDocument format = XDocument.Load(Path.Combine(_moduleDir, "PSBackup.Format.ps1xml"));
        XElement root = format.Root!;
        Assert.Equal("Configuration", root.Name.LocalName);
        Assert.Equal(XNamespace.None, root.Name.Namespace);
        Assert.Equal(["ViewDefinitions"], root.Elements().Select(e => e.Name.LocalName));
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (XElement view in root.Element("ViewDefinitions")!.Elements())
        {
            Assert.Equal("View", view.Name.LocalName);
            Assert.Equal(["Name", "ViewSelectedBy", "TableControl"], view.Elements().Select(e => e.Name.LocalName));
            Assert.True(names.Add(view.Element("Name")!.Value), $"Two views are named {view.Element("Name")!.Value}.");
            Assert.All(view.Element("ViewSelectedBy")!.Elements(), e => Assert.Equal("TypeName", e.Name.LocalName));
            XElement table = view.Element("TableControl")!;
            Assert.Equal(["TableHeaders", "TableRowEntries"], table.Elements().Select(e => e.Name.LocalName));
            foreach (XElement header in table.Element("TableHeaders")!.Elements())
            {
                Assert.Equal("TableColumnHeader", header.Name.LocalName);
                string[] order = header.Elements().Select(e => e.Name.LocalName).ToArray();
                Assert.Equal(order.OrderBy(n => Array.IndexOf(["Label", "Width", "Alignment"], n)), order);
                Assert.All(order, n => Assert.Contains(n, new[] { "Label", "Width", "Alignment" }));
                if (header.Element("Alignment") is { } alignment)
                {
                    Assert.Contains(alignment.Value, new[] { "Left", "Right", "Center" });
                }
                if (header.Element("Width") is { } width)
                {
                    Assert.True(int.TryParse(width.Value, out int w) && w > 0, $"Width '{width.Value}' is not a positive integer.");
                }
            }
            XElement[] entries = table.Element("TableRowEntries")!.Elements().ToArray();
            Assert.NotEmpty(entries);
            foreach (XElement entry in entries)
            {
                Assert.Equal("TableRowEntry", entry.Name.LocalName);
                XElement items = Assert.Single(entry.Elements(), e => e.Name.LocalName == "TableColumnItems");
                foreach (XElement item in items.Elements())
                {
                    Assert.Equal("TableColumnItem", item.Name.LocalName);
                    string[] kinds = item.Elements().Select(e => e.Name.LocalName).Where(n => n is "PropertyName" or "ScriptBlock").ToArray();
                    Assert.True(kinds.Length == 1, $"A column of view {view.Element("Name")!.Value} has {kinds.Length} of PropertyName/ScriptBlock.");
                    Assert.False(string.IsNullOrWhiteSpace(item.Elements().First(e => e.Name.LocalName == kinds[0]).Value));
                }
            }
        }
    }

    /// <summary>Every <c>Should -Throw -ErrorId 'Id,PSBackup.Commands.Class'</c> in the Pester tests
    /// names the class of the cmdlet the script block runs, and an id that code in this repository
    /// (or PowerShell's parameter binder) actually raises.</summary>
    [Fact]
    public void Pester_error_ids_name_the_cmdlet_class_and_an_id_that_exists()
    {
        string[] sources = Directory.GetFiles(Path.Combine(_repoRoot, "src", "PSBackup.Engine"), "*.cs", SearchOption.AllDirectories)
            .Concat(Directory.GetFiles(Path.Combine(_repoRoot, "src", "PSBackup"), "*.cs", SearchOption.AllDirectories))
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .Select(File.ReadAllText)
            .ToArray();
        string[] fromPowerShell = ["AmbiguousParameterSet", "ParameterArgumentValidationError", "ParameterArgumentTransformationError", "MissingMandatoryParameter", "ParameterBindingFailed", "CannotConvertArgumentNoMessage"];
        int checkedIds = 0;
        foreach (string file in Directory.GetFiles(Path.Combine(_repoRoot, "tests"), "*.Tests.ps1"))
        {
            string text = File.ReadAllText(file);
            foreach (Match m in PesterErrorId().Matches(text))
            {
                string id = m.Groups["id"].Value, cls = m.Groups["class"].Value;
                checkedIds++;
                // The script block piped into this Should: the '{ ... }' just before '| Should'.
                int close = text.LastIndexOf('}', text.LastIndexOf("Should", m.Index, StringComparison.Ordinal));
                int open = close, depth = 0;
                for (; open >= 0; open--)
                {
                    depth += text[open] == '}' ? 1 : text[open] == '{' ? -1 : 0;
                    if (depth == 0)
                    {
                        break;
                    }
                }
                Match invoked = CmdletCall().Match(open >= 0 ? text[open..close] : "");
                Assert.True(invoked.Success, $"{Path.GetFileName(file)}: no cmdlet call found before -ErrorId '{id},...{cls}'.");
                string expectedClass = invoked.Groups["verb"].Value + invoked.Groups["noun"].Value + "Command";
                Assert.True(expectedClass == cls, $"{Path.GetFileName(file)}: -ErrorId '{id},PSBackup.Commands.{cls}' but the block runs {invoked.Value} ({expectedClass}).");
                Assert.True(_cmdletInfos.Any(c => c.Type.Name == cls), $"{Path.GetFileName(file)}: PSBackup.Commands.{cls} is not a cmdlet class.");
                bool raised = fromPowerShell.Contains(id) || sources.Any(s => s.Contains($"\"{id}\"", StringComparison.Ordinal));
                Assert.True(raised, $"{Path.GetFileName(file)}: no code raises the error id '{id}'.");
            }
        }
        Assert.True(checkedIds > 10, "The Pester tests should assert error ids with Should -Throw -ErrorId.");
    }

    // ---- helpers ----------------------------------------------------------------------------------

    [GeneratedRegex(@"-ErrorId\s+'(?<id>[A-Za-z]+),PSBackup\.Commands\.(?<class>[A-Za-z]+)'")]
    private static partial Regex PesterErrorId();

    [GeneratedRegex(@"\b(?<verb>New|Restore|Clear|Get|Invoke|Initialize|Test|Sync|Remove|Export)-(?<noun>ObjectBackup|BackupHealth|BackupMetric|StaleArtifact|WalSegment|WalShip|StoreSnapshot|BackupRepository|Backup|PointInTime|Restore|ExpiredBackup|BackupKeyFile)\b")]
    private static partial Regex CmdletCall();

    private static object? Named(CustomAttributeData a, string name) =>
        a.NamedArguments.FirstOrDefault(n => n.MemberName == name).TypedValue.Value;

    private static IEnumerable<(string Set, int Position, bool Mandatory, bool ByPropertyName, bool ByValue)> ParameterAttributes(PropertyInfo parameter) =>
        parameter.GetCustomAttributesData()
            .Where(a => a.AttributeType.FullName == "System.Management.Automation.ParameterAttribute")
            .Select(a => ((Named(a, "ParameterSetName") as string) ?? AllParameterSets,
                Named(a, "Position") is int position ? position : int.MinValue,
                Named(a, "Mandatory") is true,
                Named(a, "ValueFromPipelineByPropertyName") is true,
                Named(a, "ValueFromPipeline") is true));

    private static IEnumerable<string> Aliases(PropertyInfo parameter) =>
        parameter.GetCustomAttributesData()
            .Where(a => a.AttributeType.FullName == "System.Management.Automation.AliasAttribute")
            .SelectMany(a => ((IEnumerable<CustomAttributeTypedArgument>)a.ConstructorArguments[0].Value!).Select(v => (string)v.Value!));

    private static IEnumerable<Type> OutputTypes(CmdletInfo cmdlet) =>
        cmdlet.Type.GetCustomAttributesData()
            .Where(a => a.AttributeType.FullName == "System.Management.Automation.OutputTypeAttribute")
            .SelectMany(a => (IEnumerable<CustomAttributeTypedArgument>)a.ConstructorArguments[0].Value!)
            .Select(t => (Type)t.Value!);

    private static Version ReadAssemblyVersion(string path)
    {
        using var pe = new PEReader(File.OpenRead(path));
        return pe.GetMetadataReader().GetAssemblyDefinition().Version;
    }

    private static List<(string Name, Version Version)> ReadReferences(string path)
    {
        using var pe = new PEReader(File.OpenRead(path));
        MetadataReader md = pe.GetMetadataReader();
        return md.AssemblyReferences.Select(h => md.GetAssemblyReference(h)).Select(r => (md.GetString(r.Name), r.Version)).ToList();
    }

    private static string[] ReadModuleReferences(string path)
    {
        using var pe = new PEReader(File.OpenRead(path));
        MetadataReader md = pe.GetMetadataReader();
        return Enumerable.Range(1, md.GetTableRowCount(TableIndex.ModuleRef))
            .Select(i => md.GetString(md.GetModuleReference(MetadataTokens.ModuleReferenceHandle(i)).Name))
            .ToArray();
    }
}

/// <summary>A reader for PowerShell's restricted data language as used by module manifests:
/// anything else (a variable, a sub-expression, a double-quoted string that could expand, a
/// command) makes it throw, as Import-PowerShellDataFile would refuse it.</summary>
internal static class PsData
{
    public static Dictionary<string, object> ParseHashtable(string text)
    {
        int i = 0;
        SkipTrivia(text, ref i);
        var result = (Dictionary<string, object>)ParseValue(text, ref i);
        SkipTrivia(text, ref i);
        if (i != text.Length)
        {
            throw new FormatException($"Unexpected text after the manifest's hashtable at {i}: '{Excerpt(text, i)}'.");
        }
        return result;
    }

    private static object ParseValue(string s, ref int i)
    {
        SkipTrivia(s, ref i);
        if (Starts(s, i, "@{"))
        {
            i += 2;
            var table = new Dictionary<string, object>(StringComparer.OrdinalIgnoreCase);
            while (true)
            {
                SkipTrivia(s, ref i, newlines: true, semicolons: true);
                if (Starts(s, i, "}"))
                {
                    i++;
                    return table;
                }
                string key = ParseKey(s, ref i);
                SkipTrivia(s, ref i);
                Expect(s, ref i, "=");
                if (!table.TryAdd(key, ParseValue(s, ref i)))
                {
                    throw new FormatException($"Duplicate key {key}.");
                }
            }
        }
        if (Starts(s, i, "@("))
        {
            i += 2;
            var items = new List<object>();
            while (true)
            {
                SkipTrivia(s, ref i, newlines: true, commas: true);
                if (Starts(s, i, ")"))
                {
                    i++;
                    return items.ToArray();
                }
                items.Add(ParseValue(s, ref i));
            }
        }
        if (Starts(s, i, "'"))
        {
            return ParseSingleQuoted(s, ref i);
        }
        if (Starts(s, i, "\""))
        {
            int end = s.IndexOf('"', i + 1);
            string body = end < 0 ? "" : s[(i + 1)..end];
            if (end < 0 || body.Contains('$') || body.Contains('`'))
            {
                throw new FormatException($"An expandable string at {i}: '{Excerpt(s, i)}' is not allowed in a manifest.");
            }
            i = end + 1;
            return body;
        }
        foreach (string literal in new[] { "$true", "$false", "$null" })
        {
            if (s.AsSpan(i).StartsWith(literal, StringComparison.OrdinalIgnoreCase) && (i + literal.Length == s.Length || !char.IsLetterOrDigit(s[i + literal.Length])))
            {
                i += literal.Length;
                return literal;
            }
        }
        Match number = Regex.Match(s[i..], @"^-?\d+(\.\d+)?");
        if (number.Success)
        {
            i += number.Length;
            return number.Value;
        }
        throw new FormatException($"Not restricted data at {i}: '{Excerpt(s, i)}'.");
    }

    private static string ParseKey(string s, ref int i)
    {
        if (Starts(s, i, "'"))
        {
            return ParseSingleQuoted(s, ref i);
        }
        Match bare = Regex.Match(s[i..], @"^[A-Za-z_][A-Za-z0-9_]*");
        if (!bare.Success)
        {
            throw new FormatException($"A hashtable key was expected at {i}: '{Excerpt(s, i)}'.");
        }
        i += bare.Length;
        return bare.Value;
    }

    private static string ParseSingleQuoted(string s, ref int i)
    {
        var value = new System.Text.StringBuilder();
        i++;
        while (true)
        {
            if (i >= s.Length)
            {
                throw new FormatException("An unterminated string.");
            }
            if (s[i] == '\'')
            {
                if (i + 1 < s.Length && s[i + 1] == '\'')
                {
                    value.Append('\'');
                    i += 2;
                    continue;
                }
                i++;
                return value.ToString();
            }
            value.Append(s[i++]);
        }
    }

    private static void SkipTrivia(string s, ref int i, bool newlines = true, bool commas = false, bool semicolons = false)
    {
        while (i < s.Length)
        {
            char c = s[i];
            if (c == '#')
            {
                while (i < s.Length && s[i] != '\n')
                {
                    i++;
                }
            }
            else if (Starts(s, i, "<#"))
            {
                int end = s.IndexOf("#>", i + 2, StringComparison.Ordinal);
                i = end < 0 ? s.Length : end + 2;
            }
            else if (c is ' ' or '\t' || (newlines && c is '\r' or '\n') || (commas && c == ',') || (semicolons && c == ';') || c == '\uFEFF')
            {
                i++;
            }
            else
            {
                return;
            }
        }
    }

    private static void Expect(string s, ref int i, string token)
    {
        if (!Starts(s, i, token))
        {
            throw new FormatException($"'{token}' expected at {i}: '{Excerpt(s, i)}'.");
        }
        i += token.Length;
    }

    private static bool Starts(string s, int i, string token) => string.CompareOrdinal(s, i, token, 0, token.Length) == 0;

    private static string Excerpt(string s, int i) => s.Substring(i, Math.Min(40, s.Length - i));
}
