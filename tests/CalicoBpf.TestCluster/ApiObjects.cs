using System.Text.Json.Nodes;

namespace CalicoBpf.TestCluster;

/// <summary>The Kubernetes objects of a scenario, shaped as the real API serves them.</summary>
public static class ApiObjects
{
    public static readonly DateTime Created = new(2026, 11, 1, 8, 0, 0, DateTimeKind.Utc);

    public static string Stamp => Created.ToString("yyyy-MM-ddTHH:mm:ssZ");

    public static JsonObject Meta(string name, string? ns, int resourceVersion, JsonObject? labels = null)
    {
        var m = new JsonObject
        {
            ["name"] = name,
            ["uid"] = Guid.NewGuid().ToString(),
            ["resourceVersion"] = resourceVersion.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["creationTimestamp"] = Stamp,
        };
        if (ns is not null)
        {
            m["namespace"] = ns;
        }

        if (labels is not null)
        {
            m["labels"] = labels;
        }

        return m;
    }

    public static JsonObject Namespace(string name, int rv) => new()
    {
        ["kind"] = "Namespace",
        ["apiVersion"] = "v1",
        ["metadata"] = Meta(name, null, rv, new JsonObject { ["kubernetes.io/metadata.name"] = name }),
        ["status"] = new JsonObject { ["phase"] = "Active" },
    };

    private static JsonObject NodeLabels(ClusterScenario.NodeSpec n)
    {
        var labels = new JsonObject
        {
            ["kubernetes.io/hostname"] = n.Name,
            ["kubernetes.io/os"] = "linux",
            ["kubernetes.io/arch"] = "amd64",
        };
        foreach ((string key, string value) in n.Labels)
        {
            labels[key] = value;
        }

        return labels;
    }

    public static JsonObject Node(ClusterScenario.NodeSpec n, int rv) => new()
    {
        ["kind"] = "Node",
        ["apiVersion"] = "v1",
        ["metadata"] = Meta(n.Name, null, rv, NodeLabels(n)),
        ["spec"] = string.IsNullOrEmpty(n.ProviderId) ? new JsonObject() : new JsonObject { ["providerID"] = n.ProviderId },
        ["status"] = new JsonObject
        {
            ["conditions"] = new JsonArray(new JsonObject
            {
                ["type"] = "Ready",
                ["status"] = "True",
                ["reason"] = "KubeletReady",
                ["lastHeartbeatTime"] = Stamp,
                ["lastTransitionTime"] = Stamp,
            }),
            ["addresses"] = new JsonArray(
                new JsonObject { ["type"] = "InternalIP", ["address"] = n.Address },
                new JsonObject { ["type"] = "Hostname", ["address"] = n.Name }),
            ["nodeInfo"] = new JsonObject
            {
                ["kernelVersion"] = n.Kernel,
                ["osImage"] = n.OsImage,
                ["containerRuntimeVersion"] = "containerd://1.7.22",
                ["kubeletVersion"] = "v1.35.0",
                ["kubeProxyVersion"] = "v1.35.0",
                ["operatingSystem"] = "linux",
                ["architecture"] = "amd64",
                ["machineID"] = "0000",
                ["systemUUID"] = "0000",
                ["bootID"] = "0000",
            },
        },
    };

