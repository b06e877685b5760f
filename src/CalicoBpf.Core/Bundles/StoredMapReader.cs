using CalicoBpf.Interop;
using CalicoBpf.Transport;

namespace CalicoBpf.Bundles;

/// <summary>
/// A map read back from a bundle's entries file (key then value, each entry the same size, as the
/// node's transport delivered them), in batches like the live transports', so the same decoders read it.
/// </summary>
internal sealed class StoredMapReader : IMapReader
{
    private const int BatchSize = 4096;
    private readonly MapFact _fact;
    private readonly Func<Stream> _open;

    public StoredMapReader(MapFact fact, Func<Stream> open)
    {
        _fact = fact;
        _open = open;
    }

    public BpfMapDescriptor Descriptor => _fact.Descriptor!;

    public IEnumerable<RawEntryBatch> ReadEntries(CancellationToken cancellationToken)
    {
        long left = _fact.Entries ?? 0;
        if (left == 0)
        {
            yield break;
        }

        BpfMapDescriptor d = Descriptor;
        var batch = new RawEntryBatch(d.KeySize, d.ValueSize, _fact.ValueStride, _fact.Cpus, _fact.PerCpu, (int)Math.Min(left, BatchSize));
        using Stream s = _open();
        while (left > 0)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int n = (int)Math.Min(left, batch.Capacity);
            for (int i = 0; i < n; i++)
            {
                s.ReadExactly(batch.Keys.AsSpan(i * d.KeySize, d.KeySize));
                s.ReadExactly(batch.Values.AsSpan(i * _fact.ValueStride, _fact.ValueStride));
            }

            batch.Count = n;
            left -= n;
            yield return batch;
        }
    }

    public long? CountEntries(CancellationToken cancellationToken) =>
        !_fact.Countable ? null : Descriptor.Type.IsArray() ? Descriptor.MaxEntries : _fact.Entries;

    public void Dispose()
    {
    }
}
