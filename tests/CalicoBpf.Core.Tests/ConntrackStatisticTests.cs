using System.Buffers.Binary;
using System.Text.Json.Nodes;

namespace CalicoBpf.Tests;

/// <summary>
/// Get-BpfConntrackStatistic's counts (<see cref="ConntrackStatisticReader"/>, calico-bpf conntrack stats)
/// on raw bytes equal what decoding every entry and applying calico-bpf's rule gives, on real maps
/// filled with Calico's own bytes: its unit-test vectors (tests/fixtures/calico-ut/conntrack.json), the
/// entries its programs wrote (tests/fixtures/realcalico, realcalico-probes), and for IPv6 those bytes
/// moved into the IPv6 layout. And the raw-byte state (<see cref="ConntrackLayout.StateOf"/>) is the
/// decoded entry's State on every one of them.
/// </summary>
public class ConntrackStatisticTests
{
    /// <summary>One conntrack entry as bytes, where it came from, and the map layout it belongs to.</summary>
    public sealed record Vector(string Source, string Release, int Version, bool IPv6, byte[] Key, byte[] Value, TcpState? CalicoState);

    private static readonly ClockSample Clock = new(5_000_000_000_000, new DateTime(2026, 11, 26, 8, 0, 0, DateTimeKind.Utc));

    private static string Fixtures => Path.Combine(RealCalicoPaths.RepositoryRoot(), "tests", "fixtures");

    /// <summary>calico-ut/conntrack.json: every case, with the TCP state calico-bpf prints for it where the case says.</summary>
    private static IEnumerable<Vector> UnitVectors()
    {
        JsonNode doc = JsonNode.Parse(File.ReadAllText(Path.Combine(Fixtures, "calico-ut", "conntrack.json")))!;
        foreach (JsonNode? c in doc["cases"]!.AsArray())
        {
            JsonObject map = c!["map"]!.AsObject();
            JsonObject calico = c["calico"]!.AsObject();
            TcpState? state = null;
            if (calico.ContainsKey("tcp_state"))
            {
                state = calico["tcp_state"] is JsonNode s
                    ? (string)s! switch { "SYN-SENT" => TcpState.SynSent, "ESTABLISHED" => TcpState.Established, "CLOSED" => TcpState.Closed, "RESET" => TcpState.Reset, var x => throw new FormatException(x) }
                    : TcpState.None;
            }

            yield return new Vector("calico-ut " + (string)c["id"]!, (string)c["release"]!, (int)map["version"]!, (int)map["key_size"]! == 40,
                Hex.Parse((string)c["key_hex"]!), Hex.Parse((string)c["value_hex"]!), state);
        }
    }

    /// <summary>The IPv4 conntrack entries Calico's own programs wrote, in every captured folder.</summary>
    private static IEnumerable<Vector> CapturedVectors()
    {
        foreach (string set in new[] { "realcalico", "realcalico-probes" })
        {
            foreach (string dir in Directory.EnumerateDirectories(Path.Combine(Fixtures, set)).Where(d => File.Exists(Path.Combine(d, "capture.json"))).Order(StringComparer.Ordinal))
            {
                var node = new RealCalicoCapturedNode(dir);
                CalicoMapName pin = ConntrackReader.FindMap(node, ipv6: false);
                string release = ReleaseInference.Of(node).Release.ToString();
                using IMapReader reader = node.OpenMap(pin.PinName);
                foreach (RawEntryBatch batch in reader.ReadEntries(default))
                {
                    for (int i = 0; i < batch.Count; i++)
                    {
                        yield return new Vector($"{set}/{Path.GetFileName(dir)} {pin.PinName}", release, pin.Version, false,
                            batch.Key(i).ToArray(), batch.Value(i)[..reader.Descriptor.ValueSize].ToArray(), null);
                    }
                }
            }
        }
    }

