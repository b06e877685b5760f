namespace CalicoBpf.Tests;

/// <summary>Byte vectors worked out by hand from ../shared/reference/calico-bpf-maps.md section 2.1.</summary>
public class ConntrackDecoderTests
{
    // Monotonic "now" 5,001.5 s after boot; the reference example's last_seen is 5,000 s.
    private static readonly ClockSample Clock = new(5_001_500_000_000, new DateTime(2026, 11, 26, 12, 0, 0, DateTimeKind.Utc));

    private static ConntrackCodec Codec(int version = 4, bool ipv6 = false) =>
        new(ConntrackLayout.For("cali_v4_ct4", version, ipv6 ? 40 : 16, version == 2 ? 64 : ipv6 ? 128 : 88), "node-a", "cali_v4_ct4", Clock);

    private const string WorkedKey = "06 00 00 00 0a 41 00 02 0a 41 00 03 40 9c 50 00";

    private const string WorkedValue = @"
        00 00 00 00 00 00 00 00  00 50 39 27 8c 04 00 00
        00 00 00 00 00 00 00 00
        d2 04 00 00 00 00 00 00  0a 00 00 00 11 22 33 44
        73 00 00 00 07 00 00 00
        2e 16 00 00 00 00 00 00  08 00 00 00 55 66 77 88
        13 00 00 00 00 00 00 00
        00x16";

    [Fact]
    public void Worked_example_from_the_reference()
    {
        ConntrackEntry e = Codec().Decode(Hex.Parse(WorkedKey), Hex.Parse(WorkedValue));

        Assert.Equal("node-a", e.Node);
        Assert.Equal(IpProtocol.Tcp, e.Protocol);
        Assert.Equal(ConntrackType.Normal, e.Type);
        Assert.Equal(IPAddress.Parse("10.65.0.2"), e.SourceAddressValue);
        Assert.Equal(40000, e.SourcePort);
        Assert.Equal(IPAddress.Parse("10.65.0.3"), e.DestinationAddressValue);
        Assert.Equal(80, e.DestinationPort);
        Assert.Null(e.ServiceAddressValue);
        Assert.Null(e.TunnelAddressValue);
        Assert.Equal(ConntrackFlags.None, e.Flags);
        Assert.Equal(TcpState.Established, e.State);
        Assert.Equal(5_000_000_000_000UL, e.LastSeenNanoseconds);
        Assert.Equal(TimeSpan.FromSeconds(1.5), e.AgeValue);
        Assert.Equal(Clock.UtcNow.AddSeconds(-1.5), e.LastSeen);
        Assert.Equal(DateTimeKind.Utc, e.LastSeen.Kind);
        Assert.Null(e.ResetSeen);
        Assert.Equal(1234UL, e.BytesForward);
        Assert.Equal(10U, e.PacketsForward);
        Assert.Equal(5678UL, e.BytesReverse);
        Assert.Equal(8U, e.PacketsReverse);
        Assert.Equal(0x11223344U, e.Forward.SequenceNumber);
        Assert.Equal(0x55667788U, e.Reverse.SequenceNumber);
        Assert.True(e.Forward.Opener && e.Forward.Workload && e.Forward.Approved);
        Assert.False(e.Reverse.Opener || e.Reverse.Workload);
        Assert.Equal(7, e.Forward.IfIndex);
        Assert.Equal(0, e.Reverse.IfIndex);
        Assert.Equal(Hex.Parse(WorkedKey), e.RawKey);
        Assert.Equal(88, e.RawValue.Count);
        Assert.Equal("06 00 00 00 0a 41 00 02 0a 41 00 03 40 9c 50 00", e.RawKey.ToString()); // one CSV cell, as the reference writes keys
        Assert.Equal("TCP 10.65.0.2:40000 -> 10.65.0.3:80  Active ago 1.5s ESTABLISHED", e.ToString());
    }

