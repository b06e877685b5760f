using System.Buffers.Binary;
using Xunit.Sdk;

namespace CalicoBpf.Tests;

/// <summary>
/// What the module must read from maps that Calico's own tc programs wrote while the realcalico
/// harness sent its traffic. One set of checks, two sources of bytes: the captured fixtures
/// (<see cref="RealCalicoFixtureTests"/>) and a live run of the harness (<see cref="RealCalicoLiveTests"/>).
/// Every expected value comes from what was configured and sent (setup.json, traffic.json) and from
/// Calico's semantics (felix/bpf-gpl, felix/bpf, calico-bpf; ../shared/reference), never from the
/// module's output. Each check collects all its findings before it fails, so a failure lists every
/// entry and field that disagrees.
/// </summary>
public static class RealCalicoExpectations
{
    /// <summary>One source of bytes: the node to read, what was sent, and Calico's trace lines (null: none captured).</summary>
    public sealed record Source(string Release, INodeDataplane Node, RealCalicoRecord Sent, IReadOnlyList<string>? TraceLines);

    /// <summary>The checks by name, in the order they are run and reported.</summary>
    public static readonly IReadOnlyList<(string Name, Action<Source> Check)> All = new (string, Action<Source>)[]
    {
        ("map-versions", MapVersions),
        ("conntrack-plain-flows", PlainFlows),
        ("conntrack-nothing-else", NothingElse),
        ("conntrack-nat-reverse", NatReverse),
        ("conntrack-nat-forward", NatForward),
        ("conntrack-nat-reverse-source-unchanged", NatReverseSourceUnchanged),
        ("conntrack-last-seen", LastSeen),
        ("counters", Counters),
        ("nat-frontends", NatFrontends),
        ("routes", Routes),
        ("trace-lines", TraceLines),
    };

    public static Action<Source> Named(string name) => All.Single(c => c.Name == name).Check;

    /// <summary>What differs per captured release (../shared/realcalico/README.md, "Releases"). A new release needs its row here.</summary>
    private sealed record ReleaseFacts(string ConntrackPin, int ConntrackVersion, string CountersPin, int Counters, string Line);

    /// <summary>
    /// 87c15906f20c pins cali_v4_ct4 and cali_counters6 with 27 u64 (reasons.h at HEAD); v3.30.7 pins
    /// cali_v4_ct3 and cali_counters3 with 17 u64.
    /// </summary>
    private static readonly Dictionary<string, ReleaseFacts> Releases = new(StringComparer.Ordinal)
    {
        ["87c15906f20c"] = new("cali_v4_ct4", 4, "cali_counters6", 27, "v3.34"),
        ["v3.30.7"] = new("cali_v4_ct3", 3, "cali_counters3", 17, "v3.30"),
    };

    private static ReleaseFacts FactsOf(string release) => Releases.TryGetValue(release, out ReleaseFacts? r)
        ? r
        : throw new XunitException($"No facts are known for release {release}; add its row to {nameof(Releases)} from the harness README.");

    // ---- the maps of the release ----

    private static void MapVersions(Source s)
    {
        var f = new Findings();
        ReleaseFacts r = FactsOf(s.Release);
        f.Equal(r.ConntrackPin, ConntrackReader.FindMap(s.Node, ipv6: false).PinName, "the live conntrack pin");
        List<ConntrackEntry> entries = Conntrack(s);
        f.True(entries.Count > 0, "conntrack entries");
        f.Equal(string.Empty, string.Join(", ", entries.Where(e => e.MapName != r.ConntrackPin || e.MapVersion != r.ConntrackVersion).Select(e => $"{e.MapName} v{e.MapVersion}").Distinct()),
            $"entries not from {r.ConntrackPin} version {r.ConntrackVersion}");
        f.Equal(r.CountersPin, MapReading.Find(s.Node, MapCatalog.Counters, "counters").PinName, "the live counters pin");
        // What the node's pins tell of its release (nothing else names it locally) is the release that ran.
        f.Equal(r.Line, ReleaseInference.Of(s.Node).Release.Line, "the release inferred from the pins");
        f.Equal(CalicoReleaseSource.PinnedMaps.ToString(), ReleaseInference.Of(s.Node).Source.ToString(), "how the release was found");
        f.Equal(r.Line, entries[0].Release.Line, "the release the entries were decoded with");
        f.ThrowIfAny("the release's maps");
    }

