namespace CalicoBpf.Commands;

/// <summary>Lists the cluster's nodes with their calico-node pods; pipes into every -Node cmdlet.</summary>
[Cmdlet(VerbsCommon.Get, "CalicoNode", HelpUri = HelpUris.Base + "Get-CalicoNode.md")]
[OutputType(typeof(CalicoNode))]
public sealed class GetCalicoNodeCommand : CalicoBpfCmdletBase
{
    [Parameter(Position = 0)]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(NodeNameCompleter))]
    public string[]? Name { get; set; }

    /// <summary>A diagnostics bundle (Export-CalicoBpfDiagnostic's zip) to read instead of the live cluster.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Bundle { get; set; }

    private protected override string? BundlePath => Bundle;

    protected override void ProcessRecord()
    {
        IReadOnlyList<CalicoNode> nodes = Api(() => Cluster.ListNodes(CancelToken), Kubeconfig);

        Func<string, bool>? filter = WildcardFilter(Name);
        WriteEach(nodes.Where(n => filter is null || filter(n.Node)), Name, "NodeNotFound", n => $"The cluster has no node named {n}.");
    }
}
