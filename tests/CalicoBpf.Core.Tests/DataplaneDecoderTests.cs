namespace CalicoBpf.Tests;

/// <summary>Byte vectors worked out by hand from ../shared/reference/calico-bpf-maps.md sections 2.3 to 2.10.</summary>
public class DataplaneDecoderTests
{
    [Fact]
    public void The_trace_buffer_is_found_in_the_mounts_by_one_rule()
    {
        // The first tracefs mount wins; a debugfs mount's tracing/ stands in; a mount point with a
        // space comes escaped as \040; only directories that have a trace_pipe count.
        const string mounts = "proc /proc proc rw 0 0\n" +
            "debugfs /sys/kernel/debug debugfs rw 0 0\n" +
            "tracefs /mnt/my\\040trace tracefs rw 0 0\n" +
            "tracefs /sys/kernel/tracing tracefs rw 0 0\n";
        Assert.Equal("/mnt/my trace", Interop.TraceFs.TracingDirectory(mounts, _ => true));
        Assert.Equal("/sys/kernel/tracing", Interop.TraceFs.TracingDirectory(mounts, d => d != "/mnt/my trace"));
        Assert.Equal("/sys/kernel/debug/tracing", Interop.TraceFs.TracingDirectory(mounts, d => d.StartsWith("/sys/kernel/debug", StringComparison.Ordinal)));
        Assert.Null(Interop.TraceFs.TracingDirectory("proc /proc proc rw 0 0\n", _ => true));
    }

    [Fact]
    public void Nat_frontend_with_a_source_range()
    {
        // 10.0.0.100 port 80 proto 6, src 192.168.0.0/16: prefixlen 56 + 16 = 72.
        byte[] key = Hex.Parse("48 00 00 00 0a 00 00 64 50 00 06 c0 a8 00 00 00");
        byte[] value = Hex.Parse("0b 00 00 00 02 00 00 00 00 00 00 00 00 00 00 00 01 00 00 00");
        NatFrontend f = NatMaps.DecodeFrontend("n", "cali_v4_nat_fe3", false, key, value);
        Assert.Equal(IPAddress.Parse("10.0.0.100"), f.AddressValue);
        Assert.Equal(80, f.Port);
        Assert.Equal(IpProtocol.Tcp, f.Protocol);
        Assert.Equal("192.168.0.0/16", f.SourceCidr);
        Assert.Equal(11U, f.ServiceId);
        Assert.Equal(2, f.BackendCount);
        Assert.Equal(NatFrontendFlags.ExternalLocal, f.Flags);
        Assert.Equal("10.0.0.100 port 80 proto 6 id 11 count 2 local 0 flags ExternalLocal src 192.168.0.0/16", f.ToString());
    }

    [Fact]
    public void Nat_drop_entry_and_version_2_value()
    {
        byte[] key = Hex.Parse("38 00 00 00 0a 00 00 64 50 00 06 00 00 00 00 00");
        NatFrontend drop = NatMaps.DecodeFrontend("n", "fe", false, key, Hex.Parse("0b 00 00 00 ff ff ff ff 00 00 00 00 00 00 00 00 00 00 00 00"));
        Assert.True(drop.IsDropEntry);
        Assert.Equal(0, drop.BackendCount); // not -1: the drop entry has no backends
        Assert.Null(drop.SourceCidr);

        // Version 2: 16-byte value, no flags word; affinity 10800 s.
        NatFrontend v2 = NatMaps.DecodeFrontend("n", "cali_v4_nat_fe2", false, key, Hex.Parse("07 00 00 00 02 00 00 00 01 00 00 00 30 2a 00 00"));
        Assert.Equal(TimeSpan.FromHours(3), v2.AffinityTimeoutValue);
        Assert.Equal(1, v2.LocalBackendCount);
        Assert.Equal(NatFrontendFlags.None, v2.Flags);
    }

