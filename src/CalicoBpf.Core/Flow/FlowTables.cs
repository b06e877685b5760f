using CalicoBpf.Maps;
using CalicoBpf.Transport;

namespace CalicoBpf.Flow;

/// <summary>
/// Every table of one node that a flow prediction consults, each read once (a thousand flows cost
/// one read of each map): conntrack, NAT frontends with their backends, affinity, routes,
/// interface state, and, on first use, each interface's policy program (from its debug file), the
/// IP set members and the rule counters. Read-only: nothing is written to the node.
/// </summary>
public sealed class FlowTables
{
    private readonly INodeDataplane? _node;
    private readonly string _policyDirectory;
    private readonly Dictionary<(ulong, int, ulong, int, int), ConntrackEntry> _conntrack = new();
    private readonly Dictionary<string, DebugProgram?> _programs = new(StringComparer.Ordinal);
    private IReadOnlyList<IpSetMember>? _ipSets;
    private IReadOnlyDictionary<ulong, ulong>? _hits;

    public FlowTables(
        string node,
        IEnumerable<ConntrackEntry> conntrack,
        IEnumerable<NatFrontend> frontends,
        IEnumerable<NatAffinity> affinity,
        IEnumerable<Route> routes,
        IEnumerable<InterfaceState> interfaces,
        INodeDataplane? dataplane = null,
        string policyDirectory = PolicyDebug.DefaultDirectory,
        DateTime? now = null)
    {
        Node = node;
        _node = dataplane;
        _policyDirectory = policyDirectory;
        foreach (ConntrackEntry e in conntrack)
        {
            _conntrack[KeyOf(e.Protocol, e.Key.AddressAValue, e.Key.PortA, e.Key.AddressBValue, e.Key.PortB)] = e;
        }

        Frontends = frontends.ToList();
        Affinity = affinity.ToList();
        Routes = routes.OrderByDescending(r => r.PrefixLength).ToList();
        Interfaces = interfaces.GroupBy(i => i.IfIndex).ToDictionary(g => g.Key, g => g.First());
        Now = now ?? DateTime.UtcNow;
    }

    public string Node { get; }

    public IReadOnlyList<NatFrontend> Frontends { get; }

    public IReadOnlyList<NatAffinity> Affinity { get; }

    /// <summary>Longest prefix first.</summary>
    public IReadOnlyList<Route> Routes { get; }

    public IReadOnlyDictionary<int, InterfaceState> Interfaces { get; }

    /// <summary>The time affinity entries are aged against (the node's clock as the reads saw it).</summary>
    public DateTime Now { get; }

    /// <summary>Reads every table of a node once.</summary>
    public static FlowTables Read(INodeDataplane node, string policyDirectory = PolicyDebug.DefaultDirectory, IEngineReporter? reporter = null, CancellationToken cancellationToken = default)
    {
        return new FlowTables(
            node.Node,
            ConntrackReader.Read(node, new ConntrackQuery(), reporter, cancellationToken),
            // The frontends' own warnings (missing backends) are left out: the prediction names what it meets.
            NatMaps.ReadFrontends(node, new NatQuery(), null, cancellationToken),
            MapReading.TryFind(node, NatMaps.AffinityV4) is null ? Array.Empty<NatAffinity>() : NatMaps.ReadAffinity(node, false, reporter, cancellationToken),
            RouteMap.Read(node, false, null, reporter, cancellationToken),
            InterfaceStateMap.Read(node, reporter, cancellationToken),
            node,
            policyDirectory);
    }

    /// <summary>The conntrack entry of a 5-tuple, looked up as Calico does: the key holds the lower (address, port) first.</summary>
    public ConntrackEntry? Conntrack(IpProtocol protocol, IPAddress a, int portA, IPAddress b, int portB)
    {
        bool first = ConntrackCodec.SortsFirst(a, portA, b, portB);
        return _conntrack.TryGetValue(first ? KeyOf(protocol, a, portA, b, portB) : KeyOf(protocol, b, portB, a, portA), out ConntrackEntry? e) ? e : null;
    }

    /// <summary>The route of an address: the longest prefix that holds it, or null.</summary>
    public Route? RouteOf(IPAddress address) =>
        Routes.FirstOrDefault(r => AddressPrefix.Covers(r.AddressValue.GetAddressBytes(), r.PrefixLength, address.GetAddressBytes()) && r.AddressValue.AddressFamily == address.AddressFamily);

    public InterfaceState? InterfaceByName(string name) => Interfaces.Values.FirstOrDefault(i => i.Name == name);

    /// <summary>
    /// The policy program of an interface for a policy direction ("ingress", "egress"), from Felix's
    /// debug file; null when there is none (policy debug off, or no program), with why.
    /// </summary>
    public DebugProgram? Program(string iface, string direction, bool forHostInterface, out string? why)
    {
        string file = $"{iface}_{direction}_v4.json";
        why = null;
        if (!_programs.TryGetValue(file, out DebugProgram? program))
        {
            string? json = _node?.ReadTextFile(_policyDirectory + "/" + file);
            program = json is null ? null : PolicyDebugProgram.Read(json, forHostInterface, ipv6: false);
            _programs[file] = program;
        }

        if (program is null)
        {
            why = $"there is no policy debug file {_policyDirectory}/{file}: Felix writes it when bpfPolicyDebugEnabled is true (Set-FelixBpfConfig -BpfPolicyDebugEnabled $true), or the interface has no Calico policy program";
        }

        return program;
    }

    /// <summary>IP set membership for a program's named sets (the IP set map is read once, on first use).</summary>
    public IIpSetMembership IpSets(DebugProgram program)
    {
        _ipSets ??= _node is not null && MapReading.TryFind(_node, IpSetMap.V4) is not null ? IpSetMap.Read(_node, false).ToList() : Array.Empty<IpSetMember>();
        return new MapIpSetMembership(program.IpSetIds, _ipSets);
    }

    /// <summary>Rule counters by match id (read once, on first use).</summary>
    public ulong? Hits(ulong? matchId)
    {
        if (matchId is not ulong id || _node is null)
        {
            return null;
        }

        _hits ??= PolicyDebug.ReadHitCounts(_node, null, default);
        return _hits.TryGetValue(id, out ulong h) ? h : 0;
    }

    private static (ulong, int, ulong, int, int) KeyOf(IpProtocol protocol, IPAddress a, int portA, IPAddress b, int portB) =>
        (Pack(a), portA, Pack(b), portB, (int)protocol);

    private static ulong Pack(IPAddress address)
    {
        Span<byte> b = stackalloc byte[16];
        address.TryWriteBytes(b, out int n);
        return n == 4 ? BinaryPrimitives.ReadUInt32BigEndian(b) : (ulong)address.GetHashCode();
    }
}
