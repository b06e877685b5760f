namespace CalicoBpf.Interop;

/// <summary>
/// A run of raw (key, value) entries as one transport delivered them: the local kernel through
/// bpf(2), or a remote node through bpftool's JSON. Per-CPU values hold one copy per possible CPU,
/// each <see cref="PerCpuSlot"/> bytes apart. Buffers are reused between batches.
/// </summary>
public sealed class RawEntryBatch
{
    public RawEntryBatch(int keySize, int valueSize, int valueStride, int cpus, bool perCpu, int capacity)
    {
        KeySize = keySize;
        ValueSize = valueSize;
        ValueStride = valueStride;
        Cpus = cpus;
        PerCpu = perCpu;
        Grow(Math.Max(capacity, 1));
    }

    public int KeySize { get; }

    /// <summary>Size of one value (one CPU's copy for per-CPU maps).</summary>
    public int ValueSize { get; }

    /// <summary>Bytes between consecutive entries' values.</summary>
    public int ValueStride { get; }

    public int Cpus { get; }

    public bool PerCpu { get; }

    /// <summary>Distance between CPU copies inside one per-CPU value.</summary>
    public int PerCpuSlot => (ValueSize + 7) & ~7;

    public int Capacity { get; private set; }

    public int Count { get; set; }

    public byte[] Keys { get; private set; } = Array.Empty<byte>();

    public byte[] Values { get; private set; } = Array.Empty<byte>();

    public ReadOnlySpan<byte> Key(int index) => Keys.AsSpan(index * KeySize, KeySize);

    public ReadOnlySpan<byte> Value(int index) => Values.AsSpan(index * ValueStride, ValueStride);

    /// <summary>New, larger buffers; what the batch held is dropped (a kernel batch read asks again).</summary>
    public void Grow(int capacity)
    {
        Capacity = capacity;
        Keys = GC.AllocateUninitializedArray<byte>(capacity * KeySize);
        Values = GC.AllocateUninitializedArray<byte>(capacity * ValueStride);
    }

    /// <summary>Larger buffers keeping the <see cref="Count"/> entries already in the batch.</summary>
    public void Enlarge(int capacity)
    {
        byte[] keys = Keys;
        byte[] values = Values;
        Grow(capacity);
        keys.AsSpan(0, Count * KeySize).CopyTo(Keys);
        values.AsSpan(0, Count * ValueStride).CopyTo(Values);
    }
}