    [Fact]
    public void Nat_wildcard_nodeport_and_ipv6_frontend()
    {
        byte[] key = NatMaps.EncodeFrontendKey(IPAddress.Broadcast, 30080, IpProtocol.Tcp);
        Assert.Equal(Hex.Parse("38 00 00 00 ff ff ff ff 80 75 06 00 00 00 00 00"), key);
        Assert.True(NatMaps.DecodeFrontend("n", "fe", false, key, new byte[20]).IsNodePortWildcard);

        byte[] v6 = NatMaps.EncodeFrontendKey(IPAddress.Parse("fd00:96::10"), 53, IpProtocol.Udp, AddressPrefix.Parse("fd00::/48"));
        Assert.Equal(40, v6.Length);
        Assert.Equal(152 + 48, BitConverter.ToInt32(v6));
        NatFrontend f = NatMaps.DecodeFrontend("n", "cali_v6_nat_fe3", true, v6, new byte[20]);
        Assert.Equal(IPAddress.Parse("fd00:96::10"), f.AddressValue);
        Assert.Equal("fd00::/48", f.SourceCidr);
        Assert.Equal("[fd00:96::10]:53", f.Frontend);
    }

    [Fact]
    public void Nat_backend_and_affinity()
    {
        Assert.Equal(Hex.Parse("0a 41 00 05 35 00 00 00"), NatMaps.EncodeDestination(IPAddress.Parse("10.65.0.5"), 53));
        Assert.Equal(20, NatMaps.EncodeDestination(IPAddress.Parse("fd00::5"), 53).Length);
        (byte[] k, byte[] v) = NatMaps.EncodeAffinity(IPAddress.Parse("10.96.0.20"), 80, IpProtocol.Tcp, IPAddress.Parse("10.65.0.2"),
            IPAddress.Parse("10.65.0.5"), 8080, 5_000_000_000_000);
        Assert.Equal(Hex.Parse("0a 60 00 14 50 00 06 00 0a 41 00 02 00 00 00 00"), k);
        Assert.Equal(Hex.Parse("0a 41 00 05 90 1f 00 00 00 50 39 27 8c 04 00 00"), v);
        (byte[] k6, byte[] v6) = NatMaps.EncodeAffinity(IPAddress.Parse("fd00::20"), 80, IpProtocol.Tcp, IPAddress.Parse("fd00::2"),
            IPAddress.Parse("fd00::5"), 8080, 1);
        Assert.Equal((40, 32), (k6.Length, v6.Length));
        Assert.Equal(1, v6[24]);
    }

    [Theory]
    [InlineData(RouteFlags.Local | RouteFlags.Workload | RouteFlags.InPool, null, 12, "local workload in-pool idx 12")]
    [InlineData(RouteFlags.Workload | RouteFlags.InPool, "172.17.0.7", null, "remote workload in-pool nh 172.17.0.7")]
    [InlineData(RouteFlags.Local | RouteFlags.Host, null, null, "local host")]
    [InlineData(RouteFlags.Host | RouteFlags.Tunneled, null, null, "remote host tunneled")]
    [InlineData(RouteFlags.BlackholeDrop, null, null, "blackhole-drop")]
    [InlineData(RouteFlags.BlackholeDrop | RouteFlags.BlackholeReject, null, null, "blackhole-drop blackhole-reject")]
    // felix/bpf/routes/map.go Value.String: flags 0 are neither local nor a blackhole, so "remote".
    [InlineData(RouteFlags.None, null, null, "remote")]
    public void Route_descriptions_follow_calico_bpf(RouteFlags flags, string? nextHop, int? ifIndex, string expected) =>
        Assert.Equal(expected, RouteMap.Describe(flags, nextHop is null ? null : IPAddress.Parse(nextHop), ifIndex));

