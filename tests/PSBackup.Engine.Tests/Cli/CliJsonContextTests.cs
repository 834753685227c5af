using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;
using PSBackup.Cli;
using PSBackup.Engine.Retention;

namespace PSBackup.Engine.Tests.Cli;

/// <summary>The CLI's JSON goes through <see cref="CliJsonContext"/> only (what a Native AOT
/// publish needs): every enum an output type can reach is written as a camelCase string by one
/// of <see cref="CliOutput.Json"/>'s converters, no output property is <c>object</c> or an
/// interface the metadata cannot follow, and an unregistered type throws instead of falling
/// back to reflection.</summary>
public sealed class CliJsonContextTests
{
    private static IEnumerable<Type> RegisteredTypes() =>
        typeof(CliJsonContext).GetCustomAttributesData()
            .Where(a => a.AttributeType == typeof(JsonSerializableAttribute))
            .Select(a => (Type)a.ConstructorArguments[0].Value!);

    /// <summary>Every type the serializer writes from <paramref name="root"/>: public instance
    /// properties (not <c>[JsonIgnore]</c>d), recursively, through collections' element types and
    /// nullable underlying types. What it cannot follow goes to <paramref name="problems"/>.</summary>
    private static void Walk(Type type, string where, HashSet<Type> seen, List<string> problems)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (!seen.Add(type) || type.IsPrimitive || type == typeof(string) || type == typeof(decimal) || type == typeof(DateTimeOffset)
            || type == typeof(DateTime) || type == typeof(TimeSpan) || type == typeof(Guid) || type == typeof(Uri))
        {
            return;
        }
        if (type == typeof(object))
        {
            problems.Add($"{where} is typed object: its runtime type has no build-time metadata; give it a concrete type");
            return;
        }
        if (type.IsEnum)
        {
            return;
        }
        Type? element = type.IsArray ? type.GetElementType()
            : (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(IEnumerable<>) ? type : type.GetInterfaces()
                .FirstOrDefault(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IEnumerable<>)))?.GetGenericArguments()[0];
        if (element is not null)
        {
            Walk(element, $"{where}[]", seen, problems);
            return;
        }
        if (type.IsInterface || type.IsAbstract)
        {
            problems.Add($"{where} is typed {type.Name}: only its declared members are written; give it a concrete type");
            return;
        }
        foreach (PropertyInfo p in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (p.GetMethod is not { IsPublic: true } || p.GetIndexParameters().Length > 0
                || p.GetCustomAttribute<JsonIgnoreAttribute>() is { Condition: JsonIgnoreCondition.Always })
            {
                continue;
            }
            Walk(p.PropertyType, $"{type.Name}.{p.Name}", seen, problems);
        }
    }

    private static HashSet<Type> Reachable(out List<string> problems)
    {
        var seen = new HashSet<Type>();
        problems = [];
        foreach (Type t in RegisteredTypes())
        {
            Walk(t, t.Name, seen, problems);
        }
        return seen;
    }

    [Fact]
    public void EveryEnumAnOutputCanHoldIsWrittenAsACamelCaseString()
    {
        HashSet<Type> reachable = Reachable(out _);
        Type[] enums = [.. reachable.Where(t => t.IsEnum)];
        Assert.Contains(typeof(RetentionDecision), enums);
        Assert.All(enums, e => Assert.True(CliOutput.Json.Converters.Any(c => c.CanConvert(e)),
            $"{e.FullName} appears in CLI JSON output but CliOutput.Json has no JsonStringEnumConverter<{e.Name}>(JsonNamingPolicy.CamelCase): it would be written as a number."));
    }

    [Fact]
    public void NoOutputPropertyIsObjectOrAnInterface()
    {
        Reachable(out List<string> problems);
        Assert.Empty(problems);
    }

    [Fact]
    public void EveryRegisteredTypeResolvesThroughTheOptions()
    {
        Assert.NotEmpty(RegisteredTypes());
        Assert.All(RegisteredTypes(), t => Assert.NotNull(CliOutput.Json.GetTypeInfo(t)));
    }

    [Fact]
    public void AnUnregisteredTypeThrowsInsteadOfFallingBackToReflection()
    {
        Assert.Throws<NotSupportedException>(() => CliOutput.ToJson(new { healthy = true }));
    }

    [Fact]
    public void EnumsAreCamelCaseStringsAndNullsAreWritten()
    {
        var prune = new RetentionOutput.PruneJson(true, 0, 0, 0,
            [new RetentionOutput.PruneItemJson(RetentionDecision.Remove, false, "objectBackup", "id1", null, null, null, "acme", "customers", null, null, 5, ["last"], null)]);
        using JsonDocument doc = JsonDocument.Parse(CliOutput.ToJson(prune));
        JsonElement item = doc.RootElement.GetProperty("items")[0];
        Assert.Equal("remove", item.GetProperty("decision").GetString());
        Assert.Equal(JsonValueKind.Null, item.GetProperty("repository").ValueKind);
        Assert.Equal(["whatIf", "kept", "removed", "removedBytes", "items"], doc.RootElement.EnumerateObject().Select(p => p.Name));
    }
}
