namespace CalicoBpf.Flow;

/// <summary>
/// A flow to predict: the first packet of a new connection (a SYN for TCP), from Source to
/// Destination. For ICMP, DestinationPort is type | code &lt;&lt; 8. AsNew: conntrack is not consulted
/// (a piped entry asked as a new connection). Interface: the interface the packet arrives on (null:
/// the source workload's own); a host or tunnel interface starts at its from-host-endpoint program.
/// Egress: start at the interface's tc egress hook instead (into a workload, out of a host interface).
/// </summary>
public sealed record FlowQuery(IpProtocol Protocol, IPAddress Source, int SourcePort, IPAddress Destination, int DestinationPort, bool AsNew = false, string? Interface = null,
    bool Egress = false);

/// <summary>The engine's answer: the prediction users see, and the policy decision behind it (null when no policy ran).</summary>
public sealed record FlowResult(FlowPrediction Prediction, PolicyDecision? Policy)
{
    public FlowVerdict Verdict => Prediction.Verdict;
    public string Reason => Prediction.Reason;
    public IReadOnlyList<FlowStage> Stages => Prediction.Stages;
    public IPAddress? Backend => Prediction.BackendAddressValue;
    public int? BackendPort => Prediction.BackendPort;
}

/// <summary>
/// Predicts what Calico's tc programs (felix/bpf-gpl/tc.c at v3.30.7, the stages of
/// /work/reports/issue16-datapath-stages.md) do with a flow's first packet from a local workload,
/// from the node's tables alone: the workload's tc ingress program (from-workload); conntrack
/// (an existing entry is followed, and policy is skipped except for a TCP SYN); the NAT frontend
/// (exact match, longest source range; NodePort's 255.255.255.255 only when the destination is a
/// host; the drop entry of source ranges; no backend; affinity; else one of the backends); the
/// workload RPF check and the destination route (blackhole, host, local or remote workload, none);
/// the workload's egress policy; then, for a local workload destination, its ingress policy, and
/// for one on another node the rest on that node's tables when the run can read them (Arrive). With
/// FlowQuery.Interface a flow starts at a host or tunnel interface instead (FromNetwork: a node port
/// from outside, the node-port tunnel and the return path). Nothing is written, no counter moves, no
/// program runs.
/// </summary>
public static partial class FlowPredictor
{
    public static FlowResult Predict(FlowTables t, FlowQuery q)
    {
        var stages = new List<FlowStage>();
        FlowResult Done(FlowVerdict v, string reason) => Result(t, q, v, reason, stages, null, null, null);

        // 1. Which program sees the packet first: the interface asked for; else the source must be a local workload
        // (its route names its interface), or this host sending to one of its workloads (the workload's tc egress program).
        Route? srcRoute = t.RouteOf(q.Source);
        if (q.Interface is { } asked)
        {
            InterfaceState? at = t.InterfaceByName(asked);
            if (at is null)
            {
                stages.Add(new("interface", asked, "no interface state", $"{t.Node}'s cali_iface has no entry named {asked}"));
                return Done(FlowVerdict.Unknown, $"Calico has no state for an interface {asked} on {t.Node}: it attaches no programs there (Get-BpfInterface lists the ones it manages)");
            }

            if ((at.Flags & (InterfaceStateFlags.NotManaged | InterfaceStateFlags.BondSlave)) != 0)
            {
                stages.Add(new("interface", asked, "no Calico programs", $"cali_iface[{at.IfIndex}] {at.Name}: {string.Join(", ", at.FlagNames)}"));
                return Done(FlowVerdict.Unknown, $"Calico attaches no programs to {at.Name} ({string.Join(", ", at.FlagNames)}): the host stack alone handles its packets{(at.Flags.HasFlag(InterfaceStateFlags.BondSlave) ? "; ask for the bond it belongs to" : string.Empty)}");
            }

            if (q.Egress)
            {
                return at.Flags.HasFlag(InterfaceStateFlags.Workload) ? IntoWorkload(t, q, stages, at, srcRoute) : OutOfNode(t, q, stages, at, srcRoute);
            }

            if (!at.Flags.HasFlag(InterfaceStateFlags.Workload))
            {
                return FromNetwork(t, q, stages, at, srcRoute);
            }

            if (srcRoute?.IfIndex != at.IfIndex)
            {
                stages.Add(new("interface", $"{at.Name} tc ingress (from workload)", "not this workload", srcRoute is null ? $"no route holds {q.Source}" : $"route {srcRoute.Cidr}: {srcRoute.Description}"));
                return Done(FlowVerdict.Deny, $"{q.Source} is not the workload on {at.Name}: its source check (RPF, always strict for workloads) drops a packet from another address (no counter)");
            }
        }

        if (srcRoute is not null && srcRoute.Flags.HasFlag(RouteFlags.Local) && srcRoute.Flags.HasFlag(RouteFlags.Host))
        {
            return FromHost(t, q, stages, srcRoute);
        }

        if (srcRoute is null || !srcRoute.Flags.HasFlag(RouteFlags.Local) || !srcRoute.Flags.HasFlag(RouteFlags.Workload) || srcRoute.IfIndex is not int ifIndex)
        {
            stages.Add(new("interface", "-", "not a local workload", srcRoute is null ? $"no route holds {q.Source}" : $"route {srcRoute.Cidr}: {srcRoute.Description}"));
            return Done(FlowVerdict.Unknown, $"{q.Source} is not a workload on {t.Node} (no local workload route): predictions start at a local workload's interface so far");
        }

        t.Interfaces.TryGetValue(ifIndex, out InterfaceState? srcIf);
        string iface = srcIf?.Name ?? srcRoute.Interface ?? $"ifindex {ifIndex}";
        string where = $"{iface} tc ingress (from workload)";
        // The source's own interface state is Felix's bookkeeping: the attached programs run without it
        // (Calico's programs on tests/fixtures/realcalico's veths have none). It is evidence only.
        stages.Add(srcIf is null
            ? new("interface", where, "no interface state", $"cali_iface has no entry for ifindex {ifIndex} (predicted as if Calico's programs are attached; Get-BpfInterface shows the attachments)")
            : new("interface", where, srcIf.Flags.HasFlag(InterfaceStateFlags.V4Ready) ? "ready" : "not ready",
                $"cali_iface[{ifIndex}] {srcIf.Name}: {string.Join(", ", srcIf.FlagNames)}; policy programs ingress {srcIf.IngressPolicyV4?.ToString(CultureInfo.InvariantCulture) ?? "-"}, egress {srcIf.EgressPolicyV4?.ToString(CultureInfo.InvariantCulture) ?? "-"}" + Logging(t)));

        // 2. Conntrack (conntrack.h calico_ct_lookup at v3.30.7): a NatForward entry leads to its tracking
        // (NatReverse) entry, and without one the flow is new; the from-workload program needs the client's
        // own leg approved, else UDP and others are new again and TCP is INVALID; a SYN on an entry whose
        // two legs saw FIN or RST recycles it. Piped entries are asked as new connections.
        IPAddress dst = q.Destination;
        int dport = q.DestinationPort;
        bool established = false;
        bool tcp = q.Protocol == IpProtocol.Tcp;
        int sport = q.Protocol == IpProtocol.Icmp ? 0 : q.SourcePort;
        ConntrackEntry? ct = Lookup(t, q, q.Destination, q.DestinationPort);
        string viaConnect = string.Empty;
        if (ct is null && !q.AsNew && t.Settings.ConnectTimeFor(q.Protocol) == true)
        {
            // Under the connect-time load balancer a service connection's entry is a plain one to the backend the socket
            // was connected to (connect.h at v3.30.7): the tc program never saw the service address.
            foreach (NatBackend b in t.FrontendsOf(q.Destination, q.DestinationPort, q.Protocol).Where(f => !f.IsDropEntry).SelectMany(f => f.Backends).Where(b => b.AddressValue is not null))
            {
                if (Lookup(t, q, b.AddressValue!, b.Port) is { } byBackend)
                {
                    ct = byBackend;
                    dst = b.AddressValue!;
                    dport = b.Port;
                    viaConnect = $" (the connect-time load balancer connected the socket to {ConntrackText.HostPort(dst, dport)}: {t.Settings.ConnectTimeLoadBalancing})";
                    break;
                }
            }
        }

        ConntrackEntry? tracking = ct;
        if (ct is { Type: ConntrackType.NatForward, ReverseKey: { } rk })
        {
            tracking = t.Conntrack(rk.Protocol, rk.AddressAValue, rk.PortA, rk.AddressBValue, rk.PortB);
        }

        if (ct is null)
        {
            (string Note, bool Full)? room = ConntrackRoom(t);
            stages.Add(new("conntrack", where, room is { Full: true } ? "new flow, table full" : "new flow", (q.AsNew ? "asked as a new connection (conntrack is not consulted)" : $"no entry for {Tuple(q)}") + room?.Note));
        }
        else if (tracking is null)
        {
            stages.Add(new("conntrack", where, "new flow", $"NatForward {ct.Key} has no tracking entry {ct.ReverseKey}: the program treats the flow as new"));
            ct = null;
        }
        else
        {
            bool fromOpener = tracking.SourceAddressValue.Equals(q.Source);
            ConntrackLeg mine = fromOpener ? tracking.Forward : tracking.Reverse;
            bool recycled = tcp && (tracking.Forward.FinSeen || tracking.Forward.RstSeen) && (tracking.Reverse.FinSeen || tracking.Reverse.RstSeen);
            string entry = ct.Type == ConntrackType.NatForward ? $"NatForward {ct.Key} with tracking entry {tracking.Key}" : $"{ct.Type} {ct.Key}";
            if (recycled)
            {
                stages.Add(new("conntrack", where, "new flow", $"{entry}: both sides saw FIN or RST, so a SYN recycles the entry"));
                ct = null;
                (dst, dport) = (q.Destination, q.DestinationPort);
            }
            else if (!mine.Approved)
            {
                if (tcp)
                {
                    stages.Add(new("conntrack", where, "INVALID", $"{entry}: the client's side is not approved (a TCP packet is INVALID: policy runs for the SYN, then the packet is dropped)"));
                    return Done(FlowVerdict.Deny, $"conntrack has {entry} with the client's side not approved: the program drops the packet after policy (INVALID, no counter)");
                }

                stages.Add(new("conntrack", where, "new flow", $"{entry}: the client's side is not approved, so NAT and policy run again"));
                ct = null;
                (dst, dport) = (q.Destination, q.DestinationPort);
            }
            else
            {
                if (ct.Type == ConntrackType.NatForward)
                {
                    (IPAddress backend, int bport) = ct.ReverseKey!.Other(q.Source, ct.NatSourcePort ?? sport);
                    dst = backend;
                    dport = bport;
                }

                established = !tcp;
                string decision = (established ? "established" : "existing entry: a SYN still goes through policy") + (ct.Type == ConntrackType.NatForward ? ", DNAT from conntrack" : string.Empty);
                stages.Add(new("conntrack", where, decision,
                    $"{entry}{(ct.Type == ConntrackType.NatForward ? $" -> backend {ConntrackText.HostPort(dst, dport)}" : string.Empty)}, state {tracking.State}, client side approved{viaConnect}"));
            }
        }

        // 3. NAT, for a new flow.
        bool natExcluded = false;
        if (ct is null)
        {
            NatFrontend? fe = Frontend(t, q.Protocol, q.Source, dst, dport, out string lookup);
            // With the connect-time load balancer on for the protocol (bpfConnectTimeLoadBalancing, TCP by default)
            // the pod's cgroup connect program makes the same lookup when the socket connects, and the tc program
            // then sees the backend already (connect.h do_nat_common at v3.30.7; its own lookup misses).
            string natWhere = where;
            string ctlbNote = string.Empty;
            // connect() looks the service up with source 0.0.0.0 (connect.h:26-29): a service with source ranges hits its
            // drop entry there and the socket is left alone, so the tc program does that NAT (or drop) itself.
            bool atConnect = fe is not null && !fe.IsDropEntry && fe.SourceCidr is null && t.Settings.ConnectTimeFor(q.Protocol) == true
                && Frontend(t, q.Protocol, IPAddress.Any, dst, dport, out _) is { IsDropEntry: false };
            if (atConnect)
            {
                natWhere = "connect() (connect-time load balancer)";
                ctlbNote = $"; {t.Settings.ConnectTimeLoadBalancing}: the socket is connected to the backend, so {where} sees the backend, not the service";
            }

            ctlbNote += KubeProxyNote(t);
            FlowStage Nat(string decision, string evidence) => new("NAT", natWhere, decision, evidence + ctlbNote);

            if (fe is null)
            {
                stages.Add(new("NAT", where, "no service", lookup));
            }
            else if (fe.IsDropEntry)
            {
                stages.Add(Nat("drop: source outside the service's ranges", $"{fe} ({lookup})"));
                return Done(FlowVerdict.Deny, $"{fe.Frontend} takes only its loadBalancerSourceRanges; {q.Source} is outside them (counter: dropped, unauthorised source)");
            }
            else if (fe.Flags.HasFlag(NatFrontendFlags.NatExclude))
            {
                stages.Add(Nat("excluded from NAT", $"{fe} ({lookup})"));
                natExcluded = true;
            }
            else
            {
                int count = fe.Flags.HasFlag(NatFrontendFlags.InternalLocal) ? fe.LocalBackendCount : fe.BackendCount;
                if (count == 0)
                {
                    stages.Add(Nat("no backend", $"{Via(lookup)}{fe}{(count != fe.BackendCount ? " (internalTrafficPolicy Local: local backends only)" : string.Empty)}"));
                    return Done(FlowVerdict.Deny, $"service {fe.Frontend} (id {fe.ServiceId}) has no backend{(count != fe.BackendCount ? " on this node" : string.Empty)}: " +
                        (atConnect ? "connect() fails with EPERM (connect.h:31-35) and no packet is sent" : "the program answers ICMP port unreachable"));
                }

                List<NatBackend> candidates = fe.Backends.Where(b => b.Ordinal < count).ToList();
                NatAffinity? aff = fe.AffinityTimeoutValue > TimeSpan.Zero
                    // At connect() the affinity entry is keyed by client 0.0.0.0 (nat_lookup.h:162 with connect.h's source).
                    ? t.Affinity.FirstOrDefault(a => a.ServiceAddressValue.Equals(dst) && a.ServicePort == dport && a.Protocol == q.Protocol && a.ClientAddressValue.Equals(atConnect ? IPAddress.Any : q.Source) && a.AgeValue <= fe.AffinityTimeoutValue)
                    : null;
                if (aff is not null)
                {
                    stages.Add(Nat("DNAT by affinity", $"{Via(lookup)}{fe}; affinity {aff.ClientAddress} -> {aff.Backend}, refreshed {aff.LastRefreshed:u}"));
                    dst = aff.BackendAddressValue;
                    dport = aff.BackendPort;
                }
                else if (candidates.Count == 1 || candidates.Select(b => (b.AddressValue, b.Port)).Distinct().Count() == 1)
                {
                    NatBackend only = candidates[0];
                    if (only.AddressValue is null)
                    {
                        stages.Add(Nat("missing backend", $"{Via(lookup)}{fe}: ordinal {only.Ordinal} has no cali_v4_nat_be entry"));
                        return Done(FlowVerdict.Deny, $"service {fe.Frontend} counts a backend the backend map does not have (no backend: ICMP port unreachable)");
                    }

                    stages.Add(Nat("DNAT", $"{Via(lookup)}{fe} -> {ConntrackText.HostPort(only.AddressValue, only.Port)} (ordinal {only.Ordinal})"));
                    dst = only.AddressValue;
                    dport = only.Port;
                }
                else
                {
                    int missing = candidates.Count(b => b.AddressValue is null);
                    stages.Add(Nat($"DNAT to one of {count}", $"{Via(lookup)}{fe}: {string.Join(", ", candidates.Select(b => b.AddressValue is null ? $"#{b.Ordinal} missing" : ConntrackText.HostPort(b.AddressValue, b.Port)))}" +
                        (missing > 0 ? $"; {missing} of {count} missing: those packets get ICMP port unreachable" : string.Empty)));
                    return Predictions(t, q, stages, where, iface, ifIndex, srcRoute, fe, candidates);
                }
            }
        }

        return AfterNat(t, q, stages, where, iface, ifIndex, srcRoute, dst, dport, established, natExcluded);
    }

