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
                    // A usable copy first; else the first copy at all (its pack may be marked damaged
                    // while this frame is sound; a failed read then tries the others).
                    if (!repo.Index.TryGet(id, out RepositoryIndex.ChunkLocation loc) && repo.Index.Locations(id) is [var first, ..])
                    {
                        loc = first;
                    }
                    if (loc.Frame is null)
                    {
                        string damaged = repo.DamagedIndexes.Count > 0 ? $" Damaged index objects: {string.Join(", ", repo.DamagedIndexes)}." : "";
                        throw new RepositoryIntegrityException("ChunkMissing",
                            $"Backup {manifest.Id}, file '{f.Path}': chunk {id} is not in the repository index.{damaged} Run Test-BackupRepository for details.",
                            RepositoryLayout.ManifestKey(manifest.Id), manifest.Id, f.Path);
                    }
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
    /// pack is marked (in memory at once, <c>damaged/&lt;id&gt;</c> best effort) and each chunk of the run
    /// is taken from another copy, if the repository has one (a later backup stored it again, or repair
    /// salvaged it): the run's items are then repointed into a buffer built from those copies.</summary>
    private async Task<byte[]> FetchAsync(Run run, IReadOnlyList<RepositoryFile> files, CancellationToken ct)
    {
        await Task.Yield();
        string firstPath = files[run.Items[0].File].Path;
        try
        {
            return await FetchFrameAsync(run.Frame, firstPath, ct).ConfigureAwait(false);
        }
        catch (RepositoryIntegrityException failure)
        {
            await NoteFailureAsync(run.Frame.Pack, failure, ct).ConfigureAwait(false);
            byte[]? fallback = await FromOtherCopiesAsync(run, files, ct).ConfigureAwait(false);
            if (fallback is null)
            {
                throw;
            }
            return fallback;
        }
    }

    private async Task NoteFailureAsync(RepositoryIndex.PackInfo pack, RepositoryIntegrityException failure, CancellationToken ct)
    {
        if (failure.ErrorId == "PackMissing")
        {
            pack.State = PackState.Missing;
            pack.Problem = $"pack {pack.Id} is missing";
        }
        else
        {
            await repo.MarkDamagedAsync(pack.Id, failure.Message, ct, bestEffort: true).ConfigureAwait(false);
        }
    }

    private async Task<byte[]?> FromOtherCopiesAsync(Run run, IReadOnlyList<RepositoryFile> files, CancellationToken ct)
    {
        int total = run.Items.Sum(i => i.Length);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(Math.Max(1, total));
        var decoded = new Dictionary<RepositoryIndex.FrameInfo, byte[]>();
        var moved = new List<Item>(run.Items.Count);
        try
        {
            int at = 0;
            foreach (Item it in run.Items)
            {
                bool found = false;
                foreach (RepositoryIndex.ChunkLocation loc in repo.Index.Locations(it.Id))
                {
                    if (ReferenceEquals(loc.Frame.Pack, run.Frame.Pack) || loc.Length != it.Length)
                    {
                        continue;
                    }
                    if (!decoded.TryGetValue(loc.Frame, out byte[]? plain))
                    {
                        try
                        {
                            plain = await FetchFrameAsync(loc.Frame, files[it.File].Path, ct).ConfigureAwait(false);
                        }
                        catch (RepositoryIntegrityException other)
                        {
                            await NoteFailureAsync(loc.Frame.Pack, other, ct).ConfigureAwait(false);
                            continue;
                        }
                        decoded[loc.Frame] = plain;
                    }
                    Buffer.BlockCopy(plain, loc.Offset, buffer, at, it.Length);
                    moved.Add(it with { Offset = at });
                    at += it.Length;
                    found = true;
                    break;
                }
                if (!found)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    return null;
                }
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

    private async Task<byte[]> FetchFrameAsync(RepositoryIndex.FrameInfo fr, string firstPath, CancellationToken ct)
    {
        string packKey = fr.Pack.Key;
        RepositoryIntegrityException Bad(string id, string what, string path, Exception? inner = null) =>
            new(id, $"Backup {manifest.Id}, file '{path}': {what}. The data cannot be restored from this repository; restore this file from another copy.",
                packKey, manifest.Id, path, inner);
        byte[] stored;
        try
        {
            stored = await repo.GetRangeRentedAsync(packKey, fr.Offset, fr.Length, ct).ConfigureAwait(false);
        }
        catch (StorageNotFoundException e)
        {
            throw Bad("PackMissing", $"pack {packKey} is missing", firstPath, e);
        }
        catch (EndOfStreamException e)
        {
            throw Bad("PackTruncated", $"pack {packKey} is shorter than its index says", firstPath, e);
        }
        catch (StorageIOException e) when (!e.IsTransient)
        {
            throw Bad("PackTruncated", $"pack {packKey} could not be read at {fr.Offset}+{fr.Length} ({e.Message})", firstPath, e);
        }
        catch (IOException e) when (e is not FileNotFoundException)
        {
            // The storage failed to answer (after the retries): not evidence about the pack's bytes.
            throw new OperationFailedException("StorageReadFailed",
                $"Backup {manifest.Id}, file '{firstPath}': pack {packKey} could not be read from {repo.Location} ({e.Message}). The storage did not answer; nothing is known to be damaged. Check the connection or the disk, then try again.",
                packKey, e);
        }
        byte[]? plain = null;
        byte[]? scratch = null;
        try
        {
            Span<byte> h = stackalloc byte[32];
            SHA256.HashData(stored.AsSpan(0, fr.Length), h);
            if (!h.SequenceEqual(fr.Sha256))
            {
                throw Bad("FrameCorrupt", $"the frame at offset {fr.Offset} of pack {packKey} fails its SHA-256", firstPath);
            }
            plain = ArrayPool<byte>.Shared.Rent(Math.Max(fr.PlainLength, 1));
            if (repo.Codec.Encrypted)
            {
                scratch = ArrayPool<byte>.Shared.Rent(fr.Length);
            }
            int n;
            try
            {
                n = repo.Codec.Decode(stored.AsSpan(0, fr.Length), plain.AsSpan(0, fr.PlainLength), scratch);
            }
            catch (InvalidDataException e)
            {
                throw Bad("FrameCorrupt", $"the frame at offset {fr.Offset} of pack {packKey} does not decode ({e.Message})", firstPath, e);
            }
            if (n != fr.PlainLength)
            {
                throw Bad("FrameCorrupt", $"the frame at offset {fr.Offset} of pack {packKey} decodes to {n} bytes, not {fr.PlainLength}", firstPath);
            }
            byte[] result = plain;
            plain = null;
            return result;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(stored);
            if (plain is not null) { ArrayPool<byte>.Shared.Return(plain); }
            if (scratch is not null) { ArrayPool<byte>.Shared.Return(scratch); }
        }
    }
}
