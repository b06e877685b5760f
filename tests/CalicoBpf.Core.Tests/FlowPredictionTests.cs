using System.Net;
using System.Text.Json;
using CalicoBpf.Flow;
using CalicoBpf.Maps;
using CalicoBpf.Tests.Support;
using Xunit.Abstractions;

namespace CalicoBpf.Tests;

/// <summary>
/// Test-BpfFlow's predictions against what Calico's own programs did (tests/fixtures/realcalico:
/// maps written by Calico's tc programs on real traffic, and that traffic as sniffed on the host
/// veths). Each flow of a capture is predicted twice: with the captured conntrack (the flow exists,
/// conntrack decides) and with none (its first packet, as the programs first saw it). The harness
/// writes no policy debug files, so policy is Unknown, and the prediction must say which setting to
/// change; every other stage is checked against Calico's bytes and the sniffed traffic.
/// </summary>
public class FlowPredictionTests
{
    private readonly ITestOutputHelper _out;

    public FlowPredictionTests(ITestOutputHelper output) => _out = output;

    public static TheoryData<string> Releases() => new(RealCalicoPaths.CapturedReleases());

    [Theory]
    [MemberData(nameof(Releases))]
    public void An_existing_flow_is_predicted_from_the_conntrack_entry_calicos_programs_wrote(string release)
    {
        (RealCalicoRecord sent, FlowTables live, _) = Load(release);
        foreach (RealCalicoRecord.Flow f in sent.Flows)
        {
            FlowResult p = Predict(live, f);
            FlowStage ct = p.Stages.Single(s => s.Stage == "conntrack");
            if (f.Denied)
            {
                // The programs dropped it by policy, so they created no entry: the flow is new, and policy cannot be read here.
                Assert.Equal("new flow", ct.Decision);
                Assert.Equal(FlowVerdict.Unknown, p.Verdict);
                Assert.Contains("bpfPolicyDebugEnabled", p.Reason, StringComparison.Ordinal);
                continue;
            }

            if (f.Nat)
            {
                // The backend Calico's program chose, as the sniffer saw the DNAT'd packets.
                Assert.True(f.Backend!.Equals(p.Backend) && f.BackendPort == p.BackendPort, $"{f.Name}: predicted {p.Backend}:{p.BackendPort}, Calico sent it to {f.Backend}:{f.BackendPort}");
                Assert.Contains("DNAT", ct.Decision, StringComparison.Ordinal);
            }

            if (f.Protocol == IpProtocol.Tcp)
            {
                // A SYN on an existing entry still goes through policy (tc.c: the SYN exception).
                Assert.Equal(FlowVerdict.Unknown, p.Verdict);
                Assert.Contains("bpfPolicyDebugEnabled", p.Reason, StringComparison.Ordinal);
            }
            else
            {
                // Established: allowed without policy; the answer (or the ICMP error) came back through the same programs.
                Assert.Equal(FlowVerdict.Allow, p.Verdict);
                Assert.True(f.ReversePackets > 0 || f.RelatedIcmpReverse > 0, $"{f.Name}: predicted Allow, but nothing came back");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Releases))]
    public void A_first_packet_takes_the_frontend_backend_and_route_calico_took(string release)
    {
        (RealCalicoRecord sent, _, FlowTables fresh) = Load(release);
        foreach (RealCalicoRecord.Flow f in sent.Flows)
        {
            FlowResult p = Predict(fresh, f);
            RealCalicoRecord.Workload w = sent.WorkloadOf(f);
            Assert.Equal($"{w.HostInterface} tc ingress (from workload)", p.Stages[0].Where);
            Assert.Equal("new flow", p.Stages.Single(s => s.Stage == "conntrack").Decision);
            FlowStage nat = p.Stages.SingleOrDefault(s => s.Stage == "NAT") ?? new FlowStage("NAT", "-", "-", "-");
            if (f.Nat)
            {
                RealCalicoRecord.Service svc = sent.ServiceOf(f);
                Assert.Equal("DNAT", nat.Decision);
                Assert.Contains($"id {svc.Id} ", nat.Evidence, StringComparison.Ordinal);
                Assert.True(f.Backend!.Equals(p.Backend) && f.BackendPort == p.BackendPort, $"{f.Name}: predicted {p.Backend}:{p.BackendPort}, Calico sent it to {f.Backend}:{f.BackendPort}");
            }
            else
            {
                Assert.Equal("no service", nat.Decision);
                Assert.Null(p.Backend);
            }

            // The source passes the workload RPF check (its /32 route names the veth the packet came in on), and every
            // destination of the harness, after NAT, is an address of the host (route flags LOCAL|HOST).
            FlowStage[] route = p.Stages.Where(s => s.Stage == "route").ToArray();
            Assert.Equal("source check passed", route[0].Decision);
            Assert.StartsWith($"{w.WorkloadAddress}/32", route[0].Evidence, StringComparison.Ordinal);
            Assert.Equal("this host", route[1].Decision);
            Assert.Equal(FlowVerdict.Unknown, p.Verdict);
            Assert.Contains($"{w.HostInterface}_egress_v4.json", p.Reason, StringComparison.Ordinal);
            _out.WriteLine($"{f.Name}: {p.Verdict} -- {p.Reason}");
        }
    }

