using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace PSBackup.Engine.Wal;

/// <summary>The parts of one pass of the continuous shipper, in the order they run.</summary>
public enum WalPassPhase
{
    /// <summary>Listing <c>wal/</c> and reading the newest segment's header (every tick, idle or not).</summary>
    Poll,
    /// <summary>Opening the repository: config, keys (the passphrase's key derivation), backend.</summary>
    Open,
    /// <summary>Taking the shared repository lock (and releasing the previous pass's).</summary>
    Lock,
    /// <summary>Making the in-memory index current (a full reload, or the cheap check that none is needed).</summary>
    Index,
    /// <summary>Listing what the repository holds of the namespace (its WAL refs).</summary>
    Refs,
    /// <summary>Selecting, validating and hashing newly sealed segments (and checking continuity).</summary>
    Select,
    /// <summary>Storing newly sealed segments (chunk, compress, encrypt, pack, commit).</summary>
    Sealed,
    /// <summary>Validating the active segment's prefix (every record frame and CRC).</summary>
    Scan,
    /// <summary>Storing the partial: reading the prefix, chunking, compressing, writing the pack.</summary>
    Store,
    /// <summary>Committing the partial: index object, manifest, ref.</summary>
    Commit,
    /// <summary>Forgetting the partials the new one supersedes (refs and manifests).</summary>
    Forget,
    /// <summary>Releasing the lock and closing what the pass opened.</summary>
    Release,
}

/// <summary>Where one pass of the continuous shipper spent its time (<see cref="WalFollowStatus.Cost"/>),
/// measured with a monotonic clock: the -Verbose lag line ends with it, and the RPO benchmark
/// sums it per phase (docs/performance.md).</summary>
public sealed record WalPassCost
{
    /// <summary>Time per phase (phases that did not run are zero).</summary>
    public required IReadOnlyDictionary<WalPassPhase, TimeSpan> Phases { get; init; }
    /// <summary>The whole pass, from the poll that saw the change to the end of its release.</summary>
    public required TimeSpan Total { get; init; }

    public TimeSpan this[WalPassPhase phase] => Phases.TryGetValue(phase, out TimeSpan t) ? t : TimeSpan.Zero;

    /// <summary>"pass 41 ms: poll 0.2, lock 3.1, index 0.1, scan 6.0, store 21.3, commit 9.8, release 0.7 (ms)".</summary>
    public override string ToString()
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"pass {Total.TotalMilliseconds:0.#} ms:");
        bool first = true;
        foreach ((WalPassPhase phase, TimeSpan t) in Phases.OrderBy(p => p.Key))
        {
            if (t <= TimeSpan.Zero)
            {
                continue;
            }
            text.Append(first ? " " : ", ");
            text.Append(phase.ToString().ToLowerInvariant()).Append(' ').Append(t.TotalMilliseconds.ToString("0.#", CultureInfo.InvariantCulture));
            first = false;
        }
        return text.Append(first ? "" : " (ms)").ToString();
    }
}

/// <summary>The stopwatch of one pass: each <see cref="Lap"/> charges the time since the previous
/// lap to a phase. Laps come from one flow at a time (the pass is sequential; parallel uploads are
/// charged once, when they have all finished).</summary>
internal sealed class WalPassClock
{
    private readonly long[] _ticks = new long[Enum.GetValues<WalPassPhase>().Length];
    private long _start = Stopwatch.GetTimestamp();
    private long _mark = Stopwatch.GetTimestamp();

    /// <summary>Starts a new pass.</summary>
    public void Restart()
    {
        Array.Clear(_ticks);
        _start = _mark = Stopwatch.GetTimestamp();
    }

    /// <summary>Charges the time since the last lap to <paramref name="phase"/>.</summary>
    public void Lap(WalPassPhase phase)
    {
        long now = Stopwatch.GetTimestamp();
        _ticks[(int)phase] += now - _mark;
        _mark = now;
    }

    /// <summary>Forgets the time since the last lap (a wait that belongs to no phase).</summary>
    public void Skip() => _mark = Stopwatch.GetTimestamp();

    public WalPassCost Snapshot()
    {
        var phases = new Dictionary<WalPassPhase, TimeSpan>();
        for (int i = 0; i < _ticks.Length; i++)
        {
            if (_ticks[i] > 0)
            {
                phases[(WalPassPhase)i] = Stopwatch.GetElapsedTime(0, _ticks[i]);
            }
        }
        return new WalPassCost { Phases = phases, Total = Stopwatch.GetElapsedTime(_start, _mark) };
    }
}
