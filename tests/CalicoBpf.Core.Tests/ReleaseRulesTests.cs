namespace CalicoBpf.Tests;

/// <summary>
/// What the same map bytes mean in each Calico release. The vectors are laid out from Calico's own
/// headers at each tag (felix/bpf-gpl/conntrack_types.h, conntrack.h; felix/bpf/conntrack/v2..v4/map.go);
/// the bytes Calico's real programs wrote are checked in RealCalicoFixtureTests.
/// </summary>
public class ReleaseRulesTests
{
    private static readonly ClockSample Clock = new(5_001_500_000_000, new DateTime(2026, 11, 26, 12, 0, 0, DateTimeKind.Utc));

    private static ConntrackEntry Decode(int version, string release, byte[] key, byte[] value) =>
        new ConntrackCodec(ConntrackLayout.For("ct", version, key.Length, value.Length), "n", "ct", Clock, CalicoRelease.Parse(release)).Decode(key, value);

    /// <summary>A NAT_FWD value: type 1, no flags (calico_ct_create_nat_fwd sets none), the reverse key @24, nat_sport @40.</summary>
    private static byte[] NatForwardValue(string reverseKey, ushort natSourcePort = 0, int size = 88)
    {
        byte[] v = new byte[size];
        BitConverter.TryWriteBytes(v.AsSpan(8), 5_000_000_000_000UL);
        v[16] = 1;
        Hex.Parse(reverseKey).CopyTo(v, 24);
        BitConverter.TryWriteBytes(v.AsSpan(40), natSourcePort);
        return v;
    }

    [Theory]
    // Client 10.78.0.2:40000 to service 10.0.0.1:80 (sorts first: last octet 1 < 2), backend 10.78.0.1:18080 (sorts first too).
    [InlineData("06 00 00 00 0a 00 00 01 0a 4e 00 02 50 00 40 9c", "06 00 00 00 0a 4e 00 01 0a 4e 00 02 a0 46 40 9c", "10.0.0.1", "10.78.0.1")]
    // Service 10.0.0.10:80 sorts after the client (10 > 2); backend 10.78.0.9:18080 after it too.
    [InlineData("06 00 00 00 0a 4e 00 02 0a 00 00 0a 40 9c 50 00", "06 00 00 00 0a 4e 00 02 0a 4e 00 09 40 9c a0 46", "10.0.0.10", "10.78.0.9")]
    // Service first, backend after the client.
    [InlineData("06 00 00 00 0a 00 00 01 0a 4e 00 02 50 00 40 9c", "06 00 00 00 0a 4e 00 02 0a 4e 00 09 40 9c a0 46", "10.0.0.1", "10.78.0.9")]
    public void Nat_forward_entries_are_oriented_by_their_reverse_key_in_every_release(string key, string reverseKey, string service, string backend)
    {
        foreach ((int version, string release) in new[] { (2, "v3.23.5"), (3, "v3.29.7"), (3, "v3.30.7"), (4, "v3.31.7"), (4, "v3.34.0-0.dev") })
        {
            ConntrackEntry e = Decode(version, release, Hex.Parse(key), NatForwardValue(reverseKey, size: version == 2 ? 64 : 88));
            Assert.Equal(ConntrackType.NatForward, e.Type);
            Assert.Equal("10.78.0.2:40000", e.Source);
            Assert.Equal($"{service}:80", e.Destination);
            Assert.Equal(IPAddress.Parse(service), e.ServiceAddressValue);
            Assert.Equal($"{backend}:18080", e.Backend);
            Assert.Equal(ConntrackFlags.None, e.Flags);
        }
    }

    [Fact]
    public void Host_psnat_forward_entries_match_the_reverse_key_by_the_rewritten_port()
    {
        // Host 172.18.0.10 to service 10.96.0.1:443 (sorts first); the source port clashed, so the
        // forward key has port 0 and nat_sport 30001 is the port in the reverse key (conntrack.h).
        byte[] key = Hex.Parse("06 00 00 00 0a 60 00 01 ac 12 00 0a bb 01 00 00");
        byte[] value = NatForwardValue("06 00 00 00 0a 41 00 05 ac 12 00 0a 90 1f 31 75", 30001);
        ConntrackEntry e = Decode(4, "v3.32.1", key, value);
        Assert.Equal("172.18.0.10:0", e.Source);
        Assert.Equal("10.96.0.1:443", e.Destination);
        Assert.Equal(30001, e.NatSourcePort);
        Assert.Equal("10.65.0.5:8080", e.Backend);
    }

