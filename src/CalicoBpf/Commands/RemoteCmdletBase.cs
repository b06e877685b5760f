using System.Management.Automation;
using CalicoBpf.Maps;
using CalicoBpf.Transport;

namespace CalicoBpf.Commands;

/// <summary>Readers and changes of Calico's maps, on this node or on nodes of a cluster.</summary>
public abstract class RemoteCmdletBase : NodeCmdletBase
{
    /// <summary>The bpffs directory where Calico pins its maps (on this node, or on each -Node).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string PinPath { get; set; } = MapCatalog.DefaultPinDirectory;

    protected override string? PinDirectory => PinPath;

    protected override INodeDataplane OpenLocalNode() => new LocalDataplane(ResolvePinPath(PinPath), release: CalicoVersion);
}