    /// <summary>
    /// The calico-node DaemonSet: for a manifest install the real one of the fixtures' calico-bpf.yaml
    /// (with its FELIX_* environment), for an operator install the operator's shape, owned by the
    /// Installation. The scenario's calicoNodeEnv is added to (or replaces) the container's env.
    /// </summary>
    public static JsonObject CalicoNodeDaemonSet(ClusterScenario s, string fixtures, int nodes)
    {
        JsonObject ds;
        if (s.Install == "manifest")
        {
            string manifest = Path.Combine(fixtures, s.CalicoCrds, "calico-bpf.yaml");
            ds = CalicoBpf.Isolation.DependencyLoadContext.Yaml.ToJsonDocuments(File.ReadAllText(manifest))
                .Select(d => JsonNode.Parse(d) as JsonObject)
                .First(d => d?["kind"]?.GetValue<string>() == "DaemonSet" && d["metadata"]?["name"]?.GetValue<string>() == "calico-node")!;
        }
        else
        {
            JsonArray env = new(
                new JsonObject { ["name"] = "DATASTORE_TYPE", ["value"] = "kubernetes" },
                new JsonObject { ["name"] = "WAIT_FOR_DATASTORE", ["value"] = "true" },
                new JsonObject { ["name"] = "CALICO_MANAGE_CNI", ["value"] = "true" },
                new JsonObject { ["name"] = "CALICO_NETWORKING_BACKEND", ["value"] = "bird" },
                new JsonObject { ["name"] = "CALICO_DISABLE_FILE_LOGGING", ["value"] = "false" },
                new JsonObject { ["name"] = "FELIX_DEFAULTENDPOINTTOHOSTACTION", ["value"] = "ACCEPT" },
                new JsonObject { ["name"] = "FELIX_HEALTHENABLED", ["value"] = "true" },
                new JsonObject { ["name"] = "FELIX_HEALTHPORT", ["value"] = "9099" },
                new JsonObject { ["name"] = "NODENAME", ["valueFrom"] = new JsonObject { ["fieldRef"] = new JsonObject { ["apiVersion"] = "v1", ["fieldPath"] = "spec.nodeName" } } },
                new JsonObject { ["name"] = "NO_DEFAULT_POOLS", ["value"] = "true" });
            ds = new JsonObject
            {
                ["apiVersion"] = "apps/v1",
                ["kind"] = "DaemonSet",
                ["metadata"] = new JsonObject
                {
                    ["name"] = "calico-node",
                    ["namespace"] = "calico-system",
                    ["ownerReferences"] = new JsonArray(new JsonObject
                    {
                        ["apiVersion"] = "operator.tigera.io/v1",
                        ["kind"] = "Installation",
                        ["name"] = "default",
                        ["uid"] = "00000000-0000-0000-0000-00000000000a",
                        ["controller"] = true,
                        ["blockOwnerDeletion"] = true,
                    }),
                },
                ["spec"] = new JsonObject
                {
                    ["selector"] = new JsonObject { ["matchLabels"] = new JsonObject { ["k8s-app"] = "calico-node" } },
                    ["template"] = new JsonObject
                    {
                        ["metadata"] = new JsonObject { ["labels"] = new JsonObject { ["k8s-app"] = "calico-node", ["app.kubernetes.io/name"] = "calico-node" } },
                        ["spec"] = new JsonObject
                        {
                            ["hostNetwork"] = true,
                            ["serviceAccountName"] = "calico-node",
                            ["initContainers"] = new JsonArray(
                                new JsonObject { ["name"] = "flexvol-driver", ["image"] = "docker.io/calico/pod2daemon-flexvol" },
                                new JsonObject { ["name"] = "ebpf-bootstrap", ["image"] = "docker.io/calico/node", ["command"] = new JsonArray("calico-node", "-init") },
                                new JsonObject { ["name"] = "install-cni", ["image"] = "docker.io/calico/cni" }),
                            ["containers"] = new JsonArray(new JsonObject { ["name"] = "calico-node", ["image"] = "docker.io/calico/node", ["env"] = env }),
                        },
                    },
                },
            };
        }

        JsonObject meta = ds["metadata"]!.AsObject();
        meta["namespace"] = s.CalicoNamespace;
        meta["labels"] ??= new JsonObject { ["k8s-app"] = "calico-node" };
        meta["generation"] = 1;
        foreach (JsonObject c in Containers(ds))
        {
            string image = c["image"]?.GetValue<string>() ?? string.Empty;
            int colon = image.LastIndexOf(':');
            c["image"] = (colon > image.LastIndexOf('/') ? image[..colon] : image) + ":" + s.CalicoVersion;
        }

        JsonObject main = ds["spec"]!["template"]!["spec"]!["containers"]!.AsArray().Select(c => c!.AsObject()).First(c => c["name"]!.GetValue<string>() == "calico-node");
        JsonArray envList = main["env"] as JsonArray ?? (JsonArray)(main["env"] = new JsonArray());
        foreach ((string name, string value) in s.CalicoNodeEnv)
        {
            if (envList.FirstOrDefault(e => e?["name"]?.GetValue<string>() == name) is JsonNode existing)
            {
                envList.Remove(existing);
            }

            envList.Add(new JsonObject { ["name"] = name, ["value"] = value });
        }

        ds["status"] = DaemonSetStatus(nodes);
        return ds;
    }

