using CalicoBpf.Cluster;

namespace CalicoBpf.Bundles;

/// <summary>
/// What the Kubernetes API answered while a bundle was made (cluster/facts.json.gz), keyed by the
/// question, redacted (<see cref="Redaction"/>); the calico-node logs are entries of their own.
/// </summary>
public sealed class ClusterFacts
{
    public string Context { get; set; } = string.Empty;

    public Answer<List<CalicoNode>>? Nodes { get; set; }

    public Answer<WorkloadsFact>? Workloads { get; set; }

    public Answer<List<string>>? GroupVersions { get; set; }

    /// <summary>GetResource answers, keyed <see cref="ResourceKey"/> + " " + name.</summary>
    public Dictionary<string, Answer<JsonObject>> Resources { get; set; } = new(StringComparer.Ordinal);

    /// <summary>ListResources answers, keyed <see cref="ResourceKey"/>.</summary>
    public Dictionary<string, Answer<List<JsonObject>>> Lists { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Access reviews (the only creation a reader does), keyed by the request's JSON.</summary>
    public Dictionary<string, Answer<JsonObject>> Reviews { get; set; } = new(StringComparer.Ordinal);

    /// <summary>calico-node logs by node.</summary>
    public Dictionary<string, Answer<LogFact>> Logs { get; set; } = new(StringComparer.Ordinal);

    public static string ResourceKey(ResourceRef r) => r.GroupVersion + "/" + r.Plural + (r.Namespace is null ? string.Empty : " -n " + r.Namespace);
}

/// <summary>The pods and services the cluster had (what -Resolve names addresses by).</summary>
public sealed class WorkloadsFact
{
    public List<WorkloadPod> Pods { get; set; } = new();

    public List<WorkloadService> Services { get; set; } = new();
}

/// <summary>A calico-node log as kept: its last lines.</summary>
public sealed class LogFact
{
    /// <summary>Lines kept (the last ones the kubelet gave).</summary>
    public int Kept { get; set; }

    /// <summary>Lines asked for; fewer kept means the log was all there was.</summary>
    public int Asked { get; set; }

    /// <summary>Why the log is not in the bundle although it was read (the size bound); offline reading it is an error saying so.</summary>
    public string? Omitted { get; set; }
}
