namespace CalicoBpf.Commands;

/// <summary>
/// Cmdlets that read a node's conntrack table with the same filters (Get-BpfConntrack, Watch-BpfConntrack):
/// -IPv6, -Protocol, -Address, -Port, -Type and -State as a <see cref="ConntrackQuery"/>, and -Resolve,
/// -Pod, -Namespace and -Service through one pod and service list per run (<see cref="WorkloadLookup"/>).
/// </summary>
public abstract class ConntrackCmdletBase : MapCmdletBase
{
    private readonly WorkloadLookup _workloads = new();

    /// <summary>The IPv6 table (cali_v6_ct*) instead of the IPv4 one.</summary>
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

    /// <summary>
    /// The query of the filters (with <paramref name="olderThan"/>), and with -Resolve or a workload filter
    /// the cluster's names; false when a filter was bad (its error is written). <paramref name="resolved"/>:
    /// the entries get pod and service names.
    /// </summary>
    private protected bool TryBuildQuery(TimeSpan olderThan, out ConntrackQuery query, out bool resolved)
    {
        resolved = false;
        if (!TryBuildConntrackQuery(IPv6, Protocol, Address, Port, Type, State, olderThan, out query))
        {
            return false;
        }

        WorkloadFilter? filter = WorkloadLookup.Filter(Pod, Namespace, Service);
        if (_workloads.Load(Resolve, filter, () => Api(() => Cluster.LoadWorkloads(CancelToken)), WriteWarning) is { } workloads)
        {
            query = query with { Resolver = workloads, Workloads = filter, WorkloadAddresses = filter?.Prefixes(workloads) };
            resolved = true;
        }

        return true;
    }

    /// <summary>An object tagged so that the default table shows pod and service names (TYPE#Resolved).</summary>
    private protected static PSObject Resolved(object item)
    {
        var o = new PSObject(item);
        o.TypeNames.Insert(0, item.GetType().FullName + "#Resolved");
        return o;
    }
}
