using System.Text.RegularExpressions;
using CalicoBpf.Isolation;
using CalicoBpf.Simulation;

namespace CalicoBpf.TestCluster;

/// <summary>A declarative cluster: nodes (with their dataplanes), install style, identities.</summary>
public sealed class ClusterScenario
{
    /// <summary>operator (calico-system) or manifest (kube-system).</summary>
    public string Install { get; set; } = "operator";
    public string CalicoVersion { get; set; } = DefaultCalicoVersion;

    /// <summary>The release a scenario runs when it names none.</summary>
    public const string DefaultCalicoVersion = "v3.30.7";
    public List<NodeSpec> Nodes { get; set; } = new();
    /// <summary>Bearer tokens: token -> identity: admin, readonly, or a user such as system:serviceaccount:NS:NAME whose rights come from ClusterRoleBindings.</summary>
    public Dictionary<string, string> Tokens { get; set; } = new() { ["admin-token"] = "admin", ["readonly-token"] = "readonly" };

    /// <summary>Fault knobs of the API itself: requests whose path starts with Path get Status instead.</summary>
    public List<ApiFault> ApiFaults { get; set; } = new();

    /// <summary>Many nodes answered from a recording of a real one (fleet benchmarks): see <see cref="ReplayedFleet"/>.</summary>
    public ReplayedFleet? ReplayedNodes { get; set; }

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

    /// <summary>
    /// Each eBPF node's NAT maps are written from the Services and EndpointSlices as Felix's
    /// kube-proxy replacement writes them (<see cref="FelixProxy"/>), before the node's own
    /// dataplane.services, which are written over them (a scenario's faults).
    /// </summary>
    public bool ProgramServices { get; set; }

    /// <summary>
    /// Each eBPF node's workload interfaces (cali*) carry Calico's program at ingress and egress, as
    /// Felix attaches it with bpfAttachType TC, except a node's <see cref="NodeSpec.Unattached"/> ones.
    /// </summary>
    public bool AttachPrograms { get; set; }

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
        /// <summary>False: the pod is not ready (its EndpointSlice endpoint says ready: false).</summary>
        public bool Ready { get; set; } = true;
        /// <summary>The pod is being deleted (its endpoint says terminating: true, ready: false).</summary>
        public bool Terminating { get; set; }
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
        /// <summary>Cluster (empty) or Local.</summary>
        public string InternalTrafficPolicy { get; set; } = string.Empty;
        /// <summary>Cluster (empty) or Local.</summary>
        public string ExternalTrafficPolicy { get; set; } = string.Empty;
        /// <summary>None (empty) or ClientIP.</summary>
        public string SessionAffinity { get; set; } = string.Empty;
        /// <summary>sessionAffinityConfig.clientIP.timeoutSeconds; 0: the API's default, 10800.</summary>
        public int AffinityTimeoutSeconds { get; set; }
        public List<string> LoadBalancerSourceRanges { get; set; } = new();
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
        /// <summary>Labels of the Node object, beside the kubernetes.io ones every node has.</summary>
        public Dictionary<string, string> Labels { get; set; } = new();

        /// <summary>False: the node runs no calico-node pod.</summary>
        public bool CalicoNode { get; set; } = true;
        /// <summary>Interfaces created in the node's network namespace (each with a clsact qdisc).</summary>
        public List<string> Interfaces { get; set; } = new() { "eth0" };
        /// <summary>With attachPrograms: workload interfaces (cali*) Felix did not attach its programs to (every other one has cali_tc_preamble at ingress and egress).</summary>
        public List<string> Unattached { get; set; } = new();
        /// <summary>The node's dataplane, seeded into real maps.</summary>
        public NodeScenario Dataplane { get; set; } = new();
        /// <summary>Felix fell back to iptables: calico-node runs, but no Calico map is pinned.</summary>
        public bool BrokenBpf { get; set; }

        /// <summary>Fault knob (programServices): frontends ("address:port/TCP") this node's Felix did not write.</summary>
        public List<string> NatLost { get; set; } = new();

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

        /// <summary>Fault knob: programs the node's calico-node image lacks (a custom or broken image: bpftool, gzip ...).</summary>
        public List<string> ImageWithout { get; set; } = new();

