using CalicoBpf.Fuzz;

namespace CalicoBpf.Tests.Support;

/// <summary>
/// A read-only node whose maps hold exactly the entries a test gives (keys and values as bytes, in
/// the order given), so the readers of Get-BpfCounter, Get-BpfNat, Get-BpfRoute and
/// Get-BpfInterface decode fixed vectors. Per-CPU values are given as every CPU's copy, each
/// rounded up to 8 bytes, concatenated (what a lookup returns).
/// </summary>
public sealed class VectorDataplane : ReadOnlyNode
{
    private readonly Dictionary<string, (BpfMapDescriptor Descriptor, List<(byte[] Key, byte[] Value)> Entries)> _maps = new(StringComparer.Ordinal);
    private readonly int _cpus;

    private readonly NodeRelease? _given;

    /// <param name="release">The Calico release the entries were written by (each case names its own); null: the pins tell, as on a local node.</param>
    public VectorDataplane(int cpus = 1, string? release = null)
    {
        _cpus = cpus;
        _given = release is null ? null : new NodeRelease(CalicoRelease.Parse(release), CalicoReleaseSource.Given, "the case's release");
    }

    public override NodeRelease? GivenRelease => _given;

    public override string Node => "calico-ut";

    /// <summary>Pins a map with these sizes; later <see cref="Add"/> calls fill it.</summary>
    public VectorDataplane Map(string pinName, BpfMapType type, int keySize, int valueSize)
    {
        _maps[pinName] = (new BpfMapDescriptor(1, type, keySize, valueSize, 65536, 0, pinName), new List<(byte[], byte[])>());
        return this;
    }

    public VectorDataplane Add(string pinName, byte[] key, byte[] value)
    {
        (BpfMapDescriptor d, List<(byte[] Key, byte[] Value)> entries) = _maps[pinName];
        if (key.Length != d.KeySize || value.Length != d.ValueStride(_cpus))
        {
            throw new ArgumentException($"{pinName} takes {d.KeySize}-byte keys and {d.ValueStride(_cpus)}-byte values, not {key.Length} and {value.Length}.");
        }

        entries.Add((key, value));
        return this;
    }

    public override IReadOnlyList<CalicoMapName> ListMaps() => _maps.Keys.Select(MapCatalog.Parse).OfType<CalicoMapName>().ToList();

    public override IMapReader OpenMap(string pinName) => _maps.TryGetValue(pinName, out var m)
        ? new Reader(m.Descriptor, m.Entries, _cpus)
        : throw NotPinned(pinName);

    private sealed class Reader : IMapReader
    {
        private readonly List<(byte[] Key, byte[] Value)> _entries;
        private readonly int _cpus;

        public Reader(BpfMapDescriptor descriptor, List<(byte[] Key, byte[] Value)> entries, int cpus)
        {
            Descriptor = descriptor;
            _entries = entries;
            _cpus = cpus;
        }

        public BpfMapDescriptor Descriptor { get; }

        public IEnumerable<RawEntryBatch> ReadEntries(CancellationToken cancellationToken)
        {
            int stride = Descriptor.ValueStride(_cpus);
            var batch = new RawEntryBatch(Descriptor.KeySize, Descriptor.ValueSize, stride, _cpus, Descriptor.Type.IsPerCpu(), _entries.Count);
            for (int i = 0; i < _entries.Count; i++)
            {
                _entries[i].Key.CopyTo(batch.Keys, i * Descriptor.KeySize);
                _entries[i].Value.CopyTo(batch.Values, i * stride);
            }

            batch.Count = _entries.Count;
            yield return batch;
        }

        public long? CountEntries(CancellationToken cancellationToken) => _entries.Count;

        public void Dispose()
        {
        }
    }
}
