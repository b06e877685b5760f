using CalicoBpf.Interop;
using CalicoBpf.Transport;

namespace CalicoBpf.Maps;

/// <summary>
/// Calico's service NAT maps (reference sections 2.3 to 2.6): frontends (LPM trie, versions 2 and 3),
/// backends, session affinity and Maglev, for IPv4 and IPv6.
/// </summary>
public static class NatMaps
{
    public const string FrontendV4 = "cali_v4_nat_fe";
    public const string FrontendV6 = "cali_v6_nat_fe";
    public const string BackendV4 = "cali_v4_nat_be";
    public const string BackendV6 = "cali_v6_nat_be";
    public const string AffinityV4 = "cali_v4_nat_aff";
    public const string AffinityV6 = "cali_v6_nat_aff";
    public const string MaglevV4 = "cali_v4_mglv";
    public const string MaglevV6 = "cali_v6_mglv";

    /// <summary>A frontend entry whose count is this drops traffic (LoadBalancerSourceRanges reject).</summary>
    public const uint DropCount = 0xffffffff;

    public static int AddressLength(bool ipv6) => ipv6 ? 16 : 4;

    public static int FrontendKeySize(bool ipv6) => ipv6 ? 40 : 16;

    /// <summary>Bits of the LPM key always matched before the source CIDR: address, port, protocol.</summary>
    public static int FrontendFixedBits(bool ipv6) => ipv6 ? 152 : 56;

    public static int BackendValueSize(bool ipv6) => ipv6 ? 20 : 8;

    public static int AffinityKeySize(bool ipv6) => ipv6 ? 40 : 16;

    public static int AffinityValueSize(bool ipv6) => ipv6 ? 32 : 16;

    // ---- encoders (fixtures, the demo, simulated nodes) ----

    public static byte[] EncodeFrontendKey(IPAddress address, int port, IpProtocol protocol, AddressPrefix? source = null)
    {
        bool v6 = ConntrackText.IsIPv6(address);
        int l = AddressLength(v6);
        byte[] key = new byte[FrontendKeySize(v6)];
        BinaryPrimitives.WriteUInt32LittleEndian(key, (uint)(FrontendFixedBits(v6) + (source?.PrefixLength ?? 0)));
        address.GetAddressBytes().CopyTo(key, 4);
        BinaryPrimitives.WriteUInt16LittleEndian(key.AsSpan(4 + l), (ushort)port);
        key[6 + l] = (byte)protocol;
        if (source is not null)
        {
            IPAddress.Parse(source.ToString().Split('/')[0]).GetAddressBytes().CopyTo(key, 7 + l);
        }

        return key;
    }

    public static byte[] EncodeFrontendValue(uint serviceId, uint count, uint local, uint affinitySeconds, NatFrontendFlags flags, int valueSize = 20)
    {
        byte[] v = new byte[valueSize];
        BinaryPrimitives.WriteUInt32LittleEndian(v, serviceId);
        BinaryPrimitives.WriteUInt32LittleEndian(v.AsSpan(4), count);
        BinaryPrimitives.WriteUInt32LittleEndian(v.AsSpan(8), local);
        BinaryPrimitives.WriteUInt32LittleEndian(v.AsSpan(12), affinitySeconds);
        if (valueSize >= 20)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(v.AsSpan(16), (uint)flags);
        }

