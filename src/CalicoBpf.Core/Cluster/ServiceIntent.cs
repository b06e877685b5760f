using CalicoBpf.Maps;
using System.Net.Sockets;

namespace CalicoBpf.Cluster;

/// <summary>One endpoint of a service port, as kube-proxy's EndpointSlice cache hands it to Felix.</summary>
/// <param name="Local">On the node the port is seen from (<see cref="ServiceIntent.OnNode"/>).</param>
/// <param name="NodeName">The endpoint's nodeName ("" when it has none).</param>
public sealed record IntentEndpoint(IPAddress Address, int Port, bool Ready, bool Terminating, bool Local, string NodeName = "")
{
    public override string ToString() => ConntrackText.HostPort(Address, Port);
}

/// <summary>
/// One port of a Service on one node, as Felix's kube-proxy replacement is given it (the ServicePort
/// and Endpoints of k8s.io/kubernetes/pkg/proxy): what <see cref="ServiceIntent.Frontends"/> turns
/// into the NAT entries Felix writes.
/// </summary>
public sealed record ServicePortState
{
    /// <summary>"namespace/name".</summary>
    public string Service { get; init; } = string.Empty;
    public string PortName { get; init; } = string.Empty;
    public IPAddress ClusterIP { get; init; } = IPAddress.None;
    public int Port { get; init; }
    public IpProtocol Protocol { get; init; } = IpProtocol.Tcp;
    public int NodePort { get; init; }
    public IReadOnlyList<IPAddress> ExternalIPs { get; init; } = Array.Empty<IPAddress>();
    /// <summary>status.loadBalancer.ingress IPs whose ipMode is VIP (or unset): the LoadBalancerVIPs of the proxy.</summary>
    public IReadOnlyList<IPAddress> LoadBalancerIPs { get; init; } = Array.Empty<IPAddress>();
    public IReadOnlyList<AddressPrefix> SourceRanges { get; init; } = Array.Empty<AddressPrefix>();
    /// <summary>internalTrafficPolicy Local.</summary>
    public bool InternalLocal { get; init; }
    /// <summary>externalTrafficPolicy Local on a service reachable from outside (NodePort, LoadBalancer, external IPs).</summary>
    public bool ExternalLocal { get; init; }
    /// <summary>sessionAffinity ClientIP: its timeout; 0 without affinity.</summary>
    public uint AffinitySeconds { get; init; }
    public IReadOnlyList<IntentEndpoint> Endpoints { get; init; } = Array.Empty<IntentEndpoint>();
    /// <summary>
    /// Why the node's backends may rightly be fewer than the ready endpoints (topology-aware routing,
    /// trafficDistribution, the API server's last-known-good backends), or null: they must be equal.
    /// </summary>
    public string? Filtered { get; init; }

    /// <summary>"namespace/name:port/TCP" (the port's name, or its number when it has none).</summary>
    public string Display => $"{Service}:{(PortName.Length > 0 ? PortName : Port.ToString(CultureInfo.InvariantCulture))}/{Protocol.ToString().ToUpperInvariant()}";

    public override string ToString() => Display;
}

/// <summary>A NAT frontend Felix writes for a service port.</summary>
/// <param name="Kind">ClusterIP, ExternalIP, LoadBalancer or NodePort.</param>
/// <param name="Source">The LoadBalancerSourceRanges CIDR of the entry, or null.</param>
/// <param name="Drop">The entry that drops clients outside the source ranges (count 0xffffffff).</param>
/// <param name="PolicyFlags">The traffic-policy flags (ExternalLocal, InternalLocal) of its value.</param>
public sealed record ExpectedFrontend(ServicePortState Of, string Kind, IPAddress Address, int Port, AddressPrefix? Source, bool Drop, NatFrontendFlags PolicyFlags)
{
    public string Frontend => ConntrackText.HostPort(Address, Port) + (Source is null ? string.Empty : " src " + Source);
}

