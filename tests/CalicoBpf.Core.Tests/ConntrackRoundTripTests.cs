using CsCheck;

namespace CalicoBpf.Tests;

/// <summary>Property tests: whatever the encoder writes, the decoder reads back field for field.</summary>
public class ConntrackRoundTripTests
{
    private static readonly ClockSample Clock = new(9_000_000_000_000, new DateTime(2026, 11, 26, 0, 0, 0, DateTimeKind.Utc));

    private static Gen<IPAddress> Address(bool v6) => Gen.Byte.Array[v6 ? 16 : 4].Select(b => new IPAddress(b));

    private static readonly Gen<ConntrackLeg> Leg =
        Gen.Select(Gen.ULong, Gen.UInt, Gen.UInt, Gen.Int[0, 127], Gen.Int[0, 4096])
            .Select((bytes, packets, seq, bits, ifIndex) => new ConntrackLeg
            {
                Bytes = bytes,
                Packets = packets,
                SequenceNumber = seq,
                SynSeen = (bits & 1) != 0,
                AckSeen = (bits & 2) != 0,
                FinSeen = (bits & 4) != 0,
                RstSeen = (bits & 8) != 0,
                Approved = (bits & 16) != 0,
                Opener = (bits & 32) != 0,
                Workload = (bits & 64) != 0,
                IfIndex = ifIndex,
            });

    private static Gen<ConntrackEntry> Entry(bool v6) =>
        Gen.Select(Gen.Int[0, 2], Gen.OneOfConst(IpProtocol.Tcp, IpProtocol.Udp, IpProtocol.Icmp, IpProtocol.Sctp), Address(v6), Gen.Int[0, 65535], Address(v6), Gen.Int[0, 65535])
            .SelectMany(t => Gen.Select(Gen.UInt[0, 0x3fffff], Gen.ULong[1, 9_000_000_000_000], Leg, Leg, Address(v6), Gen.Int[0, 65535], Gen.Int[0, 65535]), (t, u) =>
            {
                (int type, IpProtocol proto, IPAddress src, int sport, IPAddress dst, int dport) = t;
                (uint flags, ulong seen, ConntrackLeg fwd, ConntrackLeg rev, IPAddress other, int otherPort, int extraPort) = u;
                var kind = (ConntrackType)type;
                return new ConntrackEntry
                {
                    Protocol = proto,
                    Type = kind,
                    SourceAddressValue = src,
                    SourcePort = sport,
                    DestinationAddressValue = dst,
                    DestinationPort = dport,
                    Flags = (ConntrackFlags)flags & ~ConntrackFlags.BA,
                    LastSeenNanoseconds = seen,
                    ResetSeenNanoseconds = kind == ConntrackType.NatForward ? 0 : seen / 2,
                    // Calico sets the opener bit on the opener's leg, and only there (bpf-gpl/conntrack.h).
                    Forward = kind == ConntrackType.NatForward ? ConntrackLeg.Empty : fwd with { Opener = true },
                    Reverse = kind == ConntrackType.NatForward ? ConntrackLeg.Empty : rev with { Opener = false },
                    ServiceAddressValue = kind == ConntrackType.NatReverse ? other : kind == ConntrackType.NatForward ? dst : null,
                    ServicePort = kind == ConntrackType.NatReverse ? otherPort : kind == ConntrackType.NatForward ? dport : null,
                    TunnelAddressValue = kind == ConntrackType.NatReverse && extraPort % 2 == 0 ? other : null,
                    OriginalSourcePort = kind == ConntrackType.NatReverse && extraPort != 0 && extraPort != sport ? extraPort : null,
                    NatSourcePort = kind == ConntrackType.NatForward && extraPort != 0 ? extraPort : null,
                    // The reverse key holds the client with its rewritten port when host PSNAT changed it (nat_sport).
                    ReverseKey = kind == ConntrackType.NatForward ? new ConntrackKey(proto, src, extraPort != 0 ? extraPort : sport, other, otherPort) : null,
                };
            });

