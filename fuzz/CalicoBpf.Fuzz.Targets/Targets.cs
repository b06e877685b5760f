using System.Buffers.Binary;
using System.Text;
using CalicoBpf.Diagnostics;
using CalicoBpf.Interop;
using CalicoBpf.Maps;
using CalicoBpf.Simulation;
using CalicoBpf.Trace;
using CalicoBpf.Transport;

namespace CalicoBpf.Fuzz;

/// <summary>
/// The fuzz targets of the engine and the simulator (the test cluster's are in an assembly of their
/// own, CalicoBpf.Fuzz.ClusterTargets). Each takes one input; the exceptions a caller is promised for
/// bad input (a typed BpfException, a FormatException naming line and column) are the expected
/// outcome and are swallowed; anything else escapes and is a finding.
/// </summary>
public static class Targets
{
    public static readonly IReadOnlyDictionary<string, Action<byte[]>> All = new Dictionary<string, Action<byte[]>>(StringComparer.Ordinal)
    {
        ["conntrack"] = Conntrack,
        ["bpftool-json"] = BpftoolJson,
        ["trace-line"] = TraceLines,
        ["felix-log"] = FelixLogText,
        ["node-scenario"] = NodeScenarioText,
        ["maps"] = Maps,
        ["nat"] = Nat,
    };

    // A property, not a static field: instrumented code must not run before SharpFuzz has set up its shared memory.
    private static ClockSample Clock => new(5_000_000_000_000, new DateTime(2026, 11, 26, 8, 0, 0, DateTimeKind.Utc));

    /// <summary>A conntrack entry of any version and family: the first byte picks them, the rest is key then value.</summary>
    private static void Conntrack(byte[] input)
    {
        if (input.Length < 1)
        {
            return;
        }

        bool ipv6 = (input[0] & 0x80) != 0;
        int version = ipv6 ? 3 + (input[0] % 2) : 2 + (input[0] % 3); // Calico never had an IPv6 version 2
        MapSpec spec = MapSpecs.Conntrack(version, ipv6);
        string name = CalicoMapName.Versioned(ipv6 ? MapCatalog.ConntrackV6 : MapCatalog.ConntrackV4, version);
        ConntrackLayout layout = ConntrackLayout.For(name, version, spec.KeySize, spec.ValueSize);
        byte[] key = new byte[layout.KeySize];
        byte[] value = new byte[layout.ValueSize];
        input.AsSpan(1, Math.Min(key.Length, input.Length - 1)).CopyTo(key);
        if (input.Length > 1 + key.Length)
        {
            input.AsSpan(1 + key.Length, Math.Min(value.Length, input.Length - 1 - key.Length)).CopyTo(value);
        }

        ConntrackEntry e = new ConntrackCodec(layout, "fuzz", name, Clock).Decode(key, value);
        _ = e.ToString();
        _ = e.State;
        _ = e.FlagNames;
    }

    /// <summary>bpftool -j map dump output of a 16/72-byte hash map (and a per-CPU one), streamed as the remote reader streams it.</summary>
    private static void BpftoolJson(byte[] input)
    {
        foreach (BpfMapDescriptor d in new[]
        {
            new BpfMapDescriptor(1, BpfMapType.Hash, 16, 72, 512000, 0, "cali_v4_ct4"),
            new BpfMapDescriptor(2, BpfMapType.PerCpuArray, 4, 8, 16, 0, "cali_counters"),
        })
        {
            try
            {
                var reader = new BpftoolJsonReader(new MemoryStream(input), d, possibleCpus: 2, target: d.Name);
                foreach (RawEntryBatch batch in reader.ReadBatches(64, CancellationToken.None))
                {
                    for (int i = 0; i < batch.Count; i++)
                    {
                        _ = batch.Key(i).Length + batch.Value(i).Length;
                    }
                }
            }
            catch (BpfException)
            {
                // The promised outcome of a broken dump: a typed error naming the map.
            }
        }
    }

    /// <summary>
    /// The readers of every other map (counters, affinity, Maglev, routes, IP sets, ARP, interface
    /// state, the map inventory, conntrack through its reader): the first byte picks one, the rest
    /// fills an in-memory node's maps. A reader may refuse an entry or a map with a typed
    /// BpfException; nothing else. One reader per input keeps each execution short.
    /// </summary>
    private static readonly Func<INodeDataplane, IEnumerable<object>>[] Readers =
    {
        node => CounterReader.Read(node),
        node => NatMaps.ReadAffinity(node, false),
        node => NatMaps.ReadMaglev(node, false, null),
        node => RouteMap.Read(node, false),
        node => IpSetMap.Read(node, false),
        node => ArpMap.Read(node, false),
        node => InterfaceStateMap.Read(node),
        node => MapInventory.List(node),
        node => ConntrackReader.Read(node, new ConntrackQuery()),
    };

    private static void Maps(byte[] input)
    {
        if (input.Length == 0)
        {
            return;
        }

        Read(() => Readers[input[0] % Readers.Length](new FuzzDataplane(input[1..])));
    }

    /// <summary>
    /// The NAT reader: frontends and the backends their counts point at, found in one pass over the
    /// backend map. A frontend may count up to 65,536 backends, each an object, so the harness keeps
    /// counts below 1,024 (the drop entry's 0xffffffff stays): the reader takes the same paths for
    /// any count, and an execution stays short. Counts up to the cap are the unit tests' business.
    /// </summary>
    private static void Nat(byte[] input) => Read(() => NatMaps.ReadFrontends(new FuzzDataplane(input, (pin, value) =>
    {
        if (pin.StartsWith(NatMaps.FrontendV4, StringComparison.Ordinal) && value.Length >= 8
            && BinaryPrimitives.ReadUInt32LittleEndian(value[4..]) is uint count && count != NatMaps.DropCount)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(value[4..], count % 1024);
        }
    }), new NatQuery()));

    private static void Read(Func<IEnumerable<object>> read)
    {
        try
        {
            foreach (object o in read())
            {
                _ = o.ToString();
            }
        }
        catch (BpfException)
        {
            // A map the decoder refuses, named.
        }
    }

    /// <summary>Kernel trace buffer lines: every line parses (unknown ones as raw text).</summary>
    private static void TraceLines(byte[] input)
    {
        foreach (string line in Encoding.UTF8.GetString(input).Split('\n'))
        {
            _ = TraceLogParser.Parse(line, "fuzz", Clock).ToString();
        }
    }

    /// <summary>calico-node log text: lines parse or are skipped, and their fields are read.</summary>
    private static void FelixLogText(byte[] input)
    {
        foreach (FelixLogLine line in FelixLog.Parse(Encoding.UTF8.GetString(input)))
        {
            _ = line.Field("error");
            _ = line.Field("iface");
        }

        _ = FelixLog.Last(FelixLog.Parse(Encoding.UTF8.GetString(input)), FelixLog.Started);
    }

    /// <summary>The node scenario YAML the test cluster and the demo read: FormatException with line and column, or a scenario.</summary>
    private static void NodeScenarioText(byte[] input)
    {
        try
        {
            NodeScenario s = NodeScenario.Parse(Encoding.UTF8.GetString(input));
            _ = s.GenerateConntrack(5_000_000_000_000).Take(1000).Count();
        }
        catch (FormatException)
        {
            // The promised outcome of bad YAML or a bad endpoint: line, column and cause.
        }
    }
}