    [Theory]
    [InlineData("v3.30.0", "local workload idx 7")]
    [InlineData("v3.30.1", "local workload vm idx 7")]
    [InlineData("v3.30.7", "local workload vm idx 7")]
    [InlineData("v3.31.0", "local workload skip-ingress-redir idx 7")]
    public void Route_flag_0x800_is_named_as_the_release_defines_it(string release, string expected) =>
        Assert.Equal(expected, RouteMap.Describe(RouteFlags.Local | RouteFlags.Workload | RouteFlags.SkipIngressRedirect, null, 7, CalicoRelease.Parse(release)));

    [Fact]
    public void Route_value_holds_next_hop_or_ifindex()
    {
        byte[] key = Hex.Parse("1a 00 00 00 0a 41 01 00");   // 10.65.1.0/26
        Route remote = RouteMap.Decode("n", false, key, Hex.Parse("05 00 00 00 ac 11 00 07"), null);
        Assert.Equal("10.65.1.0/26", remote.Cidr);
        Assert.Equal(IPAddress.Parse("172.17.0.7"), remote.NextHopValue);
        Assert.Null(remote.IfIndex);
        Route local = RouteMap.Decode("n", false, Hex.Parse("20 00 00 00 0a 41 00 02"), Hex.Parse("0d 00 00 00 0c 00 00 00"), null);
        Assert.Equal(12, local.IfIndex);
        Assert.Null(local.NextHopValue);
        Assert.Equal("local workload in-pool idx 12", local.Description);
    }

    [Fact]
    public void Ip_set_members_cidr_and_named_port()
    {
        // Set 0x1122334455667788 (big-endian id), 10.65.0.3/32: prefixlen 64 + 32 = 96.
        byte[] cidr = Hex.Parse("60 00 00 00 11 22 33 44 55 66 77 88 0a 41 00 03 00 00 00 00");
        IpSetMember m = IpSetMap.Decode("n", false, cidr);
        Assert.Equal("0x1122334455667788", m.SetIdText);
        Assert.Equal("10.65.0.3/32", m.Member);
        Assert.Null(m.Port);
        // Named port 10.65.0.4:8080 tcp: full length 120.
        byte[] named = Hex.Parse("78 00 00 00 11 22 33 44 55 66 77 88 0a 41 00 04 90 1f 06 00");
        Assert.Equal("10.65.0.4:8080 (proto 6)", IpSetMap.Decode("n", false, named).Member);
        Assert.Equal(named, IpSetMap.EncodeKey(0x1122334455667788, IPAddress.Parse("10.65.0.4"), 32, 8080, IpProtocol.Tcp));
        Assert.Equal(0x1122334455667788UL, IpSetMap.ParseSetId("0x1122334455667788"));
        Assert.Throws<FormatException>(() => IpSetMap.ParseSetId("set-a"));

        // felix/cmd/calico-bpf/commands/ipsets.go: "IP set %#x" (no leading zeros) and "%s:%d (proto %d)" (Go's IPv6 text, no brackets).
        byte[] small = Hex.Parse("60 00 00 00 00 00 00 00 00 00 00 07 0a 41 00 05 00 00 00 00");
        Assert.Equal("0x7", IpSetMap.Decode("n", false, small).SetIdText);
        byte[] named6 = IpSetMap.EncodeKey(0x2a, IPAddress.Parse("fd00::5"), 128, 8080, IpProtocol.Tcp);
        Assert.Equal("fd00::5:8080 (proto 6)", IpSetMap.Decode("n", true, named6).Member);
    }

    [Fact]
    public void Arp_entry_macs()
    {
        Assert.Equal("42:01:0a:80:00:05", ArpMap.FormatMac(Hex.Parse("42 01 0a 80 00 05")));
        Assert.Equal(Hex.Parse("0a 80 00 07 02 00 00 00"), ArpMap.EncodeKey(IPAddress.Parse("10.128.0.7"), 2));
        Assert.Throws<FormatException>(() => ArpMap.ParseMac("42:01"));
    }

