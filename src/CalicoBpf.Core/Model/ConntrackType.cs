namespace CalicoBpf;

/// <summary>The conntrack entry kinds (calico_ct_value.type).</summary>
public enum ConntrackType : byte
{
    /// <summary>A connection without service NAT; holds both legs.</summary>
    Normal = 0,
    /// <summary>Keyed by the pre-DNAT tuple (client to service); points to its NatReverse entry.</summary>
    NatForward = 1,
    /// <summary>The tracking entry of a DNATed connection, keyed by the post-DNAT tuple (client to backend).</summary>
    NatReverse = 2,
}
