namespace CalicoBpf;

/// <summary>Which Calico program printed a trace line, from its tag.</summary>
public enum TraceDirection
{
    /// <summary>No Calico tag (preamble lines, other programs).</summary>
    None,
    /// <summary>
    /// -I, the policy direction (bpf-gpl/bpf.h CALI_F_INGRESS), not the TC hook: from the network on a
    /// host interface (its TC ingress), to the pod on a cali* veth (the veth's TC egress hook, CALI_F_TO_WEP).
    /// </summary>
    Ingress,
    /// <summary>-E: to the network on a host interface; from the pod on a cali* veth (its TC ingress hook, CALI_F_FROM_WEP).</summary>
    Egress,
    /// <summary>XDP program (-X).</summary>
    Xdp,
    /// <summary>Connect-time load balancer (CTLB tags).</summary>
    ConnectTimeLoadBalancer,
    /// <summary>The BPF conntrack cleaner (CT-CLEANER).</summary>
    ConntrackCleaner,
}
