using System.Collections.Concurrent;

namespace PSBackup.Engine.Tests.ObjectStore;

/// <summary>A shard-db stand-in writing on its own thread: changes shard, index and metadata files
/// in place (one positional write of one byte, at a position that moves across the file) and grows
/// them through <c>.new</c> + rename; now and then a new shard appears the same way. Every state a
/// file passes through is a version whose hash is recorded before it reaches the disk, so a test
/// knows every state each file ever had: a one-byte write has no half-done state, and a rename
/// switches whole files. (A multi-byte <c>write()</c> does: the kernel stamps the file's times when
/// the call begins and copies page by page, so a writer descheduled mid-call leaves bytes of two
/// versions in place for as long as it stalls; a backup that reads them twice, stamp unchanged, has
/// truly copied the file as it was at one instant, yet "equals no version". That is the product's
/// documented limit, not a false Stable, and it made this test fail under load.) Can be paused
/// (parked between writes) and resumed.</summary>
public sealed class ShardWriter : IDisposable
{
    private const int GrowEvery = 5;
    private const int NewShardEvery = 37;
    private const int MaxShards = 10;

    private readonly string _root;
    private readonly List<string> _files;
    private readonly Dictionary<string, int> _version = new(StringComparer.Ordinal);
    private readonly Dictionary<string, byte[]> _content = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<string, byte>> _versions = new(StringComparer.Ordinal);
    private readonly object _gate = new();
    private Thread? _thread;
    private volatile bool _stop;
    private bool _pauseRequested;
    private bool _parked;
    private long _writes;
    private Exception? _error;

    /// <summary>Creates the writer's files at version 0 and records the content of every other
    /// file already in the object as its only version.</summary>
    public ShardWriter(string objectPath)
    {
        _root = objectPath;
        _files = ["data/000.bin", "data/001.bin", "data/002.bin", "indexes/email/000.idx", "metadata/counts", "metadata/sequences/id"];
        foreach (string rel in _files)
        {
            _version[rel] = 0;
            byte[] content = Initial(rel);
            _content[rel] = content;
            Record(rel, content);
            ObjectFixture.Write(_root, rel, content);
        }
        foreach (string path in Directory.EnumerateFiles(_root, "*", SearchOption.AllDirectories))
        {
            string rel = Path.GetRelativePath(_root, path).Replace(Path.DirectorySeparatorChar, '/');
            if (!_version.ContainsKey(rel))
            {
                Record(rel, File.ReadAllBytes(path));
            }
        }
    }

    public long Writes => Interlocked.Read(ref _writes);

    public int Pauses { get; private set; }
    public int Resumes { get; private set; }

    /// <summary>Version 0 of a file. Shards are larger than the copy buffer, so a copy takes several
    /// reads, and writes landing in a part already read and then in a part not yet read yield a
    /// copy equal to no version: the case a backup must detect.</summary>
    private static byte[] Initial(string rel)
    {
        int length = rel.StartsWith("data/", StringComparison.Ordinal) ? 2 * FileCopy.BufferSize + 300_000 : rel.StartsWith("indexes/", StringComparison.Ordinal) ? 24 * 1024 : 600;
        return ObjectFixture.Bytes($"{rel}#0", length);
    }

    /// <summary>Version <paramref name="version"/> from the one before: every <see cref="GrowEvery"/>
    /// versions 4 KiB longer (written through .new + rename), otherwise one byte changed in place,
    /// at a position that jumps across the file (a multiplicative hash of the version), so
    /// successive writes land in different parts of a copy.</summary>
    private static (byte[] Content, long Offset, int Count) Next(string rel, byte[] current, int version)
    {
        if (version % GrowEvery == 0)
        {
            byte[] grown = new byte[current.Length + 4096];
            current.CopyTo(grown, 0);
            ObjectFixture.Bytes($"{rel}#{version}", 4096).CopyTo(grown, current.Length);
            return (grown, 0, grown.Length);
        }
        byte[] next = (byte[])current.Clone();
        int at = (int)((uint)(version * 2654435761L) % (uint)next.Length);
        next[at] = (byte)(next[at] ^ (1 + version % 255));
        return (next, at, 1);
    }

