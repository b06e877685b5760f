namespace CalicoBpf;

/// <summary>The address family a Calico map serves.</summary>
public enum MapFamily
{
    /// <summary>Shared by both families (cali_counters, cali_iface, ...).</summary>
    Any,
    IPv4,
    IPv6,
}
