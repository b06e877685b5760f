using System.Net;
using CalicoBpf.Cluster;
using CalicoBpf.Flow;

namespace CalicoBpf.Commands;

/// <summary>
/// What the dataplane would do with a flow, and why, without sending a packet: the verdict and every
/// stage (interface, conntrack, NAT, routes, policy) with the map entry or rule that decided it,
/// predicted from the node's tables (Flow/FlowPredictor). Each node's tables are read once per run,
/// however many flows are asked.
/// </summary>
[Cmdlet(VerbsDiagnostic.Test, "BpfFlow", DefaultParameterSetName = EntrySet, HelpUri = HelpUris.Base + "Test-BpfFlow.md")]
[OutputType(typeof(FlowPrediction))]
public sealed class TestBpfFlowCommand : MapCmdletBase
{
    private const string FlowSet = "Flow";
    private const string EntrySet = "InputObject";

    /// <summary>The flows asked, by the node (and pin directory) that answers them.</summary>
    private readonly List<Pending> _queries = new();
    private WorkloadIndex? _workloads;
    private FelixConfigClient? _felix;
    private Dictionary<string, CalicoNode>? _clusterNodes;
    private PeerNodes? _peers;
    // The protocol a service's port gave this record (svc/NS/NAME), held as a byte like _protocol; null: none.
    private byte? _serviceProtocolByte;

    /// <summary>This record's -Source node/NAME, whose node then answers (null: none).</summary>
    private string? SourceNode { get; set; }

    private IpProtocol? ServiceProtocol
    {
        get => _serviceProtocolByte is byte b ? (IpProtocol)b : null;
        set => _serviceProtocolByte = value is IpProtocol p ? (byte)p : null;
    }
    private IReadOnlyList<FlowPool>? _pools;
    private (bool Running, string Evidence)? _kubeProxy;

    /// <summary>The client: an address, address:port ([v6]:port; a port here is the client's port, -SourcePort), pod/NAMESPACE/NAME or node/NAME (then -Node defaults to the pod's or that node).</summary>
    [Parameter(Mandatory = true, Position = 0, ParameterSetName = FlowSet, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(WorkloadEndpointCompleter))]
    public string? Source { get; set; }

    /// <summary>Where the client sends to: an address (a pod, a service's cluster IP, a node), address:port, pod/NAMESPACE/NAME, node/NAME or svc/NAMESPACE/NAME (its cluster IP, and its port when it has one).</summary>
    [Parameter(Mandatory = true, Position = 1, ParameterSetName = FlowSet, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(WorkloadEndpointCompleter))]
    public string? Destination { get; set; }

    // Held as a byte: a field of an engine enum would make PowerShell load CalicoBpf.Core while it
    // scans the module's types, before the module's initializer can say where Core is.
    private byte _protocol = 6;

    [Parameter(ParameterSetName = FlowSet, ValueFromPipelineByPropertyName = true)]
    [IpProtocolArgument]
    public IpProtocol Protocol { get => (IpProtocol)_protocol; set => _protocol = (byte)value; }

    /// <summary>The destination port, when -Destination has none.</summary>
    [Parameter(ParameterSetName = FlowSet, ValueFromPipelineByPropertyName = true)]
    [ValidateRange(0, 65535)]
    public int? Port { get; set; }

    /// <summary>The client's port (default 49152, the first ephemeral port): conntrack entries are found by it.</summary>
    [Parameter(ParameterSetName = FlowSet, ValueFromPipelineByPropertyName = true)]
    [ValidateRange(0, 65535)]
    public int? SourcePort { get; set; }

    /// <summary>For -Protocol ICMP: the ICMP type (default 8, echo request) and code the policy is matched with.</summary>
    [Parameter(ParameterSetName = FlowSet)]
    [ValidateRange(0, 255)]
    public int IcmpType { get; set; } = 8;

    [Parameter(ParameterSetName = FlowSet)]
    [ValidateRange(0, 255)]
    public int IcmpCode { get; set; }

    /// <summary>
    /// The interface the packet arrives on, when it comes from the network: a host interface (eth0) or a
    /// tunnel device (vxlan.calico), whose from-host-endpoint program sees it first (a node port from
    /// outside the cluster). A workload's interface is the same as no -Interface (its source must be that workload).
    /// </summary>
    [Parameter(ParameterSetName = FlowSet, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(InterfaceNameCompleter))]
    public string? Interface { get; set; }

