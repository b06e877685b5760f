using System.Net;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using CalicoBpf.Cluster;
using CalicoBpf.Transport;
using k8s;
using k8s.Autorest;
using k8s.Models;

namespace CalicoBpf.Adapters;

/// <summary>The Kubernetes API through KubernetesClient (loaded in CalicoBpf's private load context).</summary>
public sealed class KubernetesAdapter : IClusterAdapter
{
    public IClusterConnection Connect(string? kubeconfig, string? context, TimeSpan requestTimeout)
    {
        KubernetesClientConfiguration config;
        try
        {
            config = kubeconfig is not null
                ? KubernetesClientConfiguration.BuildConfigFromConfigFile(kubeconfig, context)
                : KubernetesClientConfiguration.IsInCluster()
                    ? KubernetesClientConfiguration.InClusterConfig()
                    : throw new ClusterException("No kubeconfig was found (-Kubeconfig, $KUBECONFIG, ~/.kube/config) and this is not a pod: there is no cluster to talk to.");
        }
        catch (Exception ex) when (ex is not ClusterException)
        {
            throw new ClusterException($"The kubeconfig {kubeconfig} cannot be used{(context is null ? string.Empty : $" with context {context}")}: {ex.Message}", null, ex);
        }

        // Every REST call ends after the request timeout: the client cancels it, and Call tells that from Ctrl+C by the caller's token.
        config.HttpClientTimeout = requestTimeout;
        return new Connection(new Kubernetes(config), config.CurrentContext ?? context ?? "in-cluster", requestTimeout);
    }

    /// <summary>The error of a request the cluster did not answer within the timeout.</summary>
    internal static ClusterException TimedOut(string what, TimeSpan timeout, Exception? inner) =>
        new($"The cluster did not answer within {timeout.TotalSeconds:0.#} s to {what}; it may be overloaded or unreachable. Try again, or allow more time with -TimeoutSec.", null, inner)
        {
            TimedOut = true,
        };

    private sealed class Connection : IClusterConnection
    {
        private readonly Kubernetes _client;
        private readonly TimeSpan _timeout;

        public Connection(Kubernetes client, string context, TimeSpan timeout)
        {
            _client = client;
            _timeout = timeout;
            Context = context;
        }

        public string Context { get; }

        public IReadOnlyList<CalicoNode> ListNodes(CancellationToken cancellationToken)
        {
            V1NodeList nodes = Call(() => _client.CoreV1.ListNodeAsync(cancellationToken: cancellationToken), "list nodes", cancellationToken);
            V1PodList pods = Call(() => _client.CoreV1.ListPodForAllNamespacesAsync(labelSelector: "k8s-app=calico-node", cancellationToken: cancellationToken), "list calico-node pods", cancellationToken);
            var podByNode = new Dictionary<string, V1Pod>(StringComparer.Ordinal);
            foreach (V1Pod p in pods.Items.Where(p => p.Spec?.NodeName is not null))
            {
                // Prefer a running pod when a node has several (a rollout in progress).
                if (!podByNode.TryGetValue(p.Spec.NodeName, out V1Pod? existing) || (existing.Status?.Phase != "Running" && p.Status?.Phase == "Running"))
                {
                    podByNode[p.Spec.NodeName] = p;
                }
            }

            return nodes.Items.Select(n =>
            {
                podByNode.TryGetValue(n.Metadata.Name, out V1Pod? pod);
                string image = pod?.Spec?.Containers?.FirstOrDefault(c => c.Name == "calico-node")?.Image ?? string.Empty;
                string named = image.Contains('@', StringComparison.Ordinal) ? image[..image.IndexOf('@', StringComparison.Ordinal)] : image;
                int colon = named.LastIndexOf(':');
                return new CalicoNode
                {
                    Node = n.Metadata.Name,
                    Pod = pod?.Metadata?.Name ?? string.Empty,
                    Namespace = pod?.Metadata?.NamespaceProperty ?? string.Empty,
                    PodReady = pod?.Status?.ContainerStatuses?.FirstOrDefault(c => c.Name == "calico-node")?.Ready ?? false,
                    NodeReady = n.Status?.Conditions?.Any(c => c.Type == "Ready" && c.Status == "True") ?? false,
                    KernelVersion = n.Status?.NodeInfo?.KernelVersion ?? string.Empty,
                    OsImage = n.Status?.NodeInfo?.OsImage ?? string.Empty,
                    ProviderId = n.Spec?.ProviderID ?? string.Empty,
                    InternalIP = n.Status?.Addresses?.FirstOrDefault(a => a.Type == "InternalIP")?.Address ?? string.Empty,
                    CalicoVersion = colon > named.LastIndexOf('/') && colon >= 0 ? named[(colon + 1)..] : string.Empty,
                    Image = image,
                    OperatorManaged = pod?.Metadata?.NamespaceProperty == "calico-system",
                    Context = Context,
                    Labels = new ValueMap(new Dictionary<string, string>(n.Metadata.Labels ?? new Dictionary<string, string>(), StringComparer.Ordinal)),
                };
            }).OrderBy(n => n.Node, StringComparer.Ordinal).ToList();
        }

