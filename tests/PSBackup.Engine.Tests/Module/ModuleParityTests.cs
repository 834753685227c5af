using System.Reflection;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using PSBackup.Cli;
using SclCommand = System.CommandLine.Command;

namespace PSBackup.Engine.Tests.Module;

/// <summary>The assembled module (out/PSBackup, produced by building the solution), its manifest,
/// its format file and the CLI must describe the same surface. The cmdlet assembly targets
/// PowerShell, so it is inspected with MetadataLoadContext, never executed.</summary>
public sealed partial class ModuleParityTests : IDisposable
{
    /// <summary>SPEC §2's CLI table, for the cmdlets that exist.</summary>
    private static readonly Dictionary<string, string> CliFor = new(StringComparer.Ordinal)
    {
        ["New-ObjectBackup"] = "object backup",
        ["Restore-ObjectBackup"] = "object restore",
        ["Clear-StaleArtifact"] = "sweep",
        ["Get-WalSegment"] = "wal list",
        ["Invoke-WalShip"] = "wal ship",
        ["New-StoreSnapshot"] = "snapshot create",
        ["Restore-StoreSnapshot"] = "snapshot restore",
        ["Initialize-BackupRepository"] = "repo init",
        ["New-BackupKeyFile"] = "key new",
        ["Get-Backup"] = "list",
        ["Restore-PointInTime"] = "pitr",
        ["Test-Restore"] = "test-restore",
        ["Test-BackupRepository"] = "check",
        ["Repair-BackupRepository"] = "repair",
        ["Remove-ExpiredBackup"] = "prune",
        ["Remove-Backup"] = "remove",
        ["Sync-BackupRepository"] = "sync",
        ["Get-BackupHealth"] = "health",
        ["Export-BackupMetric"] = "metrics",
    };

    private static readonly string[] ModuleRids = ["linux-x64", "linux-arm64", "osx-x64", "osx-arm64", "win-x64", "win-arm64"];

    private readonly string _repoRoot;
    private readonly string _moduleDir;
    /// <summary>Where the assembled module keeps its assemblies (loaded into its own load context).</summary>
    private readonly string _dependencyDir;
    private readonly MetadataLoadContext _mlc;
    private readonly Assembly _cmdlets;
    private readonly Assembly _engine;
    private readonly List<CmdletInfo> _cmdletInfos;

    public ModuleParityTests()
    {
        _repoRoot = FindRepoRoot();
        _moduleDir = Path.Combine(_repoRoot, "out", "PSBackup");
        _dependencyDir = Path.Combine(_moduleDir, "dependencies");
        Assert.True(File.Exists(Path.Combine(_dependencyDir, "PSBackup.dll")),
            $"The assembled module is missing from {_moduleDir}: run 'dotnet build PSBackup.sln' first.");

        string psStandard = Path.Combine(NuGetRoot(), "powershellstandard.library", "5.1.0-preview-06", "lib", "netstandard2.0", "System.Management.Automation.dll");
        Assert.True(File.Exists(psStandard), $"PowerShellStandard.Library reference assembly not found at {psStandard} (restore the solution).");
        IEnumerable<string> paths = Directory.GetFiles(RuntimeEnvironment.GetRuntimeDirectory(), "*.dll")
            .Concat(Directory.GetFiles(_dependencyDir, "*.dll"))
            .Append(psStandard);
        _mlc = new MetadataLoadContext(new PathAssemblyResolver(paths));
        _cmdlets = _mlc.LoadFromAssemblyPath(Path.Combine(_dependencyDir, "PSBackup.dll"));
        _engine = _mlc.LoadFromAssemblyPath(Path.Combine(_dependencyDir, "PSBackup.Engine.dll"));
        _cmdletInfos = ReadCmdlets(_cmdlets);
    }

    public void Dispose() => _mlc.Dispose();

