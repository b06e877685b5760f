namespace CalicoBpf;

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
