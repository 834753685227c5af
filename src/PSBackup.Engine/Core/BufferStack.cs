namespace PSBackup.Engine;

/// <summary>Buffers of one size for one pipeline, kept while it runs and let go with it. The shared
/// <see cref="System.Buffers.ArrayPool{T}"/> keeps a returned array in the returning thread's own
/// slot and in per-core stacks for the rest of the process; a backup rents its read buffer, frames
/// and compressed frames on one pool thread and returns them on another, so a backup of many files
/// left a 2-4 MiB buffer behind in every pool thread it had run on, for the rest of the process (a
/// PowerShell session, an Azure Automation job).</summary>
internal sealed class BufferStack(int size, int keep)
{
    private readonly Stack<byte[]> _free = new();

    /// <summary>The size of every buffer of this stack.</summary>
    public int Size => size;

    /// <summary>A buffer of <see cref="Size"/> bytes, not cleared: the caller writes before it reads.</summary>
    public byte[] Rent()
    {
        lock (_free)
        {
            if (_free.TryPop(out byte[]? b))
            {
                return b;
            }
        }
        return GC.AllocateUninitializedArray<byte>(size);
    }

    /// <summary>Keeps <paramref name="buffer"/> for the next <see cref="Rent"/>, up to the number
    /// given; a buffer of another size is left to the collector.</summary>
    public void Return(byte[] buffer)
    {
        if (buffer.Length != size)
        {
            return;
        }
        lock (_free)
        {
            if (_free.Count < keep)
            {
                _free.Push(buffer);
            }
        }
    }
}
