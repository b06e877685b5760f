using System.Net;
using CalicoBpf.Flow;

namespace CalicoBpf.Commands;

/// <summary>
/// What the dataplane would do with a flow, and why, without sending a packet: the verdict and every
/// stage (interface, conntrack, NAT, routes, policy) with the map entry or rule that decided it,
/// predicted from the node's tables (Flow/FlowPredictor). Each node's tables are read once per run,
/// however many flows are asked.
/// </summary>
[Cmdlet(VerbsDiagnostic.Test, "BpfFlow", DefaultParameterSetName = FlowSet, HelpUri = HelpUris.Base + "Test-BpfFlow.md")]
[OutputType(typeof(FlowPrediction))]
public sealed class TestBpfFlowCommand : MapCmdletBase
{
    private const string FlowSet = "Flow";
    private const string EntrySet = "InputObject";

    /// <summary>The flows asked, by the node (and pin directory) that answers them.</summary>
    private readonly List<Pending> _queries = new();

    /// <summary>The client: an address, or address:port ([v6]:port). A port here is the client's port (-SourcePort).</summary>
    [Parameter(Mandatory = true, Position = 0, ParameterSetName = FlowSet)]
    [ValidateNotNullOrEmpty]
    public string? Source { get; set; }

    /// <summary>Where the client sends to: an address (a pod, a service's cluster IP, a node), or address:port.</summary>
    [Parameter(Mandatory = true, Position = 1, ParameterSetName = FlowSet)]
    [ValidateNotNullOrEmpty]
    public string? Destination { get; set; }

    // Held as a byte: a field of an engine enum would make PowerShell load CalicoBpf.Core while it
    // scans the module's types, before the module's initializer can say where Core is.
    private byte _protocol = 6;

    [Parameter(ParameterSetName = FlowSet)]
    [IpProtocolArgument]
    public IpProtocol Protocol { get => (IpProtocol)_protocol; set => _protocol = (byte)value; }

    /// <summary>The destination port, when -Destination has none.</summary>
    [Parameter(ParameterSetName = FlowSet)]
    [ValidateRange(0, 65535)]
    public int? Port { get; set; }

    /// <summary>The client's port (default 49152, the first ephemeral port): conntrack entries are found by it.</summary>
    [Parameter(ParameterSetName = FlowSet)]
    [ValidateRange(0, 65535)]
    public int? SourcePort { get; set; }

    /// <summary>Conntrack entries from Get-BpfConntrack: each is predicted as a new connection from its client to where it went (a service entry to its service), on the node and pin path it was read from.</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = EntrySet)]
    public ConntrackEntry[]? InputObject { get; set; }

    /// <summary>Where Felix writes its policy debug files (bpfPolicyDebugEnabled) on the node.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string PolicyDebugPath { get; set; } = Maps.PolicyDebug.DefaultDirectory;

    protected override void ProcessRecord()
    {
        if (ParameterSetName == FlowSet)
        {
            (IPAddress src, int? sport) = Endpoint(Source!, "Source");
            (IPAddress dst, int? dport) = Endpoint(Destination!, "Destination");
            if (dport is not null && Port is not null && dport != Port)
            {
                ThrowTerminatingError(new ErrorRecord(new ArgumentException($"-Destination {Destination} names port {dport} and -Port says {Port}: give the port once."), "PortTwice", ErrorCategory.InvalidArgument, Port));
            }

            if (src.AddressFamily != dst.AddressFamily || src.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork)
            {
                ThrowTerminatingError(new ErrorRecord(new NotSupportedException($"Test-BpfFlow predicts IPv4 flows so far: {Source} -> {Destination} is not one. Get-BpfConntrack -IPv6, Get-BpfNat -IPv6 and Get-BpfRoute -IPv6 read the IPv6 tables."), "IPv6NotPredicted", ErrorCategory.NotImplemented, Destination));
            }

            int port = dport ?? Port ?? (Protocol is IpProtocol.Tcp or IpProtocol.Udp or IpProtocol.Sctp
                ? throw new PSArgumentException($"Which port does {Destination} take? Give it as {Destination}:PORT or with -Port.", "Port")
                : 0);
            _queries.Add(new Pending(null, null, new FlowQuery(Protocol, src, SourcePort ?? sport ?? 49152, dst, port)));
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

            _queries.Add(new Pending(e.Node, e.PinPath.Length > 0 ? e.PinPath : null, new FlowQuery(e.Protocol, e.SourceAddressValue, e.SourcePort, dst, dport)));
        }
    }

    protected override void EndProcessing()
    {
        if (_queries.Count == 0)
        {
            return;
        }

        string policyDirectory = IsLocal && _queries.All(q => q.Node is null) ? GetUnresolvedProviderPathFromPSPath(PolicyDebugPath) : PolicyDebugPath;
        if (ParameterSetName == FlowSet)
        {
            var asked = _queries.Select(q => q.Query).ToList();
            ForEachNode(node => PredictAll(node, asked, policyDirectory));
            return;
        }

        // Piped entries: each node (and pin directory) they came from, its tables read once.
        foreach (var group in _queries.GroupBy(q => (q.Node, q.PinPath)))
        {
            var asked = group.Select(q => q.Query).ToList();
            Node = new[] { group.Key.Node! };
            if (group.Key.PinPath is { } pins)
            {
                PinPath = pins;
            }

            ForEachNode(node => PredictAll(node, asked, IsLocal ? GetUnresolvedProviderPathFromPSPath(PolicyDebugPath) : PolicyDebugPath));
        }
    }

    private IEnumerable<FlowPrediction> PredictAll(INodeDataplane node, List<FlowQuery> queries, string policyDirectory)
    {
        FlowTables tables = FlowTables.Read(node, policyDirectory, Reporter, CancelToken);
        foreach (FlowQuery q in queries)
        {
            CancelToken.ThrowIfCancellationRequested();
            yield return FlowPredictor.Predict(tables, q).Prediction;
        }
    }

    /// <summary>address or address:port, IPv6 as [address]:port.</summary>
    private (IPAddress Address, int? Port) Endpoint(string text, string parameter)
    {
        string t = text.Trim();
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

    /// <summary>A flow asked, and the node (and pin directory) that answers it: null for -Node, or local.</summary>
    private sealed record Pending(string? Node, string? PinPath, FlowQuery Query);
}