    [Fact]
    public void Interface_state_versions_4_3_2()
    {
        byte[] key = BitConverter.GetBytes(17u);
        byte[] v4 = InterfaceStateMap.EncodeValue(4, InterfaceStateFlags.Workload | InterfaceStateFlags.V4Ready, "cali12ab34cd56e", -1, 5, 6, -1, -1, -1, -1, -1);
        Assert.Equal(52, v4.Length);
        InterfaceState s4 = InterfaceStateMap.Decode("n", 4, key, v4);
        Assert.Equal((17, "cali12ab34cd56e", 5, 6, -1), (s4.IfIndex, s4.Name, s4.IngressPolicyV4!.Value, s4.EgressPolicyV4!.Value, s4.XdpPolicyV6!.Value));
        Assert.Equal(new[] { "workload", "v4Ready" }, s4.FlagNames);

        InterfaceState s3 = InterfaceStateMap.Decode("n", 3, key, InterfaceStateMap.EncodeValue(3, 0, "eth0", -1, 1, 2, 3, 4));
        Assert.Equal((1, 2, 3, 4), (s3.IngressPolicyV4!.Value, s3.EgressPolicyV4!.Value, s3.TcIngressFilter!.Value, s3.TcEgressFilter!.Value));
        Assert.Null(s3.IngressPolicyV6);
        Assert.Equal(new[] { "host" }, s3.FlagNames);

        InterfaceState s2 = InterfaceStateMap.Decode("n", 2, key, InterfaceStateMap.EncodeValue(2, InterfaceStateFlags.Workload, "cali1"));
        Assert.Equal("cali1", s2.Name);
        Assert.Null(s2.IngressPolicyV4);
    }

    [Theory]
    // felix/bpf/ifstate/map.go flagsToStr: v3.24 to v3.27 (map versions 2 and 3) name 0x1 and 0x2 only.
    [InlineData(2, 0x3u, "workload ready")]
    [InlineData(3, 0x2u, "ready")]
    [InlineData(3, 0x8u, "0x8")]
    [InlineData(4, 0x3u, "workload v4Ready")]
    [InlineData(4, 0x408u, "host notmanaged")]
    [InlineData(3, 0x0u, "host")]
    public void Interface_state_flag_names_follow_the_map_version(int version, uint flags, string expected) =>
        Assert.Equal(expected, string.Join(' ', InterfaceStateMap.FlagNames((InterfaceStateFlags)flags, version)));

    [Theory]
    [InlineData("          <idle>-0       [001] ..s2.  1675.606285: bpf_trace_printk: eth0------------I: Final result=DENY (4). Program execution time: 7366ns",
        "<idle>", 0, 1, "eth0", TraceDirection.Ingress, "DENY", 4, 7366L, false)]
    [InlineData("     curl-4242    [000] d.s1  99.000001: 0: cali1234abcd567-E: Final result=ALLOW (-1). Program execution time: 1200ns",
        "curl", 4242, 0, "cali1234abcd567", TraceDirection.Egress, "ALLOW", -1, 1200L, false)]
    [InlineData("  ksoftirqd/1-18   [001] ..s1. 12.5: bpf_trace_printk: IPv6 eth0------------X: Final result=ALLOW rc 2. Program execution time: 300ns",
        "ksoftirqd/1", 18, 1, "eth0", TraceDirection.Xdp, "ALLOW", 2, 300L, true)]
    [InlineData("  node-77 [000] .... 5.0: bpf_trace_printk: vxlan.calico----I: Final result=DENY (0x4).",
        "node", 77, 0, "vxlan.calico", TraceDirection.Ingress, "DENY", 4, null, false)]
    public void Trace_final_result_lines(string line, string process, int pid, int cpu, string iface, TraceDirection dir, string result, int code, long? ns, bool v6)
    {
        TraceLogEntry e = TraceLogParser.Parse(line, "n");
        Assert.Equal((process, pid, cpu), (e.Process, e.Pid!.Value, e.Cpu!.Value));
        Assert.Equal((iface, dir, v6), (e.Interface, e.Direction, e.IPv6));
        Assert.Equal((result, code), (e.Result, e.Code!.Value));
        Assert.Equal(ns, e.ExecutionNanoseconds);
        Assert.Equal(line, e.RawLine);
    }

