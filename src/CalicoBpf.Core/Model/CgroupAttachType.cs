namespace CalicoBpf;

/// <summary>
/// The cgroup hooks of Calico's connect-time load balancer, numbered as the kernel's enum
/// bpf_attach_type (what Interop's BPF_PROG_QUERY and BPF_LINK_CREATE take).
/// </summary>
public enum CgroupAttachType : uint
{
    Connect4 = 10,
    Connect6 = 11,
    SendMsg4 = 14,
    SendMsg6 = 15,
    RecvMsg4 = 19,
    RecvMsg6 = 20,
}
