using System.Text.Json.Nodes;

namespace CalicoBpf.TestCluster;

/// <summary>
/// Discovery, as kubectl reads it before anything else: /version, /api, /apis (the groups and
/// versions of the scenario's kinds), the resource lists with verbs, short names and categories
/// (pods/exec and pods/log among them), and the OpenAPI v3 documents (<see cref="OpenApi"/>).
/// </summary>
public sealed partial class ApiServer
{
    /// <summary>The discovery document a path names; null for a path that is not one.</summary>
    private JsonNode? Discovery(string[] seg) => seg switch
    {
        ["version"] => new JsonObject { ["major"] = "1", ["minor"] = "35", ["gitVersion"] = "v1.35.0-calicobpf-test", ["platform"] = "linux/amd64" },
        ["api"] => new JsonObject { ["kind"] = "APIVersions", ["versions"] = new JsonArray("v1"), ["serverAddressByClientCIDRs"] = new JsonArray(new JsonObject { ["clientCIDR"] = "0.0.0.0/0", ["serverAddress"] = new Uri(Url).Authority }) },
        ["apis"] => GroupList(),
        ["apis", var group] => Group(group) ?? throw NotFoundPath(),
        ["api", "v1"] => Resources(string.Empty, "v1"),
        ["apis", var group, var version] => Resources(group, version),
        ["openapi", "v3"] => OpenApi.Index(_kinds),
        ["openapi", "v3", .. var gv] => OpenApi.GroupVersion(_kinds, string.Join('/', gv)) ?? throw NotFoundPath(),
        _ => null,
    };

    private JsonObject GroupList()
    {
        return new JsonObject
        {
            ["kind"] = "APIGroupList",
            ["apiVersion"] = "v1",
            ["groups"] = new JsonArray(_kinds.Where(k => k.Group.Length > 0).Select(k => k.Group).Distinct().Select(g => (JsonNode)Group(g)!).ToArray()),
        };
    }

    private JsonObject? Group(string group)
    {
        string[] versions = _kinds.Where(k => k.Group == group).Select(k => k.Version).Distinct().ToArray();
        if (versions.Length == 0)
        {
            return null;
        }

        JsonObject Version(string v) => new() { ["groupVersion"] = group + "/" + v, ["version"] = v };
        return new JsonObject
        {
            ["kind"] = "APIGroup",
            ["apiVersion"] = "v1",
            ["name"] = group,
            ["versions"] = new JsonArray(versions.Select(v => (JsonNode)Version(v)).ToArray()),
            ["preferredVersion"] = Version(versions[0]),
        };
    }

    private JsonObject Resources(string group, string version)
    {
        List<ResourceKind> kinds = _kinds.Where(k => k.Group == group && k.Version == version).ToList();
        if (kinds.Count == 0)
        {
            throw NotFoundPath();
        }

        JsonObject R(string name, ResourceKind k, string[] verbs)
        {
            var r = new JsonObject
            {
                ["name"] = name,
                ["singularName"] = name.Contains('/') ? string.Empty : k.Kind.ToLowerInvariant(),
                ["namespaced"] = k.Namespaced,
                ["kind"] = k.Kind,
                ["verbs"] = new JsonArray(verbs.Select(v => (JsonNode)v).ToArray()),
            };
            if (!name.Contains('/') && k.ShortNames.Length > 0)
            {
                r["shortNames"] = new JsonArray(k.ShortNames.Select(s => (JsonNode)s).ToArray());
            }

            if (!name.Contains('/') && k.Categories.Length > 0)
            {
                r["categories"] = new JsonArray(k.Categories.Select(s => (JsonNode)s).ToArray());
            }

            return r;
        }

        var list = new JsonArray();
        foreach (ResourceKind k in kinds)
        {
            list.Add(R(k.Plural, k, k.Verbs));
            if (k == ScenarioObjects.Pods)
            {
                list.Add(R("pods/exec", k, new[] { "create", "get" }));
                list.Add(R("pods/log", k, new[] { "get" }));
            }
        }

        return new JsonObject { ["kind"] = "APIResourceList", ["apiVersion"] = "v1", ["groupVersion"] = group.Length == 0 ? version : group + "/" + version, ["resources"] = list };
    }
}