    private static IEnumerable<JsonObject> Containers(JsonObject ds) =>
        new[] { "initContainers", "containers" }.SelectMany(k => ds["spec"]!["template"]!["spec"]![k] as JsonArray ?? new JsonArray()).Select(c => c!.AsObject());

    private static JsonObject DaemonSetStatus(int nodes) => new()
    {
        ["currentNumberScheduled"] = nodes,
        ["desiredNumberScheduled"] = nodes,
        ["numberAvailable"] = nodes,
        ["numberMisscheduled"] = 0,
        ["numberReady"] = nodes,
        ["observedGeneration"] = 1,
        ["updatedNumberScheduled"] = nodes,
    };

    /// <summary>A pod of a DaemonSet on one node: the template's containers, owned by the DaemonSet.</summary>
    private static JsonObject DaemonPod(JsonObject ds, string podName, ClusterScenario.NodeSpec n)
    {
        JsonObject template = ds["spec"]!["template"]!.AsObject();
        var spec = (JsonObject)template["spec"]!.DeepClone();
        spec["nodeName"] = n.Name;
        var labels = (JsonObject)(template["metadata"]?["labels"]?.DeepClone() ?? new JsonObject());
        labels["controller-revision-hash"] = "5d8f9c7b6";
        labels["pod-template-generation"] = "1";
        JsonObject meta = Meta(podName, ds["metadata"]!["namespace"]!.GetValue<string>(), 0, labels);
        meta["ownerReferences"] = new JsonArray(new JsonObject
        {
            ["apiVersion"] = "apps/v1",
            ["kind"] = "DaemonSet",
            ["name"] = ds["metadata"]!["name"]!.GetValue<string>(),
            ["uid"] = ds["metadata"]!["uid"]?.GetValue<string>() ?? Guid.Empty.ToString(),
            ["controller"] = true,
            ["blockOwnerDeletion"] = true,
        });
        string image = spec["containers"]![0]!["image"]!.GetValue<string>();
        string container = spec["containers"]![0]!["name"]!.GetValue<string>();
        if (container == "calico-node" && n.Dataplane.CalicoVersion is { Length: > 0 } release && !image.EndsWith(":" + release, StringComparison.Ordinal))
        {
            // A node whose release is not the cluster's: its pod is of another revision of the DaemonSet,
            // as during a rolling upgrade, and runs that release's image.
            int colon = image.LastIndexOf(':');
            image = (colon > image.LastIndexOf('/') ? image[..colon] : image) + ":" + release;
            foreach (JsonObject c in spec["containers"]!.AsArray().Concat(spec["initContainers"]?.AsArray() ?? new JsonArray()).OfType<JsonObject>())
            {
                if (c["image"]?.GetValue<string>() is string i && i.StartsWith(image[..image.LastIndexOf(':')] + ":", StringComparison.Ordinal))
                {
                    c["image"] = image;
                }
            }

            labels["controller-revision-hash"] = "7c4b9d2e1";
            labels["pod-template-generation"] = "2";
        }

        return new JsonObject
        {
            ["kind"] = "Pod",
            ["apiVersion"] = "v1",
            ["metadata"] = meta,
            ["spec"] = spec,
            ["status"] = RunningStatus(container, image, n.Address, n.Address, n.Name),
        };
    }

