namespace CalicoBpf;

/// <summary>How the release of a node was told, shown with -Verbose and on Get-BpfMap and Get-CalicoNode.</summary>
public enum CalicoReleaseSource
{
    /// <summary>-CalicoVersion.</summary>
    Given,
    /// <summary>The calico-node container's image tag.</summary>
    Image,
    /// <summary>The map versions pinned on the node: a range of releases; the newest of it is used.</summary>
    PinnedMaps,
    /// <summary>Nothing told it: the newest rules CalicoBpf knows are used.</summary>
    Unknown,
}