        public WorkloadIndex LoadWorkloads(CancellationToken cancellationToken)
        {
            V1PodList pods = Call(() => _client.CoreV1.ListPodForAllNamespacesAsync(cancellationToken: cancellationToken), "list pods", cancellationToken);
            V1ServiceList services = Call(() => _client.CoreV1.ListServiceForAllNamespacesAsync(cancellationToken: cancellationToken), "list services", cancellationToken);
            static IPAddress[] Addresses(IEnumerable<string?>? texts) =>
                (texts ?? Enumerable.Empty<string?>()).Select(t => IPAddress.TryParse(t, out IPAddress? a) ? a : null).OfType<IPAddress>().Distinct().ToArray();
            return new WorkloadIndex(
                pods.Items
                    .Where(p => p.Spec?.HostNetwork != true && p.Status?.Phase is "Running" or "Pending")
                    .Select(p => new WorkloadPod(p.Metadata.NamespaceProperty, p.Metadata.Name,
                        Addresses((p.Status?.PodIPs?.Select(i => i.Ip) ?? Enumerable.Empty<string>()).Append(p.Status?.PodIP)), p.Spec?.NodeName ?? string.Empty)),
                services.Items.Select(s => new WorkloadService(s.Metadata.NamespaceProperty, s.Metadata.Name,
                    Addresses((s.Spec?.ClusterIPs ?? Array.Empty<string>()).Append(s.Spec?.ClusterIP)
                        .Concat(s.Spec?.ExternalIPs ?? Array.Empty<string>())
                        .Concat(s.Status?.LoadBalancer?.Ingress?.Select(i => i.Ip) ?? Enumerable.Empty<string>())),
                    (s.Spec?.Ports ?? Array.Empty<V1ServicePort>()).Select(p => new ServicePortSpec(
                        Enum.TryParse(p.Protocol, true, out CalicoBpf.IpProtocol proto) ? proto : CalicoBpf.IpProtocol.Tcp, p.Port, p.NodePort ?? 0)).ToArray())));
        }

        public IReadOnlyCollection<string> ServedGroupVersions(CancellationToken cancellationToken)
        {
            V1APIGroupList groups = Call(() => _client.Apis.GetAPIVersionsAsync(cancellationToken), "list the API groups", cancellationToken);
            var served = new HashSet<string>(StringComparer.Ordinal) { "v1" };
            foreach (V1APIGroup g in groups.Groups ?? new List<V1APIGroup>())
            {
                foreach (V1GroupVersionForDiscovery v in g.Versions ?? new List<V1GroupVersionForDiscovery>())
                {
                    served.Add(v.GroupVersion);
                }
            }

            return served;
        }