/// <summary>
/// What Felix's eBPF kube-proxy replacement programs for the cluster's Services and EndpointSlices
/// on one node, read from felix/bpf/proxy at v3.28.5 to v3.32.1 (the rules below did not change):
/// <list type="bullet">
/// <item>syncer.go apply (v3.30.7 lines 599-680): each service port gets one id; its ClusterIP frontend
/// (updateService, writeSvc), then the load-balancer ingress IPs and external IPs (applyDerived) and
/// the node port on each of the node's addresses and on 255.255.255.255 (kube-proxy.go 126-131), all
/// with that id, count and local count. internalTrafficPolicy Local drops the wildcard node port
/// (syncer.go 654) and programs the other nodes' addresses instead (NodePortRemote, not expected here).</item>
/// <item>Only ready endpoints are backends (updateService: "only write Ready pods to backend"), the
/// node's own first (ordinals 0..local-1).</item>
/// <item>Flags: the ClusterIP frontend carries InternalLocal; node port and load-balancer frontends
/// ExternalLocal and InternalLocal (applyDerived 544-551); external-IP frontends neither.</item>
/// <item>LoadBalancerSourceRanges (writeLBSrcRangeSvcNATKeys): one frontend per range of the family,
/// and the plain key of the LB or external IP becomes a drop entry.</item>
/// </list>
/// </summary>
public static class ServiceIntent
{
    /// <summary>The wildcard node-port address Felix adds to the node's own (kube-proxy.go podNPIP).</summary>
    public static IPAddress Wildcard(AddressFamily family) => family == AddressFamily.InterNetworkV6
        ? new IPAddress(Enumerable.Repeat((byte)0xff, 16).ToArray())
        : IPAddress.Broadcast;

    /// <summary>The addresses Felix programs node ports on: the node's own of the family, then the wildcard (kube-proxy.go run).</summary>
    public static IReadOnlyList<IPAddress> NodePortAddresses(IEnumerable<IPAddress> hostAddresses, AddressFamily family) =>
        hostAddresses.Where(a => a.AddressFamily == family).Distinct().Append(Wildcard(family)).ToList();

    /// <summary>The backends Felix writes, in ordinal order: the node's ready endpoints, then the other ready ones.</summary>
    public static IReadOnlyList<IntentEndpoint> Backends(ServicePortState s) =>
        s.Endpoints.Where(e => e.Ready && e.Local).Concat(s.Endpoints.Where(e => e.Ready && !e.Local)).ToList();

    public static int LocalCount(ServicePortState s) => s.Endpoints.Count(e => e.Ready && e.Local);

    /// <summary>Every frontend Felix writes for one service port, given the node-port addresses (<see cref="NodePortAddresses"/>).</summary>
    public static IEnumerable<ExpectedFrontend> Frontends(ServicePortState s, IReadOnlyList<IPAddress> nodePortAddresses)
    {
        AddressFamily family = s.ClusterIP.AddressFamily;
        NatFrontendFlags internalFlag = s.InternalLocal ? NatFrontendFlags.InternalLocal : NatFrontendFlags.None;
        NatFrontendFlags derivedFlags = internalFlag | (s.ExternalLocal ? NatFrontendFlags.ExternalLocal : NatFrontendFlags.None);
        yield return new ExpectedFrontend(s, "ClusterIP", s.ClusterIP, s.Port, null, false, internalFlag);

        var ranges = s.SourceRanges.Where(r => r.Family == family).ToList();
        IEnumerable<ExpectedFrontend> External(string kind, IPAddress address, NatFrontendFlags flags)
        {
            if (s.SourceRanges.Count == 0)
            {
                yield return new ExpectedFrontend(s, kind, address, s.Port, null, false, flags);
                yield break;
            }

            foreach (AddressPrefix r in ranges)
            {
                yield return new ExpectedFrontend(s, kind, address, s.Port, r, false, flags);
            }

            yield return new ExpectedFrontend(s, kind, address, s.Port, null, true, NatFrontendFlags.None);
        }

        foreach (IPAddress lb in s.LoadBalancerIPs.Where(a => a.AddressFamily == family))
        {
            foreach (ExpectedFrontend f in External("LoadBalancer", lb, derivedFlags))
            {
                yield return f;
            }
        }

        foreach (IPAddress ext in s.ExternalIPs.Where(a => a.AddressFamily == family))
        {
            foreach (ExpectedFrontend f in External("ExternalIP", ext, NatFrontendFlags.None))
            {
                yield return f;
            }
        }

        if (s.NodePort == 0)
        {
            yield break;
        }

        IPAddress wildcard = Wildcard(family);
        foreach (IPAddress a in nodePortAddresses.Where(a => a.AddressFamily == family))
        {
            if (s.InternalLocal && a.Equals(wildcard))
            {
                continue;
            }

            yield return new ExpectedFrontend(s, "NodePort", a, s.NodePort, null, false, derivedFlags);
        }
    }

