using CalicoBpf.Interop;
using CalicoBpf.Maps;
using CalicoBpf.Transport;

namespace CalicoBpf.Fuzz;

/// <summary>Changes one value of a map (by pin name) before a reader sees it.</summary>
public delegate void ValueAdjuster(string pinName, Span<byte> value);

/// <summary>
/// A node whose every Calico map (the current specs) holds entries cut from the fuzz input: the
/// readers of Get-BpfCounter, Get-BpfNat, Get-BpfRoute, ... decode them as they would real maps.
/// Only what the readers use is here; the rest is not a node a reader needs.
/// </summary>
public sealed class FuzzDataplane : ReadOnlyNode
{
    private const int Cpus = 2;
    private readonly byte[] _input;
    private readonly ValueAdjuster? _adjustValue;

    /// <param name="input">The bytes every map's entries are cut from.</param>
    /// <param name="adjustValue">Changes each value of a map (by pin name) before a reader sees it; null: none.</param>
    public FuzzDataplane(byte[] input, ValueAdjuster? adjustValue = null)
    {
        _input = input;
        _adjustValue = adjustValue;
    }

    public override string Node => "fuzz";

    public override IReadOnlyList<CalicoMapName> ListMaps() =>
        MapSpecs.Current.Select(s => MapCatalog.Parse(s.PinName)).OfType<CalicoMapName>().ToList();

    public override IMapReader OpenMap(string pinName)
    {
        MapSpec spec = MapSpecs.Current.FirstOrDefault(s => s.PinName == pinName)
            ?? throw NotPinned(pinName);
        return new Reader(new BpfMapDescriptor(1, spec.Type, spec.KeySize, spec.ValueSize, spec.MaxEntries, 0, pinName), _input, _adjustValue);
    }

    /// <summary>The input cut into entries of the map's sizes: the first byte says how many (up to 16), the rest are their bytes, repeated.</summary>
    private sealed class Reader : IMapReader
    {
        private readonly byte[] _input;
        private readonly ValueAdjuster? _adjustValue;

        public Reader(BpfMapDescriptor descriptor, byte[] input, ValueAdjuster? adjustValue)
        {
            Descriptor = descriptor;
            _input = input;
            _adjustValue = adjustValue;
        }

        public BpfMapDescriptor Descriptor { get; }

        public IEnumerable<RawEntryBatch> ReadEntries(CancellationToken cancellationToken)
        {
            int count = _input.Length == 0 ? 0 : 1 + (_input[0] % 16);
            int stride = Descriptor.ValueStride(Cpus);
            var batch = new RawEntryBatch(Descriptor.KeySize, Descriptor.ValueSize, stride, Cpus, Descriptor.Type.IsPerCpu(), count);
            int at = 1;
            for (int i = 0; i < count; i++)
            {
                for (int b = 0; b < Descriptor.KeySize; b++)
                {
                    batch.Keys[(i * Descriptor.KeySize) + b] = _input.Length > 1 ? _input[1 + (at++ % (_input.Length - 1))] : (byte)0;
                }

                for (int b = 0; b < stride; b++)
                {
                    batch.Values[(i * stride) + b] = _input.Length > 1 ? _input[1 + (at++ % (_input.Length - 1))] : (byte)0;
                }

                _adjustValue?.Invoke(Descriptor.Name, batch.Values.AsSpan(i * stride, stride));
            }

            batch.Count = count;
            yield return batch;
        }

        public long? CountEntries(CancellationToken cancellationToken) => _input.Length == 0 ? 0 : 1 + (_input[0] % 16);

        public void Dispose()
        {
        }
    }
}
