namespace CalicoBpf.Tests;

/// <summary>Real maps with Calico's names, types and sizes, filled through the encoders, read back through the readers.</summary>
public class ReaderKernelTests
{
    private static List<ConntrackEntry> Scenario(ulong now) => new NodeScenario
    {
        RandomSeed = 11,
        Conntrack = new NodeScenario.ConntrackMix { Tcp = 40, Udp = 15, Icmp = 5, Services = 12, NodePorts = 6 },
    }.GenerateConntrack(now).ToList();

    private static (SimulatedDataplane Sim, LocalDataplane Node) Seeded(BpfFsScope fs, int version, bool ipv6, IEnumerable<ConntrackEntry> entries)
    {
        SimulatedDataplane sim = SimulatedDataplane.Claim(fs.PinDirectory);
        MapSpec spec = MapSpecs.Conntrack(version, ipv6);
        BpfMap map = sim.CreateMap(spec, maxEntries: 1000);
        sim.WriteConntrack(map, ConntrackLayout.For(spec.PinName, version, spec.KeySize, spec.ValueSize), entries);
        return (sim, new LocalDataplane(fs.PinDirectory, "node-t"));
    }

    private static string Id(ConntrackEntry e) => $"{e.Protocol} {e.SourceAddressValue}:{e.SourcePort} {e.DestinationAddressValue}:{e.DestinationPort} {e.Type}";

    [SkippableTheory]
    [InlineData(4)]
    [InlineData(3)]
    [InlineData(2)]
    public void Conntrack_written_is_conntrack_read(int version)
    {
        using var fs = new BpfFsScope();
        List<ConntrackEntry> written = Scenario(KernelInfo.MonotonicNanoseconds());
        (SimulatedDataplane sim, LocalDataplane node) = Seeded(fs, version, false, written);
        using (sim)
        {
            var read = ConntrackReader.Read(node, new ConntrackQuery()).ToDictionary(Id);
            Assert.Equal(written.Count, read.Count);
            foreach (ConntrackEntry w in written)
            {
                ConntrackEntry r = read[Id(w)];
                Assert.Equal("node-t", r.Node);
                Assert.Equal(version, r.MapVersion);
                Assert.Equal($"cali_v4_ct{version}", r.MapName);
                Assert.Equal(w.LastSeenNanoseconds, r.LastSeenNanoseconds);
                Assert.Equal(w.ServiceAddressValue, r.ServiceAddressValue);
                Assert.Equal(w.TunnelAddressValue, r.TunnelAddressValue);
                Assert.Equal(w.ReverseKey, r.ReverseKey);
                Assert.Equal(version == 2 ? 0UL : w.BytesForward, r.BytesForward);
                Assert.Equal(version == 2 ? 0U : w.PacketsReverse, r.PacketsReverse);
                Assert.True(r.AgeValue > TimeSpan.Zero);
                Assert.Equal(DateTimeKind.Utc, r.LastSeen.Kind);
            }

            // Every NatForward points to a NatReverse entry that is present.
            var reverseKeys = read.Values.Where(e => e.Type == ConntrackType.NatReverse).Select(e => e.Key).ToHashSet();
            Assert.All(read.Values.Where(e => e.Type == ConntrackType.NatForward), f => Assert.Contains(f.ReverseKey!, reverseKeys));
        }
    }

