namespace CalicoBpf;

/// <summary>
/// One program attached to an interface at a TC-like hook, as bpftool net show lists it: a tc filter
/// of the clsact qdisc, a TCX entry or a netkit entry.
/// </summary>
public sealed class ProgramAttachment
{
    public string Node { get; init; } = string.Empty;
    public string Interface { get; init; } = string.Empty;
    public int IfIndex { get; init; }
    public AttachKind Kind { get; init; }
    /// <summary>
    /// Calico's hook: Ingress runs on packets the interface receives, Egress on packets it sends. On a
    /// netkit device Felix puts Ingress (from the pod) on the peer and Egress (to the pod) on the primary.
    /// </summary>
    public PolicyHook Hook { get; init; }
    /// <summary>The kernel's attach point as bpftool net show names it: clsact/ingress, tcx/egress, netkit/peer, ...</summary>
    public string AttachPoint { get; init; } = string.Empty;
    public uint ProgramId { get; init; }
    /// <summary>The kernel's program name (15 characters at most: cali_tc_preambl for Calico's cali_tc_preamble).</summary>
    public string ProgramName { get; init; } = string.Empty;
    /// <summary>The program's tag (hash of its instructions), as bpftool prints it.</summary>
    public string Tag { get; init; } = string.Empty;
    /// <summary>The bpf link that holds a TCX or netkit attachment (Felix pins it in /sys/fs/bpf/tcx or /sys/fs/bpf/netkit); null for tc filters and link-less attachments.</summary>
    public uint? LinkId { get; init; }
    /// <summary>Calico's program: its name starts with cali (cali_tc_preamble, calico_*).</summary>
    public bool IsCalico { get; init; }

    /// <summary>Whether a program name is one of Calico's (Felix names every tc program cali_* or calico_*).</summary>
    public static bool IsCalicoName(string name) => name.StartsWith("cali", StringComparison.Ordinal);

    public override string ToString() => $"{Interface} {AttachPoint} {ProgramName} id {ProgramId}{(LinkId is { } l ? " link " + l : string.Empty)}";
}
