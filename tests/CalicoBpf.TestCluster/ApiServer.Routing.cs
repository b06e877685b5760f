using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace CalicoBpf.TestCluster;

/// <summary>
/// Routing: a request's path to the kind, namespace, name and subresource it addresses, its method
/// to a verb, and the verb to the store (or to logs, exec, watch and the access reviews); request
/// bodies (JSON, or protobuf from typed clients) and JSON answers.
/// </summary>
public sealed partial class ApiServer
{
    /// <summary>One parsed request path: the kind, namespace, name and subresource it addresses.</summary>
    private sealed record Target(ResourceKind Kind, string? Namespace, string? Name, string? Subresource);

    /// <summary>
    /// Every request: counted, authenticated, perhaps answered by a scenario fault, then served: the
    /// discovery and debug paths, else the resource the path names.
    /// </summary>
    private async Task HandleAsync(HttpContext ctx)
    {
        string path = ctx.Request.Path.Value?.TrimEnd('/') ?? string.Empty;
        Count(ctx, path);
        string? role = Authenticate(ctx);
        if (role is null)
        {
            await Write(ctx, 401, ApiObjects.Status(401, "Unauthorized", "Unauthorized"));
            return;
        }

        if (await AnsweredByFault(ctx, path))
        {
            return;
        }

        string[] seg = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        try
        {
            if ((Discovery(seg) ?? Debug(seg)) is JsonNode body)
            {
                await Write(ctx, 200, body);
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
                await WriteList(ctx, t.Kind, Selectors.Filter(ctx.Request.Query, Store.List(t.Kind, t.Namespace)));
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

    private static async Task Write(HttpContext ctx, int code, JsonNode body)
    {
        ctx.Response.StatusCode = code;
        ctx.Response.ContentType = "application/json";
        await ctx.Response.WriteAsync(body.ToJsonString(), ctx.RequestAborted);
    }
}
