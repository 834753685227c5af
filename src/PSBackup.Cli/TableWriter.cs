namespace PSBackup.Cli;

/// <summary>A plain aligned text table for people: a header row, a rule, then the rows.</summary>
internal sealed class TableWriter
{
    private readonly List<(string Header, bool RightAlign)> _columns = [];
    private readonly List<string[]> _rows = [];

    public TableWriter Column(string header, bool rightAlign = false)
    {
        _columns.Add((header, rightAlign));
        return this;
    }

    public void Row(params string?[] cells)
    {
        if (cells.Length != _columns.Count)
        {
            throw new ArgumentException($"Expected {_columns.Count} cells, got {cells.Length}.", nameof(cells));
        }
        _rows.Add(cells.Select(c => c ?? "").ToArray());
    }

    public void WriteTo(TextWriter writer)
    {
        int[] widths = _columns.Select((c, i) => Math.Max(c.Header.Length, _rows.Count == 0 ? 0 : _rows.Max(r => r[i].Length))).ToArray();
        WriteLine(writer, _columns.Select(c => c.Header).ToArray(), widths);
        WriteLine(writer, widths.Select(w => new string('-', w)).ToArray(), widths);
        foreach (string[] row in _rows)
        {
            WriteLine(writer, row, widths);
        }
    }

    private void WriteLine(TextWriter writer, string[] cells, int[] widths)
    {
        var parts = new string[cells.Length];
        for (int i = 0; i < cells.Length; i++)
        {
            bool last = i == cells.Length - 1;
            parts[i] = _columns[i].RightAlign ? cells[i].PadLeft(widths[i]) : last ? cells[i] : cells[i].PadRight(widths[i]);
        }
        writer.WriteLine(string.Join("  ", parts).TrimEnd());
    }

    public static string Size(long bytes) => PSBackup.Engine.Sizes.Format(bytes);
}
