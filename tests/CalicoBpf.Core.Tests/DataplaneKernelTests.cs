using System.Text.Json;

namespace CalicoBpf.Tests;

/// <summary>The rest of the dataplane on real maps seeded through the encoders, and the changes on them.</summary>
public sealed class DataplaneKernelTests
{
    private static NodeScenario Scenario() => NodeScenario.Parse("""
        node: t1
        conntrack: { tcp: 20, udp: 10, services: 8 }
        interfaces:
          - name: lo
            ingress: { TotalPackets: 100, DroppedByPolicy: 5 }
            egress: { TotalPackets: 90 }
        services:
          - { id: 1, address: 10.96.0.10, port: 53, protocol: UDP, backends: [10.65.0.5:53, 10.65.2.9:53], localBackends: 1 }
          - { id: 2, address: 10.96.0.20, port: 80, protocol: TCP, nodePort: 30080, backends: [10.65.0.8:8080], affinitySeconds: 600 }
          - { id: 3, address: 172.18.100.1, port: 443, protocol: TCP, backends: [10.65.0.9:8443], sourceRanges: [192.168.0.0/16] }
          - { id: 4, address: 10.96.0.30, port: 9090, protocol: TCP, backends: [10.65.1.20:9090], missingBackends: 2 }
          - { id: 5, address: 10.96.0.40, port: 443, protocol: TCP, backends: [10.65.0.21:8443, 10.65.0.22:8443], maglevSlots: 13 }
        routes:
          - { cidr: 10.65.0.0/16, type: remote workload in-pool, nextHop: 172.18.0.99 }
          - { cidr: 10.65.2.0/26, type: remote workload in-pool tunneled, nextHop: 172.18.0.12 }
          - { cidr: 10.65.2.17/32, type: local workload in-pool, interface: lo }
          - { cidr: 172.18.0.10/32, type: local host }
        ipSets:
          - { id: "0x0000000000000007", members: [10.65.0.5/32, 10.65.2.0/24] }
          - { id: "0x1122334455667788", members: [10.65.0.4:8080/TCP] }
        arp:
          - { address: 172.18.0.11, interface: lo, sourceMac: "66:e2:1f:00:0a:01", destinationMac: "66:e2:1f:00:0b:02" }
        policies:
          - interface: lo
            hook: ingress
            tiers:
              - name: default
                policies:
                  - name: default/allow-web
                    rules:
                      - { action: allow, protocol: TCP, ports: [80], matchId: 9001, hits: 42 }
                      - { action: deny, protocol: TCP, ports: [23], matchId: 9002, hits: 0 }
        """);

    private sealed class Seeded : IDisposable
    {
        public Seeded()
        {
            Fs = new BpfFsScope();
            PolicyDir = Directory.CreateTempSubdirectory("calicobpf-policy").FullName;
            Sim = SimulatedDataplane.Claim(Fs.PinDirectory);
            Scenario().Seed(Sim, new Dictionary<string, int> { ["lo"] = 1 }, PolicyDir);
            Node = new LocalDataplane(Fs.PinDirectory, "t1");
        }

        public BpfFsScope Fs { get; }
        public SimulatedDataplane Sim { get; }
        public string PolicyDir { get; }
        public LocalDataplane Node { get; }

        public void Dispose()
        {
            Sim.Dispose();
            Fs.Dispose();
            Directory.Delete(PolicyDir, recursive: true);
        }
    }

    [SkippableFact]
    public void Nat_frontends_come_with_backends_and_missing_ones_are_kept()
    {
        using var s = new Seeded();
        var all = NatMaps.ReadFrontends(s.Node, new NatQuery()).ToList();
        Assert.Equal(8, all.Count); // 5 services + the NodePort on the host's address and its wildcard + 1 drop entry
        NatFrontend dns = all.Single(f => f.Protocol == IpProtocol.Udp);
        Assert.Equal(new[] { "10.65.0.5:53", "10.65.2.9:53" }, dns.Backends.Select(b => b.AddressValue + ":" + b.Port));
        NatFrontend broken = all.Single(f => f.ServiceId == 4);
        Assert.Equal((3, 2), (broken.BackendCount, broken.MissingBackendCount));
        Assert.True(broken.Backends[1].Missing);
        Assert.Contains(all, f => f.IsDropEntry && f.ServiceId == 3);
        Assert.Contains(all, f => f.SourceCidr == "192.168.0.0/16");
        Assert.Contains(all, f => f.IsNodePortWildcard && f.Port == 30080);
        Assert.Contains(all, f => f.Frontend == "172.18.0.10:30080");
        Assert.Equal(TimeSpan.FromMinutes(10), all.First(f => f.ServiceId == 2).AffinityTimeoutValue);

        var filtered = NatMaps.ReadFrontends(s.Node, new NatQuery { Addresses = new[] { AddressPrefix.Parse("10.96.0.0/24") }, Protocols = new[] { IpProtocol.Tcp } }).ToList();
        Assert.Equal(new uint[] { 2, 4, 5 }, filtered.Select(f => f.ServiceId).OrderBy(x => x));
    }

