using System.Globalization;

namespace PSBackup.Engine;

/// <summary>Byte counts as people read them (binary units, one decimal), the same in CLI tables,
/// verbose messages, progress and the module's <c>ToString()</c>s.</summary>
public static class Sizes
{
    public static string Format(long bytes) => bytes switch
    {
        >= 1L << 30 => (bytes / (double)(1L << 30)).ToString("N1", CultureInfo.InvariantCulture) + " GiB",
        >= 1L << 20 => (bytes / (double)(1L << 20)).ToString("N1", CultureInfo.InvariantCulture) + " MiB",
        >= 1L << 10 => (bytes / 1024d).ToString("N1", CultureInfo.InvariantCulture) + " KiB",
        _ => bytes.ToString(CultureInfo.InvariantCulture) + " B",
    };

    /// <summary>A rate such as "12.5 MiB/s".</summary>
    public static string FormatRate(double bytesPerSecond) =>
        Format((long)Math.Max(0, Math.Min(bytesPerSecond, long.MaxValue))) + "/s";
}
