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
    private readonly Dictionary<ConntrackKey, ConntrackEntry> _conntrack = new();
    private readonly Dictionary<string, DebugProgram?> _programs = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _unreadable = new(StringComparer.Ordinal);
    private readonly Dictionary<(IPAddress, int, IpProtocol), List<NatFrontend>> _frontends = new();
    private readonly Dictionary<int, Dictionary<uint, Route>> _routesV4 = new();
    private readonly List<int> _prefixLengths = new();
    private IReadOnlyDictionary<ulong, List<IpSetMember>>? _ipSets;
    private readonly Dictionary<DebugProgram, MapIpSetMembership> _membership = new(ReferenceEqualityComparer.Instance);
    private IReadOnlyDictionary<ulong, ulong>? _hits;
    private bool _hitsRead;
    private bool _debugListed;
    private List<InterfaceCounter>? _counters;
    private Dictionary<uint, IReadOnlyList<MaglevEntry>>? _maglev;
    private IReadOnlyList<FailsafePort>? _failsafes;
    private string? _debugWritten;
    private CancellationToken _cancellationToken;

    public FlowTables(
        string node,
        IEnumerable<ConntrackEntry> conntrack,
        IEnumerable<NatFrontend> frontends,
        IEnumerable<NatAffinity> affinity,
        IEnumerable<Route> routes,
        IEnumerable<InterfaceState> interfaces,
        INodeDataplane? dataplane = null,
        string policyDirectory = PolicyDebug.DefaultDirectory)
    {
        Node = node;
        _node = dataplane;
        _policyDirectory = policyDirectory;
        foreach (ConntrackEntry e in conntrack)
        {
            _conntrack[e.Key] = e;
        }

        foreach (NatFrontend f in frontends)
        {
            var key = (f.AddressValue, f.Port, f.Protocol);
            if (!_frontends.TryGetValue(key, out List<NatFrontend>? list))
            {
                _frontends[key] = list = new List<NatFrontend>();
            }

            list.Add(f);
        }

        Affinity = affinity.ToList();
        Routes = routes.OrderByDescending(r => r.PrefixLength).ToList();
        foreach (Route r in Routes.Where(r => r.AddressValue.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork))
        {
            if (!_routesV4.TryGetValue(r.PrefixLength, out Dictionary<uint, Route>? byNetwork))
            {
                _routesV4[r.PrefixLength] = byNetwork = new Dictionary<uint, Route>();
                _prefixLengths.Add(r.PrefixLength);
            }

            byNetwork.TryAdd(Mask(BinaryPrimitives.ReadUInt32BigEndian(r.AddressValue.GetAddressBytes()), r.PrefixLength), r);
        }

        _prefixLengths.Sort((a, b) => b.CompareTo(a));
        Interfaces = interfaces.GroupBy(i => i.IfIndex).ToDictionary(g => g.Key, g => g.First());
    }

    public string Node { get; }

    /// <summary>The other nodes of this run, by address: a flow to a workload there continues on its tables (null: this node only).</summary>
    public IFlowPeers? Peers { get; set; }

    /// <summary>Felix's failsafe ports (cali_v4_fsafes; empty when the node has none), read on first use: only flows to or from a host interface need them.</summary>
    public IReadOnlyList<FailsafePort> Failsafes
    {
        get
        {
            lock (_membership)
            {
                return _failsafes ??= _node is null ? Array.Empty<FailsafePort>() : FailsafeMap.Read(_node, null, _cancellationToken);
            }
        }

        init => _failsafes = value;
    }

    /// <summary>The inbound failsafe entry a packet to this host matches (failsafe.h is_failsafe_in: exact protocol and port, the source in its CIDR), or null.</summary>
    public FailsafePort? FailsafeIn(IpProtocol protocol, int port, IPAddress source) =>
        Failsafes.Where(f => !f.Outbound && f.Protocol == protocol && f.Port == port && f.Prefix.Matches(source)).OrderByDescending(f => f.Prefix.PrefixLength).FirstOrDefault();

    /// <summary>The outbound failsafe entry a packet from this host matches (failsafe.h is_failsafe_out: exact protocol and port, the destination in its CIDR), or null.</summary>
    public FailsafePort? FailsafeOut(IpProtocol protocol, int port, IPAddress destination) =>
        Failsafes.Where(f => f.Outbound && f.Protocol == protocol && f.Port == port && f.Prefix.Matches(destination)).OrderByDescending(f => f.Prefix.PrefixLength).FirstOrDefault();

    /// <summary>
    /// Evidence that Felix writes policy debug files on this node, so that a missing one means the
    /// interface has no policy program (no host endpoint): bpfPolicyDebugEnabled as Felix uses it, or
    /// a workload's debug file that exists. Null when neither says so.
    /// </summary>
    public string? PolicyDebugWritten
    {
        get
        {
            if (Settings.PolicyDebugEnabled is { } on)
            {
                return on.Value.Equals("true", StringComparison.OrdinalIgnoreCase) ? on.ToString() : null;
            }

            lock (_programs)
            {
                if (!_debugListed)
                {
                    // One listing: Felix writes a file for every policy program when bpfPolicyDebugEnabled is true.
                    IReadOnlyList<string>? files = _node?.ListDirectory(_policyDirectory);
                    int count = files?.Count(f => f.EndsWith("_v4.json", StringComparison.Ordinal) || f.EndsWith("_v6.json", StringComparison.Ordinal)) ?? 0;
                    _debugWritten = count > 0 ? $"{count} debug files in {_policyDirectory}" : null;
                    _debugListed = true;
                }

                return _debugWritten;
            }
        }
    }

    /// <summary>How full the conntrack table was when it was read (null: not known).</summary>
    public ConntrackTally? ConntrackFill { get; init; }

    /// <summary>The Felix settings that decide flows but live in no map (Unknown when the node's configuration was not read).</summary>
    public FlowSettings Settings { get; init; } = FlowSettings.Unknown;

    public IReadOnlyList<NatAffinity> Affinity { get; }

    /// <summary>Longest prefix first.</summary>
    public IReadOnlyList<Route> Routes { get; }

    public IReadOnlyDictionary<int, InterfaceState> Interfaces { get; }

    /// <summary>
    /// Reads every table of a node once. With <paramref name="clients"/>, only the conntrack entries
    /// that hold one of those addresses become objects (a flow's own entries always do: its client is
    /// one side of the key), so a full table costs one read of its bytes, not an object per entry.
    /// </summary>
    public static FlowTables Read(INodeDataplane node, string policyDirectory = PolicyDebug.DefaultDirectory, IEngineReporter? reporter = null,
        CancellationToken cancellationToken = default, IEnumerable<IPAddress>? clients = null, FlowSettings? settings = null)
    {
        HashSet<uint>? keyAddresses = clients?.Where(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork)
            .Select(a => BinaryPrimitives.ReadUInt32BigEndian(a.GetAddressBytes())).ToHashSet();
        var fill = new ConntrackTally();
        var tables = new FlowTables(
            node.Node,
            ConntrackReader.Read(node, new ConntrackQuery { KeyAddressesV4 = keyAddresses, Tally = fill }, reporter, cancellationToken),
            // The frontends' own warnings (missing backends) are left out: the prediction names what it meets.
            NatMaps.ReadFrontends(node, new NatQuery(), null, cancellationToken),
            MapReading.TryFind(node, NatMaps.AffinityV4) is null ? Array.Empty<NatAffinity>() : NatMaps.ReadAffinity(node, false, reporter, cancellationToken),
            RouteMap.Read(node, false, null, reporter, cancellationToken),
            MapReading.TryFind(node, InterfaceStateMap.BaseName) is null ? Array.Empty<InterfaceState>() : InterfaceStateMap.Read(node, reporter, cancellationToken),
            node,
            policyDirectory)
        {
            Settings = settings ?? FlowSettings.Unknown,
            ConntrackFill = fill,
        };
        tables._cancellationToken = cancellationToken;
        return tables;
    }

    /// <summary>The conntrack entry of a 5-tuple, looked up as Calico does: the key holds the lower (address, port) first.</summary>
    public ConntrackEntry? Conntrack(IpProtocol protocol, IPAddress a, int portA, IPAddress b, int portB)
    {
        bool first = ConntrackCodec.SortsFirst(a, portA, b, portB);
        return _conntrack.TryGetValue(first ? new ConntrackKey(protocol, a, portA, b, portB) : new ConntrackKey(protocol, b, portB, a, portA), out ConntrackEntry? e) ? e : null;
    }

    /// <summary>The route of an address: the longest prefix that holds it, or null (IPv4: one lookup per prefix length, as an LPM trie answers).</summary>
    public Route? RouteOf(IPAddress address)
    {
        if (address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork)
        {
            uint a = BinaryPrimitives.ReadUInt32BigEndian(address.GetAddressBytes());
            foreach (int length in _prefixLengths)
            {
                if (_routesV4[length].TryGetValue(Mask(a, length), out Route? r))
                {
                    return r;
                }
            }

            return null;
        }

        return Routes.FirstOrDefault(r => r.AddressValue.AddressFamily == address.AddressFamily && AddressPrefix.Covers(r.AddressValue.GetAddressBytes(), r.PrefixLength, address.GetAddressBytes()));
    }

    /// <summary>The frontends of one (address, port, protocol), each source range its own entry.</summary>
    public IReadOnlyList<NatFrontend> FrontendsOf(IPAddress address, int port, IpProtocol protocol) =>
        _frontends.TryGetValue((address, port, protocol), out List<NatFrontend>? list) ? list : Array.Empty<NatFrontend>();

    private static uint Mask(uint address, int length) => length == 0 ? 0 : address & (uint.MaxValue << (32 - length));

    public InterfaceState? InterfaceByName(string name) => Interfaces.Values.FirstOrDefault(i => i.Name == name);

    /// <summary>
    /// The policy program of an interface for a policy direction ("ingress", "egress"), from Felix's
    /// debug file; null when there is none (policy debug off, or no program), with why.
    /// </summary>
    public DebugProgram? Program(string iface, string direction, bool forHostInterface, out string? why)
    {
        string file = $"{iface}_{direction}_v4.json";
        why = null;
        string path = _policyDirectory + "/" + file;
        lock (_programs)
        {
            if (!_programs.TryGetValue(file, out DebugProgram? program))
            {
                string? json = _node?.ReadTextFile(path);
                try
                {
                    program = json is null ? null : PolicyDebugProgram.Read(json, forHostInterface, ipv6: false);
                }
                catch (Exception ex) when (ex is JsonException or FormatException or InvalidOperationException)
                {
                    // A file Felix was writing, or one it did not write: that interface's policy cannot be told.
                    _unreadable[file] = ex.Message;
                    program = null;
                }

                _programs[file] = program;
            }

            if (program is null)
            {
                why = _unreadable.TryGetValue(file, out string? bad)
                    ? $"the policy debug file {path} cannot be read ({bad}): Felix rewrites it when the policy changes; read it again"
                    : $"there is no policy debug file {path}: Felix writes it when bpfPolicyDebugEnabled is true (Set-FelixBpfConfig -BpfPolicyDebugEnabled $true), or the interface has no Calico policy program";
            }

            return program;
        }
    }

    /// <summary>IP set membership for a program's named sets (the IP set map is read once, when a rule first asks about a set).</summary>
    public IIpSetMembership IpSets(DebugProgram program) => new OnFirstUse(() => Membership(program));

    private MapIpSetMembership Membership(DebugProgram program)
    {
        lock (_membership)
        {
            _ipSets ??= MapIpSetMembership.Index(_node is not null && MapReading.TryFind(_node, IpSetMap.V4) is not null ? IpSetMap.Read(_node, false, null, null, _cancellationToken) : Array.Empty<IpSetMember>());
            if (!_membership.TryGetValue(program, out MapIpSetMembership? m))
            {
                _membership[program] = m = new MapIpSetMembership(program.IpSetIds, _ipSets);
            }

            return m;
        }
    }

    /// <summary>Membership built on the first question: a program whose rules name no set reads no IP set map.</summary>
    private sealed class OnFirstUse(Func<IIpSetMembership> make) : IIpSetMembership
    {
        private IIpSetMembership? _made;

        public bool? Contains(string setId, IPAddress address, int port, int protocol) => (_made ??= make()).Contains(setId, address, port, protocol);
    }

    /// <summary>A Maglev service's lookup table (cali_v4_mglv; empty before v3.32 or when the service has none), read on first use.</summary>
    public IReadOnlyList<MaglevEntry> Maglev(uint serviceId)
    {
        if (_node is null)
        {
            return Array.Empty<MaglevEntry>();
        }

        lock (_membership)
        {
            try
            {
                _maglev ??= NatMaps.ReadMaglev(_node, false, null, null, _cancellationToken).GroupBy(e => e.ServiceId).ToDictionary(g => g.Key, g => (IReadOnlyList<MaglevEntry>)g.OrderBy(e => e.Ordinal).ToList());
            }
            catch (Exception ex) when (ex is Interop.BpfEnvironmentException or Interop.BpfObjectNotFoundException)
            {
                _maglev = new Dictionary<uint, IReadOnlyList<MaglevEntry>>();
            }
        }

        return _maglev.TryGetValue(serviceId, out IReadOnlyList<MaglevEntry>? lut) ? lut : Array.Empty<MaglevEntry>();
    }

    /// <summary>A counter of cali_counters by interface name, hook and Calico's id (DroppedByPolicy); null when the interface or counter is not there. Read once, on first use.</summary>
    public ulong? Counter(string iface, int hook, string id)
    {
        if (_node is null)
        {
            return null;
        }

        lock (_membership)
        {
            if (_counters is null)
            {
                try
                {
                    _counters = CounterReader.Read(_node, null, null, _cancellationToken).ToList();
                }
                catch (Exception ex) when (ex is Interop.BpfEnvironmentException or Interop.BpfObjectNotFoundException)
                {
                    // The counter is evidence only: a node without the counters map still gets its prediction.
                    _counters = new List<InterfaceCounter>();
                }
            }
        }

        // Counters are keyed by ifindex: Calico's own interface state names it (the host's link names need not agree).
        int? ifIndex = InterfaceByName(iface)?.IfIndex;
        InterfaceCounter? c = _counters.FirstOrDefault(x => (ifIndex is int i ? x.IfIndex == i : x.Interface == iface) && x.Id == id);
        return c is null ? null : hook == CounterLayout.HookIngress ? c.Ingress : c.Egress;
    }

    /// <summary>A rule's hit counter by match id (the counters are read once, on first use); null when the node has no rule counter map.</summary>
    public ulong? Hits(ulong? matchId)
    {
        if (matchId is not ulong id || _node is null)
        {
            return null;
        }

        lock (_membership)
        {
            if (!_hitsRead)
            {
                try
                {
                    _hits = MapReading.TryFind(_node, PolicyDebug.RuleCounters) is null ? null : PolicyDebug.ReadHitCounts(_node, null, _cancellationToken);
                }
                catch (Interop.BpfEnvironmentException)
                {
                    // Hit counts are evidence only: without the node's pins they are unknown, and the prediction stands.
                    _hits = null;
                }

                _hitsRead = true;
            }
        }

        return _hits is null ? null : _hits.TryGetValue(id, out ulong h) ? h : 0;
    }

}

/// <summary>The other nodes a run can read: a flow routed to a node's address continues on that node's tables, each read once per run.</summary>
public interface IFlowPeers
{
    /// <summary>The tables of the node with <paramref name="address"/>; null, with why, when no node of the run has it or it cannot be read.</summary>
    FlowTables? At(IPAddress address, out string? why);
}