    [Theory]
    [MemberData(nameof(Releases))]
    public void A_service_port_that_has_no_frontend_is_not_nat_and_a_non_workload_source_is_not_predicted(string release)
    {
        (RealCalicoRecord sent, FlowTables live, _) = Load(release);
        RealCalicoRecord.Workload wl = sent.Workloads.Single(w => w.Name == "wl");
        RealCalicoRecord.Service svc = sent.Services.First(s => s.Protocol == IpProtocol.Tcp);
        FlowResult other = FlowPredictor.Predict(live, new FlowQuery(IpProtocol.Tcp, wl.WorkloadAddress, 45000, svc.Address, svc.Port + 100));
        Assert.Equal("no service", other.Stages.Single(s => s.Stage == "NAT").Decision);
        Assert.Contains("no Calico route", other.Stages.Where(s => s.Stage == "route").Last().Decision, StringComparison.Ordinal);

        FlowResult fromOther = FlowPredictor.Predict(live, new FlowQuery(IpProtocol.Tcp, IPAddress.Parse("192.0.2.7"), 45000, wl.WorkloadAddress, 80));
        Assert.Equal(FlowVerdict.Unknown, fromOther.Verdict);
        Assert.Contains("not a workload", fromOther.Reason, StringComparison.Ordinal);
    }

    private static FlowResult Predict(FlowTables t, RealCalicoRecord.Flow f) =>
        FlowPredictor.Predict(t, new FlowQuery(f.Protocol, f.Client, f.ClientPort, f.Server, f.ServerPort));

    private static (RealCalicoRecord Sent, FlowTables Live, FlowTables Fresh) Load(string release)
    {
        string dir = RealCalicoPaths.Fixture(release);
        var node = new RealCalicoCapturedNode(dir);
        FlowTables Tables(bool conntrack) => new(
            node.Node,
            conntrack ? ConntrackReader.Read(node, new ConntrackQuery()) : Array.Empty<ConntrackEntry>(),
            NatMaps.ReadFrontends(node, new NatQuery()),
            NatMaps.ReadAffinity(node, false),
            RouteMap.Read(node, false),
            InterfaceStateMap.Read(node),
            node);
        return (RealCalicoRecord.Load(dir), Tables(true), Tables(false));
    }
}

