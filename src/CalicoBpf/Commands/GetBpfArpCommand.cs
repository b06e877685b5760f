namespace CalicoBpf.Commands;

/// <summary>Calico's tunnel neighbour table (calico-bpf arp dump).</summary>
[Cmdlet(VerbsCommon.Get, "BpfArp", HelpUri = HelpUris.Base + "Get-BpfArp.md")]
[OutputType(typeof(ArpEntry))]
public sealed class GetBpfArpCommand : MapCmdletBase
{
    [Parameter]
    public SwitchParameter IPv6 { get; set; }

    protected override void ProcessRecord() => ForEachNode(node => ArpMap.Read(node, IPv6, Reporter, CancelToken));
}
