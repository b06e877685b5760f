using CalicoBpf.Cluster;
using CalicoBpf.Transport;

namespace CalicoBpf.Bundles;

/// <summary>
/// A cluster as a bundle captured it: the Kubernetes answers its export got, and its nodes'
/// dataplanes (<see cref="OpenNode"/>). A local bundle (made on one machine) has nodes but no
/// cluster answers. Read-only: a change is refused with what to do instead.
/// </summary>
public sealed class BundleCluster : IClusterConnection, IDisposable
{
    private readonly BundleArchive _archive;
    private readonly ClusterFacts? _facts;
    private readonly object _gate = new();

    private BundleCluster(BundleArchive archive, ClusterFacts? facts)
    {
        _archive = archive;
        _facts = facts;
    }

    /// <summary>Opens a bundle (see <see cref="BundleArchive.Open"/> for what is refused).</summary>
    public static BundleCluster Open(string path)
    {
        BundleArchive archive = BundleArchive.Open(path);
        try
        {
            ClusterFacts? facts = archive.Has(BundleFormat.ClusterFacts) ? archive.ReadGzipJson<ClusterFacts>(BundleFormat.ClusterFacts) : null;
            return new BundleCluster(archive, facts);
        }
        catch
        {
            archive.Dispose();
            throw;
        }
    }

    public string Path => _archive.Path;

    public BundleManifest Manifest => _archive.Manifest;

    /// <summary>Whether the bundle was made through a cluster (else on one machine).</summary>
    public bool HasCluster => _facts is not null;

    public string Context => _facts?.Context ?? string.Empty;

    /// <summary>The nodes the bundle holds, as the cluster listed them (a local bundle: the machine it was made on).</summary>
    public IReadOnlyList<CalicoNode> BundledNodes =>
        Manifest.Nodes.Where(n => n.Status != "Failed").Select(n => n.Identity ?? new CalicoNode { Node = n.Node }).ToList();

    /// <summary>A node's captured dataplane (safe on the node's thread: the nodes share the bundle's one handle); disposed by the caller.</summary>
    public BundleNode OpenNode(string node, NodeRelease? release)
    {
        BundleNodeEntry entry = Manifest.Nodes.FirstOrDefault(n => n.Node == node)
            ?? throw new BundleException($"{Path} holds no node {node}. Its nodes: {string.Join(", ", Manifest.Nodes.Select(n => n.Node))}.");
        if (entry.Status == "Failed")
        {
            throw new BundleException($"{node} could not be captured when the bundle was made: {entry.Error}");
        }

        return new BundleNode(_archive, _archive.ReadGzipJson<NodeFacts>(BundleFormat.NodeFacts(node)), release);
    }

    public IReadOnlyList<CalicoNode> ListNodes(CancellationToken cancellationToken) => Need(Facts.Nodes, "the nodes").Replay()!;

    public WorkloadIndex LoadWorkloads(CancellationToken cancellationToken)
    {
        WorkloadsFact w = Need(Facts.Workloads, "the pods and services").Replay()!;
        return new WorkloadIndex(w.Pods, w.Services);
    }

    public IReadOnlyCollection<string> ServedGroupVersions(CancellationToken cancellationToken) => Need(Facts.GroupVersions, "the API groups").Replay()!;

    public JsonObject? GetResource(ResourceRef resource, string name, CancellationToken cancellationToken) =>
        Lookup(Facts.Resources, ClusterFacts.ResourceKey(resource) + " " + name, $"{resource} {name}")?.DeepClone() as JsonObject;

    public IReadOnlyList<JsonObject> ListResources(ResourceRef resource, CancellationToken cancellationToken) =>
        Lookup(Facts.Lists, ClusterFacts.ResourceKey(resource), $"the list of {resource}" + (resource.Namespace is null ? string.Empty : " in " + resource.Namespace))!
            .Select(o => (JsonObject)o.DeepClone()).ToList();

    public JsonObject PatchResource(ResourceRef resource, string name, string mergePatch, bool dryRun, CancellationToken cancellationToken) => throw ReadOnly();

    public JsonObject CreateResource(ResourceRef resource, JsonObject body, bool dryRun, CancellationToken cancellationToken) =>
        IsReview(resource) ? (JsonObject)Lookup(Facts.Reviews, ReviewKey(resource, body), "an access review")!.DeepClone() : throw ReadOnly();

    public void DeleteResource(ResourceRef resource, string name, CancellationToken cancellationToken) => throw ReadOnly();

    public string ReadLog(CalicoNode node, int tailLines, CancellationToken cancellationToken)
    {
        LogFact fact = Lookup(Facts.Logs, node.Node, "the calico-node log of " + node.Node)!;
        if (fact.Omitted is { } why)
        {
            throw new BundleException($"The calico-node log of {node.Node} was left out of the bundle: {why} Make the bundle again with a larger -MaxSize.");
        }

        lock (_gate)
        {
            return Tail(() => _archive.OpenGzip(BundleFormat.Log(node.Node)), fact, tailLines);
        }
    }

    public ICommandRunner ExecRunner(CalicoNode node) =>
        throw new BundleException($"{node.Node} is read from a bundle ({Path}); nothing can be run there. Run the command on the live cluster.");

    public void Dispose() => _archive.Dispose();

    internal static bool IsReview(ResourceRef r) => r.Group == "authorization.k8s.io" && r.Plural is "selfsubjectaccessreviews" or "selfsubjectrulesreviews";

    internal static string ReviewKey(ResourceRef r, JsonObject body) => ClusterFacts.ResourceKey(r) + " " + (body["spec"]?.ToJsonString() ?? "{}");

    /// <summary>The last <paramref name="tailLines"/> lines of a kept log, as the kubelet's tailLines gives them.</summary>
    internal static string Tail(Func<Stream> open, LogFact fact, int tailLines)
    {
        if (fact.Kept == 0)
        {
            return string.Empty;
        }

        var ring = new Queue<string>();
        using (var r = new StreamReader(open(), Encoding.UTF8))
        {
            while (r.ReadLine() is { } line)
            {
                if (ring.Count == tailLines)
                {
                    ring.Dequeue();
                }

                ring.Enqueue(line);
            }
        }

        var b = new StringBuilder();
        foreach (string line in ring)
        {
            b.Append(line).Append('\n');
        }

        return b.ToString();
    }

    private ClusterFacts Facts => _facts ?? throw new BundleException(
        $"{Path} was made on one machine ({string.Join(", ", Manifest.Nodes.Select(n => n.Node))}), without a cluster: it holds no Kubernetes facts. Make the bundle with -Node to capture them.");

    private T? Lookup<T>(Dictionary<string, Answer<T>> store, string key, string what)
        where T : class => store.TryGetValue(key, out Answer<T>? a) ? a.Replay() : throw Missing(what);

    private static Answer<T> Need<T>(Answer<T>? answer, string what)
        where T : class => answer ?? throw Missing(what);

    private static BundleException Missing(string what) =>
        new($"The bundle holds no answer of the cluster about {what}: it was not asked when the bundle was made. Run the command on the live cluster, or make a new bundle with this module (Export-CalicoBpfDiagnostic).");

    private BundleException ReadOnly() => new($"The cluster is read from a bundle ({Path}); nothing can be changed there. Run the command on the live cluster.");
}