/// <summary>
/// Test-BpfFlow against Calico's programs on flows the harness does not send
/// (tests/fixtures/realcalico-probes, written by tests/tools/capture-realcalico.sh -P: entries added
/// to the harness's maps as Felix writes them, one UDP datagram each from the workload, what came
/// back, and Calico's own debug lines for it). Each prediction's deciding stage must be the one
/// Calico's program logged.
/// </summary>
public class FlowProbeTests
{
    public static TheoryData<string> Releases() => new(Directory.GetDirectories(ProbeRoot()).Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal));

    [Theory]
    [MemberData(nameof(Releases))]
    public void Each_probe_is_predicted_as_calicos_program_decided_it(string release)
    {
        string dir = Path.Combine(ProbeRoot(), release);
        var node = new RealCalicoCapturedNode(dir);
        var fresh = new FlowTables(node.Node, Array.Empty<ConntrackEntry>(), NatMaps.ReadFrontends(node, new NatQuery()), NatMaps.ReadAffinity(node, false),
            RouteMap.Read(node, false), InterfaceStateMap.Read(node), node);
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "probes.json")));
        var seen = new List<string>();
        foreach (JsonElement probe in doc.RootElement.GetProperty("probes").EnumerateArray())
        {
            string name = probe.GetProperty("name").GetString()!;
            string outcome = probe.GetProperty("outcome").GetString()!;
            string trace = string.Join("\n", probe.GetProperty("trace").EnumerateArray().Select(l => l.GetString()));
            FlowResult p = FlowPredictor.Predict(fresh, new FlowQuery((IpProtocol)probe.GetProperty("proto").GetInt32(),
                IPAddress.Parse(probe.GetProperty("src").GetString()!), probe.GetProperty("sport").GetInt32(),
                IPAddress.Parse(probe.GetProperty("dst").GetString()!), probe.GetProperty("dport").GetInt32()));
            FlowStage nat = p.Stages.SingleOrDefault(s => s.Stage == "NAT") ?? new FlowStage("NAT", "-", "-", "-");
            switch (name)
            {
                case "no-backend":
                    Assert.Contains("NAT: no backend", trace, StringComparison.Ordinal);
                    Assert.Contains("ICMP type 3 and code 3", trace, StringComparison.Ordinal);
                    Assert.Equal("no backend", nat.Decision);
                    Assert.Equal(FlowVerdict.Deny, p.Verdict);
                    Assert.Contains("ICMP port unreachable", p.Reason, StringComparison.Ordinal);
                    Assert.Equal("nothing", outcome);
                    break;
                case "missing-backend":
                    Assert.Contains("NAT: backend miss", trace, StringComparison.Ordinal);
                    Assert.Contains("ICMP type 3 and code 3", trace, StringComparison.Ordinal);
                    Assert.Equal("missing backend", nat.Decision);
                    Assert.Equal(FlowVerdict.Deny, p.Verdict);
                    break;
                case "nodeport":
                    string backend = probe.GetProperty("dst").GetString() + ":18091";
                    Assert.Contains("CT: DNAT to " + backend, trace, StringComparison.Ordinal);
                    Assert.Equal("reply", outcome);
                    Assert.Equal("DNAT", nat.Decision);
                    Assert.Contains("NodePort entry 255.255.255.255:30053", nat.Evidence, StringComparison.Ordinal);
                    Assert.Equal(backend, $"{p.Backend}:{p.BackendPort}");
                    break;
                case "blackhole":
                    Assert.Contains("NAT: route dest not a host", trace, StringComparison.Ordinal);
                    Assert.Contains("Packet hit a black hole route: DROP", trace, StringComparison.Ordinal);
                    Assert.Equal("no service", nat.Decision);
                    Assert.Equal(FlowVerdict.Deny, p.Verdict);
                    Assert.Equal("blackhole", p.Stages.Where(s => s.Stage == "route").Last().Decision);
                    break;
                case "no-route":
                    // No Calico route: the program lets policy decide and hands the packet to the host, whose own
                    // table (a blackhole the probe added) drops it; the prediction says the host's table takes it.
                    Assert.Contains("No route for post DNAT dest 198.51.100.7", trace, StringComparison.Ordinal);
                    Assert.Contains("Allowed by policy: ACCEPT", trace, StringComparison.Ordinal);
                    Assert.Equal("nothing", outcome);
                    Assert.Equal("no service", nat.Decision);
                    Assert.StartsWith("no Calico route: the host's routing table takes it", p.Stages.Where(s => s.Stage == "route").Last().Decision, StringComparison.Ordinal);
                    Assert.Equal("unknown", p.Stages.Single(s => s.Stage == "policy").Decision);   // the harness writes no policy debug files
                    break;
                case "host-to-workload":
                    // The workload's tc egress program: "Packet is from the host: ACCEPT"; the pod's kernel answered.
                    Assert.Contains("Packet is from the host: ACCEPT", trace, StringComparison.Ordinal);
                    Assert.Equal("icmp-port-unreachable", outcome);
                    Assert.Equal(FlowVerdict.Allow, p.Verdict);
                    Assert.Equal("skipped", p.Stages.Single(s => s.Stage == "policy").Decision);
                    Assert.EndsWith("tc egress (to workload)", p.Stages[0].Where, StringComparison.Ordinal);
                    break;
                default:
                    Assert.Fail($"{release}: a probe this test does not know: {name}");
                    break;
            }

            seen.Add(name);
        }

        Assert.Equal(new[] { "no-backend", "missing-backend", "nodeport", "blackhole", "no-route", "host-to-workload" }, seen);
    }

    private static string ProbeRoot() => Path.Combine(RealCalicoPaths.RepositoryRoot(), "tests", "fixtures", "realcalico-probes");
}