    /// <summary>
    /// Calico's IPv4 bytes of versions 3 and 4 moved into the IPv6 layout (40/128): each address a.b.c.d
    /// becomes fd00::a.b.c.d (0.0.0.0 stays ::), every other byte is Calico's (the legs' bit words, the
    /// flags, the type), at its IPv6 offset. There are no IPv6 vectors in Calico's tests.
    /// </summary>
    private static IEnumerable<Vector> Ipv6Vectors() =>
        UnitVectors().Concat(CapturedVectors()).Where(v => v.Version >= 3).Select(v => v with
        {
            Source = v.Source + " (as IPv6)",
            IPv6 = true,
            Key = Key6(v.Key),
            Value = Value6(v.Value),
        });

    private static byte[] Address6(ReadOnlySpan<byte> v4)
    {
        byte[] a = new byte[16];
        if (BinaryPrimitives.ReadUInt32LittleEndian(v4) != 0)
        {
            a[0] = 0xfd;
            v4.CopyTo(a.AsSpan(12));
        }

        return a;
    }

    private static byte[] Key6(ReadOnlySpan<byte> k4)
    {
        byte[] k = new byte[40];
        k4[..4].CopyTo(k);
        Address6(k4[4..8]).CopyTo(k, 4);
        Address6(k4[8..12]).CopyTo(k, 20);
        k4[12..16].CopyTo(k.AsSpan(36));
        return k;
    }

    private static byte[] Value6(ReadOnlySpan<byte> v4)
    {
        byte[] v = new byte[128];
        v4[..24].CopyTo(v);
        if (v4[16] == (byte)ConntrackType.NatForward)
        {
            Key6(v4[24..40]).CopyTo(v, 24);
            v4[40..42].CopyTo(v.AsSpan(64));
        }
        else
        {
            v4[24..72].CopyTo(v.AsSpan(24));
            Address6(v4[72..76]).CopyTo(v, 72);
            Address6(v4[76..80]).CopyTo(v, 88);
            v4[80..84].CopyTo(v.AsSpan(104));
            Address6(v4[84..88]).CopyTo(v, 108);
        }

        return v;
    }

    public static TheoryData<string> VectorSets() => new() { "calico-ut", "captured", "ipv6" };

    private static List<Vector> Set(string name) => (name switch
    {
        "calico-ut" => UnitVectors(),
        "captured" => CapturedVectors(),
        _ => Ipv6Vectors(),
    }).ToList();

    private static ConntrackLayout LayoutOf(Vector v) =>
        ConntrackLayout.For(v.IPv6 ? $"cali_v6_ct{v.Version}" : $"cali_v4_ct{v.Version}", v.Version, v.Key.Length, v.Value.Length);

    [Theory]
    [MemberData(nameof(VectorSets))]
    public void The_state_on_raw_bytes_is_the_decoded_entrys_State_and_calico_bpfs(string set)
    {
        List<Vector> vectors = Set(set);
        var differences = new List<string>();
        foreach (Vector v in vectors)
        {
            ConntrackLayout layout = LayoutOf(v);
            ConntrackEntry e = new ConntrackCodec(layout, "t", "t", Clock, CalicoRelease.Parse(v.Release)).Decode(v.Key, v.Value);
            TcpState raw = layout.StateOf(v.Key, v.Value);
            if (raw != e.State)
            {
                differences.Add($"{v.Source}: StateOf {raw}, decoded {e.State} ({e})");
            }

            if (v.CalicoState is { } calico && raw != calico)
            {
                differences.Add($"{v.Source}: StateOf {raw}, calico-bpf prints {calico}");
            }
        }

        Assert.True(differences.Count == 0, string.Join("\n", differences));
        // The rule is exercised: TCP entries of several states, and entries of the layouts the set holds.
        var states = vectors.Select(v => LayoutOf(v).StateOf(v.Key, v.Value)).Where(s => s != TcpState.None).ToHashSet();
        Assert.True(states.Count >= 3, $"{set}: only the states {string.Join(", ", states)}");
        int[] versions = vectors.Select(v => v.Version).Distinct().Order().ToArray();
        Assert.Equal(set switch { "calico-ut" => new[] { 2, 3, 4 }, _ => new[] { 3, 4 } }, versions);
        Assert.All(vectors, v => Assert.Equal(set == "ipv6", v.IPv6));
    }

