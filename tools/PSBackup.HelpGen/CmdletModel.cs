using System.Reflection;
using System.Runtime.InteropServices;

namespace PSBackup.HelpGen;

/// <summary>One cmdlet's help, from its class's attributes (read with MetadataLoadContext: the
/// cmdlet assembly targets PowerShell and is never executed here) and its XML doc comments.</summary>
internal sealed record CmdletHelp
{
    public required string Name { get; init; }
    public required string Verb { get; init; }
    public required string Noun { get; init; }
    public required string TypeName { get; init; }
    public required string DefaultParameterSet { get; init; }
    public required bool SupportsShouldProcess { get; init; }
    /// <summary>0 None, 1 Low, 2 Medium, 3 High (System.Management.Automation.ConfirmImpact).</summary>
    public required int ConfirmImpact { get; init; }
    public required DocText Summary { get; init; }
    public required IReadOnlyList<ExampleHelp> Examples { get; init; }
    public required IReadOnlyList<ParameterHelp> Parameters { get; init; }
    public required IReadOnlyList<TypeHelp> Outputs { get; init; }
    public List<TypeHelp> Inputs { get; } = [];
    public required IReadOnlyList<string> Related { get; init; }
    /// <summary>The <c>psbackup</c> command doing the same (the class's &lt;cli&gt; doc tag).</summary>
    public required string? Cli { get; init; }

    public IReadOnlyList<string> ParameterSets
    {
        get
        {
            var named = Parameters.SelectMany(p => p.Sets).Select(s => s.Name).Where(n => n != ParameterSetHelp.All).Distinct().ToList();
            if (named.Count == 0)
            {
                return [DefaultParameterSet.Length > 0 ? DefaultParameterSet : ParameterSetHelp.All];
            }
            if (!named.Contains(DefaultParameterSet) && DefaultParameterSet.Length > 0)
            {
                named.Add(DefaultParameterSet);
            }
            // The default set first, the others in declaration order.
            return named.OrderBy(n => n == DefaultParameterSet ? 0 : 1).ToList();
        }
    }

    /// <summary>The parameters of one set with their attributes in it, in PowerShell's syntax
    /// order: positional by position, then mandatory, then optional (declaration order).</summary>
    public IReadOnlyList<(ParameterHelp Parameter, ParameterSetHelp Set)> ParametersOf(string set)
    {
        var result = new List<(ParameterHelp, ParameterSetHelp)>();
        foreach (ParameterHelp p in Parameters)
        {
            ParameterSetHelp? s = p.Sets.FirstOrDefault(x => x.Name == set) ?? p.Sets.FirstOrDefault(x => x.Name == ParameterSetHelp.All);
            if (s is not null)
            {
                result.Add((p, s));
            }
        }
        return result
            .OrderBy(x => x.Item2.Position is null ? 1 : 0)
            .ThenBy(x => x.Item2.Position ?? 0)
            .ThenBy(x => x.Item2.Mandatory ? 0 : 1)
            .ToList();
    }
}

internal sealed record ExampleHelp(string Title, string Code, IReadOnlyList<string> Remarks, IReadOnlyList<string> RemarksMarkdown);

internal sealed record ParameterHelp
{
    public required string Name { get; init; }
    /// <summary>The type as PowerShell shows it in syntax (String, String[], SwitchParameter).</summary>
    public required string TypeName { get; init; }
    public required string TypeFullName { get; init; }
    /// <summary>The class that declares the property (where its doc comment lives).</summary>
    public string DeclaringType { get; init; } = "";
    public required bool IsSwitch { get; init; }
    public required DocText Description { get; init; }
    public required IReadOnlyList<string> Aliases { get; init; }
    public required bool Globbing { get; init; }
    public required IReadOnlyList<string> ValidValues { get; init; }
    public required string? DefaultValue { get; init; }
    public required IReadOnlyList<ParameterSetHelp> Sets { get; init; }
    /// <summary>WhatIf and Confirm, which the module documents like PowerShell does.</summary>
    public bool IsCommon { get; init; }