/// <summary>FlowTables reads only the conntrack entries of the flows' clients into objects: exactly those, on Calico's bytes.</summary>
public class FlowTablesTests
{
    [Theory]
    [MemberData(nameof(FlowPredictionTests.Releases), MemberType = typeof(FlowPredictionTests))]
    public void Only_the_clients_entries_become_objects_and_they_are_all_there(string release)
    {
        var node = new RealCalicoCapturedNode(RealCalicoPaths.Fixture(release));
        var client = IPAddress.Parse("10.78.0.2");
        List<ConntrackEntry> all = ConntrackReader.Read(node, new ConntrackQuery()).ToList();
        var want = all.Where(e => e.Key.AddressAValue.Equals(client) || e.Key.AddressBValue.Equals(client)).Select(e => e.Key.ToString()).Order(StringComparer.Ordinal).ToList();
        List<ConntrackEntry> kept = ConntrackReader.Read(node, new ConntrackQuery { KeyAddressesV4 = new HashSet<uint> { 0x0A4E0002 } }).ToList();
        Assert.NotEmpty(want);
        Assert.True(want.Count < all.Count || all.All(e => e.Key.ToString().Contains("10.78.0.2", StringComparison.Ordinal)));
        Assert.Equal(want, kept.Select(e => e.Key.ToString()).Order(StringComparer.Ordinal).ToList());

        FlowTables t = FlowTables.Read(node, clients: new[] { client });
        Assert.NotNull(t.Conntrack(IpProtocol.Tcp, client, 41011, IPAddress.Parse("10.0.0.1"), 80));
    }
}

/// <summary>
/// What a conntrack hit means for a from-workload packet, as conntrack.h's calico_ct_lookup decides at
/// v3.30.7 (lines in each case): the client's side must be approved (TO_HOST programs, :932-944); a
/// NatForward entry needs its tracking entry (:720-724); a SYN on an entry whose two sides saw FIN or
/// RST recycles it (:725, :864).
/// </summary>
public class FlowConntrackMeaningTests
{
    private static readonly IPAddress Pod = IPAddress.Parse("10.65.0.8");
    private static readonly IPAddress Peer = IPAddress.Parse("10.65.3.4");

    private static FlowTables Tables(params ConntrackEntry[] entries) => new(
        "n1", entries, Array.Empty<NatFrontend>(), Array.Empty<NatAffinity>(),
        new[]
        {
            new Route { Cidr = "10.65.0.8/32", AddressValue = Pod, PrefixLength = 32, Flags = RouteFlags.Local | RouteFlags.Workload | RouteFlags.InPool, IfIndex = 5, Description = "local workload" },
            new Route { Cidr = "10.65.3.0/26", AddressValue = IPAddress.Parse("10.65.3.0"), PrefixLength = 26, Flags = RouteFlags.Workload | RouteFlags.InPool, NextHopValue = IPAddress.Parse("172.18.0.13"), Description = "remote workload" },
        },
        Array.Empty<InterfaceState>());

    private static ConntrackEntry Entry(IpProtocol p, int port, bool approved, bool finBoth = false) => new()
    {
        Protocol = p, Type = ConntrackType.Normal, SourceAddressValue = Pod, SourcePort = 40000, DestinationAddressValue = Peer, DestinationPort = port,
        Key = ConntrackCodec.SortsFirst(Pod, 40000, Peer, port) ? new ConntrackKey(p, Pod, 40000, Peer, port) : new ConntrackKey(p, Peer, port, Pod, 40000),
        Forward = new ConntrackLeg { Approved = approved, FinSeen = finBoth },
        Reverse = new ConntrackLeg { Approved = true, FinSeen = finBoth },
    };

    private static FlowResult Ask(FlowTables t, IpProtocol p, int port) => FlowPredictor.Predict(t, new FlowQuery(p, Pod, 40000, Peer, port));

    [Fact]
    public void An_approved_udp_entry_is_established_and_skips_policy_and_routes()
    {
        FlowResult r = Ask(Tables(Entry(IpProtocol.Udp, 53, approved: true)), IpProtocol.Udp, 53);
        Assert.Equal(FlowVerdict.Allow, r.Verdict);
        Assert.DoesNotContain(r.Stages, s => s.Stage is "route" or "policy");
    }

    [Fact]
    public void An_unapproved_client_side_makes_udp_new_again_and_tcp_invalid()
    {
        FlowResult udp = Ask(Tables(Entry(IpProtocol.Udp, 53, approved: false)), IpProtocol.Udp, 53);
        Assert.Equal("new flow", udp.Stages.Single(s => s.Stage == "conntrack").Decision);
        Assert.Contains(udp.Stages, s => s.Stage == "NAT");
        FlowResult tcp = Ask(Tables(Entry(IpProtocol.Tcp, 80, approved: false)), IpProtocol.Tcp, 80);
        Assert.Equal(FlowVerdict.Deny, tcp.Verdict);
        Assert.Equal("INVALID", tcp.Stages.Single(s => s.Stage == "conntrack").Decision);
    }