    [SkippableFact]
    public void Affinity_and_maglev()
    {
        using var s = new Seeded();
        NatAffinity a = Assert.Single(NatMaps.ReadAffinity(s.Node, false));
        Assert.Equal((IPAddress.Parse("10.96.0.20"), 80, IPAddress.Parse("10.65.0.8")), (a.ServiceAddressValue, a.ServicePort, a.BackendAddressValue));
        Assert.InRange(a.AgeValue, TimeSpan.FromSeconds(41), TimeSpan.FromMinutes(5));
        var lut = NatMaps.ReadMaglev(s.Node, false, 5).ToList();
        Assert.Equal(13, lut.Count);
        Assert.Equal(Enumerable.Range(0, 13), lut.Select(m => m.Ordinal).OrderBy(x => x));
        Assert.Empty(NatMaps.ReadMaglev(s.Node, false, 99));
    }

    [SkippableFact]
    public void Routes_sort_like_calico_bpf_and_lookup_takes_the_longest_prefix()
    {
        using var s = new Seeded();
        var routes = RouteMap.Read(s.Node, false).ToList();
        Assert.Equal(new[] { "10.65.0.0/16", "10.65.2.0/26", "10.65.2.17/32", "172.18.0.10/32" }, routes.Select(r => r.Cidr));
        Assert.Equal("lo", routes[2].Interface);
        Assert.Equal("10.65.2.17/32", Assert.Single(RouteMap.Read(s.Node, false, IPAddress.Parse("10.65.2.17"))).Cidr);
        Assert.Equal("10.65.2.0/26", Assert.Single(RouteMap.Read(s.Node, false, IPAddress.Parse("10.65.2.18"))).Cidr);
        Assert.Equal("10.65.0.0/16", Assert.Single(RouteMap.Read(s.Node, false, IPAddress.Parse("10.65.9.9"))).Cidr);
        Assert.Empty(RouteMap.Read(s.Node, false, IPAddress.Parse("8.8.8.8")));
    }

    [SkippableFact]
    public void Ip_sets_arp_and_interface_state()
    {
        using var s = new Seeded();
        var members = IpSetMap.Read(s.Node, false).ToList();
        Assert.Equal(new[] { "10.65.0.5/32", "10.65.2.0/24", "10.65.0.4:8080 (proto 6)" }, members.Select(m => m.Member));
        Assert.Equal(2, IpSetMap.Read(s.Node, false, new[] { 7UL }).Count());

        ArpEntry arp = Assert.Single(ArpMap.Read(s.Node, false));
        Assert.Equal(("lo", "66:e2:1f:00:0a:01", "66:e2:1f:00:0b:02"), (arp.Interface, arp.SourceMac, arp.DestinationMac));

        InterfaceState lo = Assert.Single(InterfaceStateMap.Read(s.Node));
        Assert.Equal(("lo", 1, 4), (lo.Name, lo.IfIndex, lo.MapVersion));
        Assert.Contains("host", lo.FlagNames);
    }

    [SkippableFact]
    public void Policy_rules_carry_hit_counts_from_the_rule_counters()
    {
        using var s = new Seeded();
        var rules = PolicyDebug.Read(s.Node, s.PolicyDir, "lo", new[] { PolicyHook.Ingress, PolicyHook.Egress }, false).ToList();
        Assert.Equal(new ulong?[] { 42, 0, null }, rules.Select(r => r.HitCount));
        Assert.Equal(new[] { "allow", "deny", "deny" }, rules.Select(r => r.Action));
        Assert.Contains("no", Assert.Throws<BpfEnvironmentException>(() => PolicyDebug.Read(s.Node, s.PolicyDir, "eth9", new[] { PolicyHook.Ingress }, false).ToList()).Message);
        Assert.Contains("BPFPolicyDebugEnabled", Assert.Throws<BpfEnvironmentException>(() => PolicyDebug.Read(s.Node, "/nonexistent/policy", "lo", new[] { PolicyHook.Ingress }, false).ToList()).Message);
    }

