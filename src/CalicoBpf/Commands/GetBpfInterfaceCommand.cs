namespace CalicoBpf.Commands;

/// <summary>Felix's interface state: which interfaces it manages and the programs it attached (calico-bpf ifstate dump), with the kernel's attachments (TC, TCX, Netkit).</summary>
[Cmdlet(VerbsCommon.Get, "BpfInterface", HelpUri = HelpUris.Base + "Get-BpfInterface.md")]
[OutputType(typeof(InterfaceState))]
public sealed class GetBpfInterfaceCommand : MapCmdletBase
{
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    [Alias("Interface")]
    [ArgumentCompleter(typeof(InterfaceNameCompleter))]
    public string[]? Name { get; set; }

    protected override void ProcessRecord()
    {
        Func<string, bool>? filter = WildcardFilter(Name);
        ReadEach(node => InterfaceStateMap.Read(node, Reporter, CancelToken, withAttachments: true).Where(s => filter is null || filter(s.Name)), Name,
            "InterfaceNotFound", n => $"Felix manages no interface named {n}. Run Get-BpfInterface without -Name to list them.");
    }
}