    [Fact]
    public void A_syn_recycles_an_entry_both_sides_closed_and_a_forward_entry_without_tracking_is_new()
    {
        FlowResult syn = Ask(Tables(Entry(IpProtocol.Tcp, 80, approved: true, finBoth: true)), IpProtocol.Tcp, 80);
        Assert.Contains("recycles", syn.Stages.Single(s => s.Stage == "conntrack").Evidence, StringComparison.Ordinal);
        var vip = IPAddress.Parse("10.96.0.10");
        var fwd = new ConntrackEntry
        {
            Protocol = IpProtocol.Udp, Type = ConntrackType.NatForward, SourceAddressValue = Pod, SourcePort = 40000, DestinationAddressValue = vip, DestinationPort = 53,
            Key = ConntrackCodec.SortsFirst(Pod, 40000, vip, 53) ? new ConntrackKey(IpProtocol.Udp, Pod, 40000, vip, 53) : new ConntrackKey(IpProtocol.Udp, vip, 53, Pod, 40000),
            ReverseKey = new ConntrackKey(IpProtocol.Udp, Pod, 40000, Peer, 53),
        };
        FlowResult orphan = FlowPredictor.Predict(Tables(fwd), new FlowQuery(IpProtocol.Udp, Pod, 40000, vip, 53));
        Assert.Equal("new flow", orphan.Stages.Single(s => s.Stage == "conntrack").Decision);
        Assert.Contains("no tracking entry", orphan.Stages.Single(s => s.Stage == "conntrack").Evidence, StringComparison.Ordinal);
    }

    [Fact]
    public void A_piped_entry_is_asked_as_a_new_connection()
    {
        FlowResult r = FlowPredictor.Predict(Tables(Entry(IpProtocol.Udp, 53, approved: true)), new FlowQuery(IpProtocol.Udp, Pod, 40000, Peer, 53, AsNew: true));
        Assert.Equal("new flow", r.Stages.Single(s => s.Stage == "conntrack").Decision);
        Assert.Contains(r.Stages, s => s.Stage == "policy");
    }
}

/// <summary>The Felix settings a prediction reads from Get-FelixBpfConfig -Effective, and the review's policy fixes (end of tier before v3.30, thread-safe rules).</summary>
public class FlowSettingsTests
{
    private static FelixEffectiveValue Value(string field, string value, FelixValueSource source = FelixValueSource.Environment) =>
        new() { Node = "n1", Field = field, Value = value, Source = source, SourceDetail = source == FelixValueSource.BuiltInDefault ? "Felix's default in v3.30" : "FELIX_X in DaemonSet kube-system/calico-node" };

    [Theory]
    [InlineData("ACCEPT", "accept")]
    [InlineData("Drop", "drop")]
    [InlineData("Return", "return")]
    [InlineData("sideways", null)]
    public void DefaultEndpointToHostAction_is_read_in_any_case(string value, string? expected)
    {
        FlowSettings s = FlowSettings.From(new[] { Value("defaultEndpointToHostAction", value) });
        Assert.Equal(expected, s.ToHost);
        Assert.Contains("DaemonSet", s.EndpointToHostAction!.Source, StringComparison.Ordinal);
        Assert.Null(FlowSettings.Unknown.ToHost);
    }

    [Fact]
    public void The_connect_time_load_balancer_covers_tcp_by_default_and_udp_when_enabled()
    {
        FlowSettings tcp = FlowSettings.From(new[] { Value("bpfConnectTimeLoadBalancing", "TCP", FelixValueSource.BuiltInDefault) });
        Assert.True(tcp.ConnectTimeFor(IpProtocol.Tcp));
        Assert.False(tcp.ConnectTimeFor(IpProtocol.Udp));
        Assert.True(FlowSettings.From(new[] { Value("bpfConnectTimeLoadBalancing", "Enabled") }).ConnectTimeFor(IpProtocol.Udp));
        Assert.False(FlowSettings.From(new[] { Value("bpfConnectTimeLoadBalancing", "Disabled") }).ConnectTimeFor(IpProtocol.Tcp));
        Assert.Null(FlowSettings.Unknown.ConnectTimeFor(IpProtocol.Tcp));
    }

