namespace CalicoBpf.Flow;

/// <summary>Flows that start on a host or tunnel interface (FlowQuery.Interface): a node port from outside, the node-port tunnel, the return path.</summary>
public static partial class FlowPredictor
{
    /// <summary>
    /// A packet from the network on a host or tunnel interface (the from-host-endpoint program, tc.c
    /// and nat_lookup.h at v3.30.7; /work/reports/datapath-facts-v3307.md): UDP to the VXLAN port is
    /// checked as VXLAN first; conntrack; NAT by the exact frontend only (a node port has one on
    /// each of the node's addresses; the wildcard is for traffic from the node itself), with
    /// externalTrafficPolicy Local counting local backends for a source that is no Calico host or
    /// workload; then each backend: the host endpoint's policy, and a local workload's ingress
    /// policy, or the node-port tunnel to the backend's node with the return path of
    /// bpfExternalServiceMode.
    /// </summary>
    private static FlowResult FromNetwork(FlowTables t, FlowQuery q, List<FlowStage> stages, InterfaceState entry, Route? srcRoute)
    {
        FlowResult Done(FlowVerdict v, string reason) => Result(t, q, v, reason, stages, null, null, null);
        string where = $"{entry.Name} tc ingress (from host endpoint)";
        bool fromCalicoHost = srcRoute is not null && srcRoute.Flags.HasFlag(RouteFlags.Host) && !srcRoute.Flags.HasFlag(RouteFlags.Local);
        stages.Add(new("interface", where, entry.Flags.HasFlag(InterfaceStateFlags.V4Ready) ? "from the network" : "not ready",
            $"cali_iface[{entry.IfIndex}] {entry.Name}: {string.Join(", ", entry.FlagNames)}; the source {q.Source} is {(srcRoute is null ? "no Calico route (outside the cluster)" : srcRoute.Cidr + ": " + srcRoute.Description)}" + Logging(t)));

        // UDP to the VXLAN port is a decap candidate before anything else (tc.c, vxlan_udp_csum_ok / is_vxlan_tunnel).
        string caveat = string.Empty;
        (int vxlanPort, bool portKnown) = t.Settings.Vxlan;
        if (q.Protocol == IpProtocol.Udp && q.DestinationPort == vxlanPort)
        {
            string setting = portKnown ? t.Settings.VxlanPort!.ToString() : "vxlanPort 4789 (Felix's default; the node's setting was not read)";
            if (fromCalicoHost)
            {
                stages.Add(new("tunnel", where, "taken as VXLAN", $"UDP to {setting} from a Calico host: the program takes it as tunnel traffic (decapsulated, or handed to the host's VXLAN device without NAT or policy)"));
                return Done(FlowVerdict.Unknown, $"UDP to port {vxlanPort} is Felix's VXLAN port ({setting}): from a Calico host the program takes it as VXLAN tunnel traffic, so no service on that port is reached; give the service another port, or Felix another vxlanPort");
            }

            stages.Add(new("tunnel", where, "checked as VXLAN first", $"UDP to {setting}: a datagram shorter than 8 bytes, or whose bytes 4-6 read as Calico's VNI 0xca11c0, is dropped; others go on to NAT and policy"));
            caveat = $" (UDP to {vxlanPort}, Felix's VXLAN port: a datagram shorter than 8 bytes, or one that reads as Calico's VXLAN, is dropped first; give the service another port)";
        }

        ConntrackEntry? ct = q.AsNew ? null : t.Conntrack(q.Protocol, q.Source, q.SourcePort, q.Destination, q.DestinationPort);
        bool established = ct is not null && q.Protocol != IpProtocol.Tcp && ct.Forward.Approved && ct.Reverse.Approved;
        (string Note, bool Full)? room = ct is null ? ConntrackRoom(t) : null;
        stages.Add(ct is null
            ? new("conntrack", where, room is { Full: true } ? "new flow, table full" : "new flow", $"no entry for {Tuple(q)}{room?.Note}")
            : new("conntrack", where, established ? "established" : "existing entry", $"{ct.Type} {ct.Key}, state {ct.State}"));
        if (established)
        {
            return Done(FlowVerdict.Allow, "an established flow: conntrack lets it through without policy" + caveat);
        }

        // The one exception (conntrack.h at v3.30.7): traffic from a host interface to this host without NAT goes on without an entry.
        Route? toRoute = t.RouteOf(q.Destination);
        bool plainToHost = t.FrontendsOf(q.Destination, q.DestinationPort, q.Protocol).Count == 0
            && toRoute is not null && toRoute.Flags.HasFlag(RouteFlags.Local) && toRoute.Flags.HasFlag(RouteFlags.Host);
        if (room is { Full: true } && !plainToHost)
        {
            return Done(FlowVerdict.Deny, $"conntrack is full on {t.Node} ({t.ConntrackFill!.Map}, {t.ConntrackFill.Entries} of {t.ConntrackFill.MaxEntries} entries): a new flow's entry cannot be created, so the program drops it (counter: failed to create conntrack); raise bpfMapSizeConntrack");
        }

        // NAT: from a host interface only the exact frontend (nat_lookup.h:60-71: no wildcard unless from the tunnel).
        NatFrontend? fe = t.FrontendsOf(q.Destination, q.DestinationPort, q.Protocol)
            .Select(f => (Frontend: f, Range: f.SourceCidr is null ? null : Maps.AddressPrefix.Parse(f.SourceCidr)))
            .Where(x => x.Range is null || x.Range.Matches(q.Source))
            .OrderByDescending(x => x.Range?.PrefixLength ?? 0)
            .Select(x => x.Frontend)
            .FirstOrDefault();
        IPAddress dst = q.Destination;
        int dport = q.DestinationPort;
        if (fe is null)
        {
            stages.Add(new("NAT", where, "no service", $"no frontend {ConntrackText.HostPort(q.Destination, q.DestinationPort)}/{q.Protocol} (from a host interface only exact frontends apply: a node port has one on each of the node's addresses)"));
            return NetworkAfterNat(t, q, stages, where, entry, srcRoute, dst, dport, false, caveat);
        }

        if (fe.IsDropEntry)
        {
            stages.Add(new("NAT", where, "drop: source outside the service's ranges", fe.ToString()));
            return Done(FlowVerdict.Deny, $"{fe.Frontend} takes only its loadBalancerSourceRanges; {q.Source} is outside them (counter: dropped, unauthorised source)");
        }

        // nat_lookup.h:124-137: externalTrafficPolicy Local counts only local backends for traffic from outside the cluster.
        bool external = srcRoute is null || (!srcRoute.Flags.HasFlag(RouteFlags.Host) && !srcRoute.Flags.HasFlag(RouteFlags.Workload));
        bool localOnly = external && fe.Flags.HasFlag(NatFrontendFlags.ExternalLocal);
        int count = localOnly ? fe.LocalBackendCount : fe.BackendCount;
        if (count == 0)
        {
            stages.Add(new("NAT", where, "no backend", $"{fe}{(localOnly ? " (externalTrafficPolicy Local: local backends only, and this node has none)" : string.Empty)}"));
            return Done(FlowVerdict.Deny, $"service {fe.Frontend} (id {fe.ServiceId}) has no backend{(localOnly ? " on this node for a client outside the cluster (externalTrafficPolicy Local)" : string.Empty)}: the program answers ICMP port unreachable");
        }

        List<NatBackend> candidates = fe.Backends.Where(b => b.Ordinal < count && b.AddressValue is not null).ToList();
        if (candidates.Count == 0)
        {
            stages.Add(new("NAT", where, "missing backend", $"{fe}: no backend of the first {count} is in cali_v4_nat_be"));
            return Done(FlowVerdict.Deny, $"service {fe.Frontend} counts backends the backend map does not have (no backend: ICMP port unreachable)");
        }

        NatAffinity? aff = fe.AffinityTimeoutValue > TimeSpan.Zero
            ? t.Affinity.FirstOrDefault(a => a.ServiceAddressValue.Equals(dst) && a.ServicePort == dport && a.Protocol == q.Protocol && a.ClientAddressValue.Equals(q.Source) && a.AgeValue <= fe.AffinityTimeoutValue)
            : null;
        if (aff is not null || candidates.Select(b => (b.AddressValue, b.Port)).Distinct().Count() == 1)
        {
            (IPAddress b, int bp) = aff is not null ? (aff.BackendAddressValue, aff.BackendPort) : (candidates[0].AddressValue!, candidates[0].Port);
            stages.Add(new("NAT", where, aff is not null ? "DNAT by affinity" : "DNAT", $"{fe} -> {ConntrackText.HostPort(b, bp)}{(localOnly ? " (externalTrafficPolicy Local: local backends only)" : string.Empty)}"));
            return NetworkAfterNat(t, q, stages, where, entry, srcRoute, b, bp, true, caveat);
        }

        stages.Add(new("NAT", where, $"DNAT to one of {count}", $"{fe}: {string.Join(", ", candidates.Select(b => ConntrackText.HostPort(b.AddressValue!, b.Port)))}"));
        var results = candidates.Select(b => (Backend: b, Result: NetworkAfterNat(t, q, new List<FlowStage>(stages), where, entry, srcRoute, b.AddressValue!, b.Port, true, caveat))).ToList();
        return Combine(t, q, stages, fe, results, anyMissing: fe.Backends.Count(b => b.Ordinal < count) > candidates.Count);
    }