    // ---- conntrack ----

    private static void PlainFlows(Source s)
    {
        var f = new Findings();
        List<ConntrackEntry> entries = Conntrack(s);
        foreach (RealCalicoRecord.Flow flow in s.Sent.Flows.Where(x => !x.Nat && !x.Denied))
        {
            RealCalicoRecord.Workload w = s.Sent.WorkloadOf(flow);
            var keyed = entries.Where(e => Joins(e, flow.Client, flow.ClientPort, flow.Server, flow.ServerPort)).ToList();
            if (!f.Equal(1, keyed.Count, $"{flow.Name}: entries keyed by its 5-tuple"))
            {
                continue;
            }

            ConntrackEntry e = keyed[0];
            string n = flow.Name;
            f.Equal(ConntrackType.Normal, e.Type, $"{n}: Type");
            f.Equal(flow.Protocol, e.Protocol, $"{n}: Protocol");
            // The opener is the client, whichever side of the key it sorts to (Calico sets B-A on NORMAL entries).
            f.Equal(HostPort(flow.Client, flow.ClientPort), e.Source, $"{n}: Source");
            f.Equal(HostPort(flow.Server, flow.ServerPort), e.Destination, $"{n}: Destination");

            // Each packet crossed exactly one Calico program (from_wep or to_wep on the host veth), which
            // accounts it on the leg of its direction with skb->len (conntrack.h: create sets packets = 1,
            // lookup adds 1 while the skb is not yet seen). The sniffer's frame lengths include the
            // Ethernet header, as skb->len does at tc, so packets and bytes are comparable one to one.
            f.Equal((uint)flow.ForwardPackets, e.Forward.Packets, $"{n}: Forward.Packets (frames sniffed client -> server)");
            f.Equal((ulong)flow.ForwardBytes, e.Forward.Bytes, $"{n}: Forward.Bytes");
            // An ICMP error (udp-unreach's port unreachable) is looked up under the tuple of the packet it
            // answers ("related lookup", conntrack.h) and accounted as a reply on the reverse leg; the
            // sniffer records it apart (related_icmp_rev), without its bytes.
            f.Equal((uint)(flow.ReversePackets + flow.RelatedIcmpReverse), e.Reverse.Packets, $"{n}: Reverse.Packets (frames sniffed server -> client, ICMP errors included)");
            if (flow.RelatedIcmpReverse == 0)
            {
                f.Equal((ulong)flow.ReverseBytes, e.Reverse.Bytes, $"{n}: Reverse.Bytes");
            }

            ClientLeg(f, n, e, w);
            f.Equal(ExpectedState(flow), e.State, $"{n}: State");
            // rst_seen (offset 0, v3.30 and later) is set by the RST tcp-refused got back, and only then.
            bool rst = flow.ForwardTcpFlags.Contains("RST") || flow.ReverseTcpFlags.Contains("RST");
            f.Equal(rst, e.ResetSeenNanoseconds != 0, $"{n}: ResetSeen set");
            f.Equal(rst, e.Reverse.RstSeen || e.Forward.RstSeen, $"{n}: a leg's rst_seen");
        }

        f.ThrowIfAny("plain flows");
    }

    /// <summary>The denied workloads' datagrams create no entry (policy drops them before new_flow creates one), and nothing else is in the map.</summary>
    private static void NothingElse(Source s)
    {
        var f = new Findings();
        List<ConntrackEntry> entries = Conntrack(s);
        foreach (RealCalicoRecord.Workload w in s.Sent.Workloads.Where(w => s.Sent.Flows.Any(x => x.Workload == w.Name && x.Denied)))
        {
            f.Equal(0, entries.Count(e => e.Key.AddressAValue.Equals(w.WorkloadAddress) || e.Key.AddressBValue.Equals(w.WorkloadAddress)),
                $"entries of the denied workload {w.Name} ({w.WorkloadAddress})");
        }

        int plain = s.Sent.Flows.Count(x => !x.Nat && !x.Denied);
        int nat = s.Sent.Flows.Count(x => x.Nat && !x.Denied);
        f.Equal(plain, entries.Count(e => e.Type == ConntrackType.Normal), "Normal entries (one per plain flow)");
        f.Equal(nat, entries.Count(e => e.Type == ConntrackType.NatReverse), "NatReverse entries (one per NAT flow)");
        f.Equal(nat, entries.Count(e => e.Type == ConntrackType.NatForward), "NatForward entries (one per NAT flow)");
        f.ThrowIfAny("the conntrack table as a whole");
    }

