using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
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
/// This file starts and stops it; the partial files hold one concern each: .Routing (paths, verbs,
/// bodies), .Discovery (API groups, resources, OpenAPI), .Rbac (authentication, authorization,
/// access reviews), .Watch, .Logs, .Exec and .ExecProcess (pods/exec, the command in the node),
/// .Replay (replayed and recorded nodes), .Faults (the scenario's fault knobs), .Debug (what tests
/// read that no real API server has); selectors are <see cref="Selectors"/>.
/// </summary>
public sealed partial class ApiServer : IAsyncDisposable
{
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

    /// <summary>
    /// The longest request line served (method, URL, version): a proxy or API front-end in front of a real
    /// API server caps it (nginx's large_client_header_buffers: 8 KB by default, answered 414). Commands
    /// of pods/exec travel in the URL, so what the module sends must fit.
    /// </summary>
    public const int DefaultMaxRequestLineBytes = 8 * 1024;

    /// <summary>
    /// Creates the scenario's nodes (namespaces, bpffs mounts, maps, calico-node containers) and
    /// serves the API for them. A start that fails removes what it had created; a started server
    /// removes it when disposed. <see cref="TestClusterHost"/> is the entry tests use.
    /// </summary>
    /// <param name="maxRequestLineBytes">The longest request line served; longer ones are refused with 414 URI Too Long.</param>
    /// <param name="runId">Names what the nodes create (network namespace cbk-RUNID-NODE, /tmp/cbk-RUNID-NODE); this process's id in hex by default.</param>
    public static async Task<ApiServer> StartAsync(ClusterScenario scenario, int port = 0, int maxRequestLineBytes = DefaultMaxRequestLineBytes, string? runId = null)
    {
        runId ??= Environment.ProcessId.ToString("x", CultureInfo.InvariantCulture);
        Dictionary<string, ReplayedNode> replayed = ReplayedNode.ForScenario(scenario);
        var nodes = new Dictionary<string, SimulatedNode>();
        WebApplication? app = null;
        try
        {
            foreach (ClusterScenario.NodeSpec n in scenario.Nodes.Where(n => !replayed.ContainsKey(n.Name)))
            {
                nodes[n.Name] = SimulatedNode.Create(n, runId, scenario.ProgramServices ? dp => FelixProxy.Program(dp, scenario, n) : null, scenario.AttachPrograms);
            }

            // HTTPS with a certificate of its own, as a real API server: clients only send tokens over TLS.
            X509Certificate2 certificate = CreateCertificate();
            app = Build(certificate, port, maxRequestLineBytes);
            var server = new ApiServer(scenario, nodes, app) { CertificatePem = certificate.ExportCertificatePem(), Replayed = replayed };
            app.UseWebSockets();
            app.Run(server.HandleAsync);
            await app.StartAsync();
            server.Url = app.Urls.First().Replace("[::1]", "127.0.0.1", StringComparison.Ordinal);
            return server;
        }
        catch
        {
            if (app is not null)
            {
                await app.DisposeAsync();
            }

            foreach (SimulatedNode n in nodes.Values)
            {
                n.Dispose();
            }

            throw;
        }
    }

    private static WebApplication Build(X509Certificate2 certificate, int port, int maxRequestLineBytes)
    {
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
        return builder.Build();
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