    /// <summary>
    /// This host to one of its workloads: the workload's tc egress program (to-workload) sees the
    /// packet; conntrack as for any flow; then "Host to workload traffic always allowed" skips policy
    /// (tc.c, CALI_F_TO_WEP with a local-host source, not seen by another program). Elsewhere from the
    /// host is not predicted yet.
    /// </summary>
    private static FlowResult FromHost(FlowTables t, FlowQuery q, List<FlowStage> stages, Route srcRoute)
    {
        FlowResult Done(FlowVerdict v, string reason) => Result(t, q, v, reason, stages, null, null, null);
        Route? dstRoute = t.RouteOf(q.Destination);
        if (dstRoute is null || !dstRoute.Flags.HasFlag(RouteFlags.Local) || !dstRoute.Flags.HasFlag(RouteFlags.Workload) || dstRoute.IfIndex is not int dIf)
        {
            stages.Add(new("interface", "-", "from this host", $"{srcRoute.Cidr}: {srcRoute.Description}"));
            return Done(FlowVerdict.Unknown, $"{q.Source} is this host and {q.Destination} is not one of its workloads: flows from the host to elsewhere (its host endpoints' programs) are not predicted yet");
        }

        t.Interfaces.TryGetValue(dIf, out InterfaceState? dstIf);
        string where = $"{dstIf?.Name ?? dstRoute.Interface ?? "ifindex " + dIf} tc egress (to workload)";
        stages.Add(dstIf is null
            ? new("interface", where, "no interface state", $"cali_iface has no entry for ifindex {dIf} (predicted as if Calico's programs are attached)")
            : new("interface", where, dstIf.Flags.HasFlag(InterfaceStateFlags.V4Ready) ? "ready" : "not ready", $"cali_iface[{dIf}] {dstIf.Name}: {string.Join(", ", dstIf.FlagNames)}"));
        ConntrackEntry? ct = Lookup(t, q, q.Destination, q.DestinationPort);
        stages.Add(ct is null
            ? new("conntrack", where, "new flow", $"no entry for {Tuple(q)}")
            : new("conntrack", where, "existing entry", $"{ct.Type} {ct.Key}, state {ct.State}"));
        stages.Add(new("route", where, "from this host to its workload", $"{srcRoute.Cidr}: {srcRoute.Description}; {dstRoute.Cidr}: {dstRoute.Description}"));
        stages.Add(new("policy", where, "skipped", "traffic from the host to its own workloads is always allowed (tc.c: \"Packet is from the host: ACCEPT\")"));
        return Done(FlowVerdict.Allow, $"traffic from this host to its workload on {dstIf?.Name ?? "ifindex " + dIf} is always allowed, without policy");
    }

