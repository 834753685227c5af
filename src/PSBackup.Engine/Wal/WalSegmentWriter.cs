namespace PSBackup.Engine.Wal;

/// <summary>Writes a walfs v2 segment: preallocated, records appended, header kept current on
/// <see cref="Sync"/>, and <see cref="Seal"/> writes the footer and flips the flags.</summary>
public sealed class WalSegmentWriter : IDisposable
{
    /// <summary>Creates a new active segment file (fails if it exists), zero-filled to <paramref name="fileSize"/>.</summary>
    public static WalSegmentWriter Create(string path, long firstLogIndex, DateTimeOffset createdAt, long fileSize = WalFormat.DefaultSegmentSize) =>
        throw new NotImplementedException();

    public long FirstLogIndex => throw new NotImplementedException();
    public long EntryCount => throw new NotImplementedException();
    public long NextLogIndex => FirstLogIndex + EntryCount;
    public long WriteOffset => throw new NotImplementedException();

    /// <summary>Whether a record of this length still fits, leaving room for the footer.</summary>
    public bool HasRoomFor(int dataLength) => throw new NotImplementedException();

    /// <summary>Appends one record; returns its log index. Throws when it does not fit.</summary>
    public long Append(ReadOnlySpan<byte> data) => throw new NotImplementedException();

    /// <summary>Rewrites the header (WriteOffset, EntryCount, CRC) and fsyncs.</summary>
    public void Sync() => throw new NotImplementedException();

    /// <summary>Writes the footer, syncs, sets Sealed, clears Active, stamps LastModifiedAt, and syncs.</summary>
    public void Seal(DateTimeOffset sealedAt) => throw new NotImplementedException();

    public void Dispose() => throw new NotImplementedException();
}
