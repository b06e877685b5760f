using System.Globalization;
using System.Text.Json.Nodes;

namespace CalicoBpf.Tests;

/// <summary>
/// Calico's own unit-test vectors (tests/fixtures/calico-ut, see its README): keys and values as
/// Calico's Go tests and BPF program tests build them, at the release tag each case names, with
/// what Calico's readers report for them. Each case is decoded by our decoders and every value
/// Calico reports is compared; a failure lists all the differences of the case.
/// </summary>
public class CalicoUnitVectorTests
{
    private static readonly ClockSample Clock = new(5_000_000_000_000, new DateTime(2026, 11, 26, 8, 0, 0, DateTimeKind.Utc));

    private static readonly Dictionary<string, JsonArray> Families = new();

    private static string FixtureDirectory()
    {
        string dir = AppContext.BaseDirectory;
        while (!Directory.Exists(Path.Combine(dir, "tests", "fixtures", "calico-ut")))
        {
            dir = Path.GetDirectoryName(dir) ?? throw new DirectoryNotFoundException("tests/fixtures/calico-ut is not above the test binaries.");
        }

        return Path.Combine(dir, "tests", "fixtures", "calico-ut");
    }

    private static JsonArray Cases(string family)
    {
        lock (Families)
        {
            if (!Families.TryGetValue(family, out JsonArray? cases))
            {
                JsonNode doc = JsonNode.Parse(File.ReadAllText(Path.Combine(FixtureDirectory(), family + ".json")))!;
                Assert.Equal(family, (string?)doc["family"]);
                cases = doc["cases"]!.AsArray();
                Families[family] = cases;
            }

            return cases;
        }
    }

    private static IEnumerable<object[]> Ids(string family) => Cases(family).Select(c => new object[] { (string)c!["id"]! });

    private static JsonObject Case(string family, string id) =>
        Cases(family).Single(c => (string?)c!["id"] == id)!.AsObject();

    public static IEnumerable<object[]> ConntrackCases() => Ids("conntrack");

    public static IEnumerable<object[]> CounterCases() => Ids("counters");

    public static IEnumerable<object[]> RouteCases() => Ids("routes");

    public static IEnumerable<object[]> InterfaceStateCases() => Ids("ifstate");

    public static IEnumerable<object[]> NatCases() => Ids("nat");

    public static IEnumerable<object[]> PolicyCases() => Ids("policy");

    public static IEnumerable<object[]> TraceCases() => Ids("trace");

    /// <summary>Collects every difference of a case, then fails once with all of them and the case's provenance.</summary>
    private sealed class Differences
    {
        private readonly JsonObject _case;
        private readonly List<string> _found = new();

        public Differences(JsonObject c) => _case = c;

        public void Equal<T>(string what, T expected, T actual)
        {
            if (!EqualityComparer<T>.Default.Equals(expected, actual))
            {
                _found.Add($"{what}: Calico reports {Show(expected)}, we decode {Show(actual)}");
            }
        }

        public void Sequence<T>(string what, IEnumerable<T> expected, IEnumerable<T> actual)
        {
            T[] e = expected.ToArray(), a = actual.ToArray();
            if (!e.SequenceEqual(a))
            {
                _found.Add($"{what}: Calico reports [{string.Join(", ", e)}], we decode [{string.Join(", ", a)}]");
            }
        }

        public void True(string what, bool condition)
        {
            if (!condition)
            {
                _found.Add(what);
            }
        }

        public bool Found => _found.Count > 0;

        public void Assert()
        {
            if (_found.Count > 0)
            {
                JsonNode? src = _case["source"]?.AsArray().FirstOrDefault();
                Xunit.Assert.Fail($"{_case["id"]} ({_case["release"]}, {src?["path"]}:{src?["lines"]} at {src?["ref"]}):\n  " + string.Join("\n  ", _found));
            }
        }

        private static string Show<T>(T v) => v is null ? "null" : v is string s ? "\"" + s + "\"" : Convert.ToString(v, CultureInfo.InvariantCulture) ?? "null";
    }

    private static BpfMapType MapType(string? name) => name switch
    {
        "percpu_hash" => BpfMapType.PerCpuHash,
        "lpm_trie" => BpfMapType.LpmTrie,
        "lru_hash" => BpfMapType.LruHash,
        _ => BpfMapType.Hash,
    };