    private static readonly CalicoRelease ApiServerFallback = CalicoRelease.Parse("v3.31.0");

    /// <summary>
    /// The cluster's service ports (<see cref="FromKubernetes"/>, read once) as one node's proxy has
    /// them: the endpoints whose nodeName is the node are local.
    /// </summary>
    /// <param name="node">Where the ports are seen from (<see cref="OnNode"/>): endpoints on it are local.</param>
    /// <param name="release">The node's Calico release: from v3.31 the API server's service keeps its
    /// last-known-good backends while it has no ready endpoint, so its backends are not judged then.</param>
    public static IReadOnlyList<ServicePortState> OnNode(IReadOnlyList<ServicePortState> cluster, string node, CalicoRelease? release) =>
        cluster.Select(s =>
        {
            ServicePortState local = s.Endpoints.Any(e => e.NodeName == node)
                ? s with { Endpoints = s.Endpoints.Select(e => e with { Local = e.NodeName == node }).ToList() }
                : s;
            return s.Service == "default/kubernetes" && s.Filtered is null && !s.Endpoints.Any(e => e.Ready) && release is not null && release.AtLeast(ApiServerFallback)
                ? local with { Filtered = "the API server's last-known-good backends, kept while it has no ready endpoint (v3.31 and later)" }
                : local;
        }).ToList();

