namespace CalicoBpf.Commands;

/// <summary>
/// What -Resolve, -Pod, -Namespace and -Service mean for a reader whose objects name Kubernetes
/// workloads (Get-BpfConntrack, Get-BpfNat): pod and service names from one pod list and one service
/// list per run, and a filter on them applied while decoding. Locally the cluster is the one of
/// -Kubeconfig/-Context, $KUBECONFIG, ~/.kube/config or the pod's account.
/// </summary>
internal sealed class WorkloadLookup
{
    private WorkloadIndex? _index;

    /// <summary>The filter of -Pod, -Namespace and -Service; null when none was given.</summary>
    public static WorkloadFilter? Filter(string[]? pods, string[]? namespaces, string[]? services) =>
        pods is null && namespaces is null && services is null
            ? null
            : new WorkloadFilter { Pods = pods, Namespaces = namespaces, Services = services };

    /// <summary>
    /// The cluster's pods and services, listed (by <paramref name="list"/>) on first use and kept for
    /// the rest of the run; null without -Resolve or a filter. Patterns that match nothing are warned about once.
    /// </summary>
    public WorkloadIndex? Load(bool resolve, WorkloadFilter? filter, Func<WorkloadIndex> list, Action<string> warn)
    {
        if (!resolve && filter is null)
        {
            return null;
        }

        if (_index is null)
        {
            _index = list();
            WarnUnmatched(_index, filter, warn);
        }

        return _index;
    }

    private static void WarnUnmatched(WorkloadIndex index, WorkloadFilter? filter, Action<string> warn)
    {
        foreach (string p in filter?.Pods ?? Array.Empty<string>())
        {
            if (!index.PodAddresses(new[] { p }).Any())
            {
                warn($"No pod of the cluster matches -Pod {p} (host-network pods share their node's IP and cannot be told apart).");
            }
        }

        foreach (string s in filter?.Services ?? Array.Empty<string>())
        {
            if (!index.ServiceAddresses(new[] { s }).Any())
            {
                warn($"No service of the cluster with an IP matches -Service {s}.");
            }
        }

        foreach (string n in filter?.Namespaces ?? Array.Empty<string>())
        {
            if (!index.NamespaceAddresses(new[] { n }).Any())
            {
                warn($"No pod or service IP of the cluster is in a namespace matching -Namespace {n}.");
            }
        }
    }
}