    private static VectorDataplane Node(JsonObject c, JsonObject map, int cpus = 1) =>
        new VectorDataplane(cpus, (string)c["release"]!).Map((string)map["name"]!, MapType((string?)map["type"]), (int)map["key_size"]!, (int)map["value_size"]!);

    // ---------------------------------------------------------------- conntrack

    private static readonly Dictionary<string, ConntrackType> TypeNames = new()
    {
        ["normal"] = ConntrackType.Normal,
        ["nat-forward"] = ConntrackType.NatForward,
        ["nat-reverse"] = ConntrackType.NatReverse,
    };

    private static readonly Dictionary<string, TcpState> StateNames = new()
    {
        ["SYN-SENT"] = TcpState.SynSent,
        ["ESTABLISHED"] = TcpState.Established,
        ["CLOSED"] = TcpState.Closed,
        ["RESET"] = TcpState.Reset,
    };

    /// <summary>
    /// The decoder for a case's map, with the case's Calico release: the meaning of conntrack
    /// version 3's offset 0 and of flag 0x8000 depends on it.
    /// </summary>
    private static ConntrackCodec Conntrack(JsonObject map, string release)
    {
        string name = (string)map["name"]!;
        ConntrackLayout layout = ConntrackLayout.For(name, (int)map["version"]!, (int)map["key_size"]!, (int)map["value_size"]!);
        return new ConntrackCodec(layout, "calico-ut", name, Clock, CalicoRelease.Parse(release));
    }

    private static string Endpoint(IPAddress a, int port) => ConntrackText.HostPort(a, port);

    private static void CompareLeg(Differences d, string what, JsonObject expected, ConntrackLeg actual)
    {
        d.Equal(what + ".seqno", (uint)expected["seqno"]!, actual.SequenceNumber);
        d.Equal(what + ".syn", (bool)expected["syn"]!, actual.SynSeen);
        d.Equal(what + ".ack", (bool)expected["ack"]!, actual.AckSeen);
        d.Equal(what + ".fin", (bool)expected["fin"]!, actual.FinSeen);
        d.Equal(what + ".rst", (bool)expected["rst"]!, actual.RstSeen);
        d.Equal(what + ".approved", (bool)expected["approved"]!, actual.Approved);
        d.Equal(what + ".opener", (bool)expected["opener"]!, actual.Opener);
        d.Equal(what + ".ifindex", (int)expected["ifindex"]!, actual.IfIndex);
        if (expected["bytes"] is not null)
        {
            d.Equal(what + ".bytes", (ulong)expected["bytes"]!, actual.Bytes);
            d.Equal(what + ".packets", (uint)expected["packets"]!, actual.Packets);
            d.Equal(what + ".workload", (bool)expected["workload"]!, actual.Workload);
        }
    }

    private static bool LegEquals(JsonObject expected, ConntrackLeg actual)
    {
        var d = new Differences(new JsonObject());
        CompareLeg(d, "leg", expected, actual);
        return !d.Found;
    }