    [SkippableFact]
    public void Removing_a_nat_entry_takes_its_partner()
    {
        using var s = new Seeded();
        List<ConntrackEntry> all = ConntrackReader.Read(s.Node, new ConntrackQuery()).ToList();
        ConntrackEntry rev = all.First(e => e.Type == ConntrackType.NatReverse);
        ConntrackEntry fwdOfOther = all.First(e => e.Type == ConntrackType.NatForward && !e.ReverseKey!.Equals(rev.Key));
        using (var remover = new ConntrackRemover(s.Node, MapCatalog.Parse(rev.MapName)!))
        {
            Assert.Equal(2, remover.Remove(rev));
            Assert.Equal(2, remover.Remove(fwdOfOther));
            Assert.Equal(0, remover.Remove(rev));
            Assert.Equal((4, 0), (remover.Result.Removed, remover.Result.AlreadyGone));
        }

        List<ConntrackEntry> left = ConntrackReader.Read(s.Node, new ConntrackQuery()).ToList();
        Assert.Equal(all.Count - 4, left.Count);
        Assert.DoesNotContain(left, e => e.Key.Equals(rev.Key) || e.ReverseKey?.Equals(rev.Key) == true);
        Assert.DoesNotContain(left, e => e.Key.Equals(fwdOfOther.ReverseKey));

        using (var remover = new ConntrackRemover(s.Node, MapCatalog.Parse(rev.MapName)!))
        {
            Assert.Equal(left.Count, remover.RemoveAll());
        }

        Assert.Empty(ConntrackReader.Read(s.Node, new ConntrackQuery()));
    }

    [SkippableFact]
    public void Counters_reset_to_zero_and_arp_clean_empties_the_map()
    {
        using var s = new Seeded();
        using (var counters = new CounterMaintenance(s.Node))
        {
            CounterInterface lo = Assert.Single(counters.ListInterfaces(null));
            Assert.Equal(new[] { 0, 1 }, lo.Hooks);
            Assert.Equal(2, counters.Reset(lo));
        }

        Assert.All(CounterReader.Read(s.Node), c => Assert.True((c.Ingress ?? 0) == 0 && (c.Egress ?? 0) == 0));
        Assert.Equal(1, ArpMap.Clear(s.Node, ArpMap.Find(s.Node, false)));
        Assert.Empty(ArpMap.Read(s.Node, false));
    }

    [SkippableFact]
    public void Qdisc_statistics_over_rtnetlink_equal_what_tc_reports()
    {
        using var ns = new NetnsScope();
        ns.Ip("link", "add", "cbt0", "type", "veth", "peer", "name", "cbt1");
        ns.Ip("link", "set", "cbt0", "up");
        ns.Ip("link", "set", "cbt1", "up");
        ns.Exec("tc", "qdisc", "add", "dev", "cbt0", "clsact");
        var ours = NetworkNamespace.Run(ns.Name, () => new LocalDataplane(null, "t1").ListQdiscs());
        using JsonDocument tc = JsonDocument.Parse(ns.Exec("tc", "-s", "-j", "qdisc", "show"));
        foreach (JsonElement q in tc.RootElement.EnumerateArray())
        {
            string dev = q.GetProperty("dev").GetString()!;
            string kind = q.GetProperty("kind").GetString()!;
            QdiscStatistic mine = Assert.Single(ours, o => o.Interface == dev && o.Kind == kind);
            Assert.Equal(q.GetProperty("handle").GetString(), mine.Handle);
            Assert.Equal(q.GetProperty("packets").GetUInt64(), mine.Packets);
            Assert.Equal(q.GetProperty("drops").GetUInt32(), mine.Drops);
        }

        Assert.Contains(ours, o => o.Interface == "cbt0" && o.Kind == "clsact" && o.Parent == "ffff:fff1");
    }

    [SkippableFact]
    public void Connect_time_programs_are_listed_and_removed()
    {
        using var scope = new CgroupScope();
        string cgroup = scope.Cgroup, links = scope.Links;
        BpfFsScope fs = scope.Fs;
        scope.Attach(CgroupAttachType.Connect4, "calico_connect_", "calico_connect_v4");
        scope.Attach(CgroupAttachType.SendMsg4, "calico_sendmsg_", "calico_sendmsg_v4");
        using (BpfMap array = fs.CreatePinned(BpfMapType.ProgramArray, 4, 4, 1, "cali_ctlb_conn")) { }

        var node = new LocalDataplane(fs.PinDirectory, "t1");
        var listed = ConnectTime.Programs(node, cgroup, links, calicoOnly: true);
        Assert.Equal(new[] { CgroupAttachType.Connect4, CgroupAttachType.SendMsg4 }, listed.Select(p => p.AttachType));
        Assert.All(listed, p => Assert.True(p.IsCalico && p.LinkPath is not null && p.Loaded is not null));

        (IReadOnlyList<string> arrays, IReadOnlyList<string> pins) = ConnectTime.Plan(node, links);
        Assert.Single(arrays);
        Assert.Equal(2, pins.Count);
        foreach (string a in arrays)
        {
            node.RemoveConnectTimeProgramArray(a);
        }

        foreach (string l in pins)
        {
            node.RemoveConnectTimeLink(l);
        }

        Assert.Empty(BpfPrograms.QueryCgroup(cgroup, (uint)CgroupAttachType.Connect4));
        Assert.Empty(Directory.EnumerateFileSystemEntries(links));
        Assert.False(File.Exists(Path.Combine(fs.PinDirectory, "cali_ctlb_conn")));
    }
}

