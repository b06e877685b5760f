namespace CalicoBpf.Flow;

/// <summary>The rest of a flow on the destination's node, when the run reads that node too (FlowTables.Peers).</summary>
public static partial class FlowPredictor
{
    /// <summary>
    /// The device a flow to <paramref name="dst"/> crosses between nodes on <paramref name="t"/>'s side,
    /// from the route's flags and the IP pool's overlay (felix/dataplane/linux/bpf_route_mgr.go at
    /// v3.30.7 sets Tunneled for every route of an IPIP or VXLAN pool, CrossSubnet too, and for every
    /// remote workload with WireGuard; SameSubnet separately; v3.30 has no VXLAN route flag): the
    /// WireGuard device; the host interface when not tunnelled or CrossSubnet within the subnet;
    /// else the pool's overlay device (vxlan.calico, tunl0). Null when the node has no such device.
    /// </summary>
    private static (InterfaceState? Device, bool Tunneled, string Why) Uplink(FlowTables t, Route via, IPAddress dst)
    {
        var ifs = t.Interfaces.Values.OrderBy(i => i.IfIndex).ToList();
        InterfaceState? host = HostInterface(t);
        if (!via.Flags.HasFlag(RouteFlags.Tunneled))
        {
            return (host, false, "the route is not tunnelled");
        }

        if (ifs.FirstOrDefault(i => i.Flags.HasFlag(InterfaceStateFlags.WireGuard)) is { } wg)
        {
            return (wg, true, "WireGuard carries it");
        }

        FlowPool? pool = t.Settings.PoolOf(dst);
        bool crossSubnet = pool is not null && (pool.IpipMode == "CrossSubnet" || pool.VxlanMode == "CrossSubnet");
        if (via.Flags.HasFlag(RouteFlags.SameSubnet) && crossSubnet)
        {
            return (host, false, $"IP pool {pool!.Name} is CrossSubnet and the node is in the same subnet: not encapsulated");
        }

        InterfaceState? vxlan = ifs.FirstOrDefault(i => i.Flags.HasFlag(InterfaceStateFlags.Vxlan));
        InterfaceState? ipip = ifs.FirstOrDefault(i => i.Flags.HasFlag(InterfaceStateFlags.Ipip));
        if (pool is not null)
        {
            return pool.VxlanMode != "Never" ? (vxlan, true, $"IP pool {pool.Name} has vxlanMode {pool.VxlanMode}")
                : pool.IpipMode != "Never" ? (ipip, true, $"IP pool {pool.Name} has ipipMode {pool.IpipMode}")
                : (host, false, $"IP pool {pool.Name} has no overlay");
        }

        return (vxlan ?? ipip, true, "the route is tunnelled (the IP pools were not read: the node's overlay device is taken" + (via.Flags.HasFlag(RouteFlags.SameSubnet) ? "; a CrossSubnet pool would not encapsulate within the subnet" : string.Empty) + ")");
    }

    /// <summary>The node's host interface (a host endpoint or a bond, not a tunnel device, with Calico's programs).</summary>
    private static InterfaceState? HostInterface(FlowTables t) => t.Interfaces.Values.OrderBy(i => i.IfIndex)
        .FirstOrDefault(i => (i.Flags & (InterfaceStateFlags.Host | InterfaceStateFlags.Bond)) != 0 && (i.Flags & TunnelDevices) == 0
            && (i.Flags & (InterfaceStateFlags.NotManaged | InterfaceStateFlags.BondSlave)) == 0);

    /// <summary>
    /// The device the flow leaves its node by (to-host-endpoint program, tc.c and pol_prog_builder.go
    /// at v3.30.7): its host endpoint's egress policy (apply-on-forward tiers for forwarded pod
    /// traffic), or none without a host endpoint. Returns a verdict when that policy stops it.
    /// </summary>
    private static (FlowVerdict? Stop, string? Why, PolicyDecision? Decision) LeaveBy(FlowTables t, List<FlowStage> stages, FlowQuery q, IPAddress dst, int dport, Route via)
    {
        (InterfaceState? device, bool tunneled, string how) = Uplink(t, via, dst);
        if (device is null)
        {
            stages.Add(new("interface", "-", "no uplink state", $"{t.Node}'s cali_iface has no {(tunneled ? "tunnel device" : "host interface")} ({how}): predicted as if the device had no host endpoint"));
            return (null, null, null);
        }

        string where = $"{device.Name} tc egress (to host endpoint)";
        stages.Add(new("interface", where, tunneled ? "into the tunnel" : "out to the network", $"cali_iface[{device.IfIndex}] {device.Name}: {string.Join(", ", device.FlagNames)}; {how}"));
        PolicyDecision? d = HostEndpointPolicy(t, stages, device, where, q, dst, dport, toHost: false, out FlowVerdict? stop, out string? why, out _, direction: "egress", preNatAsked: false);
        return (stop, stop is null ? null : $"{why} (on {t.Node})", d);
    }

