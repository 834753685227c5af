namespace PSBackup.Engine.Wal;

/// <summary>Constants and names of the walfs v2 segment format (SPEC appendix A).</summary>
public static class WalFormat
{
    public const long DefaultSegmentSize = 16L << 20;

    /// <summary>"%09d.wal".</summary>
    public static string SegmentFileName(long segmentId) => throw new NotImplementedException();

    /// <summary>Parses "000000043.wal" to 43; false for anything else.</summary>
    public static bool TryParseSegmentFileName(string fileName, out long segmentId) => throw new NotImplementedException();
}