    [Theory]
    [MemberData(nameof(ConntrackCases))]
    public void Conntrack_entries_decode_as_Calico_reads_them(string id)
    {
        JsonObject c = Case("conntrack", id);
        JsonObject exp = c["calico"]!.AsObject();
        ConntrackEntry e = Conntrack(c["map"]!.AsObject(), (string)c["release"]!).Decode(Hex.Parse((string)c["key_hex"]!), Hex.Parse((string)c["value_hex"]!));
        var d = new Differences(c);

        d.Equal("type", TypeNames[(string)exp["type"]!], e.Type);
        d.Equal("protocol", (int)exp["protocol"]!, (int)(byte)e.Protocol);
        d.Equal("key A", (string)exp["key_a"]!, Endpoint(e.Key.AddressAValue, e.Key.PortA));
        d.Equal("key B", (string)exp["key_b"]!, Endpoint(e.Key.AddressBValue, e.Key.PortB));
        d.Equal("flags", (uint)exp["flags"]!, (uint)e.Flags);
        d.Sequence("flag names", exp["flag_names"]!.AsArray().Select(n => (string)n!), e.FlagNames);
        d.Equal("last_seen", (ulong)exp["last_seen"]!, e.LastSeenNanoseconds);
        if (exp["created"] is JsonNode created)
        {
            d.Equal("created (offset 0)", (ulong)created, e.CreatedNanoseconds);
            d.Equal("rst_seen (offset 0 is created in this release)", 0UL, e.ResetSeenNanoseconds);
        }

        if (exp["rst_seen"] is JsonNode rst)
        {
            d.Equal("rst_seen (offset 0)", (ulong)rst, e.ResetSeenNanoseconds);
            d.Equal("created (offset 0 is rst_seen in this release)", 0UL, e.CreatedNanoseconds);
        }

        if (exp["client"] is JsonNode client)
        {
            d.Equal($"client (source; {exp["client_rule"]})", (string)client!, e.Source);
            d.Equal("destination", (string)exp["destination"]!, e.Destination);
        }

        if (exp["service"] is JsonNode service)
        {
            d.Equal("service", (string)service!, e.ServiceEndpoint);
        }

        if (exp["backend"] is JsonNode backend)
        {
            d.Equal("backend", (string)backend!, e.Backend);
        }

        if (exp["rev_key"] is JsonObject rk)
        {
            d.True("a nat-forward entry has a reverse key", e.ReverseKey is not null);
            if (e.ReverseKey is { } r)
            {
                d.Equal("rev_key protocol", (int)rk["protocol"]!, (int)(byte)r.Protocol);
                d.Equal("rev_key A", (string)rk["a"]!, Endpoint(r.AddressAValue, r.PortA));
                d.Equal("rev_key B", (string)rk["b"]!, Endpoint(r.AddressBValue, r.PortB));
            }

            d.Equal("nat_sport", (int)exp["nat_sport"]!, e.NatSourcePort ?? 0);
        }

        if (exp["tun_ip"] is JsonNode tun)
        {
            d.Equal("tun_ip", (string)tun!, (e.TunnelAddressValue ?? IPAddress.Any).ToString());
            d.Equal("orig_sport", (int)exp["orig_sport"]!, e.OriginalSourcePort ?? 0);
        }

        if (exp["orig_src"] is JsonNode osrc)
        {
            d.Equal("orig_src", (string)osrc!, (e.OriginalSourceAddressValue ?? IPAddress.Any).ToString());
        }

        if (exp["a_to_b"] is JsonObject ab && exp["b_to_a"] is JsonObject ba)
        {
            switch ((string?)exp["client_leg"])
            {
                case "a_to_b":
                    CompareLeg(d, "forward leg (a_to_b)", ab, e.Forward);
                    CompareLeg(d, "reverse leg (b_to_a)", ba, e.Reverse);
                    break;
                case "b_to_a":
                    CompareLeg(d, "forward leg (b_to_a)", ba, e.Forward);
                    CompareLeg(d, "reverse leg (a_to_b)", ab, e.Reverse);
                    break;
                default:
                    // Calico cannot tell who opened: only the pair of legs is asserted, in either order.
                    d.True("the two legs are a_to_b and b_to_a in some order",
                        (LegEquals(ab, e.Forward) && LegEquals(ba, e.Reverse)) || (LegEquals(ba, e.Forward) && LegEquals(ab, e.Reverse)));
                    break;
            }
        }

        if (exp.ContainsKey("tcp_state"))
        {
            d.Equal("TCP state", exp["tcp_state"] is JsonNode s ? StateNames[(string)s!] : TcpState.None, e.State);
        }

        d.Assert();
    }

    // ---------------------------------------------------------------- counters

