using System.Management.Automation;
using CalicoBpf.Cluster;

namespace CalicoBpf.Commands;

/// <summary>
/// Readers whose objects name Kubernetes workloads: -Resolve adds pod and service names (from one pod
/// list and one service list per run), and -Pod, -Namespace, -Service filter on them while decoding.
/// Locally the cluster is the one of -Kubeconfig/-Context, $KUBECONFIG, ~/.kube/config or the pod's account.
/// </summary>
public abstract class WorkloadCmdletBase : RemoteCmdletBase
{
    private WorkloadIndex? _workloads;

    /// <summary>Adds SourcePod, DestinationPod and Service (namespace/name) by matching pod and service IPs of the cluster.</summary>
    [Parameter]
    public SwitchParameter Resolve { get; set; }

    /// <summary>Only objects with one of these pods (namespace/name, or a name in any namespace; wildcards). Implies -Resolve.</summary>
    [Parameter]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[]? Pod { get; set; }

    /// <summary>Only objects with a pod or service in one of these namespaces (wildcards). Implies -Resolve.</summary>
    [Parameter]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[]? Namespace { get; set; }

    /// <summary>Only objects of one of these services (namespace/name, or a name in any namespace; wildcards). Implies -Resolve.</summary>
    [Parameter]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[]? Service { get; set; }

    /// <summary>The workload filter of -Pod, -Namespace and -Service; null when none was given.</summary>
    private protected WorkloadFilter? Workloads => Pod is null && Namespace is null && Service is null
        ? null
        : new WorkloadFilter { Pods = Pod, Namespaces = Namespace, Services = Service };

    /// <summary>
    /// The cluster's pods and services, listed on first use and kept for the rest of the run; null
    /// without -Resolve or a filter. A cluster that cannot be reached stops the cmdlet.
    /// </summary>
    private protected WorkloadIndex? LoadWorkloads()
    {
        if (!Resolve && Workloads is null)
        {
            return null;
        }

        if (_workloads is null)
        {
            _workloads = Api(() => Cluster.LoadWorkloads(CancelToken));
            WarnUnmatched(_workloads);
        }

        return _workloads;
    }

    private void WarnUnmatched(WorkloadIndex index)
    {
        foreach (string p in Pod ?? Array.Empty<string>())
        {
            if (!index.PodAddresses(new[] { p }).Any())
            {
                WriteWarning($"No pod of the cluster matches -Pod {p} (host-network pods share their node's IP and cannot be told apart).");
            }
        }

        foreach (string s in Service ?? Array.Empty<string>())
        {
            if (!index.ServiceAddresses(new[] { s }).Any())
            {
                WriteWarning($"No service of the cluster with an IP matches -Service {s}.");
            }
        }

        foreach (string n in Namespace ?? Array.Empty<string>())
        {
            if (!index.NamespaceAddresses(new[] { n }).Any())
            {
                WriteWarning($"No pod or service IP of the cluster is in a namespace matching -Namespace {n}.");
            }
        }
    }
}