    [Fact]
    public void A_tier_end_a_file_before_v3_30_does_not_write_is_unknown_except_before_dnat()
    {
        // v3.29.7 pol_prog_builder.go:506 writes "End of tier NAME" without the action; v3.30.7:507 adds it.
        PolicyTier old = new("default", PolicyTier.EndNotWritten, Array.Empty<PolicyBlock>());
        var none = new IpSetMembers(Array.Empty<KeyValuePair<string, IEnumerable<string>>>());
        PolicyPacket p = new(6, IPAddress.Parse("10.65.0.5"), 4000, IPAddress.Parse("10.65.0.2"), 80, IPAddress.Parse("10.65.0.2"), 80);
        PolicyDecision workload = PolicyEvaluator.Evaluate(new PolicyProgram { Tiers = new[] { old } }, p, none);
        Assert.Equal(PolicyVerdict.Unknown, workload.Verdict);
        Assert.Contains("does not say the tier's end action", workload.Reason, StringComparison.Ordinal);
        // Felix ends every pre-DNAT tier with pass: the host's normal tiers decide (here a tier that allows).
        RuleMatch all = RuleMatch.Parse("action:\"allow\"");
        PolicyDecision host = PolicyEvaluator.Evaluate(new PolicyProgram
        {
            ForHostInterface = true,
            HostPreDnatTiers = new[] { old },
            HostNormalTiers = new[] { new PolicyTier("default", "deny", new[] { new PolicyBlock("default.allow", new[] { new PolicyProgramRule(all, 1) }) }) },
        }, p with { DestinationIsHost = true }, none);
        Assert.Equal(PolicyVerdict.Allow, host.Verdict);

        string v329 = """{"policyInfo":[{"insn":[183,0,0,0,0,0,0,0],"comments":["Start of tier default","End of tier default"]}],"error":""}""";
        Assert.Equal(PolicyTier.EndNotWritten, PolicyDebugProgram.Read(v329, forHostInterface: false, ipv6: false).Program.Tiers.Single().EndAction);
        string v330 = """{"policyInfo":[{"insn":[183,0,0,0,0,0,0,0],"comments":["Start of tier default","End of tier default: "]}],"error":""}""";
        Assert.Equal(string.Empty, PolicyDebugProgram.Read(v330, forHostInterface: false, ipv6: false).Program.Tiers.Single().EndAction);
    }

    [Fact]
    public void One_rule_gives_every_thread_the_same_filtered_rule()
    {
        RuleMatch r = RuleMatch.Parse("action:\"allow\" src_net:\"10.65.0.0/16\" src_net:\"fd00::/64\"");
        RuleMatch?[] seen = new RuleMatch?[64];
        Parallel.For(0, seen.Length, i => seen[i] = r.ForIpVersion(4));
        Assert.All(seen, s => Assert.Same(seen[0], s));
        Assert.Equal(new[] { "10.65.0.0/16" }, seen[0]!.SrcNet);
        Assert.Equal(new[] { "fd00::/64" }, r.ForIpVersion(6)!.SrcNet);
    }
}