        public System.Text.Json.Nodes.JsonObject? GetResource(ResourceRef r, string name, CancellationToken cancellationToken)
        {
            try
            {
                return Node(Call(async () => r.Group.Length == 0 ? await CoreGet(r, name, cancellationToken) : r.Namespace is null
                    ? await _client.CustomObjects.GetClusterCustomObjectAsync(r.Group, r.Version, r.Plural, name, cancellationToken)
                    : await _client.CustomObjects.GetNamespacedCustomObjectAsync(r.Group, r.Version, r.Namespace, r.Plural, name, cancellationToken), $"get {r} {name}", cancellationToken));
            }
            catch (ClusterException ex) when (ex.StatusCode == 404)
            {
                return null;
            }
        }

        public IReadOnlyList<System.Text.Json.Nodes.JsonObject> ListResources(ResourceRef r, CancellationToken cancellationToken)
        {
            object o = r.Group.Length == 0 ? CoreList(r, cancellationToken) : Call(() => r.Namespace is null
                ? _client.CustomObjects.ListClusterCustomObjectAsync(r.Group, r.Version, r.Plural, cancellationToken: cancellationToken)
                : _client.CustomObjects.ListNamespacedCustomObjectAsync(r.Group, r.Version, r.Namespace, r.Plural, cancellationToken: cancellationToken), $"list {r}", cancellationToken);
            return (Node(o)["items"] as System.Text.Json.Nodes.JsonArray ?? new System.Text.Json.Nodes.JsonArray())
                .OfType<System.Text.Json.Nodes.JsonObject>().Select(i => (System.Text.Json.Nodes.JsonObject)i.DeepClone()).ToList();
        }

        public System.Text.Json.Nodes.JsonObject PatchResource(ResourceRef r, string name, string mergePatch, bool dryRun, CancellationToken cancellationToken)
        {
            var patch = new V1Patch(mergePatch, V1Patch.PatchType.MergePatch);
            string? dry = dryRun ? "All" : null;
            return Node(Call(() => r.Namespace is null
                ? _client.CustomObjects.PatchClusterCustomObjectAsync(patch, r.Group, r.Version, r.Plural, name, dry, cancellationToken: cancellationToken)
                : _client.CustomObjects.PatchNamespacedCustomObjectAsync(patch, r.Group, r.Version, r.Namespace, r.Plural, name, dry, cancellationToken: cancellationToken), $"patch {r} {name}", cancellationToken));
        }

        public System.Text.Json.Nodes.JsonObject CreateResource(ResourceRef r, System.Text.Json.Nodes.JsonObject body, bool dryRun, CancellationToken cancellationToken)
        {
            string? dry = dryRun ? "All" : null;
            object payload = JsonSerializer.Deserialize<JsonElement>(body.ToJsonString());
            return Node(Call(() => r.Namespace is null
                ? _client.CustomObjects.CreateClusterCustomObjectAsync(payload, r.Group, r.Version, r.Plural, dry, cancellationToken: cancellationToken)
                : _client.CustomObjects.CreateNamespacedCustomObjectAsync(payload, r.Group, r.Version, r.Namespace, r.Plural, dry, cancellationToken: cancellationToken), $"create {r} {body["metadata"]?["name"]}", cancellationToken));
        }

        public void DeleteResource(ResourceRef r, string name, CancellationToken cancellationToken)
        {
            try
            {
                Call(() => r.Namespace is null
                    ? _client.CustomObjects.DeleteClusterCustomObjectAsync(r.Group, r.Version, r.Plural, name, cancellationToken: cancellationToken)
                    : _client.CustomObjects.DeleteNamespacedCustomObjectAsync(r.Group, r.Version, r.Namespace, r.Plural, name, cancellationToken: cancellationToken), $"delete {r} {name}", cancellationToken);
            }
            catch (ClusterException ex) when (ex.StatusCode == 404)
            {
                // Gone already.
            }
        }

