namespace CalicoBpf.Flow;

/// <summary>Flows asked at an interface's tc egress hook (FlowQuery.Hook "egress"): into a workload, or out of a host interface.</summary>
public static partial class FlowPredictor
{
    /// <summary>
    /// The to-workload program of a workload interface (tc egress of its host side; tc.c at v3.30.7):
    /// the packet comes from the host stack, from this node's host, another workload or another node,
    /// already NATed. Traffic from this host is always allowed; else conntrack, then the workload's
    /// ingress policy (a TCP SYN and a flow whose workload side is not approved go through it).
    /// </summary>
    private static FlowResult IntoWorkload(FlowTables t, FlowQuery q, List<FlowStage> stages, InterfaceState at, Route? srcRoute)
    {
        FlowResult Done(FlowVerdict v, string reason, PolicyDecision? pol = null) => Result(t, q, v, reason, stages, null, null, pol);
        string where = $"{at.Name} tc egress (to workload)";
        Route? dstRoute = t.RouteOf(q.Destination);
        if (dstRoute?.IfIndex != at.IfIndex)
        {
            stages.Add(new("interface", where, "not this workload", dstRoute is null ? $"no route holds {q.Destination}" : $"route {dstRoute.Cidr}: {dstRoute.Description}"));
            return Done(FlowVerdict.Unknown, $"{q.Destination} is not the workload on {at.Name} ({(dstRoute is null ? "no Calico route" : dstRoute.Cidr + ": " + dstRoute.Description)}): its to-workload program never sees this packet");
        }

        stages.Add(new("interface", where, at.Flags.HasFlag(InterfaceStateFlags.V4Ready) ? "ready" : "not ready",
            $"cali_iface[{at.IfIndex}] {at.Name}: {string.Join(", ", at.FlagNames)}; the source {q.Source} is {(srcRoute is null ? "no Calico route (outside the cluster)" : srcRoute.Cidr + ": " + srcRoute.Description)}" + Logging(t)));
        if (!at.Flags.HasFlag(InterfaceStateFlags.V4Ready))
        {
            return Done(FlowVerdict.Deny, "the workload's interface is not ready in Calico: a new flow to it is dropped (no counter)");
        }

        if (srcRoute is not null && srcRoute.Flags.HasFlag(RouteFlags.Local) && srcRoute.Flags.HasFlag(RouteFlags.Host))
        {
            stages.Add(new("policy", where, "skipped", "traffic from the host to its own workloads is always allowed (tc.c: \"Packet is from the host: ACCEPT\")"));
            return Done(FlowVerdict.Allow, $"traffic from this host to its workload on {at.Name} is always allowed, without policy");
        }

        ConntrackEntry? ct = Lookup(t, q, q.Destination, q.DestinationPort);
        bool established = ct is not null && q.Protocol != IpProtocol.Tcp && DestinationSideApproved(ct, q);
        stages.Add(new("conntrack", where, established ? "established" : ct is null ? "new flow" : "existing entry",
            ct is null ? $"no entry for {Tuple(q)}" + ConntrackRoom(t)?.Note
            : established ? $"{ct.Type} {ct.Key}, state {ct.State}, the workload's side approved: policy is skipped"
            : $"{ct.Type} {ct.Key}, state {ct.State}: {(q.Protocol == IpProtocol.Tcp ? "a TCP SYN still goes through policy" : "the workload's side is not approved yet, so its policy runs")}"));
        if (established)
        {
            return Done(FlowVerdict.Allow, "an established flow: conntrack lets it through without policy");
        }

        PolicyDecision? ingress = Policy(t, stages, at.Name, "ingress", where, q, q.Destination, q.DestinationPort, preNat: false, toHost: false, srcIsHost: false, out FlowVerdict? stop, out string? why);
        if (stop is FlowVerdict v)
        {
            return Done(v, why!, ingress);
        }

        if (ct is null && TableFull(t) is { } full)
        {
            stages.Add(new("conntrack", where, "cannot create the entry", full));
            return Done(FlowVerdict.Deny, full, ingress);
        }

        return Done(FlowVerdict.Allow, $"the ingress policy of {at.Name} allows it", ingress);
    }

    /// <summary>A to-workload or to-host-endpoint program approves, and checks, the destination's side of the entry (conntrack.h:944-957 at v3.30.7).</summary>
    private static bool DestinationSideApproved(ConntrackEntry ct, FlowQuery q) =>
        (ct.SourceAddressValue.Equals(q.Source) ? ct.Reverse : ct.Forward).Approved;

    /// <summary>
    /// The to-host-endpoint program of a host or tunnel interface (tc egress; tc.c at v3.30.7): the packet
    /// leaves the node. From this host, an outbound failsafe port skips policy (tc.c:544-549); else the
    /// host endpoint's egress policy runs, its normal tiers for the host's own traffic and its
    /// apply-on-forward tiers for what the node forwards; no host endpoint, no policy.
    /// </summary>
    private static FlowResult OutOfNode(FlowTables t, FlowQuery q, List<FlowStage> stages, InterfaceState at, Route? srcRoute)
    {
        FlowResult Done(FlowVerdict v, string reason, PolicyDecision? pol = null) => Result(t, q, v, reason, stages, null, null, pol);
        string where = $"{at.Name} tc egress (to host endpoint)";
        bool fromHost = srcRoute is not null && srcRoute.Flags.HasFlag(RouteFlags.Local) && srcRoute.Flags.HasFlag(RouteFlags.Host);
        Route? dstRoute = t.RouteOf(q.Destination);
        stages.Add(new("interface", where, "out to the network",
            $"cali_iface[{at.IfIndex}] {at.Name}: {string.Join(", ", at.FlagNames)}; from {(fromHost ? "this host" : q.Source + (srcRoute is null ? " (no Calico route)" : ": " + srcRoute.Description))} to {(dstRoute is null ? q.Destination + " (no Calico route)" : q.Destination + ": " + dstRoute.Description)}" + Logging(t)));
        ConntrackEntry? ct = Lookup(t, q, q.Destination, q.DestinationPort);
        bool established = ct is not null && q.Protocol != IpProtocol.Tcp && DestinationSideApproved(ct, q);
        stages.Add(new("conntrack", where, established ? "established" : ct is null ? "new flow" : "existing entry",
            ct is null ? $"no entry for {Tuple(q)}" : $"{ct.Type} {ct.Key}, state {ct.State}"));
        if (established)
        {
            return Done(FlowVerdict.Allow, "an established flow: conntrack lets it through without policy");
        }

        if (fromHost && t.FailsafeOut(q.Protocol, q.DestinationPort, q.Destination) is { } failsafe)
        {
            stages.Add(new("policy", where, "skipped: failsafe port", $"{failsafe} (cali_v4_fsafes; counter: accepted by failsafe)"));
            return Done(FlowVerdict.Allow, $"{ConntrackText.Protocol(q.Protocol).ToLowerInvariant()}:{q.DestinationPort} from this host is an outbound failsafe port, so policy is skipped");
        }

        PolicyDecision? d = HostEndpointPolicy(t, stages, at, where, q, q.Destination, q.DestinationPort, toHost: false, out FlowVerdict? stop, out string? why, out string said,
            direction: "egress", srcIsHost: fromHost, preNatAsked: false);
        if (stop is FlowVerdict v)
        {
            return Done(v, why!, d);
        }

        // Allowed: a new flow's entry is created now, which a full table refuses.
        if (ct is null && TableFull(t) is { } full)
        {
            stages.Add(new("conntrack", where, "cannot create the entry", full));
            return Done(FlowVerdict.Deny, full, d);
        }

        return Done(FlowVerdict.Allow, $"{said}: it leaves the node", d);
    }
}
