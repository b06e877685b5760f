namespace CalicoBpf.Commands;

/// <summary>Lists the Calico BPF maps pinned on the node, with sizes and how full each is.</summary>
[Cmdlet(VerbsCommon.Get, "BpfMap", HelpUri = HelpUris.Base + "Get-BpfMap.md")]
[OutputType(typeof(MapInfo))]
public sealed class GetBpfMapCommand : MapCmdletBase
{
    /// <summary>Pin names or base names, wildcards allowed.</summary>
    [Parameter(Position = 0)]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(MapNameCompleter))]
    public string[]? Name { get; set; }

    /// <summary>Skip counting entries (fast on very large maps); Entries and FillPercent stay empty.</summary>
    [Parameter]
    public SwitchParameter NoCount { get; set; }

    protected override void ProcessRecord() =>
        ReadEach(node => MapInventory.List(node, WildcardFilter(Name), !NoCount, Reporter, CancelToken), Name, "MapNotFound",
            names => $"No Calico map named {names} is pinned in {PinPath}. Run Get-BpfMap without -Name to see the maps there.");
}