    [Fact]
    public void The_module_defines_its_cmdlets()
    {
        Assert.Equal(
            ["Clear-StaleArtifact", "Export-BackupMetric", "Get-Backup", "Get-BackupHealth", "Get-WalSegment", "Initialize-BackupRepository", "Invoke-WalShip", "New-BackupKeyFile", "New-ObjectBackup", "New-StoreSnapshot",
             "Remove-Backup", "Remove-ExpiredBackup", "Repair-BackupRepository", "Restore-ObjectBackup", "Restore-PointInTime", "Restore-StoreSnapshot", "Sync-BackupRepository", "Test-BackupRepository", "Test-Restore"],
            _cmdletInfos.Select(c => c.Name).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void CmdletsToExport_equals_the_cmdlet_classes()
    {
        string manifest = File.ReadAllText(Path.Combine(_moduleDir, "PSBackup.psd1"));
        Match block = Regex.Match(manifest, @"CmdletsToExport\s*=\s*@\(([^)]*)\)");
        Assert.True(block.Success, "CmdletsToExport = @(...) not found in the assembled manifest.");
        string[] exported = Regex.Matches(block.Groups[1].Value, "'([^']+)'").Select(m => m.Groups[1].Value).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(_cmdletInfos.Select(c => c.Name).Order(StringComparer.Ordinal), exported);
    }

    [Fact]
    public void The_assembled_manifest_is_the_source_manifest_with_the_build_version()
    {
        string source = File.ReadAllText(Path.Combine(_repoRoot, "PSBackup.psd1"));
        string assembled = File.ReadAllText(Path.Combine(_moduleDir, "PSBackup.psd1"));
        Version engineVersion = _engine.GetName().Version!;
        string expected = $"{engineVersion.Major}.{engineVersion.Minor}.{engineVersion.Build}";
        Assert.Equal(expected, Regex.Match(assembled, @"ModuleVersion\s*=\s*'([^']*)'").Groups[1].Value);
        Assert.Equal(Normalize(VersionLine().Replace(source, "")), Normalize(VersionLine().Replace(assembled, "")));

        Assert.Matches(@"RootModule\s*=\s*'PSBackup\.psm1'", assembled);
        Assert.Matches(@"PowerShellVersion\s*=\s*'7\.4'", assembled);
        Assert.Matches(@"CompatiblePSEditions\s*=\s*@\('Core'\)", assembled);
        Assert.Matches(@"FormatsToProcess\s*=\s*@\('PSBackup\.Format\.ps1xml'\)", assembled);
        Assert.Matches(@"FunctionsToExport\s*=\s*@\(\)", assembled);
        Assert.Matches(@"VariablesToExport\s*=\s*@\(\)", assembled);
        Assert.Matches(@"AliasesToExport\s*=\s*@\(\)", assembled);
        Assert.Matches(@"Tags\s*=\s*@\(", assembled);

        static string Normalize(string s) => s.ReplaceLineEndings("\n").TrimEnd();
    }

    [Fact]
    public void Each_cmdlet_is_a_sealed_PSBackupCmdlet_in_its_own_file()
    {
        foreach (CmdletInfo cmdlet in _cmdletInfos)
        {
            string className = cmdlet.Verb + cmdlet.Noun + "Command";
            Assert.Equal(className, cmdlet.Type.Name);
            Assert.Equal("PSBackup.Commands", cmdlet.Type.Namespace);
            Assert.True(cmdlet.Type.IsSealed, $"{className} is not sealed.");
            Assert.Contains(cmdlet.Type.BaseType?.FullName, new[] { "PSBackup.PSBackupCmdlet", "PSBackup.PSBackupRepositoryCmdlet", "PSBackup.PSBackupRepositoryOptionsCmdlet", "PSBackup.PSBackupHistoryCmdlet" });
            string file = Path.Combine(_repoRoot, "src", "PSBackup", "Commands", className + ".cs");
            Assert.True(File.Exists(file), $"{cmdlet.Name} should live in src/PSBackup/Commands/{className}.cs.");
            Assert.Contains($"class {className}", File.ReadAllText(file));
        }
    }

    [Fact]
    public void Each_cmdlet_declares_its_default_parameter_set_output_type_and_should_process()
    {
        foreach (CmdletInfo cmdlet in _cmdletInfos)
        {
            Assert.False(string.IsNullOrEmpty(cmdlet.DefaultParameterSetName), $"{cmdlet.Name} has no DefaultParameterSetName.");
            Assert.True(cmdlet.Type.GetCustomAttributesData().Any(a => a.AttributeType.FullName == "System.Management.Automation.OutputTypeAttribute"),
                $"{cmdlet.Name} has no [OutputType].");
            bool writes = cmdlet.Verb is not "Get" && cmdlet.Name != "Test-BackupRepository"; // read-only
            Assert.Equal(writes, cmdlet.SupportsShouldProcess);
            if (cmdlet.Verb is "Restore" or "Clear" or "Remove")
            {
                Assert.Equal(3 /* ConfirmImpact.High */, cmdlet.ConfirmImpact);
            }
        }
    }

    [Fact]
    public void Each_cmdlet_has_its_CLI_command_per_the_SPEC_table()
    {
        SclCommand root = CliApp.BuildRootCommand();
        foreach (CmdletInfo cmdlet in _cmdletInfos)
        {
            Assert.True(CliFor.TryGetValue(cmdlet.Name, out string? path), $"{cmdlet.Name} is not in SPEC §2's CLI table.");
            Assert.True(FindCommand(root, path) is not null, $"{cmdlet.Name}: 'psbackup {path}' does not exist.");
        }
    }

    [Fact]
    public void Each_parameter_has_its_kebab_case_option_and_each_option_its_parameter()
    {
        SclCommand root = CliApp.BuildRootCommand();
        foreach (CmdletInfo cmdlet in _cmdletInfos)
        {
            SclCommand command = FindCommand(root, CliFor[cmdlet.Name])!;
            HashSet<string> options = command.Options.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
            // -Verbose and -Debug are common parameters; the CLI spells them --verbose and --debug.
            var expected = new HashSet<string>(StringComparer.Ordinal) { "--json", "--verbose", "--debug" };
            if (cmdlet.SupportsShouldProcess)
            {
                expected.Add("--what-if");
            }
            foreach (PropertyInfo parameter in cmdlet.Parameters)
            {
                string option = OptionFor(parameter);
                expected.Add(option);
                Assert.True(options.Contains(option), $"{cmdlet.Name} -{parameter.Name}: 'psbackup {CliFor[cmdlet.Name]}' has no {option}.");
            }
            string[] extra = options.Where(o => o.StartsWith("--", StringComparison.Ordinal) && o != "--help" && !expected.Contains(o)).ToArray();
            Assert.True(extra.Length == 0, $"'psbackup {CliFor[cmdlet.Name]}' has options no {cmdlet.Name} parameter explains: {string.Join(", ", extra)}.");
        }
    }

    /// <summary>The reference pages in docs/cmdlets are the help the build generates from the doc
    /// comments (tools/PSBackup.HelpGen writes them to out/docs/cmdlets with the MAML): committed
    /// pages that differ from what the source says would disagree with Get-Help.</summary>
    [Fact]
    public void The_cmdlet_reference_pages_are_the_generated_help()
    {
        string generated = Path.Combine(_repoRoot, "out", "docs", "cmdlets");
        string committed = Path.Combine(_repoRoot, "docs", "cmdlets");
        Assert.True(Directory.Exists(generated), $"{generated} is missing: the build generates it.");
        string[] names = Directory.GetFiles(generated, "*.md").Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray()!;
        string fix = "Copy the generated pages: cp out/docs/cmdlets/*.md docs/cmdlets/ (and delete pages of removed cmdlets).";
        Assert.True(names.SequenceEqual(Directory.GetFiles(committed, "*.md").Select(Path.GetFileName).Order(StringComparer.Ordinal)),
            $"docs/cmdlets does not hold exactly the generated pages. {fix}");
        foreach (string name in names)
        {
            Assert.True(File.ReadAllText(Path.Combine(generated, name)).ReplaceLineEndings("\n") == File.ReadAllText(Path.Combine(committed, name)).ReplaceLineEndings("\n"),
                $"docs/cmdlets/{name} differs from the help generated from the source. {fix}");
        }
        foreach (CmdletInfo cmdlet in _cmdletInfos)
        {
            Assert.Contains($"psbackup {CliFor[cmdlet.Name]}", File.ReadAllText(Path.Combine(committed, cmdlet.Name + ".md")));
        }
        Assert.True(File.Exists(Path.Combine(_moduleDir, "en-US", "PSBackup.dll-Help.xml")), "The module ships no en-US/PSBackup.dll-Help.xml.");
        Assert.True(File.Exists(Path.Combine(_moduleDir, "en-US", "about_PSBackup.help.txt")), "The module ships no about_PSBackup.");
    }

    [Theory]
    [InlineData("AfterSegmentId", "--after-segment-id")]
    [InlineData("DbRoot", "--db-root")]
    [InlineData("Dir", "--dir")]
    [InlineData("DataDir", "--data-dir")]
    public void Kebab_casing_follows_the_SPEC_example(string parameter, string option) =>
        Assert.Equal(option, "--" + Kebab(parameter));

    [Fact]
    public void Every_type_in_the_format_file_exists_in_the_engine_with_the_shown_properties()
    {
        XDocument format = XDocument.Load(Path.Combine(_moduleDir, "PSBackup.Format.ps1xml"));
        Assert.Equal("Configuration", format.Root!.Name.LocalName);
        XElement[] views = format.Descendants("View").ToArray();
        Assert.NotEmpty(views);
        foreach (XElement view in views)
        {
            string typeName = view.Element("ViewSelectedBy")!.Element("TypeName")!.Value;
            Type? type = _engine.GetType(typeName);
            Assert.True(type is not null, $"PSBackup.Format.ps1xml names {typeName}, which the engine does not define.");
            XElement table = view.Element("TableControl")!;
            int headers = table.Element("TableHeaders")!.Elements("TableColumnHeader").Count();
            XElement[] items = table.Descendants("TableColumnItem").ToArray();
            Assert.Equal(headers, items.Length);
            Assert.InRange(items.Length, 4, 6);
            foreach (string property in items.Select(i => i.Element("PropertyName")?.Value).OfType<string>())
            {
                Assert.True(type!.GetProperty(property) is not null, $"{typeName} has no property {property} shown by its view.");
            }
        }
    }

    [Fact]
    public void Every_cmdlet_output_type_has_a_table_view()
    {
        XDocument format = XDocument.Load(Path.Combine(_moduleDir, "PSBackup.Format.ps1xml"));
        HashSet<string> viewed = format.Descendants("TypeName").Select(t => t.Value).ToHashSet(StringComparer.Ordinal);
        foreach (CmdletInfo cmdlet in _cmdletInfos)
        {
            CustomAttributeData outputType = cmdlet.Type.GetCustomAttributesData()
                .Single(a => a.AttributeType.FullName == "System.Management.Automation.OutputTypeAttribute");
            var types = (IEnumerable<CustomAttributeTypedArgument>)outputType.ConstructorArguments[0].Value!;
            foreach (CustomAttributeTypedArgument t in types.Where(t => ((Type)t.Value!).Namespace?.StartsWith("PSBackup", StringComparison.Ordinal) == true))
            {
                string name = ((Type)t.Value!).FullName!;
                Assert.True(viewed.Contains(name), $"{cmdlet.Name} outputs {name}, which has no view in PSBackup.Format.ps1xml.");
            }
        }
    }

    [Fact]
    public void The_module_folder_ships_native_sqlite_and_not_System_Management_Automation()
    {
        Assert.False(File.Exists(Path.Combine(_moduleDir, "System.Management.Automation.dll")) || File.Exists(Path.Combine(_dependencyDir, "System.Management.Automation.dll")),
            "The module must not ship System.Management.Automation.dll: pwsh provides it.");
        // The engine's enums carry Newtonsoft's [JsonConverter] for ConvertTo-Json, which only honours
        // it when the attribute is pwsh's own Newtonsoft type: a copy in the module would shadow it.
        Assert.Empty(Directory.GetFiles(_moduleDir, "Newtonsoft.Json.dll", SearchOption.AllDirectories));
        foreach (string rid in ModuleRids)
        {
            string native = Path.Combine(_dependencyDir, "runtimes", rid, "native");
            Assert.True(Directory.Exists(native) && Directory.GetFiles(native, "*e_sqlite3*").Length > 0,
                $"The module has no native e_sqlite3 for {rid} under dependencies/runtimes/{rid}/native.");
        }
        foreach (string dll in new[] { "PSBackup.dll", "PSBackup.Engine.dll", "Microsoft.Data.Sqlite.dll", "SQLitePCLRaw.core.dll", "SQLitePCLRaw.provider.e_sqlite3.dll", "ZstdSharp.dll", "AWSSDK.Core.dll" })
        {
            Assert.True(File.Exists(Path.Combine(_dependencyDir, dll)), $"The module's dependencies/ folder lacks {dll}.");
        }
        foreach (string file in new[] { "PSBackup.psd1", "PSBackup.psm1", "PSBackup.Loader.dll", "PSBackup.Format.ps1xml" })
        {
            Assert.True(File.Exists(Path.Combine(_moduleDir, file)), $"The module folder lacks {file}.");
        }
    }

    /// <summary>Only the loader sits in the module folder itself: any other assembly there could be
    /// loaded into PowerShell's shared load context, where another module's AWSSDK.Core or
    /// Azure.Core would clash with it.</summary>
    [Fact]
    public void Only_the_loader_is_outside_the_dependencies_folder()
    {
        Assert.Equal(["PSBackup.Loader.dll"], Directory.GetFiles(_moduleDir, "*.dll").Select(f => Path.GetFileName(f)!).ToArray());
        Assert.False(Directory.Exists(Path.Combine(_moduleDir, "runtimes")), "Native libraries belong under dependencies/runtimes, where the load context finds them.");
        string psm1 = File.ReadAllText(Path.Combine(_moduleDir, "PSBackup.psm1"));
        Assert.Contains("PSBackup.Loader.dll", psm1);
        Assert.Contains("Import-Module", psm1);
    }

    [Fact]
    public void The_module_checks_its_load_context_on_import()
    {
        Type[] initializers = _cmdlets.GetTypes()
            .Where(t => t.GetInterfaces().Any(i => i.FullName == "System.Management.Automation.IModuleAssemblyInitializer"))
            .ToArray();
        Type initializer = Assert.Single(initializers);
        Assert.Contains(initializer.GetInterfaces(), i => i.FullName == "System.Management.Automation.IModuleAssemblyCleanup");
    }

    /// <summary>PowerShell rejects a ValidateRange whose bounds differ in type (int 0 with
    /// long.MaxValue) when it binds the parameter, so the cmdlet would fail in every call; and a
    /// bound must be of the parameter's own type to compare.</summary>
    [Fact]
    public void Every_ValidateRange_has_bounds_of_the_parameter_type()
    {
        var ranges = _cmdletInfos.SelectMany(c => c.Parameters)
            .SelectMany(p => p.GetCustomAttributesData()
                .Where(a => a.AttributeType.FullName == "System.Management.Automation.ValidateRangeAttribute" && a.ConstructorArguments.Count == 2)
                .Select(a => (Parameter: p, Min: a.ConstructorArguments[0].Value, Max: a.ConstructorArguments[1].Value)))
            .ToList();
        Assert.NotEmpty(ranges);
        foreach (var (parameter, min, max) in ranges)
        {
            Type type = parameter.PropertyType; // a MetadataLoadContext type: compare by name
            Type element = type.IsGenericType && type.GetGenericTypeDefinition().FullName == "System.Nullable`1" ? type.GetGenericArguments()[0] : type;
            Assert.True(min is not null && max is not null && min.GetType() == max.GetType(),
                $"{parameter.DeclaringType!.Name}.{parameter.Name}: ValidateRange bounds are {min?.GetType().Name} and {max?.GetType().Name}");
            Assert.Equal(element.FullName, min!.GetType().FullName);
        }
    }

    // ---- helpers ------------------------------------------------------------------------------

    private sealed record CmdletInfo(Type Type, string Verb, string Noun, string? DefaultParameterSetName,
        bool SupportsShouldProcess, int ConfirmImpact, IReadOnlyList<PropertyInfo> Parameters)
    {
        public string Name => $"{Verb}-{Noun}";
    }

    private static List<CmdletInfo> ReadCmdlets(Assembly assembly)
    {
        var result = new List<CmdletInfo>();
        foreach (Type type in assembly.GetTypes())
        {
            CustomAttributeData? cmdlet = type.GetCustomAttributesData()
                .FirstOrDefault(a => a.AttributeType.FullName == "System.Management.Automation.CmdletAttribute");
            if (cmdlet is null)
            {
                continue;
            }
            object? Named(string name) => cmdlet.NamedArguments.FirstOrDefault(n => n.MemberName == name).TypedValue.Value;
            PropertyInfo[] parameters = type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
                .Where(p => p.GetCustomAttributesData().Any(a => a.AttributeType.FullName == "System.Management.Automation.ParameterAttribute"))
                .ToArray();
            result.Add(new CmdletInfo(type, (string)cmdlet.ConstructorArguments[0].Value!, (string)cmdlet.ConstructorArguments[1].Value!,
                (string?)Named("DefaultParameterSetName"), (bool?)Named("SupportsShouldProcess") ?? false,
                Named("ConfirmImpact") is int impact ? impact : 2 /* Medium */, parameters));
        }
        return result;
    }

    /// <summary>-AfterSegmentId → --after-segment-id; a script block parameter -XxxScript runs a
    /// shell command in the CLI, --xxx-command (a noun -ValidationScript reads as a verb there:
    /// --validate-command).</summary>
    private static string OptionFor(PropertyInfo parameter)
    {
        string name = parameter.Name;
        if (parameter.PropertyType.FullName == "System.Management.Automation.ScriptBlock")
        {
            Assert.EndsWith("Script", name);
            name = name[..^"Script".Length] + "Command";
            name = name == "ValidationCommand" ? "ValidateCommand" : name;
        }
        return "--" + Kebab(name);
    }

    private static string Kebab(string pascal) => KebabBoundary().Replace(pascal, "-$1").ToLowerInvariant();

    [GeneratedRegex("(?<!^)([A-Z])")]
    private static partial Regex KebabBoundary();

    [GeneratedRegex(@"ModuleVersion\s*=\s*'[^']*'")]
    private static partial Regex VersionLine();

    private static SclCommand? FindCommand(SclCommand root, string path)
    {
        SclCommand? current = root;
        foreach (string part in path.Split(' '))
        {
            current = current?.Subcommands.FirstOrDefault(c => c.Name == part);
        }
        return current;
    }

    internal static string FindRepoRoot()
    {
        for (DirectoryInfo? dir = new(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "PSBackup.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException($"PSBackup.sln not found above {AppContext.BaseDirectory}.");
    }

    private static string NuGetRoot() =>
        Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } configured
            ? configured
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
}
