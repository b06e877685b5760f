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
    /// <summary>The conntrack map version; null: the one <see cref="CalicoVersion"/> pins (4 when that is empty too).</summary>
    public int? ConntrackVersion { get; set; }
    /// <summary>
    /// The Calico release the node runs: the map versions it pins and what their bytes mean (v3.29.7:
    /// conntrack version 3 whose offset 0 is the creation time); empty: the newest release.
    /// </summary>
    public string CalicoVersion { get; set; } = string.Empty;

    /// <summary>The release of <see cref="CalicoVersion"/>; null when none is set.</summary>
    public CalicoRelease? Release => CalicoVersion.Length == 0 ? null : CalicoRelease.Parse(CalicoVersion);
    /// <summary>max_entries of the conntrack maps; null for Calico's default (512,000). Small fleets of simulated nodes use less.</summary>
    public int? ConntrackMaxEntries { get; set; }
    /// <summary>Counters per value of the counters map; null: as many as <see cref="CalicoVersion"/> has (27 when that is empty).</summary>
    public int? CounterCount { get; set; }

    /// <summary>The conntrack map version seeded.</summary>
    public int ConntrackMapVersion => ConntrackVersion ?? (Release is { } r ? ConntrackMeaning.VersionFor(r) : 4);

    /// <summary>The counters map seeded: its version and counters per value.</summary>
    public (int Version, int Counters) CounterMap => Release is { } r && CounterLayout.ForRelease(r) is { } m && (CounterCount is null || CounterCount == m.Counters)
        ? m
        : CounterMapFor(CounterCount ?? 27);

    private static (int Version, int Counters) CounterMapFor(int count) => (count >= 26 ? 6 : count >= 25 ? 5 : count >= 17 ? 3 : 2, count);
    public string PodCidr { get; set; } = "10.65.0.0/16";
    /// <summary>The IPv6 pods' addresses (<see cref="ConntrackMix.Tcp6"/>, <see cref="ConntrackMix.Udp6"/>).</summary>
    public string PodCidr6 { get; set; } = "fd00:10:65::/64";
    public string ServiceCidr { get; set; } = "10.96.0.0/16";
    public string HostAddress { get; set; } = "172.18.0.10";
    public int RandomSeed { get; set; } = 1;
    public ConntrackMix Conntrack { get; set; } = new();
    public List<InterfaceCounters> Interfaces { get; set; } = new();
    public List<ServiceSpec> Services { get; set; } = new();
    public List<RouteSpec> Routes { get; set; } = new();
    public List<IpSetSpec> IpSets { get; set; } = new();
    public List<ArpSpec> Arp { get; set; } = new();

    /// <summary>
    /// Failsafe ports as Felix writes them (proto:port, inbound; felix/config/config_params.go:413-414
    /// at v3.30.7: FailsafeInboundHostPorts and FailsafeOutboundHostPorts, each from 0.0.0.0/0);
    /// default: Felix's defaults. Prefix "out " for outbound.
    /// </summary>
    public List<string>? Failsafes { get; set; }

    private static readonly string[] FelixFailsafes =
    {
        "tcp:22", "udp:68", "tcp:179", "tcp:2379", "tcp:2380", "tcp:5473", "tcp:6443", "tcp:6666", "tcp:6667",
        "out udp:53", "out udp:67", "out tcp:179", "out tcp:2379", "out tcp:2380", "out tcp:5473", "out tcp:6443", "out tcp:6666", "out tcp:6667",
    };
    public List<PolicySpec> Policies { get; set; } = new();
    /// <summary>Connections with known ends (pods and services of the test cluster), after the random mix.</summary>
    public List<ConnectionSpec> Connections { get; set; } = new();

    /// <summary>One connection: client to backend, through a service (a NAT pair) when Service is set.</summary>
    public sealed class ConnectionSpec
    {
        public string Protocol { get; set; } = "TCP";
        /// <summary>address:port</summary>
        public string Client { get; set; } = string.Empty;
        /// <summary>address:port of the service (ClusterIP), or empty for a direct connection.</summary>
        public string Service { get; set; } = string.Empty;
        /// <summary>address:port</summary>
        public string Backend { get; set; } = string.Empty;
        public int AgeSeconds { get; set; } = 5;
    }

    /// <summary>A Kubernetes service as Felix programs it: frontends sharing one id, and its backends.</summary>
    public sealed class ServiceSpec
    {
        public uint Id { get; set; }
        public string Address { get; set; } = string.Empty;
        public int Port { get; set; }
        public string Protocol { get; set; } = "TCP";
        /// <summary>Optional NodePort: adds a frontend on the node's address and the wildcard (255.255.255.255) one.</summary>
        public int NodePort { get; set; }
        public List<string> Backends { get; set; } = new();
        public int LocalBackends { get; set; }
        public uint AffinitySeconds { get; set; }
        public bool ExternalLocal { get; set; }
        /// <summary>LoadBalancerSourceRanges: one frontend per CIDR plus a drop entry.</summary>
        public List<string> SourceRanges { get; set; } = new();
        /// <summary>Backend ordinals Felix counts but that are absent (a broken service, for the demo).</summary>
        public int MissingBackends { get; set; }

        /// <summary>Maglev lookup-table slots to seed (0: not a Maglev service).</summary>
        public int MaglevSlots { get; set; }
    }

    public sealed class RouteSpec
    {
        public string Cidr { get; set; } = string.Empty;
        /// <summary>calico-bpf's words: local/remote, workload/host, in-pool, nat-out, tunneled, ...</summary>
        public string Type { get; set; } = string.Empty;
        public string? NextHop { get; set; }
        public string? Interface { get; set; }
    }

    public sealed class IpSetSpec
    {
        public string Id { get; set; } = string.Empty;
        /// <summary>CIDRs, or named-port members as addr:port/tcp.</summary>
        public List<string> Members { get; set; } = new();
    }

    public sealed class ArpSpec
    {
        public string Address { get; set; } = string.Empty;
        public string Interface { get; set; } = string.Empty;
        public string SourceMac { get; set; } = string.Empty;
        public string DestinationMac { get; set; } = string.Empty;
    }

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
        /// <summary>IPv6 pod-to-pod TCP connections, in the v6 map (conntrack version 3 and later), from <see cref="PodCidr6"/>.</summary>
        public int Tcp6 { get; set; }
        /// <summary>IPv6 pod-to-pod UDP connections, in the v6 map.</summary>
        public int Udp6 { get; set; }
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
            return DependencyLoadContext.Yaml.Deserialize<NodeScenario>(yaml).Checked();
        }
        catch (FormatException ex)
        {
            throw new FormatException("The node scenario is not valid. " + ex.Message, ex);
        }
    }

    /// <summary>
    /// A section written as null (conntrack: ~) is the empty section; a null entry in a list (a lone
    /// "-") is an error naming the list, not a crash later (the fuzzer found both).
    /// </summary>
    private NodeScenario Checked()
    {
        if (CalicoVersion is { Length: > 0 } && !CalicoRelease.TryParse(CalicoVersion, out _))
        {
            throw new FormatException($"calicoVersion \"{CalicoVersion}\" is not a Calico release (v3.30.7).");
        }

        CalicoVersion ??= string.Empty;
        Conntrack ??= new ConntrackMix();
        if (Conntrack.Tcp6 + Conntrack.Udp6 > 0 && ConntrackMapVersion < 3)
        {
            throw new FormatException($"conntrack tcp6/udp6 need the v6 map, which conntrack version {ConntrackMapVersion} has not (3 and later).");
        }

        Interfaces ??= new();
        Services ??= new();
        Routes ??= new();
        IpSets ??= new();
        Arp ??= new();
        Policies ??= new();
        Connections ??= new();
        foreach ((string name, System.Collections.IList list) in new (string, System.Collections.IList)[]
        {
            ("interfaces", Interfaces), ("services", Services), ("routes", Routes), ("ipSets", IpSets), ("arp", Arp), ("policies", Policies), ("connections", Connections),
        })
        {
            int empty = list.Cast<object?>().ToList().FindIndex(e => e is null);
            if (empty >= 0)
            {
                throw new FormatException($"Entry {empty + 1} of {name} is empty.");
            }
        }

        foreach (ServiceSpec s in Services)
        {
            s.Backends ??= new();
            s.SourceRanges ??= new();
        }

        foreach (IpSetSpec set in IpSets)
        {
            set.Members ??= new();
        }

        foreach (ConnectionSpec c in Connections)
        {
            c.Protocol ??= "TCP";
            c.Client ??= string.Empty;
            c.Service ??= string.Empty;
            c.Backend ??= string.Empty;
        }

        return this;
    }

    public static NodeScenario Load(string path) => Parse(File.ReadAllText(path));

    /// <summary>The IPv6 entries of the mix (the v6 map's): pod-to-pod TCP and UDP, their own random sequence.</summary>
    public IEnumerable<ConntrackEntry> GenerateConntrack6(ulong monotonicNow)
    {
        var rng = new Random(RandomSeed + 6);
        AddressPrefix pods = AddressPrefix.Parse(PodCidr6);
        ulong Seen(double maxSeconds) => monotonicNow - (ulong)(rng.NextDouble() * Math.Min(maxSeconds * 1e9, monotonicNow * 0.9));
        for (int i = 0; i < Conntrack.Tcp6; i++)
        {
            (ConntrackLeg fwd, ConntrackLeg rev) = TcpLegs(rng, out _);
            yield return Leg(IpProtocol.Tcp, Pick(rng, pods), rng.Next(32768, 61000), Pick(rng, pods), 8080, Seen(1800), fwd, rev);
        }

        for (int i = 0; i < Conntrack.Udp6; i++)
        {
            (IPAddress client, int port, IPAddress server) = (Pick(rng, pods), rng.Next(32768, 61000), Pick(rng, pods));
            yield return Leg(IpProtocol.Udp, client, port, server, 53, Seen(90), Counted(rng, true, false), Counted(rng, false, false));
        }
    }

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
                SourceAddressValue = fromHost ? host : Pod(),
                SourcePort = Ephemeral(),
                DestinationAddressValue = Pod(),
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
                SourceAddressValue = Pod(),
                SourcePort = Ephemeral(),
                DestinationAddressValue = Pod(),
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
                SourceAddressValue = Pod(),
                DestinationAddressValue = i % 2 == 0 ? host : Pod(),
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

            foreach (ConntrackEntry e in NatPair(proto, client, clientPort, vip, vipPort, backend, backendPort, seen, fwd, rev, flags,
                tunnelled ? IPAddress.Parse($"172.18.0.{rng.Next(11, 40)}") : null))
            {
                yield return e;
            }
        }

        foreach (ConntrackEntry e in GenerateConnections(rng, monotonicNow))
        {
            yield return e;
        }
    }

    /// <summary>The scenario's explicit connections: a Normal entry each, or a NAT pair when it went through a service.</summary>
    private IEnumerable<ConntrackEntry> GenerateConnections(Random rng, ulong monotonicNow)
    {
        foreach (ConnectionSpec c in Connections)
        {
            IpProtocol proto = Enum.TryParse(c.Protocol, ignoreCase: true, out IpProtocol p) && Enum.IsDefined(p)
                ? p
                : throw new FormatException($"The connection protocol \"{c.Protocol}\" is not one of TCP, UDP, ICMP, SCTP.");
            (IPAddress client, int clientPort) = Endpoint(c.Client);
            (IPAddress backend, int backendPort) = Endpoint(c.Backend);
            ulong seen = monotonicNow - Math.Min((ulong)c.AgeSeconds * 1_000_000_000UL, monotonicNow / 2);
            (ConntrackLeg fwd, ConntrackLeg rev) = proto == IpProtocol.Tcp ? TcpLegs(rng, out _) : (Counted(rng, true, false), Counted(rng, false, false));
            if (string.IsNullOrEmpty(c.Service))
            {
                yield return Leg(proto, client, clientPort, backend, backendPort, seen, fwd, rev);
                continue;
            }

            (IPAddress vip, int vipPort) = Endpoint(c.Service);
            foreach (ConntrackEntry e in NatPair(proto, client, clientPort, vip, vipPort, backend, backendPort, seen, fwd, rev, ConntrackFlags.None, null))
            {
                yield return e;
            }
        }
    }

    private static (IPAddress, int) Endpoint(string text)
    {
        int colon = text.LastIndexOf(':');
        return colon > 0 && IPAddress.TryParse(text[..colon].Trim('[', ']'), out IPAddress? a) && int.TryParse(text[(colon + 1)..], out int port)
            ? (a, port)
            : throw new FormatException($"The connection endpoint \"{text}\" is not address:port.");
    }

    /// <summary>The entry of a connection from client to backend: Normal, or NatReverse when it went through a service.</summary>
    private static ConntrackEntry Leg(IpProtocol proto, IPAddress client, int clientPort, IPAddress backend, int backendPort, ulong seen,
        ConntrackLeg fwd, ConntrackLeg rev, (IPAddress Address, int Port)? service = null, IPAddress? tunnel = null, ConntrackFlags flags = ConntrackFlags.None) => new()
    {
        Protocol = proto,
        Type = service is null ? ConntrackType.Normal : ConntrackType.NatReverse,
        SourceAddressValue = client,
        SourcePort = clientPort,
        DestinationAddressValue = backend,
        DestinationPort = backendPort,
        ServiceAddressValue = service?.Address,
        ServicePort = service?.Port,
        TunnelAddressValue = tunnel,
        Flags = flags,
        LastSeenNanoseconds = seen,
        Forward = fwd,
        Reverse = rev,
    };

    /// <summary>A connection through a service: the NatReverse entry (client to backend) and the NatForward one (client to the service) pointing at it.</summary>
    /// <param name="flags">The tracking entry's flags; the forward entry has none, as Calico writes it.</param>
    private static IEnumerable<ConntrackEntry> NatPair(IpProtocol proto, IPAddress client, int clientPort, IPAddress vip, int vipPort,
        IPAddress backend, int backendPort, ulong seen, ConntrackLeg fwd, ConntrackLeg rev, ConntrackFlags flags, IPAddress? tunnel)
    {
        yield return Leg(proto, client, clientPort, backend, backendPort, seen, fwd, rev, (vip, vipPort), tunnel, flags);
        bool clientIsA = ConntrackCodec.SortsFirst(client, clientPort, backend, backendPort);
        yield return new ConntrackEntry
        {
            Protocol = proto,
            Type = ConntrackType.NatForward,
            SourceAddressValue = client,
            SourcePort = clientPort,
            DestinationAddressValue = vip,
            DestinationPort = vipPort,
            ServiceAddressValue = vip,
            ServicePort = vipPort,
            // calico_ct_create_nat_fwd (bpf-gpl/conntrack.h) writes only type, last_seen, the reverse key
            // and nat_sport: no flags at all, so no B-A either; the encoder sorts the key.
            Flags = ConntrackFlags.None,
            LastSeenNanoseconds = seen,
            ReverseKey = clientIsA
                ? new ConntrackKey(proto, client, clientPort, backend, backendPort)
                : new ConntrackKey(proto, backend, backendPort, client, clientPort),
        };
    }

    /// <summary>Creates the scenario's maps in a claimed pin directory and fills them.</summary>
    /// <param name="links">The node's interfaces by name (their ifindex keys the counters).</param>
    /// <param name="policyDebugDirectory">Where to write the policy debug files (Felix: /var/run/calico/bpf/policy); none when null.</param>
    /// <param name="programServices">Writes NAT as Felix would from the cluster's services (the test cluster's FelixProxy), before this scenario's own services.</param>
    public void Seed(SimulatedDataplane dataplane, IReadOnlyDictionary<string, int> links, string? policyDebugDirectory = null, Action<SimulatedDataplane>? programServices = null)
    {
        foreach (MapSpec spec in MapSpecs.Current)
        {
            if (spec.BaseName is "cali_v4_ct" or "cali_v6_ct" or "cali_counters"
                || (Release is { } release && !ReleaseInference.IsPinnedBy(spec.BaseName, spec.Version, release)))
            {
                continue;
            }

            dataplane.CreateMap(spec);
        }

        MapSpec ctSpec = MapSpecs.Conntrack(ConntrackMapVersion, ipv6: false);
        BpfMap ct = dataplane.CreateMap(ctSpec, ConntrackMaxEntries);
        ConntrackLayout layout = ConntrackLayout.For(ctSpec.PinName, ctSpec.Version, ctSpec.KeySize, ctSpec.ValueSize);
        dataplane.WriteConntrack(ct, layout, GenerateConntrack(KernelInfo.MonotonicNanoseconds()), Release);

        if (ConntrackMapVersion >= 3)
        {
            MapSpec ct6Spec = MapSpecs.Conntrack(ConntrackMapVersion, ipv6: true);
            BpfMap ct6 = dataplane.CreateMap(ct6Spec, ConntrackMaxEntries);
            ConntrackLayout layout6 = ConntrackLayout.For(ct6Spec.PinName, ct6Spec.Version, ct6Spec.KeySize, ct6Spec.ValueSize);
            dataplane.WriteConntrack(ct6, layout6, GenerateConntrack6(KernelInfo.MonotonicNanoseconds()), Release);
        }

        programServices?.Invoke(dataplane);
        SeedServices(dataplane);
        SeedRoutes(dataplane, links);
        SeedIpSets(dataplane);
        SeedArp(dataplane, links);
        SeedInterfaceState(dataplane, links);
        SeedFailsafes(dataplane);
        if (policyDebugDirectory is not null && Policies.Count > 0)
        {
            PolicySeeding.Write(Policies, policyDebugDirectory, dataplane.Map("cali_rule_ctrs2"));
        }

        MapSpec counterSpec = MapSpecs.Counters(CounterMap.Version, CounterMap.Counters);
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

    private void SeedFailsafes(SimulatedDataplane dp)
    {
        if (!dp.HasMap(FailsafeMap.V4 + "2"))
        {
            return;
        }

        BpfMap map = dp.Map(FailsafeMap.V4 + "2");
        foreach (string f in Failsafes ?? (IEnumerable<string>)FelixFailsafes)
        {
            bool outbound = f.StartsWith("out ", StringComparison.Ordinal);
            string[] pp = (outbound ? f[4..] : f).Split(':');
            map.Update(FailsafeMap.EncodeKey(ParseProtocol(pp[0]), int.Parse(pp[1], System.Globalization.CultureInfo.InvariantCulture), outbound, AddressPrefix.Parse("0.0.0.0/0")), new byte[4]);
        }
    }

    private static IpProtocol ParseProtocol(string text) => text.ToUpperInvariant() switch
    {
        "TCP" => IpProtocol.Tcp,
        "UDP" => IpProtocol.Udp,
        "SCTP" => IpProtocol.Sctp,
        _ => byte.TryParse(text, out byte n) ? (IpProtocol)n : throw new FormatException($"Unknown protocol '{text}' (TCP, UDP, SCTP or a number)."),
    };

    private static (IPAddress Address, int Port) ParseEndpoint(string text)
    {
        int colon = text.LastIndexOf(':');
        return (IPAddress.Parse(text[..colon].Trim('[', ']')), int.Parse(text[(colon + 1)..], System.Globalization.CultureInfo.InvariantCulture));
    }

    private void SeedServices(SimulatedDataplane dp)
    {
        if (Services.Count == 0)
        {
            return;
        }

        BpfMap fe = dp.Map("cali_v4_nat_fe3");
        BpfMap be = dp.Map("cali_v4_nat_be");
        foreach (ServiceSpec svc in Services)
        {
            IpProtocol proto = ParseProtocol(svc.Protocol);
            uint count = (uint)(svc.Backends.Count + svc.MissingBackends);
            var flags = (svc.ExternalLocal ? NatFrontendFlags.ExternalLocal : NatFrontendFlags.None)
                | (svc.MaglevSlots > 0 ? NatFrontendFlags.Maglev : NatFrontendFlags.None);
            byte[] value = NatMaps.EncodeFrontendValue(svc.Id, count, (uint)svc.LocalBackends, svc.AffinitySeconds, flags);
            var address = IPAddress.Parse(svc.Address);
            if (svc.SourceRanges.Count == 0)
            {
                fe.Update(NatMaps.EncodeFrontendKey(address, svc.Port, proto), value);
            }
            else
            {
                foreach (string range in svc.SourceRanges)
                {
                    fe.Update(NatMaps.EncodeFrontendKey(address, svc.Port, proto, AddressPrefix.Parse(range)), value);
                }

                fe.Update(NatMaps.EncodeFrontendKey(address, svc.Port, proto),
                    NatMaps.EncodeFrontendValue(svc.Id, NatMaps.DropCount, 0, 0, NatFrontendFlags.None));
            }

            if (svc.NodePort > 0)
            {
                // As Felix programs a node port (felix/bpf/proxy/syncer.go:650 at v3.30.7): one frontend for each
                // of this node's addresses, which traffic from outside hits, and the wildcard 255.255.255.255
                // (kube-proxy.go:129), which a node's own workloads use for the other nodes' addresses.
                fe.Update(NatMaps.EncodeFrontendKey(IPAddress.Parse(HostAddress), svc.NodePort, proto), value);
                fe.Update(NatMaps.EncodeFrontendKey(IPAddress.Broadcast, svc.NodePort, proto), value);
            }

            for (int i = 0; i < svc.Backends.Count; i++)
            {
                (IPAddress a, int p) = ParseEndpoint(svc.Backends[i]);
                be.Update(NatMaps.EncodeIdOrdinal(svc.Id, i), NatMaps.EncodeDestination(a, p));
            }

            for (int slot = 0; slot < svc.MaglevSlots && svc.Backends.Count > 0; slot++)
            {
                // A permutation-like spread: each backend owns about the same share of the table.
                (IPAddress a, int p) = ParseEndpoint(svc.Backends[(slot * 7 + 3) % svc.Backends.Count]);
                dp.Map("cali_v4_mglv2").Update(NatMaps.EncodeIdOrdinal(svc.Id, slot), NatMaps.EncodeDestination(a, p));
            }

            if (svc.AffinitySeconds > 0 && svc.Backends.Count > 0)
            {
                (IPAddress a, int p) = ParseEndpoint(svc.Backends[0]);
                (byte[] k, byte[] v) = NatMaps.EncodeAffinity(address, svc.Port, proto, IPAddress.Parse("10.65.3.7"), a, p, KernelInfo.MonotonicNanoseconds() - 42_000_000_000);
                dp.Map("cali_v4_nat_aff").Update(k, v);
            }
        }
    }

    private static RouteFlags ParseRouteWords(string words)
    {
        RouteFlags f = RouteFlags.None;
        foreach (string w in words.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            f |= w switch
            {
                "local" => RouteFlags.Local,
                "remote" => RouteFlags.None,
                "workload" => RouteFlags.Workload,
                "host" => RouteFlags.Host,
                "in-pool" => RouteFlags.InPool,
                "nat-out" => RouteFlags.NatOut,
                "same-subnet" => RouteFlags.SameSubnet,
                "tunneled" => RouteFlags.Tunneled,
                "no-dsr" => RouteFlags.NoDsr,
                "blackhole-drop" => RouteFlags.BlackholeDrop,
                "blackhole-reject" => RouteFlags.BlackholeReject,
                "vxlan" => RouteFlags.Vxlan,
                "skip-ingress-redir" => RouteFlags.SkipIngressRedirect,
                _ => throw new FormatException($"Unknown route word '{w}'."),
            };
        }

        return f;
    }

    private void SeedRoutes(SimulatedDataplane dp, IReadOnlyDictionary<string, int> links)
    {
        BpfMap map = dp.Map("cali_v4_routes");
        foreach (RouteSpec r in Routes)
        {
            AddressPrefix prefix = AddressPrefix.Parse(r.Cidr);
            int ifIndex = r.Interface is null ? 0 : links.TryGetValue(r.Interface, out int i) ? i
                : throw new InvalidOperationException($"The scenario routes to interface {r.Interface}, which this node does not have.");
            map.Update(RouteMap.EncodeKey(IPAddress.Parse(r.Cidr.Split('/')[0]), prefix.PrefixLength),
                RouteMap.EncodeValue(ParseRouteWords(r.Type), prefix.IsIPv6, r.NextHop is null ? null : IPAddress.Parse(r.NextHop), ifIndex));
        }
    }

    private void SeedIpSets(SimulatedDataplane dp)
    {
        BpfMap map = dp.Map("cali_v4_ip_sets");
        byte[] one = BitConverter.GetBytes(1u);
        foreach (IpSetSpec set in IpSets)
        {
            ulong id = IpSetMap.ParseSetId(set.Id);
            foreach (string m in set.Members)
            {
                int slash = m.LastIndexOf('/');
                if (m.Contains(':', StringComparison.Ordinal) && !m.Contains("::", StringComparison.Ordinal))
                {
                    (IPAddress a, int p) = ParseEndpoint(m[..slash]);
                    map.Update(IpSetMap.EncodeKey(id, a, 32, p, ParseProtocol(m[(slash + 1)..])), one);
                }
                else
                {
                    AddressPrefix prefix = AddressPrefix.Parse(m);
                    map.Update(IpSetMap.EncodeKey(id, IPAddress.Parse(m.Split('/')[0]), prefix.PrefixLength), one);
                }
            }
        }
    }

    private void SeedArp(SimulatedDataplane dp, IReadOnlyDictionary<string, int> links)
    {
        BpfMap map = dp.Map("cali_v4_arp2");
        foreach (ArpSpec a in Arp)
        {
            int ifIndex = links.TryGetValue(a.Interface, out int i) ? i
                : throw new InvalidOperationException($"The scenario's ARP entry names interface {a.Interface}, which this node does not have.");
            map.Update(ArpMap.EncodeKey(IPAddress.Parse(a.Address), ifIndex), ArpMap.EncodeValue(a.SourceMac, a.DestinationMac));
        }
    }

    private void SeedInterfaceState(SimulatedDataplane dp, IReadOnlyDictionary<string, int> links)
    {
        BpfMap map = dp.Map("cali_iface4");
        int program = 0;
        foreach (InterfaceCounters iface in Interfaces)
        {
            if (!links.TryGetValue(iface.Name, out int ifIndex))
            {
                continue;
            }

            InterfaceStateFlags flags = iface.Name.StartsWith("cali", StringComparison.Ordinal)
                ? InterfaceStateFlags.Workload | InterfaceStateFlags.V4Ready
                : iface.Name.StartsWith("vxlan", StringComparison.Ordinal) ? InterfaceStateFlags.Vxlan | InterfaceStateFlags.V4Ready
                : InterfaceStateFlags.Host | InterfaceStateFlags.V4Ready;
            byte[] key = BitConverter.GetBytes((uint)ifIndex);
            map.Update(key, InterfaceStateMap.EncodeValue(4, flags, iface.Name, -1, program, program + 1, -1, -1, -1, program + 2, program + 3));
            program += 4;
        }
    }

    private Dictionary<int, ulong> ToIndexes(Dictionary<string, ulong> byId)
    {
        var result = new Dictionary<int, ulong>();
        foreach ((string id, ulong v) in byId)
        {
            CounterDefinition? d = CounterLayout.Definitions.FirstOrDefault(x => string.Equals(x.Id, id, StringComparison.OrdinalIgnoreCase));
            int count = CounterMap.Counters;
            if (d is null || d.Index >= count)
            {
                throw new FormatException($"Unknown counter '{id}' for a map of {count} counters. Known: {string.Join(", ", CounterLayout.Definitions.Take(count).Select(x => x.Id))}.");
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
