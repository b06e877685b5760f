namespace CalicoBpf;

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
