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