    /// <summary>
    /// With -Interface: the tc hook whose program sees the packet first. Ingress (the default): what the
    /// interface receives (from a workload, or from the network). Egress: what the node sends out of it:
    /// into a workload (its to-workload program and ingress policy), or out of a host interface (its host
    /// endpoint's egress policy).
    /// </summary>
    [Parameter(ParameterSetName = FlowSet, ValueFromPipelineByPropertyName = true)]
    [ValidateSet("Ingress", "Egress", IgnoreCase = true)]
    public string Hook { get; set; } = "Ingress";

    /// <summary>Conntrack entries from Get-BpfConntrack: each is predicted as a new connection from its client to where it went (a service entry to its service), on the node and pin path it was read from.</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = EntrySet)]
    public ConntrackEntry[]? InputObject { get; set; }

    /// <summary>Names the pods and services of each prediction (SourcePod, DestinationService, DestinationPod, BackendPod) from one pod list and one service list of the cluster per run.</summary>
    [Parameter]
    public SwitchParameter Resolve { get; set; }

    /// <summary>Where Felix writes its policy debug files (bpfPolicyDebugEnabled) on the node.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string PolicyDebugPath { get; set; } = Maps.PolicyDebug.DefaultDirectory;

    protected override void ProcessRecord()
    {
        if (ParameterSetName == FlowSet)
        {
            // Each record's own values: flows piped by property name (Import-Csv) must not inherit the last one's.
            ServiceProtocol = null;
            SourceNode = null;
            (IPAddress src, int? sport) = Named(Source!, "Source", out WorkloadPod? sourcePod) ?? Endpoint(Source!, "Source");
            (IPAddress dst, int? dport) = Named(Destination!, "Destination", out _) ?? Endpoint(Destination!, "Destination");
            IpProtocol protocol = ServiceProtocol ?? Protocol;
            bool egress = Hook.Equals("Egress", StringComparison.OrdinalIgnoreCase);
            if (egress && Interface is null)
            {
                ThrowTerminatingError(new ErrorRecord(new ArgumentException("-Hook Egress needs -Interface: the interface whose tc egress program sees the packet first."), "HookNeedsInterface", ErrorCategory.InvalidArgument, Hook));
            }

            string[]? nodes = Node;
            if (SourceNode is { } sourceNode && !MyInvocation.BoundParameters.ContainsKey(nameof(Node)))
            {
                // The node's own host sends it.
                nodes = new[] { sourceNode };
            }

            if (sourcePod is not null && !MyInvocation.BoundParameters.ContainsKey(nameof(Node)))
            {
                // The pod's own node sees its packets first.
                nodes = sourcePod.Node.Length > 0 ? new[] { sourcePod.Node }
                    : throw new PSArgumentException($"pod/{sourcePod.FullName} has no node yet (it is not scheduled): give -Node.", nameof(Source));
            }

            if (dport is not null && Port is not null && dport != Port)
            {
                ThrowTerminatingError(new ErrorRecord(new ArgumentException($"-Destination {Destination} names port {dport} and -Port says {Port}: give the port once."), "PortTwice", ErrorCategory.InvalidArgument, Port));
            }

            if (src.AddressFamily != dst.AddressFamily || src.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork)
            {
                ThrowTerminatingError(new ErrorRecord(new NotSupportedException($"Test-BpfFlow predicts IPv4 flows so far: {Source} -> {Destination} is not one. Get-BpfConntrack -IPv6, Get-BpfNat -IPv6 and Get-BpfRoute -IPv6 read the IPv6 tables."), "IPv6NotPredicted", ErrorCategory.NotImplemented, Destination));
            }

            if (sport is not null && SourcePort is not null && sport != SourcePort)
            {
                ThrowTerminatingError(new ErrorRecord(new ArgumentException($"-Source {Source} names port {sport} and -SourcePort says {SourcePort}: give the port once."), "PortTwice", ErrorCategory.InvalidArgument, SourcePort));
            }

            if (protocol == IpProtocol.Icmp)
            {
                if (dport is not null || Port is not null || sport is not null || SourcePort is not null)
                {
                    ThrowTerminatingError(new ErrorRecord(new ArgumentException("ICMP has no ports: give -IcmpType and -IcmpCode (default 8 and 0, an echo request) instead."), "IcmpHasNoPorts", ErrorCategory.InvalidArgument, Destination));
                }

                // Calico's state: sport 0, and type | code << 8 where the destination port is.
                _queries.Add(new Pending(nodes, new FlowQuery(protocol, src, 0, dst, PolicyPacket.IcmpPort(IcmpType, IcmpCode), Interface: Interface, Egress: egress)));
                return;
            }

            int port = dport ?? Port ?? (protocol is IpProtocol.Tcp or IpProtocol.Udp or IpProtocol.Sctp
                ? throw new PSArgumentException($"Which port does {Destination} take? Give it as {Destination}:PORT or with -Port.", "Port")
                : 0);
            _queries.Add(new Pending(nodes, new FlowQuery(protocol, src, SourcePort ?? sport ?? 49152, dst, port, Interface: Interface, Egress: egress)));
            return;
        }

        foreach (ConntrackEntry e in InputObject ?? Array.Empty<ConntrackEntry>())
        {
            // A service entry asks for the service; a NatReverse entry's destination is the backend, its ServiceAddress the service.
            bool service = e.ServiceAddressValue is not null && e.ServicePort is not null;
            IPAddress dst = service ? e.ServiceAddressValue! : e.DestinationAddressValue;
            int dport = service ? e.ServicePort!.Value : e.DestinationPort;
            if (e.SourceAddressValue.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork)
            {
                WriteError(new ErrorRecord(new NotSupportedException($"Test-BpfFlow predicts IPv4 flows so far: {e.Source} -> {e.Destination} is skipped."), "IPv6NotPredicted", ErrorCategory.NotImplemented, e));
                continue;
            }

            // Asked as a new connection: the entry itself is not consulted.
            _queries.Add(new Pending(new[] { e.Node }, new FlowQuery(e.Protocol, e.SourceAddressValue, e.SourcePort, dst, dport, AsNew: true), e.PinPath.Length > 0 ? e.PinPath : null));
        }
    }

