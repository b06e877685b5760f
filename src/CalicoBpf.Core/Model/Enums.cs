namespace CalicoBpf;

/// <summary>IP protocol numbers as Calico keys them. Unnamed numbers are still valid values.</summary>
public enum IpProtocol : byte
{
    HopByHop = 0,
    Icmp = 1,
    Igmp = 2,
    Ipip = 4,
    Tcp = 6,
    Udp = 17,
    Ipv6 = 41,
    Gre = 47,
    Esp = 50,
    Ah = 51,
    IcmpV6 = 58,
    Sctp = 132,
}

/// <summary>The conntrack entry kinds (calico_ct_value.type).</summary>
public enum ConntrackType : byte
{
    /// <summary>A connection without service NAT; holds both legs.</summary>
    Normal = 0,
    /// <summary>Keyed by the pre-DNAT tuple (client to service); points to its NatReverse entry.</summary>
    NatForward = 1,
    /// <summary>The tracking entry of a DNATed connection, keyed by the post-DNAT tuple (client to backend).</summary>
    NatReverse = 2,
}

/// <summary>The TCP state calico-bpf derives from an entry's legs (reference section 2.1.5).</summary>
public enum TcpState
{
    /// <summary>Not TCP, or a NatForward entry (which carries no legs).</summary>
    None = 0,
    SynSent,
    Established,
    Closed,
    Reset,
}

/// <summary>The 32-bit conntrack flag word (bytes 17, 23, 18, 19 of the value).</summary>
[Flags]
public enum ConntrackFlags : uint
{
    None = 0,
    NatOut = 0x1,
    DsrForward = 0x2,
    NodePortForward = 0x4,
    SkipFib = 0x8,
    Reserved10 = 0x10,
    Reserved20 = 0x20,
    ExternalLocal = 0x40,
    ViaNatInterface = 0x80,
    /// <summary>The opener's direction is B to A: the connection source is the key's B side.</summary>
    BA = 0x100,
    HostPsnat = 0x200,
    ServiceSelf = 0x400,
    NodePortLoop = 0x800,
    NodePortRemote = 0x1000,
    NoDsr = 0x2000,
    SkipRedirectPeer = 0x4000,
    /// <summary>Set DSCP from v3.32; in v3.31 the same bit is cluster-external (FlagNames follows the entry's release).</summary>
    SetDscp = 0x8000,
    Maglev = 0x10000,
    SendReset = 0x20000,
    ConnLimitIngress = 0x40000,
    ConnLimitIngressRejected = 0x80000,
    ConnLimitEgress = 0x100000,
    ConnLimitDecremented = 0x200000,
}

/// <summary>Counter categories as calico-bpf counters dump prints them.</summary>
public enum CounterCategory
{
    Accepted,
    Dropped,
    Other,
    Redirect,
    Total,
    /// <summary>A counter index this version of CalicoBpf does not know (a newer Calico).</summary>
    Unknown,
}

/// <summary>The address family a Calico map serves.</summary>
public enum MapFamily
{
    /// <summary>Shared by both families (cali_counters, cali_iface, ...).</summary>
    Any,
    IPv4,
    IPv6,
}
