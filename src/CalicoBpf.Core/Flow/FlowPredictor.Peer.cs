namespace CalicoBpf.Flow;

/// <summary>The rest of a flow on the destination's node, when the run reads that node too (FlowTables.Peers).</summary>
public static partial class FlowPredictor
{
    /// <summary>
    /// The rest of a flow on the destination's node (felix/bpf-gpl at v3.30.7,
    /// /work/reports/datapath-facts-v3307.md sections 1, 8 and 9): the packet arrives on a host
    /// interface, or on the tunnel device when the route is tunnelled; that from-host-endpoint
    /// program runs the host endpoint's ingress policy when one covers the interface (else it allows
    /// without policy) and creates the conntrack entry with only the client's side approved, so the
    /// workload's to-workload program still runs its ingress policy for the first packet (a TCP SYN
    /// always does). The destination must be a workload of that node.
    /// </summary>
    /// <param name="nodePortTunnel">The packet is a node port forwarded from <paramref name="from"/>: it comes in on the host interface as VXLAN, and this node NATs it to its local backend.</param>
    private static FlowResult Arrive(FlowTables from, FlowTables t, FlowQuery q, List<FlowStage> stages, string srcIface, IPAddress dst, int dport, Route via, bool nat,
        bool nodePortTunnel = false, string caveat = "")
    {
        FlowResult Done(FlowVerdict v, string reason, PolicyDecision? pol = null) => Result(t, q, v, reason + caveat, stages, nat ? dst : null, nat ? dport : null, pol, from);
        string On(string where) => $"{t.Node}: {where}";

        bool tunneled = via.Flags.HasFlag(RouteFlags.Tunneled) && !nodePortTunnel;
        InterfaceStateFlags tunnels = InterfaceStateFlags.Vxlan | InterfaceStateFlags.Ipip | InterfaceStateFlags.WireGuard;
        InterfaceState? entry = tunneled
            ? t.Interfaces.Values.OrderBy(i => i.IfIndex).FirstOrDefault(i => i.Flags.HasFlag(via.Flags.HasFlag(RouteFlags.Vxlan) ? InterfaceStateFlags.Vxlan : InterfaceStateFlags.Ipip))
              ?? t.Interfaces.Values.OrderBy(i => i.IfIndex).FirstOrDefault(i => (i.Flags & tunnels) != 0)
            : t.Interfaces.Values.OrderBy(i => i.IfIndex).FirstOrDefault(i => i.Flags.HasFlag(InterfaceStateFlags.Host) && (i.Flags & tunnels) == 0);
        string entryName = entryIf(entry, tunneled);
        string where = On($"{entryName} tc ingress (from host endpoint)");
        stages.Add(new("interface", where, nodePortTunnel ? "from the node-port tunnel" : tunneled ? "from the tunnel" : "from the network",
            $"{from.Node} sends it to {via.NextHop}{(nodePortTunnel ? " in VXLAN (VNI 0xca11c0): decapsulated here" : tunneled ? ", tunnelled" : string.Empty)} ({via.Cidr}: {via.Description}); " +
            (entry is null ? $"{t.Node}'s cali_iface has no {(tunneled ? "tunnel" : "host")} interface" : $"cali_iface[{entry.IfIndex}] {entry.Name}: {string.Join(", ", entry.FlagNames)}")));
        if (nodePortTunnel)
        {
            // nat_lookup.h:122: from the tunnel only local backends count, and the frontend asked is found again here.
            stages.Add(new("NAT", where, "DNAT to the local backend", $"the node port {ConntrackText.HostPort(q.Destination, q.DestinationPort)} from the tunnel counts only this node's backends: {ConntrackText.HostPort(dst, dport)}"));
        }

        Route? dstRoute = t.RouteOf(dst);
        ConntrackEntry? ct = q.AsNew ? null : t.Conntrack(q.Protocol, q.Source, q.Protocol == IpProtocol.Icmp ? 0 : q.SourcePort, dst, q.Protocol == IpProtocol.Icmp ? 0 : dport);
        bool established = ct is not null && q.Protocol != IpProtocol.Tcp && ct.Forward.Approved && ct.Reverse.Approved;
        stages.Add(new("conntrack", where, established ? "established" : "new flow",
            ct is null ? $"no entry for {ConntrackText.Protocol(q.Protocol)} {ConntrackText.HostPort(q.Source, q.SourcePort)} -> {ConntrackText.HostPort(dst, dport)}: the first program creates one with the client's side approved"
            : established ? $"{ct.Type} {ct.Key}, state {ct.State}, both sides approved: later packets bypass policy"
            : $"{ct.Type} {ct.Key}, state {ct.State}: {(q.Protocol == IpProtocol.Tcp ? "a TCP SYN still goes through policy" : "the workload's side is not approved yet, so its policy runs")}"));
        if (established)
        {
            return Done(FlowVerdict.Allow, $"an established flow on {t.Node}: conntrack lets it through without policy");
        }

        // The host endpoint's policy: Felix writes a debug file only for an interface a host endpoint covers.
        if (entry is not null)
        {
            DebugProgram? hep = t.Program(entry.Name, "ingress", forHostInterface: true, out _);
            if (hep is null)
            {
                stages.Add(new("policy", where, "no host endpoint policy", $"no policy debug file for {entry.Name}: with no host endpoint the program allows it without policy (Felix writes a file for each interface a host endpoint covers)"));
            }
            else
            {
                PolicyDecision? hd = HostPolicy(t, stages, entry.Name, where, q, dst, dport, hep, out FlowVerdict? hstop, out string? hwhy);
                if (hstop is FlowVerdict hv)
                {
                    return Done(hv, hwhy!, hd);
                }
            }
        }

        if (dstRoute is null || !dstRoute.Flags.HasFlag(RouteFlags.Local) || !dstRoute.Flags.HasFlag(RouteFlags.Workload) || dstRoute.IfIndex is not int dIf)
        {
            stages.Add(new("route", where, "not a workload here", dstRoute is null ? $"no entry of {t.Node}'s cali_v4_routes holds {dst}" : $"{dstRoute.Cidr}: {dstRoute.Description}"));
            return Done(FlowVerdict.Unknown, $"{from.Node} routes {dst} to {t.Node} ({via.NextHop}), but {t.Node} has no local workload route for it ({(dstRoute is null ? "no route" : dstRoute.Cidr + ": " + dstRoute.Description)}): the host stack there decides; Get-BpfRoute -Node {t.Node} shows its routes");
        }

        stages.Add(new("route", where, $"the local workload on {(t.Interfaces.TryGetValue(dIf, out InterfaceState? s) ? s.Name : dstRoute.Interface ?? "?")}", $"{dstRoute.Cidr}: {dstRoute.Description}"));
        t.Interfaces.TryGetValue(dIf, out InterfaceState? dstIf);
        string dstWhere = On($"{dstIf?.Name ?? "ifindex " + dIf} tc egress (to workload)");
        if (dstIf is null || !dstIf.Flags.HasFlag(InterfaceStateFlags.V4Ready))
        {
            stages.Add(new("interface", dstWhere, "not ready", dstIf is null ? $"cali_iface has no entry for ifindex {dIf}" : $"cali_iface[{dIf}] {dstIf.Name}: {string.Join(", ", dstIf.FlagNames)}"));
            return Done(FlowVerdict.Deny, $"the destination workload's interface on {t.Node} is not ready in Calico: a new flow to it is dropped (no counter)");
        }

        stages.Add(new("interface", dstWhere, "ready", $"cali_iface[{dIf}] {dstIf.Name}: {string.Join(", ", dstIf.FlagNames)}"));
        PolicyDecision? ingress = Policy(t, stages, dstIf.Name, "ingress", dstWhere, q, dst, dport, preNat: false, toHost: false, srcIsHost: false, out FlowVerdict? stop, out string? why);
        if (stop is FlowVerdict v)
        {
            return Done(v, $"on {t.Node}, {why}", ingress);
        }

        return Done(FlowVerdict.Allow, $"the egress policy of {srcIface} on {from.Node} and the ingress policy of {dstIf.Name} on {t.Node} allow it", ingress);

        static string entryIf(InterfaceState? i, bool tunnel) => i?.Name ?? (tunnel ? "the tunnel device" : "the host interface");
    }

    /// <summary>A host endpoint's ingress program on the destination's node, for a packet forwarded to one of its workloads (pre-DNAT, then apply-on-forward tiers).</summary>
    private static PolicyDecision? HostPolicy(FlowTables t, List<FlowStage> stages, string iface, string where, FlowQuery q, IPAddress dst, int dport, DebugProgram program,
        out FlowVerdict? stop, out string? why)
    {
        stop = null;
        why = null;
        if (program.Error is { Length: > 0 } failed)
        {
            stages.Add(new("policy", where, "unknown", $"Felix recorded an error building this program: {failed}"));
            stop = FlowVerdict.Unknown;
            why = $"the host endpoint policy of {iface} on {t.Node} is not the one in its debug file: Felix recorded an error building it ({failed})";
            return null;
        }

        bool icmp = q.Protocol == IpProtocol.Icmp;
        var packet = new PolicyPacket((int)q.Protocol, q.Source, q.SourcePort, dst, dport, dst, icmp ? 0 : dport, SourceIsHost: false, DestinationIsHost: false, icmp ? dport : dport);
        PolicyDecision d = PolicyEvaluator.Evaluate(program.Program, packet, t.IpSets(program));
        stages.Add(new("policy", where, "host endpoint: " + d.Verdict.ToString().ToLowerInvariant(), Describe(t, d)));
        if (d.Verdict != PolicyVerdict.Allow)
        {
            stop = d.Verdict == PolicyVerdict.Deny ? FlowVerdict.Deny : FlowVerdict.Unknown;
            why = $"the host endpoint policy of {iface} on {t.Node}: {d.Reason}";
        }

        return d;
    }
}
