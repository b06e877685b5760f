namespace CalicoBpf.Commands;

/// <summary>Maglev lookup-table entries (calico-bpf nat maglev), where the node has the map.</summary>
[Cmdlet(VerbsCommon.Get, "BpfNatMaglev", HelpUri = HelpUris.Base + "Get-BpfNatMaglev.md")]
[OutputType(typeof(MaglevEntry))]
public sealed class GetBpfNatMaglevCommand : MapCmdletBase
{
    [Parameter]
    public SwitchParameter IPv6 { get; set; }

    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    public uint? ServiceId { get; set; }

    protected override void ProcessRecord() => ForEachNode(node => NatMaps.ReadMaglev(node, IPv6, ServiceId, Reporter, CancelToken));
}