    protected override void EndProcessing()
    {
        if (_queries.Count == 0)
        {
            return;
        }

        // Each node selection (and pin directory) the flows were asked for, its tables read once: -Node may
        // come from piped objects (Get-CalicoNode), one per record. Remotely, a flow to a workload on another
        // node continues on that node's tables, read once per run too.
        string pinPath = PinPath;
        try
        {
            foreach (var group in _queries.GroupBy(q => (Nodes: q.Nodes is null ? null : string.Join('\n', q.Nodes), q.PinPath)))
            {
                var asked = group.Select(q => q.Query).ToList();
                Node = group.First().Nodes;
                PinPath = group.Key.PinPath ?? pinPath;
                _peers ??= IsLocal ? null : new PeerNodes(this, _queries.Select(q => q.Query.Source).Distinct().ToList());
                ForEachNode(node => PredictAll(node, asked, IsLocal ? GetUnresolvedProviderPathFromPSPath(PolicyDebugPath) : PolicyDebugPath));
            }
        }
        finally
        {
            _peers?.Dispose();
        }
    }

    /// <summary>
    /// The cluster's nodes by address, each read on first use and once per run: where a flow that
    /// leaves its node continues. A node without the eBPF dataplane, or one that fails, is named in the
    /// flow's reason.
    /// </summary>
    private sealed class PeerNodes : IFlowPeers, IDisposable
    {
        private readonly TestBpfFlowCommand _cmdlet;
        private readonly List<IPAddress> _clients;
        // One read per node, started by the first flow that reaches it; flows to other nodes do not wait for it.
        private readonly System.Collections.Concurrent.ConcurrentDictionary<string, Lazy<(FlowTables? Tables, string? Why)>> _read = new(StringComparer.Ordinal);
        private readonly List<IDisposable> _open = new();
        private Dictionary<IPAddress, CalicoNode>? _byAddress;
        private string? _noNodes;
        private bool _disposed;

        public PeerNodes(TestBpfFlowCommand cmdlet, List<IPAddress> clients)
        {
            _cmdlet = cmdlet;
            _clients = clients;
        }

        public FlowTables? At(IPAddress address, out string? why)
        {
            lock (_open)
            {
                if (_byAddress is null && _noNodes is null)
                {
                    try
                    {
                        _byAddress = _cmdlet.ClusterNodes().Values
                            .Where(n => IPAddress.TryParse(n.InternalIP, out _))
                            .GroupBy(n => IPAddress.Parse(n.InternalIP)).ToDictionary(g => g.Key, g => g.First());
                    }
                    catch (Exception ex) when (ex is not OperationCanceledException and not PipelineStoppedException)
                    {
                        _noNodes = $"the cluster's nodes cannot be listed ({ex.Message})";
                    }
                }
            }

            if (_byAddress is null || !_byAddress.TryGetValue(address, out CalicoNode? node))
            {
                why = _noNodes ?? $"no node of the cluster has the InternalIP {address} (Get-CalicoNode shows their addresses)";
                return null;
            }

            (FlowTables? tables, string? reason) = _read.GetOrAdd(node.Node, _ => new Lazy<(FlowTables?, string?)>(() => Read(node))).Value;
            why = reason;
            return tables;
        }

