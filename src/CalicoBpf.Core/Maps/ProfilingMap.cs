using CalicoBpf.Interop;
using CalicoBpf.Transport;

namespace CalicoBpf.Maps;

/// <summary>
/// cali_profiling (version 2; Felix fills it with bpfProfiling: Enabled; felix/bpf-gpl/profiling.h and
/// felix/bpf/profiling/map.go): key (ifindex u32, kind u32), per-CPU value (time u64 ns, samples u64).
/// kind = (0 from a host endpoint or to a workload, else 2) + (0 when conntrack's result was NEW, else 1),
/// labelled as calico-bpf profiling e2e labels it. Read without deleting (calico-bpf deletes what it reads).
/// </summary>
public static class ProfilingMap
{
    public const string BaseName = "cali_profiling";
    public const int KeySize = 8;
    public const int ValueSize = 16;

    /// <summary>calico-bpf's labels of the four kinds: INGRESS/EGRESS and new/est.</summary>
    public static (string Direction, string Conntrack) Kind(uint kind) => ((kind & 2) == 0 ? "INGRESS" : "EGRESS", (kind & 1) == 0 ? "new" : "est");

    /// <summary>One row per interface and kind with samples; nothing when the map is not pinned (profiling was never on), said in verbose.</summary>
    public static IEnumerable<FelixProgramProfile> Read(INodeDataplane node, Func<string, bool>? interfaceFilter = null, IEngineReporter? reporter = null,
        CancellationToken cancellationToken = default)
    {
        reporter ??= NullReporter.Instance;
        if (MapReading.TryFind(node, BaseName) is not { } pin)
        {
            reporter.Verbose($"No profiling map ({BaseName}) on {node.Node}: Felix fills it only with bpfProfiling: Enabled (FelixConfiguration).");
            yield break;
        }

        IReadOnlyDictionary<int, NetworkLink> links = node.ListLinks();
        var rows = new List<FelixProgramProfile>();
        using (IMapReader reader = node.OpenMapToDump(pin.PinName))
        {
            MapReading.ExpectSizes(pin, reader.Descriptor, KeySize, ValueSize, "8-byte keys (ifindex, kind) and 16-byte per-CPU values (time, samples)");
            foreach (RawEntryBatch b in reader.ReadEntries(cancellationToken))
            {
                for (int i = 0; i < b.Count; i++)
                {
                    ReadOnlySpan<byte> key = b.Key(i);
                    int ifIndex = (int)BinaryPrimitives.ReadUInt32LittleEndian(key);
                    string name = CounterReader.NameOf(links, ifIndex);
                    if (interfaceFilter is not null && !interfaceFilter(name))
                    {
                        continue;
                    }

                    ReadOnlySpan<byte> v = b.Value(i);
                    ulong time = 0, samples = 0;
                    for (int c = 0, cpus = b.PerCpu ? b.Cpus : 1; c < cpus; c++)
                    {
                        ReadOnlySpan<byte> slot = v[(c * b.PerCpuSlot)..];
                        time += BinaryPrimitives.ReadUInt64LittleEndian(slot);
                        samples += BinaryPrimitives.ReadUInt64LittleEndian(slot[8..]);
                    }

                    (string direction, string conntrack) = Kind(BinaryPrimitives.ReadUInt32LittleEndian(key[4..]));
                    rows.Add(new FelixProgramProfile
                    {
                        Node = node.Node,
                        Interface = name,
                        IfIndex = ifIndex,
                        Direction = direction,
                        Conntrack = conntrack,
                        Samples = samples,
                        TotalNanoseconds = time,
                        AverageNanoseconds = samples == 0 ? null : (double)time / samples,
                    });
                }
            }
        }

        foreach (FelixProgramProfile r in rows.OrderBy(r => r.Interface, StringComparer.Ordinal).ThenBy(r => r.Direction, StringComparer.Ordinal).ThenBy(r => r.Conntrack == "new" ? 0 : 1))
        {
            yield return r;
        }
    }
}