    [Theory]
    [MemberData(nameof(CounterCases))]
    public void Counters_are_named_and_summed_as_Calico_does(string id)
    {
        JsonObject c = Case("counters", id);
        JsonObject map = c["map"]!.AsObject();
        int cpus = (int)c["cpus"]!;
        byte[] value = c["values_hex"]!.AsArray().SelectMany(v => Hex.Parse((string)v!)).ToArray();
        VectorDataplane node = Node(c, map, cpus).Add((string)map["name"]!, Hex.Parse((string)c["key_hex"]!), value);
        JsonObject exp = c["calico"]!.AsObject();
        int hook = (int)exp["hook"]!;
        List<InterfaceCounter> rows = CounterReader.Read(node).ToList();
        var d = new Differences(c);

        d.True($"the reader yields rows for ifindex {exp["ifindex"]}", rows.All(r => r.IfIndex == (int)exp["ifindex"]!) && rows.Count > 0);
        foreach (JsonObject x in exp["counters"]!.AsArray().Select(n => n!.AsObject()))
        {
            int index = (int)x["index"]!;
            InterfaceCounter? row = rows.SingleOrDefault(r => r.Index == index);
            if (x["printed"] is JsonNode printed && !(bool)printed)
            {
                d.True($"index {index} has no row ({x["why"]}), but we print \"{row?.Category} {row?.Name}\"", row is null);
                continue;
            }

            if (row is null)
            {
                d.True($"index {index} ({x["category"]} {x["caption"]}) has a row", false);
                continue;
            }

            d.Equal($"index {index} category", (string)x["category"]!, row.Category.ToString());
            d.Equal($"index {index} caption", (string)x["caption"]!, row.Name);
            ulong? total = hook switch { CounterLayout.HookIngress => row.Ingress, CounterLayout.HookEgress => row.Egress, _ => row.Xdp };
            d.Equal($"index {index} total over CPUs (full 64 bits)", (ulong?)(ulong)x["total"]!, total);
        }

        // calico-bpf sorts captions byte-wise, so "VXLAN encap ..." comes before "by policy"; the rows
        // are Calico's, in its category order, with captions compared ignoring case.
        d.Sequence("row order (category, then caption, ignoring case)",
            exp["row_order"]!.AsArray().Select(r => (Category: (string)r![0]!, Caption: (string)r[1]!))
                .OrderBy(r => r.Category == "Unknown" ? 1 : 0).ThenBy(r => r.Category, StringComparer.Ordinal).ThenBy(r => r.Caption, StringComparer.OrdinalIgnoreCase)
                .Select(r => r.Category + " " + r.Caption),
            rows.Select(r => r.Category + " " + r.Name));
        d.Assert();
    }

    // ---------------------------------------------------------------- routes

    [Theory]
    [MemberData(nameof(RouteCases))]
    public void Routes_are_described_and_sorted_as_calico_bpf_does(string id)
    {
        JsonObject c = Case("routes", id);
        JsonObject map = c["map"]!.AsObject();
        var d = new Differences(c);
        foreach (JsonObject x in c["entries"]!.AsArray().Select(n => n!.AsObject()))
        {
            Route r = RouteMap.Decode("calico-ut", false, Hex.Parse((string)x["key_hex"]!), Hex.Parse((string)x["value_hex"]!), null, CalicoRelease.Parse((string)c["release"]!));
            JsonObject exp = x["calico"]!.AsObject();
            d.Equal($"{exp["cidr"]} cidr", (string)exp["cidr"]!, r.Cidr);
            d.Equal($"{exp["cidr"]} flags", (uint)exp["flags"]!, (uint)r.Flags);
            d.Equal($"{exp["cidr"]} (flags 0x{(uint)exp["flags"]!:x}) text", (string)exp["text"]!, r.Description);
        }

        if (c["calico_order"] is JsonArray order)
        {
            VectorDataplane node = Node(c, map);
            foreach (JsonObject x in c["entries"]!.AsArray().Select(n => n!.AsObject()))
            {
                node.Add((string)map["name"]!, Hex.Parse((string)x["key_hex"]!), Hex.Parse((string)x["value_hex"]!));
            }

            d.Sequence("order", order.Select(o => (string)o!), RouteMap.Read(node, false).Select(r => r.Cidr));
        }

        d.Assert();
    }

    // ---------------------------------------------------------------- interface state

