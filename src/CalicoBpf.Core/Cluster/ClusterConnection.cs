using System.Collections.Concurrent;
using CalicoBpf.Isolation;
using CalicoBpf.Transport;

namespace CalicoBpf.Cluster;

/// <summary>Where to find the cluster: a kubeconfig (or $KUBECONFIG, ~/.kube/config, the in-cluster account) and a context.</summary>
public sealed record ClusterTarget(string? Kubeconfig, string? Context)
{
    /// <summary>The kubeconfig file that applies: -Kubeconfig, else $KUBECONFIG (first entry), else ~/.kube/config when it exists; null means in-cluster.</summary>
    public string? ResolvedKubeconfig
    {
        get
        {
            if (!string.IsNullOrEmpty(Kubeconfig))
            {
                return Path.GetFullPath(Kubeconfig);
            }

            string? env = Environment.GetEnvironmentVariable("KUBECONFIG");
            if (!string.IsNullOrEmpty(env))
            {
                return Path.GetFullPath(env.Split(Path.PathSeparator)[0]);
            }

            string home = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".kube", "config");
            return File.Exists(home) ? home : null;
        }
    }
}

/// <summary>The Kubernetes API as the engine uses it; implemented with KubernetesClient in CalicoBpf.Adapters.</summary>
public interface IClusterConnection
{
    /// <summary>The context in use (or "in-cluster").</summary>
    string Context { get; }

    /// <summary>Every node, with its calico-node pod where it runs one (found by label in any namespace).</summary>
    IReadOnlyList<CalicoNode> ListNodes(CancellationToken cancellationToken);

    /// <summary>Every pod and service of the cluster (one list call each), for -Resolve and the -Pod/-Namespace/-Service filters.</summary>
    WorkloadIndex LoadWorkloads(CancellationToken cancellationToken);

    /// <summary>Runs commands in a node's calico-node container through pods/exec.</summary>
    ICommandRunner ExecRunner(CalicoNode node);
}

/// <summary>Builds connections (implemented in CalicoBpf.Adapters).</summary>
public interface IClusterAdapter
{
    IClusterConnection Connect(string? kubeconfig, string? context);
}

/// <summary>A cluster could not be reached or refused the request.</summary>
public sealed class ClusterException : Exception
{
    public ClusterException(string message, int? statusCode = null, Exception? inner = null)
        : base(message, inner) => StatusCode = statusCode;

    /// <summary>The HTTP status of the API's answer, when there was one (401, 403, 404, ...).</summary>
    public int? StatusCode { get; }
}

/// <summary>Connections cached per kubeconfig and context, not rebuilt per call.</summary>
public static class ClusterConnections
{
    private static readonly ConcurrentDictionary<(string?, string?), IClusterConnection> Cache = new();
    private static readonly Lazy<IClusterAdapter> Adapter = new(() => DependencyLoadContext.Instance.Create<IClusterAdapter>("CalicoBpf.Adapters.KubernetesAdapter"));

    public static IClusterConnection Get(ClusterTarget target)
    {
        string? config = target.ResolvedKubeconfig;
        string? context = string.IsNullOrEmpty(target.Context) ? null : target.Context;
        return Cache.GetOrAdd((config, context), key => Adapter.Value.Connect(key.Item1, key.Item2));
    }

    /// <summary>Forgets cached connections (a changed kubeconfig, tests).</summary>
    public static void Reset() => Cache.Clear();
}
