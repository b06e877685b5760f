using CalicoBpf.Cluster;
using CalicoBpf.Transport;

namespace CalicoBpf.Diagnostics;

/// <summary>A fact a check needs could not be had (no cluster, no right, the node does not answer): the check says so and the others go on.</summary>
public sealed class CheckUnavailableException : Exception
{
    public CheckUnavailableException(string message, Exception? inner = null)
        : base(message, inner)
    {
    }
}

/// <summary>
/// What the checks look at, each fact read once on first use and shared: the cluster's nodes, Felix
/// configuration, Installation, kube-proxy, IP pools, calico-node logs, and each node's dataplane.
/// Locally (Test-CalicoEbpf -Local) only this machine's dataplane is there.
/// </summary>
public sealed class CheckContext
{
    private readonly Dictionary<string, object?> _facts = new(StringComparer.Ordinal);
    private readonly Func<CalicoNode, INodeDataplane>? _openNode;

    public CheckContext(IClusterConnection? cluster, Func<CalicoNode, INodeDataplane>? openNode, INodeDataplane? local, CancellationToken cancellationToken)
    {
        Cluster = cluster;
        _openNode = openNode;
        Local = local;
        CancellationToken = cancellationToken;
    }

    public IClusterConnection? Cluster { get; }

    /// <summary>This machine's dataplane (-Local).</summary>
    public INodeDataplane? Local { get; }

    public CancellationToken CancellationToken { get; }

    /// <summary>Rights the identity lacks (from the access check), so that checks needing them are skipped, not failed one by one.</summary>
    public HashSet<string> Denied { get; } = new(StringComparer.Ordinal);

    /// <summary>Nodes to check per node (set by the cmdlet from -Node).</summary>
    public Func<CalicoNode, bool> NodeFilter { get; set; } = _ => true;

    private IClusterConnection Api => Cluster ?? throw new CheckUnavailableException("there is no cluster to ask (-Local)");

    private T Fact<T>(string key, Func<T> load)
    {
        if (!_facts.TryGetValue(key, out object? value))
        {
            try
            {
                value = load();
            }
            catch (ClusterException ex)
            {
                // Refused, throttled or timed out: the check says it could not look, and why (the result adds the full stop).
                value = new CheckUnavailableException($"{(ex.TimedOut ? "the cluster was too slow to give" : "the cluster refused to give")} {key}: {ex.Message.TrimEnd('.')}", ex);
            }

            _facts[key] = value;
        }

        return value is CheckUnavailableException e ? throw e : (T)value!;
    }

    /// <summary>Skips a check that needs a right the access check found missing.</summary>
    public void Require(string right)
    {
        if (Denied.Contains(right))
        {
            throw new CheckUnavailableException($"the identity in use may not {right} (see the access check)");
        }
    }

    public IReadOnlyList<CalicoNode> AllNodes => Fact("the nodes", () => Api.ListNodes(CancellationToken));

    /// <summary>The nodes to check: running calico-node, and selected by -Node.</summary>
    public IReadOnlyList<CalicoNode> Nodes => AllNodes.Where(n => n.HasCalicoNode && NodeFilter(n)).ToList();

    public FelixConfigClient Felix => Fact("FelixConfiguration", () => new FelixConfigClient(Api, CancellationToken));

    public FelixBpfConfig? DefaultConfig => Configs.FirstOrDefault(c => c.Name == "default");

    public IReadOnlyList<FelixBpfConfig> Configs => Fact("the FelixConfigurations", () => Felix.Configs);

    /// <summary>The effective values of one node (environment, node.NAME, default, built-in).</summary>
    public IReadOnlyDictionary<string, FelixEffectiveValue> Effective(CalicoNode node) =>
        Fact("the effective Felix configuration of " + node.Node, () => Felix.Effective(node).ToDictionary(v => v.Field, StringComparer.Ordinal));

    /// <summary>The calico-node container's FELIX_* variables (upper-case names).</summary>
    public Dictionary<string, (string Value, string Detail)> CalicoEnvironment =>
        Fact("the calico-node DaemonSet", () => Nodes.FirstOrDefault() is { } n ? Felix.CalicoNodeEnvironment(n) : new Dictionary<string, (string, string)>());

