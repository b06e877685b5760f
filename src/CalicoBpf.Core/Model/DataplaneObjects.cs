using System.Net;

namespace CalicoBpf;

/// <summary>NAT frontend flags (calico_nat_value.flags).</summary>
[Flags]
public enum NatFrontendFlags : uint
{
    None = 0,
    /// <summary>ExternalTrafficPolicy=Local.</summary>
    ExternalLocal = 0x1,
    /// <summary>InternalTrafficPolicy=Local.</summary>
    InternalLocal = 0x2,
    NatExclude = 0x4,
    Maglev = 0x8,
}

/// <summary>One backend of a service frontend (calico_nat_dest), resolved from the backend map.</summary>
public sealed record NatBackend(uint ServiceId, int Ordinal, IPAddress? Address, int Port)
{
    /// <summary>The frontend counts this ordinal but the backend map has no entry for it.</summary>
    public bool Missing => Address is null;

    /// <summary>-Resolve: "namespace/name" of the pod at this backend's address (empty when none is).</summary>
    public string Pod { get; set; } = string.Empty;

    public override string ToString() => Missing ? $"{ServiceId}:{Ordinal} is missing" : $"{ServiceId}:{Ordinal} {ConntrackText.HostPort(Address!, Port)}";
}

/// <summary>A service frontend: one (address, port, protocol[, source CIDR]) key of the NAT frontend map, with its backends.</summary>
public sealed class NatFrontend
{
    public string Node { get; init; } = string.Empty;
    /// <summary>The service IP; 255.255.255.255 (or all-ones IPv6) is the wildcard NodePort entry.</summary>
    public IPAddress Address { get; init; } = IPAddress.Any;
    public int Port { get; init; }
    public IpProtocol Protocol { get; init; }
    /// <summary>The LoadBalancerSourceRanges CIDR this entry admits; null for an ordinary entry.</summary>
    public string? SourceCidr { get; init; }
    /// <summary>The service id: the key of the backend map; ClusterIP, NodePort and LB frontends of one service share it.</summary>
    public uint ServiceId { get; init; }
    /// <summary>Number of backends; -1 on a drop entry (traffic from outside the source ranges).</summary>
    public int BackendCount { get; init; }
    public int LocalBackendCount { get; init; }
    public TimeSpan AffinityTimeout { get; init; }
    public NatFrontendFlags Flags { get; init; }
    public IReadOnlyList<NatBackend> Backends { get; init; } = Array.Empty<NatBackend>();

    /// <summary>-Resolve: "namespace/name" of the Kubernetes service with this frontend (empty when none).</summary>
    public string Service { get; set; } = string.Empty;
    public string MapName { get; init; } = string.Empty;

    public bool IsDropEntry => BackendCount < 0;
    public bool IsNodePortWildcard => Address.GetAddressBytes().All(b => b == 0xff);
    public int MissingBackendCount => Backends.Count(b => b.Missing);
    public string Frontend => ConntrackText.HostPort(Address, Port);

    public override string ToString() =>
        $"{Address} port {Port} proto {(byte)Protocol} id {ServiceId} count {BackendCount} local {LocalBackendCount}" +
        (Flags != NatFrontendFlags.None ? " flags " + Flags : string.Empty) + (SourceCidr is null ? string.Empty : " src " + SourceCidr);
}

/// <summary>A session-affinity entry: which backend a client sticks to for a service.</summary>
public sealed class NatAffinity
{
    public string Node { get; init; } = string.Empty;
    public IPAddress ServiceAddress { get; init; } = IPAddress.Any;
    public int ServicePort { get; init; }
    public IpProtocol Protocol { get; init; }
    public IPAddress ClientAddress { get; init; } = IPAddress.Any;
    public IPAddress BackendAddress { get; init; } = IPAddress.Any;
    public int BackendPort { get; init; }
    /// <summary>When the affinity was created or last refreshed (UTC).</summary>
    public DateTime LastRefreshed { get; init; }
    public TimeSpan Age { get; init; }
    /// <summary>Raw ts: CLOCK_MONOTONIC nanoseconds (what calico-bpf nat aff prints as a duration).</summary>
    public ulong TimestampNanoseconds { get; init; }
}

/// <summary>One slot of a service's Maglev lookup table.</summary>
public sealed class MaglevEntry
{
    public string Node { get; init; } = string.Empty;
    public uint ServiceId { get; init; }
    public int Ordinal { get; init; }
    public IPAddress BackendAddress { get; init; } = IPAddress.Any;
    public int BackendPort { get; init; }
}

