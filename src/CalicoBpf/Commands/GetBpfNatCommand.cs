using System.Management.Automation;
using CalicoBpf.Maps;

namespace CalicoBpf.Commands;

/// <summary>Service frontends of the NAT maps with their backends (calico-bpf nat dump).</summary>
[Cmdlet(VerbsCommon.Get, "BpfNat")]
[OutputType(typeof(NatFrontend))]
public sealed class GetBpfNatCommand : BpfCmdletBase
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

        var query = new NatQuery { IPv6 = IPv6, Addresses = addresses, Ports = Port, Protocols = Protocol, ServiceIds = ServiceId };
        Run(() =>
        {
            foreach (NatFrontend f in NatMaps.ReadFrontends(OpenLocalNode(), query, Reporter, CancelToken))
            {
                if (f.MissingBackendCount > 0)
                {
                    WriteWarning($"{f.Frontend} ({f.Protocol}, service id {f.ServiceId}) counts {f.BackendCount} backends but {f.MissingBackendCount} are missing from the backend map.");
                }

                WriteObject(f);
            }
        }, PinPath);
    }
}

/// <summary>Session-affinity entries (calico-bpf nat aff).</summary>
[Cmdlet(VerbsCommon.Get, "BpfNatAffinity")]
[OutputType(typeof(NatAffinity))]
public sealed class GetBpfNatAffinityCommand : BpfCmdletBase
{
    [Parameter]
    public SwitchParameter IPv6 { get; set; }

    protected override void ProcessRecord() => Run(() =>
    {
        foreach (NatAffinity a in NatMaps.ReadAffinity(OpenLocalNode(), IPv6, Reporter, CancelToken))
        {
            WriteObject(a);
        }
    }, PinPath);
}

/// <summary>Maglev lookup-table entries (calico-bpf nat maglev), where the node has the map.</summary>
[Cmdlet(VerbsCommon.Get, "BpfNatMaglev")]
[OutputType(typeof(MaglevEntry))]
public sealed class GetBpfNatMaglevCommand : BpfCmdletBase
{
    [Parameter]
    public SwitchParameter IPv6 { get; set; }

    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    public uint? ServiceId { get; set; }

    protected override void ProcessRecord() => Run(() =>
    {
        foreach (MaglevEntry m in NatMaps.ReadMaglev(OpenLocalNode(), IPv6, ServiceId, Reporter, CancelToken))
        {
            WriteObject(m);
        }
    }, PinPath);
}
