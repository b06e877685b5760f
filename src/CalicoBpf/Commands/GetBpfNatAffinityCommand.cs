namespace CalicoBpf.Commands;

/// <summary>Session-affinity entries (calico-bpf nat aff).</summary>
[Cmdlet(VerbsCommon.Get, "BpfNatAffinity", HelpUri = HelpUris.Base + "Get-BpfNatAffinity.md")]
[OutputType(typeof(NatAffinity))]
public sealed class GetBpfNatAffinityCommand : MapCmdletBase
{
    [Parameter]
    public SwitchParameter IPv6 { get; set; }

    protected override void ProcessRecord() => ForEachNode(node => NatMaps.ReadAffinity(node, IPv6, Reporter, CancelToken));
}
