using System.ComponentModel;
using System.Globalization;
using System.Text;

namespace PSBackup.Engine;

/// <summary>Text to a kind enum for PowerShell's conversions (parameter binding, <c>-eq</c> with the
/// property on the left, <c>Where-Object Kind -eq ...</c>): the member name (StoreSnapshot) or the
/// command line's kebab-case spelling (store-snapshot), any case, plus the aliases a subclass
/// names (earlier spellings). Anything else is a FormatException, which PowerShell reports as a
/// failed conversion (a -eq is then false, a parameter does not bind).</summary>
public abstract class SpelledEnumConverter : EnumConverter
{
    private readonly IReadOnlyDictionary<string, object> _aliases;

    protected SpelledEnumConverter([System.Diagnostics.CodeAnalysis.DynamicallyAccessedMembers(System.Diagnostics.CodeAnalysis.DynamicallyAccessedMemberTypes.PublicParameterlessConstructor | System.Diagnostics.CodeAnalysis.DynamicallyAccessedMemberTypes.PublicFields)] Type type, IReadOnlyDictionary<string, object>? aliases = null)
        : base(type)
    {
        _aliases = aliases ?? new Dictionary<string, object>();
    }

    public override object ConvertFrom(ITypeDescriptorContext? context, CultureInfo? culture, object value)
    {
        if (value is string text && Parse(EnumType, text, _aliases) is { } parsed)
        {
            return parsed;
        }
        return base.ConvertFrom(context, culture, value)!;
    }

    /// <summary><paramref name="text"/> as a member of <paramref name="type"/>: an alias, the name or
    /// its kebab-case spelling (never a number); null when it is none.</summary>
    public static object? Parse(Type type, string text, IReadOnlyDictionary<string, object>? aliases = null)
    {
        ArgumentNullException.ThrowIfNull(type);
        string t = (text ?? "").Trim();
        foreach (KeyValuePair<string, object> alias in aliases ?? new Dictionary<string, object>())
        {
            if (string.Equals(alias.Key, t, StringComparison.OrdinalIgnoreCase))
            {
                return alias.Value;
            }
        }
        string compact = t.Replace("-", "", StringComparison.Ordinal);
        foreach (string name in Enum.GetNames(type))
        {
            if (string.Equals(name, compact, StringComparison.OrdinalIgnoreCase))
            {
                return Enum.Parse(type, name);
            }
        }
        return null;
    }

    /// <summary>A member name in the command line's spelling: StoreSnapshot is store-snapshot.</summary>
    public static string Kebab(Enum value)
    {
        ArgumentNullException.ThrowIfNull(value);
        string name = value.ToString();
        var sb = new StringBuilder(name.Length + 4);
        for (int i = 0; i < name.Length; i++)
        {
            if (char.IsUpper(name[i]) && i > 0)
            {
                sb.Append('-');
            }
            sb.Append(char.ToLowerInvariant(name[i]));
        }
        return sb.ToString();
    }
}