    [Theory]
    [MemberData(nameof(InterfaceStateCases))]
    public void Interface_state_decodes_with_the_release_flag_names(string id)
    {
        JsonObject c = Case("ifstate", id);
        JsonObject map = c["map"]!.AsObject();
        VectorDataplane node = Node(c, map);
        JsonObject[] entries = c["entries"]!.AsArray().Select(n => n!.AsObject()).ToArray();
        foreach (JsonObject x in entries)
        {
            node.Add((string)map["name"]!, Hex.Parse((string)x["key_hex"]!), Hex.Parse((string)x["value_hex"]!));
        }

        List<InterfaceState> states = InterfaceStateMap.Read(node).ToList();
        var d = new Differences(c);
        foreach (JsonObject exp in entries.Select(x => x["calico"]!.AsObject()))
        {
            int ifindex = (int)exp["ifindex"]!;
            InterfaceState? s = states.SingleOrDefault(x => x.IfIndex == ifindex);
            if (s is null)
            {
                d.True($"ifindex {ifindex} is decoded", false);
                continue;
            }

            d.Equal($"{ifindex} name", (string)exp["name"]!, s.Name);
            d.Equal($"{ifindex} flags", (uint)exp["flags"]!, (uint)s.Flags);
            IEnumerable<string> names = exp["flag_names"]!.AsArray().Select(n => (string)n!);
            if (exp["flag_names_unordered"] is not null)
            {
                d.Sequence($"{ifindex} flag names (any order)", names.Order(StringComparer.Ordinal), s.FlagNames.Order(StringComparer.Ordinal));
            }
            else
            {
                d.Sequence($"{ifindex} flag names", names, s.FlagNames);
            }

            void Slot(string field, int? actual)
            {
                if (exp[field] is JsonNode v)
                {
                    d.Equal($"{ifindex} {field}", (int?)(int)v, actual);
                }
            }

            Slot("xdp_policy", s.XdpPolicyV4);
            Slot("ingress_policy", s.IngressPolicyV4);
            Slot("egress_policy", s.EgressPolicyV4);
            Slot("xdp_policy_v4", s.XdpPolicyV4);
            Slot("ingress_policy_v4", s.IngressPolicyV4);
            Slot("egress_policy_v4", s.EgressPolicyV4);
            Slot("xdp_policy_v6", s.XdpPolicyV6);
            Slot("ingress_policy_v6", s.IngressPolicyV6);
            Slot("egress_policy_v6", s.EgressPolicyV6);
            Slot("tc_ingress_filter", s.TcIngressFilter);
            Slot("tc_egress_filter", s.TcEgressFilter);
        }

        d.Assert();
    }

    // ---------------------------------------------------------------- NAT

    private static VectorDataplane NatNode(JsonObject c)
    {
        var node = new VectorDataplane(release: (string)c["release"]!);
        JsonObject maps = c["maps"]!.AsObject();
        foreach ((string role, JsonNode? m) in maps)
        {
            JsonObject map = m!.AsObject();
            node.Map((string)map["name"]!, MapType((string?)map["type"]), (int)map["key_size"]!, (int)map["value_size"]!);
            string list = role switch { "frontend" => "frontends", "backend" => "backends", _ => "entries" };
            foreach (JsonObject x in (c[list]?.AsArray() ?? new JsonArray()).Select(n => n!.AsObject()))
            {
                node.Add((string)map["name"]!, Hex.Parse((string)x["key_hex"]!), Hex.Parse((string)x["value_hex"]!));
            }
        }

        return node;
    }

