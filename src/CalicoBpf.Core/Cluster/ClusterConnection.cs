using System.Collections.Concurrent;
using CalicoBpf.Isolation;
using CalicoBpf.Transport;

namespace CalicoBpf.Cluster;

/// <summary>
/// Where to find the cluster: a kubeconfig (or $KUBECONFIG, ~/.kube/config, the in-cluster account)
/// and a context; and how long one request may take (an API call, an exec's start, an exec that
/// sends nothing) before it is given up.
/// </summary>
public sealed record ClusterTarget(string? Kubeconfig, string? Context, TimeSpan? RequestTimeout = null)
{
    /// <summary>The request timeout when none is given: the HTTP client's own default.</summary>
    public static readonly TimeSpan DefaultRequestTimeout = TimeSpan.FromSeconds(100);

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

    /// <summary>The group/versions the API serves ("projectcalico.org/v3", "apps/v1", "v1" ...), from discovery.</summary>
    IReadOnlyCollection<string> ServedGroupVersions(CancellationToken cancellationToken);

    /// <summary>One object as JSON, or null when it does not exist (404).</summary>
    System.Text.Json.Nodes.JsonObject? GetResource(ResourceRef resource, string name, CancellationToken cancellationToken);

    /// <summary>Every object of a kind (in the namespace of the reference, or cluster-wide).</summary>
    IReadOnlyList<System.Text.Json.Nodes.JsonObject> ListResources(ResourceRef resource, CancellationToken cancellationToken);

    /// <summary>A JSON merge patch (RFC 7386); a 409 (the resourceVersion it carries is stale) is a ClusterException with StatusCode 409.</summary>
    System.Text.Json.Nodes.JsonObject PatchResource(ResourceRef resource, string name, string mergePatch, bool dryRun, CancellationToken cancellationToken);

    /// <summary>Creates an object; a 409 means it exists already.</summary>
    System.Text.Json.Nodes.JsonObject CreateResource(ResourceRef resource, System.Text.Json.Nodes.JsonObject body, bool dryRun, CancellationToken cancellationToken);

    /// <summary>The last lines of a node's calico-node container log.</summary>
    string ReadLog(CalicoNode node, int tailLines, CancellationToken cancellationToken);

    /// <summary>Deletes an object; one that is gone already is no error.</summary>
    void DeleteResource(ResourceRef resource, string name, CancellationToken cancellationToken);

    /// <summary>Runs commands in a node's calico-node container through pods/exec.</summary>
    ICommandRunner ExecRunner(CalicoNode node);
}

/// <summary>A kind of object the API serves: group (empty for core), version, plural, and a namespace for namespaced kinds.</summary>
public sealed record ResourceRef(string Group, string Version, string Plural, string? Namespace = null)
{
    /// <summary>Services of every namespace.</summary>
    public static ResourceRef Services { get; } = new(string.Empty, "v1", "services");

    /// <summary>EndpointSlices of every namespace.</summary>
    public static ResourceRef EndpointSlices { get; } = new("discovery.k8s.io", "v1", "endpointslices");

    public string GroupVersion => Group.Length == 0 ? Version : Group + "/" + Version;

    public override string ToString() => Group.Length == 0 ? Plural : Plural + "." + Group;
}

/// <summary>Builds connections (implemented in CalicoBpf.Adapters).</summary>
public interface IClusterAdapter
{
    /// <summary>A connection whose every request (API call, exec start, exec silence) ends after <paramref name="requestTimeout"/> with a timed-out ClusterException.</summary>
    IClusterConnection Connect(string? kubeconfig, string? context, TimeSpan requestTimeout);
}

/// <summary>A cluster could not be reached or refused the request.</summary>
public sealed class ClusterException : Exception
{
    public ClusterException(string message, int? statusCode = null, Exception? inner = null)
        : base(message, inner) => StatusCode = statusCode;

    /// <summary>The HTTP status of the API's answer, when there was one (401, 403, 404, ...).</summary>
    public int? StatusCode { get; }

    /// <summary>No answer came within the request timeout (-TimeoutSec): the request was given up.</summary>
    public bool TimedOut { get; init; }
}

/// <summary>Connections cached per kubeconfig, context and request timeout, not rebuilt per call.</summary>
public static class ClusterConnections
{
    private static readonly ConcurrentDictionary<(string?, string?, TimeSpan), IClusterConnection> Cache = new();
    private static readonly Lazy<IClusterAdapter> Adapter = new(() => DependencyLoadContext.Instance.Create<IClusterAdapter>("CalicoBpf.Adapters.KubernetesAdapter"));

    public static IClusterConnection Get(ClusterTarget target)
    {
        string? config = target.ResolvedKubeconfig;
        string? context = string.IsNullOrEmpty(target.Context) ? null : target.Context;
        return Cache.GetOrAdd((config, context, target.RequestTimeout ?? ClusterTarget.DefaultRequestTimeout), key => Adapter.Value.Connect(key.Item1, key.Item2, key.Item3));
    }

    /// <summary>Forgets cached connections (a changed kubeconfig, tests).</summary>
    public static void Reset() => Cache.Clear();
}
