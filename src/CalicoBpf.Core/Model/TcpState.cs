namespace CalicoBpf;

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
