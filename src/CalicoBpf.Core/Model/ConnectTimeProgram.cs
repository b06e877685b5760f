namespace CalicoBpf;

/// <summary>A program attached to the cgroup Calico's connect-time load balancer uses (cgroup v2 root).</summary>
public sealed class ConnectTimeProgram
{
    public string Node { get; init; } = string.Empty;
    public string Cgroup { get; init; } = string.Empty;
    /// <summary>The hook: Connect4/6, SendMsg4/6, RecvMsg4/6.</summary>
    public CgroupAttachType AttachType { get; init; }
    public uint ProgramId { get; init; }
    /// <summary>The kernel's program name (15 characters at most).</summary>
    public string Name { get; init; } = string.Empty;
    /// <summary>The program's tag (hash of its instructions), as bpftool prints it.</summary>
    public string Tag { get; init; } = string.Empty;
    /// <summary>When the program was loaded (UTC).</summary>
    public DateTime? Loaded { get; init; }
    /// <summary>The pinned link that holds the attachment (Calico pins them in /sys/fs/bpf/ctlb); null for another owner.</summary>
    public string? LinkPath { get; init; }
    /// <summary>Calico's: its name or its link pin is Calico's.</summary>
    public bool IsCalico { get; init; }
}
