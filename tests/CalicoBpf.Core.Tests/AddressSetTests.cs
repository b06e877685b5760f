using CsCheck;

namespace CalicoBpf.Tests;

/// <summary>
/// The prepared address sets the readers filter raw entries with (-Address, and -Pod/-Namespace/-Service
/// through their pods' and services' IPs) decide exactly as each prefix alone does.
/// </summary>
public class AddressSetTests
{
    [Theory]
    [InlineData(new[] { "10.65.1.2" }, "10.65.1.2", true)]
    [InlineData(new[] { "10.65.1.2" }, "10.65.1.3", false)]
    [InlineData(new[] { "10.65.0.0/16" }, "10.65.255.1", true)]
    [InlineData(new[] { "10.65.0.0/16" }, "10.66.0.1", false)]
    [InlineData(new[] { "10.65.1.7/24" }, "10.65.1.200", true)]
    [InlineData(new[] { "0.0.0.0/0" }, "192.0.2.1", true)]
    [InlineData(new[] { "0.0.0.0/0" }, "fd00::1", false)]
    [InlineData(new[] { "fd00::/64" }, "fd00::1", true)]
    [InlineData(new[] { "fd00::/64" }, "fd00:0:0:1::1", false)]
    [InlineData(new[] { "fd00::/64" }, "10.0.0.1", false)]
    [InlineData(new[] { "::ffff:10.1.2.3" }, "10.1.2.3", true)]
    [InlineData(new[] { "10.0.0.1", "fd00::5", "172.16.0.0/12" }, "172.31.9.9", true)]
    public void Matches_as_the_prefixes_do(string[] prefixes, string address, bool expected)
    {
        var set = new AddressSet(prefixes.Select(AddressPrefix.Parse));
        Assert.Equal(expected, set.Contains(IPAddress.Parse(address).GetAddressBytes()));
        Assert.Equal(expected, prefixes.Select(AddressPrefix.Parse).Any(p => p.Matches(IPAddress.Parse(address))));
    }

    [Fact]
    public void An_empty_set_matches_nothing()
    {
        var set = new AddressSet(Array.Empty<AddressPrefix>());
        Assert.Equal(0, set.Count);
        Assert.False(set.Contains(new byte[] { 10, 0, 0, 1 }));
    }

    [Fact]
    public void Few_and_many_addresses_and_prefixes_agree_with_each_prefix_alone()
    {
        // Few hosts are compared in a row, many through a hash set: both, with prefixes beside them.
        Gen.Int[0, 40].SelectMany(n => Gen.Select(Gen.UInt[0, 255].Array[n], Gen.Int[8, 32].Array[n], Gen.UInt.Array[64]))
            .Sample(t =>
            {
                (uint[] seeds, int[] lengths, uint[] probes) = t;
                // Addresses near each other (10.x.y.z with small x), so prefixes and probes meet.
                var prefixes = seeds.Select((s, i) => AddressPrefix.Parse($"10.{s % 4}.{(s * 7) % 256}.{(s * 13) % 256}/{lengths[i]}")).ToList();
                var set = new AddressSet(prefixes);
                foreach (uint p in probes.Concat(seeds.Select(s => (10u << 24) | ((s % 4) << 16) | (((s * 7) % 256) << 8) | ((s * 13) % 256))))
                {
                    byte[] probe = { 10, (byte)((p >> 16) % 4), (byte)(p >> 8), (byte)p };
                    Assert.Equal(prefixes.Any(x => x.Matches(probe)), set.Contains(probe));
                }
            }, iter: 300);
    }
}
