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

    /// <summary>The cluster's nodes that match the patterns (wildcards), with an error for each literal name that matches none.</summary>
    private protected IReadOnlyList<CalicoNode> SelectNodes(string[] patterns)
    {
        IReadOnlyList<CalicoNode> all = Api(() => Cluster.ListNodes(CancelToken));
        var selected = new List<CalicoNode>();
        foreach (string p in patterns)
        {
            var w = new WildcardPattern(p, WildcardOptions.IgnoreCase);
            var hits = all.Where(n => w.IsMatch(n.Node)).ToList();
            if (hits.Count == 0 && !WildcardPattern.ContainsWildcardCharacters(p))
            {
                WriteError(new ErrorRecord(new ItemNotFoundException($"The cluster has no node named {p}. Get-CalicoNode lists them."), "NodeNotFound", ErrorCategory.ObjectNotFound, p));
            }

            selected.AddRange(hits);
        }

        return selected.DistinctBy(n => n.Node).ToList();
    }
}
