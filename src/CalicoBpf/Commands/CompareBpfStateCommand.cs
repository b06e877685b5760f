namespace CalicoBpf.Commands;

/// <summary>
/// What changed in a node's dataplane between two states: two bundles, a bundle and the live node, or
/// two nodes. One StateDifference per object added, removed or changed, per family, keyed as Calico
/// keys it (a flow, a frontend, a prefix, a member), with ages, counters and hit counts left out
/// unless -IncludeVolatile.
/// </summary>
[Cmdlet(VerbsData.Compare, "BpfState", DefaultParameterSetName = BundlesSet, HelpUri = HelpUris.Base + "Compare-BpfState.md")]
[OutputType(typeof(StateDifference))]
public sealed class CompareBpfStateCommand : MapCmdletBase
{
    private const string BundlesSet = "Bundles";
    private const string NodesSet = "Nodes";
    private readonly List<IDisposable> _opened = new();

    /// <summary>The bundle of the reference side (the earlier state).</summary>
    [Parameter(Mandatory = true, Position = 0, ParameterSetName = BundlesSet)]
    [Parameter(ParameterSetName = NodesSet)]
    [ValidateNotNullOrEmpty]
    public string? ReferenceBundle { get; set; }

    /// <summary>The bundle of the difference side (the later state); without it, the live nodes.</summary>
    [Parameter(Position = 1, ParameterSetName = BundlesSet)]
    [Parameter(ParameterSetName = NodesSet)]
    [ValidateNotNullOrEmpty]
    public string? DifferenceBundle { get; set; }

