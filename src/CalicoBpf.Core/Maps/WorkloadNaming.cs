namespace CalicoBpf.Maps;

/// <summary>
/// What -Resolve does to decoded objects: names their pods and services. The readers call it on
/// each object they decode; the cluster's pod and service index (Cluster.WorkloadIndex) implements it.
/// </summary>
public interface IWorkloadNamer
{
    /// <summary>Sets SourcePod, DestinationPod and Service of a conntrack entry.</summary>
    void Annotate(ConntrackEntry entry);

    /// <summary>Sets the Service of a NAT frontend and the Pod of each backend.</summary>
    void Annotate(NatFrontend frontend);
}

/// <summary>-Pod, -Namespace and -Service as the readers check them on named objects (Cluster.WorkloadFilter implements it).</summary>
public interface IWorkloadMatcher
{
    bool Matches(ConntrackEntry entry);

    bool Matches(NatFrontend frontend);
}
