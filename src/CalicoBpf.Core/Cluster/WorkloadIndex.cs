using CalicoBpf.Maps;


namespace CalicoBpf.Cluster;

/// <summary>A pod as -Resolve needs it: "namespace/name", its IPs (host-network pods are left out: their IP is the node's) and its node.</summary>
public sealed record WorkloadPod(string Namespace, string Name, IReadOnlyList<IPAddress> Addresses, string Node = "")
{
    public string FullName => Namespace + "/" + Name;
}

/// <summary>A service frontend: one port of a service on its cluster, external or load-balancer IPs, and its node port.</summary>
public sealed record WorkloadService(string Namespace, string Name, IReadOnlyList<IPAddress> Addresses, IReadOnlyList<ServicePortSpec> Ports)
{
    public string FullName => Namespace + "/" + Name;
}

public sealed record ServicePortSpec(IpProtocol Protocol, int Port, int NodePort);

/// <summary>
/// Pods and services of a cluster, read once per run (one pod list, one service list), that
/// -Resolve looks addresses up in, and that -Pod, -Namespace and -Service turn into the address
/// sets the readers filter raw entries with before decoding.
/// </summary>
public sealed class WorkloadIndex : IWorkloadNamer
{
    private static readonly IPAddress WildcardV4 = IPAddress.Broadcast;
    private readonly Dictionary<IPAddress, WorkloadPod> _podByAddress = new();
    private readonly Dictionary<(IPAddress, int, IpProtocol), WorkloadService> _serviceByFrontend = new();
    private readonly Dictionary<IPAddress, WorkloadService> _serviceByAddress = new();
    private readonly Dictionary<(int, IpProtocol), WorkloadService> _serviceByNodePort = new();

    public WorkloadIndex(IEnumerable<WorkloadPod> pods, IEnumerable<WorkloadService> services)
    {
        Pods = pods.ToList();
        Services = services.ToList();
        foreach (WorkloadPod p in Pods)
        {
            foreach (IPAddress a in p.Addresses)
            {
                _podByAddress.TryAdd(a, p);
            }
        }

        foreach (WorkloadService s in Services)
        {
            foreach (IPAddress a in s.Addresses)
            {
                _serviceByAddress.TryAdd(a, s);
                foreach (ServicePortSpec port in s.Ports)
                {
                    _serviceByFrontend.TryAdd((a, port.Port, port.Protocol), s);
                }
            }

            foreach (ServicePortSpec port in s.Ports.Where(p => p.NodePort > 0))
            {
                _serviceByNodePort.TryAdd((port.NodePort, port.Protocol), s);
            }
        }
    }

    public IReadOnlyList<WorkloadPod> Pods { get; }

    public IReadOnlyList<WorkloadService> Services { get; }

    /// <summary>"namespace/name" of the pod with this IP, or empty.</summary>
    public string PodAt(IPAddress? address) => address is not null && _podByAddress.TryGetValue(address, out WorkloadPod? p) ? p.FullName : string.Empty;

    /// <summary>"namespace/name" of the service with this frontend (an IP of it, or the NodePort wildcard and a node port), or empty.</summary>
    public string ServiceAt(IPAddress? address, int port, IpProtocol protocol)
    {
        if (address is null)
        {
            return string.Empty;
        }

        if (_serviceByFrontend.TryGetValue((address, port, protocol), out WorkloadService? s)
            || (IsWildcard(address) && _serviceByNodePort.TryGetValue((port, protocol), out s)))
        {
            return s.FullName;
        }

        return string.Empty;
    }

    /// <summary>Sets SourcePod, DestinationPod and Service of a conntrack entry.</summary>
    public void Annotate(ConntrackEntry e)
    {
        e.SourcePod = PodAt(e.SourceAddressValue);
        e.DestinationPod = PodAt(e.DestinationAddressValue);
        e.Service = e.ServiceAddressValue is not null
            ? ServiceAt(e.ServiceAddressValue, e.ServicePort ?? 0, e.Protocol)
            : ServiceAt(e.DestinationAddressValue, e.DestinationPort, e.Protocol);
        if (e.DestinationPod.Length == 0 && e.ReverseKey is { } reverse && e.Type == ConntrackType.NatForward)
        {
            // A NAT forward entry points at the backend through its reverse key.
            e.DestinationPod = PodAt(reverse.Other(e.SourceAddressValue, e.SourcePort).Address);
        }
    }

    /// <summary>Sets the Service of a NAT frontend and the Pod of each backend.</summary>
    public void Annotate(NatFrontend f)
    {
        f.Service = ServiceAt(f.AddressValue, f.Port, f.Protocol);
        foreach (NatBackend b in f.Backends)
        {
            b.Pod = PodAt(b.AddressValue);
        }
    }

    /// <summary>The IPs of the pods whose "namespace/name" (or name) matches one of the patterns.</summary>
    public IEnumerable<IPAddress> PodAddresses(IReadOnlyCollection<string> patterns) =>
        Pods.Where(p => WorkloadFilter.MatchesName(p.Namespace, p.Name, patterns)).SelectMany(p => p.Addresses);