        private (FlowTables?, string?) Read(CalicoNode node)
        {
            if (!node.HasCalicoNode)
            {
                return (null, $"{node.Node} runs no calico-node, so its tables cannot be read");
            }

            INodeDataplane? dataplane = null;
            try
            {
                lock (_open)
                {
                    if (_disposed)
                    {
                        return (null, "the run has ended");
                    }

                    dataplane = _cmdlet.OpenRemoteNode(node);
                    if (dataplane is IDisposable d)
                    {
                        _open.Add(d);
                    }
                }

                FlowTables tables = FlowTables.Read(dataplane, _cmdlet.PolicyDebugPath, _cmdlet.Reporter, _cmdlet.CancelToken, _clients, _cmdlet.SettingsOf(node.Node));
                tables.Peers = this;
                return (tables, null);
            }
            catch (BpfEnvironmentException ex) when (ex.Problem is BpfEnvironmentProblem.NoCalicoMaps or BpfEnvironmentProblem.NoBpfFs)
            {
                return (null, $"Calico's eBPF dataplane does not run on {node.Node} ({ex.Message}), so its tables cannot tell: Test-CalicoEbpf -Node {node.Node} says why");
            }
            catch (Exception ex) when (ex is not OperationCanceledException and not PipelineStoppedException)
            {
                return (null, $"{node.Node}'s tables cannot be read: {ex.Message}");
            }
        }

        /// <summary>Closes every node opened; a read that starts later finds the run ended.</summary>
        public void Dispose()
        {
            lock (_open)
            {
                _disposed = true;
                foreach (IDisposable d in _open)
                {
                    d.Dispose();
                }

                _open.Clear();
            }
        }
    }

    private IEnumerable<FlowPrediction> PredictAll(INodeDataplane node, List<FlowQuery> queries, string policyDirectory)
    {
        FlowTables? tables = ReadTables(node, queries, policyDirectory, out string? notRunning);
        if (tables is null)
        {
            // No eBPF dataplane there (Felix fell back to iptables, or eBPF mode is off): the maps cannot tell.
            foreach (FlowQuery q in queries)
            {
                yield return new FlowPrediction
                {
                    Node = node.Node, Protocol = q.Protocol, SourceAddressValue = q.Source, SourcePort = q.SourcePort,
                    DestinationAddressValue = q.Destination, DestinationPort = q.DestinationPort, Verdict = FlowVerdict.Unknown,
                    Reason = $"Calico's eBPF dataplane does not run on {node.Node}: {notRunning} Test-CalicoEbpf -Node {node.Node} says why (Felix falls back to iptables on a kernel too old).",
                    Path = new ValueList<string>(new[] { node.Node }, " -> "),
                    Stages = new ValueList<FlowStage>(new[] { new FlowStage("interface", "-", "no eBPF dataplane", notRunning!) }, "; "),
                };
            }

            yield break;
        }

        WorkloadIndex? names = Resolve ? Workloads() : _workloads;
        foreach (FlowQuery q in queries)
        {
            CancelToken.ThrowIfCancellationRequested();
            FlowPrediction p = FlowPredictor.Predict(tables, q).Prediction;
            if (names is not null)
            {
                p.SourcePod = names.PodAt(q.Source);
                p.DestinationService = names.ServiceAt(q.Destination, q.DestinationPort, q.Protocol);
                p.DestinationPod = names.PodAt(q.Destination);
                p.BackendPod = names.PodAt(p.BackendAddressValue);
            }

            yield return p;
        }
    }

    /// <summary>The node's tables; null (with the message) when no Calico maps are pinned there.</summary>
    private FlowTables? ReadTables(INodeDataplane node, List<FlowQuery> queries, string policyDirectory, out string? notRunning)
    {
        notRunning = null;
        try
        {
            FlowTables tables = FlowTables.Read(node, policyDirectory, Reporter, CancelToken, queries.Select(q => q.Source), SettingsOf(node.Node));
            tables.Peers = _peers;
            return tables;
        }
        catch (BpfEnvironmentException ex) when (ex.Problem is BpfEnvironmentProblem.NoCalicoMaps or BpfEnvironmentProblem.NoBpfFs)
        {
            notRunning = ex.Message;
            return null;
        }
    }

