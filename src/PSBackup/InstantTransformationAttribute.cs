using System.Globalization;
using System.Management.Automation;

namespace PSBackup;

/// <summary>Binds a time parameter (-After, -Before, -TargetTime) typed <see cref="DateTimeOffset"/>:
/// the module's own time values (every <c>Time</c>, <c>CompletedAt</c>, <c>CreatedAt</c> is a
/// DateTimeOffset) pass unchanged, so <c>-TargetTime $snapshot.Time</c> is exactly the instant the
/// record shows. A <see cref="DateTime"/> (<c>Get-Date</c>, <c>[datetime]'2025-01-08'</c>) is an
/// instant in its own kind: UTC stays UTC, local and unspecified are local time, as PowerShell users
/// expect; values whose UTC instant falls outside DateTimeOffset's range (<c>[datetime]::MinValue</c>
/// east of UTC) are clamped instead of failing. Text is parsed like <c>[datetimeoffset]'...'</c>
/// (invariant culture, local time when it has no offset).</summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
public sealed class InstantTransformationAttribute : ArgumentTransformationAttribute
{
    public override object? Transform(EngineIntrinsics engineIntrinsics, object? inputData)
    {
        object? value = inputData is PSObject wrapped ? wrapped.BaseObject : inputData;
        return value switch
        {
            null => null,
            DateTimeOffset instant => instant,
            DateTime time => InstantOf(time),
            string text => Parse(text),
            _ => inputData,
        };
    }

    /// <summary>A DateTime as an instant (see the class summary).</summary>
    public static DateTimeOffset InstantOf(DateTime value)
    {
        if (value.Kind == DateTimeKind.Utc)
        {
            return new DateTimeOffset(value);
        }
        TimeSpan offset = TimeZoneInfo.Local.GetUtcOffset(value);
        if (offset > TimeSpan.Zero && value < DateTime.MinValue + offset)
        {
            return DateTimeOffset.MinValue;
        }
        if (offset < TimeSpan.Zero && value > DateTime.MaxValue + offset)
        {
            return DateTimeOffset.MaxValue;
        }
        return new DateTimeOffset(value, offset);
    }

    private static DateTimeOffset Parse(string text)
    {
        if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AllowWhiteSpaces | DateTimeStyles.AssumeLocal, out DateTimeOffset parsed))
        {
            return parsed;
        }
        throw new ArgumentTransformationMetadataException(
            $"'{text}' is not a time. Give a DateTime or DateTimeOffset (Get-Date, a record's Time), or text such as '2025-01-08 03:00' or '2025-01-08T03:00:00Z'.");
    }
}
