namespace CalicoBpf;

/// <summary>A cluster node as CalicoBpf sees it: the node, and the calico-node pod that runs on it.</summary>
public sealed class CalicoNode
{
    /// <summary>The node's name; the Node property of every object read from it.</summary>
    public string Node { get; init; } = string.Empty;
    /// <summary>The calico-node pod on the node; empty when the node runs none.</summary>
    public string Pod { get; init; } = string.Empty;
    /// <summary>calico-system (operator installs) or kube-system (manifest installs), as found by the pod's label.</summary>
    public string Namespace { get; init; } = string.Empty;
    public bool HasCalicoNode => Pod.Length > 0;
    /// <summary>The calico-node container of the node's pod is ready (was Ready, next to NodeReady, which read as the node's).</summary>
    public bool PodReady { get; init; }

    /// <summary>The Kubernetes node's Ready condition.</summary>
    public bool NodeReady { get; init; }
    public string KernelVersion { get; init; } = string.Empty;
    public string OsImage { get; init; } = string.Empty;
    public string ProviderId { get; init; } = string.Empty;
    public string InternalIP { get; init; } = string.Empty;
    /// <summary>The Calico version from the calico-node image tag (v3.30.7).</summary>
    public string CalicoVersion { get; init; } = string.Empty;
    /// <summary>The calico-node container's image (quay.io/calico/node:v3.30.7).</summary>
    public string Image { get; init; } = string.Empty;
    /// <summary>
    /// The release the node's maps are decoded with and how it was found: the image's tag; null when
    /// the tag names none (a digest, "master"), and then the node's pinned maps tell.
    /// </summary>
    public NodeRelease? CalicoRelease => NodeRelease.FromImage(Image.Length > 0 ? Image : CalicoVersion);
    /// <summary>Installed by the Tigera operator (calico-system namespace).</summary>
    public bool OperatorManaged { get; init; }
    public string Context { get; init; } = string.Empty;
    /// <summary>The node's labels (what Calico selectors, such as a FelixConfiguration's nodeSelector, match).</summary>
    public ValueMap Labels { get; init; } = ValueMap.Empty;

    public override string ToString() => Node;
}
