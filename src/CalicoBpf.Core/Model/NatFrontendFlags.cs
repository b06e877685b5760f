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
