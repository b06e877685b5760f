using System.Text.Json.Nodes;
using CalicoBpf.Cluster;
using CalicoBpf.Isolation;

namespace CalicoBpf.TestCluster;

/// <summary>
/// The kinds the test cluster serves and the objects a scenario puts in them: namespaces, nodes,
/// the calico-node (and kube-proxy) DaemonSets and their pods, workload pods, services and their
/// EndpointSlices, ConfigMaps, and the Calico custom resources with the real CRD schemas of
/// tests/fixtures/calico.
/// </summary>
public static class ScenarioObjects
{
    private static readonly string[] Read = { "get", "list", "watch" };
    private static readonly string[] All = { "create", "delete", "get", "list", "patch", "update", "watch" };

    public static readonly ResourceKind Namespaces = new(string.Empty, "v1", "namespaces", "Namespace", false, All) { ShortNames = new[] { "ns" } };
    public static readonly ResourceKind Nodes = new(string.Empty, "v1", "nodes", "Node", false, All) { ShortNames = new[] { "no" } };
    public static readonly ResourceKind Pods = new(string.Empty, "v1", "pods", "Pod", true, All) { ShortNames = new[] { "po" }, Categories = new[] { "all" } };
    public static readonly ResourceKind Services = new(string.Empty, "v1", "services", "Service", true, All) { ShortNames = new[] { "svc" }, Categories = new[] { "all" } };
    public static readonly ResourceKind ConfigMaps = new(string.Empty, "v1", "configmaps", "ConfigMap", true, All) { ShortNames = new[] { "cm" } };
    public static readonly ResourceKind DaemonSets = new("apps", "v1", "daemonsets", "DaemonSet", true, All) { ShortNames = new[] { "ds" }, Categories = new[] { "all" } };
    public static readonly ResourceKind EndpointSlices = new("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", true, All);
    public static readonly ResourceKind Crds = new("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", false, Read) { ShortNames = new[] { "crd", "crds" } };
    public static readonly ResourceKind ServiceAccounts = new(string.Empty, "v1", "serviceaccounts", "ServiceAccount", true, All) { ShortNames = new[] { "sa" } };
    public static readonly ResourceKind ClusterRoles = new("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", false, All);
    public static readonly ResourceKind ClusterRoleBindings = new("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", false, All);
    public static readonly ResourceKind AccessReviews = new("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview", false, new[] { "create" });
    public static readonly ResourceKind RulesReviews = new("authorization.k8s.io", "v1", "selfsubjectrulesreviews", "SelfSubjectRulesReview", false, new[] { "create" });

    /// <summary>Where the Calico fixtures are: next to the binary (copied at build), else the source tree.</summary>
    public static string FixturesDirectory
    {
        get
        {
            string beside = Path.Combine(AppContext.BaseDirectory, "fixtures", "calico");
            return Directory.Exists(beside) ? beside : Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../fixtures/calico"));
        }
    }

    /// <summary>The Calico versions whose CRDs the fixtures hold (head, v3.28.5, v3.30.7): the folders, listed once.</summary>
    public static IReadOnlyList<string> CrdVersions => LazyCrdVersions.Value;