    private static void NatReverse(Source s)
    {
        var f = new Findings();
        List<ConntrackEntry> entries = Conntrack(s);
        foreach (RealCalicoRecord.Flow flow in s.Sent.Flows.Where(x => x.Nat && !x.Denied))
        {
            string n = flow.Name;
            ConntrackEntry? e = Reverse(f, entries, flow);
            if (e is null)
            {
                continue;
            }

            f.Equal(flow.Protocol, e.Protocol, $"{n}: Protocol");
            f.Equal(HostPort(flow.Client, flow.ClientPort), e.Source, $"{n}: Source (the client)");
            f.Equal(HostPort(flow.Backend!, flow.BackendPort!.Value), e.Destination, $"{n}: Destination (the backend)");
            f.Equal(flow.Server, e.ServiceAddressValue, $"{n}: ServiceAddress (the VIP, orig_ip)");
            f.Equal(flow.ServerPort, e.ServicePort, $"{n}: ServicePort (orig_port)");
            f.Equal(HostPort(flow.Server, flow.ServerPort), e.ServiceEndpoint, $"{n}: ServiceEndpoint");
            f.Equal(null, e.TunnelAddressValue, $"{n}: TunnelAddress (no tunnel)");
            // The reverse entry does the bookkeeping of the NAT'd connection (both legs). NAT does not
            // change lengths, so the sniffed frames (service address in both directions) compare directly.
            f.Equal((uint)flow.ForwardPackets, e.Forward.Packets, $"{n}: Forward.Packets");
            f.Equal((ulong)flow.ForwardBytes, e.Forward.Bytes, $"{n}: Forward.Bytes");
            f.Equal((uint)flow.ReversePackets, e.Reverse.Packets, $"{n}: Reverse.Packets");
            f.Equal((ulong)flow.ReverseBytes, e.Reverse.Bytes, $"{n}: Reverse.Bytes");
            ClientLeg(f, n, e, s.Sent.WorkloadOf(flow));
            f.Equal(ExpectedState(flow), e.State, $"{n}: State");
        }

        f.ThrowIfAny("NAT reverse entries");
    }

