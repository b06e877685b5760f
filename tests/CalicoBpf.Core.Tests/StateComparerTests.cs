using System.Globalization;
using CalicoBpf.Bundles;

namespace CalicoBpf.Tests;

/// <summary>
/// Compare-BpfState's engine: objects keyed as their family keys them, compared as a bundle writes
/// them; what moves on its own is no difference unless asked; added, changed, removed in order.
/// </summary>
public sealed class StateComparerTests
{
    private static Route Route(string cidr, string? nextHop, string node = "n1") => new()
    {
        Node = node, Cidr = cidr, PrefixLength = int.Parse(cidr.Split('/')[1], CultureInfo.InvariantCulture),
        AddressValue = IPAddress.Parse(cidr.Split('/')[0]), NextHopValue = nextHop is null ? null : IPAddress.Parse(nextHop),
        Description = nextHop is null ? "local host" : "remote workload nh " + nextHop,
    };

    private static List<string> Lines(IEnumerable<StateDifference> d) => d.Select(x => $"{x.Change} {x.Key} {string.Join("; ", x.Properties)}".TrimEnd()).ToList();

    [Fact]
    public void Added_changed_and_removed_are_found_by_key_with_the_properties_that_changed()
    {
        var before = new object[] { Route("10.65.0.0/26", "172.18.0.11"), Route("10.65.1.0/26", "172.18.0.12"), Route("172.18.0.10/32", null) };
        var after = new object[] { Route("10.65.0.0/26", "172.18.0.99"), Route("10.65.2.0/26", "172.18.0.13"), Route("172.18.0.10/32", null) };
        List<StateDifference> d = StateComparer.Compare("routes", "n1", before, "n1", after, includeVolatile: false, CancellationToken.None).ToList();
        Assert.Equal(new[]
        {
            "Changed 10.65.0.0/26 Description: remote workload nh 172.18.0.11 -> remote workload nh 172.18.0.99; NextHop: 172.18.0.11 -> 172.18.0.99",
            "Added 10.65.2.0/26",
            "Removed 10.65.1.0/26",
        }, Lines(d));
        Assert.Same(before[0], d[0].Reference);
        Assert.Same(after[0], d[0].Difference);
        Assert.Null(d[1].Reference);
        Assert.Null(d[2].Difference);
    }

    [Fact]
    public void The_node_name_is_never_a_difference_so_two_nodes_compare()
    {
        var a = new object[] { Route("172.18.0.10/32", null, "node-a") };
        var b = new object[] { Route("172.18.0.10/32", null, "node-b") };
        Assert.Empty(StateComparer.Compare("routes", "node-a", a, "node-b", b, includeVolatile: true, CancellationToken.None));
    }

    [Fact]
    public void What_moves_on_its_own_is_left_out_unless_asked()
    {
        static InterfaceCounter Counter(ulong ingress) => new() { Node = "n1", Interface = "eth0", IfIndex = 2, Name = "TotalPackets", Ingress = ingress };
        var before = new object[] { Counter(100) };
        var after = new object[] { Counter(250) };
        Assert.Empty(StateComparer.Compare("counters", "n1", before, "n1", after, includeVolatile: false, CancellationToken.None));
        StateDifference d = Assert.Single(StateComparer.Compare("counters", "n1", before, "n1", after, includeVolatile: true, CancellationToken.None));
        Assert.Equal("Ingress: 100 -> 250", Assert.Single(d.Properties));
        Assert.Contains("Ingress", StateComparer.Moving("counters"));
    }

    [Fact]
    public void Objects_with_the_same_key_on_one_side_are_told_apart_in_order()
    {
        var before = new object[] { Route("10.65.0.0/26", "172.18.0.11"), Route("10.65.0.0/26", "172.18.0.12") };
        var after = new object[] { Route("10.65.0.0/26", "172.18.0.11") };
        Assert.Equal(new[] { "Removed 10.65.0.0/26 #2" }, Lines(StateComparer.Compare("routes", "n1", before, "n1", after, false, CancellationToken.None)));
    }

    [Fact]
    public void The_ipv4_and_ipv6_maglev_tables_and_policy_programs_are_keyed_apart()
    {
        // cali_v4_mglv and cali_v6_mglv number services apart, and an interface's v4 and v6 programs carry
        // the same rules: one id or rule in both is two objects, and the IPv6 one going is what is removed.
        static MaglevEntry Slot(string backend) => new() { Node = "n1", ServiceId = 7, Ordinal = 0, BackendAddressValue = IPAddress.Parse(backend), BackendPort = 80 };
        var before = new object[] { Slot("10.65.0.5"), Slot("fd00:10:65::5") };
        var after = new object[] { Slot("10.65.0.5") };
        Assert.Equal(new[] { "Removed IPv6 service 7 slot 0" }, Lines(StateComparer.Compare("maglev", "n1", before, "n1", after, false, CancellationToken.None)));

        static PolicyRule Rule(bool ipv6, string action) => new() { Node = "n1", Interface = "cali1234", Hook = PolicyHook.Ingress, IPv6 = ipv6, Tier = "default", Policy = "allow-dns", Index = 0, Action = action };
        var rulesBefore = new object[] { Rule(false, "Allow"), Rule(true, "Allow") };
        var rulesAfter = new object[] { Rule(false, "Allow"), Rule(true, "Deny") };
        Assert.Equal(new[] { "Changed cali1234 Ingress IPv6 default/allow-dns[0] Action: Allow -> Deny" },
            Lines(StateComparer.Compare("policy", "n1", rulesBefore, "n1", rulesAfter, false, CancellationToken.None)));
    }

    [Fact]
    public void Every_family_it_compares_is_a_family_a_bundle_holds()
    {
        Assert.All(StateComparer.Names, n => Assert.Contains(n, DataplaneFamilies.Names));
        Assert.DoesNotContain("trace", StateComparer.Names);
        Assert.Contains("conntrack", StateComparer.Names);
    }
}