    [Fact]
    public void Nat_forward_points_to_its_nat_reverse_entry()
    {
        // UDP 10.65.0.2:53000 -> 10.96.0.10:53 DNATed to 10.65.0.5:53. 10.65.0.2 sorts first in both keys.
        byte[] fwdKey = Hex.Parse("11 00 00 00 0a 41 00 02 0a 60 00 0a 08 cf 35 00");
        byte[] revKey = Hex.Parse("11 00 00 00 0a 41 00 02 0a 41 00 05 08 cf 35 00");
        byte[] fwdValue = new byte[88];
        BitConverter.TryWriteBytes(fwdValue.AsSpan(8), 5_001_180_000_000UL);
        fwdValue[16] = 1;
        revKey.CopyTo(fwdValue, 24);
        byte[] revValue = new byte[88];
        BitConverter.TryWriteBytes(revValue.AsSpan(8), 5_001_180_000_000UL);
        revValue[16] = 2;
        BitConverter.TryWriteBytes(revValue.AsSpan(24), 120UL);          // a_to_b bytes
        BitConverter.TryWriteBytes(revValue.AsSpan(32), 2U);            // a_to_b packets
        BitConverter.TryWriteBytes(revValue.AsSpan(40), 0x30U);         // approved | opener
        BitConverter.TryWriteBytes(revValue.AsSpan(48), 300UL);         // b_to_a bytes
        BitConverter.TryWriteBytes(revValue.AsSpan(56), 2U);
        Hex.Parse("0a 60 00 0a").CopyTo(revValue, 76);                  // orig_ip: the service VIP
        BitConverter.TryWriteBytes(revValue.AsSpan(80), (ushort)53);    // orig_port

        ConntrackCodec codec = Codec();
        ConntrackEntry fwd = codec.Decode(fwdKey, fwdValue);
        ConntrackEntry rev = codec.Decode(revKey, revValue);

        Assert.Equal(ConntrackType.NatForward, fwd.Type);
        Assert.Equal(IpProtocol.Udp, fwd.Protocol);
        Assert.Equal(IPAddress.Parse("10.96.0.10"), fwd.DestinationAddressValue);
        Assert.Equal(IPAddress.Parse("10.96.0.10"), fwd.ServiceAddressValue);
        Assert.Equal(53, fwd.ServicePort);
        Assert.Equal(TcpState.None, fwd.State);
        Assert.Null(fwd.NatSourcePort);
        Assert.Equal(rev.Key, fwd.ReverseKey);
        Assert.Equal(new ConntrackKey(IpProtocol.Udp, IPAddress.Parse("10.65.0.2"), 53000, IPAddress.Parse("10.65.0.5"), 53), fwd.ReverseKey);

        Assert.Equal(ConntrackType.NatReverse, rev.Type);
        Assert.Equal(IPAddress.Parse("10.65.0.2"), rev.SourceAddressValue);
        Assert.Equal(53000, rev.SourcePort);
        Assert.Equal(IPAddress.Parse("10.65.0.5"), rev.DestinationAddressValue);
        Assert.Equal(IPAddress.Parse("10.96.0.10"), rev.ServiceAddressValue);
        Assert.Equal(53, rev.ServicePort);
        Assert.Null(rev.TunnelAddressValue);
        Assert.Null(rev.OriginalSourceAddressValue);
        Assert.Equal(120UL, rev.BytesForward);
        Assert.Equal(300UL, rev.BytesReverse);
        Assert.Equal(TcpState.None, rev.State);
        Assert.Equal(TimeSpan.FromMilliseconds(320), rev.AgeValue);
        Assert.Equal("UDP 10.65.0.2:53000 -> 10.96.0.10:53 -> 10.65.0.5:53  Active ago 320ms", rev.ToString());
    }