    public static JsonObject CalicoNodePod(ClusterScenario s, ClusterScenario.NodeSpec n, JsonObject daemonSet) =>
        DaemonPod(daemonSet, "calico-node-" + Suffix(n.Name), n);

    public static JsonObject KubeProxyDaemonSet(int nodes) => new()
    {
        ["apiVersion"] = "apps/v1",
        ["kind"] = "DaemonSet",
        ["metadata"] = new JsonObject { ["name"] = "kube-proxy", ["namespace"] = "kube-system", ["labels"] = new JsonObject { ["k8s-app"] = "kube-proxy" }, ["generation"] = 1 },
        ["spec"] = new JsonObject
        {
            ["selector"] = new JsonObject { ["matchLabels"] = new JsonObject { ["k8s-app"] = "kube-proxy" } },
            ["template"] = new JsonObject
            {
                ["metadata"] = new JsonObject { ["labels"] = new JsonObject { ["k8s-app"] = "kube-proxy" } },
                ["spec"] = new JsonObject
                {
                    ["hostNetwork"] = true,
                    ["nodeSelector"] = new JsonObject { ["kubernetes.io/os"] = "linux" },
                    ["containers"] = new JsonArray(new JsonObject
                    {
                        ["name"] = "kube-proxy",
                        ["image"] = "registry.k8s.io/kube-proxy:v1.35.0",
                        ["command"] = new JsonArray("/usr/local/bin/kube-proxy", "--config=/var/lib/kube-proxy/config.conf", "--hostname-override=$(NODE_NAME)"),
                    }),
                },
            },
        },
        ["status"] = DaemonSetStatus(nodes),
    };

    public static JsonObject KubeProxyPod(ClusterScenario.NodeSpec n, JsonObject daemonSet) => DaemonPod(daemonSet, "kube-proxy-" + Suffix("kp" + n.Name), n);

    public static JsonObject WorkloadPod(ClusterScenario.PodSpec p, string hostIp)
    {
        var labels = new JsonObject();
        foreach ((string k, string v) in p.Labels)
        {
            labels[k] = v;
        }

        return new JsonObject
        {
            ["kind"] = "Pod",
            ["apiVersion"] = "v1",
            ["metadata"] = Meta(p.Name, p.Namespace, 0, labels),
            ["spec"] = new JsonObject
            {
                ["nodeName"] = p.Node,
                ["containers"] = new JsonArray(new JsonObject { ["name"] = "app", ["image"] = "registry.k8s.io/e2e-test-images/agnhost:2.53" }),
            },
            ["status"] = RunningStatus("app", "registry.k8s.io/e2e-test-images/agnhost:2.53", hostIp, p.Ip, p.Name),
        };
    }

    private static JsonObject RunningStatus(string container, string image, string hostIp, string podIp, string seed) => new()
    {
        ["phase"] = "Running",
        ["hostIP"] = hostIp,
        ["hostIPs"] = new JsonArray(new JsonObject { ["ip"] = hostIp }),
        ["podIP"] = podIp,
        ["podIPs"] = new JsonArray(new JsonObject { ["ip"] = podIp }),
        ["startTime"] = Stamp,
        ["conditions"] = new JsonArray(new JsonObject { ["type"] = "Ready", ["status"] = "True" }),
        ["containerStatuses"] = new JsonArray(new JsonObject
        {
            ["name"] = container,
            ["ready"] = true,
            ["restartCount"] = 0,
            ["image"] = image,
            ["imageID"] = image + "@sha256:0000",
            ["containerID"] = "containerd://" + Suffix(seed + container),
            ["started"] = true,
            ["state"] = new JsonObject { ["running"] = new JsonObject { ["startedAt"] = Stamp } },
        }),
    };

