using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Extensions;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;

namespace CalicoBpf.TestCluster;

/// <summary>
/// A Kubernetes API server for the subset CalicoBpf uses: discovery, namespaces, nodes, pods (label
/// and field selectors), pod logs, pods/exec over WebSocket (v4 and v5.channel.k8s.io) that runs the
/// real command inside the simulated node, services, endpointslices, configmaps, daemonsets, the
/// Calico custom resources (validated with the real CRD schemas), get/list/watch, create, update
/// (409 on a stale resourceVersion), merge and JSON patch, delete, dry runs, Table output for
/// kubectl, SelfSubjectAccessReview. Bearer tokens with two roles: admin, and readonly (get/list/
/// watch only). Errors are Status objects as the real API writes them.
/// </summary>
public sealed partial class ApiServer : IAsyncDisposable
{
    private static readonly string[] ExecProtocols = { "v5.channel.k8s.io", "v4.channel.k8s.io" };
    private static readonly string[] ReadVerbs = { "get", "list", "watch" };
    private readonly ClusterScenario _scenario;
    private readonly Dictionary<string, SimulatedNode> _nodes;
    private readonly List<ResourceKind> _kinds;
    private readonly WebApplication _app;

    private ApiServer(ClusterScenario scenario, Dictionary<string, SimulatedNode> nodes, WebApplication app)
    {
        _scenario = scenario;
        _nodes = nodes;
        _app = app;
        _kinds = ScenarioObjects.Kinds(scenario);
        ScenarioObjects.Seed(scenario, _kinds, Store);
    }

    /// <summary>https://127.0.0.1:PORT</summary>
    public string Url { get; private set; } = string.Empty;

    /// <summary>The server's self-signed certificate (its own CA), for kubeconfigs.</summary>
    public string CertificatePem { get; private init; } = string.Empty;

    /// <summary>Every object the cluster holds.</summary>
    public ResourceStore Store { get; } = new();

