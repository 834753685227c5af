namespace PSBackup.Example;

/// <summary>Writes one namespace of the example database as its engine does: records go to the WAL
/// first and are folded into the store later, so the store lags the WAL.</summary>
public interface IExampleNamespaceWriter : IDisposable
{
    /// <summary>Log index of the last record appended to the WAL (0 before the first).</summary>
    long LastLogIndex { get; }
    /// <summary>Log index of the last record folded into the store.</summary>
    long AppliedLogIndex { get; }
    int SealedSegments { get; }
    long ActiveSegmentId { get; }

    /// <summary>Appends a record to the WAL (not yet applied to the store); returns its log index.</summary>
    long Append(ExampleRecord record);

    /// <summary>Folds pending records up to <paramref name="logIndex"/> into the store in one transaction.</summary>
    int ApplyUpTo(long logIndex);
}
