using CalicoBpf.Interop;
using CalicoBpf.Transport;

namespace CalicoBpf.Maps;

/// <summary>An interface that has counters, with the hooks it has them on.</summary>
public sealed record CounterInterface(int IfIndex, string Name, IReadOnlyList<int> Hooks);

/// <summary>Resets Calico's counters (calico-bpf counters flush): zeroes existing entries, never creates one.</summary>
public sealed class CounterMaintenance : IDisposable
{
    private readonly IMapWriter _map;
    private readonly INodeDataplane _node;

    public CounterMaintenance(INodeDataplane node)
    {
        _node = node;
        CalicoMapName pin = MapReading.Find(node, MapCatalog.Counters, "counters");
        MapName = pin.PinName;
        _map = node.OpenMapForWrite(pin.PinName);
        CounterLayout.CounterCount(pin.PinName, _map.Descriptor.KeySize, _map.Descriptor.ValueSize);
    }

    public string MapName { get; }

    /// <summary>The interfaces with counters, optionally filtered by name.</summary>
    public IReadOnlyList<CounterInterface> ListInterfaces(Func<string, bool>? filter, CancellationToken cancellationToken = default)
    {
        IReadOnlyDictionary<int, NetworkLink> links = _node.ListLinks();
        var hooks = new SortedDictionary<int, List<int>>();
        foreach (RawEntryBatch b in _map.ReadEntries(cancellationToken))
        {
            for (int i = 0; i < b.Count; i++)
            {
                (int ifIndex, int hook) = CounterLayout.DecodeKey(b.Key(i));
                if (filter is not null && !filter(CounterReader.NameOf(links, ifIndex)))
                {
                    continue;
                }

                if (!hooks.TryGetValue(ifIndex, out List<int>? list))
                {
                    hooks[ifIndex] = list = new List<int>();
                }

                list.Add(hook);
            }
        }

        return hooks.Select(h => new CounterInterface(h.Key, CounterReader.NameOf(links, h.Key), h.Value.OrderBy(x => x).ToList())).ToList();
    }

    /// <summary>Zeroes every hook's counters of one interface. Returns how many entries were reset.</summary>
    public int Reset(CounterInterface target)
    {
        byte[] zero = new byte[_map.ValueStride];
        byte[] key = new byte[CounterLayout.KeySize];
        int n = 0;
        foreach (int hook in target.Hooks)
        {
            CounterLayout.EncodeKey(key, target.IfIndex, hook);
            if (_map.UpdateExisting(key, zero))
            {
                n++;
            }
        }

        return n;
    }

    public void Dispose() => _map.Dispose();
}