    /// <summary>calico-bpf conntrack stats' loop (felix/cmd/calico-bpf/commands/conntrack.go at v3.32.1) over decoded entries.</summary>
    private static ConntrackStatistic CountDecoded(IReadOnlyCollection<ConntrackEntry> entries)
    {
        int nat = 0, total = 0, tcp = 0, udp = 0, established = 0, closed = 0, reset = 0, synSent = 0, normal = 0, reverse = 0;
        foreach (ConntrackEntry e in entries)
        {
            if (e.Type == ConntrackType.NatForward)
            {
                nat++;
                continue;
            }

            if (e.Protocol == IpProtocol.Tcp)
            {
                switch (e.State)
                {
                    case TcpState.Closed: closed++; break;
                    case TcpState.Reset: reset++; break;
                    case TcpState.Established: established++; break;
                    case TcpState.SynSent: synSent++; break;
                    default: throw new InvalidOperationException($"a TCP entry in state {e.State}: {e}");
                }
            }

            total++;
            tcp += e.Protocol == IpProtocol.Tcp ? 1 : 0;
            udp += e.Protocol == IpProtocol.Udp ? 1 : 0;
            normal += e.Type == ConntrackType.Normal ? 1 : 0;
            reverse += e.Type == ConntrackType.NatReverse ? 1 : 0;
        }

        return new ConntrackStatistic
        {
            Entries = total + nat, Connections = total, NatConnections = nat, Tcp = tcp, Udp = udp, Other = total - tcp - udp,
            TcpEstablished = established, TcpClosed = closed, TcpReset = reset, TcpSynSent = synSent, Normal = normal, NatReverse = reverse,
        };
    }

    private static void AssertCounts(ConntrackStatistic expected, ConntrackStatistic actual)
    {
        Assert.Equal(
            (expected.Entries, expected.Connections, expected.NatConnections, expected.Normal, expected.NatReverse, expected.Tcp, expected.Udp, expected.Other),
            (actual.Entries, actual.Connections, actual.NatConnections, actual.Normal, actual.NatReverse, actual.Tcp, actual.Udp, actual.Other));
        Assert.Equal(
            (expected.TcpEstablished, expected.TcpClosed, expected.TcpReset, expected.TcpSynSent),
            (actual.TcpEstablished, actual.TcpClosed, actual.TcpReset, actual.TcpSynSent));
        Assert.Equal(actual.Entries, actual.Connections + actual.NatConnections);
        Assert.Equal(actual.Tcp, actual.TcpEstablished + actual.TcpClosed + actual.TcpReset + actual.TcpSynSent);
    }

