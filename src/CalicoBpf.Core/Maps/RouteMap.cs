using CalicoBpf.Interop;
using CalicoBpf.Transport;

namespace CalicoBpf.Maps;

/// <summary>Calico's routing map, cali_v4_routes / cali_v6_routes (LPM trie; reference section 2.7).</summary>
public static class RouteMap
{
    public const string V4 = "cali_v4_routes";
    public const string V6 = "cali_v6_routes";

    public static int KeySize(bool ipv6) => ipv6 ? 20 : 8;

    public static byte[] EncodeKey(IPAddress address, int prefixLength)
    {
        byte[] a = address.GetAddressBytes();
        byte[] key = new byte[4 + a.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(key, (uint)prefixLength);
        a.CopyTo(key, 4);
        return key;
    }

    /// <summary>Value: flags, then the next hop (remote workload) or the ifindex (local workload) in the address slot.</summary>
    public static byte[] EncodeValue(RouteFlags flags, bool ipv6, IPAddress? nextHop = null, int ifIndex = 0)
    {
        byte[] v = new byte[KeySize(ipv6)];
        BinaryPrimitives.WriteUInt32LittleEndian(v, (uint)flags);
        if (nextHop is not null)
        {
            nextHop.GetAddressBytes().CopyTo(v, 4);
        }
        else
        {
            BinaryPrimitives.WriteUInt32LittleEndian(v.AsSpan(4), (uint)ifIndex);
        }

        return v;
    }

    /// <summary>
    /// What bit 0x800 means (felix/bpf/routes/map.go at each tag): nothing up to v3.30.0, a VM workload
    /// ("vm") in v3.30.1 to v3.30.x, skip-ingress-redirect from v3.31 (when 0x400 vxlan came too).
    /// </summary>
    private static string? Name800(CalicoRelease release) =>
        release.AtLeast(3, 31) ? "skip-ingress-redir" : release.AtLeast(3, 30, 1) ? "vm" : null;

    /// <summary>calico-bpf routes dump's words for a route, in the newest release.</summary>
    public static string Describe(RouteFlags f, IPAddress? nextHop, int? ifIndex) => Describe(f, nextHop, ifIndex, CalicoRelease.Newest);

    /// <summary>
    /// calico-bpf routes dump's words for a route as the release prints them (felix/bpf/routes/map.go
    /// Value.String): flags 0 read "remote", as a route that is neither local nor a blackhole does.
    /// </summary>
    public static string Describe(RouteFlags f, IPAddress? nextHop, int? ifIndex, CalicoRelease release)
    {
        var words = new List<string>();
        bool blackhole = (f & (RouteFlags.BlackholeDrop | RouteFlags.BlackholeReject)) != 0;
        if ((f & RouteFlags.Local) != 0)
        {
            words.Add("local");
        }
        else if (!blackhole)
        {
            words.Add("remote");
        }

        if ((f & RouteFlags.Host) != 0)
        {
            words.Add("host");
        }
        else if ((f & RouteFlags.Workload) != 0)
        {
            words.Add("workload");
        }

        void Add(RouteFlags flag, string word)
        {
            if ((f & flag) != 0)
            {
                words.Add(word);
            }
        }

        Add(RouteFlags.InPool, "in-pool");
        Add(RouteFlags.NatOut, "nat-out");
        Add(RouteFlags.SameSubnet, "same-subnet");
        Add(RouteFlags.NoDsr, "no-dsr");
        Add(RouteFlags.Tunneled, "tunneled");
        if (Name800(release) is { } name800)
        {
            Add(RouteFlags.SkipIngressRedirect, name800);
        }

        if (ifIndex is { } idx)
        {
            words.Add("idx " + idx);
        }

        if (nextHop is not null)
        {
            words.Add("nh " + nextHop);
        }

        Add(RouteFlags.BlackholeDrop, "blackhole-drop");
        Add(RouteFlags.BlackholeReject, "blackhole-reject");
        return words.Count == 0 ? $"unknown type ({(uint)f})" : string.Join(' ', words);
    }

    public static Route Decode(string node, bool ipv6, ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, IReadOnlyDictionary<int, NetworkLink>? links,
        CalicoRelease? release = null)
    {
        int l = ipv6 ? 16 : 4;
        var flags = (RouteFlags)BinaryPrimitives.ReadUInt32LittleEndian(value);
        bool local = (flags & RouteFlags.Local) != 0;
        bool workload = (flags & RouteFlags.Workload) != 0;
        int? ifIndex = local && workload ? (int)BinaryPrimitives.ReadUInt32LittleEndian(value[4..]) : null;
        IPAddress? nextHop = !local && workload ? new IPAddress(value.Slice(4, l)) : null;
        var address = new IPAddress(key.Slice(4, l));
        int prefix = (int)BinaryPrimitives.ReadUInt32LittleEndian(key);
        return new Route
        {
            Node = node,
            AddressValue = address,
            PrefixLength = prefix,
            Cidr = address + "/" + prefix,
            Flags = flags,
            NextHopValue = nextHop,
            IfIndex = ifIndex,
            Interface = ifIndex is { } i and > 0 && links is not null ? CounterReader.NameOf(links, i) : null,
            Description = Describe(flags, nextHop, ifIndex, release ?? CalicoRelease.Newest),
        };
    }

    /// <summary>
    /// Every route, sorted as calico-bpf sorts them (address bytes, then prefix length); with
    /// <paramref name="lookup"/>, only the route the dataplane would use for it (longest prefix match);
    /// with <paramref name="within"/>, only the routes inside that CIDR.
    /// </summary>
    public static IEnumerable<Route> Read(INodeDataplane node, bool ipv6, IPAddress? lookup = null, IEngineReporter? reporter = null,
        CancellationToken cancellationToken = default, AddressPrefix? within = null)
    {
        CalicoMapName pin = MapReading.FindToDump(node, ipv6 ? V6 : V4, ipv6 ? "IPv6 route" : "IPv4 route",
            ipv6 ? "IPv6 is probably not enabled in Calico on this node; drop -IPv6." : null);
        IReadOnlyDictionary<int, NetworkLink> links = node.ListLinks();
        CalicoRelease release = ReleaseInference.Of(node, reporter ?? NullReporter.Instance).Release;
        byte[]? targetBytes = lookup?.GetAddressBytes();
        var rows = MapReading.Decode<RawEntry>(node, pin, d =>
        {
            MapReading.ExpectSizes(pin, d, KeySize(ipv6), KeySize(ipv6), $"{KeySize(ipv6)}-byte keys and values");
            return (key, value) =>
            {
                if (targetBytes is not null
                    && (targetBytes.Length != key.Length - 4 || !AddressPrefix.Covers(key[4..], (int)BinaryPrimitives.ReadUInt32LittleEndian(key), targetBytes)))
                {
                    return null;
                }

                // A CIDR keeps the routes inside it (as long or longer), decided on the key before anything is built.
                if (within is not null && ((int)BinaryPrimitives.ReadUInt32LittleEndian(key) < within.PrefixLength || !within.Matches(key[4..])))
                {
                    return null;
                }

                return new RawEntry(key.ToArray(), value.ToArray());
            };
        }, reporter, cancellationToken).ToList();

        if (targetBytes is not null)
        {
            rows = rows.OrderByDescending(r => BinaryPrimitives.ReadUInt32LittleEndian(r.Key)).Take(1).ToList();
        }

        rows.Sort((a, b) =>
        {
            int c = a.Key.AsSpan(4).SequenceCompareTo(b.Key.AsSpan(4));
            return c != 0 ? c : BinaryPrimitives.ReadUInt32LittleEndian(a.Key).CompareTo(BinaryPrimitives.ReadUInt32LittleEndian(b.Key));
        });
        foreach (RawEntry r in rows)
        {
            yield return Decode(node.Node, ipv6, r.Key, r.Value, links, release);
        }
    }
}