    /// <summary>The operator's Installation default, or null on a manifest install.</summary>
    public JsonObject? Installation => Fact("the Installation", () =>
        Api.ServedGroupVersions(CancellationToken).Contains("operator.tigera.io/v1")
            ? Api.GetResource(new ResourceRef("operator.tigera.io", "v1", "installations"), "default", CancellationToken)
            : null);

    public JsonObject? KubeProxy => Fact("the kube-proxy DaemonSet", () => Api.GetResource(new ResourceRef("apps", "v1", "daemonsets", "kube-system"), "kube-proxy", CancellationToken));

    public IReadOnlyList<JsonObject> IpPools => Fact("the IP pools", () =>
        Api.ListResources(Felix.Calico("ippools"), CancellationToken));

    /// <summary>The IPAM blocks affine to nodes (BlockAffinity, in the group Felix's resources are served in); none where the cluster serves no such kind.</summary>
    public IReadOnlyList<JsonObject> BlockAffinities => Fact("the IPAM block affinities", () =>
    {
        try
        {
            return Api.ListResources(Felix.Calico("blockaffinities"), CancellationToken);
        }
        catch (ClusterException ex) when (ex.StatusCode == 404)
        {
            return Array.Empty<JsonObject>();
        }
    });

    public JsonObject? ServicesEndpointConfigMap => Fact("the kubernetes-services-endpoint ConfigMap", () =>
        Api.GetResource(new ResourceRef(string.Empty, "v1", "configmaps", Installation is null ? "kube-system" : "tigera-operator"), "kubernetes-services-endpoint", CancellationToken));

    /// <summary>The cluster's pods and services, as -Resolve names addresses by (running and pending pods, not host-network ones).</summary>
    public WorkloadIndex Workloads => Fact("the pods and services", () => Api.LoadWorkloads(CancellationToken));

    public IReadOnlyList<JsonObject> Services => Fact("the services", () => Api.ListResources(ResourceRef.Services, CancellationToken));

    public int ServiceCount => Services.Count;

    public IReadOnlyList<JsonObject> EndpointSlices => Fact("the EndpointSlices", () => Api.ListResources(ResourceRef.EndpointSlices, CancellationToken));

    public int EndpointSliceCount => EndpointSlices.Count;

    /// <summary>The parsed calico-node log of a node (its last 5000 lines).</summary>
    public IReadOnlyList<FelixLogLine> Log(CalicoNode node) =>
        Fact("the calico-node log of " + node.Node, () => FelixLog.Parse(Api.ReadLog(node, 5000, CancellationToken)).ToList());

    /// <summary>A node's dataplane (the local one with -Local).</summary>
    public INodeDataplane Dataplane(CalicoNode node) =>
        Fact("the dataplane of " + node.Node, () => _openNode?.Invoke(node) ?? throw new CheckUnavailableException("node dataplanes cannot be read here"));

    /// <summary>Whether the identity in use may do this (SelfSubjectAccessReview).</summary>
    public bool MayDo(string verb, string group, string resource, string? subresource = null, string? ns = null)
    {
        var attributes = new JsonObject { ["verb"] = verb, ["group"] = group, ["resource"] = resource };
        if (subresource is not null)
        {
            attributes["subresource"] = subresource;
        }

        if (ns is not null)
        {
            attributes["namespace"] = ns;
        }

        JsonObject review = Api.CreateResource(new ResourceRef("authorization.k8s.io", "v1", "selfsubjectaccessreviews"), new JsonObject
        {
            ["apiVersion"] = "authorization.k8s.io/v1",
            ["kind"] = "SelfSubjectAccessReview",
            ["spec"] = new JsonObject { ["resourceAttributes"] = attributes },
        }, dryRun: false, CancellationToken);
        return review["status"]?["allowed"]?.GetValue<bool>() == true;
    }

    /// <summary>Whether eBPF is running on a node, as its log and pins say: true, false, or null when neither tells.</summary>
    public bool? BpfRunning(CalicoNode node)
    {
        IReadOnlyList<FelixLogLine> log = Log(node);
        FelixLogLine? started = FelixLog.Last(log, FelixLog.Started);
        FelixLogLine? fallback = FelixLog.Last(log, FelixLog.NotSupported);
        if (fallback is not null && (started is null || string.CompareOrdinal(fallback.Time, started.Time) > 0))
        {
            return false;
        }

        return started is not null ? true : null;
    }
}
