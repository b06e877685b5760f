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
    /// <summary>Bearer tokens: token -> identity: admin, readonly, or a user such as system:serviceaccount:NS:NAME whose rights come from ClusterRoleBindings.</summary>
    public Dictionary<string, string> Tokens { get; set; } = new() { ["admin-token"] = "admin", ["readonly-token"] = "readonly" };

    /// <summary>Fault knobs of the API itself: requests whose path starts with Path get Status instead.</summary>
    public List<ApiFault> ApiFaults { get; set; } = new();

    public string CalicoNamespace => Install == "manifest" ? "kube-system" : "calico-system";

    /// <summary>Which Calico CRDs the cluster has: a folder of tests/fixtures/calico (head, v3.30.7, v3.28.5).</summary>
    public string CalicoCrds { get; set; } = "head";

    /// <summary>
    /// The groups FelixConfiguration and IPPool are served in: crd.projectcalico.org/v1 (CRDs only),
    /// projectcalico.org/v3 (native v3 CRDs), or both (the Calico API server in front of the v1 CRDs:
    /// one set of objects seen through either group).
    /// </summary>
    public List<string> CalicoApiGroups { get; set; } = new() { "crd.projectcalico.org/v1" };

    /// <summary>A kube-proxy DaemonSet in kube-system, with a pod on every node.</summary>
    public bool KubeProxy { get; set; }

    /// <summary>The kube-proxy DaemonSet is there but disabled as Calico's docs say (nodeSelector non-calico: "true"): no pods.</summary>
    public bool KubeProxyDisabled { get; set; }

    /// <summary>Extra environment of the calico-node container (FELIX_BPFENABLED ...), beyond the install's own.</summary>
    public Dictionary<string, string> CalicoNodeEnv { get; set; } = new();

    /// <summary>The kubernetes-services-endpoint ConfigMap's data (host, port), when the cluster has one.</summary>
    public Dictionary<string, string>? KubernetesServicesEndpoint { get; set; }

    /// <summary>Manifests with RBAC objects (ClusterRoles, ClusterRoleBindings, ServiceAccounts ...), relative to the scenario file.</summary>
    public List<string> RbacManifests { get; set; } = new();

    /// <summary>The directory of the scenario file (relative paths start there).</summary>
    public string Directory { get; set; } = ".";

    /// <summary>Workload pods (namespace/name, node, IP, labels).</summary>
    public List<PodSpec> Pods { get; set; } = new();

    /// <summary>Services; their EndpointSlices are made from the pods their selector matches.</summary>
    public List<ServiceSpec> Services { get; set; } = new();

    /// <summary>FelixConfiguration specs by object name (read as JSON: see <see cref="Resources"/>).</summary>
    public object? FelixConfigurations { get; set; }

    /// <summary>IPPool specs by object name (read as JSON).</summary>
    public object? IpPools { get; set; }

    /// <summary>The operator's Installation "default" spec (operator installs; read as JSON).</summary>
    public object? Installation { get; set; }

    /// <summary>Any other objects, whole (apiVersion, kind, metadata ...; read as JSON).</summary>
    public object? Objects { get; set; }

    /// <summary>The free-form sections (felixConfigurations, ipPools, installation, objects) with their JSON types.</summary>
    public System.Text.Json.Nodes.JsonObject Resources { get; private set; } = new();

    public sealed class PodSpec
    {
        public string Name { get; set; } = string.Empty;
        public string Namespace { get; set; } = "default";
        public string Node { get; set; } = string.Empty;
        public string Ip { get; set; } = string.Empty;
        public Dictionary<string, string> Labels { get; set; } = new();
    }

    public sealed class ServiceSpec
    {
        public string Name { get; set; } = string.Empty;
        public string Namespace { get; set; } = "default";
        /// <summary>ClusterIP, NodePort or LoadBalancer.</summary>
        public string Type { get; set; } = "ClusterIP";
        public string ClusterIp { get; set; } = string.Empty;
        public List<string> ExternalIps { get; set; } = new();
        public string LoadBalancerIp { get; set; } = string.Empty;
        public Dictionary<string, string> Selector { get; set; } = new();
        public List<PortSpec> Ports { get; set; } = new();
    }

    public sealed class PortSpec
    {
        public string Name { get; set; } = string.Empty;
        public string Protocol { get; set; } = "TCP";
        public int Port { get; set; }
        public int TargetPort { get; set; }
        public int NodePort { get; set; }
    }

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

        /// <summary>Fault knob: no command runs; each exec writes ExecStdout and ExecStderr and ends with this exit code.</summary>
        public int? ExecExitCode { get; set; }

        public string ExecStdout { get; set; } = string.Empty;

        public string ExecStderr { get; set; } = string.Empty;
    }

    /// <summary>One failing API path, answered with a Status of that code (500, 403, 503 ...).</summary>
    public sealed class ApiFault
    {
        private int _served;

        public string Path { get; set; } = string.Empty;
        public int Status { get; set; } = 500;
        public string Message { get; set; } = "Internal error occurred: the test cluster was told to fail here";

        /// <summary>Fail only this many requests, then answer normally (a 429 that clears); null: always.</summary>
        public int? Times { get; set; }

        /// <summary>A Retry-After header (seconds), as a 429 or 503 carries.</summary>
        public int? RetryAfterSeconds { get; set; }

        /// <summary>Whether this request is one the fault fails (counts it).</summary>
        public bool TakeOne() => Times is not int n || Interlocked.Increment(ref _served) <= n;
    }

    public static ClusterScenario Load(string path)
    {
        ClusterScenario scenario = Parse(File.ReadAllText(path));
        scenario.Directory = Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".";
        return scenario;
    }

    public static ClusterScenario Parse(string yaml)
    {
        ClusterScenario scenario = DependencyLoadContext.Yaml.Deserialize<ClusterScenario>(yaml);
        IReadOnlyList<string> documents = DependencyLoadContext.Yaml.ToJsonDocuments(yaml);
        if (documents.Count > 0 && System.Text.Json.Nodes.JsonNode.Parse(documents[0]) is System.Text.Json.Nodes.JsonObject json)
        {
            scenario.Resources = json;
        }

        return scenario;
    }
}