    /// <summary>
    /// The rest of a flow on the destination's node (datapath-facts-v3307.md sections 1, 8 and 9): the
    /// packet arrives on that node's side of the same uplink (Uplink); that from-host-endpoint program
    /// runs the host endpoint's ingress policy when one covers the interface and creates the conntrack
    /// entry with only the client's side approved, so the workload's to-workload program still runs
    /// its ingress policy for the first packet (a TCP SYN always does). The destination must be a
    /// workload of that node.
    /// </summary>
    private static FlowResult Arrive(FlowTables from, FlowTables t, FlowQuery q, List<FlowStage> stages, string srcIface, IPAddress dst, int dport, Route via, bool nat)
    {
        FlowResult Done(FlowVerdict v, string reason, PolicyDecision? pol = null) => Result(t, q, v, reason, stages, nat ? dst : null, nat ? dport : null, pol, from);
        (InterfaceState? entry, bool tunneled, string how) = Uplink(t, via, dst);
        string where = $"{t.Node}: {entry?.Name ?? (tunneled ? "the tunnel device" : "the host interface")} tc ingress (from host endpoint)";
        stages.Add(new("interface", where, tunneled ? "from the tunnel" : "from the network",
            $"{from.Node} sends it to {via.NextHop} ({via.Cidr}: {via.Description}; {how}); " +
            (entry is null ? $"{t.Node}'s cali_iface has no {(tunneled ? "tunnel device" : "host interface")}" : $"cali_iface[{entry.IfIndex}] {entry.Name}: {string.Join(", ", entry.FlagNames)}")));

        ConntrackEntry? ct = Lookup(t, q, dst, dport);
        bool established = ct is not null && q.Protocol != IpProtocol.Tcp && ct.Forward.Approved && ct.Reverse.Approved;
        stages.Add(new("conntrack", where, established ? "established" : ct is null ? "new flow" : "existing entry",
            ct is null ? $"no entry for {ConntrackText.Protocol(q.Protocol)} {ConntrackText.HostPort(q.Source, q.SourcePort)} -> {ConntrackText.HostPort(dst, dport)}: the first program creates one with the client's side approved"
            : established ? $"{ct.Type} {ct.Key}, state {ct.State}, both sides approved: later packets bypass policy"
            : $"{ct.Type} {ct.Key}, state {ct.State}: {(q.Protocol == IpProtocol.Tcp ? "a TCP SYN still goes through policy" : "the workload's side is not approved yet, so its policy runs")}"));
        if (established)
        {
            return Done(FlowVerdict.Allow, $"an established flow on {t.Node}: conntrack lets it through without policy");
        }

        if (entry is not null)
        {
            PolicyDecision? hd = HostEndpointPolicy(t, stages, entry, where, q, dst, dport, toHost: false, out FlowVerdict? hstop, out string? hwhy, out _);
            if (hstop is FlowVerdict hv)
            {
                return Done(hv, $"on {t.Node}, {hwhy}", hd);
            }
        }

        return ToWorkloadThere(from, t, q, stages, where, $"the egress policy of {srcIface} on {from.Node}", dst, dport, nat, via);
    }

    /// <summary>
    /// A node port forwarded through the node-port tunnel (tc.c:827-841, nat_lookup.h:68-99, 122-123):
    /// the backend's node decapsulates it on its host interface and looks the node port up again (the
    /// exact frontend, else the wildcard even without a route), counting only its own backends, and
    /// takes one of them; the host endpoint's pre-DNAT tiers there see the node port asked.
    /// </summary>
    private static FlowResult NodePortArrive(FlowTables from, FlowTables t, FlowQuery q, List<FlowStage> stages, string srcIface, Route via, string caveat)
    {
        FlowResult Done(FlowVerdict v, string reason) => Result(t, q, v, reason + caveat, stages, null, null, null, from);
        InterfaceState? entry = HostInterface(t);
        string where = $"{t.Node}: {entry?.Name ?? "the host interface"} tc ingress (from host endpoint)";
        stages.Add(new("interface", where, "from the node-port tunnel",
            $"{from.Node} sends it to {via.NextHop} in VXLAN (VNI 0xca11c0): decapsulated here; " + (entry is null ? $"{t.Node}'s cali_iface has no host interface" : $"cali_iface[{entry.IfIndex}] {entry.Name}: {string.Join(", ", entry.FlagNames)}")));
        NatFrontend? fe = t.FrontendsOf(q.Destination, q.DestinationPort, q.Protocol).FirstOrDefault(f => !f.IsDropEntry)
            ?? t.FrontendsOf(IPAddress.Broadcast, q.DestinationPort, q.Protocol).FirstOrDefault(f => !f.IsDropEntry);
        if (fe is null)
        {
            stages.Add(new("NAT", where, "no service", $"no frontend {ConntrackText.HostPort(q.Destination, q.DestinationPort)} and no node port {q.DestinationPort} on {t.Node}"));
            return Done(FlowVerdict.Unknown, $"{t.Node} has no frontend for the node port {q.DestinationPort} that {from.Node} forwarded to it: it passes the packet to its host stack");
        }

        List<NatBackend> local = fe.Backends.Where(b => b.Ordinal < fe.LocalBackendCount && b.AddressValue is not null).ToList();
        if (local.Count == 0)
        {
            stages.Add(new("NAT", where, "no backend", $"{fe} (from the tunnel only this node's backends count, and it has none)"));
            return Done(FlowVerdict.Deny, $"{from.Node} forwards the node port to {t.Node}, but {t.Node} has no local backend for {fe.Frontend}: it answers ICMP port unreachable");
        }

        stages.Add(new("NAT", where, local.Count == 1 ? "DNAT to the local backend" : $"DNAT to one of {local.Count} local backends",
            $"{fe}: from the tunnel only this node's backends count: {string.Join(", ", local.Select(b => ConntrackText.HostPort(b.AddressValue!, b.Port)))}"));
        var results = local.Select(b =>
        {
            var own = new List<FlowStage>(stages);
            if (entry is not null)
            {
                PolicyDecision? hd = HostEndpointPolicy(t, own, entry, where, q, b.AddressValue!, b.Port, toHost: false, out FlowVerdict? hstop, out string? hwhy, out _);
                if (hstop is FlowVerdict hv)
                {
                    return (Backend: b, Result: Result(t, q, hv, $"on {t.Node}, {hwhy}" + caveat, own, b.AddressValue, b.Port, hd, from));
                }
            }

            return (Backend: b, Result: ToWorkloadThere(from, t, q, own, where, $"the host endpoint of {srcIface} on {from.Node}", b.AddressValue!, b.Port, nat: true, via, caveat));
        }).ToList();
        return results.Count == 1 ? results[0].Result : Combine(t, q, stages, fe, results, anyMissing: false);
    }

    /// <summary>On the destination's node, after its host interface: its route to the workload, the interface state and the workload's ingress policy.</summary>
    private static FlowResult ToWorkloadThere(FlowTables from, FlowTables t, FlowQuery q, List<FlowStage> stages, string where, string before, IPAddress dst, int dport, bool nat, Route via,
        string caveat = "")
    {
        FlowResult Done(FlowVerdict v, string reason, PolicyDecision? pol = null) => Result(t, q, v, reason + caveat, stages, nat ? dst : null, nat ? dport : null, pol, from);
        if (TableFull(t) is { } full)
        {
            stages.Add(new("conntrack", where, "cannot create the entry", full));
            return Done(FlowVerdict.Deny, full);
        }

        Route? dstRoute = t.RouteOf(dst);
        if (dstRoute is null || !dstRoute.Flags.HasFlag(RouteFlags.Local) || !dstRoute.Flags.HasFlag(RouteFlags.Workload) || dstRoute.IfIndex is not int dIf)
        {
            stages.Add(new("route", where, "not a workload here", dstRoute is null ? $"no entry of {t.Node}'s cali_v4_routes holds {dst}" : $"{dstRoute.Cidr}: {dstRoute.Description}"));
            return Done(FlowVerdict.Unknown, $"{from.Node} sends {dst} to {t.Node} ({via.NextHop}), but {t.Node} has no local workload route for it ({(dstRoute is null ? "no route" : dstRoute.Cidr + ": " + dstRoute.Description)}): the host stack there decides; Get-BpfRoute -Node {t.Node} shows its routes");
        }

        stages.Add(new("route", where, $"the local workload on {(t.Interfaces.TryGetValue(dIf, out InterfaceState? s) ? s.Name : dstRoute.Interface ?? "?")}", $"{dstRoute.Cidr}: {dstRoute.Description}"));
        (FlowVerdict? stopped, string? reason, PolicyDecision? ingress, string dstName) = IntoLocalWorkload(t, stages, dIf, t.Node, q, dst, dport);
        return stopped is FlowVerdict v
            ? Done(v, reason!, ingress)
            : Done(FlowVerdict.Allow, $"{before} and the ingress policy of {dstName} on {t.Node} allow it", ingress);
    }
}
