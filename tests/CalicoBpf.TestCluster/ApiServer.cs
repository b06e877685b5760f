using System.Diagnostics;
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
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;

namespace CalicoBpf.TestCluster;

/// <summary>
/// A Kubernetes API server for the subset CalicoBpf uses: discovery, namespaces, nodes, pods (label
/// and field selectors), pod logs, and pods/exec over WebSocket (v4 and v5.channel.k8s.io) that runs
/// the real command inside the simulated node. Bearer tokens with two roles: admin, and readonly
/// (get/list/watch only, so no pods/exec). Errors are Status objects as the real API writes them.
/// </summary>
public sealed class ApiServer : IAsyncDisposable
{
    private static readonly string[] ExecProtocols = { "v5.channel.k8s.io", "v4.channel.k8s.io" };
    private readonly ClusterScenario _scenario;
    private readonly Dictionary<string, SimulatedNode> _nodes;
    private readonly List<JsonObject> _namespaces = new();
    private readonly List<JsonObject> _nodeObjects = new();
    private readonly List<JsonObject> _pods = new();
    private readonly WebApplication _app;
    private int _resourceVersion = 1000;

    private ApiServer(ClusterScenario scenario, Dictionary<string, SimulatedNode> nodes, WebApplication app)
    {
        _scenario = scenario;
        _nodes = nodes;
        _app = app;
        foreach (string ns in new[] { "default", "kube-system", scenario.CalicoNamespace }.Distinct())
        {
            _namespaces.Add(ApiObjects.Namespace(ns, ++_resourceVersion));
        }

        foreach (ClusterScenario.NodeSpec n in scenario.Nodes)
        {
            _nodeObjects.Add(ApiObjects.Node(n, ++_resourceVersion));
            if (n.CalicoNode)
            {
                _pods.Add(ApiObjects.CalicoNodePod(scenario, n, ++_resourceVersion));
            }
        }
    }

    /// <summary>https://127.0.0.1:PORT</summary>
    public string Url { get; private set; } = string.Empty;

    /// <summary>The server's self-signed certificate (its own CA), for kubeconfigs.</summary>
    public string CertificatePem { get; private init; } = string.Empty;

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

    /// <summary>Requests served, by method (tests count writes).</summary>
    public Dictionary<string, int> RequestCounts { get; } = new();

    public static async Task<ApiServer> StartAsync(ClusterScenario scenario, int port = 0)
    {
        string runId = Environment.ProcessId.ToString("x", System.Globalization.CultureInfo.InvariantCulture);
        var nodes = new Dictionary<string, SimulatedNode>();
        try
        {
            foreach (ClusterScenario.NodeSpec n in scenario.Nodes)
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
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, port, o =>
        {
            o.Protocols = HttpProtocols.Http1;
            o.UseHttps(certificate);
        }));
        WebApplication app = builder.Build();
        var server = new ApiServer(scenario, nodes, app) { CertificatePem = certificate.ExportCertificatePem() };
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

