namespace CalicoBpf.Commands;

/// <summary>Decodes Calico's conntrack table into <see cref="ConntrackEntry"/> objects, filtering while it reads.</summary>
[Cmdlet(VerbsCommon.Get, "BpfConntrack", HelpUri = HelpUris.Base + "Get-BpfConntrack.md")]
[OutputType(typeof(ConntrackEntry))]
public sealed class GetBpfConntrackCommand : MapCmdletBase
{
    private readonly WorkloadLookup _workloads = new();

    /// <summary>Read the IPv6 table (cali_v6_ct*) instead of the IPv4 one.</summary>
    [Parameter]
    public SwitchParameter IPv6 { get; set; }

    [Parameter]
    [IpProtocolArgument]
    [ValidateNotNullOrEmpty]
    public IpProtocol[]? Protocol { get; set; }

    /// <summary>Addresses or CIDRs; an entry matches when its source, destination or service address is inside one.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string[]? Address { get; set; }

    /// <summary>An entry matches when its source, destination or service port is one of these.</summary>
    [Parameter]
    [ValidateRange(0, 65535)]
    public int[]? Port { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public ConntrackType[]? Type { get; set; }

    [Parameter]
    [TcpStateArgument]
    [ValidateNotNullOrEmpty]
    public TcpState[]? State { get; set; }

    /// <summary>Only entries whose last packet is older than this.</summary>
    [Parameter]
    [DurationArgument]
    public TimeSpan OlderThan { get; set; }

    /// <summary>Adds SourcePod, DestinationPod and Service (namespace/name) by matching the entries' addresses with the cluster's pod and service IPs (<see cref="WorkloadLookup"/>).</summary>
    [Parameter]
    public SwitchParameter Resolve { get; set; }

    /// <summary>Only entries from or to one of these pods (namespace/name, or a name in any namespace; wildcards). Implies -Resolve.</summary>
    [Parameter]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[]? Pod { get; set; }

    /// <summary>Only entries with a pod or service in one of these namespaces (wildcards). Implies -Resolve.</summary>
    [Parameter]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[]? Namespace { get; set; }

    /// <summary>Only entries of connections to one of these services (namespace/name, or a name in any namespace; wildcards). Implies -Resolve.</summary>
    [Parameter]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[]? Service { get; set; }

    protected override void ProcessRecord()
    {
        if (!TryBuildConntrackQuery(IPv6, Protocol, Address, Port, Type, State, OlderThan, out ConntrackQuery query))
        {
            return;
        }

        WorkloadFilter? filter = WorkloadLookup.Filter(Pod, Namespace, Service);
        if (_workloads.Load(Resolve, filter, () => Api(() => Cluster.LoadWorkloads(CancelToken)), WriteWarning) is not { } workloads)
        {
            ForEachNode(node => ConntrackReader.Read(node, query, Reporter, CancelToken));
            return;
        }

        query = query with { Resolver = workloads, Workloads = filter, WorkloadAddresses = filter?.Prefixes(workloads) };
        ForEachNode(node => ConntrackReader.Read(node, query, Reporter, CancelToken).Select(Resolved));
    }

    /// <summary>The entry, tagged so that the default table shows pod and service names (CalicoBpf.ConntrackEntry#Resolved).</summary>
    private static PSObject Resolved(ConntrackEntry entry)
    {
        var o = new PSObject(entry);
        o.TypeNames.Insert(0, "CalicoBpf.ConntrackEntry#Resolved");
        return o;
    }
}