    [Theory]
    [MemberData(nameof(NatCases))]
    public void Nat_maps_decode_as_calico_bpf_dumps_them(string id)
    {
        JsonObject c = Case("nat", id);
        JsonObject exp = c["calico"]!.AsObject();
        VectorDataplane node = NatNode(c);
        var d = new Differences(c);
        JsonObject maps = c["maps"]!.AsObject();
        if (maps.ContainsKey("frontend"))
        {
            List<NatFrontend> fes = NatMaps.ReadFrontends(node, new NatQuery()).ToList();
            foreach (JsonObject f in exp["frontends"]!.AsArray().Select(n => n!.AsObject()))
            {
                string at = $"{f["addr"]}:{f["port"]}/{f["proto"]}";
                NatFrontend? fe = fes.SingleOrDefault(x => x.AddressValue.ToString() == (string)f["addr"]! && x.Port == (int)f["port"]! && (int)(byte)x.Protocol == (int)f["proto"]!);
                if (fe is null)
                {
                    d.True($"frontend {at} is decoded", false);
                    continue;
                }

                d.Equal($"{at} id", (uint)f["id"]!, fe.ServiceId);
                d.Equal($"{at} count", (int)f["count"]!, fe.BackendCount);
                d.Equal($"{at} local", (int)f["local"]!, fe.LocalBackendCount);
                d.Equal($"{at} affinity", TimeSpan.FromSeconds((int)f["affinity_seconds"]!), fe.AffinityTimeoutValue);
                d.Equal($"{at} flags", (uint)f["flags"]!, (uint)fe.Flags);
                JsonObject[] backs = f["backends"]!.AsArray().Select(n => n!.AsObject()).ToArray();
                d.Equal($"{at} backend lines", backs.Length, fe.Backends.Count);
                foreach (JsonObject b in backs)
                {
                    int ordinal = (int)b["ordinal"]!;
                    NatBackend? be = fe.Backends.SingleOrDefault(x => x.Ordinal == ordinal);
                    bool missing = b["missing"] is not null;
                    d.True($"{at} backend {ordinal}: {(missing ? "is missing" : b["addr"] + ":" + b["port"])}, we decode {be?.ToString() ?? "nothing"}",
                        be is not null && be.Missing == missing && (missing || (be.AddressValue!.ToString() == (string)b["addr"]! && be.Port == (int)b["port"]!)));
                }
            }
        }

        if (maps["maglev"] is JsonObject mg)
        {
            d.Sequence("Maglev entries (svc, ordinal, backend), sorted as calico-bpf sorts them",
                exp["sorted"]!.AsArray().Select(x => $"{x!["svc_id"]} {x["ordinal"]} {x["addr"]}:{x["port"]}"),
                NatMaps.ReadMaglev(node, false).OrderBy(m => m.ServiceId).ThenBy(m => m.Ordinal).Select(m => $"{m.ServiceId} {m.Ordinal} {m.BackendAddressValue}:{m.BackendPort}"));
        }

        if (maps["affinity"] is JsonObject af)
        {
            bool v6 = ((string)af["name"]!).StartsWith("cali_v6", StringComparison.Ordinal);
            List<NatAffinity> got = NatMaps.ReadAffinity(node, v6).ToList();
            foreach (JsonObject x in exp["entries"]!.AsArray().Select(n => n!.AsObject()))
            {
                NatAffinity? a = got.SingleOrDefault(g => g.ClientAddressValue.Equals(IPAddress.Parse((string)x["client"]!)));
                if (a is null)
                {
                    d.True($"affinity of client {x["client"]} is decoded", false);
                    continue;
                }

                d.Equal("service", $"{x["addr"]}:{x["port"]}/{x["proto"]}", $"{a.ServiceAddressValue}:{a.ServicePort}/{(byte)a.Protocol}");
                d.Equal("backend", $"{x["backend_addr"]}:{x["backend_port"]}", $"{a.BackendAddressValue}:{a.BackendPort}");
                d.Equal("ts", (ulong)x["ts"]!, a.TimestampNanoseconds);
            }
        }

        d.Assert();
    }

    // ---------------------------------------------------------------- policy debug