    /// <summary>A version 2 (v3.23) NORMAL value: 12-byte legs at 24 and 36, bits at +4; no B-A flag exists.</summary>
    [Theory]
    [InlineData(false, "10.65.0.2", "10.65.0.3")]
    [InlineData(true, "10.65.0.3", "10.65.0.2")]
    public void Version_2_takes_the_opener_from_the_legs_opener_bit(bool openerIsB, string source, string destination)
    {
        byte[] key = Hex.Parse("06 00 00 00 0a 41 00 02 0a 41 00 03 40 9c 50 00");
        byte[] value = new byte[64];
        BitConverter.TryWriteBytes(value.AsSpan(8), 5_000_000_000_000UL);
        BitConverter.TryWriteBytes(value.AsSpan(openerIsB ? 40 : 28), 0x33U);   // syn|ack|approved|opener
        BitConverter.TryWriteBytes(value.AsSpan(openerIsB ? 28 : 40), 0x13U);   // syn|ack|approved
        ConntrackEntry e = Decode(2, "v3.23.5", key, value);
        Assert.Equal(IPAddress.Parse(source), e.SourceAddressValue);
        Assert.Equal(IPAddress.Parse(destination), e.DestinationAddressValue);
        Assert.True(e.Forward.Opener);
        Assert.False(e.Reverse.Opener);
        Assert.Equal(TcpState.Established, e.State);
    }

    [Theory]
    [InlineData("v3.24.0", true)]
    [InlineData("v3.29.7", true)]
    [InlineData("v3.30.0", false)]
    [InlineData("v3.30.7", false)]
    public void Version_3_offset_0_is_created_up_to_v3_29_and_rst_seen_from_v3_30(string release, bool created)
    {
        byte[] key = Hex.Parse("06 00 00 00 0a 41 00 02 0a 41 00 03 40 9c 50 00");
        byte[] value = new byte[88];
        BitConverter.TryWriteBytes(value.AsSpan(0), 4_990_000_000_000UL);
        BitConverter.TryWriteBytes(value.AsSpan(8), 5_000_000_000_000UL);
        ConntrackEntry e = Decode(3, release, key, value);
        Assert.Equal(created ? Clock.WallTimeOf(4_990_000_000_000UL) : null, e.Created);
        Assert.Equal(created ? null : Clock.WallTimeOf(4_990_000_000_000UL), e.ResetSeen);
        Assert.Equal(release, e.Release.ToString());
    }

    [Theory]
    [InlineData("v3.30.7", "0x8000")]
    [InlineData("v3.31.0", "cluster-external")]
    [InlineData("v3.32.0", "dscp")]
    [InlineData("v3.34.0-0.dev", "dscp")]
    public void Flag_0x8000_is_named_as_the_release_defines_it(string release, string name)
    {
        Assert.Equal(new[] { "B-A", name }, ConntrackText.FlagNames(ConntrackFlags.BA | ConntrackFlags.SetDscp, CalicoRelease.Parse(release)));
    }

    [Fact]
    public void A_release_outside_the_versions_range_is_moved_to_its_nearest_end()
    {
        ConntrackMeaning m = ConntrackMeaning.For(3, CalicoRelease.Parse("v3.33.0"), out bool adjusted);
        Assert.True(adjusted);
        Assert.Equal("v3.30", m.Release.Line);
        Assert.False(m.OffsetZeroIsCreated);
        Assert.False(ConntrackMeaning.For(4, CalicoRelease.Parse("v3.33.0"), out adjusted).OffsetZeroIsCreated);
        Assert.False(adjusted);
        Assert.Equal("v3.24 to v3.30", ConntrackMeaning.ReleasesOf(3));
        Assert.Equal(3, ConntrackMeaning.VersionFor(CalicoRelease.Parse("v3.30.7")));
        Assert.Equal(2, ConntrackMeaning.VersionFor(CalicoRelease.Parse("v3.22.1")));
        Assert.Equal(4, ConntrackMeaning.VersionFor(CalicoRelease.Newest));
    }

    [Fact]
    public void Version_5_is_refused_although_its_sizes_are_version_4s()
    {
        var ex = Assert.Throws<CalicoMapLayoutException>(() => ConntrackLayout.For("cali_v4_ct5", 5, 16, 88));
        Assert.Contains("cali_v4_ct5 is conntrack version 5", ex.Message);
        Assert.Contains("update CalicoBpf", ex.Message);
    }