    /// <summary>
    /// The NAT_FWD entry is keyed by the pre-DNAT tuple, client:port and VIP:port, only sorted: Calico
    /// never sets B-A on it (conntrack.h calico_ct_create_nat_fwd), so the VIP is key side A whenever
    /// it sorts first. felix/bpf/conntrack/cleanup.go tells the client as the end that is in both the
    /// forward key and its nat_rev_key. The harness's services put the VIP on both sides.
    /// </summary>
    private static void NatForward(Source s)
    {
        var f = new Findings();
        List<ConntrackEntry> entries = Conntrack(s);
        var vipIsA = new HashSet<bool>();
        foreach (RealCalicoRecord.Flow flow in s.Sent.Flows.Where(x => x.Nat && !x.Denied))
        {
            string n = flow.Name;
            var keyed = entries.Where(e => e.Type == ConntrackType.NatForward && Joins(e, flow.Client, flow.ClientPort, flow.Server, flow.ServerPort)).ToList();
            if (!f.Equal(1, keyed.Count, $"{n}: NatForward entries keyed by client {HostPort(flow.Client, flow.ClientPort)} and VIP {HostPort(flow.Server, flow.ServerPort)}"))
            {
                continue;
            }

            ConntrackEntry e = keyed[0];
            bool clientFirst = SortsFirst(flow.Client, flow.ClientPort, flow.Server, flow.ServerPort);
            vipIsA.Add(!clientFirst);
            string side = clientFirst ? "VIP is key side B" : "VIP is key side A";
            f.Equal(clientFirst ? flow.Client : flow.Server, e.Key.AddressAValue, $"{n}: Key.AddressA (src_lt_dest order)");
            f.Equal(ConntrackFlags.None, e.Flags & ConntrackFlags.BA, $"{n}: B-A flag (Calico never sets it on NAT_FWD)");
            f.Equal(HostPort(flow.Client, flow.ClientPort), e.Source, $"{n} ({side}): Source (the client)");
            f.Equal(HostPort(flow.Server, flow.ServerPort), e.Destination, $"{n} ({side}): Destination (the VIP)");
            f.Equal(flow.Server, e.ServiceAddressValue, $"{n} ({side}): ServiceAddress");
            f.Equal(flow.ServerPort, e.ServicePort, $"{n} ({side}): ServicePort");
            f.Equal(HostPort(flow.Backend!, flow.BackendPort!.Value), e.Backend, $"{n} ({side}): Backend");
            f.Equal(null, e.NatSourcePort, $"{n}: NatSourcePort (no source port rewrite)");
            f.Equal(TcpState.None, e.State, $"{n}: State (no legs)");
            var reverse = entries.Where(r => r.Type == ConntrackType.NatReverse && Joins(r, flow.Client, flow.ClientPort, flow.Backend!, flow.BackendPort!.Value)).ToList();
            if (reverse.Count == 1)
            {
                f.Equal(reverse[0].Key, e.ReverseKey, $"{n}: ReverseKey (the key of its NatReverse entry)");
            }
        }

        f.Equal(2, vipIsA.Count, "the NAT flows cover both key orders (VIP on side A and on side B)");
        f.ThrowIfAny("NAT forward entries");
    }

    /// <summary>
    /// Calico writes the client's own address and port into orig_sip and orig_sport of every NAT_REV
    /// entry, changed or not (conntrack.h, create: ct_value.orig_sip = ct_ctx->orig_src,
    /// ct_value.orig_sport = ct_ctx->orig_sport). They say what the source was before a rewrite only
    /// when there was one: the port with host-psnat, which is when calico-bpf prints "source port
    /// changed from N" (felix/cmd/calico-bpf/commands/conntrack.go), the address when it differs from
    /// the key's client (SNAT). None of these connections was rewritten, so OriginalSourcePort and
    /// OriginalSourceAddress ("null if unchanged") must be null.
    /// </summary>
    private static void NatReverseSourceUnchanged(Source s)
    {
        var f = new Findings();
        List<ConntrackEntry> entries = Conntrack(s);
        foreach (RealCalicoRecord.Flow flow in s.Sent.Flows.Where(x => x.Nat && !x.Denied))
        {
            string n = flow.Name;
            ConntrackEntry? e = Reverse(f, entries, flow);
            if (e is null)
            {
                continue;
            }

            f.Equal(ConntrackFlags.None, e.Flags & ConntrackFlags.HostPsnat, $"{n}: host-psnat flag");
            f.Equal(null, e.OriginalSourcePort, $"{n}: OriginalSourcePort (the port was not changed)");
            f.Equal(null, e.OriginalSourceAddressValue, $"{n}: OriginalSourceAddress (the client {flow.Client} was not changed)");
        }

        f.ThrowIfAny("NAT reverse entries' original source");
    }

    /// <summary>last_seen is the time of the flow's last packet: its wall time, from the node's clocks sampled with the read, is that of the last frame sniffed.</summary>
    private static void LastSeen(Source s)
    {
        var f = new Findings();
        List<ConntrackEntry> entries = Conntrack(s);
        DateTime now = s.Node.SampleClock().UtcNow;
        foreach (RealCalicoRecord.Flow flow in s.Sent.Flows.Where(x => !x.Denied && x.LastFrame is not null))
        {
            foreach (ConntrackEntry e in entries.Where(e => Joins(e, flow.Client, flow.ClientPort, flow.Server, flow.ServerPort)
                         || (flow.Nat && e.Type == ConntrackType.NatReverse && Joins(e, flow.Client, flow.ClientPort, flow.Backend!, flow.BackendPort!.Value))))
            {
                TimeSpan off = e.LastSeen - flow.LastFrame!.Value;
                f.True(off.Duration() < TimeSpan.FromSeconds(2),
                    $"{flow.Name} ({e.Type}): LastSeen {e.LastSeen:O} is {off.TotalSeconds:0.000} s from its last frame {flow.LastFrame:O}");
                f.True(e.LastSeen <= now, $"{flow.Name} ({e.Type}): LastSeen {e.LastSeen:O} is after the read ({now:O})");
            }
        }

        f.ThrowIfAny("last seen");
    }