    private async Task HandleAsync(HttpContext ctx)
    {
        lock (RequestCounts)
        {
            RequestCounts[ctx.Request.Method] = RequestCounts.GetValueOrDefault(ctx.Request.Method) + 1;
        }

        string path = ctx.Request.Path.Value?.TrimEnd('/') ?? string.Empty;
        string? role = Authenticate(ctx);
        if (role is null)
        {
            await Write(ctx, 401, ApiObjects.Status(401, "Unauthorized", "Unauthorized"));
            return;
        }

        if (_scenario.ApiFaults.FirstOrDefault(f => path.StartsWith(f.Path, StringComparison.Ordinal)) is { } fault)
        {
            string reason = fault.Status switch { 403 => "Forbidden", 404 => "NotFound", 429 => "TooManyRequests", 503 => "ServiceUnavailable", _ => "InternalError" };
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
                    await Write(ctx, 200, new JsonObject { ["kind"] = "APIGroupList", ["apiVersion"] = "v1", ["groups"] = new JsonArray() });
                    return;
                case ["api", "v1"]:
                    await Write(ctx, 200, CoreResources());
                    return;
                case ["api", "v1", "namespaces"]:
                    await Write(ctx, 200, ApiObjects.List("NamespaceList", "v1", Filter(ctx, _namespaces), _resourceVersion));
                    return;
                case ["api", "v1", "namespaces", var ns] when ctx.Request.Method == "GET":
                    await WriteOne(ctx, _namespaces.FirstOrDefault(n => Name(n) == ns), "namespaces", ns);
                    return;
                case ["api", "v1", "nodes"]:
                    await Write(ctx, 200, ApiObjects.List("NodeList", "v1", Filter(ctx, _nodeObjects), _resourceVersion));
                    return;
                case ["api", "v1", "nodes", var name]:
                    await WriteOne(ctx, _nodeObjects.FirstOrDefault(n => Name(n) == name), "nodes", name);
                    return;
                case ["api", "v1", "pods"]:
                    await Write(ctx, 200, ApiObjects.List("PodList", "v1", Filter(ctx, _pods), _resourceVersion));
                    return;
                case ["api", "v1", "namespaces", var ns, "pods"]:
                    await Write(ctx, 200, ApiObjects.List("PodList", "v1", Filter(ctx, _pods.Where(p => Namespace(p) == ns)), _resourceVersion));
                    return;
                case ["api", "v1", "namespaces", var ns, "pods", var name]:
                    await WriteOne(ctx, FindPod(ns, name), "pods", name);
                    return;
                case ["api", "v1", "namespaces", var ns, "pods", var name, "log"]:
                    await Logs(ctx, ns, name);
                    return;
                case ["api", "v1", "namespaces", var ns, "pods", var name, "exec"]:
                    if (role != "admin")
                    {
                        await Write(ctx, 403, ApiObjects.Status(403, "Forbidden",
                            $"pods \"{name}\" is forbidden: User \"system:serviceaccount:default:{role}\" cannot create resource \"pods/exec\" in API group \"\" in the namespace \"{ns}\"", name, "pods"));
                        return;
                    }

                    await Exec(ctx, ns, name);
                    return;
                default:
                    await Write(ctx, 404, ApiObjects.Status(404, "NotFound", "the server could not find the requested resource"));
                    return;
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private string? Authenticate(HttpContext ctx)
    {
        string header = ctx.Request.Headers.Authorization.ToString();
        return header.StartsWith("Bearer ", StringComparison.Ordinal) && _scenario.Tokens.TryGetValue(header[7..].Trim(), out string? role) ? role : null;
    }

    private static JsonObject CoreResources()
    {
        JsonObject R(string name, string kind, bool namespaced, params string[] verbs) => new()
        {
            ["name"] = name,
            ["singularName"] = name.Contains('/') ? string.Empty : kind.ToLowerInvariant(),
            ["namespaced"] = namespaced,
            ["kind"] = kind,
            ["verbs"] = new JsonArray(verbs.Select(v => (JsonNode)v).ToArray()),
        };
        return new JsonObject
        {
            ["kind"] = "APIResourceList",
            ["groupVersion"] = "v1",
            ["resources"] = new JsonArray(
                R("namespaces", "Namespace", false, "get", "list"),
                R("nodes", "Node", false, "get", "list"),
                R("pods", "Pod", true, "get", "list"),
                R("pods/exec", "PodExecOptions", true, "create", "get"),
                R("pods/log", "Pod", true, "get")),
        };
    }

    private static string Name(JsonObject o) => o["metadata"]!["name"]!.GetValue<string>();

    private static string? Namespace(JsonObject o) => o["metadata"]!["namespace"]?.GetValue<string>();

    private JsonObject? FindPod(string ns, string name) => _pods.FirstOrDefault(p => Namespace(p) == ns && Name(p) == name);

    /// <summary>labelSelector (a=b, a!=b, a, !a) and fieldSelector (metadata.name, metadata.namespace, spec.nodeName).</summary>
    private static IEnumerable<JsonObject> Filter(HttpContext ctx, IEnumerable<JsonObject> items)
    {
        string labels = ctx.Request.Query["labelSelector"].ToString();
        string fields = ctx.Request.Query["fieldSelector"].ToString();
        foreach (JsonObject o in items)
        {
            if (Matches(labels, key => o["metadata"]?["labels"]?[key]?.GetValue<string>())
                && Matches(fields, key => key switch
                {
                    "metadata.name" => Name(o),
                    "metadata.namespace" => Namespace(o),
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

    private static Task WriteOne(HttpContext ctx, JsonObject? o, string kind, string name) => o is null
        ? Write(ctx, 404, ApiObjects.Status(404, "NotFound", $"{kind} \"{name}\" not found", name, kind))
        : Write(ctx, 200, o);

    private static async Task Write(HttpContext ctx, int code, JsonNode body)
    {
        ctx.Response.StatusCode = code;
        ctx.Response.ContentType = "application/json";
        await ctx.Response.WriteAsync(body.ToJsonString(), ctx.RequestAborted);
    }

    private async Task Logs(HttpContext ctx, string ns, string name)
    {
        JsonObject? pod = FindPod(ns, name);
        if (pod is null)
        {
            await WriteOne(ctx, null, "pods", name);
            return;
        }

        string node = pod["spec"]!["nodeName"]!.GetValue<string>();
        string[] lines = _nodes[node].Spec.Log.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        if (int.TryParse(ctx.Request.Query["tailLines"], out int tail) && tail >= 0)
        {
            lines = lines.TakeLast(tail).ToArray();
        }

        ctx.Response.ContentType = "text/plain";
        await ctx.Response.WriteAsync(lines.Length == 0 ? string.Empty : string.Join('\n', lines) + "\n", ctx.RequestAborted);
    }

    private async Task Exec(HttpContext ctx, string ns, string name)
    {
        JsonObject? pod = FindPod(ns, name);
        if (pod is null)
        {
            await WriteOne(ctx, null, "pods", name);
            return;
        }

        string[] command = ctx.Request.Query["command"].Where(c => c is not null).Select(c => c!).ToArray();
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

        using WebSocket ws = await ctx.WebSockets.AcceptWebSocketAsync(protocol);
        SimulatedNode node = _nodes[pod["spec"]!["nodeName"]!.GetValue<string>()];
        if (node.Spec.ExecDelayMilliseconds > 0)
        {
            await Task.Delay(node.Spec.ExecDelayMilliseconds, ctx.RequestAborted);
        }

        var psi = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        IReadOnlyList<string> argv = node.Wrap(command);
        psi.FileName = argv[0];
        foreach (string a in argv.Skip(1))
        {
            psi.ArgumentList.Add(a);
        }

        using Process process = Process.Start(psi)!;
        process.StandardInput.Close();
        using var abort = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted);
        var sendLock = new SemaphoreSlim(1, 1);

        async Task Send(byte channel, ReadOnlyMemory<byte> data)
        {
            byte[] frame = new byte[data.Length + 1];
            frame[0] = channel;
            data.CopyTo(frame.AsMemory(1));
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
        async Task Pump(Stream source, byte channel)
        {
            byte[] buffer = new byte[32 * 1024];
            int n;
            while ((n = await source.ReadAsync(buffer, abort.Token)) > 0)
            {
                if (channel == 1 && node.Spec.ExecDiesAfterBytes is long limit && sent + n > limit)
                {
                    // Fault knob: the connection drops mid-stream, as when the kubelet or a proxy dies.
                    await Send(channel, buffer.AsMemory(0, (int)Math.Max(0, limit - sent)));
                    ws.Abort();
                    abort.Cancel();
                    process.Kill(entireProcessTree: true);
                    return;
                }

                sent += channel == 1 ? n : 0;
                await Send(channel, buffer.AsMemory(0, n));
            }
        }

        // The client going away (Ctrl+C) ends the command: no exec is left behind.
        Task watch = Task.Run(async () =>
        {
            byte[] b = new byte[1024];
            try
            {
                while (ws.State == WebSocketState.Open)
                {
                    WebSocketReceiveResult r = await ws.ReceiveAsync(b, abort.Token);
                    if (r.MessageType == WebSocketMessageType.Close)
                    {
                        break;
                    }
                }
            }
            catch (Exception) when (!abort.IsCancellationRequested)
            {
            }

            if (!process.HasExited)
            {
                abort.Cancel();
                try
                {
                    process.Kill(entireProcessTree: true);
                }
                catch (InvalidOperationException)
                {
                }
            }
        });

        try
        {
            await Task.WhenAll(Pump(process.StandardOutput.BaseStream, 1), Pump(process.StandardError.BaseStream, 2));
            await process.WaitForExitAsync(abort.Token);
            JsonObject status = process.ExitCode == 0
                ? new JsonObject { ["metadata"] = new JsonObject(), ["status"] = "Success" }
                : new JsonObject
                {
                    ["metadata"] = new JsonObject(),
                    ["status"] = "Failure",
                    ["message"] = $"command terminated with non-zero exit code: error executing command [{string.Join(' ', command)}], exit code {process.ExitCode}",
                    ["reason"] = "NonZeroExitCode",
                    ["details"] = new JsonObject { ["causes"] = new JsonArray(new JsonObject { ["reason"] = "ExitCode", ["message"] = process.ExitCode.ToString(System.Globalization.CultureInfo.InvariantCulture) }) },
                };
            await Send(3, Encoding.UTF8.GetBytes(status.ToJsonString()));
            await ws.CloseAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
        }
        catch (Exception) when (abort.IsCancellationRequested || ws.State != WebSocketState.Open)
        {
            // The client left; the command was killed.
        }
    }

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