        /// <summary>The core group (/api/v1) through the typed client: the custom-object paths are /apis/GROUP only.</summary>
        private async Task<object> CoreGet(ResourceRef r, string name, CancellationToken ct) => r.Plural switch
        {
            "configmaps" => await _client.CoreV1.ReadNamespacedConfigMapAsync(name, r.Namespace, cancellationToken: ct),
            "services" => await _client.CoreV1.ReadNamespacedServiceAsync(name, r.Namespace, cancellationToken: ct),
            "pods" => await _client.CoreV1.ReadNamespacedPodAsync(name, r.Namespace, cancellationToken: ct),
            "namespaces" => await _client.CoreV1.ReadNamespaceAsync(name, cancellationToken: ct),
            _ => throw new NotSupportedException($"CalicoBpf does not read core {r.Plural}."),
        };

        private object CoreList(ResourceRef r, CancellationToken ct) => Call<object>(async () => r.Plural switch
        {
            "configmaps" => r.Namespace is null ? await _client.CoreV1.ListConfigMapForAllNamespacesAsync(cancellationToken: ct) : await _client.CoreV1.ListNamespacedConfigMapAsync(r.Namespace, cancellationToken: ct),
            "services" => r.Namespace is null ? await _client.CoreV1.ListServiceForAllNamespacesAsync(cancellationToken: ct) : await _client.CoreV1.ListNamespacedServiceAsync(r.Namespace, cancellationToken: ct),
            "pods" => r.Namespace is null ? await _client.CoreV1.ListPodForAllNamespacesAsync(cancellationToken: ct) : await _client.CoreV1.ListNamespacedPodAsync(r.Namespace, cancellationToken: ct),
            _ => throw new NotSupportedException($"CalicoBpf does not list core {r.Plural}."),
        }, $"list {r}", ct);

        public string ReadLog(CalicoNode node, int tailLines, CancellationToken cancellationToken)
        {
            string what = $"read the log of {node.Namespace}/{node.Pod}";
            using Stream log = Call(() => _client.CoreV1.ReadNamespacedPodLogAsync(node.Pod, node.Namespace, container: "calico-node", tailLines: tailLines, cancellationToken: cancellationToken),
                what, cancellationToken);
            // The answer's headers came within the timeout; its body (a log streamed by the kubelet) gets the same again.
            using var body = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            body.CancelAfter(_timeout);
            try
            {
                return new StreamReader(log, Encoding.UTF8).ReadToEndAsync(body.Token).GetAwaiter().GetResult();
            }
            catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
            {
                throw TimedOut(what, _timeout, ex);
            }
        }

        private static System.Text.Json.Nodes.JsonObject Node(object o) => o switch
        {
            JsonElement e => System.Text.Json.Nodes.JsonNode.Parse(e.GetRawText()) as System.Text.Json.Nodes.JsonObject,
            _ => System.Text.Json.Nodes.JsonNode.Parse(KubernetesJson.Serialize(o)) as System.Text.Json.Nodes.JsonObject,
        } ?? throw new ClusterException("The API server answered with something other than an object.");

        public ICommandRunner ExecRunner(CalicoNode node) => node.HasCalicoNode
            ? new ExecRunner(_client, node, _timeout)
            : throw new ClusterException($"Node {node.Node} runs no calico-node pod: there is no Calico dataplane to read there.");

        /// <summary>Attempts of a call the API throttles (429 with Retry-After) before its error is the answer.</summary>
        private const int ThrottledAttempts = 4;

        private T Call<T>(Func<Task<T>> call, string what, CancellationToken cancellationToken)
        {
            for (int attempt = 1; ; attempt++)
            {
                try
                {
                    return call().GetAwaiter().GetResult();
                }
                catch (HttpOperationException ex) when ((int)ex.Response.StatusCode == 429 && attempt < ThrottledAttempts && RetryAfter(ex) is TimeSpan wait)
                {
                    // API priority and fairness: wait as the server asks (at most 10 s), then ask again.
                    Thread.Sleep(wait);
                }
                catch (HttpOperationException ex)
                {
                    string retry = (int)ex.Response.StatusCode == 429 ? $" (still throttled after {attempt} attempts)" : string.Empty;
                    throw new ClusterException($"The cluster refused to {what}: {(int)ex.Response.StatusCode} {StatusMessage(ex.Response.Content)}{retry}", (int)ex.Response.StatusCode, ex);
                }
                catch (HttpRequestException ex)
                {
                    throw new ClusterException($"The cluster cannot be reached to {what}: {ex.Message}", null, ex);
                }
                catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
                {
                    // Not the pipeline's cancellation: the client's request timeout ended the call.
                    throw TimedOut(what, _timeout, ex);
                }
            }
        }