    // ---- counters, NAT maps, routes ----

    private static void Counters(Source s)
    {
        var f = new Findings();
        List<InterfaceCounter> counters = CounterReader.Read(s.Node).ToList();
        int width = FactsOf(s.Release).Counters;
        f.Equal(width, counters.Max(c => c.Index) + 1, $"counters per interface and hook (value size / 8) at {s.Release}");
        foreach (RealCalicoRecord.Workload w in s.Sent.Workloads)
        {
            string i = w.HostInterface;
            var rows = counters.Where(c => c.IfIndex == w.IfIndex).ToDictionary(c => c.Id);
            if (!f.True(rows.Count > 0, $"{i} (ifindex {w.IfIndex}) has counters"))
            {
                continue;
            }

            f.Equal(i, rows.Values.First().Interface, $"ifindex {w.IfIndex}: Interface");
            RealCalicoRecord.Frames frames = s.Sent.FramesByInterface[i];
            // Every frame passes the interface's program (the preamble counts it, ARP included); the
            // sniffer sees ingress frames before tc ingress and egress frames after tc egress.
            f.Equal((ulong?)frames.Received, rows["TotalPackets"].Ingress, $"{i}: TotalPackets ingress (frames received from the workload)");
            f.Equal((ulong?)frames.Transmitted, rows["TotalPackets"].Egress, $"{i}: TotalPackets egress (frames sent to the workload)");

            var flows = s.Sent.Flows.Where(x => x.Workload == w.Name).ToList();
            int datagrams = flows.Sum(x => x.ForwardPackets);
            (ulong accepted, ulong dropped) = w.IngressPolicy switch
            {
                // calico_tc_allow: the policy program runs once per new flow (later packets hit conntrack).
                "calico_tc_allow" => ((ulong)flows.Count, 0UL),
                // Felix's generated deny (rcal_policy_deny.c): pol_rc = DENY, tail call to the drop program,
                // which counts DROPPED_BY_POLICY; no entry is created, so every datagram meets the policy.
                "rcal_felix_deny" => (0UL, (ulong)datagrams),
                // policy_default.c calico_tc_deny jumps to the "allowed" program, which counts accepted by
                // policy; new_flow then drops the packet with no drop counter (harness README).
                "calico_tc_deny" => ((ulong)datagrams, 0UL),
                _ => throw new XunitException($"{i}: no expectation for ingress policy {w.IngressPolicy}"),
            };
            f.Equal((ulong?)accepted, rows["AcceptedByPolicy"].Ingress, $"{i} ({w.IngressPolicy}): AcceptedByPolicy ingress");
            f.Equal((ulong?)dropped, rows["DroppedByPolicy"].Ingress, $"{i} ({w.IngressPolicy}): DroppedByPolicy ingress");
            // Egress (towards the workload): replies hit conntrack, no new flow meets the egress policy.
            f.Equal((ulong?)0, rows["AcceptedByPolicy"].Egress, $"{i}: AcceptedByPolicy egress");
            f.Equal((ulong?)0, rows["DroppedByPolicy"].Egress, $"{i}: DroppedByPolicy egress");
            foreach (InterfaceCounter c in rows.Values.Where(c => c.Id is not ("TotalPackets" or "AcceptedByPolicy" or "DroppedByPolicy")))
            {
                f.Equal((ulong?)0, c.Ingress, $"{i}: {c.Id} ingress");
                f.Equal((ulong?)0, c.Egress, $"{i}: {c.Id} egress");
            }

            f.Equal(null, rows["TotalPackets"].Xdp, $"{i}: Xdp (no XDP program, no entry)");
        }

        f.Equal(s.Sent.Workloads.Count, counters.Select(c => c.IfIndex).Distinct().Count(), "interfaces with counters");
        f.ThrowIfAny("counters");
    }