    [Fact]
    public void Trace_other_shapes()
    {
        TraceLogEntry ctlb = TraceLogParser.Parse(" app-5 [000] .... 1.000000: bpf_trace_printk: CTLB------------: connect: 10.96.0.10:53 -> 10.65.0.5:53", "n");
        Assert.Equal(TraceDirection.ConnectTimeLoadBalancer, ctlb.Direction);
        Assert.Null(ctlb.Interface);
        Assert.Equal("connect: 10.96.0.10:53 -> 10.65.0.5:53", ctlb.Message);

        TraceLogEntry cleaner = TraceLogParser.Parse(" kworker-9 [001] .... 2.0: bpf_trace_printk: CT-CLEANER------: deleted 3", "n");
        Assert.Equal(TraceDirection.ConntrackCleaner, cleaner.Direction);

        TraceLogEntry preamble = TraceLogParser.Parse(" x-1 [000] .... 3.0: bpf_trace_printk: tc_preamble iface eth0 failed to call main 2", "n");
        Assert.Equal(TraceDirection.None, preamble.Direction);
        Assert.Equal("tc_preamble iface eth0 failed to call main 2", preamble.Message);

        TraceLogEntry garbage = TraceLogParser.Parse("CPU:1 [LOST 12 EVENTS]", "n");
        Assert.Equal("CPU:1 [LOST 12 EVENTS]", garbage.Message);
        Assert.Null(garbage.Pid);

        var clock = new ClockSample(100_000_000_000, new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc));
        TraceLogEntry timed = TraceLogParser.Parse(" a-1 [000] .... 90.5: bpf_trace_printk: eth0------------I: New packet at ifindex=2; mark=0", "n", clock);
        Assert.Equal(clock.UtcNow.AddSeconds(-9.5), timed.Time);
        Assert.Equal("New packet at ifindex=2; mark=0", timed.Message);
        Assert.Equal("dropped by policy", TraceLogParser.ReasonName(4));
    }

    [Fact]
    public void Trace_timestamps_are_exact_on_a_clock_that_counts_from_1970()
    {
        // trace_clock tai stamps lines with seconds since 1970: a double would lose their microseconds.
        TraceLogEntry tai = TraceLogParser.Parse(" a-1 [000] .... 1796300000.123457: bpf_trace_printk: eth0------------I: New packet at ifindex=2; mark=0", "n");
        Assert.Equal(TimeSpan.FromTicks((1_796_300_000L * TimeSpan.TicksPerSecond) + 1_234_570), tai.TimestampValue);
        Assert.Equal("eth0", tai.Interface);

        // Time is on the node's monotonic clock, which the buffer's leads by the offset the node reports:
        // tai leads it by the years since 1970 less the uptime; "local" here by -20 ms.
        var clock = new ClockSample(100_000_000_000, new DateTime(2026, 12, 3, 12, 0, 0, DateTimeKind.Utc));
        TraceLogEntry taiTimed = TraceLogParser.Parse(" a-1 [000] .... 1796300000.123457: bpf_trace_printk: eth0------------I: x", "n", clock, null,
            traceClockOffset: 1_796_300_000_123_457_000L - 90_500_000_000L);
        Assert.Equal(clock.UtcNow.AddSeconds(-9.5), taiTimed.Time);
        TraceLogEntry local = TraceLogParser.Parse(" a-1 [000] .... 90.480000: bpf_trace_printk: eth0------------I: x", "n", clock, null, traceClockOffset: -20_000_000);
        Assert.Equal(clock.UtcNow.AddSeconds(-9.5), local.Time);
        Assert.Equal(TimeSpan.FromSeconds(90.48), local.TimestampValue);
        Assert.Equal(90_500_000_000UL, TraceLogParser.FromTraceClock(90_480_000_000, -20_000_000));
        Assert.Equal(90_480_000_000UL, TraceLogParser.ToTraceClock(90_500_000_000, -20_000_000));
        Assert.Equal(0UL, TraceLogParser.FromTraceClock(5, 10));

        // Beyond 10^10 seconds (no clock's) the line stays raw rather than overflowing a conversion.
        TraceLogEntry far = TraceLogParser.Parse(" a-1 [000] .... 99999999999.000001: bpf_trace_printk: eth0------------I: x", "n");
        Assert.Null(far.TimestampValue);
        Assert.Null(far.Pid);
    }

    [Theory]
    [InlineData("entries: 0\noverrun: 0\noldest event ts: 57543.924685\nnow ts: 64248.160932\ndropped events: 0\n", 64_248_160_932_000UL)]
    [InlineData("entries: 3\nnow ts:  1796300000.000001\n", 1_796_300_000_000_001_000UL)]
    // A clock that does not count nanoseconds (counter, x86-tsc) prints a bare number: no lead can be told from it.
    [InlineData("entries: 3\nnow ts: 98765432\n", null)]
    [InlineData("entries: 0\n", null)]
    public void The_trace_clock_now_of_a_per_cpu_stats_file(string stats, ulong? nanoseconds)
    {
        Assert.Equal(nanoseconds, Interop.TraceFs.NowTimestamp(stats));
    }

    [Fact]
    public void Policy_debug_comments_become_rules_with_hits()
    {
        string json = """
        {"ifacename":"cali1","hook":"egress","error":"","policyInfo":[
          {"inst":[1],"comments":["Start of tier \"default\""]},
          {"inst":[1],"comments":["Start of policy \"default/allow-dns\""]},
          {"inst":[1],"comments":["Start of rule \"action:\\\"allow\\\" protocol:{name:\\\"udp\\\"}\"","Rule MatchID: 77"]},
          {"inst":[1],"comments":["If protocol != udp,skip to next rule"]},
          {"inst":[1],"comments":["End of policy \"default/allow-dns\""]},
          {"inst":[1],"comments":["End of tier \"default\""]}]}
        """;
        var rules = PolicyDebug.Parse(json, "n", "cali1", PolicyHook.Egress, false, new Dictionary<ulong, ulong> { [77] = 12 }).ToList();
        Assert.Equal(2, rules.Count);
        PolicyRule r = rules[0];
        Assert.Equal(("default", "default/allow-dns", "allow", 77UL, 12UL), (r.Tier, r.Policy, r.Action, r.MatchId!.Value, r.HitCount!.Value));
        Assert.Equal("action:\"allow\" protocol:{name:\"udp\"}", r.Rule);
        Assert.Equal(new[] { "If protocol != udp,skip to next rule" }, r.Matches);
        Assert.Equal(string.Empty, rules[1].Policy);
        Assert.Null(rules[1].HitCount);
    }

    [Fact]
    public void Qdisc_handles_print_like_tc()
    {
        Assert.Equal("ffff:", TrafficControl.FormatHandle(0xffff0000));
        Assert.Equal("ffff:fff1", TrafficControl.FormatHandle(0xfffffff1, full: true));
        Assert.Equal("0:", TrafficControl.FormatHandle(0));
        // tc's text back to the kernel's number, as a remote node's tc JSON is read.
        Assert.Equal(0xffff0000u, TrafficControl.ParseHandle("ffff:"));
        Assert.Equal(0xfffffff1u, TrafficControl.ParseHandle("ffff:fff1"));
        Assert.Equal(TrafficControl.RootHandle, TrafficControl.ParseHandle("root"));
        Assert.Equal(0u, TrafficControl.ParseHandle("0:"));
    }
}
