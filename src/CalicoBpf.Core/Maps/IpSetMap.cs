using CalicoBpf.Transport;

namespace CalicoBpf.Maps;

/// <summary>Calico's IP sets, cali_v4_ip_sets / cali_v6_ip_sets (LPM trie; reference section 2.8).</summary>
public static class IpSetMap
{
    public const string V4 = "cali_v4_ip_sets";
    public const string V6 = "cali_v6_ip_sets";

    public static int KeySize(bool ipv6) => ipv6 ? 32 : 20;

    /// <summary>Prefix bits before the address: the 64-bit set id.</summary>
    public const int SetIdBits = 64;

    /// <summary>A CIDR member, or a named-port member when <paramref name="port"/> is given.</summary>
    public static byte[] EncodeKey(ulong setId, IPAddress address, int prefixLength, int? port = null, IpProtocol protocol = 0)
    {
        bool v6 = ConntrackText.IsIPv6(address);
        int l = v6 ? 16 : 4;
        byte[] key = new byte[KeySize(v6)];
        int full = SetIdBits + (l * 8) + 16 + 8;
        BinaryPrimitives.WriteUInt32LittleEndian(key, (uint)(port is null ? SetIdBits + prefixLength : full));
        BinaryPrimitives.WriteUInt64BigEndian(key.AsSpan(4), setId);
        address.GetAddressBytes().CopyTo(key, 12);
        if (port is { } p)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(key.AsSpan(12 + l), (ushort)p);
            key[14 + l] = (byte)protocol;
        }

        return key;
    }

    public static IpSetMember Decode(string node, bool ipv6, ReadOnlySpan<byte> key)
    {
        int l = ipv6 ? 16 : 4;
        int prefix = (int)BinaryPrimitives.ReadUInt32LittleEndian(key);
        int full = SetIdBits + (l * 8) + 16 + 8;
        byte protocol = key[14 + l];
        bool namedPort = prefix == full && protocol != 0;
        return new IpSetMember
        {
            Node = node,
            SetId = BinaryPrimitives.ReadUInt64BigEndian(key[4..]),
            AddressValue = new IPAddress(key.Slice(12, l)),
            PrefixLength = namedPort ? l * 8 : Math.Clamp(prefix - SetIdBits, 0, l * 8),
            Port = namedPort ? BinaryPrimitives.ReadUInt16LittleEndian(key[(12 + l)..]) : null,
            Protocol = namedPort ? (IpProtocol)protocol : null,
        };
    }

    /// <summary>Every member, in calico-bpf's order: sets by id, members by their text.</summary>
    public static IEnumerable<IpSetMember> Read(INodeMaps node, bool ipv6, IReadOnlyCollection<ulong>? setIds = null,
        IEngineReporter? reporter = null, CancellationToken cancellationToken = default)
    {
        CalicoMapName pin = MapReading.FindToDump(node, ipv6 ? V6 : V4, ipv6 ? "IPv6 IP set" : "IPv4 IP set");
        return MapReading.Decode<IpSetMember>(node, pin, d =>
        {
            MapReading.ExpectSizes(pin, d, KeySize(ipv6), 4, $"{KeySize(ipv6)}-byte keys and 4-byte values");
            return (key, value) => setIds is { Count: > 0 } && !setIds.Contains(BinaryPrimitives.ReadUInt64BigEndian(key[4..]))
                ? null
                : Decode(node.Node, ipv6, key);
        }, reporter, cancellationToken)
            .OrderBy(m => m.SetId)
            .ThenBy(m => m.Member, StringComparer.Ordinal);
    }

    /// <summary>Parses a set id as calico-bpf prints it (0x1122334455667788) or as a decimal number.</summary>
    public static ulong ParseSetId(string text)
    {
        string t = text.Trim();
        bool ok = t.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? ulong.TryParse(t.AsSpan(2), System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture, out ulong v)
            : ulong.TryParse(t, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out v);
        return ok ? v : throw new FormatException($"'{text}' is not an IP set id; use the form calico-bpf prints (0x1122334455667788) or a decimal number.");
    }
}