    public bool ByValue => Sets.Any(s => s.ByValue);
    public bool ByPropertyName => Sets.Any(s => s.ByPropertyName);

    public string PipelineInput =>
        ByValue && ByPropertyName ? "True (ByValue, ByPropertyName)"
        : ByValue ? "True (ByValue)"
        : ByPropertyName ? "True (ByPropertyName)"
        : "False";
}

internal sealed record ParameterSetHelp(string Name, bool Mandatory, int? Position, bool ByValue, bool ByPropertyName)
{
    public const string All = "__AllParameterSets";
}

/// <summary>A type a cmdlet takes from or writes to the pipeline, with what the engine's doc says of it.</summary>
internal sealed record TypeHelp(string FullName, IReadOnlyList<string> Description);

/// <summary>Doc comment text in two renderings: plain paragraphs (MAML) and markdown.</summary>
internal sealed record DocText(IReadOnlyList<string> Plain, IReadOnlyList<string> Markdown)
{
    public static readonly DocText Empty = new([], []);

    public bool IsEmpty => Plain.Count == 0 || Plain.All(string.IsNullOrWhiteSpace);
}

/// <summary>Reads the cmdlet classes of PSBackup.dll through MetadataLoadContext.</summary>
internal static class CmdletReader
{
    private const string Sma = "System.Management.Automation.";