    /// <summary>default/kubernetes, as every cluster has it: 10.96.0.1:443 to the API server on the first node's address, port 6443.</summary>
    public static ClusterScenario.ServiceSpec KubernetesServiceSpec { get; } = new()
    {
        Name = "kubernetes",
        Namespace = "default",
        ClusterIp = "10.96.0.1",
        Ports = { new ClusterScenario.PortSpec { Name = "https", Port = 443, TargetPort = 6443 } },
    };

    /// <summary>The API server as the kubernetes service's endpoint: an address, no pod, no node.</summary>
    public static ClusterScenario.PodSpec KubernetesEndpoint(string address) => new() { Name = string.Empty, Ip = address };

    public static JsonObject KubernetesService() => Service(KubernetesServiceSpec);

    public static JsonObject KubernetesEndpointSlice(string address) => EndpointSlice(KubernetesServiceSpec, new List<ClusterScenario.PodSpec> { KubernetesEndpoint(address) });

    public static JsonObject Service(ClusterScenario.ServiceSpec s)
    {
        var selector = new JsonObject();
        foreach ((string k, string v) in s.Selector)
        {
            selector[k] = v;
        }

        var spec = new JsonObject
        {
            ["type"] = s.Type,
            ["clusterIP"] = s.ClusterIp,
            ["clusterIPs"] = new JsonArray(s.ClusterIp),
            ["ipFamilies"] = new JsonArray("IPv4"),
            ["sessionAffinity"] = s.SessionAffinity.Length > 0 ? s.SessionAffinity : "None",
            ["ports"] = new JsonArray(s.Ports.Select(p =>
            {
                var port = new JsonObject { ["protocol"] = p.Protocol, ["port"] = p.Port, ["targetPort"] = p.TargetPort == 0 ? p.Port : p.TargetPort };
                if (p.Name.Length > 0)
                {
                    port["name"] = p.Name;
                }

                if (p.NodePort > 0)
                {
                    port["nodePort"] = p.NodePort;
                }

                return (JsonNode)port;
            }).ToArray()),
        };
        if (selector.Count > 0)
        {
            spec["selector"] = selector;
        }

        if (s.InternalTrafficPolicy.Length > 0 || s.ClusterIp.Length > 0)
        {
            spec["internalTrafficPolicy"] = s.InternalTrafficPolicy.Length > 0 ? s.InternalTrafficPolicy : "Cluster";
        }

        if (s.Type is "NodePort" or "LoadBalancer" || s.ExternalIps.Count > 0)
        {
            spec["externalTrafficPolicy"] = s.ExternalTrafficPolicy.Length > 0 ? s.ExternalTrafficPolicy : "Cluster";
        }

        if (s.SessionAffinity == "ClientIP")
        {
            spec["sessionAffinityConfig"] = new JsonObject { ["clientIP"] = new JsonObject { ["timeoutSeconds"] = s.AffinityTimeoutSeconds > 0 ? s.AffinityTimeoutSeconds : 10800 } };
        }

        if (s.LoadBalancerSourceRanges.Count > 0)
        {
            spec["loadBalancerSourceRanges"] = new JsonArray(s.LoadBalancerSourceRanges.Select(r => (JsonNode)r).ToArray());
        }

        if (s.ExternalIps.Count > 0)
        {
            spec["externalIPs"] = new JsonArray(s.ExternalIps.Select(ip => (JsonNode)ip).ToArray());
        }

        var status = new JsonObject { ["loadBalancer"] = new JsonObject() };
        if (s.LoadBalancerIp.Length > 0)
        {
            status["loadBalancer"] = new JsonObject { ["ingress"] = new JsonArray(new JsonObject { ["ip"] = s.LoadBalancerIp }) };
        }

        return new JsonObject
        {
            ["kind"] = "Service",
            ["apiVersion"] = "v1",
            ["metadata"] = Meta(s.Name, s.Namespace, 0),
            ["spec"] = spec,
            ["status"] = status,
        };
    }

