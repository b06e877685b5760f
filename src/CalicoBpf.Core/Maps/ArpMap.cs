using CalicoBpf.Interop;
using CalicoBpf.Transport;

namespace CalicoBpf.Maps;

/// <summary>Calico's tunnel neighbour map, cali_v4_arp2 / cali_v6_arp2 (LRU hash; reference section 2.9).</summary>
public static class ArpMap
{
    public const string V4 = "cali_v4_arp";
    public const string V6 = "cali_v6_arp";
    public const int ValueSize = 12;

    public static int KeySize(bool ipv6) => ipv6 ? 20 : 8;

    public static byte[] EncodeKey(IPAddress address, int ifIndex)
    {
        byte[] a = address.GetAddressBytes();
        byte[] key = new byte[a.Length + 4];
        a.CopyTo(key, 0);
        BinaryPrimitives.WriteUInt32LittleEndian(key.AsSpan(a.Length), (uint)ifIndex);
        return key;
    }

    public static byte[] EncodeValue(string sourceMac, string destinationMac) =>
        ParseMac(sourceMac).Concat(ParseMac(destinationMac)).ToArray();

    public static byte[] ParseMac(string mac) => mac.Split(':', '-').Select(b => Convert.ToByte(b, 16)).ToArray() is { Length: 6 } bytes
        ? bytes
        : throw new FormatException($"'{mac}' is not a MAC address (aa:bb:cc:dd:ee:ff).");

    public static string FormatMac(ReadOnlySpan<byte> mac) => Convert.ToHexString(mac).ToLowerInvariant() is var h
        ? string.Join(':', Enumerable.Range(0, mac.Length).Select(i => h.Substring(i * 2, 2)))
        : string.Empty;

    public static IEnumerable<ArpEntry> Read(INodeDataplane node, bool ipv6, IEngineReporter? reporter = null, CancellationToken cancellationToken = default)
    {
        CalicoMapName pin = Find(node, ipv6);
        IReadOnlyDictionary<int, NetworkLink> links = node.ListLinks();
        int l = ipv6 ? 16 : 4;
        return MapReading.Decode<ArpEntry>(node, pin, d =>
        {
            MapReading.ExpectSizes(pin, d, KeySize(ipv6), ValueSize, $"{KeySize(ipv6)}-byte keys and 12-byte values");
            return (key, value) =>
            {
                int ifIndex = (int)BinaryPrimitives.ReadUInt32LittleEndian(key[l..]);
                return new ArpEntry
                {
                    Node = node.Node,
                    AddressValue = new IPAddress(key[..l]),
                    IfIndex = ifIndex,
                    Interface = CounterReader.NameOf(links, ifIndex),
                    SourceMac = FormatMac(value[..6]),
                    DestinationMac = FormatMac(value.Slice(6, 6)),
                };
            };
        }, reporter, cancellationToken);
    }

    /// <summary>The live ARP map of a family.</summary>
    public static CalicoMapName Find(INodeDataplane node, bool ipv6) => MapReading.Find(node, ipv6 ? V6 : V4, ipv6 ? "IPv6 neighbour" : "IPv4 ARP");

    /// <summary>Deletes every entry of the map (calico-bpf arp clean). Returns how many were deleted.</summary>
    public static int Clear(INodeDataplane node, CalicoMapName pin, CancellationToken cancellationToken = default)
    {
        using IMapWriter map = node.OpenMapForWrite(pin.PinName);
        var keys = new List<byte[]>();
        foreach (RawEntryBatch b in map.ReadEntries(cancellationToken))
        {
            for (int i = 0; i < b.Count; i++)
            {
                keys.Add(b.Key(i).ToArray());
            }
        }

        return map.DeleteMany(keys);
    }
}
