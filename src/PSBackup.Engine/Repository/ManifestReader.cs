using System.Buffers;
using System.Security.Cryptography;
using PSBackup.Engine.Storage;

namespace PSBackup.Engine.Repository;

/// <summary>Reads the files of one manifest in order. Consecutive chunks in one frame form a run;
/// each run's frame is fetched once with GetRange, its stored bytes checked against the index's
/// SHA-256 before decoding (and authenticated by AES-GCM when encrypted), and decoded. A few runs
/// are fetched and decoded ahead in parallel (bounded), and consumed in order. Each file's size and
/// SHA-256 are compared with the (hash-checked) manifest before it is closed; chunk ids are not
/// recomputed here, since the file hash already proves every byte and a third SHA-256 pass over the
/// plaintext cost a fifth of a restore's CPU (docs/design.md, Performance, "Read path").
/// Test-BackupRepository -ReadData still checks every chunk id.</summary>
internal sealed class ManifestReader(Repository repo, RepositoryManifest manifest)
{
    private readonly FrameSource _source = new(repo, manifest);

    private readonly record struct Item(int File, int Offset, int Length, ChunkId Id);

    private sealed class Run(RepositoryIndex.FrameInfo frame)
    {
        public RepositoryIndex.FrameInfo Frame { get; } = frame;
        public List<Item> Items { get; } = new();
    }

    private static readonly int Window = Math.Max(2, Environment.ProcessorCount + 1);

    public async Task ReadAsync(IReadOnlyList<RepositoryFile> files,
        Func<int, CancellationToken, ValueTask<Stream>> open,
        Func<int, Stream, CancellationToken, ValueTask> close,
        CancellationToken ct)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var pending = new Queue<(Run Run, Task<byte[]> Plain)>();
        int nextFile = 0;
        Stream? current = null;
        IncrementalHash? hash = null;
        long written = 0;

        async Task OpenUpTo(int file)
        {
            while (nextFile <= file)
            {
                await CloseCurrent().ConfigureAwait(false);
                current = await open(nextFile, ct).ConfigureAwait(false);
                hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                written = 0;
                nextFile++;
            }
        }

        async Task CloseCurrent()
        {
            if (current is null)
            {
                return;
            }
            RepositoryFile f = files[nextFile - 1];
            string sha = Hex.Encode(hash!.GetHashAndReset());
            hash.Dispose();
            if (written != f.Size || sha != f.Sha256)
            {
                throw new RepositoryIntegrityException("FileMismatch",
                    $"Backup {manifest.Id}, file '{f.Path}': the restored bytes ({written} bytes, SHA-256 {sha}) do not match the manifest ({f.Size} bytes, {f.Sha256}). Do not use this file.",
                    RepositoryLayout.ManifestKey(manifest.Id), manifest.Id, f.Path);
            }
            Stream s = current;
            current = null;
            await close(nextFile - 1, s, ct).ConfigureAwait(false);
        }

        async Task Consume()
        {
            (Run run, Task<byte[]> task) = pending.Dequeue();
            byte[] plain = await task.ConfigureAwait(false);
            try
            {
                foreach (Item it in run.Items)
                {
                    await OpenUpTo(it.File).ConfigureAwait(false);
                    hash!.AppendData(plain, it.Offset, it.Length);
                    await current!.WriteAsync(plain.AsMemory(it.Offset, it.Length), ct).ConfigureAwait(false);
                    written += it.Length;
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(plain);
            }
        }

        try
        {
            Run? run = null;
            for (int fi = 0; fi < files.Count; fi++)
            {
                RepositoryFile f = files[fi];
                foreach (ChunkId id in f.Chunks)
                {
                    RepositoryIndex.ChunkLocation loc = _source.Locate(id, f);
                    if (run is null || !ReferenceEquals(run.Frame, loc.Frame))
                    {
                        if (run is not null)
                        {
                            pending.Enqueue((run, FetchAsync(run, files, cts.Token)));
                            if (pending.Count >= Window)
                            {
                                await Consume().ConfigureAwait(false);
                            }
                        }
                        run = new Run(loc.Frame);
                    }
                    run.Items.Add(new Item(fi, loc.Offset, loc.Length, id));
                }
            }
            if (run is not null)
            {
                pending.Enqueue((run, FetchAsync(run, files, cts.Token)));
            }
            while (pending.Count > 0)
            {
                await Consume().ConfigureAwait(false);
            }
            await OpenUpTo(files.Count - 1).ConfigureAwait(false);
            await CloseCurrent().ConfigureAwait(false);
        }
        catch
        {
            cts.Cancel();
            while (pending.Count > 0)
            {
                try
                {
                    ArrayPool<byte>.Shared.Return(await pending.Dequeue().Plain.ConfigureAwait(false));
                }
                catch (Exception)
                {
                    // The first failure is the one reported.
                }
            }
            hash?.Dispose();
            throw;
        }
    }

    /// <summary>The run's frame, decoded. When it cannot be read (pack missing, frame damaged) the
    /// pack is taken out of use and each chunk of the run is taken from another copy, if the
    /// repository has one: the run's items are then repointed into a buffer built from those copies.</summary>
    private async Task<byte[]> FetchAsync(Run run, IReadOnlyList<RepositoryFile> files, CancellationToken ct)
    {
        await Task.Yield();
        string firstPath = files[run.Items[0].File].Path;
        try
        {
            return await _source.FetchFrameAsync(run.Frame, firstPath, ct).ConfigureAwait(false);
        }
        catch (RepositoryIntegrityException failure)
        {
            await _source.NoteFailureAsync(run.Frame.Pack, failure, ct).ConfigureAwait(false);
            byte[]? fallback = await FromOtherCopiesAsync(run, files, ct).ConfigureAwait(false);
            if (fallback is null)
            {
                throw;
            }
            return fallback;
        }
    }

    private async Task<byte[]?> FromOtherCopiesAsync(Run run, IReadOnlyList<RepositoryFile> files, CancellationToken ct)
    {
        var decoded = new Dictionary<RepositoryIndex.FrameInfo, byte[]>();
        try
        {
            List<(byte[] Plain, int Offset)>? copies = await _source.OtherCopiesAsync(run.Frame.Pack,
                run.Items.Select(it => (it.Id, it.Length, files[it.File].Path)), decoded, ct).ConfigureAwait(false);
            if (copies is null)
            {
                return null;
            }
            byte[] buffer = ArrayPool<byte>.Shared.Rent(Math.Max(1, run.Items.Sum(i => i.Length)));
            var moved = new List<Item>(run.Items.Count);
            int at = 0;
            for (int k = 0; k < run.Items.Count; k++)
            {
                Item it = run.Items[k];
                Buffer.BlockCopy(copies[k].Plain, copies[k].Offset, buffer, at, it.Length);
                moved.Add(it with { Offset = at });
                at += it.Length;
            }
            run.Items.Clear();
            run.Items.AddRange(moved);
            return buffer;
        }
        finally
        {
            foreach (byte[] b in decoded.Values)
            {
                ArrayPool<byte>.Shared.Return(b);
            }
        }
    }
}