    /// <summary>With several backends the program picks one at random: each is predicted, and the verdict is theirs if they agree.</summary>
    private static FlowResult Predictions(FlowTables t, FlowQuery q, List<FlowStage> stages, string where, string iface, int ifIndex, Route srcRoute, NatFrontend fe, List<NatBackend> candidates)
    {
        var results = candidates.Where(b => b.AddressValue is not null)
            .Select(b => (Backend: b, Result: AfterNat(t, q, new List<FlowStage>(stages), where, iface, ifIndex, srcRoute, b.AddressValue!, b.Port, false)))
            .ToList();
        return Combine(t, q, stages, fe, results, candidates.Any(b => b.AddressValue is null));
    }

    /// <summary>Each backend's prediction after the common stages: the verdict is theirs if they agree, else Unknown with each.</summary>
    private static FlowResult Combine(FlowTables t, FlowQuery q, List<FlowStage> stages, NatFrontend fe, List<(NatBackend Backend, FlowResult Result)> results, bool anyMissing)
    {
        var verdicts = results.Select(r => r.Result.Verdict).Distinct().ToList();
        // Every node a backend's flow went through, the source's first.
        var path = results.SelectMany(r => r.Result.Prediction.Path).Distinct(StringComparer.Ordinal).ToList();
        FlowResult first = results[0].Result;

        // Every backend's own stages after NAT, each marked with its backend.
        var all = new List<FlowStage>(stages);
        foreach ((NatBackend b, FlowResult r) in results)
        {
            string mark = $" [backend {ConntrackText.HostPort(b.AddressValue!, b.Port)}]";
            all.AddRange(r.Prediction.Stages.Skip(stages.Count).Select(x => x with { Where = x.Where + mark }));
        }

        if (verdicts.Count == 1 && !anyMissing)
        {
            // One deciding rule only when every backend's decision came from the same rule.
            bool sameRule = results.Select(r => r.Result.Policy?.DecidedBy?.MatchId).Distinct().Count() == 1;
            // The hit count is that of the node whose rule decided.
            return Result(t, q, first.Verdict, $"every backend of {fe.Frontend} gets {first.Verdict}: {first.Reason}", all, null, null, sameRule ? first.Policy : null, path: path,
                hits: sameRule ? first.Prediction.RuleHitCount : null);
        }

        string each = string.Join("; ", results.Select(r => $"{ConntrackText.HostPort(r.Backend.AddressValue!, r.Backend.Port)}: {r.Result.Verdict} ({r.Result.Reason})"));
        return Result(t, q, FlowVerdict.Unknown, $"it depends on the backend the program picks at random: {each}{(anyMissing ? "; a missing backend: ICMP port unreachable" : string.Empty)}",
            all, null, null, null, path: path);
    }

