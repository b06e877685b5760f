using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace CalicoBpf.TestCluster;

/// <summary>
/// Authentication (bearer tokens of the scenario), RBAC as Kubernetes evaluates it (the built-in
/// admin and readonly roles, and ClusterRoles bound by ClusterRoleBindings), its 403 wording, and the
/// two self reviews: SelfSubjectAccessReview (kubectl auth can-i) and SelfSubjectRulesReview (--list).
/// </summary>
public sealed partial class ApiServer
{
    private static readonly string[] ReadVerbs = { "get", "list", "watch" };

    private string? Authenticate(HttpContext ctx) => BearerToken(ctx) is { } token && _scenario.Tokens.TryGetValue(token, out string? role) ? role : null;

    private static string? BearerToken(HttpContext ctx) =>
        ctx.Request.Headers.Authorization.ToString() is { } header && header.StartsWith("Bearer ", StringComparison.Ordinal) ? header[7..].Trim() : null;

    /// <summary>
    /// May the token's identity do this? "admin" may do anything and "readonly" get, list and watch
    /// (the scenario's built-in tokens); any other identity (system:serviceaccount:NS:NAME or a user)
    /// gets what the ClusterRoles bound to it by ClusterRoleBindings allow, as Kubernetes' RBAC
    /// evaluates them (apiGroups, resources with subresources, verbs, resourceNames; "*" for any).
    /// </summary>
    private bool Allowed(string role, string verb, string group, string resource, string? name)
    {
        static bool Has(JsonNode? list, string value) => list is JsonArray a && a.Any(x => x?.GetValue<string>() is string v && (v == "*" || v == value));
        return Rules(role).Any(rule => Has(rule["apiGroups"], group) && Has(rule["resources"], resource) && Has(rule["verbs"], verb)
            && (rule["resourceNames"] is not JsonArray names || names.Count == 0 || (name is not null && Has(names, name))));
    }

    /// <summary>
    /// The resource rules an identity has: everything for "admin", get/list/watch of everything for
    /// "readonly", else the rules of the ClusterRoles its ClusterRoleBindings name.
    /// </summary>
    private IEnumerable<JsonObject> Rules(string role)
    {
        if (role is "admin" or "readonly")
        {
            return new[] { new JsonObject { ["verbs"] = role == "admin" ? Strings("*") : Strings(ReadVerbs), ["apiGroups"] = Strings("*"), ["resources"] = Strings("*") } };
        }

        var roles = Store.List(ScenarioObjects.ClusterRoleBindings, null)
            .Where(b => (b["subjects"] as JsonArray ?? new JsonArray()).OfType<JsonObject>().Any(sub => sub["kind"]?.GetValue<string>() switch
            {
                "ServiceAccount" => $"system:serviceaccount:{sub["namespace"]}:{sub["name"]}" == role,
                _ => sub["name"]?.GetValue<string>() == role,
            }))
            .Select(b => b["roleRef"]?["name"]?.GetValue<string>())
            .ToHashSet();
        return Store.List(ScenarioObjects.ClusterRoles, null)
            .Where(r => roles.Contains(ResourceStore.Name(r)))
            .SelectMany(r => (r["rules"] as JsonArray ?? new JsonArray()).OfType<JsonObject>())
            .ToList();
    }

    /// <summary>
    /// SelfSubjectRulesReview (kubectl auth can-i --list): the identity's rules, with what every
    /// authenticated user has (system:basic-user's reviews, system:discovery's URLs), as a real API
    /// server answers it.
    /// </summary>
    private JsonObject RulesReview(string role, JsonObject review)
    {
        var rules = new JsonArray(new JsonObject
        {
            ["verbs"] = Strings("create"),
            ["apiGroups"] = Strings("authorization.k8s.io"),
            ["resources"] = Strings("selfsubjectaccessreviews", "selfsubjectrulesreviews"),
        });
        foreach (JsonObject rule in Rules(role))
        {
            var copy = new JsonObject();
            foreach (string key in new[] { "verbs", "apiGroups", "resources", "resourceNames" })
            {
                if (rule[key] is JsonArray values)
                {
                    copy[key] = values.DeepClone();
                }
            }

            rules.Add(copy);
        }

        review["status"] = new JsonObject
        {
            ["resourceRules"] = rules,
            ["nonResourceRules"] = new JsonArray(new JsonObject
            {
                ["verbs"] = Strings("get"),
                ["nonResourceURLs"] = Strings("/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*", "/readyz", "/version", "/version/"),
            }),
            ["incomplete"] = false,
        };
        review["metadata"] ??= new JsonObject { ["creationTimestamp"] = null };
        return review;
    }

    private static JsonArray Strings(params string[] values) => new(values.Select(v => (JsonNode)v).ToArray());

    private static string UserName(string role) => role is "admin" or "readonly" ? "system:serviceaccount:default:" + role : role;

    /// <summary>RBAC (see <see cref="Allowed"/>); a 403 worded as the real API words it.</summary>
    private void Authorize(string role, string verb, Target t, string? subresource)
    {
        string resource = subresource is null ? t.Kind.Plural : t.Kind.Plural + "/" + subresource;
        if (t.Kind == ScenarioObjects.AccessReviews || t.Kind == ScenarioObjects.RulesReviews || Allowed(role, verb, t.Kind.Group, resource, t.Name))
        {
            return;
        }

        string subject = t.Name is null ? t.Kind.Qualified : $"{t.Kind.Qualified} \"{t.Name}\"";
        string scope = t.Namespace is null ? "at the cluster scope" : $"in the namespace \"{t.Namespace}\"";
        throw new ApiError(403, "Forbidden",
            $"{subject} is forbidden: User \"{UserName(role)}\" cannot {verb} resource \"{resource}\" in API group \"{t.Kind.Group}\" {scope}",
            t.Name is null ? new JsonObject { ["group"] = t.Kind.Group, ["kind"] = t.Kind.Plural } : ApiError.Detail(t.Kind, t.Name));
    }

    /// <summary>SelfSubjectAccessReview: may the caller do spec.resourceAttributes?</summary>
    private JsonObject AccessReview(string role, JsonObject review)
    {
        JsonNode? a = review["spec"]?["resourceAttributes"];
        string verb = a?["verb"]?.GetValue<string>() ?? string.Empty;
        string resource = (a?["resource"]?.GetValue<string>() ?? string.Empty) + (a?["subresource"]?.GetValue<string>() is { Length: > 0 } sub ? "/" + sub : string.Empty);
        bool allowed = Allowed(role, verb, a?["group"]?.GetValue<string>() ?? string.Empty, resource, a?["name"]?.GetValue<string>());
        review["status"] = new JsonObject
        {
            ["allowed"] = allowed,
            ["reason"] = allowed ? $"RBAC: allowed for \"{UserName(role)}\"" : string.Empty,
        };
        review["metadata"] ??= new JsonObject { ["creationTimestamp"] = null };
        return review;
    }
}
