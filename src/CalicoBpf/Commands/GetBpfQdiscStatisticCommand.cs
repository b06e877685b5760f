namespace CalicoBpf.Commands;

/// <summary>Queueing disciplines and their counters over rtnetlink (what tc -s qdisc show prints).</summary>
[Cmdlet(VerbsCommon.Get, "BpfQdiscStatistic", HelpUri = HelpUris.Base + "Get-BpfQdiscStatistic.md")]
[OutputType(typeof(QdiscStatistic))]
public sealed class GetBpfQdiscStatisticCommand : NodeCmdletBase
{
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(InterfaceNameCompleter))]
    public string[]? Interface { get; set; }

    /// <summary>Only qdiscs of these kinds (clsact, noqueue, ...).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string[]? Kind { get; set; }

    protected override void ProcessRecord()
    {
        Func<string, bool>? filter = WildcardFilter(Interface);
        ReadEach(node => node.ListQdiscs().Where(q => (filter is null || filter(q.Interface)) && (Kind is null || Kind.Contains(q.Kind, StringComparer.OrdinalIgnoreCase))),
            Interface, "InterfaceNotFound", n => $"No interface named {n} has a qdisc in this network namespace.");
    }
}