        return v;
    }

    public static byte[] EncodeIdOrdinal(uint id, int ordinal)
    {
        byte[] k = new byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(k, id);
        BinaryPrimitives.WriteUInt32LittleEndian(k.AsSpan(4), (uint)ordinal);
        return k;
    }

    public static byte[] EncodeDestination(IPAddress address, int port)
    {
        bool v6 = ConntrackText.IsIPv6(address);
        byte[] v = new byte[BackendValueSize(v6)];
        address.GetAddressBytes().CopyTo(v, 0);
        BinaryPrimitives.WriteUInt16LittleEndian(v.AsSpan(AddressLength(v6)), (ushort)port);
        return v;
    }

    public static (byte[] Key, byte[] Value) EncodeAffinity(IPAddress service, int port, IpProtocol protocol, IPAddress client, IPAddress backend, int backendPort, ulong timestamp)
    {
        bool v6 = ConntrackText.IsIPv6(service);
        int l = AddressLength(v6);
        byte[] key = new byte[AffinityKeySize(v6)];
        service.GetAddressBytes().CopyTo(key, 0);
        BinaryPrimitives.WriteUInt16LittleEndian(key.AsSpan(l), (ushort)port);
        key[l + 2] = (byte)protocol;
        client.GetAddressBytes().CopyTo(key, l + 4);
        byte[] value = new byte[AffinityValueSize(v6)];
        EncodeDestination(backend, backendPort).CopyTo(value, 0);
        BinaryPrimitives.WriteUInt64LittleEndian(value.AsSpan(v6 ? 24 : 8), timestamp);
        return (key, value);
    }

    // ---- decoders ----

    internal static (IPAddress Address, int Port) DecodeDestination(ReadOnlySpan<byte> v, bool ipv6)
    {
        int l = AddressLength(ipv6);
        return (new IPAddress(v[..l]), BinaryPrimitives.ReadUInt16LittleEndian(v[l..]));
    }

    /// <summary>Decodes a frontend key and value (without backends).</summary>
    public static NatFrontend DecodeFrontend(string node, string mapName, bool ipv6, ReadOnlySpan<byte> key, ReadOnlySpan<byte> value,
        IReadOnlyList<NatBackend>? backends = null)
    {
        int l = AddressLength(ipv6);
        int prefix = (int)BinaryPrimitives.ReadUInt32LittleEndian(key);
        int srcPrefix = prefix - FrontendFixedBits(ipv6);
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(value[4..]);
        return new NatFrontend
        {
            Node = node,
            MapName = mapName,
            AddressValue = new IPAddress(key.Slice(4, l)),
            Port = BinaryPrimitives.ReadUInt16LittleEndian(key[(4 + l)..]),
            Protocol = (IpProtocol)key[6 + l],
            SourceCidr = srcPrefix > 0 ? new IPAddress(key.Slice(7 + l, l)) + "/" + srcPrefix : null,
            ServiceId = BinaryPrimitives.ReadUInt32LittleEndian(value),
            BackendCount = count == DropCount ? 0 : (int)Math.Min(count, int.MaxValue),
            IsDropEntry = count == DropCount,
            LocalBackendCount = (int)BinaryPrimitives.ReadUInt32LittleEndian(value[8..]),
            AffinityTimeoutValue = TimeSpan.FromSeconds(BinaryPrimitives.ReadUInt32LittleEndian(value[12..])),
            Flags = value.Length >= 20 ? (NatFrontendFlags)BinaryPrimitives.ReadUInt32LittleEndian(value[16..]) : NatFrontendFlags.None,
            Backends = backends is null ? ValueList<NatBackend>.Empty : new ValueList<NatBackend>(backends, format: b => b.Missing ? $"#{b.Ordinal} missing" : ConntrackText.HostPort(b.AddressValue!, b.Port)),
        };
    }

    private static bool IsIPv6Map(CalicoMapName pin) => pin.Family == MapFamily.IPv6;

    private static void CheckFrontend(CalicoMapName pin, BpfMapDescriptor d)
    {
        bool v6 = IsIPv6Map(pin);
        if (d.KeySize != FrontendKeySize(v6) || (d.ValueSize != 20 && d.ValueSize != 16))
        {
            MapReading.ExpectSizes(pin, d, FrontendKeySize(v6), 20, $"{FrontendKeySize(v6)}-byte keys with 16-byte (version 2) or 20-byte (version 3) values");
        }
    }

    /// <summary>
    /// Reads the frontends that match the query, then resolves their backends in one pass over the
    /// backend map (only the ids of matching frontends are kept). A frontend whose backend ordinals
    /// are absent keeps them as Missing backends; it is never dropped.
    /// </summary>
    public static IEnumerable<NatFrontend> ReadFrontends(INodeDataplane node, NatQuery query, IEngineReporter? reporter = null,
        CancellationToken cancellationToken = default)
    {
        bool v6 = query.IPv6;
        CalicoMapName fePin = MapReading.FindToDump(node, v6 ? FrontendV6 : FrontendV4, v6 ? "IPv6 NAT frontend" : "IPv4 NAT frontend",
            v6 ? "IPv6 is probably not enabled in Calico on this node; drop -IPv6." : null);
        // Frontends are few (65,536 at most); they are held while their backends are looked up.
        var frontends = MapReading.Decode<RawEntry>(node, fePin, d =>
        {
            CheckFrontend(fePin, d);
            return (key, value) => query.Matches(key, value, v6) ? new RawEntry(key.ToArray(), value.ToArray()) : null;
        }, reporter, cancellationToken).ToList();

        var wanted = new Dictionary<ulong, (IPAddress Address, int Port)?>();
        foreach ((byte[] _, byte[] v) in frontends)
        {
            uint id = BinaryPrimitives.ReadUInt32LittleEndian(v);
            uint count = BinaryPrimitives.ReadUInt32LittleEndian(v.AsSpan(4));
            if (count == DropCount)
            {
                continue;
            }

            for (uint o = 0; o < Math.Min(count, 65536u); o++)
            {
                wanted[((ulong)id << 32) | o] = null;
            }
        }

        if (wanted.Count > 0)
        {
            CalicoMapName? bePin = MapReading.TryFind(node, v6 ? BackendV6 : BackendV4);
            if (bePin is null)
            {
                reporter?.Warning($"No NAT backend map ({(v6 ? BackendV6 : BackendV4)}) is pinned on {node.Node}: every backend shows as missing.");
            }
            else
            {
                foreach (BackendHit b in MapReading.Decode<BackendHit>(node, bePin, d =>
                {
                    MapReading.ExpectSizes(bePin, d, 8, BackendValueSize(v6), $"8-byte keys and {BackendValueSize(v6)}-byte values");
                    return (key, value) =>
                    {
                        ulong k = ((ulong)BinaryPrimitives.ReadUInt32LittleEndian(key) << 32) | BinaryPrimitives.ReadUInt32LittleEndian(key[4..]);
                        if (!wanted.ContainsKey(k))
                        {
                            return null;
                        }

                        (IPAddress a, int p) = DecodeDestination(value, v6);
                        return new BackendHit(k, a, p);
                    };
                }, reporter, cancellationToken))
                {
                    wanted[b.Key] = (b.Address, b.Port);
                }
            }
        }

        foreach ((byte[] k, byte[] v) in frontends)
        {
            uint id = BinaryPrimitives.ReadUInt32LittleEndian(v);
            uint count = BinaryPrimitives.ReadUInt32LittleEndian(v.AsSpan(4));
            var backends = new List<NatBackend>();
            if (count != DropCount)
            {
                for (uint o = 0; o < Math.Min(count, 65536u); o++)
                {
                    (IPAddress Address, int Port)? dest = wanted[((ulong)id << 32) | o];
                    backends.Add(new NatBackend(id, (int)o, dest?.Address, dest?.Port ?? 0));
                }
            }

            NatFrontend frontend = DecodeFrontend(node.Node, fePin.PinName, v6, k, v, backends);
            query.Resolver?.Annotate(frontend);
            if (query.Workloads is not null && !query.Workloads.Matches(frontend))
            {
                continue;
            }

            if (frontend.MissingBackendCount > 0)
            {
                reporter?.Warning($"{frontend.Frontend} ({frontend.Protocol}, service id {frontend.ServiceId}) counts {frontend.BackendCount} backends but {frontend.MissingBackendCount} are missing from the backend map.");
            }

            yield return frontend;
        }
    }

    public static IEnumerable<NatAffinity> ReadAffinity(INodeDataplane node, bool ipv6, IEngineReporter? reporter = null,
        CancellationToken cancellationToken = default)
    {
        CalicoMapName pin = MapReading.FindToDump(node, ipv6 ? AffinityV6 : AffinityV4, ipv6 ? "IPv6 NAT affinity" : "IPv4 NAT affinity");
        ClockSample clock = node.SampleClock();
        int l = AddressLength(ipv6);
        return MapReading.Decode<NatAffinity>(node, pin, d =>
        {
            MapReading.ExpectSizes(pin, d, AffinityKeySize(ipv6), AffinityValueSize(ipv6), $"{AffinityKeySize(ipv6)}-byte keys and {AffinityValueSize(ipv6)}-byte values");
            return (key, value) =>
            {
                (IPAddress backend, int backendPort) = DecodeDestination(value, ipv6);
                ulong ts = BinaryPrimitives.ReadUInt64LittleEndian(value[(ipv6 ? 24 : 8)..]);
                return new NatAffinity
                {
                    Node = node.Node,
                    ServiceAddressValue = new IPAddress(key[..l]),
                    ServicePort = BinaryPrimitives.ReadUInt16LittleEndian(key[l..]),
                    Protocol = (IpProtocol)key[l + 2],
                    ClientAddressValue = new IPAddress(key.Slice(l + 4, l)),
                    BackendAddressValue = backend,
                    BackendPort = backendPort,
                    TimestampNanoseconds = ts,
                    LastRefreshed = clock.WallTimeOf(ts),
                    AgeValue = clock.AgeOf(ts),
                };
            };
        }, reporter, cancellationToken);
    }

    /// <summary>Maglev lookup-table entries; empty when the node has no Maglev map (Calico before v3.32.0).</summary>
    public static IEnumerable<MaglevEntry> ReadMaglev(INodeDataplane node, bool ipv6, uint? serviceId = null, IEngineReporter? reporter = null,
        CancellationToken cancellationToken = default)
    {
        CalicoMapName? pin = MapReading.TryFind(node, ipv6 ? MaglevV6 : MaglevV4);
        if (pin is null)
        {
            reporter?.Verbose($"No Maglev map on {node.Node} (Calico releases before v3.32.0 have none).");
            return Array.Empty<MaglevEntry>();
        }

        return MapReading.Decode<MaglevEntry>(node, pin, d =>
        {
            MapReading.ExpectSizes(pin, d, 8, BackendValueSize(ipv6), $"8-byte keys and {BackendValueSize(ipv6)}-byte values");
            return (key, value) =>
            {
                uint id = BinaryPrimitives.ReadUInt32LittleEndian(key);
                if (serviceId is { } want && want != id)
                {
                    return null;
                }

                (IPAddress a, int p) = DecodeDestination(value, ipv6);
                return new MaglevEntry { Node = node.Node, ServiceId = id, Ordinal = (int)BinaryPrimitives.ReadUInt32LittleEndian(key[4..]), BackendAddressValue = a, BackendPort = p };
            };
        }, reporter, cancellationToken);
    }
}