    private static FlowResult AfterNat(FlowTables t, FlowQuery q, List<FlowStage> stages, string where, string iface, int ifIndex, Route srcRoute, IPAddress dst, int dport, bool established, bool natExcluded = false)
    {
        bool nat = !(dst.Equals(q.Destination) && dport == q.DestinationPort);
        FlowResult Done(FlowVerdict v, string reason, PolicyDecision? pol = null) => Result(t, q, v, reason, stages, nat ? dst : null, nat ? dport : null, pol);

        if (established)
        {
            // An established flow skips policy and the route checks (tc.c: skip_policy before the route lookup).
            return Done(FlowVerdict.Allow, "an established flow: conntrack lets it through without policy");
        }

        // 4. Routes: the workload RPF check (strict, against the route map), then the destination's route.
        stages.Add(new("route", where, "source check passed", $"{srcRoute.Cidr}: {srcRoute.Description} (ifindex {ifIndex}, the interface the packet came in on)"));
        // A NAT-excluded destination gets no route lookup: the host stack routes it (tc.c: SKIP_FIB | NAT_EXCLUDE).
        Route? dstRoute = natExcluded ? null : t.RouteOf(dst);
        bool toHost = dstRoute is not null && dstRoute.Flags.HasFlag(RouteFlags.Local) && dstRoute.Flags.HasFlag(RouteFlags.Host);
        bool toLocalWorkload = dstRoute is not null && dstRoute.Flags.HasFlag(RouteFlags.Local) && dstRoute.Flags.HasFlag(RouteFlags.Workload);
        if (dstRoute is not null && (dstRoute.Flags.HasFlag(RouteFlags.BlackholeDrop) || dstRoute.Flags.HasFlag(RouteFlags.BlackholeReject)))
        {
            stages.Add(new("route", where, "blackhole", $"{dstRoute.Cidr}: {dstRoute.Description}"));
            return Done(FlowVerdict.Deny, $"{dst} is in a blackhole route ({dstRoute.Cidr}; counter: dropped, black-holed)");
        }

        string path = natExcluded ? "excluded from NAT: no route lookup, the host stack takes it"
            : dstRoute is null ? "no Calico route: the host's routing table takes it (FIB)"
            : toHost ? "this host"
            : toLocalWorkload ? $"the local workload on {(dstRoute.IfIndex is int di && t.Interfaces.TryGetValue(di, out InterfaceState? s) ? s.Name : dstRoute.Interface ?? "?")}"
            : dstRoute.Flags.HasFlag(RouteFlags.Workload) ? $"a workload on another node, next hop {dstRoute.NextHop}{(dstRoute.Flags.HasFlag(RouteFlags.Tunneled) ? ", tunnelled" : string.Empty)}"
            : dstRoute.Flags.HasFlag(RouteFlags.Host) ? $"another Calico host{(dstRoute.NextHop is { } nh ? ", next hop " + nh : string.Empty)}"
            : dstRoute.Description;
        bool natOutgoing = srcRoute.Flags.HasFlag(RouteFlags.NatOut) && (dstRoute is null || (!dstRoute.Flags.HasFlag(RouteFlags.InPool) && !toHost));
        stages.Add(new("route", where, path + (natOutgoing ? "; NAT outgoing (iptables masquerades it)" : string.Empty),
            (dstRoute is null ? $"no entry of cali_v4_routes holds {dst}" : $"{dstRoute.Cidr}: {dstRoute.Description}") + Overlay(t, dstRoute, dst)));

        // 5. The source workload's egress policy (the from-workload hook runs the policy of direction egress).
        PolicyDecision? egress = Policy(t, stages, iface, "egress", where, q, dst, dport, preNat: true, toHost, srcIsHost: false, out FlowVerdict? stop, out string? why);
        if (stop is FlowVerdict v)
        {
            return Done(v, why!, egress);
        }

        // Allowed: the program creates the flow's conntrack entry now (tc.c calico_tc_skb_new_flow), which a full table refuses.
        if (TableFull(t) is { } full)
        {
            stages.Add(new("conntrack", where, "cannot create the entry", full));
            return Done(FlowVerdict.Deny, full, egress);
        }

        // 6. A local workload destination: its tc egress program runs its ingress policy.
        if (toLocalWorkload && dstRoute!.IfIndex is int dIf)
        {
            (FlowVerdict? stopped, string? reason, PolicyDecision? ingress, string dstName) = IntoLocalWorkload(t, stages, dIf, null, q, dst, dport);
            return stopped is FlowVerdict v2
                ? Done(v2, reason!, ingress)
                : Done(FlowVerdict.Allow, $"the egress policy of {iface} and the ingress policy of {dstName} allow it", ingress);
        }

        if (toHost)
        {
            // tc.c calico_tc_skb_new_flow: "Workload to host traffic blocked by DefaultEndpointToHostAction: DROP",
            // after policy allowed it. The setting is compiled into the program (a host_drop object), in no map.
            FlowSetting? setting = t.Settings.EndpointToHostAction;
            switch (t.Settings.ToHost)
            {
                case "drop":
                    stages.Add(new("host", where, "drop", $"{setting}: the from-workload program drops traffic to this host after policy allowed it (tc.c: \"Workload to host traffic blocked by DefaultEndpointToHostAction: DROP\")"));
                    return Done(FlowVerdict.Deny, $"the egress policy of {iface} allows it, but it goes to this host and defaultEndpointToHostAction is Drop ({setting!.Source}): Set-FelixBpfConfig -DefaultEndpointToHostAction Accept (or Return) lets it in; in eBPF mode no host endpoint policy can", egress);
                case "accept":
                    stages.Add(new("host", where, "accept", $"{setting}: the host accepts traffic from its workloads that their egress policy allowed"));
                    return Done(FlowVerdict.Allow, $"the egress policy of {iface} allows it, and defaultEndpointToHostAction Accept ({setting!.Source}) lets it into this host", egress);
                case "return":
                    stages.Add(new("host", where, "return to the host's iptables", $"{setting}: the packet goes on to the host's iptables INPUT chain"));
                    return Done(FlowVerdict.Allow, $"the egress policy of {iface} allows it, and defaultEndpointToHostAction Return ({setting!.Source}) hands it to this host's iptables INPUT chain, which lets it in unless a rule of the host's own drops it", egress);
                default:
                    return Done(FlowVerdict.Unknown, $"the egress policy of {iface} allows it, and it goes to this host: Felix's defaultEndpointToHostAction decides (Drop, Felix's default, drops it after policy; Accept or Return let it in). It is compiled into the program, not in any map: Test-BpfFlow -Node NAME reads it from the cluster (Get-FelixBpfConfig -Effective -Node NAME -Field defaultEndpointToHostAction)", egress);
            }
        }

        if (dstRoute is not null && dstRoute.Flags.HasFlag(RouteFlags.Workload) && !toLocalWorkload)
        {
            // The destination's ingress policy runs on its own node (its tc egress program): that node's tables
            // decide, when this run can read them (remotely: the cluster node with the next hop's address).
            // It leaves by the node's uplink, whose host endpoint egress policy (apply-on-forward tiers) runs too.
            (FlowVerdict? left, string? leftWhy, PolicyDecision? leftBy) = LeaveBy(t, stages, q, dst, dport, dstRoute);
            if (left is FlowVerdict lv)
            {
                return Done(lv, leftWhy!, leftBy);
            }

            string? unreachable = null;
            if (dstRoute.NextHopValue is IPAddress hop && t.Peers?.At(hop, out unreachable) is { } peer)
            {
                return Arrive(t, peer, q, stages, iface, dst, dport, dstRoute, nat);
            }

            return Done(FlowVerdict.Unknown, $"the egress policy of {iface} allows it out of {t.Node}; the destination's ingress policy is decided on the node at {dstRoute.NextHop}: {unreachable ?? "ask that node (Test-BpfFlow -Node NAME), or run with -Node so that the next node's tables are read too"}", egress);
        }

        return Done(FlowVerdict.Allow, $"the egress policy of {iface} allows it; it goes to {path}", egress);
    }

    /// <param name="preNat">The program saw the packet before NAT (the client's own program): its pre-DNAT destination is the one asked; else the packet already carries <paramref name="dst"/>.</param>
    private static PolicyDecision? Policy(FlowTables t, List<FlowStage> stages, string iface, string direction, string where, FlowQuery q, IPAddress dst, int dport, bool preNat, bool toHost, bool srcIsHost,
        out FlowVerdict? stop, out string? why)
    {
        stop = null;
        why = null;
        DebugProgram? program = t.Program(iface, direction, forHostInterface: false, out string? missing);
        if (program is null)
        {
            stages.Add(new("policy", where, "unknown", missing!));
            stop = FlowVerdict.Unknown;
            why = $"the {direction} policy of {iface} cannot be read: {missing}";
            return null;
        }

        if (program.Error is { Length: > 0 } failed)
        {
            // Felix writes the file even when it could not build or attach the program: it is not the one running.
            stages.Add(new("policy", where, "unknown", $"Felix recorded an error building this program: {failed}"));
            stop = FlowVerdict.Unknown;
            why = $"the {direction} policy of {iface} is not the one in its debug file: Felix recorded an error building it ({failed}); calico-node's log says more";
            return null;
        }

        int proto = (int)q.Protocol;
        bool icmp = q.Protocol == IpProtocol.Icmp;
        var packet = new PolicyPacket(proto, q.Source, q.SourcePort, dst, dport, preNat ? q.Destination : dst, icmp ? 0 : preNat ? q.DestinationPort : dport, srcIsHost, toHost, icmp ? dport : preNat ? q.DestinationPort : dport);
        PolicyDecision d = PolicyEvaluator.Evaluate(program.Program, packet, t.IpSets(program));
        stages.Add(new("policy", where, d.Verdict.ToString().ToLowerInvariant(), Describe(t, d) + (program.Problems.Count > 0 ? " [" + string.Join("; ", program.Problems) + "]" : string.Empty)));
        if (d.Verdict != PolicyVerdict.Allow)
        {
            stop = d.Verdict == PolicyVerdict.Deny ? FlowVerdict.Deny : FlowVerdict.Unknown;
            why = $"the {direction} policy of {iface}: {d.Reason}";
        }

        return d;
    }

    /// <summary>Which overlay carries a tunnelled route, from the IP pool that holds the address (remote mode reads the pools).</summary>
    private static string Overlay(FlowTables t, Route? route, IPAddress dst)
    {
        if (route is null || !route.Flags.HasFlag(RouteFlags.Tunneled) || t.Settings.PoolOf(dst) is not { } pool)
        {
            return string.Empty;
        }

        if (route.Flags.HasFlag(RouteFlags.SameSubnet) && (pool.IpipMode == "CrossSubnet" || pool.VxlanMode == "CrossSubnet"))
        {
            return $"; IP pool {pool.Name} ({pool.Cidr}) is CrossSubnet and the next hop is in this node's subnet: not encapsulated";
        }

        if (pool.IpipMode != "Never")
        {
            // datapath-facts-v3307.md 8: with IPIP the program leaves it to the host stack, which encapsulates through tunl0.
            return $"; IP pool {pool.Name} ({pool.Cidr}) has ipipMode {pool.IpipMode}: the host stack encapsulates it through tunl0 (with IPIP on, v3.30 programs are built without FIB forwarding; the troubleshooting guide recommends VXLAN in eBPF mode: Test-CalicoEbpf's overlay check)";
        }

        return pool.VxlanMode != "Never" ? $"; IP pool {pool.Name} ({pool.Cidr}) has vxlanMode {pool.VxlanMode}: VXLAN through vxlan.calico" : string.Empty;
    }

    /// <summary>The guide's kube-proxy conflict, on a service's NAT stage: kube-proxy runs while Felix deletes its rules.</summary>
    private static string KubeProxyNote(FlowTables t) => t.Settings.KubeProxyFights
        ? $"; kube-proxy runs too ({t.Settings.KubeProxy!.Source}) while Felix deletes its iptables rules ({t.Settings.KubeProxyCleanup}): they fight over service rules (high CPU, churning rules); the programs' NAT above is what serves the service in eBPF mode (Test-CalicoEbpf -Check kube-proxy-conflict says how to stop it)"
        : string.Empty;

    /// <summary>bpfLogLevel Debug, on the stage where a packet enters: the programs log it.</summary>
    private static string Logging(FlowTables t) => t.Settings.DebugLogging
        ? $"; {t.Settings.LogLevel}: the programs log this flow's packets to the trace buffer (Get-BpfTraceLog -Node {t.Node} shows them), a cost every packet pays"
        : string.Empty;

    /// <summary>
    /// A new flow needs a conntrack entry: in a full table the program cannot create it and drops the
    /// packet (conntrack.h, CALI_REASON_CT_CREATE_FAILED). Null when the table has room (below 90 %);
    /// else what to add to the conntrack stage, and whether the table is full.
    /// </summary>
    private static (string Note, bool Full)? ConntrackRoom(FlowTables t)
    {
        if (t.ConntrackFill is not { MaxEntries: > 0 } f || f.Percent < 90)
        {
            return null;
        }

        bool full = f.Entries >= f.MaxEntries;
        return ($"; {f.Map} holds {f.Entries} of {f.MaxEntries} entries ({f.Percent:0} %): {(full ? "it is full, so" : "when it is full")} the program cannot create this flow's entry and drops the packet (counter: failed to create conntrack); bpfMapSizeConntrack sets its size, and Felix doubles it when full with bpfMapSizeConntrackScaling DoubleIfFull (the default)", full);
    }

    /// <summary>Why a flow that policy allowed is still dropped: its conntrack entry cannot be created in a full table (null: there is room, or the fill is not known).</summary>
    private static string? TableFull(FlowTables t) => t.ConntrackFill is { MaxEntries: > 0 } f && f.Entries >= f.MaxEntries
        ? $"conntrack is full on {t.Node} ({f.Map}, {f.Entries} of {f.MaxEntries} entries): the flow's entry cannot be created, so the program drops it (counter: failed to create conntrack); raise bpfMapSizeConntrack"
        : null;

    /// <summary>A flow's conntrack entry with Calico's key for it (ICMP has ports 0 and 0); none for a flow asked as new.</summary>
    private static ConntrackEntry? Lookup(FlowTables t, FlowQuery q, IPAddress dst, int dport) =>
        q.AsNew ? null : t.Conntrack(q.Protocol, q.Source, q.Protocol == IpProtocol.Icmp ? 0 : q.SourcePort, dst, q.Protocol == IpProtocol.Icmp ? 0 : dport);

    /// <summary>
    /// A local workload's to-workload program (tc egress of its interface): the interface must be ready
    /// in Calico, then the workload's ingress policy runs on the packet as it arrives (already carrying
    /// the backend, its pre-DNAT destination). <paramref name="node"/> names the node when it is not the
    /// flow's first. Stop is the verdict when the flow ends here; Name is the interface's.
    /// </summary>
    private static (FlowVerdict? Stop, string? Why, PolicyDecision? Ingress, string Name) IntoLocalWorkload(FlowTables t, List<FlowStage> stages, int ifIndex, string? node,
        FlowQuery q, IPAddress dst, int dport)
    {
        t.Interfaces.TryGetValue(ifIndex, out InterfaceState? dstIf);
        string dstWhere = $"{(node is null ? string.Empty : node + ": ")}{dstIf?.Name ?? "ifindex " + ifIndex} tc egress (to workload)";
        if (dstIf is null || !dstIf.Flags.HasFlag(InterfaceStateFlags.V4Ready))
        {
            stages.Add(new("interface", dstWhere, "not ready", dstIf is null ? $"cali_iface has no entry for ifindex {ifIndex}" : $"cali_iface[{ifIndex}] {dstIf.Name}: {string.Join(", ", dstIf.FlagNames)}"));
            return (FlowVerdict.Deny, $"the destination workload's interface{(node is null ? string.Empty : " on " + node)} is not ready in Calico: a new flow to it is dropped (no counter)", null, dstIf?.Name ?? string.Empty);
        }

        stages.Add(new("interface", dstWhere, "ready", $"cali_iface[{ifIndex}] {dstIf.Name}: {string.Join(", ", dstIf.FlagNames)}"));
        PolicyDecision? ingress = Policy(t, stages, dstIf.Name, "ingress", dstWhere, q, dst, dport, preNat: false, toHost: false, srcIsHost: false, out FlowVerdict? stop, out string? why);
        return stop is FlowVerdict v ? (v, node is null ? why : $"on {node}, {why}", ingress, dstIf.Name) : (null, null, ingress, dstIf.Name);
    }

    /// <summary>The rule that decided, with its match id and hit count, or why no rule did.</summary>
    private static string Describe(FlowTables t, PolicyDecision d) => d.DecidedBy is { } r
        ? r.Policy.Length > 0
            ? $"{(r.Tier.Length > 0 ? "tier " + r.Tier + ", policy " + r.Policy : r.Policy.TrimEnd('s') + " (the debug file merges every profile into one list, unnamed)")}, rule {r.Index}, {r.Action}{(r.MatchId is ulong id ? $", match id {id}, hits {(t.Hits(id) is ulong h ? h.ToString(CultureInfo.InvariantCulture) : "unknown (no rule counter map)")}" : string.Empty)}: {r.Rule}"
            : r.Why
        : d.Reason;

    /// <summary>calico_nat_lookup: the exact frontend with the longest source range holding the source; else, for a host destination, NodePort's 255.255.255.255.</summary>
    private static NatFrontend? Frontend(FlowTables t, IpProtocol protocol, IPAddress src, IPAddress dst, int port, out string lookup)
    {
        NatFrontend? Best(IPAddress address) => t.FrontendsOf(address, port, protocol)
            .Select(f => (Frontend: f, Range: f.SourceCidr is null ? null : Maps.AddressPrefix.Parse(f.SourceCidr)))
            .Where(x => x.Range is null || x.Range.Matches(src))
            .OrderByDescending(x => x.Range?.PrefixLength ?? 0)
            .Select(x => x.Frontend)
            .FirstOrDefault();

        NatFrontend? exact = Best(dst);
        if (exact is not null)
        {
            lookup = $"frontend {exact.Frontend}/{protocol}{(exact.SourceCidr is null ? string.Empty : " for sources in " + exact.SourceCidr)}";
            return exact;
        }

        Route? r = t.RouteOf(dst);
        if (r is not null && r.Flags.HasFlag(RouteFlags.Host))
        {
            NatFrontend? np = Best(IPAddress.Broadcast);
            if (np is not null)
            {
                lookup = $"no frontend {ConntrackText.HostPort(dst, port)}; {dst} is a host, so the NodePort entry 255.255.255.255:{port} applies";
                return np;
            }
        }

        lookup = $"no frontend {ConntrackText.HostPort(dst, port)}/{protocol}{(r is not null && r.Flags.HasFlag(RouteFlags.Host) ? " and no NodePort " + port : string.Empty)}";
        return null;
    }

    /// <param name="t">The node whose policy decided (its rule counters give the hit count).</param>
    /// <param name="origin">The node the flow started on, when <paramref name="t"/> is the destination's node.</param>
    private static FlowResult Result(FlowTables t, FlowQuery q, FlowVerdict verdict, string reason, List<FlowStage> stages, IPAddress? backend, int? backendPort, PolicyDecision? policy,
        FlowTables? origin = null, IEnumerable<string>? path = null, ulong? hits = null)
    {
        ulong? id = policy?.DecidedBy?.MatchId;
        return new FlowResult(
            new FlowPrediction
            {
                Node = (origin ?? t).Node,
                Path = new ValueList<string>(path ?? (origin is null ? new[] { t.Node } : new[] { origin.Node, t.Node }), " -> "),
                Protocol = q.Protocol,
                SourceAddressValue = q.Source,
                SourcePort = q.SourcePort,
                DestinationAddressValue = q.Destination,
                DestinationPort = q.DestinationPort,
                Verdict = verdict,
                Reason = reason,
                BackendAddressValue = backend,
                BackendPort = backendPort,
                RuleMatchId = id,
                RuleHitCount = hits ?? t.Hits(id),
                Stages = new ValueList<FlowStage>(stages, "; "),
                DropCounter = verdict == FlowVerdict.Deny ? DropCounter(t, stages) : null,
            },
            policy);
    }

    /// <summary>
    /// The counter a denied flow moves, from the stage that denied it (reasons.h and the programs'
    /// deny_reason calls at v3.30.7): a policy deny counts DroppedByPolicy on that program's interface
    /// and hook, a blackhole DroppedBlackholeRoute, a source outside loadBalancerSourceRanges
    /// DroppedUnauthSource, a backend without a route DroppedUnknownRoute, a full conntrack table
    /// ConntrackCreateFailed; with its value now (cali_counters, read once per node on first use).
    /// Null for drops that count nothing (INVALID, a workload interface not ready, the host_drop
    /// program's drop) or answer with ICMP (no backend).
    /// </summary>
    private static string? DropCounter(FlowTables t, List<FlowStage> stages)
    {
        if (stages.Count == 0)
        {
            return null;
        }

        FlowStage last = stages[^1];
        string? id = (last.Stage, last.Decision) switch
        {
            ("policy", "deny" or "host endpoint: deny") => "DroppedByPolicy",
            ("route", "blackhole") => "DroppedBlackholeRoute",
            ("route", "no route to the backend") => "DroppedUnknownRoute",
            ("conntrack", "cannot create the entry") => "ConntrackCreateFailed",
            ("NAT", var d) when d.StartsWith("drop: ", StringComparison.Ordinal) => "DroppedUnauthSource",
            ("NAT", "Maglev: no backend") => "DroppedMaglevNoBackend",
            _ => null,
        };
        Match m = Regex.Match(last.Where, @"^(?:(?<node>[^:]+): )?(?<iface>\S+) tc (?<hook>ingress|egress) ");
        if (id is null || !m.Success || (m.Groups["node"].Success && m.Groups["node"].Value != t.Node))
        {
            return null;
        }

        string iface = m.Groups["iface"].Value;
        string hook = m.Groups["hook"].Value;
        ulong? value = t.Counter(iface, hook == "ingress" ? Maps.CounterLayout.HookIngress : Maps.CounterLayout.HookEgress, id);
        return $"{iface} {hook} {id}" + (value is ulong v ? $": {v.ToString(CultureInfo.InvariantCulture)} so far" : ": not in cali_counters");
    }

    /// <summary>How the frontend was found, when that is not the plain exact match: NodePort's wildcard, a source range.</summary>
    private static string Via(string lookup) => lookup.StartsWith("frontend ", StringComparison.Ordinal) && !lookup.Contains("for sources in", StringComparison.Ordinal) ? string.Empty : lookup + ": ";

    private static string Tuple(FlowQuery q) => $"{ConntrackText.Protocol(q.Protocol)} {ConntrackText.HostPort(q.Source, q.SourcePort)} -> {ConntrackText.HostPort(q.Destination, q.DestinationPort)}";
}