    [SkippableFact]
    public void Ipv6_table_is_read_with_IPv6()
    {
        using var fs = new BpfFsScope();
        var e = new ConntrackEntry
        {
            Protocol = IpProtocol.Tcp,
            SourceAddressValue = IPAddress.Parse("fd00:10::5"),
            SourcePort = 40000,
            DestinationAddressValue = IPAddress.Parse("fd00:10::2"),
            DestinationPort = 443,
            LastSeenNanoseconds = KernelInfo.MonotonicNanoseconds() - 1_000_000_000,
            Forward = new ConntrackLeg { SynSeen = true, AckSeen = true, Opener = true, Bytes = 10 },
            Reverse = new ConntrackLeg { SynSeen = true, AckSeen = true, Bytes = 20 },
        };
        (SimulatedDataplane sim, LocalDataplane node) = Seeded(fs, 4, true, new[] { e });
        using (sim)
        {
            ConntrackEntry r = Assert.Single(ConntrackReader.Read(node, new ConntrackQuery { IPv6 = true }));
            Assert.Equal(e.SourceAddressValue, r.SourceAddressValue);
            Assert.Equal(443, r.DestinationPort);
            Assert.Equal(TcpState.Established, r.State);
            Assert.Equal(ConntrackFlags.BA, r.Flags); // fd00:10::5 sorts after fd00:10::2
            Assert.Equal(10UL, r.BytesForward);
            Assert.Throws<BpfObjectNotFoundException>(() => ConntrackReader.Read(node, new ConntrackQuery()).ToList());
        }
    }

    [SkippableFact]
    public void Filters_return_exactly_what_a_filter_over_everything_returns()
    {
        using var fs = new BpfFsScope();
        List<ConntrackEntry> written = Scenario(KernelInfo.MonotonicNanoseconds());
        (SimulatedDataplane sim, LocalDataplane node) = Seeded(fs, 4, false, written);
        using (sim)
        {
            List<ConntrackEntry> all = ConntrackReader.Read(node, new ConntrackQuery()).ToList();
            TimeSpan older = ThresholdInWidestGap(all.Select(e => e.AgeValue));
            AddressPrefix pods = AddressPrefix.Parse("10.65.0.0/17");
            var queries = new (ConntrackQuery Query, Func<ConntrackEntry, bool> Expected)[]
            {
                (new() { Protocols = new[] { IpProtocol.Udp } }, e => e.Protocol == IpProtocol.Udp),
                (new() { Types = new[] { ConntrackType.NatReverse } }, e => e.Type == ConntrackType.NatReverse),
                (new() { States = new[] { TcpState.Established, TcpState.Reset } }, e => e.State is TcpState.Established or TcpState.Reset),
                (new() { Ports = new HashSet<int> { 53, 8080 } }, e => e.SourcePort is 53 or 8080 || e.DestinationPort is 53 or 8080 || (e.Type == ConntrackType.NatReverse && e.ServicePort is 53 or 8080)),
                (new() { Addresses = new[] { pods } }, e => pods.Matches(e.SourceAddressValue) || pods.Matches(e.DestinationAddressValue) || (e.Type == ConntrackType.NatReverse && pods.Matches(e.ServiceAddressValue))),
                (new() { OlderThan = older }, e => e.AgeValue > older),
            };
            foreach ((ConntrackQuery q, Func<ConntrackEntry, bool> expected) in queries)
            {
                var want = all.Where(expected).Select(Id).OrderBy(x => x).ToList();
                var got = ConntrackReader.Read(node, q).Select(Id).OrderBy(x => x).ToList();
                Assert.NotEmpty(want);
                Assert.Equal(want, got);
            }
        }
    }

    /// <summary>
    /// An age threshold from the data itself, halfway across the widest gap between two ages: a fixed
    /// one (say 5 minutes) finds nothing on a machine booted minutes ago, since no entry is older than
    /// the monotonic clock. The gap also absorbs the ageing between the two reads.
    /// </summary>
    private static TimeSpan ThresholdInWidestGap(IEnumerable<TimeSpan> ages)
    {
        List<TimeSpan> sorted = ages.Order().ToList();
        int widest = Enumerable.Range(1, sorted.Count - 1).MaxBy(i => sorted[i] - sorted[i - 1]);
        return sorted[widest - 1] + ((sorted[widest] - sorted[widest - 1]) / 2);
    }

