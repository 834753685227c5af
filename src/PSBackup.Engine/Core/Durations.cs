using System.Globalization;

namespace PSBackup.Engine;

/// <summary>The one way durations are written on every command line and cmdlet (retention's
/// -KeepWithin and -PackGracePeriod, health's -MaxAge and -MaxRestoreTestAge): restic's style
/// "14d", "24h", "2w", "1y" (365 days) and combinations like "1d12h", plus "min", "s" and "ms" for
/// the short intervals of continuous WAL shipping ("5s", "5min", "500ms"), or a TimeSpan
/// ("1.12:00:00").</summary>
public static class Durations
{
    /// <summary>Parses a duration; anything else is <c>InvalidDuration</c>. restic's "m" (months)
    /// is not accepted: a month has no fixed length.</summary>
    public static TimeSpan Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string s = text.Trim();
        if (TimeSpan.TryParse(s, CultureInfo.InvariantCulture, out TimeSpan plain) && s.Contains(':', StringComparison.Ordinal))
        {
            return plain;
        }
        TimeSpan total = TimeSpan.Zero;
        int i = 0;
        bool any = false;
        try
        {
            while (i < s.Length)
            {
                int start = i;
                while (i < s.Length && char.IsAsciiDigit(s[i])) { i++; }
                if (start == i || i == s.Length)
                {
                    throw Bad(text);
                }
                if (!long.TryParse(s.AsSpan(start, i - start), NumberStyles.None, CultureInfo.InvariantCulture, out long n))
                {
                    throw TooLong(text);
                }
                int unitStart = i;
                while (i < s.Length && char.IsAsciiLetter(s[i])) { i++; }
                total += s[unitStart..i] switch
                {
                    "y" => TimeSpan.FromDays(checked(365 * n)),
                    "w" => TimeSpan.FromDays(checked(7 * n)),
                    "d" => TimeSpan.FromDays(n),
                    "h" => TimeSpan.FromHours(n),
                    "min" => TimeSpan.FromMinutes(n),
                    "s" => TimeSpan.FromSeconds(n),
                    "ms" => TimeSpan.FromMilliseconds(n),
                    _ => throw Bad(text),
                };
                any = true;
            }
        }
        catch (Exception e) when (e is OverflowException or ArgumentOutOfRangeException)
        {
            // A duration longer than TimeSpan can hold (~29,000 years) is bad input, not a crash.
            throw TooLong(text);
        }
        return any ? total : throw Bad(text);
    }

    private static InvalidInputException TooLong(string text) => new("InvalidDuration",
        $"'{SafePath.Printable(text)}' is longer than any duration PSBackup can use (at most about 29,000 years). Give a shorter one, e.g. 10y.", text);

    /// <summary>How long an operation took, in seconds rounded to the millisecond: what every
    /// result's <c>Duration</c> holds. A number, because ConvertTo-Json expands a TimeSpan into its
    /// 15 properties (Ticks, Days, ..., TotalSeconds) and no attribute or types.ps1xml member can
    /// change that for a .NET property of a piped object.</summary>
    public static double Seconds(TimeSpan elapsed) => Math.Round(elapsed.TotalSeconds, 3);

    /// <summary>The shortest of "14d", "24h", "90min" that is exact (each parses back), else d.hh:mm:ss.</summary>
    public static string Format(TimeSpan d)
    {
        if (d.Ticks % TimeSpan.TicksPerDay == 0) { return ((long)d.TotalDays).ToString(CultureInfo.InvariantCulture) + "d"; }
        if (d.Ticks % TimeSpan.TicksPerHour == 0) { return ((long)d.TotalHours).ToString(CultureInfo.InvariantCulture) + "h"; }
        if (d.Ticks % TimeSpan.TicksPerMinute == 0) { return ((long)d.TotalMinutes).ToString(CultureInfo.InvariantCulture) + "min"; }
        return d.ToString("c", CultureInfo.InvariantCulture);
    }

    private static InvalidInputException Bad(string text) => new("InvalidDuration",
        $"'{text}' is not a duration; write it as a number and a unit (y, w, d, h, min, s, ms), e.g. 14d, 24h, 1d12h, 5min or 5s, or as d.hh:mm:ss.", text);
}