    /// <summary>The EndpointSlice the endpointslice controller would write for a service and the pods its selector matches.</summary>
    public static JsonObject EndpointSlice(ClusterScenario.ServiceSpec s, List<ClusterScenario.PodSpec> backends) => new()
    {
        ["kind"] = "EndpointSlice",
        ["apiVersion"] = "discovery.k8s.io/v1",
        ["metadata"] = Meta(s.Name + "-" + Suffix("eps" + s.Namespace + s.Name), s.Namespace, 0, new JsonObject
        {
            ["kubernetes.io/service-name"] = s.Name,
            ["endpointslice.kubernetes.io/managed-by"] = "endpointslice-controller.k8s.io",
        }),
        ["addressType"] = "IPv4",
        ["endpoints"] = new JsonArray(backends.Select(p =>
        {
            var e = new JsonObject
            {
                ["addresses"] = new JsonArray(p.Ip),
                // As the endpointslice controller writes them: a terminating pod is not ready; serving is its readiness.
                ["conditions"] = new JsonObject { ["ready"] = p.Ready && !p.Terminating, ["serving"] = p.Ready, ["terminating"] = p.Terminating },
            };
            if (p.Name.Length > 0)
            {
                e["nodeName"] = p.Node;
                e["targetRef"] = new JsonObject { ["kind"] = "Pod", ["namespace"] = p.Namespace, ["name"] = p.Name };
            }

            return (JsonNode)e;
        }).ToArray()),
        ["ports"] = new JsonArray(s.Ports.Select(p => (JsonNode)new JsonObject
        {
            ["name"] = p.Name,
            ["protocol"] = p.Protocol,
            ["port"] = p.TargetPort == 0 ? p.Port : p.TargetPort,
        }).ToArray()),
    };

    public static JsonObject ConfigMap(string name, string ns, Dictionary<string, string> data)
    {
        var d = new JsonObject();
        foreach ((string k, string v) in data)
        {
            d[k] = v;
        }

        return new JsonObject { ["kind"] = "ConfigMap", ["apiVersion"] = "v1", ["metadata"] = Meta(name, ns, 0), ["data"] = d };
    }

    /// <summary>Pod-name suffix as a DaemonSet makes them: five characters of a stable hash.</summary>
    public static string Suffix(string seed)
    {
        const string alphabet = "bcdfghjklmnpqrstvwxz2456789";
        uint h = 2166136261;
        foreach (char c in seed)
        {
            h = (h ^ c) * 16777619;
        }

        var chars = new char[5];
        for (int i = 0; i < 5; i++)
        {
            chars[i] = alphabet[(int)(h % (uint)alphabet.Length)];
            h /= (uint)alphabet.Length;
        }

        return new string(chars);
    }

    public static JsonObject Status(int code, string reason, string message, string? name = null, string? kind = null)
    {
        var s = new JsonObject
        {
            ["kind"] = "Status",
            ["apiVersion"] = "v1",
            ["metadata"] = new JsonObject(),
            ["status"] = "Failure",
            ["message"] = message,
            ["reason"] = reason,
            ["code"] = code,
        };
        if (name is not null || kind is not null)
        {
            var details = new JsonObject();
            if (name is not null)
            {
                details["name"] = name;
            }

            if (kind is not null)
            {
                details["kind"] = kind;
            }

            s["details"] = details;
        }

        return s;
    }

    public static JsonObject List(string kind, string apiVersion, IEnumerable<JsonObject> items, int rv) => new()
    {
        ["kind"] = kind,
        ["apiVersion"] = apiVersion,
        ["metadata"] = new JsonObject { ["resourceVersion"] = rv.ToString(System.Globalization.CultureInfo.InvariantCulture) },
        ["items"] = new JsonArray(items.Select(i => (JsonNode)i.DeepClone()).ToArray()),
    };
}
