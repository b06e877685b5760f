using System.Net;
using CalicoBpf.Interop;
using CalicoBpf.Maps;
using CalicoBpf.Isolation;

namespace CalicoBpf.Simulation;

/// <summary>
/// A declarative description of one node's dataplane (YAML): which Calico maps exist, how many
/// connections of each kind conntrack holds, and each interface's counters. Seeded into real
/// maps by <see cref="Seed"/>.
/// </summary>
public sealed class NodeScenario
{
    public string Node { get; set; } = "demo-node";
    public int ConntrackVersion { get; set; } = 4;
    public int CounterCount { get; set; } = 27;
    public string PodCidr { get; set; } = "10.65.0.0/16";
    public string ServiceCidr { get; set; } = "10.96.0.0/16";
    public string HostAddress { get; set; } = "172.18.0.10";
    public int RandomSeed { get; set; } = 1;
    public ConntrackMix Conntrack { get; set; } = new();
    public List<InterfaceCounters> Interfaces { get; set; } = new();

    public sealed class ConntrackMix
    {
        /// <summary>Pod-to-pod and host TCP connections without NAT.</summary>
        public int Tcp { get; set; }
        public int Udp { get; set; }
        public int Icmp { get; set; }
        /// <summary>Connections to ClusterIP services: one NatForward and one NatReverse entry each.</summary>
        public int Services { get; set; }
        /// <summary>External clients to NodePorts, every other one forwarded through a tunnel to another node.</summary>
        public int NodePorts { get; set; }
    }

    public sealed class InterfaceCounters
    {
        public string Name { get; set; } = string.Empty;
        public Dictionary<string, ulong>? Ingress { get; set; }
        public Dictionary<string, ulong>? Egress { get; set; }
        public Dictionary<string, ulong>? Xdp { get; set; }
    }

    public static NodeScenario Parse(string yaml)
    {
        try
        {
            return DependencyLoadContext.Yaml.Deserialize<NodeScenario>(yaml);
        }
        catch (FormatException ex)
        {
            throw new FormatException("The node scenario is not valid. " + ex.Message, ex);
        }
    }

    public static NodeScenario Load(string path) => Parse(File.ReadAllText(path));