    [Theory]
    [MemberData(nameof(PolicyCases))]
    public void Policy_debug_files_read_as_calico_bpf_reads_them(string id)
    {
        JsonObject c = Case("policy", id);
        var hits = c["hits"]!.AsObject().ToDictionary(h => ulong.Parse(h.Key, CultureInfo.InvariantCulture), h => (ulong)h.Value!);
        PolicyHook hook = Enum.Parse<PolicyHook>((string)c["hook"]!, ignoreCase: true);
        List<PolicyRule> rules = PolicyDebug.Parse(c["document"]!.ToJsonString(), "calico-ut", (string)c["iface"]!, hook, false, hits).ToList();
        JsonObject[] exp = c["calico"]!["rules"]!.AsArray().Select(n => n!.AsObject()).ToArray();
        var d = new Differences(c);
        d.Equal("rules", exp.Length, rules.Count);
        for (int i = 0; i < Math.Min(exp.Length, rules.Count); i++)
        {
            JsonObject x = exp[i];
            PolicyRule r = rules[i];
            d.Equal($"rule {i} tier", (string)x["tier"]!, r.Tier);
            d.Equal($"rule {i} action", (string)x["action"]!, r.Action);
            if (x["end_of_tier"] is not null)
            {
                d.True($"rule {i} is the end of tier {x["tier"]}, we decode \"{r.Rule}\" of policy \"{r.Policy}\"",
                    r.Rule.StartsWith("end of tier", StringComparison.OrdinalIgnoreCase) && r.Policy.Length == 0);
                continue;
            }

            d.Equal($"rule {i} policy", (string)x["policy"]!, r.Policy);
            d.Equal($"rule {i} match id", (ulong?)(ulong)x["match_id"]!, r.MatchId);
            d.Equal($"rule {i} hit count", (ulong?)(ulong)x["hit_count"]!, r.HitCount);
            if (x["matches"] is JsonArray m)
            {
                d.Sequence($"rule {i} matches", m.Select(s => (string)s!), r.Matches);
            }

            if (x["policy_kind"] is JsonNode k)
            {
                d.Equal($"rule {i} policy kind", (string)k!, r.PolicyKind);
            }

            if (x["matches_with_ip_sets"] is JsonObject withSets)
            {
                var members = withSets["ip_sets"]!.AsObject().ToDictionary(
                    p => IpSetMap.ParseSetId(p.Key), p => p.Value!.AsArray().Select(v => (string)v!).ToArray());
                d.Sequence($"rule {i} matches with IP sets", withSets["matches"]!.AsArray().Select(s => (string)s!),
                    r.Matches.Select(line => PolicyDebug.ResolveIpSets(line, members)));
            }
        }

        d.Assert();
    }

    // ---------------------------------------------------------------- trace lines

    [Theory]
    [MemberData(nameof(TraceCases))]
    public void Trace_lines_parse_as_each_release_prints_them(string id)
    {
        JsonObject c = Case("trace", id);
        JsonObject exp = c["calico"]!.AsObject();
        TraceLogEntry t = TraceLogParser.Parse((string)c["line"]!, "calico-ut", release: CalicoRelease.Parse((string)c["release"]!));
        var d = new Differences(c);
        d.Equal("interface", (string?)exp["interface"], t.Interface);
        d.Equal("direction", (string)exp["direction"]!, t.Direction.ToString());
        d.Equal("IPv6", (bool)exp["ipv6"]!, t.IPv6);
        if (exp["tag"] is JsonNode tag)
        {
            d.Equal("tag", (string)tag!, t.Tag);
        }

        d.Equal("result", (string?)exp["result"], t.Result);
        if (exp["code"] is JsonNode code)
        {
            d.Equal("code", (int?)(int)code, t.Code);
        }

        if (exp["reason_enum"] is not null)
        {
            d.Equal($"reason ({exp["reason_enum"]})", (string?)exp["reason"], t.Reason);
        }

        if (exp["execution_ns"] is JsonNode ns)
        {
            d.Equal("execution time (ns)", (long?)(long)ns, t.ExecutionNanoseconds);
        }

        d.Assert();
    }

    // ---------------------------------------------------------------- the fixtures themselves

    public static IEnumerable<object[]> FamilyNames() => new[] { "conntrack", "counters", "routes", "ifstate", "nat", "policy", "trace" }.Select(f => new object[] { f });

    [Theory]
    [MemberData(nameof(FamilyNames))]
    public void Every_case_names_its_release_and_where_in_Calico_it_comes_from(string family)
    {
        foreach (JsonObject c in Cases(family).Select(n => n!.AsObject()))
        {
            string id = (string)c["id"]!;
            Assert.Matches(@"^v\d+\.\d+\.\d+(-[0-9A-Za-z.]+)?$", (string)c["release"]!);
            JsonArray src = c["source"]!.AsArray();
            Assert.True(src.Count > 0, id + " has no source");
            foreach (JsonNode? s in src)
            {
                Assert.Equal("projectcalico/calico", (string?)s!["repo"]);
                Assert.Matches("^[0-9a-f]{40}$", (string)s["commit"]!);
                Assert.Matches(@"^\d+(-\d+)?$", (string)s["lines"]!);
            }
        }
    }
}