        /// <summary>Fault knob: the node's bpftool hangs this many seconds before it does anything (a stuck tool).</summary>
        public int BpftoolStallSeconds { get; set; }

        /// <summary>Record every exec of this node (command, stdin, stdout, stderr, Status) to this file, relative to the scenario file.</summary>
        public string? Record { get; set; }

        /// <summary>A replayed node: nothing is created for it, and its execs are answered from this recording (see <see cref="ReplayedNode"/>).</summary>
        public string? Replay { get; set; }
    }

    /// <summary>One failing API path, answered with a Status of that code (500, 403, 503 ...).</summary>
    public sealed class ApiFault
    {
        private int _served;

        public string Path { get; set; } = string.Empty;

        /// <summary>The status to answer with; 0: answer as usual (after DelayMilliseconds).</summary>
        public int Status { get; set; } = 500;

        /// <summary>How long the answer is held back (a slow API server).</summary>
        public int DelayMilliseconds { get; set; }

        /// <summary>Only requests that carry this bearer token fail; null: every request.</summary>
        public string? Token { get; set; }
        public string Message { get; set; } = "Internal error occurred: the test cluster was told to fail here";

        /// <summary>Fail only this many requests, then answer normally (a 429 that clears); null: always.</summary>
        public int? Times { get; set; }

        /// <summary>A Retry-After header (seconds), as a 429 or 503 carries.</summary>
        public int? RetryAfterSeconds { get; set; }

        /// <summary>Whether this request is one the fault fails (counts it).</summary>
        public bool TakeOne() => Times is not int n || Interlocked.Increment(ref _served) <= n;
    }

    /// <summary>
    /// The cluster's Services, default/kubernetes first, each with the endpoints of its EndpointSlice:
    /// the pods its selector matches in its namespace, as the endpointslice controller lists them.
    /// </summary>
    public IEnumerable<(ServiceSpec Service, List<PodSpec> Endpoints)> ServicesWithEndpoints()
    {
        yield return (ApiObjects.KubernetesServiceSpec, new List<PodSpec> { ApiObjects.KubernetesEndpoint(Nodes.FirstOrDefault()?.Address ?? "127.0.0.1") });
        foreach (ServiceSpec s in Services)
        {
            yield return (s, Pods
                .Where(p => p.Namespace == s.Namespace && s.Selector.Count > 0 && s.Selector.All(kv => p.Labels.TryGetValue(kv.Key, out string? v) && v == kv.Value))
                .ToList());
        }
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
        if (scenario.ReplayedNodes is { } fleet)
        {
            scenario.Nodes = (scenario.Nodes ?? new()).Concat(fleet.Nodes()).ToList();
        }

        IReadOnlyList<string> documents = DependencyLoadContext.Yaml.ToJsonDocuments(yaml);
        if (documents.Count > 0 && System.Text.Json.Nodes.JsonNode.Parse(documents[0]) is System.Text.Json.Nodes.JsonObject json)
        {
            scenario.Resources = json;
        }

        scenario.Validate();
        return scenario;
    }

    private static readonly Regex Subdomain = new(@"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", RegexOptions.CultureInvariant);
    private static readonly Regex Label = new(@"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", RegexOptions.CultureInvariant);
    private static readonly string[] Groups = { "crd.projectcalico.org/v1", "projectcalico.org/v3" };
    private static readonly string[] ServiceTypes = { "ClusterIP", "NodePort", "LoadBalancer" };
    private static readonly string[] Protocols = { "TCP", "UDP", "SCTP" };

    /// <summary>
    /// Refuses a scenario the cluster could not serve as a real one would (names Kubernetes refuses,
    /// addresses that are not addresses, duplicates, a node name that is not a safe namespace name):
    /// an InvalidDataException naming the entry and the field, before anything is created.
    /// </summary>
    /// <summary>
    /// YAML's null (`nodes:` with nothing after it, `name: ~`) where a list, map or text belongs is
    /// the empty one, as in the node scenario reader; a null entry of a list is refused, named.
    /// </summary>
    private void Normalize(Action<string> fail)
    {
        List<T> Entries<T>(List<T>? list, string what) where T : class
        {
            list ??= new();
            int empty = list.FindIndex(e => e is null);
            if (empty >= 0)
            {
                fail($"{what} entry {empty + 1} is empty");
            }

            return list;
        }

        Install ??= string.Empty;
        CalicoVersion ??= string.Empty;
        CalicoCrds ??= string.Empty;
        Directory ??= ".";
        Nodes = Entries(Nodes, "nodes");
        Pods = Entries(Pods, "pods");
        Services = Entries(Services, "services");
        ApiFaults = Entries(ApiFaults, "apiFaults");
        CalicoApiGroups = Entries(CalicoApiGroups, "calicoApiGroups");
        RbacManifests = Entries(RbacManifests, "rbacManifests");
        Tokens ??= new();
        CalicoNodeEnv ??= new();
        foreach (NodeSpec n in Nodes)
        {
            n.Name ??= string.Empty;
            n.Kernel ??= string.Empty;
            n.OsImage ??= string.Empty;
            n.ProviderId ??= string.Empty;
            n.Address ??= string.Empty;
            n.Log ??= string.Empty;
            n.ExecStdout ??= string.Empty;
            n.ExecStderr ??= string.Empty;
            n.Dataplane ??= new NodeScenario();
            if (string.IsNullOrEmpty(n.Dataplane.CalicoVersion) && CalicoRelease.TryParse(CalicoVersion, out _))
            {
                // The node runs the cluster's release: its maps are that release's versions and meanings.
                n.Dataplane.CalicoVersion = CalicoVersion;
            }
            n.Labels ??= new();
            n.Interfaces = Entries(n.Interfaces, $"node {n.Name}'s interfaces");
            n.ImageWithout = Entries(n.ImageWithout, $"node {n.Name}'s imageWithout");
        }

        foreach (PodSpec p in Pods)
        {
            p.Name ??= string.Empty;
            p.Namespace ??= string.Empty;
            p.Node ??= string.Empty;
            p.Ip ??= string.Empty;
            p.Labels ??= new();
        }

        foreach (ServiceSpec v in Services)
        {
            v.Name ??= string.Empty;
            v.Namespace ??= string.Empty;
            v.Type ??= string.Empty;
            v.ClusterIp ??= string.Empty;
            v.LoadBalancerIp ??= string.Empty;
            v.Selector ??= new();
            v.ExternalIps = Entries(v.ExternalIps, $"service {v.Name}'s externalIps");
            v.Ports = Entries(v.Ports, $"service {v.Name}'s ports");
            foreach (PortSpec port in v.Ports)
            {
                port.Name ??= string.Empty;
                port.Protocol ??= string.Empty;
            }
        }

        foreach (ApiFault f in ApiFaults)
        {
            f.Path ??= string.Empty;
            f.Message ??= string.Empty;
        }
    }

    public void Validate()
    {
        void Fail(string what) => throw new InvalidDataException($"The cluster scenario is not valid: {what}.");
        void Name(string name, string what, Regex form, int max)
        {
            if (name.Length == 0 || name.Length > max || !form.IsMatch(name))
            {
                Fail($"{what} \"{name}\" is not a Kubernetes name (lower-case letters, digits and '-', at most {max} characters)");
            }
        }

        void Address(string ip, string what, bool optional)
        {
            if ((ip.Length == 0 && !optional) || (ip.Length > 0 && !System.Net.IPAddress.TryParse(ip, out _)))
            {
                Fail($"{what} \"{ip}\" is not an IP address");
            }
        }

        Normalize(Fail);
        if (Install is not ("operator" or "manifest"))
        {
            Fail($"install \"{Install}\" is neither operator nor manifest");
        }

        if (!ScenarioObjects.CrdVersions.Contains(CalicoCrds, StringComparer.Ordinal))
        {
            Fail($"calicoCrds \"{CalicoCrds}\" is not a folder of tests/fixtures/calico ({string.Join(", ", ScenarioObjects.CrdVersions)})");
        }

        if (CalicoApiGroups.Count == 0 || CalicoApiGroups.FirstOrDefault(g => !Groups.Contains(g)) is not null)
        {
            Fail($"calicoApiGroups must name crd.projectcalico.org/v1, projectcalico.org/v3 or both, not [{string.Join(", ", CalicoApiGroups)}]");
        }

        var nodes = new HashSet<string>(StringComparer.Ordinal);
        foreach (NodeSpec n in Nodes)
        {
            Name(n.Name, "node", Subdomain, 40); // 40, not 253: the name is part of the node's network namespace name
            if (!nodes.Add(n.Name))
            {
                Fail($"node \"{n.Name}\" is there twice");
            }

            Address(n.Address, $"node {n.Name}'s address", optional: true);
            if (n.Interfaces.Count != n.Interfaces.Distinct(StringComparer.Ordinal).Count()
                || n.Interfaces.FirstOrDefault(i => i.Length is 0 or > 15 || i is "." or ".." || i.Any(c => c is '/' or ':' || char.IsWhiteSpace(c) || char.IsControl(c))) is not null)
            {
                Fail($"node {n.Name}'s interfaces [{string.Join(", ", n.Interfaces)}] are not distinct Linux interface names (1 to 15 characters, no '/', ':' or spaces)");
            }

            if (!string.IsNullOrEmpty(n.Record) && !string.IsNullOrEmpty(n.Replay))
            {
                Fail($"node {n.Name} cannot both record its execs and replay them");
            }

            if (n.ExecDelayMilliseconds < 0 || n.ExecDiesAfterBytes < 0)
            {
                Fail($"node {n.Name}'s execDelayMilliseconds and execDiesAfterBytes cannot be negative");
            }
        }

        var pods = new HashSet<string>(StringComparer.Ordinal);
        foreach (PodSpec p in Pods)
        {
            Name(p.Namespace, "pod namespace", Label, 63);
            Name(p.Name, "pod", Subdomain, 253);
            if (!pods.Add(p.Namespace + "/" + p.Name))
            {
                Fail($"pod {p.Namespace}/{p.Name} is there twice");
            }

            if (p.Node.Length > 0 && !nodes.Contains(p.Node))
            {
                Fail($"pod {p.Namespace}/{p.Name} runs on node \"{p.Node}\", which the scenario does not have");
            }

            Address(p.Ip, $"pod {p.Namespace}/{p.Name}'s ip", optional: false);
        }

        var services = new HashSet<string>(StringComparer.Ordinal);
        foreach (ServiceSpec s in Services)
        {
            Name(s.Namespace, "service namespace", Label, 63);
            Name(s.Name, "service", Label, 63);
            if (!services.Add(s.Namespace + "/" + s.Name) || s is { Namespace: "default", Name: "kubernetes" })
            {
                Fail($"service {s.Namespace}/{s.Name} is there twice (default/kubernetes is the cluster's own)");
            }

            if (!ServiceTypes.Contains(s.Type))
            {
                Fail($"service {s.Namespace}/{s.Name}'s type \"{s.Type}\" is not ClusterIP, NodePort or LoadBalancer");
            }

            Address(s.ClusterIp, $"service {s.Namespace}/{s.Name}'s clusterIp", optional: true);
            Address(s.LoadBalancerIp, $"service {s.Namespace}/{s.Name}'s loadBalancerIp", optional: true);
            foreach (string ip in s.ExternalIps)
            {
                Address(ip, $"service {s.Namespace}/{s.Name}'s externalIps entry", optional: false);
            }

            foreach (PortSpec port in s.Ports)
            {
                if (port.Port is < 1 or > 65535 || port.TargetPort is < 0 or > 65535 || port.NodePort is < 0 or > 65535 || !Protocols.Contains(port.Protocol))
                {
                    Fail($"service {s.Namespace}/{s.Name}'s port {port.Port}/{port.Protocol} (targetPort {port.TargetPort}, nodePort {port.NodePort}) is not a port of 1 to 65535 over TCP, UDP or SCTP");
                }
            }
        }

        foreach (ApiFault f in ApiFaults)
        {
            if (!f.Path.StartsWith('/') || (f.Status is < 400 or > 599 && !(f.Status == 0 && f.DelayMilliseconds > 0)) || f.Times < 0 || f.RetryAfterSeconds < 0 || f.DelayMilliseconds < 0)
            {
                Fail($"apiFaults entry {f.Path} {f.Status}: a fault needs a path starting with '/', a status of 400 to 599 (or 0 with a delayMilliseconds: only slow), and no negative times, retryAfterSeconds or delayMilliseconds");
            }
        }

        if (Tokens.Keys.Any(string.IsNullOrEmpty) || Tokens.Values.Any(string.IsNullOrEmpty))
        {
            Fail("every token needs a value and an identity");
        }
    }
}