    private static void AssertSame(ConntrackEntry expected, ConntrackEntry actual)
    {
        Assert.Equal(expected.Protocol, actual.Protocol);
        Assert.Equal(expected.Type, actual.Type);
        Assert.Equal(expected.SourceAddressValue, actual.SourceAddressValue);
        Assert.Equal(expected.DestinationAddressValue, actual.DestinationAddressValue);
        Assert.Equal(expected.LastSeenNanoseconds, actual.LastSeenNanoseconds);
        Assert.Equal(expected.ServiceAddressValue, actual.ServiceAddressValue);
        Assert.Equal(expected.ServicePort, actual.ServicePort);
        Assert.Equal(expected.TunnelAddressValue, actual.TunnelAddressValue);
        Assert.Equal(expected.OriginalSourcePort, actual.OriginalSourcePort);
        Assert.Equal(expected.NatSourcePort, actual.NatSourcePort);
        Assert.Equal(expected.ReverseKey, actual.ReverseKey);
        Assert.Equal(expected.Forward, actual.Forward);
        Assert.Equal(expected.Reverse, actual.Reverse);
        Assert.Equal(expected.Flags, actual.Flags & ~ConntrackFlags.BA);
        Assert.Equal(expected.ResetSeenNanoseconds, actual.ResetSeenNanoseconds);
        // Ports and the B-A flag: the opener stays the source whichever side sorts first; only the
        // tracking entry carries B-A (a NAT forward entry is oriented by its reverse key).
        Assert.Equal(expected.SourcePort, actual.SourcePort);
        Assert.Equal(expected.DestinationPort, actual.DestinationPort);
        bool openerIsA = ConntrackCodec.SortsFirst(expected.SourceAddressValue, expected.SourcePort, expected.DestinationAddressValue, expected.DestinationPort);
        Assert.Equal(!openerIsA && expected.Type != ConntrackType.NatForward, (actual.Flags & ConntrackFlags.BA) != 0);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Version_4_encode_then_decode_is_identity(bool v6)
    {
        ConntrackLayout layout = ConntrackLayout.For("ct", 4, v6 ? 40 : 16, v6 ? 128 : 88);
        var codec = new ConntrackCodec(layout, "n", "ct", Clock);
        Entry(v6).Sample(e =>
        {
            byte[] key = new byte[layout.KeySize];
            byte[] value = new byte[layout.ValueSize];
            ConntrackCodec.Encode(layout, e, key, value);
            ConntrackEntry back = codec.Decode(key, value);
            AssertSame(e, back);

            // And the bytes are a fixed point: encoding the decoded entry gives the same bytes.
            byte[] key2 = new byte[layout.KeySize];
            byte[] value2 = new byte[layout.ValueSize];
            ConntrackCodec.Encode(layout, back, key2, value2);
            Assert.Equal(key, key2);
            Assert.Equal(value, value2);
        }, iter: 2000);
    }

    [Fact]
    public void Decoder_never_throws_on_arbitrary_bytes_of_the_right_size()
    {
        foreach ((int version, int k, int v) in new[] { (4, 16, 88), (4, 40, 128), (3, 16, 88), (2, 16, 64) })
        {
            var codec = new ConntrackCodec(ConntrackLayout.For("ct", version, k, v), "n", "ct", Clock);
            Gen.Select(Gen.Byte.Array[k], Gen.Byte.Array[v]).Sample((key, value) =>
            {
                ConntrackEntry e = codec.Decode(key, value);
                _ = e.State;
                _ = e.ToString();
                _ = e.FlagNames;
            }, iter: 500);
        }
    }

    [Fact]
    public void Decoder_rejects_wrong_sizes_with_a_layout_error()
    {
        var codec = new ConntrackCodec(ConntrackLayout.For("cali_v4_ct4", 4, 16, 88), "n", "cali_v4_ct4", Clock);
        var ex = Assert.Throws<CalicoMapLayoutException>(() => codec.Decode(new byte[15], new byte[88]));
        Assert.Contains("15-byte key", ex.Message);
    }
}
