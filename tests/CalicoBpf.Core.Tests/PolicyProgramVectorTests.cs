using System.Net;
using System.Text.Json.Nodes;
using CalicoBpf.Flow;

namespace CalicoBpf.Tests;

/// <summary>
/// Calico's own policy-program tests (felix/bpf/ut/pol_prog_test.go, ported as data in
/// tests/fixtures/calico-ut/policy-programs.json): every rule set, IP set and packet of the TC,
/// host and XDP tables, with the verdict Calico's compiled program gave. PolicyEvaluator, reading
/// each rule from its protobuf text as a policy debug file holds it, must give the same verdict
/// for every packet. A failing case lists each packet it got wrong.
/// </summary>
public class PolicyProgramVectorTests
{
    private static readonly Lazy<JsonArray> All = new(() =>
    {
        string dir = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(dir, "tests", "fixtures", "calico-ut", "policy-programs.json")))
        {
            dir = Path.GetDirectoryName(dir) ?? throw new FileNotFoundException("tests/fixtures/calico-ut/policy-programs.json is not above the test binaries.");
        }

        return JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "tests", "fixtures", "calico-ut", "policy-programs.json")))!["cases"]!.AsArray();
    });

    public static IEnumerable<object[]> Cases() => All.Value.Select(c => new object[] { (string)c!["id"]! });

    [Fact]
    public void The_port_holds_every_case_and_packet_of_calicos_three_tables()
    {
        Assert.Equal(99, All.Value.Count);
        var packets = All.Value.SelectMany(c => c!["packets"]!.AsArray()).ToList();
        Assert.Equal(595, packets.Count);
        Assert.Equal(263, packets.Count(p => (string?)p!["expect"] == "allow"));
        Assert.Equal(330, packets.Count(p => (string?)p!["expect"] == "deny"));
        Assert.Equal(2, packets.Count(p => (string?)p!["expect"] == "nomatch"));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Each_packet_gets_calicos_verdict(string id)
    {
        JsonObject c = All.Value.Single(x => (string?)x!["id"] == id)!.AsObject();
        PolicyProgram program = Program(c);
        var sets = new IpSetMembers((c["ipSets"]?.AsObject() ?? new JsonObject())
            .Select(kv => new KeyValuePair<string, IEnumerable<string>>(kv.Key, kv.Value!.AsArray().Select(m => (string)m!).ToList())));
        var wrong = new List<string>();
        foreach (JsonNode? p in c["packets"]!.AsArray())
        {
            PolicyPacket packet = Packet(p!, program.IpVersion);
            PolicyDecision d = PolicyEvaluator.Evaluate(program, packet, sets);
            string want = (string)p!["expect"]!;
            string got = d.Verdict switch { PolicyVerdict.Allow => "allow", PolicyVerdict.Deny => "deny", PolicyVerdict.NoMatch => "nomatch", _ => "unknown" };
            if (got != want)
            {
                wrong.Add($"line {p["line"]}: {p.ToJsonString()} expected {want}, got {got} ({d.Reason})");
            }
        }

        Assert.True(wrong.Count == 0, $"{id} '{c["name"]}':\n" + string.Join("\n", wrong));
    }

    /// <summary>
    /// The same packets through the program read back from the debug file Felix's builder writes for
    /// the case (the fixture's debug.document: comments, labels and instruction bytes as
    /// pol_prog_builder.go and asm.go emit them at v3.30.7) and the IP set map's members by id. The
    /// file gives no id for named-port sets: MapIpSetMembership derives it as Felix's allocator does
    /// (the fixture's ipSetIds come from the harness's own idalloc, ported by the generator).
    /// </summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void Each_packet_gets_calicos_verdict_from_the_debug_file(string id)
    {
        JsonObject c = All.Value.Single(x => (string?)x!["id"] == id)!.AsObject();
        JsonObject debug = c["debug"]!.AsObject();
        JsonObject rules = c["rules"]!.AsObject();
        int ipVersion = (int?)c["ipVersion"] ?? 4;
        DebugProgram read = PolicyDebugProgram.Read(debug["document"]!.ToJsonString(), (bool?)rules["forHostInterface"] ?? false, ipVersion == 6);
        Assert.Empty(read.Problems);
        var members = new List<IpSetMember>();
        foreach ((string name, JsonNode? list) in c["ipSets"]?.AsObject() ?? new JsonObject())
        {
            ulong setId = (ulong)debug["ipSetIds"]![name]!;
            foreach (JsonNode? m in list!.AsArray())
            {
                string member = (string)m!;
                string[] parts = member.Split(',');
                Maps.AddressPrefix cidr = Maps.AddressPrefix.Parse(parts[0]);
                string[]? named = parts.Length > 1 ? parts[1].Split(':') : null;
                members.Add(new IpSetMember
                {
                    SetId = setId,
                    AddressValue = cidr.Address,
                    PrefixLength = cidr.PrefixLength,
                    Port = named is null ? null : int.Parse(named[1], System.Globalization.CultureInfo.InvariantCulture),
                    Protocol = named is null ? null : named[0] == "tcp" ? IpProtocol.Tcp : IpProtocol.Udp,
                });
            }
        }

        var sets = new MapIpSetMembership(read.IpSetIds, members);
        var wrong = new List<string>();
        foreach (JsonNode? p in c["packets"]!.AsArray())
        {
            PolicyDecision d = PolicyEvaluator.Evaluate(read.Program, Packet(p!, ipVersion), sets);
            string want = (string)p!["expect"]!;
            string got = d.Verdict switch { PolicyVerdict.Allow => "allow", PolicyVerdict.Deny => "deny", PolicyVerdict.NoMatch => "nomatch", _ => "unknown" };
            if (got != want)
            {
                wrong.Add($"line {p["line"]}: {p.ToJsonString()} expected {want}, got {got} ({d.Reason})");
            }
        }

        Assert.True(wrong.Count == 0, $"{id} '{c["name"]}':\n" + string.Join("\n", wrong));
    }

    [Fact]
    public void Ip_set_ids_are_felixs_allocator_hash()
    {
        // felix/idalloc/idalloc_test.go at v3.30.7, lines 25-27 and 47: Calico keeps two names whose first
        // candidate ids collide ("Saved collision no longer collides; maybe the hash algorithm was changed?").
        Assert.Equal(MapIpSetMembership.TrialHash("d17cf4aefa59f7de", 0), MapIpSetMembership.TrialHash("db841982800ad28c", 0));
        Assert.NotEqual(MapIpSetMembership.TrialHash("d17cf4aefa59f7de", 0), MapIpSetMembership.TrialHash("d17cf4aefa59f7de", 1));
        // The id the policy-program harness gave setA (the fixture's debug.ipSetIds).
        Assert.Equal(0xa6c925f32bd75a04UL, MapIpSetMembership.TrialHash("setA", 0));
    }

    [Fact]
    public void A_decision_names_the_rule_and_why_the_rules_before_it_did_not_match()
    {
        RuleMatch tcp80 = RuleMatch.Parse("action:\"allow\" protocol:{name:\"tcp\"} dst_ports:{first:80 last:80}");
        RuleMatch deny10 = RuleMatch.Parse("action:\"deny\"  src_net:\"10.0.0.0/8\"");
        var program = new PolicyProgram
        {
            Tiers = new[] { new PolicyTier("default", string.Empty, new[] { new PolicyBlock("default/allow-web", new[] { new PolicyProgramRule(tcp80, 7), new PolicyProgramRule(deny10, 8) }) }) },
        };
        var none = new IpSetMembers(Array.Empty<KeyValuePair<string, IEnumerable<string>>>());
        PolicyPacket udp = new(17, IPAddress.Parse("10.0.0.5"), 4000, IPAddress.Parse("10.65.0.2"), 80, IPAddress.Parse("10.65.0.2"), 80);

        PolicyDecision d = PolicyEvaluator.Evaluate(program, udp, none);

        Assert.Equal(PolicyVerdict.Deny, d.Verdict);
        Assert.Equal(8UL, d.DecidedBy!.MatchId);
        Assert.Equal("default/allow-web", d.DecidedBy.Policy);
        Assert.Equal("protocol 17 is not 6", d.Steps[0].Why);
        Assert.Contains("rule 1 (deny)", d.Reason, StringComparison.Ordinal);

        PolicyDecision other = PolicyEvaluator.Evaluate(program, udp with { Source = IPAddress.Parse("192.168.0.1") }, none);
        Assert.Equal(PolicyVerdict.Deny, other.Verdict);
        Assert.Null(other.DecidedBy!.MatchId);
        Assert.Contains("end of tier default", other.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Rule_text_is_read_as_protobuf_go_prints_it()
    {
        // The shape of felix/fv/bpf_policy_dump_test.go's rule line, with protobuf-go's random double space.
        RuleMatch r = RuleMatch.Parse("action:\"allow\"  protocol:{number:6}  src_net:\"10.65.0.0/16\" src_net:\"fd00::/64\" not_dst_ports:{first:22 last:22} icmp_type_code:{type:8} rule_id:\"abc\" metadata:{annotations:{key:\"a\" value:\"b\"}}");
        Assert.Equal("allow", r.Action);
        Assert.Equal(6, r.Protocol);
        Assert.Equal(new[] { "10.65.0.0/16", "fd00::/64" }, r.SrcNet);
        Assert.Equal(new PortRange(22, 22), Assert.Single(r.NotDstPorts));
        Assert.Equal((8, (int?)0), r.Icmp);
        Assert.Equal("abc", r.RuleId);
        Assert.Equal(new[] { "metadata" }, r.Ignored);
        Assert.Equal(new[] { "10.65.0.0/16" }, r.ForIpVersion(4)!.SrcNet);
        Assert.Null(RuleMatch.Parse("action:\"deny\" not_dst_net:\"0.0.0.0/0\"").ForIpVersion(4));
        Assert.Null(RuleMatch.Parse("action:\"deny\" dst_net:\"fd00::/64\"").ForIpVersion(4));
        Assert.Throws<FormatException>(() => RuleMatch.Parse("action:\"allow\" protocol:{name:\"tcp\""));
    }

    private static PolicyProgram Program(JsonObject c)
    {
        JsonObject r = c["rules"]!.AsObject();
        return new PolicyProgram
        {
            IpVersion = (int?)c["ipVersion"] ?? 4,
            ForHostInterface = (bool?)r["forHostInterface"] ?? false,
            ForXdp = (bool?)r["forXdp"] ?? false,
            SuppressNormalHostPolicy = (bool?)r["suppressNormalHostPolicy"] ?? false,
            Tiers = Tiers(r["tiers"]),
            HostPreDnatTiers = Tiers(r["hostPreDnatTiers"]),
            HostForwardTiers = Tiers(r["hostForwardTiers"]),
            HostNormalTiers = Tiers(r["hostNormalTiers"]),
            Profiles = Blocks(r["profiles"]),
            HostProfiles = Blocks(r["hostProfiles"]),
        };
    }

    private static IReadOnlyList<PolicyTier> Tiers(JsonNode? tiers) => tiers is null ? Array.Empty<PolicyTier>() :
        tiers.AsArray().Select(t => new PolicyTier((string)t!["name"]!, (string?)t["endAction"] ?? string.Empty, Blocks(t["policies"]), (ulong?)t["endRuleId"])).ToList();

    private static IReadOnlyList<PolicyBlock> Blocks(JsonNode? blocks) => blocks is null ? Array.Empty<PolicyBlock>() :
        blocks.AsArray().Select(b => new PolicyBlock((string)b!["name"]!,
            b["rules"]!.AsArray().Select(x => new PolicyProgramRule(RuleMatch.Parse((string)x!["text"]!), (ulong?)x["matchId"])).ToList())).ToList();

    private static PolicyPacket Packet(JsonNode p, int ipVersion)
    {
        int proto = (int)p["proto"]!;
        int dport = p["icmpType"] is not null ? PolicyPacket.IcmpPort((int)p["icmpType"]!, (int?)p["icmpCode"] ?? 0) : (int?)p["dstPort"] ?? 0;
        IPAddress dst = Address((string)p["dst"]!, ipVersion);
        bool icmp = p["icmpType"] is not null;
        return new PolicyPacket(
            proto,
            Address((string)p["src"]!, ipVersion),
            (int?)p["srcPort"] ?? 0,
            dst,
            dport,
            p["preNatDst"] is { } pre ? Address((string)pre!, ipVersion) : dst,
            // Calico's StateIn: ICMP's pre-NAT port is 0 (PT 2745-2750); without .preNAT, the pre-NAT destination is the destination.
            icmp ? 0 : p["preNatDst"] is not null ? (int?)p["preNatDstPort"] ?? 0 : dport,
            (bool?)p["fromHost"] ?? false,
            (bool?)p["toHost"] ?? false,
            // StateIn's DstPort: the ICMP type and code for ICMP, 0 for the others.
            icmp ? dport : 0);
    }

    /// <summary>Calico's harness (ipUintFromString) gives a v4 program the first 32 bits of a v6 address.</summary>
    private static IPAddress Address(string text, int ipVersion)
    {
        IPAddress a = IPAddress.Parse(text);
        return ipVersion == 4 && a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? new IPAddress(a.GetAddressBytes()[..4]) : a;
    }
}

/// <summary>
/// PolicyDebugProgram rebuilds the program from a policy debug file: the documents of
/// tests/fixtures/calico-ut/policy.json (Felix's comment formats of v3.29.7 to HEAD) give the
/// tiers, policies, actions and match ids calico-bpf lists, in its order.
/// </summary>
public class PolicyDebugProgramTests
{
    public static IEnumerable<object[]> Cases() => Fixture().Select(c => new object[] { (string)c!["id"]! });

    [Theory]
    [MemberData(nameof(Cases))]
    public void A_debug_file_gives_calico_bpfs_rules_in_order(string id)
    {
        JsonObject c = Fixture().Single(x => (string?)x!["id"] == id)!.AsObject();
        DebugProgram d = PolicyDebugProgram.Read(c["document"]!.ToJsonString(), forHostInterface: false, ipv6: false);
        var got = new List<string>();
        foreach (PolicyTier t in d.Program.Tiers)
        {
            foreach (PolicyBlock p in t.Policies)
            {
                got.AddRange(p.Rules.Select(r => $"{t.Name}|{p.Name}|{r.Match.Action}|{r.MatchId}"));
            }

            // calico-bpf shows deny for an empty end action and for one a file before v3.30 does not write.
            got.Add($"{t.Name}||{(t.EndAction is "" or PolicyTier.EndNotWritten ? "deny" : t.EndAction)}|");
        }

        var want = c["calico"]!["rules"]!.AsArray().Select(r => $"{r!["tier"]}|{r["policy"]}|{r["action"]}|{r["match_id"]}").ToList();
        Assert.Equal(want, got);
        Assert.Contains(d.Problems, p => p.Contains("no instruction labels", StringComparison.Ordinal));
    }

    [Fact]
    public void From_v3_32_the_rule_text_follows_the_policy_name()
    {
        Assert.Equal("action:\"allow\" protocol:{number:6}", PolicyDebugProgram.RuleBody("default/allow-tcp action:\"allow\" protocol:{number:6}"));
        Assert.Equal("action:\"allow\"", PolicyDebugProgram.RuleBody("action:\"allow\""));
        Assert.Equal(string.Empty, PolicyDebugProgram.RuleBody("kns.default"));
    }

    private static JsonArray Fixture()
    {
        string dir = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(dir, "tests", "fixtures", "calico-ut", "policy.json")))
        {
            dir = Path.GetDirectoryName(dir) ?? throw new FileNotFoundException("tests/fixtures/calico-ut/policy.json is not above the test binaries.");
        }

        return JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "tests", "fixtures", "calico-ut", "policy.json")))!["cases"]!.AsArray();
    }
}
