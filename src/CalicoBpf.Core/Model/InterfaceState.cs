namespace CalicoBpf;

/// <summary>What Felix records about an interface it manages: flags and the policy programs attached per hook; and what the kernel has attached to it.</summary>
public sealed class InterfaceState
{
    public string Node { get; init; } = string.Empty;
    public int IfIndex { get; init; }
    /// <summary>The name Felix stored (up to 15 characters).</summary>
    public string Name { get; init; } = string.Empty;
    public InterfaceStateFlags Flags { get; init; }
    public ValueList<string> FlagNames { get; init; } = ValueList<string>.Empty;
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
    public ValueList<ProgramAttachment> Attachments { get; init; } = ValueList<ProgramAttachment>.Empty;
}
