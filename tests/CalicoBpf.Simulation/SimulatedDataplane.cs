using CalicoBpf.Interop;
using CalicoBpf.Maps;

namespace CalicoBpf.Simulation;

/// <summary>
/// Real Calico maps (Calico's names, types and sizes) created in a pin directory this process owns,
/// filled through Core's encoders. Used by test fixtures, the demo and simulated nodes. It refuses
/// a directory that holds Calico maps it did not create, and never touches /sys/fs/bpf/tc/globals.
/// </summary>
public sealed class SimulatedDataplane : IDisposable
{
    /// <summary>A directory (bpffs holds no regular files) that marks a pin directory as ours.</summary>
    public const string OwnerMarker = "calicobpf-simulated";

    private readonly Dictionary<string, BpfMap> _maps = new(StringComparer.Ordinal);

    private SimulatedDataplane(string pinDirectory) => PinDirectory = pinDirectory;

    public string PinDirectory { get; }

    /// <summary>Claims a pin directory: creates it with the owner marker, or reuses one that carries the marker.</summary>
    public static SimulatedDataplane Claim(string pinDirectory)
    {
        string full = Path.GetFullPath(pinDirectory).TrimEnd('/');
        if (full == MapCatalog.DefaultPinDirectory || full.StartsWith(MapCatalog.DefaultPinDirectory + "/", StringComparison.Ordinal))
        {
            throw new InvalidOperationException(
                $"Refusing to create simulated maps in {full}: that is where a real calico-node keeps its dataplane. Use a private bpffs directory.");
        }

        Directory.CreateDirectory(full);
        if (!KernelInfo.IsOnBpfFs(full))
        {
            throw new InvalidOperationException($"{full} is not on a bpffs mount; mount one there first (mount -t bpf bpf DIR).");
        }

        bool ours = Directory.Exists(Path.Combine(full, OwnerMarker));
        if (!ours && MapCatalog.ListPins(full).Count > 0)
        {
            throw new InvalidOperationException(
                $"Refusing to touch {full}: it already holds Calico maps that CalicoBpf did not create. Choose an empty directory.");
        }

        Directory.CreateDirectory(Path.Combine(full, OwnerMarker));
        return new SimulatedDataplane(full);
    }

    /// <summary>Creates and pins a map (replacing our own earlier pin of the same name).</summary>
    public BpfMap CreateMap(MapSpec spec, int? maxEntries = null)
    {
        string path = Path.Combine(PinDirectory, spec.PinName);
        if (File.Exists(path))
        {
            File.Delete(path);
        }

        if (_maps.Remove(spec.PinName, out BpfMap? old))
        {
            old.Dispose();
        }

        BpfMap map = BpfMap.Create(spec.Type, spec.KeySize, spec.ValueSize, maxEntries ?? spec.MaxEntries, spec.PinName, spec.Flags);
        try
        {
            map.Pin(path);
        }
        catch
        {
            map.Dispose();
            throw;
        }

        _maps[spec.PinName] = map;
        return map;
    }

    public bool HasMap(string pinName) => _maps.ContainsKey(pinName);

    public BpfMap Map(string pinName) => _maps.TryGetValue(pinName, out BpfMap? m)
        ? m
        : throw new KeyNotFoundException($"No simulated map {pinName} was created.");

    /// <summary>Writes conntrack entries through the encoder. Returns how many were written.</summary>
    /// <param name="release">The release whose meanings to write (offset 0); null: the newest that wrote the layout's version.</param>
    public int WriteConntrack(BpfMap map, ConntrackLayout layout, IEnumerable<ConntrackEntry> entries, CalicoRelease? release = null)
    {
        byte[] key = new byte[layout.KeySize];
        byte[] value = new byte[layout.ValueSize];
        ConntrackMeaning? meaning = release is null ? null : ConntrackMeaning.For(layout.Version, release);
        int n = 0;
        foreach (ConntrackEntry e in entries)
        {
            ConntrackCodec.Encode(layout, e, key, value, meaning ?? ConntrackMeaning.For(layout.Version, e.Release));
            map.Update(key, value);
            n++;
        }

        return n;
    }

    /// <summary>
    /// Test support: writes (or with <paramref name="remove"/> deletes) conntrack entries in a conntrack map
    /// pinned at <paramref name="pinPath"/> that another simulator owns (a test cluster node's), through the
    /// encoder, as the newest release that wrote its version. Returns how many were written or deleted.
    /// </summary>
    public static int WriteConntrackPinned(string pinPath, IEnumerable<ConntrackEntry> entries, bool remove = false)
    {
        CalicoMapName name = MapCatalog.Parse(Path.GetFileName(pinPath)) ?? throw new ArgumentException($"{pinPath} is not a Calico map pin.", nameof(pinPath));
        using BpfMap map = BpfMap.OpenPinned(pinPath, writable: true);
        var layout = ConntrackLayout.For(name.PinName, name.Version, map.Descriptor.KeySize, map.Descriptor.ValueSize);
        byte[] key = new byte[layout.KeySize];
        byte[] value = new byte[layout.ValueSize];
        int n = 0;
        foreach (ConntrackEntry e in entries)
        {
            ConntrackCodec.Encode(layout, e, key, value, ConntrackMeaning.For(layout.Version, e.Release));
            if (remove)
            {
                n += map.Delete(key) ? 1 : 0;
                continue;
            }

            map.Update(key, value);
            n++;
        }

        return n;
    }

    /// <summary>Writes one counters entry: per-counter totals spread over the possible CPUs.</summary>
    public void WriteCounters(BpfMap map, int ifIndex, int hook, IReadOnlyDictionary<int, ulong> totals)
    {
        int counters = map.Descriptor.ValueSize / 8;
        int cpus = KernelInfo.PossibleCpuCount;
        byte[] key = new byte[CounterLayout.KeySize];
        CounterLayout.EncodeKey(key, ifIndex, hook);
        byte[] value = CounterLayout.EncodeValue(counters, cpus, (cpu, index) =>
        {
            if (!totals.TryGetValue(index, out ulong total))
            {
                return 0;
            }

            // Split unevenly so that only a correct sum over every CPU gives the total.
            ulong share = total / (ulong)cpus;
            return cpu == 0 ? total - (share * (ulong)(cpus - 1)) : share;
        });
        map.Update(key, value);
    }

    /// <summary>Closes our handles. The pins stay until their bpffs is unmounted (or <see cref="RemoveAll"/>).</summary>
    public void Dispose()
    {
        foreach (BpfMap m in _maps.Values)
        {
            m.Dispose();
        }

        _maps.Clear();
    }

    /// <summary>Removes every pin this instance created and the owner marker.</summary>
    public void RemoveAll()
    {
        foreach (string name in _maps.Keys.ToList())
        {
            string path = Path.Combine(PinDirectory, name);
            if (File.Exists(path))
            {
                File.Delete(path);
            }
        }

        Dispose();
        string marker = Path.Combine(PinDirectory, OwnerMarker);
        if (Directory.Exists(marker))
        {
            Directory.Delete(marker);
        }
    }
}