        /// <summary>The Retry-After of a throttled answer (seconds), capped at 10 s; null when it has none.</summary>
        private static TimeSpan? RetryAfter(HttpOperationException ex) =>
            ex.Response.Headers is { } headers && headers.TryGetValue("Retry-After", out IEnumerable<string>? values)
                && int.TryParse(values.FirstOrDefault(), out int seconds) && seconds >= 0
                ? TimeSpan.FromSeconds(Math.Min(seconds, 10))
                : null;
    }

    internal static string StatusMessage(string? body)
    {
        try
        {
            using JsonDocument doc = JsonDocument.Parse(body ?? string.Empty);
            return doc.RootElement.TryGetProperty("message", out JsonElement m) ? m.GetString() ?? string.Empty : body ?? string.Empty;
        }
        catch (JsonException)
        {
            return body ?? string.Empty;
        }
    }

    /// <summary>pods/exec into the calico-node container; stdout streams as it arrives.</summary>
    private sealed class ExecRunner : ICommandRunner
    {
        private readonly Kubernetes _client;
        private readonly CalicoNode _node;
        private readonly TimeSpan _timeout;

        public ExecRunner(Kubernetes client, CalicoNode node, TimeSpan timeout)
        {
            _client = client;
            _node = node;
            _timeout = timeout;
        }

        public string Node => _node.Node;

        public ICommandRun Start(IReadOnlyList<string> argv, CancellationToken cancellationToken, ReadOnlyMemory<byte> standardInput = default)
        {
            WebSocket socket;
            // The WebSocket upgrade gets the request timeout; the token is not used once it is open.
            using var connect = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            connect.CancelAfter(_timeout);
            try
            {
                // v4, which every API server since 1.4 speaks (v5, 1.30+, could end stdin; the client offers one
                // subprotocol per connection, so asking for v5 would fail on older servers): a script fed through
                // stdin is told how much to read. stdin is always open: a command with nothing to read runs
                // behind a lifeline that ends it when the session (and so its stdin) ends, since a kubelet
                // does not. (MuxedStreamNamespacedPodExecAsync drops its stdin argument: the socket is opened here.)
                IReadOnlyList<string> command = standardInput.IsEmpty ? ExecLifeline.Wrap(argv) : argv;
                socket = _client.WebSocketNamespacedPodExecAsync(_node.Pod, _node.Namespace, command.ToArray(), "calico-node",
                    stderr: true, stdin: true, stdout: true, tty: false,
                    webSocketSubProtocol: WebSocketProtocol.V4BinaryWebsocketProtocol, cancellationToken: connect.Token).GetAwaiter().GetResult();
            }
            catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
            {
                throw TimedOut($"start a command in {_node.Namespace}/{_node.Pod} on {_node.Node}", _timeout, ex);
            }
            catch (HttpOperationException ex)
            {
                throw new ClusterException($"The cluster refused exec into {_node.Namespace}/{_node.Pod} on {_node.Node}: {(int)ex.Response.StatusCode} {StatusMessage(ex.Response.Content)}", (int)ex.Response.StatusCode, ex);
            }
            catch (WebSocketException ex)
            {
                // The WebSocket upgrade hides the Status body: say what a 403 or 401 means here.
                int? code = ex.Message.Contains("'403'", StringComparison.Ordinal) ? 403 : ex.Message.Contains("'401'", StringComparison.Ordinal) ? 401
                    : ex.Message.Contains("'404'", StringComparison.Ordinal) ? 404 : ex.Message.Contains("'414'", StringComparison.Ordinal) ? 414 : null;
                string what = code switch
                {
                    403 => $"the cluster refused exec into {_node.Namespace}/{_node.Pod} on {_node.Node} (403 Forbidden): the identity in use cannot create resource \"pods/exec\" in the namespace \"{_node.Namespace}\" (the calicobpf-operator role of deploy/calicobpf-rbac.yaml has it)",
                    401 => $"the cluster refused exec into {_node.Namespace}/{_node.Pod} on {_node.Node} (401 Unauthorized): the credentials were not accepted",
                    404 => $"the calico-node pod {_node.Namespace}/{_node.Pod} of {_node.Node} is gone (404 Not Found): the node or its pod went away since the nodes were listed; Get-CalicoNode shows the cluster as it is now",
                    414 => $"the cluster, or a proxy in front of it, refused exec into {_node.Namespace}/{_node.Pod} on {_node.Node} (414 URI Too Long): the command ({argv.Sum(a => a.Length)} characters) travels in the request's URL, which front-ends cap at 8 to 16 KB",
                    _ => $"exec into {_node.Namespace}/{_node.Pod} on {_node.Node} failed: {ex.Message}",
                };
                throw new ClusterException(what, code, ex);
            }

            return new Run(_node.Node, $"{_node.Namespace}/{_node.Pod}", argv, socket, _timeout, standardInput, cancellationToken);
        }
    }