    /// <summary>After NAT on a host interface: the host endpoint's policy, then where the packet goes.</summary>
    private static FlowResult NetworkAfterNat(FlowTables t, FlowQuery q, List<FlowStage> stages, string where, InterfaceState entry, Route? srcRoute, IPAddress dst, int dport, bool nat, string caveat)
    {
        FlowResult Done(FlowVerdict v, string reason, PolicyDecision? pol = null) => Result(t, q, v, reason + caveat, stages, nat ? dst : null, nat ? dport : null, pol);
        Route? dstRoute = t.RouteOf(dst);
        bool toHost = !nat && dstRoute is not null && dstRoute.Flags.HasFlag(RouteFlags.Local) && dstRoute.Flags.HasFlag(RouteFlags.Host);
        stages.Add(new("route", where, "source check by the kernel's routing table",
            $"bpfEnforceRPF (Loose by default; Strict: the route back to {q.Source} must be via {entry.Name}) asks the host's FIB, which Test-BpfFlow does not read"));
        if (dstRoute is not null && (dstRoute.Flags.HasFlag(RouteFlags.BlackholeDrop) || dstRoute.Flags.HasFlag(RouteFlags.BlackholeReject)))
        {
            stages.Add(new("route", where, "blackhole", $"{dstRoute.Cidr}: {dstRoute.Description}"));
            return Done(FlowVerdict.Deny, $"{dst} is in a blackhole route ({dstRoute.Cidr}; counter: dropped, black-holed)");
        }

        // The host endpoint's policy: pre-DNAT tiers on the address asked, then normal tiers to this host or
        // apply-on-forward tiers for what it forwards. No debug file: no host endpoint covers the interface.
        DebugProgram? hep = t.Program(entry.Name, "ingress", forHostInterface: true, out _);
        PolicyDecision? hostDecision = null;
        if (hep is null)
        {
            stages.Add(new("policy", where, "no host endpoint policy", $"no policy debug file for {entry.Name}: with no host endpoint the program allows it without policy (Felix writes a file for each interface a host endpoint covers)"));
        }
        else if (hep.Error is { Length: > 0 } failed)
        {
            stages.Add(new("policy", where, "unknown", $"Felix recorded an error building this program: {failed}"));
            return Done(FlowVerdict.Unknown, $"the host endpoint policy of {entry.Name} is not the one in its debug file: Felix recorded an error building it ({failed})");
        }
        else
        {
            bool icmp = q.Protocol == IpProtocol.Icmp;
            var packet = new PolicyPacket((int)q.Protocol, q.Source, q.SourcePort, dst, dport, q.Destination, icmp ? 0 : q.DestinationPort, SourceIsHost: false, DestinationIsHost: toHost, icmp ? dport : q.DestinationPort);
            hostDecision = PolicyEvaluator.Evaluate(hep.Program, packet, t.IpSets(hep));
            stages.Add(new("policy", where, "host endpoint: " + hostDecision.Verdict.ToString().ToLowerInvariant(), Describe(t, hostDecision)));
            if (hostDecision.Verdict != PolicyVerdict.Allow)
            {
                return Done(hostDecision.Verdict == PolicyVerdict.Deny ? FlowVerdict.Deny : FlowVerdict.Unknown, $"the host endpoint policy of {entry.Name}: {hostDecision.Reason}", hostDecision);
            }
        }

        if (dstRoute is not null && dstRoute.Flags.HasFlag(RouteFlags.Local) && dstRoute.Flags.HasFlag(RouteFlags.Workload) && dstRoute.IfIndex is int dIf)
        {
            t.Interfaces.TryGetValue(dIf, out InterfaceState? dstIf);
            stages.Add(new("route", where, $"the local workload on {dstIf?.Name ?? dstRoute.Interface ?? "?"}", $"{dstRoute.Cidr}: {dstRoute.Description}"));
            string dstWhere = $"{dstIf?.Name ?? "ifindex " + dIf} tc egress (to workload)";
            if (dstIf is null || !dstIf.Flags.HasFlag(InterfaceStateFlags.V4Ready))
            {
                stages.Add(new("interface", dstWhere, "not ready", dstIf is null ? $"cali_iface has no entry for ifindex {dIf}" : $"cali_iface[{dIf}] {dstIf.Name}: {string.Join(", ", dstIf.FlagNames)}"));
                return Done(FlowVerdict.Deny, "the destination workload's interface is not ready in Calico: a new flow to it is dropped (no counter)");
            }

            stages.Add(new("interface", dstWhere, "ready", $"cali_iface[{dIf}] {dstIf.Name}: {string.Join(", ", dstIf.FlagNames)}"));
            PolicyDecision? ingress = Policy(t, stages, dstIf.Name, "ingress", dstWhere, q, dst, dport, preNat: false, toHost: false, srcIsHost: false, out FlowVerdict? stop, out string? why);
            if (stop is FlowVerdict v)
            {
                return Done(v, why!, ingress);
            }

            return Done(FlowVerdict.Allow, $"{(hep is null ? "no host endpoint policy on " + entry.Name : "the host endpoint policy of " + entry.Name)} and the ingress policy of {dstIf.Name} allow it", ingress);
        }

        if (toHost)
        {
            stages.Add(new("route", where, "this host", $"{dstRoute!.Cidr}: {dstRoute.Description}"));
            return Done(FlowVerdict.Allow, hep is null ? $"to this host, and no host endpoint covers {entry.Name}: allowed without policy" : $"to this host: the host endpoint policy of {entry.Name} allows it", hostDecision);
        }

        if (nat && dstRoute is not null && dstRoute.Flags.HasFlag(RouteFlags.Workload))
        {
            // A node port to a backend on another node: the node-port tunnel (VXLAN on vxlanPort, VNI 0xca11c0), client source kept.
            (int vxlanPort, _) = t.Settings.Vxlan;
            stages.Add(new("route", where, $"a workload on another node: the node-port tunnel to {dstRoute.NextHop}", $"{dstRoute.Cidr}: {dstRoute.Description}; VXLAN to {dstRoute.NextHop}:{vxlanPort} with VNI 0xca11c0, the client's address kept"));
            stages.Add(new("return", where, t.Settings.Dsr switch
                {
                    true => "DSR: the backend's node answers the client directly",
                    false => "Tunnel: replies come back through this node",
                    null => "Tunnel or DSR (bpfExternalServiceMode was not read)",
                },
                t.Settings.Dsr switch
                {
                    true => $"{t.Settings.ExternalServiceMode}: replies leave {dstRoute.NextHop} with this node's address {q.Destination} as their source, so the network between that node and {q.Source} must let them through (cloud networks check sources: Test-CalicoEbpf's DSR check says where)",
                    false => $"{t.Settings.ExternalServiceMode}: {dstRoute.NextHop} sends the replies back through the tunnel and this node answers {q.Source}",
                    null => "with Tunnel (Felix's default) replies come back through this node; with DSR the backend's node answers the client directly",
                }));
            string? unreachable = null;
            if (dstRoute.NextHopValue is IPAddress hop && t.Peers?.At(hop, out unreachable) is { } peer)
            {
                return Arrive(t, peer, q, stages, entry.Name, dst, dport, dstRoute, nat, nodePortTunnel: true, caveat);
            }

            return Done(FlowVerdict.Unknown, $"{(hep is null ? "no host endpoint policy on " + entry.Name + " stops it" : "the host endpoint policy of " + entry.Name + " allows it")}; the backend's ingress policy is decided on the node at {dstRoute.NextHop}: {unreachable ?? "ask that node, or run with -Node so that the next node's tables are read too"}", hostDecision);
        }

        string path = dstRoute is null ? "no Calico route: the host's routing table takes it" : dstRoute.Description;
        stages.Add(new("route", where, path, dstRoute is null ? $"no entry of cali_v4_routes holds {dst}" : $"{dstRoute.Cidr}: {dstRoute.Description}"));
        return Done(FlowVerdict.Allow, $"{(hep is null ? "no host endpoint policy on " + entry.Name + " stops it" : "the host endpoint policy of " + entry.Name + " allows it")}; it goes to {path}", hostDecision);
    }
}
