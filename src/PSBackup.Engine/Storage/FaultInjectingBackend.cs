using System.Collections.Concurrent;
using System.Runtime.CompilerServices;

namespace PSBackup.Engine.Storage;

/// <summary>The operations of the storage contract, for counting and injecting faults.</summary>
public enum StorageOperation
{
    Put,
    Get,
    GetRange,
    Stat,
    List,
    Delete,
}

/// <summary>For tests: wraps a backend and fails chosen calls, corrupts bytes on read or
/// truncates what a put stores, so callers' retry, integrity and cleanup paths can be proven
/// against a real backend underneath. Thread-safe; rules apply in the order they were added.</summary>
public sealed class FaultInjectingBackend(IStorageBackend inner) : IStorageBackend, IStorageLeftovers
{
    private readonly ConcurrentDictionary<StorageOperation, int> _calls = new();
    private readonly ConcurrentDictionary<(StorageOperation, int), Func<Exception>> _failures = new();
    private volatile Func<string, bool>? _corruptKeys;
    private long _corruptOffset;
    private volatile Func<string, bool>? _truncateKeys;
    private long _truncateTo;

    public IStorageBackend Inner => inner;

    public string Location => inner.Location;

    /// <summary>How many times <paramref name="operation"/> was called (failed calls included).</summary>
    public int Calls(StorageOperation operation) => _calls.GetValueOrDefault(operation);

    /// <summary>Makes call number <paramref name="n"/> (1-based, counted per operation) of
    /// <paramref name="operation"/> throw what <paramref name="fault"/> makes, before reaching the
    /// inner backend.</summary>
    public FaultInjectingBackend FailCall(StorageOperation operation, int n, Func<Exception> fault)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(n, 1);
        _failures[(operation, n)] = fault;
        return this;
    }

    /// <summary>Makes calls <paramref name="first"/> .. first+count-1 of the operation throw.</summary>
    public FaultInjectingBackend FailCalls(StorageOperation operation, int first, int count, Func<Exception> fault)
    {
        for (int i = 0; i < count; i++)
        {
            FailCall(operation, first + i, fault);
        }
        return this;
    }

    /// <summary>Flips every bit of the byte at <paramref name="offset"/> of each stream Get or
    /// GetRange returns for a key <paramref name="keys"/> accepts (all keys when null).</summary>
    public FaultInjectingBackend CorruptReads(long offset = 0, Func<string, bool>? keys = null)
    {
        Interlocked.Exchange(ref _corruptOffset, offset);
        _corruptKeys = keys ?? (_ => true);
        return this;
    }

    /// <summary>Stores only the first <paramref name="keepBytes"/> bytes of each put for a key
    /// <paramref name="keys"/> accepts, while reporting success: a silently lossy backend.</summary>
    public FaultInjectingBackend TruncatePuts(long keepBytes, Func<string, bool>? keys = null)
    {
        Interlocked.Exchange(ref _truncateTo, keepBytes);
        _truncateKeys = keys ?? (_ => true);
        return this;
    }

    public async Task PutAsync(string key, Stream content, long length, CancellationToken ct)
    {
        Enter(StorageOperation.Put);
        if (_truncateKeys is { } truncate && truncate(key))
        {
            long keep = Interlocked.Read(ref _truncateTo);
            var buffer = new MemoryStream();
            await content.CopyToAsync(buffer, ct).ConfigureAwait(false);
            buffer.SetLength(Math.Min(buffer.Length, keep));
            buffer.Position = 0;
            await inner.PutAsync(key, buffer, buffer.Length, ct).ConfigureAwait(false);
            return;
        }
        await inner.PutAsync(key, content, length, ct).ConfigureAwait(false);
    }

    public async Task<Stream> GetAsync(string key, CancellationToken ct)
    {
        Enter(StorageOperation.Get);
        return Corrupt(key, await inner.GetAsync(key, ct).ConfigureAwait(false));
    }

    public async Task<Stream> GetRangeAsync(string key, long offset, long length, CancellationToken ct)
    {
        Enter(StorageOperation.GetRange);
        return Corrupt(key, await inner.GetRangeAsync(key, offset, length, ct).ConfigureAwait(false));
    }

    public Task<StoredObject?> StatAsync(string key, CancellationToken ct)
    {
        Enter(StorageOperation.Stat);
        return inner.StatAsync(key, ct);
    }

    public async IAsyncEnumerable<StoredObject> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken ct)
    {
        Enter(StorageOperation.List);
        await foreach (StoredObject item in inner.ListAsync(prefix, ct).ConfigureAwait(false))
        {
            yield return item;
        }
    }

    public Task DeleteAsync(string key, CancellationToken ct)
    {
        Enter(StorageOperation.Delete);
        return inner.DeleteAsync(key, ct);
    }

    public void Dispose() => inner.Dispose();

    public IAsyncEnumerable<StoredObject> ListLeftoversAsync(CancellationToken ct) => StorageLeftovers.List(inner, ct);

    public Task DeleteLeftoverAsync(string name, CancellationToken ct) => StorageLeftovers.Delete(inner, name, ct);

    private void Enter(StorageOperation operation)
    {
        int n = _calls.AddOrUpdate(operation, 1, (_, c) => c + 1);
        if (_failures.TryGetValue((operation, n), out Func<Exception>? fault))
        {
            throw fault();
        }
    }

    private Stream Corrupt(string key, Stream stream) =>
        _corruptKeys is { } corrupt && corrupt(key) ? new CorruptingStream(stream, Interlocked.Read(ref _corruptOffset)) : stream;

    /// <summary>Passes reads through, flipping the byte at one offset.</summary>
    private sealed class CorruptingStream(Stream inner, long target) : Stream
    {
        private long _position;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => inner.Length;

        public override long Position
        {
            get => _position;
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            int n = inner.Read(buffer);
            Flip(buffer[..n]);
            return n;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            int n = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            Flip(buffer.Span[..n]);
            return n;
        }

        private void Flip(Span<byte> read)
        {
            if (target >= _position && target < _position + read.Length)
            {
                read[(int)(target - _position)] ^= 0xFF;
            }
            _position += read.Length;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
