namespace CalicoBpf.Commands;

/// <summary>Service frontends of the NAT maps with their backends (calico-bpf nat dump).</summary>
[Cmdlet(VerbsCommon.Get, "BpfNat", HelpUri = HelpUris.Base + "Get-BpfNat.md")]
[OutputType(typeof(NatFrontend))]
public sealed class GetBpfNatCommand : MapCmdletBase
{
    private readonly WorkloadLookup _workloads = new();

    [Parameter]
    public SwitchParameter IPv6 { get; set; }

    /// <summary>Frontend addresses or CIDRs.</summary>
    [Parameter(Position = 0)]
    [ValidateNotNullOrEmpty]
    public string[]? Address { get; set; }

    [Parameter]
    [ValidateRange(0, 65535)]
    public int[]? Port { get; set; }

    [Parameter]
    [IpProtocolArgument]
    [ValidateNotNullOrEmpty]
    public IpProtocol[]? Protocol { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public uint[]? ServiceId { get; set; }

    /// <summary>Adds Service to each frontend and Pod to each backend (namespace/name), from the cluster's services and pods (<see cref="WorkloadLookup"/>).</summary>
    [Parameter]
    public SwitchParameter Resolve { get; set; }

    /// <summary>Only frontends with one of these pods among their backends (namespace/name, or a name in any namespace; wildcards). Implies -Resolve.</summary>
    [Parameter]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[]? Pod { get; set; }

    /// <summary>Only frontends whose service, or one of whose backend pods, is in one of these namespaces (wildcards). Implies -Resolve.</summary>
    [Parameter]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[]? Namespace { get; set; }

    /// <summary>Only the frontends of these services (namespace/name, or a name in any namespace; wildcards). Implies -Resolve.</summary>
    [Parameter]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[]? Service { get; set; }

    protected override void ProcessRecord()
    {
        if (!TryParseAddresses(Address, IPv6, out List<AddressPrefix>? addresses))
        {
            return;
        }

        WorkloadFilter? filter = WorkloadLookup.Filter(Pod, Namespace, Service);
        var query = new NatQuery
        {
            IPv6 = IPv6, Addresses = addresses, Ports = Port, Protocols = Protocol, ServiceIds = ServiceId,
            Resolver = _workloads.Load(Resolve, filter, () => Api(() => Cluster.LoadWorkloads(CancelToken)), WriteWarning), Workloads = filter,
        };
        ForEachNode(node => NatMaps.ReadFrontends(node, query, Reporter, CancelToken));
    }
}
