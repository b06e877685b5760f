using System.Management.Automation;
using CalicoBpf.Maps;

namespace CalicoBpf.Commands;

/// <summary>Service frontends of the NAT maps with their backends (calico-bpf nat dump).</summary>
[Cmdlet(VerbsCommon.Get, "BpfNat")]
[OutputType(typeof(NatFrontend))]
public sealed class GetBpfNatCommand : WorkloadCmdletBase
{
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
    [ValidateNotNullOrEmpty]
    public IpProtocol[]? Protocol { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public uint[]? ServiceId { get; set; }

    protected override void ProcessRecord()
    {
        if (!TryParseAddresses(Address, IPv6, out List<AddressPrefix>? addresses))
        {
            return;
        }

        var query = new NatQuery { IPv6 = IPv6, Addresses = addresses, Ports = Port, Protocols = Protocol, ServiceIds = ServiceId, Resolver = LoadWorkloads(), Workloads = Workloads };
        ForEachNode(node => NatMaps.ReadFrontends(node, query, Reporter, CancelToken));
    }
}
