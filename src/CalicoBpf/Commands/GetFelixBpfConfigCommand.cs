namespace CalicoBpf.Commands;

/// <summary>Reads FelixConfiguration objects with their eBPF settings typed, or what Felix on a node actually uses.</summary>
[Cmdlet(VerbsCommon.Get, "FelixBpfConfig", DefaultParameterSetName = Objects, HelpUri = HelpUris.Base + "Get-FelixBpfConfig.md")]
[OutputType(typeof(FelixBpfConfig), ParameterSetName = new[] { Objects })]
[OutputType(typeof(FelixEffectiveValue), ParameterSetName = new[] { EffectiveSet })]
public sealed class GetFelixBpfConfigCommand : CalicoBpfCmdletBase
{
    private const string Objects = "Objects";
    private const string EffectiveSet = "Effective";

    /// <summary>FelixConfiguration names (wildcards): default, node.NAME, or selector-scoped names.</summary>
    [Parameter(Position = 0, ParameterSetName = Objects)]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(FelixConfigurationNameCompleter))]
    public string[]? Name { get; set; }

    /// <summary>Nodes (wildcards): their node.NAME objects, or with -Effective what Felix uses there.</summary>
    [Parameter(ParameterSetName = Objects, ValueFromPipelineByPropertyName = true)]
    [Parameter(ParameterSetName = EffectiveSet, Mandatory = true, ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(NodeNameCompleter))]
    public string[]? Node { get; set; }

    /// <summary>What Felix on each node uses, field by field, with the source of each value.</summary>
    [Parameter(ParameterSetName = EffectiveSet, Mandatory = true)]
    public SwitchParameter Effective { get; set; }

    /// <summary>With -Effective: only these fields (JSON or property names, wildcards).</summary>
    [Parameter(ParameterSetName = EffectiveSet)]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(FelixFieldCompleter))]
    public string[]? Field { get; set; }

    /// <summary>A diagnostics bundle (Export-CalicoBpfDiagnostic's zip) to read instead of the live cluster.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Bundle { get; set; }

    private protected override string? BundlePath => Bundle;

    protected override void ProcessRecord()
    {
        var felix = new FelixConfigClient(Cluster, CancelToken);
        if (Effective)
        {
            Func<string, bool>? fields = WildcardFilter(Field);
            var warned = new HashSet<string>(StringComparer.Ordinal);
            foreach (CalicoNode node in SelectNodes(Node!, needsCalicoNode: false))
            {
                foreach (string problem in Api(() => felix.SelectorScoped(node).Problems, node.Node).Where(warned.Add))
                {
                    WriteWarning(problem);
                }

                foreach (FelixEffectiveValue v in Api(() => felix.Effective(node), node.Node))
                {
                    if (fields is null || fields(v.Field) || fields(FelixFields.Find(v.Field)?.Property ?? v.Field))
                    {
                        WriteObject(v);
                    }
                }
            }

            return;
        }

        IReadOnlyList<FelixBpfConfig> configs = Api(() => felix.List());
        string[]? names = Name;
        if (Node is { Length: > 0 })
        {
            names = (names ?? Array.Empty<string>()).Concat(Node.Select(n => "node." + n)).ToArray();
        }

        Func<string, bool>? filter = WildcardFilter(names);
        WriteEach(configs.Where(c => filter is null || filter(c.Name)), names, "FelixConfigurationNotFound",
            n => $"There is no FelixConfiguration {n} in {felix.Resource.GroupVersion}.");
    }
}
