using System.Buffers.Binary;

namespace CalicoBpf.Tests;

public class CounterAndCatalogTests
{
    [Theory]
    [InlineData(26, 1)]
    [InlineData(27, 3)]
    [InlineData(14, 4)]
    public void Counters_sum_every_cpu_with_full_64_bits(int counters, int cpus)
    {
        // Hand layout: per CPU, counters x u64; CPU c holds (c+1) * (index+1), and counter 4 holds 2^32 + c on each CPU.
        int slot = counters * 8;
        byte[] value = new byte[slot * cpus];
        for (int c = 0; c < cpus; c++)
        {
            for (int i = 0; i < counters; i++)
            {
                ulong v = i == 4 ? (1UL << 32) + (ulong)c : (ulong)((c + 1) * (i + 1));
                BinaryPrimitives.WriteUInt64LittleEndian(value.AsSpan(c * slot + i * 8), v);
            }
        }

        var sums = new ulong[counters];
        CounterLayout.SumCpus(value, counters, cpus, slot, sums);

        int cpuFactor = cpus * (cpus + 1) / 2;
        Assert.Equal((ulong)cpuFactor, sums[0]);
        Assert.Equal((ulong)(cpuFactor * counters), sums[counters - 1]);
        Assert.Equal(((ulong)cpus << 32) + (ulong)(cpus * (cpus - 1) / 2), sums[4]);
    }

    [Fact]
    public void Counter_count_comes_from_the_value_size()
    {
        Assert.Equal(27, CounterLayout.CounterCount("cali_counters6", 8, 216));
        Assert.Equal(26, CounterLayout.CounterCount("cali_counters6", 8, 208));
        Assert.Equal(17, CounterLayout.CounterCount("cali_counters3", 8, 136));
        var ex = Assert.Throws<CalicoMapLayoutException>(() => CounterLayout.CounterCount("cali_counters6", 8, 212));
        Assert.Contains("cali_counters6", ex.Message);
        Assert.Contains("212-byte values", ex.Message);
    }

    [Fact]
    public void Counter_definitions_match_the_reference()
    {
        Assert.Equal(27, CounterLayout.Definitions.Count);
        Assert.Equal(("DroppedByPolicy", CounterCategory.Dropped, "by policy"), (CounterLayout.Define(4).Id, CounterLayout.Define(4).Category, CounterLayout.Define(4).Caption));
        Assert.Equal("malformed IP packets", CounterLayout.Define(8).Caption);
        Assert.Equal(CounterCategory.Other, CounterLayout.Define(14).Category);
        Assert.False(CounterLayout.Define(24).Printed);
        Assert.Equal("VXLAN encap when host IP unknown", CounterLayout.Define(26).Caption);
        Assert.Equal(CounterCategory.Unknown, CounterLayout.Define(27).Category);
    }

    [Theory]
    [InlineData("cali_v4_ct4", "cali_v4_ct", 4, MapFamily.IPv4, false)]
    [InlineData("cali_v6_ct3", "cali_v6_ct", 3, MapFamily.IPv6, false)]
    [InlineData("cali_v4_ct4_old", "cali_v4_ct", 4, MapFamily.IPv4, true)]
    [InlineData("cali_counters6", "cali_counters", 6, MapFamily.Any, false)]
    [InlineData("cali_v4_nat_be", "cali_v4_nat_be", 1, MapFamily.IPv4, false)]
    [InlineData("cali_v4_ct_nats", "cali_v4_ct_nats", 1, MapFamily.IPv4, false)]
    [InlineData("cali_v4_nat_fe3", "cali_v4_nat_fe", 3, MapFamily.IPv4, false)]
    [InlineData("cali_iface4", "cali_iface", 4, MapFamily.Any, false)]
    [InlineData("xdp_cali_progs3", "xdp_cali_progs", 3, MapFamily.Any, false)]
    [InlineData("cali_qos_conn", "cali_qos_conn", 1, MapFamily.Any, false)]
    [InlineData("cali_future7", "cali_future", 7, MapFamily.Any, false)]
    public void Pin_names_split_into_base_and_version(string pin, string baseName, int version, MapFamily family, bool old)
    {
        CalicoMapName? n = MapCatalog.Parse(pin);
        Assert.NotNull(n);
        Assert.Equal((baseName, version, family, old), (n!.BaseName, n.Version, n.Family, n.IsOld));
    }

    [Fact]
    public void Non_calico_pins_are_ignored()
    {
        Assert.Null(MapCatalog.Parse("cilium_ct4_global"));
        Assert.Null(MapCatalog.Parse("calicobpf-simulated"));
    }

    [Fact]
    public void Latest_version_wins_and_old_pins_are_skipped()
    {
        var pins = new[] { "cali_v4_ct2", "cali_v4_ct3", "cali_v4_ct5_old", "cali_v4_ct4", "cali_v6_ct4" }
            .Select(p => MapCatalog.Parse(p)!).ToList();
        Assert.Equal("cali_v4_ct4", MapCatalog.FindLatest(pins, "cali_v4_ct")!.PinName);
        Assert.Null(MapCatalog.FindLatest(pins, "cali_counters"));
    }

    [Theory]
    [InlineData("0-1", 2)]
    [InlineData("0", 1)]
    [InlineData("0-3,8-11", 8)]
    [InlineData("0,2,4-5\n", 4)]
    public void Possible_cpu_lists(string text, int count) => Assert.Equal(count, KernelInfo.ParseCpuList(text));

    [Fact]
    public void Address_prefixes_match_raw_bytes()
    {
        AddressPrefix p = AddressPrefix.Parse("10.65.0.0/17");
        Assert.True(p.Matches(new byte[] { 10, 65, 127, 1 }));
        Assert.False(p.Matches(new byte[] { 10, 65, 128, 1 }));
        Assert.False(p.Matches(new byte[16]));
        Assert.True(AddressPrefix.Parse("fd00::/64").Matches(System.Net.IPAddress.Parse("fd00::5")));
        Assert.Throws<FormatException>(() => AddressPrefix.Parse("10.65.0.0/33"));
        Assert.Contains("not an IP address", Assert.Throws<FormatException>(() => AddressPrefix.Parse("pod-a")).Message);
    }

    [Fact]
    public void Netlink_link_messages_parse()
    {
        // One RTM_NEWLINK for ifindex 7 named "eth0", then NLMSG_DONE.
        var msg = new List<byte>();
        void U32(uint v) => msg.AddRange(BitConverter.GetBytes(v));
        void U16(ushort v) => msg.AddRange(BitConverter.GetBytes(v));
        U32(16 + 16 + 12); U16(16); U16(2); U32(1); U32(0);       // nlmsghdr
        msg.Add(0); msg.Add(0); U16(1); U32(7); U32(0); U32(0);    // ifinfomsg
        U16(9); U16(3); msg.AddRange("eth0\0"u8.ToArray()); msg.AddRange(new byte[3]); // IFLA_IFNAME, padded
        U32(20); U16(3); U16(2); U32(1); U32(0); U32(0);          // NLMSG_DONE
        var links = new Dictionary<int, NetworkLink>();
        Assert.True(NetLink.ParseLinkMessages(msg.ToArray(), links));
        Assert.Equal("eth0", links[7].Name);
    }
}