    /// <summary>The node of the reference side, when two nodes are compared.</summary>
    [Parameter(Mandatory = true, ParameterSetName = NodesSet)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(NodeNameCompleter))]
    public string? ReferenceNode { get; set; }

    /// <summary>The node of the difference side, when two nodes are compared.</summary>
    [Parameter(Mandatory = true, ParameterSetName = NodesSet)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(NodeNameCompleter))]
    public string? DifferenceNode { get; set; }

    /// <summary>Only these families (default: all).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(FamilyCompleter))]
    public string[]? Family { get; set; }

    /// <summary>Also compares what moves on its own: ages and timestamps, packet and byte counters, rule hit counts, map fill.</summary>
    [Parameter]
    public SwitchParameter IncludeVolatile { get; set; }

    /// <summary>The sides are given by -ReferenceBundle and -DifferenceBundle: no -Bundle.</summary>
    public override string? Bundle { get => null; set => throw new NotSupportedException(); }

    protected override void ProcessRecord() => Gather(null);

    protected override void EndProcessing()
    {
        UseGathered();
        string[] families = Family ?? StateComparer.Names.ToArray();
        foreach (string f in families.Where(f => !StateComparer.Names.Contains(f)))
        {
            ThrowTerminatingError(new ErrorRecord(new ArgumentException($"-Family {f} is not a family Compare-BpfState compares: {string.Join(", ", StateComparer.Names)}."),
                "FamilyNotFound", ErrorCategory.InvalidArgument, f));
        }

        try
        {
            BundleCluster? reference = ReferenceBundle is null ? null : Open(ReferenceBundle);
            BundleCluster? difference = DifferenceBundle is null ? null : Open(DifferenceBundle);
            List<CalicoNode> targets;
            Func<CalicoNode, CancellationToken, IEnumerable<StateDifference>> compare;
            if (ParameterSetName == NodesSet)
            {
                CalicoNode? one = Resolve(reference, ReferenceNode!);
                CalicoNode? other = Resolve(difference, DifferenceNode!);
                if (one is null || other is null)
                {
                    return;
                }

                targets = new List<CalicoNode> { one };
                compare = (_, token) => Pair(one, reference, other, difference, families, token);
            }
            else
            {
                targets = NodeSelection.Select(reference!.BundledNodes, NodePatterns, needsCalicoNode: false, WriteError, WriteWarning);
                if (difference is null && !reference.HasCluster)
                {
                    // A bundle of this machine, against this machine now.
                    compare = (node, token) => Compared(node.Node, () => reference.OpenNode(node.Node, Given), node.Node, () => OpenLocalNode(), families, token);
                    RunHere(targets, compare);
                    return;
                }

                Dictionary<string, CalicoNode>? live = difference is null
                    ? Api(() => Cluster.ListNodes(CancelToken)).Where(n => n.HasCalicoNode).ToDictionary(n => n.Node, StringComparer.Ordinal)
                    : null;
                compare = (node, token) => Pair(node, reference, live is null ? node : live.GetValueOrDefault(node.Node), difference, families, token);
            }

            new NodeFanOut(this, ThrottleLimit, CancelToken, (_, _) => throw new InvalidOperationException("not used"), UseWorkerReporter, ErrorRecords.FromNode)
                .ReadNodes(targets, compare, null);
        }
        finally
        {
            foreach (IDisposable d in _opened)
            {
                d.Dispose();
            }
        }
    }

    private NodeRelease? Given => CalicoVersion is { } given ? NodeRelease.Given(given) : null;

    /// <summary>A local comparison on the pipeline thread (no fan-out: one machine).</summary>
    private void RunHere(List<CalicoNode> targets, Func<CalicoNode, CancellationToken, IEnumerable<StateDifference>> compare) =>
        Run(() =>
        {
            foreach (CalicoNode node in targets)
            {
                foreach (StateDifference d in compare(node, CancelToken))
                {
                    WriteObject(d);
                }
            }
        }, PinDirectory);

    private IEnumerable<StateDifference> Pair(CalicoNode one, BundleCluster? reference, CalicoNode? other, BundleCluster? difference, string[] families, CancellationToken token)
    {
        if (other is null)
        {
            throw new ItemNotFoundException($"The cluster has no node {one.Node} now: the bundle's node is not compared. Get-CalicoNode lists the nodes.");
        }

        return Compared(one.Node, () => Side(reference, one, token), other.Node, () => Side(difference, other, token), families, token);
    }

    private INodeDataplane Side(BundleCluster? bundle, CalicoNode node, CancellationToken token) =>
        bundle is not null ? bundle.OpenNode(node.Node, Given) : OpenNode(Cluster, node, token);

    /// <summary>
    /// Every family of one pair of sides; a family one side cannot read is a warning, and the rest goes on.
    /// The sides are opened here, on the first read and inside the try, so that what was opened is closed
    /// whatever happens: the difference side failing to open after the reference side, a failure or an early
    /// stop mid-way; and nothing is opened for a comparison whose enumeration never starts.
    /// </summary>
    private IEnumerable<StateDifference> Compared(string referenceName, Func<INodeDataplane> openReference, string differenceName, Func<INodeDataplane> openDifference, string[] families, CancellationToken token)
    {
        INodeDataplane? reference = null;
        INodeDataplane? difference = null;
        try
        {
            reference = openReference();
            difference = openDifference();
            foreach (string family in StateComparer.Names.Where(families.Contains))
            {
                List<object>? before = Materialized(reference, family, "reference", token);
                List<object>? after = before is null ? null : Materialized(difference, family, "difference", token);
                if (before is null || after is null)
                {
                    continue;
                }

                foreach (StateDifference d in StateComparer.Compare(family, referenceName, before, differenceName, after, IncludeVolatile, token))
                {
                    yield return d;
                }
            }
        }
        finally
        {
            (reference as IDisposable)?.Dispose();
            (difference as IDisposable)?.Dispose();
        }
    }

    private List<object>? Materialized(INodeDataplane node, string family, string side, CancellationToken token)
    {
        try
        {
            return DataplaneFamilies.Read(node, family, Reporter, token).ToList();
        }
        catch (Exception ex) when (ex is not OperationCanceledException && ErrorRecords.FromEngine(ex, node.Node) is not null)
        {
            Reporter.Warning($"{family} is not compared: the {side} side ({node.Node}) cannot be read: {ex.Message}");
            return null;
        }
    }

    /// <summary>A node of -ReferenceNode or -DifferenceNode: in its bundle, else in the cluster; null (and an error) when neither has it.</summary>
    private CalicoNode? Resolve(BundleCluster? bundle, string name)
    {
        List<CalicoNode> hits = bundle is not null
            ? NodeSelection.Select(bundle.BundledNodes, new[] { name }, needsCalicoNode: false, WriteError, WriteWarning)
            : SelectNodes(new[] { name }, needsCalicoNode: true);
        return hits.FirstOrDefault();
    }

    private BundleCluster Open(string path)
    {
        BundleCluster b = OpenBundle(path);
        _opened.Add(b);
        return b;
    }

    /// <summary>Tab completion of -Family.</summary>
    private sealed class FamilyCompleter : IArgumentCompleter
    {
        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            System.Management.Automation.Language.CommandAst commandAst, System.Collections.IDictionary fakeBoundParameters) =>
            StateComparer.Names.Where(n => n.StartsWith(wordToComplete, StringComparison.OrdinalIgnoreCase))
                .Select(n => new CompletionResult(n, n, CompletionResultType.ParameterValue, n));
    }
}