/// <summary>
/// A full conntrack table (tc.c at v3.30.7: the entry is created after policy allowed the flow,
/// conntrack_create at 1409-1419; plain traffic from a host interface to this host goes on
/// without one) and failsafe ports (tc.c:601-606), on tables built here with Felix-shaped debug files.
/// </summary>
public sealed class FlowFullTableTests : IDisposable
{
    private static readonly IPAddress Pod = IPAddress.Parse("10.65.0.8");
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "calicobpf-flowfull-" + Guid.NewGuid().ToString("N"));

    public FlowFullTableTests()
    {
        Directory.CreateDirectory(_dir);
        var allow8080 = new PolicySpec
        {
            Interface = "cali1", Hook = "egress",
            Tiers = { new PolicySpec.TierSpec { Policies = { new PolicySpec.PolicyRulesSpec { Name = "default/web", Rules = { new PolicySpec.RuleSpec { Protocol = "TCP", Ports = { 8080 } } } } } } },
        };
        PolicySeeding.Write(new[] { allow8080 }, _dir, null);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private FlowTables Tables(long entries, params FailsafePort[] failsafes) => Tables(entries, FlowSettings.Unknown, failsafes);

    private FlowTables Tables(long entries, FlowSettings settings, params FailsafePort[] failsafes) => new(
        "n1", Array.Empty<ConntrackEntry>(), Array.Empty<NatFrontend>(), Array.Empty<NatAffinity>(),
        new[]
        {
            new Route { Cidr = "10.65.0.8/32", AddressValue = Pod, PrefixLength = 32, Flags = RouteFlags.Local | RouteFlags.Workload | RouteFlags.InPool, IfIndex = 5, Description = "local workload" },
            new Route { Cidr = "10.65.3.0/26", AddressValue = IPAddress.Parse("10.65.3.0"), PrefixLength = 26, Flags = RouteFlags.Workload | RouteFlags.InPool, NextHopValue = IPAddress.Parse("172.18.0.13"), Description = "remote workload" },
            new Route { Cidr = "172.18.0.10/32", AddressValue = IPAddress.Parse("172.18.0.10"), PrefixLength = 32, Flags = RouteFlags.Local | RouteFlags.Host, Description = "local host" },
        },
        new[]
        {
            new InterfaceState { IfIndex = 5, Name = "cali1", Flags = InterfaceStateFlags.Workload | InterfaceStateFlags.V4Ready },
            new InterfaceState { IfIndex = 3, Name = "eth0", Flags = InterfaceStateFlags.Host | InterfaceStateFlags.V4Ready },
            new InterfaceState { IfIndex = 4, Name = "eth1", Flags = InterfaceStateFlags.Host | InterfaceStateFlags.NotManaged },
        },
        new LocalDataplane(_dir, "n1"), _dir)
    {
        ConntrackFill = new ConntrackTally { Map = "cali_v4_ct4", Entries = entries, MaxEntries = 64 },
        Failsafes = failsafes,
        Settings = settings,
    };

    [Theory]
    [InlineData("Drop", FlowVerdict.Deny, "drop")]
    [InlineData("Accept", FlowVerdict.Allow, "accept")]
    [InlineData("Return", FlowVerdict.Allow, "return to the host's iptables")]
    public void Workload_to_host_follows_defaultEndpointToHostAction_after_the_egress_policy(string action, FlowVerdict verdict, string decision)
    {
        // tc.c:1315-1321 at v3.30.7: only a host_drop program drops it, and only after policy allowed it.
        var settings = FlowSettings.From(new[] { new FelixEffectiveValue { Node = "n1", Field = "defaultEndpointToHostAction", Value = action, Source = FelixValueSource.GlobalConfiguration, SourceDetail = "FelixConfiguration default" } });
        FlowResult r = FlowPredictor.Predict(Tables(10, settings), new FlowQuery(IpProtocol.Tcp, Pod, 40000, IPAddress.Parse("172.18.0.10"), 8080));
        Assert.Equal(verdict, r.Verdict);
        Assert.Equal(decision, r.Stages.Single(s => s.Stage == "host").Decision);
        Assert.Equal(new[] { "interface", "conntrack", "NAT", "route", "route", "policy", "host" }, r.Stages.Select(s => s.Stage));
        FlowResult denied = FlowPredictor.Predict(Tables(10, settings), new FlowQuery(IpProtocol.Tcp, Pod, 40000, IPAddress.Parse("172.18.0.10"), 23));
        Assert.Equal(FlowVerdict.Deny, denied.Verdict);
        Assert.DoesNotContain(denied.Stages, s => s.Stage == "host");
    }

    [Fact]
    public void A_full_table_drops_what_policy_allows_and_leaves_policy_its_own_denies()
    {
        FlowResult allowed = FlowPredictor.Predict(Tables(64), new FlowQuery(IpProtocol.Tcp, Pod, 40000, IPAddress.Parse("10.65.3.4"), 8080));
        Assert.Equal(FlowVerdict.Deny, allowed.Verdict);
        Assert.StartsWith("conntrack is full on n1 (cali_v4_ct4, 64 of 64 entries)", allowed.Reason, StringComparison.Ordinal);
        Assert.Equal("cannot create the entry", allowed.Stages.Last().Decision);
        FlowResult denied = FlowPredictor.Predict(Tables(64), new FlowQuery(IpProtocol.Tcp, Pod, 40000, IPAddress.Parse("10.65.3.4"), 23));
        Assert.Equal(FlowVerdict.Deny, denied.Verdict);
        Assert.DoesNotContain("conntrack is full", denied.Reason, StringComparison.Ordinal);
        Assert.Contains("end of tier", denied.Reason, StringComparison.Ordinal);
        // Below full the flow goes on (to the other node, Unknown here), and the conntrack stage says how full.
        FlowResult room = FlowPredictor.Predict(Tables(60), new FlowQuery(IpProtocol.Tcp, Pod, 40000, IPAddress.Parse("10.65.3.4"), 8080));
        Assert.Equal(FlowVerdict.Unknown, room.Verdict);
        Assert.Contains("holds 60 of 64 entries (94 %)", room.Stages.First(s => s.Stage == "conntrack").Evidence, StringComparison.Ordinal);
    }

    [Fact]
    public void Plain_traffic_from_a_host_interface_to_this_host_needs_no_entry_and_failsafe_ports_skip_policy()
    {
        // No debug file for eth0, but Felix writes them here (cali1's): no host endpoint, allowed without policy, and without an entry.
        FlowResult plain = FlowPredictor.Predict(Tables(64), new FlowQuery(IpProtocol.Tcp, IPAddress.Parse("192.0.2.1"), 40000, IPAddress.Parse("172.18.0.10"), 8022, Interface: "eth0"));
        Assert.Equal(FlowVerdict.Allow, plain.Verdict);
        Assert.Contains("1 debug files in", plain.Stages.Single(s => s.Stage == "policy").Evidence, StringComparison.Ordinal);
        var ssh = new FailsafePort(IpProtocol.Tcp, 22, false, AddressPrefix.Parse("0.0.0.0/0"));
        FlowResult failsafe = FlowPredictor.Predict(Tables(10, ssh), new FlowQuery(IpProtocol.Tcp, IPAddress.Parse("192.0.2.1"), 40000, IPAddress.Parse("172.18.0.10"), 22, Interface: "eth0"));
        Assert.Equal("skipped: failsafe port", failsafe.Stages.Single(s => s.Stage == "policy").Decision);
        Assert.Equal(FlowVerdict.Allow, failsafe.Verdict);
        // Without any debug file the host endpoint's policy cannot be told.
        Directory.Delete(_dir, recursive: true);
        Directory.CreateDirectory(_dir);
        FlowResult blind = FlowPredictor.Predict(Tables(10), new FlowQuery(IpProtocol.Tcp, IPAddress.Parse("192.0.2.1"), 40000, IPAddress.Parse("172.18.0.10"), 8022, Interface: "eth0"));
        Assert.Equal(FlowVerdict.Unknown, blind.Verdict);
        Assert.Contains("bpfPolicyDebugEnabled may be off", blind.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void An_interface_calico_does_not_manage_is_unknown_at_either_hook()
    {
        foreach (bool egress in new[] { false, true })
        {
            FlowResult r = FlowPredictor.Predict(Tables(10), new FlowQuery(IpProtocol.Tcp, IPAddress.Parse("192.0.2.1"), 40000, IPAddress.Parse("172.18.0.10"), 8022, Interface: "eth1", Egress: egress));
            Assert.Equal(FlowVerdict.Unknown, r.Verdict);
            Assert.StartsWith("Calico attaches no programs to eth1", r.Reason, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Failsafe_keys_are_calicos_layout()
    {
        // failsafe.h at v3.30.7: prefixlen u32 (32 + CIDR bits), port u16 LE, proto u8, flags u8 (1: outbound), address.
        byte[] key = FailsafeMap.EncodeKey(IpProtocol.Tcp, 22, outbound: false, AddressPrefix.Parse("10.0.0.0/8"));
        Assert.Equal(new byte[] { 40, 0, 0, 0, 22, 0, 6, 0, 10, 0, 0, 0 }, key);
        FailsafePort back = FailsafeMap.Decode(key);
        Assert.Equal((IpProtocol.Tcp, 22, false, 8), (back.Protocol, back.Port, back.Outbound, back.Prefix.PrefixLength));
        Assert.True(FailsafeMap.Decode(FailsafeMap.EncodeKey(IpProtocol.Udp, 53, outbound: true, AddressPrefix.Parse("0.0.0.0/0"))).Outbound);

        // Calico's own case, felix/bpf/failsafes/failsafe_test.go "ShouldFillEmptyMap" at v3.30.7 (in tcp:22, out udp:53,
        // from 0.0.0.0/0), as its Key.ToSlice writes them (failsafes_map.go:96-106, ZeroCIDRPrefixLen 32): decoded here.
        FailsafePort inbound = FailsafeMap.Decode(new byte[] { 32, 0, 0, 0, 22, 0, 6, 0, 0, 0, 0, 0 });
        FailsafePort outbound = FailsafeMap.Decode(new byte[] { 32, 0, 0, 0, 53, 0, 17, 1, 0, 0, 0, 0 });
        Assert.Equal("inbound tcp:22 from 0.0.0.0/0", inbound.ToString());
        Assert.Equal("outbound udp:53 from 0.0.0.0/0", outbound.ToString());
    }
}
