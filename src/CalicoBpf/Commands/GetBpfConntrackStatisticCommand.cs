namespace CalicoBpf.Commands;

/// <summary>Counts each node's conntrack table by type, protocol and TCP state (calico-bpf conntrack stats), on the raw bytes.</summary>
[Cmdlet(VerbsCommon.Get, "BpfConntrackStatistic", HelpUri = HelpUris.Base + "Get-BpfConntrackStatistic.md")]
[OutputType(typeof(ConntrackStatistic))]
public sealed class GetBpfConntrackStatisticCommand : MapCmdletBase
{
    /// <summary>The IPv6 table (cali_v6_ct*) instead of the IPv4 one.</summary>
    [Parameter]
    public SwitchParameter IPv6 { get; set; }

    protected override void ProcessRecord() =>
        ForEachNode(node => new[] { ConntrackStatisticReader.Read(node, IPv6, Reporter, CancelToken) });
}
