using CalicoBpf.Isolation;
using CalicoBpf.Simulation;

namespace CalicoBpf.TestCluster;

/// <summary>A declarative cluster: nodes (with their dataplanes), install style, identities.</summary>
public sealed class ClusterScenario
{
    /// <summary>operator (calico-system) or manifest (kube-system).</summary>
    public string Install { get; set; } = "operator";
    public string CalicoVersion { get; set; } = "v3.30.7";
    public List<NodeSpec> Nodes { get; set; } = new();
    /// <summary>Bearer tokens: name -> role (admin or readonly).</summary>
    public Dictionary<string, string> Tokens { get; set; } = new() { ["admin-token"] = "admin", ["readonly-token"] = "readonly" };

    /// <summary>Fault knobs of the API itself: requests whose path starts with Path get Status instead.</summary>
    public List<ApiFault> ApiFaults { get; set; } = new();

    public string CalicoNamespace => Install == "manifest" ? "kube-system" : "calico-system";

    public sealed class NodeSpec
    {
        public string Name { get; set; } = string.Empty;
        public string Kernel { get; set; } = "6.8.0-45-generic";
        public string OsImage { get; set; } = "Ubuntu 24.04.1 LTS";
        public string ProviderId { get; set; } = string.Empty;
        public string Address { get; set; } = string.Empty;
        /// <summary>False: the node runs no calico-node pod.</summary>
        public bool CalicoNode { get; set; } = true;
        /// <summary>Interfaces created in the node's network namespace (each with a clsact qdisc).</summary>
        public List<string> Interfaces { get; set; } = new() { "eth0" };
        /// <summary>The node's dataplane, seeded into real maps.</summary>
        public NodeScenario Dataplane { get; set; } = new();
        /// <summary>Felix fell back to iptables: calico-node runs, but no Calico map is pinned.</summary>
        public bool BrokenBpf { get; set; }

        /// <summary>The calico-node log (pods/log).</summary>
        public string Log { get; set; } = string.Empty;

        /// <summary>Fault knob: the exec connection drops (no exit status) after this many bytes of stdout.</summary>
        public long? ExecDiesAfterBytes { get; set; }

        /// <summary>Fault knob: a slow node, each exec starts this late.</summary>
        public int ExecDelayMilliseconds { get; set; }
    }

    /// <summary>One failing API path, answered with a Status of that code (500, 403, 503 ...).</summary>
    public sealed class ApiFault
    {
        public string Path { get; set; } = string.Empty;
        public int Status { get; set; } = 500;
        public string Message { get; set; } = "Internal error occurred: the test cluster was told to fail here";
    }

    public static ClusterScenario Load(string path) => DependencyLoadContext.Yaml.Deserialize<ClusterScenario>(File.ReadAllText(path));

    public static ClusterScenario Parse(string yaml) => DependencyLoadContext.Yaml.Deserialize<ClusterScenario>(yaml);
}
