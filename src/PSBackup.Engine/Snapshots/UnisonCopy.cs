namespace PSBackup.Engine.Snapshots;

/// <summary>Consistent copies of UnisonDB's <c>unison.db</c> from outside the server, as one file
/// (the shape UnisonDB's own <c>/btree/backup</c> produces: a bbolt file, or an LMDB data.mdb).</summary>
internal static class UnisonCopy
{
    /// <summary>Copies the store to <paramref name="tempPath"/> (a file), verifies the copy, reads
    /// its checkpoint and the log index of the record there, and returns the manifest entry
    /// ("unison.db" for bbolt, "data.mdb" for LMDB) and the snapshot's WAL position.</summary>
    public static async Task<(ManifestFile Entry, WalPosition Position)> CopyAsync(string ns, string nsDir, DiscoveredStore store, string tempPath, WalPosition walAtStart, OperationContext context)
    {
        CancellationToken ct = context.CancellationToken;
        context.Report(SnapshotOperations.Activity, $"Copying {UnisonStore.StoreName} ({store.Engine})", 0, 0, store.Path);
        ContentDigest digest;
        if (store.Engine == StoreEngines.Bolt)
        {
            digest = await CopyBoltAsync(ns, store.Path, tempPath, ct).ConfigureAwait(false);
        }
        else
        {
            digest = await Task.Run(() => CopyLmdb(store.Path, tempPath, ct), ct).ConfigureAwait(false);
        }
        ct.ThrowIfCancellationRequested();
        WalPosition position = Describe(ns, nsDir, store.Engine, tempPath, walAtStart);
        string entryName = store.Engine == StoreEngines.Bolt ? UnisonStore.StoreName : "data.mdb";
        context.Report(SnapshotOperations.Activity, $"Copied {UnisonStore.StoreName}", digest.Bytes, digest.Bytes, store.Path);
        return (new ManifestFile(entryName, digest.Bytes, digest.Sha256), position);
    }

    /// <summary>Reads a finished snapshot file: verifies it as a whole store of
    /// <paramref name="engine"/> and returns the WAL position to record: the checkpoint, the log
    /// index of the record at it (from the live WAL), and the WAL's high-water mark now.</summary>
    public static WalPosition Describe(string ns, string nsDir, string engine, string snapshotFile, WalPosition walAtStart)
    {
        (StoreCheckpoint? checkpoint, _) = UnisonStore.ReadSnapshotFile(engine, snapshotFile, ns);
        long? applied;
        if (checkpoint is null)
        {
            // No checkpoint: nothing of the WAL was ever applied; recovery replays from the start.
            applied = 0;
        }
        else
        {
            checkpoint = UnisonStore.WithRecord(checkpoint, Path.Combine(nsDir, "wal"));
            applied = checkpoint.LogIndex;
        }
        return walAtStart with
        {
            AppliedLogIndex = applied,
            Checkpoint = checkpoint,
            CompletedLogIndex = SnapshotOperations.HighWaterLogIndex(nsDir, ns),
        };
    }

    /// <summary>bbolt: only while no writer holds the file (bbolt's exclusive flock); the copy is
    /// made under our shared lock, so no writer can open it meanwhile, then verified page by page.</summary>
    private static async Task<ContentDigest> CopyBoltAsync(string ns, string source, string tempPath, CancellationToken ct)
    {
        FileStream? locked = BoltLock.TryOpenShared(source, out string? why);
        if (locked is null)
        {
            throw new ConflictException("StoreInUse",
                $"The bbolt store '{source}' of namespace '{ns}' is open in a running UnisonDB (it holds bbolt's exclusive lock: {why}). A copy from outside could be torn, so none was made. Take the snapshot through the server's own backup API: -Endpoint http://<host>:<port> (psbackup: --endpoint), or stop the server first.",
                source);
        }
        ContentDigest digest;
        await using (locked.ConfigureAwait(false))
        await using (var output = new FileStream(tempPath, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.Asynchronous))
        {
            digest = await FileCopy.CopyAsync(locked, output, ct).ConfigureAwait(false);
            output.Flush(flushToDisk: true);
        }
        return digest;
    }

    /// <summary>LMDB: <c>mdb_env_copy2</c> into a temp folder beside the snapshot, then its data.mdb
    /// becomes the snapshot file. lock.mdb is never copied.</summary>
    private static ContentDigest CopyLmdb(string envDir, string tempPath, CancellationToken ct)
    {
        string copyDir = tempPath + ".env.tmp";
        Directory.CreateDirectory(copyDir);
        try
        {
            Lmdb.CopyEnvironment(envDir, copyDir);
            ct.ThrowIfCancellationRequested();
            File.Move(Path.Combine(copyDir, "data.mdb"), tempPath);
            using (var stream = new FileStream(tempPath, FileMode.Open, FileAccess.ReadWrite, FileShare.Read))
            {
                stream.Flush(flushToDisk: true);
            }
            return FileCopy.HashAsync(tempPath, ct).GetAwaiter().GetResult();
        }
        finally
        {
            Durable.TryDelete(copyDir);
        }
    }
}
