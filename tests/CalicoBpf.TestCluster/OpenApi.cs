using System.Text.Json.Nodes;

namespace CalicoBpf.TestCluster;

/// <summary>
/// /openapi/v3: the index and one document per group-version, with the operations kubectl looks
/// for. kubectl create/replace -f ask it whether the server validates fields itself (the
/// fieldValidation parameter on PATCH); it does, so kubectl sends fieldValidation=Strict and leaves
/// validation to the server. Custom resources carry their CRD schema.
/// </summary>
public static class OpenApi
{
    private static readonly string Hash = Guid.NewGuid().ToString("N")[..16].ToUpperInvariant();

    public static JsonObject Index(IEnumerable<ResourceKind> kinds)
    {
        var paths = new JsonObject();
        foreach (string gv in kinds.Select(Prefix).Distinct())
        {
            paths[gv] = new JsonObject { ["serverRelativeURL"] = $"/openapi/v3/{gv}?hash={Hash}" };
        }

        return new JsonObject { ["paths"] = paths };
    }

    public static JsonObject? GroupVersion(IEnumerable<ResourceKind> kinds, string gv)
    {
        List<ResourceKind> served = kinds.Where(k => Prefix(k) == gv).ToList();
        if (served.Count == 0)
        {
            return null;
        }

        var paths = new JsonObject();
        var schemas = new JsonObject();
        foreach (ResourceKind k in served)
        {
            JsonObject Gvk() => new() { ["group"] = k.Group, ["version"] = k.Version, ["kind"] = k.Kind };
            JsonObject Op(string action, bool validates)
            {
                var parameters = new JsonArray(new JsonObject { ["name"] = "dryRun", ["in"] = "query", ["schema"] = new JsonObject { ["type"] = "string" } });
                if (validates)
                {
                    parameters.Add(new JsonObject { ["name"] = "fieldValidation", ["in"] = "query", ["schema"] = new JsonObject { ["type"] = "string" } });
                }

                return new JsonObject
                {
                    ["operationId"] = action + k.Kind,
                    ["parameters"] = parameters,
                    ["responses"] = new JsonObject { ["200"] = new JsonObject { ["description"] = "OK" } },
                    ["x-kubernetes-action"] = action,
                    ["x-kubernetes-group-version-kind"] = Gvk(),
                };
            }

            string collection = "/" + gv + (k.Namespaced ? "/namespaces/{namespace}/" : "/") + k.Plural;
            paths[collection] = new JsonObject { ["get"] = Op("list", false), ["post"] = Op("post", true) };
            paths[collection + "/{name}"] = new JsonObject
            {
                ["get"] = Op("get", false),
                ["put"] = Op("put", true),
                ["patch"] = Op("patch", true),
                ["delete"] = Op("delete", false),
            };
            var schema = (JsonObject)(k.Schema is not null && k.Definition?["spec"]?["versions"]?.AsArray()
                .FirstOrDefault(v => v?["name"]?.GetValue<string>() == k.Version)?["schema"]?["openAPIV3Schema"] is JsonObject s
                    ? s.DeepClone()
                    : new JsonObject { ["type"] = "object", ["x-kubernetes-preserve-unknown-fields"] = true });
            schema["x-kubernetes-group-version-kind"] = new JsonArray(Gvk());
            schemas[string.Join('.', k.Group.Split('.').Reverse().Append(k.Version).Append(k.Kind).Where(p => p.Length > 0))] = schema;
        }

        return new JsonObject
        {
            ["openapi"] = "3.0.0",
            ["info"] = new JsonObject { ["title"] = "Kubernetes", ["version"] = "v1.35.0" },
            ["paths"] = paths,
            ["components"] = new JsonObject { ["schemas"] = schemas },
        };
    }

    private static string Prefix(ResourceKind k) => k.Group.Length == 0 ? "api/" + k.Version : $"apis/{k.Group}/{k.Version}";
}