    private static void NatFrontends(Source s)
    {
        var f = new Findings();
        List<NatFrontend> frontends = NatMaps.ReadFrontends(s.Node, new NatQuery()).ToList();
        f.Equal(s.Sent.Services.Count, frontends.Count, "frontends");
        foreach (RealCalicoRecord.Service svc in s.Sent.Services)
        {
            var matching = frontends.Where(x => x.ServiceId == svc.Id).ToList();
            string n = $"service {svc.Id}";
            if (!f.Equal(1, matching.Count, $"{n}: frontends with its id"))
            {
                continue;
            }

            NatFrontend fe = matching[0];
            f.Equal(svc.Address, fe.AddressValue, $"{n}: Address");
            f.Equal(svc.Port, fe.Port, $"{n}: Port");
            f.Equal(svc.Protocol, fe.Protocol, $"{n}: Protocol");
            f.Equal(null, fe.SourceCidr, $"{n}: SourceCidr (prefixlen 56: no source range)");
            // Written as felix/bpf/nat/maps.go NewNATValue(id, count, local = count, affinity 0), flags 0.
            f.Equal(svc.Backends.Count, fe.BackendCount, $"{n}: BackendCount");
            f.Equal(svc.Backends.Count, fe.LocalBackendCount, $"{n}: LocalBackendCount");
            f.Equal(TimeSpan.Zero, fe.AffinityTimeoutValue, $"{n}: AffinityTimeout");
            f.Equal(NatFrontendFlags.None, fe.Flags, $"{n}: Flags");
            f.Equal(
                string.Join(", ", svc.Backends.Select((b, o) => $"{svc.Id}:{o} {HostPort(b.Address, b.Port)}")),
                string.Join(", ", fe.Backends.Select(b => b.ToString())),
                $"{n}: Backends");
        }

        f.ThrowIfAny("NAT frontends and backends");
    }

    private static void Routes(Source s)
    {
        var f = new Findings();
        List<Route> routes = RouteMap.Read(s.Node, false).ToList();
        var expected = new List<(IPAddress Address, RouteFlags Flags, int? IfIndex, string? Interface, string Description)>();
        foreach (RealCalicoRecord.Workload w in s.Sent.Workloads)
        {
            // 0x0d = IN_POOL | WORKLOAD | LOCAL with the host veth's ifindex; 0x18 = LOCAL | HOST (routes.h).
            expected.Add((w.WorkloadAddress, RouteFlags.InPool | RouteFlags.Workload | RouteFlags.Local, w.IfIndex, w.HostInterface, $"local workload in-pool idx {w.IfIndex}"));
            expected.Add((w.HostAddress, RouteFlags.Local | RouteFlags.Host, null, null, "local host"));
        }

        expected.AddRange(s.Sent.ExtraHostAddresses.Select(a => (a, RouteFlags.Local | RouteFlags.Host, (int?)null, (string?)null, "local host")));
        f.Equal(expected.Count, routes.Count, "routes");
        foreach (var x in expected)
        {
            var r = routes.Where(r => r.AddressValue.Equals(x.Address) && r.PrefixLength == 32).ToList();
            string n = x.Address + "/32";
            if (!f.Equal(1, r.Count, $"{n}: routes"))
            {
                continue;
            }

            f.Equal(x.Flags, r[0].Flags, $"{n}: Flags");
            f.Equal(x.IfIndex, r[0].IfIndex, $"{n}: IfIndex");
            f.Equal(x.Interface, r[0].Interface, $"{n}: Interface");
            f.Equal(null, r[0].NextHopValue, $"{n}: NextHop");
            f.Equal(x.Description, r[0].Description, $"{n}: Description (as calico-bpf routes dump prints it)");
            f.Equal(n, r[0].Cidr, $"{n}: Cidr");
        }

        f.ThrowIfAny("routes");
    }

    // ---- trace lines ----