    /// <summary>
    /// The Felix settings of a node that no map holds (defaultEndpointToHostAction, the connect-time
    /// load balancer), as Felix there uses them: one FelixConfiguration listing and one DaemonSet read
    /// per run. Locally, without a cluster, they are unknown and the predictions that need them say so.
    /// </summary>
    private FlowSettings SettingsOf(string node)
    {
        if (IsLocal)
        {
            return FlowSettings.Unknown;
        }

        try
        {
            lock (_queries)
            {
                _felix ??= new FelixConfigClient(Cluster, CancelToken);
                _pools ??= Pools(_felix);
                _kubeProxy ??= KubeProxy();
                return ClusterNodes().TryGetValue(node, out CalicoNode? n)
                    ? FlowSettings.From(_felix.Effective(n)) with { Pools = _pools, KubeProxy = _kubeProxy.Value.Running ? new FlowSetting("kube-proxy", "running", _kubeProxy.Value.Evidence) : null }
                    : FlowSettings.Unknown;
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException and not PipelineStoppedException)
        {
            Reporter.Warning($"{node}: Felix's configuration cannot be read ({ex.Message}); flows that depend on defaultEndpointToHostAction or the connect-time load balancer are Unknown.");
            return FlowSettings.Unknown;
        }
    }

    /// <summary>Whether kube-proxy runs (its DaemonSet in kube-system, as Test-CalicoEbpf's checks read it); not running when it cannot be read.</summary>
    private (bool Running, string Evidence) KubeProxy()
    {
        try
        {
            var ds = Cluster.GetResource(new ResourceRef("apps", "v1", "daemonsets", "kube-system"), "kube-proxy", CancelToken);
            bool disabled = Diagnostics.ServiceImplementationCheck.KubeProxyDisabled(ds, out string evidence);
            return (!disabled, evidence);
        }
        catch (Exception ex) when (ex is not OperationCanceledException and not PipelineStoppedException)
        {
            return (false, $"the kube-proxy DaemonSet cannot be read ({ex.Message})");
        }
    }

    /// <summary>The cluster's IP pools; none (with a warning) when they cannot be listed: the other settings still count.</summary>
    private IReadOnlyList<FlowPool> Pools(FelixConfigClient felix)
    {
        try
        {
            return FlowPool.From(Cluster.ListResources(felix.Calico("ippools"), CancelToken));
        }
        catch (Exception ex) when (ex is not OperationCanceledException and not PipelineStoppedException)
        {
            Reporter.Warning($"The cluster's IP pools cannot be listed ({ex.Message}): tunnelled routes are predicted without their pool's overlay.");
            return Array.Empty<FlowPool>();
        }
    }

    /// <summary>The cluster's nodes by name, listed once per run.</summary>
    private Dictionary<string, CalicoNode> ClusterNodes()
    {
        lock (_queries)
        {
            return _clusterNodes ??= Cluster.ListNodes(CancelToken).GroupBy(n => n.Node, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        }
    }

    /// <summary>The cluster's pods and services, listed once per run.</summary>
    private WorkloadIndex Workloads()
    {
        lock (_queries)
        {
            return _workloads ??= Api(() => Cluster.LoadWorkloads(CancelToken));
        }
    }

    /// <summary>pod/NS/NAME, svc/NS/NAME (service/NS/NAME): the address (and a service's port) from the cluster; null for an address.</summary>
    private (IPAddress, int?)? Named(string text, string parameter, out WorkloadPod? pod)
    {
        pod = null;
        string[] parts = text.Trim().Split('/');
        if (parts.Length == 2 && parts[0].ToLowerInvariant() is "node" or "no")
        {
            // A node: its InternalIP (the address Calico's routes name it by). As -Source, that node sees the packet.
            if (!ClusterNodes().TryGetValue(parts[1], out CalicoNode? n) || !IPAddress.TryParse(n.InternalIP, out IPAddress? ip))
            {
                ThrowTerminatingError(new ErrorRecord(new ItemNotFoundException($"-{parameter} {text}: the cluster has no node {parts[1]} with an InternalIP (Get-CalicoNode lists them)."), "NodeNotFound", ErrorCategory.ObjectNotFound, text));
                return null;
            }

            if (parameter == "Source")
            {
                SourceNode = n.Node;
            }

            return (ip, null);
        }

        if (parts.Length != 3 || parts[0].ToLowerInvariant() is not ("pod" or "po" or "svc" or "service"))
        {
            return null;
        }

        WorkloadIndex index = Workloads();
        if (parts[0].ToLowerInvariant() is "pod" or "po")
        {
            pod = index.Pods.FirstOrDefault(p => p.Namespace == parts[1] && p.Name == parts[2]);
            IPAddress? address = pod?.Addresses.FirstOrDefault(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork);
            if (pod is null || address is null)
            {
                ThrowTerminatingError(new ErrorRecord(new ItemNotFoundException($"-{parameter} {text}: the cluster has no running pod {parts[1]}/{parts[2]} with an IPv4 address (host-network pods have the node's: give that address)."), "PodNotFound", ErrorCategory.ObjectNotFound, text));
            }

            return (address!, null);
        }

        if (parameter == "Source")
        {
            ThrowTerminatingError(new ErrorRecord(new ArgumentException($"-Source {text}: a service sends nothing itself; give one of its pods (pod/NS/NAME) or an address as the client."), "ServiceAsSource", ErrorCategory.InvalidArgument, text));
        }

        WorkloadService? service = index.Services.FirstOrDefault(s => s.Namespace == parts[1] && s.Name == parts[2]);
        IPAddress? vip = service?.Addresses.FirstOrDefault(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork);
        if (service is null || vip is null)
        {
            ThrowTerminatingError(new ErrorRecord(new ItemNotFoundException($"-{parameter} {text}: the cluster has no service {parts[1]}/{parts[2]} with an IPv4 cluster IP."), "ServiceNotFound", ErrorCategory.ObjectNotFound, text));
        }

        if (Port is null)
        {
            if (service!.Ports.Count != 1)
            {
                ThrowTerminatingError(new ErrorRecord(new ArgumentException($"Service {service.FullName} has {(service.Ports.Count == 0 ? "no ports" : "the ports " + string.Join(", ", service.Ports.Select(p => $"{p.Port}/{p.Protocol}")))}: give one with -Port."), "ServicePortNeeded", ErrorCategory.InvalidArgument, text));
            }

            if (!MyInvocation.BoundParameters.ContainsKey(nameof(Protocol)))
            {
                ServiceProtocol = service.Ports[0].Protocol;
            }

            return (vip!, service.Ports[0].Port);
        }

        // -Port names one of the service's ports: its protocol, when only one protocol has that port.
        var protocols = service!.Ports.Where(p => p.Port == Port).Select(p => p.Protocol).Distinct().ToList();
        if (protocols.Count == 1 && !MyInvocation.BoundParameters.ContainsKey(nameof(Protocol)))
        {
            ServiceProtocol = protocols[0];
        }

        return (vip!, null);
    }

    /// <summary>address or address:port, IPv6 as [address]:port.</summary>
    private (IPAddress Address, int? Port) Endpoint(string text, string parameter)
    {
        string t = text.Trim();
        string host = t.Contains(']', StringComparison.Ordinal) || t.Count(c => c == ':') > 1 ? t : t.Split(':')[0];
        if (!host.Contains(':', StringComparison.Ordinal) && host.Count(c => c == '.') != 3)
        {
            // IPAddress.Parse takes inet_aton's short forms (10.65 is 10.0.0.65): nobody means those here.
            ThrowTerminatingError(new ErrorRecord(new ArgumentException($"-{parameter} '{text}' is not an address or address:port (10.65.0.2, 10.96.0.10:53, [fd00::1]:443, pod/NS/NAME, svc/NS/NAME)."), "InvalidEndpoint", ErrorCategory.InvalidArgument, text));
        }

        if (IPAddress.TryParse(t, out IPAddress? bare) && !(bare.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && t.Contains(':', StringComparison.Ordinal)))
        {
            return (bare, null);
        }

        if (IPEndPoint.TryParse(t, out IPEndPoint? ep))
        {
            return (ep.Address, ep.Port);
        }

        ThrowTerminatingError(new ErrorRecord(new ArgumentException($"-{parameter} '{text}' is not an address or address:port (10.65.0.2, 10.96.0.10:53, [fd00::1]:443)."), "InvalidEndpoint", ErrorCategory.InvalidArgument, text));
        return default;
    }

    /// <summary>A flow asked, and the nodes (-Node as it was for this record; null: local) and pin directory (null: -PinPath) that answer it.</summary>
    private sealed record Pending(string[]? Nodes, FlowQuery Query, string? PinPath = null);
}
