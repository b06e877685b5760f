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
public sealed class FuzzDataplane : INodeDataplane
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

    public string Node => "fuzz";

    public string PinDirectory => "/sys/fs/bpf/tc/globals";

    public IReadOnlyList<CalicoMapName> ListMaps() =>
        MapSpecs.Current.Select(s => MapCatalog.Parse(s.PinName)).OfType<CalicoMapName>().ToList();

    public NodeRelease Release => ReleaseInference.Infer(ListMaps());

    public IMapReader OpenMap(string pinName)
    {
        MapSpec spec = MapSpecs.Current.FirstOrDefault(s => s.PinName == pinName)
            ?? throw new BpfObjectNotFoundException($"{pinName} is not pinned on fuzz.", Errno.ENOENT, pinName);
        return new Reader(new BpfMapDescriptor(1, spec.Type, spec.KeySize, spec.ValueSize, spec.MaxEntries, 0, pinName), _input, _adjustValue);
    }

    public IMapReader OpenMapToDump(string pinName) => OpenMap(pinName);

    public void ExpectDump(string baseName)
    {
    }

    public void PrepareToOpen(IReadOnlyList<string> pinNames)
    {
    }

    public IMapWriter OpenMapForWrite(string pinName) => throw new NotSupportedException("the fuzz node is read-only");

    public IReadOnlyList<long?> CountEntries(IReadOnlyList<IMapReader> maps, CancellationToken cancellationToken) =>
        maps.Select(m => m.CountEntries(cancellationToken)).ToList();

    public ClockSample SampleClock() => new(5_000_000_000_000, new DateTime(2026, 11, 26, 8, 0, 0, DateTimeKind.Utc));

    public IReadOnlyDictionary<int, NetworkLink> ListLinks() => new Dictionary<int, NetworkLink> { [1] = new(1, "lo"), [2] = new(2, "eth0") };

    public IReadOnlyList<QdiscStatistic> ListQdiscs() => Array.Empty<QdiscStatistic>();

    public IReadOnlyList<string>? ListDirectory(string path) => null;

    public string? ReadTextFile(string path) => null;

    public IEnumerable<string> ReadTraceLines(bool follow, string? tracingDirectory, CancellationToken cancellationToken) => Array.Empty<string>();

    public IReadOnlyList<ConnectTimeProgram> ListConnectTimePrograms(string? cgroupPath, string linkDirectory, bool calicoOnly) => Array.Empty<ConnectTimeProgram>();

    public (IReadOnlyList<string> ProgramArrays, IReadOnlyList<string> Links) PlanConnectTimeRemoval(string linkDirectory) => (Array.Empty<string>(), Array.Empty<string>());

    public void RemoveConnectTimeProgramArray(string path) => throw new NotSupportedException("the fuzz node is read-only");

    public void RemoveConnectTimeLink(string path) => throw new NotSupportedException("the fuzz node is read-only");

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