    /// <summary>The frontend IPs of the services that match.</summary>
    public IEnumerable<IPAddress> ServiceAddresses(IReadOnlyCollection<string> patterns) =>
        Services.Where(s => WorkloadFilter.MatchesName(s.Namespace, s.Name, patterns)).SelectMany(s => s.Addresses);

    /// <summary>Pod and service IPs of the namespaces that match.</summary>
    public IEnumerable<IPAddress> NamespaceAddresses(IReadOnlyCollection<string> patterns) =>
        Pods.Where(p => WorkloadFilter.Matches(p.Namespace, patterns)).SelectMany(p => p.Addresses)
            .Concat(Services.Where(s => WorkloadFilter.Matches(s.Namespace, patterns)).SelectMany(s => s.Addresses));

    private static bool IsWildcard(IPAddress a) => a.Equals(WildcardV4) || a.GetAddressBytes().All(b => b == 0xff);
}

/// <summary>
/// -Pod, -Namespace and -Service: wildcard patterns on "namespace/name" (or a bare name, in any
/// namespace) checked on resolved objects, and the address prefixes that let the readers skip
/// entries before decoding them.
/// </summary>
public sealed class WorkloadFilter : IWorkloadMatcher
{
    public IReadOnlyCollection<string>? Pods { get; init; }

    public IReadOnlyCollection<string>? Namespaces { get; init; }

    public IReadOnlyCollection<string>? Services { get; init; }

    public bool IsEmpty => Pods is not { Count: > 0 } && Namespaces is not { Count: > 0 } && Services is not { Count: > 0 };

    /// <summary>
    /// The addresses an entry must touch (source, destination or service) to possibly match: the
    /// pods', services' and namespaces' IPs. An empty list when the filter matches nothing in the cluster.
    /// </summary>
    public IReadOnlyList<AddressPrefix> Prefixes(WorkloadIndex index)
    {
        IEnumerable<IPAddress> addresses = Enumerable.Empty<IPAddress>();
        if (Pods is { Count: > 0 })
        {
            addresses = addresses.Concat(index.PodAddresses(Pods));
        }

        if (Services is { Count: > 0 })
        {
            addresses = addresses.Concat(index.ServiceAddresses(Services));
        }

        if (Namespaces is { Count: > 0 })
        {
            addresses = addresses.Concat(index.NamespaceAddresses(Namespaces));
        }

        return addresses.Distinct().Select(a => AddressPrefix.Parse(a.ToString())).ToList();
    }

    /// <summary>Every given filter must hold: a pod at either end, the service, a namespace of either pod or of the service.</summary>
    public bool Matches(ConntrackEntry e) =>
        (Pods is not { Count: > 0 } || MatchesFullName(e.SourcePod, Pods) || MatchesFullName(e.DestinationPod, Pods))
        && (Services is not { Count: > 0 } || MatchesFullName(e.Service, Services))
        && (Namespaces is not { Count: > 0 } || new[] { e.SourcePod, e.DestinationPod, e.Service }.Any(n => Matches(NamespaceOf(n), Namespaces)));

    /// <summary>For NAT frontends: the service, a backend pod, or the namespace of either.</summary>
    public bool Matches(NatFrontend f) =>
        (Pods is not { Count: > 0 } || f.Backends.Any(b => MatchesFullName(b.Pod, Pods)))
        && (Services is not { Count: > 0 } || MatchesFullName(f.Service, Services))
        && (Namespaces is not { Count: > 0 } || f.Backends.Select(b => b.Pod).Append(f.Service).Any(n => Matches(NamespaceOf(n), Namespaces)));

    private static string NamespaceOf(string fullName)
    {
        int slash = fullName.IndexOf('/');
        return slash < 0 ? string.Empty : fullName[..slash];
    }

    private static bool MatchesFullName(string fullName, IReadOnlyCollection<string> patterns)
    {
        int slash = fullName.IndexOf('/');
        return slash > 0 && MatchesName(fullName[..slash], fullName[(slash + 1)..], patterns);
    }

    /// <summary>"ns/name" patterns match both parts; a pattern without "/" matches the name in any namespace.</summary>
    public static bool MatchesName(string ns, string name, IReadOnlyCollection<string> patterns) => patterns.Any(p =>
    {
        int slash = p.IndexOf('/');
        return slash < 0 ? Like(name, p) : Like(ns, p[..slash]) && Like(name, p[(slash + 1)..]);
    });

    public static bool Matches(string value, IReadOnlyCollection<string> patterns) => value.Length > 0 && patterns.Any(p => Like(value, p));

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, Regex> Compiled = new(StringComparer.Ordinal);

    /// <summary>
    /// PowerShell-style wildcards (* ? [abc]), case-insensitive, as Kubernetes names are lower case;
    /// each pattern is turned into a regex once (the filters run on every resolved entry).
    /// </summary>
    private static bool Like(string value, string pattern) =>
        Compiled.GetOrAdd(pattern, p => new Regex(
            "^" + Regex.Escape(p).Replace(@"\*", ".*", StringComparison.Ordinal).Replace(@"\?", ".", StringComparison.Ordinal).Replace(@"\[", "[", StringComparison.Ordinal) + "$",
            RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)).IsMatch(value);
}