    /// <summary>The conntrack entries the mix describes, timed against the node's monotonic clock.</summary>
    public IEnumerable<ConntrackEntry> GenerateConntrack(ulong monotonicNow)
    {
        var rng = new Random(RandomSeed);
        AddressPrefix pods = AddressPrefix.Parse(PodCidr);
        AddressPrefix services = AddressPrefix.Parse(ServiceCidr);
        IPAddress host = IPAddress.Parse(HostAddress);
        IPAddress Pod() => Pick(rng, pods);
        int Ephemeral() => rng.Next(32768, 61000);
        // Ages never reach back past boot (a freshly booted machine has a small monotonic clock).
        ulong Seen(double maxSeconds) => monotonicNow - (ulong)(rng.NextDouble() * Math.Min(maxSeconds * 1e9, monotonicNow * 0.9));
        int[] servicePorts = { 80, 443, 8080, 5432, 6379, 9090 };

        for (int i = 0; i < Conntrack.Tcp; i++)
        {
            bool fromHost = i % 9 == 0;
            (ConntrackLeg fwd, ConntrackLeg rev) = TcpLegs(rng, out _);
            yield return new ConntrackEntry
            {
                Protocol = IpProtocol.Tcp,
                Type = ConntrackType.Normal,
                SourceAddress = fromHost ? host : Pod(),
                SourcePort = Ephemeral(),
                DestinationAddress = Pod(),
                DestinationPort = servicePorts[rng.Next(servicePorts.Length)],
                LastSeenNanoseconds = Seen(1800),
                Forward = fwd,
                Reverse = rev,
            };
        }

        for (int i = 0; i < Conntrack.Udp; i++)
        {
            yield return new ConntrackEntry
            {
                Protocol = IpProtocol.Udp,
                Type = ConntrackType.Normal,
                SourceAddress = Pod(),
                SourcePort = Ephemeral(),
                DestinationAddress = Pod(),
                DestinationPort = rng.Next(2) == 0 ? 53 : 8125,
                LastSeenNanoseconds = Seen(90),
                Forward = Counted(rng, true, false),
                Reverse = Counted(rng, false, false),
            };
        }

        for (int i = 0; i < Conntrack.Icmp; i++)
        {
            yield return new ConntrackEntry
            {
                Protocol = IpProtocol.Icmp,
                Type = ConntrackType.Normal,
                SourceAddress = Pod(),
                DestinationAddress = i % 2 == 0 ? host : Pod(),
                LastSeenNanoseconds = Seen(8),
                Forward = Counted(rng, true, false),
                Reverse = Counted(rng, false, false),
            };
        }

        for (int i = 0; i < Conntrack.Services + Conntrack.NodePorts; i++)
        {
            bool nodePort = i >= Conntrack.Services;
            bool tcp = nodePort || rng.Next(4) != 0;
            IPAddress client = nodePort ? IPAddress.Parse($"192.168.{rng.Next(1, 250)}.{rng.Next(1, 250)}") : Pod();
            int clientPort = Ephemeral();
            IPAddress vip = nodePort ? host : Pick(rng, services);
            int vipPort = nodePort ? rng.Next(30000, 32768) : tcp ? servicePorts[rng.Next(servicePorts.Length)] : 53;
            IPAddress backend = Pod();
            int backendPort = tcp ? 8080 : 53;
            ulong seen = Seen(tcp ? 1800 : 60);
            (ConntrackLeg fwd, ConntrackLeg rev) = tcp ? TcpLegs(rng, out _) : (Counted(rng, true, false), Counted(rng, false, false));
            bool tunnelled = nodePort && i % 2 == 0;
            var flags = nodePort ? (tunnelled ? ConntrackFlags.NodePortForward : ConntrackFlags.ExternalLocal) : ConntrackFlags.None;
            IpProtocol proto = tcp ? IpProtocol.Tcp : IpProtocol.Udp;

            var reverse = new ConntrackEntry
            {
                Protocol = proto,
                Type = ConntrackType.NatReverse,
                SourceAddress = client,
                SourcePort = clientPort,
                DestinationAddress = backend,
                DestinationPort = backendPort,
                ServiceAddress = vip,
                ServicePort = vipPort,
                TunnelAddress = tunnelled ? IPAddress.Parse($"172.18.0.{rng.Next(11, 40)}") : null,
                Flags = flags,
                LastSeenNanoseconds = seen,
                Forward = fwd,
                Reverse = rev,
            };
            bool clientIsA = ConntrackCodec.SortsFirst(client, clientPort, backend, backendPort);
            yield return reverse;
            yield return new ConntrackEntry
            {
                Protocol = proto,
                Type = ConntrackType.NatForward,
                SourceAddress = client,
                SourcePort = clientPort,
                DestinationAddress = vip,
                DestinationPort = vipPort,
                ServiceAddress = vip,
                ServicePort = vipPort,
                Flags = flags,
                LastSeenNanoseconds = seen,
                ReverseKey = clientIsA
                    ? new ConntrackKey(proto, client, clientPort, backend, backendPort)
                    : new ConntrackKey(proto, backend, backendPort, client, clientPort),
            };
        }
    }