    [Theory]
    [InlineData("v3.30.7", 3, 30, 7, "")]
    [InlineData("3.28", 3, 28, 0, "")]
    [InlineData("quay.io/calico/node:v3.31.2", 3, 31, 2, "")]
    [InlineData("docker.io/calico/node:v3.32.1@sha256:0123abcd", 3, 32, 1, "")]
    [InlineData("registry:5000/calico/node:v3.34.0-0.dev", 3, 34, 0, "0.dev")]
    public void Releases_are_read_from_tags_and_images(string text, int major, int minor, int patch, string pre)
    {
        Assert.Equal(new CalicoRelease(major, minor, patch, pre), CalicoRelease.Parse(text));
    }

    [Theory]
    [InlineData("")]
    [InlineData("calico/node")]
    [InlineData("calico/node@sha256:0123abcd")]
    [InlineData("master")]
    [InlineData("registry:5000/calico/node")]
    public void Names_without_a_release_are_not_one(string text)
    {
        Assert.False(CalicoRelease.TryParse(text, out _));
        Assert.Null(NodeRelease.FromImage(text));
        Assert.Contains("is not a Calico release", Assert.Throws<FormatException>(() => CalicoRelease.Parse(text + "x")).Message);
    }

    [Fact]
    public void A_development_build_has_the_rules_of_the_release_it_leads_to()
    {
        Assert.True(CalicoRelease.Parse("v3.34.0-0.dev").AtLeast(3, 34));
        Assert.Equal(0, CalicoRelease.Parse("v3.34.0-0.dev").CompareTo(CalicoRelease.Parse("v3.34.0")));
        Assert.True(CalicoRelease.Parse("v3.30.10").AtLeast(CalicoRelease.Parse("v3.30.9")));
    }

    private static CalicoMapName Pin(string name) => MapCatalog.Parse(name)!;

    [Theory]
    [InlineData("cali_v4_ct2", CalicoReleaseSource.PinnedMaps, "v3.23")]
    [InlineData("cali_v4_ct3 cali_counters2", CalicoReleaseSource.PinnedMaps, "v3.29")]
    [InlineData("cali_v4_ct3 cali_counters3", CalicoReleaseSource.PinnedMaps, "v3.30")]
    [InlineData("cali_v4_ct3 cali_v6_ct3 cali_counters", CalicoReleaseSource.Unknown, "v3.34")]
    [InlineData("cali_v4_ct4 cali_counters5", CalicoReleaseSource.PinnedMaps, "v3.31")]
    [InlineData("cali_v4_ct4 cali_counters6 cali_v4_mglv2", CalicoReleaseSource.PinnedMaps, "v3.34")]
    [InlineData("cali_v4_ct4_old cali_v4_routes", CalicoReleaseSource.Unknown, "v3.34")]
    public void Pinned_map_versions_narrow_the_release(string pins, CalicoReleaseSource source, string line)
    {
        NodeRelease r = ReleaseInference.Infer(pins.Split(' ').Select(Pin));
        Assert.Equal(source, r.Source);
        Assert.Equal(line, r.Release.Line);
        Assert.False(r.Exact);
        Assert.Contains(source == CalicoReleaseSource.Unknown ? "give -CalicoVersion" : "inferred from the pinned maps", r.Detail);
    }
    [Fact]
    public void The_troubleshooting_pages_8_character_tag_is_parsed()
    {
        // docs.tigera.io's eBPF troubleshooting example, from a v3.23/v3.24 node (felix/bpf/binary.go PatchLogPrefix).
        TraceLogEntry e = Trace.TraceLogParser.Parse(
            "  <idle>-0  [003] ..s1 1342.2: bpf_trace_printk: ens192---E: Final result=ALLOW (-1). Program execution time: 7366ns", "n",
            release: CalicoRelease.Parse("v3.24.6"));
        Assert.Equal("ens192", e.Interface);
        Assert.Equal(TraceDirection.Egress, e.Direction);
        Assert.Equal("ALLOW", e.Result);
        Assert.Equal(-1, e.Code);
        Assert.Equal(7366L, e.ExecutionNanoseconds);
    }

    [Theory]
    // Up to v3.29 DENY codes are printed %x without 0x; reasons.h numbering per release.
    [InlineData("v3.26.5", "4", 4, "dropped by policy")]
    [InlineData("v3.29.7", "c", 12, "unknown route")]
    [InlineData("v3.29.7", "10", 16, "NAT iface")]
    [InlineData("v3.28.0", "d", 13, "accepted by XDP")]
    [InlineData("v3.28.1", "d", 13, "blackhole route")]
    [InlineData("v3.30.7", "10", 10, "decap fail")]
    [InlineData("v3.30.7", "17", 17, "accepted by XDP")]
    [InlineData("v3.31.7", "17", 17, "redirect")]
    [InlineData("v3.32.1", "26", 26, "no host IP (VXLAN encap)")]
    [InlineData("v3.23.5", "be", 0xbe, "dropped by policy")]
    public void Deny_codes_are_read_as_the_release_prints_and_numbers_them(string release, string printed, int code, string reason)
    {
        TraceLogEntry e = Trace.TraceLogParser.Parse(
            $"  node-77 [000] .... 5.0: bpf_trace_printk: eth0------------I: Final result=DENY ({printed}). Program execution time: 100ns", "n",
            release: CalicoRelease.Parse(release));
        Assert.Equal(code, e.Code);
        Assert.Equal(reason, e.Reason);
    }