    private sealed class Run : ICommandRun
    {
        private readonly string _node;
        private readonly IReadOnlyList<string> _argv;
        private readonly ExecChannels _channels;
        private readonly CancellationTokenRegistration _cancel;
        private readonly string _pod;
        private readonly CancellationToken _ct;
        private readonly TimeSpan _timeout;
        private readonly Timer _watchdog;
        private long _waitingSince; // Environment.TickCount64 when a read of stdout or the status began to wait; 0: none waits
        private int _timedOut;

        /// <summary>The exit code reported when the exec connection ended without a Status.</summary>
        public const int NoExitStatus = -1;

        public Run(string node, string pod, IReadOnlyList<string> argv, WebSocket socket, TimeSpan timeout, ReadOnlyMemory<byte> standardInput, CancellationToken ct)
        {
            _node = node;
            _pod = pod;
            _ct = ct;
            _argv = argv;
            _timeout = timeout;
            // The session is read on the consumer's thread, from the socket, as stdout is read (ExecChannels):
            // nothing runs or buffers for it in between, so a slow consumer slows the node, not our memory.
            // A read that ends because the watchdog closed the session throws the timeout error.
            _channels = new ExecChannels(socket, waiting => Volatile.Write(ref _waitingSince, waiting ? Environment.TickCount64 : 0), () =>
            {
                if (Volatile.Read(ref _timedOut) != 0 && !_ct.IsCancellationRequested)
                {
                    throw Silent(null);
                }
            });
            StandardOutput = _channels.StandardOutput;
            // A node that sends nothing while we wait for it, for longer than the request timeout, is
            // given up: the session is closed (its read ends) and the node's error says so. Time spent
            // by a slow consumer between reads does not count.
            TimeSpan period = TimeSpan.FromMilliseconds(Math.Clamp(timeout.TotalMilliseconds / 4, 50, 1000));
            _watchdog = new Timer(_ => Watch(), null, period, period);
            // Ctrl+C closes the exec session: the command on the node ends with it.
            _cancel = ct.Register(() => _channels.Abort());
            if (!standardInput.IsEmpty)
            {
                // Sent while stdout is read: the command may answer before it has read it all. Nothing waits
                // for the sending; its failures end in SendInput (the command's output and status tell the story).
                _ = Task.Run(() => SendInput(_channels, standardInput));
            }
        }

        /// <summary>Sends stdin in frames of <see cref="InputFrame"/> bytes.</summary>
        private const int InputFrame = 32 * 1024;