    [Fact]
    public void B_A_flag_makes_the_b_side_the_source()
    {
        // 192.168.1.10:51234 opened to 10.65.0.3:80; 10.65.0.3 (LE 0x0300410a) sorts before 192.168.1.10 (LE 0x0a01a8c0).
        byte[] key = Hex.Parse("06 00 00 00 0a 41 00 03 c0 a8 01 0a 50 00 22 c8");
        byte[] value = new byte[88];
        value[23] = 0x01;                                                // flags2: B-A
        BitConverter.TryWriteBytes(value.AsSpan(24), 500UL);             // a_to_b = responder's direction
        BitConverter.TryWriteBytes(value.AsSpan(40), 0x03U);             // syn|ack
        BitConverter.TryWriteBytes(value.AsSpan(48), 900UL);             // b_to_a = opener's direction
        BitConverter.TryWriteBytes(value.AsSpan(64), 0x21U);             // syn|opener
        BitConverter.TryWriteBytes(value.AsSpan(68), 3U);                // ifindex

        ConntrackEntry e = Codec().Decode(key, value);

        Assert.Equal(ConntrackFlags.BA, e.Flags);
        Assert.Equal(IPAddress.Parse("192.168.1.10"), e.SourceAddressValue);
        Assert.Equal(51234, e.SourcePort);
        Assert.Equal(IPAddress.Parse("10.65.0.3"), e.DestinationAddressValue);
        Assert.Equal(80, e.DestinationPort);
        Assert.Equal(900UL, e.BytesForward);
        Assert.True(e.Forward.Opener);
        Assert.Equal(3, e.Forward.IfIndex);
        Assert.Equal(500UL, e.BytesReverse);
        Assert.Equal(TcpState.SynSent, e.State);
        Assert.Equal(IPAddress.Parse("10.65.0.3"), e.Key.AddressAValue);
        Assert.Equal(new[] { "B-A" }, e.FlagNames);
    }

    [Theory]
    [InlineData(17, 0x01, ConntrackFlags.NatOut)]
    [InlineData(17, 0x80, ConntrackFlags.ViaNatInterface)]
    [InlineData(23, 0x02, ConntrackFlags.HostPsnat)]
    [InlineData(23, 0x80, ConntrackFlags.SetDscp)]
    [InlineData(18, 0x01, ConntrackFlags.Maglev)]
    [InlineData(18, 0x20, ConntrackFlags.ConnLimitDecremented)]
    [InlineData(19, 0x01, (ConntrackFlags)0x1000000)]
    public void Each_flag_byte_lands_in_its_bits(int offset, byte bits, ConntrackFlags expected)
    {
        byte[] value = new byte[88];
        value[offset] = bits;
        ConntrackEntry e = Codec().Decode(Hex.Parse(WorkedKey), value);
        Assert.Equal(expected, e.Flags);
    }

    [Fact]
    public void Version_3_has_only_sixteen_flag_bits()
    {
        byte[] value = new byte[88];
        value[17] = 0x40;
        value[23] = 0x40;
        value[18] = 0xff;   // padding in version 3
        value[19] = 0xff;
        ConntrackEntry e = Codec(version: 3).Decode(Hex.Parse(WorkedKey), value);
        Assert.Equal(ConntrackFlags.ExternalLocal | ConntrackFlags.SkipRedirectPeer, e.Flags);
        Assert.Equal(3, e.MapVersion);
    }

    [Fact]
    public void Flag_names_follow_calico_bpf()
    {
        Assert.Equal(new[] { "nat-out", "fwd-dsr", "B-A", "maglev", "connlimit-dec", "0x1000000" },
            ConntrackText.FlagNames(ConntrackFlags.NatOut | ConntrackFlags.DsrForward | ConntrackFlags.BA
                | ConntrackFlags.Maglev | ConntrackFlags.ConnLimitDecremented | (ConntrackFlags)0x1000000));
        Assert.Empty(ConntrackText.FlagNames(ConntrackFlags.None));
    }