internal sealed record RawEntry(byte[] Key, byte[] Value);

internal sealed record BackendHit(ulong Key, IPAddress Address, int Port);

/// <summary>What Get-BpfNat asks for; checked on each frontend's raw key before anything is built.</summary>
public sealed class NatQuery
{
    private readonly IReadOnlyList<AddressPrefix>? _addresses;
    private readonly AddressSet? _addressSet;

    public bool IPv6 { get; init; }

    public IReadOnlyList<AddressPrefix>? Addresses
    {
        get => _addresses;
        init
        {
            _addresses = value;
            _addressSet = value is { Count: > 0 } ? new AddressSet(value) : null;
        }
    }

    public IReadOnlyCollection<int>? Ports { get; init; }
    public IReadOnlyCollection<IpProtocol>? Protocols { get; init; }
    public IReadOnlyCollection<uint>? ServiceIds { get; init; }

    /// <summary>-Resolve: names each frontend's service and each backend's pod.</summary>
    public IWorkloadNamer? Resolver { get; init; }

    /// <summary>-Pod, -Namespace, -Service: checked on resolved frontends (needs <see cref="Resolver"/>).</summary>
    public IWorkloadMatcher? Workloads { get; init; }

    internal bool Matches(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, bool ipv6)
    {
        int l = NatMaps.AddressLength(ipv6);
        if (_addressSet is { } addresses && !addresses.Contains(key.Slice(4, l)))
        {
            return false;
        }

        if (Ports is { Count: > 0 } && !Ports.Contains(BinaryPrimitives.ReadUInt16LittleEndian(key[(4 + l)..])))
        {
            return false;
        }

        if (Protocols is { Count: > 0 } && !Protocols.Contains((IpProtocol)key[6 + l]))
        {
            return false;
        }

        return ServiceIds is not { Count: > 0 } || ServiceIds.Contains(BinaryPrimitives.ReadUInt32LittleEndian(value));
    }
}