    [SkippableTheory]
    [InlineData(4, false)]
    [InlineData(3, false)]
    [InlineData(2, false)]
    [InlineData(4, true)]
    [InlineData(3, true)]
    public void A_real_table_of_Calicos_bytes_is_counted_as_calico_bpf_counts_its_decoded_entries(int version, bool ipv6)
    {
        using var fs = new BpfFsScope();
        using SimulatedDataplane sim = SimulatedDataplane.Claim(fs.PinDirectory);
        MapSpec spec = MapSpecs.Conntrack(version, ipv6);
        BpfMap map = sim.CreateMap(spec, maxEntries: 20000);
        ConntrackLayout layout = ConntrackLayout.For(spec.PinName, version, spec.KeySize, spec.ValueSize);

        // Volume, so that the table takes more than one batch (4096): the simulator's mix, through the encoder.
        var scenario = new NodeScenario
        {
            RandomSeed = 19,
            Conntrack = new NodeScenario.ConntrackMix { Tcp = 3000, Udp = 1200, Icmp = 200, Services = 400, NodePorts = 100, Tcp6 = 3500, Udp6 = 1500 },
        };
        ulong now = KernelInfo.MonotonicNanoseconds();
        sim.WriteConntrack(map, layout, ipv6 ? scenario.GenerateConntrack6(now) : scenario.GenerateConntrack(now));

        // Calico's own bytes of this layout, written as they are.
        List<Vector> calicos = (ipv6 ? Ipv6Vectors() : UnitVectors().Concat(CapturedVectors())).Where(v => v.Version == version && v.IPv6 == ipv6).ToList();
        Assert.NotEmpty(calicos);
        foreach (Vector v in calicos)
        {
            map.Update(v.Key, v.Value);
        }

        // A type Calico may add one day counts as calico-bpf counts it: a connection, neither Normal nor NatReverse.
        Vector tcp = calicos.First(v => v.Key[0] == 6 && v.Value[16] == (byte)ConntrackType.Normal);
        byte[] otherKey = tcp.Key.ToArray();
        otherKey[^1] ^= 0x5a;
        byte[] otherValue = tcp.Value.ToArray();
        otherValue[16] = 3;
        map.Update(otherKey, otherValue);

        var node = new LocalDataplane(fs.PinDirectory, "node-t");
        List<ConntrackEntry> decoded = ConntrackReader.Read(node, new ConntrackQuery { IPv6 = ipv6 }).ToList();
        Assert.True(decoded.Count > 4096, $"{decoded.Count} entries fit one batch");
        Assert.Contains(decoded, e => (byte)e.Type == 3);

        ConntrackStatistic s = ConntrackStatisticReader.Read(node, ipv6);
        ConntrackStatistic expected = CountDecoded(decoded);
        AssertCounts(expected, s);
        Assert.Equal(decoded.Count, s.Entries);
        Assert.True(s.Connections > s.Normal + s.NatReverse, "the entry of type 3 is a connection of neither type");
        Assert.All(new[] { s.NatConnections, s.Normal, s.Tcp, s.Udp, s.TcpEstablished, s.TcpClosed, s.TcpReset, s.TcpSynSent }, n => Assert.True(n > 0, "every count is exercised"));
        if (!ipv6)
        {
            Assert.True(s.NatReverse > 0 && s.Other > 0, "NAT reverse entries and ICMP are exercised");
        }

        Assert.Equal("node-t", s.Node);
        Assert.Equal(spec.PinName, s.MapName);
        Assert.Equal(version, s.MapVersion);
        Assert.Equal(20000, s.MaxEntries);
        Assert.Equal(100.0 * s.Entries / 20000, s.Fill);
        Assert.Equal(fs.PinDirectory, s.PinPath);
        Assert.Equal(decoded[0].Release, s.Release);
        Assert.Equal(version, decoded[0].MapVersion);
    }

    [Theory]
    [MemberData(nameof(CapturedFolders))]
    public void A_captured_node_read_through_bpftools_JSON_is_counted_as_its_decoded_entries(string folder)
    {
        var node = new RealCalicoCapturedNode(Path.Combine(Fixtures, folder));
        List<ConntrackEntry> decoded = ConntrackReader.Read(node, new ConntrackQuery()).ToList();
        ConntrackStatistic s = ConntrackStatisticReader.Read(node, ipv6: false);
        AssertCounts(CountDecoded(decoded), s);
        Assert.True(s.Entries >= 10, $"{folder}: {s.Entries} entries");
        Assert.True(s.NatConnections > 0 && s.Tcp > 0 && s.Udp > 0, $"{folder}: NAT, TCP and UDP entries");
        Assert.Equal(decoded[0].MapName, s.MapName);
        Assert.Equal(decoded[0].Release, s.Release);
        using IMapReader reader = node.OpenMap(s.MapName);
        Assert.Equal(reader.Descriptor.MaxEntries, s.MaxEntries);
        Assert.Equal(node.PinDirectory, s.PinPath);
        Assert.Equal("rcal", s.Node);
    }

    public static TheoryData<string> CapturedFolders()
    {
        var data = new TheoryData<string>();
        foreach (string set in new[] { "realcalico", "realcalico-probes" })
        {
            foreach (string dir in Directory.EnumerateDirectories(Path.Combine(Fixtures, set)).Where(d => File.Exists(Path.Combine(d, "capture.json"))).Order(StringComparer.Ordinal))
            {
                data.Add(set + "/" + Path.GetFileName(dir));
            }
        }

        return data;
    }
}