    /// <summary>
    /// Calico's debug lines (the harness loads the debug objects) parse with their interface and
    /// direction. The letter is the program's policy direction (tc.c CALI_LOG): for a workload veth,
    /// from_wep (tc ingress of the host veth, packets from the pod) is compiled without
    /// CALI_TC_INGRESS and prints "-E"; to_wep (tc egress, packets to the pod) prints "-I".
    /// </summary>
    private static void TraceLines(Source s)
    {
        var f = new Findings();
        if (s.TraceLines is null)
        {
            throw new XunitException("No trace lines were captured.");
        }

        var byName = s.Sent.Workloads.ToDictionary(w => w.HostInterface);
        int tagged = 0, fromPod = 0, toPod = 0, results = 0;
        foreach (string line in s.TraceLines.Where(l => l.Contains("bpf_trace_printk: rcal-h", StringComparison.Ordinal)))
        {
            TraceLogEntry e = TraceLogParser.Parse(line, s.Node.Node);
            tagged++;
            if (!f.True(e.Interface is not null && byName.ContainsKey(e.Interface), $"Interface of '{line.Trim()}' is {e.Interface ?? "none"}"))
            {
                continue;
            }

            RealCalicoRecord.Workload w = byName[e.Interface!];
            string letter = line.Contains(w.HostInterface.PadRight(15, '-') + "-I: ", StringComparison.Ordinal) ? "I" : "E";
            f.Equal(w.HostInterface.PadRight(15, '-') + "-" + letter, e.Tag, $"Tag of '{line.Trim()}'");
            f.Equal(letter == "I" ? TraceDirection.Ingress : TraceDirection.Egress, e.Direction, $"Direction of '{line.Trim()}'");
            f.True(e.Pid is not null && e.Cpu is not null && e.TimestampValue is not null && e.Process is not null, $"kernel fields of '{line.Trim()}'");

            // "IP s=<src> d=<dst>" names the packet: from the pod it is seen by from_wep ("-E"), to the pod by to_wep ("-I").
            System.Text.RegularExpressions.Match ip = System.Text.RegularExpressions.Regex.Match(e.Message, @"^IP s=(\S+) d=(\S+)$");
            if (ip.Success && IPAddress.TryParse(ip.Groups[1].Value, out IPAddress? src) && IPAddress.TryParse(ip.Groups[2].Value, out IPAddress? dst))
            {
                if (src.Equals(w.WorkloadAddress))
                {
                    fromPod++;
                    f.Equal(TraceDirection.Egress, e.Direction, $"a packet from the pod ({e.Message}) on {w.HostInterface}");
                }
                else if (dst.Equals(w.WorkloadAddress))
                {
                    toPod++;
                    f.Equal(TraceDirection.Ingress, e.Direction, $"a packet to the pod ({e.Message}) on {w.HostInterface}");
                }
            }

            if (e.Message.StartsWith("Final result=", StringComparison.Ordinal))
            {
                results++;
                f.True(e.Result is "ALLOW" or "DENY" && e.Code is not null && e.ExecutionNanoseconds > 0,
                    $"'{e.Message}' parses to result {e.Result ?? "none"}, code {e.Code?.ToString() ?? "none"}, {e.ExecutionNanoseconds?.ToString() ?? "no"} ns");
            }
        }

        f.True(tagged > 0, "trace lines of rcal-h* were captured");
        f.True(fromPod + toPod > 0, $"lines that name a packet's addresses (from the pod {fromPod}, to the pod {toPod})");
        f.True(results > 0, "Final result lines");
        f.ThrowIfAny("trace lines");
    }

    // ---- helpers ----

    private static List<ConntrackEntry> Conntrack(Source s) => ConntrackReader.Read(s.Node, new ConntrackQuery()).ToList();

    /// <summary>The key joins these two ends, whichever side each sorted to.</summary>
    private static bool Joins(ConntrackEntry e, IPAddress a, int portA, IPAddress b, int portB) =>
        (e.Key.AddressAValue.Equals(a) && e.Key.PortA == portA && e.Key.AddressBValue.Equals(b) && e.Key.PortB == portB)
        || (e.Key.AddressAValue.Equals(b) && e.Key.PortA == portB && e.Key.AddressBValue.Equals(a) && e.Key.PortB == portA);