    [Theory]
    [InlineData("v3.26.5", false)]
    [InlineData("v3.27.3", false)]
    [InlineData("v3.27.4", true)]
    [InlineData("v3.28.0", false)]
    [InlineData("v3.28.1", true)]
    [InlineData("v3.34.0-0.dev", true)]
    public void Counter_13_is_the_blackhole_counter_only_where_reasons_h_says_so(string release, bool blackhole)
    {
        CounterDefinition d = CounterLayout.Define(13, CalicoRelease.Parse(release));
        Assert.Equal(blackhole, d.Printed);
        Assert.Equal(blackhole ? "DroppedBlackholeRoute" : "Unused13", d.Id);
    }
    [Fact]
    public void A_host_psnat_entry_says_which_source_port_it_had()
    {
        // calico-bpf conntrack dump: "source port changed from <orig_sport> " on any entry with host-psnat.
        var e = new ConntrackEntry
        {
            Protocol = IpProtocol.Tcp, Type = ConntrackType.NatReverse, Flags = ConntrackFlags.HostPsnat,
            SourceAddressValue = IPAddress.Parse("172.18.0.10"), SourcePort = 30001, DestinationAddressValue = IPAddress.Parse("10.65.0.5"), DestinationPort = 8080,
            ServiceAddressValue = IPAddress.Parse("10.96.0.1"), ServicePort = 443, OriginalSourcePort = 41000,
        };
        Assert.Equal("TCP 172.18.0.10:30001 -> 10.96.0.1:443 -> 10.65.0.5:8080 source port changed from 41000  Active ago 0s SYN-SENT", e.ToString());
    }
    private sealed class Recorder : IEngineReporter
    {
        public List<string> Warnings { get; } = new();

        public void Warning(string message) => Warnings.Add(message);

        public void Verbose(string message)
        {
        }
    }

    [Fact]
    public void A_release_nothing_tells_is_said_once_and_a_range_across_a_meaning_change_too()
    {
        byte[] key = Hex.Parse("06 00 00 00 0a 41 00 02 0a 41 00 03 40 9c 50 00");
        byte[] value = new byte[88];
        BitConverter.TryWriteBytes(value.AsSpan(8), 5_000_000_000_000UL);

        // cali_v4_ct3 alone fits v3.24 to v3.30, and offset 0 changed meaning at v3.30.
        var ct3 = new Support.VectorDataplane().Map("cali_v4_ct3", BpfMapType.Hash, 16, 88).Add("cali_v4_ct3", key, value);
        var r = new Recorder();
        Assert.Single(ConntrackReader.Read(ct3, new ConntrackQuery(), r));
        Assert.Equal("v3.30", Assert.Single(ConntrackReader.Read(ct3, new ConntrackQuery())).Release.Line);
        Assert.Contains(r.Warnings, w => w.Contains("fit Calico v3.24 to v3.30") && w.Contains("-CalicoVersion"));

        // With cali_counters2 beside it the range is v3.26 to v3.29: one meaning, nothing to say.
        var both = new Support.VectorDataplane().Map("cali_v4_ct3", BpfMapType.Hash, 16, 88).Add("cali_v4_ct3", key, value)
            .Map("cali_counters2", BpfMapType.PerCpuHash, 8, 112);
        var quiet = new Recorder();
        Assert.Equal("v3.29", Assert.Single(ConntrackReader.Read(both, new ConntrackQuery(), quiet)).Release.Line);
        Assert.Empty(quiet.Warnings);

        // Pins that name no release: said once per node, however many reads.
        var none = new Support.VectorDataplane().Map(RouteMap.V4, BpfMapType.LpmTrie, 8, 8);
        var once = new Recorder();
        _ = RouteMap.Read(none, false, reporter: once).ToList();
        _ = RouteMap.Read(none, false, reporter: once).ToList();
        Assert.Single(once.Warnings, w => w.Contains("could not be told") && w.Contains("give -CalicoVersion"));
    }
}