    [SkippableFact]
    public void Discovery_takes_the_highest_version_and_skips_old_pins()
    {
        using var fs = new BpfFsScope();
        using SimulatedDataplane sim = SimulatedDataplane.Claim(fs.PinDirectory);
        sim.CreateMap(MapSpecs.Conntrack(3, false), 16);
        BpfMap v4 = sim.CreateMap(MapSpecs.Conntrack(4, false), 16);
        var e = new ConntrackEntry { Protocol = IpProtocol.Udp, SourceAddressValue = IPAddress.Parse("10.0.0.1"), DestinationAddressValue = IPAddress.Parse("10.0.0.2"), SourcePort = 1, DestinationPort = 2 };
        sim.WriteConntrack(v4, ConntrackLayout.For("cali_v4_ct4", 4, 16, 88), new[] { e });
        using (BpfMap bigger = BpfMap.Create(BpfMapType.LruHash, 16, 88, 32, "cali_v4_ct5"))
        {
            bigger.Pin(Path.Combine(fs.PinDirectory, "cali_v4_ct5_old"));
        }

        ConntrackEntry r = Assert.Single(ConntrackReader.Read(new LocalDataplane(fs.PinDirectory, "n"), new ConntrackQuery()));
        Assert.Equal("cali_v4_ct4", r.MapName);
    }

    [SkippableFact]
    public void A_map_with_unknown_sizes_is_named_in_the_error()
    {
        using var fs = new BpfFsScope();
        using (fs.CreatePinned(BpfMapType.LruHash, 16, 96, 16, "cali_v4_ct4")) { }
        var ex = Assert.Throws<CalicoMapLayoutException>(() => ConntrackReader.Read(new LocalDataplane(fs.PinDirectory, "n"), new ConntrackQuery()).ToList());
        Assert.Equal("cali_v4_ct4", ex.MapName);
        Assert.Contains("96-byte values", ex.Message);
    }

    [SkippableFact]
    public void Counters_are_summed_per_interface_and_hook_with_names_from_the_kernel()
    {
        using var fs = new BpfFsScope();
        using SimulatedDataplane sim = SimulatedDataplane.Claim(fs.PinDirectory);
        BpfMap counters = sim.CreateMap(MapSpecs.Counters(6, 27));
        KeyValuePair<int, NetworkLink> lo = NetLink.ListLinks().First(l => l.Value.Name == "lo");
        sim.WriteCounters(counters, lo.Key, CounterLayout.HookIngress, new Dictionary<int, ulong> { [0] = 1000, [4] = 7, [26] = 5_000_000_000 });
        sim.WriteCounters(counters, lo.Key, CounterLayout.HookEgress, new Dictionary<int, ulong> { [0] = 900 });
        sim.WriteCounters(counters, 987654, CounterLayout.HookIngress, new Dictionary<int, ulong> { [8] = 3 });

        List<InterfaceCounter> rows = CounterReader.Read(new LocalDataplane(fs.PinDirectory, "n")).ToList();

        Assert.Equal(2 * 26, rows.Count); // two interfaces, 27 counters less the unprinted Reserved1
        InterfaceCounter byPolicy = rows.Single(r => r.Interface == "lo" && r.Id == "DroppedByPolicy");
        Assert.Equal((7UL, 0UL, (ulong?)null), (byPolicy.Ingress!.Value, byPolicy.Egress!.Value, byPolicy.Xdp));
        Assert.Equal("by policy", byPolicy.Name);
        Assert.Equal(CounterCategory.Dropped, byPolicy.Category);
        Assert.Equal(5_000_000_000UL, rows.Single(r => r.Interface == "lo" && r.Index == 26).Ingress);
        Assert.Equal(900UL, rows.Single(r => r.Interface == "lo" && r.Id == "TotalPackets").Egress);
        InterfaceCounter gone = rows.Single(r => r.IfIndex == 987654 && r.Id == "DroppedIPMalformed");
        Assert.Equal("ifindex 987654", gone.Interface);
        Assert.Null(gone.Egress);
        // Row order: category, then caption ignoring case (calico-bpf compares byte-wise: capitals first).
        Assert.Equal(new[] { "by another program", "by failsafe", "by policy" }, rows.Where(r => r.Interface == "lo" && r.Category == CounterCategory.Accepted).Select(r => r.Name));
        Assert.Equal(CounterCategory.Total, rows.Last(r => r.Interface == "lo").Category);

        Assert.Empty(CounterReader.Read(new LocalDataplane(fs.PinDirectory, "n"), name => name == "eth9"));
    }