        private static async Task SendInput(ExecChannels channels, ReadOnlyMemory<byte> input)
        {
            try
            {
                await channels.SendInput(input, InputFrame, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is WebSocketException or ObjectDisposedException or OperationCanceledException or IOException)
            {
                // The command ended (or the session closed) before taking it all: its output and status tell what happened.
            }
        }

        public Stream StandardOutput { get; }

        private void Watch()
        {
            long since = Volatile.Read(ref _waitingSince);
            if (since != 0 && Environment.TickCount64 - since > (long)_timeout.TotalMilliseconds && Interlocked.Exchange(ref _timedOut, 1) == 0)
            {
                _channels.Abort();
            }
        }

        private ClusterException Silent(Exception? inner) =>
            TimedOut($"run {string.Join(' ', _argv.Take(3))} on {_node}: the command sent nothing for longer than that, so its session was closed", _timeout, inner);

        public void Complete()
        {
            _channels.ReadToEnd();
            string status = Encoding.UTF8.GetString(_channels.Status);
            string stderr = Encoding.UTF8.GetString(_channels.StandardError);
            _ct.ThrowIfCancellationRequested();
            if (Volatile.Read(ref _timedOut) != 0)
            {
                throw Silent(null);
            }

            if (string.IsNullOrWhiteSpace(status))
            {
                // v4 and v5 always end a finished command with a Status on the error channel: without
                // one the connection dropped (kubelet, proxy, network) and the output may be cut short.
                throw new NodeCommandException(_node, _argv, NoExitStatus,
                    $"the exec connection to {_pod} closed before the command finished (no exit status came back), so its output is incomplete; run the command again");
            }

            int exit = ExitCode(status);
            if (exit == MissingExecutable)
            {
                // The container runtime found no such program: no process started, so there is no exit code.
                throw new NodeCommandException(_node, _argv, 127,
                    $"{_argv[0]} is not in the calico-node container of {_pod} ({KubernetesAdapter.StatusMessage(status)}); the calico-node image of this Calico release does not carry it");
            }

            if (exit != 0)
            {
                throw new NodeCommandException(_node, _argv, exit, stderr.Length > 0 ? stderr : KubernetesAdapter.StatusMessage(status));
            }
        }

        /// <summary><see cref="ExitCode"/> of a program the container does not have (an InternalError Status, no exit code).</summary>
        internal const int MissingExecutable = -127;

        /// <summary>
        /// The exit code in the error channel's Status: 0 for Success, the ExitCode cause otherwise;
        /// <see cref="MissingExecutable"/> when the runtime could not find the program (containerd:
        /// "executable file not found in $PATH", or a path that does not exist), 126 for other failures.
        /// </summary>
        internal static int ExitCode(string status)
        {
            using JsonDocument doc = JsonDocument.Parse(status);
            JsonElement root = doc.RootElement;
            if (root.TryGetProperty("status", out JsonElement s) && s.GetString() == "Success")
            {
                return 0;
            }

            if (root.TryGetProperty("reason", out JsonElement reason) && reason.GetString() == "InternalError"
                && root.TryGetProperty("message", out JsonElement m) && m.GetString() is string message
                && (message.Contains("executable file not found", StringComparison.Ordinal) || message.Contains("no such file or directory", StringComparison.Ordinal)))
            {
                return MissingExecutable;
            }

            if (root.TryGetProperty("details", out JsonElement d) && d.TryGetProperty("causes", out JsonElement causes))
            {
                foreach (JsonElement c in causes.EnumerateArray())
                {
                    if (c.TryGetProperty("reason", out JsonElement r) && r.GetString() == "ExitCode"
                        && int.TryParse(c.GetProperty("message").GetString(), out int code))
                    {
                        return code;
                    }
                }
            }

            return 126;
        }

        public void Dispose()
        {
            _watchdog.Dispose();
            _cancel.Dispose();
            _channels.Dispose();
        }
    }
}
