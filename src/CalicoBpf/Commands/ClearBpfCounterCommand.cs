namespace CalicoBpf.Commands;

/// <summary>Resets Calico's per-interface counters to zero (calico-bpf counters flush).</summary>
[Cmdlet(VerbsCommon.Clear, "BpfCounter", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium, HelpUri = HelpUris.Base + "Clear-BpfCounter.md")]
[OutputType(typeof(void))]
public sealed class ClearBpfCounterCommand : MapCmdletBase
{
    /// <summary>Changes are made on live nodes: no -Bundle (a bundle is read-only).</summary>
    public override string? Bundle { get => null; set => throw new NotSupportedException(); }

    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(InterfaceNameCompleter))]
    public string[]? Interface { get; set; }

    protected override void ProcessRecord() => ForEachNodeInTurn(node =>
    {
        using var counters = new CounterMaintenance(node);
        IReadOnlyList<CounterInterface> targets = counters.ListInterfaces(WildcardFilter(Interface), CancelToken);
        if (targets.Count == 0 && Interface is { Length: > 0 } && !Interface.Any(WildcardPattern.ContainsWildcardCharacters))
        {
            WriteError(new ErrorRecord(
                new ItemNotFoundException($"Calico keeps no counters for interface {string.Join(", ", Interface)}."),
                "InterfaceNotFound", ErrorCategory.ObjectNotFound, Interface));
        }

        foreach (CounterInterface target in targets)
        {
            string hooks = string.Join(", ", target.Hooks.Select(h => h switch { 0 => "ingress", 1 => "egress", 2 => "xdp", _ => "hook " + h }));
            if (ShouldProcess($"{target.Name} (ifindex {target.IfIndex}) in {counters.MapName} on {node.Node}", $"Reset the {hooks} counters to zero"))
            {
                counters.Reset(target);
            }
        }
    });
}