    private static X509Certificate2 CreateCertificate()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=calicobpf-test-apiserver", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        san.AddDnsName("localhost");
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        using X509Certificate2 cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        // Kestrel needs the key in an exportable, persisted form.
        return new X509Certificate2(cert.Export(X509ContentType.Pkcs12));
    }

    /// <summary>Requests served, by method and path ("GET /api/v1/services"): tests count list calls.</summary>
    public Dictionary<string, int> RequestCounts { get; } = new();

    /// <summary>
    /// The longest request line served (method, URL, version): a proxy or API front-end in front of a real
    /// API server caps it (nginx's large_client_header_buffers: 8 KB by default, answered 414). Commands
    /// of pods/exec travel in the URL, so what the module sends must fit.
    /// </summary>
    public const int DefaultMaxRequestLineBytes = 8 * 1024;

    /// <param name="maxRequestLineBytes">The longest request line served; longer ones are refused with 414 URI Too Long.</param>
    public static async Task<ApiServer> StartAsync(ClusterScenario scenario, int port = 0, int maxRequestLineBytes = DefaultMaxRequestLineBytes)
    {
        string runId = Environment.ProcessId.ToString("x", CultureInfo.InvariantCulture);
        Dictionary<string, ReplayedNode> replayed = ReplayedNode.ForScenario(scenario);
        var nodes = new Dictionary<string, SimulatedNode>();
        try
        {
            foreach (ClusterScenario.NodeSpec n in scenario.Nodes.Where(n => !replayed.ContainsKey(n.Name)))
            {
                nodes[n.Name] = SimulatedNode.Create(n, runId);
            }
        }
        catch
        {
            foreach (SimulatedNode n in nodes.Values)
            {
                n.Dispose();
            }

            throw;
        }

        // HTTPS with a certificate of its own, as a real API server: clients only send tokens over TLS.
        X509Certificate2 certificate = CreateCertificate();
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        // A stopping server does not wait for clients that keep connections open (watches, exec sockets).
        builder.WebHost.UseShutdownTimeout(TimeSpan.FromSeconds(2));
        builder.WebHost.UseKestrel(k =>
        {
            // Kestrel's default is 8 KB too; stated here because tests rely on it: a longer request
            // line is answered 414 URI Too Long before any handler runs, as by a front-end proxy.
            k.Limits.MaxRequestLineSize = maxRequestLineBytes;
            k.Listen(IPAddress.Loopback, port, o =>
            {
                o.Protocols = HttpProtocols.Http1;
                o.UseHttps(certificate);
            });
        });
        WebApplication app = builder.Build();
        ApiServer server;
        try
        {
            server = new ApiServer(scenario, nodes, app) { CertificatePem = certificate.ExportCertificatePem(), Replayed = replayed };
        }
        catch
        {
            foreach (SimulatedNode n in nodes.Values)
            {
                n.Dispose();
            }

            throw;
        }

        app.UseWebSockets();
        app.Run(server.HandleAsync);
        await app.StartAsync();
        server.Url = app.Urls.First().Replace("[::1]", "127.0.0.1", StringComparison.Ordinal);
        return server;
    }

    /// <summary>A kubeconfig for one of the scenario's tokens.</summary>
    public string Kubeconfig(string token, string context = "calicobpf-test") => $"""
        apiVersion: v1
        kind: Config
        clusters:
        - name: {context}
          cluster:
            server: {Url}
            certificate-authority-data: {Convert.ToBase64String(Encoding.ASCII.GetBytes(CertificatePem))}
        users:
        - name: {context}-user
          user:
            token: {token}
        contexts:
        - name: {context}
          context:
            cluster: {context}
            user: {context}-user
        current-context: {context}
        """;

    /// <summary>One parsed request path: the kind, namespace, name and subresource it addresses.</summary>
    private sealed record Target(ResourceKind Kind, string? Namespace, string? Name, string? Subresource);

    private async Task HandleAsync(HttpContext ctx)
    {
        lock (RequestCounts)
        {
            string key = ctx.Request.Method + " " + ctx.Request.Path.Value;
            RequestCounts[key] = RequestCounts.GetValueOrDefault(key) + 1;
        }

        string path = ctx.Request.Path.Value?.TrimEnd('/') ?? string.Empty;
        if (path.EndsWith("/exec", StringComparison.Ordinal))
        {
            // How long the URLs of the execs served were (path and query, as sent): tests check that bulk work stays small.
            int length = ctx.Request.GetEncodedPathAndQuery().Length;
            for (int seen = Volatile.Read(ref _longestExecTarget); length > seen; seen = Volatile.Read(ref _longestExecTarget))
            {
                Interlocked.CompareExchange(ref _longestExecTarget, length, seen);
            }
        }

        string? role = Authenticate(ctx);
        if (role is null)
        {
            await Write(ctx, 401, ApiObjects.Status(401, "Unauthorized", "Unauthorized"));
            return;
        }

        string? token = BearerToken(ctx);
        ClusterScenario.ApiFault? fault = _scenario.ApiFaults.FirstOrDefault(f =>
            path.StartsWith(f.Path, StringComparison.Ordinal) && (f.Token is null || f.Token == token) && f.TakeOne());
        if (fault is { DelayMilliseconds: > 0 })
        {
            // A slow answer: the client may give up first (its request is then aborted here too).
            await Task.Delay(fault.DelayMilliseconds, ctx.RequestAborted);
        }

        if (fault is { Status: > 0 })
        {
            string reason = fault.Status switch { 401 => "Unauthorized", 403 => "Forbidden", 404 => "NotFound", 429 => "TooManyRequests", 503 => "ServiceUnavailable", _ => "InternalError" };
            if (fault.RetryAfterSeconds is int after)
            {
                ctx.Response.Headers.RetryAfter = after.ToString(CultureInfo.InvariantCulture);
            }

            await Write(ctx, fault.Status, ApiObjects.Status(fault.Status, reason, fault.Message));
            return;
        }

        string[] seg = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        try
        {
            switch (seg)
            {
                case ["version"]:
                    await Write(ctx, 200, new JsonObject { ["major"] = "1", ["minor"] = "35", ["gitVersion"] = "v1.35.0-calicobpf-test", ["platform"] = "linux/amd64" });
                    return;
                case ["api"]:
                    await Write(ctx, 200, new JsonObject { ["kind"] = "APIVersions", ["versions"] = new JsonArray("v1"), ["serverAddressByClientCIDRs"] = new JsonArray(new JsonObject { ["clientCIDR"] = "0.0.0.0/0", ["serverAddress"] = new Uri(Url).Authority }) });
                    return;
                case ["apis"]:
                    await Write(ctx, 200, GroupList());
                    return;
                case ["apis", var group]:
                    await Write(ctx, 200, Group(group) ?? throw NotFoundPath());
                    return;
                case ["api", "v1"]:
                    await Write(ctx, 200, Resources(string.Empty, "v1"));
                    return;
                case ["apis", var group, var version]:
                    await Write(ctx, 200, Resources(group, version));
                    return;
                case ["openapi", "v3"]:
                    await Write(ctx, 200, OpenApi.Index(_kinds));
                    return;
                case ["openapi", "v3", .. var gv]:
                    await Write(ctx, 200, OpenApi.GroupVersion(_kinds, string.Join('/', gv)) ?? throw NotFoundPath());
                    return;
                case ["debug", "calicobpf", "writes"]:
                    // Not Kubernetes paths: how tests see that -WhatIf sent no write, and how many list calls a run made.
                    await Write(ctx, 200, new JsonObject { ["writes"] = Store.Writes, ["activeExecs"] = Volatile.Read(ref _activeExecs), ["longestExecTarget"] = Volatile.Read(ref _longestExecTarget) });
                    return;
                case ["debug", "calicobpf", "nodes", var nodeName, "processes"]:
                    // What runs in a node's calico-node container besides its PID 1: tests check that nothing was left behind.
                    await Write(ctx, 200, new JsonObject { ["processes"] = new JsonArray((_nodes.TryGetValue(nodeName, out SimulatedNode? sn) ? sn.Processes() : throw NotFoundPath()).Select(p => (JsonNode)p).ToArray()) });
                    return;
                case ["debug", "calicobpf", "requests"]:
                    JsonObject counts = new();
                    lock (RequestCounts)
                    {
                        foreach ((string key, int n) in RequestCounts.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                        {
                            counts[key] = n;
                        }
                    }

                    await Write(ctx, 200, counts);
                    return;
            }

            Target target = Parse(seg) ?? throw NotFoundPath();
            await Serve(ctx, role, target);
        }
        catch (ApiError error)
        {
            await Write(ctx, error.Code, error.ToStatus());
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static ApiError NotFoundPath() => new(404, "NotFound", "the server could not find the requested resource");

    /// <summary>/api/v1/... or /apis/GROUP/VERSION/..., then [namespaces/NS/]PLURAL[/NAME[/SUBRESOURCE]].</summary>
    private Target? Parse(string[] seg)
    {
        (string group, string version, string[] rest) = seg switch
        {
            ["api", "v1", .. var r] => (string.Empty, "v1", r),
            ["apis", var g, var v, .. var r] => (g, v, r),
            _ => (string.Empty, string.Empty, Array.Empty<string>()),
        };
        ResourceKind? Kind(string plural) => _kinds.FirstOrDefault(k => k.Group == group && k.Version == version && k.Plural == plural);
        return rest switch
        {
            ["namespaces", var ns, var plural, .. var more] when more.Length <= 2 && Kind(plural) is { Namespaced: true } k =>
                new Target(k, ns, more.ElementAtOrDefault(0), more.ElementAtOrDefault(1)),
            [var plural, .. var more] when more.Length <= 2 && Kind(plural) is { Namespaced: false } k =>
                new Target(k, null, more.ElementAtOrDefault(0), more.ElementAtOrDefault(1)),
            [var plural] when Kind(plural) is { Namespaced: true } k => new Target(k, null, null, null),
            _ => null,
        };
    }

    private async Task Serve(HttpContext ctx, string role, Target t)
    {
        string method = ctx.Request.Method;
        if (t.Subresource == "log" && t.Kind == ScenarioObjects.Pods && method == "GET")
        {
            Authorize(role, "get", t, "log");
            await Logs(ctx, t.Namespace!, t.Name!);
            return;
        }

        if (t.Subresource == "exec" && t.Kind == ScenarioObjects.Pods)
        {
            // Kubernetes 1.35: the WebSocket upgrade (a GET) needs create on pods/exec, as a POST does.
            Authorize(role, "create", t, "exec");
            await Exec(ctx, t.Namespace!, t.Name!);
            return;
        }

        if (t.Subresource is not null)
        {
            throw NotFoundPath();
        }

        bool watch = ctx.Request.Query["watch"] is var w && (w == "true" || w == "1");
        string verb = (method, t.Name) switch
        {
            ("GET", null) => watch ? "watch" : "list",
            ("GET", _) => "get",
            ("POST", null) => "create",
            ("PUT", not null) => "update",
            ("PATCH", not null) => "patch",
            ("DELETE", not null) => "delete",
            _ => throw new ApiError(405, "MethodNotAllowed", $"the server does not allow this method on the requested resource"),
        };
        if (!t.Kind.Verbs.Contains(verb))
        {
            throw new ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource");
        }

        Authorize(role, verb, t, null);
        bool dryRun = ctx.Request.Query["dryRun"] == "All";
        string fieldValidation = ctx.Request.Query["fieldValidation"].ToString() is { Length: > 0 } fv ? fv : "Warn";
        var warnings = new List<string>();
        JsonObject result;
        int code = 200;
        switch (verb)
        {
            case "list":
                await WriteList(ctx, t.Kind, Filter(ctx, Store.List(t.Kind, t.Namespace)));
                return;
            case "watch":
                await Watch(ctx, t);
                return;
            case "get":
                JsonObject one = Store.Get(t.Kind, t.Namespace, t.Name!);
                await Write(ctx, 200, Tables.Wanted(ctx.Request.Headers.Accept.ToString()) ? Tables.Build(t.Kind, new[] { one }, Store.ResourceVersion, ctx.Request.Query["includeObject"].ToString()) : one);
                return;
            case "create" when t.Kind == ScenarioObjects.AccessReviews:
                await Write(ctx, 201, AccessReview(role, await ReadBody(ctx)));
                return;
            case "create" when t.Kind == ScenarioObjects.RulesReviews:
                await Write(ctx, 201, RulesReview(role, await ReadBody(ctx)));
                return;
            case "create":
                result = Store.Create(t.Kind, t.Namespace, await ReadBody(ctx), dryRun, warnings, fieldValidation);
                code = 201;
                break;
            case "update":
                result = Store.Update(t.Kind, t.Namespace, t.Name!, await ReadBody(ctx), dryRun, warnings, fieldValidation);
                break;
            case "patch":
                string contentType = ctx.Request.ContentType?.Split(';')[0].Trim() ?? string.Empty;
                result = Store.Patch(t.Kind, t.Namespace, t.Name!, contentType, await new StreamReader(ctx.Request.Body).ReadToEndAsync(ctx.RequestAborted), dryRun, warnings, fieldValidation);
                break;
            default:
                result = Store.Delete(t.Kind, t.Namespace, t.Name!, dryRun);
                break;
        }

        foreach (string warning in warnings)
        {
            ctx.Response.Headers.Append("Warning", $"299 - \"{warning.Replace("\"", "\\\"", StringComparison.Ordinal)}\"");
        }

        await Write(ctx, code, result);
    }

    private static async Task<JsonObject> ReadBody(HttpContext ctx)
    {
        if (ctx.Request.ContentType?.StartsWith(KubeProtobuf.MediaType, StringComparison.Ordinal) == true)
        {
            // Typed clients (kubectl auth can-i) send built-in kinds as protobuf; the answer is JSON,
            // which their Accept (protobuf, then JSON) allows.
            using var buffer = new MemoryStream();
            await ctx.Request.Body.CopyToAsync(buffer, ctx.RequestAborted);
            try
            {
                return KubeProtobuf.Decode(buffer.ToArray());
            }
            catch (FormatException ex)
            {
                throw new ApiError(400, "BadRequest", $"the body of the request could not be decoded: {ex.Message}");
            }
            catch (NotSupportedException ex)
            {
                throw new ApiError(415, "UnsupportedMediaType", $"the body of the request was in an unknown format for {ex.Message} - accepted media types include: application/json, application/yaml");
            }
        }

        try
        {
            return await JsonSerializer.DeserializeAsync<JsonObject>(ctx.Request.Body, cancellationToken: ctx.RequestAborted)
                ?? throw new ApiError(400, "BadRequest", "the request body is empty");
        }
        catch (JsonException ex)
        {
            throw new ApiError(400, "BadRequest", $"the body of the request could not be decoded: {ex.Message}");
        }
    }

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

    private async Task WriteList(HttpContext ctx, ResourceKind kind, IEnumerable<JsonObject> items)
    {
        if (Tables.Wanted(ctx.Request.Headers.Accept.ToString()))
        {
            await Write(ctx, 200, Tables.Build(kind, items, Store.ResourceVersion, ctx.Request.Query["includeObject"].ToString()));
            return;
        }

        JsonObject list = ApiObjects.List(kind.Kind + "List", kind.GroupVersion, items, Store.ResourceVersion);
        await Write(ctx, 200, list);
    }

    /// <summary>A watch stream: one JSON event per line, until timeoutSeconds or the client leaves.</summary>
    private async Task Watch(HttpContext ctx, Target t)
    {
        int? from = int.TryParse(ctx.Request.Query["resourceVersion"], out int rv) ? rv : null;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted);
        if (int.TryParse(ctx.Request.Query["timeoutSeconds"], out int seconds) && seconds > 0)
        {
            timeout.CancelAfter(TimeSpan.FromSeconds(seconds));
        }

        IAsyncEnumerator<(string Type, JsonObject Object)> events = Store.Watch(t.Kind, t.Namespace, from, timeout.Token).GetAsyncEnumerator(timeout.Token);
        try
        {
            // The first MoveNext registers the watcher and may fail (410 Expired) before any byte is sent.
            bool any;
            try
            {
                any = await events.MoveNextAsync();
            }
            catch (OperationCanceledException)
            {
                any = false;
            }

            ctx.Response.StatusCode = 200;
            ctx.Response.ContentType = "application/json";
            await ctx.Response.StartAsync(ctx.RequestAborted);
            try
            {
                while (any)
                {
                    (string type, JsonObject o) = events.Current;
                    if (Filter(ctx, new[] { o }).Any())
                    {
                        await ctx.Response.WriteAsync(new JsonObject { ["type"] = type, ["object"] = o }.ToJsonString() + "\n", ctx.RequestAborted);
                        await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
                    }

                    any = await events.MoveNextAsync();
                }
            }
            catch (OperationCanceledException)
            {
            }
        }
        finally
        {
            await events.DisposeAsync();
        }
    }

    /// <summary>labelSelector (a=b, a!=b, a, !a) and fieldSelector (metadata.name, metadata.namespace, spec.nodeName, status.phase).</summary>
    private static IEnumerable<JsonObject> Filter(HttpContext ctx, IEnumerable<JsonObject> items)
    {
        string labels = ctx.Request.Query["labelSelector"].ToString();
        string fields = ctx.Request.Query["fieldSelector"].ToString();
        foreach (JsonObject o in items)
        {
            if (Matches(labels, key => o["metadata"]?["labels"]?[key]?.GetValue<string>())
                && Matches(fields, key => key switch
                {
                    "metadata.name" => ResourceStore.Name(o),
                    "metadata.namespace" => ResourceStore.Namespace(o),
                    "spec.nodeName" => o["spec"]?["nodeName"]?.GetValue<string>(),
                    "status.phase" => o["status"]?["phase"]?.GetValue<string>(),
                    _ => null,
                }))
            {
                yield return o;
            }
        }
    }

    private static bool Matches(string selector, Func<string, string?> valueOf)
    {
        foreach (string term in selector.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int ne = term.IndexOf("!=", StringComparison.Ordinal);
            int eq = term.IndexOf('=');
            if (ne > 0)
            {
                if (valueOf(term[..ne]) == term[(ne + 2)..])
                {
                    return false;
                }
            }
            else if (eq > 0)
            {
                string key = term[..eq];
                string want = term[(eq + (term.Length > eq + 1 && term[eq + 1] == '=' ? 2 : 1))..];
                if (valueOf(key) != want)
                {
                    return false;
                }
            }
            else if (term.StartsWith('!'))
            {
                if (valueOf(term[1..]) is not null)
                {
                    return false;
                }
            }
            else if (valueOf(term) is null)
            {
                return false;
            }
        }

        return true;
    }

    private static async Task Write(HttpContext ctx, int code, JsonNode body)
    {
        ctx.Response.StatusCode = code;
        ctx.Response.ContentType = "application/json";
        await ctx.Response.WriteAsync(body.ToJsonString(), ctx.RequestAborted);
    }

    /// <summary>pods/log: the node's calico-node log (other pods log nothing), with container, tailLines, sinceTime and sinceSeconds.</summary>
    private async Task Logs(HttpContext ctx, string ns, string name)
    {
        JsonObject pod = Store.Get(ScenarioObjects.Pods, ns, name);
        string[] containers = (pod["spec"]!["containers"] as JsonArray ?? new JsonArray()).Select(c => c!["name"]!.GetValue<string>()).ToArray();
        string container = ctx.Request.Query["container"].ToString();
        if (container.Length == 0 && containers.Length > 1)
        {
            throw new ApiError(400, "BadRequest", $"a container name must be specified for pod {name}, choose one of: [{string.Join(' ', containers)}]");
        }

        if (container.Length > 0 && !containers.Contains(container))
        {
            throw new ApiError(400, "BadRequest", $"container {container} is not valid for pod {name}");
        }

        string node = pod["spec"]!["nodeName"]!.GetValue<string>();
        bool calico = pod["metadata"]?["labels"]?["k8s-app"]?.GetValue<string>() == "calico-node";
        string[] lines = calico && _nodes.TryGetValue(node, out SimulatedNode? sim) ? sim.Spec.Log.Split('\n', StringSplitOptions.RemoveEmptyEntries) : Array.Empty<string>();
        DateTime? since = DateTime.TryParse(ctx.Request.Query["sinceTime"], CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal, out DateTime t) ? t
            : int.TryParse(ctx.Request.Query["sinceSeconds"], out int seconds) ? DateTime.UtcNow.AddSeconds(-seconds) : null;
        if (since is DateTime from)
        {
            // Felix stamps each line (UTC, no zone); a line without a stamp belongs with the one before it.
            bool keep = false;
            lines = lines.Where(l =>
            {
                if (l.Length >= 23 && DateTime.TryParseExact(l[..23], "yyyy-MM-dd HH:mm:ss.fff", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out DateTime stamp))
                {
                    keep = stamp >= from;
                }

                return keep;
            }).ToArray();
        }

        if (int.TryParse(ctx.Request.Query["tailLines"], out int tail) && tail >= 0)
        {
            lines = lines.TakeLast(tail).ToArray();
        }

        ctx.Response.ContentType = "text/plain";
        await ctx.Response.WriteAsync(lines.Length == 0 ? string.Empty : string.Join('\n', lines) + "\n", ctx.RequestAborted);
    }

    /// <summary>Exec sessions open now (tests check that a stopped fan-out leaves none).</summary>
    private int _activeExecs;
    private int _longestExecTarget;

    private async Task Exec(HttpContext ctx, string ns, string name)
    {
        Interlocked.Increment(ref _activeExecs);
        try
        {
            await ExecSession(ctx, ns, name);
        }
        finally
        {
            Interlocked.Decrement(ref _activeExecs);
        }
    }

    private async Task ExecSession(HttpContext ctx, string ns, string name)
    {
        JsonObject pod = Store.Get(ScenarioObjects.Pods, ns, name);
        string[] command = ctx.Request.Query["command"].Where(c => c is not null).Select(c => c!).ToArray();
        // The container parameter, as the API server checks it before any stream opens: a pod of one
        // container needs none; a name that is not one of its containers is refused.
        string[] containers = pod["spec"]?["containers"] is JsonArray cs ? cs.Select(c => c?["name"]?.GetValue<string>() ?? string.Empty).ToArray() : Array.Empty<string>();
        string? container = ctx.Request.Query["container"].FirstOrDefault(c => !string.IsNullOrEmpty(c));
        if (container is null && containers.Length > 1)
        {
            await Write(ctx, 400, ApiObjects.Status(400, "BadRequest", $"a container name must be specified for pod {name}, choose one of: [{string.Join(' ', containers)}]"));
            return;
        }

        if (container is not null && !containers.Contains(container))
        {
            await Write(ctx, 400, ApiObjects.Status(400, "BadRequest", $"container {container} is not valid for pod {name}"));
            return;
        }

        if (!ctx.WebSockets.IsWebSocketRequest || command.Length == 0)
        {
            await Write(ctx, 400, ApiObjects.Status(400, "BadRequest", command.Length == 0 ? "you must specify at least 1 command" : "Upgrade request required"));
            return;
        }

        string? protocol = ctx.WebSockets.WebSocketRequestedProtocols.FirstOrDefault(p => ExecProtocols.Contains(p));
        if (protocol is null)
        {
            await Write(ctx, 400, ApiObjects.Status(400, "BadRequest", "the exec stream needs one of the subprotocols " + string.Join(", ", ExecProtocols)));
            return;
        }

        string nodeName = pod["spec"]!["nodeName"]!.GetValue<string>();
        if (Replayed.TryGetValue(nodeName, out ReplayedNode? replayed))
        {
            await ReplayAsync(ctx, protocol, replayed, command);
            return;
        }

        using WebSocket ws = Recorded(ctx, nodeName, command, await ctx.WebSockets.AcceptWebSocketAsync(protocol));
        SimulatedNode node = _nodes[nodeName];
        if (node.Spec.ExecDelayMilliseconds > 0)
        {
            await Task.Delay(node.Spec.ExecDelayMilliseconds, ctx.RequestAborted);
        }

        if (node.Spec.ExecExitCode is int exitCode)
        {
            // Fault knob: every command of this node "runs" and ends as configured (a tool missing,
            // garbage on stdout, a failure), instead of running for real.
            foreach ((byte channel, string text) in new[] { ((byte)1, node.Spec.ExecStdout), ((byte)2, node.Spec.ExecStderr) })
            {
                if (text.Length > 0)
                {
                    await ws.SendAsync(ChannelFrame(channel, Encoding.UTF8.GetBytes(text)), WebSocketMessageType.Binary, true, ctx.RequestAborted);
                }
            }

            await EndExec(ws, ExitStatus(exitCode, command).ToJsonString(), ctx.RequestAborted);
            return;
        }

        if (node.MissingExecutable(command[0]) is string missing)
        {
            // As containerd answers it: the runtime finds no such executable in the container, so no process
            // starts and there is no exit code, only an internal error.
            await EndExec(ws, InternalError($"error executing command in container: failed to exec in container: failed to start exec \"{Convert.ToHexString(Guid.NewGuid().ToByteArray()).ToLowerInvariant()}\": " +
                $"OCI runtime exec failed: exec failed: unable to start container process: {missing}: unknown").ToJsonString(), ctx.RequestAborted);
            return;
        }

        var psi = new ProcessStartInfo("nsenter") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        IReadOnlyList<string> argv = node.Wrap(command);
        psi.FileName = argv[0];
        foreach (string a in argv.Skip(1))
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment.Clear();
        foreach ((string key, string value) in node.Environment)
        {
            psi.Environment[key] = value;
        }

        Process process = Process.Start(psi)!;
        bool stdin = ctx.Request.Query["stdin"] is var si && (si == "true" || si == "1");
        if (!stdin)
        {
            process.StandardInput.Close();
        }

        using var abort = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted);
        var sendLock = new SemaphoreSlim(1, 1);

        async Task Send(byte channel, ReadOnlyMemory<byte> data)
        {
            byte[] frame = ChannelFrame(channel, data.Span);
            await sendLock.WaitAsync(abort.Token);
            try
            {
                await ws.SendAsync(frame, WebSocketMessageType.Binary, true, abort.Token);
            }
            finally
            {
                sendLock.Release();
            }
        }

        long sent = 0;
        // Copies the command's output to the client. When the client has gone, the next output the
        // command writes is not taken: the pipe is closed, and the command's following write fails (EPIPE),
        // as it does when a kubelet's exec stream is gone.
        async Task Pump(Stream source, byte channel)
        {
            byte[] buffer = new byte[32 * 1024];
            try
            {
                int n;
                while ((n = await source.ReadAsync(buffer, CancellationToken.None)) > 0 && !abort.IsCancellationRequested)
                {
                    if (channel == 1 && node.Spec.ExecDiesAfterBytes is long limit && sent + n > limit)
                    {
                        // Fault knob: the connection drops mid-stream, as when the kubelet or a proxy dies.
                        await Send(channel, buffer.AsMemory(0, (int)Math.Max(0, limit - sent)));
                        ws.Abort();
                        abort.Cancel();
                        return;
                    }

                    sent += channel == 1 ? n : 0;
                    await Send(channel, buffer.AsMemory(0, n));
                }
            }
            catch (Exception) when (abort.IsCancellationRequested || ws.State != WebSocketState.Open)
            {
            }
            finally
            {
                source.Dispose();
            }
        }

        // The client going away (Ctrl+C, a timeout) does not kill the command, as a kubelet does not:
        // its stdin ends (containerd closes an exec's stdin when the stream's does) and its output is
        // no longer read. A command that blocks without writing keeps running.
        bool stdinGone = false;
        int stdinClosed = 0;
        void EndStdin()
        {
            stdinGone = true;
            if (Interlocked.Exchange(ref stdinClosed, 1) == 0)
            {
                try
                {
                    process.StandardInput.Close();
                }
                catch (IOException)
                {
                }
            }
        }

        Task watch = Task.Run(async () =>
        {
            byte[] b = new byte[1024];
            try
            {
                var message = new MemoryStream();
                while (ws.State == WebSocketState.Open)
                {
                    WebSocketReceiveResult r = await ws.ReceiveAsync(b, abort.Token);
                    if (r.MessageType == WebSocketMessageType.Close)
                    {
                        break;
                    }

                    message.Write(b, 0, r.Count);
                    if (!r.EndOfMessage)
                    {
                        continue;
                    }

                    byte[] frame = message.ToArray();
                    message.SetLength(0);
                    if (frame.Length == 0 || !stdin)
                    {
                        continue;
                    }

                    if (frame[0] == 0)
                    {
                        // stdin data; a command that ended (or closed its stdin) before taking it all is no
                        // failure of the session: the rest is dropped and it ends with its status, as a kubelet's does.
                        if (!stdinGone)
                        {
                            try
                            {
                                await process.StandardInput.BaseStream.WriteAsync(frame.AsMemory(1), abort.Token);
                                await process.StandardInput.BaseStream.FlushAsync(abort.Token);
                            }
                            catch (IOException)
                            {
                                stdinGone = true;
                            }
                        }
                    }
                    else if (frame[0] == 255 && protocol == "v5.channel.k8s.io" && frame.Length > 1 && frame[1] == 0)
                    {
                        // v5's close signal: the client has no more stdin.
                        EndStdin();
                    }
                }
            }
            catch (Exception)
            {
                // The client went away (or the request was aborted first, which ended this receive).
            }

            if (!process.HasExited)
            {
                try
                {
                    abort.Cancel();
                }
                catch (ObjectDisposedException)
                {
                }

                EndStdin();
            }
        });

        Task output = Task.WhenAll(Pump(process.StandardOutput.BaseStream, 1), Pump(process.StandardError.BaseStream, 2));
        bool detached = false;
        try
        {
            await Task.WhenAny(output, Task.Delay(Timeout.Infinite, abort.Token));
            abort.Token.ThrowIfCancellationRequested();
            await process.WaitForExitAsync(abort.Token);
            // Both pumps are done: nothing else sends now.
            await EndExec(ws, ExitStatus(process.ExitCode, command).ToJsonString(), abort.Token);
        }
        catch (Exception) when (abort.IsCancellationRequested || ws.State != WebSocketState.Open)
        {
            // The client left; the command is on its own, and is let go in the background: the request
            // does not wait for it.
            detached = true;
            EndStdin();
            _ = Task.Run(async () =>
            {
                await output;
                await process.WaitForExitAsync();
                process.Dispose();
            });
        }
        finally
        {
            if (!detached)
            {
                process.Dispose();
            }
        }
    }

    /// <summary>One frame of the exec stream protocols (v4, v5): the channel's byte, then the data.</summary>
    private static byte[] ChannelFrame(byte channel, ReadOnlySpan<byte> data)
    {
        byte[] frame = new byte[data.Length + 1];
        frame[0] = channel;
        data.CopyTo(frame.AsSpan(1));
        return frame;
    }

    /// <summary>
    /// Ends an exec as the kubelet does: its Status on the error channel (3), then the close frame.
    /// The request ends without waiting for the client's answer (CloseAsync kept it open as long as
    /// the client kept its socket, and a stopping server waited its whole shutdown timeout for it).
    /// </summary>
    private static async Task EndExec(WebSocket ws, string status, CancellationToken cancellationToken)
    {
        await ws.SendAsync(ChannelFrame(3, Encoding.UTF8.GetBytes(status)), WebSocketMessageType.Binary, true, cancellationToken);
        using var closing = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await ws.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, closing.Token);
    }

    /// <summary>The Status of an exec that could not start (InternalError, code 500, no exit code), as the kubelet writes it.</summary>
    private static JsonObject InternalError(string error) => new()
    {
        ["metadata"] = new JsonObject(),
        ["status"] = "Failure",
        ["message"] = "Internal error occurred: " + error,
        ["reason"] = "InternalError",
        ["details"] = new JsonObject { ["causes"] = new JsonArray(new JsonObject { ["message"] = error }) },
        ["code"] = 500,
    };

    /// <summary>The Status an exec ends with on its error channel, as the kubelet writes it: Success, or the exit code as a cause.</summary>
    private static JsonObject ExitStatus(int exitCode, string[] command) => exitCode == 0
        ? new JsonObject { ["metadata"] = new JsonObject(), ["status"] = "Success" }
        : new JsonObject
        {
            ["metadata"] = new JsonObject(),
            ["status"] = "Failure",
            ["message"] = $"command terminated with non-zero exit code: error executing command [{string.Join(' ', command)}], exit code {exitCode}",
            ["reason"] = "NonZeroExitCode",
            ["details"] = new JsonObject { ["causes"] = new JsonArray(new JsonObject { ["reason"] = "ExitCode", ["message"] = exitCode.ToString(CultureInfo.InvariantCulture) }) },
        };

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        foreach (SimulatedNode n in _nodes.Values)
        {
            n.Dispose();
        }
    }
}
