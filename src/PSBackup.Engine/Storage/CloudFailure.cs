namespace PSBackup.Engine.Storage;

/// <summary>An error answer of a storage service, as the backend's SDK reports it: the HTTP status
/// (0 when none arrived), the service's error code ("" when it gave none) and its message.</summary>
internal readonly record struct ServiceAnswer(int Status, string Code, string Message);

/// <summary>What a cloud backend (S3, Azure Blob) says about itself when one of its calls fails.
/// <paramref name="Name"/> names the service in messages ("S3", "Azure Blob Storage");
/// <paramref name="NotFoundCode"/> is its code for a missing object; <paramref name="TransientCodes"/>
/// are the codes worth retrying besides the statuses every service shares (5xx, 408, 429).</summary>
internal sealed record CloudService(string Name, string NotFoundCode, IReadOnlySet<string> TransientCodes);

/// <summary>The one rule by which a cloud backend's failed call becomes the engine's typed error:
/// the caller's own cancellation stays a cancellation; a missing object is
/// <see cref="StorageNotFoundException"/>; anything else the service answered is a
/// <see cref="StorageIOException"/>, transient for 5xx, 408, 429, the service's throttling codes and
/// network faults; no answer at all (a timeout, a dropped connection) is a transient one. What only
/// one service has (a missing bucket or container, its authentication failures, leases) the backend
/// decides first, through <c>special</c>.</summary>
internal static class CloudFailure
{
    /// <param name="answer">What the service answered, when <paramref name="e"/> is its SDK's service error.</param>
    /// <param name="special">The backend's own reading of an answer (given the answer and the "what"
    /// phrase: "store 'k' in s3://b/p"), or null to leave it to the common rule.</param>
    public static Exception Map(CloudService service, string location, Exception e, string action, string? key, CancellationToken ct,
        ServiceAnswer? answer, Func<ServiceAnswer, string, Exception?> special)
    {
        if (e is OperationCanceledException && ct.IsCancellationRequested)
        {
            return e;
        }
        string what = What(action, key, location);
        if (answer is { } a)
        {
            if (special(a, what) is { } own)
            {
                return own;
            }
            if (a.Code == service.NotFoundCode || (a.Status == 404 && key is not null && a.Code is "" or "NotFound"))
            {
                return key is null
                    ? new StorageIOException($"Cannot {what}: not found.", key, location, false, e, a.Status, a.Code)
                    : new StorageNotFoundException(key, location);
            }
            bool transient = a.Status is >= 500 or 408 or 429 || service.TransientCodes.Contains(a.Code) || (a.Status == 0 && UploadSource.IsNetworkFault(e));
            return new StorageIOException($"Cannot {what}: {service.Name} answered {a.Status} {a.Code}: {a.Message}", key, location, transient, e,
                a.Status == 0 ? null : a.Status, a.Code);
        }
        if (e is OperationCanceledException or TimeoutException)
        {
            return new StorageIOException($"Cannot {what}: the request timed out.", key, location, isTransient: true, e);
        }
        if (UploadSource.IsNetworkFault(e))
        {
            return new StorageIOException($"Cannot {what}: {e.Message}", key, location, isTransient: true, e);
        }
        return e;
    }

    /// <summary>"store 'k' in s3://b/p", "list s3://b/p": what a failed call tried to do.</summary>
    public static string What(string action, string? key, string location) =>
        key is null ? $"{action} {location}" : $"{action} '{key}' in {location}";

    /// <summary>An upload's body failing is the caller's failure (its source could not be read), not
    /// the service's: rethrows it as it was, before the SDK's wrapper is mapped.</summary>
    public static void ThrowSourceFault(Stream body)
    {
        if (body is UploadSource.View { Fault: { } fault })
        {
            fault.Throw();
        }
    }

    /// <summary>A ranged read that starts or ends past the object's end.</summary>
    public static StorageIOException PastEnd(string location, string key, long offset, long length, Exception? inner) =>
        new($"The range {offset}+{length} is past the end of '{key}' in {location}.", key, location, isTransient: false, inner);

    /// <summary>A ranged read of nothing: no download (HTTP has no empty range), but the object must
    /// exist and the offset lie within it, as for any other range.</summary>
    public static async Task<Stream> EmptyRangeAsync(IStorageBackend backend, string key, long offset, CancellationToken ct)
    {
        StoredObject stat = await backend.StatAsync(key, ct).ConfigureAwait(false) ?? throw new StorageNotFoundException(key, backend.Location);
        if (offset > stat.Size)
        {
            throw PastEnd(backend.Location, key, offset, 0, null);
        }
        return new MemoryStream([], writable: false);
    }

    /// <summary>Cloud listings come in byte (UTF-8) order and page by "after the last key"; a service
    /// that breaks the order may also have skipped keys across pages, so its listing is refused
    /// rather than trusted. <paramref name="listed"/> and <paramref name="previous"/> are full names.</summary>
    public static void CheckListOrder(CloudService service, string location, string listed, string? previous)
    {
        if (previous is not null && StorageKey.CompareUtf8(listed, previous) <= 0)
        {
            throw new StorageIOException(
                $"{service.Name} listed '{SafePath.Printable(listed)}' after '{SafePath.Printable(previous)}', out of key order, while listing {location}. " +
                $"Its listings cannot be trusted to be complete; use a service that lists keys in order.", null, location, isTransient: false);
        }
    }
}
