using CalicoBpf.Interop;
using CalicoBpf.Maps;
using CalicoBpf.Trace;
using CalicoBpf.Transport;

namespace CalicoBpf.Bundles;

/// <summary>
/// The families of objects a node's dataplane holds, each read as its cmdlet reads it (every entry,
/// IPv4 then IPv6): what Export-CalicoBpfDiagnostic captures and writes as typed JSON, and what
/// Compare-BpfState compares.
/// </summary>
public static class DataplaneFamilies
{
    /// <summary>The families, in the order a capture reads them: small first, so the size bound cuts the largest.</summary>
    public static IReadOnlyList<string> Names { get; } = new[]
    {
        "interfaces", "attachments", "qdiscs", "counters", "routes", "ipsets", "arp", "nat", "nat-affinity", "maglev",
        "policy", "connect-time", "trace", "conntrack", "maps",
    };

    /// <summary>Every object of one family on the node; the node's own failure (no such map, no policy files) is thrown as it is.</summary>
    public static IEnumerable<object> Read(INodeDataplane node, string family, IEngineReporter reporter, CancellationToken ct) => family switch
    {
        "interfaces" => InterfaceStateMap.Read(node, reporter, ct, withAttachments: true),
        "attachments" => node.ListAttachments().Attachments,
        "qdiscs" => node.ListQdiscs(),
        "counters" => CounterReader.Read(node, null, reporter, ct),
        "routes" => Both(v6 => RouteMap.Read(node, v6, null, reporter, ct)),
        "ipsets" => Both(v6 => IpSetMap.Read(node, v6, null, reporter, ct)),
        "arp" => Both(v6 => ArpMap.Read(node, v6, reporter, ct)),
        "nat" => Both(v6 => NatMaps.ReadFrontends(node, new NatQuery { IPv6 = v6 }, reporter, ct)),
        "nat-affinity" => Both(v6 => NatMaps.ReadAffinity(node, v6, reporter, ct)),
        "maglev" => Both(v6 => NatMaps.ReadMaglev(node, v6, null, reporter, ct)),
        "policy" => PolicyDebug.ReadAll(node, PolicyDebug.DefaultDirectory, null, includeIPv6: true, reporter, ct) ?? new List<PolicyRule>(),
        "connect-time" => ConnectTime.Programs(node, null, ConnectTime.DefaultLinkDirectory, calicoOnly: false),
        "trace" => Trace(node, reporter, ct),
        "conntrack" => Both(v6 => ConntrackReader.Read(node, new ConntrackQuery { IPv6 = v6 }, reporter, ct)),
        "maps" => MapInventory.List(node, null, countEntries: true, reporter, ct),
        _ => throw new ArgumentOutOfRangeException(nameof(family), family, "no such family: " + string.Join(", ", Names)),
    };

    /// <summary>IPv4 then IPv6; a family a node has no IPv6 maps of is IPv4 only.</summary>
    private static IEnumerable<object> Both<T>(Func<bool, IEnumerable<T>> read)
        where T : class
    {
        foreach (T item in read(false))
        {
            yield return item;
        }

        IEnumerator<T> v6;
        try
        {
            v6 = read(true).GetEnumerator();
        }
        catch (Exception ex) when (Answer<string>.Recordable(ex))
        {
            yield break;
        }

        using (v6)
        {
            while (true)
            {
                try
                {
                    if (!v6.MoveNext())
                    {
                        yield break;
                    }
                }
                catch (Exception ex) when (ex is BpfObjectNotFoundException or BpfEnvironmentException { Problem: BpfEnvironmentProblem.NoCalicoMaps })
                {
                    yield break;
                }

                yield return v6.Current;
            }
        }
    }

    private static IEnumerable<object> Trace(INodeDataplane node, IEngineReporter reporter, CancellationToken ct)
    {
        ClockSample clock = node.SampleClock();
        CalicoRelease release = ReleaseInference.Of(node, reporter).Release;
        return node.ReadTraceLines(follow: false, null, ct).Select(line => TraceLogParser.Parse(line, node.Node, clock, release));
    }
}