    private static readonly Lazy<string[]> LazyCrdVersions = new(() => Directory.Exists(FixturesDirectory)
        ? Directory.GetDirectories(FixturesDirectory).Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal).ToArray()
        : Array.Empty<string>());

    /// <summary>Every kind this scenario's cluster serves.</summary>
    public static List<ResourceKind> Kinds(ClusterScenario scenario)
    {
        var kinds = new List<ResourceKind> { Namespaces, Nodes, Pods, Services, ConfigMaps, ServiceAccounts, DaemonSets, EndpointSlices, Crds, ClusterRoles, ClusterRoleBindings, AccessReviews, RulesReviews };
        bool v1 = scenario.CalicoApiGroups.Contains("crd.projectcalico.org/v1");
        bool v3 = scenario.CalicoApiGroups.Contains("projectcalico.org/v3");
        foreach (string plural in new[] { "felixconfigurations", "ippools" })
        {
            if (v1)
            {
                kinds.Add(CustomKind(Crd(scenario, $"crd.projectcalico.org_{plural}.yaml"), plural));
            }

            if (v3)
            {
                kinds.Add(CustomKind(Crd(scenario, $"projectcalico.org_{plural}.yaml"), plural));
            }
        }

        if (v1)
        {
            // IPAM's block affinities, as the release's manifest defines them (its kdd-crds).
            kinds.Add(CustomKind(ManifestCrd(scenario, "blockaffinities.crd.projectcalico.org"), "blockaffinities"));
        }

        if (scenario.Install == "operator")
        {
            kinds.Add(CustomKind(Crd(scenario, "operator.tigera.io_installations.yaml"), "installations"));
        }

        return kinds;
    }

    /// <summary>The CRD file of the scenario's Calico version, or head's when that version's folder lacks it.</summary>
    private static JsonObject Crd(ClusterScenario scenario, string file)
    {
        string path = Path.Combine(FixturesDirectory, scenario.CalicoCrds, file);
        if (!File.Exists(path))
        {
            path = Path.Combine(FixturesDirectory, "head", file);
        }

        return (JsonObject)JsonNode.Parse(DependencyLoadContext.Yaml.ToJsonDocuments(File.ReadAllText(path))[0])!;
    }

    /// <summary>A CRD of the release's manifest install (calico-bpf.yaml of the scenario's CRD folder).</summary>
    private static JsonObject ManifestCrd(ClusterScenario scenario, string name)
    {
        string path = Path.Combine(FixturesDirectory, scenario.CalicoCrds, "calico-bpf.yaml");
        lock (ManifestCrds)
        {
            if (!ManifestCrds.TryGetValue((path, name), out JsonObject? crd))
            {
                crd = DependencyLoadContext.Yaml.ToJsonDocuments(File.ReadAllText(path))
                    .Where(d => d.Contains(name, StringComparison.Ordinal))
                    .Select(d => JsonNode.Parse(d)).OfType<JsonObject>()
                    .First(d => d["kind"]?.GetValue<string>() == "CustomResourceDefinition" && d["metadata"]?["name"]?.GetValue<string>() == name);
                ManifestCrds[(path, name)] = crd;
            }

            return (JsonObject)crd.DeepClone();
        }
    }

    private static readonly Dictionary<(string, string), JsonObject> ManifestCrds = new();

    /// <summary>A kind from a CRD: names, scope, and the served version's schema. Both Calico groups share storage.</summary>
    private static ResourceKind CustomKind(JsonObject crd, string storage)
    {
        JsonObject spec = crd["spec"]!.AsObject();
        JsonObject names = spec["names"]!.AsObject();
        JsonObject version = spec["versions"]!.AsArray().Select(v => v!.AsObject()).First(v => v["served"]?.GetValue<bool>() ?? true);
        string[] Strings(JsonNode? n) => n is JsonArray a ? a.Select(x => x!.GetValue<string>()).ToArray() : Array.Empty<string>();
        return new ResourceKind(spec["group"]!.GetValue<string>(), version["name"]!.GetValue<string>(), names["plural"]!.GetValue<string>(),
            names["kind"]!.GetValue<string>(), spec["scope"]!.GetValue<string>() == "Namespaced", All)
        {
            Storage = storage,
            Custom = true,
            ShortNames = Strings(names["shortNames"]),
            Categories = Strings(names["categories"]),
            Schema = version["schema"]?["openAPIV3Schema"] is JsonObject schema ? new StructuralSchema(schema) : null,
            Definition = crd,
        };
    }

    /// <summary>Seeds the store with the scenario's objects.</summary>
    public static void Seed(ClusterScenario scenario, List<ResourceKind> kinds, ResourceStore store)
    {
        ResourceKind Kind(string group, string plural) => kinds.First(k => k.Group == group && k.Plural == plural);
        var namespaces = new HashSet<string> { "default", "kube-system", scenario.CalicoNamespace };
        namespaces.UnionWith(scenario.Pods.Select(p => p.Namespace));
        namespaces.UnionWith(scenario.Services.Select(s => s.Namespace));
        if (scenario.Install == "operator")
        {
            namespaces.Add("tigera-operator");
        }

        foreach (string ns in namespaces.Order(StringComparer.Ordinal))
        {
            store.Seed(Namespaces, ApiObjects.Namespace(ns, 0));
        }

        foreach (ClusterScenario.NodeSpec n in scenario.Nodes)
        {
            store.Seed(Nodes, ApiObjects.Node(n, 0));
        }

        List<ClusterScenario.NodeSpec> calicoNodes = scenario.Nodes.Where(n => n.CalicoNode).ToList();
        JsonObject calicoDs = store.Seed(DaemonSets, ApiObjects.CalicoNodeDaemonSet(scenario, FixturesDirectory, calicoNodes.Count));
        foreach (ClusterScenario.NodeSpec n in calicoNodes)
        {
            store.Seed(Pods, ApiObjects.CalicoNodePod(scenario, n, calicoDs));
        }

        if (scenario.KubeProxy)
        {
            JsonObject proxyDs = store.Seed(DaemonSets, ApiObjects.KubeProxyDaemonSet(scenario.KubeProxyDisabled ? 0 : scenario.Nodes.Count));
            if (scenario.KubeProxyDisabled)
            {
                proxyDs["spec"]!["template"]!["spec"]!["nodeSelector"] = new JsonObject { ["non-calico"] = "true" };
            }
            else
            {
                foreach (ClusterScenario.NodeSpec n in scenario.Nodes)
                {
                    store.Seed(Pods, ApiObjects.KubeProxyPod(n, proxyDs));
                }
            }
        }

        foreach (ClusterScenario.PodSpec p in scenario.Pods)
        {
            store.Seed(Pods, ApiObjects.WorkloadPod(p, scenario.Nodes.FirstOrDefault(n => n.Name == p.Node)?.Address ?? string.Empty));
        }

        foreach ((ClusterScenario.ServiceSpec s, List<ClusterScenario.PodSpec> backends) in scenario.ServicesWithEndpoints())
        {
            store.Seed(Services, ApiObjects.Service(s));
            store.Seed(EndpointSlices, ApiObjects.EndpointSlice(s, backends));
        }

        if (scenario.KubernetesServicesEndpoint is { } endpoint)
        {
            string ns = scenario.Install == "operator" ? "tigera-operator" : "kube-system";
            store.Seed(ConfigMaps, ApiObjects.ConfigMap("kubernetes-services-endpoint", ns, endpoint));
        }

        foreach (ResourceKind crdKind in kinds.Where(k => k.Definition is not null).DistinctBy(k => k.Qualified))
        {
            store.Seed(Crds, (JsonObject)crdKind.Definition!.DeepClone());
        }

        // Calico resources are stored once (v1 when served, else v3): both groups show the same objects.
        ResourceKind? felix = kinds.FirstOrDefault(k => k.Storage == "felixconfigurations");
        ResourceKind? pools = kinds.FirstOrDefault(k => k.Storage == "ippools");
        SeedSpecs(store, felix, scenario.Resources["felixConfigurations"] as JsonObject);
        SeedSpecs(store, pools, scenario.Resources["ipPools"] as JsonObject);
        if (scenario.Install == "operator" && scenario.Resources["installation"] is JsonObject installation)
        {
            ResourceKind kind = Kind("operator.tigera.io", "installations");
            store.Seed(kind, new JsonObject { ["apiVersion"] = kind.GroupVersion, ["kind"] = kind.Kind, ["metadata"] = ApiObjects.Meta("default", null, 0), ["spec"] = installation.DeepClone() });
        }

        var extra = new List<JsonObject>();
        foreach (string manifest in scenario.RbacManifests)
        {
            // Real manifests (deploy/calicobpf-rbac.yaml): every document becomes an object.
            string path = Path.IsPathRooted(manifest) ? manifest : Path.Combine(scenario.Directory, manifest);
            extra.AddRange(DependencyLoadContext.Yaml.ToJsonDocuments(File.ReadAllText(path)).Select(d => JsonNode.Parse(d)).OfType<JsonObject>());
        }

        if (scenario.Resources["objects"] is JsonArray objects)
        {
            extra.AddRange(objects.OfType<JsonObject>());
        }

        {
            foreach (JsonObject o in extra)
            {
                string apiVersion = o["apiVersion"]?.GetValue<string>() ?? "v1";
                string kindName = o["kind"]?.GetValue<string>() ?? string.Empty;
                ResourceKind kind = kinds.FirstOrDefault(k => k.GroupVersion == apiVersion && k.Kind == kindName)
                    ?? throw new InvalidDataException($"The scenario's object of kind {kindName} ({apiVersion}) is of a kind the test cluster does not serve.");
                if (kind == Namespaces && store.Find(Namespaces, null, ResourceStore.Name(o)) is not null)
                {
                    continue;
                }

                store.Seed(kind, (JsonObject)o.DeepClone());
            }
        }
    }

    private static void SeedSpecs(ResourceStore store, ResourceKind? kind, JsonObject? specs)
    {
        if (specs is null)
        {
            return;
        }

        if (kind is null)
        {
            throw new InvalidDataException("The scenario has Calico resources but calicoApiGroups serves no group for them.");
        }

        foreach ((string name, JsonNode? spec) in specs)
        {
            var o = new JsonObject { ["apiVersion"] = kind.GroupVersion, ["kind"] = kind.Kind, ["metadata"] = ApiObjects.Meta(name, null, 0), ["spec"] = spec?.DeepClone() ?? new JsonObject() };
            IReadOnlyList<FieldError> errors = kind.Schema?.Validate(o) ?? Array.Empty<FieldError>();
            if (errors.Count > 0)
            {
                throw new InvalidDataException($"The scenario's {kind.Kind} \"{name}\" does not pass the CRD schema: {string.Join("; ", errors)}");
            }

            store.Seed(kind, o);
        }
    }
}