    [Fact]
    public void Ipv6_nat_reverse_with_tunnel_and_snat()
    {
        // TCP [fd00::2]:40000 -> service [fd00:96::10]:443 -> backend [fd00:1::7]:8443, tunnelled via fd00:ff::6.
        var client = IPAddress.Parse("fd00::2");
        var backend = IPAddress.Parse("fd00:1::7");
        byte[] key = new byte[40];
        key[0] = 6;
        client.GetAddressBytes().CopyTo(key, 4);
        backend.GetAddressBytes().CopyTo(key, 20);
        BitConverter.TryWriteBytes(key.AsSpan(36), (ushort)40000);
        BitConverter.TryWriteBytes(key.AsSpan(38), (ushort)8443);
        byte[] value = new byte[128];
        BitConverter.TryWriteBytes(value.AsSpan(0), 4_000_000_000_000UL);     // rst_seen
        BitConverter.TryWriteBytes(value.AsSpan(8), 5_000_000_000_000UL);
        value[16] = 2;
        value[17] = 0x04;                                                      // np-fwd
        value[23] = 0x02;                                                      // host-psnat
        BitConverter.TryWriteBytes(value.AsSpan(40), 0x0bU);                   // a: syn|ack|rst
        BitConverter.TryWriteBytes(value.AsSpan(64), 0x03U);                   // b: syn|ack
        IPAddress.Parse("fd00:ff::6").GetAddressBytes().CopyTo(value, 72);
        IPAddress.Parse("fd00:96::10").GetAddressBytes().CopyTo(value, 88);
        BitConverter.TryWriteBytes(value.AsSpan(104), (ushort)443);
        BitConverter.TryWriteBytes(value.AsSpan(106), (ushort)1234);
        IPAddress.Parse("fd00::99").GetAddressBytes().CopyTo(value, 108);

        ConntrackEntry e = Codec(ipv6: true).Decode(key, value);

        Assert.Equal(client, e.SourceAddressValue);
        Assert.Equal(backend, e.DestinationAddressValue);
        Assert.Equal(8443, e.DestinationPort);
        Assert.Equal(IPAddress.Parse("fd00:96::10"), e.ServiceAddressValue);
        Assert.Equal(443, e.ServicePort);
        Assert.Equal(IPAddress.Parse("fd00:ff::6"), e.TunnelAddressValue);
        Assert.Equal(1234, e.OriginalSourcePort);
        Assert.Equal(IPAddress.Parse("fd00::99"), e.OriginalSourceAddressValue);
        Assert.Equal(ConntrackFlags.NodePortForward | ConntrackFlags.HostPsnat, e.Flags);
        Assert.Equal(TcpState.Reset, e.State);
        Assert.Equal(Clock.WallTimeOf(4_000_000_000_000UL), e.ResetSeen);
    }

    [Fact]
    public void Version_2_legacy_layout()
    {
        // 64-byte value: created @0, 12-byte legs @24/@36 (seq, bits, ifindex), NAT_REV orig_ip @48, port @52, sport @54, tun @56, sip @60.
        byte[] key = Hex.Parse("06 00 00 00 0a 41 00 02 0a 41 00 05 40 9c 90 1f");
        byte[] value = new byte[64];
        BitConverter.TryWriteBytes(value.AsSpan(0), 4_999_000_000_000UL);
        BitConverter.TryWriteBytes(value.AsSpan(8), 5_000_000_000_000UL);
        value[16] = 2;
        Hex.Parse("00 00 00 2a").CopyTo(value, 24);                            // seq 42 (network order)
        BitConverter.TryWriteBytes(value.AsSpan(28), 0x27U);                   // syn|ack|fin|opener
        BitConverter.TryWriteBytes(value.AsSpan(32), 5U);
        BitConverter.TryWriteBytes(value.AsSpan(40), 0x07U);                   // syn|ack|fin
        Hex.Parse("0a 60 00 14").CopyTo(value, 48);
        BitConverter.TryWriteBytes(value.AsSpan(52), (ushort)80);
        Hex.Parse("0a 00 00 06").CopyTo(value, 56);

        ConntrackEntry e = new ConntrackCodec(ConntrackLayout.For("cali_v4_ct2", 2, 16, 64), "n", "cali_v4_ct2", Clock).Decode(key, value);

        Assert.Equal(2, e.MapVersion);
        Assert.Equal(Clock.WallTimeOf(4_999_000_000_000UL), e.Created);
        Assert.Null(e.ResetSeen);
        Assert.Equal(42U, e.Forward.SequenceNumber);
        Assert.Equal(5, e.Forward.IfIndex);
        Assert.Equal(0UL, e.BytesForward);
        Assert.Equal(IPAddress.Parse("10.96.0.20"), e.ServiceAddressValue);
        Assert.Equal(80, e.ServicePort);
        Assert.Equal(IPAddress.Parse("10.0.0.6"), e.TunnelAddressValue);
        Assert.Equal(TcpState.Closed, e.State);
        Assert.False(e.Forward.Workload);
    }

