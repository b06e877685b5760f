using System.Management.Automation;
using CalicoBpf.Cluster;

namespace CalicoBpf.Commands;

/// <summary>Cmdlets that talk to the Kubernetes API only: -Kubeconfig, -Context, and one connection per run.</summary>
public abstract class ClusterCmdletBase : CalicoBpfCmdletBase
{
    private IClusterConnection? _cluster;

    /// <summary>The kubeconfig file; default $KUBECONFIG, then ~/.kube/config, then the in-cluster account.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Kubeconfig { get; set; }

    /// <summary>The kubeconfig context; default its current context.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Context { get; set; }

    /// <summary>
    /// Seconds one request may take: an API call, the start of a command on a node, or a node's
    /// command sending nothing while it is read. Past it, the request is given up with a
    /// ClusterTimeout error (for the node alone, when one node of many is slow).
    /// </summary>
    [Parameter]
    [ValidateRange(1, 3600)]
    public int TimeoutSec { get; set; } = (int)ClusterTarget.DefaultRequestTimeout.TotalSeconds;

    /// <summary>The cluster of -Kubeconfig and -Context; one that cannot be used stops the cmdlet.</summary>
    private protected IClusterConnection Cluster => _cluster ??= Api(() => ConnectCluster(Kubeconfig, Context, TimeSpan.FromSeconds(TimeoutSec)), Kubeconfig);

    /// <summary>Runs a step against the cluster; an unreachable or refusing cluster stops the cmdlet with its status.</summary>
    private protected T Api<T>(Func<T> step, object? target = null)
    {
        try
        {
            return step();
        }
        catch (ClusterException ex)
        {
            ThrowTerminatingError(ClusterError(ex, "ClusterUnavailable", target));
            throw; // not reached
        }
    }

    /// <summary>
    /// The cluster's nodes that <paramref name="patterns"/> name, by the one rule of <see cref="NodeSelection"/>;
    /// <paramref name="needsCalicoNode"/> for cmdlets that work on a node's Calico dataplane.
    /// </summary>
    private protected List<CalicoNode> SelectNodes(string[] patterns, bool needsCalicoNode) =>
        NodeSelection.Select(Api(() => Cluster.ListNodes(CancelToken)), patterns, needsCalicoNode, WriteError);
}