/// <summary>Route flags (cali_v4_routes value flags).</summary>
[Flags]
public enum RouteFlags : uint
{
    None = 0,
    InPool = 0x1,
    NatOut = 0x2,
    Workload = 0x4,
    Local = 0x8,
    Host = 0x10,
    SameSubnet = 0x20,
    Tunneled = 0x40,
    NoDsr = 0x80,
    BlackholeDrop = 0x100,
    BlackholeReject = 0x200,
    Vxlan = 0x400,
    /// <summary>From v3.31; in v3.30.1 to v3.30.x the same bit marks a VM workload (Description follows the node's release).</summary>
    SkipIngressRedirect = 0x800,
}

/// <summary>A route of Calico's routing map.</summary>
public sealed class BpfRoute
{
    public string Node { get; init; } = string.Empty;
    public string Cidr { get; init; } = string.Empty;
    public IPAddress Address { get; init; } = IPAddress.Any;
    public int PrefixLength { get; init; }
    public RouteFlags Flags { get; init; }
    /// <summary>calico-bpf's description words: "local workload in-pool idx 12", "remote host", ...</summary>
    public string Description { get; init; } = string.Empty;
    /// <summary>Remote workload routes: the node the workload lives on.</summary>
    public IPAddress? NextHop { get; init; }
    /// <summary>Local workload routes: the workload interface.</summary>
    public int? IfIndex { get; init; }
    public string? Interface { get; init; }
}

/// <summary>One member of one Calico IP set.</summary>
public sealed class BpfIpSetMember
{
    public string Node { get; init; } = string.Empty;
    public ulong SetId { get; init; }
    /// <summary>The set id as calico-bpf prints it: Go's %#x, 0x and the hex digits without leading zeros (0x7).</summary>
    public string SetIdText => "0x" + SetId.ToString("x", System.Globalization.CultureInfo.InvariantCulture);
    public IPAddress Address { get; init; } = IPAddress.Any;
    public int PrefixLength { get; init; }
    public string Cidr => Address + "/" + PrefixLength;
    /// <summary>Named-port members: the port; null for CIDR members.</summary>
    public int? Port { get; init; }
    public IpProtocol? Protocol { get; init; }
    /// <summary>calico-bpf's member text: CIDR, or addr:port (proto n), IPv6 without brackets as its %s:%d prints it (fd00::5:8080).</summary>
    public string Member => Port is null ? Cidr : $"{ConntrackText.Endpoint(Address, Port.Value)} (proto {(byte)Protocol!.Value})";
}

/// <summary>A neighbour Calico learnt from a tunnel packet (used to answer NodePort forwarding).</summary>
public sealed class ArpEntry
{
    public string Node { get; init; } = string.Empty;
    public IPAddress Address { get; init; } = IPAddress.Any;
    public int IfIndex { get; init; }
    public string Interface { get; init; } = string.Empty;
    /// <summary>Our interface's MAC (the received packet's destination).</summary>
    public string SourceMac { get; init; } = string.Empty;
    /// <summary>The remote next hop's MAC (the received packet's source).</summary>
    public string DestinationMac { get; init; } = string.Empty;
}

/// <summary>Interface state flags (cali_iface value flags).</summary>
[Flags]
public enum InterfaceStateFlags : uint
{
    None = 0,
    Workload = 0x1,
    V4Ready = 0x2,
    V6Ready = 0x4,
    Host = 0x8,
    Bond = 0x10,
    BondSlave = 0x20,
    Vxlan = 0x40,
    Ipip = 0x80,
    WireGuard = 0x100,
    L3 = 0x200,
    NotManaged = 0x400,
}

/// <summary>What Felix records about an interface it manages: flags and the policy programs attached per hook; and what the kernel has attached to it.</summary>
public sealed class BpfInterfaceState
{
    public string Node { get; init; } = string.Empty;
    public int IfIndex { get; init; }
    /// <summary>The name Felix stored (up to 15 characters).</summary>
    public string Name { get; init; } = string.Empty;
    public InterfaceStateFlags Flags { get; init; }
    public string[] FlagNames { get; init; } = Array.Empty<string>();
    /// <summary>Program indices Felix assigned (-1: none). Null where the map version has no such field.</summary>
    public int? XdpPolicyV4 { get; init; }
    public int? IngressPolicyV4 { get; init; }
    public int? EgressPolicyV4 { get; init; }
    public int? XdpPolicyV6 { get; init; }
    public int? IngressPolicyV6 { get; init; }
    public int? EgressPolicyV6 { get; init; }
    public int? TcIngressFilter { get; init; }
    public int? TcEgressFilter { get; init; }
    public int MapVersion { get; init; }
    /// <summary>How the programs on the interface are attached: TC, TCX or Netkit (several while Felix switches); None when none is, or when they were not asked for.</summary>
    public AttachKind AttachKind { get; init; }
    /// <summary>The programs attached to the interface at the TC hooks, as bpftool net show lists them.</summary>
    public ProgramAttachment[] Attachments { get; init; } = Array.Empty<ProgramAttachment>();
}