    /// <summary>True when <paramref name="sha256"/> is the hash of some version <paramref name="rel"/> ever had.</summary>
    public bool IsVersion(string rel, string sha256) =>
        _versions.TryGetValue(rel, out var set) && set.ContainsKey(sha256);

    public void Start()
    {
        _thread = new Thread(Run) { IsBackground = true, Name = "ShardWriter" };
        _thread.Start();
    }

    /// <summary>Stops after the current write and rethrows anything the writer failed with.</summary>
    public void Stop()
    {
        _stop = true;
        Resume();
        _thread?.Join();
        _thread = null;
        if (_error is not null)
        {
            throw new InvalidOperationException("The shard writer failed.", _error);
        }
    }

    /// <summary>Returns once the writer is parked between two writes.</summary>
    public void Pause()
    {
        lock (_gate)
        {
            Pauses++;
            _pauseRequested = true;
            while (!_parked && _thread is not null && _error is null)
            {
                Monitor.Wait(_gate);
            }
        }
    }

    public void Resume()
    {
        lock (_gate)
        {
            if (_pauseRequested)
            {
                Resumes++;
            }
            _pauseRequested = false;
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>Waits (bounded) until the writer has written more than <paramref name="count"/> times.</summary>
    public void WaitForWritesBeyond(long count)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (Writes <= count)
        {
            Assert.True(DateTime.UtcNow < deadline, "the shard writer made no progress in 30 s");
            Assert.True(_error is null, $"the shard writer failed: {_error}");
            Thread.Yield();
        }
    }

    private void Run()
    {
        try
        {
            int shards = 3;
            for (long i = 0; !_stop; i++)
            {
                lock (_gate)
                {
                    while (_pauseRequested && !_stop)
                    {
                        _parked = true;
                        Monitor.PulseAll(_gate);
                        Monitor.Wait(_gate);
                    }
                    _parked = false;
                }
                if (_stop)
                {
                    break;
                }
                if (i % NewShardEvery == NewShardEvery - 1 && shards < MaxShards)
                {
                    string shard = $"data/{shards++:D3}.bin";
                    _version[shard] = 0;
                    _content[shard] = Initial(shard);
                    _files.Add(shard);
                    ReplaceViaNew(shard, _content[shard]);
                }
                else
                {
                    string rel = _files[(int)(i % _files.Count)];
                    int v = ++_version[rel];
                    (byte[] content, long offset, int count) = Next(rel, _content[rel], v);
                    _content[rel] = content;
                    if (count == content.Length)
                    {
                        ReplaceViaNew(rel, content);
                    }
                    else
                    {
                        Record(rel, content);
                        using var handle = File.OpenHandle(Path.Combine(_root, rel), FileMode.Open, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete);
                        RandomAccess.Write(handle, content.AsSpan((int)offset, count), offset);
                    }
                }
                Interlocked.Increment(ref _writes);
            }
        }
        catch (Exception e)
        {
            lock (_gate)
            {
                _error = e;
                Monitor.PulseAll(_gate);
            }
        }
    }

    private void ReplaceViaNew(string rel, byte[] content)
    {
        Record(rel, content);
        string path = Path.Combine(_root, rel);
        File.WriteAllBytes(path + ".new", content);
        File.Move(path + ".new", path, overwrite: true);
    }

    private void Record(string rel, byte[] content) =>
        _versions.GetOrAdd(rel, _ => new ConcurrentDictionary<string, byte>(StringComparer.Ordinal))[ObjectFixture.Sha256(content)] = 0;

    public void Dispose()
    {
        _stop = true;
        Resume();
        _thread?.Join();
    }
}