    /// <summary>The one NatReverse entry of a NAT flow (client and backend), or null after recording why not.</summary>
    private static ConntrackEntry? Reverse(Findings f, List<ConntrackEntry> entries, RealCalicoRecord.Flow flow)
    {
        var keyed = entries.Where(e => e.Type == ConntrackType.NatReverse && Joins(e, flow.Client, flow.ClientPort, flow.Backend!, flow.BackendPort!.Value)).ToList();
        return f.Equal(1, keyed.Count, $"{flow.Name}: NatReverse entries keyed by client {HostPort(flow.Client, flow.ClientPort)} and backend {HostPort(flow.Backend!, flow.BackendPort!.Value)}")
            ? keyed[0]
            : null;
    }

    /// <summary>The client's leg as conntrack.h creates it from from_wep: opener, approved, workload, the host veth's ifindex.</summary>
    private static void ClientLeg(Findings f, string n, ConntrackEntry e, RealCalicoRecord.Workload w)
    {
        f.True(e.Forward.Opener && !e.Reverse.Opener, $"{n}: the opener bit is on the client's leg only (forward {e.Forward.Opener}, reverse {e.Reverse.Opener})");
        f.True(e.Forward.Approved && e.Forward.Workload, $"{n}: client leg approved {e.Forward.Approved} and workload {e.Forward.Workload}");
        f.Equal(w.IfIndex, e.Forward.IfIndex, $"{n}: Forward.IfIndex (the host veth the client's packets arrive on)");
        f.Equal(0, e.Reverse.IfIndex, $"{n}: Reverse.IfIndex (packets from the host)");
    }

    /// <summary>calico-bpf's TCP state rule applied to the TCP flags sniffed each way; None for other protocols.</summary>
    private static TcpState ExpectedState(RealCalicoRecord.Flow flow)
    {
        if (flow.Protocol != IpProtocol.Tcp)
        {
            return TcpState.None;
        }

        bool Has(IReadOnlyList<string> flags, string flag) => flags.Contains(flag);
        return Has(flow.ForwardTcpFlags, "FIN") && Has(flow.ReverseTcpFlags, "FIN") ? TcpState.Closed
            : Has(flow.ForwardTcpFlags, "RST") || Has(flow.ReverseTcpFlags, "RST") ? TcpState.Reset
            : Has(flow.ForwardTcpFlags, "SYN") && Has(flow.ForwardTcpFlags, "ACK") && Has(flow.ReverseTcpFlags, "SYN") && Has(flow.ReverseTcpFlags, "ACK") ? TcpState.Established
            : TcpState.SynSent;
    }

    /// <summary>conntrack.h src_lt_dest for IPv4: addresses as u32 loaded from network-order bytes on a little-endian CPU, then ports.</summary>
    private static bool SortsFirst(IPAddress a, int portA, IPAddress b, int portB)
    {
        uint x = BinaryPrimitives.ReadUInt32LittleEndian(a.GetAddressBytes());
        uint y = BinaryPrimitives.ReadUInt32LittleEndian(b.GetAddressBytes());
        return x != y ? x < y : portA < portB;
    }

    private static string HostPort(IPAddress a, int port) => a + ":" + port;

    /// <summary>Collects every disagreement of one check, then fails once with all of them.</summary>
    private sealed class Findings
    {
        private readonly List<string> _failures = new();

        public bool Equal<T>(T expected, T actual, string what)
        {
            if (EqualityComparer<T>.Default.Equals(expected, actual))
            {
                return true;
            }

            _failures.Add($"{what}: expected {Show(expected)}, got {Show(actual)}");
            return false;
        }

        public bool True(bool condition, string what)
        {
            if (!condition)
            {
                _failures.Add(what);
            }

            return condition;
        }

        public void ThrowIfAny(string what)
        {
            if (_failures.Count > 0)
            {
                throw new XunitException($"{_failures.Count} disagreement(s) with what Calico wrote ({what}):\n  " + string.Join("\n  ", _failures));
            }
        }

        private static string Show(object? v) => v is null ? "null" : v.ToString() ?? string.Empty;
    }
}