    /// <summary>
    /// The service ports of the cluster as the proxy gives them to Felix (k8s.io/kubernetes pkg/proxy
    /// servicechangetracker and endpointslicecache), local to no node yet (<see cref="OnNode"/>):
    /// services the proxy skips are left out (ExternalName, headless, no cluster IP of the family, the
    /// service-proxy-name label), endpoints are matched to a port by its name and protocol, an endpoint
    /// is ready unless its ready condition is false, terminating when that condition is true.
    /// </summary>
    public static IReadOnlyList<ServicePortState> FromKubernetes(IEnumerable<JsonObject> services, IEnumerable<JsonObject> endpointSlices, AddressFamily family)
    {
        var slices = endpointSlices
            .Where(e => Text(e["addressType"]) == (family == AddressFamily.InterNetworkV6 ? "IPv6" : "IPv4"))
            .GroupBy(e => (Text(e["metadata"]?["namespace"]), Text(e["metadata"]?["labels"]?["kubernetes.io/service-name"])))
            .ToDictionary(g => g.Key, g => g.ToList());
        var result = new List<ServicePortState>();
        foreach (JsonObject svc in services)
        {
            JsonNode? spec = svc["spec"];
            string ns = Text(svc["metadata"]?["namespace"]);
            string name = Text(svc["metadata"]?["name"]);
            JsonNode? labels = svc["metadata"]?["labels"];
            if (spec is null || Text(spec["type"]) == "ExternalName"
                || labels?["service.kubernetes.io/service-proxy-name"] is not null || labels?["service.kubernetes.io/headless"] is not null)
            {
                continue;
            }

            IPAddress? clusterIp = Addresses(spec["clusterIPs"]).Concat(Addresses(spec["clusterIP"])).FirstOrDefault(a => a.AddressFamily == family);
            if (clusterIp is null)
            {
                continue;
            }

            string type = Text(spec["type"]);
            var externalIps = Addresses(spec["externalIPs"]).ToList();
            var lbIps = (svc["status"]?["loadBalancer"]?["ingress"] as JsonArray ?? new JsonArray())
                .Where(i => Text(i?["ipMode"]) is "" or "VIP")
                .SelectMany(i => Addresses(i?["ip"])).ToList();
            bool external = type is "NodePort" or "LoadBalancer" || externalIps.Count > 0;
            bool externalLocal = external && Text(spec["externalTrafficPolicy"]) == "Local";
            bool internalLocal = Text(spec["internalTrafficPolicy"]) == "Local";
            uint affinity = Text(spec["sessionAffinity"]) == "ClientIP"
                ? (uint)(Number(spec["sessionAffinityConfig"]?["clientIP"]?["timeoutSeconds"]) is long t and > 0 ? t : 10800)
                : 0;
            var ranges = (spec["loadBalancerSourceRanges"] as JsonArray ?? new JsonArray())
                .Select(r => Text(r)).Where(r => r.Length > 0).Select(AddressPrefix.Parse).ToList();
            JsonNode? annotations = svc["metadata"]?["annotations"];
            string? topology = Text(annotations?["service.kubernetes.io/topology-mode"]) is { Length: > 0 } mode && !mode.Equals("Disabled", StringComparison.OrdinalIgnoreCase)
                ? "topology-aware routing (service.kubernetes.io/topology-mode)"
                : Text(annotations?["service.kubernetes.io/topology-aware-hints"]) is { Length: > 0 } hints && !hints.Equals("disabled", StringComparison.OrdinalIgnoreCase)
                    ? "topology-aware hints (service.kubernetes.io/topology-aware-hints)"
                    : Text(spec["trafficDistribution"]) is { Length: > 0 } distribution ? $"trafficDistribution {distribution}" : null;
            slices.TryGetValue((ns, name), out List<JsonObject>? own);

            foreach (JsonNode? p in spec["ports"] as JsonArray ?? new JsonArray())
            {
                string portName = Text(p?["name"]);
                IpProtocol protocol = Protocol(Text(p?["protocol"]));
                var endpoints = new Dictionary<(IPAddress, int), IntentEndpoint>();
                foreach (JsonObject slice in own ?? new List<JsonObject>())
                {
                    JsonNode? port = (slice["ports"] as JsonArray ?? new JsonArray())
                        .FirstOrDefault(sp => Text(sp?["name"]) == portName && Protocol(Text(sp?["protocol"])) == protocol);
                    if (port is null || Number(port["port"]) is not long number)
                    {
                        continue;
                    }

                    foreach (JsonNode? e in slice["endpoints"] as JsonArray ?? new JsonArray())
                    {
                        if (Addresses((e?["addresses"] as JsonArray)?.FirstOrDefault()).FirstOrDefault() is not IPAddress address)
                        {
                            continue;
                        }

                        JsonNode? conditions = e?["conditions"];
                        var endpoint = new IntentEndpoint(address, (int)number,
                            Ready: conditions?["ready"]?.GetValue<bool>() != false,
                            Terminating: conditions?["terminating"]?.GetValue<bool>() == true,
                            Local: false,
                            NodeName: Text(e?["nodeName"]));
                        if (!endpoints.TryGetValue((address, endpoint.Port), out IntentEndpoint? seen) || (!seen.Ready && endpoint.Ready))
                        {
                            endpoints[(address, endpoint.Port)] = endpoint;
                        }
                    }
                }

                result.Add(new ServicePortState
                {
                    Service = ns + "/" + name,
                    PortName = portName,
                    ClusterIP = clusterIp,
                    Port = (int)(Number(p?["port"]) ?? 0),
                    Protocol = protocol,
                    NodePort = (int)(Number(p?["nodePort"]) ?? 0),
                    ExternalIPs = externalIps,
                    LoadBalancerIPs = lbIps,
                    SourceRanges = ranges,
                    InternalLocal = internalLocal,
                    ExternalLocal = externalLocal,
                    AffinitySeconds = affinity,
                    Endpoints = endpoints.Values.ToList(),
                    Filtered = topology,
                });
            }
        }

        return result;
    }

    private static string Text(JsonNode? node) => node is JsonValue v && v.TryGetValue(out string? s) ? s : string.Empty;

    private static long? Number(JsonNode? node) => node is JsonValue v && v.TryGetValue(out long n) ? n : null;

    private static IEnumerable<IPAddress> Addresses(JsonNode? node) => node switch
    {
        JsonArray a => a.SelectMany(Addresses),
        JsonValue v when v.TryGetValue(out string? s) && IPAddress.TryParse(s, out IPAddress? ip) => new[] { ip },
        _ => Array.Empty<IPAddress>(),
    };

    private static IpProtocol Protocol(string text) => text switch
    {
        "UDP" => IpProtocol.Udp,
        "SCTP" => IpProtocol.Sctp,
        _ => IpProtocol.Tcp,
    };
}