    public static List<CmdletHelp> Read(string moduleAssembly, string smaReference, DocComments docs, DocComments engineDocs)
    {
        string moduleDir = Path.GetDirectoryName(Path.GetFullPath(moduleAssembly))!;
        IEnumerable<string> paths = Directory.GetFiles(RuntimeEnvironment.GetRuntimeDirectory(), "*.dll")
            .Concat(Directory.GetFiles(moduleDir, "*.dll").Where(f => !Path.GetFileName(f).Equals("System.Management.Automation.dll", StringComparison.OrdinalIgnoreCase)))
            .Append(smaReference);
        using var mlc = new MetadataLoadContext(new PathAssemblyResolver(paths));
        Assembly assembly = mlc.LoadFromAssemblyPath(Path.GetFullPath(moduleAssembly));
        var result = new List<CmdletHelp>();
        foreach (Type type in assembly.GetTypes().OrderBy(t => t.FullName, StringComparer.Ordinal))
        {
            CustomAttributeData? cmdlet = type.GetCustomAttributesData().FirstOrDefault(a => a.AttributeType.FullName == Sma + "CmdletAttribute");
            if (cmdlet is null)
            {
                continue;
            }
            object? Named(string name) => cmdlet.NamedArguments.FirstOrDefault(n => n.MemberName == name).TypedValue.Value;
            string verb = (string)cmdlet.ConstructorArguments[0].Value!;
            string noun = (string)cmdlet.ConstructorArguments[1].Value!;
            bool shouldProcess = (bool?)Named("SupportsShouldProcess") ?? false;
            var parameters = new List<ParameterHelp>();
            foreach (PropertyInfo p in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
            {
                ParameterHelp? help = ReadParameter(p, docs);
                if (help is not null)
                {
                    parameters.Add(help);
                }
            }
            if (shouldProcess)
            {
                parameters.Add(Common("WhatIf", "wi", "Shows what the cmdlet would do (the targets ShouldProcess names) and changes nothing: no file, backup, lock, history event or audit line is written."));
                parameters.Add(Common("Confirm", "cf", "Asks for confirmation before each change (each backup, file or segment written, replaced or removed)."));
            }
            XmlDocMember? typeDoc = docs.Member("T:" + type.FullName);
            var outputs = new List<TypeHelp>();
            foreach (CustomAttributeData output in type.GetCustomAttributesData().Where(a => a.AttributeType.FullName == Sma + "OutputTypeAttribute"))
            {
                foreach (CustomAttributeTypedArgument t in (IEnumerable<CustomAttributeTypedArgument>)output.ConstructorArguments[0].Value!)
                {
                    var outType = (Type)t.Value!;
                    DocText d = engineDocs.Member("T:" + outType.FullName)?.Summary ?? DocText.Empty;
                    outputs.Add(new TypeHelp(outType.FullName!, d.Plain));
                }
            }
            result.Add(new CmdletHelp
            {
                Name = $"{verb}-{noun}",
                Verb = verb,
                Noun = noun,
                TypeName = type.FullName!,
                DefaultParameterSet = (string?)Named("DefaultParameterSetName") ?? "",
                SupportsShouldProcess = shouldProcess,
                ConfirmImpact = Named("ConfirmImpact") is int impact ? impact : 2,
                Summary = typeDoc?.Summary ?? DocText.Empty,
                Examples = typeDoc?.Examples ?? [],
                Parameters = parameters,
                Outputs = outputs,
                Related = typeDoc?.SeeAlso ?? [],
                Cli = typeDoc?.Cli,
            });
        }
        AddInputs(result, assembly, mlc, engineDocs);
        return result;
    }

    private static ParameterHelp Common(string name, string alias, string text) => new()
    {
        Name = name,
        TypeName = "SwitchParameter",
        TypeFullName = Sma + "SwitchParameter",
        IsSwitch = true,
        Description = new DocText([text], [text]),
        Aliases = [alias],
        Globbing = false,
        ValidValues = [],
        DefaultValue = "False",
        Sets = [new ParameterSetHelp(ParameterSetHelp.All, false, null, false, false)],
        IsCommon = true,
    };

    private static ParameterHelp? ReadParameter(PropertyInfo p, DocComments docs)
    {
        var attributes = p.GetCustomAttributesData();
        var sets = new List<ParameterSetHelp>();
        foreach (CustomAttributeData a in attributes.Where(a => a.AttributeType.FullName == Sma + "ParameterAttribute"))
        {
            object? Named(string name) => a.NamedArguments.FirstOrDefault(n => n.MemberName == name).TypedValue.Value;
            int position = Named("Position") is int pos ? pos : int.MinValue;
            sets.Add(new ParameterSetHelp(
                (string?)Named("ParameterSetName") ?? ParameterSetHelp.All,
                (bool?)Named("Mandatory") ?? false,
                position == int.MinValue ? null : position,
                (bool?)Named("ValueFromPipeline") ?? false,
                (bool?)Named("ValueFromPipelineByPropertyName") ?? false));
        }
        if (sets.Count == 0)
        {
            return null;
        }
        Type type = p.PropertyType;
        if (type.IsGenericType && type.GetGenericTypeDefinition().FullName == "System.Nullable`1")
        {
            type = type.GetGenericArguments()[0];
        }
        string[] aliases = attributes.Where(a => a.AttributeType.FullName == Sma + "AliasAttribute")
            .SelectMany(a => ((IEnumerable<CustomAttributeTypedArgument>)a.ConstructorArguments[0].Value!).Select(v => (string)v.Value!))
            .ToArray();
        string[] validValues = attributes.Where(a => a.AttributeType.FullName == Sma + "ValidateSetAttribute")
            .SelectMany(a => ((IEnumerable<CustomAttributeTypedArgument>)a.ConstructorArguments[0].Value!).Select(v => (string)v.Value!))
            .ToArray();
        if (validValues.Length == 0 && type.IsEnum)
        {
            validValues = type.GetFields(BindingFlags.Public | BindingFlags.Static).Select(f => f.Name).ToArray();
        }
        XmlDocMember? doc = docs.Member($"P:{p.DeclaringType!.FullName}.{p.Name}");
        bool isSwitch = type.FullName == Sma + "SwitchParameter";
        return new ParameterHelp
        {
            Name = p.Name,
            TypeName = ShortName(type),
            TypeFullName = type.FullName ?? type.Name,
            DeclaringType = p.DeclaringType!.FullName!,
            IsSwitch = isSwitch,
            Description = doc?.Summary ?? DocText.Empty,
            Aliases = aliases,
            Globbing = attributes.Any(a => a.AttributeType.FullName == Sma + "SupportsWildcardsAttribute"),
            ValidValues = validValues,
            DefaultValue = doc?.Value ?? (isSwitch ? "False" : null),
            Sets = sets,
        };
    }

    /// <summary>String, String[], Int64, SecureString: the names PowerShell's syntax shows.</summary>
    private static string ShortName(Type t) => t.IsArray ? ShortName(t.GetElementType()!) + "[]" : t.Name;

    /// <summary>Input types: what a parameter takes by value, and every type the module itself
    /// writes that carries all of a cmdlet's mandatory by-property-name parameters (so piping it
    /// binds), e.g. Get-Backup's BackupRecord into Restore-StoreSnapshot.</summary>
    private static void AddInputs(List<CmdletHelp> cmdlets, Assembly module, MetadataLoadContext mlc, DocComments engineDocs)
    {
        var produced = cmdlets.SelectMany(c => c.Outputs.Select(o => o.FullName)).Distinct(StringComparer.Ordinal).ToList();
        Assembly? engine = module.GetReferencedAssemblies().Where(a => a.Name == "PSBackup.Engine").Select(mlc.LoadFromAssemblyName).FirstOrDefault();
        foreach (CmdletHelp c in cmdlets)
        {
            foreach (ParameterHelp p in c.Parameters.Where(p => p.ByValue))
            {
                string name = p.TypeFullName + (p.TypeName.EndsWith("[]", StringComparison.Ordinal) ? "[]" : "");
                c.Inputs.Add(new TypeHelp(name, [$"-{p.Name} takes it from the pipeline by value."]));
            }
            var byName = c.Parameters.Where(p => p.ByPropertyName).ToList();
            if (byName.Count == 0 || engine is null)
            {
                continue;
            }
            var candidates = new List<(string Type, List<string> Bound, string Writers)>();
            foreach (string typeName in produced)
            {
                Type? t = engine.GetType(typeName);
                if (t is null)
                {
                    continue;
                }
                var properties = t.GetProperties(BindingFlags.Public | BindingFlags.Instance).Select(x => x.Name).ToHashSet(StringComparer.OrdinalIgnoreCase);
                var bound = byName.Where(p => p.Aliases.Prepend(p.Name).Any(properties.Contains)).Select(p => p.Name).ToList();
                // Every set needs its mandatory by-name parameters; one set satisfied is enough.
                bool binds = bound.Count > 0 && c.ParameterSets.Any(set =>
                    c.ParametersOf(set).Where(x => x.Set.Mandatory && !x.Parameter.IsCommon).All(x => bound.Contains(x.Parameter.Name)));
                if (binds)
                {
                    candidates.Add((typeName, bound, string.Join(" and ", cmdlets.Where(o => o.Outputs.Any(x => x.FullName == typeName)).Select(o => o.Name))));
                }
            }
            // The records that bind the most, at most three: what a user pipes in practice.
            foreach (var (typeName, bound, writers) in candidates.OrderByDescending(x => x.Bound.Count).ThenBy(x => x.Type, StringComparer.Ordinal).Take(3))
            {
                c.Inputs.Add(new TypeHelp(typeName, [$"Binds {string.Join(", ", bound.Select(b => "-" + b))} by property name, as {writers} write{(writers.Contains(" and ", StringComparison.Ordinal) ? "" : "s")} it."]));
            }
            if (c.Inputs.Count == 0 || c.Inputs.All(i => i.FullName != "System.Management.Automation.PSObject"))
            {
                string names = string.Join(", ", byName.Select(p => "-" + p.Name));
                c.Inputs.Add(new TypeHelp("System.Management.Automation.PSObject", [$"Any object with properties named like {names}: they bind by property name."]));
            }
        }
    }
}
