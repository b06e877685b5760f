namespace CalicoBpf.Commands;

/// <summary>Reads Calico's per-interface packet counters (what calico-bpf counters dump shows).</summary>
[Cmdlet(VerbsCommon.Get, "BpfCounter", HelpUri = HelpUris.Base + "Get-BpfCounter.md")]
[OutputType(typeof(InterfaceCounter))]
public sealed class GetBpfCounterCommand : MapCmdletBase
{
    /// <summary>Interface names, wildcards allowed.</summary>
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(InterfaceNameCompleter))]
    public string[]? Interface { get; set; }

    protected override void ProcessRecord() =>
        ReadEach(node => CounterReader.Read(node, WildcardFilter(Interface), Reporter, CancelToken), Interface, "InterfaceNotFound",
            names => $"Calico keeps no counters for interface {names}: no Calico program is attached there. Run Get-BpfCounter without -Interface to list the interfaces it counts.");
}
