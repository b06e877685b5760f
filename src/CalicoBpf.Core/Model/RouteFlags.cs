namespace CalicoBpf;

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