/// <summary>Older map versions, created with their release's names and sizes, read by the same readers.</summary>
public sealed class OlderVersionKernelTests
{
    [SkippableFact]
    public void Nat_frontend_version_2_and_interface_state_versions_3_and_2()
    {
        using var fs = new BpfFsScope();
        using var sim = SimulatedDataplane.Claim(fs.PinDirectory);
        BpfMap fe = sim.CreateMap(new MapSpec("cali_v4_nat_fe", 2, BpfMapType.LpmTrie, 16, 16, 64, true));
        BpfMap be = sim.CreateMap(new MapSpec("cali_v4_nat_be", 1, BpfMapType.Hash, 8, 8, 64, true));
        fe.Update(NatMaps.EncodeFrontendKey(IPAddress.Parse("10.96.0.10"), 53, IpProtocol.Udp), NatMaps.EncodeFrontendValue(7, 1, 1, 0, NatFrontendFlags.None, valueSize: 16));
        be.Update(NatMaps.EncodeIdOrdinal(7, 0), NatMaps.EncodeDestination(IPAddress.Parse("10.65.0.5"), 53));
        var node = new LocalDataplane(fs.PinDirectory, "old");
        NatFrontend f = Assert.Single(NatMaps.ReadFrontends(node, new NatQuery()));
        Assert.Equal(("cali_v4_nat_fe2", 7U, NatFrontendFlags.None), (f.MapName, f.ServiceId, f.Flags));
        Assert.Equal(IPAddress.Parse("10.65.0.5"), Assert.Single(f.Backends).AddressValue);

        BpfMap iface3 = sim.CreateMap(new MapSpec("cali_iface", 3, BpfMapType.Hash, 4, 40, 16, true));
        iface3.Update(BitConverter.GetBytes(3u), InterfaceStateMap.EncodeValue(3, InterfaceStateFlags.Workload, "cali3", -1, 11, 12, 13, 14));
        InterfaceState s3 = Assert.Single(InterfaceStateMap.Read(node));
        Assert.Equal((3, 11, 14), (s3.MapVersion, s3.IngressPolicyV4!.Value, s3.TcEgressFilter!.Value));
        Assert.Null(s3.XdpPolicyV6);

        // A node that still has only the version 2 map (v3.26 and older).
        File.Delete(Path.Combine(fs.PinDirectory, "cali_iface3"));
        BpfMap iface2 = sim.CreateMap(new MapSpec("cali_iface", 2, BpfMapType.Hash, 4, 20, 16, true));
        iface2.Update(BitConverter.GetBytes(9u), InterfaceStateMap.EncodeValue(2, InterfaceStateFlags.Workload | InterfaceStateFlags.V4Ready, "cali2"));
        InterfaceState s2 = Assert.Single(InterfaceStateMap.Read(node));
        Assert.Equal(("cali2", 2), (s2.Name, s2.MapVersion));
        Assert.Null(s2.IngressPolicyV4);
    }

    [SkippableTheory]
    [InlineData(2, 14)]
    [InlineData(3, 17)]
    [InlineData(5, 25)]
    [InlineData(6, 26)]
    public void Counters_of_each_release_line(int version, int counters)
    {
        using var fs = new BpfFsScope();
        using var sim = SimulatedDataplane.Claim(fs.PinDirectory);
        BpfMap map = sim.CreateMap(MapSpecs.Counters(version, counters));
        int last = counters - 1 == 24 ? 23 : counters - 1; // index 24 is Reserved1
        sim.WriteCounters(map, 1, CounterLayout.HookIngress, new Dictionary<int, ulong> { [0] = 10, [last] = 3 });
        List<InterfaceCounter> rows = CounterReader.Read(new LocalDataplane(fs.PinDirectory, "old")).ToList();
        Assert.Equal(counters - (counters > 24 ? 1 : 0), rows.Count); // Reserved1 (index 24) is never printed
        Assert.Equal(10UL, rows.Single(r => r.Index == 0).Ingress);
        Assert.Equal(3UL, rows.Single(r => r.Index == last).Ingress);
    }
}
