namespace CalicoBpf.Commands;

/// <summary>Node cmdlets that read or change Calico's pinned maps, on this node or on nodes of a cluster.</summary>
public abstract class MapCmdletBase : NodeCmdletBase
{
    /// <summary>The bpffs directory where Calico pins its maps (on this node, or on each -Node).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string PinPath { get; set; } = MapCatalog.DefaultPinDirectory;

    private protected override string? PinDirectory => PinPath;
}