    /// <summary>Creates the scenario's maps in a claimed pin directory and fills them.</summary>
    /// <param name="links">The node's interfaces by name (their ifindex keys the counters).</param>
    public void Seed(SimulatedDataplane dataplane, IReadOnlyDictionary<string, int> links)
    {
        foreach (MapSpec spec in MapSpecs.Current)
        {
            if (spec.BaseName is "cali_v4_ct" or "cali_v6_ct" or "cali_counters")
            {
                continue;
            }

            dataplane.CreateMap(spec);
        }

        MapSpec ctSpec = MapSpecs.Conntrack(ConntrackVersion, ipv6: false);
        BpfMap ct = dataplane.CreateMap(ctSpec);
        ConntrackLayout layout = ConntrackLayout.For(ctSpec.PinName, ctSpec.Version, ctSpec.KeySize, ctSpec.ValueSize);
        dataplane.WriteConntrack(ct, layout, GenerateConntrack(KernelInfo.MonotonicNanoseconds()));

        if (ConntrackVersion >= 3)
        {
            dataplane.CreateMap(MapSpecs.Conntrack(ConntrackVersion, ipv6: true));
        }

        MapSpec counterSpec = MapSpecs.Counters(CounterCount >= 26 ? 6 : CounterCount >= 25 ? 5 : CounterCount >= 17 ? 3 : 2, CounterCount);
        BpfMap counters = dataplane.CreateMap(counterSpec);
        foreach (InterfaceCounters iface in Interfaces)
        {
            if (!links.TryGetValue(iface.Name, out int ifIndex))
            {
                throw new InvalidOperationException($"The scenario names interface {iface.Name}, which this node does not have.");
            }

            foreach ((int hook, Dictionary<string, ulong>? values) in new[] { (0, iface.Ingress), (1, iface.Egress), (2, iface.Xdp) })
            {
                if (values is not null)
                {
                    dataplane.WriteCounters(counters, ifIndex, hook, ToIndexes(values));
                }
            }
        }
    }

    private Dictionary<int, ulong> ToIndexes(Dictionary<string, ulong> byId)
    {
        var result = new Dictionary<int, ulong>();
        foreach ((string id, ulong v) in byId)
        {
            CounterDefinition? d = CounterLayout.Definitions.FirstOrDefault(x => string.Equals(x.Id, id, StringComparison.OrdinalIgnoreCase));
            if (d is null || d.Index >= CounterCount)
            {
                throw new FormatException($"Unknown counter '{id}' for a map of {CounterCount} counters. Known: {string.Join(", ", CounterLayout.Definitions.Take(CounterCount).Select(x => x.Id))}.");
            }

            result[d.Index] = v;
        }

        return result;
    }

    private static (ConntrackLeg Forward, ConntrackLeg Reverse) TcpLegs(Random rng, out TcpState state)
    {
        int roll = rng.Next(100);
        state = roll < 70 ? TcpState.Established : roll < 82 ? TcpState.Closed : roll < 92 ? TcpState.SynSent : TcpState.Reset;
        bool synAckBack = state != TcpState.SynSent;
        ConntrackLeg fwd = Counted(rng, true, true) with { AckSeen = synAckBack, FinSeen = state == TcpState.Closed, RstSeen = state == TcpState.Reset };
        ConntrackLeg rev = Counted(rng, false, synAckBack) with { AckSeen = synAckBack, FinSeen = state == TcpState.Closed };
        if (!synAckBack)
        {
            rev = rev with { Bytes = 0, Packets = 0 };
        }

        return (fwd, rev);
    }

    private static ConntrackLeg Counted(Random rng, bool opener, bool syn)
    {
        uint packets = (uint)rng.Next(1, 5000);
        return new ConntrackLeg
        {
            Packets = packets,
            Bytes = (ulong)packets * (ulong)rng.Next(60, 1400),
            SequenceNumber = (uint)rng.NextInt64(0, uint.MaxValue),
            SynSeen = syn,
            Approved = true,
            Opener = opener,
            Workload = opener,
            IfIndex = opener ? rng.Next(2, 12) : 0,
        };
    }

    private static IPAddress Pick(Random rng, AddressPrefix prefix)
    {
        byte[] b = IPAddress.Parse(prefix.ToString().Split('/')[0]).GetAddressBytes();
        for (int bit = prefix.PrefixLength; bit < b.Length * 8; bit++)
        {
            if (rng.Next(2) == 1)
            {
                b[bit / 8] |= (byte)(0x80 >> (bit % 8));
            }
        }

        if (b.Length == 4 && b[3] is 0 or 255)
        {
            b[3] = 7;
        }

        return new IPAddress(b);
    }
}
