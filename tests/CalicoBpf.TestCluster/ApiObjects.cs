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

    public static JsonObject Node(ClusterScenario.NodeSpec n, int rv) => new()
    {
        ["kind"] = "Node",
        ["apiVersion"] = "v1",
        ["metadata"] = Meta(n.Name, null, rv, new JsonObject
        {
            ["kubernetes.io/hostname"] = n.Name,
            ["kubernetes.io/os"] = "linux",
            ["kubernetes.io/arch"] = "amd64",
        }),
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

    public static JsonObject CalicoNodePod(ClusterScenario s, ClusterScenario.NodeSpec n, int rv) => new()
    {
        ["kind"] = "Pod",
        ["apiVersion"] = "v1",
        ["metadata"] = Meta("calico-node-" + Suffix(n.Name), s.CalicoNamespace, rv, new JsonObject
        {
            ["k8s-app"] = "calico-node",
            ["controller-revision-hash"] = "5d8f9c7b6",
            ["pod-template-generation"] = "1",
        }),
        ["spec"] = new JsonObject
        {
            ["nodeName"] = n.Name,
            ["hostNetwork"] = true,
            ["serviceAccountName"] = "calico-node",
            ["containers"] = new JsonArray(new JsonObject
            {
                ["name"] = "calico-node",
                ["image"] = "docker.io/calico/node:" + s.CalicoVersion,
            }),
        },
        ["status"] = new JsonObject
        {
            ["phase"] = "Running",
            ["hostIP"] = n.Address,
            ["podIP"] = n.Address,
            ["startTime"] = Stamp,
            ["conditions"] = new JsonArray(new JsonObject { ["type"] = "Ready", ["status"] = "True" }),
            ["containerStatuses"] = new JsonArray(new JsonObject
            {
                ["name"] = "calico-node",
                ["ready"] = true,
                ["restartCount"] = 0,
                ["image"] = "docker.io/calico/node:" + s.CalicoVersion,
                ["imageID"] = "docker.io/calico/node@sha256:0000",
                ["containerID"] = "containerd://" + Suffix(n.Name + "c"),
                ["started"] = true,
                ["state"] = new JsonObject { ["running"] = new JsonObject { ["startedAt"] = Stamp } },
            }),
        },
    };

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
