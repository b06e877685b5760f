namespace CalicoBpf.Flow;

/// <summary>Flows that start on a host or tunnel interface (FlowQuery.Interface): a node port from outside, the node-port tunnel, the return path.</summary>
public static partial class FlowPredictor
{
    private const InterfaceStateFlags TunnelDevices = InterfaceStateFlags.Vxlan | InterfaceStateFlags.Ipip | InterfaceStateFlags.WireGuard | InterfaceStateFlags.L3;

    /// <summary>
    /// A packet from the network on a host or tunnel interface: the from-host-endpoint program (tc.c,
    /// nat.h and nat_lookup.h at v3.30.7; /work/reports/review-issue16-session2.md checks each step).
    /// On a host interface, UDP to the VXLAN port for this host is checked as VXLAN first; conntrack;
    /// NAT by the exact frontend only (a node port has one on each of the node's addresses; the
    /// wildcard is for traffic from the node itself), counting local backends as the traffic
    /// policies say (externalTrafficPolicy Local for a client outside the cluster,
    /// internalTrafficPolicy Local for a Calico host or workload); the route of the destination
    /// after NAT; a failsafe port to this host skips policy; else the host endpoint's policy; then,
    /// once allowed, the conntrack entry is created, and a backend elsewhere goes through the
    /// node-port tunnel (not from a tunnel device) with the return path of bpfExternalServiceMode.
    /// </summary>
    private static FlowResult FromNetwork(FlowTables t, FlowQuery q, List<FlowStage> stages, InterfaceState entry, Route? srcRoute)
    {
        FlowResult Done(FlowVerdict v, string reason) => Result(t, q, v, reason, stages, null, null, null);
        string where = $"{entry.Name} tc ingress (from host endpoint)";
        bool tunnelDevice = (entry.Flags & TunnelDevices) != 0;
        bool fromCalicoHost = srcRoute is not null && srcRoute.Flags.HasFlag(RouteFlags.Host) && !srcRoute.Flags.HasFlag(RouteFlags.Local);
        stages.Add(new("interface", where, entry.Flags.HasFlag(InterfaceStateFlags.V4Ready) ? tunnelDevice ? "from the tunnel" : "from the network" : "not ready",
            $"cali_iface[{entry.IfIndex}] {entry.Name}: {string.Join(", ", entry.FlagNames)}; the source {q.Source} is {(srcRoute is null ? "no Calico route (outside the cluster)" : srcRoute.Cidr + ": " + srcRoute.Description)}" + Logging(t)));

        // nat.h:160-205: on a host interface (not a tunnel device), UDP to the VXLAN port for this host is a decap candidate first.
        string caveat = string.Empty;
        (int vxlanPort, bool portKnown) = t.Settings.Vxlan;
        Route? asked = t.RouteOf(q.Destination);
        bool askedIsHost = asked is not null && asked.Flags.HasFlag(RouteFlags.Local) && asked.Flags.HasFlag(RouteFlags.Host);
        if (!tunnelDevice && askedIsHost && q.Protocol == IpProtocol.Udp && q.DestinationPort == vxlanPort)
        {
            string setting = portKnown ? t.Settings.VxlanPort!.ToString() : "vxlanPort 4789 (Felix's default; the node's setting was not read)";
            if (fromCalicoHost)
            {
                stages.Add(new("tunnel", where, "taken as VXLAN unless the payload says otherwise", $"UDP to {setting} from a Calico host: a datagram whose first byte has VXLAN's I flag (0x08) is tunnel traffic (another VNI goes to the host stack without NAT or policy; Calico's VNI 0xca11c0 is decapsulated); shorter than 8 bytes it is dropped"));
                return Done(FlowVerdict.Unknown, $"UDP to port {vxlanPort} is Felix's VXLAN port ({setting}): from a Calico host the program takes a datagram whose first byte has VXLAN's I flag as tunnel traffic, so the service on that port gets it only when the payload's first byte lacks 0x08; give the service another port, or Felix another vxlanPort");
            }

            stages.Add(new("tunnel", where, "checked as VXLAN first", $"UDP to {setting}: a datagram shorter than 8 bytes, or one that reads as VXLAN with Calico's VNI 0xca11c0, is dropped (counter: dropped, short packet or unauthorised source); others go on to NAT and policy"));
            caveat = $" (UDP to {vxlanPort}, Felix's VXLAN port: a datagram shorter than 8 bytes, or one that reads as Calico's VXLAN, is dropped first; give the service another port)";
        }

        // Conntrack, as from a workload: a NatForward entry leads to its tracking entry; the client's side must be approved.
        ConntrackEntry? ct = Lookup(t, q, q.Destination, q.DestinationPort);
        ConntrackEntry? tracking = ct is { Type: ConntrackType.NatForward, ReverseKey: { } rk } ? t.Conntrack(rk.Protocol, rk.AddressAValue, rk.PortA, rk.AddressBValue, rk.PortB) : ct;
        bool approved = tracking is not null && (tracking.SourceAddressValue.Equals(q.Source) ? tracking.Forward : tracking.Reverse).Approved;
        if (tracking is not null && approved && q.Protocol != IpProtocol.Tcp)
        {
            stages.Add(new("conntrack", where, "established", $"{(ct!.Type == ConntrackType.NatForward ? $"NatForward {ct.Key} with tracking entry {tracking.Key}" : $"{ct.Type} {ct.Key}")}, state {tracking.State}, client side approved"));
            return Done(FlowVerdict.Allow, "an established flow: conntrack lets it through without policy" + caveat);
        }

        (string Note, bool Full)? room = ConntrackRoom(t);
        stages.Add(tracking is null
            ? new("conntrack", where, room is { Full: true } ? "new flow, table full" : "new flow", $"no entry for {Tuple(q)}{room?.Note}")
            : new("conntrack", where, "existing entry", $"{ct!.Type} {ct.Key}, state {tracking.State}: {(q.Protocol == IpProtocol.Tcp ? "a TCP SYN still goes through policy" : "the client's side is not approved, so NAT and policy run again")}"));

        // NAT: from a host interface only the exact frontend (nat_lookup.h:60-71: no wildcard unless from the node-port tunnel).
        NatFrontend? fe = t.FrontendsOf(q.Destination, q.DestinationPort, q.Protocol)
            .Select(f => (Frontend: f, Range: f.SourceCidr is null ? null : Maps.AddressPrefix.Parse(f.SourceCidr)))
            .Where(x => x.Range is null || x.Range.Matches(q.Source))
            .OrderByDescending(x => x.Range?.PrefixLength ?? 0)
            .Select(x => x.Frontend)
            .FirstOrDefault();
        if (fe is null)
        {
            stages.Add(new("NAT", where, "no service", $"no frontend {ConntrackText.HostPort(q.Destination, q.DestinationPort)}/{q.Protocol} (from a host interface only exact frontends apply: a node port has one on each of the node's addresses)"));
            return NetworkAfterNat(t, q, stages, where, entry, q.Destination, q.DestinationPort, false, false, caveat);
        }

        if (fe.IsDropEntry)
        {
            stages.Add(new("NAT", where, "drop: source outside the service's ranges", fe.ToString()));
            return Done(FlowVerdict.Deny, $"{fe.Frontend} takes only its loadBalancerSourceRanges; {q.Source} is outside them (counter: dropped, unauthorised source)");
        }

        if (fe.Flags.HasFlag(NatFrontendFlags.NatExclude))
        {
            // tc.c:434-440: NAT_EXCLUDE and SKIP_FIB: no route lookup, the host stack takes it after policy.
            stages.Add(new("NAT", where, "excluded from NAT", fe.ToString()));
            return NetworkAfterNat(t, q, stages, where, entry, q.Destination, q.DestinationPort, false, true, caveat);
        }

        if (fe.Flags.HasFlag(NatFrontendFlags.Maglev))
        {
            // v3.32 nat_lookup.h:112-117: from a host endpoint a Maglev frontend goes to the Maglev program before
            // affinity, local counts and the no-backend check; maglev.h takes the table's slot hashword(source,
            // destination, ports, protocol) mod its size, and a miss is DroppedMaglevNoBackend.
            IReadOnlyList<MaglevEntry> lut = t.Maglev(fe.ServiceId);
            if (lut.Count == 0)
            {
                stages.Add(new("NAT", where, "Maglev: no backend", $"{fe}: {t.Node} has no Maglev table entries for service id {fe.ServiceId} (Get-BpfNatMaglev shows the tables)"));
                return Done(FlowVerdict.Deny, $"service {fe.Frontend} is a Maglev service and its table has no backend here: the program drops it");
            }

            var shares = lut.GroupBy(e => e.Backend).Select(g => (Entry: g.First(), Slots: g.Count())).ToList();
            stages.Add(new("NAT", where, shares.Count == 1 ? "Maglev: DNAT" : $"Maglev: one of {shares.Count}",
                $"{fe}: the slot of this flow's hash in the Maglev table picks the backend; {string.Join(", ", shares.Select(x => $"{x.Entry.Backend} ({x.Slots} of {lut.Count} slots)"))} (Get-BpfNatMaglev shows the table)"));
            var byTable = shares.Select(x => new NatBackend(fe.ServiceId, x.Entry.Ordinal, x.Entry.BackendAddressValue, x.Entry.BackendPort)).ToList();
            var maglevResults = byTable.Select(b => (Backend: b, Result: NetworkAfterNat(t, q, new List<FlowStage>(stages), where, entry, b.AddressValue!, b.Port, true, false, caveat))).ToList();
            return maglevResults.Count == 1 ? maglevResults[0].Result : Combine(t, q, stages, fe, maglevResults, anyMissing: false);
        }

        // nat_lookup.h:124-141: a Calico host or workload is local traffic (internalTrafficPolicy Local), anything else external (externalTrafficPolicy Local).
        bool localTraffic = srcRoute is not null && (srcRoute.Flags.HasFlag(RouteFlags.Host) || srcRoute.Flags.HasFlag(RouteFlags.Workload));
        bool localOnly = (localTraffic && fe.Flags.HasFlag(NatFrontendFlags.InternalLocal)) || (!localTraffic && fe.Flags.HasFlag(NatFrontendFlags.ExternalLocal));
        string policy = localOnly ? localTraffic ? " (internalTrafficPolicy Local: local backends only)" : " (externalTrafficPolicy Local: local backends only for a client outside the cluster)" : string.Empty;
        int count = localOnly ? fe.LocalBackendCount : fe.BackendCount;
        if (count == 0)
        {
            stages.Add(new("NAT", where, "no backend", $"{fe}{policy}"));
            return Done(FlowVerdict.Deny, $"service {fe.Frontend} (id {fe.ServiceId}) has no backend{(localOnly ? " on this node" + policy : string.Empty)}: the program answers ICMP port unreachable");
        }

        List<NatBackend> candidates = fe.Backends.Where(b => b.Ordinal < count && b.AddressValue is not null).ToList();
        if (candidates.Count == 0)
        {
            stages.Add(new("NAT", where, "missing backend", $"{fe}: no backend of the first {count} is in cali_v4_nat_be"));
            return Done(FlowVerdict.Deny, $"service {fe.Frontend} counts backends the backend map does not have (no backend: ICMP port unreachable)");
        }

        NatAffinity? aff = fe.AffinityTimeoutValue > TimeSpan.Zero
            ? t.Affinity.FirstOrDefault(a => a.ServiceAddressValue.Equals(q.Destination) && a.ServicePort == q.DestinationPort && a.Protocol == q.Protocol && a.ClientAddressValue.Equals(q.Source) && a.AgeValue <= fe.AffinityTimeoutValue)
            : null;
        if (aff is not null || candidates.Select(b => (b.AddressValue, b.Port)).Distinct().Count() == 1)
        {
            (IPAddress b, int bp) = aff is not null ? (aff.BackendAddressValue, aff.BackendPort) : (candidates[0].AddressValue!, candidates[0].Port);
            stages.Add(new("NAT", where, aff is not null ? "DNAT by affinity" : "DNAT", $"{fe} -> {ConntrackText.HostPort(b, bp)}{policy}{KubeProxyNote(t)}"));
            return NetworkAfterNat(t, q, stages, where, entry, b, bp, true, false, caveat);
        }

        stages.Add(new("NAT", where, $"DNAT to one of {count}", $"{fe}: {string.Join(", ", candidates.Select(b => ConntrackText.HostPort(b.AddressValue!, b.Port)))}{policy}"));
        var results = candidates.Select(b => (Backend: b, Result: NetworkAfterNat(t, q, new List<FlowStage>(stages), where, entry, b.AddressValue!, b.Port, true, false, caveat))).ToList();
        return Combine(t, q, stages, fe, results, anyMissing: fe.Backends.Count(b => b.Ordinal < count) > candidates.Count);
    }

    /// <summary>
    /// After NAT on a host interface (tc.c:554-615, then calico_tc_skb_accepted and do_nat): the route
    /// of the destination; a failsafe port to this host skips policy; the host endpoint's policy; the
    /// conntrack entry; then this host, a local workload's ingress policy, or the node-port tunnel.
    /// </summary>
    private static FlowResult NetworkAfterNat(FlowTables t, FlowQuery q, List<FlowStage> stages, string where, InterfaceState entry, IPAddress dst, int dport, bool nat, bool natExcluded, string caveat)
    {
        FlowResult Done(FlowVerdict v, string reason, PolicyDecision? pol = null) => Result(t, q, v, reason + caveat, stages, nat ? dst : null, nat ? dport : null, pol);
        bool tunnelDevice = (entry.Flags & TunnelDevices) != 0;
        Route? dstRoute = natExcluded ? null : t.RouteOf(dst);
        bool toHost = dstRoute is not null && dstRoute.Flags.HasFlag(RouteFlags.Local) && dstRoute.Flags.HasFlag(RouteFlags.Host);
        stages.Add(new("route", where, "source check by the kernel's routing table",
            $"bpfEnforceRPF (Loose by default; Strict: the route back to {q.Source} must be via {entry.Name}) asks the host's FIB, which Test-BpfFlow does not read"));
        if (dstRoute is not null && (dstRoute.Flags.HasFlag(RouteFlags.BlackholeDrop) || dstRoute.Flags.HasFlag(RouteFlags.BlackholeReject)))
        {
            stages.Add(new("route", where, "blackhole", $"{dstRoute.Cidr}: {dstRoute.Description}"));
            return Done(FlowVerdict.Deny, $"{dst} is in a blackhole route ({dstRoute.Cidr}; counter: dropped, black-holed)");
        }

        PolicyDecision? hostDecision = null;
        string hostPolicy;
        if (toHost && t.FailsafeIn(q.Protocol, dport, q.Source) is { } failsafe)
        {
            // tc.c:601-606: "Inbound failsafe port ... Skip policy."
            stages.Add(new("policy", where, "skipped: failsafe port", $"{failsafe} (cali_v4_fsafes; counter: accepted by failsafe)"));
            hostPolicy = $"{ConntrackText.Protocol(q.Protocol).ToLowerInvariant()}:{dport} is a failsafe port, so policy is skipped";
        }
        else
        {
            // The host endpoint's policy: pre-DNAT tiers on the address asked, then normal tiers to this host or
            // apply-on-forward tiers for what it forwards.
            hostDecision = HostEndpointPolicy(t, stages, entry, where, q, dst, dport, toHost, out FlowVerdict? stop, out string? why, out hostPolicy);
            if (stop is FlowVerdict v)
            {
                return Done(v, why!, hostDecision);
            }
        }

        // Accepted: the entry is created now; a full table refuses it, except for traffic to this host without NAT (conntrack.h).
        if (!(toHost && !nat) && TableFull(t) is { } full)
        {
            stages.Add(new("conntrack", where, "cannot create the entry", full));
            return Done(FlowVerdict.Deny, full, hostDecision);
        }

        if (nat && dstRoute is null && !tunnelDevice)
        {
            // do_nat (tc.c:760-766): a backend with no route.
            stages.Add(new("route", where, "no route to the backend", $"no entry of cali_v4_routes holds {dst}"));
            return Done(FlowVerdict.Deny, $"{hostPolicy}, but the backend {ConntrackText.HostPort(dst, dport)} has no route in cali_v4_routes: the program drops it (counter: dropped, packets with unknown route)", hostDecision);
        }

        if (dstRoute is not null && dstRoute.Flags.HasFlag(RouteFlags.Local) && dstRoute.Flags.HasFlag(RouteFlags.Workload) && dstRoute.IfIndex is int dIf)
        {
            stages.Add(new("route", where, $"the local workload on {(t.Interfaces.TryGetValue(dIf, out InterfaceState? s) ? s.Name : dstRoute.Interface ?? "?")}", $"{dstRoute.Cidr}: {dstRoute.Description}"));
            (FlowVerdict? stopped, string? reason, PolicyDecision? ingress, string dstName) = IntoLocalWorkload(t, stages, dIf, null, q, dst, dport);
            return stopped is FlowVerdict v2
                ? Done(v2, reason!, ingress)
                : Done(FlowVerdict.Allow, $"{hostPolicy}, and the ingress policy of {dstName} allows it", ingress);
        }

        if (toHost)
        {
            stages.Add(new("route", where, "this host", $"{dstRoute!.Cidr}: {dstRoute.Description}"));
            return Done(FlowVerdict.Allow, $"to this host: {hostPolicy}", hostDecision);
        }

        if (nat && !dstRoute!.Flags.HasFlag(RouteFlags.Local) && !tunnelDevice)
        {
            return NodePortTunnel(t, q, stages, where, entry, dst, dport, dstRoute, hostPolicy, hostDecision, caveat);
        }

        string path = natExcluded ? "excluded from NAT: the host stack takes it" : dstRoute is null ? "no Calico route: the host's routing table takes it" : dstRoute.Description;
        stages.Add(new("route", where, path, dstRoute is null ? $"no entry of cali_v4_routes holds {dst}" : $"{dstRoute.Cidr}: {dstRoute.Description}"));
        return Done(FlowVerdict.Allow, $"{hostPolicy}; it goes to {path}", hostDecision);
    }

    /// <summary>
    /// A node port whose backend is on another node (do_nat, tc.c:768-841): the packet is encapsulated
    /// before DNAT (VXLAN on vxlanPort, VNI 0xca11c0, the client's address kept) to the backend's
    /// node, which looks the node port up again and takes one of its own backends; the reply comes
    /// back through this node (Tunnel) or straight from that node (DSR, unless the client's route
    /// says no-dsr).
    /// </summary>
    private static FlowResult NodePortTunnel(FlowTables t, FlowQuery q, List<FlowStage> stages, string where, InterfaceState entry, IPAddress dst, int dport, Route dstRoute,
        string hostPolicy, PolicyDecision? hostDecision, string caveat)
    {
        (int vxlanPort, _) = t.Settings.Vxlan;
        stages.Add(new("route", where, $"another node: the node-port tunnel to {dstRoute.NextHop}", $"{dstRoute.Cidr}: {dstRoute.Description}; VXLAN to {dstRoute.NextHop}:{vxlanPort} with VNI 0xca11c0, the node port and the client's address kept"));
        Route? clientRoute = t.RouteOf(q.Source);
        bool noDsr = clientRoute is not null && clientRoute.Flags.HasFlag(RouteFlags.NoDsr);
        bool? dsr = noDsr ? false : t.Settings.Dsr;
        stages.Add(new("return", where, dsr switch
            {
                true => "DSR: the backend's node answers the client directly",
                false => "Tunnel: replies come back through this node",
                null => "Tunnel or DSR (bpfExternalServiceMode was not read)",
            },
            noDsr ? $"{q.Source} is in {clientRoute!.Cidr}, marked no-dsr (bpfDSROptoutCIDRs): replies come back through the tunnel and this node answers {q.Source}"
            : dsr switch
            {
                true => $"{t.Settings.ExternalServiceMode}: replies leave {dstRoute.NextHop} with this node's address {q.Destination} as their source, so the network between that node and {q.Source} must let them through (cloud networks check sources: Test-CalicoEbpf's DSR check says where)",
                false => $"{t.Settings.ExternalServiceMode}: {dstRoute.NextHop} sends the replies back through the tunnel and this node answers {q.Source}",
                null => "with Tunnel (Felix's default) replies come back through this node; with DSR the backend's node answers the client directly",
            }));
        string? unreachable = null;
        if (dstRoute.NextHopValue is IPAddress hop && t.Peers?.At(hop, out unreachable) is { } peer)
        {
            return NodePortArrive(t, peer, q, stages, entry.Name, dstRoute, caveat);
        }

        return Result(t, q, FlowVerdict.Unknown, $"{hostPolicy}; the backend's node at {dstRoute.NextHop} NATs it again and decides its ingress policy: {unreachable ?? "ask that node, or run with -Node so that the next node's tables are read too"}" + caveat,
            stages, dst, dport, hostDecision);
    }

    /// <summary>
    /// A host endpoint's policy program on a host or tunnel interface, for one direction ("ingress": from
    /// the network; "egress": out of the node): its debug file (pre-DNAT tiers on the address asked when
    /// <paramref name="preNatAsked"/>, then normal tiers for the host's own traffic or apply-on-forward
    /// tiers for what the node forwards); else no host endpoint covers the interface, when Felix is
    /// known to write debug files (else Unknown). Said: how the reason words it when it lets the flow on.
    /// </summary>
    private static PolicyDecision? HostEndpointPolicy(FlowTables t, List<FlowStage> stages, InterfaceState entry, string where, FlowQuery q, IPAddress dst, int dport, bool toHost,
        out FlowVerdict? stop, out string? why, out string said, string direction = "ingress", bool srcIsHost = false, bool preNatAsked = true)
    {
        stop = null;
        why = null;
        said = string.Empty;
        DebugProgram? hep = t.Program(entry.Name, direction, forHostInterface: true, out _);
        if (hep is null)
        {
            if (t.PolicyDebugWritten is { } proof)
            {
                stages.Add(new("policy", where, "no host endpoint policy", $"no policy debug file for {entry.Name}, and Felix writes them here ({proof}): no host endpoint covers it, so the program allows it without policy"));
                said = $"no host endpoint policy on {entry.Name} stops it";
                return null;
            }

            stages.Add(new("policy", where, "unknown", $"no policy debug file for {entry.Name}: either no host endpoint covers it (allowed without policy) or Felix writes no debug files (bpfPolicyDebugEnabled false)"));
            stop = FlowVerdict.Unknown;
            why = $"the host endpoint policy of {entry.Name} cannot be told: there is no debug file for it, and none for any other interface, so bpfPolicyDebugEnabled may be off (Set-FelixBpfConfig -BpfPolicyDebugEnabled $true)";
            return null;
        }

        if (hep.Error is { Length: > 0 } failed)
        {
            stages.Add(new("policy", where, "unknown", $"Felix recorded an error building this program: {failed}"));
            stop = FlowVerdict.Unknown;
            why = $"the host endpoint policy of {entry.Name} on {t.Node} is not the one in its debug file: Felix recorded an error building it ({failed})";
            return null;
        }

        bool icmp = q.Protocol == IpProtocol.Icmp;
        (IPAddress preNat, int preNatPort) = preNatAsked ? (q.Destination, q.DestinationPort) : (dst, dport);
        var packet = new PolicyPacket((int)q.Protocol, q.Source, q.SourcePort, dst, dport, preNat, icmp ? 0 : preNatPort, srcIsHost, toHost, icmp ? dport : preNatPort);
        PolicyDecision d = PolicyEvaluator.Evaluate(hep.Program, packet, t.IpSets(hep));
        stages.Add(new("policy", where, "host endpoint: " + d.Verdict.ToString().ToLowerInvariant(), Describe(t, d) + (hep.Problems.Count > 0 ? " [" + string.Join("; ", hep.Problems) + "]" : string.Empty)));
        said = $"the host endpoint policy of {entry.Name} allows it";
        if (d.Verdict != PolicyVerdict.Allow)
        {
            stop = d.Verdict == PolicyVerdict.Deny ? FlowVerdict.Deny : FlowVerdict.Unknown;
            why = $"the host endpoint policy of {entry.Name}: {d.Reason}";
        }

        return d;
    }
}