    [SkippableFact]
    public void Inventory_reports_sizes_and_fill()
    {
        using var fs = new BpfFsScope();
        using SimulatedDataplane sim = SimulatedDataplane.Claim(fs.PinDirectory);
        new NodeScenario { Conntrack = new NodeScenario.ConntrackMix { Tcp = 100 } }.Seed(sim, new Dictionary<string, int>());

        var maps = MapInventory.List(new LocalDataplane(fs.PinDirectory, "n")).ToDictionary(m => m.Name);

        MapInfo ct = maps["cali_v4_ct4"];
        Assert.Equal(("cali_v4_ct", 4, MapFamily.IPv4, BpfMapType.LruHash), (ct.BaseName, ct.Version, ct.Family, ct.Type));
        Assert.Equal((16, 88, 512000), (ct.KeySize, ct.ValueSize, ct.MaxEntries));
        Assert.Equal(100, ct.Entries);
        Assert.Equal(Math.Round(100 * 100.0 / 512000, 1), ct.FillPercent);
        Assert.Equal(0, maps["cali_v4_routes"].Entries);
        Assert.Null(maps["cali_progs_ing2"].Entries);
        Assert.Equal(2, maps["cali_state6"].Entries);
        Assert.Equal(MapFamily.Any, maps["cali_counters6"].Family);
        Assert.Equal("IPv4 conntrack", ct.Description);
    }

    [SkippableFact]
    public void Environment_problems_are_named()
    {
        using var fs = new BpfFsScope();
        var missing = Assert.Throws<BpfEnvironmentException>(() => new LocalDataplane(Path.Combine(fs.Root, "nope")).ListMaps());
        Assert.Equal(BpfEnvironmentProblem.NoBpfFs, missing.Problem);
        Assert.Contains("does not exist", missing.Message);

        var empty = Assert.Throws<BpfEnvironmentException>(() => new LocalDataplane(fs.PinDirectory).ListMaps());
        Assert.Equal(BpfEnvironmentProblem.NoCalicoMaps, empty.Problem);
        Assert.Contains("eBPF mode", empty.Message);

        string plain = Directory.CreateTempSubdirectory("calicobpf-plain").FullName;
        try
        {
            var notBpf = Assert.Throws<BpfEnvironmentException>(() => new LocalDataplane(plain).ListMaps());
            Assert.Equal(BpfEnvironmentProblem.NoBpfFs, notBpf.Problem);
            Assert.Contains("not on a bpffs", notBpf.Message);
        }
        finally
        {
            Directory.Delete(plain);
        }
    }

    [SkippableFact]
    public void Simulation_refuses_foreign_maps_and_the_real_pin_directory()
    {
        using var fs = new BpfFsScope();
        using (fs.CreatePinned(BpfMapType.Hash, 4, 4, 4, "cali_v4_routes")) { }
        Assert.Contains("did not create", Assert.Throws<InvalidOperationException>(() => SimulatedDataplane.Claim(fs.PinDirectory)).Message);
        Assert.Contains("real calico-node", Assert.Throws<InvalidOperationException>(() => SimulatedDataplane.Claim("/sys/fs/bpf/tc/globals")).Message);
        Assert.False(Directory.Exists("/sys/fs/bpf/tc/globals/" + SimulatedDataplane.OwnerMarker));
    }

    [SkippableFact]
    public void Links_come_from_rtnetlink()
    {
        Kernel.Require();
        IReadOnlyDictionary<int, NetworkLink> links = NetLink.ListLinks();
        Assert.Contains(links.Values, l => l.Name == "lo" && l.IfIndex == 1);
    }
}
