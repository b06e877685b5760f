using CalicoBpf.Interop;
using CalicoBpf.Transport;

namespace CalicoBpf.Maps;

/// <summary>Reads cali_counters into one <see cref="InterfaceCounter"/> per interface and counter.</summary>
public static class CounterReader
{
    public static IEnumerable<InterfaceCounter> Read(INodeDataplane node, Func<string, bool>? interfaceFilter = null,
        IEngineReporter? reporter = null, CancellationToken cancellationToken = default)
    {
        reporter ??= NullReporter.Instance;
        CalicoMapName pin = MapReading.FindToDump(node, MapCatalog.Counters, "counters",
            "Calico releases before v3.26 kept counters per interface outside this directory; they are not supported.");
        IReadOnlyDictionary<int, NetworkLink> links = node.ListLinks();

        // The map holds at most three entries per interface; rows of one interface need all three hooks.
        var byInterface = new SortedDictionary<int, ulong[]?[]>();
        int counters;
        using (IMapReader reader = node.OpenMapToDump(pin.PinName))
        {
            counters = CounterLayout.CounterCount(pin.PinName, reader.Descriptor.KeySize, reader.Descriptor.ValueSize);
            reporter.Verbose($"Reading {pin.PinName}: {counters} counters per interface and hook on {node.Node}.");
            foreach (RawEntryBatch batch in reader.ReadEntries(cancellationToken))
            {
                for (int i = 0; i < batch.Count; i++)
                {
                    (int ifIndex, int hook) = CounterLayout.DecodeKey(batch.Key(i));
                    if (hook is < 0 or > CounterLayout.HookXdp)
                    {
                        reporter.Verbose($"Skipping counters for ifindex {ifIndex} on unknown hook {hook}.");
                        continue;
                    }

                    if (interfaceFilter is not null && !interfaceFilter(NameOf(links, ifIndex)))
                    {
                        continue;
                    }

                    if (!byInterface.TryGetValue(ifIndex, out ulong[]?[]? hooks))
                    {
                        hooks = new ulong[]?[3];
                        byInterface[ifIndex] = hooks;
                    }

                    var sums = new ulong[counters];
                    CounterLayout.SumCpus(batch.Value(i), counters, batch.PerCpu ? batch.Cpus : 1, batch.PerCpuSlot, sums);
                    hooks[hook] = sums;
                }
            }
        }

        CalicoRelease release = ReleaseInference.Of(node, reporter).Release;
        CounterDefinition[] order = Enumerable.Range(0, counters)
            .Select(i => CounterLayout.Define(i, release))
            .Where(d => d.Printed)
            .OrderBy(d => d.Category == CounterCategory.Unknown ? 1 : 0)
            .ThenBy(d => d.Category.ToString(), StringComparer.Ordinal)
            .ThenBy(d => d.Caption, StringComparer.OrdinalIgnoreCase)
            .ToArray();
        foreach ((int ifIndex, ulong[]?[] hooks) in byInterface)
        {
            string name = NameOf(links, ifIndex);
            foreach (CounterDefinition d in order)
            {
                yield return new InterfaceCounter
                {
                    Node = node.Node,
                    Interface = name,
                    IfIndex = ifIndex,
                    Category = d.Category,
                    Name = d.Caption,
                    Id = d.Id,
                    Index = d.Index,
                    Ingress = hooks[CounterLayout.HookIngress]?[d.Index],
                    Egress = hooks[CounterLayout.HookEgress]?[d.Index],
                    Xdp = hooks[CounterLayout.HookXdp]?[d.Index],
                };
            }
        }
    }

    /// <summary>The interface name of an ifindex, or "ifindex N" when the interface is gone.</summary>
    public static string NameOf(IReadOnlyDictionary<int, NetworkLink> links, int ifIndex) =>
        links.TryGetValue(ifIndex, out NetworkLink? link) ? link.Name : "ifindex " + ifIndex;
}