    [Fact]
    public void Unknown_sizes_name_the_map_and_sizes()
    {
        var ex = Assert.Throws<CalicoMapLayoutException>(() => ConntrackLayout.For("cali_v4_ct4", 4, 16, 96));
        Assert.Contains("cali_v4_ct4", ex.Message);
        Assert.Contains("16-byte keys and 96-byte values", ex.Message);
        Assert.Equal(96, ex.ValueSize);
    }

    [Theory]
    [InlineData(6, false, false, false, false, TcpState.SynSent)]
    [InlineData(6, true, true, false, false, TcpState.Established)]
    [InlineData(6, true, true, true, false, TcpState.Closed)]
    [InlineData(6, true, false, false, true, TcpState.Reset)]
    [InlineData(17, true, true, true, false, TcpState.None)]
    public void Tcp_state_rule(int protocol, bool synAck, bool bothSynAck, bool bothFin, bool rst, TcpState expected)
    {
        var a = new ConntrackLeg { SynSeen = synAck, AckSeen = synAck, FinSeen = bothFin, RstSeen = rst };
        var b = new ConntrackLeg { SynSeen = bothSynAck, AckSeen = bothSynAck, FinSeen = bothFin };
        Assert.Equal(expected, ConntrackText.DeriveState((IpProtocol)protocol, ConntrackType.Normal, ConntrackFlags.None, a, b));
    }

    [Fact]
    public void Dsr_forward_with_one_fin_is_closed()
    {
        var a = new ConntrackLeg { SynSeen = true, AckSeen = true, FinSeen = true };
        var b = new ConntrackLeg { SynSeen = true, AckSeen = true };
        Assert.Equal(TcpState.Closed, ConntrackText.DeriveState(IpProtocol.Tcp, ConntrackType.NatReverse, ConntrackFlags.DsrForward, a, b));
        Assert.Equal(TcpState.Established, ConntrackText.DeriveState(IpProtocol.Tcp, ConntrackType.NatReverse, ConntrackFlags.None, a, b));
    }

    [Theory]
    [InlineData(1_500_000_000L, "1.5s")]
    [InlineData(123_200_000_000L, "2m3.2s")]
    [InlineData(3_600_000_000_000L, "1h0m0s")]
    [InlineData(850_000_000L, "850ms")]
    [InlineData(12_000L, "12µs")]
    [InlineData(0L, "0s")]
    public void Ages_print_as_go_durations(long nanoseconds, string expected) =>
        Assert.Equal(expected, ConntrackText.GoDuration(TimeSpan.FromTicks(nanoseconds / 100)));

    [Fact]
    public void Ordering_rule_reads_addresses_little_endian()
    {
        Assert.True(ConntrackCodec.SortsFirst(IPAddress.Parse("192.168.0.1"), 1, IPAddress.Parse("10.0.0.2"), 1));
        Assert.True(ConntrackCodec.SortsFirst(IPAddress.Parse("9.0.0.1"), 1, IPAddress.Parse("10.0.0.2"), 1));
        Assert.True(ConntrackCodec.SortsFirst(IPAddress.Parse("10.65.0.2"), 1, IPAddress.Parse("10.65.0.3"), 1));
        Assert.True(ConntrackCodec.SortsFirst(IPAddress.Parse("10.65.0.2"), 1, IPAddress.Parse("10.65.0.2"), 2));
        Assert.False(ConntrackCodec.SortsFirst(IPAddress.Parse("10.0.0.2"), 1, IPAddress.Parse("192.168.0.1"), 1));
    }
}
