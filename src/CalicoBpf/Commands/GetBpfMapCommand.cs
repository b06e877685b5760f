using System.Management.Automation;
using CalicoBpf.Maps;

namespace CalicoBpf.Commands;

/// <summary>Lists the Calico BPF maps pinned on the node, with sizes and how full each is.</summary>
[Cmdlet(VerbsCommon.Get, "BpfMap")]
[OutputType(typeof(BpfMapInfo))]
public sealed class GetBpfMapCommand : BpfCmdletBase
{
    /// <summary>Pin names or base names, wildcards allowed.</summary>
    [Parameter(Position = 0)]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[]? Name { get; set; }

    /// <summary>Skip counting entries (fast on very large maps); Entries and FillPercent stay empty.</summary>
    [Parameter]
    public SwitchParameter NoCount { get; set; }

    protected override void ProcessRecord() => Run(() =>
    {
        var node = OpenLocalNode();
        Func<string, bool>? filter = WildcardFilter(Name);
        bool any = false;
        foreach (BpfMapInfo info in MapInventory.List(node, filter, !NoCount, Reporter, CancelToken))
        {
            any = true;
            WriteObject(info);
        }

        if (!any && Name is { Length: > 0 } && !Name.Any(WildcardPattern.ContainsWildcardCharacters))
        {
            WriteError(new ErrorRecord(
                new ItemNotFoundException($"No Calico map named {string.Join(", ", Name)} is pinned in {node.PinDirectory}. Run Get-BpfMap without -Name to see the maps there."),
                "MapNotFound", ErrorCategory.ObjectNotFound, Name));
        }
    }, PinPath);
}
