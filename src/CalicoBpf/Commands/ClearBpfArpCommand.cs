namespace CalicoBpf.Commands;

/// <summary>Removes every entry of Calico's tunnel neighbour table (calico-bpf arp clean); the dataplane learns them again.</summary>
[Cmdlet(VerbsCommon.Clear, "BpfArp", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium, HelpUri = HelpUris.Base + "Clear-BpfArp.md")]
[OutputType(typeof(void))]
public sealed class ClearBpfArpCommand : MapCmdletBase
{
    /// <summary>Changes are made on live nodes: no -Bundle (a bundle is read-only).</summary>
    public override string? Bundle { get => null; set => throw new NotSupportedException(); }

    [Parameter]
    public SwitchParameter IPv6 { get; set; }

    protected override void ProcessRecord() => ForEachNodeInTurn(node =>
    {
        CalicoMapName pin = ArpMap.Find(node, IPv6);
        long count;
        using (var reader = node.OpenMap(pin.PinName))
        {
            count = reader.CountEntries(CancelToken) ?? 0;
        }

        if (ShouldProcess($"{pin.PinName} on {node.Node}", $"Remove all {count} neighbour entries"))
        {
            int removed = ArpMap.Clear(node, pin, CancelToken);
            WriteVerbose($"Removed {removed} entries from {pin.PinName} on {node.Node}.");
        }
    });
}
